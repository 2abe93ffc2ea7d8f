//! Protected-mode conformance ROMs (`test-roms/pm/*.asm`), run end to end with
//! `x86emu run-rom`. Each ROM prints `ok NAME` / `FAIL NAME: expected ... got ...` per check
//! on port 0xE9 and exits through isa-debug-exit (port 0xF4) with 0 when every check
//! passed (process status 1) or 1 when any failed (status 3). The shared framework is
//! `test-roms/pm/lib.inc`; what each ROM covers is described at the top of its source.
//!
//! Needs NASM (Debian package `nasm`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// Instruction budget per ROM: generous (the ROMs retire well under a million
/// instructions) but bounded, so a ROM stuck in a loop fails quickly.
const MAX_INSTRUCTIONS: &str = "50000000";

fn rom_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("test-roms")
        .join("pm")
}

/// Assemble `test-roms/pm/NAME.asm` once per test process. Tests run in parallel; the
/// lock also keeps two tests from writing the same output file.
fn assemble(name: &str) -> PathBuf {
    static BUILT: Mutex<Vec<(String, PathBuf)>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, p)) = built.iter().find(|(n, _)| n == name) {
        return p.clone();
    }
    let p = assemble_uncached(name);
    built.push((name.to_string(), p.clone()));
    p
}

fn assemble_uncached(name: &str) -> PathBuf {
    let dir = rom_dir();
    let src = dir.join(format!("{name}.asm"));
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("pm-{name}.bin"));
    // NASM wants the include directory with a trailing separator.
    let inc = format!("{}/", dir.display());
    let r = Command::new("nasm")
        .arg("-f")
        .arg("bin")
        .arg("-I")
        .arg(&inc)
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run nasm ({e}): install it with `apt-get install nasm`")
        });
    assert!(
        r.status.success(),
        "nasm failed on {}:\n{}",
        src.display(),
        String::from_utf8_lossy(&r.stderr)
    );
    let len = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    assert_eq!(
        len,
        65536,
        "{} did not assemble to a 64 KiB ROM",
        src.display()
    );
    out
}

/// At most the first 1000 and the last 200 lines of a (runaway) output.
fn clip(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() <= 1200 {
        return text.to_string();
    }
    format!(
        "{}\n... {} lines omitted ...\n{}\n",
        lines[..1000].join("\n"),
        lines.len() - 1200,
        lines[lines.len() - 200..].join("\n")
    )
}

/// Run one ROM and require "all checks passed" (exit status 1, no FAIL line).
fn run_rom(name: &str) {
    let rom = assemble(name);
    let out = Command::new(env!("CARGO_BIN_EXE_x86emu"))
        .args(["run-rom", rom.to_str().unwrap()])
        .args(["--max-instructions", MAX_INSTRUCTIONS])
        .output()
        .expect("run x86emu");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    print!("{}", clip(&stdout));
    eprint!("{}", clip(&stderr));
    let code = out.status.code();
    let fails: Vec<&str> = stdout.lines().filter(|l| l.starts_with("FAIL")).collect();
    let passed = stdout.lines().filter(|l| l.starts_with("ok ")).count();
    let why = match code {
        Some(1) if fails.is_empty() => return,
        Some(1) => "exit status 1 (pass) but FAIL lines were printed".to_string(),
        Some(3) => format!("{} check(s) failed", fails.len()),
        Some(2) => "the emulator stopped (unsupported feature or shutdown)".to_string(),
        Some(124) => "instruction limit reached (the ROM looped or never finished)".to_string(),
        Some(0) => "the CPU halted instead of exiting through port 0xF4".to_string(),
        other => format!("unexpected exit status {other:?}"),
    };
    let fails: Vec<&str> = fails.into_iter().take(200).collect();
    panic!(
        "test-roms/pm/{name}.asm: {why}; {passed} passed\n{}\n--- stderr ---\n{}",
        fails.join("\n"),
        clip(&stderr)
    );
}

#[test]
fn pm_seg() {
    run_rom("seg");
}

#[test]
fn pm_gates() {
    run_rom("gates");
}

#[test]
fn pm_task() {
    run_rom("task");
}

#[test]
fn pm_v86() {
    run_rom("v86");
}

#[test]
fn pm_iobitmap() {
    run_rom("iobitmap");
}

#[test]
fn pm_paging() {
    run_rom("paging");
}

#[test]
fn pm_debug() {
    run_rom("debug");
}

#[test]
fn pm_faults() {
    run_rom("faults");
}
