//! CPUID: the processor model this build presents.
//!
//! The model is a family-6 (P6) GenuineIntel part that advertises only what the core
//! implements. Features arrive here together with their implementation.

/// Leaf 1 EDX feature bits.
pub mod edx1 {
    /// x87 FPU on chip.
    pub const FPU: u32 = 1 << 0;
    /// Debugging extensions: CR4.DE, I/O breakpoints.
    pub const DE: u32 = 1 << 2;
    pub const PSE: u32 = 1 << 3;
    pub const TSC: u32 = 1 << 4;
    pub const MSR: u32 = 1 << 5;
    pub const PAE: u32 = 1 << 6;
    pub const CX8: u32 = 1 << 8;
    /// On-chip local APIC (the PC board has one at 0xFEE00000).
    pub const APIC: u32 = 1 << 9;
    pub const SEP: u32 = 1 << 11;
    pub const PGE: u32 = 1 << 13;
    pub const CMOV: u32 = 1 << 15;
    /// MMX: MM0-MM7 aliasing the x87 registers, EMMS.
    pub const MMX: u32 = 1 << 23;
    /// FXSAVE/FXRSTOR and CR4.OSFXSR.
    pub const FXSR: u32 = 1 << 24;
}

/// Leaf 0x80000001 EDX.
pub mod edx_ext {
    pub const NX: u32 = 1 << 20;
}

/// Family 6, model 8, stepping 6 (the reset value of EDX too).
pub const SIGNATURE: u32 = crate::cpu::state::RESET_SIGNATURE;

const BRAND: &[u8; 48] = b"x86emu IA-32 virtual processor\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";

fn brand_regs(part: usize) -> [u32; 4] {
    let mut r = [0u32; 4];
    for (k, reg) in r.iter_mut().enumerate() {
        let o = part * 16 + k * 4;
        *reg = u32::from_le_bytes([BRAND[o], BRAND[o + 1], BRAND[o + 2], BRAND[o + 3]]);
    }
    r
}

/// Result of CPUID for `leaf` (EAX) / `subleaf` (ECX) as [EAX, EBX, ECX, EDX].
pub fn cpuid(leaf: u32, _subleaf: u32) -> [u32; 4] {
    use edx1::*;
    match leaf {
        0 => [
            1,
            u32::from_le_bytes(*b"Genu"),
            u32::from_le_bytes(*b"ntel"),
            u32::from_le_bytes(*b"ineI"),
        ],
        1 => [
            SIGNATURE,
            0,
            0,
            FPU | DE | PSE | TSC | MSR | PAE | CX8 | APIC | SEP | PGE | CMOV | MMX | FXSR,
        ],
        0x8000_0000 => [0x8000_0004, 0, 0, 0],
        0x8000_0001 => [0, 0, 0, edx_ext::NX],
        0x8000_0002..=0x8000_0004 => brand_regs((leaf - 0x8000_0002) as usize),
        // Out-of-range basic leaves return the highest basic leaf (Intel behaviour).
        0x8000_0005.. => [0, 0, 0, 0],
        _ => cpuid(1, 0),
    }
}
