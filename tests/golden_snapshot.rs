//! The golden snapshot: the guard for snapshot format compatibility.
//!
//! `tests/fixtures/golden-pc.snap` was taken from the PC machine running
//! `test-roms/golden.asm` (binary: `tests/fixtures/golden-rom.bin`) on 2 MiB of RAM with
//! a generated 64 KiB hard disk, in the middle of its run (timer interrupts on, a disk
//! sector in the copy-on-write overlay, x87 state live). Every build must load it and
//! run it to the recorded end (`tests/fixtures/golden-pc.expect`): the same serial
//! output, the same exit, and the same final hash over RAM, registers and output.
//!
//! The final hash deliberately covers nothing whose *encoding* may change (section
//! payloads): a format change must keep this test passing through its upgrade path. The
//! fixture is never regenerated casually (docs/snapshot-format.md, "The golden
//! snapshot"); regenerating it (`X86EMU_REGENERATE_GOLDEN=1 cargo test --test
//! golden_snapshot -- --ignored regenerate`) needs a reason in the commit message.

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use x86emu::devices::ide::IdeDrives;
use x86emu::disk::{CowDisk, MemDisk};
use x86emu::machine::{BootSource, MachineExit, PcConfig, PcMachine, SnapshotSummary};
use x86emu::snapshot::to_hex;

const RAM: u64 = 2 << 20;
const DISK_LEN: usize = 64 << 10;
/// Where the fixture is taken: once the guest has printed this.
const SNAPSHOT_AFTER: &str = "tick 75 ";
/// Far more than the run needs: the guest stops itself through isa-debug-exit.
const BUDGET: u64 = 2_000_000_000;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The hard disk: a fixed pattern (its SHA-256 is part of the snapshot's configuration).
fn disk_image() -> Vec<u8> {
    let mut x = 0x2545_F491u32;
    (0..DISK_LEN)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

fn machine(rom: Vec<u8>) -> PcMachine {
    let mut drives = IdeDrives::new();
    drives
        .attach_hard_disk(
            0,
            0,
            Box::new(CowDisk::new(Box::new(MemDisk::new(disk_image())))),
        )
        .unwrap();
    let config = PcConfig {
        ram_size: RAM,
        // The fixture was taken before CPU models existed, on the one fixed model that is
        // now called `legacy` (its `config` section upgrades to that model).
        cpu_model: x86emu::cpu::CpuModel::Legacy,
        ..PcConfig::default()
    };
    PcMachine::new(config, BootSource::Bios(rom), drives).unwrap()
}

fn committed_rom() -> Vec<u8> {
    std::fs::read(fixtures().join("golden-rom.bin")).unwrap()
}

/// Run until the guest exits; returns the exit value and the serial output.
fn run_to_end(m: &mut PcMachine) -> (u32, Vec<u8>) {
    let mut out = Vec::new();
    loop {
        let exit = m.run(1_000_000);
        out.extend(m.board.com1.take_output());
        match exit {
            MachineExit::InstructionLimit if m.cpu.state.icount < BUDGET => {}
            MachineExit::DebugExit(v) => return (v, out),
            other => panic!(
                "the golden ROM stopped with {other:?} at {}; output so far:\n{}",
                m.cpu.state.icount,
                String::from_utf8_lossy(&out)
            ),
        }
    }
}

/// The final hash: SHA-256 over RAM, the general registers, EIP, EFLAGS, the
/// instruction count and the serial output — state whose meaning no format change
/// touches.
fn final_hash(m: &PcMachine, output: &[u8]) -> String {
    let s = &m.cpu.state;
    let mut h = Sha256::new();
    h.update(m.mem.ram());
    for r in s.gpr {
        h.update(r.to_le_bytes());
    }
    h.update(s.eip.to_le_bytes());
    h.update(s.eflags().to_le_bytes());
    h.update(s.icount.to_le_bytes());
    h.update(output);
    to_hex(&h.finalize())
}

/// The recorded end: `key=value` lines.
struct Expect {
    exit: u32,
    icount: u64,
    final_hash: String,
    output: String,
}

impl Expect {
    fn text(&self) -> String {
        format!(
            "# The recorded end of tests/fixtures/golden-pc.snap (see tests/golden_snapshot.rs).\n\
             exit={}\nicount={}\nfinal_hash={}\noutput={}\n",
            self.exit,
            self.icount,
            self.final_hash,
            self.output.escape_default()
        )
    }

    fn parse(text: &str) -> Expect {
        let get = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(k)?.strip_prefix('='))
                .unwrap_or_else(|| panic!("golden-pc.expect has no `{k}=` line"))
                .to_string()
        };
        Expect {
            exit: get("exit").parse().unwrap(),
            icount: get("icount").parse().unwrap(),
            final_hash: get("final_hash"),
            output: unescape(&get("output")),
        }
    }
}

fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some(c) => out.push(c),
            None => {}
        }
    }
    out
}

#[test]
fn golden_snapshot_loads_and_runs_to_the_recorded_end() {
    let bytes = std::fs::read(fixtures().join("golden-pc.snap")).unwrap();
    let want =
        Expect::parse(&std::fs::read_to_string(fixtures().join("golden-pc.expect")).unwrap());
    // The file alone: every section decodes (through its upgrades).
    let summary = SnapshotSummary::of(&bytes).unwrap_or_else(|e| {
        panic!(
            "this build cannot read the golden snapshot: {e}\n\
             A format change must keep old snapshots loading: bump the section's version \
             and add an upgrade (docs/snapshot-format.md, \"Compatibility policy\")."
        )
    });
    assert_eq!(summary.config.ram_size, RAM);

    let mut m = machine(committed_rom());
    m.restore_snapshot(&bytes).unwrap_or_else(|e| {
        panic!(
            "this build cannot restore the golden snapshot: {e}\n\
             A format change must keep old snapshots loading: bump the section's version \
             and add an upgrade (docs/snapshot-format.md, \"Compatibility policy\")."
        )
    });
    assert_eq!(m.state_hash(), summary.state_hash);
    assert_eq!(m.cpu.state.icount, summary.icount);
    let (exit, out) = run_to_end(&mut m);
    let text = String::from_utf8_lossy(&out);
    assert_eq!(
        text, want.output,
        "serial output after the golden snapshot differs"
    );
    assert_eq!(exit, want.exit);
    assert_eq!(m.cpu.state.icount, want.icount);
    assert_eq!(
        final_hash(&m, &out),
        want.final_hash,
        "the golden snapshot ran to a different end"
    );
}

/// The same ROM booted now reaches the same end as the fixture's run: the fixture's
/// second half is what this build computes too (so a failure of the test above is about
/// loading, not about the ROM).
#[test]
fn golden_rom_boots_to_the_recorded_end() {
    let want =
        Expect::parse(&std::fs::read_to_string(fixtures().join("golden-pc.expect")).unwrap());
    let mut m = machine(committed_rom());
    let (exit, out) = run_to_end(&mut m);
    let text = String::from_utf8_lossy(&out);
    assert!(text.ends_with(&want.output), "{text}");
    let after = text.len() - want.output.len();
    assert!(text[..after].contains(SNAPSHOT_AFTER), "{text}");
    assert_eq!(exit, want.exit);
    assert_eq!(m.cpu.state.icount, want.icount);
    let tail = &out[after..];
    assert_eq!(final_hash(&m, tail), want.final_hash);
}

/// The committed ROM is `test-roms/golden.asm` assembled (needs `nasm`).
#[test]
fn golden_rom_matches_its_source() {
    let dir = std::env::temp_dir().join(format!("x86emu-golden-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bin = dir.join("golden.bin");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("test-roms/golden.asm");
    let st = std::process::Command::new("nasm")
        .args(["-f", "bin", "-o"])
        .arg(&bin)
        .arg(&src)
        .status()
        .expect("nasm is needed (Debian package `nasm`)");
    assert!(st.success());
    let built = std::fs::read(&bin).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(
        built == committed_rom(),
        "test-roms/golden.asm no longer assembles to tests/fixtures/golden-rom.bin: the \
         golden snapshot records the ROM's hash, so the ROM must not change"
    );
}

/// Writes the fixture: `X86EMU_REGENERATE_GOLDEN=1 cargo test --test golden_snapshot --
/// --ignored regenerate`. Only with a reason written in the commit message.
#[test]
#[ignore = "regenerates the golden fixture; see docs/snapshot-format.md"]
fn regenerate() {
    assert!(
        std::env::var_os("X86EMU_REGENERATE_GOLDEN").is_some(),
        "set X86EMU_REGENERATE_GOLDEN=1 to overwrite the golden fixture"
    );
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("test-roms/golden.asm");
    let rom_path = fixtures().join("golden-rom.bin");
    std::fs::create_dir_all(fixtures()).unwrap();
    let st = std::process::Command::new("nasm")
        .args(["-f", "bin", "-o"])
        .arg(&rom_path)
        .arg(&src)
        .status()
        .expect("nasm");
    assert!(st.success());
    let mut m = machine(committed_rom());
    let mut out = Vec::new();
    while !String::from_utf8_lossy(&out).contains(SNAPSHOT_AFTER) {
        assert_eq!(m.run(10_000), MachineExit::InstructionLimit);
        out.extend(m.board.com1.take_output());
    }
    let snap = m.save_snapshot();
    x86emu::snapshot::write_atomic(&fixtures().join("golden-pc.snap"), &snap).unwrap();
    let (exit, rest) = run_to_end(&mut m);
    let expect = Expect {
        exit,
        icount: m.cpu.state.icount,
        final_hash: final_hash(&m, &rest),
        output: String::from_utf8(rest).unwrap(),
    };
    std::fs::write(fixtures().join("golden-pc.expect"), expect.text()).unwrap();
    eprintln!(
        "golden snapshot: {} bytes at instruction {}; output before it:\n{}",
        snap.len(),
        x86emu::machine::SnapshotSummary::of(&snap).unwrap().icount,
        String::from_utf8_lossy(&out)
    );
}
