//! Unit tests of the softfloat core (no host floating point: expected values are bit
//! patterns worked out by hand or from the Intel manuals).

use super::exc::*;
use super::float80::{Class, F80};
use super::trans;
use super::{Cmp, Ctx};

const RN: u16 = 0x037F;
const RD: u16 = 0x077F;
const RU: u16 = 0x0B7F;
const RZ: u16 = 0x0F7F;
const PC24: u16 = 0x007F;
const PC53: u16 = 0x027F;

fn f(se: u16, sig: u64) -> F80 {
    F80 { se, sig }
}

const ONE: F80 = F80::ONE;
const TWO: F80 = F80 {
    se: 0x4000,
    sig: 1 << 63,
};
const THREE: F80 = F80 {
    se: 0x4000,
    sig: 0xC000_0000_0000_0000,
};

#[test]
fn classification() {
    let cases = [
        (f(0, 0), Class::Zero),
        (f(0x8000, 1), Class::Denormal),
        (f(0, 1 << 63), Class::PseudoDenormal),
        (f(0x3FFF, 1 << 63), Class::Normal),
        (f(0x3FFF, 1 << 62), Class::Unnormal),
        (f(0x7FFF, 1 << 63), Class::Infinity),
        (f(0x7FFF, 0xC000_0000_0000_0000), Class::QNaN),
        (f(0x7FFF, 0x8000_0000_0000_0001), Class::SNaN),
        (f(0x7FFF, 0), Class::PseudoNaN),
        (f(0x7FFF, 0x4000_0000_0000_0000), Class::PseudoNaN),
    ];
    for (v, c) in cases {
        assert_eq!(v.class(), c, "{v:?}");
    }
    assert!(f(0x3FFF, 1 << 62).is_unsupported());
    assert!(!f(0, 1 << 63).is_unsupported());
}

#[test]
fn add_rounds_once_under_precision_control() {
    // 1 + (2^-53 + 2^-65): rounded once to 53 bits this is 1 + 2^-52 (above half an
    // ulp); rounding first to 64 bits and then to 53 would give 1.0.
    let b = f(0x3FFF - 53, 0x8008_0000_0000_0000);
    let mut c = Ctx::with_pc(PC53);
    assert_eq!(c.add(ONE, b, false), Some(f(0x3FFF, 0x8000_0000_0000_0800)));
    assert_eq!(c.flags, PE);
    assert!(c.c1);
    // The same in 64-bit precision: 1 + 2^-53 (the 2^-65 is below half an ulp).
    let mut c = Ctx::new(RN);
    assert_eq!(c.add(ONE, b, false), Some(f(0x3FFF, 0x8000_0000_0000_0400)));
    assert!(!c.c1);
    // Exact cancellation: +0, or −0 when rounding down.
    assert_eq!(Ctx::new(RN).add(ONE, ONE, true), Some(F80::ZERO));
    assert_eq!(Ctx::new(RD).add(ONE, ONE, true), Some(F80::NEG_ZERO));
    // inf − inf is invalid.
    let mut c = Ctx::new(RN);
    assert_eq!(
        c.add(F80::INFINITY, F80::INFINITY, true),
        Some(F80::INDEFINITE)
    );
    assert_eq!(c.flags, IE);
}

#[test]
fn division_in_each_precision_and_mode() {
    // 1/3 = 0.AAAA...: rounded to 24, 53 and 64 bits.
    let third = |cw| Ctx::with_pc(cw).div(ONE, THREE).unwrap();
    assert_eq!(third(PC24), f(0x3FFD, 0xAAAA_AB00_0000_0000));
    assert_eq!(third(PC53), f(0x3FFD, 0xAAAA_AAAA_AAAA_A800));
    assert_eq!(third(RN), f(0x3FFD, 0xAAAA_AAAA_AAAA_AAAB));
    assert_eq!(third(RZ), f(0x3FFD, 0xAAAA_AAAA_AAAA_AAAA));
    assert_eq!(third(RD), f(0x3FFD, 0xAAAA_AAAA_AAAA_AAAA));
    assert_eq!(third(RU), f(0x3FFD, 0xAAAA_AAAA_AAAA_AAAB));
    // x/0: ZE and a signed infinity; 0/0: IE.
    let mut c = Ctx::new(RN);
    assert_eq!(c.div(ONE.neg(), F80::ZERO), Some(F80::inf(true)));
    assert_eq!(c.flags, ZE);
    let mut c = Ctx::new(RN & !ZE);
    assert_eq!(c.div(ONE, F80::ZERO), None, "unmasked ZE writes nothing");
    assert!(c.suppressed());
    let mut c = Ctx::new(RN);
    assert_eq!(c.div(F80::ZERO, F80::ZERO), Some(F80::INDEFINITE));
}

#[test]
fn overflow_and_underflow_responses() {
    let max = f(0x7FFE, u64::MAX);
    // Masked overflow: infinity or the largest finite value by rounding mode.
    for (cw, want, c1) in [
        (RN, F80::INFINITY, true),
        (RZ, max, false),
        (RD, max, false),
        (RU, F80::INFINITY, true),
    ] {
        let mut c = Ctx::new(cw);
        assert_eq!(c.mul(max, TWO), Some(want), "cw {cw:04x}");
        assert_eq!(c.flags, OE | PE);
        assert_eq!(c.c1, c1);
    }
    // Largest value under 24-bit precision.
    let mut c = Ctx::with_pc(PC24 | 0xC00);
    assert_eq!(c.mul(max, TWO), Some(f(0x7FFE, 0xFFFF_FF00_0000_0000)));
    // Unmasked overflow to a register: the exponent wrapped by 24576.
    let mut c = Ctx::new(RN & !OE);
    assert_eq!(
        c.mul(max, TWO),
        Some(f(0x7FFF - 24576, 0xFFFF_FFFF_FFFF_FFFF))
    );
    assert_eq!(c.flags, OE);
    // Masked underflow: the denormal, UE only when inexact.
    let min = f(1, 1 << 63);
    let half = f(0x3FFE, 1 << 63);
    let mut c = Ctx::new(RN);
    assert_eq!(c.mul(min, half), Some(f(0, 1 << 62)));
    assert_eq!(c.flags, 0, "exact denormal: no UE");
    let mut c = Ctx::new(RN);
    assert_eq!(
        c.mul(f(1, 0x8000_0000_0000_0001), half),
        Some(f(0, 0x4000_0000_0000_0000))
    );
    assert_eq!(c.flags, UE | PE);
    // Tininess is detected after rounding, with precision control: (1 − 2^-60) × 2^-16382
    // rounds up to 2^-16382 at 53 bits, so it is not tiny; at 64 bits it is exact and
    // tiny, and fits a denormal exactly (no UE).
    let just_below = f(0x3FFE, 0xFFFF_FFFF_FFFF_FFF0);
    let mut c = Ctx::with_pc(0x0A7F);
    assert_eq!(c.mul(min, just_below), Some(min));
    assert_eq!(c.flags, PE, "rounds to a normal: not tiny");
    let mut c = Ctx::new(RU);
    assert_eq!(c.mul(min, just_below), Some(f(0, 0x7FFF_FFFF_FFFF_FFF8)));
    assert_eq!(c.flags, 0);
    let mut c = Ctx::new(RU);
    assert_eq!(c.mul(min, f(0x3FFE, u64::MAX)), Some(min));
    assert_eq!(c.flags, UE | PE, "tiny and inexact once denormalised");
    // Unmasked underflow: wrapped up by 24576, UE even when exact.
    let mut c = Ctx::new(RN & !UE);
    assert_eq!(c.mul(min, half), Some(f(24576, 1 << 63)));
    assert_eq!(c.flags, UE);
}

#[test]
fn nan_propagation_and_operand_checks() {
    let q1 = f(0x7FFF, 0xC000_0000_0000_0001);
    let q2 = f(0xFFFF, 0xC000_0000_0000_0002);
    let s1 = f(0x7FFF, 0x8000_0000_0000_0005);
    let mut c = Ctx::new(RN);
    assert_eq!(c.add(q1, q2, false), Some(q2), "larger significand");
    assert_eq!(c.flags, 0);
    assert_eq!(c.mul(s1, q1), Some(q1), "a QNaN beats an SNaN");
    assert_eq!(c.flags, IE);
    let mut c = Ctx::new(RN);
    assert_eq!(c.mul(s1, ONE), Some(s1.quiet()));
    let mut c = Ctx::new(RN);
    assert_eq!(c.add(f(0x3FFF, 1 << 62), ONE, false), Some(F80::INDEFINITE));
    assert_eq!(c.flags, IE, "unnormal");
    let mut c = Ctx::new(RN);
    assert_eq!(c.add(f(0, 1), ONE, false), Some(ONE));
    assert_eq!(c.flags, DE | PE);
    let mut c = Ctx::new(RN & !DE);
    assert_eq!(c.add(f(0, 1), ONE, false), None);
}

#[test]
fn sqrt_compare_and_integers() {
    let mut c = Ctx::new(RN);
    assert_eq!(c.sqrt(f(0x4002, 0x9000_0000_0000_0000)), Some(THREE));
    assert_eq!(c.flags, 0);
    assert_eq!(c.sqrt(TWO), Some(f(0x3FFF, 0xB504_F333_F9DE_6484)));
    assert_eq!(c.flags, PE);
    assert_eq!(Ctx::new(RN).sqrt(ONE.neg()), Some(F80::INDEFINITE));
    assert_eq!(Ctx::new(RN).sqrt(F80::NEG_ZERO), Some(F80::NEG_ZERO));

    let mut c = Ctx::new(RN);
    assert_eq!(c.compare(F80::ZERO, F80::NEG_ZERO, false), Cmp::Equal);
    assert_eq!(c.compare(ONE.neg(), f(0, 1), false), Cmp::Less);
    assert_eq!(c.flags, DE);
    let qnan = f(0x7FFF, 0xC000_0000_0000_0000);
    let mut c = Ctx::new(RN);
    assert_eq!(c.compare(qnan, ONE, true), Cmp::Unordered);
    assert_eq!(c.flags, 0, "FUCOM: a QNaN is quiet");
    assert_eq!(c.compare(qnan, ONE, false), Cmp::Unordered);
    assert_eq!(c.flags, IE);

    // 2.5 → 2 (nearest even), 3 (up); out of range → integer indefinite.
    let two_and_half = f(0x4000, 0xA000_0000_0000_0000);
    assert_eq!(Ctx::new(RN).store_int(two_and_half, 16), Some(2));
    assert_eq!(Ctx::new(RU).store_int(two_and_half, 16), Some(3));
    let mut c = Ctx::new(RN);
    assert_eq!(c.store_int(f(0x400E, 1 << 63), 16), Some(-32768));
    assert_eq!(c.flags, IE, "32768 does not fit");
    assert_eq!(
        Ctx::new(RN).store_int(f(0xC00E, 1 << 63), 16),
        Some(-32768),
        "-32768 fits"
    );
    assert_eq!(Ctx::new(RN).round_int(two_and_half), Some(TWO));
    // BCD: -12345 and back.
    let v = super::ops::from_i64(-12345);
    let b = Ctx::new(RN).store_bcd(v).unwrap();
    assert_eq!(b, [0x45, 0x23, 0x01, 0, 0, 0, 0, 0, 0, 0x80]);
    assert_eq!(super::convert::load_bcd(b), v);
}

#[test]
fn memory_real_formats() {
    let mut c = Ctx::new(RN);
    // Smallest single denormal: 2^-149, DE on load.
    assert_eq!(c.load_f32(1), Some(f(0x3FFF - 149, 1 << 63)));
    assert_eq!(c.flags, DE);
    // Single SNaN: IE, quieted.
    let mut c = Ctx::new(RN);
    assert_eq!(
        c.load_f32(0xFF80_0001),
        Some(f(0xFFFF, 0xC000_0100_0000_0000))
    );
    assert_eq!(c.flags, IE);
    // 1/3 stored as a double rounds to nearest; as a single with RU.
    let third = Ctx::new(RN).div(ONE, THREE).unwrap();
    assert_eq!(Ctx::new(RN).store_f64(third), Some(0x3FD5_5555_5555_5555));
    assert_eq!(Ctx::new(RU).store_f32(third), Some(0x3EAA_AAAB));
    // A value below the single range underflows to a denormal with UE and PE.
    let mut c = Ctx::new(RN);
    assert_eq!(
        c.store_f32(f(0x3FFF - 140, 0xC000_0000_0000_0001)),
        Some(0x300)
    );
    assert_eq!(c.flags, UE | PE);
    // Unmasked overflow to memory: nothing stored, OE only.
    let mut c = Ctx::new(RN & !OE);
    assert_eq!(c.store_f32(f(0x4100, 1 << 63)), None);
    assert_eq!(c.flags, OE);
}

#[test]
fn partial_remainder() {
    let five = f(0x4001, 0xA000_0000_0000_0000);
    let r = Ctx::new(RN).prem(five, THREE, false).unwrap();
    assert_eq!((r.value, r.quotient, r.complete), (TWO, 1, true));
    let r = Ctx::new(RN).prem(five, THREE, true).unwrap();
    assert_eq!((r.value, r.quotient, r.complete), (ONE.neg(), 2, true));
    // 2^100 rem 3: the exponent difference exceeds 63, so the step is partial.
    let big = f(0x3FFF + 100, 1 << 63);
    let r = Ctx::new(RN).prem(big, THREE, false).unwrap();
    assert!(!r.complete);
    assert!(r.value.exp() < big.exp() - 31);
}

#[test]
fn transcendental_spot_values() {
    // sin(π as an 80-bit value) = −(π80 − π66) = −2^-64 with the x87's 66-bit π.
    let pi80 = f(0x4000, 0xC90F_DAA2_2168_C235);
    let mut c = Ctx::new(RN);
    assert_eq!(trans::fsin(&mut c, pi80), Some(Some(f(0xBFBF, 1 << 63))));
    assert_eq!(c.flags, PE);
    assert!(c.c1, "|sin| slightly below 2^-64: rounded up");
    // Out of range: C2 (None), no exception.
    let mut c = Ctx::new(RN);
    assert_eq!(trans::fcos(&mut c, f(0x403F, 1 << 63)), Some(None));
    assert_eq!(c.flags, 0);
    assert_eq!(trans::fcos(&mut c, F80::ZERO), Some(Some(ONE)));
    // atan2(1, 1) = π/4; 2^-1 − 1 = −0.5; 3 × log2(8) = 9.
    let mut c = Ctx::new(RN);
    assert_eq!(
        trans::fpatan(&mut c, ONE, ONE),
        Some(f(0x3FFE, 0xC90F_DAA2_2168_C235))
    );
    let mut c = Ctx::new(RN);
    assert_eq!(trans::f2xm1(&mut c, ONE.neg()), Some(f(0xBFFE, 1 << 63)));
    let mut c = Ctx::new(RN);
    assert_eq!(
        trans::fyl2x(&mut c, f(0x4002, 1 << 63), THREE),
        Some(f(0x4002, 0x9000_0000_0000_0000))
    );
    // log2 of zero: ZE; of a negative number: IE.
    let mut c = Ctx::new(RN);
    assert_eq!(trans::fyl2x(&mut c, F80::ZERO, ONE), Some(F80::inf(true)));
    assert_eq!(c.flags, ZE);
    let mut c = Ctx::new(RN);
    assert_eq!(trans::fyl2x(&mut c, ONE.neg(), ONE), Some(F80::INDEFINITE));
    assert_eq!(c.flags, IE);
}
