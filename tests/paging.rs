//! Page walker and TLB behaviour through the interpreter: translations, A/D bits, #PF
//! error codes and CR2, TLB coherence rules (stale entries until INVLPG or CR3 reload,
//! global pages surviving CR3 reloads, CR0/CR4 changes flushing), PSE, PAE and NX, and
//! self-modifying code seen through a second mapping.

use iced_x86::code_asm::*;
use x86emu::cpu::regs::*;
use x86emu::cpu::{Cpu, RunExit};
use x86emu::devices::bus::NullBus;
use x86emu::mmu::PhysMem;

const PD: u32 = 0x10_0000; // page directory
const PT: u32 = 0x10_1000; // page table for 0-4 MiB
const CODE: u32 = 0x2000;
const STACK: u32 = 0x9000;
const P: u32 = 1;
const W: u32 = 2;
const U: u32 = 4;
const A: u32 = 0x20;
const D: u32 = 0x40;
const PS: u32 = 0x80;
const G: u32 = 0x100;

struct M {
    cpu: Cpu,
    mem: PhysMem,
}

fn rd32(mem: &PhysMem, a: u32) -> u32 {
    let mut b = [0u8; 4];
    mem.read_bytes(a, &mut b);
    u32::from_le_bytes(b)
}

fn wr32(mem: &mut PhysMem, a: u32, v: u32) {
    mem.write_bytes(a, &v.to_le_bytes());
}

/// Flat 32-bit mode, identity-mapped first 4 MiB with 4 KiB pages (supervisor, RW),
/// paging on. `code` is assembled at CODE and must end in HLT.
fn machine(code: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>) -> M {
    let mut mem = PhysMem::new_flat(16 << 20);
    wr32(&mut mem, PD, PT | P | W);
    for i in 0..1024 {
        wr32(&mut mem, PT + 4 * i, (i << 12) | P | W);
    }
    let mut a = CodeAssembler::new(32).unwrap();
    code(&mut a).unwrap();
    let bytes = a.assemble(CODE as u64).unwrap();
    mem.write_bytes(CODE, &bytes);
    let mut cpu = Cpu::new();
    cpu.state.enter_flat32();
    cpu.state.cr3 = PD;
    cpu.state.cr0 |= 1 << 31;
    cpu.flush_caches();
    cpu.state.eip = CODE;
    cpu.state.gpr[ESP] = STACK;
    cpu.stop_on_exception = true;
    M { cpu, mem }
}

impl M {
    fn run(&mut self) -> RunExit {
        self.cpu.run(&mut self.mem, &mut NullBus, 100_000)
    }
    fn pte(&self, lin: u32) -> u32 {
        rd32(&self.mem, PT + 4 * (lin >> 12))
    }
    fn set_pte(&mut self, lin: u32, v: u32) {
        wr32(&mut self.mem, PT + 4 * (lin >> 12), v)
    }
}

fn pf(err: u32) -> RunExit {
    RunExit::Exception {
        vector: 14,
        error_code: Some(err),
    }
}

#[test]
fn translation_and_accessed_dirty_bits() {
    let mut m = machine(|a| {
        a.mov(eax, dword_ptr(0x5000))?;
        a.mov(dword_ptr(0x6000), eax)?;
        a.hlt()
    });
    m.set_pte(0x5000, 0x7000 | P | W); // 0x5000 -> 0x7000
    wr32(&mut m.mem, 0x7000, 0xCAFE_F00D);
    assert_eq!(m.run(), RunExit::Halted);
    assert_eq!(m.cpu.state.gpr[EAX], 0xCAFE_F00D);
    assert_eq!(rd32(&m.mem, 0x6000), 0xCAFE_F00D);
    assert_eq!(m.pte(0x5000) & (A | D), A, "read sets A only");
    assert_eq!(m.pte(0x6000) & (A | D), A | D, "write sets A and D");
    assert_eq!(rd32(&m.mem, PD) & A, A, "PDE accessed");
    assert_eq!(m.pte(0x8000) & (A | D), 0, "untouched page");
}

#[test]
fn page_fault_error_codes_cr2_and_no_ad_on_faulting_walk() {
    // Not present read.
    let mut m = machine(|a| {
        a.mov(eax, dword_ptr(0x5004))?;
        a.hlt()
    });
    m.set_pte(0x5000, 0x5000);
    assert_eq!(m.run(), pf(0));
    assert_eq!(m.cpu.state.cr2, 0x5004);
    assert_eq!(m.cpu.state.eip, CODE, "fault points at the instruction");
    // Write to a read-only page at CPL 0 with WP=1: P|W.
    let mut m = machine(|a| {
        a.mov(dword_ptr(0x5000), eax)?;
        a.hlt()
    });
    m.set_pte(0x5000, 0x5000 | P);
    m.cpu.state.cr0 |= 1 << 16;
    assert_eq!(m.run(), pf(1 | 2));
    assert_eq!(
        m.pte(0x5000) & (A | D),
        0,
        "a faulting walk sets no A/D bits"
    );
    // Same with WP=0: the supervisor write succeeds.
    let mut m = machine(|a| {
        a.mov(dword_ptr(0x5000), eax)?;
        a.hlt()
    });
    m.set_pte(0x5000, 0x5000 | P);
    assert_eq!(m.run(), RunExit::Halted);
    assert_eq!(m.pte(0x5000) & (A | D), A | D);
    // User read of a supervisor page: P|U.
    let mut m = user_machine(|a| {
        a.mov(eax, dword_ptr(0x5000))?;
        a.hlt()
    });
    m.set_pte(0x5000, 0x5000 | P | W);
    assert_eq!(m.run(), pf(1 | 4));
    // User write to a user read-only page: P|W|U.
    let mut m = user_machine(|a| {
        a.mov(dword_ptr(0x5000), eax)?;
        a.hlt()
    });
    m.set_pte(0x5000, 0x5000 | P | U);
    assert_eq!(m.run(), pf(1 | 2 | 4));
    // User access allowed by the PTE but not by the PDE: P|U.
    let mut m = user_machine(|a| {
        a.mov(eax, dword_ptr(0x5000))?;
        a.hlt()
    });
    wr32(&mut m.mem, PD, PT | P | W);
    assert_eq!(m.run(), pf(1 | 4));
}

/// Like `machine`, but every page is a user page and the CPU runs at CPL 3.
fn user_machine(code: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>) -> M {
    let mut m = machine(code);
    wr32(&mut m.mem, PD, PT | P | W | U);
    for i in 0..1024 {
        wr32(&mut m.mem, PT + 4 * i, (i << 12) | P | W | U);
    }
    m.cpu.state.cpl = 3;
    m
}

#[test]
fn tlb_is_stale_until_invlpg_or_cr3_reload() {
    let mut m = machine(|a| {
        a.mov(eax, dword_ptr(0x5000))?; // fills the TLB: 0x5000 -> 0x7000
        a.mov(dword_ptr(PT + 4 * 5), 0x8000 | P | W)?; // remap to 0x8000, no INVLPG
        a.mov(ebx, dword_ptr(0x5000))?; // still the old translation
        a.invlpg(dword_ptr(0x5000))?;
        a.mov(ecx, dword_ptr(0x5000))?; // new translation
        a.mov(dword_ptr(PT + 4 * 5), 0x7000 | P | W)?;
        a.mov(edx, cr3)?;
        a.mov(cr3, edx)?; // CR3 reload flushes it
        a.mov(esi, dword_ptr(0x5000))?;
        a.hlt()
    });
    m.set_pte(0x5000, 0x7000 | P | W);
    wr32(&mut m.mem, 0x7000, 7);
    wr32(&mut m.mem, 0x8000, 8);
    assert_eq!(m.run(), RunExit::Halted);
    let g = m.cpu.state.gpr;
    assert_eq!((g[EAX], g[EBX], g[ECX], g[ESI]), (7, 7, 8, 7));
}

#[test]
fn global_pages_survive_cr3_reload_but_not_invlpg_or_pge_toggle() {
    let mut m = machine(|a| {
        a.mov(eax, dword_ptr(0x5000))?; // global translation cached
        a.mov(dword_ptr(PT + 4 * 5), 0x8000 | P | W | G)?;
        a.mov(edx, cr3)?;
        a.mov(cr3, edx)?;
        a.mov(ebx, dword_ptr(0x5000))?; // stale: global entries survive CR3 loads
        a.mov(edx, cr4)?;
        a.and(edx, !(1u32 << 7) as i32)?;
        a.mov(cr4, edx)?; // clearing PGE flushes everything
        a.or(edx, 1 << 7)?;
        a.mov(cr4, edx)?;
        a.mov(ecx, dword_ptr(0x5000))?;
        a.mov(dword_ptr(PT + 4 * 5), 0x7000 | P | W | G)?;
        a.invlpg(dword_ptr(0x5000))?;
        a.mov(esi, dword_ptr(0x5000))?;
        a.hlt()
    });
    m.set_pte(0x5000, 0x7000 | P | W | G);
    m.cpu.state.cr4 |= 1 << 7;
    wr32(&mut m.mem, 0x7000, 7);
    wr32(&mut m.mem, 0x8000, 8);
    assert_eq!(m.run(), RunExit::Halted);
    let g = m.cpu.state.gpr;
    assert_eq!((g[EAX], g[EBX], g[ECX], g[ESI]), (7, 7, 8, 7));
}

#[test]
fn wp_change_takes_effect_immediately() {
    let mut m = machine(|a| {
        a.mov(dword_ptr(0x5000), 1)?; // WP=0: allowed (fills a writable TLB entry)
        a.mov(eax, cr0)?;
        a.or(eax, 1 << 16)?;
        a.mov(cr0, eax)?;
        a.mov(dword_ptr(0x5000), 2)?; // WP=1: #PF
        a.hlt()
    });
    m.set_pte(0x5000, 0x5000 | P);
    assert_eq!(m.run(), pf(1 | 2));
    assert_eq!(rd32(&m.mem, 0x5000), 1);
}

#[test]
fn four_mib_pages_with_pse() {
    let mut m = machine(|a| {
        a.mov(eax, dword_ptr(0x0040_1234))?;
        a.mov(dword_ptr(0x0040_2000), eax)?;
        a.hlt()
    });
    // 4 MiB page at linear 4 MiB -> physical 8 MiB.
    wr32(&mut m.mem, PD + 4, 0x0080_0000 | P | W | PS);
    m.cpu.state.cr4 |= 1 << 4;
    wr32(&mut m.mem, 0x0080_1234, 0x1234_5678);
    assert_eq!(m.run(), RunExit::Halted);
    assert_eq!(m.cpu.state.gpr[EAX], 0x1234_5678);
    assert_eq!(rd32(&m.mem, 0x0080_2000), 0x1234_5678);
    assert_eq!(rd32(&m.mem, PD + 4) & (A | D), A | D);
    // Without CR4.PSE the PS bit is ignored and the entry points at a page table.
    let mut m = machine(|a| {
        a.mov(eax, dword_ptr(0x0040_1234))?;
        a.hlt()
    });
    wr32(&mut m.mem, PD + 4, 0x0080_0000 | P | W | PS);
    wr32(&mut m.mem, 0x0080_0004, 0x0030_0000 | P | W);
    wr32(&mut m.mem, 0x0030_0234, 99);
    assert_eq!(m.run(), RunExit::Halted);
    assert_eq!(m.cpu.state.gpr[EAX], 99);
}

#[test]
fn pae_two_mib_pages_and_nx() {
    const PDPT: u32 = 0x20_0000;
    const PAE_PD: u32 = 0x20_1000;
    let mut m = machine(|a| {
        a.mov(eax, dword_ptr(0x0060_0010))?;
        a.call(0x0060_0000u64)?; // NX page: #PF with I/D
        a.hlt()
    });
    // PDPT[0] -> PD; PD[0]: identity 2 MiB (code, stack), PD[1] (2-4 MiB): identity,
    // PD[3] (6 MiB): 2 MiB page at 10 MiB with NX.
    wr32(&mut m.mem, PDPT, PAE_PD | P);
    wr32(&mut m.mem, PAE_PD, P | W | PS);
    wr32(&mut m.mem, PAE_PD + 8, 0x0020_0000 | P | W | PS);
    wr32(&mut m.mem, PAE_PD + 24, 0x00A0_0000 | P | W | PS);
    wr32(&mut m.mem, PAE_PD + 28, 0x8000_0000); // NX
    wr32(&mut m.mem, 0x00A0_0010, 0x4242);
    let s = &mut m.cpu.state;
    s.cr4 |= 1 << 5;
    s.cr3 = PDPT;
    s.msr.efer = 1 << 11;
    s.pdpte = [(PAE_PD | P) as u64, 0, 0, 0];
    m.cpu.flush_caches();
    assert_eq!(m.run(), pf(1 | 16));
    assert_eq!(m.cpu.state.gpr[EAX], 0x4242);
    assert_eq!(m.cpu.state.cr2, 0x0060_0000);
    // Without EFER.NXE bit 63 is reserved: RSVD fault on the data access already.
    m.cpu.state.msr.efer = 0;
    m.cpu.state.eip = CODE;
    m.cpu.flush_caches();
    assert_eq!(m.run(), pf(1 | 8));
}

#[test]
fn code_written_through_another_mapping_is_seen() {
    // Linear 0x5000 aliases the code page 0x2000; a write there patches the next
    // instruction.
    let mut m = machine(|a| {
        a.mov(byte_ptr(0x5000 + 0x0A), 0x40)?; // 7 bytes: c6 05 0a 50 00 00 40
        a.nop()?; // 0x2007
        a.nop()?; // 0x2008
        a.nop()?; // 0x2009
        a.nop()?; // 0x200A -> becomes inc eax
        a.hlt()
    });
    m.set_pte(0x5000, 0x2000 | P | W);
    assert_eq!(m.run(), RunExit::Halted);
    assert_eq!(m.cpu.state.gpr[EAX], 1);
}
