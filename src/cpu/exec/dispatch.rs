//! One handler per [`Op`].

use super::{Exec, Res};
use crate::cpu::decode::{Insn, Op};
use crate::cpu::flags::*;
use crate::cpu::state::SegReg;
use crate::cpu::{vector, Fault};

impl Exec<'_> {
    pub(super) fn exec(&mut self, i: &Insn) -> Res<()> {
        let sz = i.osize;
        match i.op {
            Op::Ud => {
                return Err(if i.ext == 1 {
                    Fault::gp(0)
                } else {
                    Fault::ex(vector::UD)
                })
            }
            Op::AluEG => {
                let src = self.reg(i.reg, sz);
                if i.ext == 7 {
                    let dst = self.read_rm(i, sz)?;
                    self.alu(7, sz, dst, src);
                } else {
                    let l = self.loc(i)?;
                    let dst = self.read_loc(l, sz)?;
                    let r = self.alu(i.ext, sz, dst, src);
                    self.write_loc(l, sz, r)?;
                }
            }
            Op::AluGE => {
                let src = self.read_rm(i, sz)?;
                let dst = self.reg(i.reg, sz);
                let r = self.alu(i.ext, sz, dst, src);
                if i.ext != 7 {
                    self.set_reg(i.reg, sz, r);
                }
            }
            Op::AluEI => {
                let src = i.imm & size_mask(sz);
                if i.ext == 7 {
                    let dst = self.read_rm(i, sz)?;
                    self.alu(7, sz, dst, src);
                } else {
                    let l = self.loc(i)?;
                    let dst = self.read_loc(l, sz)?;
                    let r = self.alu(i.ext, sz, dst, src);
                    self.write_loc(l, sz, r)?;
                }
            }
            Op::TestEG => {
                let a = self.read_rm(i, sz)?;
                let b = self.reg(i.reg, sz);
                self.lazy(LazyOp::Logic, sz, 0, 0, a & b);
            }
            Op::TestEI => {
                let a = self.read_rm(i, sz)?;
                self.lazy(LazyOp::Logic, sz, 0, 0, a & i.imm);
            }
            Op::IncDec => {
                let l = self.loc(i)?;
                let v = self.read_loc(l, sz)?;
                let cf = self.cf();
                let s = &mut self.cpu.state;
                s.flags_raw = (s.flags_raw & !CF) | cf as u32;
                let r = if i.ext == 0 {
                    let r = v.wrapping_add(1);
                    self.lazy(LazyOp::Inc, sz, v, 1, r);
                    r
                } else {
                    let r = v.wrapping_sub(1);
                    self.lazy(LazyOp::Dec, sz, v, 1, r);
                    r
                };
                self.write_loc(l, sz, r)?;
            }
            Op::Not => {
                let l = self.loc(i)?;
                let v = self.read_loc(l, sz)?;
                self.write_loc(l, sz, !v)?;
            }
            Op::Neg => {
                let l = self.loc(i)?;
                let v = self.read_loc(l, sz)?;
                let r = 0u32.wrapping_sub(v);
                self.write_loc(l, sz, r)?;
                self.lazy(LazyOp::Sub, sz, 0, v, r);
            }
            Op::Mul | Op::Imul1 => {
                let v = self.read_rm(i, sz)?;
                self.mul1(sz, v, i.op == Op::Imul1);
            }
            Op::Div | Op::Idiv => {
                let v = self.read_rm(i, sz)?;
                self.div1(sz, v, i.op == Op::Idiv)?;
            }
            Op::ImulGEI => {
                let a = self.read_rm(i, sz)?;
                let r = self.imul2(sz, a, i.imm);
                self.set_reg(i.reg, sz, r);
            }
            Op::ImulGE => {
                let a = self.read_rm(i, sz)?;
                let b = self.reg(i.reg, sz);
                let r = self.imul2(sz, b, a);
                self.set_reg(i.reg, sz, r);
            }
            Op::ShiftI | Op::Shift1 | Op::ShiftCL => {
                let count = match i.op {
                    Op::ShiftI => i.imm,
                    Op::Shift1 => 1,
                    _ => self.cpu.state.gpr[1],
                } & 0x1F;
                let l = self.loc(i)?;
                let v = self.read_loc(l, sz)?;
                if count != 0 {
                    let r = self.shift(i.ext, sz, v, count);
                    self.write_loc(l, sz, r)?;
                }
            }
            Op::Shxd => {
                let count = if i.ext & 1 != 0 {
                    self.cpu.state.gpr[1]
                } else {
                    i.imm
                } & 0x1F;
                let l = self.loc(i)?;
                let v = self.read_loc(l, sz)?;
                let src = self.reg(i.reg, sz);
                if count != 0 {
                    let r = self.shxd(i.ext & 2 != 0, sz, v, src, count);
                    self.write_loc(l, sz, r)?;
                }
            }
            Op::BtEG => {
                let bit = self.reg(i.reg, sz);
                self.bit_op(i, bit, true)?;
            }
            Op::BtEI => self.bit_op(i, i.imm, false)?,
            Op::Bsf | Op::Bsr => {
                let v = self.read_rm(i, sz)?;
                self.bit_scan(i, v);
            }
            Op::Bswap => {
                let v = self.cpu.state.gpr[i.rm as usize];
                // BSWAP with a 16-bit operand is undefined; P6 processors zero the register.
                let r = if sz == 4 {
                    v.swap_bytes()
                } else {
                    v & 0xFFFF_0000
                };
                self.cpu.state.gpr[i.rm as usize] = r;
            }
            Op::MovEG => {
                let v = self.reg(i.reg, sz);
                self.write_rm(i, sz, v)?;
            }
            Op::MovGE => {
                let v = self.read_rm(i, sz)?;
                self.set_reg(i.reg, sz, v);
            }
            Op::MovEI => self.write_rm(i, sz, i.imm)?,
            Op::MovESeg => {
                if i.reg > 5 {
                    return Err(Fault::ex(vector::UD));
                }
                let v = self.cpu.state.seg[i.reg as usize].selector as u32;
                // A register destination takes the operand size (upper bits zero);
                // memory always gets 16 bits.
                if i.is_mem() {
                    self.write_rm(i, 2, v)?;
                } else {
                    self.set_reg(i.rm, sz, v);
                }
            }
            Op::MovSegE => {
                if i.reg > 5 || i.reg == SegReg::Cs as u8 {
                    return Err(Fault::ex(vector::UD));
                }
                let v = self.read_rm(i, 2)?;
                self.load_seg(i.reg, v as u16)?;
                if i.reg == SegReg::Ss as u8 {
                    self.cpu.state.shadow = true;
                    self.cpu.state.db_shadow = true;
                }
            }
            Op::Movzx => {
                let v = self.read_rm(i, i.ext)?;
                self.set_reg(i.reg, sz, v);
            }
            Op::Movsx => {
                let v = self.read_rm(i, i.ext)?;
                let v = if i.ext == 1 {
                    v as u8 as i8 as i32 as u32
                } else {
                    v as u16 as i16 as i32 as u32
                };
                self.set_reg(i.reg, sz, v);
            }
            Op::Lea => {
                let ea = self.ea(i);
                self.set_reg(i.reg, sz, ea);
            }
            Op::Xchg => {
                let l = self.loc(i)?;
                let a = self.read_loc(l, sz)?;
                let b = self.reg(i.reg, sz);
                self.write_loc(l, sz, b)?;
                self.set_reg(i.reg, sz, a);
            }
            Op::Cmov => {
                // The source is read (and may fault) whether or not the move happens; a
                // 32-bit destination is zero-extended... only when the move happens on P6.
                let v = self.read_rm(i, sz)?;
                if self.cond(i.ext) {
                    self.set_reg(i.reg, sz, v);
                }
            }
            Op::Setcc => {
                let v = self.cond(i.ext) as u32;
                self.write_rm(i, 1, v)?;
            }
            Op::Xadd => {
                let l = self.loc(i)?;
                let d = self.read_loc(l, sz)?;
                let s = self.reg(i.reg, sz);
                let r = d.wrapping_add(s);
                self.set_reg(i.reg, sz, d);
                self.write_loc(l, sz, r)?;
                self.lazy(LazyOp::Add, sz, d, s, r);
            }
            Op::Cmpxchg => {
                let l = self.loc(i)?;
                let d = self.read_loc(l, sz)?;
                let acc = self.reg(0, sz);
                let r = acc.wrapping_sub(d);
                if acc & size_mask(sz) == d {
                    let s = self.reg(i.reg, sz);
                    self.write_loc(l, sz, s)?;
                } else {
                    // The destination is written back with its own value (a locked
                    // read-modify-write cycle), then the accumulator is loaded.
                    self.write_loc(l, sz, d)?;
                    self.set_reg(0, sz, d);
                }
                self.lazy(LazyOp::Sub, sz, acc, d, r);
            }
            Op::Cmpxchg8b => {
                let ea = self.ea(i);
                self.probe_write(i.seg, ea, 4)?;
                self.probe_write(i.seg, ea.wrapping_add(4), 4)?;
                let lo = self.read_mem(i.seg, ea, 4)?;
                let hi = self.read_mem(i.seg, ea.wrapping_add(4), 4)?;
                let g = self.cpu.state.gpr;
                let zf = if lo == g[0] && hi == g[2] {
                    self.write_mem(i.seg, ea, 4, g[3])?;
                    self.write_mem(i.seg, ea.wrapping_add(4), 4, g[1])?;
                    true
                } else {
                    self.write_mem(i.seg, ea, 4, lo)?;
                    self.write_mem(i.seg, ea.wrapping_add(4), 4, hi)?;
                    self.cpu.state.gpr[0] = lo;
                    self.cpu.state.gpr[2] = hi;
                    false
                };
                self.set_arith(ZF, if zf { ZF } else { 0 });
            }
            Op::PushE => {
                let v = self.read_rm(i, sz)?;
                self.push(v, sz)?;
            }
            Op::PushI => self.push(i.imm, sz)?,
            Op::PopE => {
                // POP r/m: ESP is incremented before the destination address is computed.
                let v = self.peek(0, sz)?;
                let old = self.cpu.state.gpr[4];
                self.set_sp(self.sp_plus(sz as u32));
                if let Err(e) = self.write_rm(i, sz, v) {
                    self.cpu.state.gpr[4] = old;
                    return Err(e);
                }
            }
            Op::PushSeg => {
                let v = self.cpu.state.seg[i.ext as usize].selector as u32;
                // A 32-bit push of a segment register writes only the low 16 bits on P6.
                let nsp = self.sp_plus((sz as u32).wrapping_neg());
                self.write_mem(SegReg::Ss as u8, nsp, 2, v)?;
                if sz == 4 {
                    self.probe_write(SegReg::Ss as u8, nsp, 4)?;
                }
                self.set_sp(nsp);
            }
            Op::PopSeg => {
                let v = self.peek(0, sz)?;
                // The stack pointer moves on the stack the value came from, before a
                // POP SS switches to a segment of another size.
                let esp = self.cpu.state.gpr[4];
                let new_esp = if self.stack32() {
                    esp.wrapping_add(sz as u32)
                } else {
                    (esp & 0xFFFF_0000) | (esp.wrapping_add(sz as u32) & 0xFFFF)
                };
                self.load_seg(i.ext, v as u16)?;
                self.cpu.state.gpr[4] = new_esp;
                if i.ext == SegReg::Ss as u8 {
                    self.cpu.state.shadow = true;
                    self.cpu.state.db_shadow = true;
                }
            }
            Op::Pusha => {
                let g = self.cpu.state.gpr;
                // The ESP slot holds the register as it was (all 32 bits for PUSHAD, even
                // on a 16-bit stack).
                let sp = if sz == 4 { g[4] } else { g[4] & 0xFFFF };
                // Check the whole frame first so a fault leaves memory untouched.
                let bottom = self.sp_plus((8 * sz as u32).wrapping_neg());
                self.probe_write(SegReg::Ss as u8, bottom, sz)?;
                self.probe_write(
                    SegReg::Ss as u8,
                    self.sp_plus((sz as u32).wrapping_neg()),
                    sz,
                )?;
                for (k, r) in [g[0], g[1], g[2], g[3], sp, g[5], g[6], g[7]]
                    .into_iter()
                    .enumerate()
                {
                    let off = self.sp_plus(((k as u32 + 1) * sz as u32).wrapping_neg());
                    self.write_mem(SegReg::Ss as u8, off, sz, r)?;
                }
                self.set_sp(bottom);
            }
            Op::Popa => {
                let mut v = [0u32; 8];
                for (k, slot) in v.iter_mut().enumerate() {
                    *slot = self.peek(k as u32 * sz as u32, sz)?;
                }
                let top = self.sp_plus(8 * sz as u32);
                for (k, r) in [7u8, 6, 5, 4, 3, 2, 1, 0].into_iter().enumerate() {
                    if r != 4 {
                        self.set_reg(r, sz, v[k]);
                    }
                }
                self.set_sp(top);
            }
            Op::Pushf => self.pushf(sz)?,
            Op::Popf => self.popf(sz)?,
            Op::Enter => self.enter(sz, i.imm & 0xFFFF, i.imm2 & 0x1F)?,
            Op::Leave => {
                let bp = self.cpu.state.gpr[5];
                let sp = if self.stack32() { bp } else { bp & 0xFFFF };
                let v = self.read_mem(SegReg::Ss as u8, sp, sz)?;
                self.set_sp(sp);
                self.set_sp(self.sp_plus(sz as u32));
                self.set_reg(5, sz, v);
            }
            Op::Cbw => {
                let g = &mut self.cpu.state.gpr;
                if sz == 4 {
                    g[0] = g[0] as u16 as i16 as i32 as u32;
                } else {
                    g[0] = (g[0] & 0xFFFF_0000) | (g[0] as u8 as i8 as i16 as u16 as u32);
                }
            }
            Op::Cwd => {
                let g = &mut self.cpu.state.gpr;
                if sz == 4 {
                    g[2] = ((g[0] as i32) >> 31) as u32;
                } else {
                    let v = ((g[0] as u16 as i16) >> 15) as u16 as u32;
                    g[2] = (g[2] & 0xFFFF_0000) | v;
                }
            }
            Op::Lahf => {
                let f = self.flags() & 0xFF;
                self.set_reg(4, 1, (f & (SF | ZF | AF | PF | CF)) | FIXED1);
            }
            Op::Sahf => {
                let ah = self.reg(4, 1);
                self.set_arith(SF | ZF | AF | PF | CF, ah);
            }
            Op::Clc => self.set_arith(CF, 0),
            Op::Stc => self.set_arith(CF, CF),
            Op::Cmc => {
                let cf = self.cf();
                self.set_arith(CF, if cf { 0 } else { CF });
            }
            Op::Cli => self.cli()?,
            Op::Sti => self.sti()?,
            Op::Cld => self.cpu.state.flags_raw &= !DF,
            Op::Std => self.cpu.state.flags_raw |= DF,
            Op::Salc => {
                let v = if self.cf() { 0xFF } else { 0 };
                self.set_reg(0, 1, v);
            }
            Op::Xlat => {
                let bx = if i.asize32() {
                    self.cpu.state.gpr[3]
                } else {
                    self.cpu.state.gpr[3] & 0xFFFF
                };
                let mut off = bx.wrapping_add(self.reg(0, 1));
                if !i.asize32() {
                    off &= 0xFFFF;
                }
                let v = self.read_mem(i.seg, off, 1)?;
                self.set_reg(0, 1, v);
            }
            Op::Daa => self.daa(false),
            Op::Das => self.daa(true),
            Op::Aaa => self.aaa(false),
            Op::Aas => self.aaa(true),
            Op::Aam => self.aam(i.imm as u8)?,
            Op::Aad => self.aad(i.imm as u8),
            Op::Jcc => {
                if self.cond(i.ext) {
                    self.jump_rel(i)?;
                }
            }
            Op::JmpRel => self.jump_rel(i)?,
            Op::JmpE => {
                let t = self.read_rm(i, sz)?;
                self.jump_near(t)?;
            }
            Op::CallRel => {
                let ret = self.cpu.state.eip;
                let t = ret.wrapping_add(i.imm);
                let t = if sz == 2 { t & 0xFFFF } else { t };
                self.check_cs_limit(t)?;
                self.push(ret, sz)?;
                self.cpu.state.eip = t;
            }
            Op::CallE => {
                let t = self.read_rm(i, sz)?;
                let ret = self.cpu.state.eip;
                self.check_cs_limit(t)?;
                self.push(ret, sz)?;
                self.cpu.state.eip = t;
            }
            Op::JmpFar => self.jmp_far(i.imm2 as u16, i.imm, sz)?,
            Op::JmpFarE | Op::CallFarE => {
                let ea = self.ea(i);
                let off = self.read_mem(i.seg, ea, sz)?;
                let sel = self.read_mem(i.seg, ea.wrapping_add(sz as u32), 2)?;
                if i.op == Op::JmpFarE {
                    self.jmp_far(sel as u16, off, sz)?;
                } else {
                    self.call_far(sel as u16, off, sz)?;
                }
            }
            Op::CallFar => self.call_far(i.imm2 as u16, i.imm, sz)?,
            Op::Ret => {
                let t = self.peek(0, sz)?;
                self.check_cs_limit(t)?;
                self.set_sp(self.sp_plus(sz as u32 + (i.imm & 0xFFFF)));
                self.cpu.state.eip = t;
            }
            Op::RetFar => self.ret_far(sz, i.imm & 0xFFFF)?,
            Op::Loop => self.loop_op(i)?,
            Op::Int => self.soft_int(i.imm as u8, true)?,
            Op::Int3 => self.soft_int(vector::BP, false)?,
            Op::Into => {
                if self.cond(0) {
                    self.soft_int(vector::OF, false)?;
                }
            }
            Op::Int1 => {
                let next = self.cpu.state.eip;
                self.interrupt(vector::DB, super::ctrl::IntKind::Exception(None), next)?;
            }
            Op::Iret => self.iret(sz)?,
            Op::Bound => {
                let idx = self.reg(i.reg, sz);
                let ea = self.ea(i);
                let lo = self.read_mem(i.seg, ea, sz)?;
                let hi = self.read_mem(i.seg, ea.wrapping_add(sz as u32), sz)?;
                let (idx, lo, hi) = if sz == 2 {
                    (idx as i16 as i32, lo as i16 as i32, hi as i16 as i32)
                } else {
                    (idx as i32, lo as i32, hi as i32)
                };
                if idx < lo || idx > hi {
                    return Err(Fault::ex(vector::BR));
                }
            }
            Op::Hlt => {
                if self.cpu.state.cpl != 0 {
                    return Err(Fault::gp(0));
                }
                self.cpu.state.halted = true;
            }
            Op::Nop | Op::NopE => {}
            Op::Wait => self.fwait()?,
            Op::In | Op::Out => self.in_out(i)?,
            Op::Ins | Op::Outs | Op::Movs | Op::Cmps | Op::Stos | Op::Lods | Op::Scas => {
                self.string_op(i)?
            }
            Op::Lseg => {
                let ea = self.ea(i);
                let off = self.read_mem(i.seg, ea, sz)?;
                let sel = self.read_mem(i.seg, ea.wrapping_add(sz as u32), 2)?;
                self.load_seg(i.ext, sel as u16)?;
                self.set_reg(i.reg, sz, off);
            }
            Op::Cpuid => self.cpuid(),
            Op::Rdtsc => self.rdtsc()?,
            Op::Rdmsr => self.rdmsr()?,
            Op::Wrmsr => self.wrmsr()?,
            Op::Rdpmc => self.rdpmc()?,
            Op::MovFromCr => self.mov_from_cr(i)?,
            Op::MovToCr => self.mov_to_cr(i)?,
            Op::MovFromDr => self.mov_from_dr(i)?,
            Op::MovToDr => self.mov_to_dr(i)?,
            Op::Clts => {
                self.require_cpl0()?;
                self.cpu.state.cr0 &= !crate::cpu::state::CR0_TS;
            }
            Op::Lmsw => {
                self.require_cpl0()?;
                let v = self.read_rm(i, 2)?;
                self.lmsw(v);
            }
            Op::Smsw => {
                let v = self.cpu.state.cr0;
                if i.is_mem() {
                    self.write_rm(i, 2, v)?;
                } else {
                    self.set_reg(i.rm, sz, v);
                }
            }
            Op::Sgdt | Op::Sidt => {
                let t = if i.op == Op::Sgdt {
                    self.cpu.state.gdtr
                } else {
                    self.cpu.state.idtr
                };
                let ea = self.ea(i);
                self.probe_write(i.seg, ea, 2)?;
                self.probe_write(i.seg, ea.wrapping_add(2), 4)?;
                self.write_mem(i.seg, ea, 2, t.limit)?;
                // With a 16-bit operand size the high base byte is stored as zero (P6).
                let base = if sz == 2 {
                    t.base & 0x00FF_FFFF
                } else {
                    t.base
                };
                self.write_mem(i.seg, ea.wrapping_add(2), 4, base)?;
            }
            Op::Lgdt | Op::Lidt => {
                self.require_cpl0()?;
                let ea = self.ea(i);
                let limit = self.read_mem(i.seg, ea, 2)?;
                let mut base = self.read_mem(i.seg, ea.wrapping_add(2), 4)?;
                if sz == 2 {
                    base &= 0x00FF_FFFF;
                }
                let t = crate::cpu::state::TableReg { base, limit };
                if i.op == Op::Lgdt {
                    self.cpu.state.gdtr = t;
                } else {
                    self.cpu.state.idtr = t;
                }
            }
            Op::Sldt | Op::Str | Op::Lldt | Op::Ltr | Op::Verr | Op::Verw | Op::Lar | Op::Lsl => {
                self.pm_descriptor_op(i)?
            }
            Op::Arpl => self.arpl(i)?,
            Op::Invlpg => {
                self.require_cpl0()?;
                let ea = self.ea(i);
                // The segment is applied but its limit is not checked (INVLPG never faults
                // on the address).
                let lin = self.cpu.state.seg[i.seg as usize].base.wrapping_add(ea);
                self.cpu.tlb.invalidate(lin);
            }
            Op::Wbinvd => self.require_cpl0()?,
            Op::Sysenter => self.sysenter()?,
            Op::Sysexit => self.sysexit()?,
            Op::Fpu => self.fpu(i)?,
            Op::Simd => self.simd(i)?,
        }
        Ok(())
    }
}
