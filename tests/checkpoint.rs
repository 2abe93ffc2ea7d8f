//! The batch / scheduler checkpoint contract of `x86emu boot --snapshot-dir DIR`, end to
//! end through the command line (README, "Batch jobs and checkpoints"):
//!
//! - signals (SIGTERM, SIGINT, SIGUSR1, SIGUSR2, SIGXCPU) checkpoint and exit 85 (or
//!   `--checkpoint-exit-code`); `--resume auto` continues, and the final state hash and
//!   `DIR/console.log` equal those of an uninterrupted run;
//! - `kill -9` at random moments, with periodic checkpoints every few hundred
//!   milliseconds, never leaves an unresumable directory, and the final result is again
//!   the uninterrupted one (so checkpoints do not change what the guest computes);
//! - a finished guest is recorded in `DIR/done` and reported again without re-running;
//! - damaged, foreign or mismatched checkpoints give exit 3 with a message naming the
//!   file, the section and the problem, or fall back to the previous generation;
//! - the directory lock and the generation check keep a second writer out.
//!
//! Guests: the Linux test guest (`test-roms/linux/build.sh` → `target/linux-guest`, or
//! `X86EMU_LINUX_GUEST_DIR`), run for a few hundred million instructions, and
//! `test-roms/batch.asm`, a small Multiboot kernel that prints a line per step and powers
//! off (NASM). Every run is bounded by an instruction limit or by the guest itself; wall
//! time only decides when signals are sent.

mod common;

use common::guest::linux_guest_dir as guest_dir;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use rand::{rngs::StdRng, Rng, SeedableRng};

const EXE: &str = env!("CARGO_BIN_EXE_x86emu");

/// Instructions of the Linux runs (inside the kernel's decompressor and early boot).
const LINUX_N: u64 = 300_000_000;

/// `boot` options for the Linux guest (direct kernel boot, 64 MiB).
fn linux_args() -> Vec<String> {
    let g = guest_dir();
    let cmdline = std::fs::read_to_string(g.join("cmdline.txt")).unwrap();
    vec![
        "boot".into(),
        "--kernel".into(),
        g.join("bzImage").to_string_lossy().into(),
        "--initrd".into(),
        g.join("initrd.img").to_string_lossy().into(),
        "--append".into(),
        cmdline.trim().into(),
        "-m".into(),
        "64".into(),
        "--display".into(),
        "none".into(),
        "--print-state-hash".into(),
        // Paced: 25 M instructions per second of host time, so LINUX_N takes 12 s on
        // any host fast enough, and the signals and kills below land mid-run however
        // fast the host is. Pacing only sleeps; the guest's state does not depend on it.
        "--mhz".into(),
        "25".into(),
        "--realtime".into(),
    ]
}

/// `test-roms/batch.asm`, assembled once per test process.
fn batch_kernel() -> PathBuf {
    static BUILT: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = built.as_ref() {
        return p.clone();
    }
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("test-roms/batch.asm");
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("batch.bin");
    let r = Command::new("nasm")
        .args(["-f", "bin", "-o"])
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
    *built = Some(out.clone());
    out
}

/// `boot` options for the batch kernel: `steps` lines of output, then power-off.
fn batch_args(steps: u32) -> Vec<String> {
    vec![
        "boot".into(),
        "--kernel".into(),
        batch_kernel().to_string_lossy().into(),
        "--append".into(),
        format!("steps={steps}"),
        "-m".into(),
        "16".into(),
        "--display".into(),
        "none".into(),
        "--print-state-hash".into(),
        // Paced at 10 M instructions per second: each step takes about 0.1 s of host time
        // on any host fast enough (see linux_args).
        "--mhz".into(),
        "10".into(),
        "--realtime".into(),
    ]
}

fn tmp_dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("checkpoint-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn cmd(args: &[String], extra: &[&str]) -> Command {
    let mut c = Command::new(EXE);
    c.args(args)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

/// Run to the end (bounded by `limit`); returns (exit code, stderr).
fn run(args: &[String], extra: &[&str], limit: Duration) -> (i32, String) {
    let mut child = cmd(args, extra).spawn().unwrap();
    let code = wait_exit(&mut child, limit).unwrap_or_else(|| {
        let _ = child.kill();
        let _ = child.wait();
        panic!("x86emu {args:?} {extra:?}: no exit within {limit:?}")
    });
    (code, stderr_of(&mut child))
}

/// Wait up to `limit` for the child to exit; `None` if it is still running.
fn wait_exit(child: &mut Child, limit: Duration) -> Option<i32> {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st.code().unwrap_or(-1));
        }
        if start.elapsed() >= limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn stderr_of(child: &mut Child) -> String {
    let mut s = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut s);
    }
    s
}

fn signal(child: &Child, sig: libc::c_int) {
    // SAFETY: kill with the pid of our own (not yet reaped) child and a valid signal.
    let r = unsafe { libc::kill(child.id() as libc::pid_t, sig) };
    assert_eq!(r, 0, "kill({}, {sig})", child.id());
}

/// The "state hash H at instruction N" line of `--print-state-hash`.
fn state_hash(stderr: &str) -> String {
    let line = stderr
        .lines()
        .rev()
        .find(|l| l.contains("state hash"))
        .unwrap_or_else(|| panic!("no state hash in:\n{stderr}"));
    line.split("state hash ").nth(1).unwrap().trim().to_string()
}

/// An uninterrupted run without a snapshot directory: (exit code, state hash line,
/// serial output).
fn reference(args: &[String], extra: &[&str], name: &str) -> (i32, String, Vec<u8>) {
    let d = tmp_dir(name);
    let serial = d.join("serial.txt");
    let ser = format!("file:{}", serial.display());
    let mut all = extra.to_vec();
    all.extend(["--serial", &ser]);
    let (code, err) = run(args, &all, Duration::from_secs(900));
    let out = std::fs::read(&serial).unwrap();
    std::fs::remove_dir_all(&d).unwrap();
    (code, state_hash(&err), out)
}

fn linux_reference() -> &'static (i32, String, Vec<u8>) {
    static REF: OnceLock<(i32, String, Vec<u8>)> = OnceLock::new();
    REF.get_or_init(|| {
        let r = reference(
            &linux_args(),
            &["--max-instructions", &LINUX_N.to_string()],
            "linux-ref",
        );
        assert_eq!(r.0, 124);
        assert!(!r.2.is_empty(), "the Linux guest printed nothing");
        r
    })
}

fn console_log(dir: &Path) -> Vec<u8> {
    std::fs::read(dir.join("console.log")).unwrap()
}

fn dir_arg(dir: &Path) -> String {
    dir.to_string_lossy().into_owned()
}

#[test]
fn linux_signals_checkpoint_with_85_and_resume_to_the_uninterrupted_result() {
    let (_, want_hash, want_out) = linux_reference();
    let dir = tmp_dir("linux-signals");
    let d = dir_arg(&dir);
    let n = LINUX_N.to_string();
    let extra = ["--snapshot-dir", &d, "--max-instructions", &n];
    let mut checkpoints = 0;
    for (i, sig) in [
        libc::SIGTERM,
        libc::SIGINT,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGXCPU,
    ]
    .into_iter()
    .enumerate()
    {
        let mut child = cmd(&linux_args(), &extra).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(2500));
        signal(&child, sig);
        let code = wait_exit(&mut child, Duration::from_secs(300)).expect("exit after a signal");
        let err = stderr_of(&mut child);
        if code == 124 {
            break; // finished before the signal
        }
        assert_eq!(code, 85, "signal {sig}: stderr:\n{err}");
        assert!(err.contains("checkpoint written to"), "{err}");
        if i > 0 {
            assert!(err.contains("resuming from"), "{err}");
        }
        assert!(!err.contains("warning"), "{err}");
        checkpoints += 1;
    }
    assert!(checkpoints >= 2, "only {checkpoints} signal checkpoints");
    // A custom exit code.
    let mut child = cmd(&linux_args(), &extra)
        .args(["--checkpoint-exit-code", "99"])
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    signal(&child, libc::SIGTERM);
    let code = wait_exit(&mut child, Duration::from_secs(300)).unwrap();
    let err = stderr_of(&mut child);
    assert!(code == 99 || code == 124, "{code}: {err}");

    let (code, err) = run(&linux_args(), &extra, Duration::from_secs(900));
    assert_eq!(code, 124, "{err}");
    assert!(err.contains("resuming from"), "{err}");
    assert_eq!(&state_hash(&err), want_hash, "{err}");
    assert!(
        console_log(&dir) == *want_out,
        "console.log differs from the uninterrupted run's serial output:\n{}\n---\n{}",
        String::from_utf8_lossy(&console_log(&dir)),
        String::from_utf8_lossy(want_out)
    );
    // The instruction limit left a final checkpoint: the same command stops at once.
    let (code, err) = run(&linux_args(), &extra, Duration::from_secs(300));
    assert_eq!(code, 124, "{err}");
    assert_eq!(&state_hash(&err), want_hash, "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn kill_seed() -> u64 {
    std::env::var("X86EMU_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        })
}

/// Start `args` + `extra` up to `rounds` times and `kill -9` each run after a random
/// delay in `delays` (ms), until a run ends by itself (its exit code is checked against
/// `end`). Then one more run to the end: its exit code must be `end`, with the state hash
/// and console.log of the uninterrupted run. Returns the number of kills.
#[allow(clippy::too_many_arguments)]
fn kill_9_loop(
    name: &str,
    args: &[String],
    extra_opts: &[&str],
    end: i32,
    want_hash: &str,
    want_out: &[u8],
    rounds: usize,
    delays: std::ops::Range<u64>,
) -> usize {
    let seed = kill_seed();
    eprintln!("{name}: kill -9 delays from X86EMU_KILL_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tmp_dir(name);
    let d = dir_arg(&dir);
    let mut extra = vec!["--snapshot-dir", &d];
    extra.extend(extra_opts);
    let mut kills = 0;
    for _ in 0..rounds {
        let mut child = cmd(args, &extra).spawn().unwrap();
        let delay = Duration::from_millis(rng.gen_range(delays.clone()));
        match wait_exit(&mut child, delay) {
            Some(code) => {
                let err = stderr_of(&mut child);
                assert_eq!(code, end, "{name}, seed {seed}: {err}");
                break;
            }
            None => {
                child.kill().unwrap();
                child.wait().unwrap();
                kills += 1;
                // Whatever the killed run was doing, the directory it found was fine.
                let err = stderr_of(&mut child);
                assert!(
                    !err.contains("unusable") && !err.contains("warning"),
                    "{name}, seed {seed}: {err}"
                );
            }
        }
    }
    let (code, err) = run(args, &extra, Duration::from_secs(900));
    eprintln!("{name}: after {kills} kills: {err}");
    assert_eq!(code, end, "{name}, seed {seed}: {err}");
    assert!(!err.contains("warning"), "{name}, seed {seed}: {err}");
    assert_eq!(state_hash(&err), want_hash, "{name}, seed {seed}: {err}");
    assert!(
        console_log(&dir) == want_out,
        "{name}, seed {seed}: console.log differs from the uninterrupted run's serial output:\n{}\n---\n{}",
        String::from_utf8_lossy(&console_log(&dir)),
        String::from_utf8_lossy(want_out)
    );
    // The killed runs made progress: several generations were written.
    let generation = |text: &str| -> Option<u64> {
        text.split("(generation ")
            .nth(1)?
            .split(',')
            .next()?
            .parse()
            .ok()
    };
    let done = std::fs::read_to_string(dir.join("done")).ok();
    let reached = generation(&err).or_else(|| {
        done.as_deref()
            .and_then(|t| t.lines().find_map(|l| l.strip_prefix("generation ")))
            .and_then(|g| g.parse().ok())
    });
    assert!(
        reached.is_some_and(|g| g >= 2),
        "{name}, seed {seed}: no progress through checkpoints: {err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
    kills
}

#[test]
fn linux_kill_9_during_periodic_checkpoints_always_resumes() {
    let (_, want_hash, want_out) = linux_reference();
    let n = LINUX_N.to_string();
    let kills = kill_9_loop(
        "linux-kill9",
        &linux_args(),
        &["--max-instructions", &n, "--checkpoint-interval", "300ms"],
        124,
        want_hash,
        want_out,
        8,
        500..4000,
    );
    assert!(kills >= 3, "only {kills} runs were killed");
}

#[test]
fn batch_job_kill_9_always_resumes_to_the_same_power_off_and_output() {
    let args = batch_args(40);
    let (code, want_hash, want_out) = reference(&args, &[], "batch-kill-ref");
    assert_eq!(code, 0);
    let kills = kill_9_loop(
        "batch-kill9",
        &args,
        // A checkpoint after every slice: most of the time goes to writing them, so most
        // kills land in the middle of one.
        &["--checkpoint-interval", "1ms"],
        0,
        &want_hash,
        &want_out,
        10,
        200..1500,
    );
    assert!(kills >= 2, "only {kills} runs were killed");
}

#[test]
fn a_finished_guest_is_recorded_and_reported_again_without_running() {
    let args = batch_args(12);
    let (code, want_hash, want_out) = reference(&args, &[], "batch-ref");
    assert_eq!(code, 0, "the batch kernel powers off");
    assert!(String::from_utf8_lossy(&want_out).ends_with("batch: done\n"));

    // Periodic checkpoints all the way: the same result as without them.
    let dir = tmp_dir("done");
    let d = dir_arg(&dir);
    let extra = ["--snapshot-dir", &d, "--checkpoint-interval", "1ms"];
    let (code, err) = run(&args, &extra, Duration::from_secs(300));
    assert_eq!(code, 0, "{err}");
    assert_eq!(state_hash(&err), want_hash, "{err}");
    assert_eq!(console_log(&dir), want_out);
    let done = std::fs::read_to_string(dir.join("done")).unwrap();
    assert!(
        done.starts_with("x86emu-done 1\nstatus 0\nreason power-off\n"),
        "{done}"
    );
    assert!(
        done.contains(&format!(
            "state-hash {}",
            want_hash.split(' ').next().unwrap()
        )),
        "{done}"
    );
    // The checkpoints that were written carry a generation below the done marker's.
    let info = Command::new(EXE)
        .args(["snapshot", "info"])
        .arg(dir.join("checkpoint.snap"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&info.stdout);
    assert_eq!(info.status.code(), Some(0), "{text}");
    assert!(text.contains("checkpoint:      generation "), "{text}");
    assert!(text.contains("console.log:     "), "{text}");
    assert!(text.contains("  checkpoint v1"), "{text}");

    // Again: reported, not run (nothing is appended to console.log).
    for mode in [
        &[][..],
        &["--resume", "auto"][..],
        &["--resume", "require"][..],
    ] {
        let mut e = extra.to_vec();
        e.extend(mode);
        let (code, err) = run(&args, &e, Duration::from_secs(60));
        assert_eq!(code, 0, "{err}");
        assert!(
            err.contains("the guest already finished (power-off"),
            "{err}"
        );
        assert!(!err.contains("resuming"), "{err}");
        assert_eq!(state_hash(&err), want_hash, "{err}");
        assert_eq!(console_log(&dir), want_out);
    }

    // --resume never starts over: same result, done written anew.
    std::fs::write(dir.join("console.log"), b"old output").unwrap();
    let (code, err) = run(
        &args,
        &["--snapshot-dir", &d, "--resume", "never"],
        Duration::from_secs(300),
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(state_hash(&err), want_hash, "{err}");
    assert_eq!(console_log(&dir), want_out);
    assert!(dir.join("done").exists());
    assert!(
        !dir.join("checkpoint.snap").exists(),
        "the old run's checkpoints are gone"
    );

    // A damaged done marker: exit 3.
    std::fs::write(dir.join("done"), "x86emu-done 1\nstatus zero\n").unwrap();
    let (code, err) = run(&args, &extra, Duration::from_secs(60));
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("done: unusable done marker: `status` is not 0..=255"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn sigterm_in_the_middle_of_the_batch_job_resumes_to_the_same_power_off() {
    let args = batch_args(30);
    let (code, want_hash, want_out) = reference(&args, &[], "batch-ref2");
    assert_eq!(code, 0);
    let dir = tmp_dir("batch-sigterm");
    let d = dir_arg(&dir);
    let extra = ["--snapshot-dir", &d];
    let mut interrupted = 0;
    let mut last = None;
    for i in 0..20 {
        let mut child = cmd(&args, &extra).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(400 + 100 * i));
        signal(&child, libc::SIGTERM);
        let code = wait_exit(&mut child, Duration::from_secs(120)).unwrap();
        let err = stderr_of(&mut child);
        if code == 0 {
            last = Some(err);
            break;
        }
        assert_eq!(code, 85, "{err}");
        interrupted += 1;
        // console.log holds exactly what the checkpoint had seen.
        let info = Command::new(EXE)
            .args(["snapshot", "info"])
            .arg(dir.join("checkpoint.snap"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&info.stdout).into_owned();
        let seen: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("console.log:"))
            .and_then(|l| l.trim().strip_suffix(" bytes seen"))
            .unwrap_or_else(|| panic!("{text}"))
            .parse()
            .unwrap();
        assert_eq!(seen, console_log(&dir).len() as u64);
        assert!(want_out.starts_with(&console_log(&dir)));
    }
    assert!(interrupted >= 1, "the job finished before any signal");
    let err = match last {
        Some(e) => e,
        None => {
            let (code, err) = run(&args, &extra, Duration::from_secs(300));
            assert_eq!(code, 0, "{err}");
            err
        }
    };
    assert!(err.contains("resuming from"), "{err}");
    assert_eq!(state_hash(&err), want_hash, "{err}");
    assert_eq!(console_log(&dir), want_out);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Make `dir` hold two generations of the batch job (at 3M and 6M instructions) and
/// return copies of (checkpoint.snap, checkpoint.prev.snap, console.log).
fn two_generations(dir: &Path) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let d = dir_arg(dir);
    for n in ["3000000", "6000000"] {
        let (code, err) = run(
            &batch_args(50),
            &["--snapshot-dir", &d, "--max-instructions", n],
            Duration::from_secs(120),
        );
        assert_eq!(code, 124, "{err}");
    }
    (
        std::fs::read(dir.join("checkpoint.snap")).unwrap(),
        std::fs::read(dir.join("checkpoint.prev.snap")).unwrap(),
        console_log(dir),
    )
}

/// Rewrite a snapshot with section `name` claiming `version` (checksum recomputed).
fn with_section_version(bytes: &[u8], name: &str, version: u32) -> Vec<u8> {
    use x86emu::snapshot::{SnapshotReader, SnapshotWriter};
    let r = SnapshotReader::parse(bytes).unwrap();
    let mut w = SnapshotWriter::new();
    for s in r.sections() {
        let v = if s.name == name { version } else { s.version };
        if s.required {
            w.add_section(s.name, v, s.data.to_vec());
        } else {
            w.add_optional_section(s.name, v, s.data.to_vec());
        }
    }
    w.finish()
}

#[test]
fn damaged_checkpoints_fall_back_or_exit_3_naming_the_problem() {
    let args = batch_args(50);
    let (_, hash_9m, out_9m) = reference(&args, &["--max-instructions", "9000000"], "corrupt-ref");
    let base = tmp_dir("corrupt-base");
    let (snap, prev, log) = two_generations(&base);
    assert!(out_9m.starts_with(&log));

    let case = |name: &str, new_snap: Option<Vec<u8>>, new_prev: Option<Vec<u8>>| -> PathBuf {
        let d = tmp_dir(name);
        std::fs::write(
            d.join("checkpoint.snap"),
            new_snap.unwrap_or_else(|| snap.clone()),
        )
        .unwrap();
        std::fs::write(
            d.join("checkpoint.prev.snap"),
            new_prev.unwrap_or_else(|| prev.clone()),
        )
        .unwrap();
        std::fs::write(d.join("console.log"), &log).unwrap();
        d
    };
    let resume = |d: &Path, more: &[&str]| {
        let s = dir_arg(d);
        let mut e = vec!["--snapshot-dir", &s, "--max-instructions", "9000000"];
        e.extend(more);
        run(&args, &e, Duration::from_secs(120))
    };
    let truncated = snap[..snap.len() - 1000].to_vec();
    let mut flipped = snap.clone();
    let mid = flipped.len() / 3;
    flipped[mid] ^= 0x40;

    let unknown_required = {
        use x86emu::snapshot::{SnapshotReader, SnapshotWriter};
        let r = SnapshotReader::parse(&snap).unwrap();
        let mut w = SnapshotWriter::new();
        for s in r.sections() {
            if s.required {
                w.add_section(s.name, s.version, s.data.to_vec());
            } else {
                w.add_optional_section(s.name, s.version, s.data.to_vec());
            }
        }
        w.add_section("warp_drive", 1, vec![1]);
        w.finish()
    };

    // The newest generation damaged: a warning, the previous one, the same result.
    for (name, bad, problem) in [
        ("truncated", truncated.clone(), "snapshot is truncated"),
        ("flipped", flipped.clone(), "checksum mismatch"),
        (
            "unknown-required",
            unknown_required,
            "section `warp_drive`: required by the snapshot but unknown to this build",
        ),
    ] {
        let d = case(name, Some(bad), None);
        let (code, err) = resume(&d, &[]);
        assert_eq!(code, 124, "{name}: {err}");
        assert!(
            err.contains("checkpoint.snap is unusable: ") && err.contains(problem),
            "{name}: {err}"
        );
        assert!(
            err.contains("falling back to the previous generation"),
            "{name}: {err}"
        );
        assert!(
            err.contains("(generation 1, instruction 3000000)"),
            "{name}: {err}"
        );
        assert_eq!(state_hash(&err), hash_9m, "{name}: {err}");
        assert_eq!(console_log(&d), out_9m, "{name}");
        // The damaged file was replaced and the good previous generation kept.
        let info = Command::new(EXE)
            .args(["snapshot", "info"])
            .arg(d.join("checkpoint.snap"))
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&info.stdout).contains("generation 2"));
        assert_eq!(std::fs::read(d.join("checkpoint.prev.snap")).unwrap(), prev);
        std::fs::remove_dir_all(&d).unwrap();
    }

    // Nothing usable: exit 3, every file and its problem named.
    let mut version2 = snap.clone();
    version2[12] = 2;
    let mut prev_version2 = prev.clone();
    prev_version2[12] = 2;
    for (name, s, p, wants) in [
        (
            "both",
            truncated.clone(),
            flipped.clone(),
            &["checkpoint.snap: snapshot is truncated", "checkpoint.prev.snap: checksum mismatch"][..],
        ),
        (
            "format",
            version2.clone(),
            prev_version2,
            &["checkpoint.snap: snapshot format version 2 is newer than this build supports (max 1)"][..],
        ),
        (
            "section",
            with_section_version(&snap, "cpu", 99),
            with_section_version(&prev, "pit", 7),
            &[
                "checkpoint.snap: section `cpu`: version 99 is newer than this build supports (max ",
                "checkpoint.prev.snap: section `pit`: version 7 is newer than this build supports (max ",
            ][..],
        ),
    ] {
        let d = case(name, Some(s), Some(p));
        let (code, err) = resume(&d, &[]);
        assert_eq!(code, 3, "{name}: {err}");
        assert!(err.contains("no usable checkpoint in"), "{name}: {err}");
        for w in wants {
            assert!(err.contains(w), "{name}: {err}");
        }
        // Nothing was touched.
        assert_eq!(console_log(&d), log, "{name}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    // snapshot info on damaged files: exit 3 and the problem.
    let f = base.join("bad.snap");
    for (bad, want) in [
        (&truncated, "snapshot is truncated"),
        (&flipped, "checksum mismatch"),
        (&version2, "format version 2 is newer"),
    ] {
        std::fs::write(&f, bad).unwrap();
        let out = Command::new(EXE)
            .args(["snapshot", "info"])
            .arg(&f)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{err}");
        assert!(err.contains("bad.snap") && err.contains(want), "{err}");
    }

    // A different machine: exit 3 naming what differs, no fallback to an older
    // generation (it was taken with the same options).
    let d = case("ram", None, None);
    let s = dir_arg(&d);
    let mut args32 = args.clone();
    let m = args32.iter().position(|a| a == "-m").unwrap();
    args32[m + 1] = "32".into();
    let (code, err) = run(&args32, &["--snapshot-dir", &s], Duration::from_secs(60));
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("checkpoint.snap: machine configuration mismatch: the snapshot was taken with 16 MiB of RAM, this machine has 32 MiB"),
        "{err}"
    );
    std::fs::remove_dir_all(&d).unwrap();

    // --resume require with nothing there.
    let d = tmp_dir("empty");
    let s = dir_arg(&d);
    let (code, err) = run(
        &args,
        &["--snapshot-dir", &s, "--resume", "require"],
        Duration::from_secs(60),
    );
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("no checkpoint.snap or checkpoint.prev.snap in"),
        "{err}"
    );
    std::fs::remove_dir_all(&d).unwrap();
    std::fs::remove_dir_all(&base).unwrap();
}

#[test]
fn a_checkpoint_with_other_disks_is_refused() {
    let g = guest_dir();
    let dir = tmp_dir("disks");
    let d = dir_arg(&dir);
    let hdb = |img: &str| g.join(img).to_string_lossy().into_owned();
    let with = hdb("disk.img");
    let (code, err) = run(
        &batch_args(50),
        &[
            "--snapshot-dir",
            &d,
            "--max-instructions",
            "2000000",
            "--hdb",
            &with,
        ],
        Duration::from_secs(120),
    );
    assert_eq!(code, 124, "{err}");
    let other = hdb("grub.img");
    let (code, err) = run(
        &batch_args(50),
        &[
            "--snapshot-dir",
            &d,
            "--max-instructions",
            "4000000",
            "--hdb",
            &other,
        ],
        Duration::from_secs(120),
    );
    assert_eq!(code, 3, "{err}");
    assert!(
        err.contains("checkpoint.snap: machine configuration mismatch: IDE 0:1: the snapshot had a hard disk image of 50331648 bytes"),
        "{err}"
    );
    let (code, err) = run(
        &batch_args(50),
        &["--snapshot-dir", &d, "--max-instructions", "4000000"],
        Duration::from_secs(120),
    );
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("IDE 0:1"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_second_emulator_on_the_same_directory_is_refused() {
    let args = batch_args(2000);
    let dir = tmp_dir("lock");
    let d = dir_arg(&dir);
    let extra = ["--snapshot-dir", &d];
    let mut first = cmd(&args, &extra).spawn().unwrap();
    let pid = format!("pid {}", first.id());
    let t = Instant::now();
    while std::fs::read_to_string(dir.join("lock")).unwrap_or_default() != pid {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the first emulator did not lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (code, err) = run(&args, &extra, Duration::from_secs(60));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("is in use by another x86emu ({pid})")),
        "{err}"
    );
    // The first one is unaffected.
    std::thread::sleep(Duration::from_millis(500));
    signal(&first, libc::SIGTERM);
    let code = wait_exit(&mut first, Duration::from_secs(120)).unwrap();
    let err = stderr_of(&mut first);
    assert_eq!(code, 85, "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_directory_advanced_by_someone_else_is_not_overwritten() {
    let args = batch_args(2000);
    // Elsewhere: generation 2 of the same job.
    let other = tmp_dir("gen-other");
    let o = dir_arg(&other);
    let (code, err) = run(
        &args,
        &[
            "--snapshot-dir",
            &o,
            "--max-instructions",
            "3000000",
            "--checkpoint-interval",
            "1ms",
        ],
        Duration::from_secs(120),
    );
    assert_eq!(code, 124, "{err}");
    let foreign = std::fs::read(other.join("checkpoint.snap")).unwrap();

    // Here: generation 1, then a run that resumes it.
    let dir = tmp_dir("gen");
    let d = dir_arg(&dir);
    let (code, err) = run(
        &args,
        &["--snapshot-dir", &d, "--max-instructions", "1000000"],
        Duration::from_secs(120),
    );
    assert_eq!(code, 124, "{err}");
    let mut child = cmd(&args, &["--snapshot-dir", &d]).spawn().unwrap();
    let t = Instant::now();
    while std::fs::read_to_string(dir.join("lock")).unwrap_or_default()
        != format!("pid {}", child.id())
    {
        assert!(t.elapsed() < Duration::from_secs(60), "no lock");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(500));
    // Someone without the lock (another host on a shared file system) writes a newer
    // generation.
    let tmp = dir.join("intruder.tmp");
    std::fs::write(&tmp, &foreign).unwrap();
    std::fs::rename(&tmp, dir.join("checkpoint.snap")).unwrap();
    signal(&child, libc::SIGTERM);
    let code = wait_exit(&mut child, Duration::from_secs(120)).unwrap();
    let err = stderr_of(&mut child);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("checkpoint.snap has generation 2, but this process is at generation 1: another process advanced the directory; refusing to overwrite it")
            && err.contains("x86emu: checkpoint failed: "),
        "{err}"
    );
    assert_eq!(std::fs::read(dir.join("checkpoint.snap")).unwrap(), foreign);
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&other).unwrap();
}

#[test]
fn usage_errors_exit_2() {
    let args = batch_args(1);
    for (extra, want) in [
        (&["--checkpoint-interval", "5m"][..], "--snapshot-dir"),
        (
            &["--snapshot-dir", "/tmp/x", "--checkpoint-interval", "soon"][..],
            "invalid duration",
        ),
        (&["--resume", "auto"][..], "--snapshot-dir"),
        (
            &["--snapshot-dir", "/tmp/x", "--checkpoint-exit-code", "0"][..],
            "0",
        ),
        (&["--resume", "sometimes"][..], "sometimes"),
    ] {
        let out = Command::new(EXE)
            .args(&args)
            .args(extra)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains(want), "{extra:?}: {err}");
    }
}
