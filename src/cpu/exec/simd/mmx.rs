//! MMX (and the SSE/SSE2 instructions on MMX registers: PSHUFW, PINSRW, PEXTRW,
//! PMOVMSKB, MOVNTQ, MASKMOVQ, PAVGB/W, PMINUB, PMAXUB, PMINSW, PMAXSW, PSADBW, PMULHUW,
//! PADDQ, PSUBQ, PMULUDQ): eight 64-bit registers MM0-MM7 that alias the significands of
//! the x87 physical registers R0-R7. Every MMX instruction except EMMS sets TOP to 0 and tags all eight
//! registers valid; writing MMi also sets the sign/exponent of Ri to all ones. EMMS tags
//! all registers empty. CR0.EM gives #UD, CR0.TS #NM, and a pending unmasked x87
//! exception is reported (#MF or FERR#) before the instruction, as for waiting x87
//! instructions.

use super::int::{self, V};
use crate::cpu::decode::Insn;
use crate::cpu::exec::{Exec, Res};
use crate::cpu::fpu::sw;
use crate::cpu::state::{CR0_EM, CR0_TS};
use crate::cpu::{vector, Fault};

fn to_v(x: u64) -> V {
    let mut v = [0u8; 16];
    v[..8].copy_from_slice(&x.to_le_bytes());
    v
}

fn from_v(v: &V) -> u64 {
    u64::from_le_bytes(v[..8].try_into().expect("8 bytes"))
}

impl Exec<'_> {
    /// The CR0 and pending-exception checks every MMX instruction makes.
    pub(super) fn mmx_check(&mut self) -> Res<()> {
        let cr0 = self.cpu.state.cr0;
        if cr0 & CR0_EM != 0 {
            return Err(Fault::ex(vector::UD));
        }
        if cr0 & CR0_TS != 0 {
            return Err(Fault::ex(vector::NM));
        }
        self.fpu_pending()
    }

    /// The x87 side effect of an MMX instruction: TOP = 0, every register valid.
    pub(super) fn mmx_enter(&mut self) {
        let f = &mut self.cpu.state.fpu;
        f.sw &= !sw::TOP;
        f.valid = 0xFF;
    }

    pub(super) fn mm(&self, r: u8) -> u64 {
        self.cpu.state.fpu.sig[r as usize]
    }

    pub(super) fn set_mm(&mut self, r: u8, v: u64) {
        let f = &mut self.cpu.state.fpu;
        f.sig[r as usize] = v;
        f.se[r as usize] = 0xFFFF;
    }

    /// The r/m operand as an MMX source (register or m64).
    pub(super) fn mm_src(&mut self, i: &Insn) -> Res<u64> {
        if i.is_mem() {
            let ea = self.ea(i);
            self.read_m64(i.seg, ea)
        } else {
            Ok(self.mm(i.rm))
        }
    }

    pub(super) fn mmx(&mut self, i: &Insn) -> Res<()> {
        self.mmx_check()?;
        match i.ext {
            0x77 => {
                // EMMS
                self.cpu.state.fpu.valid = 0;
                return Ok(());
            }
            0x6E => {
                let v = self.read_rm(i, 4)?;
                self.set_mm(i.reg, v as u64);
            }
            0x7E => {
                let v = self.mm(i.reg) as u32;
                self.write_rm(i, 4, v)?;
            }
            0x6F => {
                let v = self.mm_src(i)?;
                self.set_mm(i.reg, v);
            }
            0x7F => {
                let v = self.mm(i.reg);
                if i.is_mem() {
                    let ea = self.ea(i);
                    self.write_m64(i.seg, ea, v)?;
                } else {
                    self.set_mm(i.rm, v);
                }
            }
            0x70 => {
                // PSHUFW mm, mm/m64, imm8
                let b = self.mm_src(i)?;
                self.set_mm(i.reg, from_v(&int::pshuf(&to_v(b), 2, 0, i.imm as u8)));
            }
            0xC4 => {
                // PINSRW mm, r32/m16, imm8
                let w = self.read_rm(i, 2)?;
                let r = int::pinsrw(&to_v(self.mm(i.reg)), (i.imm & 3) as usize, w as u16);
                self.set_mm(i.reg, from_v(&r));
            }
            0xC5 => {
                // PEXTRW r32, mm, imm8
                let w = int::word(&to_v(self.mm(i.rm)), (i.imm & 3) as usize);
                self.set_reg(i.reg, 4, w as u32);
            }
            0xD7 => {
                // PMOVMSKB r32, mm
                let m = int::movmskb(&to_v(self.mm(i.rm)), 8);
                self.set_reg(i.reg, 4, m);
            }
            0xE7 => {
                // MOVNTQ m64, mm
                let ea = self.ea(i);
                let v = self.mm(i.reg);
                self.write_m64(i.seg, ea, v)?;
            }
            0xF7 => {
                // MASKMOVQ mm1, mm2: bytes of mm1 selected by mm2 to DS:(E)DI.
                let data = to_v(self.mm(i.reg));
                let mask = to_v(self.mm(i.rm));
                self.maskmov(i, &data, &mask, 8)?;
            }
            0x71..=0x73 => {
                let size = 1usize << (i.ext - 0x70);
                let kind = match i.reg {
                    2 => 0,
                    4 => 1,
                    _ => 2,
                };
                let r = int::shift(&to_v(self.mm(i.rm)), 8, size, kind, i.imm as u64);
                self.set_mm(i.rm, from_v(&r));
            }
            op => {
                let b = self.mm_src(i)?;
                let a = self.mm(i.reg);
                let r = int::binop(op, &to_v(a), &to_v(b), 8).ok_or(Fault::ex(vector::UD))?;
                self.set_mm(i.reg, from_v(&r));
            }
        }
        self.mmx_enter();
        Ok(())
    }
}
