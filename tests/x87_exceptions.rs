//! x87 exception delivery through the interpreter: #NM from CR0.EM/TS (and the lazy FPU
//! switching Linux does with it), pending unmasked exceptions reported as #MF on the
//! next waiting instruction with CR0.NE = 1 or through FERR# with CR0.NE = 0, stack
//! faults, precise memory faults, the last-instruction pointers, FXSAVE's checks, and
//! the real-mode environment layout.

use iced_x86::code_asm::*;
use x86emu::cpu::regs::*;
use x86emu::cpu::{Cpu, RunExit, SegReg};
use x86emu::devices::bus::{Bus, NullBus};
use x86emu::mmu::PhysMem;

const GDT: u32 = 0x500;
const IDT: u32 = 0x800;
const CODE: u32 = 0x2000;
const HANDLERS: u32 = 0x4000;
const DATA: u32 = 0x6000;
const STACK: u32 = 0x9000;
/// Counter incremented by the test handlers.
const COUNT: u32 = DATA + 0x100;

const CR0_MP: u32 = 1 << 1;
const CR0_EM: u32 = 1 << 2;
const CR0_TS: u32 = 1 << 3;
const CR0_NE: u32 = 1 << 5;

/// A bus that records FERR# changes.
#[derive(Default)]
struct FerrBus {
    events: Vec<bool>,
}

impl Bus for FerrBus {
    fn io_read(&mut self, _port: u16, _size: u8) -> u32 {
        u32::MAX
    }
    fn io_write(&mut self, _port: u16, _size: u8, _value: u32) {}
    fn set_ferr(&mut self, asserted: bool) {
        self.events.push(asserted);
    }
}

struct M {
    cpu: Cpu,
    mem: PhysMem,
}

fn wr32(mem: &mut PhysMem, a: u32, v: u32) {
    mem.write_bytes(a, &v.to_le_bytes());
}

fn rd(mem: &PhysMem, a: u32, n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    mem.read_bytes(a, &mut b);
    b
}

fn rd16(mem: &PhysMem, a: u32) -> u16 {
    let b = rd(mem, a, 2);
    u16::from_le_bytes([b[0], b[1]])
}

fn rd32(mem: &PhysMem, a: u32) -> u32 {
    let b = rd(mem, a, 4);
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

type Asm = fn(&mut CodeAssembler) -> Result<(), IcedError>;

/// A code tail as a plain function pointer (so a table of them has one type).
struct Tail(Asm);

fn assemble(at: u32, f: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>) -> Vec<u8> {
    let mut a = CodeAssembler::new(32).unwrap();
    f(&mut a).unwrap();
    a.assemble(at as u64).unwrap()
}

/// Flat 32-bit protected mode with a GDT (code 0x08, data 0x10) and an IDT whose
/// entries for the given vectors point at the given handlers.
fn machine(
    code: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>,
    handlers: &[(u8, Asm)],
) -> M {
    let mut mem = PhysMem::new_flat(1 << 20);
    // Null, flat code, flat data.
    mem.write_bytes(GDT + 8, &[0xFF, 0xFF, 0, 0, 0, 0x9A, 0xCF, 0]);
    mem.write_bytes(GDT + 16, &[0xFF, 0xFF, 0, 0, 0, 0x92, 0xCF, 0]);
    for &(v, h) in handlers {
        let at = HANDLERS + 0x100 * v as u32;
        mem.write_bytes(at, &assemble(at, h));
        let e = IDT + 8 * v as u32;
        wr32(&mut mem, e, (0x08 << 16) | (at & 0xFFFF));
        wr32(&mut mem, e + 4, (at & 0xFFFF_0000) | 0x8E00);
    }
    mem.write_bytes(CODE, &assemble(CODE, code));
    let mut cpu = Cpu::new();
    cpu.state.enter_flat32();
    cpu.state.gdtr.base = GDT;
    cpu.state.gdtr.limit = 23;
    cpu.state.idtr.base = IDT;
    cpu.state.idtr.limit = 0x7FF;
    cpu.state.eip = CODE;
    cpu.state.gpr[ESP] = STACK;
    M { cpu, mem }
}

impl M {
    fn run(&mut self) -> RunExit {
        self.cpu.run(&mut self.mem, &mut NullBus, 10_000)
    }
    fn fpu(&self) -> &x86emu::cpu::fpu::FpuState {
        &self.cpu.state.fpu
    }
}

fn ex(vector: u8) -> RunExit {
    RunExit::Exception {
        vector,
        error_code: None,
    }
}

/// Address of the instruction after `n` bytes of code.
fn at(n: usize) -> u32 {
    CODE + n as u32
}

#[test]
fn em_and_ts_raise_nm_for_x87_and_wait_only_with_mp() {
    for (bits, want) in [
        (CR0_EM, Some(7)),
        (CR0_TS, Some(7)),
        (CR0_EM | CR0_MP, Some(7)),
        (0, None),
    ] {
        let mut m = machine(
            |a| {
                a.fld1()?;
                a.hlt()
            },
            &[],
        );
        m.cpu.stop_on_exception = true;
        m.cpu.state.cr0 |= bits;
        let before = m.fpu().clone();
        let r = m.run();
        match want {
            Some(v) => {
                assert_eq!(r, ex(v), "cr0 {bits:#x}");
                assert_eq!(m.cpu.state.eip, CODE);
                assert_eq!(m.fpu(), &before, "FPU untouched");
            }
            None => assert_eq!(r, RunExit::Halted),
        }
    }
    // WAIT: #NM only when both MP and TS are set; EM does not matter.
    for (bits, want) in [
        (CR0_TS, RunExit::Halted),
        (CR0_MP | CR0_TS, ex(7)),
        (CR0_EM, RunExit::Halted),
    ] {
        let mut m = machine(
            |a| {
                a.wait()?;
                a.hlt()
            },
            &[],
        );
        m.cpu.stop_on_exception = true;
        m.cpu.state.cr0 |= bits;
        assert_eq!(m.run(), want, "wait with cr0 {bits:#x}");
    }
    // FXSAVE: #UD with EM, #NM with TS.
    for (bits, v) in [(CR0_EM, 6), (CR0_TS, 7)] {
        let mut m = machine(
            |a| {
                a.fxsave(ptr(DATA))?;
                a.hlt()
            },
            &[],
        );
        m.cpu.stop_on_exception = true;
        m.cpu.state.cr0 |= bits;
        assert_eq!(m.run(), ex(v));
    }
}

#[test]
fn lazy_fpu_switching_like_linux() {
    // The #NM handler does what a kernel's lazy-FPU path does: CLTS and return, so the
    // faulting instruction runs again with the FPU available.
    let h7: Asm = |a| {
        a.clts()?;
        a.inc(dword_ptr(COUNT))?;
        a.iretd()
    };
    let mut m = machine(
        |a| {
            a.mov(eax, cr0)?;
            a.or(eax, CR0_TS as i32)?;
            a.mov(cr0, eax)?;
            a.fninit()?;
            a.fld1()?;
            a.fld1()?;
            a.faddp(st1, st0)?;
            a.fstp(dword_ptr(DATA))?;
            a.mov(eax, cr0)?;
            a.hlt()
        },
        &[(7, h7)],
    );
    assert_eq!(m.run(), RunExit::Halted);
    assert_eq!(rd32(&m.mem, COUNT), 1, "one #NM, then the FPU is owned");
    assert_eq!(rd32(&m.mem, DATA), 2.0f32.to_bits());
    assert_eq!(m.cpu.state.gpr[EAX] & CR0_TS, 0);
}

/// fninit; fldcw [DATA] (ZE unmasked); fld1; fldz; fdivp st1,st0 (unmasked ZE: no
/// result, ES set); fnstsw ax (does not wait); fnop (waits).
fn divide_by_zero_then(a: &mut CodeAssembler) -> Result<(), IcedError> {
    a.fninit()?;
    a.fldcw(word_ptr(DATA))?;
    a.fld1()?;
    a.fldz()?;
    a.fdivp(st1, st0)?;
    a.fnstsw(ax)?;
    a.fnop()?;
    a.hlt()
}

/// Bytes before the FNOP in `divide_by_zero_then`.
const FNOP_AT: usize = 2 + 6 + 2 + 2 + 2 + 2;

#[test]
fn unmasked_exception_is_reported_as_mf_on_the_next_waiting_instruction() {
    let mut m = machine(divide_by_zero_then, &[]);
    m.mem.write_bytes(DATA, &0x037Bu16.to_le_bytes());
    m.cpu.state.cr0 |= CR0_NE;
    m.cpu.stop_on_exception = true;
    assert_eq!(m.run(), ex(16));
    assert_eq!(m.cpu.state.eip, at(FNOP_AT), "#MF is a fault on the FNOP");
    // FNSTSW AX ran while the exception was pending: ES, B and ZE; TOP = 6.
    assert_eq!(
        m.cpu.state.gpr[EAX] & 0xFFFF,
        0x8000 | (6 << 11) | 0x80 | 0x04
    );
    // The unmasked ZE left both operands in place.
    let f = m.fpu();
    assert_eq!((f.top(), f.valid), (6, 0xC0));
    assert_eq!(f.st(0), x86emu::cpu::fpu::F80::ZERO);
    assert_eq!(f.st(1), x86emu::cpu::fpu::F80::ONE);
    // The last instruction pointer names the FDIVP, not FNSTSW (a control instruction).
    assert_eq!(f.fip, at(FNOP_AT - 4));
    assert_eq!(f.fop, 0x6F9);

    // A handler that clears the exception lets the FNOP run.
    let h16: Asm = |a| {
        a.fnclex()?;
        a.inc(dword_ptr(COUNT))?;
        a.iretd()
    };
    let mut m = machine(divide_by_zero_then, &[(16, h16)]);
    m.mem.write_bytes(DATA, &0x037Bu16.to_le_bytes());
    m.cpu.state.cr0 |= CR0_NE;
    assert_eq!(m.run(), RunExit::Halted);
    assert_eq!(rd32(&m.mem, COUNT), 1);
    assert_eq!(m.fpu().sw & 0x80FF, 0);

    // WAIT reports it too; FNINIT, FNCLEX, FNSTENV, FNSAVE, FNSTCW do not.
    for (tail, faults) in [
        (Tail(|a| a.wait()), true),
        (Tail(|a| a.fninit()), false),
        (Tail(|a| a.fnclex()), false),
        (Tail(|a| a.fnstenv(ptr(DATA + 0x40))), false),
        (Tail(|a| a.fnsave(ptr(DATA + 0x40))), false),
        (Tail(|a| a.fnstcw(word_ptr(DATA + 0x40))), false),
    ] {
        let mut m = machine(
            |a| {
                a.fninit()?;
                a.fldcw(word_ptr(DATA))?;
                a.fld1()?;
                a.fldz()?;
                a.fdivp(st1, st0)?;
                (tail.0)(a)?;
                a.hlt()
            },
            &[],
        );
        m.mem.write_bytes(DATA, &0x037Bu16.to_le_bytes());
        m.cpu.state.cr0 |= CR0_NE;
        m.cpu.stop_on_exception = true;
        let r = m.run();
        assert_eq!(r == ex(16), faults, "{r:?}");
    }
}

#[test]
fn unmasked_exception_with_ne_clear_asserts_ferr() {
    let mut m = machine(
        |a| {
            divide_by_zero_then(a)?;
            a.fnop()?; // still pending: FERR# stays asserted, no second edge
            a.wait()?;
            a.fnclex()?; // deasserts
            a.fnop()?;
            a.hlt()
        },
        &[],
    );
    m.mem.write_bytes(DATA, &0x037Bu16.to_le_bytes());
    m.cpu.stop_on_exception = true;
    let mut bus = FerrBus::default();
    // Run up to the first HLT (inside divide_by_zero_then): FERR# went up at the FNOP,
    // and the instruction went on (the board's IRQ 13 would interrupt it).
    assert_eq!(m.cpu.run(&mut m.mem, &mut bus, 1000), RunExit::Halted);
    assert_eq!(m.cpu.state.eip, at(FNOP_AT + 3));
    assert_eq!(bus.events, [true]);
    assert_eq!(m.fpu().ferr, 1);
    m.cpu.state.halted = false;
    assert_eq!(m.cpu.run(&mut m.mem, &mut bus, 1000), RunExit::Halted);
    assert_eq!(bus.events, [true, false]);
    assert_eq!(m.fpu().ferr, 0);
}

#[test]
fn fldcw_unmasking_a_raised_flag_makes_it_pending_and_fnstenv_masks() {
    let mut m = machine(
        |a| {
            a.fninit()?;
            a.fld1()?;
            a.fldz()?;
            a.fdivp(st1, st0)?; // masked ZE: +inf, ZE flag set
            a.fnstenv(ptr(DATA + 0x40))?;
            a.fldcw(word_ptr(DATA))?; // unmask ZE: now pending
            a.fnstenv(ptr(DATA + 0x80))?; // masks everything again
            a.fnop()?;
            a.fldcw(word_ptr(DATA))?; // waits: the exception is pending again
            a.hlt()
        },
        &[],
    );
    m.mem.write_bytes(DATA, &0x037Bu16.to_le_bytes());
    m.cpu.state.cr0 |= CR0_NE;
    m.cpu.stop_on_exception = true;
    // FNSTENV masks the exceptions and with them ES (the host x87 does the same), so the
    // FNOP runs; the last FLDCW (a waiting instruction, but nothing is pending when it
    // starts) unmasks ZE again, which makes the raised flag pending.
    assert_eq!(m.run(), RunExit::Halted);
    assert_eq!(rd16(&m.mem, DATA + 0x44) & 0x80, 0, "ES clear while masked");
    assert_eq!(
        rd16(&m.mem, DATA + 0x84) & 0x80,
        0x80,
        "ES set once unmasked (stored before FNSTENV masks)"
    );
    let f = m.fpu();
    assert_eq!(f.cw & 0x3F, 0x3B, "unmasked again by the last FLDCW");
    assert_eq!(f.sw & 0x8084, 0x8084, "ZE pending: ES and B set");
}

#[test]
fn stack_overflow_and_underflow() {
    // Masked: the ninth push overflows, loads the indefinite and sets C1.
    let mut m = machine(
        |a| {
            a.fninit()?;
            for _ in 0..9 {
                a.fld1()?;
            }
            a.fnstsw(ax)?;
            a.hlt()
        },
        &[],
    );
    assert_eq!(m.run(), RunExit::Halted);
    let sw = m.cpu.state.gpr[EAX] as u16;
    assert_eq!(sw & 0x0241, 0x0241, "IE SF C1: {sw:04x}");
    assert_eq!(m.fpu().st(0), x86emu::cpu::fpu::F80::INDEFINITE);

    // Unmasked: the push does not happen, TOP stays, and the next FLD faults.
    let mut m = machine(
        |a| {
            a.fninit()?;
            a.fldcw(word_ptr(DATA))?;
            for _ in 0..9 {
                a.fld1()?;
            }
            a.hlt()
        },
        &[],
    );
    m.mem.write_bytes(DATA, &0x037Eu16.to_le_bytes());
    m.cpu.state.cr0 |= CR0_NE;
    m.cpu.stop_on_exception = true;
    assert_eq!(m.run(), RunExit::Halted);
    let f = m.fpu();
    assert_eq!((f.top(), f.valid), (0, 0xFF));
    assert_eq!(f.sw & 0x02C1, 0x02C1, "IE SF C1 ES");
    assert_eq!(f.st(0), x86emu::cpu::fpu::F80::ONE);

    // Underflow: an empty operand gives IE + SF with C1 = 0 and the indefinite.
    let mut m = machine(
        |a| {
            a.fninit()?;
            a.fld1()?;
            a.fadd_2(st0, st3)?;
            a.fnstsw(ax)?;
            a.hlt()
        },
        &[],
    );
    assert_eq!(m.run(), RunExit::Halted);
    assert_eq!(m.cpu.state.gpr[EAX] & 0x0241, 0x0041);
    assert_eq!(m.fpu().st(0), x86emu::cpu::fpu::F80::INDEFINITE);
}

#[test]
fn memory_faults_leave_the_fpu_untouched() {
    let mut m = machine(
        |a| {
            a.fninit()?;
            a.fld1()?;
            a.fstp(tword_ptr(0xFFFA))?;
            a.hlt()
        },
        &[],
    );
    m.cpu.state.seg[SegReg::Ds as usize].limit = 0xFFFF;
    m.cpu.stop_on_exception = true;
    assert_eq!(
        m.run(),
        RunExit::Exception {
            vector: 13,
            error_code: Some(0)
        }
    );
    let f = m.fpu();
    assert_eq!((f.top(), f.valid), (7, 0x80), "no pop");
    assert_eq!(rd(&m.mem, 0xFFFA, 6), [0; 6], "nothing written");
    let fip = f.fip;

    let mut m = machine(
        |a| {
            a.fninit()?;
            a.fld(qword_ptr(0xFFFC))?;
            a.hlt()
        },
        &[],
    );
    m.cpu.state.seg[SegReg::Ds as usize].limit = 0xFFFF;
    m.cpu.stop_on_exception = true;
    assert!(matches!(m.run(), RunExit::Exception { vector: 13, .. }));
    assert_eq!(m.fpu().valid, 0, "no push");
    assert_eq!(fip, CODE + 2, "FIP still names the FLD1");
}

#[test]
fn last_instruction_and_operand_pointers() {
    let mut m = machine(
        |a| {
            a.fninit()?;
            a.mov(ebx, DATA)?;
            a.fld1()?;
            a.db(&[0x26])?; // ES prefix: part of the instruction FIP points at
            a.fadd(dword_ptr(ebx + 4))?;
            a.fnstcw(word_ptr(DATA + 0x20))?; // control: pointers unchanged
            a.fnstenv(ptr(DATA + 0x40))?;
            a.fldz()?; // register operand: FIP/FOP change, FDP stays
            a.fnstenv(ptr(DATA + 0x80))?;
            a.hlt()
        },
        &[],
    );
    assert_eq!(m.run(), RunExit::Halted);
    let e = DATA + 0x40;
    let fadd_at = CODE + 2 + 5 + 2;
    assert_eq!(rd32(&m.mem, e + 12), fadd_at, "FIP");
    assert_eq!(rd16(&m.mem, e + 16), 0x08, "FCS");
    assert_eq!(rd16(&m.mem, e + 18), 0x043, "FOP: D8 /0 with ModRM 43");
    assert_eq!(rd32(&m.mem, e + 20), DATA + 4, "FDP");
    assert_eq!(rd16(&m.mem, e + 24), 0x10, "FDS: the ES selector");
    let e = DATA + 0x80;
    assert_eq!(rd32(&m.mem, e + 12), fadd_at + 4 + 6 + 6, "FIP of FLDZ");
    assert_eq!(rd16(&m.mem, e + 18), 0x1EE, "FOP: D9 EE");
    assert_eq!(rd32(&m.mem, e + 20), DATA + 4, "FDP kept");
    // The tag word by physical register: R7 = 1.0 (valid, 00), R6 = +0 (zero, 01), the
    // rest empty (11).
    let tw = rd16(&m.mem, e + 8);
    assert_eq!(tw, 0x1FFF, "{tw:04x}");
}

#[test]
fn fxsave_alignment_and_image() {
    let mut m = machine(
        |a| {
            a.fxsave(ptr(DATA + 8))?;
            a.hlt()
        },
        &[],
    );
    m.cpu.stop_on_exception = true;
    assert!(matches!(m.run(), RunExit::Exception { vector: 13, .. }));

    let mut m = machine(
        |a| {
            a.fninit()?;
            a.fldpi()?;
            a.fld1()?;
            a.fxsave(ptr(DATA))?;
            a.fninit()?;
            a.fxrstor(ptr(DATA))?;
            a.hlt()
        },
        &[],
    );
    m.cpu.state.cr4 |= x86emu::cpu::state::CR4_OSFXSR;
    assert_eq!(m.run(), RunExit::Halted);
    let img = rd(&m.mem, DATA, 512);
    assert_eq!(u16::from_le_bytes([img[0], img[1]]), 0x037F);
    assert_eq!(img[4], 0xC0, "abridged tag: R6, R7 valid");
    assert_eq!(rd32(&m.mem, DATA + 24), 0x1F80, "MXCSR");
    assert_eq!(rd32(&m.mem, DATA + 28), 0xFFFF, "MXCSR_MASK");
    assert_eq!(&img[32..42], &x86emu::cpu::fpu::F80::ONE.to_bytes());
    let f = m.fpu();
    assert_eq!((f.top(), f.valid), (6, 0xC0));
    assert_eq!(f.st(1).sig, 0xC90F_DAA2_2168_C235);
}

#[test]
fn real_mode_environment_holds_linear_addresses() {
    // 16-bit real mode at 0100:0010: FIP is stored as CS*16 + IP.
    let mut mem = PhysMem::new_flat(1 << 20);
    let mut a = CodeAssembler::new(16).unwrap();
    a.fninit().unwrap();
    a.fld1().unwrap();
    a.fnstenv(ptr(0x200)).unwrap();
    a.hlt().unwrap();
    let code = a.assemble(0x10).unwrap();
    mem.write_bytes(0x1010, &code);
    let mut cpu = Cpu::new();
    for s in SegReg::ALL {
        cpu.state.set_real_segment(s, 0x100);
    }
    cpu.state.eip = 0x10;
    assert_eq!(cpu.run(&mut mem, &mut NullBus, 100), RunExit::Halted);
    let env = rd(&mem, 0x1200, 14);
    let w = |o: usize| u16::from_le_bytes([env[o], env[o + 1]]);
    assert_eq!(w(0), 0x037F);
    assert_eq!(w(6), 0x1012, "FIP[15:0] linear");
    assert_eq!(w(8), 0x1E8, "FIP[19:16] = 0, FOP D9 E8");
}

#[test]
fn cpuid_reports_the_fpu() {
    assert_eq!(x86emu::cpu::CpuModel::default().cpuid(1, 0)[3] & 1, 1);
}
