//! The transcendental instructions in integer arithmetic: FSIN FCOS FSINCOS FPTAN
//! FPATAN F2XM1 FYL2X FYL2XP1.
//!
//! Values are computed with ~128-bit intermediates ([`W`]) and rounded once to 64 bits,
//! which meets Intel's documented accuracy (< 1 ulp) with margin. Trigonometric
//! arguments are reduced exactly with respect to the 66-bit approximation of π that
//! the x87 uses internally (so results near multiples of π agree with hardware rather
//! than with the true function), and |x| >= 2^63 is out of range (C2 = 1, ST(0)
//! unchanged).
//!
//! Return conventions: `None` = an unmasked exception suppressed the result; for the
//! trigonometric functions `Some(None)` = argument out of range.

use super::float80::{BIAS, F80};
use super::round::exc::{PE, UE};
use super::round::Ctx;
use super::wide::W;

/// π × 2^64, truncated to 66 bits: the x87's internal π.
const PI66: u128 = 0x3_243F_6A88_85A3_08D3;
const PI: W = W::c(1, 0xc90fdaa22168c234c4c6628b80dc1cd1);
const LOG2E: W = W::c(0, 0xb8aa3b295c17f0bbbe87fed0691d3e88);
const LN2: W = W::c(-1, 0xb17217f7d1cf79abc9e3b39803f2f6af);
/// atan(k/16) for k = 1..=16.
const ATAN16: [W; 16] = [
    W::c(-5, 0xffaaddb967ef4e36cb2792dc0e2e0d51),
    W::c(-4, 0xfeadd4d5617b6e32c897989f3e888ef7),
    W::c(-3, 0xbdcbda5e72d811347b0b4f881c9c7487),
    W::c(-3, 0xfadbafc96406eb156dc79ef5f7a217e5),
    W::c(-2, 0x9b13b9b83f5e5e69c5abb498d27af328),
    W::c(-2, 0xb7b0ca0f26f784738aa32122dcfe4483),
    W::c(-2, 0xd327761e611fe5b6427c95e9001e7136),
    W::c(-2, 0xed63382b0dda7b456fe445ecbc3a8d03),
    W::c(-1, 0x832bf4a6d9867e2a4b6a09cb61a515c0),
    W::c(-1, 0x8f005d5ef7f59f9b5c835e1665c43747),
    W::c(-1, 0x9a2f80e671bdda204226f8e2204ff3bc),
    W::c(-1, 0xa4bc7d1934f7092419a87f2a457dac9e),
    W::c(-1, 0xaeac4c38b4d8c08014725e2f3e52070a),
    W::c(-1, 0xb8053e2bc2319e73cb2da55210a4443d),
    W::c(-1, 0xc0ce85b8ac52664089dd62c46e92fa24),
    W::c(-1, 0xc90fdaa22168c234c4c6628b80dc1cd1),
];
/// √2 × 2^127.
const SQRT2_M: u128 = 0xb504f333f9de6484597d89b3754abe9f;

/// Terms below 2^-136 relative to the sum no longer matter.
const STOP: i32 = 136;

/// sin(r) − r = −r³/3! + r⁵/5! − … (kept apart from r so that its sign survives when
/// it is below the precision of r).
fn sin_corr(r: W) -> W {
    let r2 = r.times(r);
    let mut term = r.times(r2).div_u(6).negate();
    let mut sum = term;
    let mut n = 3u64;
    loop {
        term = term.times(r2).div_u((n + 1) * (n + 2)).negate();
        n += 2;
        if term.is_zero() || term.exp < sum.exp - STOP {
            return sum;
        }
        sum = sum.plus(term);
    }
}

/// cos(r) − 1 = −r²/2! + r⁴/4! − …
fn cos_corr(r: W) -> W {
    let r2 = r.times(r);
    let mut term = r2.pow2(-1).negate();
    let mut sum = term;
    let mut n = 2u64;
    loop {
        term = term.times(r2).div_u((n + 1) * (n + 2)).negate();
        n += 2;
        if term.is_zero() || term.exp < sum.exp - STOP {
            return sum;
        }
        sum = sum.plus(term);
    }
}

/// atan(u) − u = −u³/3 + u⁵/5 − … for |u| <= 1/32.
fn atan_corr(u: W) -> W {
    let u2 = u.times(u);
    let mut pow = u.times(u2).negate();
    let mut sum = pow.div_u(3);
    let mut k = 3u64;
    loop {
        pow = pow.times(u2).negate();
        k += 2;
        let term = pow.div_u(k);
        if term.is_zero() || term.exp < sum.exp - STOP {
            return sum;
        }
        sum = sum.plus(term);
    }
}

/// atanh(z) for |z| <= 0.18: z + z³/3 + z⁵/5 + …
fn atanh_series(z: W) -> W {
    let z2 = z.times(z);
    let mut pow = z;
    let mut sum = z;
    let mut k = 1u64;
    loop {
        pow = pow.times(z2);
        k += 2;
        let term = pow.div_u(k);
        if term.is_zero() || term.exp < sum.exp - STOP {
            return sum;
        }
        sum = sum.plus(term);
    }
}

/// e^y − 1 for |y| <= 0.7: y + y²/2! + y³/3! + …
fn expm1_series(y: W) -> W {
    let mut term = y;
    let mut sum = y;
    let mut n = 1u64;
    loop {
        n += 1;
        term = term.times(y).div_u(n);
        if term.is_zero() || term.exp < sum.exp - STOP {
            return sum;
        }
        sum = sum.plus(term);
    }
}

/// atan(t) for 0 <= t <= 1 as (main, correction), through atan(t) = atan(c) +
/// atan((t − c)/(1 + tc)) with c = k/16 the nearest sixteenth.
fn atan01(t: W) -> (W, W) {
    let (k, _) = t.pow2(4).plus(W::c(-1, 1 << 127)).split_int();
    if k == 0 {
        return (t, atan_corr(t));
    }
    let c = W::from_int(false, k as u128, -4);
    let u = t.minus(c).over(W::ONE.plus(t.times(c)));
    (ATAN16[k as usize - 1], u.plus(atan_corr(u)))
}

/// log2(v) for v > 0.
fn log2_w(v: W) -> W {
    let mut e = v.exp;
    let mut m = W { exp: 0, ..v };
    if v.m > SQRT2_M {
        m = m.pow2(-1);
        e += 1;
    }
    let ep = W::from_int(e < 0, e.unsigned_abs() as u128, 0);
    if m == W::ONE {
        return ep;
    }
    let z = m.minus(W::ONE).over(m.plus(W::ONE));
    ep.plus(atanh_series(z).pow2(1).times(LOG2E))
}

/// Reduce |x| (< 2^63) modulo π66/2: (quadrant, r) with |x| = k·π66/2 + r exactly,
/// |r| <= π66/4. None when |x| >= 2^63.
fn reduce(x: F80) -> Option<(u64, W)> {
    let (_, e, m) = x.unpack();
    let ue = e - BIAS;
    if ue >= 63 {
        return None;
    }
    if ue < -2 {
        return Some((0, W::from_f80(x).abs()));
    }
    // |x| × 2^65 as an integer (exact: the shift is 0..=64).
    let big = (m as u128) << (ue + 2) as u32;
    let q = big / PI66;
    let rem = big % PI66;
    let (k, r) = if 2 * rem > PI66 {
        (q + 1, W::from_int(true, PI66 - rem, -65))
    } else {
        (q, W::from_int(false, rem, -65))
    };
    Some((k as u64, r))
}

/// A value as main + correction (see [`W::round_pair`]).
#[derive(Clone, Copy)]
struct Pair(W, W);

impl Pair {
    fn neg(self) -> Pair {
        Pair(self.0.negate(), self.1.negate())
    }
    fn neg_if(self, c: bool) -> Pair {
        if c {
            self.neg()
        } else {
            self
        }
    }
    fn round(self, ctx: &mut Ctx) -> F80 {
        self.0.round_pair(self.1, ctx)
    }
}

/// sin and cos of a reduced argument in quadrant k.
fn sin_cos_quadrant(k: u64, r: W) -> (Pair, Pair) {
    let s = Pair(r, sin_corr(r));
    let c = Pair(W::ONE, cos_corr(r));
    match k & 3 {
        0 => (s, c),
        1 => (c, s.neg()),
        2 => (s.neg(), c.neg()),
        _ => (c.neg(), s),
    }
}

/// Common operand handling of FSIN/FCOS/FSINCOS/FPTAN: Err(decided result).
fn trig_screen(ctx: &mut Ctx, x: F80) -> Result<(), Option<F80>> {
    ctx.screen1(x)?;
    if x.is_inf() {
        return Err(ctx.invalid());
    }
    Ok(())
}

/// Below 2^-68 the hardware does not evaluate sin/tan (cos): it returns the argument
/// (1.0) and reports an inexact result without rounding it (C1 = 0).
fn tiny_trig(x: F80) -> bool {
    x.exp() <= 0x3FBA
}

/// The value returned for a tiny argument: `v`, inexact, not rounded.
fn tiny_result(ctx: &mut Ctx, v: F80) -> F80 {
    let r = if v.is_denormal() {
        let (s, e, m) = v.unpack();
        let r = ctx.round80_u64(s, e, m);
        if r.exp() == 0 {
            ctx.raise(UE);
        }
        r
    } else {
        v
    };
    ctx.raise(PE);
    ctx.c1 = false;
    r
}

/// FSIN.
pub fn fsin(ctx: &mut Ctx, x: F80) -> Option<Option<F80>> {
    if let Err(r) = trig_screen(ctx, x) {
        return r.map(Some);
    }
    if x.is_zero() {
        return Some(Some(x));
    }
    if tiny_trig(x) {
        return Some(Some(tiny_result(ctx, x)));
    }
    let Some((k, r)) = reduce(x) else {
        return Some(None);
    };
    let (s, _) = sin_cos_quadrant(k, r);
    Some(Some(s.neg_if(x.sign()).round(ctx)))
}

/// FCOS.
pub fn fcos(ctx: &mut Ctx, x: F80) -> Option<Option<F80>> {
    if let Err(r) = trig_screen(ctx, x) {
        return r.map(Some);
    }
    if x.is_zero() {
        return Some(Some(F80::ONE));
    }
    if tiny_trig(x) {
        return Some(Some(tiny_result(ctx, F80::ONE)));
    }
    let Some((k, r)) = reduce(x) else {
        return Some(None);
    };
    let (_, c) = sin_cos_quadrant(k, r);
    Some(Some(c.round(ctx)))
}

/// FSINCOS: (sin, cos).
pub fn fsincos(ctx: &mut Ctx, x: F80) -> Option<Option<(F80, F80)>> {
    if let Err(r) = trig_screen(ctx, x) {
        return r.map(|v| Some((v, v)));
    }
    if x.is_zero() {
        return Some(Some((x, F80::ONE)));
    }
    if tiny_trig(x) {
        let sv = tiny_result(ctx, x);
        return Some(Some((sv, tiny_result(ctx, F80::ONE))));
    }
    let Some((k, r)) = reduce(x) else {
        return Some(None);
    };
    let (s, c) = sin_cos_quadrant(k, r);
    // C1 reports the rounding of the last result written (the cosine).
    let sv = s.neg_if(x.sign()).round(ctx);
    let cv = c.round(ctx);
    Some(Some((sv, cv)))
}

/// FPTAN: (tan x, 1.0); a NaN or invalid operand gives the NaN in both.
pub fn fptan(ctx: &mut Ctx, x: F80) -> Option<Option<(F80, F80)>> {
    if let Err(r) = trig_screen(ctx, x) {
        return r.map(|v| Some((v, v)));
    }
    if x.is_zero() {
        return Some(Some((x, F80::ONE)));
    }
    if tiny_trig(x) {
        return Some(Some((tiny_result(ctx, x), F80::ONE)));
    }
    let Some((k, r)) = reduce(x) else {
        return Some(None);
    };
    let (sc, cc) = (sin_corr(r), cos_corr(r));
    let t = if k & 1 == 0 {
        // tan r = r + (sin r − r·cos r)/cos r
        Pair(r, sc.minus(r.times(cc)).over(W::ONE.plus(cc)))
    } else {
        // −cot r = −1/r − (r·(cos r − 1) − (sin r − r))/(r·sin r)
        let corr = r.times(cc).minus(sc).over(r.times(r.plus(sc)));
        Pair(W::ONE.over(r), corr).neg()
    };
    Some(Some((t.neg_if(x.sign()).round(ctx), F80::ONE)))
}

/// FPATAN: atan2(y, x) with y = ST(1), x = ST(0).
pub fn fpatan(ctx: &mut Ctx, x: F80, y: F80) -> Option<F80> {
    if let Err(r) = ctx.screen2(y, x) {
        return r;
    }
    let (sy, sx) = (y.sign(), x.sign());
    let with_sign = |v: W| if sy { v.negate() } else { v };
    let half_pi = PI.pow2(-1);
    // Angle for |y| and x's sign from a first-quadrant angle th = atan(|y|/|x|).
    let place = |th: W| if sx { PI.minus(th) } else { th };
    let sum = |p: (W, W)| p.0.plus(p.1);
    let th = match (y.is_inf(), x.is_inf()) {
        (true, true) => place(PI.pow2(-2)),
        (true, false) => half_pi,
        (false, true) => {
            if sx {
                PI
            } else {
                return Some(F80::zero(sy));
            }
        }
        _ => {
            if y.is_zero() {
                if sx {
                    PI
                } else {
                    return Some(F80::zero(sy));
                }
            } else if x.is_zero() {
                half_pi
            } else {
                let (a, b) = (W::from_f80(y).abs(), W::from_f80(x).abs());
                if (a.exp, a.m) <= (b.exp, b.m) {
                    let q = a.over(b);
                    if !sx && q.exp <= -41 {
                        return Some(tiny_atan(ctx, q.neg_if(sy)));
                    }
                    let th = atan01(q);
                    if !sx {
                        return Some(Pair(th.0, th.1).neg_if(sy).round(ctx));
                    }
                    place(sum(th))
                } else {
                    place(half_pi.minus(sum(atan01(b.over(a)))))
                }
            }
        }
    };
    Some(with_sign(th).round(ctx))
}

/// atan(q) for |q| < 2^-40 (x > 0): the hardware returns the quotient itself, kept
/// to 67 bits (truncated) and rounded in the current mode; always inexact.
fn tiny_atan(ctx: &mut Ctx, q: W) -> F80 {
    let m = q.m & !((1u128 << 61) - 1);
    let r = ctx.round80(q.neg, q.exp + BIAS, m);
    if ctx.flags & PE == 0 {
        ctx.raise(PE);
        if r.exp() == 0 {
            ctx.raise(UE);
        }
    }
    r
}

/// F2XM1: 2^x − 1 (Intel defines it for −1 <= x <= +1).
pub fn f2xm1(ctx: &mut Ctx, x: F80) -> Option<F80> {
    if let Err(r) = ctx.screen1(x) {
        return r;
    }
    if x.is_zero() {
        return Some(x);
    }
    if x.is_inf() {
        return Some(if x.sign() { F80::ONE.neg() } else { x });
    }
    let w = W::from_f80(x);
    if w.abs() == W::ONE {
        // Exact, but reported as inexact like every other result.
        ctx.raise(PE);
        return Some(if x.sign() {
            F80::new(true, 0x3FFE, 1 << 63)
        } else {
            F80::ONE
        });
    }
    if w.exp < 0 {
        return Some(expm1_series(w.times(LN2)).round(ctx));
    }
    // Outside the documented range: 2^x − 1 through 2^n × 2^f.
    if w.exp > 15 {
        return Some(if x.sign() {
            ctx.raise(PE);
            F80::ONE.neg()
        } else {
            ctx.round80(false, 0x7FFF + 64, 1 << 127)
        });
    }
    let (n, f) = w.abs().split_int();
    let (n, f) = if x.sign() {
        (-(n as i32) - 1, W::ONE.minus(f))
    } else {
        (n as i32, f)
    };
    let p = W::ONE.plus(expm1_series(f.times(LN2))).pow2(n);
    Some(p.minus(W::ONE).round(ctx))
}

/// y × log2(x) for y = ±0 or ±∞ and finite non-zero x; `l_neg` and `l_zero`
/// describe log2(x).
fn ylog_special(ctx: &mut Ctx, y: F80, l_neg: bool, l_zero: bool) -> Option<F80> {
    if y.is_inf() && l_zero {
        return ctx.invalid();
    }
    if y.is_inf() {
        return Some(F80::inf(y.sign() != l_neg));
    }
    Some(F80::zero(y.sign() != l_neg))
}

/// FYL2X: ST(1) × log2(ST(0)).
pub fn fyl2x(ctx: &mut Ctx, x: F80, y: F80) -> Option<F80> {
    if let Err(r) = ctx.screen_nan2(x, y) {
        return r;
    }
    if x.sign() && !x.is_zero() {
        return ctx.invalid();
    }
    if x.is_zero() {
        // log2(±0) = −∞: like a division by zero, no DE for a denormal y.
        if y.is_zero() {
            return ctx.invalid();
        }
        if y.is_inf() {
            return Some(F80::inf(!y.sign()));
        }
        return ctx.div_zero(!y.sign());
    }
    if let Err(r) = ctx.screen_den2(x, y) {
        return r;
    }
    if x.is_inf() {
        if y.is_zero() {
            return ctx.invalid();
        }
        return Some(F80::inf(y.sign()));
    }
    let xw = W::from_f80(x);
    let l = log2_w(xw);
    if y.is_inf() || y.is_zero() {
        return ylog_special(ctx, y, l.neg, l.is_zero());
    }
    if l.is_zero() {
        return Some(F80::zero(y.sign()));
    }
    // Even when log2(x) is an integer the hardware reports an inexact result.
    Some(W::from_f80(y).times(l).round(ctx))
}

/// FYL2XP1: ST(1) × log2(ST(0) + 1) (Intel defines it for |x| < 1 − √2/2).
pub fn fyl2xp1(ctx: &mut Ctx, x: F80, y: F80) -> Option<F80> {
    if let Err(r) = ctx.screen_nan2(x, y) {
        return r;
    }
    let xw = W::from_f80(x);
    if x.is_inf() {
        return if x.sign() || y.is_zero() {
            ctx.invalid()
        } else {
            Some(F80::inf(y.sign()))
        };
    }
    // x < −1: log of a negative number.
    if x.sign() && (xw.exp > 0 || (xw.exp == 0 && xw.m > 1 << 127)) {
        return ctx.invalid();
    }
    if let Err(r) = ctx.screen_den2(x, y) {
        return r;
    }
    if x.is_zero() {
        if y.is_inf() {
            return ctx.invalid();
        }
        return Some(F80::zero(x.sign() != y.sign()));
    }
    if xw.neg && xw.abs() == W::ONE {
        // log2(0) = −∞.
        if y.is_zero() {
            return ctx.invalid();
        }
        if y.is_inf() {
            return Some(F80::inf(!y.sign()));
        }
        return ctx.div_zero(!y.sign());
    }
    let l = if xw.exp < -1 {
        let z = xw.over(W::ONE.pow2(1).plus(xw));
        atanh_series(z).pow2(1).times(LOG2E)
    } else {
        log2_w(W::ONE.plus(xw))
    };
    if y.is_inf() || y.is_zero() {
        return ylog_special(ctx, y, l.neg, l.is_zero());
    }
    Some(W::from_f80(y).times(l).round(ctx))
}
