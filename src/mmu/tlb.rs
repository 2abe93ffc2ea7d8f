//! Software TLB: linear page → physical page, host offset and access rights.
//!
//! Direct mapped, one entry per 4 KiB linear page (large pages are cached as their 4 KiB
//! pieces, remembering the large page's size so INVLPG drops all of them). Each entry
//! holds separate read / write / execute rights for supervisor and user accesses. Write
//! rights are granted only once the page's dirty bit is set (the first write takes the
//! slow path, which sets D) and host writes only when the page holds no decoded code
//! (so self-modifying code is always noticed). The TLB is a derived cache: never saved,
//! rebuilt by page walks after a restore.

pub const TLB_ENTRIES: usize = 1024;

pub const R_SUP: u16 = 1 << 0;
pub const W_SUP: u16 = 1 << 1;
pub const X_SUP: u16 = 1 << 2;
pub const R_USER: u16 = 1 << 3;
pub const W_USER: u16 = 1 << 4;
pub const X_USER: u16 = 1 << 5;
/// Reads may go straight to the host buffer at `host`.
pub const HOST_R: u16 = 1 << 6;
/// Writes may go straight to the host buffer (RAM, no decoded code on the page).
pub const HOST_W: u16 = 1 << 7;
/// Survives CR3 writes (CR4.PGE and the G bit).
pub const GLOBAL: u16 = 1 << 8;
/// The physical page lies above 4 GiB: reads as all ones, writes are dropped.
pub const NO_MEM: u16 = 1 << 9;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TlbEntry {
    /// Linear page base | 1 when valid.
    pub tag: u32,
    /// Physical page base.
    pub phys: u32,
    /// Offset of the page in the physical memory's host buffer (with HOST_R).
    pub host: u32,
    pub flags: u16,
    /// log2 of the size of the page this piece belongs to (12, 21 or 22).
    pub page_shift: u8,
}

#[derive(Clone, Debug)]
pub struct Tlb {
    entries: Box<[TlbEntry; TLB_ENTRIES]>,
    /// `PhysMem::map_epoch` the entries were filled under.
    pub epoch: u32,
    pub stats: TlbStats,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct TlbStats {
    pub fills: u64,
    pub flushes: u64,
}

impl Default for Tlb {
    fn default() -> Self {
        Tlb {
            entries: Box::new([TlbEntry::default(); TLB_ENTRIES]),
            epoch: 0,
            stats: TlbStats::default(),
        }
    }
}

#[inline]
fn index(lin: u32) -> usize {
    (lin >> 12) as usize & (TLB_ENTRIES - 1)
}

impl Tlb {
    /// The entry for `lin` if it is cached and grants `need` (one of the R/W/X bits).
    #[inline(always)]
    pub fn lookup(&self, lin: u32, need: u16) -> Option<&TlbEntry> {
        let e = &self.entries[index(lin)];
        if e.tag == (lin & !0xFFF) | 1 && e.flags & need != 0 {
            Some(e)
        } else {
            None
        }
    }

    pub fn insert(&mut self, lin: u32, mut e: TlbEntry) {
        e.tag = (lin & !0xFFF) | 1;
        self.entries[index(lin)] = e;
        self.stats.fills += 1;
    }

    /// Drop everything (CR0/CR4 paging changes, A20 or memory-map changes).
    pub fn flush_all(&mut self) {
        self.entries.fill(TlbEntry::default());
        self.stats.flushes += 1;
    }

    /// CR3 write: drop all but global entries.
    pub fn flush_non_global(&mut self) {
        for e in self.entries.iter_mut() {
            if e.flags & GLOBAL == 0 {
                *e = TlbEntry::default();
            }
        }
        self.stats.flushes += 1;
    }

    /// INVLPG: drop every piece of the page that contains `lin` (global or not).
    pub fn invalidate(&mut self, lin: u32) {
        for e in self.entries.iter_mut() {
            if e.tag & 1 != 0 {
                let mask = !((1u64 << e.page_shift) - 1) as u32;
                if e.tag & mask == lin & mask {
                    *e = TlbEntry::default();
                }
            }
        }
    }

    /// A physical page now holds decoded code: writes to it must take the slow path.
    pub fn revoke_host_write(&mut self, phys_page: u32) {
        for e in self.entries.iter_mut() {
            if e.flags & HOST_W != 0 && e.phys == phys_page {
                e.flags &= !HOST_W;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(phys: u32, flags: u16, shift: u8) -> TlbEntry {
        TlbEntry {
            tag: 0,
            phys,
            host: phys,
            flags,
            page_shift: shift,
        }
    }

    #[test]
    fn lookup_checks_tag_and_rights() {
        let mut t = Tlb::default();
        t.insert(0x1234_5000, entry(0x8000, R_SUP | W_SUP, 12));
        assert!(t.lookup(0x1234_5ABC, R_SUP).is_some());
        assert!(t.lookup(0x1234_5ABC, W_SUP).is_some());
        assert!(t.lookup(0x1234_5ABC, R_USER).is_none());
        // Same index, different tag.
        assert!(t
            .lookup(0x1234_5000 + (TLB_ENTRIES as u32) * 4096, R_SUP)
            .is_none());
    }

    #[test]
    fn cr3_flush_keeps_global_entries() {
        let mut t = Tlb::default();
        t.insert(0x1000, entry(0x1000, R_SUP, 12));
        t.insert(0x2000, entry(0x2000, R_SUP | GLOBAL, 12));
        t.flush_non_global();
        assert!(t.lookup(0x1000, R_SUP).is_none());
        assert!(t.lookup(0x2000, R_SUP).is_some());
        t.flush_all();
        assert!(t.lookup(0x2000, R_SUP).is_none());
    }

    #[test]
    fn invlpg_drops_all_pieces_of_a_large_page() {
        let mut t = Tlb::default();
        // Two 4 KiB pieces of the 4 MiB page at 0x0040_0000, and an unrelated page.
        t.insert(0x0040_0000, entry(0x0100_0000, R_SUP | GLOBAL, 22));
        t.insert(0x0041_3000, entry(0x0101_3000, R_SUP | GLOBAL, 22));
        t.insert(0x0080_0000, entry(0x0080_0000, R_SUP, 12));
        t.invalidate(0x0050_0000);
        assert!(t.lookup(0x0040_0000, R_SUP).is_none());
        assert!(t.lookup(0x0041_3000, R_SUP).is_none());
        assert!(t.lookup(0x0080_0000, R_SUP).is_some());
        t.invalidate(0x0080_0FFF);
        assert!(t.lookup(0x0080_0000, R_SUP).is_none());
    }

    #[test]
    fn code_pages_lose_host_writes() {
        let mut t = Tlb::default();
        t.insert(0x5000, entry(0x9000, R_SUP | W_SUP | HOST_R | HOST_W, 12));
        t.revoke_host_write(0x9000);
        let e = t.lookup(0x5000, W_SUP).unwrap();
        assert_eq!(e.flags & HOST_W, 0);
        assert_ne!(e.flags & HOST_R, 0);
    }
}
