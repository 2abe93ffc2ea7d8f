//! Debug registers: instruction, data and I/O breakpoints (DR0-DR3 with DR7 enables,
//! lengths and types), DR6 status bits, general detect (DR7.GD).
//!
//! Breakpoint checks cost nothing unless DR7 enables one: `dbg_active` is computed when a
//! block starts (DR7 changes only in block-ending instructions).

use super::{Exec, Res};
use crate::cpu::{vector, Fault};

/// DR6 bits.
pub const DR6_BD: u32 = 1 << 13;
pub const DR6_BS: u32 = 1 << 14;
pub const DR6_BT: u32 = 1 << 15;
const DR7_GD: u32 = 1 << 13;
const CR4_DE: u32 = 1 << 3;

/// Breakpoint `i`'s type in DR7: 0 execute, 1 write, 2 I/O, 3 read/write.
fn bp_type(dr7: u32, i: usize) -> u32 {
    (dr7 >> (16 + 4 * i)) & 3
}

fn bp_len(dr7: u32, i: usize) -> u32 {
    [1, 2, 8, 4][((dr7 >> (18 + 4 * i)) & 3) as usize]
}

fn bp_enabled(dr7: u32, i: usize) -> bool {
    (dr7 >> (2 * i)) & 3 != 0
}

impl Exec<'_> {
    /// DR6 B0-B3 bits of execute breakpoints at linear address `lin`.
    pub(super) fn instruction_breakpoints(&self, lin: u32) -> u32 {
        let s = &self.cpu.state;
        let dr7 = s.dr[7];
        (0..4)
            .filter(|&i| bp_enabled(dr7, i) && bp_type(dr7, i) == 0 && s.dr[i] == lin)
            .fold(0, |m, i| m | 1 << i)
    }

    /// Note data breakpoints hit by an access (reported as a trap after the instruction).
    pub(super) fn data_breakpoints(&mut self, lin: u32, size: u8, write: bool) {
        let s = &self.cpu.state;
        let dr7 = s.dr[7];
        for i in 0..4 {
            let t = bp_type(dr7, i);
            if !bp_enabled(dr7, i) || !(t == 3 || (t == 1 && write)) {
                continue;
            }
            let len = bp_len(dr7, i);
            let base = s.dr[i] & !(len - 1);
            if overlaps(lin, size as u32, base, len) {
                self.pending_db |= 1 << i;
            }
        }
    }

    /// I/O breakpoints (DR7 type 2, with CR4.DE).
    pub(super) fn io_breakpoints(&mut self, port: u16, size: u8) {
        let s = &self.cpu.state;
        if s.cr4 & CR4_DE == 0 {
            return;
        }
        let dr7 = s.dr[7];
        for i in 0..4 {
            if bp_enabled(dr7, i) && bp_type(dr7, i) == 2 {
                let len = bp_len(dr7, i);
                let base = s.dr[i] & 0xFFFF & !(len - 1);
                if overlaps(port as u32, size as u32, base, len) {
                    self.pending_db |= 1 << i;
                }
            }
        }
    }

    /// General detect: with DR7.GD set, any MOV to or from a debug register raises #DB
    /// (a fault) with DR6.BD, and GD is cleared so the handler can use the registers.
    pub(super) fn general_detect(&mut self) -> Res<()> {
        let s = &mut self.cpu.state;
        if s.dr[7] & DR7_GD != 0 {
            s.dr[6] |= DR6_BD;
            s.dr[7] &= !DR7_GD;
            return Err(Fault::ex(vector::DB));
        }
        Ok(())
    }
}

fn overlaps(a: u32, alen: u32, b: u32, blen: u32) -> bool {
    let (a, b) = (a as u64, b as u64);
    a < b + blen as u64 && b < a + alen as u64
}
