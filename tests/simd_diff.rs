//! Differential test of MMX and the SSE/SSE2 instructions on MMX registers against the
//! host CPU (the XMM forms are in `tests/sse_int_diff.rs`).
//!
//! Each case is a snippet run natively in a 32-bit process (`tests/native/runner32.c`,
//! see `tests/common/native.rs`) and in the emulator with the same bytes:
//!
//! ```text
//! fninit
//! movq mm0..mm3, [data + 0/8/16/24]      operands
//! <instruction under test>               register or memory ([data + 32]) source
//! movq [data + 64..96], mm0..mm3         results
//! fnsave [data + 128]                    x87 view: TOP, tag word, exponents (0xFFFF)
//! ```
//!
//! Compared: the exit (completed or the exception), all general registers (MOVD r32),
//! and the data buffer except the FNSAVE pointer fields (FIP/FCS/FOP/FDP/FDS). Operands
//! are random and lane edge values (0, ±1, the signed and unsigned saturation limits),
//! shift counts around the lane widths. Every form must match 100%.
//!
//! Knobs: `X86EMU_SIMD_FILTER=substr`, `X86EMU_SIMD_SCALE=f`, `X86EMU_SIMD_SEED=n`.

mod common;

use common::native::{self, disasm, Emu, Exit, Outcome, Snippet, CODE_ADDR, DATA_ADDR, DATA_LEN};
use common::simd::{count64, imm8, lanes64, modrm_mem, modrm_reg};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Where the memory source operand lives (offset in the data buffer).
const SRC_MEM: u32 = 32;
/// Where FNSAVE stores the x87 image.
const SAVE: usize = 128;

/// How the operands of a form are generated.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Gen {
    /// Random and lane-edge values everywhere.
    Lanes,
    /// The source (MM1 and the memory operand) holds a shift count.
    Count,
}

struct Form {
    name: String,
    /// The instruction; `imm` appends a random imm8 (a shift count or a selector).
    code: Vec<u8>,
    imm: bool,
    gen: Gen,
    n: usize,
}

fn mmx_forms() -> Vec<Form> {
    let mut f = Vec::new();
    let mut add = |name: &str, code: Vec<u8>, imm: bool, gen: Gen| {
        f.push(Form {
            name: name.to_string(),
            code,
            imm,
            gen,
            n: 300,
        })
    };
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
        (0xD5, "pmullw"),
        (0xD8, "psubusb"),
        (0xD9, "psubusw"),
        (0xDB, "pand"),
        (0xDC, "paddusb"),
        (0xDD, "paddusw"),
        (0xDF, "pandn"),
        (0xE5, "pmulhw"),
        (0xE8, "psubsb"),
        (0xE9, "psubsw"),
        (0xEB, "por"),
        (0xEC, "paddsb"),
        (0xED, "paddsw"),
        (0xEF, "pxor"),
        (0xF5, "pmaddwd"),
        (0xF8, "psubb"),
        (0xF9, "psubw"),
        (0xFA, "psubd"),
        (0xFC, "paddb"),
        (0xFD, "paddw"),
        (0xFE, "paddd"),
    ];
    for &(op, name) in binops {
        add(
            &format!("{name} mm,mm"),
            vec![0x0F, op, modrm_reg(0, 1)],
            false,
            Gen::Lanes,
        );
        let mut m = vec![0x0F, op];
        m.extend(modrm_mem(2, SRC_MEM));
        add(&format!("{name} mm,m64"), m, false, Gen::Lanes);
    }
    let shifts: &[(u8, &str)] = &[
        (0xD1, "psrlw"),
        (0xD2, "psrld"),
        (0xD3, "psrlq"),
        (0xE1, "psraw"),
        (0xE2, "psrad"),
        (0xF1, "psllw"),
        (0xF2, "pslld"),
        (0xF3, "psllq"),
    ];
    for &(op, name) in shifts {
        add(
            &format!("{name} mm,mm"),
            vec![0x0F, op, modrm_reg(0, 1)],
            false,
            Gen::Count,
        );
        let mut m = vec![0x0F, op];
        m.extend(modrm_mem(3, SRC_MEM));
        add(&format!("{name} mm,m64"), m, false, Gen::Count);
    }
    let imm_shifts: &[(u8, u8, &str)] = &[
        (0x71, 2, "psrlw"),
        (0x71, 4, "psraw"),
        (0x71, 6, "psllw"),
        (0x72, 2, "psrld"),
        (0x72, 4, "psrad"),
        (0x72, 6, "pslld"),
        (0x73, 2, "psrlq"),
        (0x73, 6, "psllq"),
    ];
    for &(op, reg, name) in imm_shifts {
        add(
            &format!("{name} mm,imm8"),
            vec![0x0F, op, modrm_reg(reg, 2)],
            true,
            Gen::Lanes,
        );
    }
    add(
        "movd mm,r32",
        vec![0x0F, 0x6E, modrm_reg(1, 3)],
        false,
        Gen::Lanes,
    );
    let mut m = vec![0x0F, 0x6E];
    m.extend(modrm_mem(2, SRC_MEM));
    add("movd mm,m32", m, false, Gen::Lanes);
    add(
        "movd r32,mm",
        vec![0x0F, 0x7E, modrm_reg(2, 0)],
        false,
        Gen::Lanes,
    );
    let mut m = vec![0x0F, 0x7E];
    m.extend(modrm_mem(1, 96));
    add("movd m32,mm", m, false, Gen::Lanes);
    add(
        "movq mm,mm",
        vec![0x0F, 0x6F, modrm_reg(3, 1)],
        false,
        Gen::Lanes,
    );
    let mut m = vec![0x0F, 0x6F];
    m.extend(modrm_mem(1, SRC_MEM));
    add("movq mm,m64", m, false, Gen::Lanes);
    add(
        "movq mm,mm (7f)",
        vec![0x0F, 0x7F, modrm_reg(2, 0)],
        false,
        Gen::Lanes,
    );
    let mut m = vec![0x0F, 0x7F];
    m.extend(modrm_mem(3, 96));
    add("movq m64,mm", m, false, Gen::Lanes);
    add("emms", vec![0x0F, 0x77], false, Gen::Lanes);

    // SSE and SSE2 instructions on MMX registers.
    let sse_binops: &[(u8, &str)] = &[
        (0xD4, "paddq"),
        (0xDA, "pminub"),
        (0xDE, "pmaxub"),
        (0xE0, "pavgb"),
        (0xE3, "pavgw"),
        (0xE4, "pmulhuw"),
        (0xEA, "pminsw"),
        (0xEE, "pmaxsw"),
        (0xF4, "pmuludq"),
        (0xF6, "psadbw"),
        (0xFB, "psubq"),
    ];
    for &(op, name) in sse_binops {
        add(
            &format!("{name} mm,mm"),
            vec![0x0F, op, modrm_reg(1, 3)],
            false,
            Gen::Lanes,
        );
        let mut m = vec![0x0F, op];
        m.extend(modrm_mem(0, SRC_MEM));
        add(&format!("{name} mm,m64"), m, false, Gen::Lanes);
    }
    add(
        "pshufw mm,mm,imm8",
        vec![0x0F, 0x70, modrm_reg(0, 3)],
        true,
        Gen::Lanes,
    );
    let mut m = vec![0x0F, 0x70];
    m.extend(modrm_mem(2, SRC_MEM));
    add("pshufw mm,m64,imm8", m, true, Gen::Lanes);
    add(
        "pinsrw mm,r32,imm8",
        vec![0x0F, 0xC4, modrm_reg(1, 6)],
        true,
        Gen::Lanes,
    );
    let mut m = vec![0x0F, 0xC4];
    m.extend(modrm_mem(3, SRC_MEM + 2));
    add("pinsrw mm,m16,imm8", m, true, Gen::Lanes);
    add(
        "pextrw r32,mm,imm8",
        vec![0x0F, 0xC5, modrm_reg(5, 2)],
        true,
        Gen::Lanes,
    );
    add(
        "pmovmskb r32,mm",
        vec![0x0F, 0xD7, modrm_reg(0, 1)],
        false,
        Gen::Lanes,
    );
    let mut m = vec![0x0F, 0xE7];
    m.extend(modrm_mem(2, 96));
    add("movntq m64,mm", m, false, Gen::Lanes);
    // MASKMOVQ mm1, mm2 stores to DS:EDI: [data + 96] and a misaligned [data + 101].
    for off in [96u32, 101] {
        let mut m = vec![0xBF]; // mov edi, imm32
        m.extend((DATA_ADDR + off).to_le_bytes());
        m.extend([0x0F, 0xF7, modrm_reg(1, 2)]);
        add(&format!("maskmovq mm,mm (+{off})"), m, false, Gen::Lanes);
    }
    f
}

fn snippet(rng: &mut StdRng, f: &Form) -> Snippet {
    let mut data = [0u8; DATA_LEN];
    for k in 0..5 {
        let v = if f.gen == Gen::Count && (k == 1 || k == 4) {
            count64(rng)
        } else {
            lanes64(rng)
        };
        data[8 * k..8 * k + 8].copy_from_slice(&v.to_le_bytes());
    }
    let mut code = vec![0xDB, 0xE3]; // fninit
    for r in 0..4u8 {
        code.extend([0x0F, 0x6F]);
        code.extend(modrm_mem(r, 8 * r as u32));
    }
    code.extend(&f.code);
    if f.imm {
        code.push(imm8(rng));
    }
    for r in 0..4u8 {
        code.extend([0x0F, 0x7F]);
        code.extend(modrm_mem(r, 64 + 8 * r as u32));
    }
    code.extend([0xDD, 0x35]); // fnsave [data + SAVE]
    code.extend((DATA_ADDR + SAVE as u32).to_le_bytes());
    let mut regs = [0u32; 8];
    for r in regs.iter_mut() {
        *r = rng.gen();
    }
    Snippet {
        code,
        regs,
        eflags: 0,
        data,
    }
}

/// Bytes of the data buffer that are compared: everything but the FNSAVE pointers.
fn compared(i: usize) -> bool {
    !(SAVE + 12..SAVE + 28).contains(&i)
}

fn diff(nat: &Outcome, emu: &Outcome) -> Option<String> {
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
        .filter(|&i| compared(i) && nat.data[i] != emu.data[i])
        .collect();
    if !bad.is_empty() {
        d.push(format!(
            "data differs at {:?}\n      native: {:02x?}\n      emu:    {:02x?}",
            &bad[..bad.len().min(12)],
            &nat.data[64..96],
            &emu.data[64..96]
        ));
    }
    if d.is_empty() {
        None
    } else {
        Some(d.join("; "))
    }
}

fn env_f64(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn simd_differential() {
    if !native::host_runs_i386() {
        println!("simd-diff: SKIPPED: the host CPU is not x86, there is no native MMX/SSE to compare with");
        return;
    }
    let scale = env_f64("X86EMU_SIMD_SCALE", 1.0);
    let seed = env_f64("X86EMU_SIMD_SEED", 128.0) as u64;
    let filter = std::env::var("X86EMU_SIMD_FILTER").unwrap_or_default();
    let runner = native::runner_path();
    let mut emu = Emu::new();
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut passed, mut failed) = (0usize, 0usize);
    let mut table = Vec::new();
    for f in mmx_forms() {
        if !f.name.contains(&filter) {
            continue;
        }
        let n = ((f.n as f64 * scale).ceil() as usize).max(1);
        let snippets: Vec<Snippet> = (0..n).map(|_| snippet(&mut rng, &f)).collect();
        let nat = native::run_native(&runner, &snippets);
        let (mut ok, mut bad) = (0usize, 0usize);
        for (s, nat) in snippets.iter().zip(&nat) {
            let e = emu.run(s);
            match diff(nat, &e) {
                None => ok += 1,
                Some(msg) => {
                    if bad < 3 {
                        println!(
                            "MISMATCH {}: operands {:02x?}\n   {}\n   {}",
                            f.name,
                            &s.data[..40],
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
        table.push((f.name.clone(), ok, bad));
    }
    println!("{:<24} {:>8} {:>8}", "form", "passed", "failed");
    for (n, ok, bad) in &table {
        println!("{n:<24} {ok:>8} {bad:>8}");
    }
    println!(
        "simd-diff: {passed} passed, {failed} failed ({} forms)",
        table.len()
    );
    assert_eq!(failed, 0, "MMX/SSE differential mismatches");
}

/// Runs `code` at 0x1000 in flat 32-bit mode with the given CR0 bits set and returns
/// the exception vector it stopped with (None if it reached the HLT) and the CPU.
fn run_emu(
    code: &[u8],
    cr0_set: u32,
    prep: impl Fn(&mut x86emu::cpu::Cpu),
) -> (Option<u8>, x86emu::cpu::Cpu) {
    use x86emu::cpu::{Cpu, RunExit};
    use x86emu::devices::bus::NullBus;
    use x86emu::mmu::PhysMem;
    let mut mem = PhysMem::new_flat(1 << 20);
    let mut c = code.to_vec();
    c.push(0xF4);
    mem.write_bytes(0x1000, &c);
    let mut cpu = Cpu::new();
    cpu.state.enter_flat32();
    cpu.stop_on_exception = true;
    cpu.state.eip = 0x1000;
    cpu.state.gpr[4] = 0x8000;
    cpu.state.cr0 |= cr0_set;
    prep(&mut cpu);
    match cpu.run(&mut mem, &mut NullBus, 100) {
        RunExit::Exception { vector, .. } => (Some(vector), cpu),
        _ => (None, cpu),
    }
}

#[test]
fn mmx_cr0_and_pending_exception_rules() {
    const EM: u32 = 1 << 2;
    const TS: u32 = 1 << 3;
    const MP: u32 = 1 << 1;
    const NE: u32 = 1 << 5;
    let paddb = [0x0F, 0xFC, 0xC1];
    let emms = [0x0F, 0x77];
    for code in [&paddb[..], &emms[..]] {
        assert_eq!(run_emu(code, EM, |_| {}).0, Some(6), "CR0.EM: #UD");
        assert_eq!(run_emu(code, EM | TS, |_| {}).0, Some(6), "EM wins over TS");
        assert_eq!(run_emu(code, TS | MP, |_| {}).0, Some(7), "CR0.TS: #NM");
        // A pending unmasked x87 exception is reported first (#MF with CR0.NE).
        let pending = |c: &mut x86emu::cpu::Cpu| c.state.fpu.sw |= 0x81;
        assert_eq!(
            run_emu(code, NE, pending).0,
            Some(16),
            "pending x87 exception: #MF"
        );
    }
    // Without faults: TOP = 0 and all tags valid after PADDB, empty after EMMS.
    let (v, cpu) = run_emu(&paddb, 0, |c| {
        c.state.fpu.sw = 5 << 11;
        c.state.fpu.valid = 0;
    });
    assert_eq!(v, None);
    assert_eq!((cpu.state.fpu.sw >> 11) & 7, 0);
    assert_eq!(cpu.state.fpu.valid, 0xFF);
    assert_eq!(cpu.state.fpu.se[0], 0xFFFF);
    let (_, cpu) = run_emu(&[0x0F, 0xFC, 0xC1, 0x0F, 0x77], 0, |_| {});
    assert_eq!(cpu.state.fpu.valid, 0);
    // A memory operand that faults leaves the x87 state untouched.
    let (v, cpu) = run_emu(&[0x0F, 0xFC, 0x05, 0x00, 0x00, 0xF0, 0xFF], 0, |c| {
        c.state.seg[3].limit = 0xFFFF;
        c.state.fpu.sw = 3 << 11;
        c.state.fpu.valid = 1;
    });
    assert_eq!(v, Some(13));
    assert_eq!(((cpu.state.fpu.sw >> 11) & 7, cpu.state.fpu.valid), (3, 1));
}
