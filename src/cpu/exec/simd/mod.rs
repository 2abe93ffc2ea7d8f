//! MMX, SSE and SSE2 execution (the [`Op::Simd`] part of the 0F map).
//!
//! Integer lane arithmetic is in [`int`], shared by the 8-byte MMX and the 16-byte
//! SSE2 forms. MMX registers alias the x87 significands (`FpuState::sig`), see [`mmx`].
//!
//! [`Op::Simd`]: crate::cpu::decode::Op::Simd

mod int;
mod mmx;

use super::{Exec, Res};
use crate::cpu::decode::{Insn, PFX_NONE};
use crate::cpu::{vector, Fault};

impl Exec<'_> {
    /// Execute an MMX/SSE/SSE2 instruction.
    pub(super) fn simd(&mut self, i: &Insn) -> Res<()> {
        if i.imm2 as u8 == PFX_NONE {
            return self.mmx(i);
        }
        Err(Fault::ex(vector::UD))
    }

    /// Read 8 bytes at seg:off (both halves are checked before anything is used).
    fn read_m64(&mut self, seg: u8, off: u32) -> Res<u64> {
        let lo = self.read_mem(seg, off, 4)? as u64;
        let hi = self.read_mem(seg, off.wrapping_add(4), 4)? as u64;
        Ok(lo | hi << 32)
    }

    /// Write 8 bytes at seg:off after checking the whole destination.
    fn write_m64(&mut self, seg: u8, off: u32, v: u64) -> Res<()> {
        self.probe_write(seg, off, 8)?;
        self.write_mem(seg, off, 4, v as u32)?;
        self.write_mem(seg, off.wrapping_add(4), 4, (v >> 32) as u32)
    }
}
