//! Control transfers, interrupts and exceptions, segment register loads, EFLAGS.
//!
//! Real mode is complete. Protected mode covers same-privilege transfers through code
//! segments and interrupt/trap gates; call gates, task switches, inter-privilege
//! transfers and virtual-8086 mode report [`Fault::Unsupported`] until the protected-mode
//! work lands (they never silently do the wrong thing).

use super::{Exec, Res};
use crate::cpu::decode::Insn;
use crate::cpu::flags::*;
use crate::cpu::state::{attr, SegReg, SegmentCache};
use crate::cpu::{vector, Fault};

/// What raised an interrupt (decides privilege checks and error codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntKind {
    /// INT n, INT3, INTO: gate DPL is checked against CPL.
    Soft,
    /// INTR from the interrupt controller.
    External,
    /// A processor exception, with its error code if it has one.
    Exception(Option<u32>),
}

const CS: u8 = SegReg::Cs as u8;
const SS: u8 = SegReg::Ss as u8;

impl Exec<'_> {
    #[inline]
    pub(super) fn check_cs_limit(&self, t: u32) -> Res<()> {
        if t > self.cpu.state.seg[CS as usize].limit {
            return Err(Fault::gp(0));
        }
        Ok(())
    }

    #[inline]
    pub(super) fn jump_near(&mut self, t: u32) -> Res<()> {
        self.check_cs_limit(t)?;
        self.cpu.state.eip = t;
        Ok(())
    }

    #[inline]
    pub(super) fn jump_rel(&mut self, i: &Insn) -> Res<()> {
        let t = self.cpu.state.eip.wrapping_add(i.imm);
        let t = if i.osize == 2 { t & 0xFFFF } else { t };
        self.jump_near(t)
    }

    pub(super) fn loop_op(&mut self, i: &Insn) -> Res<()> {
        let asz = if i.asize32() { 4 } else { 2 };
        let mut count = self.reg(1, asz);
        if i.ext != 3 {
            count = count.wrapping_sub(1) & size_mask(asz);
        }
        let take = match i.ext {
            0 => count != 0 && !self.cond(4),
            1 => count != 0 && self.cond(4),
            2 => count != 0,
            _ => count == 0,
        };
        if take {
            let t = self.cpu.state.eip.wrapping_add(i.imm);
            let t = if i.osize == 2 { t & 0xFFFF } else { t };
            self.check_cs_limit(t)?;
            self.cpu.state.eip = t;
        }
        self.set_reg(1, asz, count);
        Ok(())
    }

    fn real_like(&self) -> bool {
        !self.cpu.state.protected_mode()
    }

    // ----- descriptors ------------------------------------------------------------------

    /// Read the 8-byte descriptor for `sel` from the GDT or LDT.
    pub(super) fn read_descriptor(&mut self, sel: u16) -> Res<(u32, u32)> {
        let s = &self.cpu.state;
        let (base, limit) = if sel & 4 != 0 {
            if !s.ldtr.valid || s.ldtr.selector & !3 == 0 {
                return Err(Fault::gp(sel as u32 & 0xFFFC));
            }
            (s.ldtr.base, s.ldtr.limit)
        } else {
            (s.gdtr.base, s.gdtr.limit)
        };
        let idx = (sel & !7) as u32;
        if idx + 7 > limit {
            return Err(Fault::gp(sel as u32 & 0xFFFC));
        }
        let a = base.wrapping_add(idx);
        let lo = self.read_lin(a, 4)?;
        let hi = self.read_lin(a.wrapping_add(4), 4)?;
        Ok((lo, hi))
    }

    /// Set the accessed bit of a code/data descriptor in memory.
    fn mark_accessed(&mut self, sel: u16, hi: u32) -> Res<()> {
        if hi & 0x100 != 0 {
            return Ok(());
        }
        let s = &self.cpu.state;
        let base = if sel & 4 != 0 {
            s.ldtr.base
        } else {
            s.gdtr.base
        };
        let a = base.wrapping_add((sel & !7) as u32 + 4);
        self.write_lin(a, 4, hi | 0x100)
    }

    pub(super) fn cache_from(sel: u16, lo: u32, hi: u32) -> SegmentCache {
        let base = (lo >> 16) | ((hi & 0xFF) << 16) | (hi & 0xFF00_0000);
        let mut limit = (lo & 0xFFFF) | (hi & 0xF_0000);
        if hi & (1 << 23) != 0 {
            limit = (limit << 12) | 0xFFF;
        }
        SegmentCache {
            selector: sel,
            attr: ((hi >> 8) & 0xF0FF) as u16 | attr::ACCESSED,
            base,
            limit,
            valid: true,
            _pad: [0; 3],
        }
    }

    /// MOV/POP/LxS to a data segment register or SS, with the protected-mode checks.
    pub(super) fn load_seg(&mut self, seg: u8, sel: u16) -> Res<()> {
        let s = &mut self.cpu.state;
        if s.v86_mode() {
            s.seg[seg as usize] = SegmentCache::real(sel, attr::REAL_DATA | (3 << attr::DPL_SHIFT));
            return Ok(());
        }
        if !s.protected_mode() {
            // Real mode changes only selector and base: cached limits and attributes
            // survive (unreal mode).
            let sc = &mut s.seg[seg as usize];
            sc.selector = sel;
            sc.base = (sel as u32) << 4;
            sc.valid = true;
            return Ok(());
        }
        let cpl = s.cpl;
        let err = sel as u32 & 0xFFFC;
        if sel & !3 == 0 {
            if seg == SS {
                return Err(Fault::gp(0));
            }
            s.seg[seg as usize] = SegmentCache {
                selector: sel,
                valid: false,
                ..SegmentCache::default()
            };
            return Ok(());
        }
        let (lo, hi) = self.read_descriptor(sel)?;
        let c = Self::cache_from(sel, lo, hi);
        let a = c.attr;
        let rpl = (sel & 3) as u8;
        let dpl = c.dpl();
        if a & attr::S == 0 {
            return Err(Fault::gp(err));
        }
        if seg == SS {
            if rpl != cpl || dpl != cpl || a & attr::CODE != 0 || a & attr::RW == 0 {
                return Err(Fault::gp(err));
            }
            if a & attr::PRESENT == 0 {
                return Err(Fault::ex_err(vector::SS, err));
            }
        } else {
            let code = a & attr::CODE != 0;
            if code && a & attr::RW == 0 {
                return Err(Fault::gp(err));
            }
            let conforming_code = code && a & attr::DC != 0;
            if !conforming_code && (rpl.max(cpl) > dpl) {
                return Err(Fault::gp(err));
            }
            if a & attr::PRESENT == 0 {
                return Err(Fault::ex_err(vector::NP, err));
            }
        }
        self.mark_accessed(sel, hi)?;
        self.cpu.state.seg[seg as usize] = c;
        Ok(())
    }

    /// Load CS for a same-privilege far transfer to `sel:off` and set EIP.
    fn load_cs_far(&mut self, sel: u16, off: u32, sz: u8) -> Res<()> {
        let s = &mut self.cpu.state;
        if !s.protected_mode() || s.v86_mode() {
            let off = if sz == 2 { off & 0xFFFF } else { off };
            if off > s.seg[CS as usize].limit {
                return Err(Fault::gp(0));
            }
            let cs = &mut s.seg[CS as usize];
            cs.selector = sel;
            cs.base = (sel as u32) << 4;
            s.eip = off;
            return Ok(());
        }
        let cpl = s.cpl;
        let err = sel as u32 & 0xFFFC;
        if sel & !3 == 0 {
            return Err(Fault::gp(0));
        }
        let (lo, hi) = self.read_descriptor(sel)?;
        let mut c = Self::cache_from(sel, lo, hi);
        let a = c.attr;
        if a & attr::S == 0 {
            return Err(Fault::Unsupported(
                "far transfer through a gate or TSS in protected mode",
            ));
        }
        if a & attr::CODE == 0 {
            return Err(Fault::gp(err));
        }
        let dpl = c.dpl();
        let rpl = (sel & 3) as u8;
        if a & attr::DC != 0 {
            if dpl > cpl {
                return Err(Fault::gp(err));
            }
        } else if rpl > cpl || dpl != cpl {
            return Err(Fault::gp(err));
        }
        if a & attr::PRESENT == 0 {
            return Err(Fault::ex_err(vector::NP, err));
        }
        let off = if sz == 2 { off & 0xFFFF } else { off };
        if off > c.limit {
            return Err(Fault::gp(0));
        }
        self.mark_accessed(sel, hi)?;
        c.selector = (sel & !3) | cpl as u16;
        let s = &mut self.cpu.state;
        s.seg[CS as usize] = c;
        s.eip = off;
        Ok(())
    }

    pub(super) fn jmp_far(&mut self, sel: u16, off: u32, sz: u8) -> Res<()> {
        self.load_cs_far(sel, off, sz)
    }

    pub(super) fn call_far(&mut self, sel: u16, off: u32, sz: u8) -> Res<()> {
        let old_cs = self.cpu.state.seg[CS as usize];
        let ret = self.cpu.state.eip;
        // Check the stack space for both pushes before changing CS.
        let top = self.sp_plus((2 * sz as u32).wrapping_neg());
        self.probe_write(SS, top, 2 * sz)?;
        self.load_cs_far(sel, off, sz)?;
        let r = self
            .push(old_cs.selector as u32, sz)
            .and_then(|_| self.push(ret, sz));
        if r.is_err() {
            self.cpu.state.seg[CS as usize] = old_cs;
        }
        r
    }

    pub(super) fn ret_far(&mut self, sz: u8, extra: u32) -> Res<()> {
        let off = self.peek(0, sz)?;
        let sel = self.peek(sz as u32, sz)? as u16;
        let s = &self.cpu.state;
        if s.protected_mode() && !s.v86_mode() && (sel & 3) as u8 > s.cpl {
            return Err(Fault::Unsupported("far return to an outer privilege level"));
        }
        self.load_cs_far(sel, off, sz)?;
        self.set_sp(self.sp_plus(2 * sz as u32 + extra));
        Ok(())
    }

    // ----- interrupts -----------------------------------------------------------------------

    pub(super) fn soft_int(&mut self, v: u8) -> Res<()> {
        let next = self.cpu.state.eip;
        self.interrupt(v, IntKind::Soft, next)
    }

    /// Deliver interrupt `v`; `ret` is the EIP to return to.
    pub(super) fn interrupt(&mut self, v: u8, kind: IntKind, ret: u32) -> Res<()> {
        let s = &self.cpu.state;
        if !s.protected_mode() {
            return self.interrupt_real(v, ret);
        }
        if s.v86_mode() {
            return Err(Fault::Unsupported("interrupt in virtual-8086 mode"));
        }
        self.interrupt_protected(v, kind, ret)
    }

    fn interrupt_real(&mut self, v: u8, ret: u32) -> Res<()> {
        let s = &self.cpu.state;
        let off = v as u32 * 4;
        if off + 3 > s.idtr.limit {
            return Err(Fault::gp(v as u32 * 8 + 2));
        }
        let entry = self.read_lin(s.idtr.base.wrapping_add(off), 4)?;
        let flags = self.flags();
        let cs = self.cpu.state.seg[CS as usize].selector as u32;
        self.push(flags, 2)?;
        self.push(cs, 2)?;
        self.push(ret, 2)?;
        let s = &mut self.cpu.state;
        s.flags_raw &= !(IF | TF | AC | RF);
        let csc = &mut s.seg[CS as usize];
        csc.selector = (entry >> 16) as u16;
        csc.base = entry >> 16 << 4;
        s.eip = entry & 0xFFFF;
        Ok(())
    }

    fn interrupt_protected(&mut self, v: u8, kind: IntKind, ret: u32) -> Res<()> {
        let s = &self.cpu.state;
        let ext = matches!(kind, IntKind::External) as u32;
        let gerr = v as u32 * 8 + 2 + ext;
        if v as u32 * 8 + 7 > s.idtr.limit {
            return Err(Fault::gp(gerr));
        }
        let a = s.idtr.base.wrapping_add(v as u32 * 8);
        let lo = self.read_lin(a, 4)?;
        let hi = self.read_lin(a.wrapping_add(4), 4)?;
        let gtype = (hi >> 8) & 0x1F;
        let gdpl = ((hi >> 13) & 3) as u8;
        let cpl = self.cpu.state.cpl;
        let (is32, trap) = match gtype {
            0x06 => (false, false),
            0x07 => (false, true),
            0x0E => (true, false),
            0x0F => (true, true),
            0x05 => return Err(Fault::Unsupported("task gate in the IDT")),
            _ => return Err(Fault::gp(gerr)),
        };
        if kind == IntKind::Soft && gdpl < cpl {
            return Err(Fault::gp(gerr));
        }
        if hi & 0x8000 == 0 {
            return Err(Fault::ex_err(vector::NP, gerr));
        }
        let sel = (lo >> 16) as u16;
        let off = (hi & 0xFFFF_0000) | (lo & 0xFFFF);
        let off = if is32 { off } else { off & 0xFFFF };
        if sel & !3 == 0 {
            return Err(Fault::gp(ext));
        }
        let (dlo, dhi) = self.read_descriptor(sel)?;
        let mut c = Self::cache_from(sel, dlo, dhi);
        let serr = (sel as u32 & 0xFFFC) | ext;
        if c.attr & attr::S == 0 || c.attr & attr::CODE == 0 || c.dpl() > cpl {
            return Err(Fault::gp(serr));
        }
        if c.attr & attr::PRESENT == 0 {
            return Err(Fault::ex_err(vector::NP, serr));
        }
        if c.attr & attr::DC == 0 && c.dpl() < cpl {
            return Err(Fault::Unsupported(
                "interrupt to an inner privilege level (TSS stack switch)",
            ));
        }
        if off > c.limit {
            return Err(Fault::gp(ext));
        }
        let sz = if is32 { 4 } else { 2 };
        let flags = self.flags();
        let old_cs = self.cpu.state.seg[CS as usize].selector as u32;
        let err = match kind {
            IntKind::Exception(e) => e,
            _ => None,
        };
        let n = if err.is_some() { 4 } else { 3 };
        let bottom = self.sp_plus((n * sz as u32).wrapping_neg());
        self.probe_write(SS, bottom, sz)?;
        self.push(flags, sz)?;
        self.push(old_cs, sz)?;
        self.push(ret, sz)?;
        if let Some(e) = err {
            self.push(e, sz)?;
        }
        self.mark_accessed(sel, dhi)?;
        c.selector = (sel & !3) | cpl as u16;
        let s = &mut self.cpu.state;
        s.seg[CS as usize] = c;
        s.eip = off;
        s.flags_raw &= !(TF | NT | RF | VM);
        if !trap {
            s.flags_raw &= !IF;
        }
        Ok(())
    }

    pub(super) fn iret(&mut self, sz: u8) -> Res<()> {
        let s = &self.cpu.state;
        if s.protected_mode() {
            if s.v86_mode() {
                return Err(Fault::Unsupported("IRET in virtual-8086 mode"));
            }
            if s.flags_raw & NT != 0 {
                return Err(Fault::Unsupported("IRET task return (NT set)"));
            }
        }
        let off = self.peek(0, sz)?;
        let sel = self.peek(sz as u32, sz)? as u16;
        let fl = self.peek(2 * sz as u32, sz)?;
        let s = &self.cpu.state;
        if s.protected_mode() {
            if sz == 4 && fl & VM != 0 && s.cpl == 0 {
                return Err(Fault::Unsupported("IRET to virtual-8086 mode"));
            }
            if (sel & 3) as u8 > s.cpl {
                return Err(Fault::Unsupported("IRET to an outer privilege level"));
            }
        }
        self.load_cs_far(sel, off, sz)?;
        self.set_sp(self.sp_plus(3 * sz as u32));
        self.write_flags(fl, sz, true);
        Ok(())
    }

    /// Load EFLAGS from POPF/IRET with the privilege rules: IOPL only at CPL 0, IF only
    /// when CPL <= IOPL; VM, VIP, VIF never from POPF; RF cleared by POPF.
    pub(super) fn write_flags(&mut self, v: u32, sz: u8, iret: bool) {
        let s = &mut self.cpu.state;
        let cur = s.eflags();
        let mut mask = WRITABLE & !(VM | VIP | VIF);
        if !iret {
            mask &= !RF;
        }
        if s.protected_mode() {
            if s.cpl > 0 {
                mask &= !IOPL;
            }
            if s.cpl as u32 > (cur & IOPL) >> 12 {
                mask &= !IF;
            }
        }
        if sz == 2 {
            mask &= 0xFFFF;
        }
        let mut nv = (cur & !mask) | (v & mask);
        if !iret {
            nv &= !RF;
        }
        s.set_eflags(nv);
    }

    pub(super) fn pushf(&mut self, sz: u8) -> Res<()> {
        if self.cpu.state.v86_mode() {
            return Err(Fault::Unsupported("PUSHF in virtual-8086 mode"));
        }
        let f = self.flags() & !(VM | RF);
        self.push(f, sz)
    }

    pub(super) fn popf(&mut self, sz: u8) -> Res<()> {
        if self.cpu.state.v86_mode() {
            return Err(Fault::Unsupported("POPF in virtual-8086 mode"));
        }
        let v = self.pop(sz)?;
        self.write_flags(v, sz, false);
        Ok(())
    }

    fn iopl_ok(&self) -> bool {
        let s = &self.cpu.state;
        self.real_like() || s.cpl as u32 <= (s.flags_raw & IOPL) >> 12
    }

    pub(super) fn cli(&mut self) -> Res<()> {
        if !self.iopl_ok() {
            return Err(Fault::gp(0));
        }
        self.cpu.state.flags_raw &= !IF;
        Ok(())
    }

    pub(super) fn sti(&mut self) -> Res<()> {
        if !self.iopl_ok() {
            return Err(Fault::gp(0));
        }
        let s = &mut self.cpu.state;
        if s.flags_raw & IF == 0 {
            s.shadow = true;
        }
        s.flags_raw |= IF;
        Ok(())
    }

    pub(super) fn enter(&mut self, sz: u8, alloc: u32, level: u32) -> Res<()> {
        let st32 = self.stack32();
        let bp_size = if st32 { 4 } else { 2 };
        let bp = self.reg(5, sz);
        self.push(bp, sz)?;
        let frame = self.sp();
        if level > 0 {
            let mut ebp = self.reg(5, bp_size);
            for _ in 1..level {
                ebp = ebp.wrapping_sub(sz as u32) & size_mask(bp_size);
                let v = self.read_mem(SS, ebp, sz)?;
                self.push(v, sz)?;
            }
            self.push(frame, sz)?;
        }
        let nsp = self.sp_plus(alloc.wrapping_neg());
        // The new stack top must be writable (the frame is allocated, not touched).
        if alloc != 0 {
            self.probe_write(SS, nsp, 1)?;
        }
        self.set_reg(5, sz, frame);
        self.set_sp(nsp);
        Ok(())
    }
}
