//! x87 instruction execution: the ESC opcodes D8..DF and WAIT.
//!
//! Arithmetic lives in [`crate::cpu::fpu`]; this layer does the stack discipline (empty
//! and full registers → stack faults), memory operands, the masked/unmasked responses
//! (an unmasked IE, DE or ZE leaves the destination and TOP alone), condition codes,
//! the last-instruction pointers, and exception reporting: an unmasked exception sets
//! ES and is reported by the next waiting x87 instruction (or WAIT) as #MF when CR0.NE
//! is set, or by asserting FERR# (IRQ 13 on a PC) when it is clear.
//!
//! Handlers read every memory operand and check every memory destination before they
//! change FPU state, so a page fault or #GP leaves the FPU as it was.

mod env;
mod misc;

use super::{Exec, Res};
use crate::cpu::decode::Insn;
use crate::cpu::flags::{CF, PF, ZF};
use crate::cpu::fpu::convert::{load_bcd, load_int};
use crate::cpu::fpu::exc::*;
use crate::cpu::fpu::sw::{C0, C1, C2, C3, CC, ES};
use crate::cpu::fpu::{Cmp, Ctx, F80};
use crate::cpu::state::{SegReg, CR0_EM, CR0_NE, CR0_TS};
use crate::cpu::{vector, Fault};

/// A memory operand of an arithmetic or compare instruction.
#[derive(Clone, Copy, PartialEq, Eq)]
enum MemArg {
    F32,
    F64,
    I16,
    I32,
}

/// Instructions that do not wait: they neither report a pending exception nor are
/// affected by one.
fn no_wait(i: &Insn) -> bool {
    match (i.ext, i.is_mem(), i.reg) {
        (1, true, 6 | 7) => true,   // FNSTENV, FNSTCW
        (5, true, 6 | 7) => true,   // FNSAVE, FNSTSW m16
        (3, false, 4) => i.rm <= 4, // FNENI FNDISI FNCLEX FNINIT FSETPM
        (7, false, 4) => i.rm == 0, // FNSTSW AX
        _ => false,
    }
}

/// Control instructions do not update the last-instruction pointers.
fn is_control(i: &Insn) -> bool {
    match (i.ext, i.is_mem(), i.reg) {
        (1, true, 4..=7) => true,     // FLDENV FLDCW FNSTENV FNSTCW
        (5, true, 4 | 6 | 7) => true, // FRSTOR FNSAVE FNSTSW
        (3, false, 4) => i.rm <= 4,
        (7, false, 4) => i.rm == 0,
        _ => false,
    }
}

/// C3 C2 C0 for a comparison result.
fn cmp_cc(c: Cmp) -> u16 {
    match c {
        Cmp::Greater => 0,
        Cmp::Less => C0,
        Cmp::Equal => C3,
        Cmp::Unordered => C3 | C2 | C0,
    }
}

/// ZF PF CF for a comparison result (FCOMI and friends).
fn cmp_eflags(c: Cmp) -> u32 {
    match c {
        Cmp::Greater => 0,
        Cmp::Less => CF,
        Cmp::Equal => ZF,
        Cmp::Unordered => ZF | PF | CF,
    }
}

impl Exec<'_> {
    /// Execute an x87 escape instruction.
    pub(super) fn fpu(&mut self, i: &Insn) -> Res<()> {
        if i.ext == 8 {
            // FXSAVE / FXRSTOR: no wait, no pointer update; CR0 checks of their own.
            return if i.reg == 0 {
                self.fxsave(i)
            } else {
                self.fxrstor(i)
            };
        }
        if self.cpu.state.cr0 & (CR0_EM | CR0_TS) != 0 {
            return Err(Fault::ex(vector::NM));
        }
        if !no_wait(i) {
            self.fpu_pending()?;
        }
        if i.is_mem() {
            self.x87_mem(i)?;
        } else {
            self.x87_reg(i)?;
        }
        if !is_control(i) {
            self.x87_pointers(i);
        }
        Ok(())
    }

    /// WAIT/FWAIT: #NM when CR0.MP and CR0.TS are both set, then report a pending
    /// unmasked exception.
    pub(super) fn fwait(&mut self) -> Res<()> {
        if self.cpu.state.cr0 & 0xA == 0xA {
            return Err(Fault::ex(vector::NM));
        }
        self.fpu_pending()
    }

    /// Report a pending unmasked x87 exception before a waiting instruction: #MF with
    /// CR0.NE = 1; with NE = 0 assert FERR# (the board turns it into IRQ 13) and go on.
    pub(super) fn fpu_pending(&mut self) -> Res<()> {
        if self.cpu.state.fpu.sw & ES == 0 {
            return Ok(());
        }
        if self.cpu.state.cr0 & CR0_NE != 0 {
            return Err(Fault::ex(vector::MF));
        }
        if self.cpu.state.fpu.ferr == 0 {
            self.cpu.state.fpu.ferr = 1;
            self.bus.set_ferr(true);
        }
        Ok(())
    }

    /// ES was cleared (FNCLEX, FNINIT, loading a new environment): deassert FERR#.
    fn fpu_es_cleared(&mut self) {
        let f = &mut self.cpu.state.fpu;
        if f.sw & ES == 0 && f.ferr != 0 {
            f.ferr = 0;
            self.bus.set_ferr(false);
        }
    }

    /// FIP/FCS/FOP, and FDP/FDS for memory operands.
    fn x87_pointers(&mut self, i: &Insn) {
        let modrm = if i.is_mem() {
            self.x87_modrm_byte(i)
        } else {
            0xC0 | (i.reg << 3) | i.rm
        };
        let cs = self.cpu.state.seg[SegReg::Cs as usize].selector;
        let ea = if i.is_mem() { Some(self.ea(i)) } else { None };
        let ds = self.cpu.state.seg[i.seg as usize].selector;
        let f = &mut self.cpu.state.fpu;
        f.fip = self.start_eip;
        f.fcs = cs;
        f.fop = ((i.ext as u16) << 8) | modrm as u16;
        if let Some(ea) = ea {
            f.fdp = ea;
            f.fds = ds;
        }
    }

    /// The ModRM byte of the current (memory-operand) instruction, re-read from the code
    /// bytes after the prefixes: the decoded form keeps the resolved address only.
    fn x87_modrm_byte(&mut self, i: &Insn) -> u8 {
        let s = &self.cpu.state;
        let base = s.seg[SegReg::Cs as usize].base;
        let code32 = s.code32();
        let mut off = self.start_eip;
        // The bytes were just fetched, so these reads (through the code segment's base,
        // without data-segment checks) succeed; the fallback only guards the impossible.
        for _ in 0..i.len.saturating_sub(1) {
            let Ok(b) = self.read_lin(base.wrapping_add(off), 1) else {
                break;
            };
            off = off.wrapping_add(1);
            if !code32 {
                off &= 0xFFFF;
            }
            if (0xD8..=0xDF).contains(&b) {
                return self.read_lin(base.wrapping_add(off), 1).unwrap_or(0) as u8;
            }
        }
        (i.reg << 3) | 0x05
    }

    /// #AC(0) for a misaligned x87 memory operand (CPL 3 with CR0.AM and EFLAGS.AC):
    /// 8-byte alignment for m64 and m80, the operand size for environments.
    pub(super) fn x87_align(&self, lin: u32, align: u32) -> Res<()> {
        let s = &self.cpu.state;
        if lin & (align - 1) != 0
            && s.cr0 & crate::cpu::state::CR0_AM != 0
            && s.eflags() & crate::cpu::flags::AC != 0
            && s.cpl == 3
        {
            return Err(Fault::ex_err(vector::AC, 0));
        }
        Ok(())
    }

    // ----- memory helpers ---------------------------------------------------------------

    fn mem_u64(&mut self, seg: u8, off: u32) -> Res<u64> {
        let l = self.lin(seg, off, 8, false)?;
        self.x87_align(l, 8)?;
        let lo = self.read_lin(l, 4)?;
        let hi = self.read_lin(l.wrapping_add(4), 4)?;
        Ok((hi as u64) << 32 | lo as u64)
    }

    fn mem_bytes10(&mut self, seg: u8, off: u32) -> Res<[u8; 10]> {
        let l = self.lin(seg, off, 10, false)?;
        self.x87_align(l, 8)?;
        let lo = self.read_lin(l, 4)?;
        let mid = self.read_lin(l.wrapping_add(4), 4)?;
        let hi = self.read_lin(l.wrapping_add(8), 2)?;
        let mut b = [0u8; 10];
        b[..4].copy_from_slice(&lo.to_le_bytes());
        b[4..8].copy_from_slice(&mid.to_le_bytes());
        b[8..].copy_from_slice(&(hi as u16).to_le_bytes());
        Ok(b)
    }

    /// Write `bytes` (up to 255) at seg:off after checking the whole destination.
    fn mem_write_bytes(&mut self, seg: u8, off: u32, bytes: &[u8]) -> Res<()> {
        self.probe_write(seg, off, bytes.len() as u8)?;
        let l = self.lin(seg, off, bytes.len() as u8, true)?;
        self.x87_align(l, (bytes.len() as u32).min(8))?;
        for (k, c) in bytes.chunks(4).enumerate() {
            let mut w = [0u8; 4];
            w[..c.len()].copy_from_slice(c);
            self.write_lin(
                l.wrapping_add(4 * k as u32),
                c.len() as u8,
                u32::from_le_bytes(w),
            )?;
        }
        Ok(())
    }

    /// Read an arithmetic memory operand: (value, was a denormal). Reals convert exactly
    /// (SNaNs stay signalling so the operation raises IE).
    fn mem_arg(&mut self, i: &Insn, kind: MemArg) -> Res<(F80, bool)> {
        let ea = self.ea(i);
        let cw = self.cpu.state.fpu.cw;
        // A context with every exception masked converts without side effects.
        let mut quiet = Ctx::new(cw | 0x3F);
        Ok(match kind {
            MemArg::I16 => (
                load_int(self.read_mem(i.seg, ea, 2)? as u16 as i16 as i64),
                false,
            ),
            MemArg::I32 => (load_int(self.read_mem(i.seg, ea, 4)? as i32 as i64), false),
            MemArg::F32 => {
                let b = self.read_mem(i.seg, ea, 4)?;
                let snan = b & 0x7FC0_0000 == 0x7F80_0000 && b & 0x003F_FFFF != 0;
                let v = quiet.load_f32(b).expect("masked");
                (if snan { unquiet(v) } else { v }, quiet.flags & DE != 0)
            }
            MemArg::F64 => {
                let b = self.mem_u64(i.seg, ea)?;
                let snan = b & 0x7FF8_0000_0000_0000 == 0x7FF0_0000_0000_0000
                    && b & 0x0007_FFFF_FFFF_FFFF != 0;
                let v = quiet.load_f64(b).expect("masked");
                (if snan { unquiet(v) } else { v }, quiet.flags & DE != 0)
            }
        })
    }

    // ----- stack faults -----------------------------------------------------------------

    /// Stack underflow (an operand register is empty): IE + SF, C1 = 0. True if masked.
    fn stack_underflow(&mut self) -> bool {
        let f = &mut self.cpu.state.fpu;
        f.set_cc(C1, 0);
        f.raise(IE | SF);
        f.cw & IE != 0
    }

    /// Stack overflow (the register a push would use is full): IE + SF, C1 = 1.
    fn stack_overflow(&mut self) -> bool {
        let f = &mut self.cpu.state.fpu;
        f.set_cc(C1, C1);
        f.raise(IE | SF);
        f.cw & IE != 0
    }

    /// Commit an operation's flags and C1.
    fn commit(&mut self, ctx: &Ctx) {
        let f = &mut self.cpu.state.fpu;
        f.set_cc(C1, if ctx.c1 { C1 } else { 0 });
        f.raise(ctx.flags);
    }

    /// Push `v` computed by `op` after the overflow check (loads).
    fn push_with(&mut self, op: impl FnOnce(&mut Ctx) -> Option<F80>) {
        let f = &self.cpu.state.fpu;
        let mut ctx = Ctx::new(f.cw);
        if f.valid & (1 << ((f.top() + 7) & 7)) != 0 {
            if self.stack_overflow() {
                self.cpu.state.fpu.push(F80::INDEFINITE);
            }
            return;
        }
        let r = op(&mut ctx);
        self.commit(&ctx);
        if let Some(v) = r {
            self.cpu.state.fpu.push(v);
        }
    }

    // ----- arithmetic -------------------------------------------------------------------

    /// The six arithmetic operations by ModRM.reg: x is ST(0), y the other operand.
    fn arith_op(ctx: &mut Ctx, op: u8, x: F80, y: F80, y_den: bool) -> Option<F80> {
        // The memory operand was a denormal: DE, unless the other operand decides the
        // result first (NaN, unsupported) or the operation is a division by zero.
        let div_by_zero = (op == 7 && x.is_zero()) || (op == 6 && y.is_zero());
        if y_den && !x.is_nan() && !x.is_unsupported() && !div_by_zero && !ctx.denormal() {
            return None;
        }
        match op {
            0 => ctx.add(x, y, false),
            1 => ctx.mul(x, y),
            4 => ctx.add(x, y, true),
            5 => ctx.add(y, x, true),
            6 => ctx.div(x, y),
            _ => ctx.div(y, x),
        }
    }

    /// FADD..FDIVR with ST(0) and ST(i) (or a memory operand when `mem` is Some); the
    /// result goes to ST(`dest`), then the stack pops if `pop`.
    fn arith(&mut self, op: u8, sti: u8, dest: u8, pop: bool, mem: Option<(F80, bool)>) {
        let f = &self.cpu.state.fpu;
        let empty = f.is_empty(0) || (mem.is_none() && f.is_empty(sti));
        if empty {
            if self.stack_underflow() {
                let f = &mut self.cpu.state.fpu;
                f.set_st(dest, F80::INDEFINITE);
                if pop {
                    f.pop();
                }
            }
            return;
        }
        let x = f.st(0);
        let (y, y_den) = mem.unwrap_or((f.st(sti), false));
        let mut ctx = Ctx::with_pc(f.cw);
        let r = Self::arith_op(&mut ctx, op, x, y, y_den);
        self.commit(&ctx);
        if let Some(v) = r {
            let f = &mut self.cpu.state.fpu;
            f.set_st(dest, v);
            if pop {
                f.pop();
            }
        }
    }

    /// FCOM/FCOMP/FCOMPP/FUCOM*/FICOM*/FTST (condition codes) and FCOMI/FUCOMI[P]
    /// (`eflags`). Pops `pops` times unless an unmasked exception stops the instruction.
    fn compare(&mut self, sti: u8, mem: Option<(F80, bool)>, quiet: bool, pops: u8, eflags: bool) {
        let f = &self.cpu.state.fpu;
        let empty = f.is_empty(0) || (mem.is_none() && f.is_empty(sti));
        let cw = f.cw;
        // The condition codes (or EFLAGS) are set even when an unmasked exception
        // stops the instruction; only the pops are suppressed.
        let (res, ok) = if empty {
            let masked = self.stack_underflow();
            (Cmp::Unordered, masked)
        } else {
            let x = f.st(0);
            let (y, y_den) = mem.unwrap_or((f.st(sti), false));
            let mut ctx = Ctx::new(cw);
            let c = ctx.compare(x, y, quiet);
            if y_den && c != Cmp::Unordered {
                ctx.raise(DE);
            }
            self.cpu.state.fpu.raise(ctx.flags);
            (c, !ctx.suppressed())
        };
        if eflags {
            self.cpu.state.fpu.set_cc(C1, 0);
            self.set_arith(crate::cpu::flags::ARITH, cmp_eflags(res));
        } else {
            self.cpu.state.fpu.set_cc(CC, cmp_cc(res));
        }
        if !ok {
            return;
        }
        for _ in 0..pops {
            self.cpu.state.fpu.pop();
        }
    }

    /// One-operand instructions on ST(0) that replace it.
    fn unary(&mut self, op: impl FnOnce(&mut Ctx, F80) -> Option<F80>) {
        let f = &self.cpu.state.fpu;
        if f.is_empty(0) {
            if self.stack_underflow() {
                self.cpu.state.fpu.set_st(0, F80::INDEFINITE);
            }
            return;
        }
        let mut ctx = Ctx::new(f.cw);
        let r = op(&mut ctx, f.st(0));
        self.commit(&ctx);
        if let Some(v) = r {
            self.cpu.state.fpu.set_st(0, v);
        }
    }

    // ----- register forms ---------------------------------------------------------------

    fn x87_reg(&mut self, i: &Insn) -> Res<()> {
        let (reg, rm) = (i.reg, i.rm);
        match (i.ext, reg) {
            (0, 2 | 3) => self.compare(rm, None, false, reg - 2, false),
            (0, _) => self.arith(reg, rm, 0, false, None),
            (4, 2 | 3) => self.compare(rm, None, false, reg - 2, false), // FCOM2, FCOMP3
            (4, _) => self.arith(reg, rm, rm, false, None),
            (6, 2) => self.compare(rm, None, false, 1, false), // FCOMP5
            (6, 3) => self.compare(1, None, false, 2, false),  // FCOMPP
            (6, _) => self.arith(reg, rm, rm, true, None),
            (1, _) => self.x87_d9_reg(reg, rm)?,
            (2, 5) => self.compare(1, None, true, 2, false), // FUCOMPP
            (2, _) => self.fcmov(reg, rm, false),
            (3, 0..=3) => self.fcmov(reg, rm, true),
            (3, 4) => match rm {
                2 => {
                    self.cpu.state.fpu.sw &= !0x80FF; // FNCLEX
                    self.fpu_es_cleared();
                }
                3 => {
                    self.cpu.state.fpu.init(); // FNINIT
                    self.fpu_es_cleared();
                }
                _ => {} // FNENI, FNDISI, FSETPM: no-ops since the 80387
            },
            (3, 5) => self.compare(rm, None, true, 0, true), // FUCOMI
            (3, 6) => self.compare(rm, None, false, 0, true), // FCOMI
            (5, 0) => self.fstack(|f| f.free(rm)),           // FFREE
            (5, 1) | (7, 1) => self.fxch(rm),                // FXCH4, FXCH7
            (5, 2) => self.fst_reg(rm, false),
            (5, 3) => self.fst_reg(rm, true),
            (5, 4) => self.compare(rm, None, true, 0, false), // FUCOM
            (5, 5) => self.compare(rm, None, true, 1, false), // FUCOMP
            (7, 0) => self.fstack(|f| {
                f.free(rm); // FFREEP
                f.pop();
            }),
            (7, 2 | 3) => self.fst_reg(rm, true), // FSTP8, FSTP9
            (7, 4) => {
                let s = self.cpu.state.fpu.sw as u32;
                self.set_reg(0, 2, s); // FNSTSW AX
            }
            (7, 5) => self.compare(rm, None, true, 1, true), // FUCOMIP
            (7, 6) => self.compare(rm, None, false, 1, true), // FCOMIP
            _ => return Err(Fault::ex(vector::UD)),
        }
        Ok(())
    }

    /// Stack bookkeeping instructions: C1 cleared (C0, C2, C3 undefined: unchanged).
    fn fstack(&mut self, op: impl FnOnce(&mut crate::cpu::fpu::FpuState)) {
        let f = &mut self.cpu.state.fpu;
        op(f);
        f.set_cc(C1, 0);
    }

    fn fxch(&mut self, rm: u8) {
        let f = &self.cpu.state.fpu;
        let (e0, ei) = (f.is_empty(0), f.is_empty(rm));
        if (e0 || ei) && !self.stack_underflow() {
            return;
        }
        let f = &mut self.cpu.state.fpu;
        let a = if e0 { F80::INDEFINITE } else { f.st(0) };
        let b = if ei { F80::INDEFINITE } else { f.st(rm) };
        f.set_st(0, b);
        f.set_st(rm, a);
        if !(e0 || ei) {
            f.set_cc(C1, 0);
        }
    }

    /// FST/FSTP ST(i).
    fn fst_reg(&mut self, rm: u8, pop: bool) {
        let f = &mut self.cpu.state.fpu;
        if f.is_empty(0) {
            if !self.stack_underflow() {
                return;
            }
            self.cpu.state.fpu.set_st(rm, F80::INDEFINITE);
        } else {
            let v = f.st(0);
            f.set_st(rm, v);
            f.set_cc(C1, 0);
        }
        if pop {
            self.cpu.state.fpu.pop();
        }
    }

    /// FSTP1 (D9 D8+i, undocumented): copies ST(0) with its tag to ST(i) and pops; an
    /// empty ST(0) raises no stack fault (the empty tag is copied).
    fn fstp1(&mut self, rm: u8) {
        let f = &mut self.cpu.state.fpu;
        let (p0, pi) = (f.phys(0), f.phys(rm));
        f.se[pi] = f.se[p0];
        f.sig[pi] = f.sig[p0];
        f.valid = (f.valid & !(1 << pi)) | (((f.valid >> p0) & 1) << pi);
        f.pop();
        f.set_cc(C1, 0);
    }

    /// FCMOVcc: reg 0 B, 1 E, 2 BE, 3 U; `not` for the DB forms.
    fn fcmov(&mut self, reg: u8, rm: u8, not: bool) {
        let cc = [2u8, 4, 6, 0xA][reg as usize & 3] | not as u8;
        let f = &self.cpu.state.fpu;
        if f.is_empty(0) || f.is_empty(rm) {
            if self.stack_underflow() {
                self.cpu.state.fpu.set_st(0, F80::INDEFINITE);
            }
            return;
        }
        let v = f.st(rm);
        if self.cond(cc) {
            self.cpu.state.fpu.set_st(0, v);
        }
        self.cpu.state.fpu.set_cc(C1, 0);
    }

    fn x87_d9_reg(&mut self, reg: u8, rm: u8) -> Res<()> {
        match reg {
            0 => {
                // FLD ST(i)
                let f = &self.cpu.state.fpu;
                if f.is_empty(rm) {
                    let full = f.valid & (1 << ((f.top() + 7) & 7)) != 0;
                    if full {
                        if self.stack_overflow() {
                            self.cpu.state.fpu.push(F80::INDEFINITE);
                        }
                    } else if self.stack_underflow() {
                        self.cpu.state.fpu.push(F80::INDEFINITE);
                    }
                    return Ok(());
                }
                let v = f.st(rm);
                self.push_with(|_| Some(v));
            }
            1 => self.fxch(rm),
            2 => self.fstack(|_| {}), // FNOP
            3 => self.fstp1(rm),
            4 => match rm {
                0 => self.unary(|_, a| Some(a.neg())), // FCHS
                1 => self.unary(|_, a| Some(a.abs())), // FABS
                4 => {
                    // FTST
                    let z = (F80::ZERO, false);
                    self.compare(0, Some(z), false, 0, false)
                }
                _ => self.fxam(),
            },
            5 => self.fld_const(rm),
            6 => self.x87_d9_f0(rm)?,
            _ => self.x87_d9_f8(rm)?,
        }
        Ok(())
    }

    fn fxam(&mut self) {
        use crate::cpu::fpu::Class::*;
        let f = &mut self.cpu.state.fpu;
        let v = f.st(0);
        let cc = if f.is_empty(0) {
            C3 | C0
        } else {
            match v.class() {
                Unnormal | PseudoNaN => 0,
                QNaN | SNaN => C0,
                Normal => C2,
                Infinity => C2 | C0,
                Zero => C3,
                Denormal | PseudoDenormal => C3 | C2,
            }
        };
        let c1 = if v.sign() { C1 } else { 0 };
        f.set_cc(CC, cc | c1);
    }

    // ----- memory forms -----------------------------------------------------------------

    fn x87_mem(&mut self, i: &Insn) -> Res<()> {
        let reg = i.reg;
        match (i.ext, reg) {
            (0 | 2 | 4 | 6, _) => {
                let kind = [MemArg::F32, MemArg::I32, MemArg::F64, MemArg::I16][i.ext as usize / 2];
                let arg = self.mem_arg(i, kind)?;
                match reg {
                    2 | 3 => self.compare(0, Some(arg), false, reg - 2, false),
                    _ => self.arith(reg, 0, 0, false, Some(arg)),
                }
            }
            (1, 0) => {
                let ea = self.ea(i);
                let b = self.read_mem(i.seg, ea, 4)?;
                self.push_with(|c| c.load_f32(b));
            }
            (5, 0) => {
                let ea = self.ea(i);
                let b = self.mem_u64(i.seg, ea)?;
                self.push_with(|c| c.load_f64(b));
            }
            (3, 5) => {
                let ea = self.ea(i);
                let b = self.mem_bytes10(i.seg, ea)?;
                self.push_with(|_| Some(F80::from_bytes(b)));
            }
            (3, 0) | (7, 0) | (7, 5) => {
                let ea = self.ea(i);
                let v = match (i.ext, reg) {
                    (3, _) => self.read_mem(i.seg, ea, 4)? as i32 as i64,
                    (7, 0) => self.read_mem(i.seg, ea, 2)? as u16 as i16 as i64,
                    _ => self.mem_u64(i.seg, ea)? as i64,
                };
                self.push_with(|_| Some(load_int(v)));
            }
            (7, 4) => {
                let ea = self.ea(i);
                let b = self.mem_bytes10(i.seg, ea)?;
                self.push_with(|_| Some(load_bcd(b)));
            }
            (1, 2 | 3) | (5, 2 | 3) | (3, 7) | (3, 2 | 3) | (7, 2 | 3) | (7, 6 | 7) => {
                self.fst_mem(i)?
            }
            (1, 5) => {
                let ea = self.ea(i);
                let cw = self.read_mem(i.seg, ea, 2)?;
                self.cpu.state.fpu.set_cw(cw as u16); // FLDCW
                self.fpu_es_cleared();
            }
            (1, 7) => {
                let ea = self.ea(i);
                let cw = self.cpu.state.fpu.cw as u32;
                self.write_mem(i.seg, ea, 2, cw)?; // FNSTCW
            }
            (5, 7) => {
                let ea = self.ea(i);
                let s = self.cpu.state.fpu.sw as u32;
                self.write_mem(i.seg, ea, 2, s)?; // FNSTSW m16
            }
            (1, 4) => self.fldenv(i)?,
            (1, 6) => self.fnstenv(i)?,
            (5, 4) => self.frstor(i)?,
            (5, 6) => self.fnsave(i)?,
            _ => return Err(Fault::ex(vector::UD)),
        }
        Ok(())
    }

    /// FST/FSTP m32/m64/m80, FIST/FISTP m16/m32/m64, FBSTP.
    fn fst_mem(&mut self, i: &Insn) -> Res<()> {
        let ea = self.ea(i);
        let (ext, reg) = (i.ext, i.reg);
        let pop = match (ext, reg) {
            (3, 7) | (7, 6) | (7, 7) => true,
            _ => reg == 3,
        };
        let size: u8 = match (ext, reg) {
            (1, _) | (3, 2 | 3) => 4,
            (5, _) | (7, 7) => 8,
            (7, 2 | 3) => 2,
            _ => 10,
        };
        self.probe_write(i.seg, ea, size)?;
        let f = &self.cpu.state.fpu;
        let cw = f.cw;
        let mut ctx = Ctx::new(cw);
        let empty = f.is_empty(0);
        let v = if empty {
            if !self.stack_underflow() {
                return Ok(());
            }
            // Masked stack underflow: store the indefinite of the destination format.
            ctx = Ctx::new(cw | 0x3F);
            F80::INDEFINITE
        } else {
            f.st(0)
        };
        let bytes: Option<Vec<u8>> = match (ext, reg) {
            (1, _) => ctx.store_f32(v).map(|b| b.to_le_bytes().to_vec()),
            (5, _) => ctx.store_f64(v).map(|b| b.to_le_bytes().to_vec()),
            (3, 7) => Some(v.to_bytes().to_vec()),
            (3, _) => ctx
                .store_int(v, 32)
                .map(|b| (b as i32).to_le_bytes().to_vec()),
            (7, 2 | 3) => ctx
                .store_int(v, 16)
                .map(|b| (b as i16).to_le_bytes().to_vec()),
            (7, 7) => ctx.store_int(v, 64).map(|b| b.to_le_bytes().to_vec()),
            _ => ctx.store_bcd(v).map(|b| b.to_vec()),
        };
        if !empty {
            if (ext, reg) == (3, 7) {
                ctx.c1 = false;
            }
            self.commit(&ctx);
        }
        let Some(bytes) = bytes else {
            return Ok(());
        };
        self.mem_write_bytes(i.seg, ea, &bytes)?;
        if pop {
            self.cpu.state.fpu.pop();
        }
        Ok(())
    }
}

/// Undo the quiet bit a masked conversion set (the operand was an SNaN).
fn unquiet(v: F80) -> F80 {
    F80 {
        se: v.se,
        sig: v.sig & !crate::cpu::fpu::float80::QUIET_BIT,
    }
}
