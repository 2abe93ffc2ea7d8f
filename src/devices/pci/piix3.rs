//! Intel PIIX3 (82371SB) functions on PCI device 1, plus a PIIX4-style (82371AB) ACPI/PM
//! function, as QEMU's `pc` machine has them:
//!
//! - **01.0 ISA bridge** (8086:7000, multi-function header): PIRQ route control registers
//!   PIRQRC[A:D] at 0x60-0x63 (bit 7 = routing disabled, bits 3:0 = ISA IRQ; reset 0x80).
//!   SeaBIOS routes PIRQA-D to IRQ 10, 10, 11, 11 and sets those IRQs to level-triggered in
//!   the ELCR (which lives in the PIC model). The other registers (IORT, XBCS, TOM, MBIRQ,
//!   MBDMA, APICBASE, SMI control...) hold their datasheet reset values and read back what
//!   was written.
//! - **01.1 IDE** (8086:7010, class 01/01/80: both channels in legacy compatibility mode at
//!   0x1F0-0x1F7/0x3F6 IRQ 14 and 0x170-0x177/0x376 IRQ 15, bus-master capable). BAR4 is
//!   the 16-byte bus-master I/O block; IDETIM (0x40, 0x42) and SIDETIM (0x44) are stored.
//!   The IDE channels themselves are `devices::ide`.
//! - **01.3 ACPI/PM** (8086:7113 rev 03): PMBA (0x40, I/O base, bits 15:6; bit 0 reads 1)
//!   enabled by PMREGMISC (0x80) bit 0; the register block is [`AcpiPm`]. SMBus registers
//!   (SMBBA 0x90, SMBHSTCFG 0xD2) are stored; no SMBus controller answers behind them.

use serde::{Deserialize, Serialize};

use super::{
    BarKind, PciFunction, CMD_BUS_MASTER, CMD_IO, CMD_MEMORY, COMMAND, STATUS,
    STATUS_DEVSEL_MEDIUM, STATUS_FAST_BACK,
};
use crate::clock::Clock;
use crate::devices::{PortDevice, Time};

pub const VENDOR: u16 = 0x8086;
pub const ISA_DEVICE: u16 = 0x7000;
pub const IDE_DEVICE: u16 = 0x7010;
pub const PM_DEVICE: u16 = 0x7113;

/// PIRQRC[A]; B-D follow.
pub const PIRQRC: u8 = 0x60;
/// Primary and secondary IDE timing registers (16 bits each); bit 15 = decode enable.
pub const IDETIM_PRI: u8 = 0x40;
pub const IDETIM_SEC: u8 = 0x42;
pub const SIDETIM: u8 = 0x44;
/// PM I/O base address register of 01.3.
pub const PMBA: u8 = 0x40;
/// PMREGMISC: bit 0 enables the PM I/O space.
pub const PMREGMISC: u8 = 0x80;
pub const SMBBA: u8 = 0x90;
pub const SMBHSTCFG: u8 = 0xD2;

/// The PIIX3 ISA bridge (01.0).
pub fn isa_bridge() -> PciFunction {
    let mut f = PciFunction::new(VENDOR, ISA_DEVICE, 0x00, 0x06_01_00, 0x80);
    f.set_initial(
        COMMAND,
        &(CMD_IO | CMD_MEMORY | CMD_BUS_MASTER).to_le_bytes(),
    );
    f.set_wmask(COMMAND, &[0x08, 0x00]); // special cycle enable only
    f.set_initial(STATUS, &STATUS_DEVSEL_MEDIUM.to_le_bytes());
    // Datasheet reset values.
    f.set_initial(0x4C, &[0x4D]); // IORT
    f.set_initial(0x4E, &[0x03]); // XBCS
    for i in 0..4 {
        f.set_initial(PIRQRC + i, &[0x80]);
        f.set_wmask(PIRQRC + i, &[0x8F]);
    }
    f.set_initial(0x69, &[0x02]); // TOM
    f.set_initial(0x70, &[0x80, 0x80]); // MBIRQ0/1
    f.set_initial(0x76, &[0x0C, 0x0C]); // MBDMA0/1
    f.set_initial(0x78, &[0x02, 0x00]); // PCSC
    f.set_initial(0xA0, &[0x08]); // SMICNTL
    f.set_initial(0xA8, &[0x0F]); // FTMR
    f
}

/// The PIIX3 IDE function (01.1).
pub fn ide_function() -> PciFunction {
    let mut f = PciFunction::new(VENDOR, IDE_DEVICE, 0x00, 0x01_01_80, 0x00)
        .with_bar(4, BarKind::Io { size: 16 });
    f.set_initial(
        STATUS,
        &(STATUS_FAST_BACK | STATUS_DEVSEL_MEDIUM).to_le_bytes(),
    );
    f.set_wmask(COMMAND, &[0x05, 0x00]); // I/O space, bus master
    f
}

/// The ACPI/PM function (01.3).
pub fn pm_function() -> PciFunction {
    let mut f = PciFunction::new(VENDOR, PM_DEVICE, 0x03, 0x06_80_00, 0x00).with_interrupt_pin(1);
    f.set_wmask(COMMAND, &[0x01, 0x00]);
    f.set_initial(
        STATUS,
        &(STATUS_FAST_BACK | STATUS_DEVSEL_MEDIUM).to_le_bytes(),
    );
    f.set_initial(PMBA, &[0x01, 0x00, 0x00, 0x00]);
    f.set_wmask(PMBA, &[0xC0, 0xFF, 0x00, 0x00]);
    f.set_wmask(PMREGMISC, &[0x01]);
    f.set_initial(SMBBA, &[0x01, 0x00, 0x00, 0x00]);
    f.set_wmask(SMBBA, &[0xF0, 0xFF, 0x00, 0x00]);
    f
}

/// The ISA IRQ PIRQ`n` is routed to (`None` when disabled or not a routable IRQ).
pub fn pirq_route(isa: &PciFunction, n: usize) -> Option<u8> {
    let v = *isa.config.0.get(PIRQRC as usize + n.min(3))?;
    let irq = v & 0x0F;
    if v & 0x80 != 0 || !matches!(irq, 3..=7 | 9..=12 | 14 | 15) {
        return None;
    }
    Some(irq)
}

/// The PIRQ line (0-3) a function's interrupt pin (1-4) reaches: the PIIX3 rotates by slot.
pub fn pirq_for(devfn: u8, pin: u8) -> u8 {
    let slot = devfn >> 3;
    (pin.wrapping_sub(1).wrapping_add(slot).wrapping_sub(1)) & 3
}

/// The PM register block's base, when PMREGMISC enables it.
pub fn pm_io_base(pm: &PciFunction) -> Option<u16> {
    if pm.config.0[PMREGMISC as usize] & 1 == 0 {
        return None;
    }
    let base = (pm.config.get32(PMBA) & 0xFFC0) as u16;
    (base != 0).then_some(base)
}

// ---------------------------------------------------------------------------------------
// The ACPI power-management register block.

/// Where SeaBIOS puts the PM block on this chipset (`acpi_pm_base`): 0xB000, moved to
/// [`SEABIOS_PM_BASE_TABLE_LOADER`] when fw_cfg offers `etc/table-loader` (QEMU-style ACPI
/// tables). A board that boots both with SeaBIOS and without a BIOS should use the base
/// SeaBIOS will choose in `PciBus::firmware_setup` and in its FADT.
pub const SEABIOS_PM_BASE: u16 = 0xB000;
pub const SEABIOS_PM_BASE_TABLE_LOADER: u16 = 0x0600;
/// PM timer frequency.
pub const PM_TIMER_HZ: u64 = 3_579_545;
/// Size of the PM I/O block.
pub const PM_IO_LEN: u16 = 64;
/// APM control (SMI command) and status ports of the PIIX4.
pub const APM_CNT_PORT: u16 = 0xB2;
pub const APM_STS_PORT: u16 = 0xB3;
/// Values a FADT may name as ACPI_ENABLE / ACPI_DISABLE for SMI_CMD = 0xB2 (as QEMU's).
pub const ACPI_ENABLE: u8 = 0xF1;
pub const ACPI_DISABLE: u8 = 0xF0;
/// SLP_TYP that powers the machine off (S5): the PIIX4's "soft off" encoding 000b, which
/// is what the DSDT's `\_S5` package says (`firmware::acpi::S5_SLP_TYP`) and what SeaBIOS's
/// APM power-off writes (PM1_CNT = 0x2000).
pub const S5_SLP_TYP: u8 = 0;

/// Register offsets in the PM block.
pub const PM1_STS: u16 = 0x00;
pub const PM1_EN: u16 = 0x02;
pub const PM1_CNT: u16 = 0x04;
pub const PM_TMR: u16 = 0x08;
/// General-purpose event status/enable (PIIX4 GPSTS/GPEN): a 4-byte GPE0 block.
pub const GPE0_STS: u16 = 0x0C;
pub const GPE0_EN: u16 = 0x0E;

pub const TMR_STS: u16 = 1 << 0;
pub const BM_STS: u16 = 1 << 4;
pub const GBL_STS: u16 = 1 << 5;
pub const PWRBTN_STS: u16 = 1 << 8;
pub const RTC_STS: u16 = 1 << 10;
pub const WAK_STS: u16 = 1 << 15;
/// PM1 events that raise SCI when enabled (the same bits in PM1_EN).
const PM1_SCI_EVENTS: u16 = TMR_STS | GBL_STS | PWRBTN_STS | RTC_STS;
const PM1_STS_BITS: u16 = TMR_STS | BM_STS | GBL_STS | PWRBTN_STS | RTC_STS | WAK_STS;

pub const SCI_EN: u16 = 1 << 0;
pub const BM_RLD: u16 = 1 << 1;
pub const GBL_RLS: u16 = 1 << 2;
pub const SLP_TYP_SHIFT: u16 = 10;
pub const SLP_EN: u16 = 1 << 13;

/// The PIIX4-style PM register block (at PMBA) and the APM control/status ports.
///
/// - PM1_STS (+0, write one to clear), PM1_EN (+2), PM1_CNT (+4: SCI_EN, BM_RLD, SLP_TYP;
///   GBL_RLS and SLP_EN are write-only). Writing SLP_EN with SLP_TYP = [`S5_SLP_TYP`]
///   requests power-off ([`AcpiPm::take_poweroff`]); other sleep types are ignored (no S1-S4).
/// - PM_TMR (+8): 24-bit counter at 3.579545 MHz of virtual time, read-only. TMR_STS is set
///   each time bit 23 changes; with TMR_EN it raises SCI (the device asks for a deadline).
/// - GPE0 status/enable (+0x0C/+0x0E), for a FADT GPE0_BLK of 4 bytes; nothing sets GPE
///   status bits yet.
/// - Other offsets (PCNTRL, GLBSTS, DEVCTL, GPO, ...) store what is written; P_LVL2/P_LVL3
///   (+0x14/+0x15) read 0 and do not enter C-states.
/// - SCI ([`AcpiPm::sci_level`], IRQ 9, level) = any enabled PM1 event or GPE, as QEMU.
/// - SCI_EN is set at reset: this machine has no SMM, so ACPI mode is always on (the FADT
///   has SMI_CMD = 0). Writes of [`ACPI_ENABLE`]/[`ACPI_DISABLE`] to port 0xB2 still set
///   and clear it, for firmware whose tables name 0xB2 as SMI_CMD.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcpiPm {
    /// The I/O base the board decodes (mirrors PMBA/PMREGMISC; see [`AcpiPm::set_base`]).
    base: Option<u16>,
    pm1_sts: u16,
    pm1_en: u16,
    pm1_cnt: u16,
    gpe_sts: u16,
    gpe_en: u16,
    /// Remaining registers of the 64-byte block, stored as written.
    pub(crate) misc: Vec<u8>,
    apm_cnt: u8,
    apm_sts: u8,
    /// Bit-23 period of the PM timer at the last update (`None` until first seen).
    tmr_period: Option<u64>,
    /// Virtual speed last seen (to turn the timer deadline into an instruction count).
    ips: u64,
    poweroff: bool,
}

impl Default for AcpiPm {
    fn default() -> Self {
        Self::new()
    }
}

impl AcpiPm {
    pub fn new() -> AcpiPm {
        AcpiPm {
            base: None,
            pm1_sts: 0,
            pm1_en: 0,
            pm1_cnt: SCI_EN,
            gpe_sts: 0,
            gpe_en: 0,
            misc: vec![0; PM_IO_LEN as usize],
            apm_cnt: 0,
            apm_sts: 0,
            tmr_period: None,
            ips: Clock::default().ips,
            poweroff: false,
        }
    }

    /// Where the block is decoded (`PciBus::pm_io_base()`); the board calls this after
    /// PCI configuration writes and after restore.
    pub fn set_base(&mut self, base: Option<u16>) {
        self.base = base;
    }
    pub fn base(&self) -> Option<u16> {
        self.base
    }

    /// The PM timer value (24 bits) at `t`.
    pub fn timer(t: Time) -> u32 {
        (t.clock.ticks(t.now, PM_TIMER_HZ) & 0xFF_FFFF) as u32
    }

    fn update(&mut self, t: Time) {
        self.ips = t.clock.ips;
        let period = t.clock.ticks(t.now, PM_TIMER_HZ) >> 23;
        match self.tmr_period {
            Some(p) if p != period => {
                self.pm1_sts |= TMR_STS;
                self.tmr_period = Some(period);
            }
            None => self.tmr_period = Some(period),
            _ => {}
        }
    }

    /// The SCI output (IRQ 9, level-triggered, active high).
    pub fn sci_level(&self) -> bool {
        self.pm1_sts & self.pm1_en & PM1_SCI_EVENTS != 0 || self.gpe_sts & self.gpe_en != 0
    }

    /// Whether the guest requested S5 (soft off) since the last call.
    pub fn take_poweroff(&mut self) -> bool {
        std::mem::take(&mut self.poweroff)
    }

    /// A press of the power button: PWRBTN_STS, SCI if enabled (the guest's ACPI daemon
    /// then shuts down cleanly).
    pub fn press_power_button(&mut self) {
        self.pm1_sts |= PWRBTN_STS;
    }

    /// SCI_EN (ACPI mode).
    pub fn sci_enabled(&self) -> bool {
        self.pm1_cnt & SCI_EN != 0
    }

    fn reg_byte(&self, off: u16, tmr: u32) -> u8 {
        match off {
            0..=1 => (self.pm1_sts >> (8 * off)) as u8,
            2..=3 => (self.pm1_en >> (8 * (off - 2))) as u8,
            4..=5 => ((self.pm1_cnt & !(GBL_RLS | SLP_EN)) >> (8 * (off - 4))) as u8,
            6..=7 => 0,
            8..=11 => (tmr >> (8 * (off - 8))) as u8,
            12..=13 => (self.gpe_sts >> (8 * (off - 12))) as u8,
            14..=15 => (self.gpe_en >> (8 * (off - 14))) as u8,
            0x14 | 0x15 => 0,
            _ => self.misc.get(off as usize).copied().unwrap_or(0xFF),
        }
    }

    fn write_reg_byte(&mut self, off: u16, b: u8) {
        let b16 = b as u16;
        match off {
            0..=1 => self.pm1_sts &= !((b16 << (8 * off)) & PM1_STS_BITS),
            2..=3 => {
                let sh = 8 * (off - 2);
                self.pm1_en = (self.pm1_en & !(0xFF << sh)) | (b16 << sh);
                self.pm1_en &= PM1_SCI_EVENTS;
            }
            4..=5 => {
                let sh = 8 * (off - 4);
                let v = (self.pm1_cnt & !(0xFF << sh)) | (b16 << sh);
                self.pm1_cnt = v & !(GBL_RLS | SLP_EN);
                if v & SLP_EN != 0 && off == 5 {
                    let typ = ((v >> SLP_TYP_SHIFT) & 7) as u8;
                    if typ == S5_SLP_TYP {
                        self.poweroff = true;
                    }
                }
            }
            6..=11 => {}
            12..=13 => self.gpe_sts &= !(b16 << (8 * (off - 12))),
            14..=15 => {
                let sh = 8 * (off - 14);
                self.gpe_en = (self.gpe_en & !(0xFF << sh)) | (b16 << sh);
            }
            0x14 | 0x15 => {}
            _ => {
                if let Some(x) = self.misc.get_mut(off as usize) {
                    *x = b;
                }
            }
        }
    }

    /// Read `size` bytes at `off` within the block.
    pub fn read_reg(&mut self, off: u16, size: u8, t: Time) -> u32 {
        self.update(t);
        let tmr = Self::timer(t);
        let mut v = 0;
        for i in 0..size.min(4) as u16 {
            let o = off.wrapping_add(i);
            let b = if o < PM_IO_LEN {
                self.reg_byte(o, tmr)
            } else {
                0xFF
            };
            v |= (b as u32) << (8 * i);
        }
        v
    }

    /// Write `size` bytes at `off` within the block.
    pub fn write_reg(&mut self, off: u16, size: u8, value: u32, t: Time) {
        self.update(t);
        for i in 0..size.min(4) as u16 {
            let o = off.wrapping_add(i);
            if o < PM_IO_LEN {
                self.write_reg_byte(o, (value >> (8 * i)) as u8);
            }
        }
    }

    fn apm_write(&mut self, port: u16, b: u8) {
        if port == APM_CNT_PORT {
            self.apm_cnt = b;
            match b {
                ACPI_ENABLE => self.pm1_cnt |= SCI_EN,
                ACPI_DISABLE => self.pm1_cnt &= !SCI_EN,
                _ => {}
            }
        } else {
            self.apm_sts = b;
        }
    }
}

impl PortDevice for AcpiPm {
    fn port_ranges(&self) -> Vec<(u16, u16)> {
        let mut r = vec![(APM_CNT_PORT, APM_STS_PORT)];
        if let Some(b) = self.base {
            r.push((b, b.saturating_add(PM_IO_LEN - 1)));
        }
        r
    }

    /// Power-on state; the decode base is kept (it mirrors PCI configuration, which the
    /// board resets and re-applies with [`AcpiPm::set_base`]).
    fn reset(&mut self) {
        let base = self.base;
        let ips = self.ips;
        *self = AcpiPm::new();
        self.base = base;
        self.ips = ips;
    }

    fn io_read(&mut self, port: u16, size: u8, t: Time) -> u32 {
        match port {
            APM_CNT_PORT if size == 1 => self.apm_cnt as u32,
            APM_STS_PORT if size == 1 => self.apm_sts as u32,
            APM_CNT_PORT if size == 2 => self.apm_cnt as u32 | (self.apm_sts as u32) << 8,
            _ => match self.base {
                Some(b) if port.wrapping_sub(b) < PM_IO_LEN => self.read_reg(port - b, size, t),
                _ => crate::devices::bus::all_ones(size),
            },
        }
    }

    fn io_write(&mut self, port: u16, size: u8, value: u32, t: Time) {
        match port {
            APM_CNT_PORT | APM_STS_PORT => {
                for i in 0..size.min(4) as u16 {
                    let p = port.wrapping_add(i);
                    if p == APM_CNT_PORT || p == APM_STS_PORT {
                        self.apm_write(p, (value >> (8 * i)) as u8);
                    }
                }
            }
            _ => {
                if let Some(b) = self.base {
                    if port.wrapping_sub(b) < PM_IO_LEN {
                        self.write_reg(port - b, size, value, t);
                    }
                }
            }
        }
    }

    /// With TMR_EN set and TMR_STS clear: the instruction count at which bit 23 of the PM
    /// timer next changes.
    fn next_deadline(&self) -> Option<u64> {
        if self.pm1_en & TMR_STS == 0 || self.pm1_sts & TMR_STS != 0 {
            return None;
        }
        let p = self.tmr_period?;
        let clock = Clock::new(self.ips);
        Some(clock.icount_at_ticks(p.saturating_add(1) << 23, PM_TIMER_HZ))
    }

    fn advance(&mut self, t: Time) {
        self.update(t);
    }
}
