//! The MMX/SSE/SSE2 part of the 0F map. Such an opcode decodes to [`Op::Simd`] with
//! `ext` = the second opcode byte and `imm2` = its mandatory prefix (none, 66, F3 or
//! F2: the last F2/F3 wins over 66, as on hardware); [`form`] says whether that
//! combination exists in the model and which operand forms it has.
//!
//! The map covers MMX, SSE and SSE2 (Pentium 4 level): 0F 10-17, 28-2F, 50-7F, C2-C6,
//! D0-FF, the MXCSR/fence/CLFLUSH part of 0F AE (/2 /3 /5 /6 /7; /0 /1 FXSAVE/FXRSTOR
//! belong to the x87 unit) and MOVNTI (0F C3). PREFETCHh (0F 18 /0-/3) stays in the
//! hint-NOP space (`Op::NopE`): it never accesses memory and never faults, which is also
//! what a P6 without SSE does with it. SSE3 and later encodings in the map (MOVDDUP,
//! HADDPS, LDDQU, ...) are #UD. [`required_isa`] names the extension each form needs.
//!
//! [`Op::Simd`]: super::Op::Simd

use super::form::*;
use super::{REP_E, REP_NE};

pub const PFX_NONE: u8 = 0;
pub const PFX_66: u8 = 1;
pub const PFX_F3: u8 = 2;
pub const PFX_F2: u8 = 3;

/// Two-byte opcodes (0x100 | byte) whose whole column belongs to the SIMD map (0F AE
/// joins it through its group table, by ModRM.reg).
pub(super) fn is_simd_opcode(opc: u16) -> bool {
    matches!(
        opc,
        0x110..=0x117 | 0x128..=0x12F | 0x150..=0x17F | 0x1C2..=0x1C6 | 0x1D0..=0x1FF
    )
}

/// The mandatory prefix selected by the prefixes present.
pub(super) fn prefix(opsize: bool, rep: u8) -> u8 {
    match rep {
        REP_E => PFX_F3,
        REP_NE => PFX_F2,
        _ if opsize => PFX_66,
        _ => PFX_NONE,
    }
}

/// Extra form bits for opcode byte `opc` with mandatory prefix `pfx`, or None when the
/// encoding is not an instruction of the model (#UD).
pub(super) fn form(opc: u8, pfx: u8, reg: u8, regform: bool) -> Option<u32> {
    let _ = regform;
    match pfx {
        PFX_NONE => none(opc, reg),
        PFX_66 => p66(opc, reg),
        PFX_F3 => f3(opc),
        _ => f2(opc),
    }
}

/// No mandatory prefix: MMX, the SSE integer extensions on MMX registers, SSE
/// single-precision, the SSE2 additions on MMX registers, MOVNTI and 0F AE.
fn none(opc: u8, reg: u8) -> Option<u32> {
    Some(match opc {
        // MMX.
        0x60..=0x6B | 0x6E | 0x6F | 0x74..=0x77 | 0x7E | 0x7F => 0,
        0x71 | 0x72 if matches!(reg, 2 | 4 | 6) => I8 | REGONLY,
        0x73 if matches!(reg, 2 | 6) => I8 | REGONLY,
        0xD1..=0xD5 | 0xD8..=0xDF => 0,
        0xE0..=0xE5 | 0xE8..=0xEF => 0,
        0xF1..=0xF6 | 0xF8..=0xFE => 0,
        // SSE on MMX registers: PSHUFW, PINSRW, PEXTRW, PMOVMSKB, MOVNTQ, MASKMOVQ.
        0x70 | 0xC4 => I8,
        0xC5 => I8 | REGONLY,
        0xD7 | 0xF7 => REGONLY,
        0xE7 => MEMONLY,
        // SSE: MOVUPS, MOVLPS/MOVHLPS, UNPCKxPS, MOVHPS/MOVLHPS, MOVAPS, CVT*, COMISS ...
        0x10 | 0x11 | 0x12 | 0x14 | 0x15 | 0x16 | 0x28 | 0x29 => 0,
        0x13 | 0x17 | 0x2B => MEMONLY,
        0x2A | 0x2C..=0x2F => 0,
        0x50 => REGONLY,
        0x51..=0x5F => 0,
        0xC2 | 0xC6 => I8,
        // MOVNTI m32, r32 (SSE2).
        0xC3 => MEMONLY,
        // 0F AE: LDMXCSR, STMXCSR (memory); LFENCE, MFENCE (register); /7: CLFLUSH
        // (memory) or SFENCE (register).
        0xAE => match reg {
            2 | 3 => MEMONLY,
            5 | 6 => REGONLY,
            7 => 0,
            _ => return None,
        },
        _ => return None,
    })
}

/// 66: SSE2 packed double precision and the integer instructions on XMM registers.
fn p66(opc: u8, reg: u8) -> Option<u32> {
    Some(match opc {
        0x10 | 0x11 | 0x14 | 0x15 | 0x28 | 0x29 => 0,
        0x12 | 0x13 | 0x16 | 0x17 | 0x2B => MEMONLY,
        0x2A | 0x2C..=0x2F => 0,
        0x50 => REGONLY,
        0x51 | 0x54..=0x5F => 0,
        0x60..=0x6F => 0,
        0x70 => I8,
        0x71 | 0x72 if matches!(reg, 2 | 4 | 6) => I8 | REGONLY,
        0x73 if matches!(reg, 2 | 3 | 6 | 7) => I8 | REGONLY,
        0x74..=0x76 | 0x7E | 0x7F => 0,
        0xC2 | 0xC4 | 0xC6 => I8,
        0xC5 => I8 | REGONLY,
        0xD1..=0xD6 | 0xD8..=0xDF => 0,
        0xD7 | 0xF7 => REGONLY,
        0xE0..=0xE6 | 0xE8..=0xEF => 0,
        0xE7 => MEMONLY,
        0xF1..=0xF6 | 0xF8..=0xFE => 0,
        _ => return None,
    })
}

/// F3: scalar single precision, MOVDQU, PSHUFHW, MOVQ xmm, MOVQ2DQ, CVTDQ2PD.
fn f3(opc: u8) -> Option<u32> {
    Some(match opc {
        0x10 | 0x11 | 0x2A | 0x2C | 0x2D | 0x51..=0x53 | 0x58..=0x5F => 0,
        0x6F | 0x7E | 0x7F | 0xE6 => 0,
        0x70 | 0xC2 => I8,
        0xD6 => REGONLY,
        _ => return None,
    })
}

/// F2: scalar double precision, PSHUFLW, MOVDQ2Q, CVTPD2DQ.
fn f2(opc: u8) -> Option<u32> {
    Some(match opc {
        0x10 | 0x11 | 0x2A | 0x2C | 0x2D | 0x51 | 0x58..=0x5A | 0x5C..=0x5F => 0,
        0xE6 => 0,
        0x70 | 0xC2 => I8,
        0xD6 => REGONLY,
        _ => return None,
    })
}

/// An instruction-set extension a form belongs to (CPUID feature flag).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Isa {
    Mmx,
    Sse,
    Sse2,
}

/// The extension that a valid SIMD-map form needs: `opc` is the second opcode byte
/// (`Insn::ext` of an `Op::Simd`, or 0x18 for PREFETCHh), `pfx` the mandatory prefix
/// (`Insn::imm2`), `reg` ModRM.reg and `mem` whether the r/m operand is memory. For an
/// encoding [`form`] rejects the answer means nothing.
///
/// SSE covers the SSE integer extensions on MMX registers (PAVGB/W, PMINUB, PMAXUB,
/// PMINSW, PMAXSW, PEXTRW, PINSRW, PMOVMSKB, PSADBW, PMULHUW, PSHUFW, MOVNTQ, MASKMOVQ),
/// SFENCE, LDMXCSR/STMXCSR and PREFETCHh; SSE2 covers every 66/F2 form, PADDQ/PSUBQ/
/// PMULUDQ on MMX registers, MOVNTI, LFENCE, MFENCE and CLFLUSH (which has its own CPUID
/// bit, present on every SSE2 processor). PREFETCHh decodes as a hint NOP (`Op::NopE`)
/// and a P6 without SSE executes it as one, so a model without SSE need not refuse it.
pub fn required_isa(opc: u8, pfx: u8, reg: u8, mem: bool) -> Isa {
    match pfx {
        PFX_66 | PFX_F2 => Isa::Sse2,
        PFX_F3 => match opc {
            0x5A | 0x5B | 0x6F | 0x70 | 0x7E | 0x7F | 0xD6 | 0xE6 => Isa::Sse2,
            _ => Isa::Sse,
        },
        _ => match opc {
            0x5A | 0x5B | 0xC3 | 0xD4 | 0xF4 | 0xFB => Isa::Sse2,
            0xAE if reg == 5 || reg == 6 || (reg == 7 && mem) => Isa::Sse2,
            0x10..=0x2F | 0x50..=0x5F | 0x70 | 0xAE | 0xC2 | 0xC4..=0xC6 => Isa::Sse,
            0xD7 | 0xDA | 0xDE | 0xE0 | 0xE3 | 0xE4 | 0xE7 | 0xEA | 0xEE | 0xF6 | 0xF7 => Isa::Sse,
            _ => Isa::Mmx,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isa_of_forms() {
        assert_eq!(required_isa(0xFC, PFX_NONE, 0, false), Isa::Mmx); // PADDB mm
        assert_eq!(required_isa(0xFC, PFX_66, 0, false), Isa::Sse2); // PADDB xmm
        assert_eq!(required_isa(0xD4, PFX_NONE, 0, false), Isa::Sse2); // PADDQ mm
        assert_eq!(required_isa(0xE0, PFX_NONE, 0, false), Isa::Sse); // PAVGB mm
        assert_eq!(required_isa(0x58, PFX_NONE, 0, false), Isa::Sse); // ADDPS
        assert_eq!(required_isa(0x58, PFX_F3, 0, false), Isa::Sse); // ADDSS
        assert_eq!(required_isa(0x58, PFX_F2, 0, false), Isa::Sse2); // ADDSD
        assert_eq!(required_isa(0x5B, PFX_NONE, 0, false), Isa::Sse2); // CVTDQ2PS
        assert_eq!(required_isa(0x7E, PFX_F3, 0, false), Isa::Sse2); // MOVQ xmm
        assert_eq!(required_isa(0xAE, PFX_NONE, 2, true), Isa::Sse); // LDMXCSR
        assert_eq!(required_isa(0xAE, PFX_NONE, 7, false), Isa::Sse); // SFENCE
        assert_eq!(required_isa(0xAE, PFX_NONE, 7, true), Isa::Sse2); // CLFLUSH
        assert_eq!(required_isa(0xAE, PFX_NONE, 5, false), Isa::Sse2); // LFENCE
        assert_eq!(required_isa(0xC3, PFX_NONE, 0, true), Isa::Sse2); // MOVNTI
        assert_eq!(required_isa(0x18, PFX_NONE, 1, true), Isa::Sse); // PREFETCHT0
    }
}
