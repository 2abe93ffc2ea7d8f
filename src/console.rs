//! The terminal side of `x86emu boot`: raw mode with guaranteed restore, non-blocking
//! reads of host input, the Ctrl-A escape keys, and rendering the VGA text screen with
//! ANSI sequences.
//!
//! Nothing here is guest-visible state: host input reaches the machine only through the
//! machine's input queues, between `run` calls, at instruction-count boundaries.

use std::io::{self, Read, Write};

use crate::devices::vga::{Cell, Screen};

/// The terminal in raw mode; the previous mode is restored when this is dropped (also
/// on panic unwinding).
pub struct RawTerminal {
    saved: libc::termios,
}

impl std::fmt::Debug for RawTerminal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RawTerminal")
    }
}

/// Whether standard input is a terminal.
pub fn stdin_is_tty() -> bool {
    // SAFETY: isatty only inspects the file descriptor.
    unsafe { libc::isatty(libc::STDIN_FILENO) == 1 }
}

impl RawTerminal {
    /// Put the terminal on stdin in raw mode (no echo, no line buffering, no signals from
    /// Ctrl-C/Ctrl-Z: those keys go to the guest). `None` if stdin is not a terminal.
    pub fn enable() -> Option<RawTerminal> {
        if !stdin_is_tty() {
            return None;
        }
        // SAFETY: termios is plain old data; tcgetattr fills it for a valid fd.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: valid fd and a valid pointer to a termios struct.
        if unsafe { libc::tcgetattr(libc::STDIN_FILENO, &mut t) } != 0 {
            return None;
        }
        let saved = t;
        // SAFETY: cfmakeraw only edits the struct it is given.
        unsafe { libc::cfmakeraw(&mut t) };
        // Keep output post-processing so "\n" still returns the carriage.
        t.c_oflag |= libc::OPOST;
        // SAFETY: valid fd and termios.
        if unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &t) } != 0 {
            return None;
        }
        Some(RawTerminal { saved })
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        // SAFETY: restores the attributes read in `enable` on the same fd.
        unsafe {
            libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &self.saved);
        }
        // Show the cursor and reset colors in case a screen render left them changed.
        let _ = io::stdout().write_all(b"\x1b[0m\x1b[?25h");
        let _ = io::stdout().flush();
    }
}

/// Read what is available on stdin within `timeout_ms` (0: don't wait). Returns
/// `Ok(None)` at end of input.
pub fn read_input(buf: &mut [u8], timeout_ms: i32) -> io::Result<Option<usize>> {
    let mut pfd = libc::pollfd {
        fd: libc::STDIN_FILENO,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let r = unsafe { libc::poll(&mut pfd, 1, timeout_ms) };
    if r < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::Interrupted {
            return Ok(Some(0));
        }
        return Err(e);
    }
    if r == 0 || pfd.revents & (libc::POLLIN | libc::POLLHUP) == 0 {
        return Ok(Some(0));
    }
    match io::stdin().lock().read(buf)? {
        0 => Ok(None),
        n => Ok(Some(n)),
    }
}

/// The Ctrl-A escape: Ctrl-A x quits, Ctrl-A h lists the keys, Ctrl-A Ctrl-A sends a
/// literal Ctrl-A.
#[derive(Debug, Default)]
pub struct EscapeFilter {
    pending: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub enum ConsoleCommand {
    Quit,
    Help,
    Snapshot,
}

pub const HELP: &str = "\r\nx86emu console keys:\r\n  Ctrl-A x   quit\r\n  Ctrl-A s   write a snapshot (when a snapshot directory is set)\r\n  Ctrl-A h   this help\r\n  Ctrl-A Ctrl-A   send Ctrl-A to the guest\r\n";

impl EscapeFilter {
    /// Split host input into bytes for the guest and console commands.
    pub fn filter(&mut self, input: &[u8], guest: &mut Vec<u8>) -> Vec<ConsoleCommand> {
        let mut cmds = Vec::new();
        for &b in input {
            if self.pending {
                self.pending = false;
                match b {
                    b'x' | b'X' => cmds.push(ConsoleCommand::Quit),
                    b'h' | b'H' | b'?' => cmds.push(ConsoleCommand::Help),
                    b's' | b'S' => cmds.push(ConsoleCommand::Snapshot),
                    0x01 => guest.push(0x01),
                    _ => {}
                }
            } else if b == 0x01 {
                self.pending = true;
            } else {
                guest.push(b);
            }
        }
        cmds
    }
}

/// Code page 437 → Unicode for the text screen.
fn cp437(c: u8) -> char {
    const HIGH: &str = "ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■\u{a0}";
    const LOW: &str = " ☺☻♥♦♣♠•◘○◙♂♀♪♫☼►◄↕‼¶§▬↨↑↓→←∟↔▲▼";
    match c {
        0..=31 => LOW.chars().nth(c as usize).unwrap_or(' '),
        127 => '⌂',
        32..=126 => c as char,
        _ => HIGH.chars().nth(c as usize - 128).unwrap_or('?'),
    }
}

/// ANSI color index for a VGA color (VGA order is BGR, ANSI is RGB).
fn ansi_color(c: u8) -> u8 {
    const MAP: [u8; 8] = [0, 4, 2, 6, 1, 5, 3, 7];
    MAP[(c & 7) as usize]
}

/// Render a screen as a full-screen ANSI redraw.
pub fn render(screen: &Screen) -> Vec<u8> {
    let mut out = Vec::new();
    match screen {
        Screen::Text {
            cols,
            rows,
            cells,
            cursor,
        } => {
            out.extend_from_slice(b"\x1b[?25l\x1b[H");
            let mut last_attr = None;
            for r in 0..*rows {
                for c in 0..*cols {
                    let Cell { ch, attr } = cells[r * cols + c];
                    if last_attr != Some(attr) {
                        let fg = ansi_color(attr);
                        let bg = ansi_color(attr >> 4);
                        let bold = if attr & 8 != 0 { "1;" } else { "22;" };
                        out.extend_from_slice(format!("\x1b[{bold}3{fg};4{bg}m").as_bytes());
                        last_attr = Some(attr);
                    }
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(cp437(ch).encode_utf8(&mut buf).as_bytes());
                }
                out.extend_from_slice(b"\x1b[0m\x1b[K");
                last_attr = None;
                if r + 1 < *rows {
                    out.extend_from_slice(b"\r\n");
                }
            }
            if let Some((x, y)) = cursor {
                out.extend_from_slice(format!("\x1b[{};{}H\x1b[?25h", y + 1, x + 1).as_bytes());
            }
        }
        Screen::Graphics { width, height, bpp } => {
            out.extend_from_slice(
                format!(
                    "\x1b[H\x1b[2J[x86emu: the guest is in a {width}x{height}x{bpp} graphics mode, which this console cannot show]\r\n"
                )
                .as_bytes(),
            );
        }
        Screen::Off => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_keys() {
        let mut f = EscapeFilter::default();
        let mut g = Vec::new();
        assert!(f.filter(b"ab\x01", &mut g).is_empty());
        assert_eq!(f.filter(b"x", &mut g), vec![ConsoleCommand::Quit]);
        assert_eq!(g, b"ab");
        f.filter(b"\x01\x01c", &mut g);
        assert_eq!(g, b"ab\x01c");
    }

    #[test]
    fn renders_text_with_colors_and_cp437() {
        let screen = Screen::Text {
            cols: 2,
            rows: 1,
            cells: vec![
                Cell {
                    ch: b'A',
                    attr: 0x1F,
                },
                Cell {
                    ch: 0xC4,
                    attr: 0x1F,
                },
            ],
            cursor: Some((1, 0)),
        };
        let s = String::from_utf8(render(&screen)).unwrap();
        assert!(s.contains("A─"), "{s:?}");
        assert!(s.contains("\x1b[1;37;44m"), "{s:?}");
        assert!(s.ends_with("\x1b[1;2H\x1b[?25h"));
    }
}
