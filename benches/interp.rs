//! Decoder throughput and interpreter speed on small guest loops.
//!
//! `cargo bench --bench interp` reports elements/second: decoded instructions for the
//! decoder, retired instructions (MIPS = Melem/s) for the guest loops.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use x86emu::cpu::decode::decode;
use x86emu::cpu::{Cpu, RunExit};
use x86emu::devices::bus::NullBus;
use x86emu::mmu::PhysMem;

const CODE: u32 = 0x1000;

/// A mixed 32-bit instruction stream (typical compiler output) for the decoder.
const MIX32: &[u8] = &[
    0x55, // push ebp
    0x89, 0xE5, // mov ebp, esp
    0x83, 0xEC, 0x10, // sub esp, 16
    0x8B, 0x45, 0x08, // mov eax, [ebp+8]
    0x8B, 0x04, 0x8D, 0x00, 0x10, 0x00, 0x00, // mov eax, [ecx*4+0x1000]
    0x01, 0xD8, // add eax, ebx
    0x0F, 0xB6, 0x4D, 0xFF, // movzx ecx, byte [ebp-1]
    0x66, 0x89, 0x44, 0x24, 0x04, // mov [esp+4], ax
    0xC7, 0x45, 0xF8, 0x01, 0x00, 0x00, 0x00, // mov dword [ebp-8], 1
    0x85, 0xC0, // test eax, eax
    0x74, 0x05, // jz +5
    0xE8, 0x00, 0x00, 0x00, 0x00, // call rel32
    0xF3, 0xA5, // rep movsd
    0x0F, 0xAF, 0xC1, // imul eax, ecx
    0xC9, // leave
    0xC3, // ret
];

fn bench_decoder(c: &mut Criterion) {
    let mut offsets = Vec::new();
    let mut o = 0;
    while o < MIX32.len() {
        offsets.push(o);
        o += decode(&MIX32[o..], true).unwrap().len as usize;
    }
    let mut g = c.benchmark_group("decoder");
    g.throughput(Throughput::Elements(offsets.len() as u64));
    g.bench_function("mixed_32bit", |b| {
        b.iter(|| {
            for &o in &offsets {
                black_box(decode(black_box(&MIX32[o..]), true).unwrap());
            }
        })
    });
    g.finish();
}

struct Guest {
    cpu: Cpu,
    mem: PhysMem,
}

fn guest32(code: &[u8]) -> Guest {
    let mut mem = PhysMem::new_flat(4 << 20);
    mem.write_bytes(CODE, code);
    let mut cpu = Cpu::new();
    cpu.state.enter_flat32();
    Guest { cpu, mem }
}

/// The same, with paging on: the first 4 MiB identity-mapped with 4 KiB pages.
fn guest32_paged(code: &[u8]) -> Guest {
    let mut g = guest32(code);
    const PD: u32 = 0x30_0000;
    const PT: u32 = 0x30_1000;
    g.mem.write_bytes(PD, &(PT | 3).to_le_bytes());
    for i in 0..1024u32 {
        g.mem
            .write_bytes(PT + 4 * i, &((i << 12) | 3).to_le_bytes());
    }
    g.cpu.state.cr3 = PD;
    g.cpu.state.cr0 |= 1 << 31;
    g.cpu.flush_caches();
    g
}

/// Run the program from the start until HLT; returns retired instructions.
fn run_once(g: &mut Guest) -> u64 {
    g.cpu.state.eip = CODE;
    g.cpu.state.gpr[4] = 0x8000;
    let before = g.cpu.state.icount;
    assert_eq!(
        g.cpu.run(&mut g.mem, &mut NullBus, u64::MAX),
        RunExit::Halted
    );
    g.cpu.state.halted = false;
    g.cpu.state.icount - before
}

/// Each loop runs twice: flat (paging off) and `_paged` (4 KiB identity pages through
/// the TLB), so the TLB overhead is the ratio of the two in one run.
fn bench_loop(c: &mut Criterion, name: &str, code: &[u8]) {
    let mut grp = c.benchmark_group("interp");
    for (suffix, mut g) in [("", guest32(code)), ("_paged", guest32_paged(code))] {
        let n = run_once(&mut g);
        grp.throughput(Throughput::Elements(n));
        grp.bench_function(format!("{name}{suffix}"), |b| b.iter(|| run_once(&mut g)));
    }
    grp.finish();
}

fn bench_interp(c: &mut Criterion) {
    // ALU loop: 100k iterations of add/xor/sub/dec/jnz.
    bench_loop(
        c,
        "alu_loop",
        &[
            0xB9, 0xA0, 0x86, 0x01, 0x00, // mov ecx, 100000
            0x01, 0xD8, // l: add eax, ebx
            0x31, 0xC2, // xor edx, eax
            0x83, 0xEB, 0x03, // sub ebx, 3
            0x49, // dec ecx
            0x75, 0xF6, // jnz l
            0xF4, // hlt
        ],
    );
    // Memory copy with loads and stores: 64 KiB, dword at a time.
    bench_loop(
        c,
        "memcpy_loop",
        &[
            0xBE, 0x00, 0x00, 0x10, 0x00, // mov esi, 0x100000
            0xBF, 0x00, 0x00, 0x20, 0x00, // mov edi, 0x200000
            0xB9, 0x00, 0x40, 0x00, 0x00, // mov ecx, 16384
            0x8B, 0x06, // l: mov eax, [esi]
            0x89, 0x07, // mov [edi], eax
            0x83, 0xC6, 0x04, // add esi, 4
            0x83, 0xC7, 0x04, // add edi, 4
            0x49, // dec ecx
            0x75, 0xF3, // jnz l
            0xF4, // hlt
        ],
    );
    // REP MOVSD of 64 KiB (each iteration counts as one instruction).
    bench_loop(
        c,
        "rep_movsd",
        &[
            0xFC, // cld
            0xBE, 0x00, 0x00, 0x10, 0x00, // mov esi, 0x100000
            0xBF, 0x00, 0x00, 0x20, 0x00, // mov edi, 0x200000
            0xB9, 0x00, 0x40, 0x00, 0x00, // mov ecx, 16384
            0xF3, 0xA5, // rep movsd
            0xF4, // hlt
        ],
    );
    // REP STOSB of 64 KiB.
    bench_loop(
        c,
        "rep_stosb",
        &[
            0xFC, // cld
            0xBF, 0x00, 0x00, 0x20, 0x00, // mov edi, 0x200000
            0xB9, 0x00, 0x00, 0x01, 0x00, // mov ecx, 65536
            0xF3, 0xAA, // rep stosb
            0xF4, // hlt
        ],
    );
}

criterion_group!(benches, bench_decoder, bench_interp);
criterion_main!(benches);
