//! Batch / scheduler checkpointing: on SIGTERM, SIGINT, SIGUSR1, SIGUSR2 or SIGXCPU the
//! console loop stops between `run` slices (an instruction boundary), writes
//! `checkpoint.snap` into the snapshot directory (the previous one is kept as
//! `checkpoint.prev.snap`) and the process exits with the checkpoint exit code (85 by
//! default). `x86emu boot --resume auto|require` continues from that file.
//!
//! The signal handler only stores into an [`AtomicBool`]; everything else happens on
//! the emulator's own thread when the console loop polls [`requested`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::machine::PcMachine;
use crate::snapshot::SnapshotError;

/// The newest checkpoint in a snapshot directory.
pub const CHECKPOINT_FILE: &str = "checkpoint.snap";
/// The generation before it.
pub const PREVIOUS_FILE: &str = "checkpoint.prev.snap";
/// The exit status after a checkpoint, unless configured otherwise.
pub const DEFAULT_EXIT_CODE: u8 = 85;

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// What `boot` does with an existing checkpoint in the snapshot directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ResumeMode {
    /// Always boot afresh.
    #[default]
    Never,
    /// Resume if there is a checkpoint, else boot.
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

extern "C" fn on_signal(_sig: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    REQUESTED.store(true, Ordering::SeqCst);
}

/// The signals that request a checkpoint. SIGINT only when `with_sigint` (when stdin is
/// a terminal in raw mode, Ctrl-C belongs to the guest).
pub fn signals(with_sigint: bool) -> Vec<libc::c_int> {
    let mut v = vec![libc::SIGTERM, libc::SIGUSR1, libc::SIGUSR2, libc::SIGXCPU];
    if with_sigint {
        v.push(libc::SIGINT);
    }
    v
}

/// Install the checkpoint request handler for [`signals`]`(with_sigint)`.
pub fn install_handlers(with_sigint: bool) -> std::io::Result<()> {
    for sig in signals(with_sigint) {
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
            return Err(std::io::Error::last_os_error());
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

/// Write a checkpoint of `m` into `dir`: an existing `checkpoint.snap` is first renamed
/// to `checkpoint.prev.snap`, then the new one is written atomically (temp file, fsync,
/// rename, fsync of the directory). Returns the path and the size in bytes.
pub fn write_checkpoint(m: &PcMachine, dir: &Path) -> Result<(PathBuf, usize), SnapshotError> {
    let path = dir.join(CHECKPOINT_FILE);
    let bytes = m.save_snapshot();
    if path.exists() {
        std::fs::rename(&path, dir.join(PREVIOUS_FILE)).map_err(|error| SnapshotError::Io {
            path: path.clone(),
            error,
        })?;
    }
    crate::snapshot::write_atomic(&path, &bytes)?;
    Ok((path, bytes.len()))
}

/// The checkpoint to resume from in `dir`: `checkpoint.snap`, or `checkpoint.prev.snap`
/// if a crash came between renaming the old generation and writing the new one.
pub fn find_checkpoint(dir: &Path) -> Option<PathBuf> {
    [CHECKPOINT_FILE, PREVIOUS_FILE]
        .iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file())
}

/// Restore `m` (built with the same configuration as the checkpointed machine) from the
/// checkpoint in `dir` according to `mode`. `Ok(None)`: boot afresh; `Ok(Some(path))`:
/// resumed from `path`.
pub fn resume_from_dir(
    m: &mut PcMachine,
    dir: Option<&Path>,
    mode: ResumeMode,
) -> Result<Option<PathBuf>, ResumeError> {
    if mode == ResumeMode::Never {
        return Ok(None);
    }
    let dir = dir.ok_or(ResumeError::NoDirectory)?;
    let path = match find_checkpoint(dir) {
        Some(p) => p,
        None if mode == ResumeMode::Require => {
            return Err(ResumeError::NoCheckpoint(dir.to_path_buf()))
        }
        None => return Ok(None),
    };
    let bytes = crate::snapshot::read_file(&path).map_err(ResumeError::Unusable)?;
    m.restore_snapshot(&bytes)
        .map_err(|e| ResumeError::UnusableAt(path.clone(), e))?;
    Ok(Some(path))
}

/// Why `--resume` could not resume.
#[derive(Debug)]
pub enum ResumeError {
    /// `--resume auto|require` without `--snapshot-dir`.
    NoDirectory,
    /// `--resume require` and no checkpoint in the directory.
    NoCheckpoint(PathBuf),
    /// The file could not be read.
    Unusable(SnapshotError),
    /// The file is not a usable snapshot for this machine.
    UnusableAt(PathBuf, SnapshotError),
}

impl std::fmt::Display for ResumeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResumeError::NoDirectory => f.write_str("--resume auto|require needs --snapshot-dir"),
            ResumeError::NoCheckpoint(d) => {
                write!(
                    f,
                    "--resume require: no {CHECKPOINT_FILE} in {}",
                    d.display()
                )
            }
            ResumeError::Unusable(e) => write!(f, "{e}"),
            ResumeError::UnusableAt(p, e) => write!(f, "{}: {e}", p.display()),
        }
    }
}

impl std::error::Error for ResumeError {}

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
    fn find_prefers_the_newest_generation() {
        let d = std::env::temp_dir().join(format!("x86emu-ckpt-unit-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        assert_eq!(find_checkpoint(&d), None);
        std::fs::write(d.join(PREVIOUS_FILE), b"x").unwrap();
        assert_eq!(find_checkpoint(&d), Some(d.join(PREVIOUS_FILE)));
        std::fs::write(d.join(CHECKPOINT_FILE), b"x").unwrap();
        assert_eq!(find_checkpoint(&d), Some(d.join(CHECKPOINT_FILE)));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
