//! SSE/SSE2 exception rules and state that a user-mode differential test cannot reach:
//! CR0.EM, CR0.TS and CR4.OSFXSR, the classes of instructions they apply to (XMM, MMX
//! registers, none), alignment (#GP for the aligned 16-byte forms, #AC at CPL 3),
//! LDMXCSR/FXRSTOR reserved bits, MOVQ2DQ's x87 transition, FXSAVE/FXRSTOR images with
//! and without CR4.OSFXSR, CLFLUSH faults and SSE state in snapshots.

use x86emu::cpu::state::{CR0_AM, CR0_EM, CR0_NE, CR0_TS, CR4_OSFXSR, CR4_OSXMMEXCPT};
use x86emu::cpu::{Cpu, RunExit};
use x86emu::devices::bus::NullBus;
use x86emu::mmu::PhysMem;

const CODE: u32 = 0x1000;
const DATA: u32 = 0x2000;
const UD: u8 = 6;
const NM: u8 = 7;
const MF: u8 = 16;
const GP: u8 = 13;
const AC: u8 = 17;

struct Run {
    fault: Option<(u8, Option<u32>)>,
    cpu: Cpu,
    mem: PhysMem,
}

/// Runs `code` (then HLT) at CODE in flat 32-bit mode with the given CR0 bits set and
/// CR4; `prep` adjusts the CPU and memory first.
fn run(code: &[u8], cr0_set: u32, cr4: u32, prep: impl FnOnce(&mut Cpu, &mut PhysMem)) -> Run {
    let mut mem = PhysMem::new_flat(1 << 20);
    let mut c = code.to_vec();
    c.push(0xF4);
    mem.write_bytes(CODE, &c);
    let mut cpu = Cpu::new();
    cpu.state.enter_flat32();
    cpu.stop_on_exception = true;
    cpu.state.eip = CODE;
    cpu.state.gpr[4] = 0x8000;
    cpu.state.cr0 |= cr0_set;
    cpu.state.cr4 = cr4;
    prep(&mut cpu, &mut mem);
    let end = CODE + code.len() as u32;
    let fault = match cpu.run(&mut mem, &mut NullBus, 1000) {
        // At CPL 3 the final HLT raises #GP(0): the code before it completed.
        RunExit::Exception { vector: GP, .. } if cpu.state.cpl == 3 && cpu.state.eip == end => None,
        RunExit::Exception { vector, error_code } => Some((vector, error_code)),
        RunExit::Halted => None,
        other => panic!("unexpected exit {other:?}"),
    };
    Run { fault, cpu, mem }
}

fn vector(code: &[u8], cr0_set: u32, cr4: u32) -> Option<u8> {
    run(code, cr0_set, cr4, |_, _| {}).fault.map(|f| f.0)
}

/// `bytes` followed by disp32 = DATA + off.
fn at(bytes: &[u8], off: u32) -> Vec<u8> {
    let mut v = bytes.to_vec();
    v.extend((DATA + off).to_le_bytes());
    v
}

const OSFXSR: u32 = CR4_OSFXSR;

#[test]
fn xmm_instructions_need_osfxsr_and_follow_em_ts() {
    let forms: Vec<(&str, Vec<u8>)> = vec![
        ("movaps xmm0,xmm1", vec![0x0F, 0x28, 0xC1]),
        ("paddb xmm0,xmm1", vec![0x66, 0x0F, 0xFC, 0xC1]),
        ("movd xmm0,eax", vec![0x66, 0x0F, 0x6E, 0xC0]),
        ("pextrw eax,xmm1,1", vec![0x66, 0x0F, 0xC5, 0xC1, 1]),
        ("movq2dq xmm0,mm1", vec![0xF3, 0x0F, 0xD6, 0xC1]),
        ("ldmxcsr [data]", at(&[0x0F, 0xAE, 0x15], 0)),
        ("stmxcsr [data]", at(&[0x0F, 0xAE, 0x1D], 0)),
        // Floating-point forms are checked before they are routed to their unit.
        ("addps xmm0,xmm1", vec![0x0F, 0x58, 0xC1]),
        ("cvtsi2sd xmm0,eax", vec![0xF2, 0x0F, 0x2A, 0xC0]),
    ];
    for (name, code) in &forms {
        assert_eq!(vector(code, 0, 0), Some(UD), "{name}: CR4.OSFXSR = 0");
        assert_eq!(
            vector(code, CR0_TS, 0),
            Some(UD),
            "{name}: OSFXSR #UD before TS #NM"
        );
        assert_eq!(vector(code, CR0_EM, OSFXSR), Some(UD), "{name}: CR0.EM");
        assert_eq!(
            vector(code, CR0_EM | CR0_TS, OSFXSR),
            Some(UD),
            "{name}: EM before TS"
        );
        assert_eq!(vector(code, CR0_TS, OSFXSR), Some(NM), "{name}: CR0.TS");
    }
    for (name, code) in &forms[..7] {
        assert_eq!(vector(code, 0, OSFXSR), None, "{name} runs");
    }
}

#[test]
fn mmx_register_forms_follow_the_mmx_rules() {
    // SSE/SSE2 instructions on MMX registers do not look at CR4.OSFXSR.
    for (name, code) in [
        ("pavgb mm0,mm1", vec![0x0F, 0xE0, 0xC1]),
        ("paddq mm0,mm1", vec![0x0F, 0xD4, 0xC1]),
        ("pshufw mm0,mm1,0x1b", vec![0x0F, 0x70, 0xC1, 0x1B]),
        ("pmovmskb eax,mm1", vec![0x0F, 0xD7, 0xC1]),
        ("movntq [data],mm1", at(&[0x0F, 0xE7, 0x0D], 0)),
    ] {
        assert_eq!(vector(&code, 0, 0), None, "{name} without OSFXSR");
        assert_eq!(vector(&code, CR0_EM, OSFXSR), Some(UD), "{name}: CR0.EM");
        assert_eq!(vector(&code, CR0_TS, 0), Some(NM), "{name}: CR0.TS");
    }
}

#[test]
fn fences_movnti_prefetch_and_clflush_have_no_register_state_checks() {
    for (name, code) in [
        ("lfence", vec![0x0F, 0xAE, 0xE8]),
        ("mfence", vec![0x0F, 0xAE, 0xF0]),
        ("sfence", vec![0x0F, 0xAE, 0xF8]),
        ("clflush [data]", at(&[0x0F, 0xAE, 0x3D], 0)),
        ("movnti [data],eax", at(&[0x0F, 0xC3, 0x05], 0)),
        ("prefetcht0 [data]", at(&[0x0F, 0x18, 0x0D], 0)),
    ] {
        assert_eq!(vector(&code, CR0_EM | CR0_TS, 0), None, "{name}");
    }
    // MOVNTI stores; CLFLUSH checks its address like a byte read; PREFETCH never faults.
    let r = run(&at(&[0x0F, 0xC3, 0x05], 8), 0, 0, |c, _| {
        c.state.gpr[0] = 0xDEAD_BEEF
    });
    assert_eq!(rd32(&r.mem, DATA + 8), 0xDEAD_BEEF);
    let limited = |c: &mut Cpu, _: &mut PhysMem| c.state.seg[3].limit = 0x2FFF;
    let clflush = |off| at(&[0x0F, 0xAE, 0x3D], off);
    assert_eq!(run(&clflush(0xFFF), 0, 0, limited).fault, None);
    assert_eq!(
        run(&clflush(0x1000), 0, 0, limited).fault,
        Some((GP, Some(0)))
    );
    let prefetch = at(&[0x0F, 0x18, 0x0D], 0x1000);
    assert_eq!(run(&prefetch, 0, 0, limited).fault, None);
    // Register forms of CLFLUSH's slot are SFENCE; LOCK is #UD.
    assert_eq!(vector(&[0xF0, 0x0F, 0xAE, 0xF8], 0, 0), Some(UD));
    // SSE3 and later encodings in the map stay #UD.
    for code in [
        vec![0xF2, 0x0F, 0x12, 0xC1],     // movddup
        vec![0xF2, 0x0F, 0x7C, 0xC1],     // haddps
        vec![0x66, 0x0F, 0xD0, 0xC1],     // addsubpd
        at(&[0xF2, 0x0F, 0xF0, 0x05], 0), // lddqu
    ] {
        assert_eq!(vector(&code, 0, OSFXSR), Some(UD), "{code:02x?}");
    }
}

#[test]
fn alignment_rules() {
    let movaps = |off| at(&[0x0F, 0x28, 0x05], off);
    let movups = |off| at(&[0x0F, 0x10, 0x05], off);
    let movss = |off| at(&[0xF3, 0x0F, 0x10, 0x05], off);
    let movapd_store = |off| at(&[0x66, 0x0F, 0x29, 0x05], off);
    let paddb = |off| at(&[0x66, 0x0F, 0xFC, 0x05], off);
    let run_v = |code: Vec<u8>, prep: fn(&mut Cpu, &mut PhysMem)| run(&code, 0, OSFXSR, prep).fault;
    let none: fn(&mut Cpu, &mut PhysMem) = |_, _| {};
    assert_eq!(run_v(movaps(0x10), none), None);
    assert_eq!(run_v(movaps(8), none), Some((GP, Some(0))));
    assert_eq!(run_v(movapd_store(4), none), Some((GP, Some(0))));
    assert_eq!(run_v(paddb(1), none), Some((GP, Some(0))));
    assert_eq!(run_v(movups(3), none), None);
    // A misaligned store faults before anything is written.
    let r = run(&movapd_store(4), 0, OSFXSR, |c, _| {
        c.state.sse.xmm[0] = [0xAB; 16]
    });
    assert_eq!(rd32(&r.mem, DATA + 4), 0);
    // The 16-byte alignment rule applies to the linear address (segment base included).
    let based: fn(&mut Cpu, &mut PhysMem) = |c, _| c.state.seg[3].base = 8;
    assert_eq!(run_v(movaps(8), based), None);
    assert_eq!(run_v(movaps(0), based), Some((GP, Some(0))));
    // Alignment checking at CPL 3: #AC for misaligned scalar operands and for unaligned
    // 16-byte operands not on an 8-byte boundary; the aligned forms still raise #GP.
    let user: fn(&mut Cpu, &mut PhysMem) = |c, _| {
        c.state.cpl = 3;
        c.state.cr0 |= CR0_AM;
        let f = c.state.eflags() | 1 << 18;
        c.state.set_eflags(f);
    };
    assert_eq!(run_v(movups(8), user), None);
    assert_eq!(run_v(movups(3), user), Some((AC, Some(0))));
    assert_eq!(run_v(movss(2), user), Some((AC, Some(0))));
    assert_eq!(run_v(movss(4), user), None);
    assert_eq!(run_v(movaps(8), user), Some((GP, Some(0))));
}

#[test]
fn ldmxcsr_and_stmxcsr() {
    let code = [at(&[0x0F, 0xAE, 0x15], 0), at(&[0x0F, 0xAE, 0x1D], 4)].concat();
    let r = run(&code, 0, OSFXSR, |_, m| {
        m.write_bytes(DATA, &0xFFFFu32.to_le_bytes())
    });
    assert_eq!((r.fault, r.cpu.state.sse.mxcsr), (None, 0xFFFF));
    assert_eq!(rd32(&r.mem, DATA + 4), 0xFFFF);
    for bad in [1u32 << 16, 1 << 31] {
        let r = run(&code, 0, OSFXSR, |_, m| {
            m.write_bytes(DATA, &(0x1F80 | bad).to_le_bytes())
        });
        assert_eq!(r.fault, Some((GP, Some(0))), "{bad:#x}");
        assert_eq!(r.cpu.state.sse.mxcsr, 0x1F80, "unchanged");
    }
    assert_eq!(Cpu::new().state.sse.mxcsr, 0x1F80, "reset value");
}

#[test]
fn movq2dq_is_an_mmx_transition() {
    let code = [0xF3, 0x0F, 0xD6, 0xC1]; // movq2dq xmm0, mm1
    let pending = |c: &mut Cpu, _: &mut PhysMem| c.state.fpu.sw |= 0x81;
    assert_eq!(run(&code, CR0_NE, OSFXSR, pending).fault, Some((MF, None)));
    let r = run(&code, 0, OSFXSR, |c, _| {
        c.state.fpu.sw = 5 << 11;
        c.state.fpu.valid = 0;
        c.state.fpu.sig[1] = 0x1122_3344_5566_7788;
        c.state.sse.xmm[0] = [0xFF; 16];
    });
    assert_eq!(r.fault, None);
    let x = r.cpu.state.sse.xmm[0];
    assert_eq!(
        u64::from_le_bytes(x[..8].try_into().unwrap()),
        0x1122_3344_5566_7788
    );
    assert_eq!(&x[8..], &[0; 8]);
    assert_eq!(
        ((r.cpu.state.fpu.sw >> 11) & 7, r.cpu.state.fpu.valid),
        (0, 0xFF)
    );
}

fn xmm_pattern(r: usize) -> [u8; 16] {
    std::array::from_fn(|b| (0x10 * r + b) as u8 ^ 0x5A)
}

#[test]
fn fxsave_and_fxrstor_with_sse_state() {
    // FXSAVE with OSFXSR: MXCSR, MXCSR_MASK and XMM0-7; bytes 288-511 untouched.
    let fxsave = at(&[0x0F, 0xAE, 0x05], 0);
    let setup = |c: &mut Cpu, m: &mut PhysMem| {
        for r in 0..8 {
            c.state.sse.xmm[r] = xmm_pattern(r);
        }
        c.state.sse.mxcsr = 0x3F41;
        m.write_bytes(DATA, &[0xEE; 512]);
    };
    let r = run(&fxsave, 0, OSFXSR, setup);
    assert_eq!(r.fault, None);
    let mut img = vec![0u8; 512];
    r.mem.read_bytes(DATA, &mut img);
    assert_eq!(u32::from_le_bytes(img[24..28].try_into().unwrap()), 0x3F41);
    assert_eq!(u32::from_le_bytes(img[28..32].try_into().unwrap()), 0xFFFF);
    for k in 0..8 {
        assert_eq!(&img[160 + 16 * k..176 + 16 * k], &xmm_pattern(k), "xmm{k}");
    }
    assert!(
        img[288..].iter().all(|&b| b == 0xEE),
        "reserved area untouched"
    );

    // Without OSFXSR the SSE part is neither saved...
    let r = run(&fxsave, 0, 0, setup);
    r.mem.read_bytes(DATA, &mut img);
    assert_eq!(
        u16::from_le_bytes([img[0], img[1]]),
        0x0040,
        "x87 part saved (reset CW)"
    );
    assert!(img[24..32].iter().all(|&b| b == 0xEE));
    assert!(img[160..].iter().all(|&b| b == 0xEE));

    // ...nor restored.
    let fxrstor = at(&[0x0F, 0xAE, 0x0D], 0);
    let image = |m: &mut PhysMem, mxcsr: u32| {
        let mut img = vec![0u8; 512];
        img[0..2].copy_from_slice(&0x037Fu16.to_le_bytes());
        img[24..28].copy_from_slice(&mxcsr.to_le_bytes());
        for k in 0..8 {
            img[160 + 16 * k..176 + 16 * k].copy_from_slice(&xmm_pattern(k));
        }
        m.write_bytes(DATA, &img);
    };
    let r = run(&fxrstor, 0, 0, |_, m| image(m, 0x1F00));
    assert_eq!(r.fault, None);
    assert_eq!(r.cpu.state.fpu.cw, 0x037F);
    assert_eq!(r.cpu.state.sse.mxcsr, 0x1F80);
    assert_eq!(r.cpu.state.sse.xmm, [[0; 16]; 8]);
    // With OSFXSR it loads them, and refuses reserved MXCSR bits with nothing loaded.
    let r = run(&fxrstor, 0, OSFXSR, |_, m| image(m, 0x1F00));
    assert_eq!(r.cpu.state.sse.mxcsr, 0x1F00);
    for k in 0..8 {
        assert_eq!(r.cpu.state.sse.xmm[k], xmm_pattern(k));
    }
    let r = run(&fxrstor, 0, OSFXSR | CR4_OSXMMEXCPT, |_, m| {
        image(m, 0x1_1F80)
    });
    assert_eq!(r.fault, Some((GP, Some(0))));
    assert_eq!(r.cpu.state.fpu.cw, 0x0040, "x87 state not loaded either");
    assert_eq!(r.cpu.state.sse.xmm, [[0; 16]; 8]);
}

#[test]
fn sse_state_survives_a_snapshot() {
    let r = run(&[], 0, OSFXSR, |c, _| {
        c.state.sse.xmm[3] = xmm_pattern(3);
        c.state.sse.mxcsr = 0x7F80;
    });
    let bytes = x86emu::snapshot::save_cpu_ram(&r.cpu, &r.mem);
    let (mut cpu, mut mem) = (Cpu::new(), PhysMem::new_flat(1 << 20));
    x86emu::snapshot::restore_cpu_ram(&bytes, &mut cpu, &mut mem).unwrap();
    assert_eq!(cpu.state.sse, r.cpu.state.sse);
}

fn rd32(mem: &PhysMem, addr: u32) -> u32 {
    let mut b = [0u8; 4];
    mem.read_bytes(addr, &mut b);
    u32::from_le_bytes(b)
}

#[test]
fn maskmov_checks_the_whole_destination_whatever_the_mask() {
    // maskmovdqu xmm0, xmm1 / maskmovq mm0, mm1 to DS:EDI.
    let maskmovdqu = [0x66, 0x0F, 0xF7, 0xC1];
    let maskmovq = [0x0F, 0xF7, 0xC1];
    let setup = |edi: u32, mask: u8| {
        move |c: &mut Cpu, _: &mut PhysMem| {
            c.state.gpr[7] = DATA + edi;
            c.state.seg[3].limit = 0x2FFF;
            c.state.sse.xmm[0] = xmm_pattern(1);
            c.state.sse.xmm[1] = std::array::from_fn(|k| if k % 3 == 0 { mask } else { 0 });
            c.state.fpu.sig[0] = 0x1122_3344_5566_7788;
            c.state.fpu.sig[1] = if mask != 0 { 0x80 } else { 0 };
        }
    };
    let r = run(&maskmovdqu, 0, OSFXSR, setup(0x10, 0x80));
    assert_eq!(r.fault, None);
    let mut got = [0u8; 16];
    r.mem.read_bytes(DATA + 0x10, &mut got);
    let want: [u8; 16] = std::array::from_fn(|k| if k % 3 == 0 { xmm_pattern(1)[k] } else { 0 });
    assert_eq!(got, want, "only the selected bytes are written");
    let r = run(&maskmovq, 0, 0, setup(0x20, 0x80));
    assert_eq!((r.fault, rd32(&r.mem, DATA + 0x20)), (None, 0x88));
    // Past the segment limit: #GP even with an all-zero mask, and nothing written.
    for (code, cr4, n) in [(&maskmovdqu[..], OSFXSR, 16), (&maskmovq[..], 0, 8)] {
        for mask in [0, 0x80] {
            let r = run(code, 0, cr4, setup(0x1000 - n + 1, mask));
            assert_eq!(r.fault, Some((GP, Some(0))), "{code:02x?} mask {mask:#x}");
            assert_eq!(rd32(&r.mem, DATA + 0x1000 - n + 1), 0);
        }
    }
    // #AC at CPL 3 when EDI is not 8-byte aligned.
    let user = |edi: u32| {
        move |c: &mut Cpu, m: &mut PhysMem| {
            setup(edi, 0)(c, m);
            c.state.cpl = 3;
            c.state.cr0 |= CR0_AM;
            let f = c.state.eflags() | 1 << 18;
            c.state.set_eflags(f);
        }
    };
    assert_eq!(
        run(&maskmovdqu, 0, OSFXSR, user(4)).fault,
        Some((AC, Some(0)))
    );
    assert_eq!(run(&maskmovdqu, 0, OSFXSR, user(8)).fault, None);
    assert_eq!(run(&maskmovq, 0, 0, user(1)).fault, Some((AC, Some(0))));
}
