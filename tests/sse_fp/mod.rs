//! Helpers of `tests/sse_fp_diff.rs`: operand generation and (x86-64 hosts) the host's
//! scalar SSE instructions through inline assembly.

#![allow(dead_code)]

#[cfg(target_arch = "x86_64")]
pub mod host;
pub mod operands;
