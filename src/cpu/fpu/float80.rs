//! The 80-bit double extended-precision format: representation and classification.
//!
//! A value is a sign bit, a 15-bit biased exponent and a 64-bit significand whose bit 63
//! is the explicit integer bit. Besides the IEEE classes the format has encodings the
//! 80387 and later reject as operands (unnormals, pseudo-NaNs, pseudo-infinities: an
//! invalid-operation exception) and pseudo-denormals (exponent 0 with the integer bit
//! set), which are accepted and treated as denormals.

/// Exponent bias of the extended format.
pub const BIAS: i32 = 16383;
/// Largest biased exponent of a finite value.
pub const EXP_MAX_FINITE: i32 = 0x7FFE;

/// An 80-bit extended-precision value as raw fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub struct F80 {
    /// Bit 15: sign; bits 0-14: biased exponent.
    pub se: u16,
    /// Significand with the explicit integer bit at bit 63.
    pub sig: u64,
}

/// Operand classes, as far as arithmetic cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Zero,
    /// Exponent 0, integer bit clear, significand non-zero.
    Denormal,
    /// Exponent 0 with the integer bit set (the 8087/80287 could produce these).
    PseudoDenormal,
    Normal,
    /// Exponent 1..7FFE with the integer bit clear: unsupported (invalid operand).
    Unnormal,
    Infinity,
    QNaN,
    SNaN,
    /// Exponent 7FFF with the integer bit clear (pseudo-infinity, pseudo-NaN): unsupported.
    PseudoNaN,
}

pub const INT_BIT: u64 = 1 << 63;
pub const QUIET_BIT: u64 = 1 << 62;

impl F80 {
    /// The default NaN ("real indefinite") of masked invalid operations.
    pub const INDEFINITE: F80 = F80 {
        se: 0xFFFF,
        sig: 0xC000_0000_0000_0000,
    };
    pub const ZERO: F80 = F80 { se: 0, sig: 0 };
    pub const NEG_ZERO: F80 = F80 { se: 0x8000, sig: 0 };
    pub const ONE: F80 = F80 {
        se: 0x3FFF,
        sig: INT_BIT,
    };
    pub const INFINITY: F80 = F80 {
        se: 0x7FFF,
        sig: INT_BIT,
    };

    #[inline]
    pub const fn new(sign: bool, exp: u16, sig: u64) -> F80 {
        F80 {
            se: ((sign as u16) << 15) | (exp & 0x7FFF),
            sig,
        }
    }
    #[inline]
    pub const fn sign(self) -> bool {
        self.se & 0x8000 != 0
    }
    #[inline]
    pub const fn exp(self) -> u16 {
        self.se & 0x7FFF
    }
    #[inline]
    pub const fn neg(self) -> F80 {
        F80 {
            se: self.se ^ 0x8000,
            sig: self.sig,
        }
    }
    #[inline]
    pub const fn abs(self) -> F80 {
        F80 {
            se: self.se & 0x7FFF,
            sig: self.sig,
        }
    }
    #[inline]
    pub const fn with_sign(self, sign: bool) -> F80 {
        F80 {
            se: (self.se & 0x7FFF) | ((sign as u16) << 15),
            sig: self.sig,
        }
    }
    /// Signed zero / infinity.
    #[inline]
    pub const fn zero(sign: bool) -> F80 {
        F80::new(sign, 0, 0)
    }
    #[inline]
    pub const fn inf(sign: bool) -> F80 {
        F80::new(sign, 0x7FFF, INT_BIT)
    }

    pub fn class(self) -> Class {
        let e = self.exp();
        let int = self.sig & INT_BIT != 0;
        match e {
            0 if self.sig == 0 => Class::Zero,
            0 if int => Class::PseudoDenormal,
            0 => Class::Denormal,
            0x7FFF if !int => Class::PseudoNaN,
            0x7FFF if self.sig << 1 == 0 => Class::Infinity,
            0x7FFF if self.sig & QUIET_BIT != 0 => Class::QNaN,
            0x7FFF => Class::SNaN,
            _ if int => Class::Normal,
            _ => Class::Unnormal,
        }
    }

    /// An encoding the FPU refuses as an arithmetic operand (IE).
    #[inline]
    pub fn is_unsupported(self) -> bool {
        matches!(self.class(), Class::Unnormal | Class::PseudoNaN)
    }
    #[inline]
    pub fn is_nan(self) -> bool {
        matches!(self.class(), Class::QNaN | Class::SNaN)
    }
    #[inline]
    pub fn is_snan(self) -> bool {
        self.class() == Class::SNaN
    }
    #[inline]
    pub fn is_inf(self) -> bool {
        self.class() == Class::Infinity
    }
    #[inline]
    pub fn is_zero(self) -> bool {
        self.exp() == 0 && self.sig == 0
    }
    /// Denormal or pseudo-denormal: using it as an operand raises DE.
    #[inline]
    pub fn is_denormal(self) -> bool {
        self.exp() == 0 && self.sig != 0
    }
    /// A finite non-zero value in a supported encoding.
    #[inline]
    pub fn is_finite_nonzero(self) -> bool {
        matches!(
            self.class(),
            Class::Normal | Class::Denormal | Class::PseudoDenormal
        )
    }
    /// The NaN with its quiet bit set.
    #[inline]
    pub const fn quiet(self) -> F80 {
        F80 {
            se: self.se,
            sig: self.sig | QUIET_BIT,
        }
    }

    /// Unpack a finite non-zero supported value into (sign, exponent, significand) with
    /// the significand normalised (bit 63 set): value = sig × 2^(exp − BIAS − 63).
    /// Denormals get exponents below 1.
    #[inline]
    pub fn unpack(self) -> (bool, i32, u64) {
        let mut e = self.exp() as i32;
        let mut m = self.sig;
        if e == 0 {
            e = 1;
        }
        let lz = m.leading_zeros() as i32;
        m <<= lz;
        e -= lz;
        (self.sign(), e, m)
    }

    /// The ten bytes of the memory image (little-endian).
    pub fn to_bytes(self) -> [u8; 10] {
        let mut b = [0u8; 10];
        b[..8].copy_from_slice(&self.sig.to_le_bytes());
        b[8..].copy_from_slice(&self.se.to_le_bytes());
        b
    }
    pub fn from_bytes(b: [u8; 10]) -> F80 {
        F80 {
            sig: u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
            se: u16::from_le_bytes([b[8], b[9]]),
        }
    }
}

/// Shift right, ORing every bit shifted out into bit 0 (the sticky bit).
#[inline]
pub fn shr_jam128(v: u128, n: u32) -> u128 {
    if n == 0 {
        v
    } else if n >= 128 {
        (v != 0) as u128
    } else {
        (v >> n) | ((v << (128 - n) != 0) as u128)
    }
}
