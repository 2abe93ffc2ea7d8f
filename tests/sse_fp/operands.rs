//! Operand generation for the SSE floating-point differential tests: random bits, signed
//! zeros, denormals, infinities, QNaNs and SNaNs with payloads, values with short
//! significands (exact results and exact halfway cases), operand pairs aimed at the
//! overflow and underflow thresholds and at cancellation, values around ±2^31 and halfway
//! between integers, and integers that need rounding.

use rand::rngs::StdRng;
use rand::Rng;
use x86emu::cpu::softfloat::Fmt;

/// What a pair of operands is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PairKind {
    /// ADD/SUB (and MIN/MAX/CMP, which share the interesting cases).
    Add,
    Mul,
    Div,
}

pub struct Gen {
    pub rng: StdRng,
}

impl Gen {
    pub fn new(rng: StdRng) -> Gen {
        Gen { rng }
    }

    fn sign(&mut self, f: Fmt) -> u64 {
        if self.rng.gen() {
            f.sign_bit()
        } else {
            0
        }
    }

    /// Any bit pattern of the format.
    pub fn bits(&mut self, f: Fmt) -> u64 {
        let w = f.frac + f.ebits + 1;
        self.rng.gen::<u64>() & (u64::MAX >> (64 - w))
    }

    /// A fraction field: zero, all ones, a few bits, a short or long random prefix, or
    /// random.
    pub fn mant(&mut self, f: Fmt) -> u64 {
        let fm = f.frac_mask();
        match self.rng.gen_range(0..8) {
            0 => 0,
            1 => fm,
            2 | 3 => {
                let mut m = 0;
                for _ in 0..self.rng.gen_range(1..=3) {
                    m |= 1 << self.rng.gen_range(0..f.frac);
                }
                m
            }
            4 => {
                let k = self.rng.gen_range(0..=f.frac);
                self.rng.gen::<u64>() & fm & !((1u64 << k) - 1)
            }
            5 => fm ^ (1 << self.rng.gen_range(0..f.frac)),
            _ => self.rng.gen::<u64>() & fm,
        }
    }

    /// Random sign and fraction with the given biased exponent (clamped to finite).
    pub fn with_exp(&mut self, f: Fmt, be: i64) -> u64 {
        let be = be.clamp(0, f.emax() as i64) as u64;
        self.sign(f) | be << f.frac | self.mant(f)
    }

    /// Special encodings and the edges of the finite range.
    pub fn special(&mut self, f: Fmt) -> u64 {
        let fm = f.frac_mask();
        let q = f.quiet_bit();
        let inf = f.emask() << f.frac;
        let v = match self.rng.gen_range(0..14) {
            0 | 1 => 0,
            2 => inf,
            3 => inf | q | (self.rng.gen::<u64>() & fm),
            4 => inf | q,
            5 => inf | ((self.rng.gen::<u64>() & (q - 1)).max(1)),
            6 => inf | 1,
            7 | 8 => (self.rng.gen::<u64>() & fm).max(1),
            9 => 1,
            10 => fm,
            11 => 1 << f.frac,
            12 => f.max_finite(false),
            _ => (f.bias() as u64) << f.frac,
        };
        v | self.sign(f)
    }

    /// A single operand from the whole mix.
    pub fn value(&mut self, f: Fmt) -> u64 {
        let bias = f.bias() as i64;
        match self.rng.gen_range(0..10) {
            0..=2 => self.special(f),
            3 | 4 => self.bits(f),
            5 | 6 => {
                let e = bias + self.rng.gen_range(-3..=3);
                self.with_exp(f, e)
            }
            7 => {
                let e = self.rng.gen_range(0..=3);
                self.with_exp(f, e)
            }
            8 => {
                let e = f.emax() as i64 - self.rng.gen_range(0..=2);
                self.with_exp(f, e)
            }
            _ => {
                let e = self.rng.gen_range(0..=f.emax() as i64);
                self.with_exp(f, e)
            }
        }
    }

    /// A pair of operands for `kind`.
    pub fn pair(&mut self, f: Fmt, kind: PairKind) -> (u64, u64) {
        let bias = f.bias() as i64;
        let emax = f.emax() as i64;
        let p = f.frac as i64 + 1;
        match self.rng.gen_range(0..12) {
            0..=2 => (self.value(f), self.value(f)),
            3 => {
                if self.rng.gen() {
                    (self.special(f), self.value(f))
                } else {
                    (self.value(f), self.special(f))
                }
            }
            4 | 5 => {
                // Short significands close together: exact results and halfway cases.
                let ea = self.rng.gen_range(1..=emax);
                let a = self.with_exp(f, ea);
                let eb = match kind {
                    PairKind::Add => ea - self.rng.gen_range(0..=p + 3),
                    _ => bias + self.rng.gen_range(-4..=4),
                };
                (a, self.with_exp(f, eb))
            }
            6..=8 => {
                // Aim the result exponent at the overflow or underflow threshold.
                let t = match self.rng.gen_range(0..4) {
                    0 => emax + self.rng.gen_range(-1..=1),
                    1 | 2 => self.rng.gen_range(-1..=2),
                    _ => -(f.frac as i64) + self.rng.gen_range(-2..=1),
                };
                match kind {
                    PairKind::Add => {
                        if t > 2 {
                            let s = self.sign(f);
                            let (ea, eb) = (self.rng.gen_range(0..=1), self.rng.gen_range(0..=3));
                            let a = self.with_exp(f, emax - ea);
                            let b = self.with_exp(f, emax - eb);
                            (a & !f.sign_bit() | s, b & !f.sign_bit() | s)
                        } else {
                            let (ea, eb) = (self.rng.gen_range(0..=2), self.rng.gen_range(0..=2));
                            let a = self.with_exp(f, ea);
                            let b = self.with_exp(f, eb);
                            (a, b)
                        }
                    }
                    PairKind::Mul => {
                        // be(a) + be(b) − bias ≈ t
                        let lo = (t + bias - emax).max(0);
                        let hi = (t + bias).min(emax);
                        if lo > hi {
                            return (self.value(f), self.value(f));
                        }
                        let eb = self.rng.gen_range(lo..=hi);
                        (self.with_exp(f, t + bias - eb), self.with_exp(f, eb))
                    }
                    PairKind::Div => {
                        // be(a) − be(b) + bias ≈ t
                        let lo = (bias - t).max(0);
                        let hi = (emax + bias - t).min(emax);
                        if lo > hi {
                            return (self.value(f), self.value(f));
                        }
                        let eb = self.rng.gen_range(lo..=hi);
                        (self.with_exp(f, t - bias + eb), self.with_exp(f, eb))
                    }
                }
            }
            9 => {
                // Near-cancellation: b differs from a in its low bits (sign flipped for
                // an addition half of the time).
                let a = self.bits(f) & !(f.emask() << f.frac)
                    | (self.rng.gen_range(0..=emax) as u64) << f.frac;
                let b = a ^ (self.rng.gen::<u64>() & ((1 << self.rng.gen_range(1..8)) - 1));
                let b = if self.rng.gen() { b ^ f.sign_bit() } else { b };
                (a, b)
            }
            _ => {
                let d = (self.rng.gen::<u64>() & f.frac_mask()).max(1) | self.sign(f);
                if self.rng.gen() {
                    (d, self.value(f))
                } else {
                    (self.value(f), d)
                }
            }
        }
    }

    /// An operand for a square root.
    pub fn sqrt_operand(&mut self, f: Fmt) -> u64 {
        match self.rng.gen_range(0..4) {
            0 => self.value(f),
            1 => self.bits(f),
            _ => {
                // Mostly positive, short significands (exact roots) and denormals.
                let e = self.rng.gen_range(0..=f.emax() as i64);
                self.with_exp(f, e) & !f.sign_bit()
            }
        }
    }

    /// An operand for a conversion to int32: around ±2^31, halfway between integers,
    /// small, and the general mix.
    pub fn int_conv_operand(&mut self, f: Fmt) -> u64 {
        let bias = f.bias() as i64;
        match self.rng.gen_range(0..8) {
            0 | 1 => {
                // |x| in [2^30, 2^32): the last few representable values each side of 2^31.
                let s = self.sign(f);
                let be = (bias + 30 + self.rng.gen_range(0..=1)) as u64;
                let k = self.rng.gen_range(0..64u64);
                let m = if be as i64 == bias + 30 {
                    f.frac_mask() - k.min(f.frac_mask())
                } else {
                    k
                };
                s | be << f.frac | m
            }
            2 | 3 => {
                // n + 1/2 (and nearby) for n of any size the format holds exactly.
                let bits = self.rng.gen_range(1..=32.min(f.frac));
                let n = self.rng.gen::<u64>() & ((1 << bits) - 1);
                let v = exact(f, 2 * n + 1, -1).unwrap_or(0);
                let v = v.wrapping_add(self.rng.gen_range(0..3)).wrapping_sub(1);
                v | self.sign(f)
            }
            4 => {
                let e = bias + self.rng.gen_range(-3..=33);
                self.with_exp(f, e)
            }
            _ => self.value(f),
        }
    }

    /// A signed 32-bit integer: limits, any size, and values that need rounding (ties
    /// included) in binary32.
    pub fn int32(&mut self) -> u32 {
        match self.rng.gen_range(0..6) {
            0 => [
                0,
                1,
                u32::MAX,
                0x7FFF_FFFF,
                0x8000_0000,
                0x8000_0001,
                1 << 24,
                (1 << 24) + 1,
            ][self.rng.gen_range(0..8)],
            1 | 2 => {
                let bits = self.rng.gen_range(0..=32);
                let v = (self.rng.gen::<u64>() & ((1u64 << bits) - 1)) as u32;
                if self.rng.gen() {
                    v.wrapping_neg()
                } else {
                    v
                }
            }
            3 => {
                // 24 significant bits followed by a halfway bit, shifted.
                let s = self.rng.gen_range(1..=7);
                let v = ((self.rng.gen::<u32>() | 1 << 23) & 0xFF_FFFF) << s | 1 << (s - 1);
                if self.rng.gen() {
                    v.wrapping_neg()
                } else {
                    v
                }
            }
            _ => self.rng.gen(),
        }
    }

    /// A binary64 operand for a conversion to binary32: around the binary32 range limits
    /// and with low bits at and near the halfway point.
    pub fn f64_for_f32(&mut self, f64f: Fmt) -> u64 {
        match self.rng.gen_range(0..4) {
            0 => self.value(f64f),
            _ => {
                let t: i64 = match self.rng.gen_range(0..4) {
                    0 => self.rng.gen_range(125..=129),
                    1 => self.rng.gen_range(-128..=-124),
                    2 => self.rng.gen_range(-152..=-147),
                    _ => self.rng.gen_range(-150..=130),
                };
                let be = (f64f.bias() as i64 + t) as u64;
                let hi = self.rng.gen::<u64>() & 0x7F_FFFF;
                let hi = [hi, 0, 0x7F_FFFF][self.rng.gen_range(0..3)];
                let half = 1u64 << 28;
                let lo = [
                    0,
                    half,
                    half - 1,
                    half + 1,
                    self.rng.gen::<u64>() & (2 * half - 1),
                ][self.rng.gen_range(0..5)];
                self.sign(f64f) | be << f64f.frac | hi << 29 | lo
            }
        }
    }
}

/// The encoding of `sig × 2^exp2` if it is exactly representable and normal.
pub fn exact(f: Fmt, sig: u64, exp2: i32) -> Option<u64> {
    if sig == 0 {
        return Some(0);
    }
    let top = 63 - sig.leading_zeros() as i32;
    if top > f.frac as i32 {
        return None;
    }
    let be = top + exp2 + f.bias();
    if be < 1 || be > f.emax() {
        return None;
    }
    let m = (sig << (f.frac as i32 - top)) & f.frac_mask();
    Some((be as u64) << f.frac | m)
}
