//! The interpreter: run loop, block fetch, operand and memory access.
//!
//! Every instruction handler returns `Result<(), Fault>`. Handlers read all their
//! inputs and check every access that can fault before they commit results, so a
//! fault leaves the architectural state as it was at the start of the instruction
//! (EIP and ESP are restored by the run loop); REP string instructions commit each
//! completed iteration, as hardware does.

mod alu;
mod ctrl;
mod debug;
mod dispatch;
mod intr;
mod paging;
mod segments;
mod simd;
mod string;
mod system;
mod task;
mod x87;

use std::sync::Arc;

use super::cache::{key, Block, MAX_BLOCK};
use super::decode::{decode, DecodeError, Insn, NO_REG};
use super::flags::*;
use super::state::{attr, SegReg, CR0_PG};
use super::{vector, Cpu, Fault, RunExit};
use crate::devices::bus::Bus;
use crate::mmu::PhysMem;

pub use system::PHYS_ADDR_BITS;

pub(crate) type Res<T> = Result<T, Fault>;

/// A memory or register operand location resolved once for read-modify-write.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Loc {
    Reg(u8),
    /// Segment and offset (checked for both read and write).
    Mem(u8, u32),
}

pub(crate) struct Exec<'a> {
    pub cpu: &'a mut Cpu,
    pub mem: &'a mut PhysMem,
    pub bus: &'a mut dyn Bus,
    /// EIP and ESP at the start of the current instruction.
    pub start_eip: u32,
    pub start_esp: u32,
    /// Instruction count at which the current `run` call ends.
    pub end: u64,
    /// Set when the current instruction touched a device (I/O port or MMIO): the run
    /// loop re-examines interrupts and stop requests before the next instruction.
    pub io_touched: bool,
    /// DR7 enables a breakpoint (recomputed per block).
    pub dbg_active: bool,
    /// DR6 bits of debug traps raised by the current instruction (data/I/O breakpoints,
    /// task-switch T bit), delivered after it retires.
    pub pending_db: u32,
    /// The exception being delivered is a fault: its EFLAGS image gets RF=1.
    pub push_rf: bool,
}

impl<'a> Exec<'a> {
    pub fn new(cpu: &'a mut Cpu, mem: &'a mut PhysMem, bus: &'a mut dyn Bus) -> Exec<'a> {
        Exec {
            cpu,
            mem,
            bus,
            start_eip: 0,
            start_esp: 0,
            end: 0,
            io_touched: false,
            dbg_active: false,
            pending_db: 0,
            push_rf: false,
        }
    }

    pub fn run(&mut self, budget: u64) -> RunExit {
        self.end = self.cpu.state.icount.saturating_add(budget);
        loop {
            if let Some(stop) = self.bus.take_stop() {
                return RunExit::Stopped(stop);
            }
            if self.cpu.state.icount >= self.end {
                return RunExit::InstructionLimit;
            }
            if !self.cpu.state.shadow
                && self.cpu.state.flags_raw & IF != 0
                && self.bus.interrupt_pending()
            {
                if let Some(v) = self.bus.acknowledge_interrupt() {
                    self.clip_to_next_event();
                    self.cpu.state.halted = false;
                    let eip = self.cpu.state.eip;
                    self.start_eip = eip;
                    self.start_esp = self.cpu.state.gpr[4];
                    if let Err(f) = self.interrupt(v, ctrl::IntKind::External, eip) {
                        if let Some(exit) = self.handle_fault(f) {
                            return exit;
                        }
                    }
                    continue;
                }
            }
            if self.cpu.state.halted {
                return RunExit::Halted;
            }
            let block = match self.fetch_block() {
                Ok(b) => b,
                Err(f) => {
                    self.start_eip = self.cpu.state.eip;
                    self.start_esp = self.cpu.state.gpr[4];
                    if let Some(exit) = self.handle_fault(f) {
                        return exit;
                    }
                    continue;
                }
            };
            if let Some(exit) = self.run_block(&block) {
                return exit;
            }
        }
    }

    /// Execute the instructions of one block; returns early on faults, traps, code
    /// writes, device access and the end of the budget.
    fn run_block(&mut self, block: &Block) -> Option<RunExit> {
        self.dbg_active = self.cpu.state.dr[7] & 0xFF != 0;
        for insn in &block.insns {
            let s = &mut self.cpu.state;
            let eip = s.eip;
            self.start_eip = eip;
            self.start_esp = s.gpr[4];
            if self.dbg_active && s.flags_raw & RF == 0 {
                let lin = s.seg[SegReg::Cs as usize].base.wrapping_add(eip);
                let hits = self.instruction_breakpoints(lin);
                if hits != 0 {
                    // An instruction breakpoint is a fault taken before the instruction.
                    self.cpu.state.dr[6] |= hits;
                    return self.deliver_exception(vector::DB, None, false);
                }
            }
            let s = &mut self.cpu.state;
            // RF is cleared once the instruction-breakpoint check is done.
            s.flags_raw &= !RF;
            let tf = s.flags_raw & TF != 0;
            // The shadow of MOV SS / POP SS / STI covers exactly one instruction.
            let in_shadow = s.shadow;
            s.shadow = false;
            s.db_shadow = false;
            let next = eip.wrapping_add(insn.len as u32);
            s.eip = if s.code32() { next } else { next & 0xFFFF };
            if let Err(f) = self.exec(insn) {
                self.cpu.state.shadow = false;
                self.cpu.state.db_shadow = false;
                self.pending_db = 0;
                return self.handle_fault(f);
            }
            let s = &mut self.cpu.state;
            s.icount += 1;
            // Debug traps (single step, data/I/O breakpoints, task T bit) are held back
            // while this instruction opened a MOV SS / POP SS shadow.
            if (tf || self.pending_db != 0) && !s.db_shadow {
                s.dr[6] |= self.pending_db | if tf { debug::DR6_BS } else { 0 };
                self.pending_db = 0;
                let next = s.eip;
                if let Err(f) = self.interrupt(vector::DB, ctrl::IntKind::Exception(None), next) {
                    return self.handle_fault(f);
                }
                return None;
            }
            if !self.mem.smc_pages.is_empty() {
                self.cpu.cache.invalidate_written(self.mem);
                return None;
            }
            if self.io_touched {
                self.io_touched = false;
                self.bus.sync_memory(self.mem);
                self.clip_to_next_event();
                return None;
            }
            if self.cpu.state.icount >= self.end {
                return None;
            }
            // The shadow ended: an interrupt held back by it is taken now, before the next
            // instruction, wherever the block would have ended.
            if in_shadow {
                return None;
            }
        }
        None
    }

    /// End this run no later than the bus's next device event ([`Bus::next_event`]), so
    /// that the caller lets the device act at exactly that instruction count.
    fn clip_to_next_event(&mut self) {
        if let Some(d) = self.bus.next_event() {
            self.end = self.end.min(d.max(self.cpu.state.icount));
        }
    }

    /// Roll back the current instruction and deliver `f` to the guest (or report it).
    fn handle_fault(&mut self, f: Fault) -> Option<RunExit> {
        let s = &mut self.cpu.state;
        s.eip = self.start_eip;
        s.gpr[4] = self.start_esp;
        match f {
            Fault::Unsupported(what) => Some(RunExit::Unsupported {
                what,
                cs: s.seg[1].selector,
                eip: s.eip,
            }),
            Fault::Exception { vector, error } => {
                if self.cpu.stop_on_exception {
                    return Some(RunExit::Exception {
                        vector,
                        error_code: error,
                    });
                }
                self.deliver_exception(vector, error, true)
            }
        }
    }

    /// Deliver an exception, escalating to #DF and shutdown per SDM table 6-5. `fault`:
    /// the EFLAGS image is pushed with RF=1 (all faults but instruction breakpoints).
    fn deliver_exception(
        &mut self,
        mut vector: u8,
        mut error: Option<u32>,
        fault: bool,
    ) -> Option<RunExit> {
        loop {
            let eip = self.start_eip;
            self.push_rf = fault;
            let r = self.interrupt(vector, ctrl::IntKind::Exception(error), eip);
            self.push_rf = false;
            match r {
                Ok(()) => return None,
                Err(Fault::Unsupported(what)) => {
                    return Some(RunExit::Unsupported {
                        what,
                        cs: self.cpu.state.seg[1].selector,
                        eip: self.cpu.state.eip,
                    })
                }
                Err(Fault::Exception {
                    vector: v2,
                    error: e2,
                }) => {
                    let s = &mut self.cpu.state;
                    s.eip = self.start_eip;
                    s.gpr[4] = self.start_esp;
                    if vector == vector::DF {
                        s.halted = true;
                        return Some(RunExit::TripleFault);
                    }
                    let contributory = |v: u8| matches!(v, 0 | 10 | 11 | 12 | 13);
                    let df = (contributory(vector) && contributory(v2))
                        || (vector == vector::PF && (contributory(v2) || v2 == vector::PF));
                    if df {
                        vector = vector::DF;
                        error = Some(0);
                    } else {
                        vector = v2;
                        error = e2;
                    }
                }
            }
        }
    }

    // ----- instruction fetch -------------------------------------------------------

    fn fetch_block(&mut self) -> Res<Arc<Block>> {
        if !self.mem.smc_pages.is_empty() {
            self.cpu.cache.invalidate_written(self.mem);
        }
        if self.cpu.tlb.epoch != self.mem.map_epoch() {
            self.cpu.tlb.flush_all();
            self.cpu.tlb.epoch = self.mem.map_epoch();
        }
        let s = &self.cpu.state;
        let cs = s.seg[SegReg::Cs as usize];
        let eip = s.eip;
        let code32 = cs.big();
        if !cs.valid {
            return Err(Fault::gp(0));
        }
        let lin = cs.base.wrapping_add(eip);
        let phys = self.translate_fetch(lin)?;
        let k = key(phys, code32);
        if let Some(b) = self.cpu.cache.get(k) {
            if eip as u64 + b.bytes as u64 - 1 <= cs.limit as u64 {
                return Ok(b.clone());
            }
            return self.fetch_single(code32);
        }
        // Bytes available in this page and within the segment limit.
        let Some(page) = self.mem.fetch_slice(phys) else {
            return self.fetch_single(code32);
        };
        let in_page = page;
        let seg_room = (cs.limit as u64 + 1).saturating_sub(eip as u64);
        let avail = (in_page.len() as u64).min(seg_room) as usize;
        let bytes = &in_page[..avail];
        let mut insns = Vec::new();
        let mut off = 0usize;
        // Instructions the CPU model does not have decode to #UD here, once per block.
        let model = self.cpu.model();
        while insns.len() < MAX_BLOCK {
            let window = &bytes[off..bytes.len().min(off + 15)];
            match decode(window, code32) {
                Ok(i) if !model.allows(&i) => {
                    insns.push(fault_insn(DecodeError::Invalid));
                    break;
                }
                Ok(i) => {
                    off += i.len as usize;
                    insns.push(i);
                    if i.ends_block() {
                        break;
                    }
                }
                Err(DecodeError::Truncated(_)) => break,
                Err(e) => {
                    insns.push(fault_insn(e));
                    break;
                }
            }
            if !code32 && eip as usize + off > 0xFFFF {
                break;
            }
        }
        if insns.is_empty() {
            return self.fetch_single(code32);
        }
        let block = Arc::new(Block {
            insns,
            bytes: off.max(1) as u32,
        });
        self.cpu.cache.insert(k, block.clone(), self.mem);
        self.cpu.tlb.revoke_host_write(phys & !0xFFF);
        Ok(block)
    }

    /// Decode one instruction byte by byte (page-crossing, at the segment limit, or
    /// outside RAM/ROM). Not cached.
    fn fetch_single(&mut self, code32: bool) -> Res<Arc<Block>> {
        let mut buf = [0u8; 15];
        let mut n = 0;
        let mut stop: Option<Fault> = None;
        let s = &self.cpu.state;
        let cs = s.seg[SegReg::Cs as usize];
        let eip = s.eip;
        while n < 15 {
            let off = if code32 {
                eip.wrapping_add(n as u32)
            } else {
                (eip + n as u32) & 0xFFFF
            };
            if off > cs.limit {
                stop = Some(Fault::gp(0));
                break;
            }
            let lin = cs.base.wrapping_add(off);
            match self.translate_fetch(lin) {
                Ok(p) => {
                    buf[n] = self.phys_read(p, 1) as u8;
                    n += 1;
                }
                Err(f) => {
                    stop = Some(f);
                    break;
                }
            }
        }
        let insn = match decode(&buf[..n], code32) {
            Ok(i) if !self.cpu.model().allows(&i) => fault_insn(DecodeError::Invalid),
            Ok(i) => i,
            Err(DecodeError::Truncated(_)) => return Err(stop.unwrap_or(Fault::gp(0))),
            Err(e) => fault_insn(e),
        };
        Ok(Arc::new(Block {
            insns: vec![insn],
            bytes: insn.len as u32,
        }))
    }

    // ----- segmented memory access ------------------------------------------------------

    /// Check an access of `size` bytes at `seg:off` and return the linear address.
    #[inline]
    pub fn lin(&mut self, seg: u8, off: u32, size: u8, write: bool) -> Res<u32> {
        let sc = self.cpu.state.seg[seg as usize];
        self.check_segment(&sc, seg == SegReg::Ss as u8, off, size, write)
    }

    /// Segment checks against a descriptor cache: limit (expand-up or expand-down) in
    /// every mode; in protected mode also null selector and type. Faults are #SS(0) for
    /// stack accesses and #GP(0) otherwise.
    #[inline]
    pub fn check_segment(
        &self,
        sc: &super::state::SegmentCache,
        is_ss: bool,
        off: u32,
        size: u8,
        write: bool,
    ) -> Res<u32> {
        let s = &self.cpu.state;
        let last = off as u64 + size as u64 - 1;
        let fault = || {
            if is_ss {
                Fault::ex_err(vector::SS, 0)
            } else {
                Fault::gp(0)
            }
        };
        if s.cr0 & 1 == 0 || s.flags_raw & VM != 0 {
            if last > sc.limit as u64 {
                return Err(fault());
            }
            return Ok(sc.base.wrapping_add(off));
        }
        if !sc.valid {
            return Err(fault());
        }
        let a = sc.attr;
        if a & attr::CODE != 0 {
            if write || a & attr::RW == 0 {
                return Err(fault());
            }
        } else if write && a & attr::RW == 0 {
            return Err(fault());
        }
        if a & (attr::CODE | attr::DC) == attr::DC {
            let upper: u64 = if a & attr::DB != 0 {
                0xFFFF_FFFF
            } else {
                0xFFFF
            };
            if (off as u64) <= sc.limit as u64 || last > upper {
                return Err(fault());
            }
        } else if last > sc.limit as u64 {
            return Err(fault());
        }
        Ok(sc.base.wrapping_add(off))
    }

    /// Read `size` bytes at a linear address with the current privilege.
    #[inline]
    pub fn read_lin(&mut self, lin: u32, size: u8) -> Res<u32> {
        let user = self.cpu.state.cpl == 3;
        self.read_lin_as(lin, size, user)
    }

    /// Write `size` bytes at a linear address with the current privilege.
    #[inline]
    pub fn write_lin(&mut self, lin: u32, size: u8, val: u32) -> Res<()> {
        let user = self.cpu.state.cpl == 3;
        self.write_lin_as(lin, size, val, user)
    }

    #[inline]
    fn phys_read(&mut self, p: u32, size: u8) -> u32 {
        self.mem.read(
            p,
            size,
            &mut TouchBus(&mut *self.bus, &mut self.io_touched, self.cpu.state.icount),
        )
    }

    #[inline]
    fn phys_write(&mut self, p: u32, size: u8, val: u32) {
        self.mem.write(
            p,
            size,
            val,
            &mut TouchBus(&mut *self.bus, &mut self.io_touched, self.cpu.state.icount),
        )
    }

    #[inline]
    pub fn read_mem(&mut self, seg: u8, off: u32, size: u8) -> Res<u32> {
        let l = self.lin(seg, off, size, false)?;
        self.alignment_check(l, size)?;
        self.read_lin(l, size)
    }

    #[inline]
    pub fn write_mem(&mut self, seg: u8, off: u32, size: u8, val: u32) -> Res<()> {
        let l = self.lin(seg, off, size, true)?;
        self.alignment_check(l, size)?;
        self.write_lin(l, size, val)
    }

    /// #AC(0) for a misaligned data access at CPL 3 with CR0.AM and EFLAGS.AC set.
    #[inline(always)]
    fn alignment_check(&self, lin: u32, size: u8) -> Res<()> {
        if lin & (size as u32 - 1) != 0 {
            let s = &self.cpu.state;
            if s.cr0 & super::state::CR0_AM != 0 && s.flags_raw & AC != 0 && s.cpl == 3 {
                return Err(Fault::ex_err(vector::AC, 0));
            }
        }
        Ok(())
    }

    /// Check that `size` bytes at `seg:off` could be written (segment and paging), without writing.
    pub fn probe_write(&mut self, seg: u8, off: u32, size: u8) -> Res<()> {
        let l = self.lin(seg, off, size, true)?;
        if self.cpu.state.cr0 & CR0_PG != 0 {
            let user = self.cpu.state.cpl == 3;
            self.tlb_entry(l, Access::Write, user)?;
            self.tlb_entry(l.wrapping_add(size as u32 - 1), Access::Write, user)?;
        }
        Ok(())
    }

    // ----- registers and ModRM operands ----------------------------------------------

    #[inline(always)]
    pub fn reg(&self, r: u8, size: u8) -> u32 {
        let g = &self.cpu.state.gpr;
        match size {
            1 => {
                if r < 4 {
                    g[r as usize] & 0xFF
                } else {
                    (g[(r - 4) as usize] >> 8) & 0xFF
                }
            }
            2 => g[r as usize] & 0xFFFF,
            _ => g[r as usize],
        }
    }

    #[inline(always)]
    pub fn set_reg(&mut self, r: u8, size: u8, v: u32) {
        let g = &mut self.cpu.state.gpr;
        match size {
            1 => {
                if r < 4 {
                    g[r as usize] = (g[r as usize] & !0xFF) | (v & 0xFF);
                } else {
                    let i = (r - 4) as usize;
                    g[i] = (g[i] & !0xFF00) | ((v & 0xFF) << 8);
                }
            }
            2 => g[r as usize] = (g[r as usize] & !0xFFFF) | (v & 0xFFFF),
            _ => g[r as usize] = v,
        }
    }

    /// Effective address (offset) of the memory operand.
    #[inline(always)]
    pub fn ea(&self, i: &Insn) -> u32 {
        let g = &self.cpu.state.gpr;
        let mut a = i.disp;
        if i.base != NO_REG {
            a = a.wrapping_add(g[i.base as usize]);
        }
        if i.index != NO_REG {
            a = a.wrapping_add(g[i.index as usize] << i.scale);
        }
        if i.asize32() {
            a
        } else {
            a & 0xFFFF
        }
    }

    #[inline]
    pub fn read_rm(&mut self, i: &Insn, size: u8) -> Res<u32> {
        if i.is_mem() {
            let ea = self.ea(i);
            self.read_mem(i.seg, ea, size)
        } else {
            Ok(self.reg(i.rm, size))
        }
    }

    #[inline]
    pub fn write_rm(&mut self, i: &Insn, size: u8, v: u32) -> Res<()> {
        if i.is_mem() {
            let ea = self.ea(i);
            self.write_mem(i.seg, ea, size, v)
        } else {
            self.set_reg(i.rm, size, v);
            Ok(())
        }
    }

    /// Resolve the r/m operand for read-modify-write (checks write access up front).
    #[inline]
    pub fn loc(&mut self, i: &Insn) -> Res<Loc> {
        if i.is_mem() {
            let ea = self.ea(i);
            self.probe_write(i.seg, ea, i.osize)?;
            Ok(Loc::Mem(i.seg, ea))
        } else {
            Ok(Loc::Reg(i.rm))
        }
    }

    #[inline]
    pub fn read_loc(&mut self, l: Loc, size: u8) -> Res<u32> {
        match l {
            Loc::Reg(r) => Ok(self.reg(r, size)),
            Loc::Mem(s, o) => self.read_mem(s, o, size),
        }
    }

    #[inline]
    pub fn write_loc(&mut self, l: Loc, size: u8, v: u32) -> Res<()> {
        match l {
            Loc::Reg(r) => {
                self.set_reg(r, size, v);
                Ok(())
            }
            Loc::Mem(s, o) => self.write_mem(s, o, size, v),
        }
    }

    // ----- flags ------------------------------------------------------------------------

    #[inline(always)]
    pub fn flags(&self) -> u32 {
        self.cpu.state.eflags()
    }

    #[inline(always)]
    pub fn cf(&self) -> bool {
        let s = &self.cpu.state;
        s.lazy.cf(s.flags_raw)
    }

    /// Replace the arithmetic flags selected by `mask` with those in `f`.
    #[inline]
    pub fn set_arith(&mut self, mask: u32, f: u32) {
        let s = &mut self.cpu.state;
        let cur = s.eflags();
        s.flags_raw = (cur & !mask) | (f & mask);
        s.lazy.clear();
    }

    #[inline(always)]
    pub fn lazy(&mut self, op: LazyOp, size: u8, dst: u32, src: u32, res: u32) {
        self.cpu.state.lazy.set(op, size, dst, src, res);
    }

    /// Evaluate condition code `cc` (0..15, as in Jcc).
    #[inline]
    pub fn cond(&self, cc: u8) -> bool {
        let s = &self.cpu.state;
        let (l, raw) = (&s.lazy, s.flags_raw);
        let r = match cc >> 1 {
            0 => l.of(raw),
            1 => l.cf(raw),
            2 => l.zf(raw),
            3 => l.cf(raw) || l.zf(raw),
            4 => l.sf(raw),
            5 => s.eflags() & PF != 0,
            6 => l.sf(raw) != l.of(raw),
            _ => l.zf(raw) || (l.sf(raw) != l.of(raw)),
        };
        r ^ (cc & 1 != 0)
    }

    // ----- stack ---------------------------------------------------------------------------

    #[inline]
    pub fn stack32(&self) -> bool {
        self.cpu.state.seg[SegReg::Ss as usize].big()
    }

    #[inline]
    pub fn sp(&self) -> u32 {
        let sp = self.cpu.state.gpr[4];
        if self.stack32() {
            sp
        } else {
            sp & 0xFFFF
        }
    }

    #[inline]
    pub fn set_sp(&mut self, v: u32) {
        if self.stack32() {
            self.cpu.state.gpr[4] = v;
        } else {
            self.set_reg(4, 2, v);
        }
    }

    /// Offset `delta` bytes from the current stack pointer, wrapped to the stack size.
    #[inline]
    pub fn sp_plus(&self, delta: u32) -> u32 {
        let v = self.sp().wrapping_add(delta);
        if self.stack32() {
            v
        } else {
            v & 0xFFFF
        }
    }

    #[inline]
    pub fn push(&mut self, v: u32, size: u8) -> Res<()> {
        let nsp = self.sp_plus((size as u32).wrapping_neg());
        self.write_mem(SegReg::Ss as u8, nsp, size, v)?;
        self.set_sp(nsp);
        Ok(())
    }

    #[inline]
    pub fn pop(&mut self, size: u8) -> Res<u32> {
        let sp = self.sp();
        let v = self.read_mem(SegReg::Ss as u8, sp, size)?;
        self.set_sp(self.sp_plus(size as u32));
        Ok(v)
    }

    /// Read the stack at `sp + off` without popping.
    #[inline]
    pub fn peek(&mut self, off: u32, size: u8) -> Res<u32> {
        let a = self.sp_plus(off);
        self.read_mem(SegReg::Ss as u8, a, size)
    }

    // ----- port I/O -------------------------------------------------------------------

    pub fn io_in(&mut self, port: u16, size: u8) -> u32 {
        self.io_touched = true;
        self.bus.set_time(self.cpu.state.icount);
        if self.dbg_active {
            self.io_breakpoints(port, size);
        }
        self.bus.io_read(port, size)
    }

    pub fn io_out(&mut self, port: u16, size: u8, v: u32) {
        self.io_touched = true;
        self.bus.set_time(self.cpu.state.icount);
        if self.dbg_active {
            self.io_breakpoints(port, size);
        }
        self.bus.io_write(port, size, v)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Access {
    Read,
    Write,
    Exec,
}

/// Pass-through bus that records that a device was touched (MMIO) and tells it the time.
struct TouchBus<'a, 'b>(&'a mut dyn Bus, &'b mut bool, u64);

impl Bus for TouchBus<'_, '_> {
    fn io_read(&mut self, port: u16, size: u8) -> u32 {
        *self.1 = true;
        self.0.io_read(port, size)
    }
    fn io_write(&mut self, port: u16, size: u8, value: u32) {
        *self.1 = true;
        self.0.io_write(port, size, value)
    }
    fn mmio_read(&mut self, addr: u32, size: u8) -> u32 {
        *self.1 = true;
        self.0.set_time(self.2);
        self.0.mmio_read(addr, size)
    }
    fn mmio_write(&mut self, addr: u32, size: u8, value: u32) {
        *self.1 = true;
        self.0.set_time(self.2);
        self.0.mmio_write(addr, size, value)
    }
}

/// A pseudo-instruction that raises the decode error when executed, so that the fault
/// is taken at the right instruction boundary.
fn fault_insn(e: DecodeError) -> Insn {
    use super::decode::Op;
    Insn {
        op: Op::Ud,
        len: 1,
        osize: 4,
        flags: super::decode::iflags::END,
        rep: 0,
        ext: (e == DecodeError::TooLong) as u8,
        reg: 0,
        rm: 0,
        seg: 3,
        base: NO_REG,
        index: NO_REG,
        scale: 0,
        disp: 0,
        imm: 0,
        imm2: 0,
    }
}
