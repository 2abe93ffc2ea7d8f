//! Determinism through the command line, with the Linux test guest (built by
//! `test-roms/linux/build.sh` into `target/linux-guest`, or set `X86EMU_LINUX_GUEST_DIR`)
//! and SeaBIOS:
//!
//! - the same boot run twice gives the same state hash and console output; split into
//!   pieces at exact instruction counts (`--max-instructions` + `--snapshot-at-exit`,
//!   then `x86emu resume` in a fresh process) it gives the same hash and output as run
//!   straight: SeaBIOS mid-POST and in the middle of a PIO disk read, Linux while its
//!   disk driver probes the IDE disk;
//! - pacing to the wall clock (`--realtime`) leaves the guest state unchanged;
//! - `--record`/`--replay`: an interactive session typed through a pipe with irregular
//!   host timing (COM1, and the keyboard with `--serial file:`) replays to the same hash
//!   and output; replays compose with snapshots taken mid-replay, and recording goes on
//!   across snapshot/resume (dropping events after the snapshot when a run died after it);
//!   a hand-written recording types on the guest's keyboard; foreign machines are refused.
//!
//! Runs are bounded by instruction counts; the wall-clock limits only catch hangs, except
//! one lower bound showing that pacing really slept.

mod common;

use common::guest::linux_guest_dir as guest_dir;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Mid-boot: Linux has found the IDE disk and waits before probing it (sd).
const LINUX_GAP: u64 = 3_100_000_000;
/// The Linux guest sits at its shell prompt (idle) here.
const LINUX_SHELL: u64 = 3_600_000_000;
/// Disk boot through SeaBIOS and SYSLINUX: instructions run in the split test.
const BIOS_N: u64 = 100_000_000;
/// A point in SeaBIOS's POST (before the disk is read).
const BIOS_POST: u64 = 12_000_000;
/// Hang guard for one x86emu process.
const TIMEOUT: Duration = Duration::from_secs(1200);

/// A fresh scratch directory for one test. Directories of earlier runs of this test
/// binary that are gone (the shared Linux snapshots stay until then) are removed.
fn scratch(name: &str) -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    if let Ok(entries) = std::fs::read_dir(tmp) {
        for e in entries.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            let pid = n
                .strip_prefix("determinism-")
                .and_then(|r| r.rsplit_once('-'))
                .map(|(_, pid)| pid.to_string());
            if let Some(pid) = pid {
                if pid != std::process::id().to_string() && !Path::new("/proc").join(&pid).exists()
                {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
    }
    let d = tmp.join(format!("determinism-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// What one x86emu process did.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: String,
}

impl Run {
    /// The `--print-state-hash` line: (hash, instruction count).
    fn hash(&self) -> (String, u64) {
        let line = self
            .stderr
            .lines()
            .find_map(|l| l.trim().strip_prefix("x86emu: state hash "))
            .unwrap_or_else(|| panic!("no state hash printed:\n{}", self.stderr));
        let (h, n) = line.split_once(" at instruction ").unwrap();
        (h.to_string(), n.trim().parse().unwrap())
    }

    fn expect(&self, code: i32) -> &Run {
        assert_eq!(
            self.code,
            Some(code),
            "x86emu exited with {:?}, wanted {code}\nstderr:\n{}\nstdout (end):\n{}",
            self.code,
            self.stderr,
            self.tail()
        );
        self
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    fn tail(&self) -> String {
        let t = self.text();
        t[t.len().saturating_sub(2000)..].to_string()
    }
}

/// Host input for a run: bytes written to stdin after a pause each (then stdin closes),
/// or nothing at all.
type Script<'a> = &'a [(u64, &'a str)];

/// Run x86emu with `args`, feeding `script` (pause in ms, bytes) to stdin.
fn x86emu<S: AsRef<std::ffi::OsStr>>(args: &[S], script: Option<Script<'_>>) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_x86emu"))
        .args(args)
        .stdin(if script.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run x86emu");
    let writer = script.map(|s| {
        let mut stdin = child.stdin.take().unwrap();
        let s: Vec<(u64, String)> = s.iter().map(|(d, b)| (*d, b.to_string())).collect();
        std::thread::spawn(move || {
            for (pause, bytes) in s {
                std::thread::sleep(Duration::from_millis(pause));
                // The run may have ended already (instruction limit): ignore EPIPE.
                if stdin.write_all(bytes.as_bytes()).is_err() {
                    break;
                }
            }
        })
    });
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let o = std::thread::spawn(move || {
        let mut v = Vec::new();
        out.read_to_end(&mut v).unwrap();
        v
    });
    let e = std::thread::spawn(move || {
        let mut v = Vec::new();
        err.read_to_end(&mut v).unwrap();
        v
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > TIMEOUT {
            child.kill().unwrap();
            panic!(
                "x86emu {:?} still running after {TIMEOUT:?}",
                args.iter()
                    .map(|a| a.as_ref().to_owned())
                    .collect::<Vec<_>>()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    if let Some(w) = writer {
        w.join().unwrap();
    }
    Run {
        code: status.code(),
        stdout: o.join().unwrap(),
        stderr: String::from_utf8_lossy(&e.join().unwrap()).into_owned(),
    }
}

fn s(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

/// `boot` arguments of the Linux guest: direct kernel boot with the IDE disk attached.
fn linux_boot_args(g: &Path) -> Vec<String> {
    let cmdline = std::fs::read_to_string(g.join("cmdline.txt")).unwrap();
    vec![
        "boot".into(),
        s(&g.join("disk.img")),
        "--kernel".into(),
        s(&g.join("bzImage")),
        "--initrd".into(),
        s(&g.join("initrd.img")),
        "--append".into(),
        cmdline.trim().into(),
        "--display".into(),
        "none".into(),
        "--print-state-hash".into(),
    ]
}

/// `resume SNAP` arguments for the Linux guest's snapshots.
fn resume_args(g: &Path, snap: &Path) -> Vec<String> {
    vec![
        "resume".into(),
        s(snap),
        "--disk".into(),
        s(&g.join("disk.img")),
        "--display".into(),
        "none".into(),
        "--print-state-hash".into(),
    ]
}

fn with(mut base: Vec<String>, more: &[&str]) -> Vec<String> {
    base.extend(more.iter().map(|s| s.to_string()));
    base
}

/// The Linux guest booted in three processes: to [`LINUX_GAP`], snapshot; resumed to
/// the first point after it (found here, in-process) where the kernel's disk driver
/// has an IDE command in flight (data waiting or completion interrupt pending),
/// snapshot; resumed to [`LINUX_SHELL`], snapshot (at its shell prompt). Shared by the
/// tests below.
struct Shell {
    dir: PathBuf,
    /// The mid-I/O split point and its snapshot.
    io_split: u64,
    io_snap: PathBuf,
    /// Snapshot at LINUX_SHELL: the guest idles at its shell prompt.
    snap: PathBuf,
    /// Console output of the two pieces, concatenated.
    stdout: Vec<u8>,
    hash: (String, u64),
}

fn shell() -> &'static Shell {
    static SHELL: OnceLock<Shell> = OnceLock::new();
    SHELL.get_or_init(|| {
        let g = guest_dir();
        let dir = scratch("shell");
        let gap = dir.join("gap.snap");
        let io_snap = dir.join("io.snap");
        let snap = dir.join("shell.snap");
        let a = x86emu(
            &with(
                linux_boot_args(&g),
                &[
                    "--max-instructions",
                    &LINUX_GAP.to_string(),
                    "--snapshot-at-exit",
                    &s(&gap),
                ],
            ),
            None,
        );
        a.expect(124);
        assert_eq!(a.hash().1, LINUX_GAP);
        // Step a copy of the machine in small slices to the first IDE command in flight.
        let io_split = {
            let mut m = restore(&gap, &g.join("disk.img"), None);
            loop {
                assert!(
                    m.cpu.state.icount < LINUX_SHELL,
                    "no IDE command between {LINUX_GAP} and {LINUX_SHELL}: move LINUX_GAP"
                );
                m.run(100);
                if ide_busy(&mut m) {
                    break m.cpu.state.icount;
                }
            }
        };
        let b = x86emu(
            &with(
                resume_args(&g, &gap),
                &[
                    "--max-instructions",
                    &(io_split - LINUX_GAP).to_string(),
                    "--snapshot-at-exit",
                    &s(&io_snap),
                ],
            ),
            None,
        );
        b.expect(124);
        assert_eq!(b.hash().1, io_split);
        let c = x86emu(
            &with(
                resume_args(&g, &io_snap),
                &[
                    "--max-instructions",
                    &(LINUX_SHELL - io_split).to_string(),
                    "--snapshot-at-exit",
                    &s(&snap),
                ],
            ),
            None,
        );
        c.expect(124);
        let hash = c.hash();
        let stdout = [a.stdout, b.stdout, c.stdout].concat();
        let text = String::from_utf8_lossy(&stdout);
        assert!(
            text[text.len().saturating_sub(100)..].contains("x86emu# "),
            "the guest is not at its prompt at {LINUX_SHELL}:\n{}",
            &text[text.len().saturating_sub(2000)..]
        );
        Shell {
            dir,
            io_split,
            io_snap,
            snap,
            stdout,
            hash,
        }
    })
}

/// Restore a snapshot into a machine built here (for looking at device state).
fn restore(snap: &Path, disk: &Path, bios: Option<&Path>) -> x86emu::machine::PcMachine {
    use x86emu::machine::{BootSource, PcConfig, PcMachine, SnapshotConfig};
    let bytes = x86emu::snapshot::read_file(snap).unwrap();
    let c = SnapshotConfig::from_snapshot(&bytes).unwrap();
    let mut drives = x86emu::devices::ide::IdeDrives::new();
    let base = x86emu::disk::RawFileDisk::open(disk).unwrap();
    drives
        .attach_hard_disk(0, 0, Box::new(x86emu::disk::CowDisk::new(Box::new(base))))
        .unwrap();
    let source = match bios {
        Some(b) => BootSource::Bios(std::fs::read(b).unwrap()),
        None => BootSource::None,
    };
    let config = PcConfig {
        ram_size: c.ram_size,
        clock: x86emu::clock::Clock { ips: c.clock_ips },
        rtc_base: c.rtc_base,
        ..PcConfig::default()
    };
    let mut m = PcMachine::new(config, source, drives).unwrap();
    m.restore_snapshot(&bytes).unwrap();
    m
}

/// ATA status of the primary channel, read through the alternate status register (no
/// side effects): BSY 0x80, DRQ 0x08.
fn ata_status(m: &mut x86emu::machine::PcMachine) -> u8 {
    m.board.ide.io_read(0x3F6, 1, &mut m.board.drives) as u8
}

/// An IDE command on the primary channel is in flight: busy, data waiting (DRQ), a DMA
/// transfer set up, or its completion interrupt not yet taken by the driver.
fn ide_busy(m: &mut x86emu::machine::PcMachine) -> bool {
    ata_status(m) & 0x88 != 0 || m.board.ide.dma_pending() || m.board.ide.irq_level(0)
}

#[test]
fn linux_split_mid_boot_and_mid_disk_io_matches_straight_run() {
    let g = guest_dir();
    let straight = {
        let args = with(
            linux_boot_args(&g),
            &["--max-instructions", &LINUX_SHELL.to_string()],
        );
        std::thread::spawn(move || x86emu(&args, None))
    };
    let sh = shell();
    // The snapshot the second process wrote is in the middle of the disk command, as the
    // in-process copy was.
    let mut m = restore(&sh.io_snap, &g.join("disk.img"), None);
    assert!(
        ide_busy(&mut m),
        "snapshot at {} is not mid-I/O",
        sh.io_split
    );
    drop(m);
    let straight = straight.join().unwrap();
    straight.expect(124);
    assert_eq!(straight.hash(), sh.hash, "N straight vs N/2 + resume + N/2");
    assert!(
        straight.stdout == sh.stdout,
        "console output differs:\nstraight:\n{}\nsplit:\n{}",
        straight.tail(),
        String::from_utf8_lossy(&sh.stdout[sh.stdout.len().saturating_sub(2000)..])
    );
}

/// SeaBIOS from the IDE disk, then SYSLINUX loading Linux: run twice straight (same hash
/// and output), and in three processes split mid-POST and in the middle of a PIO sector
/// transfer (found here by stepping the machine in-process).
#[test]
fn bios_disk_boot_twice_and_split_mid_post_and_mid_pio_read() {
    let g = guest_dir();
    let bios = Path::new("/usr/share/seabios/bios-256k.bin");
    assert!(
        bios.exists(),
        "{} is missing: install the Debian package `seabios`",
        bios.display()
    );
    let disk = g.join("disk.img");
    // Find an instruction count where SYSLINUX is in the middle of reading a sector
    // (DRQ set: data waiting in the drive's buffer).
    let mid_pio = {
        use x86emu::machine::{BootSource, PcConfig, PcMachine};
        let mut drives = x86emu::devices::ide::IdeDrives::new();
        let base = x86emu::disk::RawFileDisk::open(&disk).unwrap();
        drives
            .attach_hard_disk(0, 0, Box::new(x86emu::disk::CowDisk::new(Box::new(base))))
            .unwrap();
        let config = PcConfig {
            vga_bios: std::fs::read("/usr/share/seabios/vgabios-isavga.bin").ok(),
            ..PcConfig::default()
        };
        let mut m = PcMachine::new(
            config,
            BootSource::Bios(std::fs::read(bios).unwrap()),
            drives,
        )
        .unwrap();
        let mut found = None;
        let mut seen_serial = false;
        while m.cpu.state.icount < BIOS_N {
            m.run(97_001);
            seen_serial |= !m.board.com1.take_output().is_empty();
            // Past SeaBIOS's own probing: SYSLINUX has printed its banner.
            if seen_serial && ata_status(&mut m) & 0x08 != 0 {
                found = Some(m.cpu.state.icount);
                break;
            }
        }
        found.expect("no PIO transfer in progress found during the disk boot")
    };
    assert!(
        BIOS_POST < mid_pio,
        "POST split {BIOS_POST} is after {mid_pio}"
    );
    let dir = scratch("bios");
    let boot = |extra: &[&str]| {
        let mut a = vec![
            "boot".to_string(),
            s(&disk),
            "--display".into(),
            "none".into(),
            "--print-state-hash".into(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let n = BIOS_N.to_string();
    let straight = {
        let a = boot(&["--max-instructions", &n]);
        std::thread::spawn(move || x86emu(&a, None))
    };
    let again = x86emu(&boot(&["--max-instructions", &n]), None);
    again.expect(124);

    let s1 = dir.join("post.snap");
    let s2 = dir.join("pio.snap");
    let p1 = x86emu(
        &boot(&[
            "--max-instructions",
            &BIOS_POST.to_string(),
            "--snapshot-at-exit",
            &s(&s1),
        ]),
        None,
    );
    p1.expect(124);
    let resume = |snap: &Path, count: u64, out: Option<&Path>| {
        let mut a = vec![
            "resume".to_string(),
            s(snap),
            "--disk".into(),
            s(&disk),
            "--bios".into(),
            s(bios),
            "--display".into(),
            "none".into(),
            "--print-state-hash".into(),
            "--max-instructions".into(),
            count.to_string(),
        ];
        if let Some(o) = out {
            a.extend(["--snapshot-at-exit".to_string(), s(o)]);
        }
        x86emu(&a, None)
    };
    let p2 = resume(&s1, mid_pio - BIOS_POST, Some(&s2));
    p2.expect(124);
    assert_eq!(p2.hash().1, mid_pio);
    {
        let mut m = restore(&s2, &disk, Some(bios));
        assert!(
            ata_status(&mut m) & 0x08 != 0,
            "the resumed run's snapshot at {mid_pio} is not mid-transfer"
        );
    }
    let p3 = resume(&s2, BIOS_N - mid_pio, None);
    p3.expect(124);

    let straight = straight.join().unwrap();
    straight.expect(124);
    assert_eq!(straight.hash(), again.hash(), "two straight runs differ");
    assert_eq!(straight.stdout, again.stdout);
    assert_eq!(
        straight.hash(),
        p3.hash(),
        "straight vs split at {BIOS_POST} and {mid_pio}"
    );
    let split_out = [p1.stdout, p2.stdout, p3.stdout].concat();
    assert_eq!(straight.text(), String::from_utf8_lossy(&split_out));
    assert!(straight.text().contains("SYSLINUX"), "{}", straight.tail());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn pacing_to_the_wall_clock_leaves_the_guest_state_unchanged() {
    let g = guest_dir();
    let sh = shell();
    // 1.5 s of virtual time at the snapshot's 100 MHz.
    let n = "150000000";
    let t = Instant::now();
    let paced = x86emu(
        &with(
            resume_args(&g, &sh.snap),
            &["--realtime", "--max-instructions", n],
        ),
        None,
    );
    let paced_time = t.elapsed();
    paced.expect(124);
    let fast = x86emu(
        &with(
            resume_args(&g, &sh.snap),
            &["--no-realtime", "--max-instructions", n],
        ),
        None,
    );
    fast.expect(124);
    assert!(
        paced_time >= Duration::from_millis(1300),
        "--realtime did not pace: 1.5 s of virtual time took {paced_time:?}"
    );
    assert_eq!(paced.hash(), fast.hash());
    assert_eq!(paced.stdout, fast.stdout);
}

/// The events of a recording (parsed with the library's reader).
fn events(rec: &Path) -> Vec<x86emu::replay::Event> {
    x86emu::replay::read(rec)
        .unwrap()
        .events
        .into_iter()
        .map(|(e, _)| e)
        .collect()
}

#[test]
fn serial_session_replays_exactly_and_composes_with_snapshots() {
    use x86emu::replay::Input;
    let g = guest_dir();
    let sh = shell();
    let dir = scratch("serial");
    let rec = dir.join("session.rec");
    // Typed with irregular pauses, paced as an interactive session is.
    let script: Script = &[
        (0, "echo one\n"),
        (300, "uname -m\n"),
        (700, "echo $((6*7))x\n"),
        (150, "cat /proc/uptime\n"),
        (450, "poweroff -f\n"),
    ];
    let live = x86emu(
        &with(
            resume_args(&g, &sh.snap),
            &["--realtime", "--record", &s(&rec)],
        ),
        Some(script),
    );
    live.expect(0);
    assert!(live.text().contains("42x"), "{}", live.tail());
    let ev = events(&rec);
    assert!(
        ev.iter()
            .filter(|e| matches!(e.input, Input::Com1(_)))
            .count()
            >= 3,
        "{ev:?}"
    );
    let mut counts: Vec<u64> = ev.iter().map(|e| e.icount).collect();
    counts.dedup();
    assert!(counts.len() >= 3, "{ev:?}");

    // The replay: stdin is not read, no pacing.
    let replay = x86emu(
        &with(resume_args(&g, &sh.snap), &["--replay", &s(&rec)]),
        None,
    );
    replay.expect(0);
    assert_eq!(replay.hash(), live.hash());
    assert_eq!(replay.text(), live.text());

    // A snapshot taken mid-replay, exactly at the instruction count of the second event
    // (events there are delivered before the run stops), then resumed with the same
    // recording in a fresh process.
    let t0 = sh.hash.1;
    let at = ev[1].icount;
    let mid = dir.join("mid.snap");
    let first = x86emu(
        &with(
            resume_args(&g, &sh.snap),
            &[
                "--replay",
                &s(&rec),
                "--max-instructions",
                &(at - t0).to_string(),
                "--snapshot-at-exit",
                &s(&mid),
            ],
        ),
        None,
    );
    first.expect(124);
    assert_eq!(first.hash().1, at);
    // The snapshot knows how many events it has had (shown by snapshot-info).
    let info = x86emu(&["snapshot-info", &s(&mid)], None);
    info.expect(0);
    let had = ev.iter().filter(|e| e.icount <= at).count();
    assert!(
        info.text().contains(&format!("input events:    {had} ")),
        "{}",
        info.text()
    );
    let second = x86emu(&with(resume_args(&g, &mid), &["--replay", &s(&rec)]), None);
    second.expect(0);
    assert_eq!(second.hash(), live.hash());
    assert_eq!([first.stdout, second.stdout].concat(), live.stdout);

    // The recording does not fit a freshly booted machine, nor one whose state differs
    // from the recording's start; --record never overwrites a file that is not a
    // recording.
    let fresh = x86emu(
        &with(
            linux_boot_args(&g),
            &["--replay", &s(&rec), "--max-instructions", "1000"],
        ),
        None,
    );
    fresh.expect(1);
    assert!(
        fresh.stderr.contains("the recording starts at instruction"),
        "{}",
        fresh.stderr
    );
    let text = std::fs::read_to_string(&rec).unwrap();
    let state_line = text.lines().find(|l| l.starts_with("state ")).unwrap();
    let other = dir.join("other.rec");
    std::fs::write(
        &other,
        text.replace(state_line, &format!("state {}", "0".repeat(64))),
    )
    .unwrap();
    let foreign = x86emu(
        &with(resume_args(&g, &sh.snap), &["--replay", &s(&other)]),
        None,
    );
    foreign.expect(1);
    assert!(
        foreign
            .stderr
            .contains("the recording starts from machine state"),
        "{}",
        foreign.stderr
    );
    let precious = dir.join("notes.txt");
    std::fs::write(&precious, "not a recording\n").unwrap();
    let refused = x86emu(
        &with(resume_args(&g, &sh.snap), &["--record", &s(&precious)]),
        None,
    );
    refused.expect(1);
    assert!(
        refused.stderr.contains("not an x86emu recording"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        std::fs::read_to_string(&precious).unwrap(),
        "not a recording\n"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn recording_continues_across_snapshot_and_resume() {
    let g = guest_dir();
    let sh = shell();
    let dir = scratch("across");
    let rec = dir.join("session.rec");
    let mid = dir.join("mid.snap");
    // Part 1 stops at an exact count (3 s of virtual time, paced) with a snapshot.
    let part1 = x86emu(
        &with(
            resume_args(&g, &sh.snap),
            &[
                "--realtime",
                "--record",
                &s(&rec),
                "--max-instructions",
                "300000000",
                "--snapshot-at-exit",
                &s(&mid),
            ],
        ),
        Some(&[(0, "echo part-one\n"), (400, "echo $((2+3))-one\n")]),
    );
    part1.expect(124);
    assert!(part1.text().contains("part-one"), "{}", part1.tail());
    let n1 = events(&rec).len();
    assert!(n1 >= 1);

    // A run from the snapshot that goes on, records more, and is lost (its snapshot is
    // never used): its events must not stay in the recording.
    let lost = x86emu(
        &with(
            resume_args(&g, &mid),
            &["--record", &s(&rec), "--max-instructions", "200000000"],
        ),
        Some(&[(0, "echo lost-run\n")]),
    );
    lost.expect(124);
    assert!(events(&rec).len() > n1);

    // Part 2 resumes the snapshot and continues the recording.
    let part2 = x86emu(
        &with(resume_args(&g, &mid), &["--realtime", "--record", &s(&rec)]),
        Some(&[(0, "echo part-two\n"), (250, "poweroff -f\n")]),
    );
    part2.expect(0);
    assert!(
        part2.stderr.contains("event(s) recorded after that point"),
        "{}",
        part2.stderr
    );
    let text = std::fs::read_to_string(&rec).unwrap();
    assert!(!text.contains(&hex("echo lost-run")), "{text}");
    assert_eq!(text.matches("x86emu-replay").count(), 1, "{text}");

    // The whole session replays from its start in one process.
    let replay = x86emu(
        &with(resume_args(&g, &sh.snap), &["--replay", &s(&rec)]),
        None,
    );
    replay.expect(0);
    assert_eq!(replay.hash(), part2.hash());
    assert_eq!(replay.stdout, [part1.stdout, part2.stdout].concat());
    std::fs::remove_dir_all(&dir).unwrap();
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn keyboard_session_replays_exactly() {
    use x86emu::replay::Input;
    let g = guest_dir();
    let sh = shell();
    let dir = scratch("kbd");
    let rec = dir.join("keys.rec");
    let n = "300000000";
    // With COM1 in a file, host input goes to the PS/2 keyboard (the guest's VGA
    // console, tty0).
    let args = |serial: &Path, extra: &[&str]| {
        let mut a = with(
            resume_args(&g, &sh.snap),
            &[
                "--serial",
                &format!("file:{}", s(serial)),
                "--max-instructions",
                n,
            ],
        );
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let live = x86emu(
        &args(&dir.join("live.txt"), &["--realtime", "--record", &s(&rec)]),
        Some(&[(0, "ls\n"), (400, "\x1b[A"), (300, "abc\x7f")]),
    );
    live.expect(124);
    let ev = events(&rec);
    assert!(!ev.is_empty(), "no keyboard events recorded");
    assert!(
        ev.iter().all(|e| matches!(e.input, Input::Keyboard(_))),
        "{ev:?}"
    );
    let replay = x86emu(
        &args(&dir.join("replay.txt"), &["--replay", &s(&rec)]),
        None,
    );
    replay.expect(124);
    let quiet = x86emu(&args(&dir.join("quiet.txt"), &[]), None);
    quiet.expect(124);
    assert_eq!(replay.hash(), live.hash());
    assert_ne!(
        quiet.hash(),
        live.hash(),
        "the key presses did not reach the guest"
    );
    assert_eq!(
        std::fs::read(dir.join("replay.txt")).unwrap(),
        std::fs::read(dir.join("live.txt")).unwrap()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A recording written by hand (docs/replay-format.md): keys on the keyboard, then a
/// command on COM1 that shows the keyboard interrupts the guest took.
#[test]
fn hand_written_recording_types_on_the_guest_keyboard() {
    let g = guest_dir();
    let sh = shell();
    let t = sh.hash.1;
    let rec = sh.dir.join("hand.rec");
    std::fs::write(
        &rec,
        format!(
            "x86emu-replay 1\nstart {t} 0\n# five keys on the VGA console\n{} kbd {}\n{} com1 {}\n{} com1 {}\n",
            t + 1_000_000,
            hex("hello"),
            t + 40_000_000,
            hex("grep i8042 /proc/interrupts\n"),
            t + 90_000_000,
            hex("poweroff -f\n"),
        ),
    )
    .unwrap();
    // IRQ 1 count shown by the guest, replaying `file`.
    let irq1 = |file: &Path| {
        let r = x86emu(
            &with(resume_args(&g, &sh.snap), &["--replay", &s(file)]),
            None,
        );
        r.expect(0);
        let text = r.text();
        let line = text
            .lines()
            .find(|l| l.contains("i8042") && l.trim_start().starts_with("1:"))
            .unwrap_or_else(|| panic!("no i8042 line for IRQ 1:\n{text}"))
            .to_string();
        line.split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    let without_keys = sh.dir.join("hand-nokeys.rec");
    let text = std::fs::read_to_string(&rec).unwrap();
    std::fs::write(
        &without_keys,
        text.lines()
            .filter(|l| !l.contains(" kbd "))
            .map(|l| format!("{l}\n"))
            .collect::<String>(),
    )
    .unwrap();
    // Each key is a make and a break code (set 1 after translation), one IRQ each.
    assert_eq!(irq1(&rec), irq1(&without_keys) + 10);
}

// ----- slicing independence at the library level ---------------------------------------

mod slicing {
    use iced_x86::code_asm::*;
    use x86emu::cpu::SegReg;
    use x86emu::machine::{BootSource, PcConfig, PcMachine};

    const CODE: u32 = 0x1000;
    const HANDLER: u32 = 0x2000;
    /// The handler's results: a word and a counter.
    const OUT: u32 = 0x3000;

    fn asm(ip: u32, code: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>) -> Vec<u8> {
        let mut a = CodeAssembler::new(16).unwrap();
        code(&mut a).unwrap();
        a.assemble(ip as u64).unwrap()
    }

    /// Real mode: PIC initialised (vector base 8, only IRQ 0 unmasked), IVT entry 8 at
    /// the handler, interrupts off.
    fn setup(a: &mut CodeAssembler) -> Result<(), IcedError> {
        a.cli()?;
        for (port, v) in [
            (0x20u8, 0x11u8),
            (0x21, 0x08),
            (0x21, 0x04),
            (0x21, 0x01),
            (0x21, 0xFE),
        ] {
            a.mov(al, v as u32)?;
            a.out(port as u32, al)?;
        }
        a.mov(word_ptr(0x20), HANDLER)?;
        a.mov(word_ptr(0x22), 0u32)?;
        Ok(())
    }

    /// PIT channel 0, mode 0 (one interrupt at terminal count), `count` ticks.
    fn pit_one_shot(a: &mut CodeAssembler, count: u16) -> Result<(), IcedError> {
        a.mov(al, 0x30u32)?;
        a.out(0x43u32, al)?;
        a.mov(al, (count & 0xFF) as u32)?;
        a.out(0x40u32, al)?;
        a.mov(al, (count >> 8) as u32)?;
        a.out(0x40u32, al)
    }

    fn machine(
        main: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>,
        handler: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>,
    ) -> PcMachine {
        let config = PcConfig {
            ram_size: 4 << 20,
            ..PcConfig::default()
        };
        let mut m = PcMachine::new(
            config,
            BootSource::None,
            x86emu::devices::ide::IdeDrives::new(),
        )
        .unwrap();
        m.mem.write_bytes(CODE, &asm(CODE, main));
        m.mem.write_bytes(HANDLER, &asm(HANDLER, handler));
        let s = &mut m.cpu.state;
        for seg in [SegReg::Cs, SegReg::Ds, SegReg::Es, SegReg::Ss] {
            s.set_real_segment(seg, 0);
        }
        s.eip = CODE;
        s.gpr[4] = 0x7000;
        m.cpu.flush_caches();
        m
    }

    fn word(m: &PcMachine, a: u32) -> u16 {
        let mut b = [0u8; 2];
        m.mem.read_bytes(a, &mut b);
        u16::from_le_bytes(b)
    }

    /// Run `build()` to `n` instructions in slices of `slice`; (state hash, machine).
    fn run_sliced(build: &dyn Fn() -> PcMachine, n: u64, slice: u64) -> ([u8; 32], PcMachine) {
        let mut m = build();
        while m.cpu.state.icount < n {
            let exit = m.run(slice.min(n - m.cpu.state.icount));
            assert_eq!(exit, x86emu::machine::MachineExit::InstructionLimit);
        }
        (m.state_hash(), m)
    }

    /// A timer the guest programs in the middle of a run fires at its deadline, not where
    /// the run was going to stop: the run is cut at the device's new event. Five one-shot
    /// PIT interrupts re-armed by the handler, a busy loop counting in between; the same
    /// state whether the machine runs in one call or in slices of any length.
    #[test]
    fn a_timer_programmed_mid_run_fires_at_its_deadline_however_the_run_is_sliced() {
        let build = || {
            machine(
                |a| {
                    setup(a)?;
                    pit_one_shot(a, 1000)?;
                    a.sti()?;
                    let mut l = a.create_label();
                    a.set_label(&mut l)?;
                    a.inc(cx)?;
                    a.jmp(l)
                },
                |a| {
                    a.add(word_ptr(OUT), cx)?;
                    a.inc(word_ptr(OUT + 2))?;
                    a.cmp(word_ptr(OUT + 2), 5u32)?;
                    let mut skip = a.create_label();
                    a.jae(skip)?;
                    pit_one_shot(a, 700)?;
                    a.set_label(&mut skip)?;
                    a.mov(al, 0x20u32)?;
                    a.out(0x20u32, al)?;
                    a.iret()
                },
            )
        };
        let n = 2_000_000;
        let (h, m) = run_sliced(&build, n, n);
        assert_eq!(word(&m, OUT + 2), 5, "the five timer interrupts were taken");
        for slice in [977, 100_003, 1_999_999] {
            let (hs, ms) = run_sliced(&build, n, slice);
            assert_eq!(word(&ms, OUT), word(&m, OUT), "slices of {slice}");
            assert_eq!(hs, h, "slices of {slice}");
        }
    }

    /// An interrupt held back by STI's shadow is taken after exactly one instruction,
    /// not at the end of the decoded block that follows.
    #[test]
    fn an_interrupt_held_by_sti_is_taken_after_one_instruction() {
        let build = || {
            machine(
                |a| {
                    setup(a)?;
                    pit_one_shot(a, 2)?;
                    // Wait with interrupts off until the PIT has fired (IRQ 0 pending).
                    a.mov(cx, 1000u32)?;
                    let mut w = a.create_label();
                    a.set_label(&mut w)?;
                    a.loop_(w)?;
                    a.sti()?;
                    a.nop()?;
                    a.inc(dx)?;
                    for _ in 0..20 {
                        a.nop()?;
                    }
                    let mut l = a.create_label();
                    a.set_label(&mut l)?;
                    a.jmp(l)
                },
                |a| {
                    // The return address.
                    a.mov(bp, sp)?;
                    a.mov(ax, word_ptr(bp))?;
                    a.mov(word_ptr(OUT), ax)?;
                    a.inc(word_ptr(OUT + 2))?;
                    a.mov(al, 0x20u32)?;
                    a.out(0x20u32, al)?;
                    a.iret()
                },
            )
        };
        let n = 200_000;
        let (h, m) = run_sliced(&build, n, n);
        assert_eq!(word(&m, OUT + 2), 1);
        let ret = word(&m, OUT) as u32;
        let mut bytes = [0u8; 3];
        m.mem.read_bytes(ret - 2, &mut bytes);
        assert_eq!(
            bytes,
            [0xFB, 0x90, 0x42],
            "the interrupt returned to {ret:#x}, not to the INC after STI; NOP"
        );
        for slice in [1, 7, 1000] {
            assert_eq!(run_sliced(&build, n, slice).0, h, "slices of {slice}");
        }
    }
}
