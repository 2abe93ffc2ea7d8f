//! Comparisons: the CMPPS/CMPSS/CMPPD/CMPSD predicates (imm8 0-7) and COMIS/UCOMIS.

use core::cmp::Ordering;

use super::mxcsr::{DE, IE};
use super::{unpack, Env, Fmt, Kind, Unp};

/// Order of two non-NaN operands (zeros of either sign are equal).
pub(crate) fn order(a: &Unp, b: &Unp) -> Ordering {
    let mag = |u: &Unp| -> (i32, i32, u64) {
        match u.kind {
            Kind::Zero => (0, 0, 0),
            Kind::Inf => (2, 0, 0),
            _ => (1, u.exp, u.sig),
        }
    };
    let za = a.kind == Kind::Zero;
    let zb = b.kind == Kind::Zero;
    if za && zb {
        return Ordering::Equal;
    }
    let sa = a.sign && !za;
    let sb = b.sign && !zb;
    match (sa, sb) {
        (false, true) => Ordering::Greater,
        (true, false) => Ordering::Less,
        (false, false) => mag(a).cmp(&mag(b)),
        (true, true) => mag(b).cmp(&mag(a)),
    }
}

/// Result of COMISS/UCOMISS/COMISD/UCOMISD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    Less,
    Equal,
    Greater,
    Unordered,
}

impl Order {
    /// (ZF, PF, CF) as COMIS/UCOMIS set them.
    pub fn zf_pf_cf(self) -> (bool, bool, bool) {
        match self {
            Order::Unordered => (true, true, true),
            Order::Greater => (false, false, false),
            Order::Less => (false, false, true),
            Order::Equal => (true, false, false),
        }
    }
}

/// Compare with the NaN and denormal exceptions: IE for an SNaN, or for a QNaN when
/// `signaling`; DE for a denormal operand of an ordered comparison.
fn compare(env: &mut Env, f: Fmt, a: u64, b: u64, signaling: bool) -> Order {
    let ua = unpack(env, f, a);
    let ub = unpack(env, f, b);
    if ua.is_nan() || ub.is_nan() {
        if signaling || ua.kind == Kind::SNaN || ub.kind == Kind::SNaN {
            env.raise(IE);
        }
        return Order::Unordered;
    }
    if ua.denormal || ub.denormal {
        env.raise(DE);
    }
    match order(&ua, &ub) {
        Ordering::Less => Order::Less,
        Ordering::Equal => Order::Equal,
        Ordering::Greater => Order::Greater,
    }
}

/// CMPxx predicate `pred` (imm8 & 7): EQ, LT, LE, UNORD, NEQ, NLT, NLE, ORD. LT, LE,
/// NLT and NLE are signaling (IE on a QNaN operand), the others quiet.
pub fn cmp(env: &mut Env, f: Fmt, a: u64, b: u64, pred: u8) -> bool {
    let pred = pred & 7;
    let signaling = matches!(pred, 1 | 2 | 5 | 6);
    let o = compare(env, f, a, b, signaling);
    let un = o == Order::Unordered;
    match pred {
        0 => o == Order::Equal,
        1 => o == Order::Less,
        2 => matches!(o, Order::Less | Order::Equal),
        3 => un,
        4 => o != Order::Equal,
        5 => o != Order::Less,
        6 => !matches!(o, Order::Less | Order::Equal),
        _ => !un,
    }
}

/// COMISS/COMISD (`signaling`: IE on any NaN) and UCOMISS/UCOMISD (IE only on an SNaN).
pub fn comi(env: &mut Env, f: Fmt, a: u64, b: u64, signaling: bool) -> Order {
    compare(env, f, a, b, signaling)
}
