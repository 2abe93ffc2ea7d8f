//! The IEEE basic operations on 80-bit values: add, subtract, multiply, divide, square
//! root and compare, with the x87 operand rules (unsupported encodings, NaN
//! propagation, denormal operands) and one rounding per result.
//!
//! Every function returns `None` when an unmasked IE, DE or ZE stops the instruction
//! (no result is written), otherwise the value to store.

use super::float80::{Class, BIAS, F80};
use super::round::exc::*;
use super::round::Ctx;

/// Result of a comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmp {
    Less,
    Equal,
    Greater,
    Unordered,
}

impl Ctx {
    /// NaN result of an operation with at least one NaN operand: an SNaN raises IE; a
    /// QNaN operand beats an SNaN, otherwise the larger significand wins (x87 rule).
    pub fn propagate(&mut self, a: F80, b: F80) -> Option<F80> {
        let (sa, sb) = (a.is_snan(), b.is_snan());
        if sa || sb {
            self.flags |= IE;
            if !self.masked(IE) {
                return None;
            }
        }
        let r = match (a.is_nan(), b.is_nan()) {
            (true, false) => a,
            (false, true) => b,
            _ if sa && !sb => b,
            _ if sb && !sa => a,
            _ => {
                // Equal significands: the positive one.
                if a.sig > b.sig {
                    a
                } else if b.sig > a.sig || (a.sign() && !b.sign()) {
                    b
                } else {
                    a
                }
            }
        };
        Some(r.quiet())
    }

    /// Operand screening for two-operand arithmetic. `Err(r)` decides the result
    /// (unsupported → indefinite, NaN → propagated, unmasked DE → none).
    pub fn screen2(&mut self, a: F80, b: F80) -> Result<(), Option<F80>> {
        self.screen_nan2(a, b)?;
        self.screen_den2(a, b)
    }

    /// The unsupported-encoding and NaN part of [`Ctx::screen2`].
    pub fn screen_nan2(&mut self, a: F80, b: F80) -> Result<(), Option<F80>> {
        if a.is_unsupported() || b.is_unsupported() {
            return Err(self.invalid());
        }
        if a.is_nan() || b.is_nan() {
            return Err(self.propagate(a, b));
        }
        Ok(())
    }

    /// The denormal-operand part of [`Ctx::screen2`].
    pub fn screen_den2(&mut self, a: F80, b: F80) -> Result<(), Option<F80>> {
        if (a.is_denormal() || b.is_denormal()) && !self.denormal() {
            return Err(None);
        }
        Ok(())
    }

    /// Operand screening for one-operand arithmetic.
    pub fn screen1(&mut self, a: F80) -> Result<(), Option<F80>> {
        if a.is_unsupported() {
            return Err(self.invalid());
        }
        if a.is_nan() {
            return Err(self.propagate(a, a));
        }
        if a.is_denormal() && !self.denormal() {
            return Err(None);
        }
        Ok(())
    }

    /// a + b (or a − b with `sub`), rounded with the context's precision.
    pub fn add(&mut self, a: F80, b: F80, sub: bool) -> Option<F80> {
        if let Err(r) = self.screen2(a, b) {
            return r;
        }
        let b = if sub { b.neg() } else { b };
        self.add_screened(a, b)
    }

    /// Addition of two screened operands (no NaN, no unsupported encodings).
    pub fn add_screened(&mut self, a: F80, b: F80) -> Option<F80> {
        if a.is_inf() {
            if b.is_inf() && a.sign() != b.sign() {
                return self.invalid();
            }
            return Some(a);
        }
        if b.is_inf() {
            return Some(b);
        }
        match (a.is_zero(), b.is_zero()) {
            (true, true) => {
                return Some(if a.sign() == b.sign() {
                    a
                } else {
                    self.cancel_zero()
                })
            }
            (true, false) => return Some(self.round_value(b)),
            (false, true) => return Some(self.round_value(a)),
            _ => {}
        }
        let (mut sa, mut ea, mut ma) = a.unpack();
        let (mut sb, mut eb, mut mb) = b.unpack();
        if ea < eb || (ea == eb && ma < mb) {
            std::mem::swap(&mut sa, &mut sb);
            std::mem::swap(&mut ea, &mut eb);
            std::mem::swap(&mut ma, &mut mb);
        }
        let xa = (ma as u128) << 63;
        let d = (ea - eb).min(200) as u32;
        let xb = super::float80::shr_jam128((mb as u128) << 63, d);
        let s = if sa == sb {
            xa + xb
        } else {
            let s = xa - xb;
            if s == 0 {
                return Some(self.cancel_zero());
            }
            s
        };
        Some(self.round80(sa, ea + 1, s))
    }

    /// Round a finite supported value to the context's precision (used when the other
    /// operand of an addition is zero, and by conversions).
    pub fn round_value(&mut self, a: F80) -> F80 {
        if a.is_zero() {
            self.c1 = false;
            return a;
        }
        let (s, e, m) = a.unpack();
        self.round80_u64(s, e, m)
    }

    pub fn mul(&mut self, a: F80, b: F80) -> Option<F80> {
        if let Err(r) = self.screen2(a, b) {
            return r;
        }
        let sign = a.sign() ^ b.sign();
        if a.is_inf() || b.is_inf() {
            if a.is_zero() || b.is_zero() {
                return self.invalid();
            }
            return Some(F80::inf(sign));
        }
        if a.is_zero() || b.is_zero() {
            return Some(F80::zero(sign));
        }
        let (_, ea, ma) = a.unpack();
        let (_, eb, mb) = b.unpack();
        let p = ma as u128 * mb as u128;
        Some(self.round80(sign, ea + eb - BIAS + 1, p))
    }

    pub fn div(&mut self, a: F80, b: F80) -> Option<F80> {
        let sign = a.sign() ^ b.sign();
        // Division of a finite non-zero value by zero raises ZE only (no DE for a
        // denormal dividend).
        if b.is_zero() && a.is_finite_nonzero() {
            return self.div_zero(sign);
        }
        if let Err(r) = self.screen2(a, b) {
            return r;
        }
        if a.is_inf() {
            if b.is_inf() {
                return self.invalid();
            }
            return Some(F80::inf(sign));
        }
        if b.is_inf() {
            return Some(F80::zero(sign));
        }
        if b.is_zero() {
            if a.is_zero() {
                return self.invalid();
            }
            return self.div_zero(sign);
        }
        if a.is_zero() {
            return Some(F80::zero(sign));
        }
        let (_, ea, ma) = a.unpack();
        let (_, eb, mb) = b.unpack();
        let (q, e) = div_sig(ma, mb);
        Some(self.round80(sign, ea - eb + BIAS - 1 + e, q))
    }

    pub fn sqrt(&mut self, a: F80) -> Option<F80> {
        if a.is_unsupported() {
            return self.invalid();
        }
        if a.is_nan() {
            return self.propagate(a, a);
        }
        if a.is_zero() {
            return Some(a);
        }
        if a.sign() {
            return self.invalid();
        }
        if a.is_inf() {
            return Some(a);
        }
        if a.is_denormal() && !self.denormal() {
            return None;
        }
        let (_, ea, ma) = a.unpack();
        let ue = ea - BIAS;
        let n = if ue & 1 == 0 {
            (ma as u128) << 63
        } else {
            (ma as u128) << 64
        };
        let q = sqrt_sig(n);
        Some(self.round80(false, BIAS + ue.div_euclid(2), q))
    }

    /// Compare a with b. `quiet`: QNaN operands do not raise IE (FUCOM*).
    pub fn compare(&mut self, a: F80, b: F80, quiet: bool) -> Cmp {
        if a.is_unsupported() || b.is_unsupported() {
            self.flags |= IE;
            return Cmp::Unordered;
        }
        if a.is_nan() || b.is_nan() {
            if !quiet || a.is_snan() || b.is_snan() {
                self.flags |= IE;
            }
            return Cmp::Unordered;
        }
        if a.is_denormal() || b.is_denormal() {
            self.flags |= DE;
        }
        compare_values(a, b)
    }
}

/// Ordering of two non-NaN supported values (±0 equal).
pub fn compare_values(a: F80, b: F80) -> Cmp {
    use std::cmp::Ordering;
    if a.is_zero() && b.is_zero() {
        return Cmp::Equal;
    }
    let key = |x: F80| -> (i32, u64) {
        match x.class() {
            Class::Zero => (i32::MIN, 0),
            Class::Infinity => (i32::MAX, 0),
            _ => {
                let (_, e, m) = x.unpack();
                (e, m)
            }
        }
    };
    let (sa, sb) = (a.sign() && !a.is_zero(), b.sign() && !b.is_zero());
    let mag = key(a).cmp(&key(b));
    let ord = match (sa, sb) {
        (false, true) => Ordering::Greater,
        (true, false) => Ordering::Less,
        (false, false) => mag,
        (true, true) => mag.reverse(),
    };
    match ord {
        Ordering::Less => Cmp::Less,
        Ordering::Equal => Cmp::Equal,
        Ordering::Greater => Cmp::Greater,
    }
}

/// Quotient of two normalised significands to 128 bits plus a sticky bit: returns
/// (q, k) with ma/mb = q × 2^(k − 128) (k is 0 or 1) and bit 127 of q set.
pub fn div_sig(ma: u64, mb: u64) -> (u128, i32) {
    let (num, k) = if ma >= mb {
        ((ma as u128) << 63, 1)
    } else {
        ((ma as u128) << 64, 0)
    };
    let q1 = num / mb as u128;
    let r1 = num % mb as u128;
    let n2 = r1 << 64;
    let q2 = n2 / mb as u128;
    let r2 = n2 % mb as u128;
    ((q1 << 64) | q2 | (r2 != 0) as u128, k)
}

/// Square root of n (2^126 <= n < 2^128) as a 128-bit value: the 64-bit integer root
/// in the high half, and in the low half a rounding code (bit 63: above half, bit 0:
/// inexact), enough to round correctly at any precision up to 64 bits.
pub fn sqrt_sig(n: u128) -> u128 {
    let r = isqrt128(n);
    let rem = n - r as u128 * r as u128;
    let low: u128 = if rem == 0 {
        0
    } else if rem > r as u128 {
        (1 << 63) | 1
    } else {
        1
    };
    ((r as u128) << 64) | low
}

/// Integer square root (floor) of a 128-bit value.
pub fn isqrt128(n: u128) -> u64 {
    let mut rem: u128 = 0;
    let mut root: u128 = 0;
    for i in (0..64).rev() {
        rem = (rem << 2) | ((n >> (2 * i)) & 3);
        root <<= 1;
        let t = (root << 1) | 1;
        if rem >= t {
            rem -= t;
            root |= 1;
        }
    }
    root as u64
}
