//! Conversions between the 80-bit register format and the memory formats: single and
//! double real, 16/32/64-bit integers and 18-digit packed BCD.

use super::float80::{BIAS, F80, INT_BIT, QUIET_BIT};
use super::ops::from_mag;
use super::round::exc::*;
use super::round::Ctx;

/// Integer indefinite for a `bits`-wide store (the most negative integer).
pub fn int_indefinite(bits: u32) -> i64 {
    i64::MIN >> (64 - bits)
}

/// Packed BCD indefinite (bytes 0..9).
pub const BCD_INDEFINITE: [u8; 10] = [0, 0, 0, 0, 0, 0, 0, 0xC0, 0xFF, 0xFF];

/// Largest magnitude FBSTP accepts: 18 nines.
const BCD_MAX: u64 = 999_999_999_999_999_999;

/// Memory format of a real operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Real {
    /// Fraction bits (without the hidden integer bit).
    frac: u32,
    /// Exponent field width.
    ebits: u32,
}

const SINGLE: Real = Real { frac: 23, ebits: 8 };
const DOUBLE: Real = Real {
    frac: 52,
    ebits: 11,
};

impl Real {
    fn bias(self) -> i32 {
        (1 << (self.ebits - 1)) - 1
    }
    fn emax(self) -> i32 {
        (1 << self.ebits) - 2
    }
}

impl Ctx {
    fn load_real(&mut self, bits: u64, f: Real) -> Option<F80> {
        let sign = bits >> (f.frac + f.ebits) & 1 != 0;
        let e = ((bits >> f.frac) & ((1 << f.ebits) - 1)) as i32;
        let frac = bits & ((1u64 << f.frac) - 1);
        let top = frac << (63 - f.frac);
        if e == (1 << f.ebits) - 1 {
            if frac == 0 {
                return Some(F80::inf(sign));
            }
            let v = F80::new(sign, 0x7FFF, INT_BIT | top);
            if v.is_snan() {
                self.raise(IE);
                if !self.masked(IE) {
                    return None;
                }
                return Some(v.quiet());
            }
            return Some(v);
        }
        if e == 0 {
            if frac == 0 {
                return Some(F80::zero(sign));
            }
            // DE is reported, but the value is loaded even when DE is unmasked.
            self.raise(DE);
            let lz = top.leading_zeros();
            return Some(F80::new(
                sign,
                (BIAS - f.bias() + 1 - lz as i32) as u16,
                top << lz,
            ));
        }
        Some(F80::new(sign, (e - f.bias() + BIAS) as u16, INT_BIT | top))
    }

    /// FLD m32real.
    pub fn load_f32(&mut self, bits: u32) -> Option<F80> {
        self.load_real(bits as u64, SINGLE)
    }

    /// FLD m64real.
    pub fn load_f64(&mut self, bits: u64) -> Option<F80> {
        self.load_real(bits, DOUBLE)
    }

    fn store_real(&mut self, a: F80, f: Real) -> Option<u64> {
        let sign_bit = (a.sign() as u64) << (f.frac + f.ebits);
        let exp_all = ((1u64 << f.ebits) - 1) << f.frac;
        let quiet = 1u64 << (f.frac - 1);
        self.c1 = false;
        if a.is_unsupported() {
            self.raise(IE);
            return self
                .masked(IE)
                .then_some((1 << (f.frac + f.ebits)) | exp_all | quiet);
        }
        if a.is_nan() {
            if a.is_snan() {
                self.raise(IE);
                if !self.masked(IE) {
                    return None;
                }
            }
            let payload = ((a.sig | QUIET_BIT) & !INT_BIT) >> (63 - f.frac);
            return Some(sign_bit | exp_all | payload);
        }
        if a.is_inf() {
            return Some(sign_bit | exp_all);
        }
        if a.is_zero() {
            return Some(sign_bit);
        }
        // A denormal source raises no DE on a store (only UE/PE from the rounding).
        let (s, e, m) = a.unpack();
        let (exp, sig) = self.round_pack(
            s,
            e - BIAS + f.bias(),
            (m as u128) << 64,
            f.frac + 1,
            f.emax(),
            false,
        )?;
        let frac = (sig >> (63 - f.frac)) & ((1u64 << f.frac) - 1);
        Some(sign_bit | ((exp as u64) << f.frac) | frac)
    }

    /// FST m32real.
    pub fn store_f32(&mut self, a: F80) -> Option<u32> {
        self.store_real(a, SINGLE).map(|v| v as u32)
    }

    /// FST m64real.
    pub fn store_f64(&mut self, a: F80) -> Option<u64> {
        self.store_real(a, DOUBLE)
    }

    /// FIST/FISTP to a `bits`-wide integer (16, 32 or 64) in the current rounding mode.
    pub fn store_int(&mut self, a: F80, bits: u32) -> Option<i64> {
        self.c1 = false;
        let indefinite = |c: &mut Ctx| {
            c.raise(IE);
            c.masked(IE).then_some(int_indefinite(bits))
        };
        if a.is_unsupported() || a.is_nan() || a.is_inf() {
            return indefinite(self);
        }
        let Some((mag, inexact, up)) = self.int_part(a) else {
            return indefinite(self);
        };
        let limit = 1u64 << (bits - 1);
        if mag > limit || (mag == limit && !a.sign()) {
            return indefinite(self);
        }
        if inexact {
            self.raise(PE);
        }
        self.c1 = up;
        let v = if a.sign() {
            (mag as i64).wrapping_neg()
        } else {
            mag as i64
        };
        Some(v)
    }

    /// FBSTP: round to an integer and store 18 packed BCD digits.
    pub fn store_bcd(&mut self, a: F80) -> Option<[u8; 10]> {
        self.c1 = false;
        let indefinite = |c: &mut Ctx| {
            c.raise(IE);
            c.masked(IE).then_some(BCD_INDEFINITE)
        };
        if a.is_unsupported() || a.is_nan() || a.is_inf() {
            return indefinite(self);
        }
        let Some((mut mag, inexact, up)) = self.int_part(a) else {
            return indefinite(self);
        };
        if mag > BCD_MAX {
            return indefinite(self);
        }
        if inexact {
            self.raise(PE);
        }
        self.c1 = up;
        let mut b = [0u8; 10];
        for byte in b.iter_mut().take(9) {
            let lo = (mag % 10) as u8;
            mag /= 10;
            let hi = (mag % 10) as u8;
            mag /= 10;
            *byte = (hi << 4) | lo;
        }
        b[9] = if a.sign() { 0x80 } else { 0 };
        Some(b)
    }
}

/// FILD: any integer is exact in the 64-bit significand.
pub fn load_int(v: i64) -> F80 {
    super::ops::from_i64(v)
}

/// FBLD: 18 packed BCD digits and a sign byte. Digits above 9 are not defined by Intel;
/// they are weighted like valid ones here (value = Σ digit × 10^k).
pub fn load_bcd(b: [u8; 10]) -> F80 {
    let mut mag: u64 = 0;
    for &byte in b[..9].iter().rev() {
        mag = mag
            .wrapping_mul(10)
            .wrapping_add((byte >> 4) as u64)
            .wrapping_mul(10)
            .wrapping_add((byte & 0xF) as u64);
    }
    from_mag(b[9] & 0x80 != 0, mag)
}
