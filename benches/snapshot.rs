//! Snapshot size, save time and restore-to-running time for the Linux test guest booted
//! to its shell on 128 MiB (`cargo bench --bench snapshot`; needs `target/linux-guest`,
//! built by `test-roms/linux/build.sh`, or `X86EMU_LINUX_GUEST_DIR`).
//!
//! Setup boots the guest (a few minutes) until it prints `X86EMU-GUEST-READY` on the
//! serial console, then prints the snapshot's size by section next to the size of the
//! guest's non-zero RAM compressed with zstd (level 3, one frame), and measures:
//! - `save`: `PcMachine::save_snapshot` (the file's bytes in memory, no disk I/O);
//! - `restore_to_running`: `PcMachine::restore_snapshot` into a second machine built with
//!   the same configuration, plus its first slice of execution (100,000 instructions);
//! - `restore`: the restore alone.

use criterion::{criterion_group, criterion_main, Criterion};
use std::path::{Path, PathBuf};
use std::time::Instant;
use x86emu::devices::ide::IdeDrives;
use x86emu::disk::{CowDisk, RawFileDisk};
use x86emu::machine::{BootSource, MachineExit, PcConfig, PcMachine};
use x86emu::snapshot::SnapshotReader;

const RAM_MIB: u64 = 128;
/// Give up booting after this many instructions.
const BOOT_LIMIT: u64 = 20_000_000_000;
const FIRST_SLICE: u64 = 100_000;

fn guest_dir() -> PathBuf {
    let d = std::env::var_os("X86EMU_LINUX_GUEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/linux-guest"));
    assert!(
        d.join("bzImage").exists(),
        "{} is missing: build the Linux test guest with test-roms/linux/build.sh",
        d.join("bzImage").display()
    );
    d
}

fn machine(g: &Path) -> PcMachine {
    let mut drives = IdeDrives::new();
    let base = RawFileDisk::open(&g.join("disk.img")).unwrap();
    drives
        .attach_hard_disk(0, 0, Box::new(CowDisk::new(Box::new(base))))
        .unwrap();
    let boot = BootSource::Kernel {
        kernel: std::fs::read(g.join("bzImage")).unwrap(),
        initrd: Some(std::fs::read(g.join("initrd.img")).unwrap()),
        cmdline: std::fs::read_to_string(g.join("cmdline.txt"))
            .unwrap()
            .trim()
            .to_string(),
    };
    let config = PcConfig {
        ram_size: RAM_MIB << 20,
        ..PcConfig::default()
    };
    PcMachine::new(config, boot, drives).unwrap()
}

/// Boot to the shell: run until the guest's ready marker appears on COM1.
fn boot_to_shell(m: &mut PcMachine) {
    let t = Instant::now();
    let mut out = Vec::new();
    while !String::from_utf8_lossy(&out).contains("X86EMU-GUEST-READY") {
        let exit = m.run(20_000_000);
        out.extend(m.board.com1.take_output());
        assert!(
            matches!(exit, MachineExit::InstructionLimit | MachineExit::Idle),
            "boot stopped: {exit:?}"
        );
        assert!(
            m.cpu.state.icount < BOOT_LIMIT,
            "no shell after {BOOT_LIMIT}"
        );
    }
    // Let the shell settle at its prompt.
    m.run(50_000_000);
    m.board.com1.take_output();
    eprintln!(
        "booted to the shell at instruction {} in {:.1?}",
        m.cpu.state.icount,
        t.elapsed()
    );
}

/// zstd (level 3, one frame) of the RAM's non-zero 4 KiB pages: what the snapshot's size
/// is measured against.
fn compressed_nonzero_ram(ram: &[u8]) -> (usize, usize) {
    let pages: Vec<u8> = ram
        .chunks(4096)
        .filter(|p| p.iter().any(|&b| b != 0))
        .flatten()
        .copied()
        .collect();
    (pages.len(), zstd::bulk::compress(&pages, 3).unwrap().len())
}

fn bench_snapshot(c: &mut Criterion) {
    let g = guest_dir();
    let mut m = machine(&g);
    boot_to_shell(&mut m);
    let snap = m.save_snapshot();
    let (nonzero, compressed) = compressed_nonzero_ram(m.mem.ram());
    eprintln!(
        "snapshot: {} bytes; guest RAM {} MiB, non-zero {} bytes, zstd-3 of the non-zero \
         pages {} bytes (snapshot / that = {:.3})",
        snap.len(),
        RAM_MIB,
        nonzero,
        compressed,
        snap.len() as f64 / compressed as f64
    );
    for s in SnapshotReader::parse(&snap).unwrap().sections() {
        eprintln!("  {:<8} v{} {:>10} bytes", s.name, s.version, s.data.len());
    }

    let mut group = c.benchmark_group("snapshot_linux_128m");
    group.sample_size(10);
    group.bench_function("save", |b| b.iter(|| m.save_snapshot()));

    let mut m2 = machine(&g);
    m2.restore_snapshot(&snap).unwrap();
    assert_eq!(m2.state_hash(), m.state_hash());
    group.bench_function("restore", |b| {
        b.iter(|| m2.restore_snapshot(&snap).unwrap())
    });
    group.bench_function("restore_to_running", |b| {
        b.iter(|| {
            m2.restore_snapshot(&snap).unwrap();
            let exit = m2.run(FIRST_SLICE);
            assert!(matches!(
                exit,
                MachineExit::InstructionLimit | MachineExit::Idle
            ));
        })
    });
    group.finish();
}

criterion_group!(benches, bench_snapshot);
criterion_main!(benches);
