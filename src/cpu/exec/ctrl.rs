//! Near control transfers, the interrupt entry point and real-mode delivery, EFLAGS
//! writes (POPF/IRET/CLI/STI and their IOPL rules), ENTER.
//!
//! Far transfers and segment loads are in `segments.rs`, protected-mode delivery and
//! IRET in `intr.rs`, task switches in `task.rs`.

use super::segments::FarKind;
use super::{Exec, Res};
use crate::cpu::decode::Insn;
use crate::cpu::flags::*;
use crate::cpu::state::SegReg;
use crate::cpu::Fault;

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

    // ----- interrupts -----------------------------------------------------------------------

    /// INT n / INT3 / INTO. In virtual-8086 mode INT n (not INT3/INTO) needs IOPL 3.
    pub(super) fn soft_int(&mut self, v: u8, int_n: bool) -> Res<()> {
        let s = &self.cpu.state;
        if int_n && s.v86_mode() && (s.flags_raw & IOPL) >> 12 < 3 {
            return Err(Fault::gp(0));
        }
        let next = s.eip;
        self.interrupt(v, IntKind::Soft, next)
    }

    pub(super) fn jmp_far(&mut self, sel: u16, off: u32, sz: u8) -> Res<()> {
        self.far_transfer(sel, off, sz, FarKind::Jmp)
    }

    pub(super) fn call_far(&mut self, sel: u16, off: u32, sz: u8) -> Res<()> {
        self.far_transfer(sel, off, sz, FarKind::Call)
    }

    /// Deliver interrupt `v`; `ret` is the EIP to return to.
    pub(super) fn interrupt(&mut self, v: u8, kind: IntKind, ret: u32) -> Res<()> {
        if !self.cpu.state.protected_mode() {
            return self.interrupt_real(v, ret);
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

    /// Load EFLAGS from POPF/IRET with the privilege rules of the current CPL.
    pub(super) fn write_flags(&mut self, v: u32, sz: u8, iret: bool) {
        let cpl = self.cpu.state.cpl;
        self.write_flags_at(v, sz, iret, cpl);
    }

    /// IOPL changes only at CPL 0, IF only when CPL <= IOPL; VM, VIP, VIF are never
    /// loaded here; RF is loaded by IRET and cleared by POPF.
    pub(super) fn write_flags_at(&mut self, v: u32, sz: u8, iret: bool, cpl: u8) {
        let s = &mut self.cpu.state;
        let cur = s.eflags();
        let mut mask = WRITABLE & !(VM | VIP | VIF);
        if !iret {
            mask &= !RF;
        }
        if s.protected_mode() {
            if cpl > 0 {
                mask &= !IOPL;
            }
            if cpl as u32 > (cur & IOPL) >> 12 {
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

    /// In virtual-8086 mode PUSHF/POPF/CLI/STI need IOPL 3 (no VME in this model).
    fn v86_iopl_check(&self) -> Res<()> {
        let s = &self.cpu.state;
        if s.v86_mode() && (s.flags_raw & IOPL) >> 12 < 3 {
            return Err(Fault::gp(0));
        }
        Ok(())
    }

    pub(super) fn pushf(&mut self, sz: u8) -> Res<()> {
        self.v86_iopl_check()?;
        let f = self.flags() & !(VM | RF);
        self.push(f, sz)
    }

    pub(super) fn popf(&mut self, sz: u8) -> Res<()> {
        self.v86_iopl_check()?;
        let v = self.pop(sz)?;
        if self.cpu.state.v86_mode() {
            // IOPL cannot change from V86 mode.
            let cur = self.flags();
            let v = (v & !IOPL) | (cur & IOPL);
            self.write_flags_at(v, sz, false, 0);
        } else {
            self.write_flags(v, sz, false);
        }
        Ok(())
    }

    fn iopl_ok(&self) -> bool {
        let s = &self.cpu.state;
        !s.protected_mode() || s.cpl as u32 <= (s.flags_raw & IOPL) >> 12
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
        // FrameTemp is the whole ESP after the push (its upper half survives on a 16-bit
        // stack, as the 386 does).
        let frame = self.cpu.state.gpr[4];
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
