//! Hardware task switching (SDM vol. 3, 7.3): JMP/CALL to a TSS or task gate, interrupts
//! through task gates, and IRET with NT set; 16- and 32-bit TSSs, busy bits, NT and the
//! back link, CR3 and LDT loads, the T (debug trap) bit, and CR0.TS.

use super::segments::{v86_segment, Desc, CS, SS};
use super::{Exec, Res};
use crate::cpu::flags::*;
use crate::cpu::state::{attr, SegReg, SegmentCache, CR0_PG, CR0_TS};
use crate::cpu::{vector, Fault};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum TaskReason {
    Jmp,
    Call,
    Int,
    Iret,
}

/// Everything read from the new task's TSS before the switch commits.
struct NewTask {
    cr3: Option<u32>,
    eip: u32,
    eflags: u32,
    gpr: [u32; 8],
    sel: [u16; 6],
    ldt: u16,
    trap: bool,
}

impl Exec<'_> {
    fn tss_read(&mut self, base: u32, off: u32, size: u8) -> Res<u32> {
        self.read_lin_as(base.wrapping_add(off), size, false)
    }

    fn tss_write(&mut self, base: u32, off: u32, size: u8, v: u32) -> Res<()> {
        self.write_lin_as(base.wrapping_add(off), size, v, false)
    }

    /// Switch to the task whose TSS descriptor is `sel`/`d`. `ret` is the EIP saved in the
    /// old task; `err` an exception error code to push on the new task's stack.
    pub(super) fn task_switch(
        &mut self,
        sel: u16,
        d: Desc,
        reason: TaskReason,
        err: Option<u32>,
        ret: u32,
    ) -> Res<()> {
        let serr = sel as u32 & 0xFFFC;
        let busy_expected = reason == TaskReason::Iret;
        let ty = d.typ();
        let ok_type = if busy_expected {
            matches!(ty, 3 | 0xB)
        } else {
            matches!(ty, 1 | 9)
        };
        if !d.system() || !ok_type || sel & 4 != 0 {
            return Err(if busy_expected {
                Fault::ex_err(vector::TS, serr)
            } else {
                Fault::gp(serr)
            });
        }
        if !d.present() {
            return Err(Fault::ex_err(vector::NP, serr));
        }
        let new32 = ty & 8 != 0;
        let nc = d.cache(sel);
        let min_limit = if new32 { 0x67 } else { 0x2B };
        if nc.limit < min_limit {
            return Err(Fault::ex_err(vector::TS, serr));
        }

        // Read the new task's state (through the current address space).
        let nb = nc.base;
        let nt = if new32 {
            let mut gpr = [0u32; 8];
            for (k, r) in gpr.iter_mut().enumerate() {
                *r = self.tss_read(nb, 0x28 + 4 * k as u32, 4)?;
            }
            let mut sel6 = [0u16; 6];
            for (k, s) in sel6.iter_mut().enumerate() {
                *s = self.tss_read(nb, 0x48 + 4 * k as u32, 2)? as u16;
            }
            NewTask {
                cr3: Some(self.tss_read(nb, 0x1C, 4)?),
                eip: self.tss_read(nb, 0x20, 4)?,
                eflags: self.tss_read(nb, 0x24, 4)?,
                gpr,
                sel: sel6,
                ldt: self.tss_read(nb, 0x60, 2)? as u16,
                trap: self.tss_read(nb, 0x64, 2)? & 1 != 0,
            }
        } else {
            let mut gpr = [0u32; 8];
            for (k, r) in gpr.iter_mut().enumerate() {
                *r = self.tss_read(nb, 0x12 + 2 * k as u32, 2)?;
            }
            // 16-bit TSS: ES CS SS DS; FS and GS do not exist (loaded null).
            let mut sel6 = [0u16; 6];
            for (k, s) in sel6.iter_mut().take(4).enumerate() {
                *s = self.tss_read(nb, 0x22 + 2 * k as u32, 2)? as u16;
            }
            NewTask {
                cr3: None,
                eip: self.tss_read(nb, 0x0E, 2)?,
                eflags: self.tss_read(nb, 0x10, 2)? | (self.flags() & 0xFFFF_0000 & !VM),
                gpr,
                sel: sel6,
                ldt: self.tss_read(nb, 0x2A, 2)? as u16,
                trap: false,
            }
        };

        // Save the outgoing task.
        let old_tr = self.cpu.state.tr;
        let ob = old_tr.base;
        let old32 = old_tr.attr & 8 != 0;
        let mut oflags = self.flags();
        if reason == TaskReason::Iret {
            oflags &= !NT;
        }
        let s = self.cpu.state.clone();
        if old32 {
            self.tss_write(ob, 0x20, 4, ret)?;
            self.tss_write(ob, 0x24, 4, oflags)?;
            for k in 0..8u32 {
                self.tss_write(ob, 0x28 + 4 * k, 4, s.gpr[k as usize])?;
            }
            for k in 0..6u32 {
                self.tss_write(ob, 0x48 + 4 * k, 2, s.seg[k as usize].selector as u32)?;
            }
        } else {
            self.tss_write(ob, 0x0E, 2, ret)?;
            self.tss_write(ob, 0x10, 2, oflags)?;
            for k in 0..8u32 {
                self.tss_write(ob, 0x12 + 2 * k, 2, s.gpr[k as usize])?;
            }
            for k in 0..4u32 {
                self.tss_write(ob, 0x22 + 2 * k, 2, s.seg[k as usize].selector as u32)?;
            }
        }
        // Busy bits and the back link.
        if matches!(reason, TaskReason::Jmp | TaskReason::Iret) {
            let (_, ohi) = self.read_descriptor(old_tr.selector)?;
            self.write_descriptor_hi(old_tr.selector, ohi & !0x200)?;
        }
        let mut nflags = nt.eflags;
        if matches!(reason, TaskReason::Call | TaskReason::Int) {
            self.tss_write(nb, 0, 2, old_tr.selector as u32)?;
            nflags |= NT;
        }
        if reason != TaskReason::Iret {
            self.write_descriptor_hi(sel, d.hi | 0x200)?;
        }

        // Point of no return: the new task's state is loaded; later faults belong to it.
        let mut trc = nc;
        trc.attr |= 0x2; // busy
        let s = &mut self.cpu.state;
        s.tr = trc;
        s.cr0 |= CR0_TS;
        s.gpr = nt.gpr;
        s.eip = nt.eip;
        s.set_eflags(nflags);
        // Local breakpoint enables are cleared by a task switch.
        s.dr[7] &= !0x155;
        let v86 = nflags & VM != 0;
        // Selectors first (with empty caches), then the descriptor loads below.
        for k in 0..6 {
            s.seg[k] = SegmentCache {
                selector: nt.sel[k],
                valid: false,
                ..SegmentCache::default()
            };
        }
        s.ldtr = SegmentCache {
            selector: nt.ldt,
            valid: false,
            ..SegmentCache::default()
        };
        s.cpl = if v86 {
            3
        } else {
            (nt.sel[CS as usize] & 3) as u8
        };
        self.start_eip = nt.eip;
        self.start_esp = nt.gpr[4];
        if let Some(cr3) = nt.cr3 {
            if self.cpu.state.cr0 & CR0_PG != 0 {
                self.write_cr3(cr3)?;
            } else {
                self.cpu.state.cr3 = cr3 & 0xFFFF_FFF8;
            }
        }
        self.load_task_ldt(nt.ldt)?;
        if v86 {
            let s = &mut self.cpu.state;
            for k in 0..6 {
                s.seg[k] = v86_segment(nt.sel[k], k == CS as usize);
            }
        } else {
            self.load_task_segments(&nt.sel)?;
        }
        if let Some(e) = err {
            let sz = if new32 { 4 } else { 2 };
            self.push(e, sz)?;
            self.start_esp = self.cpu.state.gpr[4];
        }
        let s = &mut self.cpu.state;
        if s.eip > s.seg[CS as usize].limit {
            return Err(Fault::gp(0));
        }
        if nt.trap {
            self.pending_db |= super::debug::DR6_BT;
        }
        Ok(())
    }

    fn load_task_ldt(&mut self, ldt: u16) -> Res<()> {
        let err = ldt as u32 & 0xFFFC;
        if ldt & !3 == 0 {
            return Ok(());
        }
        if ldt & 4 != 0 {
            return Err(Fault::ex_err(vector::TS, err));
        }
        let d = self.descriptor_or(ldt, vector::TS)?;
        if !d.system() || d.typ() != 2 {
            return Err(Fault::ex_err(vector::TS, err));
        }
        if !d.present() {
            return Err(Fault::ex_err(vector::TS, err));
        }
        self.cpu.state.ldtr = d.cache(ldt);
        Ok(())
    }

    /// Load CS, SS and the data segments of the new task with #TS for bad descriptors.
    fn load_task_segments(&mut self, sel: &[u16; 6]) -> Res<()> {
        let cpl = self.cpu.state.cpl;
        // CS: a code segment whose DPL matches (non-conforming) or is below (conforming)
        // the new CPL.
        let cs = sel[CS as usize];
        let err = cs as u32 & 0xFFFC;
        if cs & !3 == 0 {
            return Err(Fault::ex_err(vector::TS, err));
        }
        let d = self.descriptor_or(cs, vector::TS)?;
        if !d.code() || (!d.conforming() && d.dpl() != cpl) || (d.conforming() && d.dpl() > cpl) {
            return Err(Fault::ex_err(vector::TS, err));
        }
        if !d.present() {
            return Err(Fault::ex_err(vector::NP, err));
        }
        self.mark_accessed(cs, &d)?;
        let mut c = d.cache(cs);
        c.attr |= attr::ACCESSED;
        self.cpu.state.seg[CS as usize] = c;
        self.load_seg_with(SS, sel[SS as usize], vector::TS)?;
        for seg in [SegReg::Es, SegReg::Ds, SegReg::Fs, SegReg::Gs] {
            self.load_seg_with(seg as u8, sel[seg as usize], vector::TS)?;
        }
        Ok(())
    }
}
