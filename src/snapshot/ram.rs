//! RAM as a compressed page stream (section `ram`, layout in `docs/snapshot-format.md`):
//! 4 KiB pages in chunks of [`CHUNK_PAGES`]; an all-zero chunk is one byte, a mixed chunk
//! is a bitmap of its non-zero pages and one zstd frame holding them. Encoding and decoding
//! work one chunk at a time, so they need at most one chunk of memory beyond the RAM.

use super::container::Cursor;
use super::SnapshotError;

/// Section name and version of the RAM stream.
pub const SECTION: &str = "ram";
pub const VERSION: u32 = 1;

pub const PAGE_SIZE: usize = 4096;
/// Pages per chunk written by this build (1 MiB).
pub const CHUNK_PAGES: u32 = 256;
/// Largest RAM a page stream may describe: the 32-bit physical address space.
pub const MAX_RAM_SIZE: u64 = 1 << 32;
/// Largest chunk a reader accepts (16 MiB of decompressed pages).
pub const MAX_CHUNK_PAGES: u32 = 4096;
const ZSTD_LEVEL: i32 = 3;

const KIND_ZERO: u8 = 0;
const KIND_PAGES: u8 = 1;

fn is_zero(buf: &[u8]) -> bool {
    // OR-folding fixed-size blocks vectorises; the early exit is per block.
    let blocks = buf.chunks_exact(64);
    let tail = blocks.remainder();
    blocks
        .into_iter()
        .all(|c| c.iter().fold(0u8, |a, &b| a | b) == 0)
        && tail.iter().all(|&b| b == 0)
}

/// Zero `buf`, without writing to it if it already is zero: a freshly allocated RAM is
/// untouched memory that reads as zero without the host committing pages to it.
fn zero(buf: &mut [u8]) {
    if !is_zero(buf) {
        buf.fill(0);
    }
}

/// Encode `ram` (its length a multiple of 4 KiB) as a page stream.
///
/// # Panics
/// If `ram.len()` is not a multiple of 4096 (guest RAM always is).
pub fn encode_ram(ram: &[u8]) -> Vec<u8> {
    assert!(
        ram.len() % PAGE_SIZE == 0,
        "RAM size {} is not a multiple of 4 KiB",
        ram.len()
    );
    let mut out = Vec::new();
    out.extend_from_slice(&(ram.len() as u64).to_le_bytes());
    out.extend_from_slice(&(PAGE_SIZE as u32).to_le_bytes());
    out.extend_from_slice(&CHUNK_PAGES.to_le_bytes());
    let mut compressor = zstd::bulk::Compressor::new(ZSTD_LEVEL).expect("zstd level 3 is valid");
    // Each frame carries zstd's content checksum (XXH64), so damage inside compressed data
    // that the container checksum did not see (a crafted file) is an error, not wrong RAM.
    compressor
        .set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(true))
        .expect("zstd checksum flag");
    let mut stored = Vec::with_capacity(CHUNK_PAGES as usize * PAGE_SIZE);
    for chunk in ram.chunks(CHUNK_PAGES as usize * PAGE_SIZE) {
        let npages = chunk.len() / PAGE_SIZE;
        let mut bitmap = vec![0u8; npages.div_ceil(8)];
        stored.clear();
        for (i, page) in chunk.chunks_exact(PAGE_SIZE).enumerate() {
            if !is_zero(page) {
                bitmap[i / 8] |= 1 << (i % 8);
                stored.extend_from_slice(page);
            }
        }
        if stored.is_empty() {
            out.push(KIND_ZERO);
            continue;
        }
        out.push(KIND_PAGES);
        out.extend_from_slice(&bitmap);
        // Compressing at most one chunk (1 MiB) into a growable buffer cannot fail
        // other than by running out of memory.
        let frame = compressor
            .compress(&stored)
            .expect("zstd compression of an in-memory chunk");
        out.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        out.extend_from_slice(&frame);
    }
    out
}

/// Decode a page stream of exactly `expected_size` bytes of RAM.
///
/// `expected_size` comes from the snapshot itself when no machine is built
/// (`snapshot-info`): it is checked against [`MAX_RAM_SIZE`] and the stream is decoded and
/// checked before the RAM is allocated.
pub fn decode_ram(data: &[u8], expected_size: u64) -> Result<Vec<u8>, SnapshotError> {
    let size = checked_ram_size(expected_size)?;
    let decoded = decode_pages(data, size)?;
    let mut ram = vec![0u8; size];
    decoded.apply(&mut ram);
    Ok(ram)
}

/// `size` as a RAM size this build can hold: a multiple of 4 KiB, at most [`MAX_RAM_SIZE`].
pub fn checked_ram_size(size: u64) -> Result<usize, SnapshotError> {
    if size > MAX_RAM_SIZE || size % PAGE_SIZE as u64 != 0 {
        return Err(err(format!(
            "RAM size {size} is not a multiple of 4 KiB up to {MAX_RAM_SIZE} bytes"
        )));
    }
    usize::try_from(size).map_err(|_| err(format!("RAM size {size} does not fit this host")))
}

fn err(problem: impl Into<String>) -> SnapshotError {
    SnapshotError::section(SECTION, problem)
}

/// The RAM size a page stream declares (its first 8 bytes).
pub fn stream_ram_size(data: &[u8]) -> Result<u64, SnapshotError> {
    Cursor::new(data)
        .u64()
        .ok_or_else(|| err("too short for its header"))
}

fn check_size(data: &[u8], expected: u64) -> Result<(), SnapshotError> {
    let size = stream_ram_size(data)?;
    if size != expected {
        return Err(err(format!(
            "holds {size} bytes of RAM but the machine has {expected}"
        )));
    }
    Ok(())
}

/// A mixed chunk found by the structural pass.
struct Mixed<'a> {
    index: usize,
    bitmap: &'a [u8],
    stored: usize,
    frame: &'a [u8],
}

/// Structural pass over the whole stream (no decompression): header, every chunk's
/// kind, bitmap and frame bounds, and each frame's declared content size. Returns the
/// mixed chunks (`None` for zero chunks) and the chunk size in bytes.
#[allow(clippy::type_complexity)]
fn parse(data: &[u8], ram_len: usize) -> Result<(Vec<Option<Mixed<'_>>>, usize), SnapshotError> {
    check_size(data, ram_len as u64)?;
    let mut c = Cursor::new(data);
    c.pos = 8;
    let (Some(page_size), Some(chunk_pages)) = (c.u32(), c.u32()) else {
        return Err(err("too short for its header"));
    };
    if page_size as usize != PAGE_SIZE {
        return Err(err(format!("page size {page_size} is not 4096")));
    }
    if ram_len % PAGE_SIZE != 0 {
        return Err(err(format!(
            "RAM size {ram_len} is not a multiple of 4 KiB"
        )));
    }
    if chunk_pages == 0 || chunk_pages > MAX_CHUNK_PAGES {
        return Err(err(format!(
            "chunk size of {chunk_pages} pages is outside 1..={MAX_CHUNK_PAGES}"
        )));
    }
    let chunk_bytes = chunk_pages as usize * PAGE_SIZE;
    let nchunks = ram_len.div_ceil(chunk_bytes);
    let mut chunks = Vec::with_capacity(nchunks.min(data.len()));
    for index in 0..nchunks {
        let at = c.pos;
        let cut = || err(format!("chunk {index} at offset {at} is cut short"));
        let kind = c.u8().ok_or_else(cut)?;
        if kind == KIND_ZERO {
            chunks.push(None);
            continue;
        }
        if kind != KIND_PAGES {
            return Err(err(format!("chunk {index}: unknown kind {kind}")));
        }
        let npages = (ram_len - index * chunk_bytes).min(chunk_bytes) / PAGE_SIZE;
        let bitmap = c.take(npages.div_ceil(8) as u64).ok_or_else(cut)?;
        if npages % 8 != 0 && bitmap[npages / 8] >> (npages % 8) != 0 {
            return Err(err(format!(
                "chunk {index}: bitmap marks pages past the chunk"
            )));
        }
        let stored: usize = bitmap.iter().map(|b| b.count_ones() as usize).sum();
        if stored == 0 {
            return Err(err(format!("chunk {index}: a mixed chunk stores no page")));
        }
        let len = c.u32().ok_or_else(cut)?;
        let frame = c.take(len as u64).ok_or_else(|| {
            err(format!(
                "chunk {index}: compressed data of {len} bytes runs past the end ({} left)",
                c.remaining()
            ))
        })?;
        let bad_frame = || {
            err(format!(
                "chunk {index}: compressed data is not one zstd frame"
            ))
        };
        if zstd::zstd_safe::find_frame_compressed_size(frame).map_err(|_| bad_frame())?
            != frame.len()
        {
            return Err(bad_frame());
        }
        match zstd::zstd_safe::get_frame_content_size(frame) {
            Ok(Some(n)) if n == (stored * PAGE_SIZE) as u64 => {}
            Ok(Some(n)) => {
                return Err(err(format!(
                    "chunk {index}: compressed data holds {n} bytes, expected {} ({stored} pages)",
                    stored * PAGE_SIZE
                )))
            }
            _ => {
                return Err(err(format!(
                    "chunk {index}: the zstd frame does not declare its size"
                )))
            }
        }
        chunks.push(Some(Mixed {
            index,
            bitmap,
            stored,
            frame,
        }));
    }
    if c.remaining() != 0 {
        return Err(err(format!("{} bytes after the last chunk", c.remaining())));
    }
    Ok((chunks, chunk_bytes))
}

/// A page stream decoded and checked completely, not yet applied to any RAM: the
/// non-zero pages, packed, and which pages they are. Holding one of these means the
/// stream was valid; [`DecodedRam::apply`] cannot fail.
#[derive(Debug)]
pub struct DecodedRam {
    ram_len: usize,
    chunk_bytes: usize,
    /// Per chunk: `None` for an all-zero chunk, else its bitmap (LSB first).
    chunks: Vec<Option<Vec<u8>>>,
    /// The stored pages of every chunk, in order.
    pages: Vec<u8>,
}

impl DecodedRam {
    /// The RAM size the stream holds.
    pub fn ram_len(&self) -> usize {
        self.ram_len
    }

    /// Write the decoded RAM into `out` (of [`DecodedRam::ram_len`] bytes): stored pages
    /// are copied, every other page is zeroed (without writing to a page that already
    /// is zero, so untouched memory stays uncommitted).
    ///
    /// # Panics
    /// If `out.len()` differs from [`DecodedRam::ram_len`] (a caller error: the size was
    /// checked when decoding).
    pub fn apply(&self, out: &mut [u8]) {
        assert_eq!(out.len(), self.ram_len, "RAM size checked at decode");
        let mut src = self.pages.chunks_exact(PAGE_SIZE);
        for (chunk, desc) in out.chunks_mut(self.chunk_bytes).zip(&self.chunks) {
            let Some(bitmap) = desc else {
                zero(chunk);
                continue;
            };
            for (i, page) in chunk.chunks_exact_mut(PAGE_SIZE).enumerate() {
                match (bitmap[i / 8] >> (i % 8) & 1 != 0)
                    .then(|| src.next())
                    .flatten()
                {
                    Some(p) => page.copy_from_slice(p),
                    None => zero(page),
                }
            }
        }
    }
}

/// Decode and check a page stream of `ram_len` bytes of RAM completely (structure first,
/// then every chunk's compressed data) without touching any RAM. Memory needed: the
/// compressed stream's non-zero pages, uncompressed.
pub fn decode_pages(data: &[u8], ram_len: usize) -> Result<DecodedRam, SnapshotError> {
    let (chunks, chunk_bytes) = parse(data, ram_len)?;
    let total: usize = chunks.iter().flatten().map(|m| m.stored).sum();
    // `total` pages were each backed by a bitmap bit of a chunk inside `ram_len`, and
    // `ram_len` is the machine's RAM: the allocation is bounded by the RAM size.
    let mut pages = vec![0u8; total * PAGE_SIZE];
    let bitmaps: Vec<Option<Vec<u8>>> = chunks
        .iter()
        .map(|c| c.as_ref().map(|m| m.bitmap.to_vec()))
        .collect();
    let mixed: Vec<&Mixed<'_>> = chunks.iter().flatten().collect();
    // Two halves (by stored pages) decompress on two threads; the result does not depend
    // on the split. The first error in chunk order is reported.
    let mut split = 0;
    let mut acc = 0;
    while split < mixed.len() && acc * 2 < total {
        acc += mixed[split].stored;
        split += 1;
    }
    let (lo, hi) = pages.split_at_mut(acc * PAGE_SIZE);
    let (a, b) = if total * PAGE_SIZE >= 8 << 20 {
        std::thread::scope(|sc| {
            let t = sc.spawn(|| decompress_chunks(&mixed[split..], hi));
            let a = decompress_chunks(&mixed[..split], lo);
            let b = t
                .join()
                .unwrap_or_else(|_| Err(err("decompression thread failed")));
            (a, b)
        })
    } else {
        (
            decompress_chunks(&mixed[..split], lo),
            decompress_chunks(&mixed[split..], hi),
        )
    };
    a?;
    b?;
    Ok(DecodedRam {
        ram_len,
        chunk_bytes,
        chunks: bitmaps,
        pages,
    })
}

/// Decompress `chunks` one after another into `out` (their stored pages, back to back).
fn decompress_chunks(chunks: &[&Mixed<'_>], out: &mut [u8]) -> Result<(), SnapshotError> {
    let mut decompressor =
        zstd::bulk::Decompressor::new().map_err(|e| err(format!("zstd: {e}")))?;
    let mut at = 0;
    for m in chunks {
        let (index, stored) = (m.index, m.stored);
        let dst = &mut out[at..at + stored * PAGE_SIZE];
        let n = decompressor
            .decompress_to_buffer(m.frame, dst)
            .map_err(|e| {
                err(format!(
                "chunk {index}: compressed data is corrupt or larger than its {stored} pages ({e})"
            ))
            })?;
        if n != dst.len() {
            return Err(err(format!(
                "chunk {index}: compressed data holds {n} bytes, expected {} ({stored} pages)",
                dst.len()
            )));
        }
        at += n;
    }
    Ok(())
}

/// Decode a page stream into `out`, whose length must be the stream's RAM size. Every
/// byte of `out` is written (zero pages are zeroed).
///
/// The whole stream is decoded and checked ([`decode_pages`]) before the first byte of
/// `out` is written, so on an error `out` is untouched.
pub fn decode_ram_into(data: &[u8], out: &mut [u8]) -> Result<(), SnapshotError> {
    decode_pages(data, out.len())?.apply(out);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(size: usize) -> Vec<u8> {
        let mut ram = vec![0u8; size];
        // A few non-zero pages: text-like, random-like, and a single byte at a page end.
        for (i, b) in ram[0x1000..0x3000].iter_mut().enumerate() {
            *b = b"hello, snapshot "[i % 16];
        }
        let mut x = 0x1234_5678u32;
        for b in ram[0x20_0000..0x20_1000].iter_mut() {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *b = x as u8;
        }
        let last = size - 1;
        ram[last] = 0xAA;
        ram
    }

    #[test]
    fn round_trip() {
        for size in [0, 4096, 5 << 12, 1 << 20, (3 << 20) + (7 << 12)] {
            let ram = if size >= 0x20_1000 {
                pattern(size)
            } else {
                let mut r = vec![0; size];
                if size > 0 {
                    r[size / 2] = 7;
                }
                r
            };
            let enc = encode_ram(&ram);
            assert_eq!(decode_ram(&enc, size as u64).unwrap(), ram, "size {size}");
            // decode_ram_into overwrites stale contents.
            let mut out = vec![0x55; size];
            decode_ram_into(&enc, &mut out).unwrap();
            assert_eq!(out, ram);
            assert_eq!(encode_ram(&out), enc, "deterministic");
        }
    }

    #[test]
    fn zero_pages_cost_nothing() {
        let ram = vec![0u8; 128 << 20];
        let enc = encode_ram(&ram);
        assert_eq!(enc.len(), 16 + 128);
        let mut ram = vec![0u8; 64 << 20];
        ram[(40 << 20) + 100] = 1;
        let enc = encode_ram(&ram);
        assert!(enc.len() < 256, "{} bytes", enc.len());
    }

    fn derr(data: &[u8], size: u64) -> String {
        decode_ram(data, size).unwrap_err().to_string()
    }

    #[test]
    fn hostile_streams() {
        let ram = pattern(3 << 20);
        let enc = encode_ram(&ram);
        assert_eq!(
            derr(&enc, 2 << 20),
            "section `ram`: holds 3145728 bytes of RAM but the machine has 2097152"
        );
        for cut in [0, 7, 8, 15, 16, 17, 40, enc.len() - 1] {
            assert!(decode_ram(&enc[..cut], 3 << 20).is_err(), "cut at {cut}");
        }
        let mut v = enc.clone();
        v.push(0);
        assert_eq!(
            derr(&v, 3 << 20),
            "section `ram`: 1 bytes after the last chunk"
        );
        let mut v = enc.clone();
        v[9] = 0x20;
        assert_eq!(
            derr(&v, 3 << 20),
            "section `ram`: page size 8192 is not 4096"
        );
        let mut v = enc.clone();
        v[12..16].copy_from_slice(&0u32.to_le_bytes());
        assert!(derr(&v, 3 << 20).contains("outside 1..=4096"));
        let mut v = enc.clone();
        v[16] = 9;
        assert_eq!(derr(&v, 3 << 20), "section `ram`: chunk 0: unknown kind 9");
        // A mixed chunk with an empty bitmap.
        let mut v = enc.clone();
        assert_eq!(v[16], KIND_PAGES);
        v[17..17 + 32].fill(0);
        assert!(derr(&v, 3 << 20).contains("stores no page"));
        // A bitmap claiming more pages than the frame holds.
        let mut v = enc.clone();
        v[17] |= 1;
        assert!(
            derr(&v, 3 << 20).contains("chunk 0"),
            "{}",
            derr(&v, 3 << 20)
        );
        // A frame length past the end.
        let mut v = enc.clone();
        v[17 + 32..17 + 36].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(derr(&v, 3 << 20).contains("runs past the end"));
        // A stream whose last chunk is bad leaves the output untouched.
        let mut out = vec![0x55u8; 3 << 20];
        assert!(decode_ram_into(&enc[..enc.len() - 1], &mut out).is_err());
        assert!(out.iter().all(|&b| b == 0x55));
        // Corrupt compressed bytes: an error (or, if zstd happens to accept them, a
        // wrong result of the right size), never a panic; an error leaves the output
        // untouched, even when the damage is found only while decompressing.
        let mut errors = 0;
        for i in 17 + 36..17 + 60 {
            let mut v = enc.clone();
            v[i] ^= 0x5A;
            let mut out = vec![0x55u8; 3 << 20];
            if decode_ram_into(&v, &mut out).is_err() {
                errors += 1;
                assert!(out.iter().all(|&b| b == 0x55), "byte {i}");
            }
        }
        assert!(errors > 0);
    }

    #[test]
    fn decompression_bomb_is_refused() {
        // One stored page whose frame decompresses to far more than 4 KiB.
        let big = vec![0x11u8; 8 << 20];
        let frame = zstd::bulk::compress(&big, 3).unwrap();
        let mut v = Vec::new();
        v.extend_from_slice(&(1u64 << 20).to_le_bytes());
        v.extend_from_slice(&4096u32.to_le_bytes());
        v.extend_from_slice(&256u32.to_le_bytes());
        v.push(KIND_PAGES);
        let mut bitmap = [0u8; 32];
        bitmap[0] = 1;
        v.extend_from_slice(&bitmap);
        v.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        v.extend_from_slice(&frame);
        assert_eq!(
            derr(&v, 1 << 20),
            "section `ram`: chunk 0: compressed data holds 8388608 bytes, expected 4096 (1 pages)"
        );
        // The same frame without a declared size: refused before decompression.
        let mut cctx = zstd::bulk::Compressor::new(3).unwrap();
        cctx.set_parameter(zstd::zstd_safe::CParameter::ContentSizeFlag(false))
            .unwrap();
        let frame = cctx.compress(&big).unwrap();
        let mut v2 = v[..16 + 1 + 32].to_vec();
        v2.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        v2.extend_from_slice(&frame);
        assert!(derr(&v2, 1 << 20).contains("does not declare its size"));
    }

    #[test]
    fn large_streams_decode_on_two_threads() {
        // 24 MiB, all pages non-zero: above the threshold for two threads.
        let mut ram = vec![0u8; 24 << 20];
        let mut x = 0x9E37_79B9u32;
        for (i, b) in ram.iter_mut().enumerate() {
            if i % 4096 < 64 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *b = x as u8 | 1;
            }
        }
        let enc = encode_ram(&ram);
        assert_eq!(decode_ram(&enc, ram.len() as u64).unwrap(), ram);
        // Damage in the last chunk (second thread) and in the first (first thread).
        for at in [enc.len() - 40, 16 + 1 + 32 + 4 + 20] {
            let mut v = enc.clone();
            v[at] ^= 0x55;
            let mut out = vec![0x77u8; ram.len()];
            assert!(decode_ram_into(&v, &mut out).is_err(), "damage at {at}");
            assert!(out.iter().all(|&b| b == 0x77));
        }
    }
}
