//! Virtual time.
//!
//! Guest-visible time is a function of `CpuState::icount` only: the count of retired
//! instructions plus the instructions the CPU "would have retired" while halted (the
//! machine fast-forwards the count to the next device deadline when the CPU waits in
//! HLT). A configured virtual speed (instructions per second) converts the count to
//! nanoseconds and device clocks. All arithmetic is integer (u128 intermediates), so
//! every host computes the same times.

use serde::{Deserialize, Serialize};

/// Default virtual speed: 100 million instructions per second ("100 MHz").
pub const DEFAULT_IPS: u64 = 100_000_000;

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
}
