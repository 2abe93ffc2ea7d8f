//! Architectural CPU state as plain data.
//!
//! Everything the guest can observe lives in [`CpuState`]: a `#[repr(C)]` struct of
//! fixed-width integers (no host pointers, no `usize`), so a JIT can address fields at
//! fixed offsets and a snapshot can serialise it portably. Arithmetic flags are kept
//! lazily (see [`super::flags`]); [`CpuState::eflags`] materialises them.

use serde::{Deserialize, Serialize};

use super::flags::{LazyFlags, ARITH, FIXED1, WRITABLE};

/// Indices into [`CpuState::gpr`] in encoding order.
pub mod regs {
    pub const EAX: usize = 0;
    pub const ECX: usize = 1;
    pub const EDX: usize = 2;
    pub const EBX: usize = 3;
    pub const ESP: usize = 4;
    pub const EBP: usize = 5;
    pub const ESI: usize = 6;
    pub const EDI: usize = 7;
}

/// Segment registers in encoding order (the `reg` field of `MOV Sreg`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[repr(u8)]
pub enum SegReg {
    Es = 0,
    Cs = 1,
    Ss = 2,
    Ds = 3,
    Fs = 4,
    Gs = 5,
}

impl SegReg {
    pub const ALL: [SegReg; 6] = [
        SegReg::Es,
        SegReg::Cs,
        SegReg::Ss,
        SegReg::Ds,
        SegReg::Fs,
        SegReg::Gs,
    ];
    pub fn from_index(i: u8) -> Option<SegReg> {
        SegReg::ALL.get(i as usize).copied()
    }
    pub fn name(self) -> &'static str {
        ["es", "cs", "ss", "ds", "fs", "gs"][self as usize]
    }
}

/// Descriptor attribute bits as they appear in bits 8..23 of a descriptor's high dword,
/// shifted down by 8: type(0-3) S(4) DPL(5-6) P(7) AVL(12) D/B(14) G(15).
pub mod attr {
    pub const ACCESSED: u16 = 1 << 0;
    /// Data: writable. Code: readable.
    pub const RW: u16 = 1 << 1;
    /// Data: expand-down. Code: conforming.
    pub const DC: u16 = 1 << 2;
    pub const CODE: u16 = 1 << 3;
    /// Code or data (not a system descriptor).
    pub const S: u16 = 1 << 4;
    pub const DPL_SHIFT: u16 = 5;
    pub const PRESENT: u16 = 1 << 7;
    pub const AVL: u16 = 1 << 12;
    /// Default operand size (code) / big stack (SS) / upper bound (expand-down).
    pub const DB: u16 = 1 << 14;
    pub const G: u16 = 1 << 15;
    /// A present, writable, accessed data segment: what real mode gives every segment.
    pub const REAL_DATA: u16 = PRESENT | S | RW | ACCESSED;
    /// A present, readable, accessed code segment.
    pub const REAL_CODE: u16 = PRESENT | S | CODE | RW | ACCESSED;
}

/// A segment register with its hidden descriptor cache.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentCache {
    pub selector: u16,
    /// Attribute bits, see [`attr`].
    pub attr: u16,
    pub base: u32,
    /// Byte-granular limit (already scaled if the G bit was set).
    pub limit: u32,
    /// False for a null selector loaded in protected mode: any access raises #GP.
    pub valid: bool,
    pub _pad: [u8; 3],
}

impl SegmentCache {
    pub fn real(selector: u16, attr: u16) -> SegmentCache {
        SegmentCache {
            selector,
            attr,
            base: (selector as u32) << 4,
            limit: 0xFFFF,
            valid: true,
            _pad: [0; 3],
        }
    }
    #[inline]
    pub fn big(&self) -> bool {
        self.attr & attr::DB != 0
    }
    #[inline]
    pub fn dpl(&self) -> u8 {
        ((self.attr >> attr::DPL_SHIFT) & 3) as u8
    }
}

/// GDTR / IDTR.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableReg {
    pub base: u32,
    pub limit: u32,
}

/// Model-specific registers the core implements.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Msrs {
    pub efer: u64,
    pub apic_base: u64,
    pub sysenter_cs: u32,
    pub sysenter_esp: u32,
    pub sysenter_eip: u32,
    pub _pad: u32,
    /// TSC = retired-instruction clock + this offset (WRMSR 0x10 adjusts it).
    pub tsc_offset: u64,
    /// IA32_MTRR_DEF_TYPE (2FFH): default type (7:0), FE (10), E (11).
    pub mtrr_def_type: u64,
    /// Fixed-range MTRRs, in the order 250H, 258H, 259H, 268H-26FH: one memory type
    /// per byte.
    pub mtrr_fixed: [u64; 11],
    /// Variable-range MTRRs 200H-20FH: PhysBase0, PhysMask0, PhysBase1, ...
    pub mtrr_var: [u64; 16],
    /// IA32_PAT (277H): eight 3-bit memory types, one per byte.
    pub pat: u64,
    /// IA32_MCG_STATUS (17AH): RIPV (0), EIPV (1), MCIP (2).
    pub mcg_status: u64,
    /// BIOS_SIGN_ID (8BH): written by software, loaded with the microcode revision
    /// (bits 63:32) by CPUID leaf 1.
    pub bios_sign_id: u64,
    /// IA32_MISC_ENABLE (1A0H).
    pub misc_enable: u64,
}

/// IA32_PAT after RESET: WB, WT, UC-, UC, WB, WT, UC-, UC.
pub const PAT_RESET: u64 = 0x0007_0406_0007_0406;
/// IA32_MISC_ENABLE after RESET: fast strings enabled (0), branch trace storage (11)
/// and PEBS (12) unavailable (read-only; there is no debug store).
pub const MISC_ENABLE_RESET: u64 = 1 | 1 << 11 | 1 << 12;

/// x87 FPU state: registers, control/status/tag words, last instruction and operand
/// pointers (defined with the FPU in [`crate::cpu::fpu`]).
pub use super::fpu::FpuState;

/// MXCSR at power-up and RESET (INIT leaves it unchanged): every exception masked,
/// round to nearest, FZ and DAZ clear.
pub const MXCSR_RESET: u32 = 0x1F80;
/// The MXCSR bits this model implements (FXSAVE stores it at offset 28): bits 0-15,
/// DAZ included. LDMXCSR and FXRSTOR raise #GP(0) for any other bit set.
pub const MXCSR_MASK: u32 = 0xFFFF;

/// SSE/SSE2 state: XMM0-XMM7 and MXCSR.
#[repr(C)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SseState {
    /// XMM0-XMM7, little-endian: byte 0 holds bits 0-7, so lane k of an n-byte lane
    /// type is bytes `n*k .. n*k + n`.
    pub xmm: [[u8; 16]; 8],
    /// Control and status: exception flags (bits 0-5), DAZ (6), masks (7-12), rounding
    /// control (13-14), FZ (15).
    pub mxcsr: u32,
}

impl Default for SseState {
    /// The reset state: XMM0-7 zero, MXCSR 1F80H.
    fn default() -> Self {
        SseState {
            xmm: [[0; 16]; 8],
            mxcsr: MXCSR_RESET,
        }
    }
}

/// The complete architectural state of one IA-32 processor.
#[repr(C)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuState {
    /// EAX, ECX, EDX, EBX, ESP, EBP, ESI, EDI.
    pub gpr: [u32; 8],
    pub eip: u32,
    /// EFLAGS; the six arithmetic flags are stale while `lazy` holds an operation.
    pub(crate) flags_raw: u32,
    pub(crate) lazy: LazyFlags,
    /// ES, CS, SS, DS, FS, GS.
    pub seg: [SegmentCache; 6],
    pub ldtr: SegmentCache,
    pub tr: SegmentCache,
    pub gdtr: TableReg,
    pub idtr: TableReg,
    pub cr0: u32,
    pub cr2: u32,
    pub cr3: u32,
    pub cr4: u32,
    pub dr: [u32; 8],
    /// PAE page-directory-pointer-table entries, loaded from CR3 (architecturally cached).
    pub pdpte: [u64; 4],
    pub msr: Msrs,
    pub fpu: FpuState,
    /// XMM0-7 and MXCSR.
    pub sse: SseState,
    /// Current privilege level.
    pub cpl: u8,
    /// Executed HLT and waits for an interrupt.
    pub halted: bool,
    /// Maskable interrupts are inhibited until the next instruction retires: set by
    /// MOV SS, POP SS and STI (when it sets IF).
    pub shadow: bool,
    /// Debug traps are held back until the next instruction retires: MOV SS, POP SS.
    pub db_shadow: bool,
    /// Retired instructions (REP iterations count one each): the virtual clock.
    pub icount: u64,
}

pub const CR0_PE: u32 = 1 << 0;
pub const CR0_MP: u32 = 1 << 1;
pub const CR0_EM: u32 = 1 << 2;
pub const CR0_TS: u32 = 1 << 3;
pub const CR0_ET: u32 = 1 << 4;
pub const CR0_NE: u32 = 1 << 5;
pub const CR0_WP: u32 = 1 << 16;
pub const CR0_AM: u32 = 1 << 18;
pub const CR0_NW: u32 = 1 << 29;
pub const CR0_CD: u32 = 1 << 30;
pub const CR0_PG: u32 = 1 << 31;

/// CR4.OSFXSR: the OS supports FXSAVE/FXRSTOR with SSE state; without it every
/// instruction that touches XMM or MXCSR raises #UD.
pub const CR4_OSFXSR: u32 = 1 << 9;
/// CR4.OSXMMEXCPT: unmasked SIMD floating-point exceptions raise #XM (else #UD).
pub const CR4_OSXMMEXCPT: u32 = 1 << 10;

/// The CPUID signature a bare [`CpuState::reset`] puts in EDX (family 6, model 8,
/// stepping 6: the legacy model's); [`crate::cpu::Cpu::reset`] replaces it with its
/// model's signature.
pub const RESET_SIGNATURE: u32 = 0x0000_0686;

impl Default for CpuState {
    fn default() -> Self {
        let mut s = CpuState {
            gpr: [0; 8],
            eip: 0,
            flags_raw: FIXED1,
            lazy: LazyFlags::default(),
            seg: [SegmentCache::default(); 6],
            ldtr: SegmentCache::default(),
            tr: SegmentCache::default(),
            gdtr: TableReg::default(),
            idtr: TableReg::default(),
            cr0: 0,
            cr2: 0,
            cr3: 0,
            cr4: 0,
            dr: [0; 8],
            pdpte: [0; 4],
            msr: Msrs::default(),
            fpu: FpuState::default(),
            sse: SseState::default(),
            cpl: 0,
            halted: false,
            shadow: false,
            db_shadow: false,
            icount: 0,
        };
        s.reset();
        s
    }
}

impl CpuState {
    /// Power-on / RESET state (Intel SDM vol. 3 table 9-1).
    pub fn reset(&mut self) {
        let icount = self.icount;
        *self = CpuState {
            icount,
            ..CpuState {
                gpr: [0; 8],
                eip: 0xFFF0,
                flags_raw: FIXED1,
                lazy: LazyFlags::default(),
                seg: [SegmentCache::real(0, attr::REAL_DATA); 6],
                ldtr: SegmentCache {
                    attr: attr::PRESENT | 2,
                    limit: 0xFFFF,
                    valid: true,
                    ..SegmentCache::default()
                },
                tr: SegmentCache {
                    attr: attr::PRESENT | 11,
                    limit: 0xFFFF,
                    valid: true,
                    ..SegmentCache::default()
                },
                gdtr: TableReg {
                    base: 0,
                    limit: 0xFFFF,
                },
                idtr: TableReg {
                    base: 0,
                    limit: 0xFFFF,
                },
                cr0: CR0_ET | CR0_CD | CR0_NW,
                cr2: 0,
                cr3: 0,
                cr4: 0,
                dr: [0, 0, 0, 0, 0, 0, 0xFFFF0FF0, 0x400],
                pdpte: [0; 4],
                // MTRRs disabled and zero, PAT and MISC_ENABLE at their power-on values.
                msr: Msrs {
                    apic_base: 0xFEE0_0900,
                    pat: PAT_RESET,
                    misc_enable: MISC_ENABLE_RESET,
                    ..Msrs::default()
                },
                // CW 0040H, SW 0, TW 5555H, registers +0.0 (SDM vol. 3 table 9-1).
                fpu: FpuState::power_on(),
                // XMM0-7 zero, MXCSR 1F80H (SDM vol. 3 table 9-1).
                sse: SseState::default(),
                cpl: 0,
                halted: false,
                shadow: false,
                db_shadow: false,
                icount: 0,
            }
        };
        self.gpr[regs::EDX] = RESET_SIGNATURE;
        let mut cs = SegmentCache::real(0xF000, attr::REAL_CODE);
        cs.base = 0xFFFF_0000;
        self.seg[SegReg::Cs as usize] = cs;
    }

    /// The full EFLAGS value (materialising lazily kept arithmetic flags).
    #[inline]
    pub fn eflags(&self) -> u32 {
        if self.lazy.is_pending() {
            (self.flags_raw & !ARITH) | self.lazy.arith_flags(self.flags_raw)
        } else {
            self.flags_raw
        }
    }

    /// Set EFLAGS directly (all writable bits; reserved bits forced to their fixed values).
    #[inline]
    pub fn set_eflags(&mut self, v: u32) {
        self.flags_raw = (v & WRITABLE) | FIXED1;
        self.lazy.clear();
    }

    /// Load a segment register the real-mode way: base = selector × 16, limit 64 KiB,
    /// present writable data (readable code for CS).
    pub fn set_real_segment(&mut self, s: SegReg, selector: u16) {
        let a = if s == SegReg::Cs {
            attr::REAL_CODE
        } else {
            attr::REAL_DATA
        };
        self.seg[s as usize] = SegmentCache::real(selector, a);
    }

    /// Put the CPU in 32-bit flat protected mode without going through descriptor
    /// tables: CR0.PE=1, CPL 0, every segment base 0 / limit 4 GiB, 32-bit code and
    /// stack (CS selector 0x08, data 0x10). For tests and library users that want to
    /// run 32-bit code directly; no GDT or IDT is set up.
    pub fn enter_flat32(&mut self) {
        self.cr0 |= CR0_PE;
        self.cpl = 0;
        for s in SegReg::ALL {
            let (sel, a) = if s == SegReg::Cs {
                (0x08, attr::REAL_CODE | attr::DB | attr::G)
            } else {
                (0x10, attr::REAL_DATA | attr::DB | attr::G)
            };
            self.seg[s as usize] = SegmentCache {
                selector: sel,
                attr: a,
                base: 0,
                limit: 0xFFFF_FFFF,
                valid: true,
                _pad: [0; 3],
            };
        }
    }

    #[inline]
    pub fn protected_mode(&self) -> bool {
        self.cr0 & CR0_PE != 0
    }

    #[inline]
    pub fn v86_mode(&self) -> bool {
        self.flags_raw & super::flags::VM != 0
    }

    /// Code segment default size is 32-bit.
    #[inline]
    pub fn code32(&self) -> bool {
        self.seg[SegReg::Cs as usize].big()
    }

    /// Materialise the lazy arithmetic flags into the raw EFLAGS word, so that two states
    /// that are architecturally equal also compare (and hash, and serialise) equal.
    pub fn normalize(&mut self) {
        let f = self.eflags();
        self.flags_raw = f;
        self.lazy.clear();
    }
}
