//! The IA-32 processor: architectural state, decoder, decoded-block cache and the
//! interpreter (the reference execution tier).

pub mod cache;
pub mod cpuid;
pub mod decode;
mod exec;
pub mod flags;
pub mod fpu;
pub mod model;
pub mod softfloat;
pub mod state;

pub use exec::PHYS_ADDR_BITS;
pub use model::CpuModel;
pub use state::{regs, CpuState, SegReg, SegmentCache};

use crate::devices::bus::{Bus, StopRequest};
use crate::mmu::PhysMem;

/// Exception vectors.
pub mod vector {
    pub const DE: u8 = 0;
    pub const DB: u8 = 1;
    pub const NMI: u8 = 2;
    pub const BP: u8 = 3;
    pub const OF: u8 = 4;
    pub const BR: u8 = 5;
    pub const UD: u8 = 6;
    pub const NM: u8 = 7;
    pub const DF: u8 = 8;
    pub const TS: u8 = 10;
    pub const NP: u8 = 11;
    pub const SS: u8 = 12;
    pub const GP: u8 = 13;
    pub const PF: u8 = 14;
    pub const MF: u8 = 16;
    pub const AC: u8 = 17;
    /// SIMD floating-point exception (#XM).
    pub const XM: u8 = 19;
}

/// Something that stops an instruction: a processor exception, or a feature this
/// build does not implement yet (reported to the user instead of guessed at).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    Exception { vector: u8, error: Option<u32> },
    Unsupported(&'static str),
}

impl Fault {
    pub const fn ex(vector: u8) -> Fault {
        Fault::Exception {
            vector,
            error: None,
        }
    }
    pub const fn ex_err(vector: u8, error: u32) -> Fault {
        Fault::Exception {
            vector,
            error: Some(error),
        }
    }
    pub const fn gp(error: u32) -> Fault {
        Fault::ex_err(vector::GP, error)
    }
}

/// Why [`Cpu::run`] returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunExit {
    /// The CPU executed HLT and nothing can wake it within this call (EIP is after the HLT).
    Halted,
    /// The instruction budget is used up.
    InstructionLimit,
    /// A device asked to stop (debug-exit port, reset, power off).
    Stopped(StopRequest),
    /// An exception occurred while delivering a double fault: the processor shut down.
    TripleFault,
    /// With [`Cpu::stop_on_exception`]: the exception that the current instruction raised,
    /// with state rolled back to the start of that instruction.
    Exception { vector: u8, error_code: Option<u32> },
    /// The guest used a feature this build does not implement.
    Unsupported {
        what: &'static str,
        cs: u16,
        eip: u32,
    },
}

/// One processor.
#[derive(Debug)]
pub struct Cpu {
    pub state: CpuState,
    /// The processor model: configuration, fixed while decoded blocks exist (see
    /// [`Cpu::set_model`]).
    model: CpuModel,
    /// Return exceptions to the caller instead of delivering them to the guest.
    pub stop_on_exception: bool,
    pub(crate) cache: cache::BlockCache,
    pub(crate) tlb: crate::mmu::tlb::Tlb,
}

impl Default for Cpu {
    fn default() -> Self {
        Cpu::new()
    }
}

impl Cpu {
    /// A processor of the default model ([`CpuModel::default`]) in its power-on state.
    pub fn new() -> Cpu {
        Cpu::with_model(CpuModel::default())
    }

    /// A processor of `model` in its power-on state.
    pub fn with_model(model: CpuModel) -> Cpu {
        let mut cpu = Cpu {
            state: CpuState::default(),
            model,
            stop_on_exception: false,
            cache: cache::BlockCache::default(),
            tlb: crate::mmu::tlb::Tlb::default(),
        };
        cpu.state.gpr[regs::EDX] = model.info().signature;
        cpu
    }

    pub fn model(&self) -> CpuModel {
        self.model
    }

    /// Change the model. The architectural state is left as it is (call [`Cpu::reset`]
    /// for the new model's power-on state); decoded blocks, which were checked against
    /// the old model's instruction set, are dropped.
    pub fn set_model(&mut self, model: CpuModel) {
        self.model = model;
        self.flush_caches();
    }

    /// RESET: architectural state to power-on values (EDX = the model's CPUID
    /// signature), derived caches dropped.
    pub fn reset(&mut self) {
        self.state.reset();
        self.state.gpr[regs::EDX] = self.model.info().signature;
        self.flush_caches();
    }

    /// Drop all decoded instructions (after restoring state from elsewhere, for example).
    pub fn flush_caches(&mut self) {
        self.cache.clear();
        self.tlb.flush_all();
    }

    pub fn cache_stats(&self) -> cache::CacheStats {
        self.cache.stats
    }

    /// Execute up to `max_instructions` instructions (REP iterations count one each).
    pub fn run(&mut self, mem: &mut PhysMem, bus: &mut dyn Bus, max_instructions: u64) -> RunExit {
        exec::Exec::new(self, mem, bus).run(max_instructions)
    }
}
