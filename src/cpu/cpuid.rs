//! CPUID: the values a [`CpuModel`] reports.
//!
//! Each model (see [`super::model`]) advertises only what the core implements.

use super::model::CpuModel;

/// Leaf 1 EDX feature bits.
pub mod edx1 {
    /// x87 FPU on chip.
    pub const FPU: u32 = 1 << 0;
    /// Virtual-8086 mode extensions: not implemented, never advertised.
    pub const VME: u32 = 1 << 1;
    /// Debugging extensions: CR4.DE, I/O breakpoints.
    pub const DE: u32 = 1 << 2;
    pub const PSE: u32 = 1 << 3;
    pub const TSC: u32 = 1 << 4;
    pub const MSR: u32 = 1 << 5;
    pub const PAE: u32 = 1 << 6;
    /// Machine-check exception: CR4.MCE (no machine check is ever signalled).
    pub const MCE: u32 = 1 << 7;
    pub const CX8: u32 = 1 << 8;
    /// On-chip local APIC (the PC board has one at 0xFEE00000).
    pub const APIC: u32 = 1 << 9;
    pub const SEP: u32 = 1 << 11;
    /// Memory type range registers (MTRRcap, MTRRdefType, fixed and variable ranges).
    pub const MTRR: u32 = 1 << 12;
    pub const PGE: u32 = 1 << 13;
    /// Machine-check architecture: MCG_CAP (no banks), MCG_STATUS.
    pub const MCA: u32 = 1 << 14;
    pub const CMOV: u32 = 1 << 15;
    /// Page attribute table (IA32_PAT).
    pub const PAT: u32 = 1 << 16;
    /// 36-bit page-size extension: not implemented, never advertised.
    pub const PSE36: u32 = 1 << 17;
    /// CLFLUSH (line size in leaf 1 EBX bits 15:8).
    pub const CLFSH: u32 = 1 << 19;
    /// Debug store: not implemented, never advertised.
    pub const DTES: u32 = 1 << 21;
    /// Thermal monitor and clock control: not implemented, never advertised.
    pub const ACPI: u32 = 1 << 22;
    /// MMX: MM0-MM7 aliasing the x87 registers, EMMS.
    pub const MMX: u32 = 1 << 23;
    /// FXSAVE/FXRSTOR and CR4.OSFXSR.
    pub const FXSR: u32 = 1 << 24;
    pub const SSE: u32 = 1 << 25;
    pub const SSE2: u32 = 1 << 26;
    /// Self snoop: not advertised.
    pub const SS: u32 = 1 << 27;
    /// Hyper-threading: not advertised.
    pub const HTT: u32 = 1 << 28;
    /// Thermal monitor: not advertised.
    pub const TM: u32 = 1 << 29;
    /// Pending break enable: not advertised.
    pub const PBE: u32 = 1 << 31;
}

/// Leaf 0x80000001 EDX.
pub mod edx_ext {
    pub const NX: u32 = 1 << 20;
}

/// The microcode revision that CPUID leaf 1 loads into BIOS_SIGN_ID (8BH) bits 63:32:
/// no update has been loaded.
pub const MICROCODE_REVISION: u32 = 0;

/// Bytes `part * 16 .. part * 16 + 16` of the NUL-padded brand string as 4 registers.
fn brand_regs(brand: &str, part: usize) -> [u32; 4] {
    let mut b = [0u8; 48];
    b[..brand.len().min(47)].copy_from_slice(&brand.as_bytes()[..brand.len().min(47)]);
    let mut r = [0u32; 4];
    for (k, reg) in r.iter_mut().enumerate() {
        let o = part * 16 + k * 4;
        *reg = u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
    }
    r
}

impl CpuModel {
    /// Result of CPUID for `leaf` (EAX) / `subleaf` (ECX) as [EAX, EBX, ECX, EDX].
    ///
    /// A leaf above the highest basic or extended leaf returns the highest basic leaf,
    /// as Intel processors do (the legacy model returns zeros above 8000_0004H, as it
    /// always did).
    pub fn cpuid(self, leaf: u32, _subleaf: u32) -> [u32; 4] {
        let m = self.info();
        let leaf = if leaf >= 0x8000_0000 {
            if leaf <= m.max_ext {
                leaf
            } else if self == CpuModel::Legacy {
                return [0; 4];
            } else {
                m.max_basic
            }
        } else {
            leaf.min(m.max_basic)
        };
        let v = m.vendor;
        let word = |o: usize| u32::from_le_bytes([v[o], v[o + 1], v[o + 2], v[o + 3]]);
        match leaf {
            0 => [m.max_basic, word(0), word(8), word(4)],
            1 => [m.signature, m.ebx1, m.ecx1, m.edx1],
            2 => m.leaf2,
            0x8000_0000 => [m.max_ext, 0, 0, 0],
            0x8000_0001 => [0, 0, 0, m.edx_ext],
            0x8000_0002..=0x8000_0004 => brand_regs(m.brand, (leaf - 0x8000_0002) as usize),
            _ => [0; 4],
        }
    }
}
