//! The `x86emu` command line. No emulation logic lives here.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use x86emu::cpu::SegReg;
use x86emu::devices::bus::StopRequest;
use x86emu::{RomMachine, RunExit};

#[derive(Parser)]
#[command(name = "x86emu", version, about = "A pure-software IA-32 PC emulator")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a 64 KiB or 128 KiB BIOS-replacement ROM (test ROMs, CPU test suites).
    ///
    /// The ROM is mapped below 1 MiB and at the top of 4 GiB and the CPU starts at
    /// F000:FFF0. Bytes written to port 0xE9 go to stdout, POST codes (the POST port and
    /// 0x80) to stderr. Exit status: (value << 1) | 1 for a write of `value` to port 0xF4,
    /// 0 when the CPU halts, 124 at the instruction limit, 2 for a shutdown (triple
    /// fault) or an unimplemented feature, 1 for bad input.
    RunRom {
        /// The ROM image.
        file: std::path::PathBuf,
        /// Stop after this many instructions (REP iterations count one each).
        #[arg(long, default_value_t = 1_000_000_000)]
        max_instructions: u64,
        /// POST code port (decimal or 0x-prefixed hex); 0x80 is always logged too.
        #[arg(long, default_value = "0x190", value_parser = parse_port)]
        post_port: u16,
        /// RAM size in MiB.
        #[arg(long, default_value_t = 16)]
        memory: usize,
    },
    /// Boot a PC: SeaBIOS from the disk image, or a Linux/multiboot kernel directly.
    ///
    /// Exit status: 0 guest power-off (or Ctrl-A x), (value << 1) | 1 for a write of
    /// `value` to port 0xF4, 85 checkpointed after a signal (--checkpoint-exit-code), 124
    /// at --max-instructions, 1 fatal error, 2 usage error, 3 unusable snapshot.
    Boot(BootArgs),
    /// Continue a snapshot (written with Ctrl-A s) with the terminal attached.
    ///
    /// Attach the same disk images as the snapshotted machine had (checked by size and content
    /// hash); their guest writes come from the snapshot. Exit status 3: unusable snapshot.
    /// With --snapshot-dir, the directory starts a new run from the snapshot (as
    /// `boot --resume never` would); continue a checkpoint directory with
    /// `boot --resume auto` instead.
    Resume(ResumeArgs),
    /// Snapshot files.
    Snapshot {
        #[command(subcommand)]
        cmd: SnapshotCmd,
    },
    /// The same as `snapshot info`.
    #[command(hide = true)]
    SnapshotInfo {
        /// The snapshot file.
        file: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
enum SnapshotCmd {
    /// Check a snapshot file and print its header, sections and their sizes, the machine
    /// configuration, the instruction count, the checkpoint generation and console
    /// position (for checkpoints) and the state hash. Exit status 3 if it is unusable.
    Info {
        /// The snapshot file.
        file: std::path::PathBuf,
    },
}

/// Options shared by `boot` and `resume`: disks and how the console runs.
#[derive(clap::Args)]
struct RunArgs {
    /// A second disk image (IDE primary slave).
    #[arg(long)]
    hdb: Option<std::path::PathBuf>,
    /// An ISO image in the CD-ROM drive (IDE secondary master).
    #[arg(long)]
    cdrom: Option<std::path::PathBuf>,
    /// Write the guest's disk changes into the hard disk images when the run ends (guest
    /// power-off, Ctrl-A x, instruction limit). Without it the images are never modified.
    /// During the run writes stay in the copy-on-write overlay, so snapshots taken meanwhile
    /// are consistent; once the images change, those snapshots no longer resume (their
    /// disk identity, the images' SHA-256, differs). Not with checkpoints or record/replay,
    /// which need the images as they were.
    #[arg(long, conflicts_with_all = ["snapshot_dir", "snapshot_at_exit", "record", "replay"])]
    persist: bool,
    /// BIOS image (default: SeaBIOS from /usr/share/seabios or /usr/share/qemu).
    #[arg(long)]
    bios: Option<std::path::PathBuf>,
    /// What the terminal shows: auto (VGA text until the guest uses the serial port),
    /// text (VGA text), none (serial only).
    #[arg(long, default_value = "auto", value_parser = ["auto", "text", "none"])]
    display: String,
    /// COM1: stdio (the terminal), file:PATH, or null.
    #[arg(long, default_value = "stdio", value_parser = parse_serial)]
    serial: x86emu::console::SerialOut,
    /// Stop after this many instructions of virtual time (boot: counted from power-on,
    /// also after a resume from --snapshot-dir; resume: from the snapshot).
    #[arg(long)]
    max_instructions: Option<u64>,
    /// Run as fast as possible instead of pacing virtual time to the wall clock
    /// (the default when stdin is not a terminal).
    #[arg(long)]
    no_realtime: bool,
    /// Pace virtual time to the wall clock even when stdin is not a terminal. Pacing only
    /// sleeps: the guest's clocks follow the instruction count either way.
    #[arg(long, conflicts_with = "no_realtime")]
    realtime: bool,
    /// Log every host input event (COM1 bytes, key presses, Ctrl-A x) with its
    /// instruction count to FILE (docs/replay-format.md). Continuing a snapshot, an
    /// existing FILE is the recording to continue.
    #[arg(long, value_name = "FILE", conflicts_with = "replay")]
    record: Option<std::path::PathBuf>,
    /// Feed the input recorded in FILE at its instruction counts instead of reading
    /// stdin (a terminal keeps the Ctrl-A keys); the run then goes on without input
    /// until the guest stops, --max-instructions, or the recorded Ctrl-A x.
    #[arg(long, value_name = "FILE")]
    replay: Option<std::path::PathBuf>,
    /// When the run ends (instruction limit, power-off, Ctrl-A x, end of a replay), write
    /// a snapshot to FILE: with --max-instructions, a snapshot at an exact instruction
    /// count.
    #[arg(long, value_name = "FILE")]
    snapshot_at_exit: Option<std::path::PathBuf>,
    /// Copy the firmware's debug output (port 0x402) to stderr.
    #[arg(long)]
    firmware_debug: bool,
    /// Print the state hash (CPU, RAM, devices, disk overlays) to stderr at exit.
    #[arg(long)]
    print_state_hash: bool,
    /// A checkpoint directory (created if missing; see README, "Batch jobs and
    /// checkpoints"): SIGTERM, SIGINT, SIGUSR1, SIGUSR2 and SIGXCPU write
    /// DIR/checkpoint.snap (the previous one becomes checkpoint.prev.snap) and exit with
    /// --checkpoint-exit-code; the guest's COM1 output also goes to DIR/console.log; a
    /// finished guest is recorded in DIR/done; DIR/lock keeps a second emulator out.
    /// Ctrl-A s snapshots go here too (default: the current directory).
    #[arg(long)]
    snapshot_dir: Option<std::path::PathBuf>,
    /// Exit status after a checkpoint on a signal.
    #[arg(long, default_value_t = x86emu::checkpoint::DEFAULT_EXIT_CODE,
          value_parser = clap::value_parser!(u8).range(1..))]
    checkpoint_exit_code: u8,
    /// Also write a checkpoint whenever this much host (wall-clock) time has passed since
    /// the last one: 30s, 5m, 1h, 250ms, or plain seconds. It bounds the work lost when
    /// the job is killed; it never changes what the guest computes.
    #[arg(long, requires = "snapshot_dir", value_parser = x86emu::checkpoint::parse_duration)]
    checkpoint_interval: Option<std::time::Duration>,
    /// CPU model: pentium, pentium-mmx, pentium2, pentium3, pentium-m, pentium4, legacy
    /// (boot: default pentium-m; resume: the snapshot's, and another is an error).
    #[arg(long, value_name = "MODEL")]
    cpu: Option<x86emu::cpu::CpuModel>,
}

#[derive(clap::Args)]
struct ResumeArgs {
    /// The snapshot file.
    file: std::path::PathBuf,
    /// The disk image that was the IDE primary master.
    #[arg(long)]
    disk: Option<std::path::PathBuf>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(clap::Args)]
struct BootArgs {
    /// Disk image (raw) to boot from (IDE primary master).
    disk: Option<std::path::PathBuf>,
    /// Boot this kernel directly, without firmware (Linux bzImage or Multiboot v1).
    #[arg(long)]
    kernel: Option<std::path::PathBuf>,
    /// Initrd for --kernel (Multiboot: module 0).
    #[arg(long, requires = "kernel")]
    initrd: Option<std::path::PathBuf>,
    /// Kernel command line for --kernel.
    #[arg(long, requires = "kernel", default_value = "")]
    append: String,
    /// RAM size in MiB.
    #[arg(short = 'm', long, default_value_t = 128)]
    memory: u64,
    /// Virtual CPU speed in millions of instructions per second: how fast the guest's
    /// clocks (TSC, timers, RTC) advance per retired instruction.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    mhz: u64,
    /// What to do with --snapshot-dir's contents: auto (the default with --snapshot-dir)
    /// continues from the newest usable checkpoint, or reports a finished guest again,
    /// or boots if there is nothing; require is auto but exits 3 when there is no
    /// checkpoint; never starts over (discarding the directory's checkpoints, done
    /// marker and console.log). Give the same options as the checkpointed run.
    #[arg(long)]
    resume: Option<x86emu::checkpoint::ResumeMode>,
    /// What the guest's real-time clock shows at power-on: seconds since 1970-01-01 UTC,
    /// a UTC date YYYY-MM-DD[THH:MM:SS], or `now` (the host's time, read once; printed
    /// so the run can be repeated). Part of the machine configuration, stored in
    /// snapshots. Default: 2024-01-01T00:00:00Z.
    #[arg(long, default_value = "2024-01-01T00:00:00Z")]
    rtc_base: String,
    #[command(flatten)]
    run: RunArgs,
}

fn parse_serial(s: &str) -> Result<x86emu::console::SerialOut, String> {
    use x86emu::console::SerialOut;
    match s {
        "stdio" => Ok(SerialOut::Stdio),
        "null" => Ok(SerialOut::Null),
        _ => match s.strip_prefix("file:") {
            Some(p) if !p.is_empty() => Ok(SerialOut::File(p.into())),
            _ => Err(format!(
                "invalid --serial '{s}': use stdio, null or file:PATH"
            )),
        },
    }
}

fn read_file(what: &str, p: &std::path::Path) -> Result<Vec<u8>, ExitCode> {
    std::fs::read(p).map_err(|e| {
        eprintln!("x86emu: cannot read {what} {}: {e}", p.display());
        ExitCode::from(1)
    })
}

const BIOS_SEARCH: &[&str] = &[
    "/usr/share/seabios/bios-256k.bin",
    "/usr/share/seabios/bios.bin",
    "/usr/share/qemu/bios-256k.bin",
    "/usr/share/qemu/bios.bin",
];

fn boot(a: BootArgs) -> ExitCode {
    use x86emu::checkpoint::{ResumeMode, Resumed};
    use x86emu::machine::{BootSource, PcConfig, PcMachine};
    let mode = a.resume.unwrap_or(if a.run.snapshot_dir.is_some() {
        ResumeMode::Auto
    } else {
        ResumeMode::Never
    });
    if mode != ResumeMode::Never && a.run.snapshot_dir.is_none() {
        eprintln!("x86emu: --resume auto|require needs --snapshot-dir");
        return ExitCode::from(2);
    }
    let mut dir = match open_dir(&a.run) {
        Ok(d) => d,
        Err(c) => return c,
    };
    if let (Some(d), true) = (dir.as_mut(), mode != ResumeMode::Never) {
        match d.done_marker() {
            Ok(Some(done)) => return report_done(d, &done, &a.run),
            Ok(None) => {}
            Err(e) => {
                eprintln!("x86emu: {e}");
                return ExitCode::from(e.exit_code());
            }
        }
    }
    let source = if let Some(k) = &a.kernel {
        let kernel = match read_file("kernel", k) {
            Ok(b) => b,
            Err(c) => return c,
        };
        let initrd = match &a.initrd {
            Some(p) => match read_file("initrd", p) {
                Ok(b) => Some(b),
                Err(c) => return c,
            },
            None => None,
        };
        BootSource::Kernel {
            kernel,
            initrd,
            cmdline: a.append.clone(),
        }
    } else {
        match load_bios(a.run.bios.as_deref()) {
            Ok(b) => BootSource::Bios(b),
            Err(c) => return c,
        }
    };
    let vga_bios = [
        "/usr/share/seabios/vgabios-isavga.bin",
        "/usr/share/qemu/vgabios-isavga.bin",
    ]
    .iter()
    .find_map(|p| std::fs::read(p).ok());
    let rtc_base = match x86emu::clock::parse_rtc_base(&a.rtc_base, || {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        eprintln!("x86emu: --rtc-base now: {t}");
        t
    }) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("x86emu: {e}");
            return ExitCode::from(1);
        }
    };
    let config = PcConfig {
        ram_size: a.memory << 20,
        clock: x86emu::clock::Clock::new(a.mhz * 1_000_000),
        rtc_base,
        firmware_debug: a.run.firmware_debug,
        vga_bios,
        cpu_model: a.run.cpu.unwrap_or_default(),
    };
    let drives = match attach_drives(a.disk.as_deref(), &a.run) {
        Ok(d) => d,
        Err(c) => return c,
    };
    let mut m = match PcMachine::new(config, source, drives) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("x86emu: {e}");
            return ExitCode::from(1);
        }
    };
    if let Some(d) = dir.as_mut() {
        let r = match mode {
            ResumeMode::Never => d.start_fresh().map(|()| Resumed::Fresh),
            _ => d.resume(&mut m, mode == ResumeMode::Require),
        };
        match r {
            Ok(Resumed::From { path, generation }) => eprintln!(
                "x86emu: resuming from {} (generation {generation}, instruction {})",
                path.display(),
                m.cpu.state.icount
            ),
            Ok(Resumed::Fresh) => {}
            Err(e) => {
                eprintln!("x86emu: {e}");
                return ExitCode::from(e.exit_code());
            }
        }
    }
    // boot's instruction limit counts from power-on, also after a resume: a job
    // interrupted and resumed stops where an uninterrupted one does.
    let limit = a
        .run
        .max_instructions
        .map(|n| n.saturating_sub(m.cpu.state.icount));
    run_console(&mut m, &a.run, limit, dir.as_mut())
}

/// Open and lock --snapshot-dir and install the checkpoint signal handlers.
fn open_dir(a: &RunArgs) -> Result<Option<x86emu::checkpoint::CheckpointDir>, ExitCode> {
    let Some(p) = &a.snapshot_dir else {
        return Ok(None);
    };
    let d = x86emu::checkpoint::CheckpointDir::open(p).map_err(|e| {
        eprintln!("x86emu: {e}");
        ExitCode::from(e.exit_code())
    })?;
    if let Err(e) = x86emu::checkpoint::install_handlers() {
        eprintln!("x86emu: cannot install checkpoint signal handlers: {e}");
        return Err(ExitCode::from(1));
    }
    Ok(Some(d))
}

/// A finished guest's directory: say so and exit with its status again.
fn report_done(
    d: &mut x86emu::checkpoint::CheckpointDir,
    done: &x86emu::checkpoint::DoneMarker,
    a: &RunArgs,
) -> ExitCode {
    if let Err(e) = d.replay_done(done) {
        eprintln!("x86emu: {e}");
        return ExitCode::from(e.exit_code());
    }
    eprintln!(
        "x86emu: {}: the guest already finished ({} at instruction {}, exit status {}); not running it again",
        d.path().join(x86emu::checkpoint::DONE_FILE).display(),
        done.reason,
        done.icount,
        done.status
    );
    if a.print_state_hash {
        eprintln!(
            "x86emu: state hash {} at instruction {}",
            x86emu::snapshot::to_hex(&done.state_hash),
            done.icount
        );
    }
    ExitCode::from(done.status)
}

fn load_bios(path: Option<&std::path::Path>) -> Result<Vec<u8>, ExitCode> {
    let bios_path = match path {
        Some(p) => p.to_path_buf(),
        None => match BIOS_SEARCH
            .iter()
            .map(std::path::PathBuf::from)
            .find(|p| p.exists())
        {
            Some(p) => p,
            None => {
                eprintln!(
                    "x86emu: no BIOS found (looked in {}); install the Debian package `seabios` or pass --bios FILE",
                    BIOS_SEARCH.join(", ")
                );
                return Err(ExitCode::from(1));
            }
        },
    };
    read_file("BIOS", &bios_path)
}

/// The IDE drives: primary master `disk`, primary slave `--hdb`, secondary master
/// `--cdrom`, each behind a copy-on-write overlay (the image files are modified only by
/// `--persist`, which opens the hard disks writable and commits the overlays at the end).
fn attach_drives(
    disk: Option<&std::path::Path>,
    a: &RunArgs,
) -> Result<x86emu::devices::ide::IdeDrives, ExitCode> {
    let mut drives = x86emu::devices::ide::IdeDrives::new();
    let mut attach =
        |path: &std::path::Path, cd: bool, ch: usize, unit: usize| -> Result<(), ExitCode> {
            let fail = |e: String| {
                eprintln!("x86emu: {}: {e}", path.display());
                ExitCode::from(1)
            };
            let base = if a.persist && !cd {
                x86emu::disk::RawFileDisk::open_writable(path)
            } else {
                x86emu::disk::RawFileDisk::open(path)
            }
            .map_err(|e| fail(e.to_string()))?;
            let disk = Box::new(x86emu::disk::CowDisk::new(Box::new(base)));
            if cd {
                drives.attach_cdrom(ch, unit, Some(disk))
            } else {
                drives.attach_hard_disk(ch, unit, disk)
            }
            .map_err(|e| fail(e.to_string()))
        };
    if let Some(d) = disk {
        attach(d, false, 0, 0)?;
    }
    if let Some(d) = &a.hdb {
        attach(d, false, 0, 1)?;
    }
    if let Some(d) = &a.cdrom {
        attach(d, true, 1, 0)?;
    }
    Ok(drives)
}

fn resume(a: ResumeArgs) -> ExitCode {
    use x86emu::clock::Clock;
    use x86emu::machine::{BootSource, PcConfig, PcMachine, SnapshotConfig};
    if let Some(d) = &a.run.snapshot_dir {
        let same = |f: &str| {
            let c = |p: &std::path::Path| std::fs::canonicalize(p).ok();
            c(&a.file).is_some() && c(&a.file) == c(&d.join(f))
        };
        if same(x86emu::checkpoint::CHECKPOINT_FILE) || same(x86emu::checkpoint::PREVIOUS_FILE) {
            eprintln!(
                "x86emu: {} is a checkpoint of --snapshot-dir {}: continue it with `x86emu boot --resume auto --snapshot-dir {}` and the options of the checkpointed run",
                a.file.display(),
                d.display(),
                d.display()
            );
            return ExitCode::from(2);
        }
    }
    let mut dir = match open_dir(&a.run) {
        Ok(d) => d,
        Err(c) => return c,
    };
    let unusable = |e: &dyn std::fmt::Display| {
        eprintln!("x86emu: {}: {e}", a.file.display());
        ExitCode::from(3)
    };
    let bytes = match x86emu::snapshot::read_file(&a.file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("x86emu: {e}");
            return ExitCode::from(3);
        }
    };
    let saved = match SnapshotConfig::from_snapshot(&bytes) {
        Ok(c) => c,
        Err(e) => return unusable(&e),
    };
    // The firmware is not stored in the snapshot: map the same image (checked by hash).
    let source = if saved.rom_sha256.is_some() {
        match load_bios(a.run.bios.as_deref()) {
            Ok(b) => BootSource::Bios(b),
            Err(c) => return c,
        }
    } else {
        BootSource::None
    };
    let config = PcConfig {
        ram_size: saved.ram_size,
        clock: Clock {
            ips: saved.clock_ips,
        },
        rtc_base: saved.rtc_base,
        firmware_debug: a.run.firmware_debug,
        vga_bios: None,
        cpu_model: a.run.cpu.unwrap_or(saved.cpu_model),
    };
    let drives = match attach_drives(a.disk.as_deref(), &a.run) {
        Ok(d) => d,
        Err(c) => return c,
    };
    let mut m = match PcMachine::new(config, source, drives) {
        Ok(m) => m,
        Err(e) => return unusable(&e),
    };
    if let Err(e) = m.restore_snapshot(&bytes) {
        return unusable(&e);
    }
    if let Some(d) = dir.as_mut() {
        if let Err(e) = d.start_fresh() {
            eprintln!("x86emu: {e}");
            return ExitCode::from(e.exit_code());
        }
    }
    run_console(&mut m, &a.run, a.run.max_instructions, dir.as_mut())
}

fn snapshot_info(file: &std::path::Path) -> ExitCode {
    use x86emu::machine::{describe_disk_identity, SnapshotSummary};
    use x86emu::snapshot::{to_hex, SnapshotReader};
    let unusable = |e: &dyn std::fmt::Display| {
        eprintln!("x86emu: {}: {e}", file.display());
        ExitCode::from(3)
    };
    let bytes = match x86emu::snapshot::read_file(file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("x86emu: {e}");
            return ExitCode::from(3);
        }
    };
    let r = match SnapshotReader::parse(&bytes) {
        Ok(r) => r,
        Err(e) => return unusable(&e),
    };
    let sum = match SnapshotSummary::of(&bytes) {
        Ok(s) => s,
        Err(e) => return unusable(&e),
    };
    let meta = match x86emu::checkpoint::CheckpointMeta::of(&r) {
        Ok(m) => m,
        Err(e) => return unusable(&e),
    };
    println!("file:            {}", file.display());
    println!("size:            {} bytes", bytes.len());
    println!("format version:  {}", r.format_version());
    println!(
        "checksum:        {} (SHA-256, verified)",
        to_hex(&r.checksum())
    );
    println!("sections:");
    for s in r.sections() {
        println!(
            "  {:<10} v{:<3} {:>12} bytes{}",
            s.name,
            s.version,
            s.data.len(),
            if s.required { "" } else { "  (optional)" }
        );
    }
    let c = &sum.config;
    println!("machine:         {}", c.model);
    println!(
        "CPU:             {} ({})",
        c.cpu_model,
        c.cpu_model.info().part
    );
    println!("RAM:             {} MiB", c.ram_size >> 20);
    println!("clock:           {} instructions/s", c.clock_ips);
    println!("RTC base:        {} (Unix time)", c.rtc_base);
    match &c.rom_sha256 {
        Some(h) => println!("firmware:        SHA-256 {}", to_hex(h)),
        None => println!("firmware:        none (direct kernel boot)"),
    }
    for (i, d) in c.disks.iter().enumerate() {
        if d.is_some() {
            println!(
                "IDE {}:{}:         {}",
                i / 2,
                i % 2,
                describe_disk_identity(d)
            );
        }
    }
    println!("instructions:    {}", sum.icount);
    if r.section(x86emu::checkpoint::CHECKPOINT_SECTION).is_some() {
        println!("checkpoint:      generation {}", meta.generation);
    }
    if let Some(n) = meta.console_len {
        println!("console.log:     {n} bytes seen");
    }
    let input = x86emu::machine::INPUT_SECTION.name;
    if let Some((_, data)) = r.section(input) {
        match x86emu::snapshot::decode::<u64>(input, data) {
            Ok(n) => println!("input events:    {n} (its position in a --record recording)"),
            Err(e) => return unusable(&e),
        }
    }
    println!("state hash:      {}", to_hex(&sum.state_hash));
    ExitCode::from(0)
}

/// Run `m` with the terminal attached until it stops (`limit`: instructions from now);
/// the exit status says why. With a checkpoint directory, the end is recorded there: a
/// finished guest in `DIR/done`, the instruction limit as a final checkpoint.
fn run_console(
    m: &mut x86emu::machine::PcMachine,
    a: &RunArgs,
    limit: Option<u64>,
    mut dir: Option<&mut x86emu::checkpoint::CheckpointDir>,
) -> ExitCode {
    use x86emu::console::{ConsoleExit, ConsoleOptions, Display};
    use x86emu::machine::MachineExit;
    let opts = ConsoleOptions {
        display: match a.display.as_str() {
            "text" => Display::Text,
            "none" => Display::None,
            _ => Display::Auto,
        },
        serial: a.serial.clone(),
        max_instructions: limit,
        realtime: a.realtime || (!a.no_realtime && x86emu::console::stdin_is_tty()),
        record: a.record.clone(),
        replay: a.replay.clone(),
        snapshot_dir: a.snapshot_dir.clone(),
    };
    if let Some(d) = dir.as_deref_mut() {
        d.set_interval(a.checkpoint_interval);
    }
    let exit = match x86emu::console::run_machine_in(m, &opts, dir.as_deref_mut()) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("x86emu: terminal error: {e}");
            return ExitCode::from(1);
        }
    };
    if a.persist && matches!(exit, ConsoleExit::Quit | ConsoleExit::Machine(_)) {
        match m.commit_disks() {
            Ok(0) => {}
            Ok(n) => eprintln!("\r\nx86emu: wrote the guest's changes into {n} disk image(s)"),
            Err(e) => {
                eprintln!("\r\nx86emu: writing the guest's disk changes failed: {e}");
                return ExitCode::from(1);
            }
        }
    }
    if let (Some(p), false) = (
        &a.snapshot_at_exit,
        matches!(exit, ConsoleExit::InputLog(_)),
    ) {
        let bytes = m.save_snapshot();
        if let Err(e) = x86emu::snapshot::write_atomic(p, &bytes) {
            eprintln!("\r\nx86emu: {e}");
            return ExitCode::from(1);
        }
    }
    if a.print_state_hash {
        eprintln!(
            "\r\nx86emu: state hash {} at instruction {}",
            x86emu::snapshot::to_hex(&m.state_hash()),
            m.cpu.state.icount
        );
    }
    let s = &m.cpu.state;
    let cs = s.seg[SegReg::Cs as usize].selector;
    // (exit status, how the guest finished: recorded in DIR/done)
    let (code, finished): (u8, Option<&str>) = match exit {
        ConsoleExit::Quit => (0, None),
        ConsoleExit::InputLog(e) => {
            eprintln!("\r\nx86emu: {e}");
            (1, None)
        }
        ConsoleExit::Checkpoint(p) => {
            eprintln!("\r\nx86emu: checkpoint written to {}", p.display());
            (a.checkpoint_exit_code, None)
        }
        ConsoleExit::CheckpointFailed(e) => {
            eprintln!("\r\nx86emu: checkpoint failed: {e}");
            (1, None)
        }
        ConsoleExit::Machine(MachineExit::PowerOff) => (0, Some("power-off")),
        ConsoleExit::Machine(MachineExit::DebugExit(v)) => {
            (((v << 1) | 1) as u8, Some("debug-exit"))
        }
        ConsoleExit::Machine(MachineExit::InstructionLimit) => {
            eprintln!(
                "\r\nx86emu: instruction limit reached at {cs:04x}:{:08x}",
                s.eip
            );
            // A final checkpoint: the same command exits here again at once, and a
            // larger limit continues from here.
            if let Some(d) = dir.as_deref_mut() {
                match d.checkpoint_current(m) {
                    Ok(p) => eprintln!("x86emu: checkpoint written to {}", p.display()),
                    Err(e) => {
                        eprintln!("x86emu: checkpoint failed: {e}");
                        return ExitCode::from(1);
                    }
                }
            }
            (124, None)
        }
        ConsoleExit::Machine(MachineExit::Dead) => {
            eprintln!(
                "\r\nx86emu: the CPU halted with interrupts disabled at {cs:04x}:{:08x}",
                s.eip
            );
            (1, Some("halted"))
        }
        ConsoleExit::Machine(MachineExit::Idle) => {
            eprintln!("\r\nx86emu: the guest waits for input that cannot come");
            (1, None)
        }
        ConsoleExit::Machine(MachineExit::Unsupported { what, cs, eip }) => {
            eprintln!("\r\nx86emu: unsupported: {what} at {cs:04x}:{eip:08x}");
            (1, None)
        }
    };
    if let (Some(d), Some(reason)) = (dir, finished) {
        if let Err(e) = d.finish(m, code, reason) {
            eprintln!("x86emu: cannot record the finished guest: {e}");
            return ExitCode::from(1);
        }
    }
    ExitCode::from(code)
}

fn parse_port(s: &str) -> Result<u16, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u16::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|e| format!("invalid port '{s}': {e}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::RunRom {
            file,
            max_instructions,
            post_port,
            memory,
        } => run_rom(&file, max_instructions, post_port, memory),
        Cmd::Boot(a) => boot(a),
        Cmd::Resume(a) => resume(a),
        Cmd::Snapshot {
            cmd: SnapshotCmd::Info { file },
        }
        | Cmd::SnapshotInfo { file } => snapshot_info(&file),
    }
}

fn run_rom(file: &std::path::Path, max: u64, post_port: u16, memory_mib: usize) -> ExitCode {
    let rom = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("x86emu: cannot read ROM {}: {e}", file.display());
            return ExitCode::from(1);
        }
    };
    if !(1..=3072).contains(&memory_mib) {
        eprintln!("x86emu: --memory must be between 1 and 3072 MiB");
        return ExitCode::from(1);
    }
    let mut m = match RomMachine::new(
        &rom,
        memory_mib << 20,
        post_port,
        Box::new(std::io::stdout()),
        Box::new(std::io::stderr()),
    ) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("x86emu: {}: {e}", file.display());
            return ExitCode::from(1);
        }
    };
    let exit = m.run(max);
    if m.resets > 0 {
        eprintln!(
            "x86emu: the CPU was reset {} time(s) (triple fault or reset request)",
            m.resets
        );
    }
    let s = &m.cpu.state;
    let cs = s.seg[SegReg::Cs as usize].selector;
    match exit {
        RunExit::Stopped(StopRequest::DebugExit(v)) => ExitCode::from(((v << 1) | 1) as u8),
        RunExit::Stopped(other) => {
            eprintln!("x86emu: machine stopped: {other:?}");
            ExitCode::from(0)
        }
        RunExit::Halted => {
            if s.eflags() & x86emu::cpu::flags::IF != 0 {
                eprintln!(
                    "halted at {cs:04x}:{:08x} with interrupts enabled, but this machine has no interrupt sources",
                    s.eip
                );
            } else {
                eprintln!("halted at {cs:04x}:{:08x}", s.eip);
            }
            ExitCode::from(0)
        }
        RunExit::InstructionLimit => {
            eprintln!(
                "x86emu: instruction limit ({max}) reached at {cs:04x}:{:08x}",
                s.eip
            );
            ExitCode::from(124)
        }
        RunExit::TripleFault => {
            eprintln!("x86emu: triple fault (shutdown) at {cs:04x}:{:08x}", s.eip);
            ExitCode::from(2)
        }
        RunExit::Unsupported { what, cs, eip } => {
            eprintln!("x86emu: unsupported: {what} at {cs:04x}:{eip:08x}");
            ExitCode::from(2)
        }
        RunExit::Exception { vector, error_code } => {
            eprintln!(
                "x86emu: exception {vector} ({error_code:?}) at {cs:04x}:{:08x}",
                s.eip
            );
            ExitCode::from(2)
        }
    }
}
