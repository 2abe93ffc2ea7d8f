//! Why a snapshot could not be read or used.

use std::fmt;
use std::path::PathBuf;

/// Everything that can be wrong with a snapshot. The `Display` text is meant for the
/// user: it says which section and what is wrong. File names are added by [`SnapshotError::Io`]
/// and by callers that know them (the CLI prefixes the path).
#[derive(Debug)]
pub enum SnapshotError {
    /// The magic bytes do not match: this is not a snapshot at all.
    NotASnapshot,
    /// Shorter than the smallest possible snapshot.
    TooShort { len: u64 },
    /// A container format version this build cannot read.
    UnsupportedFormat { version: u16, max: u16 },
    /// The header is malformed (reserved bits set, size over the limit).
    BadHeader(String),
    /// The header's total length is larger than the data.
    Truncated { expected: u64, actual: u64 },
    /// The data continues past the header's total length.
    TrailingData { expected: u64, actual: u64 },
    /// The SHA-256 trailer does not match the content.
    ChecksumMismatch,
    /// The section records themselves are malformed (bad lengths, names, counts).
    Malformed(String),
    /// A section's version is newer than this build supports.
    NewerSection {
        name: String,
        version: u32,
        max: u32,
    },
    /// A required section this build does not know.
    UnknownRequired { name: String },
    /// A section this build needs is not in the snapshot.
    Missing { name: String },
    /// A section's payload is malformed or invalid.
    Section { name: String, problem: String },
    /// The snapshot was taken on a differently configured machine.
    ConfigMismatch(String),
    /// Reading or writing a snapshot file failed.
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
}

impl SnapshotError {
    /// A problem with section `name`.
    pub fn section(name: &str, problem: impl Into<String>) -> SnapshotError {
        SnapshotError::Section {
            name: name.to_string(),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use SnapshotError::*;
        match self {
            NotASnapshot => f.write_str("not an x86emu snapshot (bad magic)"),
            TooShort { len } => write!(
                f,
                "not an x86emu snapshot: {len} bytes is too short to hold one"
            ),
            UnsupportedFormat { version: 0, .. } => {
                f.write_str("snapshot format version 0 is invalid")
            }
            UnsupportedFormat { version, max } => write!(
                f,
                "snapshot format version {version} is newer than this build supports (max {max})"
            ),
            BadHeader(m) => write!(f, "bad snapshot header: {m}"),
            Truncated { expected, actual } => write!(
                f,
                "snapshot is truncated: the header says {expected} bytes but there are only {actual}"
            ),
            TrailingData { expected, actual } => write!(
                f,
                "snapshot has {} trailing bytes after its declared length of {expected}",
                actual - expected
            ),
            ChecksumMismatch => f.write_str("checksum mismatch: the file is corrupt or truncated"),
            Malformed(m) => write!(f, "malformed snapshot: {m}"),
            NewerSection { name, version, max } => write!(
                f,
                "section `{name}`: version {version} is newer than this build supports (max {max})"
            ),
            UnknownRequired { name } => write!(
                f,
                "section `{name}`: required by the snapshot but unknown to this build"
            ),
            Missing { name } => write!(f, "section `{name}` is missing"),
            Section { name, problem } => write!(f, "section `{name}`: {problem}"),
            ConfigMismatch(m) => write!(f, "machine configuration mismatch: {m}"),
            Io { path, error } => write!(f, "{}: {error}", path.display()),
        }
    }
}

impl std::error::Error for SnapshotError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SnapshotError::Io { error, .. } => Some(error),
            _ => None,
        }
    }
}
