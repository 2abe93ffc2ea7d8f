//! Linear → physical translation: the TLB fast path and the page walker.
//!
//! The walker implements 32-bit paging (4 KiB pages, 4 MiB pages with CR4.PSE, global
//! pages with CR4.PGE) and PAE paging (PDPTE registers loaded with CR3, 2 MiB pages, NX
//! with EFER.NXE), the U/S and R/W rules including CR0.WP, reserved-bit checks, and the
//! accessed/dirty bits exactly as hardware sets them: only on a walk that succeeds, A on
//! every level used, D on the final entry of a write.

use super::{Access, Exec, Res};
use crate::cpu::state::{CR0_PG, CR0_WP};
use crate::cpu::{vector, Fault};
use crate::devices::bus::all_ones;
use crate::mmu::tlb::*;

pub const CR4_PSE: u32 = 1 << 4;
pub const CR4_PAE: u32 = 1 << 5;
pub const CR4_PGE: u32 = 1 << 7;
pub const EFER_NXE: u64 = 1 << 11;

/// #PF error code bits.
pub mod pf {
    pub const P: u32 = 1 << 0;
    pub const W: u32 = 1 << 1;
    pub const U: u32 = 1 << 2;
    pub const RSVD: u32 = 1 << 3;
    pub const I: u32 = 1 << 4;
}

/// Physical address bits implemented (36: PAE without CPUID leaf 0x80000008).
const MAXPHY_MASK: u64 = (1 << 36) - 1;

struct Walk {
    phys: u64,
    /// Effective R/W and U/S over all levels, and "no execute".
    rw: bool,
    us: bool,
    nx: bool,
    global: bool,
    page_shift: u8,
}

impl Exec<'_> {
    /// Translate for an access, filling the TLB on a miss.
    #[inline]
    pub(super) fn tlb_entry(&mut self, lin: u32, acc: Access, user: bool) -> Res<TlbEntry> {
        let need = rights_needed(acc, user);
        if let Some(e) = self.cpu.tlb.lookup(lin, need) {
            return Ok(*e);
        }
        self.tlb_fill(lin, acc, user)
    }

    fn tlb_fill(&mut self, lin: u32, acc: Access, user: bool) -> Res<TlbEntry> {
        let s = &self.cpu.state;
        let (phys, mut flags, page_shift) = if s.cr0 & CR0_PG == 0 {
            let all = R_SUP | W_SUP | X_SUP | R_USER | W_USER | X_USER;
            (self.mem.a20_mask(lin & !0xFFF) as u64, all, 12)
        } else {
            let w = self.walk(lin, acc, user)?;
            // Write rights only when D is (now) set: `walk` set it for a write access.
            let dirty_ok = acc == Access::Write;
            let mut f = R_SUP | if w.us { R_USER } else { 0 };
            if !w.nx {
                f |= X_SUP | if w.us { X_USER } else { 0 };
            }
            if dirty_ok {
                let wp = self.cpu.state.cr0 & CR0_WP != 0;
                if w.rw || !wp {
                    f |= W_SUP;
                }
                if w.rw && w.us {
                    f |= W_USER;
                }
            }
            if w.global {
                f |= GLOBAL;
            }
            (w.phys & !0xFFF, f, w.page_shift)
        };
        let mut host = 0;
        if phys > 0xFFFF_F000 {
            flags |= NO_MEM;
        } else {
            let p = self.mem.a20_mask(phys as u32);
            if let Some((h, writable, code)) = self.mem.host_page(p) {
                host = h;
                flags |= HOST_R;
                if writable && !code {
                    flags |= HOST_W;
                }
            }
        }
        let e = TlbEntry {
            tag: 0,
            phys: phys as u32,
            host,
            flags,
            page_shift,
        };
        self.cpu.tlb.insert(lin, e);
        Ok(e)
    }

    /// Read a 32- or 64-bit paging-structure entry.
    fn pte_read(&mut self, addr: u64, pae: bool) -> u64 {
        if addr > 0xFFFF_FFFF {
            return u64::MAX;
        }
        let lo = self.phys_read(addr as u32, 4) as u64;
        if pae {
            lo | (self.phys_read(addr as u32 + 4, 4) as u64) << 32
        } else {
            lo
        }
    }

    fn pte_set(&mut self, addr: u64, old: u64, bits: u64) {
        if old & bits != bits && addr <= 0xFFFF_FFFF {
            self.phys_write(addr as u32, 4, (old | bits) as u32);
        }
    }

    fn page_fault(&mut self, lin: u32, acc: Access, user: bool, extra: u32) -> Fault {
        let s = &mut self.cpu.state;
        s.cr2 = lin;
        let mut e = extra;
        if acc == Access::Write {
            e |= pf::W;
        }
        if user {
            e |= pf::U;
        }
        if acc == Access::Exec && s.cr4 & CR4_PAE != 0 && s.msr.efer & EFER_NXE != 0 {
            e |= pf::I;
        }
        Fault::ex_err(vector::PF, e)
    }

    fn walk(&mut self, lin: u32, acc: Access, user: bool) -> Res<Walk> {
        let s = &self.cpu.state;
        let pae = s.cr4 & CR4_PAE != 0;
        let nxe = pae && s.msr.efer & EFER_NXE != 0;
        let pse = s.cr4 & CR4_PSE != 0;
        let pge = s.cr4 & CR4_PGE != 0;
        let wp = s.cr0 & CR0_WP != 0;
        let write = acc == Access::Write;

        // Collect the entries first; set A/D only if the whole walk succeeds.
        let mut levels: [(u64, u64); 2] = [(0, 0); 2];
        let mut n = 0;
        let (mut rw, mut us, mut nx) = (true, true, false);
        let rsvd_pae = !MAXPHY_MASK & !(1 << 63) | if nxe { 0 } else { 1 << 63 };

        let (leaf, leaf_addr, page_shift) = if pae {
            let pdpte = s.pdpte[(lin >> 30) as usize];
            if pdpte & 1 == 0 {
                return Err(self.page_fault(lin, acc, user, 0));
            }
            let pde_addr = (pdpte & MAXPHY_MASK & !0xFFF) + ((lin as u64 >> 21) & 0x1FF) * 8;
            let pde = self.pte_read(pde_addr, true);
            if pde & 1 == 0 {
                return Err(self.page_fault(lin, acc, user, 0));
            }
            let large = pde & 0x80 != 0;
            if pde & rsvd_pae != 0 || (large && pde & 0x1F_E000 != 0) {
                return Err(self.page_fault(lin, acc, user, pf::P | pf::RSVD));
            }
            rw &= pde & 2 != 0;
            us &= pde & 4 != 0;
            nx |= nxe && pde >> 63 != 0;
            if large {
                (pde, pde_addr, 21)
            } else {
                levels[n] = (pde_addr, pde);
                n += 1;
                let pte_addr = (pde & MAXPHY_MASK & !0xFFF) + ((lin as u64 >> 12) & 0x1FF) * 8;
                let pte = self.pte_read(pte_addr, true);
                if pte & 1 == 0 {
                    return Err(self.page_fault(lin, acc, user, 0));
                }
                if pte & rsvd_pae != 0 {
                    return Err(self.page_fault(lin, acc, user, pf::P | pf::RSVD));
                }
                (pte, pte_addr, 12)
            }
        } else {
            let pde_addr = (s.cr3 & 0xFFFF_F000) as u64 + ((lin >> 22) as u64) * 4;
            let pde = self.pte_read(pde_addr, false);
            if pde & 1 == 0 {
                return Err(self.page_fault(lin, acc, user, 0));
            }
            let large = pse && pde & 0x80 != 0;
            if large && pde & 0x3F_E000 != 0 {
                // Bits 21:13 of a 4 MiB PDE are reserved (no PSE-36 in this model).
                return Err(self.page_fault(lin, acc, user, pf::P | pf::RSVD));
            }
            rw &= pde & 2 != 0;
            us &= pde & 4 != 0;
            if large {
                (pde, pde_addr, 22)
            } else {
                levels[n] = (pde_addr, pde);
                n += 1;
                let pte_addr = (pde & 0xFFFF_F000) + ((lin as u64 >> 12) & 0x3FF) * 4;
                let pte = self.pte_read(pte_addr, false);
                if pte & 1 == 0 {
                    return Err(self.page_fault(lin, acc, user, 0));
                }
                (pte, pte_addr, 12)
            }
        };
        rw &= leaf & 2 != 0;
        us &= leaf & 4 != 0;
        nx |= nxe && leaf >> 63 != 0;

        let denied = (user && !us) || (write && !rw && (user || wp)) || (acc == Access::Exec && nx);
        if denied {
            return Err(self.page_fault(lin, acc, user, pf::P));
        }
        for &(addr, val) in &levels[..n] {
            self.pte_set(addr, val, 0x20);
        }
        self.pte_set(leaf_addr, leaf, if write { 0x60 } else { 0x20 });
        let size_mask = (1u64 << page_shift) - 1;
        let frame = if pae {
            leaf & MAXPHY_MASK & !size_mask
        } else if page_shift == 22 {
            leaf & 0xFFC0_0000
        } else {
            leaf & 0xFFFF_F000
        };
        Ok(Walk {
            phys: frame | (lin as u64 & size_mask & !0xFFF),
            rw,
            us,
            nx,
            global: pge && leaf & 0x100 != 0,
            page_shift,
        })
    }

    /// Load the four PAE page-directory-pointer entries from CR3 (#GP on reserved bits).
    pub(super) fn load_pdptes(&mut self) -> Res<()> {
        let base = self.cpu.state.cr3 & 0xFFFF_FFE0;
        let mut v = [0u64; 4];
        for (i, e) in v.iter_mut().enumerate() {
            *e = self.pte_read(base as u64 + i as u64 * 8, true);
            if *e & 1 != 0 && *e & (!MAXPHY_MASK | 0x1E6) != 0 {
                return Err(Fault::gp(0));
            }
        }
        self.cpu.state.pdpte = v;
        Ok(())
    }

    /// Linear read of `size` bytes with explicit privilege (implicit supervisor accesses
    /// to descriptor tables and the TSS pass `user = false`).
    #[inline]
    pub fn read_lin_as(&mut self, lin: u32, size: u8, user: bool) -> Res<u32> {
        if (lin & 0xFFF) + size as u32 > 0x1000 {
            let mut v = 0;
            for i in 0..size as u32 {
                v |= self.read_lin_as(lin.wrapping_add(i), 1, user)? << (8 * i);
            }
            return Ok(v);
        }
        let e = self.tlb_entry(lin, Access::Read, user)?;
        if self.dbg_active {
            self.data_breakpoints(lin, size, false);
        }
        let off = lin & 0xFFF;
        if e.flags & HOST_R != 0 {
            return Ok(self.mem.host_read((e.host + off) as usize, size));
        }
        if e.flags & NO_MEM != 0 {
            return Ok(all_ones(size));
        }
        Ok(self.phys_read(e.phys | off, size))
    }

    /// Linear write; every page is checked before any byte is written.
    #[inline]
    pub fn write_lin_as(&mut self, lin: u32, size: u8, val: u32, user: bool) -> Res<()> {
        if (lin & 0xFFF) + size as u32 > 0x1000 {
            let second = lin.wrapping_add(size as u32 - 1);
            self.tlb_entry(lin, Access::Write, user)?;
            self.tlb_entry(second, Access::Write, user)?;
            for i in 0..size as u32 {
                self.write_lin_as(lin.wrapping_add(i), 1, val >> (8 * i), user)?;
            }
            return Ok(());
        }
        let e = self.tlb_entry(lin, Access::Write, user)?;
        if self.dbg_active {
            self.data_breakpoints(lin, size, true);
        }
        let off = lin & 0xFFF;
        if e.flags & HOST_W != 0 {
            self.mem.host_write((e.host + off) as usize, size, val);
        } else if e.flags & NO_MEM == 0 {
            self.phys_write(e.phys | off, size, val);
        }
        Ok(())
    }

    /// Physical address of an instruction-fetch access.
    #[inline]
    pub(super) fn translate_fetch(&mut self, lin: u32) -> Res<u32> {
        let user = self.cpu.state.cpl == 3;
        let e = self.tlb_entry(lin, Access::Exec, user)?;
        Ok(e.phys | (lin & 0xFFF))
    }
}

#[inline]
fn rights_needed(acc: Access, user: bool) -> u16 {
    match (acc, user) {
        (Access::Read, false) => R_SUP,
        (Access::Write, false) => W_SUP,
        (Access::Exec, false) => X_SUP,
        (Access::Read, true) => R_USER,
        (Access::Write, true) => W_USER,
        (Access::Exec, true) => X_USER,
    }
}
