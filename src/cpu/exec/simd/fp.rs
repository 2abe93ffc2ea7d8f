//! SSE/SSE2 floating-point arithmetic, comparisons and conversions.
//!
//! [`Exec::simd`] routes here every form of these opcodes (with the mandatory prefix in
//! `i.imm2`: `PFX_NONE` packed single, `PFX_66` packed double, `PFX_F3` scalar single,
//! `PFX_F2` scalar double; the decoder has already rejected combinations that do not
//! exist):
//!
//! - 0F 51-53, 58-5F: SQRT, RSQRT, RCP, ADD, MUL, CVT (5A PS<->PD/SS<->SD,
//!   5B DQ<->PS), SUB, MIN, DIV, MAX;
//! - 0F C2 CMPccPS/PD/SS/SD (imm8 in `i.imm`), 0F 2E UCOMISS/SD, 0F 2F COMISS/SD;
//! - 0F 2A, 2C, 2D (CVT[T] between integers, MMX registers and XMM) and 0F E6
//!   (CVTTPD2DQ, CVTDQ2PD, CVTPD2DQ).
//!
//! When `sse_fp` is called, [`Exec::sse_check`] has passed (CR0.EM = 0, CR4.OSFXSR = 1,
//! CR0.TS = 0). The interface it uses from the rest of the SIMD unit (`super`):
//!
//! - `self.xmm(r) -> V` and `self.set_xmm(r, v)`: XMM register `r` as 16 little-endian
//!   bytes ([`V`]);
//! - `self.xmm_rm(i, n, align) -> Res<V>`: the r/m operand, the whole register or `n`
//!   (4, 8 or 16) bytes of memory zero-extended; `Align::A16` for 16-byte packed
//!   operands (#GP(0) when misaligned), `Align::Any` for scalar and 8-byte ones;
//! - `self.mxcsr()` and `self.set_mxcsr(v) -> Res<()>` (#GP(0) on bits outside
//!   `MXCSR_MASK`), or `self.cpu.state.sse.mxcsr` directly to set exception flags;
//! - `self.simd_fp_fault() -> Fault`: the fault for an unmasked exception, #XM with
//!   CR4.OSXMMEXCPT = 1, #UD without (raise it before writing any result);
//! - MMX operands of CVTPI2PS/PD and CVT[T]PS2PI/PD2PI: `self.mm(r)`,
//!   `self.set_mm(r, v)`, `self.mm_src(i)` (register or m64), and the MMX-transition
//!   rules `self.fpu_pending()?` (pending x87 exception: #MF / FERR#) and
//!   `self.mmx_enter()` (TOP = 0, every tag valid);
//! - general registers and r/m32: `self.reg(r, 4)`, `self.set_reg(r, 4, v)`,
//!   `self.read_rm(i, 4)`; EFLAGS for COMISS: `self.set_arith(mask, flags)`.
//!
//! The numerics are [`crate::cpu::softfloat`] (integer-only). The instruction rules:
//!
//! - every lane is evaluated; [`softfloat::finish`] turns the lanes' exception flags
//!   into the flags recorded in MXCSR and the decision to fault: an unmasked
//!   pre-computation exception (IE, DE, ZE) in any lane records only the
//!   pre-computation flags; otherwise all flags are recorded and any unmasked one
//!   faults. A faulting instruction writes no destination (XMM, MMX, general register
//!   or EFLAGS); its MXCSR flags are set in both the #XM and the #UD case;
//! - scalar forms leave the upper lanes of the destination unchanged; CVTPD2PS,
//!   CVTPD2DQ and CVTTPD2DQ zero the upper quadword;
//! - the forms with an MMX register operand (CVTPI2PS/PD xmm, mm; CVT[T]PS2PI and
//!   CVT[T]PD2PI) report a pending x87 exception first and make the MMX transition
//!   (TOP = 0, all tags valid), even when they then fault with #XM; CVTPI2PS/PD with a
//!   memory source do neither.
//!
//! [`softfloat::finish`]: crate::cpu::softfloat::finish

use super::super::{Exec, Res};
use crate::cpu::decode::{Insn, PFX_66, PFX_F3, PFX_NONE};
use crate::cpu::flags::{AF, CF, OF, PF, SF, ZF};
use crate::cpu::softfloat::{self as sf, Env, Fmt, F32, F64};
use crate::cpu::{vector, Fault};

use super::{Align, V};

type BinOp = fn(&mut Env, Fmt, u64, u64) -> u64;

#[inline]
fn lane(v: &V, f: Fmt, k: usize) -> u64 {
    if f == F32 {
        u32::from_le_bytes(v[4 * k..4 * k + 4].try_into().expect("4 bytes")) as u64
    } else {
        u64::from_le_bytes(v[8 * k..8 * k + 8].try_into().expect("8 bytes"))
    }
}

#[inline]
fn set_lane(v: &mut V, f: Fmt, k: usize, x: u64) {
    if f == F32 {
        v[4 * k..4 * k + 4].copy_from_slice(&(x as u32).to_le_bytes());
    } else {
        v[8 * k..8 * k + 8].copy_from_slice(&x.to_le_bytes());
    }
}

#[inline]
fn dword(v: &V, k: usize) -> u32 {
    lane(v, F32, k) as u32
}

/// Format, lane count, memory operand size and alignment of an arithmetic form.
fn shape(pfx: u8) -> (Fmt, usize, u8, Align) {
    match pfx {
        PFX_NONE => (F32, 4, 16, Align::A16),
        PFX_66 => (F64, 2, 16, Align::A16),
        PFX_F3 => (F32, 1, 4, Align::Any),
        _ => (F64, 1, 8, Align::Any),
    }
}

impl Exec<'_> {
    /// Execute an SSE/SSE2 floating-point instruction (see the module documentation).
    pub(super) fn sse_fp(&mut self, i: &Insn) -> Res<()> {
        match i.ext {
            0x58 => self.fp_binary(i, sf::add),
            0x59 => self.fp_binary(i, sf::mul),
            0x5C => self.fp_binary(i, sf::sub),
            0x5D => self.fp_binary(i, sf::min),
            0x5E => self.fp_binary(i, sf::div),
            0x5F => self.fp_binary(i, sf::max),
            0x51 => self.fp_sqrt(i),
            0x52 | 0x53 => self.fp_approx(i),
            0xC2 => self.fp_cmp(i),
            0x2E | 0x2F => self.fp_comis(i),
            0x5A => self.cvt_float_float(i),
            0x5B => self.cvt_5b(i),
            0xE6 => self.cvt_e6(i),
            0x2A => self.cvt_from_int(i),
            0x2C | 0x2D => self.cvt_to_int(i),
            _ => Err(Fault::ex(vector::UD)),
        }
    }

    /// Record the exception flags of an instruction's lanes in MXCSR; Err with #XM/#UD if
    /// one is unmasked (the caller then writes nothing).
    fn fp_commit(&mut self, mx: u32, lane_flags: &[u32]) -> Res<()> {
        let o = sf::finish(mx, lane_flags);
        self.cpu.state.sse.mxcsr |= o.flags;
        if o.fault {
            return Err(self.simd_fp_fault());
        }
        Ok(())
    }

    /// ADD/SUB/MUL/DIV/MIN/MAX PS/PD/SS/SD xmm, xmm/mem.
    fn fp_binary(&mut self, i: &Insn, op: BinOp) -> Res<()> {
        let (f, n, size, align) = shape(i.imm2 as u8);
        let src = self.xmm_rm(i, size, align)?;
        let mut out = self.xmm(i.reg);
        let mx = self.mxcsr();
        let mut flags = [0u32; 4];
        for (k, fl) in flags.iter_mut().enumerate().take(n) {
            let mut env = Env::new(mx);
            let r = op(&mut env, f, lane(&out, f, k), lane(&src, f, k));
            set_lane(&mut out, f, k, r);
            *fl = env.flags;
        }
        self.fp_commit(mx, &flags[..n])?;
        self.set_xmm(i.reg, out);
        Ok(())
    }

    /// SQRT PS/PD/SS/SD.
    fn fp_sqrt(&mut self, i: &Insn) -> Res<()> {
        let (f, n, size, align) = shape(i.imm2 as u8);
        let src = self.xmm_rm(i, size, align)?;
        let mut out = self.xmm(i.reg);
        let mx = self.mxcsr();
        let mut flags = [0u32; 4];
        for (k, fl) in flags.iter_mut().enumerate().take(n) {
            let mut env = Env::new(mx);
            set_lane(&mut out, f, k, sf::sqrt(&mut env, f, lane(&src, f, k)));
            *fl = env.flags;
        }
        self.fp_commit(mx, &flags[..n])?;
        self.set_xmm(i.reg, out);
        Ok(())
    }

    /// RSQRTPS/SS (52), RCPPS/SS (53): table approximations, no exceptions, MXCSR not
    /// consulted.
    fn fp_approx(&mut self, i: &Insn) -> Res<()> {
        let (f, n, size, align) = shape(i.imm2 as u8);
        if f != F32 {
            return Err(Fault::ex(vector::UD));
        }
        let src = self.xmm_rm(i, size, align)?;
        let mut out = self.xmm(i.reg);
        let op = if i.ext == 0x52 {
            sf::rsqrt32
        } else {
            sf::rcp32
        };
        for k in 0..n {
            set_lane(&mut out, f, k, op(dword(&src, k)) as u64);
        }
        self.set_xmm(i.reg, out);
        Ok(())
    }

    /// CMPPS/PD/SS/SD xmm, xmm/mem, imm8: predicate imm8[2:0], all-ones or zero lanes.
    fn fp_cmp(&mut self, i: &Insn) -> Res<()> {
        let (f, n, size, align) = shape(i.imm2 as u8);
        let src = self.xmm_rm(i, size, align)?;
        let mut out = self.xmm(i.reg);
        let mx = self.mxcsr();
        let pred = (i.imm & 7) as u8;
        let ones = if f == F32 { u32::MAX as u64 } else { u64::MAX };
        let mut flags = [0u32; 4];
        for (k, fl) in flags.iter_mut().enumerate().take(n) {
            let mut env = Env::new(mx);
            let t = sf::cmp(&mut env, f, lane(&out, f, k), lane(&src, f, k), pred);
            set_lane(&mut out, f, k, if t { ones } else { 0 });
            *fl = env.flags;
        }
        self.fp_commit(mx, &flags[..n])?;
        self.set_xmm(i.reg, out);
        Ok(())
    }

    /// UCOMISS/UCOMISD (2E) and COMISS/COMISD (2F): ZF, PF, CF from the comparison, OF,
    /// SF, AF cleared.
    fn fp_comis(&mut self, i: &Insn) -> Res<()> {
        let f = if i.imm2 as u8 == PFX_66 { F64 } else { F32 };
        let size = if f == F32 { 4 } else { 8 };
        let src = self.xmm_rm(i, size, Align::Any)?;
        let a = lane(&self.xmm(i.reg), f, 0);
        let mx = self.mxcsr();
        let mut env = Env::new(mx);
        let o = sf::comi(&mut env, f, a, lane(&src, f, 0), i.ext == 0x2F);
        self.fp_commit(mx, &[env.flags])?;
        let (z, p, c) = o.zf_pf_cf();
        let fl = if z { ZF } else { 0 } | if p { PF } else { 0 } | if c { CF } else { 0 };
        self.set_arith(ZF | PF | CF | OF | SF | AF, fl);
        Ok(())
    }

    /// 0F 5A: CVTPS2PD, CVTPD2PS, CVTSS2SD, CVTSD2SS.
    fn cvt_float_float(&mut self, i: &Insn) -> Res<()> {
        let pfx = i.imm2 as u8;
        let (from, to, n, size, align) = match pfx {
            PFX_NONE => (F32, F64, 2, 8, Align::Any),
            PFX_66 => (F64, F32, 2, 16, Align::A16),
            PFX_F3 => (F32, F64, 1, 4, Align::Any),
            _ => (F64, F32, 1, 8, Align::Any),
        };
        let src = self.xmm_rm(i, size, align)?;
        let mut out = self.xmm(i.reg);
        if pfx == PFX_66 {
            out[8..].fill(0);
        }
        let mx = self.mxcsr();
        let mut flags = [0u32; 2];
        for (k, fl) in flags.iter_mut().enumerate().take(n) {
            let mut env = Env::new(mx);
            let r = sf::f2f(&mut env, from, to, lane(&src, from, k));
            set_lane(&mut out, to, k, r);
            *fl = env.flags;
        }
        self.fp_commit(mx, &flags[..n])?;
        self.set_xmm(i.reg, out);
        Ok(())
    }

    /// 0F 5B: CVTDQ2PS (none), CVTPS2DQ (66), CVTTPS2DQ (F3); all xmm/m128.
    fn cvt_5b(&mut self, i: &Insn) -> Res<()> {
        let pfx = i.imm2 as u8;
        let src = self.xmm_rm(i, 16, Align::A16)?;
        let mx = self.mxcsr();
        let mut out = [0u8; 16];
        let mut flags = [0u32; 4];
        for (k, fl) in flags.iter_mut().enumerate() {
            let mut env = Env::new(mx);
            let x = dword(&src, k);
            let r = match pfx {
                PFX_NONE => sf::i32_to_f(&mut env, F32, x as i32) as u32,
                PFX_66 => sf::f2i32(&mut env, F32, x as u64, false),
                _ => sf::f2i32(&mut env, F32, x as u64, true),
            };
            set_lane(&mut out, F32, k, r as u64);
            *fl = env.flags;
        }
        self.fp_commit(mx, &flags)?;
        self.set_xmm(i.reg, out);
        Ok(())
    }

    /// 0F E6: CVTDQ2PD xmm, xmm/m64 (F3); CVTPD2DQ (F2) and CVTTPD2DQ (66) xmm, xmm/m128,
    /// which zero the upper quadword.
    fn cvt_e6(&mut self, i: &Insn) -> Res<()> {
        let pfx = i.imm2 as u8;
        let mx = self.mxcsr();
        let mut out = [0u8; 16];
        let mut flags = [0u32; 2];
        if pfx == PFX_F3 {
            let src = self.xmm_rm(i, 8, Align::Any)?;
            for k in 0..2 {
                let mut env = Env::new(mx);
                let r = sf::i32_to_f(&mut env, F64, dword(&src, k) as i32);
                set_lane(&mut out, F64, k, r);
            }
        } else {
            let src = self.xmm_rm(i, 16, Align::A16)?;
            for (k, fl) in flags.iter_mut().enumerate() {
                let mut env = Env::new(mx);
                let r = sf::f2i32(&mut env, F64, lane(&src, F64, k), pfx == PFX_66);
                set_lane(&mut out, F32, k, r as u64);
                *fl = env.flags;
            }
            self.fp_commit(mx, &flags)?;
        }
        self.set_xmm(i.reg, out);
        Ok(())
    }

    /// 0F 2A: CVTPI2PS xmm, mm/m64 (none); CVTPI2PD xmm, mm/m64 (66); CVTSI2SS (F3) and
    /// CVTSI2SD (F2) xmm, r/m32.
    fn cvt_from_int(&mut self, i: &Insn) -> Res<()> {
        let pfx = i.imm2 as u8;
        let mx = self.mxcsr();
        let mut out = self.xmm(i.reg);
        match pfx {
            PFX_NONE | PFX_66 => {
                let v = if i.is_mem() {
                    let ea = self.ea(i);
                    self.read_m64(i.seg, ea)?
                } else {
                    self.fpu_pending()?;
                    self.mmx_enter();
                    self.mm(i.rm)
                };
                let ints = [v as u32 as i32, (v >> 32) as u32 as i32];
                let f = if pfx == PFX_NONE { F32 } else { F64 };
                let mut flags = [0u32; 2];
                for (k, fl) in flags.iter_mut().enumerate() {
                    let mut env = Env::new(mx);
                    set_lane(&mut out, f, k, sf::i32_to_f(&mut env, f, ints[k]));
                    *fl = env.flags;
                }
                self.fp_commit(mx, &flags)?;
            }
            _ => {
                let x = self.read_rm(i, 4)? as i32;
                let f = if pfx == PFX_F3 { F32 } else { F64 };
                let mut env = Env::new(mx);
                set_lane(&mut out, f, 0, sf::i32_to_f(&mut env, f, x));
                self.fp_commit(mx, &[env.flags])?;
            }
        }
        self.set_xmm(i.reg, out);
        Ok(())
    }

    /// 0F 2C (truncating) and 2D: CVT[T]PS2PI mm, xmm/m64 (none); CVT[T]PD2PI mm,
    /// xmm/m128 (66); CVT[T]SS2SI r32, xmm/m32 (F3); CVT[T]SD2SI r32, xmm/m64 (F2).
    fn cvt_to_int(&mut self, i: &Insn) -> Res<()> {
        let pfx = i.imm2 as u8;
        let truncate = i.ext == 0x2C;
        let (f, n, size, align) = match pfx {
            PFX_NONE => (F32, 2, 8, Align::Any),
            PFX_66 => (F64, 2, 16, Align::A16),
            PFX_F3 => (F32, 1, 4, Align::Any),
            _ => (F64, 1, 8, Align::Any),
        };
        let to_mmx = matches!(pfx, PFX_NONE | PFX_66);
        if to_mmx {
            self.fpu_pending()?;
        }
        let src = self.xmm_rm(i, size, align)?;
        if to_mmx {
            self.mmx_enter();
        }
        let mx = self.mxcsr();
        let mut r = [0u32; 2];
        let mut flags = [0u32; 2];
        for k in 0..n {
            let mut env = Env::new(mx);
            r[k] = sf::f2i32(&mut env, f, lane(&src, f, k), truncate);
            flags[k] = env.flags;
        }
        self.fp_commit(mx, &flags[..n])?;
        if to_mmx {
            self.set_mm(i.reg, r[0] as u64 | (r[1] as u64) << 32);
        } else {
            self.set_reg(i.reg, 4, r[0]);
        }
        Ok(())
    }
}
