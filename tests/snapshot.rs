//! Snapshots of a CPU and its RAM: determinism across a snapshot (in this process and in a
//! fresh one), save/restore/save identity, restoring over a machine with stale caches,
//! corruption and truncation, section versions, unknown sections, configuration checks,
//! and the size of zero pages.

use iced_x86::code_asm::*;
use std::path::PathBuf;
use x86emu::cpu::regs::*;
use x86emu::cpu::{Cpu, RunExit};
use x86emu::devices::bus::NullBus;
use x86emu::mmu::PhysMem;
use x86emu::snapshot::{
    self, restore_cpu_ram, save_cpu_ram, state_hash, to_hex, SnapshotError, SnapshotReader,
    SnapshotWriter,
};

const RAM: usize = 16 << 20;
const PD: u32 = 0x10_0000;
const PT: u32 = 0x10_1000;
const CODE: u32 = 0x2000;
const STACK: u32 = 0x9000;
const SRC: u32 = 0x2_0000;
const DST: u32 = 0x3_0000;
const COUNTER: u32 = 0x4_0000;
/// Instructions of the straight run.
const N: u64 = 200_000;

fn wr32(mem: &mut PhysMem, a: u32, v: u32) {
    mem.write_bytes(a, &v.to_le_bytes());
}

fn assemble(code: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>) -> Vec<u8> {
    let mut a = CodeAssembler::new(32).unwrap();
    code(&mut a).unwrap();
    a.assemble(CODE as u64).unwrap()
}

/// An endless loop in flat 32-bit mode with paging on: REP MOVSD between two buffers,
/// an ALU mix (ADD/ADC/ROL/XOR/IMUL/SUB, leaving lazy flags pending), stores to a
/// data-dependent address and a memory counter.
fn workload(a: &mut CodeAssembler) -> Result<(), IcedError> {
    let mut top = a.create_label();
    a.set_label(&mut top)?;
    a.mov(esi, SRC)?;
    a.mov(edi, DST)?;
    a.mov(ecx, 300u32)?;
    a.rep().movsd()?;
    a.add(ebx, 0x9E37_79B9u32)?;
    a.adc(edx, ebx)?;
    a.rol(edx, 5)?;
    a.xor(ebx, edx)?;
    a.imul_3(eax, ebx, 31)?;
    a.mov(ebp, ebx)?;
    a.and(ebp, 0xFFCu32)?;
    a.mov(dword_ptr(ebp + SRC), eax)?;
    a.inc(dword_ptr(COUNTER))?;
    a.push(eax)?;
    a.pop(ecx)?;
    a.sub(ebx, edx)?;
    a.jmp(top)
}

/// Flat 32-bit machine, identity-mapped first 4 MiB, `code` at CODE.
fn machine_with(code: &[u8]) -> (Cpu, PhysMem) {
    let mut mem = PhysMem::new_flat(RAM);
    wr32(&mut mem, PD, PT | 3);
    for i in 0..1024 {
        wr32(&mut mem, PT + 4 * i, (i << 12) | 3);
    }
    for i in 0..1024u32 {
        wr32(
            &mut mem,
            SRC + 4 * i,
            i.wrapping_mul(0x0101_0101) ^ 0x5A5A_0000,
        );
    }
    mem.write_bytes(CODE, code);
    let mut cpu = Cpu::new();
    cpu.state.enter_flat32();
    cpu.state.cr3 = PD;
    cpu.state.cr0 |= 1 << 31;
    cpu.flush_caches();
    cpu.state.eip = CODE;
    cpu.state.gpr[ESP] = STACK;
    cpu.state.gpr[EBX] = 0x1234_5678;
    (cpu, mem)
}

fn machine() -> (Cpu, PhysMem) {
    machine_with(&assemble(workload))
}

/// A machine of the right shape to restore into: the reset CPU and zero RAM.
fn fresh() -> (Cpu, PhysMem) {
    (Cpu::new(), PhysMem::new_flat(RAM))
}

fn run(cpu: &mut Cpu, mem: &mut PhysMem, n: u64) {
    assert_eq!(cpu.run(mem, &mut NullBus, n), RunExit::InstructionLimit);
}

fn hash(cpu: &Cpu, mem: &PhysMem) -> [u8; 32] {
    state_hash(&cpu.state, mem.ram(), &[])
}

fn straight_hash() -> [u8; 32] {
    let (mut cpu, mut mem) = machine();
    run(&mut cpu, &mut mem, N);
    assert_eq!(cpu.state.icount, N);
    hash(&cpu, &mem)
}

#[test]
fn determinism_across_a_snapshot() {
    let straight = straight_hash();
    assert_eq!(straight, straight_hash(), "two straight runs agree");
    // Split points include the first instruction, mid-REP-MOVSD ones and the last.
    let mut mid_rep = 0;
    for split in [1, 5, 777, N / 2, N / 2 + 1, N - 1] {
        let (mut cpu, mut mem) = machine();
        run(&mut cpu, &mut mem, split);
        if cpu.state.gpr[ECX] != 0 && cpu.state.eip == CODE + 15 {
            mid_rep += 1;
        }
        let before = hash(&cpu, &mem);
        let snap = save_cpu_ram(&cpu, &mem);
        drop((cpu, mem));
        let (mut cpu, mut mem) = fresh();
        restore_cpu_ram(&snap, &mut cpu, &mut mem).unwrap();
        assert_eq!(hash(&cpu, &mem), before, "split {split}: restored state");
        run(&mut cpu, &mut mem, N - split);
        assert_eq!(
            to_hex(&hash(&cpu, &mem)),
            to_hex(&straight),
            "split {split}: final state"
        );
    }
    assert!(mid_rep > 0, "some split point lies inside REP MOVSD");
}

/// Environment variables the fresh-process test hands to its child.
const ENV_FILE: &str = "X86EMU_SNAPSHOT_TEST_FILE";
const ENV_BUDGET: &str = "X86EMU_SNAPSHOT_TEST_BUDGET";

#[test]
fn determinism_across_a_snapshot_in_a_fresh_process() {
    let straight = straight_hash();
    let dir = std::env::temp_dir().join(format!("x86emu-snapshot-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("half.snap");
    let (mut cpu, mut mem) = machine();
    run(&mut cpu, &mut mem, N / 2 + 3);
    let mut w = SnapshotWriter::new();
    snapshot::add_cpu_ram_sections(&mut w, &cpu, &mem, &[]);
    w.write_to(&path).unwrap();
    drop((cpu, mem));

    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_resume_from_env",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ENV_FILE, &path)
        .env(ENV_BUDGET, (N - (N / 2 + 3)).to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let child_hash = stdout
        .lines()
        .find_map(|l| l.split_once("STATE-HASH ").map(|(_, h)| h.trim()))
        .unwrap_or_else(|| panic!("no hash in the child's output: {stdout}"));
    assert_eq!(child_hash, to_hex(&straight));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Run by `determinism_across_a_snapshot_in_a_fresh_process` in a child process: restore
/// the snapshot file named in the environment, run the budget, print the state hash.
#[test]
#[ignore = "helper: run in a child process by determinism_across_a_snapshot_in_a_fresh_process"]
fn child_resume_from_env() {
    let path = PathBuf::from(std::env::var_os(ENV_FILE).expect("snapshot file in the environment"));
    let budget: u64 = std::env::var(ENV_BUDGET).unwrap().parse().unwrap();
    let bytes = snapshot::read_file(&path).unwrap();
    let (mut cpu, mut mem) = fresh();
    restore_cpu_ram(&bytes, &mut cpu, &mut mem).unwrap();
    run(&mut cpu, &mut mem, budget);
    println!("STATE-HASH {}", to_hex(&hash(&cpu, &mem)));
}

#[test]
fn save_restore_save_is_identical() {
    let (mut cpu, mut mem) = machine();
    run(&mut cpu, &mut mem, 12_345);
    let a = save_cpu_ram(&cpu, &mem);
    let (mut cpu2, mut mem2) = fresh();
    restore_cpu_ram(&a, &mut cpu2, &mut mem2).unwrap();
    let b = save_cpu_ram(&cpu2, &mem2);
    assert_eq!(a, b);
    // The restored CPU is the saved one with its lazy flags folded.
    let mut expect = cpu.state.clone();
    expect.normalize();
    let mut got = cpu2.state.clone();
    got.normalize();
    assert_eq!(got.eflags(), expect.eflags());
    assert_eq!(got.gpr, expect.gpr);
    assert_eq!(got.icount, 12_345);
    assert_eq!(mem2.ram(), mem.ram());
}

#[test]
fn restore_over_a_machine_with_stale_caches() {
    let straight = straight_hash();
    let (mut cpu, mut mem) = machine();
    run(&mut cpu, &mut mem, N / 2);
    let snap = save_cpu_ram(&cpu, &mem);
    // A machine that ran different code at the same addresses: its decoded blocks and
    // TLB entries describe the wrong program.
    let other = assemble(|a| {
        let mut top = a.create_label();
        a.set_label(&mut top)?;
        a.mov(esi, DST)?;
        a.mov(edi, SRC)?;
        a.mov(ecx, 17u32)?;
        a.rep().movsd()?;
        a.add(eax, 3)?;
        a.sub(ebx, eax)?;
        a.nop()?;
        a.jmp(top)
    });
    // Its code page is mapped elsewhere (linear CODE -> physical 0x5000), so a stale TLB
    // entry would fetch from the wrong physical page after the restore.
    let (mut cpu2, mut mem2) = machine_with(&[0xF4]);
    mem2.write_bytes(0x5000, &other);
    wr32(&mut mem2, PT + 4 * (CODE >> 12), 0x5000 | 3);
    run(&mut cpu2, &mut mem2, 50_000);
    restore_cpu_ram(&snap, &mut cpu2, &mut mem2).unwrap();
    run(&mut cpu2, &mut mem2, N - N / 2);
    assert_eq!(hash(&cpu2, &mem2), straight);
}

fn small_snapshot() -> Vec<u8> {
    let (mut cpu, mut mem) = machine();
    run(&mut cpu, &mut mem, 1_000);
    let mut small_mem = PhysMem::new_flat(64 << 10);
    small_mem.write_bytes(0, &mem.ram()[..64 << 10]);
    save_cpu_ram(&cpu, &small_mem)
}

fn try_restore(bytes: &[u8], ram: usize) -> Result<(), SnapshotError> {
    let mut cpu = Cpu::new();
    let mut mem = PhysMem::new_flat(ram);
    restore_cpu_ram(bytes, &mut cpu, &mut mem)
}

#[test]
fn every_truncation_is_an_error() {
    let snap = small_snapshot();
    try_restore(&snap, 64 << 10).unwrap();
    for len in 0..snap.len() {
        let e = try_restore(&snap[..len], 64 << 10).unwrap_err().to_string();
        assert!(
            e.contains("truncated") || e.contains("too short"),
            "length {len}: {e}"
        );
    }
}

#[test]
fn every_flipped_byte_is_an_error() {
    let snap = small_snapshot();
    // A small snapshot: flip every byte (each bit pattern once for a few positions).
    assert!(snap.len() < 20_000, "{} bytes", snap.len());
    for pos in 0..snap.len() {
        for mask in [0x01u8, 0x80, 0xFF] {
            if pos >= 40 && mask != 0x01 {
                continue;
            }
            let mut v = snap.clone();
            v[pos] ^= mask;
            let e = try_restore(&v, 64 << 10).unwrap_err();
            let s = e.to_string();
            assert!(!s.is_empty());
            if pos >= 24 {
                assert!(
                    matches!(e, SnapshotError::ChecksumMismatch),
                    "byte {pos}: {s}"
                );
            }
        }
    }
}

#[test]
fn flipped_bytes_in_a_large_snapshot() {
    let (mut cpu, mut mem) = machine();
    run(&mut cpu, &mut mem, 30_000);
    let snap = save_cpu_ram(&cpu, &mem);
    // A few thousand positions spread over the file, plus the header.
    let step = (snap.len() / 3000).max(1);
    let positions = (0..snap.len()).step_by(step).chain(0..24);
    let mut n = 0;
    for pos in positions {
        let mut v = snap.clone();
        v[pos] = v[pos].wrapping_add(0x3D);
        assert!(try_restore(&v, RAM).is_err(), "byte {pos}");
        n += 1;
    }
    assert!(n >= 2000, "{n} positions");
}

/// Rebuild a snapshot's container with `edit` applied to its section list.
fn rebuild(bytes: &[u8], edit: impl FnOnce(&mut Vec<(String, bool, u32, Vec<u8>)>)) -> Vec<u8> {
    let r = SnapshotReader::parse(bytes).unwrap();
    let mut secs: Vec<_> = r
        .sections()
        .iter()
        .map(|s| (s.name.to_string(), s.required, s.version, s.data.to_vec()))
        .collect();
    edit(&mut secs);
    let mut w = SnapshotWriter::new();
    for (name, required, version, data) in secs {
        if required {
            w.add_section(&name, version, data);
        } else {
            w.add_optional_section(&name, version, data);
        }
    }
    w.finish()
}

#[test]
fn section_versions_and_unknown_sections() {
    let snap = small_snapshot();
    assert_eq!(rebuild(&snap, |_| {}), snap, "rebuilding is faithful");

    let newer = rebuild(&snap, |s| {
        s.iter_mut().find(|x| x.0 == "cpu").unwrap().2 = 7;
    });
    assert_eq!(
        try_restore(&newer, 64 << 10).unwrap_err().to_string(),
        format!(
            "section `cpu`: version 7 is newer than this build supports (max {})",
            x86emu::snapshot::CPU_VERSION
        )
    );

    let optional = rebuild(&snap, |s| {
        s.insert(1, ("x-future.info".into(), false, 3, vec![1, 2, 3]));
        s.push(("zz-stats".into(), false, 1, vec![]));
    });
    try_restore(&optional, 64 << 10).unwrap();

    let required = rebuild(&snap, |s| {
        s.push(("x-future.dev".into(), true, 1, vec![9]));
    });
    assert_eq!(
        try_restore(&required, 64 << 10).unwrap_err().to_string(),
        "section `x-future.dev`: required by the snapshot but unknown to this build"
    );

    let missing = rebuild(&snap, |s| s.retain(|x| x.0 != "ram"));
    assert_eq!(
        try_restore(&missing, 64 << 10).unwrap_err().to_string(),
        "section `ram` is missing"
    );

    // A checksum-valid but undecodable CPU payload names the section.
    let bad_cpu = rebuild(&snap, |s| {
        s.iter_mut().find(|x| x.0 == "cpu").unwrap().3.truncate(10);
    });
    let e = try_restore(&bad_cpu, 64 << 10).unwrap_err().to_string();
    assert!(e.starts_with("section `cpu`: cannot decode"), "{e}");
}

#[test]
fn configuration_is_checked_before_anything_changes() {
    let snap = small_snapshot();
    assert_eq!(
        try_restore(&snap, 128 << 10).unwrap_err().to_string(),
        "machine configuration mismatch: the snapshot was taken with 65536 bytes of RAM, this machine has 131072 bytes"
    );
    let (mut cpu, mut mem) = machine();
    run(&mut cpu, &mut mem, 100);
    let with_cfg = snapshot::save_cpu_ram_with_config(&cpu, &mem, b"pc-i440fx cpus=1");
    let (mut cpu2, mut mem2) = machine();
    let before = (cpu2.state.clone(), mem2.ram().to_vec());
    let e =
        snapshot::restore_cpu_ram_with_config(&with_cfg, &mut cpu2, &mut mem2, b"pc-i440fx cpus=2")
            .unwrap_err()
            .to_string();
    assert_eq!(
        e,
        "machine configuration mismatch: the snapshot's machine configuration (\"pc-i440fx cpus=1\") differs from this machine's (\"pc-i440fx cpus=2\")"
    );
    // A snapshot with a bad RAM stream is refused with the machine left as it was.
    let bad_ram = rebuild(&with_cfg, |s| {
        let ram = &mut s.iter_mut().find(|x| x.0 == "ram").unwrap().3;
        ram.pop();
    });
    let e =
        snapshot::restore_cpu_ram_with_config(&bad_ram, &mut cpu2, &mut mem2, b"pc-i440fx cpus=1")
            .unwrap_err()
            .to_string();
    assert!(e.starts_with("section `ram`: "), "{e}");
    assert_eq!(cpu2.state, before.0);
    assert!(mem2.ram() == &before.1[..]);
    // With the right configuration it restores.
    snapshot::restore_cpu_ram_with_config(&with_cfg, &mut cpu2, &mut mem2, b"pc-i440fx cpus=1")
        .unwrap();
    assert_eq!(hash(&cpu2, &mem2), hash(&cpu, &mem));
}

#[test]
fn zero_pages_cost_nothing() {
    let mut mem = PhysMem::new_flat(64 << 20);
    let mut page = [0u8; 4096];
    for (i, b) in page.iter_mut().enumerate() {
        *b = (i * 7 % 251) as u8;
    }
    mem.write_bytes(0x123_4000, &page);
    let snap = save_cpu_ram(&Cpu::new(), &mem);
    assert!(snap.len() < 2048, "{} bytes", snap.len());
    let mut mem2 = PhysMem::new_flat(64 << 20);
    let mut cpu2 = Cpu::new();
    restore_cpu_ram(&snap, &mut cpu2, &mut mem2).unwrap();
    assert!(mem2.ram() == mem.ram());
}
