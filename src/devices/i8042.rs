//! Intel 8042 keyboard controller with a PS/2 keyboard and a PS/2 mouse (ports 0x60, 0x64).
//!
//! # Model
//!
//! - **Controller.** Status register (OBF, IBF, system flag, command/data, keyboard unlocked,
//!   AUXB for mouse data), the controller command byte and the rest of its 32-byte RAM
//!   (0x20-0x3F read, 0x60-0x7F write), and the commands BIOSes and Linux use: self tests
//!   (0xAA -> 0x55, 0xAB/0xA9 -> 0x00), interface enables (0xAD/0xAE, 0xA7/0xA8), 0xD4 write
//!   to the mouse, 0xD0/0xD1 output port (bit 0 = CPU reset, active low; bit 1 = A20),
//!   0xD2/0xD3 loop a byte back as keyboard/mouse data, 0xDD/0xDF A20 off/on, 0xC0 input
//!   port, 0xA4 password check, 0xE0 test inputs, 0xF0-0xFF output pulses (0xFE = reset).
//!   Writes are processed at once, so IBF always reads 0.
//! - **Keyboard.** Produces scancode set 2 (or set 1 after `0xF0 0x01`); the controller
//!   translates to set 1 when command-byte bit 6 is set, with the standard table and the
//!   F0-prefix rule (the next byte is translated and ORed with 0x80). Commands: 0xFF reset
//!   (ACK, 0xAA), 0xFE resend, 0xF6 defaults, 0xF5/0xF4 disable/enable scanning, 0xF3
//!   typematic (stored; there is no auto-repeat), 0xF2 identify (ACK, 0xAB, 0x83), 0xF0
//!   scancode set get/set (sets 1 and 2; set 3 is refused with 0xFE), 0xEE echo, 0xED LEDs,
//!   0xF7-0xFD acknowledged without effect; anything else gets 0xFE.
//! - **Mouse.** A standard PS/2 mouse (ID 0x00, 3-byte packets): 0xFF reset (ACK, 0xAA,
//!   0x00), 0xFE resend, 0xF6 defaults, 0xF5/0xF4 reporting, 0xF3 sample rate, 0xF2
//!   identify, 0xF0 remote mode, 0xEE/0xEC wrap mode, 0xEB read data, 0xEA stream mode,
//!   0xE9 status request, 0xE8 resolution, 0xE7/0xE6 scaling.
//! - **Output-buffer sequencing.** Bytes from the keyboard and mouse wait in their device
//!   queues (the keyboard's command responses ahead of its scancodes) while the output
//!   buffer is full. After the guest reads port 0x60, the next device byte enters the
//!   output buffer [`BYTE_GAP_NS`] of virtual time later (the PS/2 line is slow), so the
//!   IRQ line drops between bytes and an edge-triggered PIC sees one edge per byte. The
//!   keyboard has priority over the mouse. A controller response (to 0x20, 0xAA, ...) goes
//!   to the output buffer at once; a device byte it displaces is delivered next. Host input
//!   (key presses, mouse motion) only enters device queues; moving it into the output
//!   buffer happens in [`PortDevice::advance`], which [`PortDevice::next_deadline`]
//!   requests (possibly with a count at or before now, meaning "at once").
//! - **Outputs for the board:** [`I8042::irq1`], [`I8042::irq12`] (levels: the output
//!   buffer holds keyboard/mouse data and the interrupt is enabled in the command byte),
//!   [`I8042::a20`], [`I8042::take_reset_request`].

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::{PortDevice, Time};

pub const DATA_PORT: u16 = 0x60;
/// Status register (read) and command register (write).
pub const STATUS_PORT: u16 = 0x64;

/// Virtual time between a read of the output buffer and the next device byte entering it.
pub const BYTE_GAP_NS: u64 = 100_000;

pub const STATUS_OBF: u8 = 0x01;
pub const STATUS_IBF: u8 = 0x02;
pub const STATUS_SYS: u8 = 0x04;
pub const STATUS_CMD: u8 = 0x08;
pub const STATUS_UNLOCKED: u8 = 0x10;
pub const STATUS_AUXB: u8 = 0x20;

pub const CTR_KBD_INT: u8 = 0x01;
pub const CTR_AUX_INT: u8 = 0x02;
pub const CTR_SYS: u8 = 0x04;
pub const CTR_KBD_DIS: u8 = 0x10;
pub const CTR_AUX_DIS: u8 = 0x20;
pub const CTR_XLATE: u8 = 0x40;

pub const OUTPORT_RESET: u8 = 0x01;
pub const OUTPORT_A20: u8 = 0x02;
const OUTPORT_KBD_OBF: u8 = 0x10;
const OUTPORT_AUX_OBF: u8 = 0x20;

/// Command byte at power-on: keyboard interrupt and translation on, system flag clear
/// (cold boot); a BIOS rewrites it.
const CTR_POWER_ON: u8 = CTR_KBD_INT | CTR_XLATE;
/// Output port at power-on: reset deasserted, A20 enabled (as on QEMU's board and as port
/// 0x92 here), clock and data lines idle high.
const OUTPORT_POWER_ON: u8 = 0xCF;
/// Input port: keyboard not inhibited (bit 7).
const INPUT_PORT: u8 = 0x80;

pub const ACK: u8 = 0xFA;
pub const RESEND: u8 = 0xFE;
pub const BAT_OK: u8 = 0xAA;

/// Bytes a device buffers while the output buffer is busy.
pub const KBD_QUEUE_CAPACITY: usize = 4096;
pub const MOUSE_QUEUE_CAPACITY: usize = 1024;

/// The 8042's scancode translation (set 2 -> set 1). Codes from 0x84 up pass unchanged.
#[rustfmt::skip]
pub const SET2_TO_SET1: [u8; 256] = {
    const LOW: [u8; 0x85] = [
        // 0x00
        0xFF, 0x43, 0x41, 0x3F, 0x3D, 0x3B, 0x3C, 0x58, 0x64, 0x44, 0x42, 0x40, 0x3E, 0x0F, 0x29, 0x59,
        // 0x10
        0x65, 0x38, 0x2A, 0x70, 0x1D, 0x10, 0x02, 0x5A, 0x66, 0x71, 0x2C, 0x1F, 0x1E, 0x11, 0x03, 0x5B,
        // 0x20
        0x67, 0x2E, 0x2D, 0x20, 0x12, 0x05, 0x04, 0x5C, 0x68, 0x39, 0x2F, 0x21, 0x14, 0x13, 0x06, 0x5D,
        // 0x30
        0x69, 0x31, 0x30, 0x23, 0x22, 0x15, 0x07, 0x5E, 0x6A, 0x72, 0x32, 0x24, 0x16, 0x08, 0x09, 0x5F,
        // 0x40
        0x6B, 0x33, 0x25, 0x17, 0x18, 0x0B, 0x0A, 0x60, 0x6C, 0x34, 0x35, 0x26, 0x27, 0x19, 0x0C, 0x61,
        // 0x50
        0x6D, 0x73, 0x28, 0x74, 0x1A, 0x0D, 0x62, 0x6E, 0x3A, 0x36, 0x1C, 0x1B, 0x75, 0x2B, 0x63, 0x76,
        // 0x60
        0x55, 0x56, 0x77, 0x78, 0x79, 0x7A, 0x0E, 0x7B, 0x7C, 0x4F, 0x7D, 0x4B, 0x47, 0x7E, 0x7F, 0x6F,
        // 0x70
        0x52, 0x53, 0x50, 0x4C, 0x4D, 0x48, 0x01, 0x45, 0x57, 0x4E, 0x51, 0x4A, 0x37, 0x49, 0x46, 0x54,
        // 0x80
        0x80, 0x81, 0x82, 0x41, 0x54,
    ];
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = if i < LOW.len() { LOW[i] } else { i as u8 };
        i += 1;
    }
    t
};

/// Translate a set-2 byte stream to set 1 (what the controller does with bit 6 set, and
/// what a keyboard in set 1 sends).
pub fn translate_set2_to_set1(set2: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(set2.len());
    let mut f0 = false;
    for &b in set2 {
        if b == 0xF0 {
            f0 = true;
            continue;
        }
        out.push(SET2_TO_SET1[b as usize] | if f0 { 0x80 } else { 0 });
        f0 = false;
    }
    out
}

// ---- keys -------------------------------------------------------------------------------

/// A key of a US 101/102-key keyboard, named by its scancode-set-2 make code; bit 8 marks
/// the E0-prefixed (extended) keys. [`Key::PAUSE`] and [`Key::PRINT_SCREEN`] have their own
/// multi-byte sequences.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key(pub u16);

impl Key {
    const EXT: u16 = 0x100;
    pub const ESC: Key = Key(0x76);
    pub const F1: Key = Key(0x05);
    pub const F2: Key = Key(0x06);
    pub const F3: Key = Key(0x04);
    pub const F4: Key = Key(0x0C);
    pub const F5: Key = Key(0x03);
    pub const F6: Key = Key(0x0B);
    pub const F7: Key = Key(0x83);
    pub const F8: Key = Key(0x0A);
    pub const F9: Key = Key(0x01);
    pub const F10: Key = Key(0x09);
    pub const F11: Key = Key(0x78);
    pub const F12: Key = Key(0x07);
    pub const BACKQUOTE: Key = Key(0x0E);
    pub const MINUS: Key = Key(0x4E);
    pub const EQUAL: Key = Key(0x55);
    pub const BACKSPACE: Key = Key(0x66);
    pub const TAB: Key = Key(0x0D);
    pub const LBRACKET: Key = Key(0x54);
    pub const RBRACKET: Key = Key(0x5B);
    pub const BACKSLASH: Key = Key(0x5D);
    pub const CAPS_LOCK: Key = Key(0x58);
    pub const SEMICOLON: Key = Key(0x4C);
    pub const QUOTE: Key = Key(0x52);
    pub const ENTER: Key = Key(0x5A);
    pub const LSHIFT: Key = Key(0x12);
    pub const COMMA: Key = Key(0x41);
    pub const PERIOD: Key = Key(0x49);
    pub const SLASH: Key = Key(0x4A);
    pub const RSHIFT: Key = Key(0x59);
    pub const LCTRL: Key = Key(0x14);
    pub const LALT: Key = Key(0x11);
    pub const SPACE: Key = Key(0x29);
    pub const RALT: Key = Key(Self::EXT | 0x11);
    pub const RCTRL: Key = Key(Self::EXT | 0x14);
    pub const LGUI: Key = Key(Self::EXT | 0x1F);
    pub const RGUI: Key = Key(Self::EXT | 0x27);
    pub const MENU: Key = Key(Self::EXT | 0x2F);
    pub const INSERT: Key = Key(Self::EXT | 0x70);
    pub const DELETE: Key = Key(Self::EXT | 0x71);
    pub const HOME: Key = Key(Self::EXT | 0x6C);
    pub const END: Key = Key(Self::EXT | 0x69);
    pub const PAGE_UP: Key = Key(Self::EXT | 0x7D);
    pub const PAGE_DOWN: Key = Key(Self::EXT | 0x7A);
    pub const UP: Key = Key(Self::EXT | 0x75);
    pub const DOWN: Key = Key(Self::EXT | 0x72);
    pub const LEFT: Key = Key(Self::EXT | 0x6B);
    pub const RIGHT: Key = Key(Self::EXT | 0x74);
    pub const NUM_LOCK: Key = Key(0x77);
    pub const SCROLL_LOCK: Key = Key(0x7E);
    pub const KP_SLASH: Key = Key(Self::EXT | 0x4A);
    pub const KP_STAR: Key = Key(0x7C);
    pub const KP_MINUS: Key = Key(0x7B);
    pub const KP_PLUS: Key = Key(0x79);
    pub const KP_ENTER: Key = Key(Self::EXT | 0x5A);
    pub const KP_PERIOD: Key = Key(0x71);
    pub const KP_0: Key = Key(0x70);
    pub const KP_1: Key = Key(0x69);
    pub const KP_2: Key = Key(0x72);
    pub const KP_3: Key = Key(0x7A);
    pub const KP_4: Key = Key(0x6B);
    pub const KP_5: Key = Key(0x73);
    pub const KP_6: Key = Key(0x74);
    pub const KP_7: Key = Key(0x6C);
    pub const KP_8: Key = Key(0x75);
    pub const KP_9: Key = Key(0x7D);
    pub const PRINT_SCREEN: Key = Key(0x200);
    pub const PAUSE: Key = Key(0x201);

    /// The letter key `a`..`z` (either case).
    pub fn letter(c: u8) -> Option<Key> {
        const CODES: [u8; 26] = [
            0x1C, 0x32, 0x21, 0x23, 0x24, 0x2B, 0x34, 0x33, 0x43, 0x3B, 0x42, 0x4B, 0x3A, 0x31,
            0x44, 0x4D, 0x15, 0x2D, 0x1B, 0x2C, 0x3C, 0x2A, 0x1D, 0x22, 0x35, 0x1A,
        ];
        let c = c.to_ascii_lowercase();
        c.is_ascii_lowercase()
            .then(|| Key(u16::from(CODES[usize::from(c - b'a')])))
    }

    /// The digit key `0`..`9` of the main block.
    pub fn digit(c: u8) -> Option<Key> {
        const CODES: [u8; 10] = [0x45, 0x16, 0x1E, 0x26, 0x25, 0x2E, 0x36, 0x3D, 0x3E, 0x46];
        c.is_ascii_digit()
            .then(|| Key(u16::from(CODES[usize::from(c - b'0')])))
    }

    /// The set-2 bytes sent when the key goes down.
    pub fn make_code(self) -> Vec<u8> {
        match self {
            Key::PRINT_SCREEN => vec![0xE0, 0x12, 0xE0, 0x7C],
            Key::PAUSE => vec![0xE1, 0x14, 0x77, 0xE1, 0xF0, 0x14, 0xF0, 0x77],
            Key(k) if k & Self::EXT != 0 => vec![0xE0, k as u8],
            Key(k) => vec![k as u8],
        }
    }

    /// The set-2 bytes sent when the key goes up (Pause has none).
    pub fn break_code(self) -> Vec<u8> {
        match self {
            Key::PRINT_SCREEN => vec![0xE0, 0xF0, 0x7C, 0xE0, 0xF0, 0x12],
            Key::PAUSE => vec![],
            Key(k) if k & Self::EXT != 0 => vec![0xE0, 0xF0, k as u8],
            Key(k) => vec![0xF0, k as u8],
        }
    }
}

/// Modifiers held around one key stroke.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Mods {
    pub shift: bool,
    pub ctrl: bool,
    pub alt: bool,
}

/// The set-2 sequence of one complete key stroke: modifiers down, key down, key up,
/// modifiers up.
pub fn stroke(key: Key, mods: Mods) -> Vec<u8> {
    let held: Vec<Key> = [
        (mods.ctrl, Key::LCTRL),
        (mods.alt, Key::LALT),
        (mods.shift, Key::LSHIFT),
    ]
    .into_iter()
    .filter_map(|(on, k)| on.then_some(k))
    .collect();
    let mut v = Vec::new();
    for k in &held {
        v.extend(k.make_code());
    }
    v.extend(key.make_code());
    v.extend(key.break_code());
    for k in held.iter().rev() {
        v.extend(k.break_code());
    }
    v
}

/// The key (and shift state) that types the printable ASCII character `c` on a US layout.
pub fn ascii_key(c: u8) -> Option<(Key, bool)> {
    if let Some(k) = Key::letter(c) {
        return Some((k, c.is_ascii_uppercase()));
    }
    if let Some(k) = Key::digit(c) {
        return Some((k, false));
    }
    let (key, shift) = match c {
        b' ' => (Key::SPACE, false),
        b'`' => (Key::BACKQUOTE, false),
        b'~' => (Key::BACKQUOTE, true),
        b'-' => (Key::MINUS, false),
        b'_' => (Key::MINUS, true),
        b'=' => (Key::EQUAL, false),
        b'+' => (Key::EQUAL, true),
        b'[' => (Key::LBRACKET, false),
        b'{' => (Key::LBRACKET, true),
        b']' => (Key::RBRACKET, false),
        b'}' => (Key::RBRACKET, true),
        b'\\' => (Key::BACKSLASH, false),
        b'|' => (Key::BACKSLASH, true),
        b';' => (Key::SEMICOLON, false),
        b':' => (Key::SEMICOLON, true),
        b'\'' => (Key::QUOTE, false),
        b'"' => (Key::QUOTE, true),
        b',' => (Key::COMMA, false),
        b'<' => (Key::COMMA, true),
        b'.' => (Key::PERIOD, false),
        b'>' => (Key::PERIOD, true),
        b'/' => (Key::SLASH, false),
        b'?' => (Key::SLASH, true),
        b'!' => (Key(0x16), true),
        b'@' => (Key(0x1E), true),
        b'#' => (Key(0x26), true),
        b'$' => (Key(0x25), true),
        b'%' => (Key(0x2E), true),
        b'^' => (Key(0x36), true),
        b'&' => (Key(0x3D), true),
        b'*' => (Key(0x3E), true),
        b'(' => (Key(0x46), true),
        b')' => (Key(0x45), true),
        _ => return None,
    };
    Some((key, shift))
}

/// The key stroke for one terminal byte that is not part of an escape sequence.
fn terminal_byte(c: u8) -> Option<(Key, Mods)> {
    let ctrl = Mods {
        ctrl: true,
        ..Mods::default()
    };
    Some(match c {
        b'\r' | b'\n' => (Key::ENTER, Mods::default()),
        0x08 | 0x7F => (Key::BACKSPACE, Mods::default()),
        b'\t' => (Key::TAB, Mods::default()),
        0x1B => (Key::ESC, Mods::default()),
        0x00 => (Key(0x1E), ctrl),
        0x01..=0x1A => (Key::letter(c + 0x60)?, ctrl),
        0x1C => (Key::BACKSLASH, ctrl),
        0x1D => (Key::RBRACKET, ctrl),
        0x1E => (Key(0x36), ctrl),
        0x1F => (Key::MINUS, ctrl),
        0x20..=0x7E => {
            let (k, shift) = ascii_key(c)?;
            (
                k,
                Mods {
                    shift,
                    ..Mods::default()
                },
            )
        }
        _ => return None,
    })
}

/// The key of a CSI sequence `ESC [ params final` or an SS3 sequence `ESC O final`.
fn escape_key(params: &[u8], fin: u8, ss3: bool) -> Option<(Key, Mods)> {
    let mut nums = params.split(|&b| b == b';').map(|p| {
        p.iter().try_fold(0u32, |a, &d| {
            d.is_ascii_digit()
                .then(|| a.saturating_mul(10).saturating_add(u32::from(d - b'0')))
        })
    });
    let first = nums.next().flatten().unwrap_or(0);
    let m = nums.next().flatten().unwrap_or(1).saturating_sub(1);
    let mods = Mods {
        shift: m & 1 != 0,
        alt: m & 2 != 0,
        ctrl: m & 4 != 0,
    };
    let key = match fin {
        b'A' => Key::UP,
        b'B' => Key::DOWN,
        b'C' => Key::RIGHT,
        b'D' => Key::LEFT,
        b'H' => Key::HOME,
        b'F' => Key::END,
        b'P' if ss3 || first == 1 => Key::F1,
        b'Q' if ss3 || first == 1 => Key::F2,
        b'R' if ss3 || first == 1 => Key::F3,
        b'S' if ss3 || first == 1 => Key::F4,
        b'Z' if !ss3 => {
            return Some((
                Key::TAB,
                Mods {
                    shift: true,
                    ..mods
                },
            ))
        }
        b'~' if !ss3 => match first {
            1 | 7 => Key::HOME,
            2 => Key::INSERT,
            3 => Key::DELETE,
            4 | 8 => Key::END,
            5 => Key::PAGE_UP,
            6 => Key::PAGE_DOWN,
            11 => Key::F1,
            12 => Key::F2,
            13 => Key::F3,
            14 => Key::F4,
            15 => Key::F5,
            17 => Key::F6,
            18 => Key::F7,
            19 => Key::F8,
            20 => Key::F9,
            21 => Key::F10,
            23 => Key::F11,
            24 => Key::F12,
            _ => return None,
        },
        _ => return None,
    };
    Some((key, mods))
}

/// Convert bytes read from a terminal into set-2 key strokes, one complete sequence (with
/// its modifiers pressed and released around it) per typed key: US layout letters, digits
/// and punctuation (with Shift where needed), Enter (CR or LF), Backspace (BS or DEL), Tab,
/// Esc, Ctrl+letter and the other C0 controls, and the xterm/VT escape sequences for
/// arrows, Home/End/Insert/Delete/PageUp/PageDown and F1-F12 (CSI and SS3 forms, Linux
/// console `ESC [ [ A`-`E` for F1-F5, xterm modifier parameters such as `ESC [ 1 ; 5 C`).
///
/// Pass whole escape sequences (terminals deliver one per read): an ESC not followed by
/// `[` or `O` and a complete sequence is the Esc key, and the bytes after it are typed as
/// they are. Unknown sequences and non-ASCII bytes are dropped.
pub fn terminal_to_set2(input: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < input.len() {
        let c = input[i];
        if c == 0x1B && i + 1 < input.len() && matches!(input[i + 1], b'[' | b'O') {
            let ss3 = input[i + 1] == b'O';
            let start = i + 2;
            // Linux console function keys: ESC [ [ A..E.
            if !ss3 && input.get(start) == Some(&b'[') {
                if let Some(&f) = input.get(start + 1) {
                    if (b'A'..=b'E').contains(&f) {
                        let key =
                            [Key::F1, Key::F2, Key::F3, Key::F4, Key::F5][usize::from(f - b'A')];
                        out.push(stroke(key, Mods::default()));
                        i = start + 2;
                        continue;
                    }
                }
            }
            let mut j = start;
            while j < input.len() && (0x20..=0x3F).contains(&input[j]) {
                j += 1;
            }
            if j < input.len() && (0x40..=0x7E).contains(&input[j]) {
                if let Some((k, m)) = escape_key(&input[start..j], input[j], ss3) {
                    out.push(stroke(k, m));
                }
                i = j + 1;
                continue;
            }
            // Incomplete sequence: a plain Esc, then the rest as typed.
        }
        if let Some((k, m)) = terminal_byte(c) {
            out.push(stroke(k, m));
        }
        i += 1;
    }
    out
}

// ---- PS/2 keyboard ------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ps2Keyboard {
    /// Replies to commands; sent before any scancode.
    resp: VecDeque<u8>,
    /// Scancode bytes of key strokes, in the active set.
    scan: VecDeque<u8>,
    /// A command waiting for its parameter byte (0xED, 0xF0, 0xF3).
    expecting: Option<u8>,
    scanning: bool,
    scancode_set: u8,
    leds: u8,
    typematic: u8,
    last_sent: u8,
}

impl Ps2Keyboard {
    fn new() -> Ps2Keyboard {
        Ps2Keyboard {
            resp: VecDeque::new(),
            scan: VecDeque::new(),
            expecting: None,
            scanning: true,
            scancode_set: 2,
            leds: 0,
            typematic: 0x2B,
            last_sent: 0,
        }
    }

    fn defaults(&mut self) {
        self.scancode_set = 2;
        self.typematic = 0x2B;
    }

    pub fn leds(&self) -> u8 {
        self.leds
    }

    pub fn scancode_set(&self) -> u8 {
        self.scancode_set
    }

    pub fn scanning(&self) -> bool {
        self.scanning
    }

    pub fn typematic(&self) -> u8 {
        self.typematic
    }

    fn has_data(&self) -> bool {
        !self.resp.is_empty() || !self.scan.is_empty()
    }

    fn next_byte(&mut self) -> Option<u8> {
        let b = self.resp.pop_front().or_else(|| self.scan.pop_front())?;
        self.last_sent = b;
        Some(b)
    }

    /// Queue one key stroke's set-2 bytes atomically. False when scanning is disabled or
    /// the buffer has no room for the whole sequence.
    fn queue_set2(&mut self, set2: &[u8]) -> bool {
        if !self.scanning {
            return false;
        }
        let bytes = if self.scancode_set == 1 {
            translate_set2_to_set1(set2)
        } else {
            set2.to_vec()
        };
        if self.scan.len() + bytes.len() > KBD_QUEUE_CAPACITY {
            return false;
        }
        self.scan.extend(bytes);
        true
    }

    /// A byte from the controller.
    fn write(&mut self, b: u8) {
        if let Some(cmd) = self.expecting.take() {
            // A command byte in place of the parameter abandons the pending command.
            if b < 0xED {
                match cmd {
                    0xED => {
                        self.leds = b & 0x07;
                        self.resp.push_back(ACK);
                    }
                    0xF3 => {
                        self.typematic = b & 0x7F;
                        self.resp.push_back(ACK);
                    }
                    _ => match b {
                        0 => {
                            self.resp.push_back(ACK);
                            self.resp.push_back(self.scancode_set);
                        }
                        1 | 2 => {
                            self.scancode_set = b;
                            self.scan.clear();
                            self.resp.push_back(ACK);
                        }
                        _ => self.resp.push_back(RESEND),
                    },
                }
                return;
            }
        }
        match b {
            0xED | 0xF0 | 0xF3 => {
                self.resp.push_back(ACK);
                self.expecting = Some(b);
            }
            0xEE => self.resp.push_back(0xEE),
            0xF2 => self.resp.extend([ACK, 0xAB, 0x83]),
            0xF4 => {
                self.scan.clear();
                self.resp.push_back(ACK);
                self.scanning = true;
            }
            0xF5 => {
                self.scan.clear();
                self.resp.push_back(ACK);
                self.defaults();
                self.scanning = false;
            }
            0xF6 => {
                self.scan.clear();
                self.resp.push_back(ACK);
                self.defaults();
            }
            0xF7..=0xFD => self.resp.push_back(ACK),
            0xFE => self.resp.push_back(self.last_sent),
            0xFF => {
                self.scan.clear();
                self.resp.clear();
                self.resp.extend([ACK, BAT_OK]);
                self.defaults();
                self.scanning = true;
                self.leds = 0;
            }
            _ => self.resp.push_back(RESEND),
        }
    }
}

// ---- PS/2 mouse ---------------------------------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ps2Mouse {
    resp: VecDeque<u8>,
    packets: VecDeque<u8>,
    /// A command waiting for its parameter byte (0xE8, 0xF3).
    expecting: Option<u8>,
    reporting: bool,
    remote: bool,
    wrap: bool,
    scaling_2to1: bool,
    sample_rate: u8,
    resolution: u8,
    /// Buttons held: bit 0 left, bit 1 right, bit 2 middle.
    buttons: u8,
    /// Motion accumulated in remote mode.
    acc_dx: i32,
    acc_dy: i32,
    last_sent: u8,
}

impl Ps2Mouse {
    fn new() -> Ps2Mouse {
        Ps2Mouse {
            resp: VecDeque::new(),
            packets: VecDeque::new(),
            expecting: None,
            reporting: false,
            remote: false,
            wrap: false,
            scaling_2to1: false,
            sample_rate: 100,
            resolution: 2,
            buttons: 0,
            acc_dx: 0,
            acc_dy: 0,
            last_sent: 0,
        }
    }

    fn defaults(&mut self) {
        self.reporting = false;
        self.remote = false;
        self.scaling_2to1 = false;
        self.sample_rate = 100;
        self.resolution = 2;
        self.acc_dx = 0;
        self.acc_dy = 0;
    }

    pub fn reporting(&self) -> bool {
        self.reporting
    }

    pub fn sample_rate(&self) -> u8 {
        self.sample_rate
    }

    pub fn resolution(&self) -> u8 {
        self.resolution
    }

    fn has_data(&self) -> bool {
        !self.resp.is_empty() || !self.packets.is_empty()
    }

    fn next_byte(&mut self) -> Option<u8> {
        let b = self.resp.pop_front().or_else(|| self.packets.pop_front())?;
        self.last_sent = b;
        Some(b)
    }

    fn packet(&self, dx: i32, dy: i32) -> [u8; 3] {
        let clamp = |d: i32| (d.clamp(-256, 255), !(-256..=255).contains(&d));
        let (dx, xo) = clamp(dx);
        let (dy, yo) = clamp(dy);
        let b0 = 0x08
            | (self.buttons & 0x07)
            | if dx < 0 { 0x10 } else { 0 }
            | if dy < 0 { 0x20 } else { 0 }
            | if xo { 0x40 } else { 0 }
            | if yo { 0x80 } else { 0 };
        [b0, dx as u8, dy as u8]
    }

    fn scale(&self, d: i32) -> i32 {
        if !self.scaling_2to1 {
            return d;
        }
        let m = match d.unsigned_abs() {
            0 => 0,
            1 | 2 => 1,
            3 => 3,
            4 => 6,
            5 => 9,
            a => a.saturating_mul(2).min(i32::MAX as u32) as i32,
        };
        if d < 0 {
            -m
        } else {
            m
        }
    }

    fn event(&mut self, dx: i32, dy: i32, buttons: u8) {
        let changed = buttons & 0x07 != self.buttons;
        self.buttons = buttons & 0x07;
        if self.remote {
            self.acc_dx = self.acc_dx.saturating_add(dx);
            self.acc_dy = self.acc_dy.saturating_add(dy);
            return;
        }
        if !self.reporting || (dx == 0 && dy == 0 && !changed) {
            return;
        }
        if self.packets.len() + 3 > MOUSE_QUEUE_CAPACITY {
            return;
        }
        let p = self.packet(self.scale(dx), self.scale(dy));
        self.packets.extend(p);
    }

    fn write(&mut self, b: u8) {
        if self.wrap && b != 0xFF && b != 0xEC {
            self.resp.push_back(b);
            return;
        }
        if let Some(cmd) = self.expecting.take() {
            let ok = match cmd {
                0xF3 if matches!(b, 10 | 20 | 40 | 60 | 80 | 100 | 200) => {
                    self.sample_rate = b;
                    true
                }
                0xE8 if b <= 3 => {
                    self.resolution = b;
                    true
                }
                _ => false,
            };
            self.resp.push_back(if ok { ACK } else { RESEND });
            return;
        }
        // A command stops any packet transmission in progress.
        self.packets.clear();
        match b {
            0xE6 => {
                self.scaling_2to1 = false;
                self.resp.push_back(ACK);
            }
            0xE7 => {
                self.scaling_2to1 = true;
                self.resp.push_back(ACK);
            }
            0xE8 | 0xF3 => {
                self.expecting = Some(b);
                self.resp.push_back(ACK);
            }
            0xE9 => {
                let status = (u8::from(self.remote) << 6)
                    | (u8::from(self.reporting) << 5)
                    | (u8::from(self.scaling_2to1) << 4)
                    | ((self.buttons & 1) << 2)
                    | ((self.buttons & 4) >> 1)
                    | ((self.buttons & 2) >> 1);
                self.resp
                    .extend([ACK, status, self.resolution, self.sample_rate]);
            }
            0xEA => {
                self.remote = false;
                self.acc_dx = 0;
                self.acc_dy = 0;
                self.resp.push_back(ACK);
            }
            0xEB => {
                let p = self.packet(self.acc_dx, self.acc_dy);
                self.acc_dx = 0;
                self.acc_dy = 0;
                self.resp.push_back(ACK);
                self.resp.extend(p);
            }
            0xEC => {
                self.wrap = false;
                self.resp.push_back(ACK);
            }
            0xEE => {
                self.wrap = true;
                self.resp.push_back(ACK);
            }
            0xF0 => {
                self.remote = true;
                self.resp.push_back(ACK);
            }
            0xF2 => self.resp.extend([ACK, 0x00]),
            0xF4 => {
                self.reporting = true;
                self.resp.push_back(ACK);
            }
            0xF5 => {
                self.reporting = false;
                self.resp.push_back(ACK);
            }
            0xF6 => {
                self.defaults();
                self.resp.push_back(ACK);
            }
            0xFE => self.resp.push_back(self.last_sent),
            0xFF => {
                self.resp.clear();
                self.defaults();
                self.wrap = false;
                self.resp.extend([ACK, BAT_OK, 0x00]);
            }
            _ => self.resp.push_back(RESEND),
        }
    }
}

// ---- controller ---------------------------------------------------------------------------

/// A byte in (or on its way to) the output buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct OutByte {
    value: u8,
    /// Mouse data (AUXB, IRQ 12) rather than keyboard/controller data (IRQ 1).
    aux: bool,
    /// Generated by the controller itself (a command response or 0xD2/0xD3 data).
    from_ctrl: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct I8042 {
    /// Controller RAM; byte 0 is the command byte.
    ram: [u8; 32],
    outport: u8,
    /// Status bit 3: the last write went to the command port.
    last_write_cmd: bool,
    /// A controller command waiting for its data byte at port 0x60.
    pending_cmd: Option<u8>,
    obuf: Option<OutByte>,
    /// What port 0x60 reads when the output buffer is empty.
    last_data: u8,
    /// Device bytes displaced from the output buffer by a controller response.
    displaced: VecDeque<OutByte>,
    /// Translation saw an F0 prefix.
    xlate_f0: bool,
    /// No device byte enters the output buffer before this count (set by reads).
    ready_at: Option<u64>,
    reset_request: bool,
    kbd: Ps2Keyboard,
    mouse: Ps2Mouse,
}

impl I8042 {
    pub fn new() -> I8042 {
        let mut c = I8042 {
            ram: [0; 32],
            outport: 0,
            last_write_cmd: false,
            pending_cmd: None,
            obuf: None,
            last_data: 0,
            displaced: VecDeque::new(),
            xlate_f0: false,
            ready_at: None,
            reset_request: false,
            kbd: Ps2Keyboard::new(),
            mouse: Ps2Mouse::new(),
        };
        c.reset();
        c
    }

    pub fn command_byte(&self) -> u8 {
        self.ram[0]
    }

    pub fn keyboard(&self) -> &Ps2Keyboard {
        &self.kbd
    }

    pub fn mouse(&self) -> &Ps2Mouse {
        &self.mouse
    }

    /// IRQ 1: the output buffer holds keyboard (or controller) data and the keyboard
    /// interrupt is enabled.
    pub fn irq1(&self) -> bool {
        matches!(self.obuf, Some(b) if !b.aux) && self.ram[0] & CTR_KBD_INT != 0
    }

    /// IRQ 12: the output buffer holds mouse data and the mouse interrupt is enabled.
    pub fn irq12(&self) -> bool {
        matches!(self.obuf, Some(b) if b.aux) && self.ram[0] & CTR_AUX_INT != 0
    }

    /// The A20 gate output (output port bit 1).
    pub fn a20(&self) -> bool {
        self.outport & OUTPORT_A20 != 0
    }

    /// True once after the guest pulsed or drove the CPU reset line.
    pub fn take_reset_request(&mut self) -> bool {
        std::mem::take(&mut self.reset_request)
    }

    // ---- host input ---------------------------------------------------------------------

    /// Queue a set-2 byte sequence from the keyboard (one key event, kept whole). False if
    /// the keyboard is not scanning or its buffer is full.
    pub fn send_scancodes(&mut self, set2: &[u8]) -> bool {
        self.kbd.queue_set2(set2)
    }

    pub fn key_down(&mut self, key: Key) -> bool {
        self.send_scancodes(&key.make_code())
    }

    pub fn key_up(&mut self, key: Key) -> bool {
        let b = key.break_code();
        b.is_empty() || self.send_scancodes(&b)
    }

    /// Type terminal input (see [`terminal_to_set2`]). Returns how many key strokes were
    /// queued; the rest did not fit.
    pub fn type_terminal_bytes(&mut self, input: &[u8]) -> usize {
        terminal_to_set2(input)
            .iter()
            .take_while(|s| self.send_scancodes(s))
            .count()
    }

    /// Mouse motion and buttons: `dx` right, `dy` up (PS/2 convention), `buttons` bit 0
    /// left, bit 1 right, bit 2 middle. Produces a packet in stream mode with reporting
    /// on; accumulates in remote mode.
    pub fn mouse_event(&mut self, dx: i32, dy: i32, buttons: u8) {
        self.mouse.event(dx, dy, buttons);
    }

    // ---- output buffer ------------------------------------------------------------------

    fn kbd_enabled(&self) -> bool {
        self.ram[0] & CTR_KBD_DIS == 0
    }

    fn aux_enabled(&self) -> bool {
        self.ram[0] & CTR_AUX_DIS == 0
    }

    fn has_waiting(&self) -> bool {
        !self.displaced.is_empty()
            || (self.kbd_enabled() && self.kbd.has_data())
            || (self.aux_enabled() && self.mouse.has_data())
    }

    /// The next device byte for the output buffer, translated if needed.
    fn next_device_byte(&mut self) -> Option<OutByte> {
        if let Some(b) = self.displaced.pop_front() {
            return Some(b);
        }
        if self.kbd_enabled() {
            while let Some(b) = self.kbd.next_byte() {
                let value = if self.ram[0] & CTR_XLATE != 0 {
                    if b == 0xF0 {
                        self.xlate_f0 = true;
                        continue;
                    }
                    let v = SET2_TO_SET1[b as usize] | if self.xlate_f0 { 0x80 } else { 0 };
                    self.xlate_f0 = false;
                    v
                } else {
                    b
                };
                return Some(OutByte {
                    value,
                    aux: false,
                    from_ctrl: false,
                });
            }
        }
        if self.aux_enabled() {
            if let Some(value) = self.mouse.next_byte() {
                return Some(OutByte {
                    value,
                    aux: true,
                    from_ctrl: false,
                });
            }
        }
        None
    }

    /// Move the next device byte into an empty output buffer if the line is ready.
    fn refill(&mut self, now: u64) {
        if self.obuf.is_some() {
            return;
        }
        match self.ready_at {
            Some(r) if r > now => return,
            _ => self.ready_at = None,
        }
        self.obuf = self.next_device_byte();
    }

    /// A byte generated by the controller goes to the output buffer at once. A device
    /// byte there is put back to be delivered next; an unread controller byte is replaced.
    fn respond(&mut self, value: u8, aux: bool) {
        if let Some(old) = self.obuf.take() {
            if !old.from_ctrl {
                self.displaced.push_front(old);
            }
        }
        self.obuf = Some(OutByte {
            value,
            aux,
            from_ctrl: true,
        });
    }

    fn status(&self) -> u8 {
        let mut s = STATUS_UNLOCKED | (self.ram[0] & CTR_SYS);
        if let Some(b) = self.obuf {
            s |= STATUS_OBF;
            if b.aux {
                s |= STATUS_AUXB;
            }
        }
        if self.last_write_cmd {
            s |= STATUS_CMD;
        }
        s
    }

    fn read_outport(&self) -> u8 {
        let mut v = self.outport & !(OUTPORT_KBD_OBF | OUTPORT_AUX_OBF);
        match self.obuf {
            Some(b) if b.aux => v |= OUTPORT_AUX_OBF,
            Some(_) => v |= OUTPORT_KBD_OBF,
            None => {}
        }
        v
    }

    fn write_outport(&mut self, v: u8) {
        self.outport = v;
        if v & OUTPORT_RESET == 0 {
            self.reset_request = true;
        }
    }

    fn read_data(&mut self, t: &Time) -> u8 {
        if let Some(b) = self.obuf.take() {
            self.last_data = b.value;
            self.ready_at = Some(t.now.saturating_add(t.clock.icount_at_ns(BYTE_GAP_NS)));
        }
        self.last_data
    }

    fn write_data(&mut self, v: u8) {
        self.last_write_cmd = false;
        match self.pending_cmd.take() {
            Some(c @ 0x60..=0x7F) => self.ram[usize::from(c & 0x1F)] = v,
            Some(0xD1) => self.write_outport(v),
            Some(0xD2) => self.respond(v, false),
            Some(0xD3) => self.respond(v, true),
            Some(0xD4) => {
                // Sending to a device re-enables its interface (as QEMU's controller does).
                self.ram[0] &= !CTR_AUX_DIS;
                self.mouse.write(v);
            }
            _ => {
                self.ram[0] &= !CTR_KBD_DIS;
                self.kbd.write(v);
            }
        }
    }

    fn write_command(&mut self, cmd: u8) {
        self.last_write_cmd = true;
        self.pending_cmd = None;
        match cmd {
            0x20..=0x3F => self.respond(self.ram[usize::from(cmd & 0x1F)], false),
            0x60..=0x7F | 0xD1..=0xD4 => self.pending_cmd = Some(cmd),
            0xA4 => self.respond(0xF1, false), // no password installed
            0xA7 => self.ram[0] |= CTR_AUX_DIS,
            0xA8 => self.ram[0] &= !CTR_AUX_DIS,
            0xA9 | 0xAB => self.respond(0x00, false),
            0xAA => {
                self.ram[0] |= CTR_SYS;
                self.respond(0x55, false);
            }
            0xAD => self.ram[0] |= CTR_KBD_DIS,
            0xAE => self.ram[0] &= !CTR_KBD_DIS,
            0xC0 => self.respond(INPUT_PORT, false),
            0xD0 => self.respond(self.read_outport(), false),
            0xDD => self.outport &= !OUTPORT_A20,
            0xDF => self.outport |= OUTPORT_A20,
            0xE0 => self.respond(0x00, false),
            // Pulse the output-port lines whose bits are 0 in the low nibble; only the
            // reset line (bit 0) has an effect. 0xFF pulses nothing.
            0xF0..=0xFF if cmd & 1 == 0 => self.reset_request = true,
            _ => {}
        }
    }
}

impl PortDevice for I8042 {
    fn port_ranges(&self) -> Vec<(u16, u16)> {
        vec![(DATA_PORT, DATA_PORT), (STATUS_PORT, STATUS_PORT)]
    }

    /// Power-on state of the controller and both devices (their buffers are emptied).
    fn reset(&mut self) {
        self.ram = [0; 32];
        self.ram[0] = CTR_POWER_ON;
        self.outport = OUTPORT_POWER_ON;
        self.last_write_cmd = false;
        self.pending_cmd = None;
        self.obuf = None;
        self.last_data = 0;
        self.displaced.clear();
        self.xlate_f0 = false;
        self.ready_at = None;
        self.reset_request = false;
        self.kbd = Ps2Keyboard::new();
        self.mouse = Ps2Mouse::new();
    }

    fn io_read(&mut self, port: u16, size: u8, t: Time) -> u32 {
        self.refill(t.now);
        let b = match port {
            DATA_PORT => self.read_data(&t),
            STATUS_PORT => self.status(),
            _ => 0xFF,
        };
        let high = match size {
            1 => 0,
            2 => 0xFF00,
            _ => 0xFFFF_FF00,
        };
        u32::from(b) | high
    }

    fn io_write(&mut self, port: u16, _size: u8, value: u32, t: Time) {
        self.refill(t.now);
        match port {
            DATA_PORT => self.write_data(value as u8),
            STATUS_PORT => self.write_command(value as u8),
            _ => {}
        }
        self.refill(t.now);
    }

    fn next_deadline(&self) -> Option<u64> {
        (self.obuf.is_none() && self.has_waiting()).then(|| self.ready_at.unwrap_or(0))
    }

    fn advance(&mut self, t: Time) {
        self.refill(t.now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;

    /// BYTE_GAP_NS on a 100 MHz virtual clock.
    const GAP: u64 = 10_000;

    fn at(now: u64) -> Time {
        Time::new(now, Clock::new(100_000_000))
    }

    struct Rig {
        c: I8042,
        now: u64,
    }

    impl Rig {
        fn new() -> Rig {
            Rig {
                c: I8042::new(),
                now: 5000,
            }
        }
        fn status(&mut self) -> u8 {
            self.c.io_read(STATUS_PORT, 1, at(self.now)) as u8
        }
        fn data(&mut self) -> u8 {
            self.c.io_read(DATA_PORT, 1, at(self.now)) as u8
        }
        fn cmd(&mut self, v: u8) {
            self.c.io_write(STATUS_PORT, 1, v as u32, at(self.now));
        }
        fn put(&mut self, v: u8) {
            self.c.io_write(DATA_PORT, 1, v as u32, at(self.now));
        }
        /// Run due deadlines as the machine would, then let `dt` pass.
        fn wait(&mut self, dt: u64) {
            let end = self.now + dt;
            while let Some(d) = self.c.next_deadline() {
                if d > end {
                    break;
                }
                self.now = self.now.max(d);
                self.c.advance(at(self.now));
                if self.status() & STATUS_OBF != 0 {
                    break;
                }
            }
            self.now = self.now.max(end);
            self.c.advance(at(self.now));
        }
        /// Everything the controller has to say: (byte, from the mouse).
        fn drain(&mut self) -> Vec<(u8, bool)> {
            let mut v = Vec::new();
            loop {
                self.c.advance(at(self.now));
                let s = self.status();
                if s & STATUS_OBF != 0 {
                    v.push((self.data(), s & STATUS_AUXB != 0));
                    continue;
                }
                match self.c.next_deadline() {
                    Some(d) => self.now = self.now.max(d),
                    None => return v,
                }
            }
        }
        fn kbd_bytes(&mut self) -> Vec<u8> {
            let v = self.drain();
            assert!(v.iter().all(|&(_, aux)| !aux), "{v:x?}");
            v.into_iter().map(|(b, _)| b).collect()
        }
        fn aux_bytes(&mut self) -> Vec<u8> {
            let v = self.drain();
            assert!(v.iter().all(|&(_, aux)| aux), "{v:x?}");
            v.into_iter().map(|(b, _)| b).collect()
        }
        fn set_ctr(&mut self, v: u8) {
            self.cmd(0x60);
            self.put(v);
        }
    }

    #[test]
    fn self_tests_and_status() {
        let mut r = Rig::new();
        assert_eq!(
            r.status(),
            STATUS_UNLOCKED,
            "cold boot: SYS clear, nothing to read"
        );
        r.cmd(0xAA);
        assert_eq!(
            r.status(),
            STATUS_UNLOCKED | STATUS_CMD | STATUS_SYS | STATUS_OBF
        );
        assert_eq!(r.data(), 0x55);
        assert_eq!(r.status() & STATUS_OBF, 0);
        for (c, want) in [(0xAB, 0x00), (0xA9, 0x00), (0xA4, 0xF1), (0xC0, 0x80)] {
            r.cmd(c);
            assert_eq!(r.kbd_bytes(), vec![want], "command {c:#x}");
        }
        // An empty output buffer reads back the last byte.
        assert_eq!(r.data(), 0x80);
        // Status bit 3 follows the last port written.
        r.cmd(0x20);
        r.data();
        assert_ne!(r.status() & STATUS_CMD, 0);
        r.put(0xEE);
        assert_eq!(r.status() & STATUS_CMD, 0);
        // 16-bit read of 0x64: the neighbouring port is not ours.
        assert_eq!(r.c.io_read(STATUS_PORT, 2, at(r.now)) & 0xFF00, 0xFF00);
    }

    #[test]
    fn command_byte_and_ram() {
        let mut r = Rig::new();
        r.cmd(0x20);
        assert_eq!(r.kbd_bytes(), vec![CTR_POWER_ON]);
        r.set_ctr(0x47);
        assert_eq!(r.c.command_byte(), 0x47);
        assert_ne!(r.status() & STATUS_SYS, 0, "SYS follows command byte bit 2");
        r.cmd(0x20);
        assert!(r.c.irq1(), "controller data raises IRQ 1 when enabled");
        assert_eq!(r.data(), 0x47);
        assert!(!r.c.irq1());
        r.cmd(0xAD);
        r.cmd(0xA7);
        assert_eq!(r.c.command_byte(), 0x47 | CTR_KBD_DIS | CTR_AUX_DIS);
        r.cmd(0xAE);
        assert_eq!(r.c.command_byte(), 0x47 | CTR_AUX_DIS);
        r.cmd(0xA8);
        assert_eq!(r.c.command_byte(), 0x47);
        r.set_ctr(0x00);
        assert_eq!(r.status() & STATUS_SYS, 0);
        r.cmd(0x20);
        assert!(!r.c.irq1(), "interrupt disabled");
        assert_eq!(r.data(), 0x00);
        // Other RAM bytes.
        r.cmd(0x65);
        r.put(0x99);
        r.cmd(0x25);
        assert_eq!(r.kbd_bytes(), vec![0x99]);
        assert_eq!(r.c.command_byte(), 0x00);
    }

    #[test]
    fn keyboard_reset_identify_and_scancode_set_untranslated() {
        let mut r = Rig::new();
        r.set_ctr(CTR_KBD_INT);
        r.put(0xFF);
        assert_eq!(r.kbd_bytes(), vec![ACK, BAT_OK]);
        r.put(0xF2);
        assert_eq!(r.kbd_bytes(), vec![ACK, 0xAB, 0x83]);
        r.put(0xF0);
        r.put(0x00);
        assert_eq!(r.kbd_bytes(), vec![ACK, ACK, 0x02]);
        r.put(0xF0);
        r.put(0x01);
        assert_eq!(r.kbd_bytes(), vec![ACK, ACK]);
        assert_eq!(r.c.keyboard().scancode_set(), 1);
        r.put(0xF0);
        r.put(0x00);
        assert_eq!(r.kbd_bytes(), vec![ACK, ACK, 0x01]);
        // Set 1 from the keyboard itself: 'a' is 1E / 9E.
        r.c.key_down(Key::letter(b'a').unwrap());
        r.c.key_up(Key::letter(b'a').unwrap());
        assert_eq!(r.kbd_bytes(), vec![0x1E, 0x9E]);
        // Set 3 is refused and the set stays.
        r.put(0xF0);
        r.put(0x03);
        assert_eq!(r.kbd_bytes(), vec![ACK, RESEND]);
        assert_eq!(r.c.keyboard().scancode_set(), 1);
        // Reset restores set 2.
        r.put(0xFF);
        assert_eq!(r.kbd_bytes(), vec![ACK, BAT_OK]);
        assert_eq!(r.c.keyboard().scancode_set(), 2);
    }

    #[test]
    fn keyboard_commands() {
        let mut r = Rig::new();
        r.set_ctr(0);
        r.put(0xED);
        r.put(0x07);
        assert_eq!(r.kbd_bytes(), vec![ACK, ACK]);
        assert_eq!(r.c.keyboard().leds(), 7);
        r.put(0xF3);
        r.put(0x20);
        assert_eq!(r.kbd_bytes(), vec![ACK, ACK]);
        assert_eq!(r.c.keyboard().typematic(), 0x20);
        r.put(0xEE);
        assert_eq!(r.kbd_bytes(), vec![0xEE]);
        r.put(0xFE);
        assert_eq!(r.kbd_bytes(), vec![0xEE], "resend repeats the last byte");
        r.put(0x42);
        assert_eq!(r.kbd_bytes(), vec![RESEND], "unknown command");
        // A command in place of the LED parameter abandons the LED command.
        r.put(0xED);
        r.put(0xF2);
        assert_eq!(r.kbd_bytes(), vec![ACK, ACK, 0xAB, 0x83]);
        assert_eq!(r.c.keyboard().leds(), 7);
        // F5 disables scanning (key presses are dropped), F4 enables it again.
        r.put(0xF5);
        assert_eq!(r.kbd_bytes(), vec![ACK]);
        assert!(!r.c.key_down(Key::ENTER));
        assert!(r.kbd_bytes().is_empty());
        r.put(0xF4);
        assert_eq!(r.kbd_bytes(), vec![ACK]);
        assert!(r.c.key_down(Key::ENTER));
        assert_eq!(r.kbd_bytes(), vec![0x5A]);
        r.put(0xF6);
        assert_eq!(r.kbd_bytes(), vec![ACK]);
        assert_eq!(r.c.keyboard().typematic(), 0x2B);
        // Command replies come before queued scancodes.
        r.c.key_down(Key::SPACE);
        r.c.key_up(Key::SPACE);
        r.wait(GAP);
        assert_eq!(r.data(), 0x29);
        r.put(0xEE);
        assert_eq!(r.kbd_bytes(), vec![0xEE, 0xF0, 0x29]);
    }

    #[test]
    fn translation_to_set1() {
        let mut r = Rig::new();
        r.set_ctr(CTR_KBD_INT | CTR_XLATE);
        let cases: [(Key, &[u8], &[u8]); 8] = [
            (Key::letter(b'a').unwrap(), &[0x1E], &[0x9E]),
            (Key::ESC, &[0x01], &[0x81]),
            (Key::LSHIFT, &[0x2A], &[0xAA]),
            (Key::ENTER, &[0x1C], &[0x9C]),
            (Key::F7, &[0x41], &[0xC1]),
            (Key::UP, &[0xE0, 0x48], &[0xE0, 0xC8]),
            (Key::RCTRL, &[0xE0, 0x1D], &[0xE0, 0x9D]),
            (Key::DELETE, &[0xE0, 0x53], &[0xE0, 0xD3]),
        ];
        for (k, make, brk) in cases {
            r.c.key_down(k);
            assert_eq!(r.kbd_bytes(), make, "{k:?} make");
            r.c.key_up(k);
            assert_eq!(r.kbd_bytes(), brk, "{k:?} break");
        }
        r.c.key_down(Key::PAUSE);
        assert_eq!(r.kbd_bytes(), vec![0xE1, 0x1D, 0x45, 0xE1, 0x9D, 0xC5]);
        r.c.key_down(Key::PRINT_SCREEN);
        r.c.key_up(Key::PRINT_SCREEN);
        assert_eq!(
            r.kbd_bytes(),
            vec![0xE0, 0x2A, 0xE0, 0x37, 0xE0, 0xB7, 0xE0, 0xAA]
        );
        // Responses are translated too: identify gives AB 41, the set query 41.
        r.put(0xF2);
        assert_eq!(r.kbd_bytes(), vec![ACK, 0xAB, 0x41]);
        r.put(0xF0);
        r.put(0x00);
        assert_eq!(r.kbd_bytes(), vec![ACK, ACK, 0x41]);
        // Without the bit, set 2 passes through.
        r.set_ctr(CTR_KBD_INT);
        r.c.key_down(Key::UP);
        r.c.key_up(Key::UP);
        assert_eq!(r.kbd_bytes(), vec![0xE0, 0x75, 0xE0, 0xF0, 0x75]);
        // The table agrees with the stand-alone translator.
        assert_eq!(
            translate_set2_to_set1(&[0x1C, 0xF0, 0x1C, 0xE0, 0xF0, 0x6B]),
            vec![0x1E, 0x9E, 0xE0, 0xCB]
        );
    }

    #[test]
    fn a20_through_output_port_and_commands() {
        let mut r = Rig::new();
        assert!(r.c.a20());
        r.cmd(0xD0);
        let out = r.kbd_bytes();
        assert_eq!(out[0] & (OUTPORT_A20 | OUTPORT_RESET), 0x03);
        r.cmd(0xD1);
        r.put(0xDD);
        assert!(!r.c.a20());
        assert!(!r.c.take_reset_request());
        r.cmd(0xD0);
        assert_eq!(r.kbd_bytes()[0] & OUTPORT_A20, 0);
        r.cmd(0xD1);
        r.put(0xDF);
        assert!(r.c.a20());
        r.cmd(0xDD);
        assert!(!r.c.a20());
        r.cmd(0xDF);
        assert!(r.c.a20());
        // D0 shows the IRQ lines of a full output buffer in bits 4/5.
        r.cmd(0xD2);
        r.put(0x12);
        r.cmd(0xD0);
        assert_eq!(r.data() & 0x30, 0x10, "keyboard data was in the buffer");
        assert!(
            r.kbd_bytes().is_empty(),
            "D0's reply replaced the unread D2 byte"
        );
        // A D1 write with bit 0 clear drives the reset line.
        r.cmd(0xD1);
        r.put(0xDE);
        assert!(r.c.take_reset_request());
        assert!(!r.c.take_reset_request());
    }

    #[test]
    fn reset_pulse() {
        let mut r = Rig::new();
        r.cmd(0xFF);
        assert!(!r.c.take_reset_request(), "0xFF pulses nothing");
        r.cmd(0xF1);
        assert!(!r.c.take_reset_request());
        r.cmd(0xFE);
        assert!(r.c.take_reset_request());
        assert!(!r.c.take_reset_request());
        r.cmd(0xF0);
        assert!(r.c.take_reset_request());
    }

    #[test]
    fn mouse_through_d4_with_auxb_and_irq12() {
        let mut r = Rig::new();
        r.set_ctr(CTR_KBD_INT | CTR_AUX_INT | CTR_XLATE);
        r.cmd(0xD4);
        r.put(0xFF);
        assert!(r.c.irq12());
        assert!(!r.c.irq1());
        assert_ne!(r.status() & STATUS_AUXB, 0);
        assert_eq!(
            r.aux_bytes(),
            vec![ACK, BAT_OK, 0x00],
            "mouse bytes are not translated"
        );
        r.cmd(0xD4);
        r.put(0xF2);
        assert_eq!(r.aux_bytes(), vec![ACK, 0x00]);
        for (c, p) in [(0xF3u8, 200u8), (0xF3, 100), (0xF3, 80), (0xE8, 3)] {
            r.cmd(0xD4);
            r.put(c);
            r.cmd(0xD4);
            r.put(p);
        }
        assert_eq!(r.aux_bytes(), vec![ACK; 8]);
        r.cmd(0xD4);
        r.put(0xF3);
        r.cmd(0xD4);
        r.put(55);
        assert_eq!(r.aux_bytes(), vec![ACK, RESEND], "invalid sample rate");
        r.cmd(0xD4);
        r.put(0xE9);
        assert_eq!(r.aux_bytes(), vec![ACK, 0x00, 3, 80]);
        // No packets before reporting is enabled.
        r.c.mouse_event(5, 5, 0);
        assert!(r.aux_bytes().is_empty());
        r.cmd(0xD4);
        r.put(0xF4);
        assert_eq!(r.aux_bytes(), vec![ACK]);
        r.c.mouse_event(10, -3, 0b001);
        assert_eq!(r.aux_bytes(), vec![0x09 | 0x20, 10, 0xFD]);
        r.c.mouse_event(-300, 0, 0);
        assert_eq!(r.aux_bytes(), vec![0x08 | 0x10 | 0x40, 0x00, 0x00]);
        // Status with the left button held and reporting on.
        r.c.mouse_event(0, 0, 0b001);
        r.aux_bytes();
        r.cmd(0xD4);
        r.put(0xE9);
        assert_eq!(r.aux_bytes(), vec![ACK, 0x24, 3, 80]);
        // 2:1 scaling.
        r.cmd(0xD4);
        r.put(0xE7);
        r.aux_bytes();
        r.c.mouse_event(4, 10, 0);
        assert_eq!(r.aux_bytes(), vec![0x08, 6, 20]);
        // Remote mode: motion accumulates until read with 0xEB.
        r.cmd(0xD4);
        r.put(0xF0);
        r.aux_bytes();
        r.c.mouse_event(3, 0, 0);
        r.c.mouse_event(4, -1, 0);
        assert!(r.aux_bytes().is_empty());
        r.cmd(0xD4);
        r.put(0xEB);
        assert_eq!(r.aux_bytes(), vec![ACK, 0x28, 7, 0xFF]);
        // Wrap mode echoes until 0xEC.
        r.cmd(0xD4);
        r.put(0xEE);
        r.cmd(0xD4);
        r.put(0x33);
        r.cmd(0xD4);
        r.put(0xEC);
        assert_eq!(r.aux_bytes(), vec![ACK, 0x33, ACK]);
        // Aux interrupt disabled: AUXB still set, no IRQ 12.
        r.set_ctr(CTR_KBD_INT);
        r.cmd(0xD4);
        r.put(0xF2);
        r.wait(GAP);
        assert_ne!(r.status() & STATUS_AUXB, 0);
        assert!(!r.c.irq12() && !r.c.irq1());
    }

    /// Linux's i8042_check_aux: loop a byte back with 0xD3; it must come back as mouse data.
    #[test]
    fn aux_loopback_and_interface_disable() {
        let mut r = Rig::new();
        r.set_ctr(CTR_AUX_INT);
        r.cmd(0xD3);
        r.put(0x5A);
        assert!(r.c.irq12());
        assert_eq!(
            r.status() & (STATUS_AUXB | STATUS_OBF),
            STATUS_AUXB | STATUS_OBF
        );
        assert_eq!(r.data(), 0x5A);
        r.cmd(0xD2);
        r.put(0xA5);
        assert_eq!(r.status() & (STATUS_AUXB | STATUS_OBF), STATUS_OBF);
        assert_eq!(r.data(), 0xA5);
        // A disabled keyboard interface holds its bytes back.
        r.cmd(0xAD);
        r.c.key_down(Key::TAB);
        assert!(r.kbd_bytes().is_empty());
        r.cmd(0xAE);
        assert_eq!(r.kbd_bytes(), vec![0x0D], "untranslated: XLATE is off");
        // So does a disabled mouse interface.
        r.cmd(0xD4);
        r.put(0xF2);
        // The reply is still on the line (the gap after the last read) when the
        // interface is disabled, so it waits in the mouse.
        r.cmd(0xA7);
        assert!(r.drain().is_empty());
        assert_eq!(r.c.next_deadline(), None);
        r.cmd(0xA8);
        assert_eq!(r.aux_bytes(), vec![ACK, 0x00]);
    }

    #[test]
    fn output_buffer_sequencing() {
        let mut r = Rig::new();
        r.set_ctr(CTR_KBD_INT);
        r.c.send_scancodes(&[0x1C]);
        r.c.send_scancodes(&[0xF0, 0x1C]);
        assert!(!r.c.irq1(), "host input waits for advance");
        assert_eq!(r.c.next_deadline(), Some(0), "due at once");
        r.c.advance(at(r.now));
        assert!(r.c.irq1());
        assert_eq!(r.data(), 0x1C);
        // The line is busy for BYTE_GAP_NS after a read: IRQ 1 drops in between.
        assert!(!r.c.irq1());
        assert_eq!(r.status() & STATUS_OBF, 0);
        let t_read = r.now;
        assert_eq!(r.c.next_deadline(), Some(t_read + GAP));
        r.wait(GAP - 1);
        assert!(!r.c.irq1());
        r.wait(1);
        assert!(r.c.irq1());
        // A controller response preempts the waiting device byte, which follows it.
        r.cmd(0x20);
        assert_eq!(r.data(), CTR_KBD_INT);
        assert_eq!(r.kbd_bytes(), vec![0xF0, 0x1C]);
        // An unread controller reply is replaced by the next.
        r.cmd(0xAB);
        r.cmd(0xAA);
        assert_eq!(r.kbd_bytes(), vec![0x55]);
    }

    #[test]
    fn terminal_bytes_to_scancodes() {
        let s = |k: Key| stroke(k, Mods::default());
        let shift = |k: Key| {
            stroke(
                k,
                Mods {
                    shift: true,
                    ..Mods::default()
                },
            )
        };
        let ctrl = |k: Key| {
            stroke(
                k,
                Mods {
                    ctrl: true,
                    ..Mods::default()
                },
            )
        };
        let a = Key::letter(b'a').unwrap();
        assert_eq!(s(a), vec![0x1C, 0xF0, 0x1C]);
        assert_eq!(shift(a), vec![0x12, 0x1C, 0xF0, 0x1C, 0xF0, 0x12]);
        assert_eq!(terminal_to_set2(b"aA"), vec![s(a), shift(a)]);
        assert_eq!(
            terminal_to_set2(b"1!/?"),
            vec![
                vec![0x16, 0xF0, 0x16],
                shift(Key(0x16)),
                s(Key::SLASH),
                shift(Key::SLASH)
            ]
        );
        assert_eq!(
            terminal_to_set2(b"\r\n\x7f\x08\t \x1b"),
            vec![
                s(Key::ENTER),
                s(Key::ENTER),
                s(Key::BACKSPACE),
                s(Key::BACKSPACE),
                s(Key::TAB),
                s(Key::SPACE),
                s(Key::ESC)
            ]
        );
        assert_eq!(
            terminal_to_set2(b"\x03"),
            vec![vec![0x14, 0x21, 0xF0, 0x21, 0xF0, 0x14]]
        );
        assert_eq!(
            terminal_to_set2(b"\x1b[A"),
            vec![vec![0xE0, 0x75, 0xE0, 0xF0, 0x75]]
        );
        assert_eq!(
            terminal_to_set2(b"\x1b[B\x1b[C\x1b[D\x1bOA\x1b[H\x1b[F"),
            vec![
                s(Key::DOWN),
                s(Key::RIGHT),
                s(Key::LEFT),
                s(Key::UP),
                s(Key::HOME),
                s(Key::END)
            ]
        );
        assert_eq!(
            terminal_to_set2(b"\x1b[3~\x1b[5~\x1b[6~\x1b[2~\x1bOP\x1b[24~\x1b[[E"),
            vec![
                s(Key::DELETE),
                s(Key::PAGE_UP),
                s(Key::PAGE_DOWN),
                s(Key::INSERT),
                s(Key::F1),
                s(Key::F12),
                s(Key::F5)
            ]
        );
        assert_eq!(terminal_to_set2(b"\x1b[1;5C"), vec![ctrl(Key::RIGHT)]);
        assert_eq!(terminal_to_set2(b"\x1b[Z"), vec![shift(Key::TAB)]);
        // ESC before something that is not a sequence: Esc, then the text.
        assert_eq!(terminal_to_set2(b"\x1bx"), vec![s(Key::ESC), s(Key(0x22))]);
        assert_eq!(
            terminal_to_set2(b"\x1b["),
            vec![s(Key::ESC), s(Key::LBRACKET)]
        );
        // Unknown sequences and non-ASCII bytes are dropped.
        assert_eq!(terminal_to_set2(b"\x1b[99~\xc3\xa9"), Vec::<Vec<u8>>::new());
        // Every printable ASCII character has a key.
        for c in 0x20..=0x7Eu8 {
            assert_eq!(terminal_to_set2(&[c]).len(), 1, "{:?}", c as char);
        }
    }

    #[test]
    fn typed_text_reaches_the_guest_translated() {
        let mut r = Rig::new();
        r.set_ctr(CTR_KBD_INT | CTR_XLATE);
        assert_eq!(r.c.type_terminal_bytes(b"Hi\r"), 3);
        assert_eq!(
            r.kbd_bytes(),
            vec![0x2A, 0x23, 0xA3, 0xAA, 0x17, 0x97, 0x1C, 0x9C]
        );
    }

    #[test]
    fn keyboard_buffer_is_bounded() {
        let mut r = Rig::new();
        let n = r.c.type_terminal_bytes(&vec![b'a'; KBD_QUEUE_CAPACITY]);
        assert_eq!(n, KBD_QUEUE_CAPACITY / 3);
        assert_eq!(KBD_QUEUE_CAPACITY % 3, 1);
        // One byte of room: a 1-byte make code fits, its 2-byte break does not.
        assert!(r.c.key_down(Key::ENTER));
        assert!(!r.c.key_up(Key::ENTER));
        // Translation (on at power-on) folds each F0 prefix into the next byte.
        assert_eq!(r.drain().len(), KBD_QUEUE_CAPACITY / 3 * 2 + 1);
    }
}
