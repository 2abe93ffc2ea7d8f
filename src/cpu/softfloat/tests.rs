//! Unit tests: known results (taken from an Intel host) for the rules in the module
//! documentation. The exhaustive comparison against the host CPU is
//! `tests/sse_fp_diff.rs`.

use super::approx::{RCP_TABLE, RSQRT_TABLE};
use super::mxcsr::*;
use super::*;

const RN: u32 = DEFAULT;
const RD: u32 = DEFAULT | 1 << RC_SHIFT;
const RU: u32 = DEFAULT | 2 << RC_SHIFT;
const RZ: u32 = DEFAULT | 3 << RC_SHIFT;

type Op = fn(&mut Env, Fmt, u64, u64) -> u64;

/// Run a binary32 operation: (result, flags).
fn s(op: Op, mx: u32, a: u32, b: u32) -> (u32, u32) {
    let mut env = Env::new(mx);
    let r = op(&mut env, F32, a as u64, b as u64);
    (r as u32, env.flags)
}

fn d(op: Op, mx: u32, a: u64, b: u64) -> (u64, u32) {
    let mut env = Env::new(mx);
    let r = op(&mut env, F64, a, b);
    (r, env.flags)
}

#[test]
fn basic_arithmetic() {
    assert_eq!(s(add, RN, 0x3F80_0000, 0x4000_0000), (0x4040_0000, 0));
    assert_eq!(s(sub, RN, 0x3F80_0000, 0x4000_0000), (0xBF80_0000, 0));
    assert_eq!(s(mul, RN, 0x4040_0000, 0x4040_0000), (0x4110_0000, 0));
    // 1/3 rounds up in the last place to nearest, down toward zero.
    assert_eq!(s(div, RN, 0x3F80_0000, 0x4040_0000), (0x3EAA_AAAB, PE));
    assert_eq!(s(div, RZ, 0x3F80_0000, 0x4040_0000), (0x3EAA_AAAA, PE));
    assert_eq!(
        d(div, RN, 0x3FF0_0000_0000_0000, 0x4008_0000_0000_0000),
        (0x3FD5_5555_5555_5555, PE)
    );
    assert_eq!(
        d(add, RN, 0x3FF0_0000_0000_0000, 0x3CA0_0000_0000_0000),
        (0x3FF0_0000_0000_0000, PE),
        "1 + 2^-53 is a tie, to even"
    );
    assert_eq!(
        d(add, RU, 0x3FF0_0000_0000_0000, 0x3CA0_0000_0000_0000),
        (0x3FF0_0000_0000_0001, PE)
    );
}

#[test]
fn exact_cancellation_sign() {
    assert_eq!(s(sub, RN, 0x3F80_0000, 0x3F80_0000), (0, 0));
    assert_eq!(s(sub, RD, 0x3F80_0000, 0x3F80_0000), (0x8000_0000, 0));
    assert_eq!(s(add, RN, 0x8000_0000, 0x0000_0000), (0, 0));
    assert_eq!(s(add, RD, 0x8000_0000, 0x0000_0000), (0x8000_0000, 0));
    assert_eq!(s(add, RN, 0x8000_0000, 0x8000_0000), (0x8000_0000, 0));
}

#[test]
fn sqrt_values() {
    let sq = |mx: u32, a: u32| {
        let mut env = Env::new(mx);
        (sqrt(&mut env, F32, a as u64) as u32, env.flags)
    };
    assert_eq!(sq(RN, 0x4080_0000), (0x4000_0000, 0));
    assert_eq!(sq(RN, 0x4000_0000), (0x3FB5_04F3, PE));
    assert_eq!(sq(RZ, 0x4000_0000), (0x3FB5_04F3, PE));
    assert_eq!(sq(RU, 0x4000_0000), (0x3FB5_04F4, PE));
    assert_eq!(sq(RN, 0x8000_0000), (0x8000_0000, 0));
    assert_eq!(sq(RN, 0xBF80_0000), (0xFFC0_0000, IE));
    assert_eq!(sq(RN, 0x7F80_0001), (0x7FC0_0001, IE));
    assert_eq!(sq(RN, 0x0000_0001), (0x1A35_04F3, DE | PE));
    let mut env = Env::new(RN);
    assert_eq!(
        sqrt(&mut env, F64, 0x4000_0000_0000_0000),
        0x3FF6_A09E_667F_3BCD
    );
}

#[test]
fn tininess_after_rounding() {
    // 2^-63(1 + 2^-23) × 2^-64(2 − 2^-22) = 2^-126 (1 − 2^-46): tiny before rounding but
    // not after rounding to nearest, tiny after rounding down.
    let (a, b) = (0x2000_0001, 0x1FFF_FFFE);
    assert_eq!(s(mul, RN, a, b), (0x0080_0000, PE));
    assert_eq!(s(mul, RN | FTZ, a, b), (0x0080_0000, PE));
    assert_eq!(s(mul, RN & !(UE << MASK_SHIFT), a, b), (0x0080_0000, PE));
    assert_eq!(s(mul, RD, a, b), (0x007F_FFFF, UE | PE));
    assert_eq!(s(mul, RD | FTZ, a, b), (0, UE | PE));
    assert_eq!(s(mul, RD & !(UE << MASK_SHIFT), a, b).1, UE | PE);
}

#[test]
fn underflow_rules() {
    // Exact tiny result: no flag when masked, UE|PE with FTZ, UE when unmasked.
    assert_eq!(s(mul, RN, 0x0080_0000, 0x3F00_0000), (0x0040_0000, 0));
    assert_eq!(s(mul, RN | FTZ, 0x0080_0000, 0x3F00_0000), (0, UE | PE));
    let um = RN & !(UE << MASK_SHIFT);
    assert_eq!(s(mul, um, 0x0080_0000, 0x3F00_0000).1, UE);
    // 2^-127 (1 + 3·2^-23) is exact in 24 bits but not as a denormal.
    assert_eq!(s(mul, RN, 0x0080_0003, 0x3F00_0000), (0x0040_0002, UE | PE));
    assert_eq!(s(mul, um, 0x0080_0003, 0x3F00_0000).1, UE);
    // A denormal operand copied through (x × 1) is tiny.
    assert_eq!(s(mul, RN, 0x0000_0001, 0x3F80_0000), (1, DE));
    assert_eq!(s(mul, um, 0x0000_0001, 0x3F80_0000).1, DE | UE);
}

#[test]
fn overflow_rules() {
    assert_eq!(s(mul, RN, 0x7F00_0001, 0x4000_0000), (0x7F80_0000, OE | PE));
    assert_eq!(s(mul, RZ, 0x7F00_0001, 0x4000_0000), (0x7F7F_FFFF, OE | PE));
    assert_eq!(s(mul, RU, 0xFF00_0001, 0x4000_0000), (0xFF7F_FFFF, OE | PE));
    assert_eq!(s(mul, RD, 0xFF00_0001, 0x4000_0000), (0xFF80_0000, OE | PE));
    let um = RN & !(OE << MASK_SHIFT);
    assert_eq!(s(mul, um, 0x7F00_0001, 0x4000_0000).1, OE);
    assert_eq!(s(mul, um, 0x7F00_0001, 0x3FFF_FFFF).1, OE | PE);
}

#[test]
fn nan_rules() {
    // First operand's NaN wins; SNaNs are quieted and raise IE.
    assert_eq!(s(add, RN, 0x7FC0_0001, 0x7FC0_0002), (0x7FC0_0001, 0));
    assert_eq!(s(add, RN, 0x7F80_0001, 0x7FC0_0002), (0x7FC0_0001, IE));
    assert_eq!(s(add, RN, 0x7FC0_0001, 0x7F80_0002), (0x7FC0_0001, IE));
    assert_eq!(s(add, RN, 0x3F80_0000, 0xFF80_0002), (0xFFC0_0002, IE));
    // QNaN takes precedence over a denormal operand.
    assert_eq!(s(add, RN, 0x7FC0_0000, 0x0000_0001), (0x7FC0_0000, 0));
    assert_eq!(s(add, RN, 0x7F80_0000, 0xFF80_0000), (0xFFC0_0000, IE));
    assert_eq!(s(mul, RN, 0x0000_0000, 0xFF80_0000), (0xFFC0_0000, IE));
    assert_eq!(s(div, RN, 0, 0), (0xFFC0_0000, IE));
    assert_eq!(s(div, RN, 0x7F80_0000, 0xFF80_0000), (0xFFC0_0000, IE));
    assert_eq!(
        d(mul, RN, 0x7FF0_0000_0000_0000, 0),
        (0xFFF8_0000_0000_0000, IE)
    );
}

#[test]
fn zero_divide_and_denormals() {
    assert_eq!(s(div, RN, 0x3F80_0000, 0), (0x7F80_0000, ZE));
    assert_eq!(s(div, RN, 0x0000_0001, 0), (0x7F80_0000, ZE));
    assert_eq!(s(div, RN, 0x7F80_0000, 0x8000_0000), (0xFF80_0000, 0));
    assert_eq!(s(div, RN, 0x7F80_0000, 0x0000_0001), (0x7F80_0000, DE));
    assert_eq!(s(add, RN, 0x7F80_0000, 0x8000_0001), (0x7F80_0000, DE));
    // DAZ: denormals read as zeros, no DE.
    let daz = RN | DAZ;
    assert_eq!(s(mul, daz, 0x0000_0001, 0x7F80_0000), (0xFFC0_0000, IE));
    assert_eq!(s(div, daz, 0x3F80_0000, 0x0000_0001), (0x7F80_0000, ZE));
    assert_eq!(s(div, daz, 0x0000_0001, 0x0000_0001), (0xFFC0_0000, IE));
    assert_eq!(s(add, daz, 0x0000_0001, 0x8000_0001), (0, 0));
    assert_eq!(s(add, daz, 0x8000_0001, 0x8000_0001), (0x8000_0000, 0));
}

#[test]
fn min_max_rules() {
    // Either NaN or both zeros: the second operand, unchanged (even an SNaN); any NaN
    // raises IE.
    assert_eq!(s(max, RN, 0x7F80_0001, 0x3F80_0000), (0x3F80_0000, IE));
    assert_eq!(s(max, RN, 0x3F80_0000, 0x7F80_0001), (0x7F80_0001, IE));
    assert_eq!(s(max, RN, 0x3F80_0000, 0x7FC0_0000), (0x7FC0_0000, IE));
    assert_eq!(s(max, RN, 0x0000_0000, 0x8000_0000), (0x8000_0000, 0));
    assert_eq!(s(min, RN, 0x8000_0000, 0x0000_0000), (0x0000_0000, 0));
    assert_eq!(s(max, RN, 0x0000_0001, 0x3F80_0000), (0x3F80_0000, DE));
    assert_eq!(s(min, RN, 0xBF80_0000, 0x3F80_0000), (0xBF80_0000, 0));
    // DAZ: the flushed value is what is compared and returned.
    let daz = RN | DAZ;
    assert_eq!(s(max, daz, 0x0000_0001, 0x0000_0000), (0x0000_0000, 0));
    assert_eq!(s(max, daz, 0x0000_0001, 0x8000_0000), (0x8000_0000, 0));
    assert_eq!(s(max, daz, 0x0000_0001, 0xBF80_0000), (0x0000_0000, 0));
}

#[test]
fn compare_predicates() {
    let c = |a: u32, b: u32, p: u8| {
        let mut env = Env::new(RN);
        (cmp(&mut env, F32, a as u64, b as u64, p), env.flags)
    };
    let one = 0x3F80_0000;
    let two = 0x4000_0000;
    let qnan = 0x7FC0_0000;
    let snan = 0x7F80_0001;
    let expect = [
        // EQ LT LE UNORD NEQ NLT NLE ORD for 1 ? 2
        [false, true, true, false, true, false, false, true],
    ];
    for p in 0..8u8 {
        assert_eq!(c(one, two, p), (expect[0][p as usize], 0), "pred {p}");
        let quiet = matches!(p, 0 | 3 | 4 | 7);
        let un = (3..=6).contains(&p);
        assert_eq!(
            c(one, qnan, p),
            (un, if quiet { 0 } else { IE }),
            "pred {p}"
        );
        assert_eq!(c(snan, one, p), (un, IE), "pred {p}");
    }
    assert_eq!(c(0x8000_0000, 0, 0), (true, 0));
    assert_eq!(c(1, 0, 6), (true, DE));
    let co = |a: u32, b: u32, sig: bool| {
        let mut env = Env::new(RN);
        (comi(&mut env, F32, a as u64, b as u64, sig), env.flags)
    };
    assert_eq!(co(one, qnan, true), (Order::Unordered, IE));
    assert_eq!(co(one, qnan, false), (Order::Unordered, 0));
    assert_eq!(co(one, snan, false), (Order::Unordered, IE));
    assert_eq!(co(two, one, false), (Order::Greater, 0));
    assert_eq!(co(0xBF80_0000, one, false), (Order::Less, 0));
    assert_eq!(Order::Unordered.zf_pf_cf(), (true, true, true));
}

#[test]
fn conversions() {
    let cvt = |mx: u32, a: u32, t: bool| {
        let mut env = Env::new(mx);
        (f2i32(&mut env, F32, a as u64, t), env.flags)
    };
    assert_eq!(cvt(RN, 0x3FC0_0000, false), (2, PE)); // 1.5 → 2
    assert_eq!(cvt(RN, 0x4020_0000, false), (2, PE)); // 2.5 → 2
    assert_eq!(cvt(RN, 0x4020_0000, true), (2, PE));
    assert_eq!(cvt(RD, 0xBFC0_0000, false), (-2i32 as u32, PE));
    assert_eq!(cvt(RN, 0xBFC0_0000, true), (-1i32 as u32, PE));
    assert_eq!(cvt(RN, 0xCF00_0000, false), (0x8000_0000, 0)); // −2^31
    assert_eq!(cvt(RN, 0x4F00_0000, false), (0x8000_0000, IE)); // 2^31
    assert_eq!(cvt(RN, 0x7FC0_0000, false), (0x8000_0000, IE));
    assert_eq!(cvt(RU, 0x0000_0001, false), (1, PE));
    assert_eq!(cvt(RU | DAZ, 0x0000_0001, false), (0, 0));
    let mut env = Env::new(RN);
    assert_eq!(
        f2i32(&mut env, F64, 0xC1E0_0000_0010_0000, true),
        0x8000_0000
    );
    assert_eq!(env.flags, PE); // −2^31 − 0.5 truncates to −2^31
    let i2f = |mx: u32, v: i32| {
        let mut env = Env::new(mx);
        (i32_to_f(&mut env, F32, v) as u32, env.flags)
    };
    assert_eq!(i2f(RN, 0), (0, 0));
    assert_eq!(i2f(RN, -1), (0xBF80_0000, 0));
    assert_eq!(i2f(RN, 0x7FFF_FFFF), (0x4F00_0000, PE));
    assert_eq!(i2f(RZ, 0x7FFF_FFFF), (0x4EFF_FFFF, PE));
    assert_eq!(i2f(RN, i32::MIN), (0xCF00_0000, 0));
    let ff = |mx: u32, from: Fmt, to: Fmt, a: u64| {
        let mut env = Env::new(mx);
        (f2f(&mut env, from, to, a), env.flags)
    };
    assert_eq!(ff(RN, F32, F64, 0x3F80_0000), (0x3FF0_0000_0000_0000, 0));
    assert_eq!(ff(RN, F32, F64, 0x7F80_0001), (0x7FF8_0000_2000_0000, IE));
    assert_eq!(ff(RN, F32, F64, 0x0000_0001), (0x36A0_0000_0000_0000, DE));
    assert_eq!(
        ff(RN | DAZ, F32, F64, 0x8000_0001),
        (0x8000_0000_0000_0000, 0)
    );
    assert_eq!(ff(RN, F64, F32, 0x7FF0_0000_2000_0001), (0x7FC0_0001, IE));
    assert_eq!(ff(RN, F64, F32, 0x3FF0_0000_1000_0000), (0x3F80_0000, PE));
    assert_eq!(
        ff(RN, F64, F32, 0x47F0_0000_0000_0000),
        (0x7F80_0000, OE | PE)
    );
    assert_eq!(ff(RN, F64, F32, 0x0000_0000_0000_0001), (0, DE | UE | PE));
}

#[test]
fn finish_rules() {
    let all = DEFAULT;
    let none = 0;
    // Masked: everything recorded, no fault.
    assert_eq!(
        finish(all, &[IE, OE | PE]),
        Outcome {
            flags: IE | OE | PE,
            fault: false
        }
    );
    // An unmasked pre-computation exception hides the post-computation flags.
    assert_eq!(
        finish(none, &[IE, OE | PE]),
        Outcome {
            flags: IE,
            fault: true
        }
    );
    assert_eq!(
        finish(all & !(DE << MASK_SHIFT), &[DE, PE]),
        Outcome {
            flags: DE,
            fault: true
        }
    );
    // A masked pre-computation exception does not.
    assert_eq!(
        finish(all & !(PE << MASK_SHIFT), &[IE, OE | PE]),
        Outcome {
            flags: IE | OE | PE,
            fault: true
        }
    );
}

#[test]
fn rcp_rsqrt_specials() {
    assert_eq!(rcp32(0x3F80_0000), 0x3F7F_F000);
    assert_eq!(rcp32(0x0000_0001), 0x7F80_0000);
    assert_eq!(rcp32(0x8000_0000), 0xFF80_0000);
    assert_eq!(rcp32(0xFF80_0000), 0x8000_0000);
    assert_eq!(rcp32(0x7F80_0001), 0x7FC0_0001);
    assert_eq!(rcp32(0xBF80_0000), 0xBF7F_F000);
    assert_eq!(rcp32(0x7E80_0000), 0); // tiny: flushed
    assert_eq!(rcp32(0x7E00_0000), 0x00FF_F000);
    assert_eq!(rsqrt32(0x0080_0000), 0x5EFF_F000);
    assert_eq!(rsqrt32(0x7F7F_FFFF), 0x1F80_0800);
    assert_eq!(rsqrt32(0xBF80_0000), 0xFFC0_0000);
    assert_eq!(rsqrt32(0xFF80_0000), 0xFFC0_0000);
    assert_eq!(rsqrt32(0x8000_0001), 0xFF80_0000);
    assert_eq!(rsqrt32(0x7F80_0000), 0);
}

/// Every table entry meets |relative error| ≤ 1.5 × 2^-12 over its whole operand class.
#[test]
fn rcp_rsqrt_tables_within_bound() {
    // RCP: r = (4096 + t) / 8192, x = (2^23 + m) / 2^23; |r·x − 1| ≤ 3 / 8192.
    for (i, &t) in RCP_TABLE.iter().enumerate() {
        for m in [(i as i64) << 12, (i as i64) << 12 | 0xFFF] {
            let num = (4096 + t as i64) * ((1 << 23) + m) - (8192i64 << 23);
            assert!(num.abs() <= 3 << 23, "rcp entry {i}");
        }
    }
    // RSQRT: r = (4096 + t) / 8192, x = (2^23 + m) / 2^23 × 2^odd;
    // (8192 − 3)² ≤ r² x · 8192² ≤ (8192 + 3)².
    for (i, &t) in RSQRT_TABLE.iter().enumerate() {
        let odd = (i >> 10) as u32;
        let j = (i & 1023) as u128;
        for m in [j << 13, j << 13 | 0x1FFF] {
            let n = ((4096 + t as u128).pow(2) * ((1u128 << 23) + m)) << odd;
            let d = 1u128 << 23; // r² x = n / (8192² · 2^23)
            let lo = (8192u128 - 3).pow(2) * d;
            let hi = (8192u128 + 3).pow(2) * d;
            assert!(n >= lo && n <= hi, "rsqrt entry {i}");
        }
    }
}
