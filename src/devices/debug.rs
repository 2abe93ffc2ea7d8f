//! Debug ports for test ROMs and firmware bring-up.
//!
//! - 0xE9: debug console (Bochs/QEMU convention): each byte written goes to `console`.
//! - POST port (0x190 by default, plus the classic 0x80): each byte written is logged as
//!   `POST xx` on `post`.
//! - 0xF4: isa-debug-exit: a write stops the machine with [`StopRequest::DebugExit`]; the
//!   process exit code is `(value << 1) | 1`, as with QEMU's device.
//!
//! Reading 0xE9 returns 0xE9 (the Bochs "port E9 hack" presence check); other ports read
//! as all ones.

use std::io::Write;

use super::bus::{all_ones, Bus, StopRequest};

pub const DEBUG_CONSOLE_PORT: u16 = 0xE9;
pub const DEBUG_EXIT_PORT: u16 = 0xF4;
pub const DEFAULT_POST_PORT: u16 = 0x190;
pub const LEGACY_POST_PORT: u16 = 0x80;

pub struct DebugPorts {
    console: Box<dyn Write>,
    post: Box<dyn Write>,
    post_port: u16,
    pub(crate) stop: Option<StopRequest>,
    /// Last POST code written (for inspection).
    pub last_post: Option<u8>,
}

impl std::fmt::Debug for DebugPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DebugPorts")
            .field("post_port", &self.post_port)
            .field("stop", &self.stop)
            .field("last_post", &self.last_post)
            .finish()
    }
}

impl DebugPorts {
    pub fn new(console: Box<dyn Write>, post: Box<dyn Write>, post_port: u16) -> DebugPorts {
        DebugPorts {
            console,
            post,
            post_port,
            stop: None,
            last_post: None,
        }
    }

    pub fn flush(&mut self) {
        let _ = self.console.flush();
        let _ = self.post.flush();
    }
}

impl Bus for DebugPorts {
    fn io_read(&mut self, port: u16, size: u8) -> u32 {
        if port == DEBUG_CONSOLE_PORT && size == 1 {
            return 0xE9;
        }
        all_ones(size)
    }

    fn io_write(&mut self, port: u16, size: u8, value: u32) {
        if port == DEBUG_CONSOLE_PORT {
            // Wider writes send their low byte, as the ISA debugcon device does.
            let _ = self.console.write_all(&[value as u8]);
            if value as u8 == b'\n' {
                let _ = self.console.flush();
            }
        } else if port == self.post_port || port == LEGACY_POST_PORT {
            self.last_post = Some(value as u8);
            let _ = writeln!(self.post, "POST {:02x}", value as u8);
        } else if port == DEBUG_EXIT_PORT {
            let v = value & all_ones(size);
            self.stop = Some(StopRequest::DebugExit(v));
        }
    }

    fn take_stop(&mut self) -> Option<StopRequest> {
        self.stop.take()
    }
}
