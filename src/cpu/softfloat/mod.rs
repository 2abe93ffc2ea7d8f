//! IEEE 754 binary32 and binary64 arithmetic in integer arithmetic only, with the exact
//! semantics of x86 SSE/SSE2 (no host floating point anywhere, so results are identical on
//! every host).
//!
//! Values travel as raw bits in a `u64` (binary32 in the low 32 bits) together with a
//! [`Fmt`] naming the format; [`Env`] carries the MXCSR controls in and the exception flags
//! of one lane out. The x86 rules implemented here, all checked against the host CPU by
//! `tests/sse_fp_diff.rs`:
//!
//! - rounding: MXCSR.RC (nearest-even, down, up, toward zero); one rounding step per result
//!   ([`round`]).
//! - DAZ: denormal source operands read as zero of the same sign, without DE.
//! - underflow: tininess is detected *after* rounding (the result rounded to the format's
//!   precision with an unbounded exponent is below the smallest normal). Masked: UE is
//!   raised only together with PE (an inexact tiny result); with FTZ a tiny result becomes
//!   a zero of the same sign and raises UE and PE even when exact. Unmasked: UE, plus PE
//!   if rounding to the format's precision was inexact.
//! - overflow: masked gives ±∞ or ±max-finite by rounding mode with OE and PE; unmasked
//!   gives OE, plus PE if rounding was inexact.
//! - NaNs: an SNaN operand raises IE and is quieted; with two NaN operands the first
//!   source's NaN is returned; an invalid operation returns the default NaN ("QNaN
//!   floating-point indefinite") 0xFFC00000 / 0xFFF8000000000000.
//! - per-lane precedence: SNaN (IE) > QNaN operand (no exception) > other IE and ZE >
//!   DE > OE/UE > PE; e.g. a denormal divided by zero raises only ZE.
//!
//! Which flags an instruction finally records, and whether it faults, depends on all its
//! lanes: see [`finish`]. Operations: [`arith`] (add, sub, mul, div, sqrt, min, max),
//! [`cmp`] (CMPxx predicates, COMIS/UCOMIS), [`convert`] (float↔float, int32↔float),
//! [`approx`] (RCPSS/RSQRTSS, from the hardware's tables).

pub mod approx;
pub mod arith;
pub mod cmp;
pub mod convert;
pub mod round;
#[cfg(test)]
mod tests;

pub use approx::{rcp32, rsqrt32};
pub use arith::{add, div, max, min, mul, sqrt, sub};
pub use cmp::{cmp, comi, Order};
pub use convert::{f2f, f2i32, i32_to_f};

/// MXCSR bits.
pub mod mxcsr {
    /// Exception flags (bits 0-5).
    pub const IE: u32 = 1 << 0;
    pub const DE: u32 = 1 << 1;
    pub const ZE: u32 = 1 << 2;
    pub const OE: u32 = 1 << 3;
    pub const UE: u32 = 1 << 4;
    pub const PE: u32 = 1 << 5;
    /// All six exception flags.
    pub const FLAGS: u32 = 0x3F;
    /// Exceptions detected before computing a result (from the operands alone).
    pub const PRE: u32 = IE | DE | ZE;
    /// Denormals are zeros.
    pub const DAZ: u32 = 1 << 6;
    /// The mask bits are the flag bits shifted left by this.
    pub const MASK_SHIFT: u32 = 7;
    /// All six mask bits.
    pub const MASKS: u32 = FLAGS << MASK_SHIFT;
    pub const RC_SHIFT: u32 = 13;
    pub const RC: u32 = 3 << RC_SHIFT;
    /// Flush to zero.
    pub const FTZ: u32 = 1 << 15;
    /// Power-up / reset value: all exceptions masked, round to nearest.
    pub const DEFAULT: u32 = 0x1F80;
}
use mxcsr::*;

/// Rounding direction (MXCSR.RC).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rounding {
    Nearest,
    Down,
    Up,
    Zero,
}

/// A binary interchange format: fraction width and exponent width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fmt {
    pub frac: u32,
    pub ebits: u32,
}

/// binary32 (single precision).
pub const F32: Fmt = Fmt { frac: 23, ebits: 8 };
/// binary64 (double precision).
pub const F64: Fmt = Fmt {
    frac: 52,
    ebits: 11,
};

impl Fmt {
    #[inline]
    pub const fn bias(self) -> i32 {
        (1 << (self.ebits - 1)) - 1
    }
    /// All-ones biased exponent (infinities and NaNs).
    #[inline]
    pub const fn emask(self) -> u64 {
        (1 << self.ebits) - 1
    }
    /// Largest biased exponent of a finite value.
    #[inline]
    pub const fn emax(self) -> i32 {
        (1 << self.ebits) - 2
    }
    #[inline]
    pub const fn frac_mask(self) -> u64 {
        (1 << self.frac) - 1
    }
    #[inline]
    pub const fn sign_bit(self) -> u64 {
        1 << (self.frac + self.ebits)
    }
    /// The quiet bit of a NaN (top fraction bit).
    #[inline]
    pub const fn quiet_bit(self) -> u64 {
        1 << (self.frac - 1)
    }
    #[inline]
    pub const fn pack(self, sign: bool, bexp: u64, frac: u64) -> u64 {
        (if sign { self.sign_bit() } else { 0 }) | (bexp << self.frac) | frac
    }
    #[inline]
    pub const fn zero(self, sign: bool) -> u64 {
        self.pack(sign, 0, 0)
    }
    #[inline]
    pub const fn inf(self, sign: bool) -> u64 {
        self.pack(sign, self.emask(), 0)
    }
    /// Largest finite magnitude.
    #[inline]
    pub const fn max_finite(self, sign: bool) -> u64 {
        self.pack(sign, self.emax() as u64, self.frac_mask())
    }
    /// The default NaN of invalid operations ("QNaN floating-point indefinite").
    #[inline]
    pub const fn default_nan(self) -> u64 {
        self.pack(true, self.emask(), self.quiet_bit())
    }
    #[inline]
    pub const fn sign(self, x: u64) -> bool {
        x & self.sign_bit() != 0
    }
    #[inline]
    pub const fn is_nan(self, x: u64) -> bool {
        (x >> self.frac) & self.emask() == self.emask() && x & self.frac_mask() != 0
    }
    #[inline]
    pub const fn is_snan(self, x: u64) -> bool {
        self.is_nan(x) && x & self.quiet_bit() == 0
    }
    #[inline]
    pub const fn is_denormal(self, x: u64) -> bool {
        (x >> self.frac) & self.emask() == 0 && x & self.frac_mask() != 0
    }
    /// `x` with the quiet bit set.
    #[inline]
    pub const fn quiet(self, x: u64) -> u64 {
        x | self.quiet_bit()
    }
}

/// One lane's view of MXCSR: the controls in, the exceptions this lane raised out.
#[derive(Clone, Copy, Debug)]
pub struct Env {
    pub mxcsr: u32,
    /// Exception flags (MXCSR bits 0-5) raised by the operation.
    pub flags: u32,
}

impl Env {
    #[inline]
    pub const fn new(mxcsr: u32) -> Env {
        Env { mxcsr, flags: 0 }
    }
    #[inline]
    pub fn rounding(&self) -> Rounding {
        match (self.mxcsr >> RC_SHIFT) & 3 {
            0 => Rounding::Nearest,
            1 => Rounding::Down,
            2 => Rounding::Up,
            _ => Rounding::Zero,
        }
    }
    #[inline]
    pub const fn daz(&self) -> bool {
        self.mxcsr & DAZ != 0
    }
    #[inline]
    pub const fn ftz(&self) -> bool {
        self.mxcsr & FTZ != 0
    }
    /// Whether exception flag `f` is masked.
    #[inline]
    pub const fn masked(&self, f: u32) -> bool {
        self.mxcsr & (f << MASK_SHIFT) != 0
    }
    #[inline]
    pub fn raise(&mut self, f: u32) {
        self.flags |= f;
    }
    /// Invalid operation: IE and the default NaN.
    #[inline]
    pub fn invalid(&mut self, f: Fmt) -> u64 {
        self.flags |= IE;
        f.default_nan()
    }
    /// A zero resulting from the exact cancellation x − x: −0 when rounding down.
    #[inline]
    pub fn cancel_zero(&self, f: Fmt) -> u64 {
        f.zero(self.rounding() == Rounding::Down)
    }
}

/// What an instruction does after evaluating all its lanes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Flags to OR into MXCSR.
    pub flags: u32,
    /// An unmasked exception: raise #XM (or #UD), write no destination.
    pub fault: bool,
}

/// Decide an instruction's outcome from the flags each of its lanes raised (each lane
/// evaluated with [`Env::new`]`(mxcsr)`):
///
/// - if any lane raised an unmasked pre-computation exception (IE, DE, ZE), only the
///   pre-computation flags of all lanes are recorded and the instruction faults (the
///   overflow/underflow/precision results of other lanes are never reported);
/// - otherwise every flag of every lane is recorded, and the instruction faults if any of
///   them is unmasked.
pub fn finish(mxcsr: u32, lane_flags: &[u32]) -> Outcome {
    let unmasked = !(mxcsr >> MASK_SHIFT) & FLAGS;
    let all = lane_flags.iter().fold(0, |a, &f| a | f);
    let pre = all & PRE;
    if pre & unmasked != 0 {
        return Outcome {
            flags: pre,
            fault: true,
        };
    }
    Outcome {
        flags: all,
        fault: all & unmasked != 0,
    }
}

/// Operand classes after DAZ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Zero,
    Finite,
    Inf,
    QNaN,
    SNaN,
}

/// An unpacked operand. For `Finite`, the value is `sig × 2^(exp − 63)` with bit 63 of
/// `sig` set (denormals are normalised too).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Unp {
    pub sign: bool,
    pub kind: Kind,
    pub exp: i32,
    pub sig: u64,
    /// A denormal that was not flushed by DAZ (the DE condition).
    pub denormal: bool,
}

impl Unp {
    #[inline]
    pub fn is_nan(&self) -> bool {
        matches!(self.kind, Kind::QNaN | Kind::SNaN)
    }
}

/// Classify `x` (with DAZ applied).
pub(crate) fn unpack(env: &Env, f: Fmt, x: u64) -> Unp {
    let sign = f.sign(x);
    let be = (x >> f.frac) & f.emask();
    let m = x & f.frac_mask();
    let mut u = Unp {
        sign,
        kind: Kind::Finite,
        exp: 0,
        sig: 0,
        denormal: false,
    };
    if be == f.emask() {
        u.kind = if m == 0 {
            Kind::Inf
        } else if m & f.quiet_bit() != 0 {
            Kind::QNaN
        } else {
            Kind::SNaN
        };
    } else if be == 0 {
        if m == 0 || env.daz() {
            u.kind = Kind::Zero;
        } else {
            let top = 63 - m.leading_zeros() as i32;
            u.exp = 1 - f.bias() - f.frac as i32 + top;
            u.sig = m << (63 - top);
            u.denormal = true;
        }
    } else {
        u.exp = be as i32 - f.bias();
        u.sig = (m | (1 << f.frac)) << (63 - f.frac);
    }
    u
}

/// `x` as the instruction sees it: a denormal reads as a signed zero under DAZ.
#[inline]
pub(crate) fn daz_bits(env: &Env, f: Fmt, x: u64) -> u64 {
    if env.daz() && f.is_denormal(x) {
        x & f.sign_bit()
    } else {
        x
    }
}

/// NaN result of a two-operand operation with at least one NaN operand: IE for an SNaN;
/// the first operand's NaN if it is one, else the second's, quieted.
pub(crate) fn propagate(env: &mut Env, f: Fmt, a: u64, ua: &Unp, b: u64, ub: &Unp) -> u64 {
    if ua.kind == Kind::SNaN || ub.kind == Kind::SNaN {
        env.raise(IE);
    }
    if ua.is_nan() {
        f.quiet(a)
    } else {
        f.quiet(b)
    }
}
