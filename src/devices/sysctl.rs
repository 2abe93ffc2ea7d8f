//! System control port A (port 0x92, the "fast A20 / fast reset" port of PS/2-class PCs).
//!
//! Bit 1 drives the A20 gate; writing bit 0 = 1 pulses the CPU reset line. Reads return
//! the latched value (bit 0 reads back 0 once the reset has been requested).

use serde::{Deserialize, Serialize};

pub const PORT: u16 = 0x92;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemControlA {
    value: u8,
}

impl Default for SystemControlA {
    fn default() -> Self {
        // A20 enabled at power-on on this board (as QEMU's and most modern chipsets).
        SystemControlA { value: 0x02 }
    }
}

impl SystemControlA {
    pub fn read(&self) -> u8 {
        self.value
    }

    /// Returns true when the write requests a CPU reset.
    pub fn write(&mut self, v: u8) -> bool {
        self.value = v & !1;
        v & 1 != 0
    }

    pub fn a20(&self) -> bool {
        self.value & 2 != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a20_and_reset_bits() {
        let mut p = SystemControlA::default();
        assert!(p.a20());
        assert!(!p.write(0x00));
        assert!(!p.a20());
        assert!(p.write(0x03));
        assert!(p.a20());
        assert_eq!(p.read(), 0x02);
    }
}
