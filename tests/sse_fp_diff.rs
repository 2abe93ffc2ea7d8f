//! Differential test of the SSE/SSE2 floating-point unit against the host CPU.
//!
//! 1. [`library_matches_host`] (x86-64 hosts): the integer-only `x86emu::cpu::softfloat`
//!    against the host's scalar instructions (inline assembly with LDMXCSR/STMXCSR),
//!    every operation under all 16 masked MXCSR settings (4 rounding modes × DAZ × FTZ):
//!    result bits, MXCSR flags, EFLAGS for COMIS/UCOMIS.
//!    [`rcp_rsqrt_match_host`]: RCPSS/RSQRTSS for every binary32 fraction of several
//!    exponents (both signs) and a sample of all others.
//!
//! Knobs: `X86EMU_SSEFP_FILTER=substr` (operation or form names), `X86EMU_SSEFP_SCALE=f`
//! (case counts), `X86EMU_SSEFP_SEED=n`.

mod sse_fp;

#[cfg(target_arch = "x86_64")]
use rand::{rngs::StdRng, Rng, SeedableRng};
#[cfg(target_arch = "x86_64")]
use sse_fp::operands::{Gen, PairKind};
#[cfg(target_arch = "x86_64")]
use x86emu::cpu::softfloat::{self as sf, Env, Fmt, F32, F64};

fn env_f64(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn filter() -> String {
    std::env::var("X86EMU_SSEFP_FILTER").unwrap_or_default()
}

/// The 16 MXCSR control settings with every exception masked.
#[cfg(target_arch = "x86_64")]
fn masked_settings() -> Vec<u32> {
    let mut v = Vec::new();
    for rc in 0..4u32 {
        for daz in [0, sf::mxcsr::DAZ] {
            for ftz in [0, sf::mxcsr::FTZ] {
                v.push(sf::mxcsr::MASKS | rc << sf::mxcsr::RC_SHIFT | daz | ftz);
            }
        }
    }
    v
}

/// How the operands of a library-level operation are generated.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
enum Inputs {
    Pair(Fmt, PairKind),
    Unary(Fmt),
    /// A binary32/64 source converted to int32.
    ToInt(Fmt),
    /// An int32 source.
    FromInt,
    /// Binary32 source (to binary64).
    F32Src,
    /// Binary64 source aimed at binary32's range.
    F64ToF32,
}

#[cfg(target_arch = "x86_64")]
type LibFn = Box<dyn Fn(u32, u64, u64) -> (u64, u32)>;

#[cfg(target_arch = "x86_64")]
fn lib_bin(f: Fmt, op: fn(&mut Env, Fmt, u64, u64) -> u64) -> LibFn {
    Box::new(move |mx, a, b| {
        let mut e = Env::new(mx);
        let r = op(&mut e, f, a, b);
        // Scalar binary32 ops leave the upper half of the quadword as in `a`.
        let r = if f == F32 { r | (a & !0xFFFF_FFFF) } else { r };
        (r, mx | e.flags)
    })
}

#[cfg(target_arch = "x86_64")]
fn lib_ops() -> Vec<(String, sse_fp::host::HostFn, LibFn, Inputs)> {
    use sse_fp::host as h;
    let mut v: Vec<(String, sse_fp::host::HostFn, LibFn, Inputs)> = Vec::new();
    type Bin = (
        &'static str,
        h::HostFn,
        h::HostFn,
        fn(&mut Env, Fmt, u64, u64) -> u64,
        PairKind,
    );
    let bins: [Bin; 6] = [
        ("add", h::addss, h::addsd, sf::add, PairKind::Add),
        ("sub", h::subss, h::subsd, sf::sub, PairKind::Add),
        ("mul", h::mulss, h::mulsd, sf::mul, PairKind::Mul),
        ("div", h::divss, h::divsd, sf::div, PairKind::Div),
        ("min", h::minss, h::minsd, sf::min, PairKind::Add),
        ("max", h::maxss, h::maxsd, sf::max, PairKind::Add),
    ];
    for (n, hs, hd, op, k) in bins {
        v.push((format!("{n}ss"), hs, lib_bin(F32, op), Inputs::Pair(F32, k)));
        v.push((format!("{n}sd"), hd, lib_bin(F64, op), Inputs::Pair(F64, k)));
    }
    fn lib_sqrt(f: Fmt) -> LibFn {
        Box::new(move |mx, a, b| {
            let mut e = Env::new(mx);
            let r = sf::sqrt(&mut e, f, b);
            let r = if f == F32 { r | (a & !0xFFFF_FFFF) } else { r };
            (r, mx | e.flags)
        })
    }
    v.push((
        "sqrtss".into(),
        h::sqrtss,
        lib_sqrt(F32),
        Inputs::Unary(F32),
    ));
    v.push((
        "sqrtsd".into(),
        h::sqrtsd,
        lib_sqrt(F64),
        Inputs::Unary(F64),
    ));
    v.push((
        "rcpss".into(),
        h::rcpss,
        Box::new(|mx, a, b| (sf::rcp32(b as u32) as u64 | (a & !0xFFFF_FFFF), mx)),
        Inputs::Unary(F32),
    ));
    v.push((
        "rsqrtss".into(),
        h::rsqrtss,
        Box::new(|mx, a, b| (sf::rsqrt32(b as u32) as u64 | (a & !0xFFFF_FFFF), mx)),
        Inputs::Unary(F32),
    ));
    for p in 0..8u8 {
        for (f, hf, nm, ones) in [
            (F32, h::CMPSS[p as usize], "ss", 0xFFFF_FFFFu64),
            (F64, h::CMPSD[p as usize], "sd", u64::MAX),
        ] {
            v.push((
                format!("cmp{nm} {p}"),
                hf,
                Box::new(move |mx, a, b| {
                    let mut e = Env::new(mx);
                    let r = if sf::cmp(&mut e, f, a, b, p) { ones } else { 0 };
                    let r = if f == F32 { r | (a & !0xFFFF_FFFF) } else { r };
                    (r, mx | e.flags)
                }),
                Inputs::Pair(f, PairKind::Add),
            ));
        }
    }
    for (n, hf, f, signaling) in [
        ("comiss", h::comiss as h::HostFn, F32, true),
        ("ucomiss", h::ucomiss, F32, false),
        ("comisd", h::comisd, F64, true),
        ("ucomisd", h::ucomisd, F64, false),
    ] {
        v.push((
            n.into(),
            hf,
            Box::new(move |mx, a, b| {
                let mut e = Env::new(mx);
                let (z, p, c) = sf::comi(&mut e, f, a, b, signaling).zf_pf_cf();
                let fl = (z as u64) << 6 | (p as u64) << 2 | c as u64;
                (fl, mx | e.flags)
            }),
            Inputs::Pair(f, PairKind::Add),
        ));
    }
    v.push((
        "cvtss2sd".into(),
        h::cvtss2sd,
        Box::new(|mx, _a, b| {
            let mut e = Env::new(mx);
            (sf::f2f(&mut e, F32, F64, b), mx | e.flags)
        }),
        Inputs::F32Src,
    ));
    v.push((
        "cvtsd2ss".into(),
        h::cvtsd2ss,
        Box::new(|mx, a, b| {
            let mut e = Env::new(mx);
            let r = sf::f2f(&mut e, F64, F32, b) | (a & !0xFFFF_FFFF);
            (r, mx | e.flags)
        }),
        Inputs::F64ToF32,
    ));
    for (n, hf, f) in [
        ("cvtsi2ss", h::cvtsi2ss as h::HostFn, F32),
        ("cvtsi2sd", h::cvtsi2sd, F64),
    ] {
        v.push((
            n.into(),
            hf,
            Box::new(move |mx, a, b| {
                let mut e = Env::new(mx);
                let r = sf::i32_to_f(&mut e, f, b as u32 as i32);
                let r = if f == F32 { r | (a & !0xFFFF_FFFF) } else { r };
                (r, mx | e.flags)
            }),
            Inputs::FromInt,
        ));
    }
    for (n, hf, f, t) in [
        ("cvtss2si", h::cvtss2si as h::HostFn, F32, false),
        ("cvttss2si", h::cvttss2si, F32, true),
        ("cvtsd2si", h::cvtsd2si, F64, false),
        ("cvttsd2si", h::cvttsd2si, F64, true),
    ] {
        v.push((
            n.into(),
            hf,
            Box::new(move |mx, _a, b| {
                let mut e = Env::new(mx);
                (sf::f2i32(&mut e, f, b, t) as u64, mx | e.flags)
            }),
            Inputs::ToInt(f),
        ));
    }
    v
}

#[cfg(target_arch = "x86_64")]
fn gen_inputs(g: &mut Gen, k: Inputs) -> (u64, u64) {
    match k {
        Inputs::Pair(f, kind) => g.pair(f, kind),
        Inputs::Unary(f) => (g.bits(f), g.sqrt_operand(f)),
        Inputs::ToInt(f) => (0, g.int_conv_operand(f)),
        Inputs::FromInt => (g.bits(F64), g.int32() as u64),
        Inputs::F32Src => (g.bits(F64), g.value(F32)),
        Inputs::F64ToF32 => (g.bits(F64), g.f64_for_f32(F64)),
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn library_matches_host() {
    let scale = env_f64("X86EMU_SSEFP_SCALE", 1.0);
    let seed = env_f64("X86EMU_SSEFP_SEED", 5.0) as u64;
    let filter = filter();
    let per_setting = ((4000.0 * scale).ceil() as usize).max(1);
    let mut g = Gen::new(StdRng::seed_from_u64(seed));
    let settings = masked_settings();
    let (mut total, mut failed) = (0usize, 0usize);
    let mut table = Vec::new();
    for (name, host, lib, inputs) in lib_ops() {
        if !name.contains(&filter) {
            continue;
        }
        let (mut ok, mut bad) = (0usize, 0usize);
        for &mx in &settings {
            for _ in 0..per_setting {
                let (a, b) = gen_inputs(&mut g, inputs);
                // Pre-set flags must be kept (sticky) in a quarter of the cases.
                let mx = if g.rng.gen_range(0..4) == 0 {
                    mx | g.rng.gen_range(0..64)
                } else {
                    mx
                };
                let want = host(mx, a, b);
                let got = lib(mx, a, b);
                if want == got {
                    ok += 1;
                } else {
                    if bad < 5 {
                        println!(
                            "MISMATCH {name} mxcsr={mx:04x} a={a:016x} b={b:016x}: \
                             host {:016x} flags {:02x}, lib {:016x} flags {:02x}",
                            want.0,
                            want.1 & 0x3F,
                            got.0,
                            got.1 & 0x3F
                        );
                    }
                    bad += 1;
                }
            }
        }
        total += ok + bad;
        failed += bad;
        table.push((name, ok, bad));
    }
    println!("{:<14} {:>9} {:>9}", "operation", "passed", "failed");
    for (n, ok, bad) in &table {
        println!("{n:<14} {ok:>9} {bad:>9}");
    }
    println!(
        "sse-fp library vs host: {total} cases, {failed} failed ({} operations × 16 MXCSR settings)",
        table.len()
    );
    assert_eq!(failed, 0, "softfloat differs from the host");
}

/// RCPSS/RSQRTSS: every fraction of the exponents around 1.0 and at the range ends,
/// both signs; every exponent with a sample of fractions; specials.
#[cfg(target_arch = "x86_64")]
#[test]
fn rcp_rsqrt_match_host() {
    let vendor = sse_fp::host::vendor();
    let full_exps = [0u32, 1, 2, 126, 127, 128, 129, 252, 253, 254, 255];
    let mut inputs: Vec<u32> = Vec::new();
    for &e in &full_exps {
        for s in [0u32, 1] {
            let base = s << 31 | e << 23;
            inputs.extend((0..1u32 << 23).map(|m| base | m));
        }
    }
    let mut rng = StdRng::seed_from_u64(7);
    for e in 0..256u32 {
        for _ in 0..4096 {
            inputs.push(rng.gen::<u32>() & 0x807F_FFFF | e << 23);
        }
    }
    let (mut n, mut same_rcp, mut same_rsq) = (0u64, 0u64, 0u64);
    let mut shown = 0;
    for &x in &inputs {
        let (hr, hs) = sse_fp::host::rcp_rsqrt(x);
        let (er, es) = (sf::rcp32(x), sf::rsqrt32(x));
        n += 1;
        same_rcp += (hr == er) as u64;
        same_rsq += (hs == es) as u64;
        if (hr != er || hs != es) && shown < 5 {
            shown += 1;
            println!("MISMATCH x={x:08x}: host rcp {hr:08x} rsqrt {hs:08x}, emu {er:08x} {es:08x}");
        }
    }
    println!(
        "rcpss: {same_rcp}/{n} bit-exact, rsqrtss: {same_rsq}/{n} bit-exact (host vendor {vendor})"
    );
    if vendor == "GenuineIntel" {
        assert_eq!(
            (same_rcp, same_rsq),
            (n, n),
            "RCP/RSQRT differ from the Intel host"
        );
    } else {
        println!("not an Intel host: the tables are Intel's, only the accuracy bound is asserted (unit tests)");
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[test]
fn library_matches_host() {
    println!("sse-fp library vs host: SKIPPED: needs an x86-64 host to run SSE natively");
}

/// Every one of the 2^32 binary32 inputs (slow: run with `--ignored`).
#[cfg(target_arch = "x86_64")]
#[test]
#[ignore]
fn rcp_rsqrt_exhaustive() {
    let (mut bad_rcp, mut bad_rsq) = (0u64, 0u64);
    for x in 0..=u32::MAX {
        let (hr, hs) = sse_fp::host::rcp_rsqrt(x);
        bad_rcp += (hr != sf::rcp32(x)) as u64;
        bad_rsq += (hs != sf::rsqrt32(x)) as u64;
    }
    println!(
        "rcpss: {bad_rcp} of 2^32 differ, rsqrtss: {bad_rsq} of 2^32 differ (host vendor {})",
        sse_fp::host::vendor()
    );
    assert_eq!((bad_rcp, bad_rsq), (0, 0));
}
