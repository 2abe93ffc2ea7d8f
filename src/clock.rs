//! Virtual time.
//!
//! Guest-visible time is a function of `CpuState::icount` only: the count of retired
//! instructions plus the instructions the CPU "would have retired" while halted (the
//! machine fast-forwards the count to the next device deadline when the CPU waits in
//! HLT). A configured virtual speed (instructions per second) converts the count to
//! nanoseconds and device clocks. All arithmetic is integer (u128 intermediates), so
//! every host computes the same times.
//!
//! Nothing the guest can observe reads the host clock: RDTSC, the PIT, the RTC, the
//! local APIC timer, the ACPI PM timer and the UART's character times all derive from
//! the instruction count through a [`Clock`]. The RTC's wall-clock value at instruction 0
//! (its base, [`DEFAULT_RTC_BASE`] unless `--rtc-base` says otherwise) is part of the
//! machine configuration and stored in snapshots. Real-time pacing (`--realtime`) only
//! makes the console sleep so that virtual time does not run ahead of the wall clock; it
//! never feeds host time to the guest. There is no host-time mode: a guest that needs
//! the current date gets it once, as configuration (`--rtc-base now`).

use serde::{Deserialize, Serialize};

/// Default virtual speed: 100 million instructions per second ("100 MHz").
pub const DEFAULT_IPS: u64 = 100_000_000;

/// The RTC's default wall-clock time at instruction 0: 2024-01-01T00:00:00Z.
pub const DEFAULT_RTC_BASE: i64 = 1_704_067_200;

/// Parse an RTC base (seconds since the Unix epoch the guest's clock shows at
/// instruction 0): a number of seconds (`1704067200`, may be negative), a UTC date
/// `YYYY-MM-DD` or date and time `YYYY-MM-DDTHH:MM:SS` (optional trailing `Z`), or `now`,
/// which calls `host_now` (the only place host time can enter a machine: as its
/// configuration, once). Years 0000-9999 (the RTC's range).
pub fn parse_rtc_base(s: &str, host_now: impl FnOnce() -> i64) -> Result<i64, String> {
    const MIN: i64 = -62_167_219_200; // 0000-01-01T00:00:00Z
    const MAX: i64 = 253_402_300_799; // 9999-12-31T23:59:59Z
    let bad = || {
        format!(
            "invalid RTC base '{s}': use seconds since 1970-01-01 UTC, YYYY-MM-DD[THH:MM:SS[Z]] (UTC) or now"
        )
    };
    let secs = if s == "now" {
        host_now()
    } else if let Ok(n) = s.parse::<i64>() {
        n
    } else {
        let s2 = s.strip_suffix('Z').unwrap_or(s);
        let (date, time) = match s2.split_once('T') {
            Some((d, t)) => (d, Some(t)),
            None => (s2, None),
        };
        let field = |t: &str, len: usize| -> Option<i64> {
            (t.len() == len && t.bytes().all(|b| b.is_ascii_digit()))
                .then(|| t.parse().ok())
                .flatten()
        };
        let d: Vec<&str> = date.split('-').collect();
        let [y, mo, dd] = d[..] else {
            return Err(bad());
        };
        let (y, mo, dd) = (
            field(y, 4).ok_or_else(bad)?,
            field(mo, 2).ok_or_else(bad)?,
            field(dd, 2).ok_or_else(bad)?,
        );
        let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
        let mdays = [
            31,
            if leap { 29 } else { 28 },
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ];
        if !(1..=12).contains(&mo) || dd < 1 || dd > mdays[mo as usize - 1] {
            return Err(bad());
        }
        let tod = match time {
            None => 0,
            Some(t) => {
                let f: Vec<&str> = t.split(':').collect();
                let [h, mi, se] = f[..] else {
                    return Err(bad());
                };
                let (h, mi, se) = (
                    field(h, 2).ok_or_else(bad)?,
                    field(mi, 2).ok_or_else(bad)?,
                    field(se, 2).ok_or_else(bad)?,
                );
                if h > 23 || mi > 59 || se > 59 {
                    return Err(bad());
                }
                h * 3600 + mi * 60 + se
            }
        };
        crate::devices::cmos::days_from_civil(y, mo, dd) * 86_400 + tod
    };
    if !(MIN..=MAX).contains(&secs) {
        return Err(format!(
            "RTC base {secs} is outside the RTC's years 0000-9999"
        ));
    }
    Ok(secs)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clock {
    /// Virtual instructions per second.
    pub ips: u64,
}

impl Default for Clock {
    fn default() -> Self {
        Clock { ips: DEFAULT_IPS }
    }
}

impl Clock {
    pub fn new(ips: u64) -> Clock {
        Clock { ips: ips.max(1) }
    }

    /// Nanoseconds of virtual time at instruction count `icount`.
    pub fn ns(&self, icount: u64) -> u64 {
        (icount as u128 * 1_000_000_000 / self.ips as u128) as u64
    }

    /// The first instruction count at which `ns` nanoseconds have elapsed.
    pub fn icount_at_ns(&self, ns: u64) -> u64 {
        (ns as u128 * self.ips as u128).div_ceil(1_000_000_000) as u64
    }

    /// Ticks of a clock running at `hz` at instruction count `icount`.
    pub fn ticks(&self, icount: u64, hz: u64) -> u64 {
        (icount as u128 * hz as u128 / self.ips as u128) as u64
    }

    /// The first instruction count at which a `hz` clock has reached `ticks`.
    pub fn icount_at_ticks(&self, ticks: u64, hz: u64) -> u64 {
        (ticks as u128 * self.ips as u128).div_ceil(hz as u128) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_round_trip() {
        let c = Clock::new(100_000_000);
        assert_eq!(c.ns(100), 1000);
        assert_eq!(c.icount_at_ns(1000), 100);
        // PIT: 1193182 Hz.
        let t = c.ticks(1_000_000_000, 1_193_182);
        assert_eq!(t, 11_931_820);
        let at = c.icount_at_ticks(t, 1_193_182);
        assert!(c.ticks(at, 1_193_182) >= t && c.ticks(at - 1, 1_193_182) < t);
    }

    #[test]
    fn rtc_base_forms() {
        let never = || -> i64 { panic!("host time read") };
        assert_eq!(parse_rtc_base("1704067200", never), Ok(DEFAULT_RTC_BASE));
        assert_eq!(parse_rtc_base("2024-01-01", never), Ok(DEFAULT_RTC_BASE));
        assert_eq!(
            parse_rtc_base("2024-01-01T00:00:00Z", never),
            Ok(DEFAULT_RTC_BASE)
        );
        assert_eq!(parse_rtc_base("1970-01-01T00:00:01", never), Ok(1));
        assert_eq!(parse_rtc_base("-86400", never), Ok(-86_400));
        assert_eq!(
            parse_rtc_base("2000-02-29T23:59:59", never),
            Ok(951_868_799)
        );
        assert_eq!(parse_rtc_base("0000-01-01", never), Ok(-62_167_219_200));
        assert_eq!(parse_rtc_base("now", || 42), Ok(42));
        for bad in [
            "",
            "x",
            "2023-02-29",
            "2024-13-01",
            "2024-1-01",
            "2024-01-01T24:00:00",
            "2024-01-01T12:00",
            "2024-01-01 12:00:00",
            "99999999999999",
            "1e9",
            "now2",
        ] {
            assert!(parse_rtc_base(bad, never).is_err(), "{bad}");
        }
    }
}
