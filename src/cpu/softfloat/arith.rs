//! ADD/SUB/MUL/DIV/SQRT/MIN/MAX on one lane. Results are computed exactly (or with a
//! sticky bit standing for the discarded part) and rounded once.

use super::mxcsr::{DE, IE, ZE};
use super::round::{round_pack, round_unp};
use super::{daz_bits, propagate, unpack, Env, Fmt, Kind, Rounding, Unp};
use crate::cpu::fpu::float80::shr_jam128;

/// `a + b`.
pub fn add(env: &mut Env, f: Fmt, a: u64, b: u64) -> u64 {
    add_sub(env, f, a, b, false)
}

/// `a − b`.
pub fn sub(env: &mut Env, f: Fmt, a: u64, b: u64) -> u64 {
    add_sub(env, f, a, b, true)
}

fn add_sub(env: &mut Env, f: Fmt, a: u64, b: u64, negate: bool) -> u64 {
    let ua = unpack(env, f, a);
    let mut ub = unpack(env, f, b);
    if ua.is_nan() || ub.is_nan() {
        return propagate(env, f, a, &ua, b, &ub);
    }
    ub.sign ^= negate;
    if ua.kind == Kind::Inf || ub.kind == Kind::Inf {
        if ua.kind == Kind::Inf && ub.kind == Kind::Inf {
            if ua.sign != ub.sign {
                return env.invalid(f);
            }
            return f.inf(ua.sign);
        }
        if ua.denormal || ub.denormal {
            env.raise(DE);
        }
        return f.inf(if ua.kind == Kind::Inf {
            ua.sign
        } else {
            ub.sign
        });
    }
    if ua.denormal || ub.denormal {
        env.raise(DE);
    }
    match (ua.kind, ub.kind) {
        (Kind::Zero, Kind::Zero) => {
            let sign = if ua.sign == ub.sign {
                ua.sign
            } else {
                env.rounding() == Rounding::Down
            };
            f.zero(sign)
        }
        (Kind::Zero, _) => round_unp(env, f, ub.sign, ub.exp, ub.sig),
        (_, Kind::Zero) => round_unp(env, f, ua.sign, ua.exp, ua.sig),
        _ => add_finite(env, f, &ua, &ub),
    }
}

/// Sum of two non-zero finite operands (signs already adjusted for subtraction).
fn add_finite(env: &mut Env, f: Fmt, ua: &Unp, ub: &Unp) -> u64 {
    let (x, y) = if ua.exp >= ub.exp { (ua, ub) } else { (ub, ua) };
    // Leading bit at 125: two bits of headroom, 62 guard bits below the significand.
    let mx = (x.sig as u128) << 62;
    let d = (x.exp - y.exp) as u32;
    let my = shr_jam128((y.sig as u128) << 62, d);
    // value = m × 2^(x.exp − 125) = m × 2^((x.exp + 2) − 127)
    let e = x.exp + 2;
    if x.sign == y.sign {
        return round_pack(env, f, x.sign, e, mx + my);
    }
    if mx == my {
        return env.cancel_zero(f);
    }
    let (m, sign) = if mx > my {
        (mx - my, x.sign)
    } else {
        (my - mx, y.sign)
    };
    round_pack(env, f, sign, e, m)
}

/// `a × b`.
pub fn mul(env: &mut Env, f: Fmt, a: u64, b: u64) -> u64 {
    let ua = unpack(env, f, a);
    let ub = unpack(env, f, b);
    if ua.is_nan() || ub.is_nan() {
        return propagate(env, f, a, &ua, b, &ub);
    }
    let sign = ua.sign ^ ub.sign;
    if ua.kind == Kind::Inf || ub.kind == Kind::Inf {
        if ua.kind == Kind::Zero || ub.kind == Kind::Zero {
            return env.invalid(f);
        }
        if ua.denormal || ub.denormal {
            env.raise(DE);
        }
        return f.inf(sign);
    }
    if ua.denormal || ub.denormal {
        env.raise(DE);
    }
    if ua.kind == Kind::Zero || ub.kind == Kind::Zero {
        return f.zero(sign);
    }
    let p = ua.sig as u128 * ub.sig as u128;
    // value = p × 2^(ea − 63 + eb − 63)
    round_pack(env, f, sign, ua.exp + ub.exp + 1, p)
}

/// `a ÷ b`.
pub fn div(env: &mut Env, f: Fmt, a: u64, b: u64) -> u64 {
    let ua = unpack(env, f, a);
    let ub = unpack(env, f, b);
    if ua.is_nan() || ub.is_nan() {
        return propagate(env, f, a, &ua, b, &ub);
    }
    let sign = ua.sign ^ ub.sign;
    match (ua.kind, ub.kind) {
        (Kind::Inf, Kind::Inf) | (Kind::Zero, Kind::Zero) => return env.invalid(f),
        (Kind::Inf, Kind::Zero) => return f.inf(sign),
        (_, Kind::Zero) => {
            // Division by zero takes precedence over a denormal dividend.
            env.raise(ZE);
            return f.inf(sign);
        }
        _ => {}
    }
    if ua.denormal || ub.denormal {
        env.raise(DE);
    }
    match (ua.kind, ub.kind) {
        (Kind::Inf, _) => f.inf(sign),
        (_, Kind::Inf) | (Kind::Zero, _) => f.zero(sign),
        _ => {
            let n = (ua.sig as u128) << 64;
            let d = ub.sig as u128;
            let q = n / d;
            let q = q | (n % d != 0) as u128;
            // value = q × 2^(ea − eb − 64)
            round_pack(env, f, sign, ua.exp - ub.exp + 63, q)
        }
    }
}

/// Square root of `a`.
pub fn sqrt(env: &mut Env, f: Fmt, a: u64) -> u64 {
    let ua = unpack(env, f, a);
    match ua.kind {
        Kind::QNaN => return a,
        Kind::SNaN => {
            env.raise(IE);
            return f.quiet(a);
        }
        Kind::Zero => return f.zero(ua.sign),
        _ if ua.sign => return env.invalid(f),
        Kind::Inf => return a,
        Kind::Finite => {}
    }
    if ua.denormal {
        env.raise(DE);
    }
    // Radicand r × 2^k with k even: r = sig × 2^64 (k = exp − 127) or sig × 2^63.
    let (r, k) = if ua.exp & 1 != 0 {
        ((ua.sig as u128) << 64, ua.exp - 127)
    } else {
        ((ua.sig as u128) << 63, ua.exp - 126)
    };
    let (root, exact) = isqrt(r);
    let root = root as u128 | (!exact) as u128;
    round_pack(env, f, false, k / 2 + 127, root)
}

/// Integer square root: (⌊√r⌋, whether it is exact).
fn isqrt(r: u128) -> (u64, bool) {
    // Digit-by-digit (restoring) square root, two radicand bits per step.
    let mut rem: u128 = 0;
    let mut root: u128 = 0;
    for i in (0..64).rev() {
        rem = (rem << 2) | ((r >> (2 * i)) & 3);
        let trial = (root << 2) | 1;
        root <<= 1;
        if rem >= trial {
            rem -= trial;
            root |= 1;
        }
    }
    (root as u64, rem == 0)
}

/// MINSS/MINPD...: `a < b ? a : b`; the second operand if either is a NaN (IE for any NaN,
/// QNaN or SNaN; an SNaN is returned unchanged) or both are zeros. Under DAZ a denormal
/// reads, and is returned, as a zero of its sign.
pub fn min(env: &mut Env, f: Fmt, a: u64, b: u64) -> u64 {
    min_max(env, f, a, b, false)
}

/// MAXSS/MAXPD...: `a > b ? a : b`, with the same second-operand rule as [`min`].
pub fn max(env: &mut Env, f: Fmt, a: u64, b: u64) -> u64 {
    min_max(env, f, a, b, true)
}

fn min_max(env: &mut Env, f: Fmt, a: u64, b: u64, want_max: bool) -> u64 {
    let ua = unpack(env, f, a);
    let ub = unpack(env, f, b);
    if ua.is_nan() || ub.is_nan() {
        // MIN and MAX compare with signaling semantics: any NaN is invalid.
        env.raise(IE);
        return daz_bits(env, f, b);
    }
    if ua.denormal || ub.denormal {
        env.raise(DE);
    }
    let (a, b) = (daz_bits(env, f, a), daz_bits(env, f, b));
    let a_first = match super::cmp::order(&ua, &ub) {
        core::cmp::Ordering::Less => !want_max,
        core::cmp::Ordering::Greater => want_max,
        core::cmp::Ordering::Equal => false,
    };
    if a_first {
        a
    } else {
        b
    }
}
