//! The MMX/SSE/SSE2 part of the 0F map. Such an opcode decodes to [`Op::Simd`] with
//! `ext` = the second opcode byte and `imm2` = its mandatory prefix (none, 66, F3 or
//! F2: the last F2/F3 wins over 66, as on hardware); [`form`] says whether that
//! combination exists in the model and which operand forms it has.
//!
//! [`Op::Simd`]: super::Op::Simd

use super::form::*;
use super::{REP_E, REP_NE};

pub const PFX_NONE: u8 = 0;
pub const PFX_66: u8 = 1;
pub const PFX_F3: u8 = 2;
pub const PFX_F2: u8 = 3;

/// Two-byte opcodes (0x100 | byte) that belong to the SIMD map.
pub(super) fn is_simd_opcode(opc: u16) -> bool {
    matches!(opc, 0x160..=0x17F | 0x1D0..=0x1FF)
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
    // MMX: no mandatory prefix.
    if pfx == PFX_NONE {
        return mmx(opc, reg);
    }
    None
}

fn mmx(opc: u8, reg: u8) -> Option<u32> {
    Some(match opc {
        0x60..=0x6B | 0x6E | 0x6F | 0x74..=0x77 | 0x7E | 0x7F => 0,
        0x71 | 0x72 if matches!(reg, 2 | 4 | 6) => I8 | REGONLY,
        0x73 if matches!(reg, 2 | 6) => I8 | REGONLY,
        0xD1..=0xD3 | 0xD5 | 0xD8 | 0xD9 | 0xDB..=0xDD | 0xDF => 0,
        0xE1 | 0xE2 | 0xE5 | 0xE8 | 0xE9 | 0xEB..=0xED | 0xEF => 0,
        0xF1..=0xF3 | 0xF5 | 0xF8..=0xFA | 0xFC..=0xFE => 0,
        _ => return None,
    })
}
