//! MMX, SSE and SSE2 execution (the [`Op::Simd`] part of the 0F map).
//!
//! [`Exec::simd`] sorts an instruction into one of four classes by opcode and
//! mandatory prefix, each with its own exception rules:
//!
//! - instructions on MMX registers (MMX, the SSE integer extensions such as PAVGB mm,
//!   PADDQ mm): the MMX rules in [`mmx`] (CR0.EM #UD, TS #NM, pending x87 exception);
//! - instructions that touch XMM registers or MXCSR: CR0.EM or CR4.OSFXSR=0 give #UD,
//!   CR0.TS #NM ([`Exec::sse_check`]); moves, logic, shuffles and the SSE2 integer
//!   instructions are in [`sse`], the floating-point arithmetic, comparisons and
//!   conversions in [`fp`];
//! - MOVNTI, the fences and CLFLUSH, which have no register-state checks at all.
//!
//! Integer lane arithmetic is in [`int`], shared by the 8-byte MMX and the 16-byte
//! SSE2 forms. MMX registers alias the x87 significands (`FpuState::sig`), see [`mmx`];
//! XMM registers and MXCSR are `CpuState::sse`.
//!
//! Memory operands ([`Exec::read_vec`], [`Exec::write_vec`]): a 16-byte operand of an
//! aligned form (everything except MOVUPS/MOVUPD/MOVDQU and MASKMOVDQU) raises #GP(0)
//! unless its linear address is a multiple of 16; with alignment checking on (CR0.AM,
//! EFLAGS.AC, CPL 3) the other operands raise #AC(0) when not aligned to their size,
//! the unaligned 16-byte forms when not aligned to 8 (the P4's documented behaviour).
//!
//! [`Op::Simd`]: crate::cpu::decode::Op::Simd

mod fp;
mod int;
mod mmx;
mod sse;

use super::{Access, Exec, Res};
use crate::cpu::decode::{Insn, PFX_F2, PFX_F3, PFX_NONE};
use crate::cpu::flags::AC;
use crate::cpu::state::{CR0_AM, CR0_EM, CR0_TS, CR4_OSFXSR, CR4_OSXMMEXCPT, MXCSR_MASK};
use crate::cpu::{vector, Fault};

pub use int::V;

/// Alignment rule of a memory operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Align {
    /// No alignment requirement (#AC only, when alignment checking is on).
    Any,
    /// 16-byte operand that must be 16-byte aligned: #GP(0) otherwise.
    A16,
}

/// The floating-point opcodes (arithmetic, comparisons, conversions): routed to
/// [`Exec::sse_fp`] after [`Exec::sse_check`].
fn is_fp(opc: u8) -> bool {
    matches!(
        opc,
        0x2A | 0x2C | 0x2D | 0x2E | 0x2F | 0x51..=0x53 | 0x58..=0x5F | 0xC2 | 0xE6
    )
}

/// Forms without a mandatory prefix that work on MMX registers (or on general
/// registers and memory only): everything in the no-prefix map except the SSE
/// single-precision part 0F 10-2F, 50-5F, C2, C6 and 0F AE.
fn is_mmx_form(opc: u8) -> bool {
    !matches!(opc, 0x10..=0x2F | 0x50..=0x5F | 0xAE | 0xC2 | 0xC3 | 0xC6)
}

impl Exec<'_> {
    /// Execute an MMX/SSE/SSE2 instruction.
    pub(super) fn simd(&mut self, i: &Insn) -> Res<()> {
        let pfx = i.imm2 as u8;
        let opc = i.ext;
        if pfx == PFX_NONE {
            if is_mmx_form(opc) {
                return self.mmx(i);
            }
            match opc {
                // MOVNTI m32, r32: a general-register store.
                0xC3 => {
                    let v = self.reg(i.reg, 4);
                    return self.write_rm(i, 4, v);
                }
                // LFENCE, MFENCE, SFENCE: nothing to order in an in-order interpreter.
                0xAE if !i.is_mem() => return Ok(()),
                // CLFLUSH m8: no caches; the address is checked like a byte read.
                0xAE if i.reg == 7 => {
                    let ea = self.ea(i);
                    let lin = self.lin(i.seg, ea, 1, false)?;
                    return self.touch_lin(lin);
                }
                _ => {}
            }
        }
        self.sse_check()?;
        if is_fp(opc) {
            return self.sse_fp(i);
        }
        match (pfx, opc) {
            (PFX_F3, 0xD6) | (PFX_F2, 0xD6) => self.movq2dq_movdq2q(i),
            _ => self.sse(i),
        }
    }

    /// The checks of every instruction that touches XMM registers or MXCSR: #UD with
    /// CR0.EM = 1 or CR4.OSFXSR = 0, then #NM with CR0.TS = 1.
    pub(crate) fn sse_check(&self) -> Res<()> {
        let s = &self.cpu.state;
        if s.cr0 & CR0_EM != 0 || s.cr4 & CR4_OSFXSR == 0 {
            return Err(Fault::ex(vector::UD));
        }
        if s.cr0 & CR0_TS != 0 {
            return Err(Fault::ex(vector::NM));
        }
        Ok(())
    }

    /// XMM register `r`.
    #[inline]
    pub(crate) fn xmm(&self, r: u8) -> V {
        self.cpu.state.sse.xmm[r as usize]
    }

    #[inline]
    pub(crate) fn set_xmm(&mut self, r: u8, v: V) {
        self.cpu.state.sse.xmm[r as usize] = v;
    }

    pub(crate) fn mxcsr(&self) -> u32 {
        self.cpu.state.sse.mxcsr
    }

    /// Load MXCSR: #GP(0) if a bit outside [`MXCSR_MASK`] is set.
    pub(crate) fn set_mxcsr(&mut self, v: u32) -> Res<()> {
        if v & !MXCSR_MASK != 0 {
            return Err(Fault::gp(0));
        }
        self.cpu.state.sse.mxcsr = v;
        Ok(())
    }

    /// The fault for an unmasked SIMD floating-point exception: #XM with
    /// CR4.OSXMMEXCPT = 1, #UD without.
    pub(crate) fn simd_fp_fault(&self) -> Fault {
        if self.cpu.state.cr4 & CR4_OSXMMEXCPT != 0 {
            Fault::ex(vector::XM)
        } else {
            Fault::ex(vector::UD)
        }
    }

    /// The alignment rules of an `n`-byte SIMD memory operand at linear address `lin`.
    fn vec_align(&self, lin: u32, n: u8, align: Align) -> Res<()> {
        if align == Align::A16 && lin & 15 != 0 {
            return Err(Fault::gp(0));
        }
        let s = &self.cpu.state;
        if lin & (n.min(8) as u32 - 1) != 0
            && s.cr0 & CR0_AM != 0
            && s.flags_raw & AC != 0
            && s.cpl == 3
        {
            return Err(Fault::ex_err(vector::AC, 0));
        }
        Ok(())
    }

    /// Read an `n`-byte (4, 8 or 16) operand at seg:off, zero-extended to 16 bytes.
    pub(crate) fn read_vec(&mut self, seg: u8, off: u32, n: u8, align: Align) -> Res<V> {
        let lin = self.lin(seg, off, n, false)?;
        self.vec_align(lin, n, align)?;
        let mut v = [0u8; 16];
        for k in (0..n as usize).step_by(4) {
            let x = self.read_lin(lin.wrapping_add(k as u32), 4)?;
            v[k..k + 4].copy_from_slice(&x.to_le_bytes());
        }
        Ok(v)
    }

    /// Write the low `n` bytes (4, 8 or 16) of `v` at seg:off; the whole destination
    /// is checked before anything is written.
    pub(crate) fn write_vec(&mut self, seg: u8, off: u32, v: &V, n: u8, align: Align) -> Res<()> {
        let lin = self.lin(seg, off, n, true)?;
        self.vec_align(lin, n, align)?;
        self.probe_write(seg, off, n)?;
        for k in (0..n as usize).step_by(4) {
            let x = u32::from_le_bytes(v[k..k + 4].try_into().expect("4 bytes"));
            self.write_lin(lin.wrapping_add(k as u32), 4, x)?;
        }
        Ok(())
    }

    /// The r/m operand as an XMM source: the whole register, or `n` bytes (4, 8 or 16)
    /// of memory zero-extended, under `align`.
    pub(crate) fn xmm_rm(&mut self, i: &Insn, n: u8, align: Align) -> Res<V> {
        if i.is_mem() {
            let ea = self.ea(i);
            self.read_vec(i.seg, ea, n, align)
        } else {
            Ok(self.xmm(i.rm))
        }
    }

    /// Translate a linear address as a byte read would, without reading (CLFLUSH:
    /// segment and page faults as for a read, no device access).
    fn touch_lin(&mut self, lin: u32) -> Res<()> {
        let user = self.cpu.state.cpl == 3;
        self.tlb_entry(lin, Access::Read, user).map(|_| ())
    }

    /// Read 8 bytes at seg:off (both halves are checked before anything is used).
    fn read_m64(&mut self, seg: u8, off: u32) -> Res<u64> {
        let v = self.read_vec(seg, off, 8, Align::Any)?;
        Ok(u64::from_le_bytes(v[..8].try_into().expect("8 bytes")))
    }

    /// Write 8 bytes at seg:off after checking the whole destination.
    fn write_m64(&mut self, seg: u8, off: u32, v: u64) -> Res<()> {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&v.to_le_bytes());
        self.write_vec(seg, off, &b, 8, Align::Any)
    }

    /// MOVQ2DQ xmm, mm (F3 0F D6) and MOVDQ2Q mm, xmm (F2 0F D6): the SSE checks, then
    /// the MMX ones (a pending x87 exception) and the MMX transition.
    fn movq2dq_movdq2q(&mut self, i: &Insn) -> Res<()> {
        self.fpu_pending()?;
        if i.imm2 as u8 == PFX_F3 {
            let mut v = [0u8; 16];
            v[..8].copy_from_slice(&self.mm(i.rm).to_le_bytes());
            self.set_xmm(i.reg, v);
        } else {
            let x = self.xmm(i.rm);
            self.set_mm(i.reg, u64::from_le_bytes(x[..8].try_into().expect("8")));
        }
        self.mmx_enter();
        Ok(())
    }
}
