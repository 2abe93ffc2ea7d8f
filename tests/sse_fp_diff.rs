//! Differential test of the SSE/SSE2 floating-point unit against the host CPU.
//!
//! 1. [`library_matches_host`] (x86-64 hosts): the integer-only `x86emu::cpu::softfloat`
//!    against the host's scalar instructions (inline assembly with LDMXCSR/STMXCSR),
//!    every operation under all 16 masked MXCSR settings (4 rounding modes × DAZ × FTZ):
//!    result bits, MXCSR flags, EFLAGS for COMIS/UCOMIS.
//!    [`rcp_rsqrt_match_host`]: RCPSS/RSQRTSS for every binary32 fraction of several
//!    exponents (both signs) and a sample of all others.
//!
//! 2. [`instructions_match_host`] (x86 hosts that run i386 code): every SSE/SSE2
//!    floating-point instruction form (124: register and memory sources, every mandatory
//!    prefix) as a snippet run natively by `tests/native/runner32.c --fx` and in the
//!    emulator, under 4 rounding modes × DAZ × FTZ × {all exceptions masked, all
//!    unmasked, random masks}, a quarter of the cases with MXCSR flags already set.
//!    Compared: the exit (completed or the exception, #XM included, at the same EIP),
//!    general registers, EFLAGS, MXCSR, XMM0-7, and the x87/MMX view (TOP, exception
//!    bits, abridged tags, ST0-7/MM0-7), natively from the FXSAVE image taken after the
//!    snippet or, for a fault, from the signal frame. Operands: see
//!    `tests/sse_fp/operands.rs`.
//! 3. [`xm_delivery_and_ud_without_osxmmexcpt`] (emulator only): an unmasked exception
//!    is delivered through the IDT as #XM (vector 19, no error code, EIP of the faulting
//!    instruction, destination unchanged, flag recorded) with CR4.OSXMMEXCPT = 1 and as
//!    #UD without. [`mmx_operand_conversions_and_pending_x87_exceptions`]: the forms
//!    with an MMX register operand take a pending x87 exception (#MF) first, CVTPI2PS/PD
//!    from memory do not.
//!
//! Everything must match 100%; the per-operation and per-form counts are printed
//! (`cargo test --test sse_fp_diff -- --nocapture`).
//!
//! Knobs: `X86EMU_SSEFP_FILTER=substr` (operation or form names), `X86EMU_SSEFP_SCALE=f`
//! (case counts), `X86EMU_SSEFP_SEED=n`.

mod common;
mod sse_fp;

use common::native::{self, disasm, Emu, Exit, Outcome, Snippet, CODE_ADDR, DATA_ADDR, DATA_LEN};
use rand::{rngs::StdRng, Rng, SeedableRng};
use sse_fp::operands::{Gen, PairKind};
use x86emu::cpu::softfloat::{self as sf, mxcsr as mxb};
#[cfg(target_arch = "x86_64")]
use x86emu::cpu::softfloat::{Env, Fmt, F32, F64};

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

#[cfg(not(target_arch = "x86_64"))]
#[test]
fn rcp_rsqrt_match_host() {
    println!("sse-fp RCP/RSQRT vs host: SKIPPED: needs an x86-64 host to run SSE natively");
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

// ---------------------------------------------------------------------------------------
// 2. Every instruction form, natively (runner32 --fx) and in the emulator.
// ---------------------------------------------------------------------------------------

/// Data buffer layout of an instruction case.
const D_DST: usize = 0;
/// Source operand: XMM1's initial value, or the memory operand (16-byte aligned), or
/// MM1's initial value.
const D_SRC: usize = 16;
const D_MXCSR: usize = 32;

/// CR4.OSFXSR | CR4.OSXMMEXCPT, as Linux sets them on the host.
const CR4_SSE: u32 = (1 << 9) | (1 << 10);

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Src {
    Xmm,
    Mem,
    Mm,
    Gpr,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Dst {
    Xmm,
    Mm,
    Gpr,
    Flags,
}

/// What the source and destination lanes hold.
#[derive(Clone, Copy, Debug)]
enum OpGen {
    /// `n` lanes of operand pairs (destination, source).
    Pair(sf::Fmt, PairKind, usize),
    /// `n` source lanes for SQRT/RCP/RSQRT.
    Unary(sf::Fmt, usize),
    /// `n` source lanes converted to int32.
    ToInt(sf::Fmt, usize),
    /// `n` int32 source lanes.
    FromInt(usize),
    /// `n` binary32 source lanes converted to binary64.
    F32ToF64(usize),
    /// `n` binary64 source lanes converted to binary32.
    F64ToF32(usize),
}

struct Form {
    name: String,
    /// Mandatory prefix (or none), 0F, opcode.
    prefix: Option<u8>,
    op: u8,
    src: Src,
    dst: Dst,
    imm: bool,
    gen: OpGen,
}

fn forms() -> Vec<Form> {
    use sf::{F32, F64};
    let mut v = Vec::new();
    let mut add = |name: String, prefix: Option<u8>, op: u8, src: Src, dst: Dst, imm, gen| {
        v.push(Form {
            name,
            prefix,
            op,
            src,
            dst,
            imm,
            gen,
        })
    };
    // (suffix, prefix, format, lanes)
    let shapes: [(&str, Option<u8>, sf::Fmt, usize); 4] = [
        ("ps", None, F32, 4),
        ("pd", Some(0x66), F64, 2),
        ("ss", Some(0xF3), F32, 1),
        ("sd", Some(0xF2), F64, 1),
    ];
    let arith: [(&str, u8, PairKind); 6] = [
        ("add", 0x58, PairKind::Add),
        ("mul", 0x59, PairKind::Mul),
        ("sub", 0x5C, PairKind::Add),
        ("min", 0x5D, PairKind::Add),
        ("div", 0x5E, PairKind::Div),
        ("max", 0x5F, PairKind::Add),
    ];
    for (n, op, k) in arith {
        for (sfx, p, f, lanes) in shapes {
            for src in [Src::Xmm, Src::Mem] {
                let g = OpGen::Pair(f, k, lanes);
                add(format!("{n}{sfx}"), p, op, src, Dst::Xmm, false, g);
            }
        }
    }
    for (sfx, p, f, lanes) in shapes {
        for src in [Src::Xmm, Src::Mem] {
            let g = OpGen::Unary(f, lanes);
            add(format!("sqrt{sfx}"), p, 0x51, src, Dst::Xmm, false, g);
            let g = OpGen::Pair(f, PairKind::Add, lanes);
            add(format!("cmp{sfx}"), p, 0xC2, src, Dst::Xmm, true, g);
        }
    }
    for (sfx, p, lanes) in [("ps", None, 4), ("ss", Some(0xF3), 1)] {
        for src in [Src::Xmm, Src::Mem] {
            let g = OpGen::Unary(F32, lanes);
            add(format!("rsqrt{sfx}"), p, 0x52, src, Dst::Xmm, false, g);
            add(format!("rcp{sfx}"), p, 0x53, src, Dst::Xmm, false, g);
        }
    }
    for (n, p, f) in [("ss", None, F32), ("sd", Some(0x66), F64)] {
        for src in [Src::Xmm, Src::Mem] {
            let g = OpGen::Pair(f, PairKind::Add, 1);
            add(format!("ucomi{n}"), p, 0x2E, src, Dst::Flags, false, g);
            add(format!("comi{n}"), p, 0x2F, src, Dst::Flags, false, g);
        }
    }
    let xm = [Src::Xmm, Src::Mem];
    type Cvt<'a> = (&'a str, Option<u8>, u8, &'a [Src], Dst, OpGen);
    let cvts: Vec<Cvt> = vec![
        ("cvtps2pd", None, 0x5A, &xm, Dst::Xmm, OpGen::F32ToF64(2)),
        (
            "cvtpd2ps",
            Some(0x66),
            0x5A,
            &xm,
            Dst::Xmm,
            OpGen::F64ToF32(2),
        ),
        (
            "cvtss2sd",
            Some(0xF3),
            0x5A,
            &xm,
            Dst::Xmm,
            OpGen::F32ToF64(1),
        ),
        (
            "cvtsd2ss",
            Some(0xF2),
            0x5A,
            &xm,
            Dst::Xmm,
            OpGen::F64ToF32(1),
        ),
        ("cvtdq2ps", None, 0x5B, &xm, Dst::Xmm, OpGen::FromInt(4)),
        (
            "cvtps2dq",
            Some(0x66),
            0x5B,
            &xm,
            Dst::Xmm,
            OpGen::ToInt(F32, 4),
        ),
        (
            "cvttps2dq",
            Some(0xF3),
            0x5B,
            &xm,
            Dst::Xmm,
            OpGen::ToInt(F32, 4),
        ),
        (
            "cvtdq2pd",
            Some(0xF3),
            0xE6,
            &xm,
            Dst::Xmm,
            OpGen::FromInt(2),
        ),
        (
            "cvtpd2dq",
            Some(0xF2),
            0xE6,
            &xm,
            Dst::Xmm,
            OpGen::ToInt(F64, 2),
        ),
        (
            "cvttpd2dq",
            Some(0x66),
            0xE6,
            &xm,
            Dst::Xmm,
            OpGen::ToInt(F64, 2),
        ),
        (
            "cvtpi2ps",
            None,
            0x2A,
            &[Src::Mm, Src::Mem],
            Dst::Xmm,
            OpGen::FromInt(2),
        ),
        (
            "cvtpi2pd",
            Some(0x66),
            0x2A,
            &[Src::Mm, Src::Mem],
            Dst::Xmm,
            OpGen::FromInt(2),
        ),
        (
            "cvtsi2ss",
            Some(0xF3),
            0x2A,
            &[Src::Gpr, Src::Mem],
            Dst::Xmm,
            OpGen::FromInt(1),
        ),
        (
            "cvtsi2sd",
            Some(0xF2),
            0x2A,
            &[Src::Gpr, Src::Mem],
            Dst::Xmm,
            OpGen::FromInt(1),
        ),
        ("cvttps2pi", None, 0x2C, &xm, Dst::Mm, OpGen::ToInt(F32, 2)),
        (
            "cvttpd2pi",
            Some(0x66),
            0x2C,
            &xm,
            Dst::Mm,
            OpGen::ToInt(F64, 2),
        ),
        (
            "cvttss2si",
            Some(0xF3),
            0x2C,
            &xm,
            Dst::Gpr,
            OpGen::ToInt(F32, 1),
        ),
        (
            "cvttsd2si",
            Some(0xF2),
            0x2C,
            &xm,
            Dst::Gpr,
            OpGen::ToInt(F64, 1),
        ),
        ("cvtps2pi", None, 0x2D, &xm, Dst::Mm, OpGen::ToInt(F32, 2)),
        (
            "cvtpd2pi",
            Some(0x66),
            0x2D,
            &xm,
            Dst::Mm,
            OpGen::ToInt(F64, 2),
        ),
        (
            "cvtss2si",
            Some(0xF3),
            0x2D,
            &xm,
            Dst::Gpr,
            OpGen::ToInt(F32, 1),
        ),
        (
            "cvtsd2si",
            Some(0xF2),
            0x2D,
            &xm,
            Dst::Gpr,
            OpGen::ToInt(F64, 1),
        ),
    ];
    for (n, p, op, srcs, dst, g) in cvts {
        for &src in srcs {
            add(n.to_string(), p, op, src, dst, false, g);
        }
    }
    for f in &mut v {
        let src = match f.src {
            Src::Mem => "m",
            Src::Xmm => "xmm",
            Src::Mm => "mm",
            Src::Gpr => "r32",
        };
        let dst = match f.dst {
            Dst::Xmm | Dst::Flags => "xmm",
            Dst::Mm => "mm",
            Dst::Gpr => "r32",
        };
        f.name = format!("{} {dst},{src}", f.name);
    }
    v
}

/// Which exception masks a case runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Masks {
    All,
    None,
    Random,
}

fn put_lane(buf: &mut [u8], f: sf::Fmt, k: usize, x: u64) {
    if f == sf::F32 {
        buf[4 * k..4 * k + 4].copy_from_slice(&(x as u32).to_le_bytes());
    } else {
        buf[8 * k..8 * k + 8].copy_from_slice(&x.to_le_bytes());
    }
}

fn modrm_mem(reg: u8, off: usize) -> Vec<u8> {
    let mut v = vec![0x05 | reg << 3];
    v.extend_from_slice(&(DATA_ADDR + off as u32).to_le_bytes());
    v
}

/// One case of `form`: operands from `g`, MXCSR `mx`.
fn case(g: &mut Gen, form: &Form, mx: u32) -> Snippet {
    let mut data = [0u8; DATA_LEN];
    for b in data[..32].iter_mut() {
        *b = g.rng.gen();
    }
    let mut regs: [u32; 8] = std::array::from_fn(|_| g.rng.gen());
    {
        let (dst, src) = data[..32].split_at_mut(16);
        match form.gen {
            OpGen::Pair(f, kind, n) => {
                for k in 0..n {
                    let (a, b) = g.pair(f, kind);
                    put_lane(dst, f, k, a);
                    put_lane(src, f, k, b);
                }
            }
            OpGen::Unary(f, n) => {
                for k in 0..n {
                    let x = g.sqrt_operand(f);
                    put_lane(src, f, k, x);
                }
            }
            OpGen::ToInt(f, n) => {
                for k in 0..n {
                    let x = g.int_conv_operand(f);
                    put_lane(src, f, k, x);
                }
            }
            OpGen::FromInt(n) => {
                for k in 0..n {
                    let x = g.int32();
                    put_lane(src, sf::F32, k, x as u64);
                }
                regs[1] = u32::from_le_bytes(src[..4].try_into().unwrap());
            }
            OpGen::F32ToF64(n) => {
                for k in 0..n {
                    let x = g.value(sf::F32);
                    put_lane(src, sf::F32, k, x);
                }
            }
            OpGen::F64ToF32(n) => {
                for k in 0..n {
                    let x = g.f64_for_f32(sf::F64);
                    put_lane(src, sf::F64, k, x);
                }
            }
        }
    }
    data[D_MXCSR..D_MXCSR + 4].copy_from_slice(&mx.to_le_bytes());
    // fninit; 8 × fldz; fninit: every x87 register +0 (same start natively and emulated).
    let mut c = vec![0xDB, 0xE3];
    for _ in 0..8 {
        c.extend([0xD9, 0xEE]);
    }
    c.extend([0xDB, 0xE3]);
    for r in 2..8u8 {
        c.extend([0x0F, 0x57, 0xC0 | r << 3 | r]); // xorps xmm_r, xmm_r
    }
    c.extend([0x0F, 0x10]); // movups xmm0, [dst]
    c.extend(modrm_mem(0, D_DST));
    c.extend([0x0F, 0x10]); // movups xmm1, [src]
    c.extend(modrm_mem(1, D_SRC));
    // Only an MMX source is loaded: the instruction's own MMX transition (or its
    // absence) stays visible in TOP and the tag word.
    if form.src == Src::Mm {
        c.extend([0x0F, 0x6F]); // movq mm1, [src]
        c.extend(modrm_mem(1, D_SRC));
    }
    c.extend([0x0F, 0xAE]); // ldmxcsr
    c.extend(modrm_mem(2, D_MXCSR));
    if let Some(p) = form.prefix {
        c.push(p);
    }
    c.extend([0x0F, form.op]);
    match form.src {
        Src::Mem => c.extend(modrm_mem(0, D_SRC)),
        _ => c.push(0xC1), // reg 0 (xmm0/mm0/eax), rm 1 (xmm1/mm1/ecx)
    }
    if form.imm {
        let imm = if g.rng.gen_range(0..8) == 0 {
            g.rng.gen()
        } else {
            g.rng.gen_range(0..8)
        };
        c.push(imm);
    }
    Snippet {
        code: c,
        regs,
        eflags: g.rng.gen::<u32>() & native::FLAGS_IO,
        data,
    }
}

/// Length of the instruction under test (the end of every case's code).
fn form_len(f: &Form) -> usize {
    f.prefix.is_some() as usize + 2 + if f.src == Src::Mem { 5 } else { 1 } + f.imm as usize
}

/// The SIMD-visible state after a case.
#[derive(Clone, Debug, PartialEq, Eq)]
struct View {
    mxcsr: u32,
    xmm: [[u8; 16]; 8],
    /// FSW TOP and exception bits.
    fsw: u16,
    /// Abridged tag word (bit i: physical register i valid).
    ftw: u8,
    /// ST(0..7): significand (the MMX register) and sign/exponent.
    st: [(u64, u16); 8],
}

const FSW_COMPARED: u16 = 0x38FF;

fn view_from_fx(fx: &[u8; 512]) -> View {
    let u16_at = |o: usize| u16::from_le_bytes([fx[o], fx[o + 1]]);
    View {
        mxcsr: u32::from_le_bytes(fx[24..28].try_into().unwrap()),
        xmm: std::array::from_fn(|i| fx[160 + 16 * i..176 + 16 * i].try_into().unwrap()),
        fsw: u16_at(2) & FSW_COMPARED,
        ftw: fx[4],
        st: std::array::from_fn(|i| {
            let o = 32 + 16 * i;
            (
                u64::from_le_bytes(fx[o..o + 8].try_into().unwrap()),
                u16_at(o + 8),
            )
        }),
    }
}

fn view_from_cpu(cpu: &x86emu::cpu::Cpu) -> View {
    let f = &cpu.state.fpu;
    let top = ((f.sw >> 11) & 7) as usize;
    View {
        mxcsr: cpu.state.sse.mxcsr,
        xmm: cpu.state.sse.xmm,
        fsw: f.sw & FSW_COMPARED,
        ftw: f.valid,
        st: std::array::from_fn(|i| {
            let p = (top + i) & 7;
            (f.sig[p], f.se[p])
        }),
    }
}

fn hex(b: &[u8]) -> String {
    native::hex_bytes(b)
}

fn diff(nat: &Outcome, nv: &View, emu: &Outcome, ev: Option<&View>) -> Option<String> {
    let mut d = Vec::new();
    if nat.exit != emu.exit {
        return Some(format!("exit: native {} emu {}", nat.exit, emu.exit));
    }
    if nat.eip != emu.eip {
        d.push(format!("eip {:08x} vs {:08x}", nat.eip, emu.eip));
    }
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
    let fl = native::FLAGS_IO;
    if nat.eflags & fl != emu.eflags & fl {
        d.push(format!(
            "eflags {} vs {}",
            native::flag_names(nat.eflags & fl),
            native::flag_names(emu.eflags & fl)
        ));
    }
    let Some(ev) = ev else {
        return Some("no emulator state".into());
    };
    if nv.mxcsr != ev.mxcsr {
        d.push(format!("mxcsr {:04x} vs {:04x}", nv.mxcsr, ev.mxcsr));
    }
    for r in 0..8 {
        if nv.xmm[r] != ev.xmm[r] {
            d.push(format!(
                "xmm{r}\n      native {}\n      emu    {}",
                hex(&nv.xmm[r]),
                hex(&ev.xmm[r])
            ));
        }
    }
    if (nv.fsw, nv.ftw) != (ev.fsw, ev.ftw) {
        d.push(format!(
            "fsw/ftw {:04x}/{:02x} vs {:04x}/{:02x}",
            nv.fsw, nv.ftw, ev.fsw, ev.ftw
        ));
    }
    if nv.st != ev.st {
        d.push(format!("st/mm {:x?}\n      vs    {:x?}", nv.st, ev.st));
    }
    if d.is_empty() {
        None
    } else {
        Some(d.join("; "))
    }
}

#[test]
fn instructions_match_host() {
    if !native::host_runs_i386() {
        println!("sse-fp instructions vs host: SKIPPED: the host CPU is not x86, there is no native SSE to compare with");
        return;
    }
    let scale = env_f64("X86EMU_SSEFP_SCALE", 1.0);
    let seed = env_f64("X86EMU_SSEFP_SEED", 5.0) as u64;
    let filter = filter();
    let per_setting = ((10.0 * scale).ceil() as usize).max(1);
    let runner = native::runner_path();
    let mut emu = Emu::new();
    emu.cr4 = CR4_SSE;
    let mut g = Gen::new(StdRng::seed_from_u64(seed ^ 0x55));
    let mut settings = Vec::new();
    for rc in 0..4u32 {
        for daz in [0, mxb::DAZ] {
            for ftz in [0, mxb::FTZ] {
                for m in [Masks::All, Masks::None, Masks::Random] {
                    settings.push((rc << mxb::RC_SHIFT | daz | ftz, m));
                }
            }
        }
    }
    let (mut total, mut failed, mut faults) = (0usize, 0usize, 0usize);
    let mut table = Vec::new();
    for form in forms() {
        if !form.name.contains(&filter) {
            continue;
        }
        let mut cases = Vec::new();
        for &(ctl, m) in &settings {
            for _ in 0..per_setting {
                let masks = match m {
                    Masks::All => mxb::MASKS,
                    Masks::None => 0,
                    Masks::Random => g.rng.gen::<u32>() & mxb::MASKS,
                };
                let sticky = if g.rng.gen_range(0..4) == 0 {
                    g.rng.gen::<u32>() & mxb::FLAGS
                } else {
                    0
                };
                cases.push(case(&mut g, &form, ctl | masks | sticky));
            }
        }
        let nat = native::run_native_fx(&runner, &cases);
        let (mut ok, mut bad, mut xm) = (0usize, 0usize, 0usize);
        for (s, (no, fx)) in cases.iter().zip(&nat) {
            let nv = view_from_fx(fx);
            xm += (no.exit == Exit::Fault(19)) as usize;
            let (eo, ev) = emu.run_with(s, view_from_cpu);
            match diff(no, &nv, &eo, ev.as_ref()) {
                None => ok += 1,
                Some(msg) => {
                    if bad < 3 {
                        let mx =
                            u32::from_le_bytes(s.data[D_MXCSR..D_MXCSR + 4].try_into().unwrap());
                        println!(
                            "MISMATCH {}: mxcsr {mx:04x} eflags {:03x}\n   dst {}\n   src {}  ecx {:08x}\n   {}\n   native {} / emu {}: {}",
                            form.name,
                            s.eflags,
                            hex(&s.data[D_DST..D_DST + 16]),
                            hex(&s.data[D_SRC..D_SRC + 16]),
                            s.regs[1],
                            disasm(&s.code[s.code.len() - form_len(&form)..], CODE_ADDR),
                            no.exit,
                            eo.exit,
                            msg
                        );
                    }
                    bad += 1;
                }
            }
        }
        total += ok + bad;
        failed += bad;
        faults += xm;
        table.push((form.name.clone(), ok, bad, xm));
    }
    println!(
        "{:<20} {:>7} {:>7} {:>7}",
        "form", "passed", "failed", "#XM"
    );
    for (n, ok, bad, xm) in &table {
        println!("{n:<20} {ok:>7} {bad:>7} {xm:>7}");
    }
    println!(
        "sse-fp instructions vs host: {total} cases ({faults} raised #XM), {failed} failed ({} forms × {} MXCSR settings × {per_setting})",
        table.len(),
        settings.len()
    );
    assert_eq!(
        failed, 0,
        "SSE floating-point instructions differ from the host"
    );
}

// ---------------------------------------------------------------------------------------
// 3. #XM delivery through the IDT (emulator only).
// ---------------------------------------------------------------------------------------

mod delivery {
    use x86emu::cpu::regs::*;
    use x86emu::cpu::{Cpu, RunExit};
    use x86emu::devices::bus::NullBus;
    use x86emu::mmu::PhysMem;

    const GDT: u32 = 0x500;
    const IDT: u32 = 0x800;
    pub const CODE: u32 = 0x2000;
    const HANDLERS: u32 = 0x4000;
    pub const DATA: u32 = 0x6000;
    pub const STACK: u32 = 0x9000;
    /// Where the handlers store MXCSR.
    pub const SAVED_MXCSR: u32 = DATA + 0x40;
    /// Where the handlers store XMM0.
    pub const SAVED_XMM0: u32 = DATA + 0x50;
    pub const OSFXSR: u32 = 1 << 9;
    pub const OSXMMEXCPT: u32 = 1 << 10;

    fn abs(v: u32) -> [u8; 4] {
        v.to_le_bytes()
    }

    /// Flat protected mode; handlers for #UD (6) and #XM (19) that record the vector in
    /// EAX, the return frame in EBX (EIP), ECX (CS), EDX (EFLAGS), ESI (ESP after the
    /// frame was pushed), MXCSR and XMM0, then halt. The code under test: LDMXCSR [DATA],
    /// MOVUPS XMM0/XMM1 from [DATA+0x10]/[DATA+0x20], `insn` (at [`insn_at`]), HLT.
    pub fn machine(
        insn: &[u8],
        cr4: u32,
        mxcsr: u32,
        x0: [u32; 4],
        x1: [u32; 4],
    ) -> (Cpu, PhysMem) {
        let mut mem = PhysMem::new_flat(1 << 20);
        mem.write_bytes(GDT + 8, &[0xFF, 0xFF, 0, 0, 0, 0x9A, 0xCF, 0]);
        mem.write_bytes(GDT + 16, &[0xFF, 0xFF, 0, 0, 0, 0x92, 0xCF, 0]);
        for v in [6u8, 19] {
            let at = HANDLERS + 0x100 * v as u32;
            let mut h = vec![0xB8];
            h.extend(abs(v as u32)); // mov eax, v
            h.extend([0x8B, 0x1C, 0x24]); // mov ebx, [esp]
            h.extend([0x8B, 0x4C, 0x24, 0x04]); // mov ecx, [esp+4]
            h.extend([0x8B, 0x54, 0x24, 0x08]); // mov edx, [esp+8]
            h.extend([0x89, 0xE6]); // mov esi, esp
            h.extend([0x0F, 0xAE, 0x1D]); // stmxcsr [SAVED_MXCSR]
            h.extend(abs(SAVED_MXCSR));
            h.extend([0x0F, 0x11, 0x05]); // movups [SAVED_XMM0], xmm0
            h.extend(abs(SAVED_XMM0));
            h.push(0xF4);
            mem.write_bytes(at, &h);
            let e = IDT + 8 * v as u32;
            mem.write_bytes(e, &((0x08 << 16) | (at & 0xFFFF)).to_le_bytes());
            mem.write_bytes(e + 4, &((at & 0xFFFF_0000) | 0x8E00).to_le_bytes());
        }
        let mut c = vec![0x0F, 0xAE, 0x15];
        c.extend(abs(DATA));
        c.extend([0x0F, 0x10, 0x05]);
        c.extend(abs(DATA + 0x10));
        c.extend([0x0F, 0x10, 0x0D]);
        c.extend(abs(DATA + 0x20));
        assert_eq!(c.len() as u32, insn_at() - CODE);
        c.extend(insn);
        c.push(0xF4);
        mem.write_bytes(CODE, &c);
        mem.write_bytes(DATA, &mxcsr.to_le_bytes());
        for k in 0..4 {
            mem.write_bytes(DATA + 0x10 + 4 * k, &x0[k as usize].to_le_bytes());
            mem.write_bytes(DATA + 0x20 + 4 * k, &x1[k as usize].to_le_bytes());
        }
        let mut cpu = Cpu::new();
        cpu.state.enter_flat32();
        cpu.state.cr4 = cr4;
        cpu.state.gdtr.base = GDT;
        cpu.state.gdtr.limit = 23;
        cpu.state.idtr.base = IDT;
        cpu.state.idtr.limit = 0x7FF;
        cpu.state.eip = CODE;
        cpu.state.gpr[ESP] = STACK;
        cpu.state.gpr[EAX] = 0xAAAA_AAAA;
        (cpu, mem)
    }

    /// Address of the instruction under test.
    pub fn insn_at() -> u32 {
        CODE + 7 + 7 + 7
    }

    pub fn run(cpu: &mut Cpu, mem: &mut PhysMem) -> RunExit {
        cpu.run(mem, &mut NullBus, 1000)
    }

    pub fn rd32(mem: &PhysMem, a: u32) -> u32 {
        let mut b = [0u8; 4];
        mem.read_bytes(a, &mut b);
        u32::from_le_bytes(b)
    }

    pub fn rd128(mem: &PhysMem, a: u32) -> [u32; 4] {
        std::array::from_fn(|k| rd32(mem, a + 4 * k as u32))
    }
}

#[test]
fn xm_delivery_and_ud_without_osxmmexcpt() {
    use delivery::*;
    use x86emu::cpu::regs::*;
    use x86emu::cpu::RunExit;
    let one = 0x3F80_0000u32;
    let ones = [one; 4];
    let divps = [0x0F, 0x5E, 0xC1];
    // Lane 2 divides by zero; ZE unmasked.
    let x1 = [one, one, 0, one];
    let zm_unmasked = 0x1F80 & !(mxb::ZE << mxb::MASK_SHIFT);
    for (cr4, vector) in [(OSFXSR | OSXMMEXCPT, 19u32), (OSFXSR, 6)] {
        let (mut cpu, mut mem) = machine(&divps, cr4, zm_unmasked, ones, x1);
        cpu.state.set_eflags(0x2 | native::CF | native::ZF);
        assert_eq!(run(&mut cpu, &mut mem), RunExit::Halted);
        let g = &cpu.state.gpr;
        assert_eq!(g[EAX], vector, "vector with CR4 {cr4:#x}");
        assert_eq!(g[EBX], insn_at(), "pushed EIP: the faulting DIVPS");
        assert_eq!(g[ECX], 0x08, "pushed CS");
        assert_eq!(
            g[EDX] & 0xFFF,
            0x2 | native::CF | native::ZF,
            "pushed EFLAGS"
        );
        assert_eq!(g[ESI], STACK - 12, "no error code");
        assert_eq!(rd128(&mem, SAVED_XMM0), ones, "destination not written");
        // The flag is recorded in both cases (the #UD case is not checkable on a host
        // whose OS sets OSXMMEXCPT; this is the emulator's documented choice).
        assert_eq!(rd32(&mem, SAVED_MXCSR), zm_unmasked | mxb::ZE);
    }
    // Masked: no fault, the quotient is written, ZE recorded.
    let (mut cpu, mut mem) = machine(&divps, OSFXSR | OSXMMEXCPT, 0x1F80, ones, x1);
    assert_eq!(run(&mut cpu, &mut mem), RunExit::Halted);
    assert_eq!(cpu.state.eip, insn_at() + 4, "ran to the final HLT");
    assert_eq!(cpu.state.sse.mxcsr, 0x1F80 | mxb::ZE);
    assert_eq!(
        cpu.state.sse.xmm[0],
        [0, 0, 0x80, 0x3F, 0, 0, 0x80, 0x3F, 0, 0, 0x80, 0x7F, 0, 0, 0x80, 0x3F]
    );
    // A flag already set in MXCSR whose exception is unmasked does not fault by itself.
    let (mut cpu, mut mem) = machine(
        &divps,
        OSFXSR | OSXMMEXCPT,
        zm_unmasked | mxb::ZE,
        ones,
        ones,
    );
    assert_eq!(run(&mut cpu, &mut mem), RunExit::Halted);
    assert_eq!(cpu.state.eip, insn_at() + 4);
    // stop_on_exception: the run stops at the faulting instruction with #XM, no error
    // code.
    let (mut cpu, mut mem) = machine(&divps, OSFXSR | OSXMMEXCPT, zm_unmasked, ones, x1);
    cpu.stop_on_exception = true;
    assert_eq!(
        run(&mut cpu, &mut mem),
        RunExit::Exception {
            vector: 19,
            error_code: None
        }
    );
    assert_eq!(cpu.state.eip, insn_at());
    // COMISS with a QNaN and IE unmasked: #XM, EFLAGS unchanged.
    let comiss = [0x0F, 0x2F, 0xC1];
    let im_unmasked = 0x1F80 & !(mxb::IE << mxb::MASK_SHIFT);
    let (mut cpu, mut mem) = machine(
        &comiss,
        OSFXSR | OSXMMEXCPT,
        im_unmasked,
        ones,
        [0x7FC0_0000; 4],
    );
    cpu.state.set_eflags(0x2 | native::SF | native::OF);
    assert_eq!(run(&mut cpu, &mut mem), RunExit::Halted);
    let g = &cpu.state.gpr;
    assert_eq!((g[EAX], g[EBX]), (19, insn_at()));
    assert_eq!(g[EDX] & 0xFFF, 0x2 | native::SF | native::OF);
    assert_eq!(rd32(&mem, SAVED_MXCSR), im_unmasked | mxb::IE);
    // CVTSS2SI EAX with PE unmasked: #XM, EAX not written (the handler's value).
    let cvtss2si = [0xF3, 0x0F, 0x2D, 0xC1];
    let pm_unmasked = 0x1F80 & !(mxb::PE << mxb::MASK_SHIFT);
    let (mut cpu, mut mem) = machine(
        &cvtss2si,
        OSFXSR | OSXMMEXCPT,
        pm_unmasked,
        ones,
        [0x3FC0_0000; 4],
    );
    cpu.stop_on_exception = true;
    assert_eq!(
        run(&mut cpu, &mut mem),
        RunExit::Exception {
            vector: 19,
            error_code: None
        }
    );
    assert_eq!(cpu.state.gpr[EAX], 0xAAAA_AAAA);
    assert_eq!(cpu.state.sse.mxcsr, pm_unmasked | mxb::PE);
}

/// The conversions with an MMX register operand report a pending x87 exception first
/// (#MF with CR0.NE = 1); CVTPI2PS/PD from memory ignore it and leave the x87 alone.
#[test]
fn mmx_operand_conversions_and_pending_x87_exceptions() {
    use delivery::*;
    use x86emu::cpu::RunExit;
    const CR0_NE: u32 = 1 << 5;
    let mut m64 = vec![0x0F, 0x2A, 0x05];
    m64.extend((DATA + 0x20).to_le_bytes());
    let mut m64_pd = vec![0x66];
    m64_pd.extend(&m64);
    let forms: [(&str, Vec<u8>, bool); 6] = [
        ("cvtpi2ps xmm0,mm1", vec![0x0F, 0x2A, 0xC1], true),
        ("cvtpi2pd xmm0,mm1", vec![0x66, 0x0F, 0x2A, 0xC1], true),
        ("cvtps2pi mm0,xmm1", vec![0x0F, 0x2D, 0xC1], true),
        ("cvttpd2pi mm0,xmm1", vec![0x66, 0x0F, 0x2C, 0xC1], true),
        ("cvtpi2ps xmm0,m64", m64, false),
        ("cvtpi2pd xmm0,m64", m64_pd, false),
    ];
    for (name, code, mmx) in forms {
        let (mut cpu, mut mem) = machine(&code, OSFXSR | OSXMMEXCPT, 0x1F80, [0; 4], [0; 4]);
        cpu.stop_on_exception = true;
        cpu.state.cr0 |= CR0_NE;
        cpu.state.fpu.sw |= 0x81; // IE + ES: an unmasked exception is pending
        cpu.state.fpu.sw |= 3 << 11; // TOP = 3
        cpu.state.fpu.valid = 0x08;
        let r = run(&mut cpu, &mut mem);
        if mmx {
            assert_eq!(
                r,
                RunExit::Exception {
                    vector: 16,
                    error_code: None
                },
                "{name}: #MF"
            );
            assert_eq!(cpu.state.eip, insn_at(), "{name}");
            assert_eq!((cpu.state.fpu.sw >> 11) & 7, 3, "{name}: no transition");
        } else {
            assert_eq!(r, RunExit::Halted, "{name}: no #MF");
            assert_eq!((cpu.state.fpu.sw >> 11) & 7, 3, "{name}: no transition");
            assert_eq!(cpu.state.fpu.valid, 0x08, "{name}: tags untouched");
        }
    }
}
