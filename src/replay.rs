//! Host input as events at instruction counts: delivery into the machine, recording
//! (`--record FILE`) and replay (`--replay FILE`). The file format is described in
//! `docs/replay-format.md`.
//!
//! # Delivery rule
//!
//! Host input reaches the guest only through [`deliver`], called by the console between
//! `PcMachine::run` calls, so every input event has an exact instruction count: the
//! machine's `icount` when it was delivered. [`deliver`] hands the bytes to the device
//! (COM1's receive queue or the i8042 keyboard), counts the event in
//! [`PcMachine::host_inputs`], and brings the devices up to date at that count
//! (`run(0)`), so two events at the same count always meet the same device state,
//! however a live console grouped them. What the guest does with an event depends only
//! on the machine state at that count and on the event, never on host timing: host timing
//! decides only *which* count a live event gets (see `crate::console` for how the console
//! picks it).
//!
//! # Recording and snapshots
//!
//! A snapshot stores [`PcMachine::host_inputs`] (optional section `input`), so the
//! position of a snapshot in a recording is exact even when several events share the
//! snapshot's instruction count. Replaying onto a machine restored from a snapshot skips
//! the events it already has; recording onto a restored machine keeps the events that led
//! to it and drops any the file has after them (a run that went on after its checkpoint
//! and was then killed), then appends.

use std::fmt;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use crate::machine::PcMachine;

/// First word of a recording.
pub const MAGIC: &str = "x86emu-replay";
/// The format version this build writes and reads.
pub const VERSION: u32 = 1;
/// Largest recording file this build reads.
pub const MAX_FILE_BYTES: u64 = 1 << 30;
/// Largest payload of one event (COM1's host queue holds no more).
pub const MAX_EVENT_BYTES: usize = crate::devices::uart::INPUT_CAPACITY;

/// One piece of host input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// Bytes for COM1's receiver (`Uart16550::push_input`); a recorded event holds only
    /// the bytes the UART accepted.
    Com1(Vec<u8>),
    /// Terminal bytes typed on the PS/2 keyboard (`I8042::type_terminal_bytes`: keys,
    /// escape sequences for arrows and function keys).
    Keyboard(Vec<u8>),
    /// The user ended the session (Ctrl-A x). Not delivered to the machine; a replay stops
    /// here, as the recorded session did.
    Quit,
}

impl Input {
    /// Whether this event changes the machine (counts in [`PcMachine::host_inputs`]).
    pub fn is_delivered(&self) -> bool {
        !matches!(self, Input::Quit)
    }
}

/// An input event at an instruction count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub icount: u64,
    pub input: Input,
}

/// A recording or replay problem; the message names the file and, for a malformed
/// file, the line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayError(pub String);

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for ReplayError {}

/// Deliver `input` to `m` at its current instruction count (see the module docs).
/// Returns how many bytes the device accepted: COM1 takes no more than its host queue
/// has room for ([`crate::devices::uart::INPUT_CAPACITY`]); an event that delivers
/// nothing (no bytes accepted, or [`Input::Quit`]) leaves the machine unchanged and is
/// not counted. The keyboard takes the whole byte string (keys that do not fit in its
/// buffer are lost, as on a PC, identically in a replay).
pub fn deliver(m: &mut PcMachine, input: &Input) -> usize {
    let n = match input {
        Input::Com1(bytes) => m.board.com1.push_input(bytes),
        Input::Keyboard(bytes) => {
            if !bytes.is_empty() {
                m.board.kbc.type_terminal_bytes(bytes);
            }
            bytes.len()
        }
        Input::Quit => 0,
    };
    if n > 0 {
        m.host_inputs += 1;
        // Let the devices act on the input at this same instruction count (a zero budget
        // runs no instruction).
        m.run(0);
    }
    n
}

/// A parsed recording.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recording {
    /// The format version of the file.
    pub version: u32,
    /// The instruction count where the recording started.
    pub start_icount: u64,
    /// The machine's [`PcMachine::host_inputs`] when the recording started (0 for a
    /// recording from power-on; more when it started from a snapshot).
    pub events_before: u64,
    /// [`PcMachine::state_hash`] of the machine when the recording started, if recorded.
    pub start_state: Option<[u8; 32]>,
    /// The events, each with the byte offset just past its line.
    pub events: Vec<(Event, usize)>,
    /// Byte offset just past the header (the `start` and `state` lines).
    pub header_end: usize,
    /// The file ended in a line without its newline (a write cut short by a crash); it
    /// was ignored.
    pub torn_tail: bool,
}

impl Recording {
    /// The number of events that change the machine.
    pub fn delivered_events(&self) -> u64 {
        self.events
            .iter()
            .filter(|(e, _)| e.input.is_delivered())
            .count() as u64
    }
}

fn hex(bytes: &[u8]) -> String {
    crate::snapshot::to_hex(bytes)
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.is_empty() || s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The text line of an event (without the newline).
pub fn event_line(e: &Event) -> String {
    match &e.input {
        Input::Com1(b) => format!("{} com1 {}", e.icount, hex(b)),
        Input::Keyboard(b) => format!("{} kbd {}", e.icount, hex(b)),
        Input::Quit => format!("{} quit", e.icount),
    }
}

/// The header of a recording that starts at `icount` with `events_before` delivered
/// events and the machine state hash `state`.
pub fn header(icount: u64, events_before: u64, state: Option<&[u8; 32]>) -> String {
    let mut h = format!("{MAGIC} {VERSION}\nstart {icount} {events_before}\n");
    if let Some(s) = state {
        h += &format!("state {}\n", hex(s));
    }
    h
}

/// Parse a recording (the whole file). The file is untrusted: every field is checked
/// and errors name the line. A last line without its newline is ignored
/// ([`Recording::torn_tail`]).
pub fn parse(bytes: &[u8]) -> Result<Recording, String> {
    let complete = match bytes.iter().rposition(|&b| b == b'\n') {
        Some(i) => i + 1,
        None => 0,
    };
    let torn_tail = complete < bytes.len();
    let text = std::str::from_utf8(&bytes[..complete]).map_err(|e| {
        format!(
            "not a text file (invalid UTF-8 at byte {})",
            e.valid_up_to()
        )
    })?;
    let mut offset = 0usize;
    let mut lines = text.split_inclusive('\n').enumerate().map(|(i, l)| {
        offset += l.len();
        (i + 1, l.trim_end_matches(['\n', '\r']), offset)
    });
    let bad = |n: usize, what: &str| format!("line {n}: {what}");

    // Line 1: magic and version.
    let version = match lines.next() {
        Some((n, l, _)) => {
            let mut w = l.split_ascii_whitespace();
            if w.next() != Some(MAGIC) {
                return Err(format!(
                    "not an x86emu recording (the first line is not `{MAGIC} <version>`)"
                ));
            }
            let v: u32 = w
                .next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| bad(n, "missing or invalid format version"))?;
            if w.next().is_some() {
                return Err(bad(n, "unexpected text after the version"));
            }
            if v != VERSION {
                return Err(format!(
                    "format version {v} is not supported (this build reads version {VERSION})"
                ));
            }
            v
        }
        None => return Err("empty file".into()),
    };

    let mut start: Option<(u64, u64)> = None;
    let mut start_state = None;
    let mut header_end = 0;
    let mut events: Vec<(Event, usize)> = Vec::new();
    let mut quit_seen = false;
    for (n, l, end) in lines {
        let l = l.trim();
        if l.is_empty() || l.starts_with('#') {
            if events.is_empty() {
                header_end = end;
            }
            continue;
        }
        let w: Vec<&str> = l.split_ascii_whitespace().collect();
        let num = |s: &str, what: &str| -> Result<u64, String> {
            if s.bytes().all(|b| b.is_ascii_digit()) {
                s.parse()
                    .map_err(|_| bad(n, &format!("{what} out of range")))
            } else {
                Err(bad(n, &format!("invalid {what} `{s}`")))
            }
        };
        match w[0] {
            "start" => {
                if start.is_some() || !events.is_empty() {
                    return Err(bad(n, "`start` must come once, before the events"));
                }
                if w.len() != 3 {
                    return Err(bad(n, "expected `start <icount> <events-before>`"));
                }
                start = Some((num(w[1], "instruction count")?, num(w[2], "event count")?));
                header_end = end;
            }
            "state" => {
                if start.is_none() || start_state.is_some() || !events.is_empty() {
                    return Err(bad(
                        n,
                        "`state` must come once, after `start`, before the events",
                    ));
                }
                let h = (w.len() == 2)
                    .then(|| unhex(w[1]))
                    .flatten()
                    .filter(|h| h.len() == 32)
                    .ok_or_else(|| bad(n, "expected `state <64 hex digits>`"))?;
                start_state = Some(<[u8; 32]>::try_from(h.as_slice()).expect("32 bytes"));
                header_end = end;
            }
            first => {
                let Some((start_icount, _)) = start else {
                    return Err(bad(n, "an event before the `start` line"));
                };
                if quit_seen {
                    return Err(bad(n, "an event after `quit`"));
                }
                let icount = num(first, "instruction count")?;
                if icount < start_icount {
                    return Err(bad(
                        n,
                        "the instruction count is before the recording's start",
                    ));
                }
                if let Some((prev, _)) = events.last() {
                    if icount < prev.icount {
                        return Err(bad(n, "instruction counts must not decrease"));
                    }
                }
                let payload = |w: &[&str]| -> Result<Vec<u8>, String> {
                    let b = (w.len() == 3)
                        .then(|| unhex(w[2]))
                        .flatten()
                        .ok_or_else(|| {
                            bad(n, "expected `<icount> <target> <hex bytes>` (an even, non-zero number of hex digits)")
                        })?;
                    if b.len() > MAX_EVENT_BYTES {
                        return Err(bad(
                            n,
                            &format!("more than {MAX_EVENT_BYTES} bytes in one event"),
                        ));
                    }
                    Ok(b)
                };
                let input = match w.get(1).copied() {
                    Some("com1") => Input::Com1(payload(&w)?),
                    Some("kbd") => Input::Keyboard(payload(&w)?),
                    Some("quit") if w.len() == 2 => {
                        quit_seen = true;
                        Input::Quit
                    }
                    Some(t) => {
                        return Err(bad(n, &format!("unknown event `{t}` (com1, kbd, quit)")))
                    }
                    None => return Err(bad(n, "an instruction count without an event")),
                };
                events.push((Event { icount, input }, end));
            }
        }
    }
    let Some((start_icount, events_before)) = start else {
        return Err("no `start` line".into());
    };
    Ok(Recording {
        version,
        start_icount,
        events_before,
        start_state,
        events,
        header_end,
        torn_tail,
    })
}

/// Read and parse a recording file (bounded size).
pub fn read(path: &Path) -> Result<Recording, ReplayError> {
    let err = |e: String| ReplayError(format!("{}: {e}", path.display()));
    let f = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
    let mut bytes = Vec::new();
    f.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| err(e.to_string()))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(err(format!("larger than {MAX_FILE_BYTES} bytes")));
    }
    parse(&bytes).map_err(err)
}

/// Where `m` stands in `rec`: the index of the first event `m` has not seen yet.
/// Checks that the machine can be at this point of the recording.
fn position(rec: &Recording, m: &PcMachine) -> Result<usize, String> {
    let c = m.host_inputs;
    let now = m.cpu.state.icount;
    let total = rec.delivered_events();
    if now < rec.start_icount {
        return Err(format!(
            "the recording starts at instruction {}, this machine is at {now}",
            rec.start_icount
        ));
    }
    if c < rec.events_before || c > rec.events_before + total {
        return Err(format!(
            "this machine has received {c} input event(s); the recording holds events {} to {}",
            rec.events_before + 1,
            rec.events_before + total
        ));
    }
    // Skip the events the machine has already received.
    let mut skip = c - rec.events_before;
    let mut i = 0;
    while skip > 0 {
        if rec.events[i].0.input.is_delivered() {
            skip -= 1;
        }
        i += 1;
    }
    if i > 0 && rec.events[i - 1].0.icount > now {
        return Err(format!(
            "event {} of the recording is at instruction {}, after this machine's {now}: \
             the machine is not from this recording",
            c,
            rec.events[i - 1].0.icount
        ));
    }
    if let Some((e, _)) = rec.events.get(i) {
        if e.icount < now {
            return Err(format!(
                "the next event of the recording is at instruction {}, before this machine's \
                 {now}: the machine is not from this recording",
                e.icount
            ));
        }
    }
    Ok(i)
}

/// Appends events to a recording file, one line per event, each written to the file at
/// once (a crash loses at most a line being written, which readers ignore).
#[derive(Debug)]
pub struct Recorder {
    file: std::fs::File,
    path: PathBuf,
}

impl Recorder {
    /// Start recording `m`'s input into `path`.
    ///
    /// - A machine at instruction 0 (a fresh boot) starts a new recording: `path` is
    ///   created or, if it is a recording, replaced.
    /// - A machine restored from a snapshot continues the recording in `path` if it
    ///   exists: `path` must be the recording the snapshot was taken in (checked: its
    ///   events up to the snapshot's [`PcMachine::host_inputs`] and instruction count);
    ///   events after that point are dropped (the returned note says how many) and new
    ///   ones are appended. If `path` does not exist, a new recording starts at the
    ///   snapshot.
    ///
    /// A file that exists and is not a recording is never overwritten.
    pub fn start(path: &Path, m: &PcMachine) -> Result<(Recorder, Option<String>), ReplayError> {
        let err = |e: String| ReplayError(format!("{}: {e}", path.display()));
        let existing = match std::fs::metadata(path) {
            Ok(md) if md.len() > 0 => Some(read(path).map_err(|e| {
                ReplayError(format!(
                    "{e} (--record does not overwrite a file that is not a usable recording)"
                ))
            })?),
            _ => None,
        };
        let fresh = m.cpu.state.icount == 0 && m.host_inputs == 0;
        let mut note = None;
        let file = match existing {
            Some(rec) if !fresh => {
                let i = position(&rec, m).map_err(|e| {
                    err(format!("cannot continue this recording: {e} (use another file to start a new recording)"))
                })?;
                let keep_end = if i == 0 {
                    rec.header_end
                } else {
                    rec.events[i - 1].1
                };
                let dropped = rec.events.len() - i;
                if dropped > 0 || rec.torn_tail {
                    note = Some(format!(
                        "{}: continuing the recording after its event {}; {} event(s) recorded after that point {}dropped",
                        path.display(),
                        m.host_inputs,
                        dropped,
                        if rec.torn_tail { "and an incomplete last line " } else { "" }
                    ));
                }
                let f = std::fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .map_err(|e| err(e.to_string()))?;
                f.set_len(keep_end as u64).map_err(|e| err(e.to_string()))?;
                drop(f);
                std::fs::OpenOptions::new()
                    .append(true)
                    .open(path)
                    .map_err(|e| err(e.to_string()))?
            }
            _ => {
                let mut f = std::fs::File::create(path).map_err(|e| err(e.to_string()))?;
                let h = header(m.cpu.state.icount, m.host_inputs, Some(&m.state_hash()));
                f.write_all(h.as_bytes()).map_err(|e| err(e.to_string()))?;
                f
            }
        };
        Ok((
            Recorder {
                file,
                path: path.to_path_buf(),
            },
            note,
        ))
    }

    /// Append one event: one `write` of the whole line, then `fdatasync`, so the file
    /// always holds every event delivered before a snapshot or checkpoint written after
    /// it, even across a host crash.
    pub fn record(&mut self, e: &Event) -> io::Result<()> {
        let line = event_line(e) + "\n";
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.sync_data())
            .map_err(|err| {
                io::Error::new(
                    err.kind(),
                    format!("cannot write to {}: {err}", self.path.display()),
                )
            })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Feeds a recording back into a machine at the recorded instruction counts.
#[derive(Debug)]
pub struct Replayer {
    events: Vec<Event>,
    next: usize,
    path: PathBuf,
}

impl Replayer {
    /// Load `path` to replay into `m`, which must be the machine the recording started
    /// from (same configuration, firmware or kernel, disks: the recorded state hash is
    /// compared when `m` is at the recording's start) or a snapshot of it taken during
    /// the recorded session (or during a replay of it); events the machine already has
    /// are skipped. Returns a note when the file's last line was incomplete.
    pub fn start(path: &Path, m: &PcMachine) -> Result<(Replayer, Option<String>), ReplayError> {
        let rec = read(path)?;
        let err = |e: String| ReplayError(format!("{}: {e}", path.display()));
        let i = position(&rec, m).map_err(err)?;
        if let (Some(want), true) = (
            rec.start_state,
            m.cpu.state.icount == rec.start_icount && m.host_inputs == rec.events_before,
        ) {
            let have = m.state_hash();
            if have != want {
                return Err(err(format!(
                    "the recording starts from machine state {}, this machine is in state {}: \
                     replay it on the machine it was recorded on (same kernel or firmware, disks, \
                     -m, --mhz, --rtc-base, or the same snapshot)",
                    hex(&want),
                    hex(&have)
                )));
            }
        }
        let note = rec.torn_tail.then(|| {
            format!(
                "{}: ignoring an incomplete last line (the recording was cut off)",
                path.display()
            )
        });
        Ok((
            Replayer {
                events: rec.events.into_iter().skip(i).map(|(e, _)| e).collect(),
                next: 0,
                path: path.to_path_buf(),
            },
            note,
        ))
    }

    /// The instruction count of the next event, if any.
    pub fn next_icount(&self) -> Option<u64> {
        self.events.get(self.next).map(|e| e.icount)
    }

    /// Whether every event has been replayed.
    pub fn finished(&self) -> bool {
        self.next >= self.events.len()
    }

    /// The next event if it is due at instruction `now`; an error if it was due earlier
    /// (the machine did not stop there: the replay diverged).
    pub fn due(&mut self, now: u64) -> Result<Option<Input>, ReplayError> {
        match self.events.get(self.next) {
            Some(e) if e.icount == now => {
                self.next += 1;
                Ok(Some(e.input.clone()))
            }
            Some(e) if e.icount < now => Err(self.diverged(format!(
                "its event at instruction {} was missed (the machine is at {now})",
                e.icount
            ))),
            _ => Ok(None),
        }
    }

    /// A divergence error for this replay.
    pub fn diverged(&self, what: String) -> ReplayError {
        ReplayError(format!(
            "{}: the replay diverged from the recording: {what}",
            self.path.display()
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(text: &str) -> Result<Recording, String> {
        parse(text.as_bytes())
    }

    #[test]
    fn round_trip_and_offsets() {
        let events = [
            Event {
                icount: 10,
                input: Input::Com1(b"ls\n".to_vec()),
            },
            Event {
                icount: 10,
                input: Input::Keyboard(vec![0x1b, b'[', b'A']),
            },
            Event {
                icount: 2_000_000,
                input: Input::Quit,
            },
        ];
        let mut text = header(5, 3, Some(&[0xAB; 32]));
        let header_len = text.len();
        text += "# a comment\n\n";
        for e in &events {
            text += &event_line(e);
            text.push('\n');
        }
        let r = rec(&text).unwrap();
        assert_eq!(r.version, 1);
        assert_eq!((r.start_icount, r.events_before), (5, 3));
        assert_eq!(r.start_state, Some([0xAB; 32]));
        assert_eq!(r.header_end, header_len + "# a comment\n\n".len());
        let got: Vec<_> = r.events.iter().map(|(e, _)| e.clone()).collect();
        assert_eq!(got, events);
        assert_eq!(r.events.last().unwrap().1, text.len());
        assert_eq!(r.delivered_events(), 2);
        assert!(!r.torn_tail);
        assert_eq!(
            event_line(&events[0]),
            "10 com1 6c730a",
            "the documented line format"
        );
    }

    #[test]
    fn torn_last_line_is_ignored() {
        let r = rec("x86emu-replay 1\nstart 0 0\n7 com1 41\n9 com1 4").unwrap();
        assert!(r.torn_tail);
        assert_eq!(r.events.len(), 1);
        assert_eq!(
            r.events[0].1,
            "x86emu-replay 1\nstart 0 0\n7 com1 41\n".len()
        );
    }

    #[test]
    fn malformed_files_are_refused_with_the_line() {
        let cases: &[(&str, &str)] = &[
            ("", "empty file"),
            ("hello\n", "not an x86emu recording"),
            (
                "x86emu-replay 2\nstart 0 0\n",
                "format version 2 is not supported",
            ),
            (
                "x86emu-replay\n",
                "line 1: missing or invalid format version",
            ),
            ("x86emu-replay 1\n", "no `start` line"),
            (
                "x86emu-replay 1\n5 com1 41\n",
                "line 2: an event before the `start` line",
            ),
            ("x86emu-replay 1\nstart 0\n", "line 2: expected `start"),
            (
                "x86emu-replay 1\nstart 0 0\nstart 0 0\n",
                "line 3: `start` must come once",
            ),
            (
                "x86emu-replay 1\nstart 0 0\nstate 12\n",
                "line 3: expected `state <64 hex",
            ),
            (
                "x86emu-replay 1\nstart 9 0\n5 com1 41\n",
                "line 3: the instruction count is before",
            ),
            (
                "x86emu-replay 1\nstart 0 0\n5 com1 41\n4 com1 41\n",
                "line 4: instruction counts must not decrease",
            ),
            (
                "x86emu-replay 1\nstart 0 0\n5 com1 4\n",
                "line 3: expected `<icount> <target> <hex bytes>`",
            ),
            (
                "x86emu-replay 1\nstart 0 0\n5 com1 zz\n",
                "line 3: expected",
            ),
            ("x86emu-replay 1\nstart 0 0\n5 com1\n", "line 3: expected"),
            (
                "x86emu-replay 1\nstart 0 0\n5 mouse 41\n",
                "line 3: unknown event `mouse`",
            ),
            (
                "x86emu-replay 1\nstart 0 0\n-5 com1 41\n",
                "line 3: invalid instruction count `-5`",
            ),
            (
                "x86emu-replay 1\nstart 0 0\n99999999999999999999 com1 41\n",
                "line 3: instruction count out of range",
            ),
            (
                "x86emu-replay 1\nstart 0 0\n5 quit\n6 com1 41\n",
                "line 4: an event after `quit`",
            ),
            (
                "x86emu-replay 1\nstart 0 0\n5\n",
                "line 3: an instruction count without an event",
            ),
            (
                "x86emu-replay 1\nstart 0 0\n\u{ff}\n",
                "line 3: invalid instruction count",
            ),
        ];
        for (text, want) in cases {
            let e = rec(text).expect_err(text);
            assert!(e.contains(want), "{text:?}: {e}");
        }
        let mut bytes = b"x86emu-replay 1\nstart 0 0\n".to_vec();
        bytes.extend_from_slice(&[0xFF, b'\n']);
        assert!(parse(&bytes).unwrap_err().contains("not a text file"));
        let big = format!(
            "x86emu-replay 1\nstart 0 0\n1 com1 {}\n",
            "41".repeat(MAX_EVENT_BYTES + 1)
        );
        assert!(rec(&big).unwrap_err().contains("more than"));
    }
}
