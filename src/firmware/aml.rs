//! A small ACPI Machine Language (AML) encoder: just the terms the board's DSDT uses
//! (ACPI spec, chapter 20 "ACPI Machine Language Specification").

/// PkgLength encoding of a package whose contents (after the PkgLength) are `len`
/// bytes long; the encoded length counts the PkgLength bytes themselves.
pub fn pkg_length(len: usize) -> Vec<u8> {
    // One byte holds up to 63; n extra bytes hold 4 + 8n bits.
    for extra in 0..4usize {
        let total = len + 1 + extra;
        let fits = match extra {
            0 => total < 0x40,
            1 => total < 1 << 12,
            2 => total < 1 << 20,
            _ => total < 1 << 28,
        };
        if fits {
            if extra == 0 {
                return vec![total as u8];
            }
            let mut v = vec![((extra as u8) << 6) | (total & 0xF) as u8];
            for i in 0..extra {
                v.push((total >> (4 + 8 * i)) as u8);
            }
            return v;
        }
    }
    panic!("AML package too large: {len} bytes")
}

/// A NameString: a root/prefix-free path of one or more 4-character segments separated
/// by '.', optionally starting with '\'. Segments shorter than 4 are padded with '_'.
pub fn name_string(path: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut p = path;
    if let Some(rest) = p.strip_prefix('\\') {
        out.push(b'\\');
        p = rest;
    }
    let segs: Vec<&str> = p.split('.').filter(|s| !s.is_empty()).collect();
    match segs.len() {
        0 => out.push(0),
        1 => {}
        2 => out.push(0x2E),
        n => {
            out.push(0x2F);
            out.push(n as u8);
        }
    }
    for s in segs {
        let mut seg = [b'_'; 4];
        for (i, b) in s.bytes().take(4).enumerate() {
            seg[i] = b;
        }
        out.extend_from_slice(&seg);
    }
    out
}

pub fn integer(v: u64) -> Vec<u8> {
    match v {
        0 => vec![0x00],
        1 => vec![0x01],
        2..=0xFF => vec![0x0A, v as u8],
        0x100..=0xFFFF => {
            let mut b = vec![0x0B];
            b.extend_from_slice(&(v as u16).to_le_bytes());
            b
        }
        0x1_0000..=0xFFFF_FFFF => {
            let mut b = vec![0x0C];
            b.extend_from_slice(&(v as u32).to_le_bytes());
            b
        }
        _ => {
            let mut b = vec![0x0E];
            b.extend_from_slice(&v.to_le_bytes());
            b
        }
    }
}

/// A compressed EISA id ("PNP0A03") as an integer.
pub fn eisa_id(id: &str) -> Vec<u8> {
    let b = id.as_bytes();
    assert!(b.len() == 7, "EISA id must be 7 characters");
    let c = |x: u8| (x - b'@') as u32 & 0x1F;
    let hex = |x: u8| (x as char).to_digit(16).unwrap_or(0);
    let v: u32 = (c(b[0]) << 26)
        | (c(b[1]) << 21)
        | (c(b[2]) << 16)
        | (hex(b[3]) << 12)
        | (hex(b[4]) << 8)
        | (hex(b[5]) << 4)
        | hex(b[6]);
    // Stored big-endian in the integer's bytes.
    let mut out = vec![0x0C];
    out.extend_from_slice(&v.to_be_bytes());
    out
}

/// Name(NAME, data)
pub fn name(n: &str, data: &[u8]) -> Vec<u8> {
    let mut v = vec![0x08];
    v.extend_from_slice(&name_string(n));
    v.extend_from_slice(data);
    v
}

fn with_pkg(prefix: &[u8], inner: &[u8]) -> Vec<u8> {
    let mut v = prefix.to_vec();
    v.extend_from_slice(&pkg_length(inner.len()));
    v.extend_from_slice(inner);
    v
}

/// Scope(path) { terms }
pub fn scope(path: &str, terms: &[Vec<u8>]) -> Vec<u8> {
    let mut inner = name_string(path);
    terms.iter().for_each(|t| inner.extend_from_slice(t));
    with_pkg(&[0x10], &inner)
}

/// Device(name) { terms }
pub fn device(n: &str, terms: &[Vec<u8>]) -> Vec<u8> {
    let mut inner = name_string(n);
    terms.iter().for_each(|t| inner.extend_from_slice(t));
    with_pkg(&[0x5B, 0x82], &inner)
}

/// Package(n) { elements }
pub fn package(elems: &[Vec<u8>]) -> Vec<u8> {
    let mut inner = vec![elems.len() as u8];
    elems.iter().for_each(|e| inner.extend_from_slice(e));
    with_pkg(&[0x12], &inner)
}

/// Buffer { bytes }
pub fn buffer(bytes: &[u8]) -> Vec<u8> {
    let mut inner = integer(bytes.len() as u64);
    inner.extend_from_slice(bytes);
    with_pkg(&[0x11], &inner)
}

/// Builder for a resource template (the body of a `_CRS` buffer).
#[derive(Default)]
pub struct ResourceTemplate {
    b: Vec<u8>,
}

impl ResourceTemplate {
    pub fn new() -> Self {
        Self::default()
    }

    /// IO(Decode16, base, base, 1, len)
    pub fn io(&mut self, base: u16, len: u8) {
        self.b.extend_from_slice(&[0x47, 0x01]);
        self.b.extend_from_slice(&base.to_le_bytes());
        self.b.extend_from_slice(&base.to_le_bytes());
        self.b.extend_from_slice(&[1, len]);
    }

    fn word_space(&mut self, kind: u8, general_flags: u8, type_flags: u8, min: u16, max: u16) {
        self.b
            .extend_from_slice(&[0x88, 13, 0, kind, general_flags, type_flags]);
        self.b.extend_from_slice(&0u16.to_le_bytes()); // granularity
        self.b.extend_from_slice(&min.to_le_bytes());
        self.b.extend_from_slice(&max.to_le_bytes());
        self.b.extend_from_slice(&0u16.to_le_bytes()); // translation
        self.b
            .extend_from_slice(&(max.wrapping_sub(min).wrapping_add(1)).to_le_bytes());
    }

    /// WordBusNumber(ResourceProducer, MinFixed, MaxFixed, PosDecode, 0, min, max, 0, len)
    pub fn word_bus_number(&mut self, min: u16, max: u16) {
        self.word_space(2, 0x0C, 0, min, max);
    }

    /// WordIO(ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange, ...)
    pub fn word_io(&mut self, min: u16, max: u16) {
        self.word_space(1, 0x0C, 3, min, max);
    }

    /// DWordMemory(ResourceProducer, PosDecode, MinFixed, MaxFixed, Cacheable, ReadWrite)
    pub fn dword_memory(&mut self, min: u32, max: u32) {
        self.b.extend_from_slice(&[0x87, 23, 0, 0, 0x0C, 0x03]);
        self.b.extend_from_slice(&0u32.to_le_bytes());
        self.b.extend_from_slice(&min.to_le_bytes());
        self.b.extend_from_slice(&max.to_le_bytes());
        self.b.extend_from_slice(&0u32.to_le_bytes());
        self.b
            .extend_from_slice(&(max.wrapping_sub(min).wrapping_add(1)).to_le_bytes());
    }

    /// The `Buffer` term holding the template with its end tag.
    pub fn finish(mut self) -> Vec<u8> {
        self.b.extend_from_slice(&[0x79, 0]);
        buffer(&self.b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkg_length_encodings() {
        assert_eq!(pkg_length(10), vec![11]);
        assert_eq!(pkg_length(62), vec![63]);
        // 63 + 2 = 65 = 0x41: two bytes, low nibble 1, next byte 0x04.
        assert_eq!(pkg_length(63), vec![0x41, 0x04]);
        assert_eq!(pkg_length(0x1000), vec![0x83, 0x00, 0x01]);
    }

    #[test]
    fn names_and_ids() {
        assert_eq!(name_string("_S5"), b"_S5_".to_vec());
        assert_eq!(name_string("\\_SB.PCI0"), b"\\\x2E_SB_PCI0".to_vec());
        assert_eq!(eisa_id("PNP0A03"), vec![0x0C, 0x41, 0xD0, 0x0A, 0x03]);
        assert_eq!(integer(0x1234), vec![0x0B, 0x34, 0x12]);
    }
}
