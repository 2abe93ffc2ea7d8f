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
//! Until the floating-point unit is written, every one of these raises #UD.

use super::super::{Exec, Res};
use crate::cpu::decode::Insn;
use crate::cpu::{vector, Fault};

#[allow(unused_imports)]
pub(crate) use super::{Align, V};

impl Exec<'_> {
    /// Execute an SSE/SSE2 floating-point instruction (see the module documentation).
    pub(super) fn sse_fp(&mut self, i: &Insn) -> Res<()> {
        let _ = i;
        Err(Fault::ex(vector::UD))
    }
}
