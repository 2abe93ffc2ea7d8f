//! Focused behaviour tests of the interpreter: real-mode exception and interrupt
//! delivery, single step, the interrupt shadow, segment limits, the 15-byte limit,
//! self-modifying code, REP interruption and run-slicing determinism.

use x86emu::cpu::flags::{IF, TF};
use x86emu::cpu::regs::*;
use x86emu::cpu::{Cpu, RunExit, SegReg};
use x86emu::devices::bus::NullBus;
use x86emu::mmu::PhysMem;

const CODE: u32 = 0x1000;
const HANDLER: u32 = 0x3000;

/// Real-mode machine: code at 0000:1000, stack at 0000:8000, every IVT entry pointing at
/// a distinct HLT in 0000:3000+v (so the vector taken is visible in IP).
fn real(code: &[u8]) -> (Cpu, PhysMem) {
    let mut mem = PhysMem::new_flat(1 << 20);
    for v in 0..256u32 {
        let off = (HANDLER + v) as u16;
        mem.write_bytes(v * 4, &[off as u8, (off >> 8) as u8, 0, 0]);
        mem.write_bytes(HANDLER + v, &[0xF4]);
    }
    mem.write_bytes(CODE, code);
    let mut cpu = Cpu::new();
    for s in SegReg::ALL {
        cpu.state.set_real_segment(s, 0);
    }
    cpu.state.eip = CODE;
    cpu.state.gpr[ESP] = 0x8000;
    (cpu, mem)
}

/// Run to HLT; returns (vector if the HLT was in the handler area, pushed IP).
fn run_to_hlt(cpu: &mut Cpu, mem: &mut PhysMem) -> Option<(u32, u16)> {
    assert_eq!(cpu.run(mem, &mut NullBus, 10_000), RunExit::Halted);
    let ip = cpu.state.eip - 1;
    if (HANDLER..HANDLER + 256).contains(&ip) {
        let sp = cpu.state.gpr[ESP];
        let mut b = [0u8; 2];
        mem.read_bytes(sp, &mut b);
        Some((ip - HANDLER, u16::from_le_bytes(b)))
    } else {
        None
    }
}

#[test]
fn divide_error_pushes_faulting_ip() {
    // xor bl,bl; div bl
    let (mut cpu, mut mem) = real(&[0x30, 0xDB, 0xF6, 0xF3]);
    assert_eq!(run_to_hlt(&mut cpu, &mut mem), Some((0, (CODE + 2) as u16)));
}

#[test]
fn int3_into_and_int_push_next_ip() {
    let (mut cpu, mut mem) = real(&[0xCC]);
    assert_eq!(run_to_hlt(&mut cpu, &mut mem), Some((3, (CODE + 1) as u16)));
    // mov al,0x7f; add al,1 (OF=1); into
    let (mut cpu, mut mem) = real(&[0xB0, 0x7F, 0x04, 0x01, 0xCE]);
    assert_eq!(run_to_hlt(&mut cpu, &mut mem), Some((4, (CODE + 5) as u16)));
    // into with OF=0 falls through to hlt
    let (mut cpu, mut mem) = real(&[0xCE, 0xF4]);
    assert_eq!(run_to_hlt(&mut cpu, &mut mem), None);
    let (mut cpu, mut mem) = real(&[0xCD, 0x42]);
    assert_eq!(
        run_to_hlt(&mut cpu, &mut mem),
        Some((0x42, (CODE + 2) as u16))
    );
    // The handler runs with IF and TF clear.
    assert_eq!(cpu.state.eflags() & (IF | TF), 0);
}

#[test]
fn bound_and_undefined_opcode_fault_at_the_instruction() {
    // bound ax,[0x2000] with bounds 10..20 and ax=30
    let (mut cpu, mut mem) = real(&[0xB8, 30, 0, 0x62, 0x06, 0x00, 0x20]);
    mem.write_bytes(0x2000, &[10, 0, 20, 0]);
    assert_eq!(run_to_hlt(&mut cpu, &mut mem), Some((5, (CODE + 3) as u16)));
    let (mut cpu, mut mem) = real(&[0x90, 0x0F, 0x0B]); // nop; ud2
    assert_eq!(run_to_hlt(&mut cpu, &mut mem), Some((6, (CODE + 1) as u16)));
    // lock nop is #UD on a P6
    let (mut cpu, mut mem) = real(&[0xF0, 0x90]);
    assert_eq!(run_to_hlt(&mut cpu, &mut mem), Some((6, CODE as u16)));
}

#[test]
fn segment_limit_faults_gp_and_ss() {
    // mov bx,0xffff; mov ax,[bx] -> #GP (word straddles the 64 KiB limit)
    let (mut cpu, mut mem) = real(&[0xBB, 0xFF, 0xFF, 0x8B, 0x07]);
    assert_eq!(
        run_to_hlt(&mut cpu, &mut mem),
        Some((13, (CODE + 3) as u16))
    );
    // mov bp,0xffff; mov ax,[bp] -> #SS
    let (mut cpu, mut mem) = real(&[0xBD, 0xFF, 0xFF, 0x8B, 0x46, 0x00]);
    assert_eq!(
        run_to_hlt(&mut cpu, &mut mem),
        Some((12, (CODE + 3) as u16))
    );
    // The faulting instruction changed nothing: AX is still 0.
    assert_eq!(cpu.state.gpr[EAX], 0);
}

#[test]
fn fifteen_byte_limit_is_gp() {
    let mut code = vec![0x26u8; 14];
    code.push(0x90); // 15 bytes: fine
    code.extend_from_slice(&[0x26; 15]);
    code.push(0x90); // 16 bytes: #GP(0)
    let (mut cpu, mut mem) = real(&code);
    assert_eq!(
        run_to_hlt(&mut cpu, &mut mem),
        Some((13, (CODE + 15) as u16))
    );
}

#[test]
fn single_step_traps_after_each_instruction() {
    // pushf; pop ax; or ax,0x100; push ax; popf (TF=1 from here); nop; nop
    let code = [0x9C, 0x58, 0x0D, 0x00, 0x01, 0x50, 0x9D, 0x90, 0x90];
    let (mut cpu, mut mem) = real(&code);
    // The instruction that sets TF does not trap; the next one (the first nop) does.
    assert_eq!(run_to_hlt(&mut cpu, &mut mem), Some((1, (CODE + 8) as u16)));
}

#[test]
fn mov_ss_shadow_delays_single_step() {
    // TF set, then: mov ss,ax; nop  -> the trap comes after the nop, not after mov ss.
    let code = [
        0x9C, 0x58, 0x0D, 0x00, 0x01, 0x50, 0x9D, 0x8E, 0xD0, 0x90, 0x90,
    ];
    let (mut cpu, mut mem) = real(&code);
    assert_eq!(cpu.run(&mut mem, &mut NullBus, 10_000), RunExit::Halted);
    // AX (the flags image) was loaded into SS, so read the pushed IP through SS.
    let ss_base = cpu.state.seg[SegReg::Ss as usize].base;
    let sp = cpu.state.gpr[ESP] & 0xFFFF;
    let mut b = [0u8; 2];
    mem.read_bytes(ss_base + sp, &mut b);
    assert_eq!(cpu.state.eip - 1, HANDLER + 1, "#DB taken");
    assert_eq!(
        u16::from_le_bytes(b) as u32,
        CODE + 10,
        "trap after the nop"
    );
}

#[test]
fn self_modifying_code_is_seen_immediately() {
    // mov byte [0x1006], 0x40 (inc ax) ; then the instruction at 0x1006 (was nop) ; hlt
    // 0x1000: c6 06 06 10 40   mov byte [0x1006],0x40
    // 0x1005: 90               nop
    // 0x1006: 90               nop -> becomes inc ax
    // 0x1007: f4               hlt
    let code = [0xC6, 0x06, 0x06, 0x10, 0x40, 0x90, 0x90, 0xF4];
    let (mut cpu, mut mem) = real(&code);
    assert_eq!(run_to_hlt(&mut cpu, &mut mem), None);
    assert_eq!(cpu.state.gpr[EAX], 1);
    // Run the same code again after patching it from outside (loader/DMA path).
    mem.write_bytes(0x1006, &[0x48]); // dec ax
    mem.write_bytes(0x1000, &[0x90, 0x90, 0x90, 0x90, 0x90]);
    cpu.state.eip = CODE;
    cpu.state.halted = false;
    assert_eq!(run_to_hlt(&mut cpu, &mut mem), None);
    assert_eq!(cpu.state.gpr[EAX], 0);
}

#[test]
fn rep_movs_is_interruptible_and_slicing_is_invisible() {
    // cld; mov si,0x2000; mov di,0x4000; mov cx,1000; rep movsb; add ax,cx; hlt
    let code = [
        0xFC, 0xBE, 0x00, 0x20, 0xBF, 0x00, 0x40, 0xB9, 0xE8, 0x03, 0xF3, 0xA4, 0x01, 0xC8, 0xF4,
    ];
    let (mut a, mut mem_a) = real(&code);
    for i in 0..1000u32 {
        mem_a.write_bytes(0x2000 + i, &[(i * 7) as u8]);
    }
    let (mut b, mut mem_b) = (Cpu::new(), PhysMem::new_flat(1 << 20));
    b.state = a.state.clone();
    let mut all = vec![0u8; 1 << 20];
    mem_a.read_bytes(0, &mut all);
    mem_b.write_bytes(0, &all);
    // A: one call. B: many small slices, each stopping mid-REP.
    assert_eq!(a.run(&mut mem_a, &mut NullBus, 1_000_000), RunExit::Halted);
    loop {
        match b.run(&mut mem_b, &mut NullBus, 7) {
            RunExit::InstructionLimit => continue,
            RunExit::Halted => break,
            other => panic!("{other:?}"),
        }
    }
    a.state.normalize();
    b.state.normalize();
    assert_eq!(a.state, b.state);
    assert_eq!(
        a.state.icount,
        4 + 1000 + 2,
        "each REP iteration counts one"
    );
    assert_eq!(mem_a.ram(), mem_b.ram());
    let mut copied = [0u8; 1000];
    mem_a.read_bytes(0x4000, &mut copied);
    assert!(copied
        .iter()
        .enumerate()
        .all(|(i, &v)| v == (i as u32 * 7) as u8));
}

#[test]
fn exception_in_delivery_escalates_to_triple_fault() {
    // An IDT limit of 0 makes every delivery fault: #UD -> #GP -> #DF -> shutdown.
    let (mut cpu, mut mem) = real(&[0x0F, 0x0B]);
    cpu.state.idtr.limit = 0;
    assert_eq!(cpu.run(&mut mem, &mut NullBus, 100), RunExit::TripleFault);
}

#[test]
fn stop_on_exception_reports_and_rolls_back() {
    // push ax; xor bl,bl; div bl
    let (mut cpu, mut mem) = real(&[0x50, 0x30, 0xDB, 0xF6, 0xF3]);
    cpu.stop_on_exception = true;
    let r = cpu.run(&mut mem, &mut NullBus, 100);
    assert_eq!(
        r,
        RunExit::Exception {
            vector: 0,
            error_code: None
        }
    );
    assert_eq!(cpu.state.eip, CODE + 3);
    assert_eq!(cpu.state.gpr[ESP], 0x7FFE);
}

#[test]
fn unreal_mode_limits_survive_real_mode_loads() {
    // A 4 GiB DS limit cached from protected mode stays when DS is reloaded in real mode.
    let (mut cpu, mut mem) = real(&[
        0x31, 0xC0, // xor ax,ax
        0x8E, 0xD8, // mov ds,ax
        0x67, 0x8B, 0x03, // mov ax,[ebx]
        0xF4,
    ]);
    mem.write_bytes(0x2_0000, &[0x34, 0x12]);
    cpu.state.seg[SegReg::Ds as usize].limit = 0xFFFF_FFFF;
    cpu.state.gpr[EBX] = 0x2_0000;
    assert_eq!(run_to_hlt(&mut cpu, &mut mem), None);
    assert_eq!(cpu.state.gpr[EAX] & 0xFFFF, 0x1234);
}

/// 32-bit code on a 16-bit stack segment (SS.B = 0) at base 0x20000.
fn flat32_small_stack(code: &[u8]) -> (Cpu, PhysMem) {
    let mut mem = PhysMem::new_flat(1 << 20);
    mem.write_bytes(CODE, code);
    let mut cpu = Cpu::new();
    cpu.state.enter_flat32();
    let ss = &mut cpu.state.seg[SegReg::Ss as usize];
    ss.attr &= !x86emu::cpu::state::attr::DB;
    ss.base = 0x2_0000;
    ss.limit = 0xFFFF;
    cpu.state.eip = CODE;
    cpu.state.gpr[ESP] = 0x0002_0000; // SP = 0
    (cpu, mem)
}

#[test]
fn pushad_on_a_16bit_stack_saves_the_whole_esp() {
    let (mut cpu, mut mem) = flat32_small_stack(&[0x60, 0xF4]); // pushad; hlt
    assert_eq!(cpu.run(&mut mem, &mut NullBus, 10), RunExit::Halted);
    assert_eq!(cpu.state.gpr[ESP], 0x0002_FFE0, "only SP wraps");
    let mut b = [0u8; 4];
    mem.read_bytes(0x2_0000 + 0xFFE0 + 12, &mut b);
    assert_eq!(u32::from_le_bytes(b), 0x0002_0000, "the ESP slot");
}

#[test]
fn enter32_on_a_16bit_stack_keeps_the_upper_esp_in_ebp() {
    // enter 8, 0 with a 32-bit operand size
    let (mut cpu, mut mem) = flat32_small_stack(&[0xC8, 0x08, 0x00, 0x00, 0xF4]);
    assert_eq!(cpu.run(&mut mem, &mut NullBus, 10), RunExit::Halted);
    assert_eq!(cpu.state.gpr[EBP], 0x0002_FFFC);
    assert_eq!(cpu.state.gpr[ESP], 0x0002_FFF4);
}
