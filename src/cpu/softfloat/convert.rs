//! Conversions: binary32 ↔ binary64, int32 → float, float → int32 (CVT rounds by
//! MXCSR.RC, CVTT truncates).

use super::mxcsr::{DE, IE, PE};
use super::round::{round_pack, round_shift, round_unp};
use super::{unpack, Env, Fmt, Kind, Rounding};

/// The "integer indefinite" returned for NaNs, infinities and out-of-range values.
pub const INT32_INDEFINITE: u32 = 0x8000_0000;

/// Convert `a` from format `from` to format `to` (CVTSS2SD, CVTSD2SS and the packed
/// forms). A NaN keeps its sign and the top of its payload and is quieted (IE for an
/// SNaN); a denormal raises DE (unless DAZ).
pub fn f2f(env: &mut Env, from: Fmt, to: Fmt, a: u64) -> u64 {
    let u = unpack(env, from, a);
    match u.kind {
        Kind::QNaN | Kind::SNaN => {
            if u.kind == Kind::SNaN {
                env.raise(IE);
            }
            let m = a & from.frac_mask();
            let m = if to.frac >= from.frac {
                m << (to.frac - from.frac)
            } else {
                m >> (from.frac - to.frac)
            };
            to.quiet(to.pack(u.sign, to.emask(), m))
        }
        Kind::Inf => to.inf(u.sign),
        Kind::Zero => to.zero(u.sign),
        Kind::Finite => {
            if u.denormal {
                env.raise(DE);
            }
            round_unp(env, to, u.sign, u.exp, u.sig)
        }
    }
}

/// Convert a signed 32-bit integer to format `f` (CVTSI2SS, CVTDQ2PS, ...).
pub fn i32_to_f(env: &mut Env, f: Fmt, v: i32) -> u64 {
    let sign = v < 0;
    let mag = v.unsigned_abs() as u128;
    // value = mag × 2^(127 − 127)
    round_pack(env, f, sign, 127, mag)
}

/// Convert `a` in format `f` to a signed 32-bit integer, rounding by MXCSR.RC or, with
/// `truncate`, toward zero. NaNs, infinities and results outside the int32 range give
/// the integer indefinite 0x80000000 with IE; an inexact result raises PE.
pub fn f2i32(env: &mut Env, f: Fmt, a: u64, truncate: bool) -> u32 {
    let u = unpack(env, f, a);
    match u.kind {
        Kind::QNaN | Kind::SNaN | Kind::Inf => {
            env.raise(IE);
            return INT32_INDEFINITE;
        }
        Kind::Zero => return 0,
        Kind::Finite => {}
    }
    // value = sig × 2^(exp − 63)
    if u.exp > 31 {
        env.raise(IE);
        return INT32_INDEFINITE;
    }
    let rc = if truncate {
        Rounding::Zero
    } else {
        env.rounding()
    };
    let (q, inexact) = round_shift(rc, u.sign, u.sig as u128, (63 - u.exp) as u32);
    let limit = if u.sign {
        1u128 << 31
    } else {
        (1u128 << 31) - 1
    };
    if q > limit {
        env.raise(IE);
        return INT32_INDEFINITE;
    }
    if inexact {
        env.raise(PE);
    }
    let q = q as u32;
    if u.sign {
        q.wrapping_neg()
    } else {
        q
    }
}
