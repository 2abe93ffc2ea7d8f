//! Machines. [`RomMachine`] is the bare board used by `x86emu run-rom`: a CPU, RAM, a
//! BIOS-replacement ROM at the top of the first megabyte and of the 4 GiB space, and
//! the debug ports. The full PC (PIC, PIT, ...) grows here.

use std::io::Write;

use crate::cpu::{Cpu, RunExit};
use crate::devices::debug::DebugPorts;
use crate::mmu::PhysMem;

#[derive(Debug)]
pub enum RomRunError {
    /// The ROM image has a size that cannot be mapped.
    BadSize(usize),
    Map(crate::mmu::MapError),
}

impl std::fmt::Display for RomRunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RomRunError::BadSize(n) => write!(
                f,
                "ROM image is {n} bytes; a BIOS-replacement ROM must be exactly 64 KiB (65536) or 128 KiB (131072)"
            ),
            RomRunError::Map(e) => write!(f, "cannot map ROM: {e}"),
        }
    }
}

impl std::error::Error for RomRunError {}

pub struct RomMachine {
    pub cpu: Cpu,
    pub mem: PhysMem,
    pub ports: DebugPorts,
}

impl std::fmt::Debug for RomMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RomMachine")
            .field("cpu", &self.cpu)
            .field("mem", &self.mem)
            .finish()
    }
}

impl RomMachine {
    /// Default RAM size for ROM runs.
    pub const DEFAULT_RAM: usize = 16 << 20;

    /// Map `rom` (64 or 128 KiB) at the top of the first megabyte and alias it at the top
    /// of 4 GiB, then reset the CPU (CS:IP = F000:FFF0, executing from 0xFFFFFFF0).
    pub fn new(
        rom: &[u8],
        ram_size: usize,
        post_port: u16,
        console: Box<dyn Write>,
        post: Box<dyn Write>,
    ) -> Result<RomMachine, RomRunError> {
        let len = rom.len();
        if len != 64 << 10 && len != 128 << 10 {
            return Err(RomRunError::BadSize(len));
        }
        let mut mem = PhysMem::new_pc(ram_size);
        let low = 0x10_0000 - len as u32;
        let high = (0x1_0000_0000u64 - len as u64) as u32;
        mem.map_rom(rom, &[low, high]).map_err(RomRunError::Map)?;
        Ok(RomMachine {
            cpu: Cpu::new(),
            mem,
            ports: DebugPorts::new(console, post, post_port),
        })
    }

    pub fn run(&mut self, max_instructions: u64) -> RunExit {
        let r = self
            .cpu
            .run(&mut self.mem, &mut self.ports, max_instructions);
        self.ports.flush();
        r
    }
}
