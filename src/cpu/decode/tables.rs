//! Opcode maps: one-byte and 0F two-byte, with ModRM.reg groups.

use super::form::*;

/// Operations. `ext` in [`super::Insn`] refines many of them (see each variant).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Op {
    /// Undefined opcode: #UD.
    Ud,
    /// ALU r/m, reg. ext: 0 ADD 1 OR 2 ADC 3 SBB 4 AND 5 SUB 6 XOR 7 CMP.
    AluEG,
    /// ALU reg, r/m.
    AluGE,
    /// ALU r/m, imm.
    AluEI,
    TestEG,
    TestEI,
    /// ext 0 INC, 1 DEC.
    IncDec,
    Not,
    Neg,
    Mul,
    Imul1,
    Div,
    Idiv,
    /// IMUL reg, r/m, imm.
    ImulGEI,
    /// IMUL reg, r/m.
    ImulGE,
    /// Shift/rotate r/m by imm8. ext: 0 ROL 1 ROR 2 RCL 3 RCR 4 SHL 5 SHR 6 SAL 7 SAR.
    ShiftI,
    /// ... by 1.
    Shift1,
    /// ... by CL.
    ShiftCL,
    /// SHLD/SHRD. ext bit0: count in CL (else imm8), bit1: SHRD.
    Shxd,
    /// BT/BTS/BTR/BTC r/m, reg. ext: 0 BT 1 BTS 2 BTR 3 BTC.
    BtEG,
    /// BT* r/m, imm8.
    BtEI,
    Bsf,
    Bsr,
    Bswap,
    MovEG,
    MovGE,
    MovEI,
    /// MOV r/m16, Sreg (reg field = segment).
    MovESeg,
    /// MOV Sreg, r/m16.
    MovSegE,
    /// ext = source size (1 or 2).
    Movzx,
    Movsx,
    Lea,
    Xchg,
    /// ext = condition code.
    Cmov,
    Setcc,
    Xadd,
    Cmpxchg,
    Cmpxchg8b,
    PushE,
    PushI,
    PopE,
    /// ext = segment register.
    PushSeg,
    PopSeg,
    Pusha,
    Popa,
    Pushf,
    Popf,
    Enter,
    Leave,
    /// CBW / CWDE.
    Cbw,
    /// CWD / CDQ.
    Cwd,
    Lahf,
    Sahf,
    Clc,
    Stc,
    Cmc,
    Cli,
    Sti,
    Cld,
    Std,
    Salc,
    Xlat,
    Daa,
    Das,
    Aaa,
    Aas,
    Aam,
    Aad,
    Jcc,
    JmpRel,
    JmpE,
    JmpFar,
    JmpFarE,
    CallRel,
    CallE,
    CallFar,
    CallFarE,
    Ret,
    RetFar,
    /// ext: 0 LOOPNE 1 LOOPE 2 LOOP 3 JCXZ.
    Loop,
    Int,
    Int3,
    Into,
    Int1,
    Iret,
    Bound,
    Hlt,
    Nop,
    Wait,
    /// ext bit0: port in DX (else imm8).
    In,
    Out,
    Ins,
    Outs,
    Movs,
    Cmps,
    Stos,
    Lods,
    Scas,
    /// LES/LDS/LSS/LFS/LGS; ext = segment register.
    Lseg,
    Cpuid,
    Rdtsc,
    Rdmsr,
    Wrmsr,
    Rdpmc,
    /// MOV to/from CRn/DRn: reg = register number.
    MovFromCr,
    MovToCr,
    MovFromDr,
    MovToDr,
    Clts,
    Lmsw,
    Smsw,
    Sgdt,
    Sidt,
    Lgdt,
    Lidt,
    Sldt,
    Str,
    Lldt,
    Ltr,
    Verr,
    Verw,
    Lar,
    Lsl,
    Arpl,
    Invlpg,
    /// INVD / WBINVD: no caches to manage.
    Wbinvd,
    Sysenter,
    Sysexit,
    /// x87 escape D8..DF: ext = opcode & 7; ext 8: FXSAVE (reg 0) / FXRSTOR (reg 1).
    Fpu,
    /// Hint NOP with a ModRM operand (0F 18..0F 1F).
    NopE,
    /// MMX/SSE/SSE2 (0F map): ext = second opcode byte, imm2 = mandatory prefix
    /// (see [`super::simd`]); validity and immediates come from `simd::form`.
    Simd,
}

const U: (Op, u32, u8) = (Op::Ud, 0, 0);

/// Base entry for an opcode (0x000-0x0FF one-byte, 0x100-0x1FF two-byte).
pub(super) fn lookup(opc: u16) -> (Op, u32, u8) {
    use Op::*;
    if opc < 0x40 && (opc & 7) < 6 {
        let ext = (opc >> 3) as u8;
        let lk = if ext == 7 { 0 } else { LOCKOK };
        return match opc & 7 {
            0 => (AluEG, M | B | lk, ext),
            1 => (AluEG, M | lk, ext),
            2 => (AluGE, M | B, ext),
            3 => (AluGE, M, ext),
            4 => (AluEI, B | I8 | REG0, ext),
            _ => (AluEI, IZ | REG0, ext),
        };
    }
    match opc {
        0x06 | 0x0E | 0x16 | 0x1E => (PushSeg, 0, (opc >> 3) as u8),
        0x07 | 0x17 | 0x1F => (PopSeg, END, (opc >> 3) as u8),
        0x27 => (Daa, 0, 0),
        0x2F => (Das, 0, 0),
        0x37 => (Aaa, 0, 0),
        0x3F => (Aas, 0, 0),
        0x40..=0x47 => (IncDec, OPREG, 0),
        0x48..=0x4F => (IncDec, OPREG, 1),
        0x50..=0x57 => (PushE, OPREG, 0),
        0x58..=0x5F => (PopE, OPREG, 0),
        0x60 => (Pusha, 0, 0),
        0x61 => (Popa, 0, 0),
        0x62 => (Bound, M | MEMONLY, 0),
        0x63 => (Arpl, M | W16, 0),
        0x68 => (PushI, IZ, 0),
        0x69 => (ImulGEI, M | IZ, 0),
        0x6A => (PushI, IS8, 0),
        0x6B => (ImulGEI, M | IS8, 0),
        0x6C => (Ins, B | END, 0),
        0x6D => (Ins, END, 0),
        0x6E => (Outs, B | END, 0),
        0x6F => (Outs, END, 0),
        0x70..=0x7F => (Jcc, IS8 | END, (opc & 0xF) as u8),
        0x80 | 0x82 => (AluEI, M | B | I8, 0),
        0x81 => (AluEI, M | IZ, 0),
        0x83 => (AluEI, M | IS8, 0),
        0x84 => (TestEG, M | B, 0),
        0x85 => (TestEG, M, 0),
        0x86 => (Xchg, M | B | LOCKOK, 0),
        0x87 => (Xchg, M | LOCKOK, 0),
        0x88 => (MovEG, M | B, 0),
        0x89 => (MovEG, M, 0),
        0x8A => (MovGE, M | B, 0),
        0x8B => (MovGE, M, 0),
        0x8C => (MovESeg, M, 0),
        0x8D => (Lea, M | MEMONLY, 0),
        0x8E => (MovSegE, M | W16 | END, 0),
        0x8F => (PopE, M, 0),
        0x90 => (Nop, 0, 0),
        0x91..=0x97 => (Xchg, OPREG | REG0, 0),
        0x98 => (Cbw, 0, 0),
        0x99 => (Cwd, 0, 0),
        0x9A => (CallFar, FAR | END, 0),
        0x9B => (Wait, 0, 0),
        0x9C => (Pushf, 0, 0),
        0x9D => (Popf, END, 0),
        0x9E => (Sahf, 0, 0),
        0x9F => (Lahf, 0, 0),
        0xA0 => (MovGE, B | MOFFS, 0),
        0xA1 => (MovGE, MOFFS, 0),
        0xA2 => (MovEG, B | MOFFS, 0),
        0xA3 => (MovEG, MOFFS, 0),
        0xA4 => (Movs, B, 0),
        0xA5 => (Movs, 0, 0),
        0xA6 => (Cmps, B, 0),
        0xA7 => (Cmps, 0, 0),
        0xA8 => (TestEI, B | I8 | REG0, 0),
        0xA9 => (TestEI, IZ | REG0, 0),
        0xAA => (Stos, B, 0),
        0xAB => (Stos, 0, 0),
        0xAC => (Lods, B, 0),
        0xAD => (Lods, 0, 0),
        0xAE => (Scas, B, 0),
        0xAF => (Scas, 0, 0),
        0xB0..=0xB7 => (MovEI, B | I8 | OPREG, 0),
        0xB8..=0xBF => (MovEI, IZ | OPREG, 0),
        0xC0 => (ShiftI, M | B | I8, 0),
        0xC1 => (ShiftI, M | I8, 0),
        0xC2 => (Ret, I16 | END, 0),
        0xC3 => (Ret, END, 0),
        0xC4 => (Lseg, M | MEMONLY, 0),
        0xC5 => (Lseg, M | MEMONLY, 3),
        0xC6 => (MovEI, M | B | I8, 0),
        0xC7 => (MovEI, M | IZ, 0),
        0xC8 => (Enter, ENTER, 0),
        0xC9 => (Leave, 0, 0),
        0xCA => (RetFar, I16 | END, 0),
        0xCB => (RetFar, END, 0),
        0xCC => (Int3, END, 0),
        0xCD => (Int, I8 | END, 0),
        0xCE => (Into, END, 0),
        0xCF => (Iret, END, 0),
        0xD0 => (Shift1, M | B, 0),
        0xD1 => (Shift1, M, 0),
        0xD2 => (ShiftCL, M | B, 0),
        0xD3 => (ShiftCL, M, 0),
        0xD4 => (Aam, I8, 0),
        0xD5 => (Aad, I8, 0),
        0xD6 => (Salc, 0, 0),
        0xD7 => (Xlat, 0, 0),
        0xD8..=0xDF => (Fpu, M, (opc & 7) as u8),
        0xE0..=0xE3 => (Loop, IS8 | END, (opc & 3) as u8),
        0xE4 => (In, B | I8 | END, 0),
        0xE5 => (In, I8 | END, 0),
        0xE6 => (Out, B | I8 | END, 0),
        0xE7 => (Out, I8 | END, 0),
        0xE8 => (CallRel, IZ | END, 0),
        0xE9 => (JmpRel, IZ | END, 0),
        0xEA => (JmpFar, FAR | END, 0),
        0xEB => (JmpRel, IS8 | END, 0),
        0xEC => (In, B | END, 1),
        0xED => (In, END, 1),
        0xEE => (Out, B | END, 1),
        0xEF => (Out, END, 1),
        0xF1 => (Int1, END, 0),
        0xF4 => (Hlt, END, 0),
        0xF5 => (Cmc, 0, 0),
        0xF6 => (Ud, M | B, 0),
        0xF7 => (Ud, M, 0),
        0xF8 => (Clc, 0, 0),
        0xF9 => (Stc, 0, 0),
        0xFA => (Cli, 0, 0),
        0xFB => (Sti, END, 0),
        0xFC => (Cld, 0, 0),
        0xFD => (Std, 0, 0),
        0xFE => (Ud, M | B, 0),
        0xFF => (Ud, M, 0),

        // Two-byte map.
        0x100 | 0x101 => (Ud, M, 0),
        0x102 => (Lar, M, 0),
        0x103 => (Lsl, M, 0),
        0x106 => (Clts, END, 0),
        0x108 | 0x109 => (Wbinvd, 0, 0),
        0x10D | 0x118..=0x11F => (NopE, M, 0),
        0x120 => (MovFromCr, M, 0),
        0x121 => (MovFromDr, M, 0),
        0x122 => (MovToCr, M | END, 0),
        0x123 => (MovToDr, M | END, 0),
        0x130 => (Wrmsr, END, 0),
        0x131 => (Rdtsc, 0, 0),
        0x132 => (Rdmsr, 0, 0),
        0x133 => (Rdpmc, 0, 0),
        0x134 => (Sysenter, END, 0),
        0x135 => (Sysexit, END, 0),
        0x140..=0x14F => (Cmov, M, (opc & 0xF) as u8),
        0x180..=0x18F => (Jcc, IZ | END, (opc & 0xF) as u8),
        0x190..=0x19F => (Setcc, M | B, (opc & 0xF) as u8),
        0x1A0 => (PushSeg, 0, 4),
        0x1A1 => (PopSeg, END, 4),
        0x1A2 => (Cpuid, END, 0),
        0x1A3 => (BtEG, M, 0),
        0x1A4 => (Shxd, M | I8, 0),
        0x1A5 => (Shxd, M, 1),
        0x1A8 => (PushSeg, 0, 5),
        0x1A9 => (PopSeg, END, 5),
        0x1AB => (BtEG, M | LOCKOK, 1),
        0x1AC => (Shxd, M | I8, 2),
        0x1AD => (Shxd, M, 3),
        // Group 15 (0F AE): FXSAVE / FXRSTOR (/0 /1, memory only) are executed by the x87
        // unit (ext 8); the rest belongs to the SIMD map.
        0x1AE => (Ud, M, 0),
        0x1AF => (ImulGE, M, 0),
        0x1B0 => (Cmpxchg, M | B | LOCKOK, 0),
        0x1B1 => (Cmpxchg, M | LOCKOK, 0),
        0x1B2 => (Lseg, M | MEMONLY | END, 2),
        0x1B3 => (BtEG, M | LOCKOK, 2),
        0x1B4 => (Lseg, M | MEMONLY, 4),
        0x1B5 => (Lseg, M | MEMONLY, 5),
        0x1B6 => (Movzx, M, 1),
        0x1B7 => (Movzx, M, 2),
        0x1BA => (Ud, M | I8, 0),
        0x1BB => (BtEG, M | LOCKOK, 3),
        0x1BC => (Bsf, M, 0),
        0x1BD => (Bsr, M, 0),
        0x1BE => (Movsx, M, 1),
        0x1BF => (Movsx, M, 2),
        0x1C0 => (Xadd, M | B | LOCKOK, 0),
        0x1C1 => (Xadd, M | LOCKOK, 0),
        0x1C7 => (Ud, M, 0),
        0x1C8..=0x1CF => (Bswap, OPREG, 0),
        0x177 => (Simd, 0, 0x77),
        _ if super::simd::is_simd_opcode(opc) => (Simd, M, (opc & 0xFF) as u8),
        _ => U,
    }
}

/// Refinement by ModRM.reg for group opcodes: (op, extra form bits, ext).
pub(super) fn group(opc: u16, reg: u8, regform: bool) -> Option<(Op, u32, u8)> {
    use Op::*;
    Some(match opc {
        0x80..=0x83 => (AluEI, if reg == 7 { 0 } else { LOCKOK }, reg),
        0x8F => {
            if reg == 0 {
                (PopE, 0, 0)
            } else {
                U
            }
        }
        0xC0 | 0xC1 => (ShiftI, 0, reg),
        0xD0 | 0xD1 => (Shift1, 0, reg),
        0xD2 | 0xD3 => (ShiftCL, 0, reg),
        0xC6 | 0xC7 => {
            if reg == 0 {
                (MovEI, 0, 0)
            } else {
                U
            }
        }
        0xF6 | 0xF7 => match reg {
            0 | 1 => (TestEI, if opc == 0xF6 { I8 } else { IZ }, 0),
            2 => (Not, LOCKOK, 0),
            3 => (Neg, LOCKOK, 0),
            4 => (Mul, 0, 0),
            5 => (Imul1, 0, 0),
            6 => (Div, 0, 0),
            _ => (Idiv, 0, 0),
        },
        0xFE => match reg {
            0 | 1 => (IncDec, LOCKOK, reg),
            _ => U,
        },
        0xFF => match reg {
            0 | 1 => (IncDec, LOCKOK, reg),
            2 => (CallE, END, 0),
            3 => (CallFarE, MEMONLY | END, 0),
            4 => (JmpE, END, 0),
            5 => (JmpFarE, MEMONLY | END, 0),
            6 => (PushE, 0, 0),
            _ => U,
        },
        0x100 => match reg {
            0 => (Sldt, 0, 0),
            1 => (Str, 0, 0),
            2 => (Lldt, W16 | END, 0),
            3 => (Ltr, W16 | END, 0),
            4 => (Verr, W16, 0),
            5 => (Verw, W16, 0),
            _ => U,
        },
        0x101 => match (reg, regform) {
            (_, true) if reg != 4 && reg != 6 => U,
            (0, _) => (Sgdt, 0, 0),
            (1, _) => (Sidt, 0, 0),
            (2, _) => (Lgdt, END, 0),
            (3, _) => (Lidt, END, 0),
            (4, _) => (Smsw, 0, 0),
            (6, _) => (Lmsw, W16 | END, 0),
            (7, _) => (Invlpg, END, 0),
            _ => U,
        },
        0x1BA => match reg {
            4..=7 => (BtEI, if reg == 4 { 0 } else { LOCKOK }, reg - 4),
            _ => U,
        },
        0x1C7 => match (reg, regform) {
            (1, false) => (Cmpxchg8b, LOCKOK, 0),
            _ => U,
        },
        0x1AE => match reg {
            0 | 1 => (Fpu, MEMONLY, 8),
            // LDMXCSR, STMXCSR, LFENCE, MFENCE, SFENCE/CLFLUSH: forms in `simd::form`.
            2 | 3 | 5..=7 => (Simd, 0, 0xAE),
            _ => U,
        },
        _ => return None,
    })
}

/// Encodings that the opcode and group tables accept but that are invalid for a
/// particular ModRM: segment-register numbers, control-register numbers and the x87
/// map (including FISTTP, which is SSE3 and not in this model).
pub(super) fn valid_modrm_use(opc: u16, modrm: u8) -> bool {
    let reg = (modrm >> 3) & 7;
    let regform = modrm >> 6 == 3;
    match opc {
        0x8C => reg <= 5,
        0x8E => reg <= 5 && reg != 1,
        0x120 | 0x122 => matches!(reg, 0 | 2 | 3 | 4),
        0xD8..=0xDF => x87_valid((opc & 7) as u8, modrm, reg, regform),
        _ => true,
    }
}

fn x87_valid(esc: u8, modrm: u8, reg: u8, regform: bool) -> bool {
    if !regform {
        return match esc {
            1 => reg != 1,
            3 => !matches!(reg, 1 | 4 | 6),
            5 => !matches!(reg, 1 | 5),
            7 => reg != 1,
            _ => true,
        };
    }
    match esc {
        1 => matches!(modrm, 0xC0..=0xD0 | 0xD8..=0xE1 | 0xE4 | 0xE5 | 0xE8..=0xEE | 0xF0..=0xFF),
        2 => matches!(modrm, 0xC0..=0xDF | 0xE9),
        3 => matches!(modrm, 0xC0..=0xDF | 0xE0..=0xE4 | 0xE8..=0xF7),
        5 => matches!(modrm, 0xC0..=0xEF),
        6 => !matches!(modrm, 0xD8 | 0xDA..=0xDF),
        7 => matches!(modrm, 0xC0..=0xDF | 0xE0 | 0xE8..=0xF7),
        _ => true,
    }
}
