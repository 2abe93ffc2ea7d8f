//! Instruction decoder for the IA-32 integer instruction set through the P6 generation.
//!
//! [`decode`] is a pure function of up to 15 instruction bytes and the code-segment
//! default size. It resolves prefixes, operand and address size, the ModRM/SIB memory
//! operand and immediates into a compact [`Insn`] that the interpreter (and later the
//! JIT) executes without looking at the bytes again. Encodings the CPU model does not
//! have decode to an error that the caller turns into #UD; instructions longer than 15
//! bytes give [`DecodeError::TooLong`] (#GP(0)).

mod simd;
mod tables;

pub use simd::{required_isa, Isa};
pub use simd::{PFX_66, PFX_F2, PFX_F3, PFX_NONE};

pub use tables::Op;

/// No register (for [`Insn::base`] / [`Insn::index`]).
pub const NO_REG: u8 = 0xFF;

/// Insn::flags bits.
pub mod iflags {
    /// 32-bit address size.
    pub const ASIZE32: u8 = 1 << 0;
    /// LOCK prefix present (already validated).
    pub const LOCK: u8 = 1 << 1;
    /// The ModRM r/m operand is memory.
    pub const MEM: u8 = 1 << 2;
    /// The instruction may change control flow, CPU mode or interrupt state: a decoded
    /// block ends after it.
    pub const END: u8 = 1 << 3;
    /// A segment override prefix was present.
    pub const SEG_OVERRIDE: u8 = 1 << 4;
}

/// REP prefixes.
pub const REP_NONE: u8 = 0;
/// F3: REP / REPE / REPZ.
pub const REP_E: u8 = 1;
/// F2: REPNE / REPNZ.
pub const REP_NE: u8 = 2;

/// A decoded instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Insn {
    pub op: Op,
    /// Length in bytes (1..=15).
    pub len: u8,
    /// Operand size in bytes: 1, 2 or 4.
    pub osize: u8,
    /// See [`iflags`].
    pub flags: u8,
    /// REP_NONE, REP_E or REP_NE.
    pub rep: u8,
    /// Sub-operation: ALU kind, shift kind, condition code, segment register, ...
    pub ext: u8,
    /// ModRM.reg, or the register encoded in the opcode.
    pub reg: u8,
    /// ModRM.rm when the operand is a register.
    pub rm: u8,
    /// Segment register for the memory operand (default or override).
    pub seg: u8,
    pub base: u8,
    pub index: u8,
    /// Index scale as a shift count (0..=3).
    pub scale: u8,
    pub disp: u32,
    pub imm: u32,
    pub imm2: u32,
}

impl Insn {
    #[inline]
    pub fn is_mem(&self) -> bool {
        self.flags & iflags::MEM != 0
    }
    #[inline]
    pub fn asize32(&self) -> bool {
        self.flags & iflags::ASIZE32 != 0
    }
    #[inline]
    pub fn ends_block(&self) -> bool {
        self.flags & iflags::END != 0
    }
    #[inline]
    pub fn lock(&self) -> bool {
        self.flags & iflags::LOCK != 0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Not an instruction of this CPU model: #UD.
    Invalid,
    /// Longer than 15 bytes: #GP(0).
    TooLong,
    /// Needs byte number `n`, which was not supplied (the fetch of that byte faulted or
    /// the caller gave fewer bytes).
    Truncated(u8),
}

// Operand-form bits used by the opcode tables.
pub(crate) mod form {
    pub const M: u32 = 1 << 0; // has ModRM
    pub const B: u32 = 1 << 1; // byte operands
    pub const I8: u32 = 1 << 2; // imm8, zero-extended
    pub const IS8: u32 = 1 << 3; // imm8, sign-extended
    pub const I16: u32 = 1 << 4; // imm16
    pub const IZ: u32 = 1 << 5; // imm16 or imm32 by operand size (sign-extended when 16)
    pub const END: u32 = 1 << 6; // ends a decoded block
    pub const MOFFS: u32 = 1 << 7; // absolute offset of address size
    pub const FAR: u32 = 1 << 8; // ptr16:16 / ptr16:32
    pub const ENTER: u32 = 1 << 9; // imm16, imm8
    pub const LOCKOK: u32 = 1 << 10; // LOCK allowed with a memory destination
    pub const MEMONLY: u32 = 1 << 11; // register form is #UD
    pub const REG0: u32 = 1 << 12; // implicit register operand 0 (AL/AX/EAX) as r/m
    pub const OPREG: u32 = 1 << 13; // register number in opcode bits 0-2 → rm (reg form)
    pub const W16: u32 = 1 << 14; // operand size is always 16 (MOV Sreg, ARPL, ...)
    pub const REGONLY: u32 = 1 << 15; // memory form is #UD
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    #[inline]
    fn u8(&mut self) -> Result<u8, DecodeError> {
        if self.pos >= 15 {
            return Err(DecodeError::TooLong);
        }
        let v = *self
            .b
            .get(self.pos)
            .ok_or(DecodeError::Truncated(self.pos as u8))?;
        self.pos += 1;
        Ok(v)
    }
    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes([self.u8()?, self.u8()?]))
    }
    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes([
            self.u8()?,
            self.u8()?,
            self.u8()?,
            self.u8()?,
        ]))
    }
}

/// Decode one instruction from `bytes` (at most 15 are looked at). `code32` is the
/// D bit of the code segment.
pub fn decode(bytes: &[u8], code32: bool) -> Result<Insn, DecodeError> {
    use form::*;
    let mut r = Reader { b: bytes, pos: 0 };
    let mut opsize_prefix = false;
    let mut addrsize_prefix = false;
    let mut seg_override: Option<u8> = None;
    let mut lock = false;
    let mut rep = REP_NONE;
    let opcode: u16 = loop {
        let b = r.u8()?;
        match b {
            0x66 => opsize_prefix = true,
            0x67 => addrsize_prefix = true,
            0x26 => seg_override = Some(0),
            0x2E => seg_override = Some(1),
            0x36 => seg_override = Some(2),
            0x3E => seg_override = Some(3),
            0x64 => seg_override = Some(4),
            0x65 => seg_override = Some(5),
            0xF0 => lock = true,
            0xF2 => rep = REP_NE,
            0xF3 => rep = REP_E,
            0x0F => break 0x100 | r.u8()? as u16,
            _ => break b as u16,
        }
    };
    let osize32 = code32 ^ opsize_prefix;
    let asize32 = code32 ^ addrsize_prefix;

    let mut insn = Insn {
        op: Op::Ud,
        len: 0,
        osize: if osize32 { 4 } else { 2 },
        flags: if asize32 { iflags::ASIZE32 } else { 0 },
        rep,
        ext: 0,
        reg: 0,
        rm: 0,
        seg: seg_override.unwrap_or(3),
        base: NO_REG,
        index: NO_REG,
        scale: 0,
        disp: 0,
        imm: 0,
        imm2: 0,
    };
    if seg_override.is_some() {
        insn.flags |= iflags::SEG_OVERRIDE;
    }

    let (mut op, mut fm, mut ext) = tables::lookup(opcode);
    let mut modrm_byte = 0u8;
    if fm & M != 0 {
        let modrm = r.u8()?;
        modrm_byte = modrm;
        insn.reg = (modrm >> 3) & 7;
        if let Some((gop, gfm, gext)) = tables::group(opcode, insn.reg, modrm >> 6 == 3) {
            op = gop;
            fm |= gfm;
            ext = gext;
        }
        if (0x120..=0x123).contains(&opcode) {
            // MOV to/from CRn/DRn: the mod field is ignored, the operand is always a register.
            insn.rm = modrm & 7;
        } else {
            decode_modrm(&mut r, &mut insn, modrm, asize32, seg_override)?;
        }
    }
    if op == Op::Ud || !tables::valid_modrm_use(opcode, modrm_byte) {
        return Err(DecodeError::Invalid);
    }
    if op == Op::Simd {
        let pfx = simd::prefix(opsize_prefix, rep);
        fm |= simd::form(ext, pfx, insn.reg, modrm_byte >> 6 == 3).ok_or(DecodeError::Invalid)?;
        insn.imm2 = pfx as u32;
        insn.rep = REP_NONE;
    }
    // Group 15 (FXSAVE, FXRSTOR, LDMXCSR, fences, ...) has "NP" encodings: a 66, F2 or F3
    // prefix makes them #UD.
    if opcode == 0x1AE && (opsize_prefix || rep != REP_NONE) {
        return Err(DecodeError::Invalid);
    }
    insn.op = op;
    insn.ext = ext;
    if fm & B != 0 {
        insn.osize = 1;
    } else if fm & W16 != 0 {
        insn.osize = 2;
    }
    if fm & OPREG != 0 {
        insn.rm = (opcode & 7) as u8;
    }
    if fm & MEMONLY != 0 && !insn.is_mem() || fm & REGONLY != 0 && insn.is_mem() {
        return Err(DecodeError::Invalid);
    }
    if fm & MOFFS != 0 {
        insn.flags |= iflags::MEM;
        insn.disp = if asize32 { r.u32()? } else { r.u16()? as u32 };
    }
    // Immediates.
    if fm & I8 != 0 {
        insn.imm = r.u8()? as u32;
    } else if fm & IS8 != 0 {
        insn.imm = r.u8()? as i8 as i32 as u32;
    } else if fm & I16 != 0 {
        insn.imm = r.u16()? as u32;
    } else if fm & IZ != 0 {
        insn.imm = if insn.osize == 4 {
            r.u32()?
        } else if insn.osize == 2 {
            r.u16()? as i16 as i32 as u32
        } else {
            r.u8()? as u32
        };
    } else if fm & FAR != 0 {
        insn.imm = if osize32 { r.u32()? } else { r.u16()? as u32 };
        insn.imm2 = r.u16()? as u32;
    } else if fm & ENTER != 0 {
        insn.imm = r.u16()? as u32;
        insn.imm2 = r.u8()? as u32;
    }
    if lock && (fm & LOCKOK == 0 || !insn.is_mem()) {
        return Err(DecodeError::Invalid);
    }
    if lock {
        insn.flags |= iflags::LOCK;
    }
    if fm & END != 0 {
        insn.flags |= iflags::END;
    }
    insn.len = r.pos as u8;
    Ok(insn)
}

fn decode_modrm(
    r: &mut Reader,
    insn: &mut Insn,
    modrm: u8,
    asize32: bool,
    seg_override: Option<u8>,
) -> Result<(), DecodeError> {
    let md = modrm >> 6;
    let rm = modrm & 7;
    if md == 3 {
        insn.rm = rm;
        return Ok(());
    }
    insn.flags |= iflags::MEM;
    let mut ss_default = false;
    if !asize32 {
        const BASE: [u8; 8] = [3, 3, 5, 5, 6, 7, 5, 3];
        const INDEX: [u8; 8] = [6, 7, 6, 7, NO_REG, NO_REG, NO_REG, NO_REG];
        if md == 0 && rm == 6 {
            insn.disp = r.u16()? as u32;
        } else {
            insn.base = BASE[rm as usize];
            insn.index = INDEX[rm as usize];
            ss_default = matches!(rm, 2 | 3 | 6);
            insn.disp = match md {
                1 => r.u8()? as i8 as i32 as u32,
                2 => r.u16()? as u32,
                _ => 0,
            };
        }
    } else {
        let mut base = rm;
        if rm == 4 {
            let sib = r.u8()?;
            insn.scale = sib >> 6;
            let idx = (sib >> 3) & 7;
            if idx != 4 {
                insn.index = idx;
            }
            base = sib & 7;
            if base == 5 && md == 0 {
                insn.base = NO_REG;
                insn.disp = r.u32()?;
            } else {
                insn.base = base;
            }
        } else if rm == 5 && md == 0 {
            insn.disp = r.u32()?;
        } else {
            insn.base = rm;
        }
        if insn.base != NO_REG {
            ss_default = base == 4 || base == 5;
            insn.disp = match md {
                1 => r.u8()? as i8 as i32 as u32,
                2 => r.u32()?,
                _ => insn.disp,
            };
        }
    }
    insn.seg = match seg_override {
        Some(s) => s,
        None if ss_default => 2,
        None => 3,
    };
    Ok(())
}

#[cfg(test)]
mod tests;
