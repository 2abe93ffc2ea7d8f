//! A 128-bit-significand floating-point type for the transcendental instructions: all
//! intermediate values carry about twice the precision of the 64-bit result, so the
//! single final rounding is correct except in astronomically rare cases. Integer
//! arithmetic only.

use super::float80::{BIAS, F80};
use super::round::Ctx;

const LO64: u128 = u64::MAX as u128;

/// value = (−1)^neg × m × 2^(exp − 127); `m` has bit 127 set unless the value is 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct W {
    pub neg: bool,
    pub exp: i32,
    pub m: u128,
}

impl W {
    pub const ZERO: W = W {
        neg: false,
        exp: 0,
        m: 0,
    };
    pub const ONE: W = W {
        neg: false,
        exp: 0,
        m: 1 << 127,
    };

    /// A constant given as (exponent of bit 127, significand).
    pub const fn c(exp: i32, m: u128) -> W {
        W { neg: false, exp, m }
    }

    /// Normalise an arbitrary significand.
    pub fn norm(neg: bool, exp: i32, m: u128) -> W {
        if m == 0 {
            return W::ZERO;
        }
        let lz = m.leading_zeros();
        W {
            neg,
            exp: exp - lz as i32,
            m: m << lz,
        }
    }

    /// value = v × 2^scale.
    pub fn from_int(neg: bool, v: u128, scale: i32) -> W {
        W::norm(neg, scale + 127, v)
    }

    /// A finite supported 80-bit value (exact).
    pub fn from_f80(x: F80) -> W {
        if x.is_zero() {
            return W::ZERO;
        }
        let (s, e, m) = x.unpack();
        W {
            neg: s,
            exp: e - BIAS,
            m: (m as u128) << 64,
        }
    }

    pub fn is_zero(self) -> bool {
        self.m == 0
    }

    pub fn negate(self) -> W {
        W {
            neg: !self.neg && self.m != 0,
            ..self
        }
    }

    pub fn neg_if(self, c: bool) -> W {
        if c {
            self.negate()
        } else {
            self
        }
    }

    pub fn abs(self) -> W {
        W { neg: false, ..self }
    }

    /// Scale by 2^k.
    pub fn pow2(self, k: i32) -> W {
        if self.m == 0 {
            return self;
        }
        W {
            exp: self.exp + k,
            ..self
        }
    }

    pub fn times(self, o: W) -> W {
        if self.m == 0 || o.m == 0 {
            return W::ZERO;
        }
        let (ah, al) = (self.m >> 64, self.m & LO64);
        let (bh, bl) = (o.m >> 64, o.m & LO64);
        let ll = al * bl;
        let lh = al * bh;
        let hl = ah * bl;
        let hh = ah * bh;
        let mid = (ll >> 64) + (lh & LO64) + (hl & LO64);
        let hi = hh + (lh >> 64) + (hl >> 64) + (mid >> 64);
        let neg = self.neg != o.neg;
        if hi >> 127 != 0 {
            W {
                neg,
                exp: self.exp + o.exp + 1,
                m: hi,
            }
        } else {
            W {
                neg,
                exp: self.exp + o.exp,
                m: (hi << 1) | ((mid >> 63) & 1),
            }
        }
    }

    pub fn plus(self, o: W) -> W {
        if self.m == 0 {
            return o;
        }
        if o.m == 0 {
            return self;
        }
        let (a, b) = if (self.exp, self.m) >= (o.exp, o.m) {
            (self, o)
        } else {
            (o, self)
        };
        let d = (a.exp - b.exp) as u32;
        // One guard bit below the 128: shift both right by one first.
        let am = a.m >> 1;
        let bm = if d >= 127 { 0 } else { (b.m >> 1) >> d };
        if a.neg == b.neg {
            W::norm(a.neg, a.exp + 1, am + bm)
        } else {
            W::norm(a.neg, a.exp + 1, am - bm)
        }
    }

    pub fn minus(self, o: W) -> W {
        self.plus(o.negate())
    }

    pub fn over(self, o: W) -> W {
        debug_assert!(o.m != 0);
        if self.m == 0 {
            return W::ZERO;
        }
        let d = o.m;
        let mut rem = self.m;
        let mut carry = false;
        let mut q: u128 = 0;
        for _ in 0..128 {
            let ge = carry || rem >= d;
            q = (q << 1) | ge as u128;
            if ge {
                rem = rem.wrapping_sub(d);
            }
            carry = rem >> 127 != 0;
            rem <<= 1;
        }
        W::norm(self.neg != o.neg, self.exp - o.exp, q)
    }

    /// Division by a small integer.
    pub fn div_u(self, d: u64) -> W {
        if self.m == 0 {
            return self;
        }
        let d = d as u128;
        let qh = self.m / d;
        let r = self.m % d;
        let ql = (r << 64) / d;
        let s = qh.leading_zeros().min(64);
        let q = (qh << s) | if s == 0 { 0 } else { ql >> (64 - s) };
        W::norm(self.neg, self.exp - s as i32, q)
    }

    pub fn mul_u(self, v: u64) -> W {
        self.times(W::from_int(false, v as u128, 0))
    }

    /// Round to an 80-bit value. The value is an approximation of an irrational
    /// result, so it is treated as inexact (sticky bit set).
    pub fn round(self, ctx: &mut Ctx) -> F80 {
        if self.m == 0 {
            return F80::zero(self.neg);
        }
        ctx.round80(self.neg, self.exp + BIAS, self.m | 1)
    }

    /// Round main + corr, where corr is a small correction that may have been lost in
    /// the sum: its sign tells on which side of the computed sum the true value lies,
    /// which decides the rounding (and C1) when the sum sits on a 64-bit boundary.
    pub fn round_pair(self, corr: W, ctx: &mut Ctx) -> F80 {
        let s = self.plus(corr);
        if s.m == 0 {
            return corr.round(ctx);
        }
        let resid = self.minus(s).plus(corr);
        let smaller = !resid.is_zero() && resid.neg != s.neg;
        let m = if smaller { (s.m - 1) | 1 } else { s.m | 1 };
        ctx.round80(s.neg, s.exp + BIAS, m)
    }

    /// Integer part (truncated) of a non-negative value below 2^64, and the fraction.
    pub fn split_int(self) -> (u64, W) {
        if self.m == 0 || self.exp < 0 {
            return (0, self);
        }
        let sh = 127 - self.exp;
        let ip = (self.m >> sh) as u64;
        let frac = self.m & ((1u128 << sh) - 1);
        (ip, W::norm(self.neg, self.exp, frac))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approx(a: W, b: W, bits: i32) -> bool {
        let d = a.minus(b);
        d.is_zero() || d.exp <= a.exp - bits
    }

    #[test]
    fn arithmetic_identities() {
        let three = W::from_int(false, 3, 0);
        let seven = W::from_int(false, 7, 0);
        let q = three.over(seven);
        assert!(approx(q.times(seven), three, 125));
        assert!(approx(three.div_u(7), q, 125));
        assert_eq!(three.plus(seven), W::from_int(false, 10, 0));
        assert_eq!(three.minus(seven), W::from_int(true, 4, 0));
        assert_eq!(seven.times(three), W::from_int(false, 21, 0));
        let (ip, fr) = W::from_int(false, 0x0001_2345_6789, -4).split_int();
        assert_eq!(ip, 0x1234_5678);
        assert_eq!(fr, W::from_int(false, 9, -4));
    }
}
