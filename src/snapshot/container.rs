//! The snapshot container: header, named and versioned sections, end marker, SHA-256
//! trailer (layout in `docs/snapshot-format.md`).
//!
//! [`SnapshotWriter`] assembles sections into the container; [`SnapshotReader::parse`]
//! checks a container (magic, format version, length, checksum, then every section
//! record) and hands out the section payloads as slices of the input.

use super::SnapshotError;
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::path::Path;

/// The first 12 bytes of every snapshot.
pub const MAGIC: [u8; 12] = *b"X86EMU-SNAP\0";
/// The container format version this build writes (and the newest it reads).
pub const FORMAT_VERSION: u16 = 1;
/// Largest snapshot a reader accepts.
pub const MAX_TOTAL_LEN: u64 = 64 << 30;
/// Most sections in one snapshot.
pub const MAX_SECTIONS: usize = 1024;
/// Longest section name in bytes.
pub const MAX_NAME_LEN: usize = 64;
/// Section flag: a reader that does not know this section must refuse the snapshot.
pub const FLAG_REQUIRED: u8 = 1;

const HEADER_LEN: usize = 24;
/// End marker: a zero name length and the section count (u32).
const END_LEN: usize = 5;
const CHECKSUM_LEN: usize = 32;
const MIN_LEN: usize = HEADER_LEN + END_LEN + CHECKSUM_LEN;

/// Whether `name` is a valid section name: 1 to 64 bytes from `[a-z0-9_.-]`.
pub fn valid_section_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .iter()
            .all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b))
}

/// Builds a snapshot from sections.
#[derive(Debug, Default)]
pub struct SnapshotWriter {
    sections: Vec<(String, u8, u32, Vec<u8>)>,
}

impl SnapshotWriter {
    pub fn new() -> SnapshotWriter {
        SnapshotWriter::default()
    }

    /// Add a required section (a reader that does not know it refuses the snapshot).
    ///
    /// # Panics
    /// If `name` is not a valid section name, is already present, if `version` is 0, or
    /// if there are already [`MAX_SECTIONS`] sections: these are programming errors.
    pub fn add_section(&mut self, name: &str, version: u32, bytes: impl Into<Vec<u8>>) {
        self.add(name, FLAG_REQUIRED, version, bytes.into());
    }

    /// Add an optional section (a reader that does not know it skips it).
    ///
    /// # Panics
    /// As [`SnapshotWriter::add_section`].
    pub fn add_optional_section(&mut self, name: &str, version: u32, bytes: impl Into<Vec<u8>>) {
        self.add(name, 0, version, bytes.into());
    }

    fn add(&mut self, name: &str, flags: u8, version: u32, bytes: Vec<u8>) {
        assert!(
            valid_section_name(name.as_bytes()),
            "invalid snapshot section name {name:?}"
        );
        assert!(version >= 1, "section `{name}`: version 0 is invalid");
        assert!(
            self.sections.iter().all(|s| s.0 != name),
            "section `{name}` added twice"
        );
        assert!(self.sections.len() < MAX_SECTIONS, "too many sections");
        self.sections
            .push((name.to_string(), flags, version, bytes));
    }

    /// The finished snapshot.
    ///
    /// # Panics
    /// If the snapshot would exceed [`MAX_TOTAL_LEN`].
    pub fn finish(self) -> Vec<u8> {
        let body: usize = self
            .sections
            .iter()
            .map(|(n, _, _, b)| 1 + n.len() + 1 + 4 + 8 + b.len())
            .sum();
        let total = MIN_LEN + body;
        assert!(total as u64 <= MAX_TOTAL_LEN, "snapshot exceeds 64 GiB");
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&(total as u64).to_le_bytes());
        for (name, flags, version, bytes) in &self.sections {
            out.push(name.len() as u8);
            out.extend_from_slice(name.as_bytes());
            out.push(*flags);
            out.extend_from_slice(&version.to_le_bytes());
            out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            out.extend_from_slice(bytes);
        }
        out.push(0);
        out.extend_from_slice(&(self.sections.len() as u32).to_le_bytes());
        let sum = Sha256::digest(&out);
        out.extend_from_slice(&sum);
        debug_assert_eq!(out.len(), total);
        out
    }

    /// Finish and write the snapshot to `path` atomically (see [`write_atomic`]).
    pub fn write_to(self, path: &Path) -> Result<(), SnapshotError> {
        write_atomic(path, &self.finish())
    }
}

/// Write `bytes` to `path` so that a crash leaves either the old file or the new one:
/// a temporary file in the same directory, fsync, rename over `path`, fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), SnapshotError> {
    let err = |error| SnapshotError::Io {
        path: path.to_path_buf(),
        error,
    };
    let name = path.file_name().ok_or_else(|| {
        err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a file name",
        ))
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp.{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(err)
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    // Directories cannot be opened for syncing here; the rename is durable once the
    // file system commits its metadata.
    Ok(())
}

/// Read a snapshot file, refusing files over [`MAX_TOTAL_LEN`] before reading them.
pub fn read_file(path: &Path) -> Result<Vec<u8>, SnapshotError> {
    let err = |error| SnapshotError::Io {
        path: path.to_path_buf(),
        error,
    };
    let f = std::fs::File::open(path).map_err(err)?;
    let len = f.metadata().map_err(err)?.len();
    if len > MAX_TOTAL_LEN {
        return Err(SnapshotError::BadHeader(format!(
            "{}: {len} bytes exceeds the limit of {MAX_TOTAL_LEN}",
            path.display()
        )));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    f.take(MAX_TOTAL_LEN + 1)
        .read_to_end(&mut bytes)
        .map_err(err)?;
    Ok(bytes)
}

/// A little-endian reader over a byte slice; every read is bounds-checked.
#[derive(Debug)]
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pub(crate) pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Cursor<'a> {
        Cursor { buf, pos: 0 }
    }
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    /// The next `n` bytes, or None if fewer remain.
    pub(crate) fn take(&mut self, n: u64) -> Option<&'a [u8]> {
        if n > self.remaining() as u64 {
            return None;
        }
        let s = &self.buf[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Some(s)
    }
    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N as u64).map(|s| s.try_into().unwrap_or([0; N]))
    }
    pub(crate) fn u8(&mut self) -> Option<u8> {
        self.array::<1>().map(|a| a[0])
    }
    pub(crate) fn u16(&mut self) -> Option<u16> {
        self.array().map(u16::from_le_bytes)
    }
    pub(crate) fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_le_bytes)
    }
    pub(crate) fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_le_bytes)
    }
}

/// One section of a parsed snapshot.
#[derive(Clone, Copy, Debug)]
pub struct SectionInfo<'a> {
    pub name: &'a str,
    pub version: u32,
    /// A reader that does not know this section must refuse the snapshot.
    pub required: bool,
    pub data: &'a [u8],
    /// File offset of the payload.
    pub offset: u64,
}

/// A checked snapshot container; section payloads borrow from the input.
#[derive(Debug)]
pub struct SnapshotReader<'a> {
    format_version: u16,
    sections: Vec<SectionInfo<'a>>,
    checksum: [u8; 32],
}

impl<'a> SnapshotReader<'a> {
    /// Check the container: magic, format version, length, checksum (before anything
    /// else is looked at), then every section record. Never panics.
    pub fn parse(bytes: &'a [u8]) -> Result<SnapshotReader<'a>, SnapshotError> {
        let actual = bytes.len() as u64;
        let prefix = bytes.len().min(MAGIC.len());
        if bytes[..prefix] != MAGIC[..prefix] {
            return Err(SnapshotError::NotASnapshot);
        }
        if bytes.len() < MIN_LEN {
            return Err(SnapshotError::TooShort { len: actual });
        }
        let mut c = Cursor::new(bytes);
        c.pos = MAGIC.len();
        let (Some(version), Some(flags), Some(total)) = (c.u16(), c.u16(), c.u64()) else {
            return Err(SnapshotError::TooShort { len: actual });
        };
        if version == 0 || version > FORMAT_VERSION {
            return Err(SnapshotError::UnsupportedFormat {
                version,
                max: FORMAT_VERSION,
            });
        }
        if flags != 0 {
            return Err(SnapshotError::BadHeader(format!(
                "reserved header flags {flags:#06x} are set"
            )));
        }
        if total > MAX_TOTAL_LEN {
            return Err(SnapshotError::BadHeader(format!(
                "declared length {total} exceeds the limit of {MAX_TOTAL_LEN} bytes"
            )));
        }
        if total < MIN_LEN as u64 {
            return Err(SnapshotError::BadHeader(format!(
                "declared length {total} is smaller than the smallest snapshot ({MIN_LEN} bytes)"
            )));
        }
        if actual < total {
            return Err(SnapshotError::Truncated {
                expected: total,
                actual,
            });
        }
        if actual > total {
            return Err(SnapshotError::TrailingData {
                expected: total,
                actual,
            });
        }
        let body_end = bytes.len() - CHECKSUM_LEN;
        let sum: [u8; 32] = Sha256::digest(&bytes[..body_end]).into();
        if sum[..] != bytes[body_end..] {
            return Err(SnapshotError::ChecksumMismatch);
        }

        let mut c = Cursor::new(&bytes[..body_end]);
        c.pos = HEADER_LEN;
        let malformed = |m: String| Err(SnapshotError::Malformed(m));
        let mut sections: Vec<SectionInfo<'a>> = Vec::new();
        let mut names = BTreeSet::new();
        loop {
            let at = c.pos;
            let Some(name_len) = c.u8() else {
                return malformed("no end marker after the last section".into());
            };
            if name_len == 0 {
                let Some(count) = c.u32() else {
                    return malformed("the end marker is cut short".into());
                };
                if count as usize != sections.len() {
                    return malformed(format!(
                        "the end marker counts {count} sections but there are {}",
                        sections.len()
                    ));
                }
                if c.remaining() != 0 {
                    return malformed(format!(
                        "{} bytes between the end marker and the checksum",
                        c.remaining()
                    ));
                }
                break;
            }
            if sections.len() == MAX_SECTIONS {
                return malformed(format!("more than {MAX_SECTIONS} sections"));
            }
            if name_len as usize > MAX_NAME_LEN {
                return malformed(format!(
                    "section name at offset {at} is {name_len} bytes long (max {MAX_NAME_LEN})"
                ));
            }
            let Some(raw_name) = c.take(name_len as u64) else {
                return malformed(format!("section header at offset {at} is cut short"));
            };
            if !valid_section_name(raw_name) {
                return malformed(format!(
                    "section name at offset {at} has characters outside [a-z0-9_.-]: {:?}",
                    String::from_utf8_lossy(raw_name)
                ));
            }
            // Valid names are ASCII.
            let name = std::str::from_utf8(raw_name).unwrap_or_default();
            let (Some(flags), Some(version), Some(len)) = (c.u8(), c.u32(), c.u64()) else {
                return Err(SnapshotError::section(name, "section header is cut short"));
            };
            if flags & !FLAG_REQUIRED != 0 {
                return Err(SnapshotError::section(
                    name,
                    format!("unknown section flags {flags:#04x}"),
                ));
            }
            if version == 0 {
                return Err(SnapshotError::section(name, "version 0 is invalid"));
            }
            let offset = c.pos as u64;
            let Some(data) = c.take(len) else {
                return Err(SnapshotError::section(
                    name,
                    format!(
                        "payload of {len} bytes runs past the end of the file ({} bytes left)",
                        c.remaining()
                    ),
                ));
            };
            if !names.insert(name) {
                return malformed(format!("section `{name}` appears twice"));
            }
            sections.push(SectionInfo {
                name,
                version,
                required: flags & FLAG_REQUIRED != 0,
                data,
                offset,
            });
        }
        Ok(SnapshotReader {
            format_version: version,
            sections,
            checksum: sum,
        })
    }

    pub fn format_version(&self) -> u16 {
        self.format_version
    }

    /// The SHA-256 trailer (identifies this exact file).
    pub fn checksum(&self) -> [u8; 32] {
        self.checksum
    }

    /// All sections, in file order.
    pub fn sections(&self) -> &[SectionInfo<'a>] {
        &self.sections
    }

    /// Version and payload of section `name`.
    pub fn section(&self, name: &str) -> Option<(u32, &'a [u8])> {
        self.sections
            .iter()
            .find(|s| s.name == name)
            .map(|s| (s.version, s.data))
    }

    /// Version and payload of section `name`, which must be present and not newer than
    /// `max_version`.
    pub fn require(&self, name: &str, max_version: u32) -> Result<(u32, &'a [u8]), SnapshotError> {
        let (version, data) = self.section(name).ok_or_else(|| SnapshotError::Missing {
            name: name.to_string(),
        })?;
        if version > max_version {
            return Err(SnapshotError::NewerSection {
                name: name.to_string(),
                version,
                max: max_version,
            });
        }
        Ok((version, data))
    }

    /// Refuse the snapshot if it has a required section not in `known`; unknown optional
    /// sections are ignored.
    pub fn check_unknown(&self, known: &[&str]) -> Result<(), SnapshotError> {
        match self
            .sections
            .iter()
            .find(|s| s.required && !known.contains(&s.name))
        {
            Some(s) => Err(SnapshotError::UnknownRequired {
                name: s.name.to_string(),
            }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut w = SnapshotWriter::new();
        w.add_section("cpu", 1, vec![1, 2, 3]);
        w.add_optional_section("note.x", 2, b"hi".to_vec());
        w.add_section("empty", 1, Vec::new());
        w.finish()
    }

    #[test]
    fn layout_is_as_documented() {
        let b = sample();
        assert_eq!(&b[..12], b"X86EMU-SNAP\0");
        assert_eq!(u16::from_le_bytes([b[12], b[13]]), 1);
        assert_eq!(&b[14..16], &[0, 0]);
        assert_eq!(
            u64::from_le_bytes(b[16..24].try_into().unwrap()),
            b.len() as u64
        );
        // First section record: name length, name, flags, version, length, payload.
        assert_eq!(&b[24..28], b"\x03cpu");
        assert_eq!(b[28], FLAG_REQUIRED);
        assert_eq!(&b[29..33], &1u32.to_le_bytes());
        assert_eq!(&b[33..41], &3u64.to_le_bytes());
        assert_eq!(&b[41..44], &[1, 2, 3]);
        let end = b.len() - 32;
        assert_eq!(&b[end - 5..end], &[0, 3, 0, 0, 0]);
        assert_eq!(&b[end..], &Sha256::digest(&b[..end])[..]);
    }

    #[test]
    fn parse_round_trip() {
        let b = sample();
        let r = SnapshotReader::parse(&b).unwrap();
        assert_eq!(r.format_version(), 1);
        assert_eq!(r.section("cpu"), Some((1, &[1u8, 2, 3][..])));
        assert_eq!(r.section("note.x"), Some((2, &b"hi"[..])));
        assert_eq!(r.section("empty"), Some((1, &[][..])));
        assert_eq!(r.section("ram"), None);
        let names: Vec<_> = r.sections().iter().map(|s| (s.name, s.required)).collect();
        assert_eq!(names, [("cpu", true), ("note.x", false), ("empty", true)]);
        assert!(r.check_unknown(&["cpu", "empty"]).is_ok());
        assert_eq!(
            r.check_unknown(&["cpu"]).unwrap_err().to_string(),
            "section `empty`: required by the snapshot but unknown to this build"
        );
        assert_eq!(
            r.require("note.x", 1).unwrap_err().to_string(),
            "section `note.x`: version 2 is newer than this build supports (max 1)"
        );
        assert_eq!(
            r.require("ram", 1).unwrap_err().to_string(),
            "section `ram` is missing"
        );
        assert!(SnapshotReader::parse(&SnapshotWriter::new().finish()).is_ok());
    }

    /// Re-seal a modified container: fix the total length and the checksum, so the
    /// structural checks behind the checksum can be reached.
    fn reseal(mut b: Vec<u8>) -> Vec<u8> {
        let n = b.len();
        b[16..24].copy_from_slice(&(n as u64).to_le_bytes());
        let sum = Sha256::digest(&b[..n - 32]);
        b[n - 32..].copy_from_slice(&sum);
        b
    }

    fn err(b: &[u8]) -> String {
        SnapshotReader::parse(b).unwrap_err().to_string()
    }

    #[test]
    fn header_errors() {
        let b = sample();
        assert_eq!(err(b"hello"), "not an x86emu snapshot (bad magic)");
        assert_eq!(
            err(b""),
            "not an x86emu snapshot: 0 bytes is too short to hold one"
        );
        assert_eq!(
            err(&b[..40]),
            "not an x86emu snapshot: 40 bytes is too short to hold one"
        );
        let mut v = b.clone();
        v[12] = 2;
        assert_eq!(
            err(&v),
            "snapshot format version 2 is newer than this build supports (max 1)"
        );
        v[12] = 0;
        assert_eq!(err(&v), "snapshot format version 0 is invalid");
        let mut v = b.clone();
        v[15] = 1;
        assert_eq!(
            err(&v),
            "bad snapshot header: reserved header flags 0x0100 are set"
        );
        assert_eq!(
            err(&b[..b.len() - 1]),
            format!(
                "snapshot is truncated: the header says {} bytes but there are only {}",
                b.len(),
                b.len() - 1
            )
        );
        let mut v = b.clone();
        v.push(0);
        assert!(err(&v).contains("1 trailing bytes"));
        let mut v = b.clone();
        v[23] = 0x80;
        assert!(err(&v).contains("exceeds the limit"), "{}", err(&v));
        let mut v = b.clone();
        v[42] ^= 1;
        assert_eq!(
            err(&v),
            "checksum mismatch: the file is corrupt or truncated"
        );
    }

    #[test]
    fn structural_errors_behind_a_valid_checksum() {
        let b = sample();
        // Payload length of `cpu` runs past the end.
        let mut v = b.clone();
        v[33..41].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(err(&reseal(v))
            .starts_with("section `cpu`: payload of 18446744073709551615 bytes runs past the end"));
        // Bad name characters.
        let mut v = b.clone();
        v[25] = b'C';
        assert!(err(&reseal(v)).contains("characters outside"));
        // Unknown flags.
        let mut v = b.clone();
        v[28] = 0x81;
        assert_eq!(err(&reseal(v)), "section `cpu`: unknown section flags 0x81");
        // Version 0.
        let mut v = b.clone();
        v[29] = 0;
        assert_eq!(err(&reseal(v)), "section `cpu`: version 0 is invalid");
        // Name too long.
        let mut v = b.clone();
        v[24] = 65;
        assert!(err(&reseal(v)).contains("65 bytes long (max 64)"));
        // End marker count wrong.
        let mut v = b.clone();
        let end = v.len() - 32;
        v[end - 4] = 2;
        assert!(err(&reseal(v)).contains("counts 2 sections but there are 3"));
        // Duplicate names: a second `cpu` record before the end marker.
        let v = splice(&b, b"\x03cpu\x01\x01\0\0\0\0\0\0\0\0\0\0\0", 4);
        assert_eq!(err(&v), "malformed snapshot: section `cpu` appears twice");
    }

    /// Append a raw section record (before the end marker) and reseal.
    fn splice(b: &[u8], record: &[u8], count: u32) -> Vec<u8> {
        let end = b.len() - 32 - 5;
        let mut v = b[..end].to_vec();
        v.extend_from_slice(record);
        v.push(0);
        v.extend_from_slice(&count.to_le_bytes());
        v.extend_from_slice(&[0; 32]);
        reseal(v)
    }

    #[test]
    fn too_many_sections() {
        let mut w = SnapshotWriter::new();
        for i in 0..MAX_SECTIONS {
            w.add_section(&format!("s{i}"), 1, Vec::new());
        }
        let b = w.finish();
        assert_eq!(
            SnapshotReader::parse(&b).unwrap().sections().len(),
            MAX_SECTIONS
        );
        let v = splice(&b, b"\x01z\x01\x01\0\0\0\0\0\0\0\0\0\0\0", 1025);
        assert_eq!(err(&v), "malformed snapshot: more than 1024 sections");
    }

    #[test]
    fn atomic_write_replaces_the_file() {
        let dir = std::env::temp_dir().join(format!("x86emu-snap-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.snap");
        std::fs::write(&path, b"old").unwrap();
        let b = sample();
        write_atomic(&path, &b).unwrap();
        assert_eq!(read_file(&path).unwrap(), b);
        // No temporary file is left behind.
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(left.len(), 1);
        let e = read_file(&dir.join("missing.snap"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.snap"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
