//! Host-side block storage behind the emulated drives.
//!
//! A [`Disk`] is a byte-addressed block device on the host: a raw image file
//! ([`RawFileDisk`]), a memory buffer ([`MemDisk`]), or a copy-on-write overlay in front of
//! either ([`CowDisk`]). Disks are host attachments, not machine state: the IDE controller's
//! state is plain data and the board passes the disks into the calls that read or write
//! sectors.
//!
//! A user's image is never modified unless they ask: [`RawFileDisk::open`] opens the file
//! read-only, and the board puts a [`CowDisk`] in front of it so guest writes land in an
//! in-memory overlay. The overlay ([`CowOverlay`]) is plain serde data with a `BTreeMap`
//! (deterministic iteration), so a snapshot can save it and a later `--persist` can write
//! it back with [`CowDisk::commit`].
//!
//! Errors name the file and say what is wrong.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// ATA sector size.
pub const SECTOR_SIZE: u64 = 512;
/// CD-ROM (ISO 9660 / El Torito) logical block size.
pub const CD_BLOCK_SIZE: u64 = 2048;

/// Host block storage.
pub trait Disk {
    /// Size in bytes.
    fn len(&self) -> u64;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Read `buf.len()` bytes at `offset`. Reading past the end is an error.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    /// Write `buf` at `offset`. Writing past the end is an error (disks do not grow).
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<()>;
    /// Make previous writes durable (for a file: fsync).
    fn flush(&mut self) -> io::Result<()>;
    /// A short name for messages (the file path, or "memory").
    fn name(&self) -> String;
    /// Writes are refused (an image opened read-only): a copy-on-write overlay in front
    /// of it is never committed.
    fn is_read_only(&self) -> bool {
        false
    }
    /// This disk as a copy-on-write overlay, if it is one (snapshots save the overlay).
    fn as_cow(&self) -> Option<&CowDisk> {
        None
    }
    /// Mutable [`Disk::as_cow`].
    fn as_cow_mut(&mut self) -> Option<&mut CowDisk> {
        None
    }
}

/// An error opening or checking a disk image; the message names the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskError(pub String);

impl std::fmt::Display for DiskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for DiskError {}

/// What an image is used as; decides the size rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    /// An ATA hard disk: a non-zero multiple of 512 bytes.
    HardDisk,
    /// A CD-ROM image (ISO): a non-zero multiple of 2048 bytes.
    Cdrom,
}

/// Check that an image of `len` bytes is usable as `kind`; `name` is used in the message.
pub fn check_size(name: &str, len: u64, kind: MediaKind) -> Result<(), DiskError> {
    let (unit, what) = match kind {
        MediaKind::HardDisk => (SECTOR_SIZE, "a hard disk image"),
        MediaKind::Cdrom => (CD_BLOCK_SIZE, "a CD-ROM image"),
    };
    if len == 0 {
        return Err(DiskError(format!("{name}: the image is empty")));
    }
    if len % unit != 0 {
        return Err(DiskError(format!(
            "{name}: size {len} bytes is not a multiple of {unit} bytes, as {what} must be \
             ({} bytes too many, or pad it to {} bytes)",
            len % unit,
            len.div_ceil(unit) * unit
        )));
    }
    Ok(())
}

fn range_check(name: &str, len: u64, offset: u64, n: usize) -> io::Result<()> {
    match offset.checked_add(n as u64) {
        Some(end) if end <= len => Ok(()),
        _ => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "{name}: access of {n} bytes at offset {offset} is beyond the end ({len} bytes)"
            ),
        )),
    }
}

/// A raw image file.
#[derive(Debug)]
pub struct RawFileDisk {
    file: File,
    path: PathBuf,
    len: u64,
    writable: bool,
}

impl RawFileDisk {
    /// Open `path` read-only (the default: the file is never modified).
    pub fn open(path: &Path) -> Result<RawFileDisk, DiskError> {
        Self::open_mode(path, false)
    }

    /// Open `path` for reading and writing (the user asked to persist changes).
    pub fn open_writable(path: &Path) -> Result<RawFileDisk, DiskError> {
        Self::open_mode(path, true)
    }

    fn open_mode(path: &Path, writable: bool) -> Result<RawFileDisk, DiskError> {
        let name = path.display();
        let file = OpenOptions::new()
            .read(true)
            .write(writable)
            .open(path)
            .map_err(|e| {
                DiskError(format!(
                    "{name}: cannot open{}: {e}",
                    if writable { " for writing" } else { "" }
                ))
            })?;
        let meta = file
            .metadata()
            .map_err(|e| DiskError(format!("{name}: cannot read file metadata: {e}")))?;
        if meta.is_dir() {
            return Err(DiskError(format!(
                "{name}: is a directory, not a disk image"
            )));
        }
        Ok(RawFileDisk {
            file,
            path: path.to_path_buf(),
            len: meta.len(),
            writable,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn is_writable(&self) -> bool {
        self.writable
    }

    fn err(&self, what: &str, offset: u64, e: io::Error) -> io::Error {
        io::Error::new(
            e.kind(),
            format!(
                "{}: {what} at offset {offset} failed: {e}",
                self.path.display()
            ),
        )
    }
}

impl Disk for RawFileDisk {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        range_check(&self.name(), self.len, offset, buf.len())?;
        self.file
            .seek(SeekFrom::Start(offset))
            .and_then(|_| self.file.read_exact(buf))
            .map_err(|e| self.err("read", offset, e))
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<()> {
        if !self.writable {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("{}: the image is open read-only", self.path.display()),
            ));
        }
        range_check(&self.name(), self.len, offset, buf.len())?;
        self.file
            .seek(SeekFrom::Start(offset))
            .and_then(|_| self.file.write_all(buf))
            .map_err(|e| self.err("write", offset, e))
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.writable {
            self.file.sync_data().map_err(|e| self.err("flush", 0, e))?;
        }
        Ok(())
    }

    fn name(&self) -> String {
        self.path.display().to_string()
    }

    fn is_read_only(&self) -> bool {
        !self.writable
    }
}

/// SHA-256 of a disk's whole content (its identity in snapshots), read in 1 MiB pieces.
pub fn content_sha256(d: &mut dyn Disk) -> io::Result<[u8; 32]> {
    use sha2::{Digest, Sha256};
    let len = d.len();
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut at = 0u64;
    while at < len {
        let n = (len - at).min(buf.len() as u64) as usize;
        d.read_at(at, &mut buf[..n])?;
        h.update(&buf[..n]);
        at += n as u64;
    }
    Ok(h.finalize().into())
}

/// A disk held in memory (tests, generated images, library users).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemDisk {
    pub data: Vec<u8>,
}

impl MemDisk {
    pub fn new(data: Vec<u8>) -> MemDisk {
        MemDisk { data }
    }
    pub fn zeroed(len: usize) -> MemDisk {
        MemDisk { data: vec![0; len] }
    }
}

impl Disk for MemDisk {
    fn len(&self) -> u64 {
        self.data.len() as u64
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        range_check("memory disk", self.len(), offset, buf.len())?;
        let o = offset as usize;
        buf.copy_from_slice(&self.data[o..o + buf.len()]);
        Ok(())
    }
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<()> {
        range_check("memory disk", self.len(), offset, buf.len())?;
        let o = offset as usize;
        self.data[o..o + buf.len()].copy_from_slice(buf);
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn name(&self) -> String {
        "memory disk".into()
    }
}

/// Overlay block size: 4 KiB (eight ATA sectors, two CD blocks).
pub const COW_BLOCK: u64 = 4096;

/// The written blocks of a [`CowDisk`]: plain data, saved with snapshots.
///
/// `blocks` maps a block index (offset / [`COW_BLOCK`]) to the block's full contents
/// ([`COW_BLOCK`] bytes; the part of the last block beyond the disk's end is zero).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CowOverlay {
    /// Size of the disk the overlay belongs to, in bytes.
    pub disk_len: u64,
    pub blocks: BTreeMap<u64, Vec<u8>>,
}

impl CowOverlay {
    pub fn new(disk_len: u64) -> CowOverlay {
        CowOverlay {
            disk_len,
            blocks: BTreeMap::new(),
        }
    }

    /// Bytes of guest data held (blocks × 4 KiB).
    pub fn bytes(&self) -> u64 {
        self.blocks.len() as u64 * COW_BLOCK
    }

    /// Check an overlay from an untrusted source (a snapshot) against the disk it is to be
    /// used with.
    pub fn validate(&self, disk_len: u64) -> Result<(), DiskError> {
        if self.disk_len != disk_len {
            return Err(DiskError(format!(
                "disk overlay is for a {}-byte disk, the attached disk has {disk_len} bytes",
                self.disk_len
            )));
        }
        let nblocks = disk_len.div_ceil(COW_BLOCK);
        for (&idx, data) in &self.blocks {
            if idx >= nblocks {
                return Err(DiskError(format!(
                    "disk overlay block {idx} lies beyond the disk's end ({nblocks} blocks)"
                )));
            }
            if data.len() as u64 != COW_BLOCK {
                return Err(DiskError(format!(
                    "disk overlay block {idx} has {} bytes instead of {COW_BLOCK}",
                    data.len()
                )));
            }
        }
        Ok(())
    }
}

/// A copy-on-write overlay in front of a base disk: reads see the overlay where a block
/// was written and the base elsewhere; writes never reach the base.
pub struct CowDisk {
    base: Box<dyn Disk>,
    overlay: CowOverlay,
}

impl std::fmt::Debug for CowDisk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CowDisk")
            .field("base", &self.base.name())
            .field("len", &self.overlay.disk_len)
            .field("overlay_blocks", &self.overlay.blocks.len())
            .finish()
    }
}

impl CowDisk {
    pub fn new(base: Box<dyn Disk>) -> CowDisk {
        let len = base.len();
        CowDisk {
            base,
            overlay: CowOverlay::new(len),
        }
    }

    /// The written blocks (for snapshots and state hashes).
    pub fn overlay(&self) -> &CowOverlay {
        &self.overlay
    }

    /// Replace the overlay (snapshot restore); the overlay is checked against the base.
    pub fn set_overlay(&mut self, overlay: CowOverlay) -> Result<(), DiskError> {
        overlay
            .validate(self.base.len())
            .map_err(|e| DiskError(format!("{}: {e}", self.base.name())))?;
        self.overlay = overlay;
        Ok(())
    }

    /// Replace the overlay with one already checked against this disk
    /// ([`CowOverlay::validate`] with the base's length): snapshot restore, after every
    /// section was checked, when nothing may fail any more.
    pub fn replace_overlay(&mut self, overlay: CowOverlay) {
        debug_assert!(overlay.validate(self.base.len()).is_ok());
        self.overlay = overlay;
    }

    /// Drop all guest writes.
    pub fn discard(&mut self) {
        self.overlay.blocks.clear();
    }

    /// Write the overlay into the base disk (which must be writable) and flush it, then
    /// empty the overlay. Only for a user who asked to persist changes.
    pub fn commit(&mut self) -> io::Result<()> {
        let len = self.overlay.disk_len;
        for (&idx, data) in &self.overlay.blocks {
            let off = idx * COW_BLOCK;
            let n = (len - off).min(COW_BLOCK) as usize;
            self.base.write_at(off, &data[..n])?;
        }
        self.base.flush()?;
        self.overlay.blocks.clear();
        Ok(())
    }

    pub fn base(&self) -> &dyn Disk {
        self.base.as_ref()
    }

    /// The base disk, mutably (reads for identity hashes; writes bypass the overlay).
    pub fn base_mut(&mut self) -> &mut dyn Disk {
        self.base.as_mut()
    }

    /// Read a whole block as the guest sees it.
    fn load_block(&mut self, idx: u64) -> io::Result<Vec<u8>> {
        if let Some(b) = self.overlay.blocks.get(&idx) {
            return Ok(b.clone());
        }
        let mut b = vec![0; COW_BLOCK as usize];
        let off = idx * COW_BLOCK;
        let n = (self.overlay.disk_len - off).min(COW_BLOCK) as usize;
        self.base.read_at(off, &mut b[..n])?;
        Ok(b)
    }
}

impl Disk for CowDisk {
    fn len(&self) -> u64 {
        self.overlay.disk_len
    }
    fn as_cow(&self) -> Option<&CowDisk> {
        Some(self)
    }
    fn as_cow_mut(&mut self) -> Option<&mut CowDisk> {
        Some(self)
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        range_check(&self.name(), self.len(), offset, buf.len())?;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let idx = pos / COW_BLOCK;
            let in_block = (pos % COW_BLOCK) as usize;
            let n = (COW_BLOCK as usize - in_block).min(buf.len() - done);
            if let Some(b) = self.overlay.blocks.get(&idx) {
                buf[done..done + n].copy_from_slice(&b[in_block..in_block + n]);
                done += n;
            } else {
                // Read the longest run of blocks that are not in the overlay in one go.
                let mut end = done + n;
                while end < buf.len() {
                    let next = (offset + end as u64) / COW_BLOCK;
                    if self.overlay.blocks.contains_key(&next) {
                        break;
                    }
                    end = (end + COW_BLOCK as usize).min(buf.len());
                }
                self.base.read_at(pos, &mut buf[done..end])?;
                done = end;
            }
        }
        Ok(())
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<()> {
        range_check(&self.name(), self.len(), offset, buf.len())?;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let idx = pos / COW_BLOCK;
            let in_block = (pos % COW_BLOCK) as usize;
            let n = (COW_BLOCK as usize - in_block).min(buf.len() - done);
            let mut block = if n == COW_BLOCK as usize {
                vec![0; COW_BLOCK as usize]
            } else {
                self.load_block(idx)?
            };
            block[in_block..in_block + n].copy_from_slice(&buf[done..done + n]);
            self.overlay.blocks.insert(idx, block);
            done += n;
        }
        Ok(())
    }

    /// Guest flushes do not reach the base: the overlay lives in memory until a snapshot
    /// or an explicit [`CowDisk::commit`].
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn name(&self) -> String {
        format!("{} (copy-on-write)", self.base.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 256) as u8).collect()
    }

    /// A base disk that records whether it was ever written.
    struct Spy {
        inner: MemDisk,
        writes: std::rc::Rc<std::cell::Cell<u32>>,
    }
    impl Disk for Spy {
        fn len(&self) -> u64 {
            self.inner.len()
        }
        fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
            self.inner.read_at(offset, buf)
        }
        fn write_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<()> {
            self.writes.set(self.writes.get() + 1);
            self.inner.write_at(offset, buf)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
        fn name(&self) -> String {
            "spy".into()
        }
    }

    #[test]
    fn cow_writes_never_reach_base_and_reads_see_overlay() {
        let base = pattern(3 * 4096 + 1024);
        let writes = std::rc::Rc::new(std::cell::Cell::new(0));
        let spy = Spy {
            inner: MemDisk::new(base.clone()),
            writes: writes.clone(),
        };
        let mut cow = CowDisk::new(Box::new(spy));
        let mut expect = base.clone();
        // Unaligned write spanning a block boundary, a full block, and the partial tail.
        let w1 = vec![0xAA; 1000];
        cow.write_at(4000, &w1).unwrap();
        expect[4000..5000].copy_from_slice(&w1);
        let w2 = vec![0x55; 4096];
        cow.write_at(8192, &w2).unwrap();
        expect[8192..12288].copy_from_slice(&w2);
        cow.write_at(3 * 4096 + 1000, &[1, 2, 3, 4]).unwrap();
        expect[3 * 4096 + 1000..3 * 4096 + 1004].copy_from_slice(&[1, 2, 3, 4]);
        assert_eq!(writes.get(), 0);
        cow.flush().unwrap();
        assert_eq!(writes.get(), 0);
        let mut all = vec![0; expect.len()];
        cow.read_at(0, &mut all).unwrap();
        assert_eq!(all, expect);
        // Small reads at every alignment.
        for off in (0..expect.len() - 700).step_by(333) {
            let mut b = vec![0; 700];
            cow.read_at(off as u64, &mut b).unwrap();
            assert_eq!(b, expect[off..off + 700], "offset {off}");
        }
        assert_eq!(cow.overlay().blocks.len(), 4);
        assert!(cow.read_at(expect.len() as u64 - 1, &mut [0; 2]).is_err());
        assert!(cow.write_at(expect.len() as u64, &[0]).is_err());
        assert_eq!(writes.get(), 0);
        // Overlay round trip through serde and validation.
        let ov = cow.overlay().clone();
        let json = serde_json::to_string(&ov).unwrap();
        let back: CowOverlay = serde_json::from_str(&json).unwrap();
        assert_eq!(back, ov);
        cow.discard();
        cow.read_at(0, &mut all).unwrap();
        assert_eq!(all, base);
        cow.set_overlay(back).unwrap();
        cow.read_at(0, &mut all).unwrap();
        assert_eq!(all, expect);
        let mut bad = ov.clone();
        bad.blocks.insert(99, vec![0; 4096]);
        assert!(cow.set_overlay(bad).is_err());
        let mut bad = ov;
        bad.blocks.insert(0, vec![0; 10]);
        assert!(cow.set_overlay(bad).is_err());
    }

    #[test]
    fn cow_commit_writes_base() {
        let base = pattern(8192);
        let mut cow = CowDisk::new(Box::new(MemDisk::new(base)));
        cow.write_at(100, &[9; 10]).unwrap();
        cow.commit().unwrap();
        assert!(cow.overlay().blocks.is_empty());
        let mut b = [0; 10];
        cow.read_at(100, &mut b).unwrap();
        assert_eq!(b, [9; 10]);
    }

    #[test]
    fn raw_file_is_read_only_by_default() {
        let dir = std::env::temp_dir().join(format!("x86emu-disk-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("img.raw");
        let data = pattern(2048);
        std::fs::write(&path, &data).unwrap();
        let mut d = RawFileDisk::open(&path).unwrap();
        assert_eq!(d.len(), 2048);
        let mut b = vec![0; 512];
        d.read_at(512, &mut b).unwrap();
        assert_eq!(b, data[512..1024]);
        let e = d.write_at(0, &[1]).unwrap_err();
        assert!(e.to_string().contains("img.raw"), "{e}");
        assert!(d.read_at(2000, &mut b).is_err());
        // Through a CowDisk the guest can write; the file stays as it was.
        let mut cow = CowDisk::new(Box::new(d));
        cow.write_at(0, &[0xEE; 600]).unwrap();
        cow.read_at(0, &mut b).unwrap();
        assert_eq!(b, vec![0xEE; 512]);
        assert_eq!(std::fs::read(&path).unwrap(), data);
        // Writable on request.
        let mut w = RawFileDisk::open_writable(&path).unwrap();
        w.write_at(0, &[7, 7]).unwrap();
        w.flush().unwrap();
        assert_eq!(std::fs::read(&path).unwrap()[..3], [7, 7, data[2]]);
        let missing = RawFileDisk::open(&dir.join("nope.img")).unwrap_err();
        assert!(missing.0.contains("nope.img"), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn size_rules() {
        assert!(check_size("a.img", 1024, MediaKind::HardDisk).is_ok());
        let e = check_size("a.img", 1000, MediaKind::HardDisk).unwrap_err();
        assert!(e.0.contains("a.img") && e.0.contains("512"), "{e}");
        assert!(check_size("a.img", 0, MediaKind::HardDisk).is_err());
        assert!(check_size("c.iso", 4096, MediaKind::Cdrom).is_ok());
        let e = check_size("c.iso", 2560, MediaKind::Cdrom).unwrap_err();
        assert!(e.0.contains("c.iso") && e.0.contains("2048"), "{e}");
    }
}
