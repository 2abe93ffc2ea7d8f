//! x86emu: a pure-software IA-32 PC emulator.
//!
//! The library builds a machine, runs it for a number of instructions, and lets the
//! caller read and write its state. Architectural state is plain data
//! ([`cpu::CpuState`]); derived caches (decoded blocks) are rebuilt on demand.
//!
//! ```
//! use x86emu::cpu::{Cpu, regs::EAX};
//! use x86emu::devices::bus::NullBus;
//! use x86emu::mmu::PhysMem;
//! use x86emu::RunExit;
//!
//! let mut mem = PhysMem::new_flat(1 << 20);
//! mem.write_bytes(0x7C00, &[0xB8, 0x34, 0x12, 0xF4]); // mov ax, 0x1234; hlt
//! let mut cpu = Cpu::new();
//! cpu.state.set_real_segment(x86emu::cpu::SegReg::Cs, 0);
//! cpu.state.eip = 0x7C00;
//! assert_eq!(cpu.run(&mut mem, &mut NullBus, 100), RunExit::Halted);
//! assert_eq!(cpu.state.gpr[EAX] & 0xFFFF, 0x1234);
//! ```

pub mod boot;
pub mod checkpoint;
pub mod clock;
pub mod console;
pub mod cpu;
pub mod devices;
pub mod disk;
pub mod firmware;
pub mod machine;
pub mod mmu;
pub mod replay;
pub mod snapshot;

pub use cpu::{Cpu, RunExit};
pub use machine::{RomMachine, RomRunError};
