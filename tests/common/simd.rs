//! Shared pieces of the MMX/SSE differential tests: operand generators (random and
//! lane edge values) and the XMM snippet frame.
//!
//! An XMM case runs, natively and in the emulator (CR4.OSFXSR and OSXMMEXCPT set, as the
//! host OS has them):
//!
//! ```text
//! fninit
//! ldmxcsr [data + 252]                   MXCSR input
//! movups xmm0..xmm3, [data + 0..63]      XMM inputs
//! movq mm0..mm3, [data + 96..127]        MMX inputs
//! <setup code> <instruction under test>  memory operand at [data + 64..95]
//! movups [data + 128..191], xmm0..xmm3   results
//! movq [data + 192..223], mm0..mm3
//! fnstenv [data + 224]                   x87 view: CW, SW (TOP), full tag word
//! stmxcsr [data + 252]
//! emms
//! ```
//!
//! [`xmm_diff`] compares the exit, the general registers and the data buffer except
//! the FNSTENV pointer fields.

#![allow(dead_code)]

use super::native::{self, Exit, Outcome, Snippet, DATA_ADDR, DATA_LEN};
use rand::rngs::StdRng;
use rand::Rng;

/// Offsets in the data buffer of an XMM case.
pub const X_IN: usize = 0;
/// The memory operand area (32 bytes, 16-byte aligned at its start).
pub const X_MEM: usize = 64;
pub const X_MM_IN: usize = 96;
pub const X_OUT: usize = 128;
pub const X_MM_OUT: usize = 192;
pub const X_ENV: usize = 224;
pub const X_MXCSR: usize = 252;

/// CR4.OSFXSR | CR4.OSXMMEXCPT.
pub const CR4_SSE: u32 = (1 << 9) | (1 << 10);

pub fn modrm_reg(reg: u8, rm: u8) -> u8 {
    0xC0 | reg << 3 | rm
}

/// ModRM + disp32 addressing [DATA_ADDR + off] with the given reg field.
pub fn modrm_mem(reg: u8, off: u32) -> Vec<u8> {
    let mut v = vec![0x05 | reg << 3];
    v.extend_from_slice(&(DATA_ADDR.wrapping_add(off)).to_le_bytes());
    v
}

/// A 64-bit operand: random, or built from lane edge values of one lane size.
pub fn lanes64(rng: &mut StdRng) -> u64 {
    const EDGE8: [u64; 8] = [0, 1, 0x7F, 0x80, 0x81, 0xFE, 0xFF, 0x40];
    const EDGE16: [u64; 9] = [0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0x8001, 0xFFFF];
    const EDGE32: [u64; 7] = [0, 1, 0x7FFF, 0x8000, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF];
    let pick = |rng: &mut StdRng, edges: &[u64], bits: u32| -> u64 {
        if rng.gen_bool(0.7) {
            edges[rng.gen_range(0..edges.len())]
        } else {
            rng.gen::<u64>() & ((1u64 << bits) - 1)
        }
    };
    match rng.gen_range(0..5) {
        0 => rng.gen(),
        1 => (0..8).fold(0, |v, k| v | pick(rng, &EDGE8, 8) << (8 * k)),
        2 => (0..4).fold(0, |v, k| v | pick(rng, &EDGE16, 16) << (16 * k)),
        3 => (0..2).fold(0, |v, k| v | pick(rng, &EDGE32, 32) << (32 * k)),
        _ => [0, u64::MAX, 1, 1 << 63, i64::MAX as u64][rng.gen_range(0..5)],
    }
}

/// A 128-bit operand made of two [`lanes64`] halves.
pub fn lanes128(rng: &mut StdRng) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&lanes64(rng).to_le_bytes());
    b[8..].copy_from_slice(&lanes64(rng).to_le_bytes());
    b
}

/// A shift count as a 64-bit value: small, around the lane widths, or large.
pub fn count64(rng: &mut StdRng) -> u64 {
    match rng.gen_range(0..4) {
        0 => rng.gen_range(0..18),
        1 => rng.gen_range(14..70),
        2 => rng.gen::<u64>() >> rng.gen_range(0..64),
        _ => [15, 16, 31, 32, 63, 64, 65, 1 << 32, u64::MAX][rng.gen_range(0..9)],
    }
}

/// An immediate byte: small counts, counts around the lane widths, or anything.
pub fn imm8(rng: &mut StdRng) -> u8 {
    match rng.gen_range(0..3) {
        0 => rng.gen_range(0..18),
        1 => rng.gen_range(14..70),
        _ => rng.gen(),
    }
}

/// A valid MXCSR value (bits 0-15): usually the default, otherwise random.
pub fn mxcsr(rng: &mut StdRng) -> u32 {
    if rng.gen_bool(0.5) {
        0x1F80
    } else {
        rng.gen::<u32>() & 0xFFFF
    }
}

/// The inputs of an XMM case.
#[derive(Clone, Debug)]
pub struct XmmCase {
    pub xmm: [[u8; 16]; 4],
    /// The memory operand area.
    pub mem: [u8; 32],
    pub mm: [u64; 4],
    pub mxcsr: u32,
    /// General registers (ESP ignored).
    pub regs: [u32; 8],
}

impl XmmCase {
    /// Random lane values everywhere, MXCSR 1F80H, random general registers.
    pub fn random(rng: &mut StdRng) -> XmmCase {
        let mut mem = [0u8; 32];
        mem[..16].copy_from_slice(&lanes128(rng));
        mem[16..].copy_from_slice(&lanes128(rng));
        XmmCase {
            xmm: [lanes128(rng), lanes128(rng), lanes128(rng), lanes128(rng)],
            mem,
            mm: [lanes64(rng), lanes64(rng), lanes64(rng), lanes64(rng)],
            mxcsr: 0x1F80,
            regs: std::array::from_fn(|_| rng.gen()),
        }
    }

    /// The snippet: the frame around `setup` followed by `code`.
    pub fn snippet(&self, setup: &[u8], code: &[u8]) -> Snippet {
        let mut data = [0u8; DATA_LEN];
        for (r, x) in self.xmm.iter().enumerate() {
            data[X_IN + 16 * r..X_IN + 16 * r + 16].copy_from_slice(x);
        }
        data[X_MEM..X_MEM + 32].copy_from_slice(&self.mem);
        for (r, m) in self.mm.iter().enumerate() {
            data[X_MM_IN + 8 * r..X_MM_IN + 8 * r + 8].copy_from_slice(&m.to_le_bytes());
        }
        data[X_MXCSR..X_MXCSR + 4].copy_from_slice(&self.mxcsr.to_le_bytes());
        let mut c = vec![0xDB, 0xE3]; // fninit
        c.extend([0x0F, 0xAE]); // ldmxcsr
        c.extend(modrm_mem(2, X_MXCSR as u32));
        for r in 0..4u8 {
            c.extend([0x0F, 0x10]); // movups xmm, m128
            c.extend(modrm_mem(r, (X_IN + 16 * r as usize) as u32));
        }
        for r in 0..4u8 {
            c.extend([0x0F, 0x6F]); // movq mm, m64
            c.extend(modrm_mem(r, (X_MM_IN + 8 * r as usize) as u32));
        }
        c.extend(setup);
        c.extend(code);
        for r in 0..4u8 {
            c.extend([0x0F, 0x11]); // movups m128, xmm
            c.extend(modrm_mem(r, (X_OUT + 16 * r as usize) as u32));
        }
        for r in 0..4u8 {
            c.extend([0x0F, 0x7F]); // movq m64, mm
            c.extend(modrm_mem(r, (X_MM_OUT + 8 * r as usize) as u32));
        }
        c.push(0xD9); // fnstenv
        c.extend(modrm_mem(6, X_ENV as u32));
        c.extend([0x0F, 0xAE]); // stmxcsr
        c.extend(modrm_mem(3, X_MXCSR as u32));
        c.extend([0x0F, 0x77]); // emms
        Snippet {
            code: c,
            regs: self.regs,
            eflags: 0,
            data,
        }
    }
}

/// Bytes of an XMM case's data buffer that are compared: all but the FNSTENV
/// instruction and operand pointers.
pub fn xmm_compared(i: usize) -> bool {
    !(X_ENV + 12..X_ENV + 28).contains(&i)
}

fn hex(b: &[u8]) -> String {
    native::hex_bytes(b)
}

/// Differences between a native and an emulated XMM case, or None.
pub fn xmm_diff(nat: &Outcome, emu: &Outcome) -> Option<String> {
    if !nat.exit.same_as(&emu.exit) {
        return Some(format!("exit: native {} emu {}", nat.exit, emu.exit));
    }
    if nat.exit != Exit::Done {
        return None;
    }
    let mut d = Vec::new();
    for r in 0..8 {
        if r != 4 && nat.regs[r] != emu.regs[r] {
            d.push(format!(
                "{} {:08x} vs {:08x}",
                native::REG_NAMES[r],
                nat.regs[r],
                emu.regs[r]
            ));
        }
    }
    let bad: Vec<usize> = (0..DATA_LEN)
        .filter(|&i| xmm_compared(i) && nat.data[i] != emu.data[i])
        .collect();
    if !bad.is_empty() {
        let mut m = format!("data differs at {:?}", &bad[..bad.len().min(12)]);
        let areas = [
            ("xmm0-3", X_OUT, X_OUT + 64),
            ("mem", X_MEM, X_MEM + 32),
            ("mm0-3", X_MM_OUT, X_MM_OUT + 32),
            ("env", X_ENV, X_ENV + 12),
            ("mxcsr", X_MXCSR, X_MXCSR + 4),
        ];
        for (name, a, b) in areas {
            if bad.iter().any(|&i| (a..b).contains(&i)) {
                m.push_str(&format!(
                    "\n      {name} native: {}\n      {name} emu:    {}",
                    hex(&nat.data[a..b]),
                    hex(&emu.data[a..b])
                ));
            }
        }
        d.push(m);
    }
    if d.is_empty() {
        None
    } else {
        Some(d.join("; "))
    }
}
