//! Differential test of the SSE/SSE2 instructions on XMM registers other than the
//! floating-point arithmetic (moves, logic, shuffles, unpacks, the SSE2 integer
//! instructions, MXCSR access, non-temporal and masked stores, fences, CLFLUSH,
//! PREFETCH) against the host CPU.
//!
//! Each case runs natively in a 32-bit process (`tests/native/runner32.c`) and in the
//! emulator (CR4.OSFXSR and OSXMMEXCPT set, as the host OS has them) inside the frame
//! of `tests/common/simd.rs`: XMM0-3, MM0-3 and MXCSR loaded from the data buffer, the
//! instruction, then XMM0-3, MM0-3, the x87 environment and MXCSR stored back. Compared:
//! the exit (completed, or the exception: misaligned 16-byte operands give #GP),
//! every general register and the data buffer (results and the 32-byte memory operand
//! area). Operands are random and lane edge values. Every form must match 100%.
//!
//! Knobs: `X86EMU_SSE_FILTER=substr`, `X86EMU_SSE_SCALE=f`, `X86EMU_SSE_SEED=n`.

mod common;

use common::native::{self, disasm, Emu, CODE_ADDR, DATA_ADDR};
use common::simd::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// How the operands of a form are generated.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Gen {
    /// Random and lane-edge values everywhere.
    Lanes,
    /// The source (XMM1 and the memory operand) holds a shift count in its low quadword.
    Count,
    /// The memory operand at this offset holds an MXCSR value (sometimes with reserved
    /// bits set) and MXCSR starts with a random valid value.
    Mxcsr(usize),
}

struct Form {
    group: &'static str,
    name: String,
    /// Code run before the instruction (not under test).
    setup: Vec<u8>,
    code: Vec<u8>,
    /// Append a random imm8.
    imm: bool,
    gen: Gen,
}

const P66: u8 = 0x66;
const PF3: u8 = 0xF3;
const PF2: u8 = 0xF2;
const NP: u8 = 0;

/// Opcode bytes with an optional mandatory prefix.
fn op(pfx: u8, opc: u8) -> Vec<u8> {
    let mut v = Vec::new();
    if pfx != NP {
        v.push(pfx);
    }
    v.extend([0x0F, opc]);
    v
}

fn reg_form(pfx: u8, opc: u8, reg: u8, rm: u8) -> Vec<u8> {
    let mut v = op(pfx, opc);
    v.push(modrm_reg(reg, rm));
    v
}

/// [data + X_MEM + off].
fn mem_form(pfx: u8, opc: u8, reg: u8, off: u32) -> Vec<u8> {
    let mut v = op(pfx, opc);
    v.extend(modrm_mem(reg, X_MEM as u32 + off));
    v
}

fn mov_edi(off: u32) -> Vec<u8> {
    let mut v = vec![0xBF];
    v.extend((DATA_ADDR + X_MEM as u32 + off).to_le_bytes());
    v
}

fn forms() -> Vec<Form> {
    let mut f: Vec<Form> = Vec::new();
    let mut add = |group: &'static str, name: String, code: Vec<u8>, imm: bool, gen: Gen| {
        f.push(Form {
            group,
            name,
            setup: Vec::new(),
            code,
            imm,
            gen,
        })
    };
    use Gen::*;

    // Full-width loads and stores; the aligned forms fault on a misaligned operand.
    for (pfx, opc, name, aligned) in [
        (NP, 0x10, "movups", false),
        (P66, 0x10, "movupd", false),
        (PF3, 0x6F, "movdqu", false),
        (NP, 0x28, "movaps", true),
        (P66, 0x28, "movapd", true),
        (P66, 0x6F, "movdqa", true),
    ] {
        add(
            "move",
            format!("{name} xmm,xmm"),
            reg_form(pfx, opc, 1, 2),
            false,
            Lanes,
        );
        add(
            "move",
            format!("{name} xmm,m128"),
            mem_form(pfx, opc, 3, 0),
            false,
            Lanes,
        );
        let off = if aligned { 8 } else { 3 };
        add(
            "move",
            format!("{name} xmm,m128+{off}"),
            mem_form(pfx, opc, 0, off),
            false,
            Lanes,
        );
    }
    for (pfx, opc, name, aligned, reg) in [
        (NP, 0x11, "movups", false, true),
        (P66, 0x11, "movupd", false, true),
        (PF3, 0x7F, "movdqu", false, true),
        (NP, 0x29, "movaps", true, true),
        (P66, 0x29, "movapd", true, true),
        (P66, 0x7F, "movdqa", true, true),
        (NP, 0x2B, "movntps", true, false),
        (P66, 0x2B, "movntpd", true, false),
        (P66, 0xE7, "movntdq", true, false),
    ] {
        if reg {
            add(
                "move",
                format!("{name} xmm,xmm (store)"),
                reg_form(pfx, opc, 2, 0),
                false,
                Lanes,
            );
        }
        add(
            "move",
            format!("{name} m128,xmm"),
            mem_form(pfx, opc, 1, 0),
            false,
            Lanes,
        );
        let off = if aligned { 8 } else { 5 };
        add(
            "move",
            format!("{name} m128+{off},xmm"),
            mem_form(pfx, opc, 3, off),
            false,
            Lanes,
        );
    }
    // Scalar and half-register moves: the register and memory forms differ.
    for (pfx, name) in [(PF3, "movss"), (PF2, "movsd")] {
        add(
            "move",
            format!("{name} xmm,xmm"),
            reg_form(pfx, 0x10, 0, 3),
            false,
            Lanes,
        );
        add(
            "move",
            format!("{name} xmm,m"),
            mem_form(pfx, 0x10, 2, 0),
            false,
            Lanes,
        );
        add(
            "move",
            format!("{name} xmm,m+6"),
            mem_form(pfx, 0x10, 1, 6),
            false,
            Lanes,
        );
        add(
            "move",
            format!("{name} xmm,xmm (store)"),
            reg_form(pfx, 0x11, 3, 1),
            false,
            Lanes,
        );
        add(
            "move",
            format!("{name} m,xmm"),
            mem_form(pfx, 0x11, 2, 0),
            false,
            Lanes,
        );
        add(
            "move",
            format!("{name} m+6,xmm"),
            mem_form(pfx, 0x11, 0, 6),
            false,
            Lanes,
        );
    }
    add(
        "move",
        "movlps xmm,m64".into(),
        mem_form(NP, 0x12, 1, 0),
        false,
        Lanes,
    );
    add(
        "move",
        "movlps xmm,m64+3".into(),
        mem_form(NP, 0x12, 2, 3),
        false,
        Lanes,
    );
    add(
        "move",
        "movhlps xmm,xmm".into(),
        reg_form(NP, 0x12, 1, 3),
        false,
        Lanes,
    );
    add(
        "move",
        "movlpd xmm,m64".into(),
        mem_form(P66, 0x12, 0, 8),
        false,
        Lanes,
    );
    add(
        "move",
        "movhps xmm,m64".into(),
        mem_form(NP, 0x16, 3, 4),
        false,
        Lanes,
    );
    add(
        "move",
        "movlhps xmm,xmm".into(),
        reg_form(NP, 0x16, 2, 0),
        false,
        Lanes,
    );
    add(
        "move",
        "movhpd xmm,m64".into(),
        mem_form(P66, 0x16, 1, 16),
        false,
        Lanes,
    );
    add(
        "move",
        "movlps m64,xmm".into(),
        mem_form(NP, 0x13, 2, 0),
        false,
        Lanes,
    );
    add(
        "move",
        "movlpd m64,xmm".into(),
        mem_form(P66, 0x13, 3, 9),
        false,
        Lanes,
    );
    add(
        "move",
        "movhps m64,xmm".into(),
        mem_form(NP, 0x17, 1, 8),
        false,
        Lanes,
    );
    add(
        "move",
        "movhpd m64,xmm".into(),
        mem_form(P66, 0x17, 0, 1),
        false,
        Lanes,
    );
    add(
        "move",
        "movmskps r32,xmm".into(),
        reg_form(NP, 0x50, 2, 1),
        false,
        Lanes,
    );
    add(
        "move",
        "movmskpd r32,xmm".into(),
        reg_form(P66, 0x50, 7, 3),
        false,
        Lanes,
    );
    // MOVD / MOVQ in every form, MOVQ2DQ, MOVDQ2Q.
    add(
        "move",
        "movd xmm,r32".into(),
        reg_form(P66, 0x6E, 1, 3),
        false,
        Lanes,
    );
    add(
        "move",
        "movd xmm,m32".into(),
        mem_form(P66, 0x6E, 2, 4),
        false,
        Lanes,
    );
    add(
        "move",
        "movd r32,xmm".into(),
        reg_form(P66, 0x7E, 2, 6),
        false,
        Lanes,
    );
    add(
        "move",
        "movd m32,xmm".into(),
        mem_form(P66, 0x7E, 3, 12),
        false,
        Lanes,
    );
    add(
        "move",
        "movq xmm,xmm".into(),
        reg_form(PF3, 0x7E, 0, 1),
        false,
        Lanes,
    );
    add(
        "move",
        "movq xmm,m64".into(),
        mem_form(PF3, 0x7E, 3, 8),
        false,
        Lanes,
    );
    add(
        "move",
        "movq xmm,xmm (d6)".into(),
        reg_form(P66, 0xD6, 2, 3),
        false,
        Lanes,
    );
    add(
        "move",
        "movq m64,xmm".into(),
        mem_form(P66, 0xD6, 1, 20),
        false,
        Lanes,
    );
    add(
        "move",
        "movq2dq xmm,mm".into(),
        reg_form(PF3, 0xD6, 1, 2),
        false,
        Lanes,
    );
    add(
        "move",
        "movdq2q mm,xmm".into(),
        reg_form(PF2, 0xD6, 3, 0),
        false,
        Lanes,
    );
    add(
        "move",
        "movnti m32,r32".into(),
        mem_form(NP, 0xC3, 2, 4),
        false,
        Lanes,
    );
    add(
        "move",
        "movnti m32+1,r32".into(),
        mem_form(NP, 0xC3, 5, 1),
        false,
        Lanes,
    );

    // Logic.
    for (opc, name) in [(0x54, "and"), (0x55, "andn"), (0x56, "or"), (0x57, "xor")] {
        for (pfx, t) in [(NP, "ps"), (P66, "pd")] {
            add(
                "logic",
                format!("{name}{t} xmm,xmm"),
                reg_form(pfx, opc, 0, 2),
                false,
                Lanes,
            );
            add(
                "logic",
                format!("{name}{t} xmm,m128"),
                mem_form(pfx, opc, 1, 0),
                false,
                Lanes,
            );
        }
    }
    add(
        "logic",
        "andps xmm,m128+8".into(),
        mem_form(NP, 0x54, 1, 8),
        false,
        Lanes,
    );

    // Shuffles and unpacks.
    for (pfx, opc, name) in [
        (NP, 0x14, "unpcklps"),
        (NP, 0x15, "unpckhps"),
        (P66, 0x14, "unpcklpd"),
        (P66, 0x15, "unpckhpd"),
        (P66, 0x6C, "punpcklqdq"),
        (P66, 0x6D, "punpckhqdq"),
    ] {
        add(
            "shuffle",
            format!("{name} xmm,xmm"),
            reg_form(pfx, opc, 3, 1),
            false,
            Lanes,
        );
        add(
            "shuffle",
            format!("{name} xmm,m128"),
            mem_form(pfx, opc, 0, 16),
            false,
            Lanes,
        );
    }
    add(
        "shuffle",
        "unpcklps xmm,m128+4".into(),
        mem_form(NP, 0x14, 0, 4),
        false,
        Lanes,
    );
    for (pfx, opc, name) in [
        (NP, 0xC6, "shufps"),
        (P66, 0xC6, "shufpd"),
        (P66, 0x70, "pshufd"),
        (PF3, 0x70, "pshufhw"),
        (PF2, 0x70, "pshuflw"),
    ] {
        add(
            "shuffle",
            format!("{name} xmm,xmm,imm8"),
            reg_form(pfx, opc, 1, 2),
            true,
            Lanes,
        );
        add(
            "shuffle",
            format!("{name} xmm,m128,imm8"),
            mem_form(pfx, opc, 2, 0),
            true,
            Lanes,
        );
    }
    add(
        "shuffle",
        "pshufd xmm,m128+12,imm8".into(),
        mem_form(P66, 0x70, 2, 12),
        true,
        Lanes,
    );
    add(
        "shuffle",
        "pinsrw xmm,r32,imm8".into(),
        reg_form(P66, 0xC4, 2, 1),
        true,
        Lanes,
    );
    add(
        "shuffle",
        "pinsrw xmm,m16,imm8".into(),
        mem_form(P66, 0xC4, 3, 6),
        true,
        Lanes,
    );
    add(
        "shuffle",
        "pextrw r32,xmm,imm8".into(),
        reg_form(P66, 0xC5, 0, 3),
        true,
        Lanes,
    );
    add(
        "shuffle",
        "pmovmskb r32,xmm".into(),
        reg_form(P66, 0xD7, 1, 2),
        false,
        Lanes,
    );

    // SSE2 integer arithmetic, comparisons, packs and unpacks.
    let binops: &[(u8, &str)] = &[
        (0x60, "punpcklbw"),
        (0x61, "punpcklwd"),
        (0x62, "punpckldq"),
        (0x63, "packsswb"),
        (0x64, "pcmpgtb"),
        (0x65, "pcmpgtw"),
        (0x66, "pcmpgtd"),
        (0x67, "packuswb"),
        (0x68, "punpckhbw"),
        (0x69, "punpckhwd"),
        (0x6A, "punpckhdq"),
        (0x6B, "packssdw"),
        (0x74, "pcmpeqb"),
        (0x75, "pcmpeqw"),
        (0x76, "pcmpeqd"),
        (0xD4, "paddq"),
        (0xD5, "pmullw"),
        (0xD8, "psubusb"),
        (0xD9, "psubusw"),
        (0xDA, "pminub"),
        (0xDB, "pand"),
        (0xDC, "paddusb"),
        (0xDD, "paddusw"),
        (0xDE, "pmaxub"),
        (0xDF, "pandn"),
        (0xE0, "pavgb"),
        (0xE3, "pavgw"),
        (0xE4, "pmulhuw"),
        (0xE5, "pmulhw"),
        (0xE8, "psubsb"),
        (0xE9, "psubsw"),
        (0xEA, "pminsw"),
        (0xEB, "por"),
        (0xEC, "paddsb"),
        (0xED, "paddsw"),
        (0xEE, "pmaxsw"),
        (0xEF, "pxor"),
        (0xF4, "pmuludq"),
        (0xF5, "pmaddwd"),
        (0xF6, "psadbw"),
        (0xF8, "psubb"),
        (0xF9, "psubw"),
        (0xFA, "psubd"),
        (0xFB, "psubq"),
        (0xFC, "paddb"),
        (0xFD, "paddw"),
        (0xFE, "paddd"),
    ];
    for &(opc, name) in binops {
        add(
            "integer",
            format!("{name} xmm,xmm"),
            reg_form(P66, opc, 0, 1),
            false,
            Lanes,
        );
        add(
            "integer",
            format!("{name} xmm,m128"),
            mem_form(P66, opc, 2, 0),
            false,
            Lanes,
        );
    }
    add(
        "integer",
        "paddb xmm,m128+8".into(),
        mem_form(P66, 0xFC, 2, 8),
        false,
        Lanes,
    );
    add(
        "integer",
        "pcmpeqd xmm,xmm (same)".into(),
        reg_form(P66, 0x76, 3, 3),
        false,
        Lanes,
    );

    // Shifts by register / memory count and by immediate, byte shifts.
    for (opc, name) in [
        (0xD1, "psrlw"),
        (0xD2, "psrld"),
        (0xD3, "psrlq"),
        (0xE1, "psraw"),
        (0xE2, "psrad"),
        (0xF1, "psllw"),
        (0xF2, "pslld"),
        (0xF3, "psllq"),
    ] {
        add(
            "shift",
            format!("{name} xmm,xmm"),
            reg_form(P66, opc, 2, 1),
            false,
            Count,
        );
        add(
            "shift",
            format!("{name} xmm,m128"),
            mem_form(P66, opc, 3, 0),
            false,
            Count,
        );
    }
    for (opc, reg, name) in [
        (0x71, 2, "psrlw"),
        (0x71, 4, "psraw"),
        (0x71, 6, "psllw"),
        (0x72, 2, "psrld"),
        (0x72, 4, "psrad"),
        (0x72, 6, "pslld"),
        (0x73, 2, "psrlq"),
        (0x73, 3, "psrldq"),
        (0x73, 6, "psllq"),
        (0x73, 7, "pslldq"),
    ] {
        add(
            "shift",
            format!("{name} xmm,imm8"),
            reg_form(P66, opc, reg, 2),
            true,
            Lanes,
        );
    }

    // MXCSR.
    add(
        "mxcsr",
        "ldmxcsr m32".into(),
        mem_form(NP, 0xAE, 2, 0),
        false,
        Mxcsr(0),
    );
    add(
        "mxcsr",
        "ldmxcsr m32+2".into(),
        mem_form(NP, 0xAE, 2, 2),
        false,
        Mxcsr(2),
    );
    add(
        "mxcsr",
        "stmxcsr m32".into(),
        mem_form(NP, 0xAE, 3, 4),
        false,
        Mxcsr(0),
    );
    add(
        "mxcsr",
        "stmxcsr m32+1".into(),
        mem_form(NP, 0xAE, 3, 1),
        false,
        Mxcsr(0),
    );

    // Fences, CLFLUSH, PREFETCHh.
    add(
        "cache",
        "lfence".into(),
        vec![0x0F, 0xAE, 0xE8],
        false,
        Lanes,
    );
    add(
        "cache",
        "lfence (rm 7)".into(),
        vec![0x0F, 0xAE, 0xEF],
        false,
        Lanes,
    );
    add(
        "cache",
        "mfence".into(),
        vec![0x0F, 0xAE, 0xF0],
        false,
        Lanes,
    );
    add(
        "cache",
        "sfence".into(),
        vec![0x0F, 0xAE, 0xF8],
        false,
        Lanes,
    );
    add(
        "cache",
        "clflush m8".into(),
        mem_form(NP, 0xAE, 7, 3),
        false,
        Lanes,
    );
    for (reg, name) in [
        (0, "prefetchnta"),
        (1, "prefetcht0"),
        (2, "prefetcht1"),
        (3, "prefetcht2"),
    ] {
        add(
            "cache",
            format!("{name} m8"),
            mem_form(NP, 0x18, reg, 7),
            false,
            Lanes,
        );
    }
    // LOCK is #UD on every SIMD instruction.
    let mut l = vec![0xF0];
    l.extend(mem_form(NP, 0x28, 0, 0));
    add("move", "lock movaps".into(), l, false, Lanes);

    // FXSAVE / FXRSTOR with the SSE part: save, patch XMM0 and XMM3 in the image, copy
    // MXCSR and MXCSR_MASK out, clear XMM0-3, restore.
    let fx = |o: u32| (DATA_ADDR + 0x400 + o).to_le_bytes();
    let xmem = |o: u32| (DATA_ADDR + X_MEM as u32 + o).to_le_bytes();
    let mut c = vec![0x0F, 0xAE, 0x05];
    c.extend(fx(0));
    c.push(0xA3); // mov [fx + 160], eax
    c.extend(fx(160));
    c.extend([0x89, 0x0D]); // mov [fx + 212], ecx
    c.extend(fx(212));
    for k in 0..2 {
        c.push(0xA1); // mov eax, [fx + 24 + 4k]
        c.extend(fx(24 + 4 * k));
        c.push(0xA3); // mov [mem + 4k], eax
        c.extend(xmem(4 * k));
    }
    for r in 0..4u8 {
        c.extend([0x66, 0x0F, 0xEF, modrm_reg(r, r)]); // pxor xmm, xmm
    }
    let mut restore = vec![0x0F, 0xAE, 0x0D];
    restore.extend(fx(0));
    let mut bad = c.clone();
    bad.extend([0xC7, 0x05]); // mov dword [fx + 24], 0x11F80
    bad.extend(fx(24));
    bad.extend(0x1_1F80u32.to_le_bytes());
    c.extend(&restore);
    bad.extend(&restore);
    add("fxsave", "fxsave/fxrstor".into(), c, false, Mxcsr(8));
    add(
        "fxsave",
        "fxrstor (reserved mxcsr)".into(),
        bad,
        false,
        Mxcsr(8),
    );

    // MASKMOVDQU stores to DS:EDI, aligned or not.
    for off in [0u32, 7] {
        f.push(Form {
            group: "move",
            name: format!("maskmovdqu xmm,xmm (+{off})"),
            setup: mov_edi(off),
            code: reg_form(P66, 0xF7, 1, 2),
            imm: false,
            gen: Lanes,
        });
    }
    f
}

fn case(rng: &mut StdRng, f: &Form) -> common::native::Snippet {
    let mut c = XmmCase::random(rng);
    match f.gen {
        Gen::Lanes => {}
        Gen::Count => {
            c.xmm[1][..8].copy_from_slice(&count64(rng).to_le_bytes());
            c.mem[..8].copy_from_slice(&count64(rng).to_le_bytes());
        }
        Gen::Mxcsr(off) => {
            c.mxcsr = mxcsr(rng);
            let mut v = mxcsr(rng);
            if rng.gen_bool(0.2) {
                v |= 1 << rng.gen_range(16..32);
            }
            c.mem[off..off + 4].copy_from_slice(&v.to_le_bytes());
        }
    }
    let mut code = f.code.clone();
    if f.imm {
        code.push(imm8(rng));
    }
    c.snippet(&f.setup, &code)
}

fn env_f64(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn sse_integer_differential() {
    if !native::host_runs_i386() {
        println!("sse-int-diff: SKIPPED: the host CPU is not x86, there is no native SSE to compare with");
        return;
    }
    let scale = env_f64("X86EMU_SSE_SCALE", 1.0);
    let seed = env_f64("X86EMU_SSE_SEED", 2.0) as u64;
    let filter = std::env::var("X86EMU_SSE_FILTER").unwrap_or_default();
    let runner = native::runner_path();
    let mut emu = Emu::new();
    emu.cr4 = CR4_SSE;
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut passed, mut failed) = (0usize, 0usize);
    let mut table: Vec<(&str, String, usize, usize)> = Vec::new();
    let mut faults = 0usize;
    for f in forms() {
        if !f.name.contains(&filter) {
            continue;
        }
        let n = ((200.0 * scale).ceil() as usize).max(1);
        let snippets: Vec<_> = (0..n).map(|_| case(&mut rng, &f)).collect();
        let nat = native::run_native(&runner, &snippets);
        let (mut ok, mut bad) = (0usize, 0usize);
        for (s, nat) in snippets.iter().zip(&nat) {
            let e = emu.run(s);
            if nat.exit != common::native::Exit::Done {
                faults += 1;
            }
            match xmm_diff(nat, &e) {
                None => ok += 1,
                Some(msg) => {
                    if bad < 3 {
                        println!(
                            "MISMATCH {}: xmm/mem in {}\n   {}\n   {}",
                            f.name,
                            native::hex_bytes(&s.data[..96]),
                            disasm(&s.code, CODE_ADDR),
                            msg
                        );
                    }
                    bad += 1;
                }
            }
        }
        passed += ok;
        failed += bad;
        table.push((f.group, f.name.clone(), ok, bad));
    }
    println!("{:<30} {:>8} {:>8}", "form", "passed", "failed");
    for (_, n, ok, bad) in &table {
        println!("{n:<30} {ok:>8} {bad:>8}");
    }
    println!(
        "{:<10} {:>6} {:>8} {:>8}",
        "group", "forms", "passed", "failed"
    );
    let mut groups: Vec<&str> = table.iter().map(|t| t.0).collect();
    groups.dedup();
    groups.sort();
    groups.dedup();
    for g in groups {
        let rows: Vec<_> = table.iter().filter(|t| t.0 == g).collect();
        println!(
            "{g:<10} {:>6} {:>8} {:>8}",
            rows.len(),
            rows.iter().map(|t| t.2).sum::<usize>(),
            rows.iter().map(|t| t.3).sum::<usize>()
        );
    }
    println!(
        "sse-int-diff: {passed} passed, {failed} failed ({} forms, {faults} cases ended in an exception)",
        table.len()
    );
    assert_eq!(failed, 0, "SSE/SSE2 differential mismatches");
}
