//! The interface between the CPU and the rest of the board.
//!
//! The CPU calls a [`Bus`] synchronously for port I/O, for physical addresses that are
//! neither RAM nor ROM (MMIO), to acknowledge external interrupts, and after each block
//! of instructions to learn whether a device asked the machine to stop.

/// Why a device asked the run loop to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopRequest {
    /// The guest wrote `value` to the isa-debug-exit port.
    DebugExit(u32),
    /// A device requested a CPU reset (keyboard controller, port 0xCF9, ...).
    Reset,
    /// The guest powered the machine off.
    PowerOff,
}

pub trait Bus {
    /// The virtual time (instruction count) of the access that follows; the CPU calls it
    /// before every port and MMIO access so time-dependent devices (timers) read exact
    /// values.
    fn set_time(&mut self, _now: u64) {}
    /// Port input of `size` bytes (1, 2 or 4). Unclaimed ports read as all ones.
    fn io_read(&mut self, port: u16, size: u8) -> u32;
    /// Port output of `size` bytes.
    fn io_write(&mut self, port: u16, size: u8, value: u32);
    /// Read from a physical address that is not RAM or ROM.
    fn mmio_read(&mut self, _addr: u32, size: u8) -> u32 {
        all_ones(size)
    }
    /// Write to a physical address that is not RAM or ROM.
    fn mmio_write(&mut self, _addr: u32, _size: u8, _value: u32) {}
    /// A maskable interrupt is being requested (the INTR line).
    fn interrupt_pending(&self) -> bool {
        false
    }
    /// Interrupt acknowledge cycle: the vector of the highest-priority pending interrupt.
    fn acknowledge_interrupt(&mut self) -> Option<u8> {
        None
    }
    /// The FPU's FERR# output changed (unmasked x87 exception pending with CR0.NE=0).
    /// On a PC it raises IRQ 13 through the interrupt controller; a write to port 0xF0
    /// clears the latch (that is the board's business, not the CPU's).
    fn set_ferr(&mut self, _asserted: bool) {}
    /// Called after every instruction that touched a device (port I/O or MMIO), at an
    /// instruction boundary: the board applies what its devices changed in the physical
    /// address space (A20 gate, PAM shadowing, completed DMA) to `mem`.
    fn sync_memory(&mut self, _mem: &mut crate::mmu::PhysMem) {}
    /// Polled by the run loop after I/O and at block boundaries.
    fn take_stop(&mut self) -> Option<StopRequest> {
        None
    }
    /// The earliest instruction count at which a device must act, as things stand now
    /// (`None`: no event pending). The CPU asks after every instruction that touched a
    /// device and after taking an interrupt, and ends its run there if that is earlier
    /// than its budget: an access can move a device's next event earlier (a timer is
    /// programmed), and the machine must let the device act at exactly that count, not
    /// at whatever point the current run was going to stop (which depends on how a run
    /// is sliced).
    fn next_event(&self) -> Option<u64> {
        None
    }
}

#[inline]
pub fn all_ones(size: u8) -> u32 {
    match size {
        1 => 0xFF,
        2 => 0xFFFF,
        _ => 0xFFFF_FFFF,
    }
}

/// A bus with nothing on it: inputs read all ones, outputs are ignored.
#[derive(Debug, Default, Clone)]
pub struct NullBus;

impl Bus for NullBus {
    fn io_read(&mut self, _port: u16, size: u8) -> u32 {
        all_ones(size)
    }
    fn io_write(&mut self, _port: u16, _size: u8, _value: u32) {}
}
