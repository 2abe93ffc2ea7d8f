//! Parser for the SingleStepTests MOO container (format v1.x).
//!
//! A MOO file is a flat sequence of little-endian chunks (`tag: [u8; 4]`,
//! `len: u32`, payload). `TEST`, `INIT` and `FINA` payloads contain further
//! chunks. Unknown tags are skipped by length at every level (the 80286 files
//! carry an undocumented `GMET` chunk, for instance). Malformed data yields an
//! `Err(String)` that names the file and the byte offset; the parser never
//! panics on bad input.
//!
//! Registers from both register-file layouts (16-bit `REGS`/`RMSK` and 32-bit
//! `RG32`/`RM32`) are stored in one canonical table indexed by [`Reg`], so the
//! 80286 and 80386 suites share every type below.

#![allow(dead_code)]

use std::fmt;
use std::io::Read;
use std::path::Path;

/// Canonical register slots. The discriminants follow the `RG32` bit order,
/// so `Reg as usize` is the bit index of a 32-bit register bitmask.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reg {
    Cr0 = 0,
    Cr3,
    Eax,
    Ebx,
    Ecx,
    Edx,
    Esi,
    Edi,
    Ebp,
    Esp,
    Cs,
    Ds,
    Es,
    Fs,
    Gs,
    Ss,
    Eip,
    Eflags,
    Dr6,
    Dr7,
}

/// Number of canonical register slots.
pub const NUM_REGS: usize = 20;

/// Every register in canonical (`RG32`) order.
pub const ALL_REGS: [Reg; NUM_REGS] = [
    Reg::Cr0,
    Reg::Cr3,
    Reg::Eax,
    Reg::Ebx,
    Reg::Ecx,
    Reg::Edx,
    Reg::Esi,
    Reg::Edi,
    Reg::Ebp,
    Reg::Esp,
    Reg::Cs,
    Reg::Ds,
    Reg::Es,
    Reg::Fs,
    Reg::Gs,
    Reg::Ss,
    Reg::Eip,
    Reg::Eflags,
    Reg::Dr6,
    Reg::Dr7,
];

/// Bit order of the 16-bit `REGS`/`RMSK` chunks:
/// ax, bx, cx, dx, cs, ss, ds, es, sp, bp, si, di, ip, flags.
pub const REGS16_ORDER: [Reg; 14] = [
    Reg::Eax,
    Reg::Ebx,
    Reg::Ecx,
    Reg::Edx,
    Reg::Cs,
    Reg::Ss,
    Reg::Ds,
    Reg::Es,
    Reg::Esp,
    Reg::Ebp,
    Reg::Esi,
    Reg::Edi,
    Reg::Eip,
    Reg::Eflags,
];

impl Reg {
    /// Register name as the test files spell it for the given width.
    pub fn name(self, width: RegWidth) -> &'static str {
        let (n16, n32) = match self {
            Reg::Cr0 => ("cr0", "cr0"),
            Reg::Cr3 => ("cr3", "cr3"),
            Reg::Eax => ("ax", "eax"),
            Reg::Ebx => ("bx", "ebx"),
            Reg::Ecx => ("cx", "ecx"),
            Reg::Edx => ("dx", "edx"),
            Reg::Esi => ("si", "esi"),
            Reg::Edi => ("di", "edi"),
            Reg::Ebp => ("bp", "ebp"),
            Reg::Esp => ("sp", "esp"),
            Reg::Cs => ("cs", "cs"),
            Reg::Ds => ("ds", "ds"),
            Reg::Es => ("es", "es"),
            Reg::Fs => ("fs", "fs"),
            Reg::Gs => ("gs", "gs"),
            Reg::Ss => ("ss", "ss"),
            Reg::Eip => ("ip", "eip"),
            Reg::Eflags => ("flags", "eflags"),
            Reg::Dr6 => ("dr6", "dr6"),
            Reg::Dr7 => ("dr7", "dr7"),
        };
        match width {
            RegWidth::W16 => n16,
            RegWidth::W32 => n32,
        }
    }

    /// True for the six segment registers.
    pub fn is_segment(self) -> bool {
        matches!(
            self,
            Reg::Cs | Reg::Ds | Reg::Es | Reg::Fs | Reg::Gs | Reg::Ss
        )
    }
}

/// Which register-file layout a chunk used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegWidth {
    /// `REGS` / `RMSK`: 16-bit values.
    W16,
    /// `RG32` / `RM32`: 32-bit values.
    W32,
}

impl RegWidth {
    /// All-ones value for this width.
    pub fn full_mask(self) -> u32 {
        match self {
            RegWidth::W16 => 0xFFFF,
            RegWidth::W32 => 0xFFFF_FFFF,
        }
    }
}

/// A (possibly partial) register file: `None` = not present in the chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Regs {
    pub width: RegWidth,
    pub values: [Option<u32>; NUM_REGS],
}

impl Regs {
    pub fn empty(width: RegWidth) -> Self {
        Regs {
            width,
            values: [None; NUM_REGS],
        }
    }

    pub fn get(&self, r: Reg) -> Option<u32> {
        self.values[r as usize]
    }

    pub fn set(&mut self, r: Reg, v: u32) {
        self.values[r as usize] = Some(v);
    }

    /// Registers that are present, in canonical order.
    pub fn iter(&self) -> impl Iterator<Item = (Reg, u32)> + '_ {
        ALL_REGS
            .iter()
            .filter_map(move |&r| self.values[r as usize].map(|v| (r, v)))
    }

    /// `self` with every register present in `over` replaced by its value.
    pub fn overlay(&self, over: &Regs) -> Regs {
        let mut out = self.clone();
        for (r, v) in over.iter() {
            out.set(r, v);
        }
        out
    }
}

/// Contents of an `INIT` or `FINA` chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MooState {
    /// `REGS` or `RG32`. In `FINA` only the registers that changed.
    pub regs: Regs,
    /// Per-test `RMSK` / `RM32` masks (normally only in `FINA`).
    pub masks: Option<Regs>,
    /// `RAM ` entries: (physical address, byte). In `FINA` only changed bytes.
    pub ram: Vec<(u32, u8)>,
    /// `QUEU` prefetch-queue bytes (informational).
    pub queue: Vec<u8>,
}

/// File-level `META` chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MooMeta {
    pub major: u8,
    pub minor: u8,
    pub cpu_type: u8,
    pub opcode: u32,
    pub mnemonic: String,
    pub test_count: u32,
    pub seed: u64,
    pub cpu_mode: u8,
}

/// One `TEST` chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MooTest {
    pub index: u32,
    pub name: String,
    pub bytes: Vec<u8>,
    pub init: MooState,
    pub fina: MooState,
    /// `EXCP`: (vector, physical address of the pushed FLAGS word).
    pub excp: Option<(u8, u32)>,
    pub hash: [u8; 20],
}

impl MooTest {
    /// SHA-1 hash as 40 lowercase hex digits (the revocation-list format).
    pub fn hash_hex(&self) -> String {
        hex(&self.hash)
    }
}

/// A whole parsed MOO file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MooFile {
    /// File name the data came from (for messages).
    pub file_name: String,
    pub version: (u8, u8),
    /// Header CPU id, e.g. `"C286"` or `"386E"` (space padding kept).
    pub cpu_id: String,
    pub meta: Option<MooMeta>,
    /// Top-level `RMSK` / `RM32`: masks that apply to every test.
    pub file_mask: Option<Regs>,
    pub tests: Vec<MooTest>,
}

/// Lowercase hex rendering of a byte slice.
pub fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Bounds-checked little-endian reader over one chunk payload.
struct Rd<'a> {
    data: &'a [u8],
    pos: usize,
    /// Absolute offset of `data[0]` within the file, for messages.
    base: usize,
    file: &'a str,
    what: &'static str,
}

impl<'a> Rd<'a> {
    fn new(file: &'a str, what: &'static str, data: &'a [u8], base: usize) -> Self {
        Rd {
            data,
            pos: 0,
            base,
            file,
            what,
        }
    }

    fn err(&self, msg: impl fmt::Display) -> String {
        format!(
            "{}: {} at byte offset {:#x}: {}",
            self.file,
            self.what,
            self.base + self.pos,
            msg
        )
    }

    fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.remaining() < n {
            return Err(self.err(format_args!(
                "truncated: need {n} bytes, {} left",
                self.remaining()
            )));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// Next chunk: (tag, payload, absolute offset of payload). `None` at end.
    fn chunk(&mut self) -> Result<Option<([u8; 4], Rd<'a>)>, String> {
        if self.remaining() == 0 {
            return Ok(None);
        }
        if self.remaining() < 8 {
            return Err(self.err(format_args!(
                "{} stray bytes where a chunk header was expected",
                self.remaining()
            )));
        }
        let tag_bytes = self.take(4)?;
        let tag = [tag_bytes[0], tag_bytes[1], tag_bytes[2], tag_bytes[3]];
        let len = self.u32()? as usize;
        if len > self.remaining() {
            self.pos -= 8;
            return Err(self.err(format_args!(
                "chunk '{}' claims {len} bytes but only {} remain",
                tag_str(&tag),
                self.remaining() - 8
            )));
        }
        let base = self.base + self.pos;
        let payload = self.take(len)?;
        Ok(Some((
            tag,
            Rd::new(self.file, tag_static(&tag), payload, base),
        )))
    }
}

fn tag_str(tag: &[u8; 4]) -> String {
    tag.iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '?'
            }
        })
        .collect()
}

fn tag_static(tag: &[u8; 4]) -> &'static str {
    match tag {
        b"MOO " => "MOO chunk",
        b"META" => "META chunk",
        b"TEST" => "TEST chunk",
        b"NAME" => "NAME chunk",
        b"BYTS" => "BYTS chunk",
        b"INIT" => "INIT chunk",
        b"FINA" => "FINA chunk",
        b"REGS" => "REGS chunk",
        b"RG32" => "RG32 chunk",
        b"RMSK" => "RMSK chunk",
        b"RM32" => "RM32 chunk",
        b"RAM " => "RAM chunk",
        b"QUEU" => "QUEU chunk",
        b"EXCP" => "EXCP chunk",
        b"HASH" => "HASH chunk",
        _ => "chunk",
    }
}

/// Parses a `REGS`/`RMSK` (16-bit) or `RG32`/`RM32` (32-bit) payload.
fn parse_regs(rd: &mut Rd<'_>, width: RegWidth) -> Result<Regs, String> {
    let mut regs = Regs::empty(width);
    match width {
        RegWidth::W16 => {
            let mask = rd.u16()?;
            if mask >> REGS16_ORDER.len() != 0 {
                return Err(rd.err(format_args!("unknown register bits in mask {mask:#06x}")));
            }
            for (bit, &r) in REGS16_ORDER.iter().enumerate() {
                if mask & (1 << bit) != 0 {
                    regs.set(r, u32::from(rd.u16()?));
                }
            }
        }
        RegWidth::W32 => {
            let mask = rd.u32()?;
            if mask >> NUM_REGS != 0 {
                return Err(rd.err(format_args!("unknown register bits in mask {mask:#010x}")));
            }
            for (bit, &r) in ALL_REGS.iter().enumerate() {
                if mask & (1 << bit) != 0 {
                    let v = rd.u32()?;
                    // Segment registers: the upper two bytes are not meaningful.
                    regs.set(r, if r.is_segment() { v & 0xFFFF } else { v });
                }
            }
        }
    }
    Ok(regs)
}

/// Parses a length-prefixed byte string (`NAME`, `BYTS`, `QUEU`).
fn parse_lp_bytes<'a>(rd: &mut Rd<'a>) -> Result<&'a [u8], String> {
    let n = rd.u32()? as usize;
    rd.take(n)
}

fn parse_state(mut rd: Rd<'_>, is_init: bool) -> Result<MooState, String> {
    let mut regs: Option<Regs> = None;
    let mut masks: Option<Regs> = None;
    let mut ram = Vec::new();
    let mut queue = Vec::new();
    while let Some((tag, mut sub)) = rd.chunk()? {
        match &tag {
            b"REGS" | b"RG32" => {
                if regs.is_some() {
                    return Err(sub.err("second register chunk in one state"));
                }
                let w = if &tag == b"REGS" {
                    RegWidth::W16
                } else {
                    RegWidth::W32
                };
                regs = Some(parse_regs(&mut sub, w)?);
            }
            b"RMSK" | b"RM32" => {
                let w = if &tag == b"RMSK" {
                    RegWidth::W16
                } else {
                    RegWidth::W32
                };
                masks = Some(parse_regs(&mut sub, w)?);
            }
            b"RAM " => {
                let n = sub.u32()? as usize;
                if n.checked_mul(5).is_none_or(|need| need > sub.remaining()) {
                    return Err(sub.err(format_args!("RAM count {n} exceeds chunk size")));
                }
                ram.reserve(n);
                for _ in 0..n {
                    let a = sub.u32()?;
                    let v = sub.u8()?;
                    ram.push((a, v));
                }
            }
            b"QUEU" => queue = parse_lp_bytes(&mut sub)?.to_vec(),
            // EA32 / DC32 and anything new: informational, skipped.
            _ => {}
        }
    }
    let regs = match regs {
        Some(r) => r,
        None => return Err(rd.err("state has no REGS/RG32 chunk")),
    };
    if is_init {
        let n = regs.iter().count();
        let need = match regs.width {
            RegWidth::W16 => REGS16_ORDER.len(),
            RegWidth::W32 => NUM_REGS,
        };
        if n != need {
            return Err(rd.err(format_args!("INIT has {n} registers, expected all {need}")));
        }
    }
    Ok(MooState {
        regs,
        masks,
        ram,
        queue,
    })
}

fn parse_test(mut rd: Rd<'_>) -> Result<MooTest, String> {
    let index = rd.u32()?;
    let mut name = None;
    let mut bytes = None;
    let mut init = None;
    let mut fina = None;
    let mut excp = None;
    let mut hash = None;
    while let Some((tag, mut sub)) = rd.chunk()? {
        match &tag {
            b"NAME" => {
                let s = parse_lp_bytes(&mut sub)?;
                name = Some(String::from_utf8_lossy(s).into_owned());
            }
            b"BYTS" => bytes = Some(parse_lp_bytes(&mut sub)?.to_vec()),
            b"INIT" => init = Some(parse_state(sub, true)?),
            b"FINA" => fina = Some(parse_state(sub, false)?),
            b"EXCP" => {
                let v = sub.u8()?;
                let a = sub.u32()?;
                excp = Some((v, a));
            }
            b"HASH" => {
                let h = sub.take(20)?;
                let mut a = [0u8; 20];
                a.copy_from_slice(h);
                hash = Some(a);
            }
            // CYCL, GMET, IDX  and unknown chunks are skipped.
            _ => {}
        }
    }
    let missing = |what: &str| rd.err(format_args!("test #{index} has no {what} chunk"));
    let init = init.ok_or_else(|| missing("INIT"))?;
    let fina = fina.ok_or_else(|| missing("FINA"))?;
    if init.regs.width != fina.regs.width {
        return Err(rd.err(format_args!(
            "test #{index}: INIT and FINA use different register layouts"
        )));
    }
    Ok(MooTest {
        index,
        name: name.ok_or_else(|| missing("NAME"))?,
        bytes: bytes.ok_or_else(|| missing("BYTS"))?,
        init,
        fina,
        excp,
        hash: hash.ok_or_else(|| missing("HASH"))?,
    })
}

fn parse_meta(rd: &mut Rd<'_>) -> Result<MooMeta, String> {
    let major = rd.u8()?;
    let minor = rd.u8()?;
    let cpu_type = rd.u8()?;
    let opcode = rd.u32()?;
    let mnemonic = String::from_utf8_lossy(rd.take(8)?).trim_end().to_string();
    let test_count = rd.u32()?;
    let seed = rd.u64()?;
    let cpu_mode = rd.u8()?;
    Ok(MooMeta {
        major,
        minor,
        cpu_type,
        opcode,
        mnemonic,
        test_count,
        seed,
        cpu_mode,
    })
}

/// Parses an uncompressed MOO image. `file_name` is used in error messages.
pub fn parse_moo(file_name: &str, data: &[u8]) -> Result<MooFile, String> {
    let mut rd = Rd::new(file_name, "file", data, 0);
    let (tag, mut hdr) = match rd.chunk()? {
        Some(c) => c,
        None => return Err(format!("{file_name}: empty file")),
    };
    if &tag != b"MOO " {
        return Err(format!(
            "{file_name}: not a MOO file (first chunk is '{}')",
            tag_str(&tag)
        ));
    }
    let major = hdr.u8()?;
    let minor = hdr.u8()?;
    hdr.take(2)?;
    let test_count = hdr.u32()?;
    let cpu_id = String::from_utf8_lossy(hdr.take(4)?).into_owned();
    if major != 1 {
        return Err(format!(
            "{file_name}: unsupported MOO version {major}.{minor}"
        ));
    }

    let mut meta = None;
    let mut file_mask = None;
    let mut tests = Vec::with_capacity(test_count.min(100_000) as usize);
    while let Some((tag, mut sub)) = rd.chunk()? {
        match &tag {
            b"META" => meta = Some(parse_meta(&mut sub)?),
            b"RMSK" => file_mask = Some(parse_regs(&mut sub, RegWidth::W16)?),
            b"RM32" => file_mask = Some(parse_regs(&mut sub, RegWidth::W32)?),
            b"TEST" => tests.push(parse_test(sub)?),
            _ => {}
        }
    }
    if tests.len() != test_count as usize {
        return Err(format!(
            "{file_name}: header announces {test_count} tests but the file holds {}",
            tests.len()
        ));
    }
    Ok(MooFile {
        file_name: file_name.to_string(),
        version: (major, minor),
        cpu_id,
        meta,
        file_mask,
        tests,
    })
}

/// Reads and parses a `.MOO.gz` (gzip) or plain `.MOO` file.
pub fn load_moo(path: &Path) -> Result<MooFile, String> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    let raw = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let data = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::with_capacity(raw.len() * 8);
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| format!("{}: gzip error: {e}", path.display()))?;
        out
    } else {
        raw
    };
    parse_moo(&name, &data)
}

/// Parses a revocation list: one 40-digit hex SHA-1 per line, `#` comments.
pub fn parse_revocation_list(text: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let h = line.to_ascii_lowercase();
        if h.len() != 40 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "revocation list line {}: not a SHA-1 hash: {line:?}",
                n + 1
            ));
        }
        out.push(h);
    }
    Ok(out)
}
