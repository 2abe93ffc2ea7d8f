//! Boot Debian's i386 Linux (built by `test-roms/linux/build.sh`, which `.ci/run` runs)
//! through the `x86emu boot` command line, drive its serial console with piped
//! commands, and check the answers: direct kernel boot, SeaBIOS + SYSLINUX and SeaBIOS +
//! GRUB 2 from the IDE disk, and isolinux from the ATAPI CD-ROM. Each run is bounded by
//! an instruction limit (virtual time), never by a wall-clock assertion.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Virtual-time bound for one boot and a few commands (100 s at the default 100 MHz).
const MAX_INSTRUCTIONS: &str = "10000000000";

fn guest_dir() -> PathBuf {
    let d = std::env::var_os("X86EMU_LINUX_GUEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/linux-guest"));
    for f in [
        "bzImage",
        "initrd.img",
        "disk.img",
        "grub.img",
        "boot.iso",
        "cmdline.txt",
    ] {
        assert!(
            d.join(f).exists(),
            "{} is missing: build the Linux test guest with `test-roms/linux/build.sh` \
             (or set X86EMU_LINUX_GUEST_DIR)",
            d.join(f).display()
        );
    }
    d
}

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
        "uname -a\ncat /proc/cpuinfo\ndd if=/dev/sda bs=1M count=4 2>/dev/null | md5sum\npoweroff -f\n",
    );
    assert_ok(
        code,
        &text,
        &[
            "X86EMU-GUEST-READY",
            "Linux x86emu-guest 6.1",
            "i686 GNU/Linux",
            "model name\t: x86emu IA-32 virtual processor",
            &want,
        ],
    );
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
