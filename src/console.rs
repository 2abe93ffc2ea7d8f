//! The terminal side of `x86emu boot`: raw mode with guaranteed restore, non-blocking
//! reads of host input, the Ctrl-A escape keys, and rendering the VGA text screen with
//! ANSI sequences.
//!
//! Nothing here is guest-visible state: host input reaches the machine only through
//! [`crate::replay::deliver`], between `run` calls, at instruction-count boundaries.
//!
//! # When live input arrives
//!
//! [`run_machine`] runs the machine in slices that end at multiples of [`SLICE`]
//! instructions (and at `--max-instructions`), so slice boundaries are a function of the
//! instruction count alone. Host input read during a slice is delivered at the boundary
//! that ends it: to the keyboard at once, to COM1 at the first boundary where the guest
//! listens on the port (IER receive interrupt enabled; before that a driver's FIFO reset
//! would drop it). When the machine stops early because the guest waits for input and
//! no device has an event pending ([`crate::machine::MachineExit::Idle`]), its
//! instruction count stands still and input is delivered there. Host timing thus decides
//! only which boundary a byte arrives before; `--record` logs each delivery with its
//! instruction count and `--replay` delivers the same bytes at the same counts (events
//! may fall between slice boundaries there: a replay runs up to each event exactly).
//! Real-time pacing only sleeps between slices; it never changes where slices end.

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

pub const HELP: &str = "\r\nx86emu console keys:\r\n  Ctrl-A x   quit\r\n  Ctrl-A s   write a snapshot (x86emu-<icount>.snap, in --snapshot-dir or here)\r\n  Ctrl-A h   this help\r\n  Ctrl-A Ctrl-A   send Ctrl-A to the guest\r\n";

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

/// Slice length of the console loop in instructions (20 ms of virtual time at the
/// default 100 MHz): live host input is delivered at multiples of it.
pub const SLICE: u64 = 2_000_000;

/// What the terminal shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Display {
    /// The VGA text screen until the guest first writes to the serial port, then the
    /// serial port only (firmware and boot loaders draw on VGA; Linux with
    /// `console=ttyS0` talks on the serial port). A machine restored from a snapshot
    /// whose guest listens on COM1 starts on the serial port.
    Auto,
    /// The VGA text screen (serial output is still copied, below it).
    Text,
    /// The serial port only.
    None,
}

/// Where COM1's output goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SerialOut {
    /// The terminal (and stdin feeds COM1).
    Stdio,
    /// A file (created or truncated); host input goes to the keyboard.
    File(std::path::PathBuf),
    /// Discarded; host input goes to the keyboard.
    Null,
}

#[derive(Clone, Debug)]
pub struct ConsoleOptions {
    pub display: Display,
    pub serial: SerialOut,
    /// Stop after this many instructions of virtual time.
    pub max_instructions: Option<u64>,
    /// Sleep so that virtual time does not run ahead of the wall clock (interactive use;
    /// affects only when host input arrives, never what the guest computes: the guest's
    /// clocks follow the instruction count in either case).
    pub realtime: bool,
    /// Append every host input event, with its instruction count, to this file
    /// ([`crate::replay::Recorder::start`] says how an existing file is treated).
    pub record: Option<std::path::PathBuf>,
    /// Deliver the input events of this recording at their instruction counts instead of
    /// reading host input (a terminal still gets the Ctrl-A keys; other key presses are
    /// ignored). A `quit` event ends the run as Ctrl-A x did; after the last event the
    /// machine runs on without input.
    pub replay: Option<std::path::PathBuf>,
    /// Where Ctrl-A s writes `x86emu-<icount>.snap` (`None`: the current directory).
    pub snapshot_dir: Option<std::path::PathBuf>,
}

/// Write a snapshot of `m` atomically as `x86emu-<icount>.snap` in `dir` (`None`: the
/// current directory); returns the path and the size in bytes.
pub fn write_snapshot(
    m: &crate::machine::PcMachine,
    dir: Option<&std::path::Path>,
) -> Result<(std::path::PathBuf, usize), crate::snapshot::SnapshotError> {
    let dir = dir.unwrap_or(std::path::Path::new("."));
    let path = dir.join(format!("x86emu-{}.snap", m.cpu.state.icount));
    let bytes = m.save_snapshot();
    crate::snapshot::write_atomic(&path, &bytes)?;
    Ok((path, bytes.len()))
}

/// Why the console stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConsoleExit {
    Machine(crate::machine::MachineExit),
    /// The user pressed Ctrl-A x.
    Quit,
    /// A checkpoint signal arrived; the snapshot was written to this path.
    Checkpoint(std::path::PathBuf),
    /// Writing a checkpoint failed (after a signal), or the snapshot directory was
    /// taken over by another process: the message says why.
    CheckpointFailed(String),
    /// `--record`/`--replay` failed: the file is unusable or does not belong to this
    /// machine, cannot be written, or the replay diverged. The message says which.
    InputLog(String),
}

/// Drive `m` with the terminal attached: serial and VGA output to stdout, stdin (raw if
/// it is a terminal, else a pipe or file) to the serial port or the keyboard.
pub fn run_machine(
    m: &mut crate::machine::PcMachine,
    opts: &ConsoleOptions,
) -> io::Result<ConsoleExit> {
    run_machine_in(m, opts, None)
}

/// [`run_machine`] with a snapshot directory ([`crate::checkpoint`]): COM1 output is
/// appended to its `console.log`; a checkpoint signal writes a checkpoint and stops with
/// [`ConsoleExit::Checkpoint`]; periodic checkpoints are written when their interval has
/// passed. Checkpoints are taken between `run` slices and only read the machine.
pub fn run_machine_in(
    m: &mut crate::machine::PcMachine,
    opts: &ConsoleOptions,
    mut dir: Option<&mut crate::checkpoint::CheckpointDir>,
) -> io::Result<ConsoleExit> {
    use crate::machine::MachineExit;
    use std::time::{Duration, Instant};

    use crate::replay::{deliver, Event, Input, Recorder, Replayer};

    let mut recorder = None;
    let mut replayer = None;
    if let Some(p) = &opts.record {
        match Recorder::start(p, m) {
            Ok((r, note)) => {
                if let Some(n) = note {
                    eprintln!("x86emu: {n}");
                }
                recorder = Some(r);
            }
            Err(e) => return Ok(ConsoleExit::InputLog(e.to_string())),
        }
    }
    if let Some(p) = &opts.replay {
        match Replayer::start(p, m) {
            Ok((r, note)) => {
                if let Some(n) = note {
                    eprintln!("x86emu: {n}");
                }
                replayer = Some(r);
            }
            Err(e) => return Ok(ConsoleExit::InputLog(e.to_string())),
        }
    }
    // Record one delivered event.
    let log = |rec: &mut Option<Recorder>, icount: u64, input: Input| -> io::Result<()> {
        match rec {
            Some(r) => r.record(&Event { icount, input }),
            None => Ok(()),
        }
    };

    let raw = RawTerminal::enable();
    let interactive = raw.is_some();
    let mut out = io::stdout();
    let mut escape = EscapeFilter::default();
    let mut stdin_open = true;
    let mut pending_serial: Vec<u8> = Vec::new();
    // A restored machine whose guest listens on COM1 was talking there.
    let mut serial_seen = m.cpu.state.icount > 0 && m.board.com1.receiving();
    let mut last_screen: Option<Vec<u8>> = None;
    let mut last_render = Instant::now();
    let start = Instant::now();
    let t0 = m.cpu.state.icount;
    let end = opts.max_instructions.map(|n| t0.saturating_add(n));
    let mut serial_file = match &opts.serial {
        SerialOut::File(p) => Some(std::fs::File::create(p).map_err(|e| {
            io::Error::new(e.kind(), format!("cannot create {}: {e}", p.display()))
        })?),
        _ => None,
    };
    let mut buf = [0u8; 4096];
    loop {
        let now = m.cpu.state.icount;
        // Recorded input due now (also at the instruction limit: a live session delivers
        // what it read during its last slice there, before it stops).
        if let Some(r) = replayer.as_mut() {
            loop {
                match r.due(now) {
                    Ok(Some(Input::Quit)) => return Ok(ConsoleExit::Quit),
                    Ok(Some(input)) => {
                        let want = match &input {
                            Input::Com1(b) | Input::Keyboard(b) => b.len(),
                            Input::Quit => 0,
                        };
                        let n = deliver(m, &input);
                        if n != want {
                            return Ok(ConsoleExit::InputLog(
                                r.diverged(format!(
                                    "COM1 accepted {n} of {want} recorded bytes at instruction {now}"
                                ))
                                .to_string(),
                            ));
                        }
                    }
                    Ok(None) => break,
                    Err(e) => return Ok(ConsoleExit::InputLog(e.to_string())),
                }
            }
        }
        if end.is_some_and(|e| now >= e) {
            return Ok(ConsoleExit::Machine(MachineExit::InstructionLimit));
        }
        // The slice ends at the next multiple of SLICE, the instruction limit or the next
        // recorded event, whichever comes first.
        let mut stop = (now / SLICE + 1) * SLICE;
        if let Some(e) = end {
            stop = stop.min(e);
        }
        if let Some(t) = replayer.as_ref().and_then(|r| r.next_icount()) {
            stop = stop.min(t);
        }
        let exit = m.run(stop - now);

        // Guest output.
        let serial = m.board.com1.take_output();
        if let Some(d) = dir.as_deref_mut() {
            if let Err(e) = d.append_console(&serial) {
                return Ok(ConsoleExit::CheckpointFailed(e.to_string()));
            }
        }
        if !serial.is_empty() {
            match &opts.serial {
                SerialOut::Stdio => {
                    if !serial_seen && opts.display == Display::Auto && last_screen.is_some() {
                        out.write_all(b"\x1b[0m\r\n")?;
                    }
                    serial_seen = true;
                    out.write_all(&serial)?;
                }
                SerialOut::File(_) => {
                    if let Some(f) = serial_file.as_mut() {
                        f.write_all(&serial)?;
                    }
                }
                SerialOut::Null => {}
            }
        }
        let show_vga = match opts.display {
            Display::Text => true,
            Display::Auto => !serial_seen,
            Display::None => false,
        };
        if show_vga && last_render.elapsed() >= Duration::from_millis(40) {
            last_render = Instant::now();
            let screen = m.board.vga.screen();
            let blank = matches!(&screen, Screen::Text { cells, .. } if cells.iter().all(|c| c.ch == b' ' || c.ch == 0));
            if !blank || last_screen.is_some() {
                let frame = render(&screen);
                if last_screen.as_ref() != Some(&frame) {
                    out.write_all(&frame)?;
                    last_screen = Some(frame);
                }
            }
        }
        out.flush()?;

        // Checkpoints: the guest output so far is drained (the UART is empty) and in
        // console.log.
        if let Some(d) = dir.as_deref_mut() {
            if d.periodic_due(m.cpu.state.icount) {
                if let Err(e) = d.checkpoint(m) {
                    if matches!(e, crate::checkpoint::DirError::Conflict { .. }) {
                        return Ok(ConsoleExit::CheckpointFailed(e.to_string()));
                    }
                    // The previous generation is still there: warn, try again later.
                    eprint!("\r\nx86emu: warning: periodic checkpoint failed: {e}\r\n");
                    d.postpone();
                }
            }
            // After the periodic one: a signal that came while it was written finds
            // this state already saved.
            if crate::checkpoint::requested() {
                return Ok(match d.checkpoint_current(m) {
                    Ok(p) => ConsoleExit::Checkpoint(p),
                    Err(e) => ConsoleExit::CheckpointFailed(e.to_string()),
                });
            }
        }

        // The machine stopped (power-off, ...): no input is delivered after that.
        match exit {
            MachineExit::InstructionLimit | MachineExit::Idle => {}
            other => return Ok(ConsoleExit::Machine(other)),
        }

        // Host input.
        let idle = exit == MachineExit::Idle;
        let now = m.cpu.state.icount;
        if let Some(r) = replayer.as_ref() {
            // The recorded machine received input where this one waits for it.
            match r.next_icount() {
                Some(t) if idle && t > now => {
                    return Ok(ConsoleExit::InputLog(r.diverged(format!(
                        "the guest waits for input at instruction {now}; the next recorded event is at {t}"
                    )).to_string()))
                }
                _ => {}
            }
        }
        // With a replay, stdin is read only for the Ctrl-A keys of a terminal.
        if stdin_open && (replayer.is_none() || interactive) {
            let wait = if idle { 50 } else { 0 };
            match read_input(&mut buf, wait)? {
                None => stdin_open = false,
                Some(n) => {
                    let mut guest = Vec::new();
                    let cmds = if interactive {
                        escape.filter(&buf[..n], &mut guest)
                    } else {
                        guest.extend_from_slice(&buf[..n]);
                        Vec::new()
                    };
                    if replayer.is_some() {
                        guest.clear();
                    }
                    for c in cmds {
                        match c {
                            ConsoleCommand::Quit => {
                                log(&mut recorder, now, Input::Quit)?;
                                return Ok(ConsoleExit::Quit);
                            }
                            ConsoleCommand::Help => out.write_all(HELP.as_bytes())?,
                            ConsoleCommand::Snapshot => {
                                let msg = match write_snapshot(m, opts.snapshot_dir.as_deref()) {
                                    Ok((p, n)) => format!(
                                        "\r\n[x86emu: snapshot written to {} ({n} bytes); continue it with `x86emu resume {}`]\r\n",
                                        p.display(),
                                        p.display()
                                    ),
                                    Err(e) => format!("\r\n[x86emu: snapshot failed: {e}]\r\n"),
                                };
                                out.write_all(msg.as_bytes())?
                            }
                        }
                    }
                    if guest.is_empty() {
                    } else if (show_vga && opts.display == Display::Auto && !serial_seen)
                        || opts.serial != SerialOut::Stdio
                    {
                        deliver(m, &Input::Keyboard(guest.clone()));
                        log(&mut recorder, now, Input::Keyboard(guest))?;
                    } else {
                        pending_serial.extend_from_slice(&guest);
                    }
                }
            }
        } else if idle {
            let can_wake = match &replayer {
                Some(r) => !r.finished(),
                None => !pending_serial.is_empty() && m.board.com1.receiving(),
            };
            if !can_wake {
                // No more input can come: the guest would wait forever.
                return Ok(ConsoleExit::Machine(MachineExit::Idle));
            }
        }
        // Input waits until a guest driver listens on the port (before that, a FIFO
        // reset at driver start would drop it): scripts can pipe commands right away.
        if !pending_serial.is_empty() && m.board.com1.receiving() {
            let input = Input::Com1(pending_serial.clone());
            let n = deliver(m, &input);
            if n > 0 {
                log(
                    &mut recorder,
                    now,
                    Input::Com1(pending_serial[..n].to_vec()),
                )?;
            }
            pending_serial.drain(..n);
        }

        if opts.realtime {
            let guest = Duration::from_nanos(m.config.clock.ns(m.cpu.state.icount - t0));
            let wall = start.elapsed();
            if guest > wall + Duration::from_millis(5) {
                std::thread::sleep((guest - wall).min(Duration::from_millis(20)));
            }
        }
    }
}
