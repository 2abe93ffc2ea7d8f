//! The physical address space: RAM, ROM and everything else (MMIO, routed to the bus).
//!
//! A 4 KiB-granular page map covers the whole 32-bit physical space. RAM and ROM pages
//! point into one host buffer (`backing`), so a later software TLB can hand out host
//! pointers for both; ROM pages simply refuse writes. Unmapped pages go to
//! [`Bus::mmio_read`]/[`Bus::mmio_write`].
//!
//! Writes to pages that hold decoded code are noticed here (every guest write passes
//! through this type) and queued for the CPU's decode cache to invalidate.

use crate::devices::bus::Bus;

const PAGE_SHIFT: u32 = 12;
const PAGE_SIZE: usize = 1 << PAGE_SHIFT;
const NUM_PAGES: usize = 1 << (32 - PAGE_SHIFT);

const KIND_MMIO: u32 = 0;
const KIND_RAM: u32 = 1;
const KIND_ROM: u32 = 2;
/// Reads from the backing (a ROM), writes go to the RAM at the same address (shadow RAM
/// in write-only mode).
const KIND_SPLIT: u32 = 3;
/// Pages below 1 MiB whose mapping the chipset's shadow-RAM control can change.
const LOW_PAGES: usize = 256;

/// A mapping error when building the memory map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapError(pub String);

impl std::fmt::Display for MapError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for MapError {}

pub struct PhysMem {
    /// RAM (first `ram_size` bytes) followed by ROM images.
    backing: Vec<u8>,
    ram_size: u32,
    /// Per 4 KiB page: kind in bits 0-1, backing page number in bits 12-31.
    pages: Vec<u32>,
    /// One bit per page: the decode cache holds instructions from this page.
    code_pages: Vec<u64>,
    /// For each page below 1 MiB: what is visible there when shadow RAM is off (a ROM
    /// page or MMIO).
    low_under: Vec<u32>,
    /// Pages with cached code that were written since the CPU last looked.
    pub(crate) smc_pages: Vec<u32>,
    /// A20 gate: when false, physical address bit 20 is forced to zero.
    a20: bool,
    /// Bumped whenever the address map changes (A20, ROM mapping): translation caches
    /// built under an older epoch are stale.
    map_epoch: u32,
}

impl std::fmt::Debug for PhysMem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhysMem")
            .field("ram_size", &self.ram_size)
            .field("backing_len", &self.backing.len())
            .field("a20", &self.a20)
            .finish()
    }
}

impl PhysMem {
    /// Plain RAM of `size` bytes from address 0 with no holes and no ROM (test setups).
    pub fn new_flat(size: usize) -> PhysMem {
        let size = size.min(0xFFFF_F000) & !(PAGE_SIZE - 1);
        let mut m = PhysMem {
            backing: vec![0; size],
            ram_size: size as u32,
            pages: vec![KIND_MMIO; NUM_PAGES],
            code_pages: vec![0; NUM_PAGES / 64],
            low_under: vec![KIND_MMIO; LOW_PAGES],
            smc_pages: Vec::new(),
            a20: true,
            map_epoch: 0,
        };
        for p in 0..size / PAGE_SIZE {
            m.pages[p] = KIND_RAM | ((p as u32) << PAGE_SHIFT);
        }
        m
    }

    /// A PC memory map: RAM of `size` bytes with the legacy VGA window 0xA0000-0xBFFFF
    /// left to MMIO. ROMs are added with [`PhysMem::map_rom`].
    pub fn new_pc(size: usize) -> PhysMem {
        let mut m = PhysMem::new_flat(size);
        for p in (0xA0000 >> PAGE_SHIFT)..(0xC0000 >> PAGE_SHIFT) {
            m.pages[p] = KIND_MMIO;
        }
        m
    }

    pub fn ram_size(&self) -> u32 {
        self.ram_size
    }

    /// Map a read-only copy of `image` at each address in `bases` (page aligned). The
    /// aliases share one copy of the bytes.
    pub fn map_rom(&mut self, image: &[u8], bases: &[u32]) -> Result<(), MapError> {
        if image.is_empty() || image.len() % PAGE_SIZE != 0 {
            return Err(MapError(format!(
                "ROM image size {} is not a non-zero multiple of 4 KiB",
                image.len()
            )));
        }
        let npages = image.len() / PAGE_SIZE;
        for &b in bases {
            if b as usize % PAGE_SIZE != 0 || b as u64 + image.len() as u64 > 1 << 32 {
                return Err(MapError(format!(
                    "ROM at {b:#x} (+{:#x}) is unaligned or extends past 4 GiB",
                    image.len()
                )));
            }
        }
        let start = self.backing.len();
        if start + image.len() > u32::MAX as usize {
            return Err(MapError(
                "too much memory for a 32-bit physical space".into(),
            ));
        }
        self.backing.extend_from_slice(image);
        self.map_epoch = self.map_epoch.wrapping_add(1);
        for &b in bases {
            for i in 0..npages {
                let host_page = (start / PAGE_SIZE + i) as u32;
                self.set_page(
                    (b as usize >> PAGE_SHIFT) + i,
                    KIND_ROM | (host_page << PAGE_SHIFT),
                );
            }
        }
        Ok(())
    }

    /// Make `len` bytes at `dst` show what is mapped at `src` (for example the last
    /// 128 KiB of a BIOS image mapped at the top of 4 GiB, aliased below 1 MiB).
    pub fn alias(&mut self, src: u32, len: u32, dst: u32) -> Result<(), MapError> {
        if src % PAGE_SIZE as u32 != 0
            || dst % PAGE_SIZE as u32 != 0
            || len % PAGE_SIZE as u32 != 0
            || src as u64 + len as u64 > 1 << 32
            || dst as u64 + len as u64 > 1 << 32
        {
            return Err(MapError(format!(
                "alias {src:#x}+{len:#x} -> {dst:#x} is unaligned or out of range"
            )));
        }
        self.map_epoch = self.map_epoch.wrapping_add(1);
        for i in 0..(len as usize / PAGE_SIZE) {
            let e = self.pages[(src as usize >> PAGE_SHIFT) + i];
            self.set_page((dst as usize >> PAGE_SHIFT) + i, e);
        }
        Ok(())
    }

    fn set_page(&mut self, p: usize, e: u32) {
        if p < LOW_PAGES && e & 3 != KIND_RAM {
            self.low_under[p] = e;
        }
        self.replace_page(p, e);
    }

    /// Change a page's mapping; decoded code from it becomes stale.
    fn replace_page(&mut self, p: usize, e: u32) {
        if self.pages[p] != e {
            self.pages[p] = e;
            if self.code_pages[p / 64] & (1 << (p % 64)) != 0 {
                self.code_pages[p / 64] &= !(1 << (p % 64));
                self.smc_pages.push(p as u32);
            }
        }
    }

    /// Shadow RAM control (the i440FX PAM registers) for `len` bytes at `base` below
    /// 1 MiB: reads come from RAM or from what lies under it (ROM or MMIO), writes go to
    /// RAM or are dropped (to MMIO when nothing is under it).
    pub fn set_shadow(&mut self, base: u32, len: u32, read_ram: bool, write_ram: bool) {
        let first = base as usize >> PAGE_SHIFT;
        let last = ((base as usize + len as usize) >> PAGE_SHIFT).min(LOW_PAGES);
        let mut changed = false;
        for p in first..last {
            if p as u32 >= self.ram_size >> PAGE_SHIFT {
                continue;
            }
            let ram = (p as u32) << PAGE_SHIFT;
            let under = self.low_under[p];
            let e = match (read_ram, write_ram) {
                (true, true) => KIND_RAM | ram,
                (true, false) => KIND_ROM | ram,
                (false, true) if under & 3 == KIND_ROM => KIND_SPLIT | (under & !0xFFF),
                _ => under,
            };
            changed |= self.pages[p] != e;
            self.replace_page(p, e);
        }
        if changed {
            self.map_epoch = self.map_epoch.wrapping_add(1);
        }
    }

    pub fn set_a20(&mut self, enabled: bool) {
        if self.a20 != enabled {
            self.a20 = enabled;
            self.map_epoch = self.map_epoch.wrapping_add(1);
        }
    }

    pub(crate) fn map_epoch(&self) -> u32 {
        self.map_epoch
    }

    /// Physical address as the bus sees it (A20 applied).
    #[inline]
    pub(crate) fn a20_mask(&self, addr: u32) -> u32 {
        self.mask(addr)
    }

    /// For a TLB fill: the host offset of the page holding `addr` (A20 already applied),
    /// whether it is writable RAM, and whether it holds decoded code.
    #[inline]
    pub(crate) fn host_page(&self, addr: u32) -> Option<(u32, bool, bool)> {
        let (h, writable) = self.host(addr & !0xFFF)?;
        let p = (addr >> PAGE_SHIFT) as usize;
        let code = self.code_pages[p / 64] & (1 << (p % 64)) != 0;
        Some((h as u32, writable, code))
    }

    /// Read through a host offset obtained from [`PhysMem::host_page`]; the access must
    /// not cross the page.
    #[inline(always)]
    pub(crate) fn host_read(&self, h: usize, size: u8) -> u32 {
        let b = &self.backing[h..h + size as usize];
        match size {
            1 => b[0] as u32,
            2 => u16::from_le_bytes([b[0], b[1]]) as u32,
            _ => u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
        }
    }

    /// Write through a host offset of a writable page without code (see the TLB's HOST_W).
    #[inline(always)]
    pub(crate) fn host_write(&mut self, h: usize, size: u8, val: u32) {
        self.backing[h..h + size as usize].copy_from_slice(&val.to_le_bytes()[..size as usize]);
    }

    pub fn a20(&self) -> bool {
        self.a20
    }

    #[inline]
    fn mask(&self, addr: u32) -> u32 {
        if self.a20 {
            addr
        } else {
            addr & !(1 << 20)
        }
    }

    /// Host offset of `addr` in `backing` if it is RAM or ROM; `writable` is false for ROM.
    #[inline]
    fn host(&self, addr: u32) -> Option<(usize, bool)> {
        let e = self.pages[(addr >> PAGE_SHIFT) as usize];
        match e & 3 {
            KIND_RAM => Some((((e & !0xFFF) | (addr & 0xFFF)) as usize, true)),
            KIND_ROM | KIND_SPLIT => Some((((e & !0xFFF) | (addr & 0xFFF)) as usize, false)),
            _ => None,
        }
    }

    /// Guest read of `size` (1, 2 or 4) bytes, little-endian. Accesses that cross a page
    /// boundary are split into bytes.
    #[inline]
    pub fn read(&mut self, addr: u32, size: u8, bus: &mut dyn Bus) -> u32 {
        let addr = self.mask(addr);
        if (addr & 0xFFF) as usize + size as usize <= PAGE_SIZE {
            if let Some((h, _)) = self.host(addr) {
                return self.host_read(h, size);
            }
            return bus.mmio_read(addr, size);
        }
        let mut v = 0;
        for i in 0..size as u32 {
            v |= self.read(addr.wrapping_add(i), 1, bus) << (8 * i);
        }
        v
    }

    /// Guest write of `size` (1, 2 or 4) bytes, little-endian.
    #[inline]
    pub fn write(&mut self, addr: u32, size: u8, val: u32, bus: &mut dyn Bus) {
        let addr = self.mask(addr);
        if (addr & 0xFFF) as usize + size as usize <= PAGE_SIZE {
            match self.host(addr) {
                Some((h, true)) => {
                    self.note_write(addr);
                    self.backing[h..h + size as usize]
                        .copy_from_slice(&val.to_le_bytes()[..size as usize]);
                }
                Some((_, false)) => {
                    if self.pages[(addr >> PAGE_SHIFT) as usize] & 3 == KIND_SPLIT {
                        // Shadow RAM in write-only mode: RAM sits at its own address.
                        self.note_write(addr);
                        let h = addr as usize;
                        self.backing[h..h + size as usize]
                            .copy_from_slice(&val.to_le_bytes()[..size as usize]);
                    }
                }
                None => bus.mmio_write(addr, size, val),
            }
            return;
        }
        for i in 0..size as u32 {
            self.write(addr.wrapping_add(i), 1, val >> (8 * i), bus);
        }
    }

    #[inline]
    fn note_write(&mut self, addr: u32) {
        let p = (addr >> PAGE_SHIFT) as usize;
        if self.code_pages[p / 64] & (1 << (p % 64)) != 0 {
            self.code_pages[p / 64] &= !(1 << (p % 64));
            self.smc_pages.push(p as u32);
        }
    }

    /// Mark a page as holding cached decoded instructions.
    pub(crate) fn mark_code(&mut self, addr: u32) {
        let p = (self.mask(addr) >> PAGE_SHIFT) as usize;
        self.code_pages[p / 64] |= 1 << (p % 64);
    }

    /// The bytes from `addr` to the end of its page, for instruction fetch: RAM/ROM only.
    /// Returns `None` for MMIO (code is not
    /// cached from or executed in MMIO in this model; the caller falls back to `read`).
    #[inline]
    pub(crate) fn fetch_slice(&self, addr: u32) -> Option<&[u8]> {
        let addr = self.mask(addr);
        let (h, _) = self.host(addr)?;
        let end = h - (addr & 0xFFF) as usize + PAGE_SIZE;
        Some(&self.backing[h..end])
    }

    /// Physical read without side effects (MMIO reads as 0xFF): for loaders, debuggers, tests.
    pub fn read_bytes(&self, addr: u32, buf: &mut [u8]) {
        for (i, b) in buf.iter_mut().enumerate() {
            let a = addr.wrapping_add(i as u32);
            *b = match self.host(a) {
                Some((h, _)) => self.backing[h],
                None => 0xFF,
            };
        }
    }

    /// Physical write that bypasses ROM protection is *not* offered: this writes RAM only
    /// (ROM and MMIO bytes are skipped) and keeps the decode cache coherent.
    pub fn write_bytes(&mut self, addr: u32, data: &[u8]) {
        for (i, &b) in data.iter().enumerate() {
            let a = addr.wrapping_add(i as u32);
            if let Some((h, true)) = self.host(a) {
                self.note_write(a);
                self.backing[h] = b;
            }
        }
    }

    /// Every mapped ROM image, concatenated in mapping order (identifies the firmware).
    pub fn rom_bytes(&self) -> &[u8] {
        &self.backing[self.ram_size as usize..]
    }

    /// The RAM contents (for hashing and snapshots).
    pub fn ram(&self) -> &[u8] {
        &self.backing[..self.ram_size as usize]
    }

    /// The RAM contents for wholesale replacement (snapshot restore). Every page that
    /// holds decoded code is queued for invalidation first, since the caller may change
    /// any byte; the CPU drops those blocks before it executes again.
    pub fn ram_mut(&mut self) -> &mut [u8] {
        for (w, word) in self.code_pages.iter_mut().enumerate() {
            let mut bits = std::mem::take(word);
            while bits != 0 {
                self.smc_pages.push((w * 64) as u32 + bits.trailing_zeros());
                bits &= bits - 1;
            }
        }
        &mut self.backing[..self.ram_size as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::bus::NullBus;

    fn rom(fill: u8) -> Vec<u8> {
        vec![fill; 64 << 10]
    }

    #[test]
    fn rom_alias_and_write_protection() {
        let mut m = PhysMem::new_pc(2 << 20);
        m.map_rom(&rom(0xAB), &[0xFFFF_0000]).unwrap();
        m.alias(0xFFFF_0000, 0x1_0000, 0xF_0000).unwrap();
        let b = &mut NullBus;
        assert_eq!(m.read(0xF_1234, 1, b), 0xAB);
        assert_eq!(m.read(0xFFFF_1234, 1, b), 0xAB);
        m.write(0xF_1234, 1, 0x11, b);
        assert_eq!(m.read(0xF_1234, 1, b), 0xAB, "ROM ignores writes");
        assert_eq!(m.read(0xA_0000, 1, b), 0xFF, "VGA window is MMIO");
    }

    #[test]
    fn shadow_ram_modes() {
        let mut m = PhysMem::new_pc(2 << 20);
        m.map_rom(&rom(0xAB), &[0xFFFF_0000, 0xF_0000]).unwrap();
        let b = &mut NullBus;
        // Write-only shadow: reads still see the ROM, writes land in RAM.
        m.set_shadow(0xF_0000, 0x1_0000, false, true);
        m.write(0xF_0010, 2, 0x1234, b);
        assert_eq!(m.read(0xF_0010, 2, b), 0xABAB);
        // Read/write RAM: the copy is visible.
        m.set_shadow(0xF_0000, 0x1_0000, true, true);
        assert_eq!(m.read(0xF_0010, 2, b), 0x1234);
        m.write(0xF_0012, 1, 0x56, b);
        assert_eq!(m.read(0xF_0012, 1, b), 0x56);
        // Read-only RAM: writes dropped.
        m.set_shadow(0xF_0000, 0x1_0000, true, false);
        m.write(0xF_0012, 1, 0x99, b);
        assert_eq!(m.read(0xF_0012, 1, b), 0x56);
        // Off again: the ROM.
        m.set_shadow(0xF_0000, 0x1_0000, false, false);
        assert_eq!(m.read(0xF_0010, 2, b), 0xABAB);
        // The high alias never changed.
        assert_eq!(m.read(0xFFFF_0010, 2, b), 0xABAB);
    }

    #[test]
    fn remapping_a_code_page_invalidates_it() {
        let mut m = PhysMem::new_pc(2 << 20);
        m.map_rom(&rom(0x90), &[0xF_0000]).unwrap();
        m.mark_code(0xF_0000);
        let e = m.map_epoch();
        m.set_shadow(0xF_0000, 0x1000, true, true);
        assert_eq!(m.smc_pages, vec![0xF0]);
        assert_ne!(m.map_epoch(), e);
    }

    #[test]
    fn a20_masks_bit_20() {
        let mut m = PhysMem::new_flat(4 << 20);
        let b = &mut NullBus;
        m.write(0x10_0000, 1, 0x77, b);
        assert_eq!(m.read(0x0, 1, b), 0);
        m.set_a20(false);
        assert_eq!(m.read(0x10_0000, 1, b), 0, "wraps to 0");
        m.set_a20(true);
        assert_eq!(m.read(0x10_0000, 1, b), 0x77);
    }
}
