//! Integer SIMD lane arithmetic shared by MMX (8-byte operands) and SSE2 (16-byte
//! operands). Pure functions on little-endian byte vectors: `n` is the operand width in
//! bytes and only the first `n` bytes of each vector are used or produced.

/// A SIMD value; MMX uses the low 8 bytes.
pub type V = [u8; 16];

fn get(v: &V, size: usize, k: usize) -> u64 {
    let mut b = [0u8; 8];
    b[..size].copy_from_slice(&v[k * size..(k + 1) * size]);
    u64::from_le_bytes(b)
}

fn put(v: &mut V, size: usize, k: usize, x: u64) {
    v[k * size..(k + 1) * size].copy_from_slice(&x.to_le_bytes()[..size]);
}

fn sext(x: u64, size: usize) -> i64 {
    let sh = 64 - 8 * size as u32;
    ((x << sh) as i64) >> sh
}

fn mask(size: usize) -> u64 {
    if size == 8 {
        u64::MAX
    } else {
        (1u64 << (8 * size)) - 1
    }
}

/// Apply `f` lane by lane (lanes of `size` bytes) to a and b.
fn lanes(a: &V, b: &V, n: usize, size: usize, f: impl Fn(u64, u64) -> u64) -> V {
    let mut r = [0u8; 16];
    for k in 0..n / size {
        put(
            &mut r,
            size,
            k,
            f(get(a, size, k), get(b, size, k)) & mask(size),
        );
    }
    r
}

fn sat_s(x: i64, size: usize) -> u64 {
    let bits = 8 * size as u32;
    let hi = (1i64 << (bits - 1)) - 1;
    let lo = -(1i64 << (bits - 1));
    x.clamp(lo, hi) as u64
}

fn sat_u(x: i64, size: usize) -> u64 {
    x.clamp(0, mask(size) as i64) as u64
}

/// Pack lanes of `from` bytes into lanes of half the size: a's lanes then b's.
fn pack(a: &V, b: &V, n: usize, from: usize, signed_sat: bool) -> V {
    let to = from / 2;
    let per = n / from;
    let mut r = [0u8; 16];
    for (src, base) in [(a, 0), (b, per)] {
        for k in 0..per {
            let x = sext(get(src, from, k), from);
            let y = if signed_sat {
                sat_s(x, to)
            } else {
                sat_u(x, to)
            };
            put(&mut r, to, base + k, y & mask(to));
        }
    }
    r
}

/// Interleave the low (high = false) or high halves of a and b in `size`-byte lanes.
fn unpack(a: &V, b: &V, n: usize, size: usize, high: bool) -> V {
    let half = n / size / 2;
    let off = if high { half } else { 0 };
    let mut r = [0u8; 16];
    for k in 0..half {
        put(&mut r, size, 2 * k, get(a, size, off + k));
        put(&mut r, size, 2 * k + 1, get(b, size, off + k));
    }
    r
}

/// Shift every `size`-byte lane: kind 0 logical right, 1 arithmetic right, 2 left.
pub fn shift(a: &V, n: usize, size: usize, kind: u8, count: u64) -> V {
    let bits = 8 * size as u64;
    let mut r = [0u8; 16];
    for k in 0..n / size {
        let x = get(a, size, k);
        let y = match kind {
            0 if count >= bits => 0,
            0 => x >> count,
            1 => (sext(x, size) >> count.min(bits - 1)) as u64,
            _ if count >= bits => 0,
            _ => x << count,
        };
        put(&mut r, size, k, y & mask(size));
    }
    r
}

/// The shift-by-register opcodes (0F D1-D3, E1-E2, F1-F3): (lane size, kind).
fn shift_form(opc: u8) -> Option<(usize, u8)> {
    Some(match opc {
        0xD1 => (2, 0),
        0xD2 => (4, 0),
        0xD3 => (8, 0),
        0xE1 => (2, 1),
        0xE2 => (4, 1),
        0xF1 => (2, 2),
        0xF2 => (4, 2),
        0xF3 => (8, 2),
        _ => return None,
    })
}

/// The two-operand integer operations of the 0F map (MMX, and their SSE2 forms with a
/// 66 prefix): `a` is the destination's old value, `b` the source. None for an opcode
/// that is not one of them.
pub fn binop(opc: u8, a: &V, b: &V, n: usize) -> Option<V> {
    if let Some((size, kind)) = shift_form(opc) {
        return Some(shift(a, n, size, kind, get(b, 8, 0)));
    }
    let add_s = |size| move |x: u64, y: u64| sat_s(sext(x, size) + sext(y, size), size);
    let sub_s = |size| move |x: u64, y: u64| sat_s(sext(x, size) - sext(y, size), size);
    let add_u = |size| move |x: u64, y: u64| sat_u(x as i64 + y as i64, size);
    let sub_u = |size| move |x: u64, y: u64| sat_u(x as i64 - y as i64, size);
    let gt = |size| move |x: u64, y: u64| (sext(x, size) > sext(y, size)) as u64 * u64::MAX;
    let eq = |x: u64, y: u64| (x == y) as u64 * u64::MAX;
    Some(match opc {
        0x60 => unpack(a, b, n, 1, false),
        0x61 => unpack(a, b, n, 2, false),
        0x62 => unpack(a, b, n, 4, false),
        0x63 => pack(a, b, n, 2, true),
        0x64 => lanes(a, b, n, 1, gt(1)),
        0x65 => lanes(a, b, n, 2, gt(2)),
        0x66 => lanes(a, b, n, 4, gt(4)),
        0x67 => pack(a, b, n, 2, false),
        0x68 => unpack(a, b, n, 1, true),
        0x69 => unpack(a, b, n, 2, true),
        0x6A => unpack(a, b, n, 4, true),
        0x6B => pack(a, b, n, 4, true),
        0x6C => unpack(a, b, n, 8, false),
        0x6D => unpack(a, b, n, 8, true),
        0x74 => lanes(a, b, n, 1, eq),
        0x75 => lanes(a, b, n, 2, eq),
        0x76 => lanes(a, b, n, 4, eq),
        0xD4 => lanes(a, b, n, 8, |x, y| x.wrapping_add(y)),
        0xD5 => lanes(a, b, n, 2, |x, y| x.wrapping_mul(y)),
        0xD8 => lanes(a, b, n, 1, sub_u(1)),
        0xD9 => lanes(a, b, n, 2, sub_u(2)),
        0xDA => lanes(a, b, n, 1, |x, y| x.min(y)),
        0xDB => lanes(a, b, n, 8, |x, y| x & y),
        0xDC => lanes(a, b, n, 1, add_u(1)),
        0xDD => lanes(a, b, n, 2, add_u(2)),
        0xDE => lanes(a, b, n, 1, |x, y| x.max(y)),
        0xDF => lanes(a, b, n, 8, |x, y| !x & y),
        0xE0 => lanes(a, b, n, 1, |x, y| (x + y + 1) >> 1),
        0xE3 => lanes(a, b, n, 2, |x, y| (x + y + 1) >> 1),
        0xE4 => lanes(a, b, n, 2, |x, y| (x * y) >> 16),
        0xE5 => lanes(a, b, n, 2, |x, y| ((sext(x, 2) * sext(y, 2)) >> 16) as u64),
        0xE8 => lanes(a, b, n, 1, sub_s(1)),
        0xE9 => lanes(a, b, n, 2, sub_s(2)),
        0xEA => lanes(a, b, n, 2, |x, y| sext(x, 2).min(sext(y, 2)) as u64),
        0xEB => lanes(a, b, n, 8, |x, y| x | y),
        0xEC => lanes(a, b, n, 1, add_s(1)),
        0xED => lanes(a, b, n, 2, add_s(2)),
        0xEE => lanes(a, b, n, 2, |x, y| sext(x, 2).max(sext(y, 2)) as u64),
        0xEF => lanes(a, b, n, 8, |x, y| x ^ y),
        0xF4 => lanes(a, b, n, 8, |x, y| (x & 0xFFFF_FFFF) * (y & 0xFFFF_FFFF)),
        0xF5 => lanes(a, b, n, 4, |x, y| {
            let p0 = sext(x & 0xFFFF, 2) * sext(y & 0xFFFF, 2);
            let p1 = sext(x >> 16, 2) * sext(y >> 16, 2);
            p0.wrapping_add(p1) as u64
        }),
        0xF6 => lanes(a, b, n, 8, |x, y| {
            (0..8)
                .map(|k| ((x >> (8 * k)) as u8).abs_diff((y >> (8 * k)) as u8) as u64)
                .sum()
        }),
        0xF8 => lanes(a, b, n, 1, |x, y| x.wrapping_sub(y)),
        0xF9 => lanes(a, b, n, 2, |x, y| x.wrapping_sub(y)),
        0xFA => lanes(a, b, n, 4, |x, y| x.wrapping_sub(y)),
        0xFB => lanes(a, b, n, 8, |x, y| x.wrapping_sub(y)),
        0xFC => lanes(a, b, n, 1, |x, y| x.wrapping_add(y)),
        0xFD => lanes(a, b, n, 2, |x, y| x.wrapping_add(y)),
        0xFE => lanes(a, b, n, 4, |x, y| x.wrapping_add(y)),
        _ => return None,
    })
}

/// PSHUFW/PSHUFLW (size 2, first 0), PSHUFHW (size 2, first 4), PSHUFD (size 4, first
/// 0): lanes `first..first + 4` of the result are lanes `first + imm[2k+1:2k]` of `b`;
/// every other lane is copied from `b`.
pub fn pshuf(b: &V, size: usize, first: usize, imm: u8) -> V {
    let mut r = *b;
    for k in 0..4 {
        let sel = (imm >> (2 * k)) as usize & 3;
        put(&mut r, size, first + k, get(b, size, first + sel));
    }
    r
}

/// SHUFPS (size 4) / SHUFPD (size 8): the low half of the result takes lanes of `a`,
/// the high half lanes of `b`, selected by consecutive fields of `imm`.
pub fn shufp(a: &V, b: &V, size: usize, imm: u8) -> V {
    let lanes = 16 / size;
    let bits = if size == 4 { 2 } else { 1 };
    let mut r = [0u8; 16];
    for k in 0..lanes {
        let sel = (imm >> (bits * k)) as usize & (lanes - 1);
        let src = if k < lanes / 2 { a } else { b };
        put(&mut r, size, k, get(src, size, sel));
    }
    r
}

/// UNPCKLPS/PD, PUNPCKLQDQ (high = false) and the high forms: interleave `size`-byte
/// lanes of the low (high) halves of two 16-byte values.
pub fn unpack16(a: &V, b: &V, size: usize, high: bool) -> V {
    unpack(a, b, 16, size, high)
}

/// Word `k` of `v`.
pub fn word(v: &V, k: usize) -> u16 {
    get(v, 2, k) as u16
}

/// `v` with word `k` replaced by `w` (PINSRW).
pub fn pinsrw(v: &V, k: usize, w: u16) -> V {
    let mut r = *v;
    put(&mut r, 2, k, w as u64);
    r
}

/// The most significant bit of each `size`-byte lane of the first `n` bytes, lane 0
/// in bit 0 (PMOVMSKB: size 1; MOVMSKPS: 4; MOVMSKPD: 8).
pub fn movmsk(v: &V, n: usize, size: usize) -> u32 {
    (0..n / size).fold(0, |m, k| m | ((v[k * size + size - 1] >> 7) as u32) << k)
}

/// PMOVMSKB over the first `n` bytes.
pub fn movmskb(v: &V, n: usize) -> u32 {
    movmsk(v, n, 1)
}

/// PSLLDQ (left = true) / PSRLDQ: shift the 16-byte value by `count` bytes (16 or more
/// clears it).
pub fn byte_shift(v: &V, count: u8, left: bool) -> V {
    let c = count as usize;
    let mut r = [0u8; 16];
    if c < 16 {
        if left {
            r[c..].copy_from_slice(&v[..16 - c]);
        } else {
            r[..16 - c].copy_from_slice(&v[c..]);
        }
    }
    r
}

/// The 128-bit logic operations of ANDPS/ANDPD (op 0x54), ANDNPS/ANDNPD (0x55),
/// ORPS/ORPD (0x56) and XORPS/XORPD (0x57).
pub fn logic(op: u8, a: &V, b: &V) -> V {
    let mut r = [0u8; 16];
    for k in 0..16 {
        r[k] = match op {
            0x54 => a[k] & b[k],
            0x55 => !a[k] & b[k],
            0x56 => a[k] | b[k],
            _ => a[k] ^ b[k],
        };
    }
    r
}
