//! The PC board: every device, the port and MMIO decoding, interrupt wiring, and the
//! device side of virtual time (deadlines and `advance`).

use std::io::Write;

use super::pc::PcConfig;
use crate::clock::Clock;
use crate::devices::bus::{all_ones, Bus, StopRequest};
use crate::devices::debug::DebugPorts;
use crate::devices::fw_cfg::FwCfg;
use crate::devices::sysctl::{self, SystemControlA};
use crate::devices::vga::{self, Vga};
use crate::devices::{PortDevice, Time};
use crate::firmware::acpi::PmPorts;
use crate::mmu::PhysMem;

/// SeaBIOS's debug output port (QEMU's "debugcon" at 0x402).
pub const FIRMWARE_DEBUG_PORT: u16 = 0x402;

pub struct PcBoard {
    pub clock: Clock,
    /// Virtual time of the access being handled (set by the CPU before each access).
    pub now: u64,
    pub debug: DebugPorts,
    pub port92: SystemControlA,
    pub fw_cfg: FwCfg,
    pub vga: Vga,
    firmware_debug: Option<Box<dyn Write>>,
    reset_requested: bool,
}

impl std::fmt::Debug for PcBoard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcBoard").field("now", &self.now).finish()
    }
}

impl PcBoard {
    pub fn new(config: &PcConfig, fw_cfg: FwCfg) -> PcBoard {
        PcBoard {
            clock: config.clock,
            now: 0,
            debug: DebugPorts::new(
                Box::new(std::io::stdout()),
                Box::new(std::io::sink()),
                crate::devices::debug::LEGACY_POST_PORT,
            ),
            port92: SystemControlA::default(),
            fw_cfg,
            vga: Vga::new(),
            firmware_debug: if config.firmware_debug {
                Some(Box::new(std::io::stderr()))
            } else {
                None
            },
            reset_requested: false,
        }
    }

    /// The I/O ports of the ACPI power-management block (PIIX4-compatible), as the ACPI
    /// tables describe them.
    pub fn pm_ports() -> PmPorts {
        PmPorts {
            pm1a_evt: 0xB000,
            pm1a_cnt: 0xB004,
            pm_tmr: 0xB008,
        }
    }

    fn time(&self) -> Time {
        Time::new(self.now, self.clock)
    }

    /// Device reset (the CPU's RESET line): power-on state, memory map restored.
    pub fn reset(&mut self, mem: &mut PhysMem) {
        self.port92 = SystemControlA::default();
        self.fw_cfg.reset();
        self.vga.reset();
        mem.set_a20(self.port92.a20());
        self.reset_requested = false;
    }

    /// The earliest instruction count at which a device must act.
    pub fn next_deadline(&self) -> Option<u64> {
        None
    }

    /// Let devices act on everything due at or before `now`.
    pub fn advance(&mut self, now: u64, mem: &mut PhysMem) {
        self.now = now;
        self.sync_memory(mem);
    }
}

impl Bus for PcBoard {
    fn set_time(&mut self, now: u64) {
        self.now = now;
    }

    fn io_read(&mut self, port: u16, size: u8) -> u32 {
        let t = self.time();
        match port {
            sysctl::PORT if size == 1 => self.port92.read() as u32,
            0x510..=0x511 => self.fw_cfg.io_read(port, size, t),
            0x3B0..=0x3DF | vga::VBE_INDEX_PORT..=0x1D0 => self.vga.io_read(port, size, t),
            0xE9 | 0xF4 | 0x80 => self.debug.io_read(port, size),
            _ => all_ones(size),
        }
    }

    fn io_write(&mut self, port: u16, size: u8, value: u32) {
        let t = self.time();
        match port {
            sysctl::PORT if size == 1 => self.reset_requested |= self.port92.write(value as u8),
            0x510..=0x511 => self.fw_cfg.io_write(port, size, value, t),
            0x3B0..=0x3DF | vga::VBE_INDEX_PORT..=0x1D0 => self.vga.io_write(port, size, value, t),
            FIRMWARE_DEBUG_PORT => {
                if let Some(w) = self.firmware_debug.as_mut() {
                    let _ = w.write_all(&[value as u8]);
                }
            }
            0xE9 | 0xF4 | 0x80 => self.debug.io_write(port, size, value),
            _ => {}
        }
    }

    fn mmio_read(&mut self, addr: u32, size: u8) -> u32 {
        let mut v = 0;
        for i in 0..size as u32 {
            let a = addr.wrapping_add(i);
            let b = match a {
                0xA_0000..=0xB_FFFF => self.vga.mem_read(a),
                _ if a.wrapping_sub(vga::LFB_BASE) < vga::VRAM_SIZE as u32 => {
                    self.vga.lfb_read(a - vga::LFB_BASE)
                }
                _ => 0xFF,
            };
            v |= (b as u32) << (8 * i);
        }
        v
    }

    fn mmio_write(&mut self, addr: u32, size: u8, value: u32) {
        for i in 0..size as u32 {
            let a = addr.wrapping_add(i);
            let b = (value >> (8 * i)) as u8;
            match a {
                0xA_0000..=0xB_FFFF => self.vga.mem_write(a, b),
                _ if a.wrapping_sub(vga::LFB_BASE) < vga::VRAM_SIZE as u32 => {
                    self.vga.lfb_write(a - vga::LFB_BASE, b)
                }
                _ => {}
            }
        }
    }

    fn sync_memory(&mut self, mem: &mut PhysMem) {
        mem.set_a20(self.port92.a20());
    }

    fn take_stop(&mut self) -> Option<StopRequest> {
        if std::mem::take(&mut self.reset_requested) {
            return Some(StopRequest::Reset);
        }
        self.debug.take_stop()
    }
}
