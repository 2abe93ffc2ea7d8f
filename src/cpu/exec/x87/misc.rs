//! The D9 E8..FF group: constants, FPREM/FPREM1, FSQRT, FRNDINT, FSCALE, FXTRACT,
//! FINCSTP/FDECSTP and the transcendental instructions.

use super::super::{Exec, Res};
use crate::cpu::fpu::float80::F80;
use crate::cpu::fpu::sw::{C0, C1, C2, C3, CC};
use crate::cpu::fpu::trans;
use crate::cpu::fpu::Ctx;

/// The constants of FLD1..FLDZ as (exponent of bit 127, 128-bit significand), rounded
/// to 64 bits in the current rounding mode when loaded.
const CONSTS: [(i32, u128); 7] = [
    (0, 1 << 127),                            // 1
    (1, 0xd49a784bcd1b8afe492bf6ff4dafdb4c),  // log2(10)
    (0, 0xb8aa3b295c17f0bbbe87fed0691d3e88),  // log2(e)
    (1, 0xc90fdaa22168c234c4c6628b80dc1cd1),  // pi
    (-2, 0x9a209a84fbcff7988f8959ac0b7c9178), // log10(2)
    (-1, 0xb17217f7d1cf79abc9e3b39803f2f6af), // ln(2)
    (0, 0),                                   // +0
];

impl Exec<'_> {
    /// FLD1 FLDL2T FLDL2E FLDPI FLDLG2 FLDLN2 FLDZ (D9 E8..EE).
    pub(super) fn fld_const(&mut self, rm: u8) {
        let (e, m) = CONSTS[rm as usize];
        self.push_with(|ctx| {
            if m == 0 {
                return Some(F80::ZERO);
            }
            // Loading a constant is exact as far as the status word goes (no PE).
            let mut c = Ctx::new(ctx.cw | 0x3F);
            Some(c.round80(false, e + crate::cpu::fpu::float80::BIAS, m))
        });
    }

    /// D9 F0..F7: F2XM1 FYL2X FPTAN FPATAN FXTRACT FPREM1 FDECSTP FINCSTP.
    pub(super) fn x87_d9_f0(&mut self, rm: u8) -> Res<()> {
        match rm {
            0 => self.unary(trans::f2xm1),
            1 => self.binary_pop(trans::fyl2x),
            2 => self.fptan(),
            3 => self.binary_pop(trans::fpatan),
            4 => self.fxtract(),
            5 => self.fprem(true),
            6 => self.fstack(|f| f.set_top(f.top().wrapping_sub(1))),
            _ => self.fstack(|f| f.set_top(f.top() + 1)),
        }
        Ok(())
    }

    /// D9 F8..FF: FPREM FYL2XP1 FSQRT FSINCOS FRNDINT FSCALE FSIN FCOS.
    pub(super) fn x87_d9_f8(&mut self, rm: u8) -> Res<()> {
        match rm {
            0 => self.fprem(false),
            1 => self.binary_pop(trans::fyl2xp1),
            2 => {
                let f = &self.cpu.state.fpu;
                if f.is_empty(0) {
                    if self.stack_underflow() {
                        self.cpu.state.fpu.set_st(0, F80::INDEFINITE);
                    }
                    return Ok(());
                }
                let mut ctx = Ctx::with_pc(f.cw);
                let r = ctx.sqrt(f.st(0));
                self.commit(&ctx);
                if let Some(v) = r {
                    self.cpu.state.fpu.set_st(0, v);
                }
            }
            3 => self.fsincos(),
            4 => self.unary(|c, a| c.round_int(a)),
            5 => self.binary_keep(|c, a, b| c.scale(a, b)),
            6 => self.trig(trans::fsin),
            _ => self.trig(trans::fcos),
        }
        Ok(())
    }

    /// ST(0) ← op(ST(0), ST(1)) without popping (FSCALE).
    fn binary_keep(&mut self, op: impl FnOnce(&mut Ctx, F80, F80) -> Option<F80>) {
        let f = &self.cpu.state.fpu;
        if f.is_empty(0) || f.is_empty(1) {
            if self.stack_underflow() {
                self.cpu.state.fpu.set_st(0, F80::INDEFINITE);
            }
            return;
        }
        let mut ctx = Ctx::new(f.cw);
        let r = op(&mut ctx, f.st(0), f.st(1));
        self.commit(&ctx);
        if let Some(v) = r {
            self.cpu.state.fpu.set_st(0, v);
        }
    }

    /// ST(1) ← op(ST(0), ST(1)), then pop (FYL2X, FYL2XP1, FPATAN).
    fn binary_pop(&mut self, op: fn(&mut Ctx, F80, F80) -> Option<F80>) {
        let f = &self.cpu.state.fpu;
        if f.is_empty(0) || f.is_empty(1) {
            if self.stack_underflow() {
                let f = &mut self.cpu.state.fpu;
                f.set_st(1, F80::INDEFINITE);
                f.pop();
            }
            return;
        }
        let mut ctx = Ctx::new(f.cw);
        let r = op(&mut ctx, f.st(0), f.st(1));
        self.commit(&ctx);
        if let Some(v) = r {
            let f = &mut self.cpu.state.fpu;
            f.set_st(1, v);
            f.pop();
        }
    }

    /// FPREM / FPREM1: C2 = reduction incomplete; C0 C3 C1 = quotient bits 2, 1, 0.
    fn fprem(&mut self, ieee: bool) {
        let f = &self.cpu.state.fpu;
        if f.is_empty(0) || f.is_empty(1) {
            if self.stack_underflow() {
                let f = &mut self.cpu.state.fpu;
                f.set_st(0, F80::INDEFINITE);
                f.set_cc(C2, 0);
            }
            return;
        }
        let mut ctx = Ctx::new(f.cw);
        let r = ctx.prem(f.st(0), f.st(1), ieee);
        let f = &mut self.cpu.state.fpu;
        f.raise(ctx.flags);
        let Some(r) = r else {
            return;
        };
        f.set_st(0, r.value);
        let q = r.quotient;
        let mut cc = 0;
        if r.complete {
            if q & 4 != 0 {
                cc |= C0;
            }
            if q & 2 != 0 {
                cc |= C3;
            }
            if q & 1 != 0 {
                cc |= C1;
            }
            f.set_cc(CC, cc);
        } else {
            f.set_cc(C2, C2);
        }
    }

    /// FXTRACT: ST(0) ← exponent, then push the significand.
    fn fxtract(&mut self) {
        let f = &self.cpu.state.fpu;
        if f.is_empty(0) {
            if self.stack_underflow() {
                let f = &mut self.cpu.state.fpu;
                f.set_st(0, F80::INDEFINITE);
                f.push(F80::INDEFINITE);
            }
            return;
        }
        if f.valid & (1 << ((f.top() + 7) & 7)) != 0 {
            if self.stack_overflow() {
                let f = &mut self.cpu.state.fpu;
                f.set_st(0, F80::INDEFINITE);
                f.push(F80::INDEFINITE);
            }
            return;
        }
        let mut ctx = Ctx::new(f.cw);
        let r = ctx.extract(f.st(0));
        self.commit(&ctx);
        if let Some((e, s)) = r {
            let f = &mut self.cpu.state.fpu;
            f.set_st(0, e);
            f.push(s);
        }
    }

    /// FSIN / FCOS: C2 = 1 and ST(0) unchanged when |x| >= 2^63.
    fn trig(&mut self, op: fn(&mut Ctx, F80) -> Option<Option<F80>>) {
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
        let f = &mut self.cpu.state.fpu;
        match r {
            Some(Some(v)) => {
                f.set_st(0, v);
                f.set_cc(C2, 0);
            }
            Some(None) => f.set_cc(C2, C2),
            None => {}
        }
    }

    /// FPTAN: ST(0) ← tan(ST(0)), then push 1.0.
    fn fptan(&mut self) {
        self.trig_push(trans::fptan);
    }

    /// FSINCOS: ST(0) ← sin(ST(0)), then push cos.
    fn fsincos(&mut self) {
        self.trig_push(trans::fsincos);
    }

    /// FPTAN / FSINCOS: replace ST(0) and push a second result.
    fn trig_push(&mut self, op: impl FnOnce(&mut Ctx, F80) -> Option<Option<(F80, F80)>>) {
        let f = &self.cpu.state.fpu;
        if f.is_empty(0) {
            if self.stack_underflow() {
                let f = &mut self.cpu.state.fpu;
                f.set_st(0, F80::INDEFINITE);
                f.push(F80::INDEFINITE);
            }
            return;
        }
        if f.valid & (1 << ((f.top() + 7) & 7)) != 0 {
            if self.stack_overflow() {
                let f = &mut self.cpu.state.fpu;
                f.set_st(0, F80::INDEFINITE);
                f.push(F80::INDEFINITE);
            }
            return;
        }
        let mut ctx = Ctx::new(f.cw);
        let r = op(&mut ctx, f.st(0));
        self.commit(&ctx);
        let f = &mut self.cpu.state.fpu;
        match r {
            Some(Some((a, b))) => {
                f.set_st(0, a);
                f.push(b);
                f.set_cc(C2, 0);
            }
            Some(None) => f.set_cc(C2, C2),
            None => {}
        }
    }
}
