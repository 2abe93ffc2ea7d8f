//! Motorola MC146818 real-time clock with 114 bytes of CMOS RAM, at ports 0x70 (index,
//! bit 7 = NMI disable) and 0x71 (data).
//!
//! Time never comes from the host. The clock holds a wall-clock value (seconds since the
//! Unix epoch, configured by the board) that advances with virtual time: the divider
//! chain runs at 32768 Hz derived from the instruction count
//! (`Clock::ticks(n, RTC_HZ)`); an update happens every 32768 ticks, the periodic
//! interrupt every 2^(rate-1) ticks, and the UIP bit is set for the 8 ticks (244 µs)
//! before each update. At power-on the clock shows `base_unix_secs` at instruction 0 and
//! updates at every whole virtual second.
//!
//! - Registers 0-9 and the century byte 0x32 are computed on read from the clock, in BCD
//!   or binary and 12- or 24-hour format as register B says at the time of the read.
//!   The day-of-week register is, as on the chip, a counter of its own: writing it sets
//!   an offset from the weekday of the date (1 = Sunday by default).
//! - With SET = 1 updates stop, reads and writes go to a latch of the time registers,
//!   and clearing SET loads the latch into the clock (the guest sets the time) without
//!   disturbing the divider phase. Writes with SET = 0 take effect at once. Out-of-range
//!   fields are normalised (month clamped to 1-12, day to 1-31, overflowing seconds,
//!   minutes and hours carry); the range is years 0000-9999.
//! - Register A: divider (DV 000-010 run; 11x holds the chain in reset, and the first
//!   update comes 500 ms after it is released; other values stop the clock) and rate
//!   select; UIP. Register B: SET (which clears UIE), PIE, AIE, UIE, SQWE, DM, 24/12 and
//!   DSE (stored; daylight-saving switches are not applied). Register C: IRQF, PF, AF, UF,
//!   cleared on read. Register D: VRT (always 1).
//! - Interrupts on IRQ 8: PF/AF/UF are set by the events whether enabled or not; IRQF
//!   (and [`Cmos::irq_level`]) is PF·PIE + AF·AIE + UF·UIE, held until C is read.
//!   `next_deadline()` is the next event that would raise IRQF; the board calls
//!   `advance(t)` there and after port accesses, then drives IRQ 8 to `irq_level()`.
//! - [`Cmos::reset`] is the chip's RESET pin (tied to the system reset on a PC): it
//!   clears PIE, AIE, UIE, SQWE and the flags. The time and the RAM are battery backed
//!   and survive.

use serde::{de::Error as _, Deserialize, Deserializer, Serialize, Serializer};

use super::{PortDevice, Time};
use crate::clock::Clock;

pub const PORT_INDEX: u16 = 0x70;
pub const PORT_DATA: u16 = 0x71;
/// The divider chain's input clock.
pub const RTC_HZ: u64 = 32_768;

pub const REG_SECONDS: u8 = 0x00;
pub const REG_SECONDS_ALARM: u8 = 0x01;
pub const REG_MINUTES: u8 = 0x02;
pub const REG_MINUTES_ALARM: u8 = 0x03;
pub const REG_HOURS: u8 = 0x04;
pub const REG_HOURS_ALARM: u8 = 0x05;
pub const REG_DAY_OF_WEEK: u8 = 0x06;
pub const REG_DAY: u8 = 0x07;
pub const REG_MONTH: u8 = 0x08;
pub const REG_YEAR: u8 = 0x09;
pub const REG_A: u8 = 0x0A;
pub const REG_B: u8 = 0x0B;
pub const REG_C: u8 = 0x0C;
pub const REG_D: u8 = 0x0D;
/// The IBM PC century byte (BCD or binary like the other time registers).
pub const REG_CENTURY: u8 = 0x32;

pub const B_SET: u8 = 0x80;
pub const B_PIE: u8 = 0x40;
pub const B_AIE: u8 = 0x20;
pub const B_UIE: u8 = 0x10;
pub const B_SQWE: u8 = 0x08;
/// Data mode: 1 = binary, 0 = BCD.
pub const B_DM: u8 = 0x04;
/// 1 = 24-hour, 0 = 12-hour (bit 7 of the hour = PM).
pub const B_24H: u8 = 0x02;
pub const B_DSE: u8 = 0x01;
pub const C_IRQF: u8 = 0x80;
pub const C_PF: u8 = 0x40;
pub const C_AF: u8 = 0x20;
pub const C_UF: u8 = 0x10;
pub const D_VRT: u8 = 0x80;

const TICKS_PER_SEC: i64 = RTC_HZ as i64;
/// UIP is set this many ticks (244.14 µs) before each update.
const UIP_TICKS: i64 = 8;
/// 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z.
const MIN_SECS: i64 = -62_167_219_200;
const MAX_SECS: i64 = 253_402_300_799;

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// (year, month, day) of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + (m <= 2) as i64, m, d)
}

/// The 128 bytes of the chip (time registers 0-9 live in the clock, not here).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Ram([u8; 128]);

impl Serialize for Ram {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.as_slice().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Ram {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Vec::<u8>::deserialize(d)?;
        let n = v.len();
        v.try_into()
            .map(Ram)
            .map_err(|_| D::Error::custom(format!("CMOS RAM has {n} bytes, expected 128")))
    }
}

/// Boot devices in the nibble encoding of CMOS 0x3D/0x38 (QEMU and SeaBIOS).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootDevice {
    Floppy = 1,
    HardDisk = 2,
    CdRom = 3,
    Network = 4,
}

/// What [`Cmos::fill_pc_defaults`] writes besides the memory size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PcCmosOptions {
    /// RAM above this address is mapped above 4 GiB (the PCI hole starts here).
    pub below_4g_limit: u64,
    /// Up to three boot devices, first first.
    pub boot_order: Vec<BootDevice>,
    /// Number of CPUs (0x5F holds the count minus one).
    pub cpus: u8,
    /// Check the 0xAA55 signature of floppy boot sectors (0x38 bit 0 clear).
    pub floppy_boot_signature_check: bool,
    /// Equipment byte bit 2: a PS/2 mouse is present.
    pub ps2_mouse: bool,
}

impl Default for PcCmosOptions {
    fn default() -> Self {
        PcCmosOptions {
            below_4g_limit: 0xE000_0000,
            boot_order: vec![BootDevice::HardDisk, BootDevice::CdRom],
            cpus: 1,
            floppy_boot_signature_check: true,
            ps2_mouse: true,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cmos {
    ram: Ram,
    index: u8,
    nmi_disabled: bool,
    /// The time (seconds since the epoch) at divider tick `origin` while the clock runs;
    /// the held time while it is stopped.
    secs: i64,
    /// A divider tick at which an update happened (the phase of the chain).
    origin: i64,
    /// Day-of-week register minus the weekday of the date, modulo 7.
    dow_offset: u8,
    /// The time registers (0, 2, 4, 6, 7, 8, 9, 0x32) while SET = 1.
    set_latch: [u8; 8],
    clock: Clock,
    /// Divider tick up to which the interrupt flags are current.
    last_tick: i64,
}

/// Position in `set_latch` / `time_regs` of a time register.
fn time_slot(index: u8) -> Option<usize> {
    Some(match index {
        REG_SECONDS => 0,
        REG_MINUTES => 1,
        REG_HOURS => 2,
        REG_DAY_OF_WEEK => 3,
        REG_DAY => 4,
        REG_MONTH => 5,
        REG_YEAR => 6,
        REG_CENTURY => 7,
        _ => return None,
    })
}

impl Cmos {
    /// A clock that shows `base_unix_secs` at instruction count 0 (clamped to the years
    /// 0000-9999), 24-hour BCD, divider running at 1024 Hz periodic rate, RAM zero.
    pub fn new(base_unix_secs: i64, clock: Clock) -> Cmos {
        let mut ram = [0u8; 128];
        ram[REG_A as usize] = 0x26;
        ram[REG_B as usize] = B_24H;
        Cmos {
            ram: Ram(ram),
            index: 0,
            nmi_disabled: false,
            secs: base_unix_secs.clamp(MIN_SECS, MAX_SECS),
            origin: 0,
            dow_offset: 0,
            set_latch: [0; 8],
            clock,
            last_tick: 0,
        }
    }

    fn reg(&self, r: u8) -> u8 {
        self.ram.0[(r & 0x7F) as usize]
    }

    fn divider_running(&self) -> bool {
        (self.reg(REG_A) >> 4) & 7 <= 2
    }

    fn running(&self) -> bool {
        self.divider_running() && self.reg(REG_B) & B_SET == 0
    }

    /// Periodic interrupt period in divider ticks.
    fn periodic_ticks(&self) -> Option<i64> {
        match self.reg(REG_A) & 0x0F {
            0 => None,
            rs @ (1 | 2) => Some(1 << (rs + 6)),
            rs => Some(1 << (rs - 1)),
        }
    }

    fn tick(&self, t: Time) -> i64 {
        (t.clock.ticks(t.now, RTC_HZ).min(i64::MAX as u64) as i64).max(self.last_tick)
    }

    /// Number of whole seconds of the divider since `origin` at `tick`.
    fn seconds_since_origin(&self, tick: i64) -> i64 {
        (tick as i128 - self.origin as i128).div_euclid(TICKS_PER_SEC as i128) as i64
    }

    /// The clock's time at divider tick `tick`.
    fn wall(&self, tick: i64) -> i64 {
        if self.running() {
            self.secs
                .saturating_add(self.seconds_since_origin(tick))
                .clamp(MIN_SECS, MAX_SECS)
        } else {
            self.secs.clamp(MIN_SECS, MAX_SECS)
        }
    }

    /// The last update boundary at or before `tick`.
    fn last_boundary(&self, tick: i64) -> i64 {
        self.origin.saturating_add(
            self.seconds_since_origin(tick)
                .saturating_mul(TICKS_PER_SEC),
        )
    }

    fn binary(&self) -> bool {
        self.reg(REG_B) & B_DM != 0
    }

    fn enc(&self, v: i64) -> u8 {
        let v = v.rem_euclid(100) as u8;
        if self.binary() {
            v
        } else {
            ((v / 10) << 4) | (v % 10)
        }
    }

    fn dec(&self, b: u8) -> i64 {
        if self.binary() {
            b as i64
        } else {
            (b >> 4) as i64 * 10 + (b & 0x0F) as i64
        }
    }

    fn enc_hour(&self, h: i64) -> u8 {
        if self.reg(REG_B) & B_24H != 0 {
            self.enc(h)
        } else {
            let h12 = match h % 12 {
                0 => 12,
                x => x,
            };
            self.enc(h12) | if h >= 12 { 0x80 } else { 0 }
        }
    }

    fn dec_hour(&self, b: u8) -> i64 {
        if self.reg(REG_B) & B_24H != 0 {
            self.dec(b)
        } else {
            self.dec(b & 0x7F) % 12 + if b & 0x80 != 0 { 12 } else { 0 }
        }
    }

    /// The time registers for `secs` in the current format.
    fn time_regs(&self, secs: i64) -> [u8; 8] {
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        let weekday = (days + 4).rem_euclid(7); // 1970-01-01 was a Thursday
        [
            self.enc(sod % 60),
            self.enc(sod / 60 % 60),
            self.enc_hour(sod / 3600),
            self.enc((weekday + self.dow_offset as i64) % 7 + 1),
            self.enc(d),
            self.enc(m),
            self.enc(y % 100),
            self.enc(y / 100),
        ]
    }

    /// Load the clock from time registers (current format) at divider tick `tick`.
    fn load_time(&mut self, regs: &[u8; 8], tick: i64) {
        let year = self.dec(regs[7]) * 100 + self.dec(regs[6]);
        let days = days_from_civil(
            year,
            self.dec(regs[5]).clamp(1, 12),
            self.dec(regs[4]).clamp(1, 31),
        );
        let secs = days * 86_400
            + self.dec_hour(regs[2]) * 3600
            + self.dec(regs[1]) * 60
            + self.dec(regs[0]);
        let secs = secs.clamp(MIN_SECS, MAX_SECS);
        let weekday = (secs.div_euclid(86_400) + 4).rem_euclid(7);
        self.dow_offset = (self.dec(regs[3]) - 1 - weekday).rem_euclid(7) as u8;
        if self.running() {
            self.origin = self.last_boundary(tick);
        }
        self.secs = secs;
    }

    /// Bring the interrupt flags up to divider tick `tick`.
    fn catch_up_tick(&mut self, tick: i64) {
        let (a, b) = (self.last_tick, tick);
        if b <= a {
            return;
        }
        let count = |period: i64| {
            let o = self.origin as i128;
            let p = period as i128;
            (b as i128 - o).div_euclid(p) - (a as i128 - o).div_euclid(p)
        };
        let mut flags = 0;
        if self.divider_running() && self.periodic_ticks().is_some_and(|p| count(p) > 0) {
            flags |= C_PF;
        }
        if self.running() && count(TICKS_PER_SEC) > 0 {
            flags |= C_UF;
            if self
                .next_alarm(self.wall(a))
                .is_some_and(|s| s <= self.wall(b))
            {
                flags |= C_AF;
            }
        }
        self.ram.0[REG_C as usize] |= flags;
        self.update_irqf();
        self.last_tick = b;
    }

    fn catch_up(&mut self, t: Time) -> i64 {
        self.clock = t.clock;
        let tick = self.tick(t);
        self.catch_up_tick(tick);
        tick
    }

    fn update_irqf(&mut self) {
        let c = self.reg(REG_C) & (C_PF | C_AF | C_UF);
        let irqf = if c & self.reg(REG_B) & (B_PIE | B_AIE | B_UIE) != 0 {
            C_IRQF
        } else {
            0
        };
        self.ram.0[REG_C as usize] = c | irqf;
    }

    /// An alarm register's value: `Ok(None)` = don't care (0xC0-0xFF), `Err` = can never
    /// match the time register.
    fn alarm_target(
        &self,
        byte: u8,
        range: i64,
        enc: impl Fn(i64) -> u8,
    ) -> Result<Option<i64>, ()> {
        if byte & 0xC0 == 0xC0 {
            return Ok(None);
        }
        (0..range).find(|&v| enc(v) == byte).map(Some).ok_or(())
    }

    /// The first time after `after` (seconds) that matches the alarm registers.
    fn next_alarm(&self, after: i64) -> Option<i64> {
        let s = self
            .alarm_target(self.reg(REG_SECONDS_ALARM), 60, |v| self.enc(v))
            .ok()?;
        let m = self
            .alarm_target(self.reg(REG_MINUTES_ALARM), 60, |v| self.enc(v))
            .ok()?;
        let h = self
            .alarm_target(self.reg(REG_HOURS_ALARM), 24, |v| self.enc_hour(v))
            .ok()?;
        // The first second of the day at or after `from` matching (h, m, s).
        let first_from = |from: i64| -> Option<i64> {
            let (fh, fm, fs) = (from / 3600, from / 60 % 60, from % 60);
            for hh in fh..24 {
                if h.is_some_and(|x| x != hh) {
                    continue;
                }
                let m0 = if hh == fh { fm } else { 0 };
                for mm in m0..60 {
                    if m.is_some_and(|x| x != mm) {
                        continue;
                    }
                    let s0 = if hh == fh && mm == fm { fs } else { 0 };
                    match s {
                        None => return Some(hh * 3600 + mm * 60 + s0),
                        Some(x) if x >= s0 => return Some(hh * 3600 + mm * 60 + x),
                        Some(_) => {}
                    }
                }
            }
            None
        };
        let sod = after.rem_euclid(86_400);
        let day = after - sod;
        let found = match first_from(sod + 1).filter(|_| sod + 1 < 86_400) {
            Some(x) => day + x,
            None => day + 86_400 + first_from(0)?,
        };
        (found <= MAX_SECS).then_some(found)
    }

    fn write_a(&mut self, v: u8, tick: i64) {
        let was_div = self.divider_running();
        let was_running = self.running();
        let w = self.wall(tick);
        self.ram.0[REG_A as usize] = v & 0x7F;
        if was_running && !self.running() {
            self.secs = w;
        }
        if !was_div && self.divider_running() {
            // Leaving divider reset: the first update is half a second later.
            self.origin = tick.saturating_sub(TICKS_PER_SEC / 2);
        }
    }

    fn write_b(&mut self, v: u8, tick: i64) {
        let old = self.reg(REG_B);
        let was_running = self.running();
        let w = self.wall(tick);
        let v = if v & B_SET != 0 { v & !B_UIE } else { v };
        self.ram.0[REG_B as usize] = v;
        if old & B_SET == 0 && v & B_SET != 0 {
            self.set_latch = self.time_regs(w);
            if was_running {
                self.secs = w;
            }
        } else if old & B_SET != 0 && v & B_SET == 0 {
            let regs = self.set_latch;
            self.load_time(&regs, tick);
        }
        self.update_irqf();
    }

    fn read_data(&mut self, tick: i64) -> u8 {
        let i = self.index;
        if let Some(slot) = time_slot(i) {
            return if self.reg(REG_B) & B_SET != 0 {
                self.set_latch[slot]
            } else {
                self.time_regs(self.wall(tick))[slot]
            };
        }
        match i {
            REG_A => {
                let next = self.last_boundary(tick).saturating_add(TICKS_PER_SEC);
                let uip = self.running() && next.saturating_sub(tick) <= UIP_TICKS;
                self.reg(REG_A) | if uip { 0x80 } else { 0 }
            }
            REG_C => std::mem::take(&mut self.ram.0[REG_C as usize]),
            REG_D => D_VRT,
            _ => self.reg(i),
        }
    }

    fn write_data(&mut self, v: u8, tick: i64) {
        let i = self.index;
        if let Some(slot) = time_slot(i) {
            if self.reg(REG_B) & B_SET != 0 {
                self.set_latch[slot] = v;
            } else {
                let mut regs = self.time_regs(self.wall(tick));
                regs[slot] = v;
                self.load_time(&regs, tick);
            }
            return;
        }
        match i {
            REG_A => self.write_a(v, tick),
            REG_B => self.write_b(v, tick),
            REG_C | REG_D => {}
            _ => self.ram.0[(i & 0x7F) as usize] = v,
        }
    }

    /// The IRQ 8 output (IRQF) as of the last `advance` or port access.
    pub fn irq_level(&self) -> bool {
        self.reg(REG_C) & C_IRQF != 0
    }

    /// Whether the last index write had bit 7 (NMI disable) set.
    pub fn nmi_disabled(&self) -> bool {
        self.nmi_disabled
    }

    /// The clock's time (seconds since the epoch) at `t`, as the registers show it.
    pub fn unix_time(&self, t: Time) -> i64 {
        self.wall(self.tick(t))
    }

    /// Write a byte of CMOS RAM (0x0E-0x7F) without side effects, for the board's
    /// configuration. The century byte 0x32 is a live register that follows the clock
    /// (set the date through the constructor), so it and the clock registers 0x00-0x0D
    /// are not written here.
    pub fn set_nvram(&mut self, index: u8, value: u8) {
        if (0x0E..0x80).contains(&index) && index != REG_CENTURY {
            self.ram.0[index as usize] = value;
        }
    }

    /// Raw CMOS RAM byte (0 for indices above 0x7F). Clock registers read their stored
    /// value, not the time: use the ports for that.
    pub fn nvram(&self, index: u8) -> u8 {
        self.ram.0.get(index as usize).copied().unwrap_or(0)
    }

    /// Recompute the standard checksum: the 16-bit sum of 0x10-0x2D, big-endian at
    /// 0x2E (high) and 0x2F (low).
    pub fn update_checksum(&mut self) {
        let sum: u16 = self.ram.0[0x10..=0x2D].iter().map(|&b| b as u16).sum();
        self.ram.0[0x2E] = (sum >> 8) as u8;
        self.ram.0[0x2F] = sum as u8;
    }

    /// Fill the configuration bytes a PC BIOS (SeaBIOS without fw_cfg, classic BIOSes,
    /// DOS-era software) reads, in QEMU's layout:
    ///
    /// | bytes | contents |
    /// |---|---|
    /// | 0x10 | floppy drive types: none |
    /// | 0x14 | equipment: math coprocessor, PS/2 mouse (if set), VGA, no floppies |
    /// | 0x15-0x16 | base memory in KiB: 640 |
    /// | 0x17-0x18, 0x30-0x31 | KiB of RAM from 1 MiB up to the 4 GiB split (max 65535) |
    /// | 0x34-0x35 | 64 KiB blocks from 16 MiB up to the split (max 65535) |
    /// | 0x5B-0x5D | 64 KiB blocks above 4 GiB |
    /// | 0x3D | first (low nibble) and second boot device |
    /// | 0x38 | third boot device (high nibble); bit 0 = skip the floppy signature check |
    /// | 0x5F | number of CPUs minus one |
    /// | 0x2E-0x2F | checksum of 0x10-0x2D |
    ///
    /// `ram_bytes` is the whole guest RAM; the part above `opts.below_4g_limit` is
    /// counted above 4 GiB. The century (0x32) follows the clock.
    pub fn fill_pc_defaults(&mut self, ram_bytes: u64, opts: &PcCmosOptions) {
        const MIB: u64 = 1 << 20;
        let below = ram_bytes.min(opts.below_4g_limit);
        let above = ram_bytes - below;
        fn set16(c: &mut Cmos, at: u8, v: u64) {
            let v = v.min(0xFFFF) as u16;
            c.set_nvram(at, v as u8);
            c.set_nvram(at + 1, (v >> 8) as u8);
        }
        self.set_nvram(0x10, 0);
        self.set_nvram(0x14, 0x02 | if opts.ps2_mouse { 0x04 } else { 0 });
        set16(self, 0x15, 640);
        let ext_kib = below.saturating_sub(MIB) / 1024;
        set16(self, 0x17, ext_kib);
        set16(self, 0x30, ext_kib);
        set16(self, 0x34, below.saturating_sub(16 * MIB) / 65_536);
        let high = (above / 65_536).min(0xFF_FFFF);
        self.set_nvram(0x5B, high as u8);
        self.set_nvram(0x5C, (high >> 8) as u8);
        self.set_nvram(0x5D, (high >> 16) as u8);
        let boot = |i: usize| opts.boot_order.get(i).map_or(0, |&d| d as u8);
        self.set_nvram(0x3D, (boot(1) << 4) | boot(0));
        let no_sig_check = !opts.floppy_boot_signature_check as u8;
        self.set_nvram(0x38, (boot(2) << 4) | no_sig_check);
        self.set_nvram(0x5F, opts.cpus.max(1) - 1);
        self.update_checksum();
    }
}

impl PortDevice for Cmos {
    fn port_ranges(&self) -> Vec<(u16, u16)> {
        vec![(PORT_INDEX, PORT_DATA)]
    }

    /// The RESET pin: PIE, AIE, UIE, SQWE and the flags are cleared; time, format, RAM,
    /// the index and the NMI mask are kept.
    fn reset(&mut self) {
        self.ram.0[REG_B as usize] &= !(B_PIE | B_AIE | B_UIE | B_SQWE);
        self.ram.0[REG_C as usize] = 0;
    }

    /// Byte accesses; a wider access is split over consecutive ports. The index port is
    /// write-only and reads as 0xFF.
    fn io_read(&mut self, port: u16, size: u8, t: Time) -> u32 {
        let tick = self.catch_up(t);
        let mut v = 0u32;
        for i in 0..size.clamp(1, 4) {
            let b = match port.wrapping_add(i as u16) {
                PORT_DATA => self.read_data(tick),
                _ => 0xFF,
            };
            v |= (b as u32) << (8 * i);
        }
        v
    }

    fn io_write(&mut self, port: u16, size: u8, value: u32, t: Time) {
        let tick = self.catch_up(t);
        for i in 0..size.clamp(1, 4) {
            let b = (value >> (8 * i)) as u8;
            match port.wrapping_add(i as u16) {
                PORT_INDEX => {
                    self.index = b & 0x7F;
                    self.nmi_disabled = b & 0x80 != 0;
                }
                PORT_DATA => self.write_data(b, tick),
                _ => {}
            }
        }
    }

    /// The next periodic, update or alarm event that would raise IRQF (none while IRQF
    /// is already set: only a read of register C can change the line then).
    fn next_deadline(&self) -> Option<u64> {
        if self.irq_level() {
            return None;
        }
        let a = self.last_tick;
        let b = self.reg(REG_B);
        let next_multiple = |period: i64| {
            let k = (a as i128 - self.origin as i128).div_euclid(period as i128) + 1;
            self.origin as i128 + k * period as i128
        };
        let mut best: Option<i128> = None;
        let mut consider = |x: i128| best = Some(best.map_or(x, |b| b.min(x)));
        if b & B_PIE != 0 && self.divider_running() {
            if let Some(p) = self.periodic_ticks() {
                consider(next_multiple(p));
            }
        }
        if self.running() {
            if b & B_UIE != 0 {
                consider(next_multiple(TICKS_PER_SEC));
            }
            if b & B_AIE != 0 {
                if let Some(s) = self.next_alarm(self.wall(a)) {
                    consider(
                        self.origin as i128
                            + (s as i128 - self.secs as i128) * TICKS_PER_SEC as i128,
                    );
                }
            }
        }
        let tick = best?.clamp(0, u64::MAX as i128) as u64;
        Some(self.clock.icount_at_ticks(tick, RTC_HZ))
    }

    fn advance(&mut self, t: Time) {
        self.catch_up(t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IPS: u64 = crate::clock::DEFAULT_IPS;

    fn t(n: u64) -> Time {
        Time::new(n, Clock::default())
    }

    /// Instruction count at which `ms` milliseconds of virtual time have passed.
    fn ms(ms: u64) -> u64 {
        IPS / 1000 * ms
    }

    fn rd(c: &mut Cmos, index: u8, n: u64) -> u8 {
        c.io_write(PORT_INDEX, 1, index as u32, t(n));
        c.io_read(PORT_DATA, 1, t(n)) as u8
    }

    fn wr(c: &mut Cmos, index: u8, v: u8, n: u64) {
        c.io_write(PORT_INDEX, 1, index as u32, t(n));
        c.io_write(PORT_DATA, 1, v as u32, t(n));
    }

    /// sec, min, hour, day of week, day, month, year, century.
    fn regs(c: &mut Cmos, n: u64) -> [u8; 8] {
        [0x00, 0x02, 0x04, 0x06, 0x07, 0x08, 0x09, 0x32].map(|i| rd(c, i, n))
    }

    const LEAP_DAY: i64 = 1_709_210_096; // 2024-02-29 12:34:56 UTC, a Thursday

    #[test]
    fn calendar_round_trip() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(0, 1, 1) * 86_400, MIN_SECS);
        assert_eq!(days_from_civil(9999, 12, 31) * 86_400 + 86_399, MAX_SECS);
        assert_eq!(days_from_civil(2024, 2, 29) * 86_400, LEAP_DAY - 45_296);
        for z in (-800_000..3_000_000).step_by(997) {
            let (y, m, d) = civil_from_days(z);
            assert_eq!(days_from_civil(y, m, d), z);
        }
    }

    #[test]
    fn bcd_24h_on_a_leap_day() {
        let mut c = Cmos::new(LEAP_DAY, Clock::default());
        assert_eq!(
            regs(&mut c, 0),
            [0x56, 0x34, 0x12, 0x05, 0x29, 0x02, 0x24, 0x20]
        );
        assert_eq!(rd(&mut c, REG_SECONDS, IPS * 3 + 5), 0x59);
        assert_eq!(rd(&mut c, REG_MINUTES, IPS * 4), 0x35);
        assert_eq!(rd(&mut c, REG_SECONDS, IPS * 4), 0x00);
        assert_eq!(rd(&mut c, REG_D, 0), 0x80);
    }

    #[test]
    fn binary_and_12_hour_formats() {
        let mut c = Cmos::new(LEAP_DAY, Clock::default());
        wr(&mut c, REG_B, B_DM | B_24H, 0);
        assert_eq!(regs(&mut c, 0), [56, 34, 12, 5, 29, 2, 24, 20]);
        wr(&mut c, REG_B, 0, 0); // BCD, 12-hour
        assert_eq!(rd(&mut c, REG_HOURS, 0), 0x92, "12 PM");
        let mut c = Cmos::new(LEAP_DAY + 3600, Clock::default());
        wr(&mut c, REG_B, 0, 0);
        assert_eq!(rd(&mut c, REG_HOURS, 0), 0x81, "1 PM");
        wr(&mut c, REG_B, B_DM, 0);
        assert_eq!(rd(&mut c, REG_HOURS, 0), 0x81);
        let mut c = Cmos::new(LEAP_DAY - 12 * 3600, Clock::default());
        wr(&mut c, REG_B, 0, 0);
        assert_eq!(rd(&mut c, REG_HOURS, 0), 0x12, "12 AM");
        assert_eq!(rd(&mut c, REG_MINUTES, 0), 0x34);
        let mut c = Cmos::new(LEAP_DAY - 3 * 3600, Clock::default());
        wr(&mut c, REG_B, B_DM, 0);
        assert_eq!(rd(&mut c, REG_HOURS, 0), 9, "9 AM binary");
    }

    #[test]
    fn century_and_leap_years_roll_over() {
        // 1999-12-31 23:59:59 -> 2000-01-01 00:00:00, a Saturday.
        let mut c = Cmos::new(946_684_799, Clock::default());
        assert_eq!(
            regs(&mut c, 0),
            [0x59, 0x59, 0x23, 0x06, 0x31, 0x12, 0x99, 0x19]
        );
        assert_eq!(
            regs(&mut c, IPS),
            [0x00, 0x00, 0x00, 0x07, 0x01, 0x01, 0x00, 0x20]
        );
        // 2000 is a leap year; 2100 is not.
        let mut c = Cmos::new(951_782_399, Clock::default());
        assert_eq!(&regs(&mut c, IPS)[4..], [0x29, 0x02, 0x00, 0x20]);
        let mut c = Cmos::new(4_107_542_399, Clock::default());
        assert_eq!(&regs(&mut c, IPS)[3..], [0x02, 0x01, 0x03, 0x00, 0x21]);
    }

    #[test]
    fn uip_is_set_for_244us_before_each_update() {
        let c0 = Clock::default();
        let mut c = Cmos::new(LEAP_DAY, c0);
        let update = c0.icount_at_ticks(RTC_HZ, RTC_HZ);
        let uip_from = c0.icount_at_ticks(RTC_HZ - 8, RTC_HZ);
        assert_eq!(uip_from, IPS - 24_414); // 8 / 32768 s = 24414.06 instructions
        assert_eq!(rd(&mut c, REG_A, uip_from - 1), 0x26);
        assert_eq!(rd(&mut c, REG_A, uip_from), 0xA6);
        assert_eq!(rd(&mut c, REG_SECONDS, update - 1), 0x56);
        assert_eq!(rd(&mut c, REG_A, update - 1), 0xA6);
        assert_eq!(rd(&mut c, REG_A, update), 0x26);
        assert_eq!(rd(&mut c, REG_SECONDS, update), 0x57);
        // No UIP while SET holds the clock.
        wr(&mut c, REG_B, B_SET | B_24H, 2 * IPS - 10);
        assert_eq!(rd(&mut c, REG_A, 2 * IPS - 10), 0x26);
    }

    /// Count IRQ 8 assertions the way the board does: run to each deadline, advance,
    /// and let the "handler" read register C.
    fn irqs_until(c: &mut Cmos, end: u64) -> u32 {
        let mut n = 0;
        while let Some(d) = c.next_deadline().filter(|&d| d <= end) {
            c.advance(t(d));
            if c.irq_level() {
                n += 1;
                let flags = rd(c, REG_C, d);
                assert_ne!(flags & C_IRQF, 0);
                assert!(!c.irq_level());
            }
        }
        n
    }

    #[test]
    fn periodic_interrupt_rates() {
        for (rate, hz) in [
            (6u8, 1024),
            (3, 8192),
            (15, 2),
            (1, 256),
            (2, 128),
            (9, 128),
        ] {
            let mut c = Cmos::new(LEAP_DAY, Clock::default());
            wr(&mut c, REG_A, 0x20 | rate, 0);
            wr(&mut c, REG_B, B_PIE | B_24H, 0);
            assert_eq!(irqs_until(&mut c, IPS), hz, "rate {rate}");
        }
        // Rate 0 and PIE off: no interrupts, but PF is still set by the events.
        let mut c = Cmos::new(LEAP_DAY, Clock::default());
        wr(&mut c, REG_A, 0x20, 0);
        wr(&mut c, REG_B, B_PIE | B_24H, 0);
        assert_eq!(c.next_deadline(), None);
        wr(&mut c, REG_A, 0x26, 0);
        wr(&mut c, REG_B, B_24H, 0);
        assert_eq!(c.next_deadline(), None);
        assert_eq!(rd(&mut c, REG_C, ms(2)), C_PF);
        assert!(!c.irq_level());
        // Enabling PIE with PF pending raises IRQF at once.
        c.advance(t(ms(3)));
        wr(&mut c, REG_B, B_PIE | B_24H, ms(3));
        assert!(c.irq_level());
    }

    #[test]
    fn update_ended_interrupt_and_clear_on_read() {
        let mut c = Cmos::new(LEAP_DAY, Clock::default());
        wr(&mut c, REG_A, 0x20, 0);
        wr(&mut c, REG_B, B_UIE | B_24H, 0);
        assert_eq!(c.next_deadline(), Some(IPS));
        c.advance(t(IPS - 1));
        assert!(!c.irq_level());
        c.advance(t(IPS));
        assert!(c.irq_level());
        assert_eq!(c.next_deadline(), None, "IRQF held until C is read");
        assert_eq!(rd(&mut c, REG_C, IPS + 5), C_IRQF | C_UF);
        assert_eq!(rd(&mut c, REG_C, IPS + 6), 0);
        assert!(!c.irq_level());
        assert_eq!(c.next_deadline(), Some(2 * IPS));
        assert_eq!(irqs_until(&mut c, 10 * IPS), 9);
    }

    #[test]
    fn alarm_interrupts() {
        let mut c = Cmos::new(LEAP_DAY, Clock::default()); // 12:34:56
        wr(&mut c, REG_A, 0x20, 0);
        wr(&mut c, REG_HOURS_ALARM, 0x12, 0);
        wr(&mut c, REG_MINUTES_ALARM, 0x35, 0);
        wr(&mut c, REG_SECONDS_ALARM, 0x10, 0);
        wr(&mut c, REG_B, B_AIE | B_24H, 0);
        assert_eq!(c.next_deadline(), Some(14 * IPS));
        c.advance(t(14 * IPS));
        assert!(c.irq_level());
        assert_eq!(rd(&mut c, REG_C, 14 * IPS), C_IRQF | C_AF | C_UF);
        // The same time tomorrow.
        assert_eq!(c.next_deadline(), Some((14 + 86_400) * IPS));
        // Hours and minutes "don't care", seconds 0: every minute on the minute.
        wr(&mut c, REG_HOURS_ALARM, 0xC0, 15 * IPS);
        wr(&mut c, REG_MINUTES_ALARM, 0xFF, 15 * IPS);
        wr(&mut c, REG_SECONDS_ALARM, 0x00, 15 * IPS);
        assert_eq!(irqs_until(&mut c, (4 + 180) * IPS), 3);
        // All "don't care": every second.
        wr(&mut c, REG_SECONDS_ALARM, 0xC0, 200 * IPS);
        assert_eq!(irqs_until(&mut c, 210 * IPS), 10);
        // An alarm that can never match (BCD 0x60 seconds).
        wr(&mut c, REG_SECONDS_ALARM, 0x60, 210 * IPS);
        assert_eq!(c.next_deadline(), None);
        // AF is set by a match even with AIE off, discovered when C is read.
        let mut c = Cmos::new(LEAP_DAY, Clock::default());
        wr(&mut c, REG_A, 0x20, 0);
        wr(&mut c, REG_SECONDS_ALARM, 0x58, 0);
        wr(&mut c, REG_MINUTES_ALARM, 0xC0, 0);
        wr(&mut c, REG_HOURS_ALARM, 0xC0, 0);
        assert_eq!(rd(&mut c, REG_C, IPS), C_UF);
        assert_eq!(rd(&mut c, REG_C, 30 * IPS), C_UF | C_AF);
    }

    #[test]
    fn alarm_in_12_hour_binary_format() {
        let mut c = Cmos::new(LEAP_DAY, Clock::default()); // 12:34:56 = 12 PM
        wr(&mut c, REG_A, 0x20, 0);
        wr(&mut c, REG_B, B_DM | B_AIE, 0);
        wr(&mut c, REG_HOURS_ALARM, 0x81, 0); // 1 PM
        wr(&mut c, REG_MINUTES_ALARM, 0, 0);
        wr(&mut c, REG_SECONDS_ALARM, 0, 0);
        assert_eq!(c.next_deadline(), Some((3600 - 34 * 60 - 56) * IPS));
    }

    #[test]
    fn set_mode_sets_the_clock_and_keeps_the_phase() {
        let mut c = Cmos::new(LEAP_DAY, Clock::default());
        let n = IPS * 10 + ms(300); // 12:35:06.3
        wr(&mut c, REG_B, B_SET | B_UIE | B_24H, n);
        assert_eq!(rd(&mut c, REG_B, n), B_SET | B_24H, "SET clears UIE");
        // Frozen while SET.
        assert_eq!(rd(&mut c, REG_SECONDS, n + 5 * IPS), 0x06);
        for (i, v) in [
            (REG_SECONDS, 0x00),
            (REG_MINUTES, 0x00),
            (REG_HOURS, 0x08),
            (REG_DAY, 0x31),
            (REG_MONTH, 0x12),
            (REG_YEAR, 0x99),
            (REG_CENTURY, 0x19),
            (REG_DAY_OF_WEEK, 0x06),
        ] {
            wr(&mut c, i, v, n + 5 * IPS);
        }
        assert_eq!(rd(&mut c, REG_MONTH, n + 5 * IPS), 0x12);
        let m = n + 5 * IPS + ms(500); // 12:35:16.8 of the old phase
        wr(&mut c, REG_B, B_24H, m);
        assert_eq!(c.unix_time(t(m)), 946_627_200);
        assert_eq!(
            regs(&mut c, m),
            [0x00, 0x00, 0x08, 0x06, 0x31, 0x12, 0x99, 0x19]
        );
        // The divider phase is kept: the next update is at the next whole second.
        assert_eq!(rd(&mut c, REG_SECONDS, 16 * IPS - 1), 0x00);
        assert_eq!(rd(&mut c, REG_SECONDS, 16 * IPS), 0x01);
        // Writing a register without SET takes effect at once.
        wr(&mut c, REG_HOURS, 0x23, 17 * IPS);
        assert_eq!(c.unix_time(t(17 * IPS)), 946_627_200 + 15 * 3600 + 2);
        assert_eq!(rd(&mut c, REG_SECONDS, 18 * IPS), 0x03);
    }

    #[test]
    fn divider_reset_stops_the_clock_and_restarts_half_a_second_later() {
        let mut c = Cmos::new(LEAP_DAY, Clock::default());
        wr(&mut c, REG_A, 0x70, ms(2500));
        assert_eq!(rd(&mut c, REG_SECONDS, 100 * IPS), 0x58);
        wr(&mut c, REG_A, 0x26, 100 * IPS);
        assert_eq!(rd(&mut c, REG_SECONDS, 100 * IPS + ms(500) - 1), 0x58);
        assert_eq!(rd(&mut c, REG_SECONDS, 100 * IPS + ms(500)), 0x59);
        assert_eq!(rd(&mut c, REG_SECONDS, 101 * IPS + ms(500)), 0x00);
    }

    #[test]
    fn index_port_and_nmi_mask() {
        let mut c = Cmos::new(0, Clock::default());
        c.io_write(PORT_INDEX, 1, 0x80 | 0x40, t(0));
        assert!(c.nmi_disabled());
        assert_eq!(c.io_read(PORT_INDEX, 1, t(0)), 0xFF);
        c.io_write(PORT_DATA, 1, 0x5A, t(0));
        assert_eq!(c.nvram(0x40), 0x5A);
        c.io_write(PORT_INDEX, 1, 0x40, t(0));
        assert!(!c.nmi_disabled());
        assert_eq!(c.io_read(PORT_DATA, 1, t(0)), 0x5A);
        // Word access: index then data.
        c.io_write(PORT_INDEX, 2, 0xA5_41, t(0));
        assert_eq!(c.nvram(0x41), 0xA5);
        // Read-only C and D.
        wr(&mut c, REG_C, 0xFF, 0);
        wr(&mut c, REG_D, 0x00, 0);
        assert_eq!(rd(&mut c, REG_C, 0), 0);
        assert_eq!(rd(&mut c, REG_D, 0), 0x80);
    }

    #[test]
    fn pc_defaults_layout() {
        let mut c = Cmos::new(0, Clock::default());
        let opts = PcCmosOptions {
            boot_order: vec![BootDevice::CdRom, BootDevice::HardDisk, BootDevice::Floppy],
            cpus: 2,
            ..PcCmosOptions::default()
        };
        c.fill_pc_defaults(32 << 20, &opts);
        let b = |i| c.nvram(i);
        assert_eq!(b(0x14), 0x06);
        assert_eq!((b(0x15), b(0x16)), (0x80, 0x02));
        assert_eq!((b(0x17), b(0x18)), (0x00, 0x7C)); // 31 MiB = 0x7C00 KiB
        assert_eq!((b(0x30), b(0x31)), (0x00, 0x7C));
        assert_eq!((b(0x34), b(0x35)), (0x00, 0x01)); // 16 MiB / 64 KiB = 0x100
        assert_eq!((b(0x5B), b(0x5C), b(0x5D)), (0, 0, 0));
        assert_eq!(b(0x3D), 0x23);
        assert_eq!(b(0x38), 0x10);
        assert_eq!(b(0x5F), 1);
        let sum: u16 = (0x10..=0x2D).map(|i| c.nvram(i) as u16).sum();
        assert_eq!(u16::from_be_bytes([b(0x2E), b(0x2F)]), sum);
        c.fill_pc_defaults(128 << 20, &opts);
        let b = |i| c.nvram(i);
        assert_eq!((b(0x17), b(0x18)), (0xFF, 0xFF), "capped at 65535 KiB");
        assert_eq!((b(0x34), b(0x35)), (0x00, 0x07)); // 112 MiB / 64 KiB = 0x700
                                                      // 5 GiB: 3.5 GiB below the hole, 1.5 GiB above 4 GiB.
        c.fill_pc_defaults(5 << 30, &PcCmosOptions::default());
        let b = |i| c.nvram(i);
        assert_eq!((b(0x17), b(0x18)), (0xFF, 0xFF));
        assert_eq!((b(0x34), b(0x35)), (0x00, 0xDF)); // (3.5 GiB - 16 MiB) / 64 KiB
        assert_eq!((b(0x5B), b(0x5C), b(0x5D)), (0x00, 0x60, 0x00));
        assert_eq!(b(0x3D), 0x32);
        assert_eq!(b(0x38), 0x00);
        // The century byte stays live and the clock registers are not RAM.
        c.set_nvram(REG_CENTURY, 0x55);
        c.set_nvram(REG_B, 0xFF);
        assert_eq!(rd(&mut c, REG_CENTURY, 0), 0x19);
        assert_eq!(rd(&mut c, REG_B, 0), B_24H);
    }

    #[test]
    fn reset_clears_enables_and_flags_only() {
        let mut c = Cmos::new(LEAP_DAY, Clock::default());
        wr(&mut c, REG_B, B_PIE | B_UIE | B_SQWE | B_24H | B_DM, 0);
        c.advance(t(IPS));
        assert!(c.irq_level());
        c.set_nvram(0x20, 7);
        c.reset();
        assert!(!c.irq_level());
        assert_eq!(rd(&mut c, REG_B, IPS), B_24H | B_DM);
        assert_eq!(c.nvram(0x20), 7);
        assert_eq!(rd(&mut c, REG_SECONDS, IPS), 57);
    }
}
