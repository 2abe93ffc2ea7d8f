//! A floating-point Linux program gives the same output in the guest as on the host.
//!
//! `tests/guest/fp_*.c` is compiled here into one static i386 binary (gcc -m32, glibc's
//! libm; one part with SSE2 scalar math, one with x87 math, one with SSE/SSE2 intrinsics
//! under every MXCSR rounding mode with DAZ/FTZ). The test runs it natively on the host
//! CPU, then inside the Linux test guest (direct boot; the binary reaches the guest as the
//! raw contents of a second IDE disk) and requires the two outputs to be identical, line
//! for line. Every printed value is exact bits or a hash of exact bits.
//!
//! Needs an x86-64 (or i386) host that can run i386 binaries, gcc with 32-bit support
//! (Debian: gcc-multilib) and the Linux test guest (`test-roms/linux/build.sh`). On other
//! host architectures the test says so and passes without running.

mod common;

use common::guest::linux_guest_dir as guest_dir;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Enough for the boot (about 4·10⁹) plus the program.
const MAX_INSTRUCTIONS: &str = "12000000000";

/// Compile the guest program; returns the path of the static i386 binary.
fn build_program(out: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/guest");
    let exe = out.join("fpprog");
    let mut objs = Vec::new();
    for (part, flags) in [
        ("main", &["-msse2", "-mfpmath=sse"][..]),
        ("sse2", &["-msse2", "-mfpmath=sse"][..]),
        ("x87", &["-mfpmath=387"][..]),
    ] {
        let obj = out.join(format!("fp_{part}.o"));
        let st = Command::new("gcc")
            .args(["-m32", "-O2", "-march=pentium4", "-mtune=generic", "-c"])
            .args(flags)
            .arg(src.join(format!("fp_{part}.c")))
            .arg("-o")
            .arg(&obj)
            .status()
            .expect("run gcc (install gcc-multilib)");
        assert!(
            st.success(),
            "gcc -m32 failed on fp_{part}.c (install gcc-multilib)"
        );
        objs.push(obj);
    }
    let st = Command::new("gcc")
        .args(["-m32", "-static", "-o"])
        .arg(&exe)
        .args(&objs)
        .arg("-lm")
        .status()
        .expect("run gcc");
    assert!(
        st.success(),
        "linking the static i386 program failed (install gcc-multilib)"
    );
    exe
}

/// The lines between FP-BEGIN and FP-END (serial output has CR LF line ends).
fn result_lines(text: &str) -> Vec<String> {
    let lines: Vec<String> = text.lines().map(|l| l.trim_end().to_string()).collect();
    let begin = lines.iter().position(|l| l == "FP-BEGIN");
    let end = lines.iter().position(|l| l == "FP-END");
    match (begin, end) {
        (Some(b), Some(e)) if b < e => lines[b + 1..e].to_vec(),
        _ => Vec::new(),
    }
}

#[test]
fn float_program_output_matches_native() {
    if !cfg!(any(target_arch = "x86_64", target_arch = "x86")) {
        eprintln!(
            "SKIPPED: linux_float needs a host that runs i386 binaries natively (this host is {})",
            std::env::consts::ARCH
        );
        return;
    }
    let g = guest_dir();
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR")).join("linux_float");
    std::fs::create_dir_all(&tmp).unwrap();
    let exe = build_program(&tmp);

    let native = Command::new(&exe)
        .output()
        .expect("run the i386 program natively");
    assert!(native.status.success(), "the program failed natively");
    let want = result_lines(&String::from_utf8_lossy(&native.stdout));
    assert!(want.len() > 50, "native output too short: {want:?}");

    // The binary as a raw disk, padded to whole sectors.
    let mut image = std::fs::read(&exe).unwrap();
    let size = image.len();
    image.resize(size.div_ceil(512) * 512, 0);
    let disk = tmp.join("fpprog.img");
    std::fs::write(&disk, &image).unwrap();

    let cmdline = std::fs::read_to_string(g.join("cmdline.txt")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_x86emu"))
        .arg("boot")
        .arg(g.join("disk.img"))
        .arg("--hdb")
        .arg(&disk)
        .arg("--kernel")
        .arg(g.join("bzImage"))
        .arg("--initrd")
        .arg(g.join("initrd.img"))
        .args(["--append", cmdline.trim()])
        .args(["--display", "none", "--max-instructions", MAX_INSTRUCTIONS])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run x86emu");
    let commands =
        format!("head -c {size} /dev/sdb > /tmp/fp && chmod +x /tmp/fp && /tmp/fp\npoweroff -f\n");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(commands.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let got = result_lines(&text);
    assert!(
        !got.is_empty(),
        "the program produced no FP-BEGIN..FP-END block in the guest (exit {:?}):\n{text}",
        out.status.code()
    );
    let diffs: Vec<String> = want
        .iter()
        .zip(&got)
        .filter(|(w, g)| w != g)
        .map(|(w, g)| format!("  native: {w}\n  guest:  {g}"))
        .collect();
    println!(
        "linux_float: {} result lines, {} identical to native",
        want.len(),
        want.len() - diffs.len()
    );
    assert!(
        diffs.is_empty() && want.len() == got.len(),
        "guest output differs from native ({} of {} lines; {} vs {} lines):\n{}",
        diffs.len(),
        want.len(),
        got.len(),
        want.len(),
        diffs.join("\n")
    );
    assert_eq!(out.status.code(), Some(0), "x86emu did not exit 0:\n{text}");
}
