//! The single rounding step every computed result goes through.

use super::mxcsr::{OE, PE, UE};
use super::{Env, Fmt, Rounding};

/// Round `v / 2^drop` to an integer in direction `rc` for a value of sign `sign`:
/// (quotient, inexact).
#[inline]
pub fn round_shift(rc: Rounding, sign: bool, v: u128, drop: u32) -> (u128, bool) {
    if drop == 0 {
        return (v, false);
    }
    if drop >= 128 {
        let inexact = v != 0;
        let inc = match rc {
            Rounding::Nearest => drop == 128 && v > 1u128 << 127,
            Rounding::Zero => false,
            Rounding::Down => sign && inexact,
            Rounding::Up => !sign && inexact,
        };
        return (inc as u128, inexact);
    }
    let rem = v & ((1u128 << drop) - 1);
    let q = v >> drop;
    let half = 1u128 << (drop - 1);
    let inexact = rem != 0;
    let inc = match rc {
        Rounding::Nearest => rem > half || (rem == half && q & 1 == 1),
        Rounding::Zero => false,
        Rounding::Down => sign && inexact,
        Rounding::Up => !sign && inexact,
    };
    (q + inc as u128, inexact)
}

/// Round the value `sig × 2^(exp − 127)` (any non-zero `sig`; bits below the format's
/// precision, including a sticky bit, decide the rounding) to format `f`, raising PE, UE
/// and OE by the x86 rules (see the module documentation of [`super`]). A zero `sig`
/// gives a zero of sign `sign`. With an unmasked OE or UE the returned bits are
/// meaningless: the instruction will not write them.
pub fn round_pack(env: &mut Env, f: Fmt, sign: bool, exp: i32, sig: u128) -> u64 {
    if sig == 0 {
        return f.zero(sign);
    }
    let rc = env.rounding();
    let lz = sig.leading_zeros();
    let sig = sig << lz;
    // value = sig × 2^(e − 127) with bit 127 of sig set: e is the unbiased exponent.
    let e = exp - lz as i32;
    let p = f.frac + 1;
    let drop = 128 - p;
    let (mut q, inexact) = round_shift(rc, sign, sig, drop);
    let mut re = e;
    if q >> p != 0 {
        q >>= 1;
        re += 1;
    }
    let be = re + f.bias();
    if be > f.emax() {
        if !env.masked(OE) {
            env.raise(OE | if inexact { PE } else { 0 });
            return f.inf(sign);
        }
        env.raise(OE | PE);
        let to_inf = match rc {
            Rounding::Nearest => true,
            Rounding::Zero => false,
            Rounding::Down => sign,
            Rounding::Up => !sign,
        };
        return if to_inf {
            f.inf(sign)
        } else {
            f.max_finite(sign)
        };
    }
    if be < 1 {
        // Tiny after rounding.
        if !env.masked(UE) {
            env.raise(UE | if inexact { PE } else { 0 });
            return f.zero(sign);
        }
        if env.ftz() {
            env.raise(UE | PE);
            return f.zero(sign);
        }
        // Denormalise from the unrounded value: the quantum is 2^(1 − bias − frac).
        let b0 = e + f.bias();
        let shift = drop as i64 + (1 - b0) as i64;
        let (q, inexact) = round_shift(rc, sign, sig, shift.min(255) as u32);
        if inexact {
            env.raise(UE | PE);
        }
        // A carry into bit `frac` yields the smallest normal, as the encoding intends.
        return f.zero(sign) | q as u64;
    }
    if inexact {
        env.raise(PE);
    }
    f.pack(sign, be as u64, q as u64 & f.frac_mask())
}

/// Round a finite value `sig × 2^(exp − 63)` (the [`super::Unp`] convention).
#[inline]
pub fn round_unp(env: &mut Env, f: Fmt, sign: bool, exp: i32, sig: u64) -> u64 {
    round_pack(env, f, sign, exp + 64, sig as u128)
}
