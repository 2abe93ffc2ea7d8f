//! Rounding context: control word, exception flags raised by one operation, the C1
//! round-up indication, and the single rounding step every result goes through.
//!
//! Results are computed exactly (or with a sticky bit) and rounded once to the
//! destination's significand precision (24, 53 or 64 bits) with the destination's
//! exponent range. For x87 registers the exponent range is always the full 15 bits,
//! whatever the precision control says, exactly as the hardware does.

use super::float80::{shr_jam128, F80, INT_BIT};

/// Exception flag bits (status word bits 0-6, control word mask bits 0-5).
pub mod exc {
    pub const IE: u16 = 1 << 0;
    pub const DE: u16 = 1 << 1;
    pub const ZE: u16 = 1 << 2;
    pub const OE: u16 = 1 << 3;
    pub const UE: u16 = 1 << 4;
    pub const PE: u16 = 1 << 5;
    /// Stack fault (always together with IE).
    pub const SF: u16 = 1 << 6;
}
use exc::*;

/// Exponent adjustment applied to register results on unmasked overflow/underflow.
pub const WRAP: i32 = 24576;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rounding {
    Nearest,
    Down,
    Up,
    Zero,
}

/// One operation's view of the FPU: controls in, exception flags and C1 out.
#[derive(Clone, Copy, Debug)]
pub struct Ctx {
    pub cw: u16,
    /// Exceptions raised by this operation.
    pub flags: u16,
    /// Result was rounded up in magnitude (reported in C1).
    pub c1: bool,
    /// Significand precision for register results (24, 53 or 64).
    pub prec: u32,
}

impl Ctx {
    /// A context with full 64-bit precision (instructions not under precision control).
    pub fn new(cw: u16) -> Ctx {
        Ctx {
            cw,
            flags: 0,
            c1: false,
            prec: 64,
        }
    }

    /// A context honouring the precision-control field (FADD/FSUB/FMUL/FDIV/FSQRT and
    /// their forms). The reserved setting 01 is treated as double extended (64 bits).
    pub fn with_pc(cw: u16) -> Ctx {
        let prec = match (cw >> 8) & 3 {
            0 => 24,
            2 => 53,
            _ => 64,
        };
        Ctx {
            prec,
            ..Ctx::new(cw)
        }
    }

    #[inline]
    pub fn rounding(&self) -> Rounding {
        match (self.cw >> 10) & 3 {
            0 => Rounding::Nearest,
            1 => Rounding::Down,
            2 => Rounding::Up,
            _ => Rounding::Zero,
        }
    }

    #[inline]
    pub fn masked(&self, f: u16) -> bool {
        self.cw & f != 0
    }

    #[inline]
    pub fn raise(&mut self, f: u16) {
        self.flags |= f;
    }

    /// An unmasked IE, DE or ZE was raised: the instruction writes no result.
    #[inline]
    pub fn suppressed(&self) -> bool {
        self.flags & !self.cw & (IE | DE | ZE) != 0
    }

    /// Invalid operation: IE, and the real indefinite when masked.
    pub fn invalid(&mut self) -> Option<F80> {
        self.flags |= IE;
        if self.masked(IE) {
            Some(F80::INDEFINITE)
        } else {
            None
        }
    }

    /// Division by zero: ZE, and a signed infinity when masked.
    pub fn div_zero(&mut self, sign: bool) -> Option<F80> {
        self.flags |= ZE;
        if self.masked(ZE) {
            Some(F80::inf(sign))
        } else {
            None
        }
    }

    /// Denormal operand: DE. Returns false when the exception is unmasked (stop).
    pub fn denormal(&mut self) -> bool {
        self.flags |= DE;
        self.masked(DE)
    }

    /// Zero result of an exact cancellation x − x: −0 when rounding down, else +0.
    pub fn cancel_zero(&self) -> F80 {
        F80::zero(self.rounding() == Rounding::Down)
    }

    /// Round `v >> drop` to an integer in the current mode: (quotient, inexact, incremented).
    #[inline]
    pub fn round_bits(&self, sign: bool, v: u128, drop: u32) -> (u128, bool, bool) {
        if drop == 0 {
            return (v, false, false);
        }
        if drop >= 128 {
            let inexact = v != 0;
            let half = 1u128 << 127;
            let inc = match self.rounding() {
                Rounding::Nearest => drop == 128 && v > half,
                Rounding::Zero => false,
                Rounding::Down => sign && inexact,
                Rounding::Up => !sign && inexact,
            };
            return (inc as u128, inexact, inc);
        }
        let rem = v & ((1u128 << drop) - 1);
        let q = v >> drop;
        let half = 1u128 << (drop - 1);
        let inexact = rem != 0;
        let inc = match self.rounding() {
            Rounding::Nearest => rem > half || (rem == half && q & 1 == 1),
            Rounding::Zero => false,
            Rounding::Down => sign && inexact,
            Rounding::Up => !sign && inexact,
        };
        (q + inc as u128, inexact, inc)
    }

    /// Round value = `sig` × 2^(e − bias − 127) to `prec` significand bits for a format
    /// whose finite biased exponents are 1..=`emax` (0: denormals and zero), raising
    /// PE/UE/OE and setting C1. Returns (biased exponent, significand with the integer
    /// bit at bit 63). For `reg_dest` an unmasked overflow/underflow delivers the
    /// significand with the exponent wrapped by ∓24576; otherwise it returns None (no
    /// result is stored to memory).
    pub fn round_pack(
        &mut self,
        sign: bool,
        mut e: i32,
        mut sig: u128,
        prec: u32,
        emax: i32,
        reg_dest: bool,
    ) -> Option<(i32, u64)> {
        self.c1 = false;
        if sig == 0 {
            return Some((0, 0));
        }
        let lz = sig.leading_zeros();
        sig <<= lz;
        e -= lz as i32;
        let drop = 128 - prec;
        let (mut q, inexact, up) = self.round_bits(sign, sig, drop);
        let mut re = e;
        if q >> prec != 0 {
            q >>= 1;
            re += 1;
        }
        let packed = |q: u128| (q as u64) << (64 - prec);
        if re > emax {
            self.flags |= OE;
            if !self.masked(OE) {
                // To memory: nothing is stored and only OE is reported.
                if !reg_dest {
                    return None;
                }
                if inexact {
                    self.flags |= PE;
                }
                self.c1 = up;
                let w = re - WRAP;
                if w <= emax {
                    return Some((w, packed(q)));
                }
                // Still out of range after wrapping (FSCALE): infinity, whatever the
                // rounding mode (as the hardware does).
                self.flags |= PE;
                self.c1 = true;
                return Some((emax + 1, INT_BIT));
            }
            self.flags |= PE;
            let to_inf = match self.rounding() {
                Rounding::Nearest => true,
                Rounding::Zero => false,
                Rounding::Down => sign,
                Rounding::Up => !sign,
            };
            return if to_inf {
                self.c1 = true;
                Some((emax + 1, INT_BIT))
            } else {
                Some((emax, packed((1u128 << prec) - 1)))
            };
        }
        if re < 1 {
            if !self.masked(UE) {
                self.flags |= UE;
                if !reg_dest {
                    return None;
                }
                if inexact {
                    self.flags |= PE;
                }
                self.c1 = up;
                let w = re + WRAP;
                if w >= 1 {
                    return Some((w, packed(q)));
                }
                // Still tiny after wrapping (FSCALE): zero, whatever the rounding mode.
                self.flags |= PE;
                self.c1 = false;
                return Some((0, 0));
            }
            let d = shr_jam128(sig, (1 - e) as u32);
            let (q, inexact, up) = self.round_bits(sign, d, drop);
            if inexact {
                self.flags |= UE | PE;
            }
            self.c1 = up;
            let exp = ((q >> (prec - 1)) & 1) as i32;
            return Some((exp, packed(q)));
        }
        if inexact {
            self.flags |= PE;
        }
        self.c1 = up;
        Some((re, packed(q)))
    }

    /// Round to an 80-bit register value with the context's precision.
    #[inline]
    pub fn round80(&mut self, sign: bool, e: i32, sig: u128) -> F80 {
        let prec = self.prec;
        match self.round_pack(sign, e, sig, prec, 0x7FFE, true) {
            Some((exp, m)) => F80::new(sign, exp as u16, m),
            None => unreachable!("register destinations always get a result"),
        }
    }

    /// Round a finite value given as a normalised 64-bit significand.
    #[inline]
    pub fn round80_u64(&mut self, sign: bool, e: i32, m: u64) -> F80 {
        self.round80(sign, e, (m as u128) << 64)
    }
}
