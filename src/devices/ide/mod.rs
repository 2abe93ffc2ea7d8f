//! IDE: the PIIX3's two ATA channels with bus-master DMA, ATA hard disks ([`ata`]) and
//! ATAPI CD-ROM drives ([`atapi`]).
//!
//! # Ports and interrupts (legacy compatibility mode)
//!
//! | channel | command block | control block | IRQ |
//! |---|---|---|---|
//! | 0 (primary) | 0x1F0-0x1F7 | 0x3F6 | 14 |
//! | 1 (secondary) | 0x170-0x177 | 0x376 | 15 |
//!
//! Bus-master registers: 16 ports at the PIIX3 IDE function's BAR4 (channel 0 at +0,
//! channel 1 at +8: command, status, PRD table address); the board keeps the base in sync
//! with [`IdeController::set_bm_base`]. Port 0x3F7/0x377 (the floppy's DIR) is not decoded.
//!
//! # State and host attachments
//!
//! [`IdeController`] is plain data: task-file registers, the PIO buffer, transfer progress,
//! ATAPI sense and tray state, bus-master registers. The disks are host attachments in
//! [`IdeDrives`], passed into every call that may touch them. [`IdeController::new`] takes
//! the drive kinds and sizes from the attachments; after a snapshot restore
//! [`IdeController::check_drives`] verifies that the same kinds and sizes are attached.
//!
//! # Timing model
//!
//! Commands complete synchronously, like QEMU's PIO path: the port write that issues a
//! command leaves the drive with DRQ (data ready) or with the command done, and raises the
//! interrupt at once. BSY is only visible while SRST is held.
//!
//! DMA is performed by [`IdeController::run_dma`], which the board calls from
//! `Bus::sync_memory` (after each device-touching instruction, at an instruction boundary):
//! when a drive has a DMA command pending and the channel's bus-master start bit is set, the
//! whole transfer is copied between the disk and guest memory through the PRD table and
//! the completion interrupt is raised. So a DMA completes at the instruction boundary right
//! after the later of "command issued" and "bus master started" — a point fixed by the
//! instruction stream alone, hence deterministic, and never observable as "in flight" by the
//! guest. (A transfer delay on the virtual clock can be added later with
//! `next_deadline`/`advance`; no guest we target needs one.)
//!
//! # Interrupts
//!
//! As on QEMU: a drive event raises the channel's INTRQ only if nIEN is clear at that
//! moment; it also sets the bus-master Interrupt bit. Reading the status register (not the
//! alternate status) or issuing a command clears INTRQ. [`IdeController::irq_level`] is the
//! level the board feeds to the PIC (IRQ 14/15, edge-triggered there) and the IOAPIC.

pub mod ata;
pub mod atapi;

use serde::{Deserialize, Serialize};

use crate::devices::bus::all_ones;
use crate::devices::{PortDevice, Time};
use crate::disk::{check_size, Disk, DiskError, MediaKind, CD_BLOCK_SIZE, SECTOR_SIZE};
use crate::mmu::PhysMem;

pub const PRIMARY_BASE: u16 = 0x1F0;
pub const PRIMARY_CTRL: u16 = 0x3F6;
pub const PRIMARY_IRQ: u8 = 14;
pub const SECONDARY_BASE: u16 = 0x170;
pub const SECONDARY_CTRL: u16 = 0x376;
pub const SECONDARY_IRQ: u8 = 15;
/// Size of the bus-master register block.
pub const BM_LEN: u16 = 16;

// Status register.
pub const ST_BSY: u8 = 0x80;
pub const ST_DRDY: u8 = 0x40;
pub const ST_DF: u8 = 0x20;
pub const ST_DSC: u8 = 0x10;
pub const ST_DRQ: u8 = 0x08;
pub const ST_ERR: u8 = 0x01;

// Error register.
pub const ER_AMNF: u8 = 0x01;
pub const ER_ABRT: u8 = 0x04;
pub const ER_IDNF: u8 = 0x10;
pub const ER_UNC: u8 = 0x40;

// Device control register.
pub const CTL_NIEN: u8 = 0x02;
pub const CTL_SRST: u8 = 0x04;
pub const CTL_HOB: u8 = 0x80;

// Bus-master command and status.
pub const BM_CMD_START: u8 = 0x01;
pub const BM_CMD_WRITE: u8 = 0x08;
pub const BM_ST_ACTIVE: u8 = 0x01;
pub const BM_ST_ERROR: u8 = 0x02;
pub const BM_ST_INT: u8 = 0x04;
pub const BM_ST_DMA0_CAP: u8 = 0x20;
pub const BM_ST_DMA1_CAP: u8 = 0x40;

/// Most sectors per DRQ block in READ/WRITE MULTIPLE (IDENTIFY word 47).
pub const MAX_MULT_SECTORS: u8 = 16;
/// Most PRD entries the bus master follows for one transfer (a 64 KiB table).
const MAX_PRD_ENTRIES: u32 = 8192;

/// What sits at a drive position.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DriveKind {
    None,
    Ata,
    Atapi,
}

/// A data phase in progress (or pending DMA).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Xfer {
    /// No data phase.
    Idle,
    /// PIO data-in of `buf` (IDENTIFY data); the command is done when it has been read.
    PioInOnce,
    /// ATA PIO read: `buf` holds the sectors at `lba`; `count` sectors are left including
    /// those in `buf`; `block` sectors per DRQ block (1, or the multiple-mode setting).
    AtaRead {
        lba: u64,
        count: u64,
        lba48: bool,
        block: u8,
    },
    /// ATA PIO write: `buf` receives the sectors for `lba`; `count` left including them.
    AtaWrite {
        lba: u64,
        count: u64,
        lba48: bool,
        block: u8,
    },
    /// ATA DMA command waiting for the bus master.
    AtaDma {
        lba: u64,
        count: u64,
        write: bool,
        lba48: bool,
    },
    /// ATAPI: receiving the 12-byte command packet into `buf`.
    Packet,
    /// ATAPI PIO data-in: `buf` is the current DRQ chunk; `left` bytes follow from `src`.
    AtapiIn { src: AtapiSource, left: u64 },
    /// ATAPI DMA data-in waiting for the bus master: `left` bytes from `src`.
    AtapiDma { src: AtapiSource, left: u64 },
}

/// Where ATAPI reply data comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AtapiSource {
    /// The drive's `reply` buffer from offset `pos`.
    Reply { pos: u32 },
    /// The disc from byte offset `offset`.
    Disc { offset: u64 },
}

/// One drive position: task-file registers as this drive holds them, and its state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drive {
    pub kind: DriveKind,
    /// ATA: number of 512-byte sectors. ATAPI: medium size in 2048-byte blocks (0: none).
    pub capacity: u64,
    /// Position index (channel * 2 + unit), for the serial number.
    index: u8,
    // Default (IDENTIFY words 1/3/6) and current (INITIALIZE DEVICE PARAMETERS) geometry.
    cyls: u16,
    heads: u8,
    spt: u8,
    cur_cyls: u16,
    cur_heads: u8,
    cur_spt: u8,
    /// Sectors per block for READ/WRITE MULTIPLE (0: multiple mode disabled).
    mult: u8,
    /// Transfer mode set by SET FEATURES (the subcommand value).
    xfer_mode: u8,
    write_cache: bool,
    // Task file.
    feature: u8,
    hob_feature: u8,
    nsector: u8,
    hob_nsector: u8,
    sector: u8,
    hob_sector: u8,
    lcyl: u8,
    hob_lcyl: u8,
    hcyl: u8,
    hob_hcyl: u8,
    select: u8,
    status: u8,
    error: u8,
    // Data phase.
    buf: Vec<u8>,
    pos: u32,
    xfer: Xfer,
    // ATAPI.
    /// The packet asked for DMA (features bit 0).
    atapi_dma: bool,
    reply: Vec<u8>,
    sense_key: u8,
    asc: u8,
    ascq: u8,
    tray_open: bool,
    locked: bool,
    /// Media event for GET EVENT STATUS NOTIFICATION: 0 none, 1 eject request, 2 new media,
    /// 3 media removal.
    media_event: u8,
}

/// Bus-master IDE registers of one channel.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusMaster {
    pub cmd: u8,
    pub status: u8,
    pub prd: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdeChannel {
    pub drives: [Drive; 2],
    /// Selected drive (DEV bit).
    unit: u8,
    /// Device control register.
    control: u8,
    /// INTRQ.
    irq: bool,
    pub bm: BusMaster,
}

/// The two IDE channels of the PIIX3.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdeController {
    pub channels: [IdeChannel; 2],
    /// Where the bus-master block is decoded (mirrors BAR4; see `set_bm_base`).
    bm_base: Option<u16>,
}

// ---------------------------------------------------------------------------------------
// Host side.

struct Attachment {
    kind: MediaKind,
    disk: Option<Box<dyn Disk>>,
}

/// The host disks behind the four drive positions (index = channel * 2 + unit).
#[derive(Default)]
pub struct IdeDrives {
    slots: [Option<Attachment>; 4],
    last_error: Option<String>,
}

impl std::fmt::Debug for IdeDrives {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut l = f.debug_list();
        for s in &self.slots {
            l.entry(
                &s.as_ref()
                    .map(|a| (a.kind, a.disk.as_ref().map(|d| (d.name(), d.len())))),
            );
        }
        l.finish()
    }
}

impl IdeDrives {
    pub fn new() -> IdeDrives {
        IdeDrives::default()
    }

    fn check_pos(channel: usize, unit: usize) -> Result<usize, DiskError> {
        if channel > 1 || unit > 1 {
            return Err(DiskError(format!(
                "no IDE position {channel}:{unit} (channels 0-1, units 0-1)"
            )));
        }
        Ok(channel * 2 + unit)
    }

    /// Attach a hard disk; its size must be a non-zero multiple of 512 bytes.
    pub fn attach_hard_disk(
        &mut self,
        channel: usize,
        unit: usize,
        disk: Box<dyn Disk>,
    ) -> Result<(), DiskError> {
        let i = Self::check_pos(channel, unit)?;
        check_size(&disk.name(), disk.len(), MediaKind::HardDisk)?;
        self.slots[i] = Some(Attachment {
            kind: MediaKind::HardDisk,
            disk: Some(disk),
        });
        Ok(())
    }

    /// Attach a CD-ROM drive, with a disc (size a non-zero multiple of 2048) or empty.
    pub fn attach_cdrom(
        &mut self,
        channel: usize,
        unit: usize,
        disc: Option<Box<dyn Disk>>,
    ) -> Result<(), DiskError> {
        let i = Self::check_pos(channel, unit)?;
        if let Some(d) = &disc {
            check_size(&d.name(), d.len(), MediaKind::Cdrom)?;
        }
        self.slots[i] = Some(Attachment {
            kind: MediaKind::Cdrom,
            disk: disc,
        });
        Ok(())
    }

    pub fn detach(&mut self, channel: usize, unit: usize) -> Option<Box<dyn Disk>> {
        let i = Self::check_pos(channel, unit).ok()?;
        self.slots[i].take().and_then(|a| a.disk)
    }

    pub fn kind(&self, channel: usize, unit: usize) -> Option<MediaKind> {
        let i = Self::check_pos(channel, unit).ok()?;
        self.slots[i].as_ref().map(|a| a.kind)
    }

    pub fn disk(&self, channel: usize, unit: usize) -> Option<&dyn Disk> {
        let i = Self::check_pos(channel, unit).ok()?;
        self.slots[i].as_ref()?.disk.as_deref()
    }

    pub fn disk_mut(&mut self, channel: usize, unit: usize) -> Option<&mut (dyn Disk + 'static)> {
        let i = Self::check_pos(channel, unit).ok()?;
        self.slots[i].as_mut()?.disk.as_deref_mut()
    }

    /// The last host I/O error (a guest-visible disk error happened), once.
    pub fn take_error(&mut self) -> Option<String> {
        self.last_error.take()
    }

    fn host(&mut self, channel: usize, unit: usize) -> Host<'_> {
        let i = (channel & 1) * 2 + (unit & 1);
        Host {
            disk: self.slots[i].as_mut().and_then(|a| a.disk.as_deref_mut()),
            error: &mut self.last_error,
        }
    }
}

/// The disk of the drive a command runs on, and where host errors are reported.
pub(crate) struct Host<'a> {
    disk: Option<&'a mut (dyn Disk + 'static)>,
    error: &'a mut Option<String>,
}

impl Host<'_> {
    fn fail(&mut self, msg: String) -> bool {
        *self.error = Some(msg);
        false
    }
    /// Read from the disk; false (and the error recorded) on failure.
    pub(crate) fn read(&mut self, offset: u64, buf: &mut [u8]) -> bool {
        match self.disk.as_deref_mut() {
            None => self.fail("IDE: no disk attached behind a present drive".into()),
            Some(d) => match d.read_at(offset, buf) {
                Ok(()) => true,
                Err(e) => self.fail(e.to_string()),
            },
        }
    }
    pub(crate) fn write(&mut self, offset: u64, buf: &[u8]) -> bool {
        match self.disk.as_deref_mut() {
            None => self.fail("IDE: no disk attached behind a present drive".into()),
            Some(d) => match d.write_at(offset, buf) {
                Ok(()) => true,
                Err(e) => self.fail(e.to_string()),
            },
        }
    }
    pub(crate) fn flush(&mut self) -> bool {
        match self.disk.as_deref_mut() {
            None => self.fail("IDE: no disk attached behind a present drive".into()),
            Some(d) => match d.flush() {
                Ok(()) => true,
                Err(e) => self.fail(e.to_string()),
            },
        }
    }
}

// ---------------------------------------------------------------------------------------
// Drives.

impl Drive {
    fn new(index: u8, kind: DriveKind, capacity: u64) -> Drive {
        let (cyls, heads, spt) = if kind == DriveKind::Ata {
            ata::default_geometry(capacity)
        } else {
            (0, 0, 0)
        };
        let mut d = Drive {
            kind,
            capacity,
            index,
            cyls,
            heads,
            spt,
            cur_cyls: cyls,
            cur_heads: heads,
            cur_spt: spt,
            mult: 0,
            xfer_mode: 0,
            write_cache: true,
            feature: 0,
            hob_feature: 0,
            nsector: 0,
            hob_nsector: 0,
            sector: 0,
            hob_sector: 0,
            lcyl: 0,
            hob_lcyl: 0,
            hcyl: 0,
            hob_hcyl: 0,
            select: 0,
            status: 0,
            error: 0,
            buf: Vec::new(),
            pos: 0,
            xfer: Xfer::Idle,
            atapi_dma: false,
            reply: Vec::new(),
            sense_key: 0,
            asc: 0,
            ascq: 0,
            tray_open: false,
            locked: false,
            media_event: 0,
        };
        d.power_on();
        d
    }

    /// Power-on / hardware reset state.
    fn power_on(&mut self) {
        self.cur_cyls = self.cyls;
        self.cur_heads = self.heads;
        self.cur_spt = self.spt;
        self.mult = if self.kind == DriveKind::Ata {
            MAX_MULT_SECTORS
        } else {
            0
        };
        // As QEMU: UDMA5 reported as the selected mode until the host sets one.
        self.xfer_mode = 0x45;
        self.write_cache = true;
        self.hob_feature = 0;
        self.feature = 0;
        self.hob_nsector = 0;
        self.hob_sector = 0;
        self.hob_lcyl = 0;
        self.hob_hcyl = 0;
        self.select = 0xA0 | ((self.index & 1) << 4);
        self.tray_open = false;
        self.locked = false;
        self.media_event = 0;
        self.sense_key = 0;
        self.asc = 0;
        self.ascq = 0;
        self.reset_regs();
    }

    /// The state after a soft reset (SRST released) or DEVICE RESET.
    fn reset_regs(&mut self) {
        self.stop_transfer();
        self.atapi_dma = false;
        self.error = 0x01;
        self.status = match self.kind {
            DriveKind::Ata => ST_DRDY | ST_DSC,
            _ => 0,
        };
        self.set_signature();
    }

    fn set_signature(&mut self) {
        self.select &= 0xF0;
        self.nsector = 1;
        self.sector = 1;
        let (l, h) = match self.kind {
            DriveKind::Ata => (0x00, 0x00),
            DriveKind::Atapi => (0x14, 0xEB),
            DriveKind::None => (0xFF, 0xFF),
        };
        self.lcyl = l;
        self.hcyl = h;
    }

    fn stop_transfer(&mut self) {
        self.xfer = Xfer::Idle;
        self.buf = Vec::new();
        self.pos = 0;
        self.reply = Vec::new();
        self.status &= !ST_DRQ;
    }

    fn present(&self) -> bool {
        self.kind != DriveKind::None
    }

    /// Command aborted: DRDY|ERR, ABRT.
    fn abort(&mut self) {
        self.stop_transfer();
        self.status = ST_DRDY | ST_ERR;
        self.error = ER_ABRT;
    }

    /// Start a PIO data phase with `buf`.
    fn start_pio(&mut self, buf: Vec<u8>, xfer: Xfer) {
        self.buf = buf;
        self.pos = 0;
        self.xfer = xfer;
        self.status = ST_DRDY | ST_DSC | ST_DRQ;
    }

    fn is_data_in(&self) -> bool {
        matches!(
            self.xfer,
            Xfer::PioInOnce | Xfer::AtaRead { .. } | Xfer::AtapiIn { .. }
        )
    }

    fn is_data_out(&self) -> bool {
        matches!(self.xfer, Xfer::AtaWrite { .. } | Xfer::Packet)
    }

    fn dma_pending(&self) -> bool {
        matches!(self.xfer, Xfer::AtaDma { .. } | Xfer::AtapiDma { .. })
    }

    /// Invariants the code relies on for a state that came from outside (a snapshot).
    fn validate(&self) -> Result<(), String> {
        // Largest buffers: 16 sectors of READ/WRITE MULTIPLE, one ATAPI chunk, IDENTIFY.
        if self.buf.len() > 0x1_0000 || self.reply.len() > 0x1_0000 {
            return Err("buffer too large".into());
        }
        if self.mult > MAX_MULT_SECTORS {
            return Err("multiple-mode block size out of range".into());
        }
        let max = match self.kind {
            DriveKind::None => 0,
            DriveKind::Ata => 1 << 48,
            DriveKind::Atapi => 1 << 32,
        };
        if self.capacity > max {
            return Err("capacity out of range".into());
        }
        let ata_range = |lba: u64, count: u64| {
            self.kind == DriveKind::Ata
                && lba.checked_add(count).is_some_and(|e| e <= self.capacity)
        };
        let atapi_range = |src: &AtapiSource, left: u64| {
            self.kind == DriveKind::Atapi
                && match *src {
                    AtapiSource::Reply { pos } => (pos as u64)
                        .checked_add(left)
                        .is_some_and(|e| e <= self.reply.len() as u64),
                    AtapiSource::Disc { offset } => offset
                        .checked_add(left)
                        .is_some_and(|e| e <= self.capacity * CD_BLOCK_SIZE),
                }
        };
        let ok = match &self.xfer {
            Xfer::Idle | Xfer::PioInOnce => true,
            Xfer::Packet => self.kind == DriveKind::Atapi,
            Xfer::AtaRead {
                lba, count, block, ..
            }
            | Xfer::AtaWrite {
                lba, count, block, ..
            } => ata_range(*lba, *count) && *block <= MAX_MULT_SECTORS,
            Xfer::AtaDma { lba, count, .. } => ata_range(*lba, *count),
            Xfer::AtapiIn { src, left } | Xfer::AtapiDma { src, left } => atapi_range(src, *left),
        };
        if !ok {
            return Err(format!("transfer {:?} out of range", self.xfer));
        }
        Ok(())
    }

    /// A serial number that depends only on the position.
    fn serial(&self) -> String {
        format!("X86EMU-{:02}", self.index + 1)
    }

    fn lba48_count(&self) -> u64 {
        let c = (self.hob_nsector as u64) << 8 | self.nsector as u64;
        if c == 0 {
            65536
        } else {
            c
        }
    }
}

// ---------------------------------------------------------------------------------------
// Channels.

impl IdeChannel {
    fn new(channel: u8, kinds: [(DriveKind, u64); 2]) -> IdeChannel {
        IdeChannel {
            drives: [
                Drive::new(channel * 2, kinds[0].0, kinds[0].1),
                Drive::new(channel * 2 + 1, kinds[1].0, kinds[1].1),
            ],
            unit: 0,
            control: 0,
            irq: false,
            bm: BusMaster::default(),
        }
    }

    fn reset(&mut self) {
        for d in &mut self.drives {
            d.power_on();
        }
        self.unit = 0;
        self.control = 0;
        self.irq = false;
        self.bm = BusMaster::default();
    }

    fn any_present(&self) -> bool {
        self.drives[0].present() || self.drives[1].present()
    }

    fn cur(&self) -> &Drive {
        &self.drives[self.unit as usize & 1]
    }

    fn cur_mut(&mut self) -> &mut Drive {
        &mut self.drives[self.unit as usize & 1]
    }

    /// The selected drive signals an interrupt.
    fn raise_irq(&mut self) {
        if self.control & CTL_NIEN == 0 {
            self.irq = true;
            self.bm.status |= BM_ST_INT;
        }
    }

    /// Status as the host sees it for the selected position.
    fn status_value(&self) -> u8 {
        if !self.any_present() || !self.cur().present() {
            0
        } else {
            self.cur().status
        }
    }

    fn read_reg(&mut self, reg: u16, host: &mut Host) -> u8 {
        let hob = self.control & CTL_HOB != 0;
        if !self.any_present() {
            if reg == 7 {
                self.irq = false;
            }
            return 0;
        }
        let d = self.cur();
        let absent = !d.present();
        match reg {
            1 => {
                if absent {
                    0
                } else if hob {
                    d.hob_feature
                } else {
                    d.error
                }
            }
            2 => {
                if hob {
                    d.hob_nsector
                } else {
                    d.nsector
                }
            }
            3 => {
                if hob {
                    d.hob_sector
                } else {
                    d.sector
                }
            }
            4 => {
                if hob {
                    d.hob_lcyl
                } else {
                    d.lcyl
                }
            }
            5 => {
                if hob {
                    d.hob_hcyl
                } else {
                    d.hcyl
                }
            }
            6 => d.select,
            7 => {
                let v = self.status_value();
                self.irq = false;
                v
            }
            _ => self.data_read(1, host) as u8,
        }
    }

    fn write_reg(&mut self, reg: u16, v: u8, host: &mut Host) {
        if reg == 7 {
            self.command(v, host);
            return;
        }
        // Writes to the command block are ignored while the drive is busy with a command.
        if self.cur().status & (ST_BSY | ST_DRQ) != 0 {
            return;
        }
        self.control &= !CTL_HOB;
        for (i, d) in self.drives.iter_mut().enumerate() {
            match reg {
                1 => {
                    d.hob_feature = d.feature;
                    d.feature = v;
                }
                2 => {
                    d.hob_nsector = d.nsector;
                    d.nsector = v;
                }
                3 => {
                    d.hob_sector = d.sector;
                    d.sector = v;
                }
                4 => {
                    d.hob_lcyl = d.lcyl;
                    d.lcyl = v;
                }
                5 => {
                    d.hob_hcyl = d.hcyl;
                    d.hcyl = v;
                }
                6 => d.select = (v & !0x10) | 0xA0 | ((i as u8) << 4),
                _ => {}
            }
        }
        if reg == 6 {
            self.unit = (v >> 4) & 1;
        }
    }

    fn write_control(&mut self, v: u8) {
        let old = self.control;
        if old & CTL_SRST == 0 && v & CTL_SRST != 0 {
            for d in &mut self.drives {
                d.stop_transfer();
                d.status = ST_BSY | ST_DSC;
                d.error = 0x01;
            }
        } else if old & CTL_SRST != 0 && v & CTL_SRST == 0 {
            for d in &mut self.drives {
                d.reset_regs();
            }
        }
        self.control = v;
    }

    /// Read `size` bytes from the data port.
    fn data_read(&mut self, size: u8, host: &mut Host) -> u32 {
        let d = self.cur_mut();
        if d.status & ST_DRQ == 0 || !d.is_data_in() {
            return 0;
        }
        let mut v = 0u32;
        for i in 0..size.min(4) as usize {
            let b = d.buf.get(d.pos as usize + i).copied().unwrap_or(0);
            v |= (b as u32) << (8 * i);
        }
        d.pos = d.pos.saturating_add(size as u32);
        if d.pos as usize >= d.buf.len() {
            self.pio_in_done(host);
        }
        v
    }

    fn data_write(&mut self, size: u8, value: u32, host: &mut Host) {
        let d = self.cur_mut();
        if d.status & ST_DRQ == 0 || !d.is_data_out() {
            return;
        }
        for i in 0..size.min(4) as usize {
            if let Some(b) = d.buf.get_mut(d.pos as usize + i) {
                *b = (value >> (8 * i)) as u8;
            }
        }
        d.pos = d.pos.saturating_add(size as u32);
        if d.pos as usize >= d.buf.len() {
            self.pio_out_done(host);
        }
    }

    /// The host has read the whole PIO buffer.
    fn pio_in_done(&mut self, host: &mut Host) {
        let xfer = self.cur().xfer.clone();
        match xfer {
            Xfer::AtaRead { .. } => self.ata_read_next(host),
            Xfer::AtapiIn { .. } => self.atapi_next_chunk(host),
            _ => {
                let d = self.cur_mut();
                d.stop_transfer();
                d.status = ST_DRDY | ST_DSC;
            }
        }
    }

    /// The host has written the whole PIO buffer.
    fn pio_out_done(&mut self, host: &mut Host) {
        let xfer = self.cur().xfer.clone();
        match xfer {
            Xfer::AtaWrite { .. } => self.ata_write_next(host),
            Xfer::Packet => self.atapi_packet(host),
            _ => {}
        }
    }

    fn bm_write_byte(&mut self, off: u16, b: u8) {
        match off {
            0 => {
                let was = self.bm.cmd & BM_CMD_START != 0;
                self.bm.cmd = b & (BM_CMD_START | BM_CMD_WRITE);
                let now = b & BM_CMD_START != 0;
                if now && !was {
                    self.bm.status |= BM_ST_ACTIVE;
                } else if was && !now {
                    self.bm.status &= !BM_ST_ACTIVE;
                }
            }
            2 => {
                let keep = self.bm.status & BM_ST_ACTIVE;
                let caps = b & (BM_ST_DMA0_CAP | BM_ST_DMA1_CAP);
                let cleared = self.bm.status & (BM_ST_ERROR | BM_ST_INT) & !b;
                self.bm.status = keep | caps | cleared;
            }
            4..=7 => {
                let sh = 8 * (off - 4);
                let v = (self.bm.prd & !(0xFF << sh)) | ((b as u32) << sh);
                self.bm.prd = v & !3;
            }
            _ => {}
        }
    }

    fn bm_read_byte(&self, off: u16) -> u8 {
        match off {
            0 => self.bm.cmd,
            2 => self.bm.status,
            4..=7 => (self.bm.prd >> (8 * (off - 4))) as u8,
            _ => 0,
        }
    }

    /// Perform a pending DMA transfer if the bus master has been started.
    fn run_dma(&mut self, mem: &mut PhysMem, host: &mut Host) {
        if self.bm.status & BM_ST_ACTIVE == 0 || self.bm.cmd & BM_CMD_START == 0 {
            return;
        }
        if !self.cur().dma_pending() {
            return;
        }
        let xfer = self.cur().xfer.clone();
        let (total, to_memory) = match xfer {
            Xfer::AtaDma { count, write, .. } => (count * SECTOR_SIZE, !write),
            Xfer::AtapiDma { left, .. } => (left, true),
            _ => return,
        };
        // Walk the PRD table, moving data between the drive and memory.
        let mut done = 0u64;
        let mut prd = self.bm.prd;
        let mut eot_reached = false;
        let mut io_ok = true;
        let mut entries = 0;
        while done < total && entries < MAX_PRD_ENTRIES {
            let mut e = [0u8; 8];
            mem.read_bytes(prd, &mut e);
            prd = prd.wrapping_add(8);
            entries += 1;
            let addr = u32::from_le_bytes([e[0], e[1], e[2], e[3]]) & !1;
            let mut len = u16::from_le_bytes([e[4], e[5]]) as u64 & !1;
            if len == 0 {
                len = 0x1_0000;
            }
            let eot = e[7] & 0x80 != 0;
            let n = len.min(total - done);
            let mut chunk = vec![0u8; n as usize];
            if to_memory {
                io_ok = self.dma_source(done, &mut chunk, host);
                if !io_ok {
                    break;
                }
                mem.write_bytes(addr, &chunk);
            } else {
                mem.read_bytes(addr, &mut chunk);
                io_ok = self.dma_sink(done, &chunk, host);
                if !io_ok {
                    break;
                }
            }
            done += n;
            if eot {
                eot_reached = n == len;
                break;
            }
        }
        if !io_ok {
            // The drive reports the error; the controller stops.
            self.bm.status &= !BM_ST_ACTIVE;
            self.dma_failed(xfer);
            self.raise_irq();
            return;
        }
        if done < total {
            // The PRD table was smaller than the transfer: the bus master stops without an
            // interrupt (SFF-8038i: Interrupt=0, Active=0); the drive gives up (as QEMU).
            let drive = self.cur_mut();
            drive.stop_transfer();
            drive.status = ST_DRDY | ST_DSC;
            self.bm.status &= !BM_ST_ACTIVE;
            return;
        }
        self.dma_complete(xfer);
        // Active is cleared when the transfer ended exactly at the end of the PRD table;
        // it stays set when the table had room left (SFF-8038i: a valid completion).
        if eot_reached {
            self.bm.status &= !BM_ST_ACTIVE;
        }
        self.raise_irq();
    }

    /// Device → memory data at byte `at` of the current DMA transfer.
    fn dma_source(&mut self, at: u64, out: &mut [u8], host: &mut Host) -> bool {
        let d = self.cur();
        match d.xfer {
            Xfer::AtaDma { lba, .. } => host.read(lba * SECTOR_SIZE + at, out),
            Xfer::AtapiDma {
                src: AtapiSource::Disc { offset },
                ..
            } => host.read(offset + at, out),
            Xfer::AtapiDma {
                src: AtapiSource::Reply { pos },
                ..
            } => {
                let start = pos as u64 + at;
                for (i, b) in out.iter_mut().enumerate() {
                    *b = d
                        .reply
                        .get((start + i as u64) as usize)
                        .copied()
                        .unwrap_or(0);
                }
                true
            }
            _ => false,
        }
    }

    /// Memory → device data at byte `at` of the current DMA transfer.
    fn dma_sink(&mut self, at: u64, data: &[u8], host: &mut Host) -> bool {
        match self.cur().xfer {
            Xfer::AtaDma { lba, .. } => host.write(lba * SECTOR_SIZE + at, data),
            _ => false,
        }
    }

    fn dma_complete(&mut self, xfer: Xfer) {
        match xfer {
            Xfer::AtaDma {
                lba, count, lba48, ..
            } => {
                let d = self.cur_mut();
                d.stop_transfer();
                d.set_position(lba + count, lba48);
                d.set_remaining(0, lba48);
                d.status = ST_DRDY | ST_DSC;
            }
            Xfer::AtapiDma { .. } => self.cur_mut().atapi_ok_state(),
            _ => {}
        }
    }

    fn dma_failed(&mut self, xfer: Xfer) {
        let d = self.cur_mut();
        match xfer {
            Xfer::AtaDma { write, .. } => {
                d.stop_transfer();
                d.status = ST_DRDY | ST_ERR;
                d.error = if write { ER_ABRT } else { ER_UNC | ER_ABRT };
            }
            _ => d.atapi_error_state(atapi::SENSE_MEDIUM_ERROR, atapi::ASC_UNRECOVERED_READ, 0),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The controller.

impl IdeController {
    /// A controller with the drives attached in `drives` (hard disks and CD-ROMs by kind,
    /// with their sizes).
    pub fn new(drives: &IdeDrives) -> IdeController {
        let spec = |i: usize| -> (DriveKind, u64) {
            match &drives.slots[i] {
                None => (DriveKind::None, 0),
                Some(a) => match a.kind {
                    MediaKind::HardDisk => (
                        DriveKind::Ata,
                        a.disk.as_ref().map_or(0, |d| d.len() / SECTOR_SIZE),
                    ),
                    MediaKind::Cdrom => (
                        DriveKind::Atapi,
                        a.disk.as_ref().map_or(0, |d| d.len() / CD_BLOCK_SIZE),
                    ),
                },
            }
        };
        IdeController {
            channels: [
                IdeChannel::new(0, [spec(0), spec(1)]),
                IdeChannel::new(1, [spec(2), spec(3)]),
            ],
            bm_base: None,
        }
    }

    /// Check that `drives` holds what this state expects (after a snapshot restore).
    /// Also checks the transfer state for consistency (sizes and addresses in range), so
    /// that a damaged or hostile saved state is refused instead of misbehaving later.
    pub fn check_drives(&self, drives: &IdeDrives) -> Result<(), String> {
        for (ch, c) in self.channels.iter().enumerate() {
            for (u, d) in c.drives.iter().enumerate() {
                d.validate()
                    .map_err(|e| format!("IDE {ch}:{u}: inconsistent saved state: {e}"))?;
            }
        }
        let fresh = IdeController::new(drives);
        for ch in 0..2 {
            for u in 0..2 {
                let a = &self.channels[ch].drives[u];
                let b = &fresh.channels[ch].drives[u];
                let name = |d: &Drive| match d.kind {
                    DriveKind::None => "nothing".to_string(),
                    DriveKind::Ata => format!("a hard disk of {} sectors", d.capacity),
                    DriveKind::Atapi => format!("a CD-ROM drive with {} blocks", d.capacity),
                };
                if a.kind != b.kind || a.capacity != b.capacity {
                    return Err(format!(
                        "IDE {ch}:{u}: the saved machine has {}, the attached one has {}",
                        name(a),
                        name(b)
                    ));
                }
            }
        }
        Ok(())
    }

    /// Power-on reset of both channels (bus-master registers included).
    pub fn reset(&mut self) {
        for c in &mut self.channels {
            c.reset();
        }
    }

    /// Where the bus-master registers are decoded (`PciBus::bmide_base()`); the board calls
    /// this after PCI configuration writes and after restore.
    pub fn set_bm_base(&mut self, base: Option<u16>) {
        self.bm_base = base;
    }
    pub fn bm_base(&self) -> Option<u16> {
        self.bm_base
    }

    /// INTRQ of `channel` (0: IRQ 14, 1: IRQ 15).
    pub fn irq_level(&self, channel: usize) -> bool {
        self.channels.get(channel).is_some_and(|c| c.irq)
    }

    /// Whether [`IdeController::run_dma`] has work: a DMA command pending on a started
    /// channel.
    pub fn dma_pending(&self) -> bool {
        self.channels.iter().any(|c| {
            c.bm.cmd & BM_CMD_START != 0 && c.bm.status & BM_ST_ACTIVE != 0 && c.cur().dma_pending()
        })
    }

    /// Perform pending bus-master transfers between the disks and `mem` (from
    /// `Bus::sync_memory`; skip it while the IDE function's PCI bus-master bit is clear).
    pub fn run_dma(&mut self, mem: &mut PhysMem, drives: &mut IdeDrives) {
        for ch in 0..2 {
            let c = &mut self.channels[ch];
            if c.bm.cmd & BM_CMD_START == 0 || !c.cur().dma_pending() {
                continue;
            }
            let unit = c.unit as usize & 1;
            let mut host = drives.host(ch, unit);
            c.run_dma(mem, &mut host);
        }
    }

    /// The ports decoded: both legacy channels, plus the bus-master block when mapped.
    pub fn port_ranges(&self) -> Vec<(u16, u16)> {
        let mut r = vec![
            (SECONDARY_BASE, SECONDARY_BASE + 7),
            (SECONDARY_CTRL, SECONDARY_CTRL),
            (PRIMARY_BASE, PRIMARY_BASE + 7),
            (PRIMARY_CTRL, PRIMARY_CTRL),
        ];
        if let Some(b) = self.bm_base {
            r.push((b, b.saturating_add(BM_LEN - 1)));
        }
        r
    }

    /// Which channel and register a port is: (channel, Some(reg 0-7)) for the command
    /// block, (channel, None) for the control block.
    fn decode(port: u16) -> Option<(usize, Option<u16>)> {
        match port {
            PRIMARY_BASE..=0x1F7 => Some((0, Some(port - PRIMARY_BASE))),
            SECONDARY_BASE..=0x177 => Some((1, Some(port - SECONDARY_BASE))),
            PRIMARY_CTRL => Some((0, None)),
            SECONDARY_CTRL => Some((1, None)),
            _ => None,
        }
    }

    fn bm_offset(&self, port: u16) -> Option<u16> {
        let b = self.bm_base?;
        let off = port.wrapping_sub(b);
        (off < BM_LEN).then_some(off)
    }

    pub fn io_read(&mut self, port: u16, size: u8, drives: &mut IdeDrives) -> u32 {
        if let Some(off) = self.bm_offset(port) {
            return self.bm_read(off, size);
        }
        let Some((ch, reg)) = Self::decode(port) else {
            return all_ones(size);
        };
        let unit = self.channels[ch].unit as usize & 1;
        let mut host = drives.host(ch, unit);
        let c = &mut self.channels[ch];
        match reg {
            Some(0) => c.data_read(size, &mut host),
            Some(r) => {
                // Byte registers; a wider access reads the following registers too.
                let mut v = 0u32;
                for i in 0..size.min(4) as u16 {
                    let rr = r + i;
                    let b = if rr <= 7 {
                        c.read_reg(rr, &mut host)
                    } else {
                        0xFF
                    };
                    v |= (b as u32) << (8 * i);
                }
                v
            }
            None => {
                // Alternate status (does not clear INTRQ); bytes beyond read as open bus.
                let mut v = all_ones(size);
                v = (v & !0xFF) | c.status_value() as u32;
                v
            }
        }
    }

    pub fn io_write(&mut self, port: u16, size: u8, value: u32, drives: &mut IdeDrives) {
        if let Some(off) = self.bm_offset(port) {
            self.bm_write(off, size, value);
            return;
        }
        let Some((ch, reg)) = Self::decode(port) else {
            return;
        };
        let unit = self.channels[ch].unit as usize & 1;
        let mut host = drives.host(ch, unit);
        let c = &mut self.channels[ch];
        match reg {
            Some(0) => c.data_write(size, value, &mut host),
            Some(r) => {
                // Byte registers; a wider access writes the following registers too (the
                // device register may change the unit a command then goes to).
                for i in 0..size.min(4) as u16 {
                    if r + i > 7 {
                        break;
                    }
                    let unit = c.unit as usize & 1;
                    let mut host = drives.host(ch, unit);
                    c.write_reg(r + i, (value >> (8 * i)) as u8, &mut host);
                }
            }
            None => c.write_control(value as u8),
        }
    }

    /// Read the bus-master block at `off` (0-15).
    pub fn bm_read(&mut self, off: u16, size: u8) -> u32 {
        let mut v = 0u32;
        for i in 0..size.min(4) as u16 {
            let o = off.wrapping_add(i);
            let b = if o < BM_LEN {
                self.channels[(o / 8) as usize].bm_read_byte(o % 8)
            } else {
                0xFF
            };
            v |= (b as u32) << (8 * i);
        }
        v
    }

    /// Write the bus-master block at `off` (0-15).
    pub fn bm_write(&mut self, off: u16, size: u8, value: u32) {
        for i in 0..size.min(4) as u16 {
            let o = off.wrapping_add(i);
            if o < BM_LEN {
                self.channels[(o / 8) as usize].bm_write_byte(o % 8, (value >> (8 * i)) as u8);
            }
        }
    }

    /// A [`PortDevice`] view with the host disks attached (for the board's port dispatch
    /// and the generic device tests).
    pub fn with_drives<'a>(&'a mut self, drives: &'a mut IdeDrives) -> IdePorts<'a> {
        IdePorts { ide: self, drives }
    }
}

/// The controller together with its disks, as a port device.
#[derive(Debug)]
pub struct IdePorts<'a> {
    pub ide: &'a mut IdeController,
    pub drives: &'a mut IdeDrives,
}

impl PortDevice for IdePorts<'_> {
    fn port_ranges(&self) -> Vec<(u16, u16)> {
        self.ide.port_ranges()
    }
    fn reset(&mut self) {
        self.ide.reset();
    }
    fn io_read(&mut self, port: u16, size: u8, _t: Time) -> u32 {
        self.ide.io_read(port, size, self.drives)
    }
    fn io_write(&mut self, port: u16, size: u8, value: u32, _t: Time) {
        self.ide.io_write(port, size, value, self.drives)
    }
}

#[cfg(test)]
mod tests;
