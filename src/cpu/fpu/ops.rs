//! Non-IEEE-basic x87 operations: partial remainder (FPREM/FPREM1), round to integer,
//! scale, extract, and exact integer conversions.

use super::float80::{BIAS, F80, INT_BIT};
use super::round::Ctx;

/// Result of FPREM/FPREM1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Remainder {
    pub value: F80,
    /// Low bits of the quotient (complete reduction) or of the partial quotient.
    pub quotient: u64,
    /// The reduction finished (C2 = 0).
    pub complete: bool,
}

/// An integer as an exact 80-bit value.
pub fn from_i64(v: i64) -> F80 {
    from_mag(v < 0, v.unsigned_abs())
}

/// Sign and magnitude as an exact 80-bit value.
pub fn from_mag(sign: bool, mag: u64) -> F80 {
    if mag == 0 {
        return F80::zero(sign);
    }
    let lz = mag.leading_zeros();
    F80::new(sign, (BIAS + 63 - lz as i32) as u16, mag << lz)
}

impl Ctx {
    /// Round a finite supported value to an integer magnitude in the current rounding
    /// mode: (magnitude, inexact, rounded up); None when |result| >= 2^64.
    pub fn int_part(&mut self, a: F80) -> Option<(u64, bool, bool)> {
        if a.is_zero() {
            return Some((0, false, false));
        }
        let (s, e, m) = a.unpack();
        let ue = e - BIAS;
        if ue >= 64 {
            return None;
        }
        if ue == 63 {
            return Some((m, false, false));
        }
        let f = (63 - ue).min(127) as u32;
        let (q, inexact, up) = self.round_bits(s, m as u128, f);
        if q >> 64 != 0 {
            return None;
        }
        Some((q as u64, inexact, up))
    }

    /// FRNDINT.
    pub fn round_int(&mut self, a: F80) -> Option<F80> {
        if let Err(r) = self.screen1(a) {
            return r;
        }
        if a.is_inf() || a.is_zero() {
            return Some(a);
        }
        let (_, e, _) = a.unpack();
        if e - BIAS >= 63 {
            return Some(a);
        }
        let (q, inexact, up) = self.int_part(a).expect("below 2^63");
        if inexact {
            self.raise(super::round::exc::PE);
        }
        self.c1 = up;
        Some(from_mag(a.sign(), q))
    }

    /// FPREM (`ieee` = false, quotient truncated) and FPREM1 (`ieee` = true, quotient
    /// rounded to nearest). A reduction by more than 63 exponent steps is partial.
    pub fn prem(&mut self, a: F80, b: F80, ieee: bool) -> Option<Remainder> {
        let done = |value| Remainder {
            value,
            quotient: 0,
            complete: true,
        };
        if let Err(r) = self.screen_nan2(a, b) {
            return r.map(done);
        }
        // Invalid operands are reported before (and instead of) denormal ones.
        if a.is_inf() || b.is_zero() {
            return self.invalid().map(done);
        }
        if let Err(r) = self.screen_den2(a, b) {
            return r.map(done);
        }
        if a.is_zero() {
            return Some(done(a));
        }
        // A result equal to ST(0) still goes through rounding: pseudo-denormals come out
        // normalised, and a denormal with UE unmasked gets the wrapped exponent.
        let mut fc = Ctx::new(self.cw);
        let unchanged = |fc: &mut Ctx, this: &mut Ctx| {
            let (s, e, m) = a.unpack();
            let v = fc.round80_u64(s, e, m);
            this.flags |= fc.flags;
            this.c1 = false;
            Some(done(v))
        };
        // By an infinite divisor ST(0) is returned as it is (a denormal raises no UE even
        // when unmasked); only a pseudo-denormal gets its exponent fixed to 1.
        if b.is_inf() {
            if a.class() == super::float80::Class::PseudoDenormal {
                return Some(done(F80::new(a.sign(), 1, a.sig)));
            }
            return Some(done(a));
        }
        let (sa, ea, ma) = a.unpack();
        let (_, eb, mb) = b.unpack();
        let d = ea - eb;
        if d >= 64 {
            let n = 32 + (d & 31) as u32;
            let aa = (ma as u128) << n;
            let q = aa / mb as u128;
            let r = aa % mb as u128;
            let v = if r == 0 {
                F80::zero(sa)
            } else {
                fc.round80(sa, ea - n as i32 + 1, r << 63)
            };
            self.flags |= fc.flags;
            self.c1 = false;
            return Some(Remainder {
                value: v,
                quotient: q as u64,
                complete: false,
            });
        }
        if d < -1 || (d == -1 && !ieee) {
            return unchanged(&mut fc, self);
        }
        let e0 = ea.min(eb);
        let aa = (ma as u128) << (ea - e0);
        let bb = (mb as u128) << (eb - e0);
        let mut q = aa / bb;
        let mut r = aa % bb;
        let mut sign = sa;
        if ieee && (2 * r > bb || (2 * r == bb && q & 1 == 1)) {
            q += 1;
            r = bb - r;
            sign = !sign;
        }
        let v = if r == 0 {
            F80::zero(sa)
        } else {
            fc.round80(sign, e0 + 1, r << 63)
        };
        self.flags |= fc.flags;
        self.c1 = false;
        Some(Remainder {
            value: v,
            quotient: q as u64,
            complete: true,
        })
    }

    /// FSCALE: a × 2^trunc(b).
    pub fn scale(&mut self, a: F80, b: F80) -> Option<F80> {
        if let Err(r) = self.screen2(a, b) {
            return r;
        }
        if b.is_inf() {
            return if !b.sign() {
                if a.is_zero() {
                    self.invalid()
                } else {
                    Some(F80::inf(a.sign()))
                }
            } else if a.is_inf() {
                self.invalid()
            } else {
                Some(F80::zero(a.sign()))
            };
        }
        if a.is_inf() || a.is_zero() {
            return Some(a);
        }
        let n: i32 = if b.is_zero() {
            0
        } else {
            let (sb, eb, mb) = b.unpack();
            let ub = eb - BIAS;
            let mag = if ub < 0 {
                0
            } else if ub > 17 {
                1 << 18
            } else {
                (mb >> (63 - ub)) as i32
            };
            if sb {
                -mag
            } else {
                mag
            }
        };
        let (s, e, m) = a.unpack();
        Some(self.round80_u64(s, e + n, m))
    }

    /// FXTRACT: (exponent, significand) of a.
    pub fn extract(&mut self, a: F80) -> Option<(F80, F80)> {
        if let Err(r) = self.screen1(a) {
            return r.map(|v| (v, v));
        }
        if a.is_zero() {
            self.raise(super::round::exc::ZE);
            if !self.masked(super::round::exc::ZE) {
                return None;
            }
            return Some((F80::inf(true), a));
        }
        if a.is_inf() {
            return Some((F80::inf(false), a));
        }
        let (s, e, m) = a.unpack();
        debug_assert!(m & INT_BIT != 0);
        Some((from_i64((e - BIAS) as i64), F80::new(s, BIAS as u16, m)))
    }
}
