//! Devices on the board. [`bus`] is the CPU's view of them; [`debug`] holds the
//! debug ports used by test ROMs (0xE9 console, POST codes, isa-debug-exit);
//! [`sysctl`] is port 0x92 (A20 gate, fast reset).

pub mod bus;
pub mod debug;
pub mod sysctl;
