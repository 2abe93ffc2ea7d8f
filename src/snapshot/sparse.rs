//! Serde encoding for large, mostly zero byte buffers in device state (the VGA's video
//! memory): the buffer's length, then only its non-zero 4 KiB pages, each as its index
//! and its bytes. Use with `#[serde(with = "crate::snapshot::sparse")]` on a `Vec<u8>`.
//!
//! postcard layout: `u64` length (varint), then a sequence (varint count) of
//! `(u32 page index (varint), bytes (varint length + raw bytes))`, indices strictly
//! increasing, each page `min(4096, length - index * 4096)` bytes and not all zero.
//! The encoding is canonical (one encoding per buffer) and uses no compression, so the
//! state hash does not depend on a compressor.

use serde::de::{Error, SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

const PAGE: usize = 4096;
/// Longest buffer a decoder accepts (hostile input must not allocate more).
pub const MAX_LEN: u64 = 256 << 20;

struct Pages<'a>(&'a [u8]);

impl Serialize for Pages<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let nonzero = |p: &&[u8]| p.iter().any(|&b| b != 0);
        let n = self.0.chunks(PAGE).filter(nonzero).count();
        let mut seq = s.serialize_seq(Some(n))?;
        for (i, p) in self.0.chunks(PAGE).enumerate() {
            if nonzero(&p) {
                seq.serialize_element(&(i as u32, Bytes(p)))?;
            }
        }
        seq.end()
    }
}

struct Bytes<'a>(&'a [u8]);

impl Serialize for Bytes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

/// A page's bytes as decoded (borrowed from postcard's input where it can).
struct PageBuf(Vec<u8>);

impl<'de> Deserialize<'de> for PageBuf {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<PageBuf, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = PageBuf;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("the bytes of one page")
            }
            fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<PageBuf, E> {
                if v.len() > PAGE {
                    return Err(E::custom(format!("a page of {} bytes", v.len())));
                }
                Ok(PageBuf(v.to_vec()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PageBuf, A::Error> {
                let mut v = Vec::new();
                while let Some(b) = seq.next_element::<u8>()? {
                    if v.len() == PAGE {
                        return Err(A::Error::custom("a page of more than 4096 bytes"));
                    }
                    v.push(b);
                }
                Ok(PageBuf(v))
            }
        }
        d.deserialize_bytes(V)
    }
}

pub fn serialize<S: Serializer>(buf: &[u8], s: S) -> Result<S::Ok, S::Error> {
    (buf.len() as u64, Pages(buf)).serialize(s)
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<u8>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a sparse byte buffer: length and non-zero pages")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            let len: u64 = seq
                .next_element()?
                .ok_or_else(|| A::Error::custom("missing length"))?;
            if len > MAX_LEN {
                return Err(A::Error::custom(format!(
                    "sparse buffer of {len} bytes exceeds {MAX_LEN}"
                )));
            }
            let len = len as usize;
            let pages: Vec<(u32, PageBuf)> = seq
                .next_element()?
                .ok_or_else(|| A::Error::custom("missing pages"))?;
            let mut out = vec![0u8; len];
            let mut next = 0usize;
            for (index, PageBuf(bytes)) in pages {
                let i = index as usize;
                let at = i.checked_mul(PAGE).filter(|&a| a < len);
                let Some(at) = at.filter(|_| i >= next) else {
                    return Err(A::Error::custom(format!(
                        "page {index} is out of order or past the end of {len} bytes"
                    )));
                };
                let want = (len - at).min(PAGE);
                if bytes.len() != want || bytes.iter().all(|&b| b == 0) {
                    return Err(A::Error::custom(format!(
                        "page {index} has {} bytes (expected {want}, not all zero)",
                        bytes.len()
                    )));
                }
                out[at..at + want].copy_from_slice(&bytes);
                next = i + 1;
            }
            Ok(out)
        }
    }
    d.deserialize_tuple(2, V)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct S {
        a: u8,
        #[serde(with = "super")]
        buf: Vec<u8>,
        b: u8,
    }

    #[test]
    fn round_trip_and_size() {
        let mut buf = vec![0u8; 16 << 20];
        buf[5] = 1;
        buf[(8 << 20) + 4095] = 2;
        buf[(16 << 20) - 1] = 3;
        let s = S { a: 7, buf, b: 9 };
        let enc = postcard::to_stdvec(&s).unwrap();
        assert!(enc.len() < 3 * 4096 + 64, "{}", enc.len());
        let back: S = postcard::from_bytes(&enc).unwrap();
        assert_eq!(back, s);
        // A short last page.
        let s = S {
            a: 0,
            buf: vec![1; 5000],
            b: 0,
        };
        let back: S = postcard::from_bytes(&postcard::to_stdvec(&s).unwrap()).unwrap();
        assert_eq!(back, s);
        let empty = S {
            a: 0,
            buf: Vec::new(),
            b: 0,
        };
        assert_eq!(postcard::to_stdvec(&empty).unwrap(), [0, 0, 0, 0]);
    }

    #[test]
    fn hostile_encodings_are_refused() {
        let dec = |b: &[u8]| postcard::from_bytes::<S>(b).is_err();
        // Length over the limit: refused before allocating.
        let mut v = vec![0u8];
        v.extend([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]);
        v.extend([0, 0]);
        assert!(dec(&v));
        // A page past the end, a short page, a zero page, pages out of order.
        let page = |i: u8, n: usize, fill: u8| {
            let mut p = vec![i];
            let mut len = Vec::new();
            let mut x = n;
            loop {
                let b = (x & 0x7F) as u8;
                x >>= 7;
                if x == 0 {
                    len.push(b);
                    break;
                }
                len.push(b | 0x80);
            }
            p.extend(len);
            p.extend(vec![fill; n]);
            p
        };
        let sparse = |len: u8, pages: &[Vec<u8>]| {
            let mut v = vec![0u8, 0x80, len]; // a=0, len = len * 128 (two-byte varint)
            v.push(pages.len() as u8);
            for p in pages {
                v.extend(p);
            }
            v.push(0);
            v
        };
        // 32 * 128 = 4096 bytes: one page.
        assert!(!dec(&sparse(32, &[page(0, 4096, 1)])));
        assert!(dec(&sparse(32, &[page(1, 4096, 1)])));
        assert!(dec(&sparse(32, &[page(0, 100, 1)])));
        assert!(dec(&sparse(32, &[page(0, 4096, 0)])));
        assert!(dec(&sparse(64, &[page(1, 4096, 1), page(0, 4096, 1)])));
        assert!(dec(&sparse(64, &[page(0, 4096, 1), page(0, 4096, 1)])));
        assert!(!dec(&sparse(64, &[page(0, 4096, 1), page(1, 4096, 1)])));
    }
}
