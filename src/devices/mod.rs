//! Devices on the board. [`bus`] is the CPU's view of them; [`debug`] holds the
//! debug ports used by test ROMs (0xE9 console, POST codes, isa-debug-exit);
//! [`sysctl`] is port 0x92 (A20 gate, fast reset).
//!
//! # Conventions for device models
//!
//! - One file per chip, named after the chip; the type is named after the chip
//!   (`pic.rs` holds `Pic8259Pair`).
//! - The device struct is its guest-visible state: plain data deriving `Serialize` /
//!   `Deserialize` (no host handles, no `usize`, no floats, no hash maps). Host
//!   attachments (disk files, terminals) live in separate types passed in by the board.
//!   Byte streams to and from the host (serial output, key presses) are queues inside
//!   the state that the machine fills and drains at instruction boundaries.
//! - Time comes only from [`Time`]: the virtual clock's instruction count and its speed.
//!   A device that needs to act later reports `next_deadline()` (an instruction count);
//!   the machine stops the CPU there and calls `advance()`.
//! - Interrupt outputs are plain methods of each device (`irq_level()`, edge counters);
//!   the board wires them to the PIC and IOAPIC.
//! - Bad guest input never panics: unknown ports read as all ones, writes are ignored,
//!   every index is bounds-checked.

pub mod bus;
pub mod cmos;
pub mod debug;
pub mod fw_cfg;
pub mod i8042;
pub mod ide;
pub mod ioapic;
pub mod lapic;
pub mod pci;
pub mod pic;
pub mod pit;
pub mod sysctl;
pub mod uart;
pub mod vga;

use crate::clock::Clock;

/// The virtual time at which a device is accessed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Time {
    /// Instruction count (the virtual clock).
    pub now: u64,
    pub clock: Clock,
}

impl Time {
    pub fn new(now: u64, clock: Clock) -> Time {
        Time { now, clock }
    }
    /// Nanoseconds since power-on.
    pub fn ns(&self) -> u64 {
        self.clock.ns(self.now)
    }
}

/// The common interface of port-mapped devices (used by the board and by the generic
/// device test suite: reset idempotence, save/restore, random port sequences).
pub trait PortDevice {
    /// The I/O ports the device decodes (inclusive ranges).
    fn port_ranges(&self) -> Vec<(u16, u16)>;
    /// Power-on / RESET state.
    fn reset(&mut self);
    fn io_read(&mut self, port: u16, size: u8, t: Time) -> u32;
    fn io_write(&mut self, port: u16, size: u8, value: u32, t: Time);
    /// The instruction count at which `advance` must run next, if any.
    fn next_deadline(&self) -> Option<u64> {
        None
    }
    /// Process everything due at or before `t.now`.
    fn advance(&mut self, _t: Time) {}
}
