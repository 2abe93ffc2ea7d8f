//! SSE/SSE2 instructions on XMM registers other than the floating-point arithmetic:
//! moves (including the scalar and half-register forms, whose register and memory
//! versions differ), logic, shuffles and unpacks, MOVMSKPS/PD, LDMXCSR/STMXCSR, the
//! non-temporal stores, MASKMOVDQU and every SSE2 integer instruction (lane code shared
//! with MMX in [`super::int`]). [`Exec::sse_check`] has passed when these run.

use super::int::{self, V};
use super::Align;
use crate::cpu::decode::{Insn, PFX_66, PFX_F2, PFX_F3, PFX_NONE};
use crate::cpu::exec::{Exec, Res};
use crate::cpu::regs::EDI;
use crate::cpu::{vector, Fault};

fn low64(v: &V) -> V {
    let mut r = [0u8; 16];
    r[..8].copy_from_slice(&v[..8]);
    r
}

impl Exec<'_> {
    /// Store XMM `i.reg` to the r/m operand (16 bytes in memory under `align`, or the
    /// whole register).
    fn store_xmm(&mut self, i: &Insn, align: Align) -> Res<()> {
        let v = self.xmm(i.reg);
        if i.is_mem() {
            let ea = self.ea(i);
            self.write_vec(i.seg, ea, &v, 16, align)
        } else {
            self.set_xmm(i.rm, v);
            Ok(())
        }
    }

    /// Store `n` bytes of `v` (from byte `from`) to the memory operand.
    fn store_part(&mut self, i: &Insn, v: &V, from: usize, n: u8) -> Res<()> {
        let mut b = [0u8; 16];
        b[..n as usize].copy_from_slice(&v[from..from + n as usize]);
        let ea = self.ea(i);
        self.write_vec(i.seg, ea, &b, n, Align::Any)
    }

    /// MASKMOVQ / MASKMOVDQU: store the bytes of `data` whose `mask` byte has its top bit
    /// set to DS:(E)DI (segment override allowed). The whole `n`-byte destination is
    /// checked (segment, #AC off an 8-byte boundary, pages) before any byte is written,
    /// whatever the mask: the SDM leaves faults for unselected bytes to the
    /// implementation, and Intel hardware checks them even with an all-zero mask.
    pub(super) fn maskmov(&mut self, i: &Insn, data: &V, mask: &V, n: u8) -> Res<()> {
        let mut off = self.cpu.state.gpr[EDI];
        if !i.asize32() {
            off &= 0xFFFF;
        }
        let lin = self.lin(i.seg, off, n, true)?;
        self.vec_align(lin, n, Align::Any)?;
        self.probe_write(i.seg, off, n)?;
        for k in 0..n as usize {
            if mask[k] & 0x80 != 0 {
                self.write_lin(lin.wrapping_add(k as u32), 1, data[k] as u32)?;
            }
        }
        Ok(())
    }

    pub(super) fn sse(&mut self, i: &Insn) -> Res<()> {
        let pfx = i.imm2 as u8;
        let (d, s) = (i.reg, i.rm);
        // Lane size of the PS (4) and PD (8) forms.
        let ps_pd = if pfx == PFX_66 { 8 } else { 4 };
        match (pfx, i.ext) {
            // MOVUPS, MOVUPD, MOVDQU (loads).
            (PFX_NONE | PFX_66, 0x10) | (PFX_F3, 0x6F) => {
                let v = self.xmm_rm(i, 16, Align::Any)?;
                self.set_xmm(d, v);
            }
            // MOVAPS, MOVAPD, MOVDQA (loads).
            (PFX_NONE | PFX_66, 0x28) | (PFX_66, 0x6F) => {
                let v = self.xmm_rm(i, 16, Align::A16)?;
                self.set_xmm(d, v);
            }
            // MOVUPS, MOVUPD, MOVDQU (stores).
            (PFX_NONE | PFX_66, 0x11) | (PFX_F3, 0x7F) => self.store_xmm(i, Align::Any)?,
            // MOVAPS, MOVAPD, MOVDQA (stores), MOVNTPS, MOVNTPD, MOVNTDQ.
            (PFX_NONE | PFX_66, 0x29 | 0x2B) | (PFX_66, 0x7F | 0xE7) => {
                self.store_xmm(i, Align::A16)?
            }
            // MOVSS / MOVSD loads: from memory the rest of the register is cleared, from a
            // register it is kept.
            (PFX_F3 | PFX_F2, 0x10) => {
                let n = if pfx == PFX_F3 { 4 } else { 8 };
                if i.is_mem() {
                    let ea = self.ea(i);
                    let v = self.read_vec(i.seg, ea, n, Align::Any)?;
                    self.set_xmm(d, v);
                } else {
                    let mut x = self.xmm(d);
                    x[..n as usize].copy_from_slice(&self.xmm(s)[..n as usize]);
                    self.set_xmm(d, x);
                }
            }
            // MOVSS / MOVSD stores.
            (PFX_F3 | PFX_F2, 0x11) => {
                let n = if pfx == PFX_F3 { 4 } else { 8 };
                let v = self.xmm(d);
                if i.is_mem() {
                    self.store_part(i, &v, 0, n)?;
                } else {
                    let mut x = self.xmm(s);
                    x[..n as usize].copy_from_slice(&v[..n as usize]);
                    self.set_xmm(s, x);
                }
            }
            // MOVLPS/MOVLPD xmm, m64; MOVHLPS xmm, xmm.
            (PFX_NONE | PFX_66, 0x12) => {
                let src = self.xmm_rm(i, 8, Align::Any)?;
                let from = if i.is_mem() { 0 } else { 8 };
                let mut x = self.xmm(d);
                x[..8].copy_from_slice(&src[from..from + 8]);
                self.set_xmm(d, x);
            }
            // MOVHPS/MOVHPD xmm, m64; MOVLHPS xmm, xmm.
            (PFX_NONE | PFX_66, 0x16) => {
                let src = self.xmm_rm(i, 8, Align::Any)?;
                let mut x = self.xmm(d);
                x[8..].copy_from_slice(&src[..8]);
                self.set_xmm(d, x);
            }
            // MOVLPS/MOVLPD m64, xmm and MOVHPS/MOVHPD m64, xmm.
            (PFX_NONE | PFX_66, 0x13 | 0x17) => {
                let v = self.xmm(d);
                let from = if i.ext == 0x13 { 0 } else { 8 };
                self.store_part(i, &v, from, 8)?;
            }
            // UNPCKLPS/PD, UNPCKHPS/PD.
            (PFX_NONE | PFX_66, 0x14 | 0x15) => {
                let b = self.xmm_rm(i, 16, Align::A16)?;
                let r = int::unpack16(&self.xmm(d), &b, ps_pd, i.ext == 0x15);
                self.set_xmm(d, r);
            }
            // MOVMSKPS/PD r32, xmm.
            (PFX_NONE | PFX_66, 0x50) => {
                let m = int::movmsk(&self.xmm(s), 16, ps_pd);
                self.set_reg(d, 4, m);
            }
            // ANDPS/PD, ANDNPS/PD, ORPS/PD, XORPS/PD.
            (PFX_NONE | PFX_66, 0x54..=0x57) => {
                let b = self.xmm_rm(i, 16, Align::A16)?;
                let r = int::logic(i.ext, &self.xmm(d), &b);
                self.set_xmm(d, r);
            }
            // SHUFPS/PD.
            (PFX_NONE | PFX_66, 0xC6) => {
                let b = self.xmm_rm(i, 16, Align::A16)?;
                let r = int::shufp(&self.xmm(d), &b, ps_pd, i.imm as u8);
                self.set_xmm(d, r);
            }
            // LDMXCSR m32 (#GP(0) on reserved bits) / STMXCSR m32.
            (PFX_NONE, 0xAE) => {
                let ea = self.ea(i);
                if i.reg == 2 {
                    let v = self.read_vec(i.seg, ea, 4, Align::Any)?;
                    self.set_mxcsr(u32::from_le_bytes(v[..4].try_into().expect("4")))?;
                } else {
                    let mut b = [0u8; 16];
                    b[..4].copy_from_slice(&self.mxcsr().to_le_bytes());
                    self.write_vec(i.seg, ea, &b, 4, Align::Any)?;
                }
            }
            // MOVD xmm, r/m32.
            (PFX_66, 0x6E) => {
                let v = self.read_rm(i, 4)?;
                let mut x = [0u8; 16];
                x[..4].copy_from_slice(&v.to_le_bytes());
                self.set_xmm(d, x);
            }
            // MOVD r/m32, xmm.
            (PFX_66, 0x7E) => {
                let x = self.xmm(d);
                self.write_rm(i, 4, u32::from_le_bytes(x[..4].try_into().expect("4")))?;
            }
            // MOVQ xmm, xmm/m64 (upper half cleared).
            (PFX_F3, 0x7E) => {
                let v = self.xmm_rm(i, 8, Align::Any)?;
                self.set_xmm(d, low64(&v));
            }
            // MOVQ xmm/m64, xmm (a register destination has its upper half cleared).
            (PFX_66, 0xD6) => {
                let v = self.xmm(d);
                if i.is_mem() {
                    self.store_part(i, &v, 0, 8)?;
                } else {
                    self.set_xmm(s, low64(&v));
                }
            }
            // PSHUFD, PSHUFHW, PSHUFLW.
            (PFX_66 | PFX_F3 | PFX_F2, 0x70) => {
                let b = self.xmm_rm(i, 16, Align::A16)?;
                let imm = i.imm as u8;
                let r = match pfx {
                    PFX_66 => int::pshuf(&b, 4, 0, imm),
                    PFX_F3 => int::pshuf(&b, 2, 4, imm),
                    _ => int::pshuf(&b, 2, 0, imm),
                };
                self.set_xmm(d, r);
            }
            // Shifts by immediate: PSRLW/D/Q, PSRAW/D, PSLLW/D/Q, PSRLDQ, PSLLDQ.
            (PFX_66, 0x71..=0x73) => {
                let v = self.xmm(s);
                let r = match i.reg {
                    3 => int::byte_shift(&v, i.imm as u8, false),
                    7 => int::byte_shift(&v, i.imm as u8, true),
                    reg => {
                        let size = 1usize << (i.ext - 0x70);
                        let kind = match reg {
                            2 => 0,
                            4 => 1,
                            _ => 2,
                        };
                        int::shift(&v, 16, size, kind, i.imm as u64)
                    }
                };
                self.set_xmm(s, r);
            }
            // PINSRW xmm, r32/m16, imm8.
            (PFX_66, 0xC4) => {
                let w = self.read_rm(i, 2)?;
                let r = int::pinsrw(&self.xmm(d), (i.imm & 7) as usize, w as u16);
                self.set_xmm(d, r);
            }
            // PEXTRW r32, xmm, imm8.
            (PFX_66, 0xC5) => {
                let w = int::word(&self.xmm(s), (i.imm & 7) as usize);
                self.set_reg(d, 4, w as u32);
            }
            // PMOVMSKB r32, xmm.
            (PFX_66, 0xD7) => {
                let m = int::movmskb(&self.xmm(s), 16);
                self.set_reg(d, 4, m);
            }
            // MASKMOVDQU xmm1, xmm2.
            (PFX_66, 0xF7) => {
                let (data, mask) = (self.xmm(d), self.xmm(s));
                self.maskmov(i, &data, &mask, 16)?;
            }
            // The two-operand integer instructions (66 + the MMX opcode, plus PADDQ,
            // PSUBQ, PMULUDQ, PUNPCKLQDQ, PUNPCKHQDQ and the SSE additions).
            (PFX_66, op) => {
                let b = self.xmm_rm(i, 16, Align::A16)?;
                let r = int::binop(op, &self.xmm(d), &b, 16).ok_or(Fault::ex(vector::UD))?;
                self.set_xmm(d, r);
            }
            _ => return Err(Fault::ex(vector::UD)),
        }
        Ok(())
    }
}
