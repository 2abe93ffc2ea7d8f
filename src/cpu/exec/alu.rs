//! Integer arithmetic: ALU group, multiply/divide, shifts and rotates, bit operations, BCD.
//!
//! Where the manuals leave flags undefined we produce what P6-class processors are
//! observed to produce where that is known, and otherwise a stable choice documented
//! at the operation; tests mask undefined flags.

use super::{Exec, Res};
use crate::cpu::decode::Insn;
use crate::cpu::flags::*;
use crate::cpu::{vector, Fault};

#[inline]
fn msb(v: u32, sz: u8) -> bool {
    v >> (sz as u32 * 8 - 1) & 1 != 0
}

impl Exec<'_> {
    /// ADD OR ADC SBB AND SUB XOR CMP; returns the (masked) result and records flags.
    #[inline]
    pub(super) fn alu(&mut self, op: u8, sz: u8, d: u32, s: u32) -> u32 {
        let (kind, r) = match op {
            0 => (LazyOp::Add, d.wrapping_add(s)),
            1 => (LazyOp::Logic, d | s),
            2 => {
                let c = self.cf() as u32;
                (LazyOp::Add, d.wrapping_add(s).wrapping_add(c))
            }
            3 => {
                let c = self.cf() as u32;
                (LazyOp::Sub, d.wrapping_sub(s).wrapping_sub(c))
            }
            4 => (LazyOp::Logic, d & s),
            5 | 7 => (LazyOp::Sub, d.wrapping_sub(s)),
            _ => (LazyOp::Logic, d ^ s),
        };
        self.lazy(kind, sz, d, s, r);
        r & size_mask(sz)
    }

    /// One-operand MUL / IMUL into AX, DX:AX or EDX:EAX.
    pub(super) fn mul1(&mut self, sz: u8, v: u32, signed: bool) {
        let a = self.reg(0, sz);
        let (lo, hi, overflow) = match (sz, signed) {
            (1, false) => {
                let r = a * v;
                self.set_reg(0, 2, r);
                (r & 0xFF, r >> 8, r >> 8 != 0)
            }
            (1, true) => {
                let r = (a as u8 as i8 as i32 * v as u8 as i8 as i32) as u32 & 0xFFFF;
                self.set_reg(0, 2, r);
                (r & 0xFF, r >> 8, r as u16 as i16 != r as u8 as i8 as i16)
            }
            (2, false) => {
                let r = a * v;
                self.set_reg(0, 2, r);
                self.set_reg(2, 2, r >> 16);
                (r & 0xFFFF, r >> 16, r >> 16 != 0)
            }
            (2, true) => {
                let r = (a as u16 as i16 as i32 * v as u16 as i16 as i32) as u32;
                self.set_reg(0, 2, r);
                self.set_reg(2, 2, r >> 16);
                (r & 0xFFFF, r >> 16, r as i32 != r as u16 as i16 as i32)
            }
            (_, false) => {
                let r = a as u64 * v as u64;
                self.cpu.state.gpr[0] = r as u32;
                self.cpu.state.gpr[2] = (r >> 32) as u32;
                (r as u32, (r >> 32) as u32, r >> 32 != 0)
            }
            (_, true) => {
                let r = (a as i32 as i64 * v as i32 as i64) as u64;
                self.cpu.state.gpr[0] = r as u32;
                self.cpu.state.gpr[2] = (r >> 32) as u32;
                (r as u32, (r >> 32) as u32, r as i64 != r as i32 as i64)
            }
        };
        let _ = hi;
        self.set_mul_flags(sz, lo, overflow);
    }

    /// CF=OF=overflow; SF/ZF/PF (undefined) from the low half as P6 does; AF cleared.
    fn set_mul_flags(&mut self, sz: u8, lo: u32, overflow: bool) {
        let mut f = szp(lo, sz);
        if overflow {
            f |= CF | OF;
        }
        self.set_arith(ARITH, f);
    }

    /// Two- and three-operand IMUL: truncated product.
    pub(super) fn imul2(&mut self, sz: u8, a: u32, b: u32) -> u32 {
        let (r, overflow) = if sz == 2 {
            let p = a as u16 as i16 as i32 * b as u16 as i16 as i32;
            (p as u32 & 0xFFFF, p != p as i16 as i32)
        } else {
            let p = a as i32 as i64 * b as i32 as i64;
            (p as u32, p != p as i32 as i64)
        };
        self.set_mul_flags(sz, r, overflow);
        r
    }

    /// DIV / IDIV. Flags are undefined and left unchanged.
    pub(super) fn div1(&mut self, sz: u8, v: u32, signed: bool) -> Res<()> {
        let de = Fault::ex(vector::DE);
        if v & size_mask(sz) == 0 {
            return Err(de);
        }
        let g = self.cpu.state.gpr;
        match (sz, signed) {
            (1, false) => {
                let n = g[0] & 0xFFFF;
                let q = n / v;
                if q > 0xFF {
                    return Err(de);
                }
                self.set_reg(0, 2, (n % v) << 8 | q);
            }
            (1, true) => {
                let n = g[0] as u16 as i16 as i32;
                let d = v as u8 as i8 as i32;
                let q = n / d;
                if q != q as i8 as i32 {
                    return Err(de);
                }
                let r = n % d;
                self.set_reg(0, 2, ((r as u32 & 0xFF) << 8) | (q as u32 & 0xFF));
            }
            (2, false) => {
                let n = (g[2] & 0xFFFF) << 16 | (g[0] & 0xFFFF);
                let q = n / v;
                if q > 0xFFFF {
                    return Err(de);
                }
                self.set_reg(0, 2, q);
                self.set_reg(2, 2, n % v);
            }
            (2, true) => {
                let n = ((g[2] & 0xFFFF) << 16 | (g[0] & 0xFFFF)) as i32 as i64;
                let d = v as u16 as i16 as i64;
                let q = n / d;
                if q != q as i16 as i64 {
                    return Err(de);
                }
                self.set_reg(0, 2, q as u32);
                self.set_reg(2, 2, (n % d) as u32);
            }
            (_, false) => {
                let n = (g[2] as u64) << 32 | g[0] as u64;
                let q = n / v as u64;
                if q > 0xFFFF_FFFF {
                    return Err(de);
                }
                self.cpu.state.gpr[0] = q as u32;
                self.cpu.state.gpr[2] = (n % v as u64) as u32;
            }
            (_, true) => {
                let n = ((g[2] as u64) << 32 | g[0] as u64) as i64 as i128;
                let d = v as i32 as i128;
                let q = n / d;
                if q != q as i32 as i128 {
                    return Err(de);
                }
                self.cpu.state.gpr[0] = q as u32;
                self.cpu.state.gpr[2] = (n % d) as u32;
            }
        }
        Ok(())
    }

    /// Shift or rotate `d` (size `sz`) by `count` (1..=31). Sets flags; returns the result.
    pub(super) fn shift(&mut self, kind: u8, sz: u8, d: u32, count: u32) -> u32 {
        let bits = sz as u32 * 8;
        let m = size_mask(sz);
        let d = d & m;
        let flags = self.flags();
        let cf_in = flags & CF;
        match kind {
            0 | 1 => {
                // ROL / ROR: only CF and OF change.
                let c = count % bits;
                let r = if kind == 0 {
                    ((d << c) | (d >> ((bits - c) % bits))) & m
                } else {
                    ((d >> c) | (d << ((bits - c) % bits))) & m
                };
                let (cf, of) = if kind == 0 {
                    let cf = r & 1 != 0;
                    (cf, msb(r, sz) ^ cf)
                } else {
                    (msb(r, sz), msb(r, sz) ^ msb(r << 1, sz))
                };
                self.set_arith(CF | OF, (cf as u32) | if of { OF } else { 0 });
                r
            }
            2 | 3 => {
                // RCL / RCR through CF: a (bits+1)-bit rotation.
                let c = if sz == 4 { count } else { count % (bits + 1) };
                let wide = (d as u64) | ((cf_in as u64) << bits);
                let n = bits as u64 + 1;
                let wm = (1u64 << n) - 1;
                let c64 = c as u64;
                let rot = if kind == 2 {
                    ((wide << c64) | (wide >> ((n - c64) % n))) & wm
                } else {
                    ((wide >> c64) | (wide << ((n - c64) % n))) & wm
                };
                let r = (rot as u32) & m;
                let cf = (rot >> bits) & 1 != 0;
                let of = if kind == 2 {
                    msb(r, sz) ^ cf
                } else {
                    msb(r, sz) ^ msb(r << 1, sz)
                };
                self.set_arith(CF | OF, (cf as u32) | if of { OF } else { 0 });
                r
            }
            4 | 6 => {
                // SHL / SAL
                let r = if count >= 32 { 0 } else { (d << count) & m };
                let cf = count <= bits && (d >> (bits - count)) & 1 != 0;
                let of = msb(r, sz) ^ cf;
                let f = szp(r, sz) | cf as u32 | if of { OF } else { 0 };
                self.set_arith(ARITH, f);
                r
            }
            5 => {
                // SHR
                let r = if count >= bits { 0 } else { d >> count };
                let cf = count <= bits && (d >> (count - 1)) & 1 != 0;
                let of = count == 1 && msb(d, sz);
                let f = szp(r, sz) | cf as u32 | if of { OF } else { 0 };
                self.set_arith(ARITH, f);
                r
            }
            _ => {
                // SAR
                let sd = match sz {
                    1 => d as u8 as i8 as i32,
                    2 => d as u16 as i16 as i32,
                    _ => d as i32,
                };
                let c = count.min(31);
                let r = (sd >> c) as u32 & m;
                let cf = (sd >> (count.min(32) - 1).min(31)) & 1 != 0;
                let f = szp(r, sz) | cf as u32;
                self.set_arith(ARITH, f);
                r
            }
        }
    }

    /// SHLD / SHRD by `count` (1..=31). 16-bit counts above 16 behave as on P6:
    /// the operand is treated as dst:src:dst.
    pub(super) fn shxd(&mut self, right: bool, sz: u8, d: u32, s: u32, count: u32) -> u32 {
        let c = count as u64;
        let (r, cf) = if sz == 4 {
            if right {
                let wide = (s as u64) << 32 | d as u64;
                ((wide >> c) as u32, (wide >> (c - 1)) & 1 != 0)
            } else {
                let wide = (d as u64) << 32 | s as u64;
                ((wide << c >> 32) as u32, (wide >> (64 - c)) & 1 != 0)
            }
        } else {
            let (d, s) = (d as u64 & 0xFFFF, s as u64 & 0xFFFF);
            if right {
                let wide = d << 32 | s << 16 | d;
                ((wide >> c) as u32 & 0xFFFF, (wide >> (c - 1)) & 1 != 0)
            } else {
                let wide = d << 32 | s << 16 | d;
                (
                    ((wide << c) >> 32) as u32 & 0xFFFF,
                    (wide >> (48 - c)) & 1 != 0,
                )
            }
        };
        let of = msb(r, sz) ^ msb(d, sz);
        let f = szp(r, sz) | cf as u32 | if of { OF } else { 0 };
        self.set_arith(ARITH, f);
        r
    }

    /// BT/BTS/BTR/BTC (`i.ext`). `reg_offset`: the bit offset came from a register and may
    /// address memory outside the operand.
    pub(super) fn bit_op(&mut self, i: &Insn, offset: u32, reg_offset: bool) -> Res<()> {
        let sz = i.osize;
        let bits = sz as u32 * 8;
        let bit = offset & (bits - 1);
        let modify = i.ext != 0;
        let loc = if i.is_mem() {
            let mut ea = self.ea(i);
            if reg_offset {
                let so = if sz == 2 {
                    offset as u16 as i16 as i32
                } else {
                    offset as i32
                };
                let delta = (so >> (if sz == 2 { 4 } else { 5 })) * sz as i32;
                ea = ea.wrapping_add(delta as u32);
                if !i.asize32() {
                    ea &= 0xFFFF;
                }
            }
            if modify {
                self.probe_write(i.seg, ea, sz)?;
            }
            super::Loc::Mem(i.seg, ea)
        } else {
            super::Loc::Reg(i.rm)
        };
        let v = self.read_loc(loc, sz)?;
        let cf = (v >> bit) & 1;
        let nv = match i.ext {
            1 => v | (1 << bit),
            2 => v & !(1 << bit),
            3 => v ^ (1 << bit),
            _ => v,
        };
        if modify {
            self.write_loc(loc, sz, nv)?;
        }
        self.set_arith(CF, cf);
        Ok(())
    }

    /// BSF / BSR: ZF=1 and the destination unchanged when the source is zero.
    pub(super) fn bit_scan(&mut self, i: &Insn, v: u32) {
        let v = v & size_mask(i.osize);
        if v == 0 {
            self.set_arith(ZF, ZF);
            return;
        }
        let idx = if i.op == crate::cpu::decode::Op::Bsf {
            v.trailing_zeros()
        } else {
            31 - v.leading_zeros()
        };
        self.set_reg(i.reg, i.osize, idx);
        self.set_arith(ZF, 0);
    }

    /// DAA (`sub` = false) / DAS (`sub` = true).
    pub(super) fn daa(&mut self, sub: bool) {
        let f = self.flags();
        let old_al = self.reg(0, 1);
        let old_cf = f & CF != 0;
        let mut al = old_al;
        let mut cf = false;
        let mut af = false;
        if al & 0xF > 9 || f & AF != 0 {
            if sub {
                cf = old_cf || al < 6;
                al = al.wrapping_sub(6) & 0xFF;
            } else {
                cf = old_cf || al + 6 > 0xFF;
                al = (al + 6) & 0xFF;
            }
            af = true;
        }
        if old_al > 0x99 || old_cf {
            al = if sub {
                al.wrapping_sub(0x60) & 0xFF
            } else {
                (al + 0x60) & 0xFF
            };
            cf = true;
        } else if !sub {
            cf = false;
        }
        self.set_reg(0, 1, al);
        // OF is undefined; P6 reports the signed overflow of the adjustment.
        let of = if sub {
            old_al & 0x80 != 0 && al & 0x80 == 0
        } else {
            old_al & 0x80 == 0 && al & 0x80 != 0
        };
        let nf = szp(al, 1) | cf as u32 | if af { AF } else { 0 } | if of { OF } else { 0 };
        self.set_arith(ARITH, nf);
    }

    /// AAA (`sub` = false) / AAS (`sub` = true).
    pub(super) fn aaa(&mut self, sub: bool) {
        let f = self.flags();
        let ax = self.reg(0, 2);
        let al = ax & 0xFF;
        let adjust = al & 0xF > 9 || f & AF != 0;
        let nax = if adjust {
            if sub {
                // AX ← AX − 6; AH ← AH − 1 (the borrow from AL propagates).
                let t = ax.wrapping_sub(6) & 0xFFFF;
                (((t >> 8).wrapping_sub(1) & 0xFF) << 8) | (t & 0xFF)
            } else {
                ax.wrapping_add(0x106) & 0xFFFF
            }
        } else {
            ax
        };
        let nax = nax & 0xFF0F;
        self.set_reg(0, 2, nax);
        let mut nf = szp(nax & 0xFF, 1);
        if adjust {
            nf |= AF | CF;
        }
        self.set_arith(ARITH, nf);
    }

    pub(super) fn aam(&mut self, base: u8) -> Res<()> {
        if base == 0 {
            return Err(Fault::ex(vector::DE));
        }
        let al = self.reg(0, 1);
        let (ah, al) = (al / base as u32, al % base as u32);
        self.set_reg(0, 2, ah << 8 | al);
        self.set_arith(ARITH, szp(al, 1));
        Ok(())
    }

    pub(super) fn aad(&mut self, base: u8) {
        let ax = self.reg(0, 2);
        let prod = ((ax >> 8) * base as u32) & 0xFF;
        let al = ax & 0xFF;
        let r = (al + prod) & 0xFF;
        self.set_reg(0, 2, r);
        // Flags as for the byte addition AL + AH*imm (SF/ZF/PF defined; the rest as P6).
        self.lazy(LazyOp::Add, 1, al, prod, r);
    }
}
