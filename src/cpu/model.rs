//! CPU models: which real processor the virtual CPU presents, and so which CPUID
//! values, CR4 bits, MSRs and instruction groups exist.
//!
//! A model is configuration, not guest state: it is chosen when the machine is built
//! (`x86emu boot --cpu MODEL`), recorded in a snapshot's configuration section and
//! checked on restore. Each model reports the CPUID signature (vendor, family, model,
//! stepping) and cache descriptors of one real part, and of that part's feature flags
//! exactly those this emulator implements: VME, PSE-36, the debug store, ACPI thermal
//! control, self-snoop, hyper-threading, TM/TM2, PBE and Enhanced SpeedStep are never
//! advertised. Every model reports a brand string (leaves 8000_0002H-8000_0004H) naming
//! x86emu and the part, even the early parts that had none.
//!
//! The feature flags also decide what exists: an instruction whose group the model
//! lacks raises #UD ([`CpuModel::allows`], applied when a block is decoded), a CR4 bit
//! it lacks makes MOV CR4 raise #GP, and an MSR it lacks makes RDMSR/WRMSR raise #GP.

use super::cpuid::{edx1, edx_ext};
use super::decode::{required_isa, Insn, Isa, Op};

/// Instruction groups that depend on the model (bits of [`ModelInfo::groups`]).
pub mod group {
    /// CMOVcc, FCMOVcc, FCOMI/FCOMIP/FUCOMI/FUCOMIP (CPUID CMOV with FPU).
    pub const CMOV: u32 = 1 << 0;
    /// SYSENTER/SYSEXIT (CPUID SEP).
    pub const SEP: u32 = 1 << 1;
    /// FXSAVE/FXRSTOR (CPUID FXSR).
    pub const FXSR: u32 = 1 << 2;
    pub const MMX: u32 = 1 << 3;
    pub const SSE: u32 = 1 << 4;
    pub const SSE2: u32 = 1 << 5;
    /// CLFLUSH (CPUID CLFSH).
    pub const CLFLUSH: u32 = 1 << 6;
    /// CMPXCHG8B (CPUID CX8).
    pub const CX8: u32 = 1 << 7;
    /// RDTSC (CPUID TSC).
    pub const TSC: u32 = 1 << 8;
    /// RDMSR/WRMSR (CPUID MSR).
    pub const MSR: u32 = 1 << 9;
    /// RDPMC: Pentium Pro, Pentium with MMX and later (no CPUID flag).
    pub const RDPMC: u32 = 1 << 10;
    /// The hint-NOP space 0F 0D, 0F 18-0F 1F with a ModRM operand (multi-byte NOP):
    /// family 6 and later (no CPUID flag).
    pub const NOP_HINT: u32 = 1 << 11;
}

/// MSR sets beyond what the CPUID flags imply (bits of [`ModelInfo::msrs`]).
pub mod msrs {
    /// P5_MC_ADDR (0) and P5_MC_TYPE (1): Pentium machine-check registers.
    pub const P5_MC: u32 = 1 << 0;
    /// IA32_APIC_BASE (1BH): P6 family and later (the Pentium's APIC sits at its reset
    /// address, enabled).
    pub const APIC_BASE: u32 = 1 << 1;
    /// IA32_PLATFORM_ID (17H), BIOS_SIGN_ID (8BH): P6 family and later.
    pub const P6_ID: u32 = 1 << 2;
    /// IA32_MISC_ENABLE (1A0H): Pentium 4 and Pentium M.
    pub const MISC_ENABLE: u32 = 1 << 3;
    /// IA32_APIC_BASE, IA32_PLATFORM_ID and BIOS_SIGN_ID.
    pub const P6: u32 = APIC_BASE | P6_ID;
}

/// CR4 bits.
pub mod cr4 {
    pub const VME: u32 = 1 << 0;
    pub const PVI: u32 = 1 << 1;
    pub const TSD: u32 = 1 << 2;
    pub const DE: u32 = 1 << 3;
    pub const PSE: u32 = 1 << 4;
    pub const PAE: u32 = 1 << 5;
    pub const MCE: u32 = 1 << 6;
    pub const PGE: u32 = 1 << 7;
    pub const PCE: u32 = 1 << 8;
    pub const OSFXSR: u32 = 1 << 9;
    pub const OSXMMEXCPT: u32 = 1 << 10;
}

/// Everything that distinguishes one model.
#[derive(Debug)]
pub struct ModelInfo {
    /// The `--cpu` name.
    pub name: &'static str,
    /// The real part it reports, for people.
    pub part: &'static str,
    /// CPUID leaf 0: vendor string (EBX, EDX, ECX order of the bytes as read).
    pub vendor: &'static [u8; 12],
    /// Highest basic leaf (CPUID 0 EAX).
    pub max_basic: u32,
    /// Highest extended leaf (CPUID 8000_0000H EAX).
    pub max_ext: u32,
    /// CPUID 1 EAX: stepping (3:0), model (7:4), family (11:8), type (13:12); also EDX
    /// after RESET.
    pub signature: u32,
    /// CPUID 1 EBX: brand index (7:0), CLFLUSH line size in 8-byte units (15:8).
    pub ebx1: u32,
    pub ecx1: u32,
    pub edx1: u32,
    /// CPUID 8000_0001H EDX.
    pub edx_ext: u32,
    /// CPUID 2: cache and TLB descriptors, when `max_basic` >= 2.
    pub leaf2: [u32; 4],
    /// CPUID 8000_0002H-8000_0004H, at most 47 bytes.
    pub brand: &'static str,
    /// CR4 bits MOV CR4 accepts.
    pub cr4_valid: u32,
    /// Instruction groups ([`group`]).
    pub groups: u32,
    /// MSR sets beyond the CPUID flags ([`msrs`]).
    pub msrs: u32,
}

impl ModelInfo {
    /// CPU family (with the extended family added, as software computes it).
    pub fn family(&self) -> u32 {
        let f = (self.signature >> 8) & 0xF;
        if f == 0xF {
            f + ((self.signature >> 20) & 0xFF)
        } else {
            f
        }
    }
    /// CPU model (with the extended model for families 6 and 15).
    pub fn model(&self) -> u32 {
        let m = (self.signature >> 4) & 0xF;
        let f = (self.signature >> 8) & 0xF;
        if f == 6 || f == 0xF {
            m | ((self.signature >> 12) & 0xF0)
        } else {
            m
        }
    }
    pub fn stepping(&self) -> u32 {
        self.signature & 0xF
    }
    /// Whether CPUID 1 EDX has all of `bits`.
    pub fn has(&self, bits: u32) -> bool {
        self.edx1 & bits == bits
    }
}

/// The instruction groups implied by CPUID 1 EDX `edx` and the extra groups `extra`.
const fn groups_of(edx: u32, extra: u32) -> u32 {
    let mut g = extra;
    if edx & edx1::CMOV != 0 && edx & edx1::FPU != 0 {
        g |= group::CMOV;
    }
    if edx & edx1::SEP != 0 {
        g |= group::SEP;
    }
    if edx & edx1::FXSR != 0 {
        g |= group::FXSR;
    }
    if edx & edx1::MMX != 0 {
        g |= group::MMX;
    }
    if edx & edx1::SSE != 0 {
        g |= group::SSE;
    }
    if edx & edx1::SSE2 != 0 {
        g |= group::SSE2;
    }
    if edx & edx1::CLFSH != 0 {
        g |= group::CLFLUSH;
    }
    if edx & edx1::CX8 != 0 {
        g |= group::CX8;
    }
    if edx & edx1::TSC != 0 {
        g |= group::TSC;
    }
    if edx & edx1::MSR != 0 {
        g |= group::MSR;
    }
    g
}

/// The CR4 bits a processor with CPUID 1 EDX `edx` and groups `groups` has (VME and
/// PVI are not implemented and never valid).
const fn cr4_of(edx: u32, groups: u32) -> u32 {
    let mut c = 0;
    if edx & edx1::TSC != 0 {
        c |= cr4::TSD;
    }
    if edx & edx1::DE != 0 {
        c |= cr4::DE;
    }
    if edx & edx1::PSE != 0 {
        c |= cr4::PSE;
    }
    if edx & edx1::PAE != 0 {
        c |= cr4::PAE;
    }
    if edx & edx1::MCE != 0 {
        c |= cr4::MCE;
    }
    if edx & edx1::PGE != 0 {
        c |= cr4::PGE;
    }
    if groups & group::RDPMC != 0 {
        c |= cr4::PCE;
    }
    if edx & edx1::FXSR != 0 {
        c |= cr4::OSFXSR;
    }
    if edx & edx1::SSE != 0 {
        c |= cr4::OSXMMEXCPT;
    }
    c
}

use edx1::*;

/// Pentium (P54C): the classic Pentium has no RDPMC and no hint NOPs.
const P54C_EDX: u32 = FPU | DE | PSE | TSC | MSR | MCE | CX8 | APIC;
const P55C_EDX: u32 = P54C_EDX | MMX;
const DESCHUTES_EDX: u32 = FPU
    | DE
    | PSE
    | TSC
    | MSR
    | PAE
    | MCE
    | CX8
    | APIC
    | SEP
    | MTRR
    | PGE
    | MCA
    | CMOV
    | PAT
    | MMX
    | FXSR;
const COPPERMINE_EDX: u32 = DESCHUTES_EDX | SSE;
/// Pentium M (Dothan) and Pentium 4 (Northwood) have the same implemented subset.
const SSE2_EDX: u32 = COPPERMINE_EDX | CLFSH | SSE2;
const LEGACY_EDX: u32 =
    FPU | DE | PSE | TSC | MSR | PAE | CX8 | APIC | SEP | PGE | CMOV | MMX | FXSR;

const P5_GROUPS: u32 = groups_of(P54C_EDX, 0);
const P55C_GROUPS: u32 = groups_of(P55C_EDX, group::RDPMC);
const P6_EXTRA: u32 = group::RDPMC | group::NOP_HINT;

/// CLFLUSH line size 64 bytes (8 units of 8) in CPUID 1 EBX.
const CLFLUSH_64: u32 = 8 << 8;
const BASIC_ONLY: u32 = 0x8000_0004;

static PENTIUM: ModelInfo = ModelInfo {
    name: "pentium",
    part: "Intel Pentium (P54C), family 5 model 2 stepping 12",
    vendor: b"GenuineIntel",
    max_basic: 1,
    max_ext: BASIC_ONLY,
    signature: 0x052C,
    ebx1: 0,
    ecx1: 0,
    edx1: P54C_EDX,
    edx_ext: 0,
    leaf2: [0; 4],
    brand: "x86emu virtual Intel Pentium (P54C)",
    cr4_valid: cr4_of(P54C_EDX, P5_GROUPS),
    groups: P5_GROUPS,
    msrs: msrs::P5_MC,
};

static PENTIUM_MMX: ModelInfo = ModelInfo {
    name: "pentium-mmx",
    part: "Intel Pentium with MMX technology (P55C), family 5 model 4 stepping 3",
    vendor: b"GenuineIntel",
    max_basic: 1,
    max_ext: BASIC_ONLY,
    signature: 0x0543,
    ebx1: 0,
    ecx1: 0,
    edx1: P55C_EDX,
    edx_ext: 0,
    leaf2: [0; 4],
    brand: "x86emu virtual Intel Pentium MMX (P55C)",
    cr4_valid: cr4_of(P55C_EDX, P55C_GROUPS),
    groups: P55C_GROUPS,
    msrs: msrs::P5_MC,
};

static PENTIUM2: ModelInfo = ModelInfo {
    name: "pentium2",
    part: "Intel Pentium II (Deschutes), family 6 model 5 stepping 2",
    vendor: b"GenuineIntel",
    max_basic: 2,
    max_ext: BASIC_ONLY,
    signature: 0x0652,
    ebx1: 0,
    ecx1: 0,
    edx1: DESCHUTES_EDX,
    edx_ext: 0,
    // ITLB 4K/4M, DTLB 4K/4M, L1I 16K, L1D 16K, L2 512K 4-way 32-byte lines.
    leaf2: [0x0302_0101, 0, 0, 0x0C04_0843],
    brand: "x86emu virtual Intel Pentium II (Deschutes)",
    cr4_valid: cr4_of(DESCHUTES_EDX, groups_of(DESCHUTES_EDX, P6_EXTRA)),
    groups: groups_of(DESCHUTES_EDX, P6_EXTRA),
    msrs: msrs::P6,
};

static PENTIUM3: ModelInfo = ModelInfo {
    name: "pentium3",
    part: "Intel Pentium III (Coppermine), family 6 model 8 stepping 6",
    vendor: b"GenuineIntel",
    max_basic: 2,
    max_ext: BASIC_ONLY,
    signature: 0x0686,
    ebx1: 0,
    ecx1: 0,
    edx1: COPPERMINE_EDX,
    edx_ext: 0,
    // ITLB 4K/4M, DTLB 4K/4M, L1I 16K, L1D 16K, L2 256K 8-way 32-byte lines.
    leaf2: [0x0302_0101, 0, 0, 0x0C04_0882],
    brand: "x86emu virtual Intel Pentium III (Coppermine)",
    cr4_valid: cr4_of(COPPERMINE_EDX, groups_of(COPPERMINE_EDX, P6_EXTRA)),
    groups: groups_of(COPPERMINE_EDX, P6_EXTRA),
    msrs: msrs::P6,
};

static PENTIUM_M: ModelInfo = ModelInfo {
    name: "pentium-m",
    part: "Intel Pentium M (Dothan C0, with the Execute Disable bit), family 6 model 13 stepping 8",
    vendor: b"GenuineIntel",
    max_basic: 2,
    max_ext: BASIC_ONLY,
    signature: 0x06D8,
    ebx1: CLFLUSH_64,
    ecx1: 0,
    edx1: SSE2_EDX,
    edx_ext: edx_ext::NX,
    // ITLB 4K (B0), DTLB 4K (B3), ITLB 4M (02), 64-byte prefetching (F0), L2 2M 8-way
    // 64-byte lines (7D), L1I 32K (30), DTLB 4M (04), L1D 32K (2C).
    leaf2: [0x02B3_B001, 0x0000_00F0, 0, 0x2C04_307D],
    brand: "x86emu virtual Intel Pentium M (Dothan)",
    cr4_valid: cr4_of(SSE2_EDX, groups_of(SSE2_EDX, P6_EXTRA)),
    groups: groups_of(SSE2_EDX, P6_EXTRA),
    msrs: msrs::P6 | msrs::MISC_ENABLE,
};

static PENTIUM4: ModelInfo = ModelInfo {
    name: "pentium4",
    part: "Intel Pentium 4 (Northwood D1), family 15 model 2 stepping 9",
    vendor: b"GenuineIntel",
    max_basic: 2,
    max_ext: BASIC_ONLY,
    signature: 0x0F29,
    ebx1: CLFLUSH_64,
    ecx1: 0,
    edx1: SSE2_EDX,
    edx_ext: 0,
    // ITLB (50), DTLB (5B), L1D 8K 4-way 64-byte lines (66), trace cache 12K uops (70),
    // L2 512K 8-way 64-byte lines (7B), no L3 (40).
    leaf2: [0x665B_5001, 0, 0, 0x007B_7040],
    brand: "x86emu virtual Intel Pentium 4 (Northwood)",
    cr4_valid: cr4_of(SSE2_EDX, groups_of(SSE2_EDX, P6_EXTRA)),
    groups: groups_of(SSE2_EDX, P6_EXTRA),
    msrs: msrs::P6 | msrs::MISC_ENABLE,
};

/// The one model x86emu had before models existed, kept so that older snapshots resume
/// with the behaviour they were taken with: family 6 model 8 stepping 6 without SSE but
/// with NX, no MCE/MTRR/PAT, CR4 accepting MCE, PCE and OSXMMEXCPT, and only the TSC,
/// APIC_BASE, SYSENTER and EFER MSRs. No real part looks like this.
static LEGACY: ModelInfo = ModelInfo {
    name: "legacy",
    part: "x86emu's fixed model before CPU models (family 6 model 8, no SSE, NX)",
    vendor: b"GenuineIntel",
    max_basic: 1,
    max_ext: BASIC_ONLY,
    signature: 0x0686,
    ebx1: 0,
    ecx1: 0,
    edx1: LEGACY_EDX,
    edx_ext: edx_ext::NX,
    leaf2: [0; 4],
    brand: "x86emu IA-32 virtual processor",
    cr4_valid: cr4::TSD
        | cr4::DE
        | cr4::PSE
        | cr4::PAE
        | cr4::MCE
        | cr4::PGE
        | cr4::PCE
        | cr4::OSFXSR
        | cr4::OSXMMEXCPT,
    groups: groups_of(LEGACY_EDX, P6_EXTRA),
    msrs: msrs::APIC_BASE,
};

/// A processor model (see the module documentation).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CpuModel {
    /// Pentium (P54C): family 5, no MMX, no CMOV.
    Pentium,
    /// Pentium with MMX (P55C).
    PentiumMmx,
    /// Pentium II (Deschutes): P6 with MTRR, PAT, FXSR; no SSE.
    Pentium2,
    /// Pentium III (Coppermine): SSE.
    Pentium3,
    /// Pentium M (Dothan C0): family 6 with SSE2 and NX. The default.
    #[default]
    PentiumM,
    /// Pentium 4 (Northwood): family 15 with SSE2.
    Pentium4,
    /// The fixed model of x86emu before models existed (old snapshots resume with it).
    Legacy,
}

impl CpuModel {
    /// Every model, in the order `--cpu` lists them.
    pub const ALL: [CpuModel; 7] = [
        CpuModel::Pentium,
        CpuModel::PentiumMmx,
        CpuModel::Pentium2,
        CpuModel::Pentium3,
        CpuModel::PentiumM,
        CpuModel::Pentium4,
        CpuModel::Legacy,
    ];

    pub fn info(self) -> &'static ModelInfo {
        match self {
            CpuModel::Pentium => &PENTIUM,
            CpuModel::PentiumMmx => &PENTIUM_MMX,
            CpuModel::Pentium2 => &PENTIUM2,
            CpuModel::Pentium3 => &PENTIUM3,
            CpuModel::PentiumM => &PENTIUM_M,
            CpuModel::Pentium4 => &PENTIUM4,
            CpuModel::Legacy => &LEGACY,
        }
    }

    /// The `--cpu` name.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// The model called `name` (as [`CpuModel::name`] gives it).
    pub fn from_name(name: &str) -> Option<CpuModel> {
        CpuModel::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The names of all models, comma-separated (for messages).
    pub fn names() -> String {
        CpuModel::ALL.map(|m| m.name()).join(", ")
    }

    /// Whether CPUID 1 EDX has all of `bits` ([`edx1`]).
    #[inline]
    pub fn has(self, bits: u32) -> bool {
        self.info().has(bits)
    }

    /// Whether the model has all instruction groups in `g` ([`group`]).
    #[inline]
    pub fn has_group(self, g: u32) -> bool {
        self.info().groups & g == g
    }

    /// Whether the model has the MSR set `m` ([`msrs`]).
    #[inline]
    pub fn has_msrs(self, m: u32) -> bool {
        self.info().msrs & m == m
    }

    /// CR4 bits MOV CR4 accepts.
    #[inline]
    pub fn cr4_valid(self) -> u32 {
        self.info().cr4_valid
    }

    /// Whether decoded instruction `i` exists on this model (else it raises #UD).
    #[inline]
    pub fn allows(self, i: &Insn) -> bool {
        let need = required_group(i);
        need == 0 || self.info().groups & need == need
    }
}

impl std::fmt::Display for CpuModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for CpuModel {
    type Err = String;
    fn from_str(s: &str) -> Result<CpuModel, String> {
        CpuModel::from_name(s)
            .ok_or_else(|| format!("unknown CPU model '{s}': use one of {}", CpuModel::names()))
    }
}

/// Encoded as its name (a string), so that snapshots do not depend on the order of the
/// variants.
impl serde::Serialize for CpuModel {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for CpuModel {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<CpuModel, D::Error> {
        let name = String::deserialize(d)?;
        CpuModel::from_name(&name).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "CPU model `{name}` is unknown to this build (it has {})",
                CpuModel::names()
            ))
        })
    }
}

/// The model-dependent group an instruction belongs to (0: every model has it).
pub fn required_group(i: &Insn) -> u32 {
    match i.op {
        Op::Cmov => group::CMOV,
        Op::Sysenter | Op::Sysexit => group::SEP,
        Op::Cmpxchg8b => group::CX8,
        Op::Rdtsc => group::TSC,
        Op::Rdmsr | Op::Wrmsr => group::MSR,
        Op::Rdpmc => group::RDPMC,
        Op::NopE => group::NOP_HINT,
        Op::Fpu => fpu_group(i),
        Op::Simd => simd_group(i),
        _ => 0,
    }
}

/// FXSAVE/FXRSTOR (ext 8) and the P6 x87 additions: FCMOVcc (DA/DB C0-DF), FUCOMI
/// (DB E8-EF), FCOMI (DB F0-F7), FUCOMIP (DF E8-EF), FCOMIP (DF F0-F7).
fn fpu_group(i: &Insn) -> u32 {
    if i.ext == 8 {
        return group::FXSR;
    }
    if i.is_mem() {
        return 0;
    }
    match (i.ext, i.reg) {
        (2, 0..=3) | (3, 0..=3) | (3, 5 | 6) | (7, 5 | 6) => group::CMOV,
        _ => 0,
    }
}

/// The SIMD map, by the extension each form belongs to ([`required_isa`]); CLFLUSH
/// (0F AE /7 with a memory operand) has its own CPUID flag.
fn simd_group(i: &Insn) -> u32 {
    if i.ext == 0xAE && i.reg == 7 && i.is_mem() {
        return group::CLFLUSH;
    }
    match required_isa(i.ext, i.imm2 as u8, i.reg, i.is_mem()) {
        Isa::Mmx => group::MMX,
        Isa::Sse => group::SSE,
        Isa::Sse2 => group::SSE2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for m in CpuModel::ALL {
            assert_eq!(CpuModel::from_name(m.name()), Some(m));
            assert_eq!(m.name().parse::<CpuModel>(), Ok(m));
        }
        assert!("pentium5".parse::<CpuModel>().is_err());
        assert_eq!(CpuModel::default(), CpuModel::PentiumM);
    }

    #[test]
    fn tables_are_coherent() {
        for m in CpuModel::ALL {
            let i = m.info();
            assert!(i.brand.len() <= 47, "{}", i.name);
            assert!(i.brand.starts_with("x86emu "), "{}", i.name);
            // Never advertised: not implemented.
            let never = VME | PSE36 | DTES | ACPI | SS | HTT | TM | PBE;
            assert_eq!(i.edx1 & never, 0, "{}", i.name);
            assert_eq!(i.ecx1, 0, "{}: no SSE3 or later", i.name);
            // CR4 follows from the features, except for the legacy model.
            if m != CpuModel::Legacy {
                assert_eq!(i.cr4_valid, cr4_of(i.edx1, i.groups), "{}", i.name);
                assert_eq!(
                    i.groups & !(group::RDPMC | group::NOP_HINT),
                    groups_of(i.edx1, 0)
                );
            }
            assert!(i.cr4_valid & (cr4::VME | cr4::PVI) == 0);
            // CLFLUSH line size is reported exactly when CLFLUSH exists.
            assert_eq!(i.ebx1 & 0xFF00 != 0, i.has(CLFSH), "{}", i.name);
            // NX needs PAE paging.
            if i.edx_ext & edx_ext::NX != 0 {
                assert!(i.has(PAE), "{}", i.name);
            }
            assert_eq!(i.max_basic >= 2, i.leaf2[0] & 0xFF == 1, "{}", i.name);
        }
        assert_eq!(CpuModel::default().info().family(), 6);
        assert!(CpuModel::default().has(SSE | SSE2));
        assert_eq!(CpuModel::Pentium4.info().family(), 15);
    }
}
