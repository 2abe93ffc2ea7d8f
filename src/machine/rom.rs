//! Machines. [`RomMachine`] is the bare board used by `x86emu run-rom`: a CPU, RAM, a
//! BIOS-replacement ROM at the top of the first megabyte and of the 4 GiB space, the
//! debug ports and port 0x92 (A20, fast reset). The full PC (PIC, PIT, ...) grows here.

use std::io::Write;

use crate::cpu::{Cpu, RunExit};
use crate::devices::bus::{Bus, StopRequest};
use crate::devices::debug::DebugPorts;
use crate::devices::sysctl::{self, SystemControlA};
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

/// The devices of the ROM-runner board.
#[derive(Debug)]
pub struct RomBoard {
    pub debug: DebugPorts,
    pub port92: SystemControlA,
    reset: bool,
}

impl Bus for RomBoard {
    fn io_read(&mut self, port: u16, size: u8) -> u32 {
        if port == sysctl::PORT && size == 1 {
            return self.port92.read() as u32;
        }
        self.debug.io_read(port, size)
    }

    fn io_write(&mut self, port: u16, size: u8, value: u32) {
        if port == sysctl::PORT && size == 1 {
            self.reset |= self.port92.write(value as u8);
            return;
        }
        self.debug.io_write(port, size, value)
    }

    fn sync_memory(&mut self, mem: &mut PhysMem) {
        mem.set_a20(self.port92.a20());
    }

    fn take_stop(&mut self) -> Option<StopRequest> {
        if std::mem::take(&mut self.reset) {
            return Some(StopRequest::Reset);
        }
        self.debug.take_stop()
    }
}

pub struct RomMachine {
    pub cpu: Cpu,
    pub mem: PhysMem,
    pub board: RomBoard,
    /// CPU resets so far (triple faults and reset requests): as on a PC, the CPU restarts
    /// at the reset vector with memory preserved.
    pub resets: u64,
}

impl std::fmt::Debug for RomMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RomMachine")
            .field("cpu", &self.cpu)
            .field("mem", &self.mem)
            .field("resets", &self.resets)
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
            board: RomBoard {
                debug: DebugPorts::new(console, post, post_port),
                port92: SystemControlA::default(),
                reset: false,
            },
            resets: 0,
        })
    }

    /// Run up to `max_instructions`. A triple fault or a reset request restarts the CPU
    /// (RAM survives) and the run continues, as on a PC. A CPU that shuts down again
    /// without retiring an instruction ends the run with `TripleFault`.
    pub fn run(&mut self, max_instructions: u64) -> RunExit {
        let end = self.cpu.state.icount.saturating_add(max_instructions);
        let mut last_reset_at = None;
        let exit = loop {
            let budget = end.saturating_sub(self.cpu.state.icount);
            let r = self.cpu.run(&mut self.mem, &mut self.board, budget);
            match r {
                RunExit::TripleFault | RunExit::Stopped(StopRequest::Reset) => {
                    let now = self.cpu.state.icount;
                    if last_reset_at == Some(now) {
                        break RunExit::TripleFault;
                    }
                    last_reset_at = Some(now);
                    self.resets += 1;
                    self.cpu.reset();
                }
                other => break other,
            }
        };
        self.board.debug.flush();
        exit
    }
}
