//! Helpers for the x87 differential test: operand generators, snippet layout and the
//! comparison of FNSAVE images.
//!
//! A case is: FNINIT; FLDZ × 8; FNINIT (so every register holds +0 and is empty, on the
//! host and in the emulator alike); FLDCW; FLD m80 for each stack operand (the last one
//! pushed is ST(0)); the instruction under test; FNSAVE to the start of the data buffer.
//! FNSAVE does not wait, so an unmasked exception stays pending and is never delivered;
//! FNSAVE then reinitialises the FPU.

#![allow(dead_code)]

use crate::common::native::{Snippet, DATA_ADDR, DATA_LEN};
use rand::rngs::StdRng;
use rand::Rng;

/// Offsets inside the data buffer.
pub const SAVE: u32 = 0;
pub const CW: u32 = 108;
pub const STACK: u32 = 112;
pub const MEM_IN: u32 = 192;
pub const MEM_OUT: u32 = 208;

/// An 80-bit value as (sign/exponent, significand).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct X80 {
    pub se: u16,
    pub sig: u64,
}

impl X80 {
    pub const fn new(se: u16, sig: u64) -> X80 {
        X80 { se, sig }
    }
    pub fn bytes(self) -> [u8; 10] {
        let mut b = [0u8; 10];
        b[..8].copy_from_slice(&self.sig.to_le_bytes());
        b[8..].copy_from_slice(&self.se.to_le_bytes());
        b
    }
    pub fn from_bytes(b: &[u8]) -> X80 {
        X80 {
            sig: u64::from_le_bytes(b[..8].try_into().unwrap()),
            se: u16::from_le_bytes([b[8], b[9]]),
        }
    }
    /// From a host double (test-side only).
    pub fn from_f64(v: f64) -> X80 {
        let b = v.to_bits();
        let s = ((b >> 63) as u16) << 15;
        let e = ((b >> 52) & 0x7FF) as i32;
        let f = b & ((1 << 52) - 1);
        if e == 0x7FF {
            return X80::new(s | 0x7FFF, (1 << 63) | (f << 11));
        }
        if e == 0 {
            if f == 0 {
                return X80::new(s, 0);
            }
            let lz = (f << 11).leading_zeros();
            return X80::new(s | (15361 - lz as i32) as u16, (f << 11) << lz);
        }
        X80::new(s | (e - 1023 + 16383) as u16, (1 << 63) | (f << 11))
    }
}

impl std::fmt::Display for X80 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04x}:{:016x}", self.se, self.sig)
    }
}

/// Encoders for the few instruction shapes the snippets use.
pub fn mem_op(opc: u8, reg: u8, off: u32) -> Vec<u8> {
    let mut v = vec![opc, (reg << 3) | 5];
    v.extend_from_slice(&(DATA_ADDR + off).to_le_bytes());
    v
}

pub fn reg_op(opc: u8, modrm: u8) -> Vec<u8> {
    vec![opc, modrm]
}

/// One generated case.
#[derive(Clone, Debug)]
pub struct Case {
    /// Pushed in order; the last is ST(0).
    pub stack: Vec<X80>,
    pub cw: u16,
    /// Memory operand bytes at MEM_IN.
    pub mem: [u8; 10],
    /// Instruction(s) under test.
    pub code: Vec<u8>,
    /// Input EFLAGS (FCMOVcc).
    pub eflags: u32,
    /// Raw bytes placed at the start of the data buffer (an environment or save image
    /// for FLDENV/FRSTOR/FXRSTOR; the final FNSAVE overwrites the first 108 bytes).
    pub image: Option<Vec<u8>>,
}

impl Case {
    pub fn snippet(&self) -> Snippet {
        let mut code = vec![0xDB, 0xE3];
        for _ in 0..8 {
            code.extend_from_slice(&[0xD9, 0xEE]);
        }
        code.extend_from_slice(&[0xDB, 0xE3]);
        code.extend(mem_op(0xD9, 5, CW));
        for k in 0..self.stack.len() as u32 {
            code.extend(mem_op(0xDB, 5, STACK + 10 * k));
        }
        code.extend_from_slice(&self.code);
        code.extend(mem_op(0xDD, 6, SAVE));
        let mut data = [0u8; DATA_LEN];
        data[CW as usize..CW as usize + 2].copy_from_slice(&self.cw.to_le_bytes());
        for (k, v) in self.stack.iter().enumerate() {
            let o = STACK as usize + 10 * k;
            data[o..o + 10].copy_from_slice(&v.bytes());
        }
        data[MEM_IN as usize..MEM_IN as usize + 10].copy_from_slice(&self.mem);
        if let Some(img) = &self.image {
            data[..img.len()].copy_from_slice(img);
        }
        Snippet {
            code,
            regs: [0x1111_1111, 0, 0, 0, 0, 0, 0, 0],
            eflags: self.eflags,
            data,
        }
    }
}

// ---------------------------------------------------------------------------------
// Operand generation

pub const SPECIALS: [X80; 26] = [
    X80::new(0x0000, 0),                     // +0
    X80::new(0x8000, 0),                     // -0
    X80::new(0x3FFF, 1 << 63),               // 1
    X80::new(0xBFFF, 1 << 63),               // -1
    X80::new(0x7FFF, 1 << 63),               // +inf
    X80::new(0xFFFF, 1 << 63),               // -inf
    X80::new(0x7FFF, 0xC000_0000_0000_0000), // QNaN
    X80::new(0xFFFF, 0xC000_0000_0000_0000), // indefinite
    X80::new(0x7FFF, 0xC000_0000_0001_2345), // QNaN payload
    X80::new(0xFFFF, 0xE123_4567_89AB_CDEF), // QNaN payload
    X80::new(0x7FFF, 0x8000_0000_0000_0001), // SNaN
    X80::new(0xFFFF, 0xA5A5_A5A5_5A5A_5A5A), // SNaN payload
    X80::new(0x0000, 0x0000_0000_0000_0001), // smallest denormal
    X80::new(0x8000, 0x7FFF_FFFF_FFFF_FFFF), // largest denormal
    X80::new(0x0000, 0x8000_0000_0000_0000), // pseudo-denormal
    X80::new(0x8000, 0x9234_5678_9ABC_DEF0), // pseudo-denormal
    X80::new(0x3FFF, 0x4000_0000_0000_0000), // unnormal
    X80::new(0x4100, 0x0000_0000_0000_0000), // unnormal zero
    X80::new(0x7FFF, 0x0000_0000_0000_0000), // pseudo-infinity
    X80::new(0x7FFF, 0x4000_0000_0000_0001), // pseudo-NaN
    X80::new(0x7FFE, 0xFFFF_FFFF_FFFF_FFFF), // max
    X80::new(0xFFFE, 0xFFFF_FFFF_FFFF_FFFF), // -max
    X80::new(0x0001, 0x8000_0000_0000_0000), // min normal
    X80::new(0x8001, 0x8000_0000_0000_0000), // -min normal
    X80::new(0x4000, 0xC90F_DAA2_2168_C235), // pi
    X80::new(0x403E, 0xFFFF_FFFF_FFFF_FFFF), // 2^64 - 1
];

/// Significands near the rounding points of 24, 53 and 64 bits.
fn boundary_sig(rng: &mut StdRng) -> u64 {
    let keep = [24u32, 53, 64][rng.gen_range(0..3)];
    let mut m: u64 = rng.gen::<u64>() | (1 << 63);
    if keep < 64 {
        let low = 64 - keep;
        let half = 1u64 << (low - 1);
        let mask = (1u64 << low) - 1;
        let tweak: i64 = rng.gen_range(-2..=2);
        let l = match rng.gen_range(0..3) {
            0 => half.wrapping_add(tweak as u64),
            1 => tweak as u64,
            _ => mask.wrapping_add(tweak as u64),
        } & mask;
        m = (m & !mask) | l;
    } else {
        m = match rng.gen_range(0..3) {
            0 => u64::MAX - rng.gen_range(0..3),
            1 => (1 << 63) | rng.gen_range(0..3),
            _ => m,
        };
    }
    m
}

/// A random 80-bit operand: specials, ordinary values, rounding-boundary significands,
/// extreme exponents, and the unsupported encodings.
pub fn gen_x80(rng: &mut StdRng) -> X80 {
    let sign = if rng.gen_bool(0.5) { 0x8000 } else { 0 };
    match rng.gen_range(0..20) {
        0..=2 => SPECIALS[rng.gen_range(0..SPECIALS.len())],
        3..=8 => X80::new(
            sign | rng.gen_range(0x3FF0..0x4010),
            rng.gen::<u64>() | (1 << 63),
        ),
        9..=11 => X80::new(sign | rng.gen_range(0x3FC0..0x4040), boundary_sig(rng)),
        12 => X80::new(
            sign | rng.gen_range(1..0x7FFF),
            rng.gen::<u64>() | (1 << 63),
        ),
        13 => X80::new(sign | rng.gen_range(1..0x60), rng.gen::<u64>() | (1 << 63)),
        14 => X80::new(
            sign | rng.gen_range(0x7FA0..0x7FFF),
            rng.gen::<u64>() | (1 << 63),
        ),
        15 => X80::new(sign, rng.gen::<u64>() >> rng.gen_range(0..64)),
        16 => {
            // NaNs with random payloads.
            let q = if rng.gen_bool(0.5) { 1 << 62 } else { 0 };
            let p = (rng.gen::<u64>() & ((1 << 62) - 1)) | q;
            X80::new(sign | 0x7FFF, (1 << 63) | if p == 0 { 1 } else { p })
        }
        17 => X80::from_f64(rng.gen_range(-100.0..100.0_f64).round()),
        18 => X80::new(
            sign | rng.gen_range(0x3FFF..0x403F),
            rng.gen::<u64>() | (1 << 63),
        ),
        _ => {
            // Unsupported encodings and pseudo-denormals.
            match rng.gen_range(0..3) {
                0 => X80::new(sign | rng.gen_range(1..0x7FFF), rng.gen::<u64>() >> 1),
                1 => X80::new(sign | 0x7FFF, rng.gen::<u64>() >> 1),
                _ => X80::new(sign, rng.gen::<u64>() | (1 << 63)),
            }
        }
    }
}

/// A second operand related to `a`: close values (cancellation), exponent distances
/// around the alignment limits, or an independent value.
pub fn gen_pair(rng: &mut StdRng, a: X80) -> X80 {
    let e = (a.se & 0x7FFF) as i32;
    match rng.gen_range(0..8) {
        0 => X80::new(a.se ^ 0x8000, a.sig ^ rng.gen_range(0..8)),
        1 => X80::new(a.se, a.sig.wrapping_add(rng.gen_range(0..4))),
        2 => {
            let d = [1, 2, 23, 24, 25, 52, 53, 54, 63, 64, 65, 66, 100][rng.gen_range(0..13)];
            let ne = (e - d).clamp(1, 0x7FFE) as u16;
            let s = if rng.gen_bool(0.5) { 0x8000 } else { 0 };
            X80::new(s | ne, rng.gen::<u64>() | (1 << 63))
        }
        _ => gen_x80(rng),
    }
}

/// A random single-real bit pattern with specials.
pub fn gen_f32(rng: &mut StdRng) -> u32 {
    let s = if rng.gen_bool(0.5) { 0x8000_0000 } else { 0 };
    match rng.gen_range(0..10) {
        0 => s | rng.gen_range(1..0x0080_0000), // denormal
        1 => s | 0x7F80_0000 | rng.gen_range(0..0x0080_0000), // inf / NaN
        2 => s,
        3 => s | [0x3F80_0000, 0x7F7F_FFFF, 0x0080_0000, 0x7FA0_0001][rng.gen_range(0..4)],
        _ => s | rng.gen_range(0x3000_0000..0x5000_0000),
    }
}

/// A random double-real bit pattern with specials.
pub fn gen_f64(rng: &mut StdRng) -> u64 {
    let s = if rng.gen_bool(0.5) { 1 << 63 } else { 0 };
    match rng.gen_range(0..10) {
        0 => s | rng.gen_range(1..1u64 << 52),
        1 => s | 0x7FF0_0000_0000_0000 | rng.gen_range(0..1u64 << 52),
        2 => s,
        3 => {
            s | [
                0x3FF0_0000_0000_0000,
                0x7FEF_FFFF_FFFF_FFFF,
                0x0010_0000_0000_0000,
            ][rng.gen_range(0..3)]
        }
        _ => s | rng.gen_range(0x3000_0000_0000_0000..0x5000_0000_0000_0000),
    }
}

/// A random integer of `bits` with edge values.
pub fn gen_int(rng: &mut StdRng, bits: u32) -> i64 {
    let max = (1i64 << (bits - 1)).wrapping_sub(1);
    let v = match rng.gen_range(0..6) {
        0 => [0, 1, -1, max, -max - 1][rng.gen_range(0..5)],
        1 => rng.gen_range(-1000..1000),
        _ => rng.gen::<i64>(),
    };
    v << (64 - bits) >> (64 - bits)
}

/// A random BCD operand (valid digits), sign byte 00 or 80.
pub fn gen_bcd(rng: &mut StdRng) -> [u8; 10] {
    let mut b = [0u8; 10];
    let n = rng.gen_range(0..=9);
    for byte in b.iter_mut().take(n) {
        *byte = (rng.gen_range(0..10) << 4) | rng.gen_range(0..10);
    }
    b[9] = if rng.gen_bool(0.5) { 0x80 } else { 0 };
    b
}

/// A value near an integer or half-integer (FRNDINT, FIST, FBSTP), with magnitudes up to
/// and beyond the integer ranges.
pub fn gen_near_int(rng: &mut StdRng) -> X80 {
    let sign = if rng.gen_bool(0.5) { 0x8000 } else { 0 };
    match rng.gen_range(0..4) {
        0 => {
            let bits = [15u32, 16, 31, 32, 59, 60, 63, 64][rng.gen_range(0..8)];
            let e = 0x3FFF + bits as u16 - 1 + rng.gen_range(0..2);
            X80::new(sign | e, rng.gen::<u64>() | (1 << 63))
        }
        1 => {
            let v =
                rng.gen_range(-1000i32..1000) as f64 + [0.0, 0.5, 0.25, 0.75][rng.gen_range(0..4)];
            X80::from_f64(v)
        }
        2 => X80::new(
            sign | rng.gen_range(0x3FF0..0x4042),
            rng.gen::<u64>() | (1 << 63),
        ),
        _ => gen_x80(rng),
    }
}

/// The FNSAVE image bytes that are compared: everything except FCS/FOP/FDP/FDS (the
/// host deprecates FCS/FDS and updates FDP and FOP only on unmasked exceptions).
pub fn compared(i: usize) -> bool {
    !(16..26).contains(&i)
}

/// A random 32-bit protected-mode environment (28 bytes) followed by eight random
/// register images: control and status words with random masks, flags, TOP, ES/B,
/// random tags (each of the four kinds), random pointers.
pub fn gen_save_image(rng: &mut StdRng) -> Vec<u8> {
    let mut b = Vec::with_capacity(108);
    let cw: u16 = rng.gen();
    let sw: u16 = rng.gen();
    let tw: u16 = match rng.gen_range(0..3) {
        0 => rng.gen(),
        1 => 0xFFFF ^ (rng.gen::<u16>() & rng.gen::<u16>()),
        _ => rng.gen::<u16>() & rng.gen::<u16>(),
    };
    for w in [cw, sw, tw] {
        b.extend_from_slice(&w.to_le_bytes());
        b.extend_from_slice(&rng.gen::<u16>().to_le_bytes());
    }
    for _ in 0..4 {
        b.extend_from_slice(&rng.gen::<u32>().to_le_bytes());
    }
    for _ in 0..8 {
        b.extend_from_slice(&gen_x80(rng).bytes());
    }
    b
}

/// A random FXSAVE image (the first 256 bytes; MXCSR valid): header fields, abridged
/// tag, registers in 16-byte slots.
pub fn gen_fxsave_image(rng: &mut StdRng) -> Vec<u8> {
    let mut b = vec![0u8; 256];
    rng.fill(&mut b[..24]);
    b[24..28].copy_from_slice(&0x1F80u32.to_le_bytes());
    b[28..32].copy_from_slice(&0xFFFFu32.to_le_bytes());
    for k in 0..8 {
        let o = 32 + 16 * k;
        b[o..o + 10].copy_from_slice(&gen_x80(rng).bytes());
    }
    b
}

/// Describe an FNSAVE image briefly: CW SW TW and the non-empty registers.
pub fn describe_save(d: &[u8]) -> String {
    let w = |o: usize| u16::from_le_bytes([d[o], d[o + 1]]);
    let (cw, sw, tw) = (w(0), w(4), w(8));
    let mut s = format!("cw {cw:04x} sw {sw:04x} tw {tw:04x}");
    let top = (sw >> 11) & 7;
    for k in 0..8 {
        let phys = (top + k) & 7;
        if (tw >> (2 * phys)) & 3 != 3 {
            let o = 28 + 10 * k as usize;
            s.push_str(&format!(" st{k}={}", X80::from_bytes(&d[o..o + 10])));
        }
    }
    s
}

mod trans;
