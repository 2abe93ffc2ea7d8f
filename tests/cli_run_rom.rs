//! `x86emu run-rom` end to end: our own ROMs in `test-roms/`, assembled with NASM
//! (Debian package `nasm`; CI installs it).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

/// Assemble `test-roms/NAME.asm` once per test process (tests run in parallel and
/// must not rewrite a ROM another test is running).
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
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("test-roms")
        .join(format!("{name}.asm"));
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{name}.bin"));
    let r = Command::new("nasm")
        .arg("-f")
        .arg("bin")
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
    out
}

fn x86emu(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_x86emu"))
        .args(args)
        .output()
        .expect("run x86emu")
}

#[test]
fn hello_rom_prints_and_exits_through_debug_exit() {
    let rom = assemble("hello");
    let out = x86emu(&["run-rom", rom.to_str().unwrap()]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\n");
    // isa-debug-exit: value 0 -> (0 << 1) | 1.
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn instruction_limit_exits_124() {
    let rom = assemble("hello");
    let out = x86emu(&["run-rom", rom.to_str().unwrap(), "--max-instructions", "5"]);
    assert_eq!(out.status.code(), Some(124));
    assert!(String::from_utf8_lossy(&out.stderr).contains("instruction limit"));
}

#[test]
fn bad_rom_size_is_a_clear_error() {
    let p = Path::new(env!("CARGO_TARGET_TMPDIR")).join("short.rom");
    std::fs::write(&p, [0u8; 1000]).unwrap();
    let out = x86emu(&["run-rom", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("short.rom") && err.contains("64 KiB"), "{err}");
    let out = x86emu(&["run-rom", "/nonexistent/rom.bin"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/rom.bin"));
}

#[test]
fn multiboot_kernel_boots_directly_with_cmdline_and_module() {
    let kernel = assemble("multiboot");
    let module = Path::new(env!("CARGO_TARGET_TMPDIR")).join("mod0.bin");
    std::fs::write(&module, b"MOD0 module payload").unwrap();
    let out = x86emu(&[
        "boot",
        "--kernel",
        kernel.to_str().unwrap(),
        "--initrd",
        module.to_str().unwrap(),
        "--append",
        "hello mb",
        "--display",
        "none",
        "--max-instructions",
        "10000000",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("multiboot: ok"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // isa-debug-exit with value 0.
    assert_eq!(out.status.code(), Some(1));
}
