//! The PC board: every device, the port and MMIO decoding, interrupt wiring, and the
//! device side of virtual time (deadlines and `advance`).
//!
//! Interrupt wiring (as on a PIIX3 PC): ISA IRQ n drives PIC line n and IOAPIC pin n,
//! except the PIT (IRQ 0), which drives IOAPIC pin 2 (the MADT says so). The CPU's INTR
//! comes from the local APIC, or from the PIC through LINT0 in virtual-wire mode while
//! the APIC is disabled or LINT0 is in ExtINT mode. Line levels are recomputed after
//! every device access and every `advance`, so an interrupt becomes visible at the first
//! instruction boundary after the event that raised it.

use std::io::Write;

use super::pc::PcConfig;
use crate::clock::Clock;
use crate::devices::bus::{all_ones, Bus, StopRequest};
use crate::devices::cmos::{Cmos, PcCmosOptions};
use crate::devices::debug::DebugPorts;
use crate::devices::fw_cfg::FwCfg;
use crate::devices::i8042::I8042;
use crate::devices::ide::{IdeController, IdeDrives};
use crate::devices::ioapic::{self, IoApic};
use crate::devices::lapic::{self, LocalApic};
use crate::devices::pci::piix3::{AcpiPm, APM_CNT_PORT, APM_STS_PORT};
use crate::devices::pci::PciBus;
use crate::devices::pic::Pic8259Pair;
use crate::devices::pit::Pit8254;
use crate::devices::sysctl::{self, SystemControlA};
use crate::devices::uart::{self, Uart16550};
use crate::devices::vga::{self, Vga};
use crate::devices::{PortDevice, Time};
use crate::firmware::acpi::PmPorts;
use crate::mmu::PhysMem;

/// SeaBIOS's debug output port (QEMU's "debugcon" at 0x402).
pub const FIRMWARE_DEBUG_PORT: u16 = 0x402;
/// ISA IRQ lines the board tracks.
pub(crate) const ISA_IRQS: usize = 16;

pub struct PcBoard {
    pub clock: Clock,
    /// Virtual time of the access being handled (set by the CPU before each access).
    pub now: u64,
    pub pic: Pic8259Pair,
    pub pit: Pit8254,
    pub cmos: Cmos,
    pub kbc: I8042,
    pub com1: Uart16550,
    /// COM2, COM3, COM4 (not connected to the host).
    pub com2_4: [Uart16550; 3],
    pub lapic: LocalApic,
    pub ioapic: IoApic,
    pub pci: PciBus,
    pub pm: AcpiPm,
    pub ide: IdeController,
    /// The disks behind the IDE controller (host attachments, not guest state).
    pub drives: IdeDrives,
    pub fw_cfg: FwCfg,
    pub vga: Vga,
    pub port92: SystemControlA,
    pub debug: DebugPorts,
    firmware_debug: Option<Box<dyn Write>>,
    /// Current level of each ISA IRQ line as last given to the PIC and IOAPIC.
    pub(crate) irq_levels: [bool; ISA_IRQS],
    pub(crate) reset_requested: bool,
}

impl std::fmt::Debug for PcBoard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcBoard").field("now", &self.now).finish()
    }
}

/// IOAPIC pin of ISA IRQ `n`.
fn ioapic_pin(irq: usize) -> usize {
    if irq == 0 {
        2
    } else {
        irq
    }
}

impl PcBoard {
    pub fn new(config: &PcConfig, fw_cfg: FwCfg, drives: IdeDrives) -> PcBoard {
        let mut pci = PciBus::new();
        if let Some(pm) = pci.function_mut(crate::devices::pci::PM_DEVFN) {
            // This board has no System Management Mode. As QEMU does with smm=off, mark
            // the APMC SMI enable (DEVACTB bit 25) as already set at power-on, so firmware
            // does not try to relocate SMBASE through an SMI that cannot happen.
            pm.set_initial(0x5B, &[0x02]);
        }
        PcBoard {
            clock: config.clock,
            now: 0,
            pic: Pic8259Pair::new(),
            pit: Pit8254::new(config.clock),
            cmos: {
                let mut c = Cmos::new(config.rtc_base, config.clock);
                c.fill_pc_defaults(config.ram_size, &PcCmosOptions::default());
                c
            },
            kbc: I8042::new(),
            com1: Uart16550::new(uart::COM1_BASE),
            com2_4: [
                Uart16550::new(uart::COM2_BASE),
                Uart16550::new(uart::COM3_BASE),
                Uart16550::new(uart::COM4_BASE),
            ],
            lapic: LocalApic::new(0, lapic::DEFAULT_BUS_HZ),
            ioapic: IoApic::new(1),
            pci,
            pm: AcpiPm::new(),
            ide: IdeController::new(&drives),
            drives,
            fw_cfg,
            vga: Vga::new(),
            port92: SystemControlA::default(),
            debug: DebugPorts::new(
                Box::new(std::io::stdout()),
                Box::new(std::io::sink()),
                crate::devices::debug::LEGACY_POST_PORT,
            ),
            firmware_debug: if config.firmware_debug {
                Some(Box::new(std::io::stderr()))
            } else {
                None
            },
            irq_levels: [false; ISA_IRQS],
            reset_requested: false,
        }
    }

    /// The I/O base of the ACPI power-management block: where SeaBIOS programs the
    /// PIIX4 PMBA (and where direct kernel boot puts it), as the ACPI tables describe.
    pub const PM_BASE: u16 = 0x600;
    /// Where direct kernel boot puts the IDE bus-master block (SeaBIOS picks its own).
    pub const BMIDE_BASE: u16 = 0xC000;

    /// Program the edge/level control registers (direct boot does what firmware would).
    pub fn set_elcr(&mut self, mask: u16) {
        let t = self.time();
        self.pic
            .io_write(crate::devices::pic::ELCR_MASTER, 1, (mask & 0xFF) as u32, t);
        self.pic
            .io_write(crate::devices::pic::ELCR_SLAVE, 1, (mask >> 8) as u32, t);
    }

    pub fn pm_ports() -> PmPorts {
        PmPorts {
            pm1a_evt: Self::PM_BASE,
            pm1a_cnt: Self::PM_BASE + 4,
            pm_tmr: Self::PM_BASE + 8,
        }
    }

    fn time(&self) -> Time {
        Time::new(self.now, self.clock)
    }

    /// Device reset (the CPU's RESET line): power-on state, memory map restored.
    pub fn reset(&mut self, mem: &mut PhysMem) {
        self.pic.reset();
        self.pit.reset();
        self.cmos.reset();
        self.kbc.reset();
        self.com1.reset();
        self.com2_4.iter_mut().for_each(|u| u.reset());
        self.lapic.reset();
        self.ioapic.reset();
        self.pci.reset();
        self.pm.reset();
        self.pm.set_base(self.pci.pm_io_base());
        self.ide.reset();
        self.ide.set_bm_base(self.pci.bmide_base());
        self.fw_cfg.reset();
        self.vga.reset();
        self.port92 = SystemControlA::default();
        self.irq_levels = [false; ISA_IRQS];
        self.reset_requested = false;
        self.pci.apply_pam(mem);
        mem.set_a20(self.port92.a20() || self.kbc.a20());
    }

    /// The earliest instruction count at which a device must act.
    pub fn next_deadline(&self) -> Option<u64> {
        [
            self.pit.next_deadline(),
            self.cmos.next_deadline(),
            self.kbc.next_deadline(),
            self.lapic.next_deadline(),
            self.com1.next_deadline(),
            self.com2_4[0].next_deadline(),
            self.com2_4[1].next_deadline(),
            self.com2_4[2].next_deadline(),
            self.pm.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Let devices act on everything due at or before `now`.
    pub fn advance(&mut self, now: u64, mem: &mut PhysMem) {
        self.now = now;
        let t = self.time();
        self.pit.advance(t);
        self.cmos.advance(t);
        self.kbc.advance(t);
        self.lapic.advance(t);
        self.com1.advance(t);
        self.com2_4.iter_mut().for_each(|u| u.advance(t));
        self.pm.advance(t);
        self.update_irqs();
        self.sync_memory(mem);
    }

    /// Keep the local APIC's base MSR in step with the CPU's copy (WRMSR 0x1B).
    pub fn sync_apic_base(&mut self, msr: u64) {
        if self.lapic.base_msr() != msr {
            self.lapic.set_base_msr(msr);
        }
    }

    fn set_isa_irq(&mut self, irq: usize, level: bool) {
        if self.irq_levels[irq] != level {
            self.irq_levels[irq] = level;
            self.pic.set_irq(irq as u8, level);
            self.ioapic.set_irq(ioapic_pin(irq), level);
        }
    }

    /// Recompute the interrupt lines from the devices and deliver APIC messages.
    fn update_irqs(&mut self) {
        // The PIT's OUT0 rising edges: one pulse per poll carries them all (the PIC
        // latches one request per line).
        if self.pit.take_irq0_edges() > 0 {
            self.set_isa_irq(0, false);
            self.set_isa_irq(0, true);
            self.set_isa_irq(0, false);
        }
        let (kbd, mouse) = (self.kbc.irq1(), self.kbc.irq12());
        self.set_isa_irq(1, kbd);
        self.set_isa_irq(12, mouse);
        self.reset_requested |= self.kbc.take_reset_request();
        let rtc = self.cmos.irq_level();
        self.set_isa_irq(8, rtc);
        // COM1/COM3 share IRQ 4 and COM2/COM4 IRQ 3 (MCR.OUT2 gates each port's line).
        let irq4 = self.com1.irq_level() || self.com2_4[1].irq_level();
        let irq3 = self.com2_4[0].irq_level() || self.com2_4[2].irq_level();
        self.set_isa_irq(uart::COM1_IRQ as usize, irq4);
        self.set_isa_irq(uart::COM2_IRQ as usize, irq3);
        let (ide0, ide1) = (self.ide.irq_level(0), self.ide.irq_level(1));
        self.set_isa_irq(14, ide0);
        self.set_isa_irq(15, ide1);
        let sci = self.pm.sci_level();
        self.set_isa_irq(crate::firmware::acpi::SCI_IRQ as usize, sci);
        self.pump_apic();
    }

    /// Move IOAPIC messages to the local APIC and EOI broadcasts back, until quiet.
    fn pump_apic(&mut self) {
        loop {
            let msgs = self.ioapic.take_deliveries();
            let eois = self.lapic.take_eoi_broadcasts();
            if msgs.is_empty() && eois.is_empty() {
                break;
            }
            for m in msgs {
                self.lapic.receive(m);
            }
            for v in eois {
                self.ioapic.eoi(v);
            }
        }
    }

    fn pm_offset(&self, port: u16) -> Option<u16> {
        let base = self.pm.base()?;
        let off = port.checked_sub(base)?;
        (off < crate::devices::pci::piix3::PM_IO_LEN).then_some(off)
    }

    fn io_read_inner(&mut self, port: u16, size: u8) -> u32 {
        let t = self.time();
        match port {
            0x20..=0x21 | 0xA0..=0xA1 | 0x4D0..=0x4D1 => self.pic.io_read(port, size, t),
            0x40..=0x43 | 0x61 => self.pit.io_read(port, size, t),
            0x70..=0x71 => self.cmos.io_read(port, size, t),
            0x60 | 0x64 => self.kbc.io_read(port, size, t),
            uart::COM1_BASE..=0x3FF => self.com1.io_read(port, size, t),
            uart::COM2_BASE..=0x2FF => self.com2_4[0].io_read(port, size, t),
            uart::COM3_BASE..=0x3EF => self.com2_4[1].io_read(port, size, t),
            uart::COM4_BASE..=0x2EF => self.com2_4[2].io_read(port, size, t),
            0xCF8..=0xCFF => self.pci.io_read(port, size, t),
            0x1F0..=0x1F7 | 0x3F6 | 0x170..=0x177 | 0x376 => {
                self.ide.io_read(port, size, &mut self.drives)
            }
            APM_CNT_PORT..=APM_STS_PORT => self.pm.io_read(port, size, t),
            sysctl::PORT if size == 1 => self.port92.read() as u32,
            0x510..=0x511 => self.fw_cfg.io_read(port, size, t),
            0x3B0..=0x3DF | vga::VBE_INDEX_PORT..=0x1D0 => self.vga.io_read(port, size, t),
            0xE9 | 0xF4 | 0x80 => self.debug.io_read(port, size),
            _ if self.pm_offset(port).is_some() => self.pm.io_read(port, size, t),
            _ if self.bm_offset(port) => self.ide.io_read(port, size, &mut self.drives),
            _ => all_ones(size),
        }
    }

    fn io_write_inner(&mut self, port: u16, size: u8, value: u32) {
        let t = self.time();
        match port {
            0x20..=0x21 | 0xA0..=0xA1 | 0x4D0..=0x4D1 => self.pic.io_write(port, size, value, t),
            0x40..=0x43 | 0x61 => self.pit.io_write(port, size, value, t),
            0x70..=0x71 => self.cmos.io_write(port, size, value, t),
            0x60 | 0x64 => self.kbc.io_write(port, size, value, t),
            uart::COM1_BASE..=0x3FF => self.com1.io_write(port, size, value, t),
            uart::COM2_BASE..=0x2FF => self.com2_4[0].io_write(port, size, value, t),
            uart::COM3_BASE..=0x3EF => self.com2_4[1].io_write(port, size, value, t),
            uart::COM4_BASE..=0x2EF => self.com2_4[2].io_write(port, size, value, t),
            0xCF8..=0xCFF => {
                self.pci.io_write(port, size, value, t);
                if self.pci.take_config_changed() {
                    self.pm.set_base(self.pci.pm_io_base());
                    self.ide.set_bm_base(self.pci.bmide_base());
                }
                self.reset_requested |= self.pci.take_reset();
            }
            0x1F0..=0x1F7 | 0x3F6 | 0x170..=0x177 | 0x376 => {
                self.ide.io_write(port, size, value, &mut self.drives)
            }
            APM_CNT_PORT..=APM_STS_PORT => self.pm.io_write(port, size, value, t),
            sysctl::PORT if size == 1 => self.reset_requested |= self.port92.write(value as u8),
            0x510..=0x511 => self.fw_cfg.io_write(port, size, value, t),
            0x3B0..=0x3DF | vga::VBE_INDEX_PORT..=0x1D0 => self.vga.io_write(port, size, value, t),
            FIRMWARE_DEBUG_PORT => {
                if let Some(w) = self.firmware_debug.as_mut() {
                    let _ = w.write_all(&[value as u8]);
                }
            }
            0xE9 | 0xF4 | 0x80 => self.debug.io_write(port, size, value),
            _ if self.pm_offset(port).is_some() => self.pm.io_write(port, size, value, t),
            _ if self.bm_offset(port) => self.ide.io_write(port, size, value, &mut self.drives),
            _ => {}
        }
    }

    fn bm_offset(&self, port: u16) -> bool {
        self.ide
            .bm_base()
            .is_some_and(|b| port.wrapping_sub(b) < 16)
    }

    fn lapic_offset(&self, addr: u32) -> Option<u32> {
        let base = self.lapic.mmio_base()?;
        let off = addr.wrapping_sub(base);
        (off < 0x1000).then_some(off)
    }
}

impl Bus for PcBoard {
    fn set_time(&mut self, now: u64) {
        self.now = now;
    }

    fn io_read(&mut self, port: u16, size: u8) -> u32 {
        let v = self.io_read_inner(port, size);
        self.update_irqs();
        v
    }

    fn io_write(&mut self, port: u16, size: u8, value: u32) {
        self.io_write_inner(port, size, value);
        self.update_irqs();
    }

    fn mmio_read(&mut self, addr: u32, size: u8) -> u32 {
        let t = self.time();
        if let Some(off) = self.lapic_offset(addr) {
            let v = self.lapic.mmio_read(off, size, t);
            self.pump_apic();
            return v;
        }
        if addr.wrapping_sub(ioapic::DEFAULT_BASE) < 0x1000 {
            return self.ioapic.mmio_read(addr - ioapic::DEFAULT_BASE, size);
        }
        let mut v = 0;
        for i in 0..size as u32 {
            let a = addr.wrapping_add(i);
            let b = match a {
                0xA_0000..=0xB_FFFF => self.vga.mem_read(a),
                _ if a.wrapping_sub(vga::LFB_BASE) < vga::VRAM_SIZE as u32 => {
                    self.vga.lfb_read(a - vga::LFB_BASE)
                }
                _ => 0xFF,
            };
            v |= (b as u32) << (8 * i);
        }
        v
    }

    fn mmio_write(&mut self, addr: u32, size: u8, value: u32) {
        let t = self.time();
        if let Some(off) = self.lapic_offset(addr) {
            self.lapic.mmio_write(off, size, value, t);
            self.pump_apic();
            return;
        }
        if addr.wrapping_sub(ioapic::DEFAULT_BASE) < 0x1000 {
            self.ioapic
                .mmio_write(addr - ioapic::DEFAULT_BASE, size, value);
            self.pump_apic();
            return;
        }
        for i in 0..size as u32 {
            let a = addr.wrapping_add(i);
            let b = (value >> (8 * i)) as u8;
            match a {
                0xA_0000..=0xB_FFFF => self.vga.mem_write(a, b),
                _ if a.wrapping_sub(vga::LFB_BASE) < vga::VRAM_SIZE as u32 => {
                    self.vga.lfb_write(a - vga::LFB_BASE, b)
                }
                _ => {}
            }
        }
    }

    fn interrupt_pending(&self) -> bool {
        self.lapic.has_interrupt()
            || (self.pic.output() && (self.lapic.lint0_extint() || self.ioapic.extint_asserted()))
    }

    fn acknowledge_interrupt(&mut self) -> Option<u8> {
        let v = if self.lapic.has_interrupt() {
            Some(self.lapic.acknowledge())
        } else if self.pic.output() {
            Some(self.pic.acknowledge())
        } else {
            None
        };
        self.update_irqs();
        v
    }

    fn sync_memory(&mut self, mem: &mut PhysMem) {
        // The chipset ORs the two A20 sources (port 0x92 and the keyboard controller).
        mem.set_a20(self.port92.a20() || self.kbc.a20());
        self.pci.sync_memory(mem);
        if self.ide.dma_pending() && self.pci.bus_master(crate::devices::pci::IDE_DEVFN) {
            self.ide.run_dma(mem, &mut self.drives);
            self.update_irqs();
        }
    }

    fn next_event(&self) -> Option<u64> {
        self.next_deadline()
    }

    fn take_stop(&mut self) -> Option<StopRequest> {
        if std::mem::take(&mut self.reset_requested) {
            return Some(StopRequest::Reset);
        }
        if self.pm.take_poweroff() {
            return Some(StopRequest::PowerOff);
        }
        self.debug.take_stop()
    }
}
