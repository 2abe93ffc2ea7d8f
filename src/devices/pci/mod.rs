//! PCI: configuration mechanism #1 and bus 0 of an i440FX/PIIX3 PC.
//!
//! # Ports
//!
//! - `0xCF8` (dword accesses only): CONFIG_ADDRESS — bit 31 enable, bits 23:16 bus,
//!   15:11 device, 10:8 function, 7:2 register. Reads return the latched value (bits 30:24
//!   and 1:0 read as zero).
//! - `0xCFC-0xCFF` (byte, word or dword): CONFIG_DATA, the addressed dword of configuration
//!   space; port `0xCFC + k` reaches byte `k` of it. With the enable bit clear, or for a
//!   function that does not exist, reads return all ones and writes are dropped.
//! - `0xCF9` (byte accesses): the PIIX3 Reset Control Register. Writing bit 2 = 1 requests
//!   a CPU reset ([`PciBus::take_reset`]); bit 1 (hard/soft reset type) is stored.
//!
//! # Functions on bus 0
//!
//! | devfn | function | ids |
//! |---|---|---|
//! | 00.0 | i440FX host bridge ([`i440fx`]) | 8086:1237 rev 02 |
//! | 01.0 | PIIX3 PCI-to-ISA bridge ([`piix3`]) | 8086:7000 |
//! | 01.1 | PIIX3 IDE (legacy mode, bus-master DMA at BAR4) | 8086:7010 |
//! | 01.3 | PIIX4-style ACPI/power management | 8086:7113 rev 03 |
//!
//! The board may add functions ([`PciBus::add_function`], e.g. VGA at 02.0), built from
//! the generic [`PciFunction`]: a 256-byte configuration space with per-bit write masks,
//! write-one-to-clear status bits, BARs that report their size when all ones are written,
//! an expansion ROM BAR, command/status and interrupt line/pin registers.
//!
//! # What the board does with it
//!
//! - Port I/O `0xCF8-0xCFF` → [`PciBus`] ([`PortDevice`]).
//! - After each device access (`Bus::sync_memory`): [`PciBus::sync_memory`] applies changed
//!   PAM registers to the physical memory map with `PhysMem::set_shadow`. After a snapshot
//!   restore: [`PciBus::apply_pam`].
//! - Port decode of the BARs: [`PciBus::bmide_base`] (16 bytes, IDE bus-master registers),
//!   [`PciBus::pm_io_base`] (64 bytes, [`piix3::AcpiPm`]), [`PciBus::io_bar`] /
//!   [`PciBus::mem_bar`] / [`PciBus::rom_bar`] for added functions.
//! - PCI interrupts: [`PciBus::pirq_levels`] (INTx of all functions folded onto PIRQA-D by
//!   the PIIX3 swizzle) and [`PciBus::pirq_route`] (the ISA IRQ each PIRQ is steered to).
//! - [`PciBus::take_reset`] after writes to 0xCF9.

pub mod i440fx;
pub mod piix3;

use serde::{Deserialize, Serialize};

use super::{PortDevice, Time};
use crate::mmu::PhysMem;

pub const CONFIG_ADDRESS_PORT: u16 = 0xCF8;
pub const RESET_CONTROL_PORT: u16 = 0xCF9;
pub const CONFIG_DATA_PORT: u16 = 0xCFC;

/// Device/function number on bus 0: `device << 3 | function`.
pub const fn devfn(device: u8, function: u8) -> u8 {
    (device << 3) | (function & 7)
}

pub const HOST_BRIDGE_DEVFN: u8 = devfn(0, 0);
pub const ISA_BRIDGE_DEVFN: u8 = devfn(1, 0);
pub const IDE_DEVFN: u8 = devfn(1, 1);
pub const PM_DEVFN: u8 = devfn(1, 3);

// Standard configuration header offsets.
pub const VENDOR_ID: u8 = 0x00;
pub const DEVICE_ID: u8 = 0x02;
pub const COMMAND: u8 = 0x04;
pub const STATUS: u8 = 0x06;
pub const REVISION: u8 = 0x08;
pub const CLASS_PROG: u8 = 0x09;
pub const CACHE_LINE: u8 = 0x0C;
pub const LATENCY: u8 = 0x0D;
pub const HEADER_TYPE: u8 = 0x0E;
pub const BAR0: u8 = 0x10;
pub const SUBSYSTEM_VENDOR: u8 = 0x2C;
pub const ROM_BAR: u8 = 0x30;
pub const INTERRUPT_LINE: u8 = 0x3C;
pub const INTERRUPT_PIN: u8 = 0x3D;

pub const CMD_IO: u16 = 1 << 0;
pub const CMD_MEMORY: u16 = 1 << 1;
pub const CMD_BUS_MASTER: u16 = 1 << 2;
pub const CMD_INTX_DISABLE: u16 = 1 << 10;
/// Command bits a generic function lets software change: I/O, memory, bus master,
/// memory-write-and-invalidate, VGA palette snoop, parity, SERR#, INTx disable.
pub const CMD_WRITABLE: u16 = 0x0577;

pub const STATUS_INTERRUPT: u16 = 1 << 3;
/// DEVSEL timing "medium".
pub const STATUS_DEVSEL_MEDIUM: u16 = 1 << 9;
pub const STATUS_FAST_BACK: u16 = 1 << 7;
/// Error bits software clears by writing ones (parity, target/master abort, SERR#).
pub const STATUS_W1C: u16 = 0xF900;

/// A function's 256-byte configuration space (or one of its masks). Serialized as bytes;
/// deserialization rejects any other length.
#[derive(Clone, PartialEq, Eq)]
pub struct ConfigSpace(pub [u8; 256]);

impl Default for ConfigSpace {
    fn default() -> Self {
        ConfigSpace([0; 256])
    }
}

impl std::fmt::Debug for ConfigSpace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, row) in self.0.chunks(16).enumerate() {
            if row.iter().any(|&b| b != 0) {
                write!(f, "{:02x}:", i * 16)?;
                for b in row {
                    write!(f, " {b:02x}")?;
                }
                writeln!(f)?;
            }
        }
        Ok(())
    }
}

impl Serialize for ConfigSpace {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for ConfigSpace {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ConfigSpace;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("256 bytes of PCI configuration space")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<ConfigSpace, E> {
                let a: [u8; 256] = v
                    .try_into()
                    .map_err(|_| E::invalid_length(v.len(), &self))?;
                Ok(ConfigSpace(a))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<ConfigSpace, A::Error> {
                let mut a = [0u8; 256];
                for (i, b) in a.iter_mut().enumerate() {
                    *b = seq
                        .next_element()?
                        .ok_or_else(|| serde::de::Error::invalid_length(i, &self))?;
                }
                if seq.next_element::<u8>()?.is_some() {
                    return Err(serde::de::Error::invalid_length(257, &self));
                }
                Ok(ConfigSpace(a))
            }
        }
        d.deserialize_bytes(V)
    }
}

impl ConfigSpace {
    pub fn get16(&self, off: u8) -> u16 {
        u16::from_le_bytes([self.0[off as usize], self.0[off.wrapping_add(1) as usize]])
    }
    pub fn get32(&self, off: u8) -> u32 {
        let o = off as usize & 0xFC;
        u32::from_le_bytes([self.0[o], self.0[o + 1], self.0[o + 2], self.0[o + 3]])
    }
    pub fn set(&mut self, off: u8, bytes: &[u8]) {
        for (i, &b) in bytes.iter().enumerate() {
            if let Some(x) = self.0.get_mut(off as usize + i) {
                *x = b;
            }
        }
    }
}

/// What a base address register decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BarKind {
    Unused,
    /// I/O space; `size` is a power of two, at least 4.
    Io {
        size: u32,
    },
    /// 32-bit memory space; `size` is a power of two, at least 16.
    Mem {
        size: u32,
        prefetchable: bool,
    },
}

/// One PCI function: its configuration space and how software may change it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PciFunction {
    pub config: ConfigSpace,
    /// Bits software can write.
    wmask: ConfigSpace,
    /// Bits software clears by writing one.
    w1cmask: ConfigSpace,
    /// Power-on contents.
    initial: ConfigSpace,
    bars: [BarKind; 6],
    /// Expansion ROM size in bytes (0 = no ROM BAR).
    rom_size: u32,
    /// The function's interrupt output before the INTx-disable gate.
    intx: bool,
}

impl PciFunction {
    /// A type-0 header with the given identity. `class` is `base << 16 | sub << 8 | prog_if`.
    /// The device-specific area 0x40-0xFF starts writable (as on QEMU); constructors of
    /// specific functions narrow it.
    pub fn new(vendor: u16, device: u16, revision: u8, class: u32, header_type: u8) -> Self {
        let mut f = PciFunction {
            config: ConfigSpace::default(),
            wmask: ConfigSpace::default(),
            w1cmask: ConfigSpace::default(),
            initial: ConfigSpace::default(),
            bars: [BarKind::Unused; 6],
            rom_size: 0,
            intx: false,
        };
        f.set_initial(VENDOR_ID, &vendor.to_le_bytes());
        f.set_initial(DEVICE_ID, &device.to_le_bytes());
        f.set_initial(REVISION, &[revision]);
        f.set_initial(
            CLASS_PROG,
            &[class as u8, (class >> 8) as u8, (class >> 16) as u8],
        );
        f.set_initial(HEADER_TYPE, &[header_type]);
        f.set_initial(STATUS, &STATUS_DEVSEL_MEDIUM.to_le_bytes());
        f.set_wmask(COMMAND, &CMD_WRITABLE.to_le_bytes());
        f.set_w1c(STATUS, &STATUS_W1C.to_le_bytes());
        f.set_wmask(CACHE_LINE, &[0xFF, 0xFF]);
        f.set_wmask(INTERRUPT_LINE, &[0xFF]);
        for o in 0x40..=0xFFu8 {
            f.wmask.0[o as usize] = 0xFF;
        }
        f
    }

    /// Set power-on bytes at `off` (and the current contents).
    pub fn set_initial(&mut self, off: u8, bytes: &[u8]) {
        self.initial.set(off, bytes);
        self.config.set(off, bytes);
    }
    /// Set the write mask of the bytes at `off`.
    pub fn set_wmask(&mut self, off: u8, mask: &[u8]) {
        self.wmask.set(off, mask);
    }
    /// Set the write-one-to-clear mask of the bytes at `off`.
    pub fn set_w1c(&mut self, off: u8, mask: &[u8]) {
        self.w1cmask.set(off, mask);
    }

    /// Declare BAR `n` (0-5). Sizes are rounded up to a power of two: 4 bytes to 64 KiB of
    /// I/O, 16 bytes to 2 GiB of memory.
    pub fn with_bar(mut self, n: usize, kind: BarKind) -> Self {
        if n >= 6 {
            return self;
        }
        let off = BAR0 + 4 * n as u8;
        let (kind, low, mask) = match kind {
            BarKind::Unused => (kind, 0, 0),
            BarKind::Io { size } => {
                let size = size.clamp(4, 1 << 16).next_power_of_two();
                (BarKind::Io { size }, 1, !(size - 1) & !3)
            }
            BarKind::Mem { size, prefetchable } => {
                let size = size.clamp(16, 1 << 31).next_power_of_two();
                let low = if prefetchable { 8 } else { 0 };
                (BarKind::Mem { size, prefetchable }, low, !(size - 1) & !15)
            }
        };
        self.bars[n] = kind;
        self.set_initial(off, &(low as u32).to_le_bytes());
        self.set_wmask(off, &mask.to_le_bytes());
        self
    }

    /// Declare an expansion ROM of `size` bytes (rounded up to a power of two, 2 KiB to
    /// 2 GiB); bit 0 of the ROM BAR enables decoding.
    pub fn with_rom(mut self, size: u32) -> Self {
        let size = size.clamp(2048, 1 << 31).next_power_of_two();
        self.rom_size = size;
        self.set_initial(ROM_BAR, &0u32.to_le_bytes());
        self.set_wmask(ROM_BAR, &((!(size - 1) & !0x7FF) | 1).to_le_bytes());
        self
    }

    /// Interrupt pin: 0 none, 1-4 INTA#-INTD#.
    pub fn with_interrupt_pin(mut self, pin: u8) -> Self {
        self.set_initial(INTERRUPT_PIN, &[pin.min(4)]);
        self
    }

    pub fn reset(&mut self) {
        self.config = self.initial.clone();
        self.intx = false;
    }

    pub fn vendor_id(&self) -> u16 {
        self.config.get16(VENDOR_ID)
    }
    pub fn device_id(&self) -> u16 {
        self.config.get16(DEVICE_ID)
    }
    pub fn command(&self) -> u16 {
        self.config.get16(COMMAND)
    }
    pub fn bar_kind(&self, n: usize) -> BarKind {
        self.bars.get(n).copied().unwrap_or(BarKind::Unused)
    }
    pub fn rom_size(&self) -> u32 {
        self.rom_size
    }

    /// Read `size` bytes (1, 2, 4) at `off`; bytes past the end read as 0xFF.
    pub fn read(&self, off: u8, size: u8) -> u32 {
        let mut v = 0u32;
        for i in 0..size.min(4) as usize {
            let b = self.config.0.get(off as usize + i).copied().unwrap_or(0xFF);
            v |= (b as u32) << (8 * i);
        }
        v
    }

    /// Write `size` bytes at `off` through the write and write-one-to-clear masks.
    pub fn write(&mut self, off: u8, size: u8, value: u32) {
        for i in 0..size.min(4) as usize {
            let o = off as usize + i;
            if o >= 256 {
                break;
            }
            let b = (value >> (8 * i)) as u8;
            let w = self.wmask.0[o];
            let c = self.w1cmask.0[o];
            self.config.0[o] = ((self.config.0[o] & !w) | (b & w)) & !(b & c);
        }
    }

    /// The address BAR `n` holds (type bits masked), whether or not decoding is enabled.
    pub fn bar_address(&self, n: usize) -> Option<u32> {
        let raw = self.config.get32(BAR0 + 4 * n.min(5) as u8);
        match self.bar_kind(n) {
            BarKind::Unused => None,
            BarKind::Io { size } => Some(raw & !(size - 1) & !3),
            BarKind::Mem { size, .. } => Some(raw & !(size - 1) & !15),
        }
    }

    /// The I/O base of BAR `n` when it is an I/O BAR, I/O decoding is on and the whole
    /// range lies in 1..=0xFFFF (an address of 0 counts as unassigned).
    pub fn io_bar(&self, n: usize) -> Option<u16> {
        let BarKind::Io { size } = self.bar_kind(n) else {
            return None;
        };
        let a = self.bar_address(n)?;
        if self.command() & CMD_IO == 0 || a == 0 || a as u64 + size as u64 > 0x1_0000 {
            return None;
        }
        Some(a as u16)
    }

    /// The memory base of BAR `n` when it is a memory BAR, memory decoding is on and the
    /// range is assigned (non-zero, not wrapping past 4 GiB).
    pub fn mem_bar(&self, n: usize) -> Option<u32> {
        let BarKind::Mem { size, .. } = self.bar_kind(n) else {
            return None;
        };
        let a = self.bar_address(n)?;
        if self.command() & CMD_MEMORY == 0 || a == 0 || a as u64 + size as u64 > 1 << 32 {
            return None;
        }
        Some(a)
    }

    /// The expansion ROM's base when the ROM BAR is enabled and memory decoding is on.
    pub fn rom_bar(&self) -> Option<u32> {
        if self.rom_size == 0 {
            return None;
        }
        let raw = self.config.get32(ROM_BAR);
        let a = raw & !(self.rom_size - 1) & !0x7FF;
        if raw & 1 == 0 || self.command() & CMD_MEMORY == 0 || a == 0 {
            return None;
        }
        if a as u64 + self.rom_size as u64 > 1 << 32 {
            return None;
        }
        Some(a)
    }

    /// Drive the function's INTx# output (status bit 3 follows it).
    pub fn set_intx(&mut self, level: bool) {
        self.intx = level;
        let st = self.config.get16(STATUS);
        let st = if level {
            st | STATUS_INTERRUPT
        } else {
            st & !STATUS_INTERRUPT
        };
        self.config.set(STATUS, &st.to_le_bytes());
    }

    /// INTx# as seen on the bus: the output unless the command register disables it.
    pub fn intx_level(&self) -> bool {
        self.intx && self.command() & CMD_INTX_DISABLE == 0
    }

    pub fn interrupt_pin(&self) -> u8 {
        self.config.0[INTERRUPT_PIN as usize]
    }
}

/// A function and where it sits on bus 0.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PciSlot {
    pub devfn: u8,
    pub function: PciFunction,
}

/// One region of the legacy BIOS area under PAM control.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PamRegion {
    pub base: u32,
    pub len: u32,
    /// Reads come from RAM (else from the ROM or MMIO underneath).
    pub read_ram: bool,
    /// Writes go to RAM (else they are dropped / go to what is underneath).
    pub write_ram: bool,
}

/// Configuration mechanism #1, bus 0, and the PIIX3 reset control register.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PciBus {
    /// CONFIG_ADDRESS latch.
    address: u32,
    /// Reset Control Register (0xCF9), bit 1 only.
    rcr: u8,
    reset_requested: bool,
    /// Functions sorted by devfn.
    slots: Vec<PciSlot>,
    /// PAM registers changed since the board last applied them.
    pam_dirty: bool,
    /// Some configuration register was written since the board last looked (BARs,
    /// PMBA, command registers: the port and memory decoders may have moved).
    config_changed: bool,
}

impl Default for PciBus {
    fn default() -> Self {
        Self::new()
    }
}

impl PciBus {
    /// Bus 0 with the i440FX host bridge and the PIIX3 functions (ISA, IDE, ACPI/PM).
    pub fn new() -> PciBus {
        let mut bus = PciBus {
            address: 0,
            rcr: 0,
            reset_requested: false,
            slots: Vec::new(),
            pam_dirty: true,
            config_changed: true,
        };
        bus.insert(HOST_BRIDGE_DEVFN, i440fx::host_bridge());
        bus.insert(ISA_BRIDGE_DEVFN, piix3::isa_bridge());
        bus.insert(IDE_DEVFN, piix3::ide_function());
        bus.insert(PM_DEVFN, piix3::pm_function());
        bus
    }

    fn insert(&mut self, devfn: u8, function: PciFunction) {
        let at = self.slots.partition_point(|s| s.devfn < devfn);
        self.slots.insert(at, PciSlot { devfn, function });
    }

    /// Add a function (e.g. VGA at `devfn(2, 0)`). Fails when the slot is taken. Function 0
    /// of a device must exist before other functions are seen by software, as on real buses.
    pub fn add_function(&mut self, devfn: u8, function: PciFunction) -> Result<(), String> {
        if self.function(devfn).is_some() {
            return Err(format!(
                "PCI slot {:02x}.{} is already occupied",
                devfn >> 3,
                devfn & 7
            ));
        }
        self.insert(devfn, function);
        Ok(())
    }

    pub fn function(&self, devfn: u8) -> Option<&PciFunction> {
        self.slots
            .binary_search_by_key(&devfn, |s| s.devfn)
            .ok()
            .map(|i| &self.slots[i].function)
    }

    pub fn function_mut(&mut self, devfn: u8) -> Option<&mut PciFunction> {
        match self.slots.binary_search_by_key(&devfn, |s| s.devfn) {
            Ok(i) => Some(&mut self.slots[i].function),
            Err(_) => None,
        }
    }

    pub fn slots(&self) -> &[PciSlot] {
        &self.slots
    }

    /// Whether software sees `devfn`: it exists, and function 0 of its device exists.
    fn visible(&self, devfn: u8) -> Option<&PciFunction> {
        self.function(devfn & !7)?;
        self.function(devfn)
    }

    /// Configuration read on bus 0 (all ones for an absent function).
    pub fn config_read(&self, devfn: u8, off: u8, size: u8) -> u32 {
        match self.visible(devfn) {
            Some(f) => f.read(off, size),
            None => super::bus::all_ones(size),
        }
    }

    /// Configuration write on bus 0 (dropped for an absent function).
    pub fn config_write(&mut self, devfn: u8, off: u8, size: u8, value: u32) {
        if self.visible(devfn).is_none() {
            return;
        }
        if devfn == HOST_BRIDGE_DEVFN {
            let end = off as u16 + size as u16;
            if (off as u16) < 0x60 && end > i440fx::PAM0 as u16 {
                self.pam_dirty = true;
            }
        }
        if let Some(f) = self.function_mut(devfn) {
            f.write(off, size, value);
        }
        self.config_changed = true;
    }

    /// Whether any configuration register was written since the last call (clears the
    /// flag). The board then re-reads the decoders: `IdeController::set_bm_base(
    /// bmide_base())`, `AcpiPm::set_base(pm_io_base())`, BARs of added functions.
    pub fn take_config_changed(&mut self) -> bool {
        std::mem::take(&mut self.config_changed)
    }

    /// Program the chipset the way SeaBIOS does, for boots without a BIOS (direct kernel
    /// boot): PIRQA-D routed to IRQ 10, 10, 11, 11; IDE decode enabled on both channels
    /// (IDETIM bit 15, which Linux's ata_piix checks), the bus-master block at `bmide_base`
    /// with I/O and bus mastering on; the PM block at `pm_base` (64-byte aligned) enabled,
    /// SCI on interrupt line 9. PAM registers are left alone. Returns the PIRQ routes: the
    /// board sets those IRQs to level-triggered in the ELCR. SeaBIOS itself uses
    /// [`piix3::SEABIOS_PM_BASE`] (0xB000; 0x600 with an fw_cfg `etc/table-loader`) and
    /// assigns BAR4 from 0xC000 upwards.
    pub fn firmware_setup(&mut self, bmide_base: u16, pm_base: u16) -> [u8; 4] {
        let routes = [10u8, 10, 11, 11];
        for (i, &irq) in routes.iter().enumerate() {
            self.config_write(ISA_BRIDGE_DEVFN, piix3::PIRQRC + i as u8, 1, irq as u32);
        }
        self.config_write(IDE_DEVFN, BAR0 + 16, 4, bmide_base as u32 | 1);
        self.config_write(IDE_DEVFN, piix3::IDETIM_PRI, 2, 0x8000);
        self.config_write(IDE_DEVFN, piix3::IDETIM_SEC, 2, 0x8000);
        self.config_write(IDE_DEVFN, COMMAND, 2, (CMD_IO | CMD_BUS_MASTER) as u32);
        self.config_write(PM_DEVFN, piix3::PMBA, 4, pm_base as u32 | 1);
        self.config_write(PM_DEVFN, piix3::PMREGMISC, 1, 1);
        self.config_write(PM_DEVFN, INTERRUPT_LINE, 1, 9);
        routes
    }

    /// The function and register CONFIG_ADDRESS points at, if enabled and on bus 0.
    fn target(&self) -> Option<(u8, u8)> {
        if self.address & 0x8000_0000 == 0 || (self.address >> 16) & 0xFF != 0 {
            return None;
        }
        Some(((self.address >> 8) as u8, self.address as u8 & 0xFC))
    }

    fn data_read_byte(&self, k: u8) -> u8 {
        match self.target() {
            Some((d, r)) => self.config_read(d, r + k, 1) as u8,
            None => 0xFF,
        }
    }

    // ---- decode helpers for the board ----

    pub fn io_bar(&self, devfn: u8, n: usize) -> Option<u16> {
        self.function(devfn)?.io_bar(n)
    }
    pub fn mem_bar(&self, devfn: u8, n: usize) -> Option<u32> {
        self.function(devfn)?.mem_bar(n)
    }
    pub fn rom_bar(&self, devfn: u8) -> Option<u32> {
        self.function(devfn)?.rom_bar()
    }
    pub fn bus_master(&self, devfn: u8) -> bool {
        self.function(devfn)
            .is_some_and(|f| f.command() & CMD_BUS_MASTER != 0)
    }

    /// Base of the IDE bus-master registers (16 ports; BAR4 of 01.1), when decoded.
    pub fn bmide_base(&self) -> Option<u16> {
        self.io_bar(IDE_DEVFN, 4)
    }

    /// Base of the ACPI/PM register block (64 ports; PMBA of 01.3), when enabled.
    pub fn pm_io_base(&self) -> Option<u16> {
        piix3::pm_io_base(self.function(PM_DEVFN)?)
    }

    /// The ISA IRQ PIRQ`n` (0-3 = A-D) is routed to, if routing is enabled.
    pub fn pirq_route(&self, n: usize) -> Option<u8> {
        piix3::pirq_route(self.function(ISA_BRIDGE_DEVFN)?, n)
    }

    /// Levels of PIRQA-D: the INTx outputs of all functions, swizzled by slot as on the
    /// PIIX3 (`pirq = (pin - 1 + device - 1) & 3`).
    pub fn pirq_levels(&self) -> [bool; 4] {
        let mut l = [false; 4];
        for s in &self.slots {
            let pin = s.function.interrupt_pin();
            if pin != 0 && s.function.intx_level() {
                l[piix3::pirq_for(s.devfn, pin) as usize] = true;
            }
        }
        l
    }

    // ---- PAM ----

    /// The shadow-RAM state of the 13 PAM regions.
    pub fn pam_regions(&self) -> [PamRegion; 13] {
        match self.function(HOST_BRIDGE_DEVFN) {
            Some(f) => i440fx::pam_regions(f),
            None => i440fx::pam_regions(&i440fx::host_bridge()),
        }
    }

    /// Whether PAM registers changed since the last call (clears the flag).
    pub fn take_pam_dirty(&mut self) -> bool {
        std::mem::take(&mut self.pam_dirty)
    }

    /// Apply all PAM regions to `mem` (after reset or snapshot restore).
    pub fn apply_pam(&self, mem: &mut PhysMem) {
        for r in self.pam_regions() {
            mem.set_shadow(r.base, r.len, r.read_ram, r.write_ram);
        }
    }

    /// Apply PAM changes, if any, to `mem` (from `Bus::sync_memory`).
    pub fn sync_memory(&mut self, mem: &mut PhysMem) {
        if self.take_pam_dirty() {
            self.apply_pam(mem);
        }
    }

    /// A CPU reset was requested through 0xCF9 since the last call.
    pub fn take_reset(&mut self) -> bool {
        std::mem::take(&mut self.reset_requested)
    }

    /// The Reset Control Register (bit 1: the next reset is a hard reset).
    pub fn reset_control(&self) -> u8 {
        self.rcr
    }
}

impl PortDevice for PciBus {
    fn port_ranges(&self) -> Vec<(u16, u16)> {
        vec![(CONFIG_ADDRESS_PORT, CONFIG_DATA_PORT + 3)]
    }

    /// Power-on state of every function; the memory map must then be re-applied
    /// ([`PciBus::sync_memory`] does it: reset marks PAM dirty).
    fn reset(&mut self) {
        self.address = 0;
        self.rcr = 0;
        self.reset_requested = false;
        for s in &mut self.slots {
            s.function.reset();
        }
        self.pam_dirty = true;
        self.config_changed = true;
    }

    fn io_read(&mut self, port: u16, size: u8, _t: Time) -> u32 {
        if port == CONFIG_ADDRESS_PORT && size == 4 {
            return self.address;
        }
        let mut v = 0u32;
        for i in 0..size.min(4) {
            let p = port.wrapping_add(i as u16);
            let b = match p {
                RESET_CONTROL_PORT => self.rcr,
                0xCFC..=0xCFF => self.data_read_byte((p - CONFIG_DATA_PORT) as u8),
                _ => 0xFF,
            };
            v |= (b as u32) << (8 * i);
        }
        v
    }

    fn io_write(&mut self, port: u16, size: u8, value: u32, _t: Time) {
        if port == CONFIG_ADDRESS_PORT && size == 4 {
            self.address = value & 0x80FF_FFFC;
            return;
        }
        if (CONFIG_DATA_PORT..=CONFIG_DATA_PORT + 3).contains(&port)
            && port as u32 + size as u32 <= CONFIG_DATA_PORT as u32 + 4
        {
            if let Some((d, r)) = self.target() {
                self.config_write(d, r + (port - CONFIG_DATA_PORT) as u8, size, value);
            }
            return;
        }
        for i in 0..size.min(4) {
            if port.wrapping_add(i as u16) == RESET_CONTROL_PORT {
                let b = (value >> (8 * i)) as u8;
                self.rcr = b & 0x02;
                if b & 0x04 != 0 {
                    self.reset_requested = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
