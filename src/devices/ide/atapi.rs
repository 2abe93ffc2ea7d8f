//! ATAPI CD-ROM drive: the PACKET protocol and the SCSI/MMC commands used by SeaBIOS's
//! El Torito boot and Linux's sr/cdrom drivers.
//!
//! # Packet protocol
//!
//! PACKET (0xA0) puts the drive in DRQ with interrupt reason C/D=1, I/O=0 and no interrupt;
//! the host writes 12 bytes; the drive runs the command. Data-in is moved by PIO in chunks
//! of at most the byte count limit the host put in LBA mid/high (0xFFFF counts as 0xFFFE, an
//! odd limit is rounded down when more data follows, 0 aborts the command), each chunk
//! announced by DRQ, I/O=1, C/D=0, its size in LBA mid/high and an interrupt; or, when the
//! features register asked for DMA, by the bus master. Completion is DRDY with I/O=1,
//! C/D=1 and an interrupt; errors add ERR, the sense key in the error register's high
//! nibble and the sense data for REQUEST SENSE.
//!
//! # Commands
//!
//! TEST UNIT READY, REQUEST SENSE, INQUIRY (standard data; VPD pages 0x00 and 0x80), START
//! STOP UNIT (eject/load honour the lock), PREVENT/ALLOW MEDIUM REMOVAL, READ CAPACITY,
//! READ(10), READ(12), READ CD (user data only), SEEK(10), READ TOC (formats 0 and 1, LBA or
//! MSF), READ DISC INFORMATION, GET CONFIGURATION (profile list; current profile CD-ROM, or
//! DVD-ROM for discs larger than a CD), GET EVENT STATUS NOTIFICATION (polled, media
//! class), MODE SENSE(10) (pages 0x01, 0x0E, 0x2A and 0x3F; current, changeable and
//! default values), MECHANISM STATUS, SET CD SPEED. Others: ILLEGAL REQUEST, invalid
//! command operation code. Commands that need the disc report NOT READY / MEDIUM NOT
//! PRESENT while the tray is open or the drive is empty.
//!
//! Sense data describes the last command: it is cleared when another command starts and
//! by REQUEST SENSE itself.

use super::*;

pub const MODEL: &str = "x86emu DVD-ROM";
pub const VENDOR: &str = "x86emu";

pub const SENSE_NONE: u8 = 0x00;
pub const SENSE_NOT_READY: u8 = 0x02;
pub const SENSE_MEDIUM_ERROR: u8 = 0x03;
pub const SENSE_ILLEGAL_REQUEST: u8 = 0x05;
pub const SENSE_UNIT_ATTENTION: u8 = 0x06;

pub const ASC_UNRECOVERED_READ: u8 = 0x11;
pub const ASC_ILLEGAL_OPCODE: u8 = 0x20;
pub const ASC_LBA_OUT_OF_RANGE: u8 = 0x21;
pub const ASC_INV_FIELD_IN_CDB: u8 = 0x24;
pub const ASC_SAVING_PARAMS_NOT_SUPPORTED: u8 = 0x39;
pub const ASC_MEDIUM_NOT_PRESENT: u8 = 0x3A;
pub const ASC_MEDIA_REMOVAL_PREVENTED: u8 = 0x53;

/// Interrupt reason bits (in the sector count register).
const IR_COD: u8 = 0x01;
const IR_IO: u8 = 0x02;

/// Discs with more blocks than an 80-minute CD are reported as DVD-ROM.
const CD_MAX_BLOCKS: u64 = 80 * 60 * 75;

const PROFILE_CD_ROM: u16 = 0x0008;
const PROFILE_DVD_ROM: u16 = 0x0010;

fn be16(b: &[u8]) -> u64 {
    (b[0] as u64) << 8 | b[1] as u64
}
fn be32(b: &[u8]) -> u64 {
    (b[0] as u64) << 24 | (b[1] as u64) << 16 | (b[2] as u64) << 8 | b[3] as u64
}
fn put_be16(b: &mut [u8], v: u16) {
    b[..2].copy_from_slice(&v.to_be_bytes());
}
fn put_be32(b: &mut [u8], v: u32) {
    b[..4].copy_from_slice(&v.to_be_bytes());
}

fn pad(s: &str, n: usize) -> Vec<u8> {
    let mut v: Vec<u8> = s.bytes().take(n).collect();
    v.resize(n, b' ');
    v
}

/// LBA to minutes/seconds/frames (with the 2-second pregap).
fn msf(lba: u64) -> [u8; 3] {
    let l = lba + 150;
    [((l / 75) / 60) as u8, ((l / 75) % 60) as u8, (l % 75) as u8]
}

impl Drive {
    fn medium_present(&self) -> bool {
        !self.tray_open && self.capacity > 0
    }

    /// Command completed: DRDY, I/O and C/D set.
    pub(super) fn atapi_ok_state(&mut self) {
        self.stop_transfer();
        self.error = 0;
        self.status = ST_DRDY | ST_DSC;
        self.nsector = (self.nsector & !7) | IR_IO | IR_COD;
    }

    /// Command failed with CHECK CONDITION.
    pub(super) fn atapi_error_state(&mut self, key: u8, asc: u8, ascq: u8) {
        self.stop_transfer();
        self.error = key << 4;
        self.status = ST_DRDY | ST_ERR;
        self.nsector = (self.nsector & !7) | IR_IO | IR_COD;
        self.sense_key = key;
        self.asc = asc;
        self.ascq = ascq;
    }

    fn mode_page(&self, code: u8, changeable: bool) -> Option<Vec<u8>> {
        let mut p = match code {
            0x01 => vec![0x01, 0x06, 0x00, 0x05, 0, 0, 0, 0],
            0x0E => {
                let mut p = vec![0u8; 16];
                p[0] = 0x0E;
                p[1] = 0x0E;
                p[2] = 0x04; // immediate
                p[8] = 0x01; // port 0: channel 0
                p[9] = 0xFF;
                p[10] = 0x02; // port 1: channel 1
                p[11] = 0xFF;
                p
            }
            0x2A => {
                let mut p = vec![0u8; 22];
                p[0] = 0x2A;
                p[1] = 20;
                p[2] = 0x3B; // reads CD-R, CD-RW, DVD-ROM, DVD-R, DVD-RAM
                p[4] = 0x71; // audio play, mode 2 form 1/2, multisession
                p[5] = 0x60; // CD-DA commands, accurate
                p[6] = 1 | 1 << 3 | 1 << 5 | (self.locked as u8) << 1; // lock, eject, tray
                put_be16(&mut p[8..], 704); // 4x
                put_be16(&mut p[10..], 2); // volume levels
                put_be16(&mut p[12..], 512); // buffer KiB
                put_be16(&mut p[14..], 704);
                p
            }
            _ => return None,
        };
        if changeable {
            for b in &mut p[2..] {
                *b = 0;
            }
        }
        Some(p)
    }
}

impl IdeChannel {
    /// ATA commands sent to an ATAPI drive.
    pub(super) fn atapi_ata_command(&mut self, cmd: u8, host: &mut Host) {
        match cmd {
            0xA0 => {
                let d = self.cur_mut();
                // Overlapped commands are not supported.
                if d.feature & 0x02 != 0 {
                    self.abort_irq_atapi();
                    return;
                }
                d.atapi_dma = d.feature & 1 != 0;
                d.nsector = (d.nsector & !7) | IR_COD;
                d.start_pio(vec![0; 12], Xfer::Packet);
            }
            0xA1 => {
                let d = self.cur_mut();
                let data = d.identify_atapi();
                d.start_pio(data, Xfer::PioInOnce);
                self.raise_irq();
            }
            0x08 => {
                // DEVICE RESET: signature, no interrupt.
                self.cur_mut().reset_regs();
            }
            0x90 => self.execute_diagnostic(),
            0xEF => self.set_features(host),
            0xE5 | 0x98 => {
                let d = self.cur_mut();
                d.nsector = 0xFF;
                d.status = ST_DRDY | ST_DSC;
                self.raise_irq();
            }
            0xE0..=0xE3 | 0x94..=0x97 | 0xE6 | 0x99 => {
                self.cur_mut().status = ST_DRDY | ST_DSC;
                self.raise_irq();
            }
            // IDENTIFY DEVICE and the read commands abort with the ATAPI signature in
            // place, which is how hosts recognise a packet device.
            0xEC | 0x20 | 0x21 | 0x24 | 0x29 | 0xC4 | 0xC8 | 0x25 => {
                let d = self.cur_mut();
                d.abort();
                d.set_signature();
                self.raise_irq();
            }
            _ => self.abort_irq_atapi(),
        }
    }

    fn abort_irq_atapi(&mut self) {
        self.cur_mut().abort();
        self.raise_irq();
    }

    fn atapi_ok(&mut self) {
        self.cur_mut().atapi_ok_state();
        self.raise_irq();
    }

    fn atapi_error(&mut self, key: u8, asc: u8, ascq: u8) {
        self.cur_mut().atapi_error_state(key, asc, ascq);
        self.raise_irq();
    }

    /// Send `data` (cut to `alloc` bytes) as the command's data-in.
    fn atapi_reply(&mut self, mut data: Vec<u8>, alloc: u64, host: &mut Host) {
        data.truncate(alloc.min(data.len() as u64) as usize);
        let len = data.len() as u64;
        let d = self.cur_mut();
        d.stop_transfer();
        d.reply = data;
        self.atapi_start_transfer(AtapiSource::Reply { pos: 0 }, len, host);
    }

    fn atapi_start_transfer(&mut self, src: AtapiSource, total: u64, host: &mut Host) {
        if total == 0 {
            self.atapi_ok();
            return;
        }
        let d = self.cur_mut();
        if d.atapi_dma {
            d.buf = Vec::new();
            d.pos = 0;
            d.xfer = Xfer::AtapiDma { src, left: total };
            d.status = ST_DRDY | ST_DSC | ST_DRQ;
        } else {
            d.xfer = Xfer::AtapiIn { src, left: total };
            self.atapi_next_chunk(host);
        }
    }

    /// Start the next PIO chunk of an `AtapiIn`, or complete the command.
    pub(super) fn atapi_next_chunk(&mut self, host: &mut Host) {
        let d = self.cur_mut();
        let Xfer::AtapiIn { src, left } = d.xfer else {
            return;
        };
        if left == 0 {
            self.atapi_ok();
            return;
        }
        let mut bcl = (d.hcyl as u64) << 8 | d.lcyl as u64;
        if bcl == 0 {
            // An ATA-level abort (ACS-3 7.21.5).
            d.abort();
            d.nsector = (d.nsector & !7) | IR_IO | IR_COD;
            self.raise_irq();
            return;
        }
        if bcl == 0xFFFF {
            bcl = 0xFFFE;
        }
        let mut size = left.min(bcl);
        if size < left && size & 1 != 0 {
            size = (size - 1).max(2).min(left);
        }
        let mut chunk = vec![0u8; size as usize];
        let next = match src {
            AtapiSource::Reply { pos } => {
                for (i, b) in chunk.iter_mut().enumerate() {
                    *b = d.reply.get(pos as usize + i).copied().unwrap_or(0);
                }
                AtapiSource::Reply {
                    pos: pos.saturating_add(size as u32),
                }
            }
            AtapiSource::Disc { offset } => {
                if !host.read(offset, &mut chunk) {
                    self.atapi_error(SENSE_MEDIUM_ERROR, ASC_UNRECOVERED_READ, 0);
                    return;
                }
                AtapiSource::Disc {
                    offset: offset + size,
                }
            }
        };
        d.lcyl = size as u8;
        d.hcyl = (size >> 8) as u8;
        d.nsector = (d.nsector & !7) | IR_IO;
        d.start_pio(
            chunk,
            Xfer::AtapiIn {
                src: next,
                left: left - size,
            },
        );
        self.raise_irq();
    }

    /// The 12-byte packet has arrived: run the command.
    pub(super) fn atapi_packet(&mut self, host: &mut Host) {
        let d = self.cur_mut();
        let mut cdb = [0u8; 12];
        for (i, b) in cdb.iter_mut().enumerate() {
            *b = d.buf.get(i).copied().unwrap_or(0);
        }
        d.stop_transfer();
        let op = cdb[0];
        if op != 0x03 {
            d.sense_key = SENSE_NONE;
            d.asc = 0;
            d.ascq = 0;
        }
        let needs_medium = matches!(op, 0x00 | 0x25 | 0x28 | 0xA8 | 0x2B | 0x43 | 0x51 | 0xBE);
        if needs_medium && !d.medium_present() {
            let ascq = if d.tray_open { 0x02 } else { 0x01 };
            self.atapi_error(SENSE_NOT_READY, ASC_MEDIUM_NOT_PRESENT, ascq);
            return;
        }
        let capacity = d.capacity;
        match op {
            0x00 => self.atapi_ok(),
            0x03 => {
                let d = self.cur_mut();
                let mut s = vec![0u8; 18];
                s[0] = 0x70;
                s[2] = d.sense_key;
                s[7] = 10;
                s[12] = d.asc;
                s[13] = d.ascq;
                d.sense_key = SENSE_NONE;
                d.asc = 0;
                d.ascq = 0;
                self.atapi_reply(s, cdb[4] as u64, host);
            }
            0x12 => self.inquiry(&cdb, host),
            0x1B => self.start_stop_unit(&cdb),
            0x1E => {
                self.cur_mut().locked = cdb[4] & 1 != 0;
                self.atapi_ok();
            }
            0x25 => {
                let mut r = vec![0u8; 8];
                put_be32(&mut r[0..], (capacity - 1).min(u32::MAX as u64) as u32);
                put_be32(&mut r[4..], CD_BLOCK_SIZE as u32);
                self.atapi_reply(r, 8, host);
            }
            0x28 | 0xA8 | 0xBE => {
                let lba = be32(&cdb[2..6]);
                let count = match op {
                    0x28 => be16(&cdb[7..9]),
                    0xA8 => be32(&cdb[6..10]),
                    _ => (cdb[6] as u64) << 16 | be16(&cdb[7..9]),
                };
                if op == 0xBE {
                    match cdb[9] & 0xF8 {
                        0x10 => {}
                        0x00 => {
                            self.atapi_ok();
                            return;
                        }
                        _ => {
                            self.atapi_error(SENSE_ILLEGAL_REQUEST, ASC_INV_FIELD_IN_CDB, 0);
                            return;
                        }
                    }
                }
                if lba + count > capacity {
                    self.atapi_error(SENSE_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE, 0);
                    return;
                }
                self.atapi_start_transfer(
                    AtapiSource::Disc {
                        offset: lba * CD_BLOCK_SIZE,
                    },
                    count * CD_BLOCK_SIZE,
                    host,
                );
            }
            0x2B => {
                if be32(&cdb[2..6]) >= capacity {
                    self.atapi_error(SENSE_ILLEGAL_REQUEST, ASC_LBA_OUT_OF_RANGE, 0);
                } else {
                    self.atapi_ok();
                }
            }
            0x43 => self.read_toc(&cdb, host),
            0x46 => self.get_configuration(&cdb, host),
            0x4A => self.get_event_status(&cdb, host),
            0x51 => {
                if cdb[1] & 7 != 0 {
                    self.atapi_error(SENSE_ILLEGAL_REQUEST, ASC_INV_FIELD_IN_CDB, 0);
                    return;
                }
                let mut r = vec![0u8; 34];
                r[1] = 32;
                r[2] = 0x0E; // complete session, finalized disc
                r[3] = 1; // first track
                r[4] = 1; // sessions
                r[5] = 1; // first track of last session
                r[6] = 1; // last track of last session
                r[7] = 0x20; // unrestricted use
                self.atapi_reply(r, be16(&cdb[7..9]), host);
            }
            0x5A => self.mode_sense(&cdb, host),
            0xBB => self.atapi_ok(),
            0xBD => {
                let mut r = vec![0u8; 8];
                r[1] = (self.cur().tray_open as u8) << 4;
                r[5] = 1; // one slot
                self.atapi_reply(r, be16(&cdb[8..10]), host);
            }
            _ => self.atapi_error(SENSE_ILLEGAL_REQUEST, ASC_ILLEGAL_OPCODE, 0),
        }
    }

    fn inquiry(&mut self, cdb: &[u8; 12], host: &mut Host) {
        let d = self.cur();
        let alloc = be16(&cdb[3..5]);
        if cdb[1] & 1 != 0 {
            let r = match cdb[2] {
                0x00 => vec![0x05, 0x00, 0x00, 0x02, 0x00, 0x80],
                0x80 => {
                    let mut r = vec![0x05, 0x80, 0x00, 20];
                    r.extend(pad(&d.serial(), 20));
                    r
                }
                _ => {
                    self.atapi_error(SENSE_ILLEGAL_REQUEST, ASC_INV_FIELD_IN_CDB, 0);
                    return;
                }
            };
            self.atapi_reply(r, alloc, host);
            return;
        }
        if cdb[2] != 0 {
            self.atapi_error(SENSE_ILLEGAL_REQUEST, ASC_INV_FIELD_IN_CDB, 0);
            return;
        }
        let mut r = vec![0x05, 0x80, 0x00, 0x21, 31, 0, 0, 0];
        r.extend(pad(VENDOR, 8));
        r.extend(pad(MODEL, 16));
        r.extend(pad(ata::FIRMWARE, 4));
        self.atapi_reply(r, alloc, host);
    }

    fn start_stop_unit(&mut self, cdb: &[u8; 12]) {
        let d = self.cur_mut();
        let start = cdb[4] & 1 != 0;
        let loej = cdb[4] & 2 != 0;
        if cdb[4] & 0xF0 == 0 && loej {
            if !start && !d.tray_open && d.locked {
                let key = if d.capacity > 0 {
                    SENSE_NOT_READY
                } else {
                    SENSE_ILLEGAL_REQUEST
                };
                self.atapi_error(key, ASC_MEDIA_REMOVAL_PREVENTED, 0x02);
                return;
            }
            if d.tray_open == start {
                d.tray_open = !start;
                d.media_event = if start {
                    if d.capacity > 0 {
                        2
                    } else {
                        0
                    }
                } else {
                    3
                };
            }
        }
        self.atapi_ok();
    }

    fn read_toc(&mut self, cdb: &[u8; 12], host: &mut Host) {
        let d = self.cur();
        let alloc = be16(&cdb[7..9]);
        let use_msf = cdb[1] & 2 != 0;
        let format = if cdb[2] & 0x0F != 0 {
            cdb[2] & 0x0F
        } else {
            cdb[9] >> 6
        };
        let addr = |lba: u64| -> [u8; 4] {
            if use_msf {
                let m = msf(lba);
                [0, m[0], m[1], m[2]]
            } else {
                (lba as u32).to_be_bytes()
            }
        };
        let mut r = vec![0u8, 0, 1, 1];
        match format {
            0 => {
                let start = cdb[6];
                if start > 1 && start != 0xAA {
                    self.atapi_error(SENSE_ILLEGAL_REQUEST, ASC_INV_FIELD_IN_CDB, 0);
                    return;
                }
                if start <= 1 {
                    r.extend([0, 0x14, 1, 0]);
                    r.extend(addr(0));
                }
                r.extend([0, 0x16, 0xAA, 0]);
                r.extend(addr(d.capacity));
            }
            1 => {
                // One session; its first track starts at 0.
                r.extend([0, 0x14, 1, 0]);
                r.extend(addr(0));
            }
            _ => {
                self.atapi_error(SENSE_ILLEGAL_REQUEST, ASC_INV_FIELD_IN_CDB, 0);
                return;
            }
        }
        let len = (r.len() - 2) as u16;
        put_be16(&mut r, len);
        self.atapi_reply(r, alloc, host);
    }

    fn get_configuration(&mut self, cdb: &[u8; 12], host: &mut Host) {
        let d = self.cur();
        let alloc = be16(&cdb[7..9]);
        let current = if !d.medium_present() {
            0
        } else if d.capacity > CD_MAX_BLOCKS {
            PROFILE_DVD_ROM
        } else {
            PROFILE_CD_ROM
        };
        let mut r = vec![0u8; 8];
        put_be16(&mut r[6..], current);
        let rt = cdb[1] & 3;
        let start = be16(&cdb[2..4]);
        if rt == 3 {
            self.atapi_error(SENSE_ILLEGAL_REQUEST, ASC_INV_FIELD_IN_CDB, 0);
            return;
        }
        // Feature 0: the profile list (the only feature reported).
        if start == 0 {
            r.extend([0x00, 0x00, 0x03, 8]); // persistent, current, 2 profiles
            for p in [PROFILE_DVD_ROM, PROFILE_CD_ROM] {
                let mut e = [0u8; 4];
                put_be16(&mut e, p);
                e[2] = (p == current) as u8;
                r.extend(e);
            }
        }
        let len = (r.len() - 4) as u32;
        put_be32(&mut r, len);
        self.atapi_reply(r, alloc, host);
    }

    fn get_event_status(&mut self, cdb: &[u8; 12], host: &mut Host) {
        if cdb[1] & 1 == 0 {
            // Asynchronous mode is not supported.
            self.atapi_error(SENSE_ILLEGAL_REQUEST, ASC_INV_FIELD_IN_CDB, 0);
            return;
        }
        let alloc = be16(&cdb[7..9]);
        let d = self.cur_mut();
        let mut r = vec![0u8, 0, 0, 1 << 4];
        if cdb[4] & (1 << 4) != 0 {
            r[2] = 4; // media class
            let status = if d.tray_open {
                1
            } else if d.capacity > 0 {
                2
            } else {
                0
            };
            let event = if d.tray_open && d.media_event == 2 {
                0
            } else {
                std::mem::take(&mut d.media_event)
            };
            r.extend([event, status, 0, 0]);
        } else {
            r[2] = 0x80; // no event available
        }
        let len = (r.len() - 2) as u16;
        put_be16(&mut r, len);
        self.atapi_reply(r, alloc, host);
    }

    fn mode_sense(&mut self, cdb: &[u8; 12], host: &mut Host) {
        let d = self.cur();
        let alloc = be16(&cdb[7..9]);
        let control = cdb[2] >> 6;
        let code = cdb[2] & 0x3F;
        if control == 3 {
            self.atapi_error(SENSE_ILLEGAL_REQUEST, ASC_SAVING_PARAMS_NOT_SUPPORTED, 0);
            return;
        }
        let changeable = control == 1;
        let pages: Vec<u8> = if code == 0x3F {
            [0x01, 0x0E, 0x2A]
                .iter()
                .filter_map(|&c| d.mode_page(c, changeable))
                .flatten()
                .collect()
        } else {
            match d.mode_page(code, changeable) {
                Some(p) => p,
                None => {
                    self.atapi_error(SENSE_ILLEGAL_REQUEST, ASC_INV_FIELD_IN_CDB, 0);
                    return;
                }
            }
        };
        let mut r = vec![0u8; 8];
        r[2] = 0x70; // medium type: door closed, no disc type reported
        r.extend(pages);
        let len = (r.len() - 2) as u16;
        put_be16(&mut r, len);
        self.atapi_reply(r, alloc, host);
    }
}
