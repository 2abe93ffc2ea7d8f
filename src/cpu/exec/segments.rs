//! Protected-mode segmentation: descriptors, segment register loads with every
//! architectural check, far JMP/CALL (code segments, call gates with privilege change and
//! parameter copy, task gates and TSS descriptors) and far RET (to the same or an outer
//! privilege level).

use super::task::TaskReason;
use super::{Exec, Res};
use crate::cpu::flags::VM;
use crate::cpu::state::{attr, SegReg, SegmentCache};
use crate::cpu::{vector, Fault};

pub(super) const CS: u8 = SegReg::Cs as u8;
pub(super) const SS: u8 = SegReg::Ss as u8;

/// A raw 8-byte descriptor.
#[derive(Clone, Copy, Debug)]
pub(super) struct Desc {
    pub lo: u32,
    pub hi: u32,
}

impl Desc {
    pub fn present(&self) -> bool {
        self.hi & 0x8000 != 0
    }
    pub fn dpl(&self) -> u8 {
        ((self.hi >> 13) & 3) as u8
    }
    pub fn system(&self) -> bool {
        self.hi & 0x1000 == 0
    }
    /// Type field (4 bits).
    pub fn typ(&self) -> u8 {
        ((self.hi >> 8) & 0xF) as u8
    }
    pub fn code(&self) -> bool {
        !self.system() && self.typ() & 8 != 0
    }
    pub fn conforming(&self) -> bool {
        self.code() && self.typ() & 4 != 0
    }
    pub fn readable_code(&self) -> bool {
        self.code() && self.typ() & 2 != 0
    }
    pub fn writable_data(&self) -> bool {
        !self.system() && !self.code() && self.typ() & 2 != 0
    }
    pub fn gate_selector(&self) -> u16 {
        (self.lo >> 16) as u16
    }
    pub fn gate_offset(&self) -> u32 {
        (self.hi & 0xFFFF_0000) | (self.lo & 0xFFFF)
    }
    pub fn cache(&self, sel: u16) -> SegmentCache {
        let base = (self.lo >> 16) | ((self.hi & 0xFF) << 16) | (self.hi & 0xFF00_0000);
        let mut limit = (self.lo & 0xFFFF) | (self.hi & 0xF_0000);
        if self.hi & (1 << 23) != 0 {
            limit = (limit << 12) | 0xFFF;
        }
        SegmentCache {
            selector: sel,
            attr: ((self.hi >> 8) & 0xF0FF) as u16,
            base,
            limit,
            valid: true,
            _pad: [0; 3],
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum FarKind {
    Jmp,
    Call,
}

/// Segment register contents in virtual-8086 mode.
pub(super) fn v86_segment(sel: u16, code: bool) -> SegmentCache {
    let a = if code {
        attr::REAL_CODE
    } else {
        attr::REAL_DATA
    };
    SegmentCache::real(sel, a | (3 << attr::DPL_SHIFT))
}

impl Exec<'_> {
    /// Read the descriptor for `sel` from the GDT or LDT; a selector outside the table
    /// raises `vector` (#GP, or #TS during a task switch) with the selector as error code.
    pub(super) fn descriptor_or(&mut self, sel: u16, vec: u8) -> Res<Desc> {
        let s = &self.cpu.state;
        let err = Fault::ex_err(vec, sel as u32 & 0xFFFC);
        let (base, limit) = if sel & 4 != 0 {
            if !s.ldtr.valid || s.ldtr.selector & !3 == 0 {
                return Err(err);
            }
            (s.ldtr.base, s.ldtr.limit)
        } else {
            (s.gdtr.base, s.gdtr.limit)
        };
        let idx = (sel & !7) as u32;
        if idx + 7 > limit {
            return Err(err);
        }
        let a = base.wrapping_add(idx);
        let lo = self.read_lin_as(a, 4, false)?;
        let hi = self.read_lin_as(a.wrapping_add(4), 4, false)?;
        Ok(Desc { lo, hi })
    }

    pub(super) fn read_descriptor(&mut self, sel: u16) -> Res<(u32, u32)> {
        let d = self.descriptor_or(sel, vector::GP)?;
        Ok((d.lo, d.hi))
    }

    /// Write back the high dword of a descriptor (accessed / busy bits).
    pub(super) fn write_descriptor_hi(&mut self, sel: u16, hi: u32) -> Res<()> {
        let s = &self.cpu.state;
        let base = if sel & 4 != 0 {
            s.ldtr.base
        } else {
            s.gdtr.base
        };
        let a = base.wrapping_add((sel & !7) as u32 + 4);
        self.write_lin_as(a, 4, hi, false)
    }

    /// Set the accessed bit of a code/data descriptor in memory.
    pub(super) fn mark_accessed(&mut self, sel: u16, d: &Desc) -> Res<()> {
        if d.hi & 0x100 != 0 {
            return Ok(());
        }
        self.write_descriptor_hi(sel, d.hi | 0x100)
    }

    pub(super) fn cache_from(sel: u16, lo: u32, hi: u32) -> SegmentCache {
        let mut c = Desc { lo, hi }.cache(sel);
        c.attr |= attr::ACCESSED;
        c
    }

    /// MOV/POP/LxS to a data segment register or SS (#GP/#SS/#NP per the SDM).
    pub(super) fn load_seg(&mut self, seg: u8, sel: u16) -> Res<()> {
        self.load_seg_with(seg, sel, vector::GP)
    }

    /// Segment load; `vec` is the vector for descriptor-check faults (#GP normally,
    /// #TS while loading a new task's registers).
    pub(super) fn load_seg_with(&mut self, seg: u8, sel: u16, vec: u8) -> Res<()> {
        let s = &mut self.cpu.state;
        if s.v86_mode() {
            s.seg[seg as usize] = v86_segment(sel, seg == CS);
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
        let gp = Fault::ex_err(vec, err);
        if sel & !3 == 0 {
            if seg == SS {
                return Err(Fault::ex_err(vec, 0));
            }
            s.seg[seg as usize] = SegmentCache {
                selector: sel,
                valid: false,
                ..SegmentCache::default()
            };
            return Ok(());
        }
        let d = self.descriptor_or(sel, vec)?;
        let rpl = (sel & 3) as u8;
        if seg == SS {
            if rpl != cpl || d.dpl() != cpl || !d.writable_data() {
                return Err(gp);
            }
            if !d.present() {
                return Err(Fault::ex_err(vector::SS, err));
            }
        } else {
            // Data segments and readable code segments only.
            if d.system() || (d.code() && !d.readable_code()) {
                return Err(gp);
            }
            if !d.conforming() && rpl.max(cpl) > d.dpl() {
                return Err(gp);
            }
            if !d.present() {
                return Err(Fault::ex_err(vector::NP, err));
            }
        }
        self.mark_accessed(sel, &d)?;
        let mut c = d.cache(sel);
        c.attr |= attr::ACCESSED;
        self.cpu.state.seg[seg as usize] = c;
        Ok(())
    }

    /// The stack for privilege level `dpl` from the current TSS.
    pub(super) fn tss_stack(&mut self, dpl: u8) -> Res<(u16, u32)> {
        let tr = self.cpu.state.tr;
        let ts = Fault::ex_err(vector::TS, tr.selector as u32 & 0xFFFC);
        let is32 = tr.attr & 8 != 0;
        let (off, width) = if is32 {
            (4 + 8 * dpl as u32, 8)
        } else {
            (2 + 4 * dpl as u32, 4)
        };
        if off + width - 1 > tr.limit {
            return Err(ts);
        }
        let a = tr.base.wrapping_add(off);
        if is32 {
            let esp = self.read_lin_as(a, 4, false)?;
            let ss = self.read_lin_as(a.wrapping_add(4), 2, false)? as u16;
            Ok((ss, esp))
        } else {
            let sp = self.read_lin_as(a, 2, false)?;
            let ss = self.read_lin_as(a.wrapping_add(2), 2, false)? as u16;
            Ok((ss, sp))
        }
    }

    /// Validate the SS selector for a stack switch to privilege `dpl` (#TS / #SS).
    pub(super) fn inner_stack_segment(&mut self, ss: u16, dpl: u8) -> Res<SegmentCache> {
        let ts = Fault::ex_err(vector::TS, ss as u32 & 0xFFFC);
        if ss & !3 == 0 {
            return Err(ts);
        }
        let d = self.descriptor_or(ss, vector::TS)?;
        if (ss & 3) as u8 != dpl || d.dpl() != dpl || !d.writable_data() {
            return Err(ts);
        }
        if !d.present() {
            return Err(Fault::ex_err(vector::SS, ss as u32 & 0xFFFC));
        }
        self.mark_accessed(ss, &d)?;
        let mut c = d.cache(ss);
        c.attr |= attr::ACCESSED;
        Ok(c)
    }

    /// Write `vals` (each `size` bytes, first pushed first) below `esp` on the stack
    /// described by `ss`, checking the whole frame first. Returns the new ESP.
    /// `ss_err` is the #SS error code: 0 for the current stack, the selector for a new one.
    pub(super) fn push_frame(
        &mut self,
        ss: &SegmentCache,
        esp: u32,
        size: u8,
        vals: &[u32],
        ss_err: u32,
    ) -> Res<u32> {
        let big = ss.big();
        let wrap = |v: u32| if big { v } else { v & 0xFFFF };
        let n = vals.len() as u32 * size as u32;
        let bottom = wrap(esp.wrapping_sub(n));
        let err = ss_err;
        // Frames are written with supervisor rights unless the stack is the user's own.
        let user = ss.dpl() == 3;
        for k in 0..vals.len() as u32 {
            let off = wrap(bottom.wrapping_add(k * size as u32));
            let l = self
                .check_segment(ss, true, off, size, true)
                .map_err(|_| Fault::ex_err(vector::SS, err))?;
            self.tlb_entry(l, super::Access::Write, user)?;
            self.tlb_entry(l.wrapping_add(size as u32 - 1), super::Access::Write, user)?;
        }
        let mut sp = esp;
        for &v in vals {
            sp = wrap(sp.wrapping_sub(size as u32));
            let l = ss.base.wrapping_add(sp);
            self.write_lin_as(l, size, v, user)?;
        }
        Ok(sp)
    }

    /// Load CS for a far transfer from real or virtual-8086 mode.
    fn far_real(&mut self, sel: u16, off: u32, sz: u8) -> Res<()> {
        let s = &mut self.cpu.state;
        let off = if sz == 2 { off & 0xFFFF } else { off };
        if off > s.seg[CS as usize].limit {
            return Err(Fault::gp(0));
        }
        if s.v86_mode() {
            s.seg[CS as usize] = v86_segment(sel, true);
        } else {
            let cs = &mut s.seg[CS as usize];
            cs.selector = sel;
            cs.base = (sel as u32) << 4;
        }
        s.eip = off;
        Ok(())
    }

    /// Check a code-segment descriptor as the target of a direct far JMP/CALL.
    fn check_direct_code(&mut self, sel: u16, d: &Desc) -> Res<()> {
        let cpl = self.cpu.state.cpl;
        let err = sel as u32 & 0xFFFC;
        let rpl = (sel & 3) as u8;
        if d.conforming() {
            if d.dpl() > cpl {
                return Err(Fault::gp(err));
            }
        } else if rpl > cpl || d.dpl() != cpl {
            return Err(Fault::gp(err));
        }
        if !d.present() {
            return Err(Fault::ex_err(vector::NP, err));
        }
        Ok(())
    }

    /// Install CS at the current privilege level and jump.
    fn commit_cs(&mut self, sel: u16, d: &Desc, off: u32) -> Res<()> {
        let mut c = d.cache(sel);
        if off > c.limit {
            return Err(Fault::gp(0));
        }
        self.mark_accessed(sel, d)?;
        c.attr |= attr::ACCESSED;
        let cpl = self.cpu.state.cpl;
        c.selector = (sel & !3) | cpl as u16;
        let s = &mut self.cpu.state;
        s.seg[CS as usize] = c;
        s.eip = off;
        Ok(())
    }

    /// Far JMP or CALL to `sel:off` (operand size `sz`).
    pub(super) fn far_transfer(&mut self, sel: u16, off: u32, sz: u8, kind: FarKind) -> Res<()> {
        let s = &self.cpu.state;
        let old_cs = s.seg[CS as usize].selector as u32;
        let ret = s.eip;
        if !s.protected_mode() || s.v86_mode() {
            if kind == FarKind::Call {
                let top = self.sp_plus((2 * sz as u32).wrapping_neg());
                self.probe_write(SS, top, 2 * sz)?;
                self.far_real(sel, off, sz)?;
                self.push(old_cs, sz)?;
                self.push(ret, sz)?;
                return Ok(());
            }
            return self.far_real(sel, off, sz);
        }
        if sel & !3 == 0 {
            return Err(Fault::gp(0));
        }
        let d = self.descriptor_or(sel, vector::GP)?;
        let err = sel as u32 & 0xFFFC;
        if !d.system() {
            if !d.code() {
                return Err(Fault::gp(err));
            }
            self.check_direct_code(sel, &d)?;
            let off = if sz == 2 { off & 0xFFFF } else { off };
            if kind == FarKind::Call {
                let top = self.sp_plus((2 * sz as u32).wrapping_neg());
                self.probe_write(SS, top, 2 * sz)?;
                if off > d.cache(sel).limit {
                    return Err(Fault::gp(0));
                }
                self.push(old_cs, sz)?;
                self.push(ret, sz)?;
            }
            return self.commit_cs(sel, &d, off);
        }
        let cpl = self.cpu.state.cpl;
        let rpl = (sel & 3) as u8;
        match d.typ() {
            // Available TSS: a task switch.
            1 | 9 => {
                if d.dpl() < cpl || d.dpl() < rpl {
                    return Err(Fault::gp(err));
                }
                let reason = if kind == FarKind::Call {
                    TaskReason::Call
                } else {
                    TaskReason::Jmp
                };
                self.task_switch(sel, d, reason, None, ret)
            }
            5 => {
                if d.dpl() < cpl || d.dpl() < rpl {
                    return Err(Fault::gp(err));
                }
                if !d.present() {
                    return Err(Fault::ex_err(vector::NP, err));
                }
                let tss = d.gate_selector();
                let td = self.task_gate_target(tss)?;
                let reason = if kind == FarKind::Call {
                    TaskReason::Call
                } else {
                    TaskReason::Jmp
                };
                self.task_switch(tss, td, reason, None, ret)
            }
            4 | 0xC => self.call_gate(sel, d, kind, sz),
            _ => Err(Fault::gp(err)),
        }
    }

    /// The TSS descriptor a task gate names (must be an available TSS in the GDT).
    pub(super) fn task_gate_target(&mut self, tss: u16) -> Res<Desc> {
        let err = tss as u32 & 0xFFFC;
        if tss & 4 != 0 || tss & !3 == 0 {
            return Err(Fault::gp(err));
        }
        let td = self.descriptor_or(tss, vector::GP)?;
        if !td.system() || !matches!(td.typ(), 1 | 9) {
            return Err(Fault::gp(err));
        }
        if !td.present() {
            return Err(Fault::ex_err(vector::NP, err));
        }
        Ok(td)
    }

    /// Far JMP/CALL through a call gate.
    fn call_gate(&mut self, gsel: u16, g: Desc, kind: FarKind, _sz: u8) -> Res<()> {
        let cpl = self.cpu.state.cpl;
        let gerr = gsel as u32 & 0xFFFC;
        if g.dpl() < cpl || g.dpl() < (gsel & 3) as u8 {
            return Err(Fault::gp(gerr));
        }
        if !g.present() {
            return Err(Fault::ex_err(vector::NP, gerr));
        }
        let gate32 = g.typ() == 0xC;
        let gsz: u8 = if gate32 { 4 } else { 2 };
        let csel = g.gate_selector();
        if csel & !3 == 0 {
            return Err(Fault::gp(0));
        }
        let cerr = csel as u32 & 0xFFFC;
        let cd = self.descriptor_or(csel, vector::GP)?;
        if !cd.code() || cd.dpl() > cpl {
            return Err(Fault::gp(cerr));
        }
        if kind == FarKind::Jmp && !cd.conforming() && cd.dpl() != cpl {
            return Err(Fault::gp(cerr));
        }
        if !cd.present() {
            return Err(Fault::ex_err(vector::NP, cerr));
        }
        let off = if gate32 {
            g.gate_offset()
        } else {
            g.gate_offset() & 0xFFFF
        };
        let s = &self.cpu.state;
        let old_cs = s.seg[CS as usize].selector as u32;
        let ret = s.eip;
        if kind == FarKind::Jmp {
            return self.commit_cs(csel, &cd, off);
        }
        if cd.conforming() || cd.dpl() == cpl {
            // Same privilege: an ordinary far call with the gate's size.
            let top = self.sp_plus((2 * gsz as u32).wrapping_neg());
            self.probe_write(SS, top, 2 * gsz)?;
            if off > cd.cache(csel).limit {
                return Err(Fault::gp(0));
            }
            self.push(old_cs, gsz)?;
            self.push(ret, gsz)?;
            return self.commit_cs(csel, &cd, off);
        }
        // Inner privilege: switch to the TSS stack of the target level, copy parameters.
        let dpl = cd.dpl();
        let (nss, nesp) = self.tss_stack(dpl)?;
        let ssc = self.inner_stack_segment(nss, dpl)?;
        let nparams = g.hi & 0x1F;
        let old_ss = self.cpu.state.seg[SS as usize].selector as u32;
        let old_esp = self.cpu.state.gpr[4];
        let caller_esp = if gsz == 4 { old_esp } else { old_esp & 0xFFFF };
        let mut frame = vec![old_ss, caller_esp];
        for k in (0..nparams).rev() {
            frame.push(self.peek(k * gsz as u32, gsz)?);
        }
        frame.push(old_cs);
        frame.push(ret);
        let mut c = cd.cache(csel);
        if off > c.limit {
            return Err(Fault::gp(0));
        }
        let new_esp = self.push_frame(&ssc, nesp, gsz, &frame, nss as u32 & 0xFFFC)?;
        self.mark_accessed(csel, &cd)?;
        c.attr |= attr::ACCESSED;
        c.selector = (csel & !3) | dpl as u16;
        let s = &mut self.cpu.state;
        s.seg[SS as usize] = ssc;
        s.gpr[4] = if ssc.big() {
            new_esp
        } else {
            (s.gpr[4] & 0xFFFF_0000) | (new_esp & 0xFFFF)
        };
        s.seg[CS as usize] = c;
        s.cpl = dpl;
        s.eip = off;
        Ok(())
    }

    /// Check the CS selector popped by RET/IRET in protected mode; returns its descriptor.
    pub(super) fn return_cs(&mut self, sel: u16) -> Res<Desc> {
        let cpl = self.cpu.state.cpl;
        let err = sel as u32 & 0xFFFC;
        if sel & !3 == 0 {
            return Err(Fault::gp(0));
        }
        let rpl = (sel & 3) as u8;
        if rpl < cpl {
            return Err(Fault::gp(err));
        }
        let d = self.descriptor_or(sel, vector::GP)?;
        if !d.code() {
            return Err(Fault::gp(err));
        }
        if (d.conforming() && d.dpl() > rpl) || (!d.conforming() && d.dpl() != rpl) {
            return Err(Fault::gp(err));
        }
        if !d.present() {
            return Err(Fault::ex_err(vector::NP, err));
        }
        Ok(d)
    }

    /// Check the SS selector popped by a return to outer privilege `rpl`.
    pub(super) fn return_ss(&mut self, sel: u16, rpl: u8) -> Res<SegmentCache> {
        let err = sel as u32 & 0xFFFC;
        if sel & !3 == 0 {
            return Err(Fault::gp(0));
        }
        let d = self.descriptor_or(sel, vector::GP)?;
        if (sel & 3) as u8 != rpl || d.dpl() != rpl || !d.writable_data() {
            return Err(Fault::gp(err));
        }
        if !d.present() {
            return Err(Fault::ex_err(vector::SS, err));
        }
        self.mark_accessed(sel, &d)?;
        let mut c = d.cache(sel);
        c.attr |= attr::ACCESSED;
        Ok(c)
    }

    /// After a return to an outer level: data segment registers the new CPL may not use
    /// become null.
    pub(super) fn invalidate_data_segments(&mut self) {
        let s = &mut self.cpu.state;
        let cpl = s.cpl;
        for seg in [SegReg::Es, SegReg::Ds, SegReg::Fs, SegReg::Gs] {
            let c = &mut s.seg[seg as usize];
            let conforming_code = c.attr & (attr::CODE | attr::DC) == attr::CODE | attr::DC;
            if c.valid && !conforming_code && c.dpl() < cpl {
                *c = SegmentCache {
                    selector: 0,
                    valid: false,
                    ..SegmentCache::default()
                };
            }
        }
    }

    /// Commit a return: CS:EIP at privilege `rpl` (and SS:ESP when `outer`).
    pub(super) fn commit_return(
        &mut self,
        csel: u16,
        cd: &Desc,
        eip: u32,
        outer: Option<(SegmentCache, u32)>,
    ) -> Res<()> {
        let mut c = cd.cache(csel);
        if eip > c.limit {
            return Err(Fault::gp(0));
        }
        self.mark_accessed(csel, cd)?;
        c.attr |= attr::ACCESSED;
        let rpl = (csel & 3) as u8;
        let s = &mut self.cpu.state;
        s.seg[CS as usize] = c;
        s.eip = eip;
        if let Some((ssc, esp)) = outer {
            s.seg[SS as usize] = ssc;
            s.gpr[4] = if ssc.big() {
                esp
            } else {
                (s.gpr[4] & 0xFFFF_0000) | (esp & 0xFFFF)
            };
            s.cpl = rpl;
            self.invalidate_data_segments();
        }
        Ok(())
    }

    pub(super) fn ret_far(&mut self, sz: u8, extra: u32) -> Res<()> {
        let off = self.peek(0, sz)?;
        let sel = self.peek(sz as u32, sz)? as u16;
        let s = &self.cpu.state;
        if !s.protected_mode() || s.flags_raw & VM != 0 {
            self.far_real(sel, off, sz)?;
            self.set_sp(self.sp_plus(2 * sz as u32 + extra));
            return Ok(());
        }
        let off = if sz == 2 { off & 0xFFFF } else { off };
        let cd = self.return_cs(sel)?;
        let rpl = (sel & 3) as u8;
        if rpl == self.cpu.state.cpl {
            self.commit_return(sel, &cd, off, None)?;
            self.set_sp(self.sp_plus(2 * sz as u32 + extra));
            return Ok(());
        }
        let nesp = self.peek(2 * sz as u32 + extra, sz)?;
        let nss = self.peek(3 * sz as u32 + extra, sz)? as u16;
        let ssc = self.return_ss(nss, rpl)?;
        let nesp = if sz == 2 { nesp & 0xFFFF } else { nesp };
        let nesp = if ssc.big() {
            nesp.wrapping_add(extra)
        } else {
            nesp.wrapping_add(extra) & 0xFFFF
        };
        self.commit_return(sel, &cd, off, Some((ssc, nesp)))
    }
}
