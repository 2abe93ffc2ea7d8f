//! Devices on the board. [`bus`] is the CPU's view of them; [`debug`] holds the
//! debug ports used by test ROMs (0xE9 console, POST codes, isa-debug-exit).

pub mod bus;
pub mod debug;
