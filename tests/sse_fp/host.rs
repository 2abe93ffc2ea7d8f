//! The host CPU's scalar SSE/SSE2 instructions, one function each, run with a given
//! MXCSR (all exceptions must be masked: an unmasked one would raise SIGFPE here).
//! Each returns (result, MXCSR after) and restores MXCSR to its default.
//!
//! Operands travel through memory: `a` is loaded into XMM0 (the destination), `b` into
//! XMM1 (the source) with MOVQ, so the upper bits of a binary32 result's quadword are
//! those of `a`.

use core::arch::asm;

/// Signature shared with the emulator-side functions: (MXCSR, a, b) → (result, MXCSR).
pub type HostFn = fn(u32, u64, u64) -> (u64, u32);

macro_rules! bin {
    ($name:ident, $insn:literal) => {
        pub fn $name(mx: u32, a: u64, b: u64) -> (u64, u32) {
            let mut io = [a, b];
            let mut m = [mx, 0x1F80];
            // SAFETY: the asm reads and writes only the two local arrays, clobbers only
            // the declared XMM registers, and leaves MXCSR at its default.
            unsafe {
                asm!(
                    "movq xmm0, [{io}]",
                    "movq xmm1, [{io} + 8]",
                    "ldmxcsr [{m}]",
                    concat!($insn, " xmm0, xmm1"),
                    "stmxcsr [{m}]",
                    "ldmxcsr [{m} + 4]",
                    "movq [{io}], xmm0",
                    io = in(reg) io.as_mut_ptr(),
                    m = in(reg) m.as_mut_ptr(),
                    out("xmm0") _,
                    out("xmm1") _,
                    options(nostack),
                );
            }
            (io[0], m[0])
        }
    };
}

bin!(addss, "addss");
bin!(subss, "subss");
bin!(mulss, "mulss");
bin!(divss, "divss");
bin!(minss, "minss");
bin!(maxss, "maxss");
bin!(sqrtss, "sqrtss");
bin!(rcpss, "rcpss");
bin!(rsqrtss, "rsqrtss");
bin!(addsd, "addsd");
bin!(subsd, "subsd");
bin!(mulsd, "mulsd");
bin!(divsd, "divsd");
bin!(minsd, "minsd");
bin!(maxsd, "maxsd");
bin!(sqrtsd, "sqrtsd");
bin!(cvtss2sd, "cvtss2sd");
bin!(cvtsd2ss, "cvtsd2ss");
bin!(cmpss0, "cmpeqss");
bin!(cmpss1, "cmpltss");
bin!(cmpss2, "cmpless");
bin!(cmpss3, "cmpunordss");
bin!(cmpss4, "cmpneqss");
bin!(cmpss5, "cmpnltss");
bin!(cmpss6, "cmpnless");
bin!(cmpss7, "cmpordss");
bin!(cmpsd0, "cmpeqsd");
bin!(cmpsd1, "cmpltsd");
bin!(cmpsd2, "cmplesd");
bin!(cmpsd3, "cmpunordsd");
bin!(cmpsd4, "cmpneqsd");
bin!(cmpsd5, "cmpnltsd");
bin!(cmpsd6, "cmpnlesd");
bin!(cmpsd7, "cmpordsd");

pub const CMPSS: [HostFn; 8] = [
    cmpss0, cmpss1, cmpss2, cmpss3, cmpss4, cmpss5, cmpss6, cmpss7,
];
pub const CMPSD: [HostFn; 8] = [
    cmpsd0, cmpsd1, cmpsd2, cmpsd3, cmpsd4, cmpsd5, cmpsd6, cmpsd7,
];

/// COMIS/UCOMIS: the result is EFLAGS (all six arithmetic flags).
macro_rules! comi {
    ($name:ident, $insn:literal) => {
        pub fn $name(mx: u32, a: u64, b: u64) -> (u64, u32) {
            let io = [a, b];
            let mut m = [mx, 0x1F80];
            let fl: u64;
            // SAFETY: reads the local arrays, writes only `m`, uses the stack for
            // PUSHFQ/POP, leaves MXCSR at its default.
            unsafe {
                asm!(
                    "movq xmm0, [{io}]",
                    "movq xmm1, [{io} + 8]",
                    "ldmxcsr [{m}]",
                    concat!($insn, " xmm0, xmm1"),
                    "pushfq",
                    "pop {fl}",
                    "stmxcsr [{m}]",
                    "ldmxcsr [{m} + 4]",
                    io = in(reg) io.as_ptr(),
                    m = in(reg) m.as_mut_ptr(),
                    fl = out(reg) fl,
                    out("xmm0") _,
                    out("xmm1") _,
                );
            }
            (fl & 0x8D5, m[0])
        }
    };
}

comi!(comiss, "comiss");
comi!(ucomiss, "ucomiss");
comi!(comisd, "comisd");
comi!(ucomisd, "ucomisd");

/// CVTSI2SS/SD xmm0, m32 (the int32 is the low half of `b`).
macro_rules! from_int {
    ($name:ident, $insn:literal) => {
        pub fn $name(mx: u32, a: u64, b: u64) -> (u64, u32) {
            let mut io = [a, b];
            let mut m = [mx, 0x1F80];
            // SAFETY: as for `bin!`.
            unsafe {
                asm!(
                    "movq xmm0, [{io}]",
                    "ldmxcsr [{m}]",
                    concat!($insn, " xmm0, dword ptr [{io} + 8]"),
                    "stmxcsr [{m}]",
                    "ldmxcsr [{m} + 4]",
                    "movq [{io}], xmm0",
                    io = in(reg) io.as_mut_ptr(),
                    m = in(reg) m.as_mut_ptr(),
                    out("xmm0") _,
                    options(nostack),
                );
            }
            (io[0], m[0])
        }
    };
}

from_int!(cvtsi2ss, "cvtsi2ss");
from_int!(cvtsi2sd, "cvtsi2sd");

/// CVT[T]SS2SI/SD2SI r32, xmm1: the result is the int32.
macro_rules! to_int {
    ($name:ident, $insn:literal) => {
        pub fn $name(mx: u32, _a: u64, b: u64) -> (u64, u32) {
            let io = [b];
            let mut m = [mx, 0x1F80];
            let r: u32;
            // SAFETY: as for `bin!`.
            unsafe {
                asm!(
                    "movq xmm1, [{io}]",
                    "ldmxcsr [{m}]",
                    concat!($insn, " {r:e}, xmm1"),
                    "stmxcsr [{m}]",
                    "ldmxcsr [{m} + 4]",
                    io = in(reg) io.as_ptr(),
                    m = in(reg) m.as_mut_ptr(),
                    r = out(reg) r,
                    out("xmm1") _,
                    options(nostack),
                );
            }
            (r as u64, m[0])
        }
    };
}

to_int!(cvtss2si, "cvtss2si");
to_int!(cvttss2si, "cvttss2si");
to_int!(cvtsd2si, "cvtsd2si");
to_int!(cvttsd2si, "cvttsd2si");

/// RCPSS and RSQRTSS on one binary32 value with the default MXCSR.
pub fn rcp_rsqrt(x: u32) -> (u32, u32) {
    (
        rcpss(0x1F80, 0, x as u64).0 as u32,
        rsqrtss(0x1F80, 0, x as u64).0 as u32,
    )
}

/// The host CPU vendor string (CPUID leaf 0).
pub fn vendor() -> String {
    let r = core::arch::x86_64::__cpuid(0);
    let mut v = Vec::new();
    for w in [r.ebx, r.edx, r.ecx] {
        v.extend_from_slice(&w.to_le_bytes());
    }
    String::from_utf8_lossy(&v).into_owned()
}
