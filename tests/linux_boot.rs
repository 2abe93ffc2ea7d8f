//! Boot Debian's i386 Linux (built by `test-roms/linux/build.sh`, which `.ci/run` runs)
//! through the `x86emu boot` command line, drive its serial console with piped
//! commands, and check the answers: direct kernel boot, SeaBIOS + SYSLINUX and SeaBIOS +
//! GRUB 2 from the IDE disk, and isolinux from the ATAPI CD-ROM. Each run is bounded by
//! an instruction limit (virtual time), never by a wall-clock assertion.

mod common;

use common::guest::linux_guest_dir as guest_dir;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Virtual-time bound for one boot and a few commands (100 s at the default 100 MHz).
const MAX_INSTRUCTIONS: &str = "10000000000";

/// Run `x86emu boot ARGS` with `commands` on stdin; returns (exit code, serial output).
fn boot(args: &[&str], commands: &str) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_x86emu"))
        .arg("boot")
        .args(args)
        .args(["--display", "none", "--max-instructions", MAX_INSTRUCTIONS])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run x86emu");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(commands.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code(), text)
}

fn md5_of_prefix(path: &Path, bytes: usize) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "head -c {bytes} '{}' | md5sum | cut -d' ' -f1",
            path.display()
        ))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn assert_ok(code: Option<i32>, text: &str, wants: &[&str]) {
    for w in wants {
        assert!(
            text.contains(w),
            "missing {w:?} in the guest output:\n{text}"
        );
    }
    assert_eq!(code, Some(0), "x86emu did not exit 0 (poweroff):\n{text}");
}

#[test]
fn direct_linux_boot_runs_commands_reads_the_disk_and_powers_off() {
    let g = guest_dir();
    let cmdline = std::fs::read_to_string(g.join("cmdline.txt")).unwrap();
    let want = md5_of_prefix(&g.join("disk.img"), 4 << 20);
    let (code, text) = boot(
        &[
            g.join("disk.img").to_str().unwrap(),
            "--kernel",
            g.join("bzImage").to_str().unwrap(),
            "--initrd",
            g.join("initrd.img").to_str().unwrap(),
            "--append",
            cmdline.trim(),
        ],
        &format!(
            "uname -a\ncat /proc/cpuinfo\ncat /proc/mtrr\n{DMESG_MTRR_PAT}\n\
             dd if=/dev/sda bs=1M count=4 2>/dev/null | md5sum\npoweroff -f\n"
        ),
    );
    assert_ok(
        code,
        &text,
        &[
            "X86EMU-GUEST-READY",
            "Linux x86emu-guest 6.1",
            "i686 GNU/Linux",
            // The default CPU model.
            "model name\t: x86emu virtual Intel Pentium M (Dothan)",
            "cpu family\t: 6\r",
            "model\t\t: 13\r",
            "cache size\t: 2048 KB",
            // The MTRRs as the firmware-equivalent setup left them, read by Linux.
            "reg00: base=0x0e0000000 ( 3584MB), size=  512MB, count=1: uncachable",
            &want,
        ],
    );
    let flags = cpuinfo_flags(&text);
    for f in [
        "mtrr", "mca", "cmov", "clflush", "mmx", "fxsr", "sse", "sse2", "nx",
    ] {
        assert!(
            flags.contains(&f),
            "/proc/cpuinfo flags lack {f}: {flags:?}"
        );
    }
    // Linux clears PAT itself on family 6 models below 15 (the Pentium III/Pentium M/
    // Core Duo PAT erratum), so it says so and does not use it; nothing else about MTRRs
    // or PAT, and no MSR the CPU lacks was touched.
    check_mtrr_pat_dmesg(&text, &["x86/PAT: PAT not supported by the CPU."]);
}

/// The family-15 model: Linux uses PAT there (on family 6 below model 15 it does not).
#[test]
fn direct_linux_boot_on_a_pentium4_uses_pat() {
    let g = guest_dir();
    let cmdline = std::fs::read_to_string(g.join("cmdline.txt")).unwrap();
    let (code, text) = boot(
        &[
            "--cpu",
            "pentium4",
            "--kernel",
            g.join("bzImage").to_str().unwrap(),
            "--initrd",
            g.join("initrd.img").to_str().unwrap(),
            "--append",
            cmdline.trim(),
        ],
        &format!("cat /proc/cpuinfo\n{DMESG_MTRR_PAT}\npoweroff -f\n"),
    );
    assert_ok(
        code,
        &text,
        &[
            "X86EMU-GUEST-READY",
            "model name\t: x86emu virtual Intel Pentium 4 (Northwood)",
            "cpu family\t: 15\r",
            "model\t\t: 2\r",
            "cache size\t: 512 KB",
            // Linux's own PAT layout, written to IA32_PAT.
            "x86/PAT: Configuration [0-7]: WB  WC  UC- UC  WB  WC  UC- UC",
        ],
    );
    let flags = cpuinfo_flags(&text);
    for f in ["mtrr", "pat", "clflush", "sse", "sse2"] {
        assert!(
            flags.contains(&f),
            "/proc/cpuinfo flags lack {f}: {flags:?}"
        );
    }
    assert!(!flags.contains(&"nx"), "the Northwood has no NX: {flags:?}");
    check_mtrr_pat_dmesg(&text, &[]);
}

/// A shell command printing the kernel log lines about MTRRs, PAT and unchecked MSR
/// accesses between two marker lines (the quotes keep the markers out of the echo of
/// the typed command).
const DMESG_MTRR_PAT: &str =
    "echo DMESG-BEG''IN; dmesg | grep -i -E 'mtrr|x86/pat|unchecked msr'; echo DMESG-E''ND";

/// The `flags` of /proc/cpuinfo in `text`.
fn cpuinfo_flags(text: &str) -> Vec<&str> {
    text.lines()
        .find_map(|l| l.strip_prefix("flags\t\t: "))
        .unwrap_or_else(|| panic!("no flags line in /proc/cpuinfo:\n{text}"))
        .split_whitespace()
        .collect()
}

/// The kernel log lines printed by [`DMESG_MTRR_PAT`] are the PAT configuration line and
/// `allowed` lines only.
fn check_mtrr_pat_dmesg(text: &str, allowed: &[&str]) {
    let start = text
        .find("\nDMESG-BEGIN")
        .unwrap_or_else(|| panic!("no dmesg output:\n{text}"));
    let block = &text[start + 12..];
    let block = &block[..block.find("\nDMESG-END").expect("end of the dmesg output")];
    for line in block.lines().map(str::trim).filter(|l| !l.is_empty()) {
        // "[    0.000000] x86/PAT: ..." without the timestamp.
        let msg = line.split_once("] ").map_or(line, |(_, m)| m).trim_end();
        assert!(
            msg.starts_with("x86/PAT: Configuration [0-7]: ") || allowed.contains(&msg),
            "the kernel complains about MTRRs, PAT or MSRs: {line:?}\n{text}"
        );
    }
}

#[test]
fn seabios_boots_linux_from_the_ide_disk() {
    let g = guest_dir();
    let (code, text) = boot(
        &[g.join("disk.img").to_str().unwrap()],
        "uname -r\npoweroff -f\n",
    );
    assert_ok(code, &text, &["X86EMU-GUEST-READY", "6.1.0-"]);
}

#[test]
fn seabios_boots_linux_through_grub() {
    let g = guest_dir();
    let (code, text) = boot(
        &[g.join("grub.img").to_str().unwrap()],
        "uname -r\npoweroff -f\n",
    );
    assert_ok(
        code,
        &text,
        &["GRUB booting Linux", "X86EMU-GUEST-READY", "6.1.0-"],
    );
}

#[test]
fn seabios_boots_linux_from_an_iso_and_reads_the_cd() {
    let g = guest_dir();
    let want = md5_of_prefix(&g.join("boot.iso"), 2 << 20);
    let (code, text) = boot(
        &["--cdrom", g.join("boot.iso").to_str().unwrap()],
        "dd if=/dev/sr0 bs=1M count=2 2>/dev/null | md5sum\npoweroff -f\n",
    );
    assert_ok(code, &text, &["X86EMU-GUEST-READY", &want]);
}
