//! The batch / scheduler contract with the Linux test guest (built by
//! `test-roms/linux/build.sh` into `target/linux-guest`, or set `X86EMU_LINUX_GUEST_DIR`):
//! SIGTERM to a booting `x86emu boot --snapshot-dir DIR` writes `DIR/checkpoint.snap`
//! (the old one kept as `checkpoint.prev.snap`) and exits 85; `--resume require` in the
//! same directory continues the guest, which then powers off on command.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn guest_dir() -> PathBuf {
    let d = std::env::var_os("X86EMU_LINUX_GUEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/linux-guest"));
    for f in ["bzImage", "initrd.img", "cmdline.txt"] {
        assert!(
            d.join(f).exists(),
            "{} is missing: build the Linux test guest with `test-roms/linux/build.sh` \
             (or set X86EMU_LINUX_GUEST_DIR)",
            d.join(f).display()
        );
    }
    d
}

fn boot_cmd(g: &Path, dir: &Path) -> Command {
    let cmdline = std::fs::read_to_string(g.join("cmdline.txt")).unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_x86emu"));
    c.arg("boot")
        .arg("--kernel")
        .arg(g.join("bzImage"))
        .arg("--initrd")
        .arg(g.join("initrd.img"))
        .args(["--append", cmdline.trim(), "--display", "none"])
        .arg("--snapshot-dir")
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Collect a child's stdout on a thread; chunks arrive on the receiver.
fn reader(child: &mut Child) -> mpsc::Receiver<Vec<u8>> {
    let mut out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    rx
}

/// Wait for the child to exit within `limit`; kill it and fail otherwise.
fn wait_exit(child: &mut Child, limit: Duration, what: &str) -> i32 {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st.code().unwrap_or(-1);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: no exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn stderr_of(child: &mut Child) -> String {
    let mut s = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut s);
    }
    s
}

#[test]
fn sigterm_checkpoints_and_resume_require_continues() {
    let g = guest_dir();
    let dir = std::env::temp_dir().join(format!("x86emu-checkpoint-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // An older generation: it must become checkpoint.prev.snap.
    std::fs::write(dir.join("checkpoint.snap"), b"older generation").unwrap();

    // 1. Boot until /init runs, then SIGTERM.
    let mut child = boot_cmd(&g, &dir).spawn().unwrap();
    let rx = reader(&mut child);
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(240);
    while !String::from_utf8_lossy(&out).contains("X86EMU-GUEST-INIT") {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(chunk) => out.extend_from_slice(&chunk),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the guest did not reach /init; output:\n{}",
                    String::from_utf8_lossy(&out)
                );
            }
        }
    }
    // SAFETY: kill with a valid pid of our own child process and a valid signal.
    let r = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(r, 0);
    let code = wait_exit(&mut child, Duration::from_secs(60), "checkpoint run");
    let err = stderr_of(&mut child);
    assert_eq!(code, 85, "stderr:\n{err}");
    assert!(err.contains("checkpoint written to"), "{err}");
    let snap = dir.join("checkpoint.snap");
    assert!(snap.is_file(), "no {}", snap.display());
    assert_eq!(
        std::fs::read(dir.join("checkpoint.prev.snap")).unwrap(),
        b"older generation"
    );
    let first = String::from_utf8_lossy(&out).into_owned();

    // 2. Resume in the same directory; the shell gets `poweroff -f`.
    let mut child = boot_cmd(&g, &dir)
        .args(["--resume", "require"])
        .spawn()
        .unwrap();
    let rx = reader(&mut child);
    {
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"poweroff -f\n").unwrap();
    }
    let code = wait_exit(&mut child, Duration::from_secs(300), "resumed run");
    let err = stderr_of(&mut child);
    let resumed: Vec<u8> = rx.iter().flatten().collect();
    let resumed = String::from_utf8_lossy(&resumed);
    assert_eq!(code, 0, "stderr:\n{err}\nstdout:\n{resumed}");
    assert!(err.contains("resuming from"), "{err}");
    // Resumed, not rebooted: the kernel banner does not appear again.
    assert!(!resumed.contains("Linux version"), "{resumed}");
    assert!(
        first.contains("X86EMU-GUEST-READY") || resumed.contains("X86EMU-GUEST-READY"),
        "first run:\n{first}\nresumed:\n{resumed}"
    );

    // 3. --resume require with no checkpoint: a clear error, exit 3.
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let mut child = boot_cmd(&g, &empty)
        .args(["--resume", "require"])
        .spawn()
        .unwrap();
    let code = wait_exit(
        &mut child,
        Duration::from_secs(60),
        "require without checkpoint",
    );
    let err = stderr_of(&mut child);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("no checkpoint.snap in"), "{err}");

    std::fs::remove_dir_all(&dir).unwrap();
}
