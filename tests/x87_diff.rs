//! Differential test of the x87 FPU against the host CPU's.
//!
//! Every x87 instruction form runs in generated snippets (see `tests/x87/mod.rs` for the
//! layout) natively in a 32-bit process (`tests/native/runner32.c`) and in the emulator,
//! under every precision-control setting (24, 53, 64 bits and the reserved 01, which
//! behaves as 64) × the four rounding modes and with masked and unmasked exceptions. Operands: random values, ±0, denormals, pseudo-denormals,
//! unnormals, pseudo-NaN/infinity, infinities, QNaN/SNaN with payloads, values near the
//! 24/53/64-bit rounding points, extreme exponents, values near integers, related pairs
//! (cancellation, exponent distances around the alignment limits). Compared: the whole
//! FNSAVE image (control, status with C0-C3 and TOP, derived tag word, FIP, the eight
//! registers) except FCS/FOP/FDP/FDS (see `x87::compared`), memory results, EAX
//! (FNSTSW AX) and EFLAGS (FCOMI & co.). Every form must match 100%.
//!
//! Knobs: `X86EMU_X87_FILTER=substr` (forms whose name contains it),
//! `X86EMU_X87_SCALE=f` (case count factor), `X86EMU_X87_SEED=n`, `X86EMU_X87_SHOW=n`
//! (mismatches printed per form, default 3).

mod common;
mod x87;

use common::native::{self, disasm, Emu, Exit, Outcome, CODE_ADDR, DATA_ADDR};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use x87::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MemK {
    None,
    F32,
    F64,
    I16,
    I32,
    I64,
    Bcd,
    M80,
    /// A random control word (FLDCW).
    Cw,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Gen {
    /// n stack operands (ST(0) = first generated, ST(1) related to it).
    Stack(usize),
    /// One operand near an integer (FRNDINT, FIST, FBSTP).
    NearInt,
    /// ST(0) = x, ST(1) = a scale factor (FSCALE).
    Scale,
    /// ST(0) = x, ST(1) = y with a random exponent distance (FPREM, FPREM1).
    Rem,
    /// Two operands and random EFLAGS (FCMOVcc).
    Cmov,
    /// A random stack of 1..=8 values (forms that name ST(i) for i > 1).
    Deep,
    /// A random FRSTOR/FLDENV image at the start of the data buffer.
    SaveImage,
    /// A random FXRSTOR image at the start of the data buffer.
    FxImage,
}

struct Form {
    name: String,
    code: Vec<u8>,
    gen: Gen,
    mem: MemK,
    /// Cases per (precision, rounding) pair at scale 1.
    n: usize,
    /// Data bytes not compared (relative to MEM_OUT): pointer fields the host does not
    /// maintain (FCS/FDS deprecated, FOP/FDP only updated on unmasked exceptions).
    ignore: Vec<usize>,
}

fn form(name: &str, code: Vec<u8>, gen: Gen, mem: MemK) -> Form {
    Form {
        name: name.to_string(),
        code,
        gen,
        mem,
        n: 40,
        ignore: Vec::new(),
    }
}

fn forms() -> Vec<Form> {
    use Gen::*;
    let mut v = Vec::new();
    let d8 = [
        "fadd", "fmul", "fcom", "fcomp", "fsub", "fsubr", "fdiv", "fdivr",
    ];
    let dc = [
        "fadd", "fmul", "fcom2", "fcomp3", "fsubr", "fsub", "fdivr", "fdiv",
    ];
    for r in [0u8, 1, 4, 5, 6, 7] {
        let m = 0xC1 | (r << 3);
        v.push(form(
            &format!("{} st0,st1", d8[r as usize]),
            reg_op(0xD8, m),
            Stack(2),
            MemK::None,
        ));
        v.push(form(
            &format!("{} st1,st0", dc[r as usize]),
            reg_op(0xDC, m),
            Stack(2),
            MemK::None,
        ));
        v.push(form(
            &format!("{}p st1,st0", dc[r as usize]),
            reg_op(0xDE, m),
            Stack(2),
            MemK::None,
        ));
    }
    for r in 0u8..8 {
        let n = d8[r as usize];
        v.push(form(
            &format!("{n} m32"),
            mem_op(0xD8, r, MEM_IN),
            Stack(1),
            MemK::F32,
        ));
        v.push(form(
            &format!("{n} m64"),
            mem_op(0xDC, r, MEM_IN),
            Stack(1),
            MemK::F64,
        ));
        let ni = n.replacen('f', "fi", 1);
        v.push(form(
            &format!("{ni} m32int"),
            mem_op(0xDA, r, MEM_IN),
            Stack(1),
            MemK::I32,
        ));
        v.push(form(
            &format!("{ni} m16int"),
            mem_op(0xDE, r, MEM_IN),
            Stack(1),
            MemK::I16,
        ));
    }
    for (n, c) in [
        ("fcom st1", [0xD8, 0xD1]),
        ("fcomp st1", [0xD8, 0xD9]),
        ("fcompp", [0xDE, 0xD9]),
        ("fcom2 st1", [0xDC, 0xD1]),
        ("fcomp3 st1", [0xDC, 0xD9]),
        ("fcomp5 st1", [0xDE, 0xD1]),
        ("fucom st1", [0xDD, 0xE1]),
        ("fucomp st1", [0xDD, 0xE9]),
        ("fucompp", [0xDA, 0xE9]),
        ("fcomi st1", [0xDB, 0xF1]),
        ("fucomi st1", [0xDB, 0xE9]),
        ("fcomip st1", [0xDF, 0xF1]),
        ("fucomip st1", [0xDF, 0xE9]),
    ] {
        v.push(form(n, c.to_vec(), Stack(2), MemK::None));
    }
    v.push(form("ftst", vec![0xD9, 0xE4], Stack(1), MemK::None));
    v.push(form("fxam", vec![0xD9, 0xE5], Stack(1), MemK::None));
    // Loads.
    v.push(form(
        "fld m32",
        mem_op(0xD9, 0, MEM_IN),
        Stack(0),
        MemK::F32,
    ));
    v.push(form(
        "fld m64",
        mem_op(0xDD, 0, MEM_IN),
        Stack(0),
        MemK::F64,
    ));
    v.push(form(
        "fld m80",
        mem_op(0xDB, 5, MEM_IN),
        Stack(0),
        MemK::M80,
    ));
    v.push(form(
        "fild m16",
        mem_op(0xDF, 0, MEM_IN),
        Stack(0),
        MemK::I16,
    ));
    v.push(form(
        "fild m32",
        mem_op(0xDB, 0, MEM_IN),
        Stack(0),
        MemK::I32,
    ));
    v.push(form(
        "fild m64",
        mem_op(0xDF, 5, MEM_IN),
        Stack(0),
        MemK::I64,
    ));
    v.push(form("fbld", mem_op(0xDF, 4, MEM_IN), Stack(0), MemK::Bcd));
    v.push(form("fld st1", vec![0xD9, 0xC1], Stack(2), MemK::None));
    for (k, n) in [
        "fld1", "fldl2t", "fldl2e", "fldpi", "fldlg2", "fldln2", "fldz",
    ]
    .iter()
    .enumerate()
    {
        let mut f = form(n, vec![0xD9, 0xE8 + k as u8], Stack(0), MemK::None);
        f.n = 4;
        v.push(f);
    }
    // Stores.
    for (n, c, g) in [
        ("fst m32", mem_op(0xD9, 2, MEM_OUT), Stack(1)),
        ("fstp m32", mem_op(0xD9, 3, MEM_OUT), Stack(1)),
        ("fst m64", mem_op(0xDD, 2, MEM_OUT), Stack(1)),
        ("fstp m64", mem_op(0xDD, 3, MEM_OUT), Stack(1)),
        ("fstp m80", mem_op(0xDB, 7, MEM_OUT), Stack(1)),
        ("fist m16", mem_op(0xDF, 2, MEM_OUT), NearInt),
        ("fistp m16", mem_op(0xDF, 3, MEM_OUT), NearInt),
        ("fist m32", mem_op(0xDB, 2, MEM_OUT), NearInt),
        ("fistp m32", mem_op(0xDB, 3, MEM_OUT), NearInt),
        ("fistp m64", mem_op(0xDF, 7, MEM_OUT), NearInt),
        ("fbstp", mem_op(0xDF, 6, MEM_OUT), NearInt),
        ("fst st1", vec![0xDD, 0xD1], Stack(2)),
        ("fstp st1", vec![0xDD, 0xD9], Stack(2)),
        ("fstp1 st1", vec![0xD9, 0xD9], Stack(2)),
        ("fstp8 st1", vec![0xDF, 0xD1], Stack(2)),
        ("fstp9 st1", vec![0xDF, 0xD9], Stack(2)),
    ] {
        v.push(form(n, c, g, MemK::None));
    }
    // Everything else.
    for (n, c, g) in [
        ("fxch st1", vec![0xD9, 0xC9], Stack(2)),
        ("fxch4 st1", vec![0xDD, 0xC9], Stack(2)),
        ("fxch7 st1", vec![0xDF, 0xC9], Stack(2)),
        ("fchs", vec![0xD9, 0xE0], Stack(1)),
        ("fabs", vec![0xD9, 0xE1], Stack(1)),
        ("fsqrt", vec![0xD9, 0xFA], Stack(1)),
        ("frndint", vec![0xD9, 0xFC], NearInt),
        ("fscale", vec![0xD9, 0xFD], Scale),
        ("fxtract", vec![0xD9, 0xF4], Stack(1)),
        ("fprem", vec![0xD9, 0xF8], Rem),
        ("fprem1", vec![0xD9, 0xF5], Rem),
        ("fdecstp", vec![0xD9, 0xF6], Stack(1)),
        ("fincstp", vec![0xD9, 0xF7], Stack(1)),
        ("ffree st1", vec![0xDD, 0xC1], Stack(2)),
        ("ffreep st1", vec![0xDF, 0xC1], Stack(2)),
        ("fnop", vec![0xD9, 0xD0], Stack(1)),
        ("fnstsw ax", vec![0xDF, 0xE0], Stack(2)),
        ("fnclex", vec![0xDB, 0xE2], Stack(2)),
        ("fnstcw m16", mem_op(0xD9, 7, MEM_OUT), Stack(1)),
        ("fnstsw m16", mem_op(0xDD, 7, MEM_OUT), Stack(1)),
    ] {
        v.push(form(n, c, g, MemK::None));
    }
    let mut f = form(
        "fnstenv m28",
        mem_op(0xD9, 6, MEM_OUT),
        Stack(2),
        MemK::None,
    );
    f.ignore = (16..26).collect();
    v.push(f);
    let mut f = form(
        "fnstenv m14",
        [&[0x66][..], &mem_op(0xD9, 6, MEM_OUT)].concat(),
        Stack(2),
        MemK::None,
    );
    f.ignore = (8..14).collect();
    v.push(f);
    v.push(form("fldcw", mem_op(0xD9, 5, MEM_IN), Stack(2), MemK::Cw));
    let cm = ["fcmovb", "fcmove", "fcmovbe", "fcmovu"];
    for r in 0u8..4 {
        let m = 0xC1 | (r << 3);
        v.push(form(
            &format!("{} st0,st1", cm[r as usize]),
            reg_op(0xDA, m),
            Cmov,
            MemK::None,
        ));
        let nn = cm[r as usize].replacen("fcmov", "fcmovn", 1);
        v.push(form(
            &format!("{nn} st0,st1"),
            reg_op(0xDB, m),
            Cmov,
            MemK::None,
        ));
    }
    // Save/restore round trips: the final FNSAVE shows the restored state.
    let far = 0x200u32;
    let rt = |a: Vec<u8>, b: Vec<u8>| [a, vec![0xD9, 0xE8], b].concat(); // FLD1 in between
    v.push(form(
        "fnstenv/fldenv 32",
        rt(mem_op(0xD9, 6, far), mem_op(0xD9, 4, far)),
        Stack(2),
        MemK::None,
    ));
    v.push(form(
        "fnstenv/fldenv 16",
        rt(
            [&[0x66][..], &mem_op(0xD9, 6, far)].concat(),
            [&[0x66][..], &mem_op(0xD9, 4, far)].concat(),
        ),
        Stack(2),
        MemK::None,
    ));
    v.push(form(
        "fnsave/frstor 32",
        rt(mem_op(0xDD, 6, far), mem_op(0xDD, 4, far)),
        Stack(2),
        MemK::None,
    ));
    v.push(form(
        "fnsave/frstor 16",
        rt(
            [&[0x66][..], &mem_op(0xDD, 6, far)].concat(),
            [&[0x66][..], &mem_op(0xDD, 4, far)].concat(),
        ),
        Stack(2),
        MemK::None,
    ));
    // FNSTENV after an operation that may have raised an unmasked exception: the masks
    // it sets clear ES.
    v.push(form(
        "fdivp; fnstenv",
        [vec![0xDE, 0xF9], mem_op(0xD9, 6, far)].concat(),
        Stack(2),
        MemK::None,
    ));
    // FXSAVE: copy the header (without MXCSR) and the eight register fields into the
    // compared buffer; then FXRSTOR the image.
    let mut fx = vec![0x0F, 0xAE, 0x05];
    fx.extend_from_slice(&(DATA_ADDR + 0x400).to_le_bytes());
    let copy = |fx: &mut Vec<u8>, src: u32, dst: u32| {
        fx.push(0xA1); // mov eax, [src]
        fx.extend_from_slice(&(DATA_ADDR + src).to_le_bytes());
        fx.push(0xA3); // mov [dst], eax
        fx.extend_from_slice(&(DATA_ADDR + dst).to_le_bytes());
    };
    for k in 0..6 {
        copy(&mut fx, 0x400 + 4 * k, MEM_OUT + 4 * k);
    }
    for r in 0..8u32 {
        copy(&mut fx, 0x420 + 16 * r, 112 + 10 * r);
        copy(&mut fx, 0x424 + 16 * r, 116 + 10 * r);
        copy(&mut fx, 0x428 + 16 * r, 120 + 10 * r);
    }
    fx.extend_from_slice(&[0xD9, 0xE8, 0x0F, 0xAE, 0x0D]); // FLD1; FXRSTOR
    fx.extend_from_slice(&(DATA_ADDR + 0x400).to_le_bytes());
    // Loading random images: tags are recomputed from the registers, status and control
    // words keep what the hardware keeps.
    v.push(form(
        "frstor m108 (random)",
        mem_op(0xDD, 4, 0),
        SaveImage,
        MemK::None,
    ));
    v.push(form(
        "fldenv m28 (random)",
        mem_op(0xD9, 4, 0),
        SaveImage,
        MemK::None,
    ));
    let mut fxr = vec![0x0F, 0xAE, 0x0D];
    fxr.extend_from_slice(&DATA_ADDR.to_le_bytes());
    v.push(form("fxrstor (random)", fxr, FxImage, MemK::None));
    // Register forms naming deeper registers, on stacks of random depth.
    for (n, c) in [
        ("fadd st0,st5", [0xD8, 0xC5]),
        ("fsubr st3,st0", [0xDC, 0xE3]),
        ("fdivp st7,st0", [0xDE, 0xFF]),
        ("fmul st0,st2", [0xD8, 0xCA]),
        ("fcom st3", [0xD8, 0xD3]),
        ("fucomp st6", [0xDD, 0xEE]),
        ("fcomi st4", [0xDB, 0xF4]),
        ("fucomip st7", [0xDF, 0xEF]),
        ("fld st3", [0xD9, 0xC3]),
        ("fst st5", [0xDD, 0xD5]),
        ("fstp st7", [0xDD, 0xDF]),
        ("fstp1 st4", [0xD9, 0xDC]),
        ("fxch st6", [0xD9, 0xCE]),
        ("ffree st3", [0xDD, 0xC3]),
        ("ffreep st0", [0xDF, 0xC0]),
        ("fcmovnbe st0,st4", [0xDB, 0xD4]),
        ("fcmovu st0,st7", [0xDA, 0xDF]),
        ("fprem (deep)", [0xD9, 0xF8]),
        ("fxtract (deep)", [0xD9, 0xF4]),
        ("fldpi (deep)", [0xD9, 0xEB]),
    ] {
        v.push(form(n, c.to_vec(), Deep, MemK::None));
    }
    let mut f = form("fxsave/fxrstor", fx, Stack(2), MemK::None);
    f.ignore = [6, 7, 12, 13, 16, 17, 18, 19, 20, 21, 22, 23].to_vec(); // FOP FCS FDP FDS
    v.push(f);
    v
}

/// The control word for a case: precision `pc`, rounding `rc`, and exception masks (all
/// masked most of the time, otherwise a random subset).
fn control_word(rng: &mut StdRng, pc: u16, rc: u16) -> u16 {
    let masks = match rng.gen_range(0..8) {
        0 => 0,
        1 | 2 => rng.gen_range(0..0x40),
        _ => 0x3F,
    };
    (rc << 10) | (pc << 8) | 0x40 | masks
}

fn gen_case(rng: &mut StdRng, f: &Form, pc: u16, rc: u16) -> Case {
    let mut stack: Vec<X80> = match f.gen {
        Gen::Stack(0) => vec![],
        Gen::Stack(1) => vec![gen_x80(rng)],
        Gen::Stack(_) | Gen::Cmov => {
            let a = gen_x80(rng);
            let b = gen_pair(rng, a);
            vec![b, a]
        }
        Gen::NearInt => vec![gen_near_int(rng)],
        Gen::Deep => (0..rng.gen_range(1..=8)).map(|_| gen_x80(rng)).collect(),
        Gen::SaveImage | Gen::FxImage => (0..rng.gen_range(0..=3)).map(|_| gen_x80(rng)).collect(),
        Gen::Scale => {
            let s = match rng.gen_range(0..4) {
                0 => X80::from_f64(rng.gen_range(-80.0..80.0_f64)),
                1 => X80::from_f64(rng.gen_range(-20000.0..20000.0_f64).trunc()),
                2 => X80::from_f64(rng.gen_range(-70000.0..70000.0_f64)),
                _ => gen_x80(rng),
            };
            vec![s, gen_x80(rng)]
        }
        Gen::Rem => {
            let a = gen_x80(rng);
            let b = if rng.gen_bool(0.7) && a.se & 0x7FFF != 0x7FFF {
                let d: i32 = rng.gen_range(-3..130);
                let e = ((a.se & 0x7FFF) as i32 - d).clamp(1, 0x7FFE) as u16;
                let s = if rng.gen_bool(0.5) { 0x8000 } else { 0 };
                X80::new(s | e, rng.gen::<u64>() | (1 << 63))
            } else {
                gen_x80(rng)
            };
            vec![b, a]
        }
    };
    // Stack faults: sometimes leave operands out (empty registers) or fill the stack.
    match rng.gen_range(0..16) {
        0 if !stack.is_empty() => {
            let k = rng.gen_range(0..stack.len());
            stack.drain(..stack.len() - k);
        }
        1 => {
            let mut pre: Vec<X80> = (0..8 - stack.len()).map(|_| gen_x80(rng)).collect();
            pre.extend(stack);
            stack = pre;
        }
        _ => {}
    }
    let mut mem = [0u8; 10];
    match f.mem {
        MemK::None => {}
        MemK::F32 => mem[..4].copy_from_slice(&gen_f32(rng).to_le_bytes()),
        MemK::F64 => mem[..8].copy_from_slice(&gen_f64(rng).to_le_bytes()),
        MemK::I16 => mem[..2].copy_from_slice(&(gen_int(rng, 16) as i16).to_le_bytes()),
        MemK::I32 => mem[..4].copy_from_slice(&(gen_int(rng, 32) as i32).to_le_bytes()),
        MemK::I64 => mem[..8].copy_from_slice(&gen_int(rng, 64).to_le_bytes()),
        MemK::Bcd => mem = gen_bcd(rng),
        MemK::M80 => mem = gen_x80(rng).bytes(),
        MemK::Cw => mem[..2].copy_from_slice(&rng.gen::<u16>().to_le_bytes()),
    }
    let eflags = if matches!(f.gen, Gen::Cmov | Gen::Deep) {
        rng.gen::<u32>() & (native::CF | native::PF | native::ZF)
    } else {
        0
    };

    let image = match f.gen {
        Gen::SaveImage => Some(gen_save_image(rng)),
        Gen::FxImage => Some(gen_fxsave_image(rng)),
        _ => None,
    };
    Case {
        stack,
        cw: control_word(rng, pc, rc),
        mem,
        code: f.code.clone(),
        eflags,
        image,
    }
}

fn env_f64(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Differences between the native and emulated outcome, or None if they agree.
fn diff(native: &Outcome, emu: &Outcome, ignore: &[usize]) -> Option<String> {
    let mut d = Vec::new();
    if !native.exit.same_as(&emu.exit) {
        d.push(format!("exit: native {} emu {}", native.exit, emu.exit));
        return Some(d.join("; "));
    }
    if native.exit != Exit::Done {
        return None;
    }
    if native.regs[0] != emu.regs[0] {
        d.push(format!("eax {:08x} vs {:08x}", native.regs[0], emu.regs[0]));
    }
    let fl = native::ARITH;
    if native.eflags & fl != emu.eflags & fl {
        d.push(format!(
            "eflags {} vs {}",
            native::flag_names(native.eflags & fl),
            native::flag_names(emu.eflags & fl)
        ));
    }
    let bad: Vec<usize> = (0..native.data.len())
        .filter(|&i| {
            let rel = i.wrapping_sub(MEM_OUT as usize);
            compared(i) && !ignore.contains(&rel) && native.data[i] != emu.data[i]
        })
        .collect();
    if !bad.is_empty() {
        d.push(format!(
            "data differs at {:?}\n      native: {}\n      emu:    {}",
            &bad[..bad.len().min(12)],
            describe_save(&native.data),
            describe_save(&emu.data)
        ));
        if bad.iter().any(|&i| i >= MEM_OUT as usize) {
            let o = MEM_OUT as usize;
            d.push(format!(
                "mem out native {:02x?} emu {:02x?}",
                &native.data[o..o + 28],
                &emu.data[o..o + 28]
            ));
        }
    }
    if d.is_empty() {
        None
    } else {
        Some(d.join("; "))
    }
}

#[test]
fn x87_differential() {
    if !native::host_runs_i386() {
        println!(
            "x87-diff: SKIPPED: the host CPU is not x86, there is no native x87 to compare with"
        );
        return;
    }
    let scale = env_f64("X86EMU_X87_SCALE", 1.0);
    let seed = env_f64("X86EMU_X87_SEED", 87.0) as u64;
    let show = env_f64("X86EMU_X87_SHOW", 3.0) as usize;
    let filter = std::env::var("X86EMU_X87_FILTER").unwrap_or_default();
    let runner = native::runner_path();
    let mut emu = Emu::new();
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut passed, mut failed) = (0usize, 0usize);
    let mut table = Vec::new();
    let start = std::time::Instant::now();
    for f in forms() {
        if !f.name.contains(&filter) {
            continue;
        }
        let n = ((f.n as f64 * scale).ceil() as usize).max(1);
        let mut cases = Vec::new();
        for pc in [0u16, 1, 2, 3] {
            for rc in 0u16..4 {
                for _ in 0..n {
                    cases.push(gen_case(&mut rng, &f, pc, rc));
                }
            }
        }
        let snippets: Vec<_> = cases.iter().map(|c| c.snippet()).collect();
        let native_out = native::run_native(&runner, &snippets);
        let (mut ok, mut bad) = (0usize, 0usize);
        for ((c, s), nat) in cases.iter().zip(&snippets).zip(&native_out) {
            let e = emu.run(s);
            match diff(nat, &e, &f.ignore) {
                None => ok += 1,
                Some(msg) => {
                    if bad < show {
                        let stack: Vec<String> =
                            c.stack.iter().rev().map(|v| v.to_string()).collect();
                        println!(
                            "MISMATCH {}: cw {:04x} st(0..)=[{}] mem {:02x?} eflags {:x}\n   {}\n   {}",
                            f.name,
                            c.cw,
                            stack.join(", "),
                            &c.mem,
                            c.eflags,
                            disasm(&c.code, CODE_ADDR),
                            msg
                        );
                    }
                    bad += 1;
                }
            }
        }
        passed += ok;
        failed += bad;
        table.push((f.name.clone(), ok, bad));
    }
    println!("{:<24} {:>8} {:>8}", "form", "passed", "failed");
    for (n, ok, bad) in &table {
        println!("{n:<24} {ok:>8} {bad:>8}");
    }
    println!(
        "x87-diff: {passed} passed, {failed} failed ({} forms, {:.1}s)",
        table.len(),
        start.elapsed().as_secs_f64()
    );
    assert_eq!(failed, 0, "x87 differential mismatches");
}
