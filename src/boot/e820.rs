//! The PC physical memory map handed to kernels (BIOS INT 15h E820 format).
//!
//! [`pc_memory_map`] describes RAM of a given size the way a PC BIOS would: conventional
//! memory below 0x9F000, the legacy hole 0x9F000-0x100000 (EBDA, VGA window, option and
//! BIOS ROMs) reserved, and extended memory from 1 MiB to the end of RAM. A machine can lay
//! extra ranges over it (ACPI tables, firmware areas): they take precedence over what they
//! cover. The result is sorted, non-overlapping, with adjacent ranges of the same type
//! merged. The Linux zero page and the Multiboot `mmap` are both built from it.

use super::BootError;

/// End of conventional memory in the map (the EBDA conventionally starts here).
pub const CONVENTIONAL_END: u64 = 0x9_F000;
/// Start of extended memory.
pub const EXTENDED_START: u64 = 0x10_0000;
/// Most entries a Linux zero page can carry (`E820_MAX_ENTRIES_ZEROPAGE`).
pub const MAX_ENTRIES: usize = 128;

/// E820 range types (ACPI "address range types").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum E820Type {
    Ram,
    Reserved,
    Acpi,
    Nvs,
    Unusable,
}

impl E820Type {
    /// The numeric type stored in the E820 table.
    pub fn code(self) -> u32 {
        match self {
            E820Type::Ram => 1,
            E820Type::Reserved => 2,
            E820Type::Acpi => 3,
            E820Type::Nvs => 4,
            E820Type::Unusable => 5,
        }
    }
}

/// One range of the physical address space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct E820Entry {
    pub addr: u64,
    pub size: u64,
    pub kind: E820Type,
}

impl E820Entry {
    pub fn new(addr: u64, size: u64, kind: E820Type) -> E820Entry {
        E820Entry { addr, size, kind }
    }

    /// Exclusive end address.
    pub fn end(&self) -> u64 {
        self.addr.saturating_add(self.size)
    }

    /// The 20-byte little-endian record (base, length, type) of the E820 table.
    pub fn to_bytes(&self) -> [u8; 20] {
        let mut b = [0u8; 20];
        b[0..8].copy_from_slice(&self.addr.to_le_bytes());
        b[8..16].copy_from_slice(&self.size.to_le_bytes());
        b[16..20].copy_from_slice(&self.kind.code().to_le_bytes());
        b
    }
}

/// The memory map of a PC with `ram_size` bytes of RAM from physical address 0, with
/// `extra` ranges laid over it in order (a later range wins over an earlier one where they
/// overlap). Ranges above 4 GiB are allowed in `extra`; empty ranges are ignored.
pub fn pc_memory_map(ram_size: u32, extra: &[E820Entry]) -> Result<Vec<E820Entry>, BootError> {
    let ram = ram_size as u64;
    let mut map: Vec<E820Entry> = Vec::new();
    map.push(E820Entry::new(0, ram.min(CONVENTIONAL_END), E820Type::Ram));
    map.push(E820Entry::new(
        CONVENTIONAL_END,
        EXTENDED_START - CONVENTIONAL_END,
        E820Type::Reserved,
    ));
    if ram > EXTENDED_START {
        map.push(E820Entry::new(
            EXTENDED_START,
            ram - EXTENDED_START,
            E820Type::Ram,
        ));
    }
    map.retain(|e| e.size != 0);
    for e in extra {
        if e.size == 0 {
            continue;
        }
        if e.addr.checked_add(e.size).is_none() {
            return Err(BootError::BadMemoryMap {
                why: "an extra range wraps around the 64-bit address space",
            });
        }
        overlay(&mut map, *e);
    }
    if map.len() > MAX_ENTRIES {
        return Err(BootError::BadMemoryMap {
            why: "more than 128 ranges (the most a zero page can carry)",
        });
    }
    Ok(map)
}

/// Lay `new` over a sorted, non-overlapping map, cutting what it covers.
fn overlay(map: &mut Vec<E820Entry>, new: E820Entry) {
    let (start, end) = (new.addr, new.end());
    let mut out = Vec::with_capacity(map.len() + 2);
    for e in map.iter() {
        if e.end() <= start || e.addr >= end {
            out.push(*e);
            continue;
        }
        if e.addr < start {
            out.push(E820Entry::new(e.addr, start - e.addr, e.kind));
        }
        if e.end() > end {
            out.push(E820Entry::new(end, e.end() - end, e.kind));
        }
    }
    out.push(new);
    out.sort_by_key(|e| e.addr);
    // merge touching ranges of one type
    let mut merged: Vec<E820Entry> = Vec::with_capacity(out.len());
    for e in out {
        match merged.last_mut() {
            Some(last) if last.kind == e.kind && last.end() == e.addr => last.size += e.size,
            _ => merged.push(e),
        }
    }
    *map = merged;
}

/// The RAM ranges of a map as `(start, end)` pairs (end exclusive), lowest first.
pub fn ram_ranges(map: &[E820Entry]) -> Vec<(u64, u64)> {
    map.iter()
        .filter(|e| e.kind == E820Type::Ram)
        .map(|e| (e.addr, e.end()))
        .collect()
}

/// Whether `[addr, addr + size)` lies inside one RAM range of the map.
pub fn is_ram(map: &[E820Entry], addr: u64, size: u64) -> bool {
    let Some(end) = addr.checked_add(size) else {
        return false;
    };
    ram_ranges(map)
        .iter()
        .any(|&(s, e)| s <= addr && end <= e && (size != 0 || addr < e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_pc_map() {
        let m = pc_memory_map(128 << 20, &[]).unwrap();
        assert_eq!(
            m,
            vec![
                E820Entry::new(0, 0x9F000, E820Type::Ram),
                E820Entry::new(0x9F000, 0x61000, E820Type::Reserved),
                E820Entry::new(0x100000, (128 << 20) - 0x100000, E820Type::Ram),
            ]
        );
        assert!(is_ram(&m, 0x100000, 0x1000));
        assert!(!is_ram(&m, 0x9E000, 0x2000));
        assert!(!is_ram(&m, (128 << 20) - 4, 8));
    }

    #[test]
    fn overlay_splits_and_merges() {
        let acpi = E820Entry::new(0x7FF_0000, 0x1_0000, E820Type::Acpi);
        let m = pc_memory_map(0x800_0000, &[acpi]).unwrap();
        assert_eq!(m.len(), 4);
        assert_eq!(m[2], E820Entry::new(0x100000, 0x7EF_0000, E820Type::Ram));
        assert_eq!(m[3], acpi);
        // a reserved range touching the legacy hole merges with it
        let r = E820Entry::new(0x9E000, 0x1000, E820Type::Reserved);
        let m = pc_memory_map(0x800_0000, &[r]).unwrap();
        assert_eq!(m[0], E820Entry::new(0, 0x9E000, E820Type::Ram));
        assert_eq!(m[1], E820Entry::new(0x9E000, 0x62000, E820Type::Reserved));
    }

    #[test]
    fn small_and_hostile() {
        let m = pc_memory_map(0x8000, &[]).unwrap();
        assert_eq!(m[0], E820Entry::new(0, 0x8000, E820Type::Ram));
        assert_eq!(m.len(), 2);
        let wrap = E820Entry::new(u64::MAX - 1, 4, E820Type::Reserved);
        assert!(pc_memory_map(1 << 20, &[wrap]).is_err());
        let many: Vec<_> = (0..200)
            .map(|i| E820Entry::new(0x200000 + i * 0x2000, 0x1000, E820Type::Reserved))
            .collect();
        assert!(pc_memory_map(64 << 20, &many).is_err());
    }
}
