//! Protected-mode interrupt and exception delivery (interrupt, trap and task gates; same
//! privilege, stack switch to an inner level, and from virtual-8086 mode) and IRET
//! (same level, outer level, to virtual-8086 mode, task return, and IRET inside V86).

use super::ctrl::IntKind;
use super::segments::{v86_segment, Desc, CS, SS};
use super::task::TaskReason;
use super::{Exec, Res};
use crate::cpu::flags::*;
use crate::cpu::state::{attr, SegReg, SegmentCache};
use crate::cpu::{vector, Fault};

impl Exec<'_> {
    pub(super) fn interrupt_protected(&mut self, v: u8, kind: IntKind, ret: u32) -> Res<()> {
        let ext = (kind != IntKind::Soft) as u32;
        let gerr = v as u32 * 8 + 2 + ext;
        let idtr = self.cpu.state.idtr;
        if v as u32 * 8 + 7 > idtr.limit {
            return Err(Fault::gp(gerr));
        }
        let a = idtr.base.wrapping_add(v as u32 * 8);
        let g = Desc {
            lo: self.read_lin_as(a, 4, false)?,
            hi: self.read_lin_as(a.wrapping_add(4), 4, false)?,
        };
        let cpl = self.cpu.state.cpl;
        if !g.system() || !matches!(g.typ(), 5 | 6 | 7 | 0xE | 0xF) {
            return Err(Fault::gp(gerr));
        }
        if kind == IntKind::Soft && g.dpl() < cpl {
            return Err(Fault::gp(gerr));
        }
        if !g.present() {
            return Err(Fault::ex_err(vector::NP, gerr));
        }
        let err = match kind {
            IntKind::Exception(e) => e,
            _ => None,
        };
        if g.typ() == 5 {
            let tss = g.gate_selector();
            let td = self.task_gate_target(tss).map_err(|f| with_ext(f, ext))?;
            return self.task_switch(tss, td, TaskReason::Int, err, ret);
        }
        let gate32 = g.typ() & 8 != 0;
        let trap = g.typ() & 1 != 0;
        let sz: u8 = if gate32 { 4 } else { 2 };
        let off = if gate32 {
            g.gate_offset()
        } else {
            g.gate_offset() & 0xFFFF
        };
        let csel = g.gate_selector();
        if csel & !3 == 0 {
            return Err(Fault::gp(ext));
        }
        let serr = (csel as u32 & 0xFFFC) | ext;
        let cd = self
            .descriptor_or(csel, vector::GP)
            .map_err(|f| with_ext(f, ext))?;
        if !cd.code() || cd.dpl() > cpl {
            return Err(Fault::gp(serr));
        }
        if !cd.present() {
            return Err(Fault::ex_err(vector::NP, serr));
        }
        let mut c = cd.cache(csel);
        if off > c.limit {
            return Err(Fault::gp(ext));
        }
        let flags = self.flags() | if self.push_rf { RF } else { 0 };
        let s = &self.cpu.state;
        let old_cs = s.seg[CS as usize].selector as u32;
        let v86 = s.v86_mode();
        let inner = !cd.conforming() && cd.dpl() < cpl;
        if v86 && (cd.conforming() || cd.dpl() != 0) {
            return Err(Fault::gp(serr));
        }
        let new_cpl = if inner { cd.dpl() } else { cpl };
        if inner {
            let (nss, nesp) = self.tss_stack(new_cpl).map_err(|f| with_ext(f, ext))?;
            let ssc = self
                .inner_stack_segment(nss, new_cpl)
                .map_err(|f| with_ext(f, ext))?;
            let s = &self.cpu.state;
            let mut frame = Vec::with_capacity(10);
            if v86 {
                for seg in [SegReg::Gs, SegReg::Fs, SegReg::Ds, SegReg::Es] {
                    frame.push(s.seg[seg as usize].selector as u32);
                }
            }
            frame.push(s.seg[SS as usize].selector as u32);
            frame.push(s.gpr[4]);
            frame.extend_from_slice(&[flags, old_cs, ret]);
            if let Some(e) = err {
                frame.push(e);
            }
            let nesp = self.push_frame(&ssc, nesp, sz, &frame, (nss as u32 & 0xFFFC) | ext)?;
            let s = &mut self.cpu.state;
            s.seg[SS as usize] = ssc;
            s.gpr[4] = if ssc.big() {
                nesp
            } else {
                (s.gpr[4] & 0xFFFF_0000) | (nesp & 0xFFFF)
            };
            if v86 {
                for seg in [SegReg::Es, SegReg::Ds, SegReg::Fs, SegReg::Gs] {
                    s.seg[seg as usize] = SegmentCache::default();
                }
            }
        } else {
            let mut frame = vec![flags, old_cs, ret];
            if let Some(e) = err {
                frame.push(e);
            }
            let ssc = self.cpu.state.seg[SS as usize];
            let esp = self.cpu.state.gpr[4];
            let nesp = self.push_frame(&ssc, esp, sz, &frame, 0)?;
            self.set_sp(nesp);
        }
        self.mark_accessed(csel, &cd)?;
        c.attr |= attr::ACCESSED;
        c.selector = (csel & !3) | new_cpl as u16;
        let s = &mut self.cpu.state;
        s.seg[CS as usize] = c;
        s.cpl = new_cpl;
        s.eip = off;
        s.flags_raw &= !(TF | NT | RF | VM);
        if !trap {
            s.flags_raw &= !IF;
        }
        Ok(())
    }

    pub(super) fn iret(&mut self, sz: u8) -> Res<()> {
        let s = &self.cpu.state;
        if !s.protected_mode() {
            return self.iret_real_style(sz, false);
        }
        if s.v86_mode() {
            if (s.flags_raw & IOPL) >> 12 < 3 {
                return Err(Fault::gp(0));
            }
            return self.iret_real_style(sz, true);
        }
        if s.flags_raw & NT != 0 {
            let tr = s.tr;
            let back = self.read_lin_as(tr.base, 2, false)? as u16;
            let err = back as u32 & 0xFFFC;
            if back & 4 != 0 || back & !3 == 0 {
                return Err(Fault::ex_err(vector::TS, err));
            }
            let d = self.descriptor_or(back, vector::TS)?;
            if !d.system() || !matches!(d.typ(), 3 | 0xB) {
                return Err(Fault::ex_err(vector::TS, err));
            }
            if !d.present() {
                return Err(Fault::ex_err(vector::NP, err));
            }
            let ret = self.cpu.state.eip;
            return self.task_switch(back, d, TaskReason::Iret, None, ret);
        }
        let off = self.peek(0, sz)?;
        let sel = self.peek(sz as u32, sz)? as u16;
        let fl = self.peek(2 * sz as u32, sz)?;
        let cpl = self.cpu.state.cpl;
        if sz == 4 && fl & VM != 0 && cpl == 0 {
            return self.iret_to_v86(off, sel, fl);
        }
        let off = if sz == 2 { off & 0xFFFF } else { off };
        let cd = self.return_cs(sel)?;
        let rpl = (sel & 3) as u8;
        if rpl == cpl {
            self.commit_return(sel, &cd, off, None)?;
            self.set_sp(self.sp_plus(3 * sz as u32));
        } else {
            let nesp = self.peek(3 * sz as u32, sz)?;
            let nss = self.peek(4 * sz as u32, sz)? as u16;
            let ssc = self.return_ss(nss, rpl)?;
            let nesp = if sz == 2 { nesp & 0xFFFF } else { nesp };
            self.commit_return(sel, &cd, off, Some((ssc, nesp)))?;
        }
        // The flags are written with the privilege rules of the level IRET ran at.
        self.write_flags_at(fl, sz, true, cpl);
        Ok(())
    }

    /// IRET in real mode, or in virtual-8086 mode with IOPL 3 (which cannot change IOPL).
    fn iret_real_style(&mut self, sz: u8, v86: bool) -> Res<()> {
        let off = self.peek(0, sz)?;
        let sel = self.peek(sz as u32, sz)? as u16;
        let fl = self.peek(2 * sz as u32, sz)?;
        let off = if sz == 2 { off & 0xFFFF } else { off };
        if off > self.cpu.state.seg[CS as usize].limit {
            return Err(Fault::gp(0));
        }
        let s = &mut self.cpu.state;
        if v86 {
            s.seg[CS as usize] = v86_segment(sel, true);
        } else {
            let cs = &mut s.seg[CS as usize];
            cs.selector = sel;
            cs.base = (sel as u32) << 4;
        }
        s.eip = off;
        self.set_sp(self.sp_plus(3 * sz as u32));
        if v86 {
            let cur = self.flags();
            let keep = IOPL | VM | VIP | VIF | RF;
            let mask = if sz == 2 {
                0xFFFF & !keep
            } else {
                WRITABLE & !keep
            };
            self.cpu.state.set_eflags((cur & !mask) | (fl & mask));
        } else {
            self.write_flags(fl, sz, true);
        }
        Ok(())
    }

    /// IRET from CPL 0 to a virtual-8086 task: the frame continues with ESP, SS, ES, DS,
    /// FS, GS.
    fn iret_to_v86(&mut self, eip: u32, cs: u16, fl: u32) -> Res<()> {
        let mut v = [0u32; 6];
        for (k, slot) in v.iter_mut().enumerate() {
            *slot = self.peek(12 + 4 * k as u32, 4)?;
        }
        let s = &mut self.cpu.state;
        s.set_eflags(fl);
        s.cpl = 3;
        s.seg[CS as usize] = v86_segment(cs, true);
        s.seg[SS as usize] = v86_segment(v[1] as u16, false);
        s.seg[SegReg::Es as usize] = v86_segment(v[2] as u16, false);
        s.seg[SegReg::Ds as usize] = v86_segment(v[3] as u16, false);
        s.seg[SegReg::Fs as usize] = v86_segment(v[4] as u16, false);
        s.seg[SegReg::Gs as usize] = v86_segment(v[5] as u16, false);
        s.gpr[4] = v[0];
        s.eip = eip & 0xFFFF;
        Ok(())
    }
}

/// Faults raised while delivering an external event carry EXT in their error code.
fn with_ext(f: Fault, ext: u32) -> Fault {
    match f {
        Fault::Exception {
            vector,
            error: Some(e),
        } => Fault::Exception {
            vector,
            error: Some(e | ext),
        },
        other => other,
    }
}
