//! Batch / scheduler checkpointing: the snapshot-directory contract of
//! `x86emu boot --snapshot-dir DIR` (README, "Batch jobs and checkpoints").
//!
//! A [`CheckpointDir`] owns a directory for the lifetime of the process:
//!
//! - `DIR/lock` is held with an exclusive `flock`, so a second emulator on the same
//!   directory stops with an error instead of overwriting it.
//! - `DIR/checkpoint.snap` is the newest checkpoint, `DIR/checkpoint.prev.snap` the one
//!   before. Each carries a generation number (optional snapshot section `checkpoint`)
//!   and the length of `console.log` it had seen (optional section `console`). A new
//!   checkpoint is written to a temporary file and fsynced; the current one is then
//!   hard-linked to `checkpoint.prev.snap` (so `checkpoint.snap` never disappears) and the
//!   new file renamed over `checkpoint.snap`, and the directory is fsynced. A crash at any
//!   moment leaves a complete newest or previous generation.
//! - Before each write, the directory's newest generation must still be the one this
//!   process resumed from or wrote last; otherwise someone else advanced the directory
//!   (the lock did not hold them back, e.g. on a file system without working `flock`) and
//!   the write is refused.
//! - `DIR/console.log` receives the guest's COM1 output. It is flushed to disk before a
//!   checkpoint that records its length, and truncated back to that length on resume, so
//!   output after the checkpoint is never duplicated.
//! - `DIR/done` records that the guest finished (power-off, debug-exit, a dead CPU) with
//!   its exit status and final state hash; resuming such a directory exits again with
//!   that status without running anything.
//!
//! Checkpoints only read the machine: when and how often they are taken never changes
//! what the guest computes.
//!
//! Signals (SIGTERM, SIGINT, SIGUSR1, SIGUSR2, SIGXCPU) only set an [`AtomicBool`]; the
//! console loop polls [`requested`] between `run` slices (instruction boundaries) and
//! writes the checkpoint on its own thread.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::machine::PcMachine;
use crate::snapshot::{self, SnapshotError, SnapshotReader};

/// The newest checkpoint in a snapshot directory.
pub const CHECKPOINT_FILE: &str = "checkpoint.snap";
/// The generation before it.
pub const PREVIOUS_FILE: &str = "checkpoint.prev.snap";
/// The marker of a finished guest.
pub const DONE_FILE: &str = "done";
/// The file the running emulator holds an exclusive `flock` on.
pub const LOCK_FILE: &str = "lock";
/// The guest's serial (COM1) output.
pub const CONSOLE_LOG: &str = "console.log";
/// The exit status after a checkpoint, unless configured otherwise.
pub const DEFAULT_EXIT_CODE: u8 = 85;
/// Optional snapshot section with the checkpoint's generation.
pub const CHECKPOINT_SECTION: &str = "checkpoint";
pub const CHECKPOINT_SECTION_VERSION: u32 = 1;
/// Optional snapshot section with the console position (`console.log` length).
pub const CONSOLE_SECTION: &str = "console";
pub const CONSOLE_SECTION_VERSION: u32 = 1;

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// What `boot` does with an existing checkpoint in the snapshot directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ResumeMode {
    /// Start over: the directory's checkpoints, done marker and console log are discarded.
    #[default]
    Never,
    /// Resume from the newest usable checkpoint if there is one, else boot.
    Auto,
    /// Resume; it is an error if there is no checkpoint.
    Require,
}

impl std::str::FromStr for ResumeMode {
    type Err = String;
    fn from_str(s: &str) -> Result<ResumeMode, String> {
        match s {
            "never" => Ok(ResumeMode::Never),
            "auto" => Ok(ResumeMode::Auto),
            "require" => Ok(ResumeMode::Require),
            _ => Err(format!(
                "invalid --resume '{s}': use auto, require or never"
            )),
        }
    }
}

/// Parse a duration: a number with an optional unit `ms`, `s` (the default), `m` or `h`,
/// e.g. `30s`, `5m`, `1.5h`, `250ms`, `90`. It must be positive.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || {
        format!("invalid duration '{s}': use a number with an optional unit ms, s, m or h (e.g. 30s, 5m, 1h)")
    };
    let t = s.trim();
    let (num, unit_ms): (&str, u128) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1000)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60_000)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3_600_000)
    } else {
        (t, 1000)
    };
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if int.is_empty() && frac.is_empty()
        || !int.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
        || int.len() > 12
        || frac.len() > 9
    {
        return Err(bad());
    }
    let int: u128 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| bad())?
    };
    let frac_v: u128 = if frac.is_empty() {
        0
    } else {
        frac.parse().map_err(|_| bad())?
    };
    // Whole microseconds: int * unit + frac * unit / 10^len.
    let us = int * unit_ms * 1000 + frac_v * unit_ms * 1000 / 10u128.pow(frac.len() as u32);
    if us == 0 {
        return Err(format!("invalid duration '{s}': it must be positive"));
    }
    Ok(Duration::from_micros(us.min(u64::MAX as u128) as u64))
}

extern "C" fn on_signal(_sig: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    REQUESTED.store(true, Ordering::SeqCst);
}

/// The signals that request a checkpoint. (With the terminal in raw mode Ctrl-C is a
/// byte for the guest, not a SIGINT, so SIGINT only comes from outside.)
pub const SIGNALS: [libc::c_int; 5] = [
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGXCPU,
];

/// Install the checkpoint request handler for [`SIGNALS`].
pub fn install_handlers() -> io::Result<()> {
    for sig in SIGNALS {
        // SAFETY: sigaction is plain old data; an all-zero value is a valid start (empty
        // flags, no handler) that is filled in below.
        let mut sa: libc::sigaction = unsafe { std::mem::zeroed() };
        sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        // SA_RESTART: interrupted reads/writes of the console resume by themselves.
        sa.sa_flags = libc::SA_RESTART;
        // SAFETY: sa.sa_mask is a valid sigset_t owned by this frame.
        unsafe { libc::sigemptyset(&mut sa.sa_mask) };
        // SAFETY: `sig` is a catchable signal, `sa` is fully initialized and the handler
        // only performs an async-signal-safe atomic store; the old action is not needed.
        if unsafe { libc::sigaction(sig, &sa, std::ptr::null_mut()) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Whether a checkpoint signal has arrived.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}

/// Ask for a checkpoint as a signal would (for embedders and tests).
pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// Forget a pending request.
pub fn clear() {
    REQUESTED.store(false, Ordering::SeqCst);
}

/// Payload of the optional `checkpoint` section (postcard).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointSection {
    /// 1 for the first checkpoint in a directory, one more for each later checkpoint or
    /// done marker.
    pub generation: u64,
}

/// Payload of the optional `console` section (postcard).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsoleSection {
    /// Bytes of COM1 output the host had taken from the machine when the snapshot was
    /// written: the length of `console.log` at that point.
    pub log_len: u64,
}

/// The checkpoint metadata of a snapshot: its generation (0 if it has no `checkpoint`
/// section) and console position (`None` without a `console` section).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct CheckpointMeta {
    pub generation: u64,
    pub console_len: Option<u64>,
}

impl CheckpointMeta {
    /// Read the optional `checkpoint` and `console` sections of a parsed snapshot.
    pub fn of(r: &SnapshotReader<'_>) -> Result<CheckpointMeta, SnapshotError> {
        let mut meta = CheckpointMeta::default();
        if r.section(CHECKPOINT_SECTION).is_some() {
            let c: CheckpointSection = snapshot::load_section(r, CHECKPOINT_SECTION, &[])?;
            meta.generation = c.generation;
        }
        if r.section(CONSOLE_SECTION).is_some() {
            let c: ConsoleSection = snapshot::load_section(r, CONSOLE_SECTION, &[])?;
            meta.console_len = Some(c.log_len);
        }
        Ok(meta)
    }
}

/// `m` as a checkpoint: its snapshot plus the `checkpoint` and `console` sections.
pub fn checkpoint_bytes(m: &PcMachine, meta: CheckpointMeta) -> Vec<u8> {
    let mut w = m.snapshot_writer();
    w.add_optional_section(
        CHECKPOINT_SECTION,
        CHECKPOINT_SECTION_VERSION,
        snapshot::encode(&CheckpointSection {
            generation: meta.generation,
        }),
    );
    if let Some(log_len) = meta.console_len {
        w.add_optional_section(
            CONSOLE_SECTION,
            CONSOLE_SECTION_VERSION,
            snapshot::encode(&ConsoleSection { log_len }),
        );
    }
    w.finish()
}

/// The record in `DIR/done`: how the guest finished.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DoneMarker {
    /// The exit status the emulator ended with.
    pub status: u8,
    /// Why: `power-off`, `debug-exit` or `halted`.
    pub reason: String,
    pub generation: u64,
    /// Retired instructions at the end.
    pub icount: u64,
    pub state_hash: [u8; 32],
    /// The final length of `console.log`.
    pub console_len: u64,
}

const DONE_MAGIC: &str = "x86emu-done 1";

impl DoneMarker {
    /// The file's text: one `key value` line per field after a version line.
    pub fn to_text(&self) -> String {
        format!(
            "{DONE_MAGIC}\nstatus {}\nreason {}\ngeneration {}\ninstructions {}\nstate-hash {}\nconsole-length {}\n",
            self.status,
            self.reason,
            self.generation,
            self.icount,
            snapshot::to_hex(&self.state_hash),
            self.console_len
        )
    }

    /// Parse [`DoneMarker::to_text`]'s output (exactly: every line, in order).
    pub fn parse(text: &str) -> Result<DoneMarker, String> {
        let mut lines = text.lines();
        if lines.next() != Some(DONE_MAGIC) {
            return Err(format!("the first line is not `{DONE_MAGIC}`"));
        }
        let mut field = |key: &str| -> Result<String, String> {
            let line = lines.next().ok_or(format!("`{key}` is missing"))?;
            match line.split_once(' ') {
                Some((k, v)) if k == key && !v.is_empty() => Ok(v.to_string()),
                _ => Err(format!("expected `{key} VALUE`, found {line:?}")),
            }
        };
        let num = |key: &str, v: String| -> Result<u64, String> {
            v.parse()
                .map_err(|_| format!("`{key}` is not a number: {v:?}"))
        };
        let status = field("status")?;
        let status: u8 = status
            .parse()
            .map_err(|_| format!("`status` is not 0..=255: {status:?}"))?;
        let reason = field("reason")?;
        if !["power-off", "debug-exit", "halted"].contains(&reason.as_str()) {
            return Err(format!("unknown reason {reason:?}"));
        }
        let generation = num("generation", field("generation")?)?;
        let icount = num("instructions", field("instructions")?)?;
        let hash = field("state-hash")?;
        let state_hash = parse_hex32(&hash).ok_or(format!("bad state hash {hash:?}"))?;
        let console_len = num("console-length", field("console-length")?)?;
        Ok(DoneMarker {
            status,
            reason,
            generation,
            icount,
            state_hash,
            console_len,
        })
    }
}

fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Why the snapshot directory could not be used. [`DirError::exit_code`] is the
/// emulator's exit status for it.
#[derive(Debug)]
pub enum DirError {
    /// A file operation failed.
    Io { path: PathBuf, error: io::Error },
    /// Another process holds `DIR/lock`.
    Locked { dir: PathBuf, holder: String },
    /// The directory moved on without this process: refuse to write.
    Conflict { problem: String },
    /// `--resume require` and nothing to resume.
    NoCheckpoint(PathBuf),
    /// No checkpoint is usable (each file with its problem).
    Unusable {
        dir: PathBuf,
        problems: Vec<(PathBuf, String)>,
    },
    /// The snapshot belongs to a differently configured machine.
    Mismatch { path: PathBuf, error: SnapshotError },
    /// `DIR/done` exists but cannot be parsed.
    BadDone { path: PathBuf, problem: String },
}

impl DirError {
    /// The exit status: 3 when a snapshot or done marker is unusable or missing, 1
    /// otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            DirError::Io { .. } | DirError::Locked { .. } | DirError::Conflict { .. } => 1,
            DirError::NoCheckpoint(_)
            | DirError::Unusable { .. }
            | DirError::Mismatch { .. }
            | DirError::BadDone { .. } => 3,
        }
    }

    fn io(path: &Path) -> impl Fn(io::Error) -> DirError + '_ {
        move |error| DirError::Io {
            path: path.to_path_buf(),
            error,
        }
    }
}

impl std::fmt::Display for DirError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DirError::Io { path, error } => write!(f, "{}: {error}", path.display()),
            DirError::Locked { dir, holder } => write!(
                f,
                "{} is in use by another x86emu ({holder}): two emulators must not share a snapshot directory",
                dir.display()
            ),
            DirError::Conflict { problem } => write!(f, "{problem}; refusing to overwrite it"),
            DirError::NoCheckpoint(d) => write!(
                f,
                "--resume require: no {CHECKPOINT_FILE} or {PREVIOUS_FILE} in {}",
                d.display()
            ),
            DirError::Unusable { dir, problems } => {
                write!(f, "no usable checkpoint in {}:", dir.display())?;
                for (p, e) in problems {
                    write!(f, "\n  {}: {e}", p.display())?;
                }
                Ok(())
            }
            DirError::Mismatch { path, error } => write!(
                f,
                "{}: {error} (give the same options as the checkpointed run)",
                path.display()
            ),
            DirError::BadDone { path, problem } => {
                write!(f, "{}: unusable done marker: {problem}", path.display())
            }
        }
    }
}

impl std::error::Error for DirError {}

/// Which file a path is (device, inode, size, modification time): tells whether
/// `checkpoint.snap` is still the file this process wrote or resumed from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileId(u64, u64, u64, i64, i64);

fn file_id(p: &Path) -> Option<FileId> {
    let m = std::fs::metadata(p).ok()?;
    Some(FileId(m.dev(), m.ino(), m.len(), m.mtime(), m.mtime_nsec()))
}

fn sync_dir(dir: &Path) -> Result<(), DirError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(DirError::io(dir))
}

/// A checkpoint file read and checked (container and checkpoint sections).
struct Candidate {
    path: PathBuf,
    bytes: Vec<u8>,
    meta: CheckpointMeta,
    id: Option<FileId>,
}

fn read_candidate(path: &Path) -> Result<Candidate, String> {
    let id = file_id(path);
    let bytes = snapshot::read_file(path).map_err(|e| match e {
        SnapshotError::Io { error, .. } => error.to_string(),
        e => e.to_string(),
    })?;
    let meta = SnapshotReader::parse(&bytes)
        .and_then(|r| CheckpointMeta::of(&r))
        .map_err(|e| e.to_string())?;
    Ok(Candidate {
        path: path.to_path_buf(),
        bytes,
        meta,
        id,
    })
}

/// What [`CheckpointDir::resume`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Resumed {
    /// Nothing to resume (`--resume auto`): the directory was started afresh.
    Fresh,
    /// Restored from this file, of this generation.
    From { path: PathBuf, generation: u64 },
}

/// A snapshot directory owned by this process (see the module notes).
pub struct CheckpointDir {
    dir: PathBuf,
    /// Holds the `flock` while open.
    _lock: File,
    console: Option<File>,
    console_len: u64,
    /// The generation this process resumed from or wrote last.
    generation: u64,
    /// `checkpoint.snap` as this process last wrote or read it.
    written: Option<FileId>,
    /// `checkpoint.snap` as [`CheckpointDir::resume`] found it unusable (replaced, not
    /// kept, by the next checkpoint).
    rejected: Option<FileId>,
    /// Instruction count of the last checkpoint written (or resumed from).
    last_icount: Option<u64>,
    interval: Option<Duration>,
    last_time: Instant,
}

impl std::fmt::Debug for CheckpointDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointDir")
            .field("dir", &self.dir)
            .field("generation", &self.generation)
            .field("console_len", &self.console_len)
            .finish()
    }
}

impl CheckpointDir {
    /// Create `dir` if needed, take its lock (an error if another process holds it) and
    /// remove temporary files that killed writers left behind.
    pub fn open(dir: &Path) -> Result<CheckpointDir, DirError> {
        std::fs::create_dir_all(dir).map_err(DirError::io(dir))?;
        let lock_path = dir.join(LOCK_FILE);
        let mut lock = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(DirError::io(&lock_path))?;
        // SAFETY: flock on a file descriptor this function owns; no memory is involved.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                let mut s = String::new();
                let _ = lock.read_to_string(&mut s);
                let holder = match s.trim() {
                    "" => "it holds DIR/lock".to_string(),
                    t => t.to_string(),
                };
                return Err(DirError::Locked {
                    dir: dir.to_path_buf(),
                    holder,
                });
            }
            return Err(DirError::Io {
                path: lock_path,
                error: e,
            });
        }
        // Who holds it, for the message a second copy prints.
        let pid = format!("pid {}", std::process::id());
        lock.set_len(0)
            .and_then(|_| lock.write_all(pid.as_bytes()))
            .map_err(DirError::io(&lock_path))?;
        // Temporary files are only ever written under the lock: any left are from a
        // writer that was killed.
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let name = e.file_name();
                let name = name.to_string_lossy();
                if name.starts_with('.') && name.contains(".tmp.") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Ok(CheckpointDir {
            dir: dir.to_path_buf(),
            _lock: lock,
            console: None,
            console_len: 0,
            generation: 0,
            written: None,
            rejected: None,
            last_icount: None,
            interval: None,
            last_time: Instant::now(),
        })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The generation this process resumed from or wrote last (0: none).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Bytes in `console.log`.
    pub fn console_len(&self) -> u64 {
        self.console_len
    }

    /// Take a periodic checkpoint when `interval` of host (wall-clock) time has passed
    /// since the run started or the last checkpoint was written.
    pub fn set_interval(&mut self, interval: Option<Duration>) {
        self.interval = interval;
        self.last_time = Instant::now();
    }

    /// The done marker, if the guest in this directory has finished.
    pub fn done_marker(&self) -> Result<Option<DoneMarker>, DirError> {
        let path = self.dir.join(DONE_FILE);
        let text = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(DirError::io(&path)(e)),
        };
        let text = String::from_utf8(text).map_err(|_| DirError::BadDone {
            path: path.clone(),
            problem: "not UTF-8 text".into(),
        })?;
        DoneMarker::parse(&text)
            .map(Some)
            .map_err(|problem| DirError::BadDone { path, problem })
    }

    /// Report a finished guest again: trims `console.log` to the length it had at the
    /// end (in case a later writer left more) and returns the marker.
    pub fn replay_done(&mut self, done: &DoneMarker) -> Result<(), DirError> {
        let p = self.dir.join(CONSOLE_LOG);
        if let Ok(f) = std::fs::OpenOptions::new().write(true).open(&p) {
            let len = f.metadata().map_err(DirError::io(&p))?.len();
            if len > done.console_len {
                f.set_len(done.console_len).map_err(DirError::io(&p))?;
            }
        }
        Ok(())
    }

    /// Start a new run in the directory: remove the checkpoints and the done marker of a
    /// previous run, empty `console.log`. Generation numbers continue from the highest
    /// one found, so a stale writer elsewhere sees that the directory moved on.
    pub fn start_fresh(&mut self) -> Result<(), DirError> {
        let mut top = self
            .done_marker()
            .ok()
            .flatten()
            .map_or(0, |d| d.generation);
        for f in [CHECKPOINT_FILE, PREVIOUS_FILE] {
            if let Ok(c) = read_candidate(&self.dir.join(f)) {
                top = top.max(c.meta.generation);
            }
        }
        for f in [DONE_FILE, CHECKPOINT_FILE, PREVIOUS_FILE] {
            let p = self.dir.join(f);
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(DirError::io(&p)(e)),
            }
        }
        sync_dir(&self.dir)?;
        self.generation = top;
        self.written = None;
        self.last_icount = None;
        self.open_console(0)?;
        Ok(())
    }

    /// Open `console.log` for appending after its first `keep` bytes (the rest is cut).
    fn open_console(&mut self, keep: u64) -> Result<(), DirError> {
        let p = self.dir.join(CONSOLE_LOG);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&p)
            .map_err(DirError::io(&p))?;
        let len = f.metadata().map_err(DirError::io(&p))?.len();
        let keep = if len < keep {
            eprintln!(
                "x86emu: warning: {} has {len} bytes, fewer than the {keep} the checkpoint had seen; the output before this point is incomplete",
                p.display()
            );
            len
        } else {
            keep
        };
        f.set_len(keep).map_err(DirError::io(&p))?;
        f.sync_all().map_err(DirError::io(&p))?;
        use std::io::Seek;
        f.seek(io::SeekFrom::Start(keep))
            .map_err(DirError::io(&p))?;
        self.console = Some(f);
        self.console_len = keep;
        Ok(())
    }

    /// Restore `m` (built with the options of the checkpointed run) from the newest usable
    /// checkpoint. A damaged `checkpoint.snap` falls back to `checkpoint.prev.snap` with a
    /// warning on stderr; a configuration mismatch is an error (the options differ, an
    /// older generation would not fit either). With nothing to resume, `require` is an
    /// error and otherwise the directory is started afresh.
    pub fn resume(&mut self, m: &mut PcMachine, require: bool) -> Result<Resumed, DirError> {
        let mut problems: Vec<(PathBuf, String)> = Vec::new();
        let mut valid: Vec<Candidate> = Vec::new();
        for f in [CHECKPOINT_FILE, PREVIOUS_FILE] {
            let p = self.dir.join(f);
            if !p.exists() {
                continue;
            }
            match read_candidate(&p) {
                Ok(c) => valid.push(c),
                Err(e) => problems.push((p, e)),
            }
        }
        if valid.is_empty() && problems.is_empty() {
            if require {
                return Err(DirError::NoCheckpoint(self.dir.clone()));
            }
            self.start_fresh()?;
            return Ok(Resumed::Fresh);
        }
        // Newest generation first (checkpoint.snap first on a tie).
        valid.sort_by_key(|c| std::cmp::Reverse(c.meta.generation));
        for c in valid {
            match m.restore_snapshot(&c.bytes) {
                Ok(()) => {}
                Err(error @ SnapshotError::ConfigMismatch(_)) => {
                    return Err(DirError::Mismatch {
                        path: c.path,
                        error,
                    })
                }
                Err(e) => {
                    if c.path.ends_with(CHECKPOINT_FILE) {
                        self.rejected = c.id;
                    }
                    problems.push((c.path, e.to_string()));
                    continue;
                }
            }
            for (p, e) in &problems {
                eprintln!("x86emu: warning: {} is unusable: {e}", p.display());
            }
            if !problems.is_empty() && !c.path.ends_with(CHECKPOINT_FILE) {
                eprintln!(
                    "x86emu: warning: falling back to the previous generation, {}",
                    c.path.display()
                );
            }
            self.generation = c.meta.generation;
            self.written = if c.path.ends_with(CHECKPOINT_FILE) {
                c.id
            } else {
                None
            };
            self.last_icount = Some(m.cpu.state.icount);
            match c.meta.console_len {
                Some(n) => self.open_console(n)?,
                None => {
                    let p = self.dir.join(CONSOLE_LOG);
                    let len = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
                    eprintln!(
                        "x86emu: warning: {} records no console position; {} is kept as it is and may repeat output",
                        c.path.display(),
                        p.display()
                    );
                    self.open_console(len)?;
                }
            }
            return Ok(Resumed::From {
                path: c.path,
                generation: self.generation,
            });
        }
        Err(DirError::Unusable {
            dir: self.dir.clone(),
            problems,
        })
    }

    /// Append guest serial output to `console.log`.
    pub fn append_console(&mut self, bytes: &[u8]) -> Result<(), DirError> {
        if bytes.is_empty() {
            return Ok(());
        }
        if let Some(f) = self.console.as_mut() {
            f.write_all(bytes)
                .map_err(DirError::io(&self.dir.join(CONSOLE_LOG)))?;
            self.console_len += bytes.len() as u64;
        }
        Ok(())
    }

    fn sync_console(&mut self) -> Result<(), DirError> {
        match self.console.as_mut() {
            Some(f) => f
                .sync_data()
                .map_err(DirError::io(&self.dir.join(CONSOLE_LOG))),
            None => Ok(()),
        }
    }

    /// Check that nobody else advanced the directory since this process resumed or
    /// wrote. Returns whether `checkpoint.snap` is this process's latest generation (then
    /// it becomes `checkpoint.prev.snap`; a damaged one is replaced instead, keeping the
    /// previous generation).
    fn check_generation(&self) -> Result<bool, DirError> {
        let conflict = |problem: String| DirError::Conflict { problem };
        let done = self.dir.join(DONE_FILE);
        if done.exists() {
            return Err(conflict(format!(
                "{} appeared: another process finished the guest in this directory",
                done.display()
            )));
        }
        let snap = self.dir.join(CHECKPOINT_FILE);
        let id = file_id(&snap);
        if id.is_some() && id == self.written {
            return Ok(true);
        }
        let newer = |c: &Candidate| {
            conflict(format!(
                "{} has generation {}, but this process is at generation {}: another process advanced the directory",
                c.path.display(),
                c.meta.generation,
                self.generation
            ))
        };
        if id.is_some() && id != self.rejected {
            if let Ok(c) = read_candidate(&snap) {
                if c.meta.generation > self.generation {
                    return Err(newer(&c));
                }
                return Ok(c.meta.generation == self.generation && self.generation > 0);
            }
        }
        // checkpoint.snap is missing or damaged: the previous one must not be newer.
        if let Ok(c) = read_candidate(&self.dir.join(PREVIOUS_FILE)) {
            if c.meta.generation > self.generation {
                return Err(newer(&c));
            }
        }
        Ok(false)
    }

    /// Write a checkpoint of `m` as the next generation (see the module notes for the
    /// order of operations). Returns the path and the size in bytes.
    pub fn checkpoint(&mut self, m: &PcMachine) -> Result<(PathBuf, usize), DirError> {
        self.sync_console()?;
        let demote = self.check_generation()?;
        let meta = CheckpointMeta {
            generation: self.generation + 1,
            console_len: self.console.is_some().then_some(self.console_len),
        };
        let bytes = checkpoint_bytes(m, meta);
        let snap = self.dir.join(CHECKPOINT_FILE);
        let pid = std::process::id();
        let tmp = self.dir.join(format!(".{CHECKPOINT_FILE}.tmp.{pid}"));
        let result = (|| -> Result<(), DirError> {
            let io_tmp = DirError::io(&tmp);
            let mut f = File::create(&tmp).map_err(&io_tmp)?;
            f.write_all(&bytes).map_err(&io_tmp)?;
            f.sync_all().map_err(&io_tmp)?;
            drop(f);
            if demote {
                // The current generation becomes the previous one without a moment in
                // which checkpoint.snap is missing: a second name, renamed into place.
                let prev = self.dir.join(PREVIOUS_FILE);
                let link = self.dir.join(format!(".{PREVIOUS_FILE}.tmp.{pid}"));
                let _ = std::fs::remove_file(&link);
                match std::fs::hard_link(&snap, &link) {
                    Ok(()) => std::fs::rename(&link, &prev).map_err(DirError::io(&prev))?,
                    // No hard links here: a plain rename (checkpoint.snap is briefly
                    // absent; a crash then resumes from the previous generation).
                    Err(_) => std::fs::rename(&snap, &prev).map_err(DirError::io(&prev))?,
                }
            }
            std::fs::rename(&tmp, &snap).map_err(DirError::io(&snap))?;
            sync_dir(&self.dir)
        })();
        if let Err(e) = result {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        self.generation += 1;
        self.written = file_id(&snap);
        self.last_icount = Some(m.cpu.state.icount);
        self.last_time = Instant::now();
        Ok((snap, bytes.len()))
    }

    /// A checkpoint of the current state (after a signal, at the instruction limit): none
    /// is written if the newest one already holds this exact state (a periodic
    /// checkpoint just before).
    pub fn checkpoint_current(&mut self, m: &PcMachine) -> Result<PathBuf, DirError> {
        let snap = self.dir.join(CHECKPOINT_FILE);
        if self.last_icount == Some(m.cpu.state.icount)
            && self.written.is_some()
            && file_id(&snap) == self.written
        {
            return Ok(snap);
        }
        self.checkpoint(m).map(|(p, _)| p)
    }

    /// Whether a periodic checkpoint is due (the interval passed and the guest ran since
    /// the last one).
    pub fn periodic_due(&self, icount: u64) -> bool {
        match self.interval {
            Some(i) => self.last_time.elapsed() >= i && self.last_icount != Some(icount),
            None => false,
        }
    }

    /// Try the next periodic checkpoint only after another interval (after a failure).
    pub fn postpone(&mut self) {
        self.last_time = Instant::now();
    }

    /// Record that the guest finished with exit `status` (`reason`: `power-off`,
    /// `debug-exit` or `halted`): flush `console.log`, then write `DIR/done` atomically.
    pub fn finish(
        &mut self,
        m: &PcMachine,
        status: u8,
        reason: &str,
    ) -> Result<DoneMarker, DirError> {
        self.sync_console()?;
        self.check_generation()?;
        let done = DoneMarker {
            status,
            reason: reason.to_string(),
            generation: self.generation + 1,
            icount: m.cpu.state.icount,
            state_hash: m.state_hash(),
            console_len: self.console_len,
        };
        let p = self.dir.join(DONE_FILE);
        snapshot::write_atomic(&p, done.to_text().as_bytes()).map_err(|e| match e {
            SnapshotError::Io { path, error } => DirError::Io { path, error },
            e => DirError::Io {
                path: p.clone(),
                error: io::Error::other(e.to_string()),
            },
        })?;
        self.generation += 1;
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_mode_parses() {
        assert_eq!("auto".parse(), Ok(ResumeMode::Auto));
        assert_eq!("require".parse(), Ok(ResumeMode::Require));
        assert_eq!("never".parse(), Ok(ResumeMode::Never));
        assert!("sometimes".parse::<ResumeMode>().is_err());
    }

    #[test]
    fn durations() {
        let ok = |s: &str| parse_duration(s).unwrap();
        assert_eq!(ok("30s"), Duration::from_secs(30));
        assert_eq!(ok("5m"), Duration::from_secs(300));
        assert_eq!(ok("1h"), Duration::from_secs(3600));
        assert_eq!(ok("90"), Duration::from_secs(90));
        assert_eq!(ok("250ms"), Duration::from_millis(250));
        assert_eq!(ok("1.5h"), Duration::from_secs(5400));
        assert_eq!(ok("0.01"), Duration::from_millis(10));
        assert_eq!(ok(".5s"), Duration::from_millis(500));
        for bad in ["", "s", "0", "0s", "-1s", "5x", "1e3", "1.2.3s", "five"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn done_marker_round_trips_and_rejects_damage() {
        let d = DoneMarker {
            status: 0,
            reason: "power-off".into(),
            generation: 7,
            icount: 123_456,
            state_hash: [0xAB; 32],
            console_len: 4096,
        };
        let t = d.to_text();
        assert_eq!(DoneMarker::parse(&t).unwrap(), d);
        assert!(DoneMarker::parse(&t[..t.len() / 2]).is_err());
        assert!(DoneMarker::parse(&t.replace("status 0", "status 300")).is_err());
        assert!(DoneMarker::parse(&t.replace("power-off", "exploded")).is_err());
        assert!(DoneMarker::parse(&t.replace("x86emu-done 1", "x86emu-done 2")).is_err());
        assert!(DoneMarker::parse("").is_err());
    }

    #[test]
    fn the_lock_excludes_a_second_owner() {
        let d = std::env::temp_dir().join(format!("x86emu-ckpt-lock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let a = CheckpointDir::open(&d).unwrap();
        // flock locks belong to the open file description: a second open conflicts even
        // within one process.
        let e = CheckpointDir::open(&d).unwrap_err();
        assert_eq!(e.exit_code(), 1);
        assert!(
            e.to_string().contains(&format!(
                "in use by another x86emu (pid {})",
                std::process::id()
            )),
            "{e}"
        );
        drop(a);
        std::fs::write(d.join(".checkpoint.snap.tmp.1"), b"left by a killed writer").unwrap();
        let _b = CheckpointDir::open(&d).unwrap();
        assert!(!d.join(".checkpoint.snap.tmp.1").exists());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
