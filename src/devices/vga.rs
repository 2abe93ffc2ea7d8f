//! VGA: the standard register set (misc output, sequencer, CRTC, graphics controller,
//! attribute controller, DAC), 256 KiB of planar video memory with all CPU read and write
//! modes, the Bochs VBE "dispi" interface (ports 0x1CE/0x1CF) with a linear framebuffer,
//! and a text-mode snapshot for the terminal console.
//!
//! Memory model: four 64 KiB planes stored interleaved (`vram[offset * 4 + plane]`), so a
//! chain-4 / linear-framebuffer byte at address `a` is `vram[a]`. The legacy window
//! 0xA0000-0xBFFFF maps to the planes according to GC register 6 (memory map select),
//! sequencer register 4 (chain-4, odd/even) and GC register 5 (read/write mode).

use serde::{Deserialize, Serialize};

use super::bus::all_ones;
use super::{PortDevice, Time};

pub const VRAM_SIZE: usize = 16 << 20;
/// Physical address of the VBE linear framebuffer (Bochs/QEMU default).
pub const LFB_BASE: u32 = 0xE000_0000;
const PLANE_SIZE: usize = 64 << 10;

pub const VBE_INDEX_PORT: u16 = 0x1CE;
pub const VBE_DATA_PORT: u16 = 0x1CF;

mod vbe {
    pub const ID: usize = 0;
    pub const XRES: usize = 1;
    pub const YRES: usize = 2;
    pub const BPP: usize = 3;
    pub const ENABLE: usize = 4;
    pub const BANK: usize = 5;
    pub const VIRT_WIDTH: usize = 6;
    pub const VIRT_HEIGHT: usize = 7;
    pub const X_OFFSET: usize = 8;
    pub const Y_OFFSET: usize = 9;
    pub const VIDEO_MEMORY_64K: usize = 10;
    pub const COUNT: usize = 11;
    pub const ID5: u16 = 0xB0C5;
    pub const ENABLED: u16 = 0x01;
    pub const GETCAPS: u16 = 0x02;
    pub const LFB_ENABLED: u16 = 0x40;
    pub const NOCLEARMEM: u16 = 0x80;
    pub const MAX_XRES: u16 = 2560;
    pub const MAX_YRES: u16 = 1600;
    pub const MAX_BPP: u16 = 32;
}

/// The adapter's state. Snapshot section `vga`: version 1 encoded `vram` as a plain byte
/// vector (16 MiB in every snapshot); version 2 (current) encodes only its non-zero pages
/// (`crate::snapshot::sparse`); [`upgrade_v1_to_v2`] converts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vga {
    misc: u8,
    seq_index: u8,
    seq: [u8; 8],
    crtc_index: u8,
    crtc: [u8; 0x19],
    gc_index: u8,
    gc: [u8; 9],
    attr_index: u8,
    /// Attribute controller flip-flop: false = next write is the index.
    attr_flip: bool,
    attr: [u8; 0x15],
    dac_write_index: u8,
    dac_read_index: u8,
    dac_sub: u8,
    dac_state: u8,
    dac_mask: u8,
    dac: Vec<u8>,
    feature: u8,
    latch: [u8; 4],
    vbe_index: u16,
    vbe: [u16; vbe::COUNT],
    #[serde(with = "crate::snapshot::sparse")]
    vram: Vec<u8>,
    /// Frame counter for the input-status vertical retrace toggle.
    retrace: u8,
}

/// Version 1 of the `vga` section encoding (kept for the upgrade): `vram` as a plain
/// byte vector.
#[derive(Deserialize)]
struct VgaV1 {
    misc: u8,
    seq_index: u8,
    seq: [u8; 8],
    crtc_index: u8,
    crtc: [u8; 0x19],
    gc_index: u8,
    gc: [u8; 9],
    attr_index: u8,
    attr_flip: bool,
    attr: [u8; 0x15],
    dac_write_index: u8,
    dac_read_index: u8,
    dac_sub: u8,
    dac_state: u8,
    dac_mask: u8,
    dac: Vec<u8>,
    feature: u8,
    latch: [u8; 4],
    vbe_index: u16,
    vbe: [u16; vbe::COUNT],
    vram: Vec<u8>,
    retrace: u8,
}

/// `vga` section version 1 to 2: the same state, video memory encoded sparsely.
pub fn upgrade_v1_to_v2(old: &[u8]) -> Result<Vec<u8>, String> {
    let v: VgaV1 = postcard::from_bytes(old).map_err(|e| e.to_string())?;
    let new = Vga {
        misc: v.misc,
        seq_index: v.seq_index,
        seq: v.seq,
        crtc_index: v.crtc_index,
        crtc: v.crtc,
        gc_index: v.gc_index,
        gc: v.gc,
        attr_index: v.attr_index,
        attr_flip: v.attr_flip,
        attr: v.attr,
        dac_write_index: v.dac_write_index,
        dac_read_index: v.dac_read_index,
        dac_sub: v.dac_sub,
        dac_state: v.dac_state,
        dac_mask: v.dac_mask,
        dac: v.dac,
        feature: v.feature,
        latch: v.latch,
        vbe_index: v.vbe_index,
        vbe: v.vbe,
        vram: v.vram,
        retrace: v.retrace,
    };
    postcard::to_stdvec(&new).map_err(|e| e.to_string())
}

impl Vga {
    /// Check a state decoded from a snapshot: the buffers have the sizes the adapter
    /// indexes without checks.
    pub fn validate(&self) -> Result<(), String> {
        if self.vram.len() != VRAM_SIZE {
            return Err(format!(
                "video memory of {} bytes (expected {VRAM_SIZE})",
                self.vram.len()
            ));
        }
        if self.dac.len() != 768 {
            return Err(format!("DAC of {} bytes (expected 768)", self.dac.len()));
        }
        Ok(())
    }
}

impl Default for Vga {
    fn default() -> Self {
        let mut v = Vga {
            misc: 0,
            seq_index: 0,
            seq: [0; 8],
            crtc_index: 0,
            crtc: [0; 0x19],
            gc_index: 0,
            gc: [0; 9],
            attr_index: 0,
            attr_flip: false,
            attr: [0; 0x15],
            dac_write_index: 0,
            dac_read_index: 0,
            dac_sub: 0,
            dac_state: 0,
            dac_mask: 0xFF,
            dac: vec![0; 768],
            feature: 0,
            latch: [0; 4],
            vbe_index: 0,
            vbe: [0; vbe::COUNT],
            vram: vec![0; VRAM_SIZE],
            retrace: 0,
        };
        v.reset();
        v
    }
}

/// One character cell of the text screen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cell {
    pub ch: u8,
    pub attr: u8,
}

/// What the display shows, for a console frontend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Screen {
    Text {
        cols: usize,
        rows: usize,
        cells: Vec<Cell>,
        /// Cursor position (column, row) if the cursor is enabled and on screen.
        cursor: Option<(usize, usize)>,
    },
    Graphics {
        width: u32,
        height: u32,
        bpp: u32,
    },
    Off,
}

impl Vga {
    pub fn new() -> Vga {
        Vga::default()
    }

    fn vbe_enabled(&self) -> bool {
        self.vbe[vbe::ENABLE] & vbe::ENABLED != 0
    }

    /// Decode a legacy-window address (0xA0000-0xBFFFF) into an offset, per GC6.
    fn window_offset(&self, addr: u32) -> Option<u32> {
        let a = addr.wrapping_sub(0xA_0000);
        let (base, size) = match (self.gc[6] >> 2) & 3 {
            0 => (0, 0x2_0000),
            1 => (0, 0x1_0000),
            2 => (0x1_0000, 0x8000),
            _ => (0x1_8000, 0x8000),
        };
        if a < base || a >= base + size {
            return None;
        }
        let off = a - base;
        if self.vbe_enabled() && (self.gc[6] >> 2) & 3 == 1 {
            // Banked VBE access through the 64 KiB window.
            return Some(off + ((self.vbe[vbe::BANK] as u32) << 16));
        }
        Some(off)
    }

    /// CPU read from the legacy window.
    pub fn mem_read(&mut self, addr: u32) -> u8 {
        let Some(off) = self.window_offset(addr) else {
            return 0xFF;
        };
        if self.vbe_enabled() {
            return self.vram.get(off as usize).copied().unwrap_or(0xFF);
        }
        let chain4 = self.seq[4] & 0x08 != 0;
        let odd_even = self.gc[5] & 0x10 != 0 || self.seq[4] & 0x04 == 0;
        if chain4 {
            return self.vram.get(off as usize).copied().unwrap_or(0xFF);
        }
        let (plane_off, plane_sel) = if odd_even && self.gc[6] & 0x02 != 0 {
            (
                (off & !1) as usize,
                ((self.gc[4] & 2) | (off as u8 & 1)) as usize,
            )
        } else {
            (off as usize, (self.gc[4] & 3) as usize)
        };
        if plane_off >= PLANE_SIZE {
            return 0xFF;
        }
        for p in 0..4 {
            self.latch[p] = self.vram[plane_off * 4 + p];
        }
        if self.gc[5] & 0x08 == 0 {
            self.latch[plane_sel]
        } else {
            // Read mode 1: color compare.
            let cc = self.gc[2];
            let dc = self.gc[7];
            let mut r = 0xFF;
            for p in 0..4 {
                if dc & (1 << p) != 0 {
                    let want = if cc & (1 << p) != 0 { 0xFF } else { 0 };
                    r &= !(self.latch[p] ^ want);
                }
            }
            r
        }
    }

    /// CPU write to the legacy window.
    pub fn mem_write(&mut self, addr: u32, val: u8) {
        let Some(off) = self.window_offset(addr) else {
            return;
        };
        if self.vbe_enabled() || self.seq[4] & 0x08 != 0 {
            // Chain-4 (mode 13h) and VBE: bytes are linear.
            let plane = off & 3;
            if self.vbe_enabled() || self.seq[2] & (1 << plane) != 0 {
                if let Some(b) = self.vram.get_mut(off as usize) {
                    *b = val;
                }
            }
            return;
        }
        let odd_even = self.seq[4] & 0x04 == 0;
        let (plane_off, mask) = if odd_even {
            let planes = if off & 1 != 0 { 0b1010 } else { 0b0101 };
            ((off & !1) as usize, planes & self.seq[2])
        } else {
            (off as usize, self.seq[2] & 0xF)
        };
        if plane_off >= PLANE_SIZE {
            return;
        }
        let mode = self.gc[5] & 3;
        let rot = self.gc[3] & 7;
        let func = (self.gc[3] >> 3) & 3;
        let mut bit_mask = self.gc[8];
        let data = val.rotate_right(rot as u32);
        let mut planes = [0u8; 4];
        match mode {
            0 => {
                for (p, out) in planes.iter_mut().enumerate() {
                    *out = if self.gc[1] & (1 << p) != 0 {
                        if self.gc[0] & (1 << p) != 0 {
                            0xFF
                        } else {
                            0
                        }
                    } else {
                        data
                    };
                }
            }
            1 => {
                let base = plane_off * 4;
                for p in 0..4 {
                    if mask & (1 << p) != 0 {
                        self.vram[base + p] = self.latch[p];
                    }
                }
                return;
            }
            2 => {
                for (p, out) in planes.iter_mut().enumerate() {
                    *out = if val & (1 << p) != 0 { 0xFF } else { 0 };
                }
            }
            _ => {
                bit_mask &= data;
                for (p, out) in planes.iter_mut().enumerate() {
                    *out = if self.gc[0] & (1 << p) != 0 { 0xFF } else { 0 };
                }
            }
        }
        let base = plane_off * 4;
        for (p, &pv) in planes.iter().enumerate() {
            if mask & (1 << p) == 0 {
                continue;
            }
            let l = self.latch[p];
            let v = match func {
                0 => pv,
                1 => pv & l,
                2 => pv | l,
                _ => pv ^ l,
            };
            self.vram[base + p] = (v & bit_mask) | (l & !bit_mask);
        }
    }

    /// Linear framebuffer read (offset from [`LFB_BASE`]).
    pub fn lfb_read(&self, off: u32) -> u8 {
        self.vram.get(off as usize).copied().unwrap_or(0xFF)
    }

    pub fn lfb_write(&mut self, off: u32, v: u8) {
        if let Some(b) = self.vram.get_mut(off as usize) {
            *b = v;
        }
    }

    fn vbe_write(&mut self, v: u16) {
        let i = self.vbe_index as usize;
        if i >= vbe::COUNT {
            return;
        }
        match i {
            vbe::ID if (0xB0C0..=vbe::ID5).contains(&v) => self.vbe[i] = v,
            vbe::ID => {}
            vbe::XRES => self.vbe[i] = v.min(vbe::MAX_XRES) & !7,
            vbe::YRES => self.vbe[i] = v.min(vbe::MAX_YRES),
            vbe::BPP => {
                let v = if v == 0 { 8 } else { v };
                if matches!(v, 4 | 8 | 15 | 16 | 24 | 32) {
                    self.vbe[i] = v;
                }
            }
            vbe::BANK => {
                let banks = (VRAM_SIZE >> 16) as u16;
                self.vbe[i] = v.min(banks - 1);
            }
            vbe::ENABLE => {
                let was = self.vbe_enabled();
                self.vbe[i] =
                    v & (vbe::ENABLED | vbe::GETCAPS | vbe::LFB_ENABLED | vbe::NOCLEARMEM);
                if v & vbe::ENABLED != 0 && !was {
                    self.vbe[vbe::VIRT_WIDTH] = self.vbe[vbe::XRES];
                    self.vbe[vbe::VIRT_HEIGHT] = self.vbe[vbe::YRES];
                    self.vbe[vbe::X_OFFSET] = 0;
                    self.vbe[vbe::Y_OFFSET] = 0;
                    if v & vbe::NOCLEARMEM == 0 {
                        self.vram.fill(0);
                    }
                    // As on Bochs/QEMU: graphics mode, chain-4 linear access.
                    self.gc[6] = (self.gc[6] & !0x0C) | 0x05;
                    self.seq[4] |= 0x08;
                }
            }
            vbe::VIRT_WIDTH | vbe::VIRT_HEIGHT | vbe::X_OFFSET | vbe::Y_OFFSET => self.vbe[i] = v,
            _ => {}
        }
    }

    fn vbe_read(&self) -> u16 {
        let i = self.vbe_index as usize;
        if i >= vbe::COUNT {
            return 0;
        }
        if self.vbe[vbe::ENABLE] & vbe::GETCAPS != 0 {
            match i {
                vbe::XRES => return vbe::MAX_XRES,
                vbe::YRES => return vbe::MAX_YRES,
                vbe::BPP => return vbe::MAX_BPP,
                _ => {}
            }
        }
        match i {
            vbe::VIDEO_MEMORY_64K => (VRAM_SIZE >> 16) as u16,
            _ => self.vbe[i],
        }
    }

    /// Color I/O at 0x3Dx, mono at 0x3Bx (misc output bit 0).
    fn crtc_port(&self, port: u16) -> bool {
        let color = self.misc & 1 != 0;
        matches!(
            (port, color),
            (0x3D4 | 0x3D5 | 0x3DA, true) | (0x3B4 | 0x3B5 | 0x3BA, false)
        )
    }

    fn read_byte(&mut self, port: u16) -> u8 {
        match port {
            0x3C0 => self.attr_index,
            0x3C1 => self
                .attr
                .get((self.attr_index & 0x1F) as usize)
                .copied()
                .unwrap_or(0),
            0x3C2 => 0, // input status 0: no switch sense, no pending retrace IRQ
            0x3C3 => 1,
            0x3C4 => self.seq_index,
            0x3C5 => self.seq.get(self.seq_index as usize).copied().unwrap_or(0),
            0x3C6 => self.dac_mask,
            0x3C7 => self.dac_state,
            0x3C8 => self.dac_write_index,
            0x3C9 => {
                let i = self.dac_read_index as usize * 3 + self.dac_sub as usize;
                let v = self.dac[i];
                self.dac_sub += 1;
                if self.dac_sub == 3 {
                    self.dac_sub = 0;
                    self.dac_read_index = self.dac_read_index.wrapping_add(1);
                }
                v
            }
            0x3CA => self.feature,
            0x3CC => self.misc,
            0x3CE => self.gc_index,
            0x3CF => self.gc.get(self.gc_index as usize).copied().unwrap_or(0),
            0x3B4 | 0x3D4 if self.crtc_port(port) => self.crtc_index,
            0x3B5 | 0x3D5 if self.crtc_port(port) => self
                .crtc
                .get(self.crtc_index as usize)
                .copied()
                .unwrap_or(0),
            0x3BA | 0x3DA if self.crtc_port(port) => {
                // Input status 1 resets the attribute flip-flop; retrace bits toggle so
                // that software waiting for a retrace edge sees one.
                self.attr_flip = false;
                self.retrace = self.retrace.wrapping_add(1);
                if self.retrace & 1 != 0 {
                    0x09
                } else {
                    0x00
                }
            }
            _ => 0xFF,
        }
    }

    fn write_byte(&mut self, port: u16, v: u8) {
        match port {
            0x3C0 => {
                if !self.attr_flip {
                    self.attr_index = v & 0x3F;
                } else if let Some(r) = self.attr.get_mut((self.attr_index & 0x1F) as usize) {
                    *r = v;
                }
                self.attr_flip = !self.attr_flip;
            }
            0x3C2 => self.misc = v,
            0x3C4 => self.seq_index = v & 7,
            0x3C5 => {
                if let Some(r) = self.seq.get_mut(self.seq_index as usize) {
                    *r = v;
                }
            }
            0x3C6 => self.dac_mask = v,
            0x3C7 => {
                self.dac_read_index = v;
                self.dac_sub = 0;
                self.dac_state = 0;
            }
            0x3C8 => {
                self.dac_write_index = v;
                self.dac_sub = 0;
                self.dac_state = 3;
            }
            0x3C9 => {
                let i = self.dac_write_index as usize * 3 + self.dac_sub as usize;
                self.dac[i] = v & 0x3F;
                self.dac_sub += 1;
                if self.dac_sub == 3 {
                    self.dac_sub = 0;
                    self.dac_write_index = self.dac_write_index.wrapping_add(1);
                }
            }
            0x3CE => self.gc_index = v & 0xF,
            0x3CF => {
                if let Some(r) = self.gc.get_mut(self.gc_index as usize) {
                    *r = v;
                }
            }
            0x3B4 | 0x3D4 if self.crtc_port(port) => self.crtc_index = v & 0x1F,
            0x3B5 | 0x3D5 if self.crtc_port(port) => {
                let i = self.crtc_index as usize;
                // CR11 bit 7 write-protects CR0-CR7 (except CR7 bit 4).
                let protected = self.crtc[0x11] & 0x80 != 0 && i <= 7;
                if let Some(r) = self.crtc.get_mut(i) {
                    if !protected {
                        *r = v;
                    } else if i == 7 {
                        *r = (*r & !0x10) | (v & 0x10);
                    }
                }
            }
            0x3BA | 0x3DA if self.crtc_port(port) => self.feature = v,
            _ => {}
        }
    }

    /// What the display currently shows.
    pub fn screen(&self) -> Screen {
        if self.vbe_enabled() {
            return Screen::Graphics {
                width: self.vbe[vbe::XRES] as u32,
                height: self.vbe[vbe::YRES] as u32,
                bpp: self.vbe[vbe::BPP] as u32,
            };
        }
        // Screen off (SR1 bit 5) or the attribute controller's palette being accessed
        // by the CPU (index bit 5 clear) blank the display.
        if self.seq[1] & 0x20 != 0 || self.attr_index & 0x20 == 0 {
            return Screen::Off;
        }
        if self.gc[6] & 1 != 0 {
            // Planar or chain-4 graphics: report the CRTC geometry.
            let width = (self.crtc[1] as u32 + 1) * 8;
            let vde = self.crtc[0x12] as u32
                | ((self.crtc[7] as u32 >> 1) & 1) << 8
                | ((self.crtc[7] as u32 >> 6) & 1) << 9;
            let mut height = vde + 1;
            if self.crtc[9] & 0x80 != 0 {
                height /= 2;
            }
            let bpp = if self.seq[4] & 0x08 != 0 { 8 } else { 4 };
            return Screen::Graphics { width, height, bpp };
        }
        let cols = (self.crtc[1] as usize + 1).clamp(1, 132);
        let char_height = (self.crtc[9] as usize & 0x1F) + 1;
        let vde = self.crtc[0x12] as usize
            | ((self.crtc[7] as usize >> 1) & 1) << 8
            | ((self.crtc[7] as usize >> 6) & 1) << 9;
        let rows = ((vde + 1) / char_height).clamp(1, 60);
        let start = ((self.crtc[0x0C] as usize) << 8) | self.crtc[0x0D] as usize;
        let mut cells = Vec::with_capacity(cols * rows);
        for i in 0..cols * rows {
            let off = ((start + i) * 2) % PLANE_SIZE;
            cells.push(Cell {
                ch: self.vram[off * 4],
                attr: self.vram[off * 4 + 1],
            });
        }
        let cursor_addr = ((self.crtc[0x0E] as usize) << 8) | self.crtc[0x0F] as usize;
        let cursor_off = self.crtc[0x0A] & 0x20 != 0;
        let pos = cursor_addr.wrapping_sub(start);
        let cursor = if !cursor_off && pos < cols * rows {
            Some((pos % cols, pos / cols))
        } else {
            None
        };
        Screen::Text {
            cols,
            rows,
            cells,
            cursor,
        }
    }
}

impl PortDevice for Vga {
    fn port_ranges(&self) -> Vec<(u16, u16)> {
        vec![(0x3B0, 0x3DF), (VBE_INDEX_PORT, VBE_DATA_PORT)]
    }

    fn reset(&mut self) {
        self.misc = 0;
        self.seq = [0; 8];
        self.crtc = [0; 0x19];
        self.gc = [0; 9];
        self.attr = [0; 0x15];
        self.attr_flip = false;
        self.seq_index = 0;
        self.crtc_index = 0;
        self.gc_index = 0;
        self.attr_index = 0;
        self.dac_write_index = 0;
        self.dac_read_index = 0;
        self.dac_sub = 0;
        self.dac_state = 0;
        self.dac_mask = 0xFF;
        self.feature = 0;
        self.latch = [0; 4];
        self.vbe_index = 0;
        self.vbe = [0; vbe::COUNT];
        self.vbe[vbe::ID] = vbe::ID5;
        self.vbe[vbe::BPP] = 8;
        self.retrace = 0;
    }

    fn io_read(&mut self, port: u16, size: u8, _t: Time) -> u32 {
        match (port, size) {
            (VBE_INDEX_PORT, 2) => self.vbe_index as u32,
            (VBE_DATA_PORT, 2) | (0x1D0, 2) => self.vbe_read() as u32,
            (0x3B0..=0x3DF, 1) => self.read_byte(port) as u32,
            (0x3B0..=0x3DF, 2) => {
                self.read_byte(port) as u32 | (self.read_byte(port + 1) as u32) << 8
            }
            _ => all_ones(size),
        }
    }

    fn io_write(&mut self, port: u16, size: u8, value: u32, _t: Time) {
        match (port, size) {
            (VBE_INDEX_PORT, 2) => self.vbe_index = value as u16,
            (VBE_DATA_PORT, 2) | (0x1D0, 2) => self.vbe_write(value as u16),
            (0x3B0..=0x3DF, 1) => self.write_byte(port, value as u8),
            (0x3B0..=0x3DF, 2) => {
                // A word write is an index write followed by a data write.
                self.write_byte(port, value as u8);
                self.write_byte(port + 1, (value >> 8) as u8);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;

    fn t() -> Time {
        Time::new(0, Clock::default())
    }

    /// Program mode 3 (80x25 color text) the way a VGA BIOS does.
    fn mode3(v: &mut Vga) {
        v.io_write(0x3C2, 1, 0x67, t());
        for (i, r) in [0x03u8, 0x00, 0x03, 0x00, 0x02].iter().enumerate() {
            v.io_write(0x3C4, 2, (i as u32) | (*r as u32) << 8, t());
        }
        let crtc = [
            0x5F, 0x4F, 0x50, 0x82, 0x55, 0x81, 0xBF, 0x1F, 0x00, 0x4F, 0x0D, 0x0E, 0x00, 0x00,
            0x00, 0x00, 0x9C, 0x8E, 0x8F, 0x28, 0x1F, 0x96, 0xB9, 0xA3, 0xFF,
        ];
        for (i, r) in crtc.iter().enumerate() {
            v.io_write(0x3D4, 2, (i as u32) | (*r as u32) << 8, t());
        }
        for (i, r) in [0u8, 0, 0, 0, 0, 0x10, 0x0E, 0x0F, 0xFF].iter().enumerate() {
            v.io_write(0x3CE, 2, (i as u32) | (*r as u32) << 8, t());
        }
        v.io_read(0x3DA, 1, t());
        for i in 0..0x15u8 {
            v.io_write(0x3C0, 1, i as u32, t());
            v.io_write(0x3C0, 1, if i < 16 { i as u32 } else { 0x0C }, t());
        }
        v.io_write(0x3C0, 1, 0x20, t());
    }

    #[test]
    fn text_mode_cells_and_cursor() {
        let mut v = Vga::new();
        mode3(&mut v);
        for (i, &b) in b"Hi".iter().enumerate() {
            v.mem_write(0xB_8000 + 2 * i as u32, b);
            v.mem_write(0xB_8001 + 2 * i as u32, 0x1F);
        }
        v.io_write(0x3D4, 2, 0x0F | (81 << 8), t());
        match v.screen() {
            Screen::Text {
                cols,
                rows,
                cells,
                cursor,
            } => {
                assert_eq!((cols, rows), (80, 25));
                assert_eq!(
                    cells[0],
                    Cell {
                        ch: b'H',
                        attr: 0x1F
                    }
                );
                assert_eq!(cells[1].ch, b'i');
                assert_eq!(cursor, Some((1, 1)));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(v.mem_read(0xB_8002), b'i');
        assert_eq!(v.mem_read(0xB_8003), 0x1F);
    }

    #[test]
    fn planar_font_load_and_write_modes() {
        let mut v = Vga::new();
        mode3(&mut v);
        // Font load as BIOSes do it: plane 2 only, sequential addressing at A0000.
        v.io_write(0x3C4, 2, 0x02 | 0x04 << 8, t());
        v.io_write(0x3C4, 2, 0x04 | 0x07 << 8, t());
        v.io_write(0x3CE, 2, 0x05, t());
        v.io_write(0x3CE, 2, 0x06 | 0x04 << 8, t());
        v.mem_write(0xA_0000, 0x7E);
        assert_eq!(v.vram[2], 0x7E, "plane 2, offset 0");
        assert_eq!(v.vram[0], 0, "plane 0 untouched");
        // Write mode 2 with bit mask, then read back through the latches.
        v.io_write(0x3C4, 2, 0x02 | 0x0F << 8, t());
        v.io_write(0x3CE, 2, 0x05 | 0x02 << 8, t());
        v.io_write(0x3CE, 2, 0x08 | 0xF0 << 8, t());
        v.mem_write(0xA_0010, 0x05); // color 5: planes 0 and 2
        assert_eq!(v.vram[0x10 * 4], 0xF0);
        assert_eq!(v.vram[0x10 * 4 + 1], 0x00);
        assert_eq!(v.vram[0x10 * 4 + 2], 0xF0);
    }

    #[test]
    fn vbe_dispi_mode_set() {
        let mut v = Vga::new();
        let w = |v: &mut Vga, i: u16, d: u16| {
            v.io_write(VBE_INDEX_PORT, 2, i as u32, t());
            v.io_write(VBE_DATA_PORT, 2, d as u32, t());
        };
        v.io_write(VBE_INDEX_PORT, 2, 0, t());
        assert_eq!(v.io_read(VBE_DATA_PORT, 2, t()), 0xB0C5);
        w(&mut v, 1, 800);
        w(&mut v, 2, 600);
        w(&mut v, 3, 32);
        w(&mut v, 4, 0x41);
        assert_eq!(
            v.screen(),
            Screen::Graphics {
                width: 800,
                height: 600,
                bpp: 32
            }
        );
        v.lfb_write(0x1234, 9);
        assert_eq!(v.lfb_read(0x1234), 9);
    }

    #[test]
    fn random_ports_never_panic_and_state_round_trips() {
        use rand::{Rng, SeedableRng};
        let mut v = Vga::new();
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for _ in 0..20_000 {
            let port = rng.gen_range(0x3B0..=0x3DFu16);
            let size = [1u8, 2][rng.gen_range(0..2)];
            if rng.gen_bool(0.5) {
                v.io_write(port, size, rng.gen(), t());
            } else {
                v.io_read(port, size, t());
            }
            let a = 0xA_0000 + rng.gen_range(0..0x2_0000u32);
            if rng.gen_bool(0.5) {
                v.mem_write(a, rng.gen());
            } else {
                v.mem_read(a);
            }
            let _ = v.screen();
        }
        let mut a = v.clone();
        a.reset();
        let mut b = a.clone();
        b.reset();
        assert_eq!(a, b);
    }

    #[test]
    fn section_version_1_upgrades() {
        let mut v = Vga::default();
        v.vram[0x8_0000] = 0x41;
        v.vram[VRAM_SIZE - 1] = 7;
        v.retrace = 3;
        // Version 1: the same fields with `vram` as a plain vector (varint length + bytes).
        let mut empty = v.clone();
        empty.vram = Vec::new();
        let e = postcard::to_stdvec(&empty).unwrap();
        let mut v1 = e[..e.len() - 3].to_vec(); // sparse empty = [0, 0], then retrace
        v1.extend_from_slice(&[0x80, 0x80, 0x80, 0x08]); // 16 MiB as a varint
        v1.extend_from_slice(&v.vram);
        v1.push(v.retrace);
        let v2 = upgrade_v1_to_v2(&v1).unwrap();
        assert_eq!(v2, postcard::to_stdvec(&v).unwrap());
        assert!(v2.len() < 3 * 4096, "{}", v2.len());
        let back: Vga = postcard::from_bytes(&v2).unwrap();
        assert_eq!(back, v);
        assert!(back.validate().is_ok());
        assert!(empty.validate().is_err());
    }
}
