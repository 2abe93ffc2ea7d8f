//! Machines: the CPU, physical memory and a board of devices, with the run loop that
//! drives virtual time.
//!
//! - [`RomMachine`]: the bare board behind `x86emu run-rom` (CPU, RAM, a BIOS-replacement
//!   ROM, debug ports, port 0x92).
//! - [`PcMachine`]: the PC behind `x86emu boot`.

mod board;
mod pc;
mod rom;
mod snapshot;

pub use board::PcBoard;
pub use pc::{e820_map, BootSource, MachineError, MachineExit, PcConfig, PcMachine};
pub use rom::{RomBoard, RomMachine, RomRunError};
pub use snapshot::{
    describe_disk_identity, section_versions, ContentHash, DiskIdentity, SectionSpec,
    SnapshotConfig, SnapshotSummary, INPUT as INPUT_SECTION,
};
