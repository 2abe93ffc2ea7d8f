//! System instructions: port I/O, control/debug registers, MSRs, CPUID, TSC, descriptor
//! table instructions, SYSENTER/SYSEXIT and the x87 control instructions that work
//! without the FPU proper.

use super::paging::{CR4_PAE, CR4_PGE, CR4_PSE, EFER_NXE};
use super::{Exec, Res};
use crate::cpu::cpuid::{edx1, edx_ext, MICROCODE_REVISION};
use crate::cpu::decode::{Insn, Op};
use crate::cpu::flags::*;
use crate::cpu::model::msrs;
use crate::cpu::state::*;
use crate::cpu::{vector, Fault};

pub const MSR_P5_MC_ADDR: u32 = 0x0;
pub const MSR_P5_MC_TYPE: u32 = 0x1;
pub const MSR_TSC: u32 = 0x10;
pub const MSR_PLATFORM_ID: u32 = 0x17;
pub const MSR_APIC_BASE: u32 = 0x1B;
pub const MSR_BIOS_SIGN_ID: u32 = 0x8B;
pub const MSR_MTRRCAP: u32 = 0xFE;
pub const MSR_SYSENTER_CS: u32 = 0x174;
pub const MSR_SYSENTER_ESP: u32 = 0x175;
pub const MSR_SYSENTER_EIP: u32 = 0x176;
pub const MSR_MCG_CAP: u32 = 0x179;
pub const MSR_MCG_STATUS: u32 = 0x17A;
pub const MSR_MISC_ENABLE: u32 = 0x1A0;
pub const MSR_MTRR_FIX64K_00000: u32 = 0x250;
pub const MSR_MTRR_FIX16K_80000: u32 = 0x258;
pub const MSR_MTRR_FIX16K_A0000: u32 = 0x259;
pub const MSR_MTRR_FIX4K_C0000: u32 = 0x268;
pub const MSR_PAT: u32 = 0x277;
pub const MSR_MTRR_DEF_TYPE: u32 = 0x2FF;
pub const MSR_EFER: u32 = 0xC000_0080;

/// MTRRcap: 8 variable ranges, fixed ranges (bit 8), write-combining (bit 10); no SMRR.
pub const MTRRCAP: u64 = 8 | 1 << 8 | 1 << 10;
/// Physical-address bits above this are reserved in MTRRs and APIC_BASE (36-bit
/// physical addresses, as on the P6 and Pentium 4 parts with PAE).
pub const PHYS_ADDR_BITS: u32 = 36;
const PHYS_MASK: u64 = (1 << PHYS_ADDR_BITS) - 1;
/// IA32_MISC_ENABLE bits software may change (fast strings); bits 11 and 12 are
/// read-only (writes ignored), the rest reserved.
const MISC_ENABLE_RW: u64 = 1;
const MISC_ENABLE_RO: u64 = 1 << 11 | 1 << 12;

/// The index into `Msrs::mtrr_fixed` of fixed-range MTRR `msr`.
fn mtrr_fixed_index(msr: u32) -> Option<usize> {
    match msr {
        MSR_MTRR_FIX64K_00000 => Some(0),
        MSR_MTRR_FIX16K_80000 => Some(1),
        MSR_MTRR_FIX16K_A0000 => Some(2),
        0x268..=0x26F => Some(3 + (msr - MSR_MTRR_FIX4K_C0000) as usize),
        _ => None,
    }
}

/// Memory types an MTRR may hold: UC, WC, WT, WP, WB.
fn mtrr_type_ok(t: u64) -> bool {
    matches!(t, 0 | 1 | 4 | 5 | 6)
}

/// Whether `v` is a valid IA32_PAT value: each byte one of UC, WC, WT, WP, WB, UC-.
pub fn pat_ok(v: u64) -> bool {
    v.to_le_bytes()
        .iter()
        .all(|&b| matches!(b, 0 | 1 | 4 | 5 | 6 | 7))
}

/// Whether `v` may be written to MTRR `msr` (MTRRdefType, PhysBase/PhysMask 200H-20FH,
/// or a fixed-range MTRR): reserved bits and invalid memory types are #GP.
pub fn mtrr_ok(msr: u32, v: u64) -> bool {
    let addr = PHYS_MASK & !0xFFF;
    match msr {
        MSR_MTRR_DEF_TYPE => v & !0xCFF == 0 && mtrr_type_ok(v & 0xFF),
        0x200..=0x20F if msr & 1 == 0 => v & !(addr | 0xFF) == 0 && mtrr_type_ok(v & 0xFF),
        0x200..=0x20F => v & !(addr | 0x800) == 0,
        _ => v.to_le_bytes().iter().all(|&b| mtrr_type_ok(b as u64)),
    }
}

impl Exec<'_> {
    pub(super) fn require_cpl0(&self) -> Res<()> {
        if self.cpu.state.cpl != 0 {
            return Err(Fault::gp(0));
        }
        Ok(())
    }

    fn require_protected(&self) -> Res<()> {
        let s = &self.cpu.state;
        if !s.protected_mode() || s.v86_mode() {
            return Err(Fault::ex(vector::UD));
        }
        Ok(())
    }

    /// I/O privilege: in protected mode with CPL > IOPL, and always in virtual-8086 mode,
    /// the I/O permission bitmap of the (32-bit) TSS must allow every byte port touched.
    pub(super) fn check_io(&mut self, port: u16, size: u8) -> Res<()> {
        let s = &self.cpu.state;
        if !s.protected_mode() || (!s.v86_mode() && s.cpl as u32 <= (s.flags_raw & IOPL) >> 12) {
            return Ok(());
        }
        let tr = s.tr;
        if !tr.valid || tr.attr & 0x8 == 0 || tr.limit < 0x67 {
            return Err(Fault::gp(0));
        }
        let map = self.read_lin_as(tr.base.wrapping_add(0x66), 2, false)?;
        let byte = map + port as u32 / 8;
        if byte + 1 > tr.limit {
            return Err(Fault::gp(0));
        }
        let bits = self.read_lin_as(tr.base.wrapping_add(byte), 2, false)?;
        let mask = ((1u32 << size) - 1) << (port & 7);
        if bits & mask != 0 {
            return Err(Fault::gp(0));
        }
        Ok(())
    }

    pub(super) fn in_out(&mut self, i: &Insn) -> Res<()> {
        let port = if i.ext & 1 != 0 {
            self.reg(2, 2) as u16
        } else {
            i.imm as u16
        };
        self.check_io(port, i.osize)?;
        if i.op == Op::In {
            let v = self.io_in(port, i.osize);
            self.set_reg(0, i.osize, v);
        } else {
            let v = self.reg(0, i.osize);
            self.io_out(port, i.osize, v);
        }
        Ok(())
    }

    pub(super) fn cpuid(&mut self) {
        let model = self.cpu.model();
        let g = &mut self.cpu.state.gpr;
        let leaf = g[0];
        let r = model.cpuid(leaf, g[1]);
        g[0] = r[0];
        g[3] = r[1];
        g[1] = r[2];
        g[2] = r[3];
        // P6 and later: CPUID leaf 1 loads the microcode revision into BIOS_SIGN_ID.
        if leaf == 1 && model.has_msrs(msrs::P6_ID) {
            self.cpu.state.msr.bios_sign_id = (MICROCODE_REVISION as u64) << 32;
        }
    }

    pub(super) fn tsc(&self) -> u64 {
        let s = &self.cpu.state;
        s.icount.wrapping_add(s.msr.tsc_offset)
    }

    pub(super) fn rdtsc(&mut self) -> Res<()> {
        let s = &self.cpu.state;
        if s.cr4 & (1 << 2) != 0 && s.cpl != 0 && s.protected_mode() {
            return Err(Fault::gp(0));
        }
        let t = self.tsc();
        self.cpu.state.gpr[0] = t as u32;
        self.cpu.state.gpr[2] = (t >> 32) as u32;
        Ok(())
    }

    pub(super) fn rdpmc(&mut self) -> Res<()> {
        let s = &self.cpu.state;
        if s.cr4 & (1 << 8) == 0 && s.cpl != 0 && s.protected_mode() {
            return Err(Fault::gp(0));
        }
        if s.gpr[1] > 1 {
            return Err(Fault::gp(0));
        }
        // The event-select MSRs are not implemented, so no counter is ever enabled and
        // both counters hold zero.
        self.cpu.state.gpr[0] = 0;
        self.cpu.state.gpr[2] = 0;
        Ok(())
    }

    /// Whether MSR `msr` exists on this CPU's model.
    fn msr_exists(&self, msr: u32) -> bool {
        let m = self.cpu.model();
        match msr {
            MSR_P5_MC_ADDR | MSR_P5_MC_TYPE => m.has_msrs(msrs::P5_MC),
            MSR_TSC => m.has(edx1::TSC),
            MSR_PLATFORM_ID | MSR_BIOS_SIGN_ID => m.has_msrs(msrs::P6_ID),
            MSR_APIC_BASE => m.has_msrs(msrs::APIC_BASE),
            MSR_MISC_ENABLE => m.has_msrs(msrs::MISC_ENABLE),
            MSR_SYSENTER_CS | MSR_SYSENTER_ESP | MSR_SYSENTER_EIP => m.has(edx1::SEP),
            MSR_MCG_CAP | MSR_MCG_STATUS => m.has(edx1::MCA),
            MSR_MTRRCAP | MSR_MTRR_DEF_TYPE | 0x200..=0x20F => m.has(edx1::MTRR),
            _ if mtrr_fixed_index(msr).is_some() => m.has(edx1::MTRR),
            MSR_PAT => m.has(edx1::PAT),
            MSR_EFER => m.info().edx_ext & edx_ext::NX != 0,
            _ => false,
        }
    }

    /// RDMSR: an MSR the model does not have is #GP(0).
    pub(super) fn rdmsr(&mut self) -> Res<()> {
        self.require_cpl0()?;
        let s = &self.cpu.state;
        let msr = s.gpr[1];
        if !self.msr_exists(msr) {
            return Err(Fault::gp(0));
        }
        let v: u64 = match msr {
            // No machine check is ever signalled: nothing latched, 0 banks.
            MSR_P5_MC_ADDR | MSR_P5_MC_TYPE | MSR_MCG_CAP => 0,
            // Platform ID 0 (bits 52:50).
            MSR_PLATFORM_ID => 0,
            MSR_TSC => self.tsc(),
            MSR_APIC_BASE => s.msr.apic_base,
            MSR_BIOS_SIGN_ID => s.msr.bios_sign_id,
            MSR_MTRRCAP => MTRRCAP,
            MSR_SYSENTER_CS => s.msr.sysenter_cs as u64,
            MSR_SYSENTER_ESP => s.msr.sysenter_esp as u64,
            MSR_SYSENTER_EIP => s.msr.sysenter_eip as u64,
            MSR_MCG_STATUS => s.msr.mcg_status,
            MSR_MISC_ENABLE => s.msr.misc_enable,
            0x200..=0x20F => s.msr.mtrr_var[(msr - 0x200) as usize],
            MSR_PAT => s.msr.pat,
            MSR_MTRR_DEF_TYPE => s.msr.mtrr_def_type,
            MSR_EFER => s.msr.efer,
            _ => match mtrr_fixed_index(msr) {
                Some(k) => s.msr.mtrr_fixed[k],
                None => return Err(Fault::gp(0)),
            },
        };
        self.cpu.state.gpr[0] = v as u32;
        self.cpu.state.gpr[2] = (v >> 32) as u32;
        Ok(())
    }

    /// WRMSR: an MSR the model does not have, a read-only MSR, a reserved bit or an
    /// invalid memory type is #GP(0). MTRR and PAT values are held, not acted on: there
    /// are no caches whose behaviour they could change.
    pub(super) fn wrmsr(&mut self) -> Res<()> {
        self.require_cpl0()?;
        let msr = self.cpu.state.gpr[1];
        if !self.msr_exists(msr) {
            return Err(Fault::gp(0));
        }
        let s = &mut self.cpu.state;
        let v = (s.gpr[2] as u64) << 32 | s.gpr[0] as u64;
        let gp = Err(Fault::gp(0));
        match msr {
            MSR_P5_MC_ADDR | MSR_P5_MC_TYPE | MSR_PLATFORM_ID | MSR_MTRRCAP | MSR_MCG_CAP => {
                return gp
            }
            MSR_TSC => s.msr.tsc_offset = v.wrapping_sub(s.icount),
            MSR_APIC_BASE => {
                // Bits 0-7, 9, 10 and 36-63 are reserved (36-bit physical addresses).
                if v & !(PHYS_MASK & 0xF_FFFF_F900) != 0 {
                    return gp;
                }
                s.msr.apic_base = v;
            }
            MSR_BIOS_SIGN_ID => s.msr.bios_sign_id = v,
            MSR_SYSENTER_CS => s.msr.sysenter_cs = v as u32 & 0xFFFF,
            MSR_SYSENTER_ESP => s.msr.sysenter_esp = v as u32,
            MSR_SYSENTER_EIP => s.msr.sysenter_eip = v as u32,
            MSR_MCG_STATUS => {
                if v & !7 != 0 {
                    return gp;
                }
                s.msr.mcg_status = v;
            }
            MSR_MISC_ENABLE => {
                if v & !(MISC_ENABLE_RW | MISC_ENABLE_RO) != 0 {
                    return gp;
                }
                s.msr.misc_enable = (s.msr.misc_enable & MISC_ENABLE_RO) | (v & MISC_ENABLE_RW);
            }
            MSR_PAT => {
                if !pat_ok(v) {
                    return gp;
                }
                s.msr.pat = v;
            }
            MSR_EFER => {
                // Only NXE exists in these models (no long mode, no SYSCALL).
                if v & !EFER_NXE != 0 {
                    return gp;
                }
                let changed = (s.msr.efer ^ v) & EFER_NXE != 0;
                s.msr.efer = v;
                if changed {
                    self.cpu.tlb.flush_all();
                }
            }
            _ => {
                if !mtrr_ok(msr, v) {
                    return gp;
                }
                match msr {
                    MSR_MTRR_DEF_TYPE => s.msr.mtrr_def_type = v,
                    0x200..=0x20F => s.msr.mtrr_var[(msr - 0x200) as usize] = v,
                    _ => match mtrr_fixed_index(msr) {
                        Some(k) => s.msr.mtrr_fixed[k] = v,
                        None => return gp,
                    },
                }
            }
        }
        Ok(())
    }

    pub(super) fn mov_from_cr(&mut self, i: &Insn) -> Res<()> {
        self.require_cpl0()?;
        let s = &self.cpu.state;
        let v = match i.reg {
            0 => s.cr0,
            2 => s.cr2,
            3 => s.cr3,
            4 => s.cr4,
            _ => return Err(Fault::ex(vector::UD)),
        };
        self.cpu.state.gpr[i.rm as usize] = v;
        Ok(())
    }

    pub(super) fn mov_to_cr(&mut self, i: &Insn) -> Res<()> {
        self.require_cpl0()?;
        let v = self.cpu.state.gpr[i.rm as usize];
        match i.reg {
            0 => self.write_cr0(v)?,
            2 => self.cpu.state.cr2 = v,
            3 => self.write_cr3(v)?,
            4 => self.write_cr4(v)?,
            _ => return Err(Fault::ex(vector::UD)),
        }
        Ok(())
    }

    fn pae_paging(&self) -> bool {
        let s = &self.cpu.state;
        s.cr0 & CR0_PG != 0 && s.cr4 & CR4_PAE != 0
    }

    /// Load CR3: PAE paging reloads the PDPTE registers (a reserved bit there is #GP and
    /// leaves CR3 unchanged); non-global TLB entries are flushed.
    pub(super) fn write_cr3(&mut self, v: u32) -> Res<()> {
        let old = self.cpu.state.cr3;
        self.cpu.state.cr3 = v & 0xFFFF_FFF8;
        if self.pae_paging() {
            if let Err(e) = self.load_pdptes() {
                self.cpu.state.cr3 = old;
                return Err(e);
            }
        }
        if self.cpu.state.cr4 & CR4_PGE != 0 {
            self.cpu.tlb.flush_non_global();
        } else {
            self.cpu.tlb.flush_all();
        }
        Ok(())
    }

    fn write_cr4(&mut self, v: u32) -> Res<()> {
        if v & !self.cpu.model().cr4_valid() != 0 {
            return Err(Fault::gp(0));
        }
        let old = self.cpu.state.cr4;
        self.cpu.state.cr4 = v;
        if self.pae_paging() && (old & CR4_PAE == 0) {
            if let Err(e) = self.load_pdptes() {
                self.cpu.state.cr4 = old;
                return Err(e);
            }
        }
        if (old ^ v) & (CR4_PSE | CR4_PAE | CR4_PGE) != 0 {
            self.cpu.tlb.flush_all();
        }
        Ok(())
    }

    fn write_cr0(&mut self, v: u32) -> Res<()> {
        if (v & CR0_PG != 0 && v & CR0_PE == 0) || (v & CR0_NW != 0 && v & CR0_CD == 0) {
            return Err(Fault::gp(0));
        }
        // ET is hardwired to 1 on P6; reserved bits are dropped.
        let keep =
            CR0_PE | CR0_MP | CR0_EM | CR0_TS | CR0_NE | CR0_WP | CR0_AM | CR0_NW | CR0_CD | CR0_PG;
        let old = self.cpu.state.cr0;
        self.cpu.state.cr0 = (v & keep) | CR0_ET;
        if self.pae_paging() && old & CR0_PG == 0 {
            if let Err(e) = self.load_pdptes() {
                self.cpu.state.cr0 = old;
                return Err(e);
            }
        }
        if (old ^ v) & (CR0_PG | CR0_WP | CR0_PE) != 0 {
            self.cpu.tlb.flush_all();
        }
        if self.cpu.state.cr0 & CR0_PE == 0 {
            self.cpu.state.cpl = 0;
        }
        Ok(())
    }

    pub(super) fn lmsw(&mut self, v: u32) {
        let s = &mut self.cpu.state;
        // LMSW loads PE MP EM TS and cannot clear PE.
        let pe = (s.cr0 | v) & CR0_PE;
        s.cr0 = (s.cr0 & !0xF) | (v & 0xE) | pe;
    }

    fn dr_index(&self, r: u8) -> Res<usize> {
        match r {
            4 | 5 if self.cpu.state.cr4 & (1 << 3) != 0 => Err(Fault::ex(vector::UD)),
            4 | 5 => Ok(r as usize + 2),
            _ => Ok(r as usize),
        }
    }

    pub(super) fn mov_from_dr(&mut self, i: &Insn) -> Res<()> {
        self.require_cpl0()?;
        self.general_detect()?;
        let n = self.dr_index(i.reg)?;
        self.cpu.state.gpr[i.rm as usize] = self.cpu.state.dr[n];
        Ok(())
    }

    pub(super) fn mov_to_dr(&mut self, i: &Insn) -> Res<()> {
        self.require_cpl0()?;
        self.general_detect()?;
        let n = self.dr_index(i.reg)?;
        let v = self.cpu.state.gpr[i.rm as usize];
        self.cpu.state.dr[n] = match n {
            6 => (v & 0xE00F) | 0xFFFF_0FF0,
            7 => (v & 0xFFFF_2BFF) | 0x400,
            _ => v,
        };
        Ok(())
    }

    /// SLDT STR LLDT LTR VERR VERW LAR LSL (protected mode only).
    pub(super) fn pm_descriptor_op(&mut self, i: &Insn) -> Res<()> {
        self.require_protected()?;
        match i.op {
            Op::Sldt | Op::Str => {
                let s = &self.cpu.state;
                let v = if i.op == Op::Sldt {
                    s.ldtr.selector
                } else {
                    s.tr.selector
                } as u32;
                if i.is_mem() {
                    self.write_rm(i, 2, v)
                } else {
                    self.set_reg(i.rm, i.osize, v);
                    Ok(())
                }
            }
            Op::Lldt | Op::Ltr => {
                self.require_cpl0()?;
                let sel = self.read_rm(i, 2)? as u16;
                let ldt = i.op == Op::Lldt;
                if sel & !3 == 0 {
                    if !ldt {
                        return Err(Fault::gp(0));
                    }
                    self.cpu.state.ldtr = SegmentCache {
                        selector: sel,
                        valid: false,
                        ..SegmentCache::default()
                    };
                    return Ok(());
                }
                let err = sel as u32 & 0xFFFC;
                if sel & 4 != 0 {
                    return Err(Fault::gp(err));
                }
                let (lo, hi) = self.read_descriptor(sel)?;
                let ty = (hi >> 8) & 0x1F;
                let ok = if ldt {
                    ty == 0x02
                } else {
                    ty == 0x01 || ty == 0x09
                };
                if !ok {
                    return Err(Fault::gp(err));
                }
                if hi & 0x8000 == 0 {
                    return Err(Fault::ex_err(vector::NP, err));
                }
                let mut c = Self::cache_from(sel, lo, hi);
                c.attr &= !attr::ACCESSED;
                c.attr |= ((hi >> 8) & 1) as u16;
                if ldt {
                    self.cpu.state.ldtr = c;
                } else {
                    // Mark the TSS busy in the GDT and in the cache.
                    let a = self.cpu.state.gdtr.base.wrapping_add((sel & !7) as u32 + 4);
                    self.write_lin(a, 4, hi | 0x200)?;
                    c.attr |= 0x2;
                    self.cpu.state.tr = c;
                }
                Ok(())
            }
            _ => self.descriptor_query(i),
        }
    }

    /// VERR VERW LAR LSL: ZF=1 and a result when the descriptor is visible and valid.
    fn descriptor_query(&mut self, i: &Insn) -> Res<()> {
        let sel = self.read_rm(i, 2)? as u16;
        let cpl = self.cpu.state.cpl;
        let desc = if sel & !3 == 0 {
            None
        } else {
            match self.read_descriptor(sel) {
                Ok(d) => Some(d),
                Err(Fault::Exception {
                    vector: vector::GP, ..
                }) => None,
                Err(e) => return Err(e),
            }
        };
        let Some((lo, hi)) = desc else {
            self.set_arith(ZF, 0);
            return Ok(());
        };
        let ty = (hi >> 8) & 0x1F;
        let dpl = ((hi >> 13) & 3) as u8;
        let rpl = (sel & 3) as u8;
        let s_bit = ty & 0x10 != 0;
        let code = s_bit && ty & 0x8 != 0;
        let conforming = code && ty & 0x4 != 0;
        let priv_ok = conforming || (cpl.max(rpl) <= dpl);
        let ok = match i.op {
            Op::Verr => s_bit && priv_ok && (!code || ty & 2 != 0),
            Op::Verw => s_bit && !code && priv_ok && ty & 2 != 0,
            Op::Lar => priv_ok && (s_bit || matches!(ty & 0xF, 1 | 2 | 3 | 4 | 5 | 9 | 0xB | 0xC)),
            _ => priv_ok && (s_bit || matches!(ty & 0xF, 1 | 2 | 3 | 9 | 0xB)),
        };
        if ok {
            match i.op {
                Op::Lar => {
                    let v = hi & 0x00F0_FF00;
                    self.set_reg(i.reg, i.osize, v);
                }
                Op::Lsl => {
                    let v = Self::cache_from(sel, lo, hi).limit;
                    self.set_reg(i.reg, i.osize, v);
                }
                _ => {}
            }
        }
        self.set_arith(ZF, if ok { ZF } else { 0 });
        Ok(())
    }

    pub(super) fn arpl(&mut self, i: &Insn) -> Res<()> {
        self.require_protected()?;
        // The destination is written only when its RPL is raised (a read-only segment
        // faults only then, as on the 386).
        let d = self.read_rm(i, 2)?;
        let s = self.reg(i.reg, 2);
        if d & 3 < s & 3 {
            self.write_rm(i, 2, (d & !3) | (s & 3))?;
            self.set_arith(ZF, ZF);
        } else {
            self.set_arith(ZF, 0);
        }
        Ok(())
    }

    fn flat_segment(sel: u16, code: bool, dpl: u16) -> SegmentCache {
        let ty = if code {
            attr::CODE | attr::RW | attr::ACCESSED
        } else {
            attr::RW | attr::ACCESSED
        };
        SegmentCache {
            selector: sel,
            attr: ty | attr::S | attr::PRESENT | attr::DB | attr::G | (dpl << attr::DPL_SHIFT),
            base: 0,
            limit: 0xFFFF_FFFF,
            valid: true,
            _pad: [0; 3],
        }
    }

    pub(super) fn sysenter(&mut self) -> Res<()> {
        let s = &mut self.cpu.state;
        let cs = s.msr.sysenter_cs as u16;
        if !s.protected_mode() || cs & 0xFFFC == 0 {
            return Err(Fault::gp(0));
        }
        let f = s.eflags() & !(VM | IF | RF);
        s.set_eflags(f);
        s.cpl = 0;
        s.seg[SegReg::Cs as usize] = Self::flat_segment(cs & 0xFFFC, true, 0);
        s.seg[SegReg::Ss as usize] = Self::flat_segment((cs & 0xFFFC) + 8, false, 0);
        s.gpr[4] = s.msr.sysenter_esp;
        s.eip = s.msr.sysenter_eip;
        Ok(())
    }

    pub(super) fn sysexit(&mut self) -> Res<()> {
        let s = &mut self.cpu.state;
        let cs = s.msr.sysenter_cs as u16;
        if !s.protected_mode() || s.v86_mode() || s.cpl != 0 || cs & 0xFFFC == 0 {
            return Err(Fault::gp(0));
        }
        s.cpl = 3;
        s.seg[SegReg::Cs as usize] = Self::flat_segment((cs + 16) | 3, true, 3);
        s.seg[SegReg::Ss as usize] = Self::flat_segment((cs + 24) | 3, false, 3);
        s.gpr[4] = s.gpr[1];
        s.eip = s.gpr[2];
        Ok(())
    }
}
