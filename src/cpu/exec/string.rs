//! String instructions (MOVS CMPS STOS LODS SCAS INS OUTS) with REP/REPE/REPNE.
//!
//! A REP instruction runs iteration by iteration; every iteration counts as one retired
//! instruction on the virtual clock. It stops early (with EIP still at the instruction,
//! so it resumes transparently) when the run budget ends, after each iteration when TF
//! is set, and after an iteration that touched a device. A fault in an iteration keeps
//! the completed iterations, as on hardware.

use super::{Exec, Res};
use crate::cpu::decode::{Insn, Op, REP_E, REP_NE};
use crate::cpu::flags::*;
use crate::cpu::state::SegReg;

const ES: u8 = SegReg::Es as u8;

impl Exec<'_> {
    pub(super) fn string_op(&mut self, i: &Insn) -> Res<()> {
        if matches!(i.op, Op::Ins | Op::Outs) {
            let dx = self.reg(2, 2) as u16;
            self.check_io(dx, i.osize)?;
        }
        if i.rep == 0
            || !matches!(
                i.op,
                Op::Movs | Op::Cmps | Op::Stos | Op::Lods | Op::Scas | Op::Ins | Op::Outs
            )
        {
            return self.string_iter(i);
        }
        let asz = if i.asize32() { 4 } else { 2 };
        let mut count = self.reg(1, asz);
        if count == 0 {
            return Ok(());
        }
        let s = &self.cpu.state;
        let max = if s.flags_raw & TF != 0 {
            1
        } else {
            self.end.saturating_sub(s.icount).max(1)
        };
        let compares = matches!(i.op, Op::Cmps | Op::Scas);
        let mut done: u64 = 0;
        loop {
            if let Err(e) = self.string_iter(i) {
                self.cpu.state.icount += done;
                return Err(e);
            }
            count -= 1;
            done += 1;
            self.set_reg(1, asz, count);
            if count == 0 {
                break;
            }
            if compares {
                let zf = self.cond(4);
                if (i.rep == REP_E && !zf) || (i.rep == REP_NE && zf) {
                    break;
                }
            }
            if done >= max || self.io_touched {
                // Not finished: resume at this instruction.
                self.cpu.state.eip = self.start_eip;
                break;
            }
        }
        self.cpu.state.icount += done - 1;
        Ok(())
    }

    /// One iteration, including the index register updates.
    fn string_iter(&mut self, i: &Insn) -> Res<()> {
        let sz = i.osize;
        let asz = if i.asize32() { 4 } else { 2 };
        let delta = if self.cpu.state.flags_raw & DF != 0 {
            (sz as u32).wrapping_neg()
        } else {
            sz as u32
        };
        let si = self.reg(6, asz);
        let di = self.reg(7, asz);
        let m = size_mask(asz);
        match i.op {
            Op::Movs => {
                let v = self.read_mem(i.seg, si, sz)?;
                self.write_mem(ES, di, sz, v)?;
                self.set_reg(6, asz, si.wrapping_add(delta) & m);
                self.set_reg(7, asz, di.wrapping_add(delta) & m);
            }
            Op::Cmps => {
                let a = self.read_mem(i.seg, si, sz)?;
                let b = self.read_mem(ES, di, sz)?;
                self.alu(7, sz, a, b);
                self.set_reg(6, asz, si.wrapping_add(delta) & m);
                self.set_reg(7, asz, di.wrapping_add(delta) & m);
            }
            Op::Stos => {
                let v = self.reg(0, sz);
                self.write_mem(ES, di, sz, v)?;
                self.set_reg(7, asz, di.wrapping_add(delta) & m);
            }
            Op::Lods => {
                let v = self.read_mem(i.seg, si, sz)?;
                self.set_reg(0, sz, v);
                self.set_reg(6, asz, si.wrapping_add(delta) & m);
            }
            Op::Scas => {
                let b = self.read_mem(ES, di, sz)?;
                let a = self.reg(0, sz);
                self.alu(7, sz, a, b);
                self.set_reg(7, asz, di.wrapping_add(delta) & m);
            }
            Op::Ins => {
                // The destination is checked before the port is read (reads have side effects).
                self.probe_write(ES, di, sz)?;
                let port = self.reg(2, 2) as u16;
                let v = self.io_in(port, sz);
                self.write_mem(ES, di, sz, v)?;
                self.set_reg(7, asz, di.wrapping_add(delta) & m);
            }
            _ => {
                let v = self.read_mem(i.seg, si, sz)?;
                let port = self.reg(2, 2) as u16;
                self.io_out(port, sz, v);
                self.set_reg(6, asz, si.wrapping_add(delta) & m);
            }
        }
        Ok(())
    }
}
