//! The x87 floating-point unit: an integer-only implementation of 80-bit extended
//! arithmetic (no host floating point anywhere, so results are identical on every
//! host), and the FPU's architectural state.
//!
//! - [`float80`]: the format, classification, unpacking.
//! - [`round`]: the rounding context (control word in; exception flags and C1 out) and
//!   the single rounding step with precision control and the full exponent range.
//! - [`arith`]: add/sub/mul/div/sqrt/compare with the x87 operand rules.
//! - [`ops`]: FPREM/FPREM1, FRNDINT, FSCALE, FXTRACT, integer conversion helpers.
//! - [`convert`]: memory formats (m32/m64 real, m16/m32/m64 integer, m80 BCD).
//! - [`wide`] and [`trans`]: multi-word arithmetic and the transcendental instructions.
//!
//! The instruction layer lives in `cpu/exec/x87.rs`.

pub mod arith;
pub mod convert;
pub mod float80;
pub mod ops;
pub mod round;
pub mod trans;
pub mod wide;

pub use arith::Cmp;
pub use float80::{Class, F80};
pub use round::{exc, Ctx, Rounding};

use serde::{Deserialize, Serialize};

/// Status word bits.
pub mod sw {
    /// Exception flags IE DE ZE OE UE PE and SF.
    pub const FLAGS: u16 = 0x7F;
    pub const ES: u16 = 1 << 7;
    pub const C0: u16 = 1 << 8;
    pub const C1: u16 = 1 << 9;
    pub const C2: u16 = 1 << 10;
    pub const TOP_SHIFT: u16 = 11;
    pub const TOP: u16 = 7 << 11;
    pub const C3: u16 = 1 << 14;
    pub const B: u16 = 1 << 15;
    pub const CC: u16 = C0 | C1 | C2 | C3;
}

/// Control word after FNINIT: all exceptions masked, 64-bit precision, round to nearest.
pub const FNINIT_CW: u16 = 0x037F;
/// Control word bits that exist (masks, PC, RC, the vestigial infinity control bit);
/// bit 6 always reads as 1.
pub const CW_MASK: u16 = 0x1F3F;

/// The FPU's architectural state as plain data (part of the CPU state).
///
/// Registers are stored by *physical* number R0..R7 (ST(i) is R[(TOP + i) mod 8]), so
/// MMX register MMi aliases `sig[i]` and an MMX write sets `se[i]` to 0xFFFF. The tag
/// word is kept abridged (one "holds a value" bit per physical register, as in FXSAVE);
/// the full 2-bit tags that FSTENV/FSAVE report are derived from the register contents,
/// as on the P6.
#[repr(C)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FpuState {
    /// Significands of R0..R7 (bit 63 is the explicit integer bit).
    pub sig: [u64; 8],
    /// Last non-control instruction: offset (FIP) and selector (FCS).
    pub fip: u32,
    /// Last memory operand: offset (FDP) and selector (FDS).
    pub fdp: u32,
    /// Sign and exponent of R0..R7.
    pub se: [u16; 8],
    pub cw: u16,
    /// Status word including TOP (bits 11-13), ES and B.
    pub sw: u16,
    /// Last non-control opcode: 11 bits (low 3 bits of the first opcode byte, ModRM).
    pub fop: u16,
    pub fcs: u16,
    pub fds: u16,
    /// Abridged tag: bit i set = physical register i is not empty.
    pub valid: u8,
    /// FERR# is asserted (an unmasked exception was signalled with CR0.NE = 0).
    pub ferr: u8,
    pub _pad: u32,
}

impl Default for FpuState {
    /// The state after FNINIT.
    fn default() -> Self {
        FpuState {
            sig: [0; 8],
            fip: 0,
            fdp: 0,
            se: [0; 8],
            cw: FNINIT_CW,
            sw: 0,
            fop: 0,
            fcs: 0,
            fds: 0,
            valid: 0,
            ferr: 0,
            _pad: 0,
        }
    }
}

impl FpuState {
    /// Power-on / RESET state (SDM vol. 3 table 9-1): CW 0040H, SW 0, TW 5555H (every
    /// register valid and +0.0), pointers 0.
    pub fn power_on() -> FpuState {
        FpuState {
            cw: 0x0040,
            valid: 0xFF,
            ..FpuState::default()
        }
    }

    /// FNINIT: control word 037FH, status 0, all registers empty, pointers cleared
    /// (register contents are kept).
    pub fn init(&mut self) {
        let (sig, se, ferr) = (self.sig, self.se, self.ferr);
        *self = FpuState {
            sig,
            se,
            ferr,
            ..FpuState::default()
        };
    }

    #[inline]
    pub fn top(&self) -> u8 {
        ((self.sw >> sw::TOP_SHIFT) & 7) as u8
    }
    #[inline]
    pub fn set_top(&mut self, t: u8) {
        self.sw = (self.sw & !sw::TOP) | (((t & 7) as u16) << sw::TOP_SHIFT);
    }
    /// Physical register number of ST(i).
    #[inline]
    pub fn phys(&self, i: u8) -> usize {
        ((self.top() + i) & 7) as usize
    }
    #[inline]
    pub fn reg(&self, p: usize) -> F80 {
        F80 {
            se: self.se[p],
            sig: self.sig[p],
        }
    }
    #[inline]
    pub fn st(&self, i: u8) -> F80 {
        self.reg(self.phys(i))
    }
    #[inline]
    pub fn is_empty(&self, i: u8) -> bool {
        self.valid & (1 << self.phys(i)) == 0
    }
    /// Write ST(i) and mark it valid.
    #[inline]
    pub fn set_st(&mut self, i: u8, v: F80) {
        let p = self.phys(i);
        self.se[p] = v.se;
        self.sig[p] = v.sig;
        self.valid |= 1 << p;
    }
    /// Mark ST(i) empty (FFREE).
    #[inline]
    pub fn free(&mut self, i: u8) {
        self.valid &= !(1 << self.phys(i));
    }
    /// Decrement TOP and write the new ST(0).
    #[inline]
    pub fn push(&mut self, v: F80) {
        self.set_top(self.top().wrapping_sub(1));
        self.set_st(0, v);
    }
    /// Mark ST(0) empty and increment TOP.
    #[inline]
    pub fn pop(&mut self) {
        self.free(0);
        self.set_top(self.top() + 1);
    }

    /// Tag of physical register p: 0 valid, 1 zero, 2 special, 3 empty.
    pub fn tag(&self, p: usize) -> u16 {
        if self.valid & (1 << p) == 0 {
            return 3;
        }
        match self.reg(p).class() {
            Class::Normal => 0,
            Class::Zero => 1,
            _ => 2,
        }
    }

    /// The full tag word as FSTENV/FSAVE store it.
    pub fn tag_word(&self) -> u16 {
        (0..8).fold(0, |tw, p| tw | (self.tag(p) << (2 * p)))
    }

    /// Load a full tag word (FLDENV/FRSTOR): only "empty" versus "not empty" is kept;
    /// the other tags are recomputed from the registers, as on the P6.
    pub fn set_tag_word(&mut self, tw: u16) {
        self.valid = (0..8).fold(0, |v, p| {
            if (tw >> (2 * p)) & 3 == 3 {
                v
            } else {
                v | (1 << p)
            }
        });
    }

    /// Load the control word (FLDCW, FLDENV, FRSTOR, FXRSTOR).
    pub fn set_cw(&mut self, cw: u16) {
        self.cw = (cw & CW_MASK) | 0x40;
        self.update_es();
    }

    /// Recompute ES and B: set while any exception flag is unmasked.
    pub fn update_es(&mut self) {
        if self.sw & !self.cw & 0x3F != 0 {
            self.sw |= sw::ES | sw::B;
        } else {
            self.sw &= !(sw::ES | sw::B);
        }
    }

    /// Record the flags an operation raised (sticky) and recompute ES.
    pub fn raise(&mut self, flags: u16) {
        self.sw |= flags & sw::FLAGS;
        self.update_es();
    }

    /// Set condition codes: `bits` within `mask` (both in status word positions).
    #[inline]
    pub fn set_cc(&mut self, mask: u16, bits: u16) {
        self.sw = (self.sw & !mask) | (bits & mask);
    }
}

#[cfg(test)]
mod tests;
