//! ATA commands: the hard-disk command set, and the ATA-level commands of ATAPI drives.
//!
//! Supported (hard disk): IDENTIFY DEVICE; READ/WRITE SECTORS (CHS, LBA28) and their EXT
//! forms (LBA48, HOB registers); READ/WRITE MULTIPLE (EXT) with SET MULTIPLE MODE (block
//! sizes 1-16, powers of two; 16 at power-on as on QEMU); READ/WRITE DMA (EXT) through
//! the bus master; READ VERIFY SECTORS (EXT); FLUSH CACHE (EXT); SET FEATURES (transfer
//! mode, write cache, and the harmless look-ahead/APM/acoustic/revert subcommands);
//! INITIALIZE DEVICE PARAMETERS (the CHS translation); READ NATIVE MAX ADDRESS (EXT);
//! RECALIBRATE, SEEK; IDLE/STANDBY (IMMEDIATE), SLEEP, CHECK POWER MODE (always "active");
//! EXECUTE DEVICE DIAGNOSTIC. Anything else (NOP included, as the standard says) aborts
//! with ABRT.
//!
//! Errors: an address outside the disk (or an impossible CHS address) gives IDNF; a host
//! read error UNC, a host write error ABRT; the host message is kept in `IdeDrives`.
//!
//! After each transferred block the address registers hold the next sector and the count
//! register what is left (as QEMU), in the addressing mode of the command.

use super::*;

/// Default CHS geometry for a disk of `sectors` 512-byte sectors: 16 heads, 63 sectors
/// per track and as many cylinders as fit (at most 16383), as BIOSes and QEMU assume.
/// Tiny disks get fewer heads and sectors so that the geometry is never empty.
pub fn default_geometry(sectors: u64) -> (u16, u8, u8) {
    if sectors == 0 {
        return (0, 0, 0);
    }
    let spt = sectors.min(63);
    let heads = (sectors / spt).clamp(1, 16);
    let cyls = (sectors / (heads * spt)).clamp(1, 16383);
    (cyls as u16, heads as u8, spt as u8)
}

/// Store an ATA string: two characters per word, the first in the high byte.
fn put_string(words: &mut [u16], s: &str) {
    let b = s.as_bytes();
    for (i, w) in words.iter_mut().enumerate() {
        let c0 = b.get(2 * i).copied().unwrap_or(b' ');
        let c1 = b.get(2 * i + 1).copied().unwrap_or(b' ');
        *w = (c0 as u16) << 8 | c1 as u16;
    }
}

fn words_to_bytes(w: &[u16; 256]) -> Vec<u8> {
    w.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub const MODEL: &str = "x86emu HARDDISK";
pub const FIRMWARE: &str = "0.1.0";

/// Selected-mode bits of IDENTIFY words 62, 63 and 88 for a SET FEATURES transfer mode.
fn mode_words(mode: u8) -> (u16, u16, u16) {
    let n = (mode & 7) as u16;
    match mode >> 3 {
        2 => (0x07 | 1 << (8 + n), 0x07, 0x3F),
        4 => (0x07, 0x07 | 1 << (8 + n), 0x3F),
        8 => (0x07, 0x07, 0x3F | 1 << (8 + n)),
        _ => (0x07, 0x07, 0x3F),
    }
}

impl Drive {
    /// IDENTIFY DEVICE data of a hard disk.
    pub fn identify_ata(&self) -> Vec<u8> {
        let mut w = [0u16; 256];
        w[0] = 0x0040; // fixed disk
        w[1] = self.cyls;
        w[3] = self.heads as u16;
        w[4] = 512 * self.spt as u16;
        w[5] = 512;
        w[6] = self.spt as u16;
        put_string(&mut w[10..20], &self.serial());
        w[20] = 3;
        w[21] = 512;
        w[22] = 4;
        put_string(&mut w[23..27], FIRMWARE);
        put_string(&mut w[27..47], MODEL);
        w[47] = 0x8000 | MAX_MULT_SECTORS as u16;
        w[48] = 1; // dword I/O
        w[49] = 1 << 11 | 1 << 9 | 1 << 8; // IORDY, LBA, DMA
        w[51] = 0x200;
        w[52] = 0x200;
        w[53] = 1 | 1 << 1 | 1 << 2; // words 54-58, 64-70 and 88 valid
        w[54] = self.cur_cyls;
        w[55] = self.cur_heads as u16;
        w[56] = self.cur_spt as u16;
        let chs = self.cur_cyls as u32 * self.cur_heads as u32 * self.cur_spt as u32;
        w[57] = chs as u16;
        w[58] = (chs >> 16) as u16;
        if self.mult != 0 {
            w[59] = 0x100 | self.mult as u16;
        }
        let lba28 = self.capacity.min(0x0FFF_FFFF);
        w[60] = lba28 as u16;
        w[61] = (lba28 >> 16) as u16;
        let (w62, w63, w88) = mode_words(self.xfer_mode);
        w[62] = w62;
        w[63] = w63;
        w[64] = 0x03; // PIO 3-4
        w[65] = 120;
        w[66] = 120;
        w[67] = 120;
        w[68] = 120;
        w[80] = 0xF0; // ATA-4 to ATA-7
        w[81] = 0x16;
        w[82] = 1 << 14 | 1 << 5; // NOP, write cache
        w[83] = 1 << 14 | 1 << 13 | 1 << 12 | 1 << 10; // FLUSH CACHE EXT, FLUSH CACHE, LBA48
        w[84] = 1 << 14;
        w[85] = 1 << 14 | (self.write_cache as u16) << 5;
        w[86] = 1 << 13 | 1 << 12 | 1 << 10;
        w[87] = 1 << 14;
        w[88] = w88;
        w[93] = 1 | 1 << 14 | 1 << 13; // device 0 passed diagnostics; 80-conductor cable
        let n = self.capacity;
        w[100] = n as u16;
        w[101] = (n >> 16) as u16;
        w[102] = (n >> 32) as u16;
        w[103] = (n >> 48) as u16;
        words_to_bytes(&w)
    }

    /// IDENTIFY PACKET DEVICE data of a CD-ROM drive.
    pub fn identify_atapi(&self) -> Vec<u8> {
        let mut w = [0u16; 256];
        // ATAPI, CD-ROM, removable, DRQ within 50 µs of PACKET, 12-byte packets.
        w[0] = 2 << 14 | 5 << 8 | 1 << 7 | 2 << 5;
        put_string(&mut w[10..20], &self.serial());
        w[20] = 3;
        w[21] = 512;
        w[22] = 4;
        put_string(&mut w[23..27], FIRMWARE);
        put_string(&mut w[27..47], atapi::MODEL);
        w[48] = 1;
        w[49] = 1 << 11 | 1 << 9 | 1 << 8; // IORDY, LBA, DMA
        w[53] = 7;
        let (w62, w63, w88) = mode_words(self.xfer_mode);
        w[62] = w62;
        w[63] = w63;
        w[64] = 3;
        w[65] = 0xB4;
        w[66] = 0xB4;
        w[67] = 0x12C;
        w[68] = 0xB4;
        w[71] = 30;
        w[72] = 30;
        w[80] = 0x1E; // ATA/ATAPI-1 to -4
        w[88] = w88;
        words_to_bytes(&w)
    }

    /// The address of an ATA read/write command, `None` for an impossible CHS address.
    fn command_lba(&self, lba48: bool) -> Option<u64> {
        if lba48 {
            return Some(
                self.sector as u64
                    | (self.lcyl as u64) << 8
                    | (self.hcyl as u64) << 16
                    | (self.hob_sector as u64) << 24
                    | (self.hob_lcyl as u64) << 32
                    | (self.hob_hcyl as u64) << 40,
            );
        }
        if self.select & 0x40 != 0 {
            return Some(
                ((self.select & 0x0F) as u64) << 24
                    | (self.hcyl as u64) << 16
                    | (self.lcyl as u64) << 8
                    | self.sector as u64,
            );
        }
        let cyl = (self.hcyl as u64) << 8 | self.lcyl as u64;
        let head = (self.select & 0x0F) as u64;
        let s = self.sector as u64;
        let (h, spt) = (self.cur_heads as u64, self.cur_spt as u64);
        if s == 0 || s > spt || head >= h {
            return None;
        }
        Some((cyl * h + head) * spt + s - 1)
    }

    fn command_count(&self, lba48: bool) -> u64 {
        if lba48 {
            self.lba48_count()
        } else if self.nsector == 0 {
            256
        } else {
            self.nsector as u64
        }
    }

    /// Put `lba` into the address registers in the command's addressing mode.
    pub(super) fn set_position(&mut self, lba: u64, lba48: bool) {
        if lba48 {
            self.sector = lba as u8;
            self.lcyl = (lba >> 8) as u8;
            self.hcyl = (lba >> 16) as u8;
            self.hob_sector = (lba >> 24) as u8;
            self.hob_lcyl = (lba >> 32) as u8;
            self.hob_hcyl = (lba >> 40) as u8;
        } else if self.select & 0x40 != 0 {
            self.select = (self.select & 0xF0) | ((lba >> 24) as u8 & 0x0F);
            self.hcyl = (lba >> 16) as u8;
            self.lcyl = (lba >> 8) as u8;
            self.sector = lba as u8;
        } else {
            let hs = self.cur_heads as u64 * self.cur_spt as u64;
            if hs == 0 {
                return;
            }
            let cyl = lba / hs;
            let r = lba % hs;
            self.hcyl = (cyl >> 8) as u8;
            self.lcyl = cyl as u8;
            self.select = (self.select & 0xF0) | ((r / self.cur_spt as u64) as u8 & 0x0F);
            self.sector = (r % self.cur_spt as u64) as u8 + 1;
        }
    }

    pub(super) fn set_remaining(&mut self, n: u64, lba48: bool) {
        self.nsector = n as u8;
        if lba48 {
            self.hob_nsector = (n >> 8) as u8;
        }
    }

    /// The address and count of a read/write command, or the error to report.
    fn checked_range(&self, lba48: bool) -> Result<(u64, u64), u8> {
        let lba = self.command_lba(lba48).ok_or(ER_IDNF)?;
        let count = self.command_count(lba48);
        if lba.checked_add(count).is_none_or(|end| end > self.capacity) {
            return Err(ER_IDNF);
        }
        Ok((lba, count))
    }

    fn fail(&mut self, error: u8) {
        self.stop_transfer();
        self.status = ST_DRDY | ST_ERR;
        self.error = error;
    }

    fn ok(&mut self) {
        self.status = ST_DRDY | ST_DSC;
    }
}

impl IdeChannel {
    /// A write to the command register.
    pub(super) fn command(&mut self, cmd: u8, host: &mut Host) {
        let d = self.cur();
        // Commands to a position without a drive are ignored.
        if !d.present() {
            return;
        }
        // Only DEVICE RESET is accepted by a busy ATAPI drive; anything else while BSY or
        // DRQ is ignored.
        if d.status & (ST_BSY | ST_DRQ) != 0 && !(cmd == 0x08 && d.kind == DriveKind::Atapi) {
            return;
        }
        self.irq = false;
        let d = self.cur_mut();
        d.error = 0;
        if d.kind == DriveKind::Atapi {
            self.atapi_ata_command(cmd, host);
        } else {
            self.ata_command(cmd, host);
        }
    }

    fn done(&mut self) {
        self.cur_mut().ok();
        self.raise_irq();
    }

    fn abort_irq(&mut self) {
        self.cur_mut().abort();
        self.raise_irq();
    }

    fn ata_command(&mut self, cmd: u8, host: &mut Host) {
        match cmd {
            0x20 | 0x21 => self.ata_pio_read(false, false, host),
            0x24 => self.ata_pio_read(true, false, host),
            0xC4 => self.ata_pio_read(false, true, host),
            0x29 => self.ata_pio_read(true, true, host),
            0x30 | 0x31 => self.ata_pio_write(false, false),
            0x34 => self.ata_pio_write(true, false),
            0xC5 => self.ata_pio_write(false, true),
            0x39 => self.ata_pio_write(true, true),
            0xC8 | 0xC9 => self.ata_dma(false, false),
            0x25 => self.ata_dma(true, false),
            0xCA | 0xCB => self.ata_dma(false, true),
            0x35 => self.ata_dma(true, true),
            0x40..=0x42 => {
                let d = self.cur_mut();
                match d.checked_range(cmd == 0x42) {
                    Ok(_) => self.done(),
                    Err(e) => {
                        d.fail(e);
                        self.raise_irq();
                    }
                }
            }
            0x10..=0x1F | 0x70 => self.done(),
            0x90 => self.execute_diagnostic(),
            0x91 => {
                let d = self.cur_mut();
                let heads = (d.select & 0x0F) + 1;
                let spt = d.nsector;
                if spt == 0 {
                    self.abort_irq();
                    return;
                }
                d.cur_heads = heads;
                d.cur_spt = spt;
                d.cur_cyls = (d.capacity / (heads as u64 * spt as u64)).min(65535) as u16;
                self.done();
            }
            0xC6 => {
                let d = self.cur_mut();
                let n = d.nsector;
                if n != 0 && (n > MAX_MULT_SECTORS || !n.is_power_of_two()) {
                    self.abort_irq();
                } else {
                    d.mult = n;
                    self.done();
                }
            }
            0xE0..=0xE3 | 0x94..=0x97 | 0xE6 | 0x99 => self.done(),
            0xE5 | 0x98 => {
                self.cur_mut().nsector = 0xFF; // active or idle
                self.done();
            }
            0xE7 | 0xEA => {
                if host.flush() {
                    self.done();
                } else {
                    self.cur_mut().fail(ER_ABRT);
                    self.raise_irq();
                }
            }
            0xEC => {
                let d = self.cur_mut();
                let data = d.identify_ata();
                d.start_pio(data, Xfer::PioInOnce);
                self.raise_irq();
            }
            0xEF => self.set_features(host),
            0xF8 | 0x27 => {
                let lba48 = cmd == 0x27;
                let d = self.cur_mut();
                let max = d.capacity.saturating_sub(1);
                let max = if lba48 { max } else { max.min(0x0FFF_FFFF) };
                if d.select & 0x40 == 0 {
                    self.abort_irq();
                    return;
                }
                d.set_position(max, lba48);
                self.done();
            }
            _ => self.abort_irq(),
        }
    }

    /// SET FEATURES, for both kinds of drive.
    pub(super) fn set_features(&mut self, host: &mut Host) {
        let d = self.cur_mut();
        match d.feature {
            0x03 => {
                let v = d.nsector;
                let ok = match v >> 3 {
                    0 | 1 => true,
                    2 | 4 => v & 7 <= 2,
                    8 => v & 7 <= 5,
                    _ => false,
                };
                if !ok {
                    self.abort_irq();
                    return;
                }
                d.xfer_mode = v;
                self.done();
            }
            0x02 => {
                d.write_cache = true;
                self.done();
            }
            0x82 => {
                d.write_cache = false;
                if d.kind == DriveKind::Ata && !host.flush() {
                    d.fail(ER_ABRT);
                    self.raise_irq();
                    return;
                }
                self.done();
            }
            // Look-ahead, revert to defaults, APM, acoustic management, media status
            // notification: accepted, nothing to change.
            0x05 | 0x85 | 0x55 | 0xAA | 0x66 | 0xCC | 0x42 | 0xC2 | 0x31 | 0x95 => self.done(),
            _ => self.abort_irq(),
        }
    }

    /// EXECUTE DEVICE DIAGNOSTIC: both drives run it; the error register reports "device 0
    /// passed, device 1 passed or not present".
    pub(super) fn execute_diagnostic(&mut self) {
        for d in &mut self.drives {
            if d.present() {
                d.reset_regs();
            }
        }
        self.raise_irq();
    }

    fn ata_pio_read(&mut self, lba48: bool, multiple: bool, host: &mut Host) {
        let d = self.cur_mut();
        if multiple && d.mult == 0 {
            self.abort_irq();
            return;
        }
        let block = if multiple { d.mult } else { 1 };
        match d.checked_range(lba48) {
            Ok((lba, count)) => {
                d.xfer = Xfer::AtaRead {
                    lba,
                    count,
                    lba48,
                    block,
                };
                self.ata_load_block(host);
            }
            Err(e) => {
                d.fail(e);
                self.raise_irq();
            }
        }
    }

    /// Read the next block of an `AtaRead` into the buffer and signal DRQ.
    fn ata_load_block(&mut self, host: &mut Host) {
        let d = self.cur_mut();
        let Xfer::AtaRead {
            lba,
            count,
            lba48,
            block,
        } = d.xfer
        else {
            return;
        };
        let n = count.min(block.max(1) as u64);
        let mut buf = vec![0u8; (n * SECTOR_SIZE) as usize];
        if !host.read(lba * SECTOR_SIZE, &mut buf) {
            d.set_position(lba, lba48);
            d.fail(ER_UNC);
            self.raise_irq();
            return;
        }
        d.set_position(lba + n, lba48);
        d.set_remaining(count - n, lba48);
        d.start_pio(
            buf,
            Xfer::AtaRead {
                lba,
                count,
                lba48,
                block,
            },
        );
        self.raise_irq();
    }

    /// The host has read a block of an `AtaRead`.
    pub(super) fn ata_read_next(&mut self, host: &mut Host) {
        let d = self.cur_mut();
        let Xfer::AtaRead {
            lba,
            count,
            lba48,
            block,
        } = d.xfer
        else {
            return;
        };
        let n = (d.buf.len() as u64 / SECTOR_SIZE).min(count);
        if count <= n {
            d.stop_transfer();
            d.ok();
            return;
        }
        d.xfer = Xfer::AtaRead {
            lba: lba + n,
            count: count - n,
            lba48,
            block,
        };
        self.ata_load_block(host);
    }

    fn ata_pio_write(&mut self, lba48: bool, multiple: bool) {
        let d = self.cur_mut();
        if multiple && d.mult == 0 {
            self.abort_irq();
            return;
        }
        let block = if multiple { d.mult } else { 1 };
        match d.checked_range(lba48) {
            Ok((lba, count)) => {
                let n = count.min(block as u64);
                // The first block is requested without an interrupt.
                d.start_pio(
                    vec![0; (n * SECTOR_SIZE) as usize],
                    Xfer::AtaWrite {
                        lba,
                        count,
                        lba48,
                        block,
                    },
                );
            }
            Err(e) => {
                d.fail(e);
                self.raise_irq();
            }
        }
    }

    /// The host has written a block of an `AtaWrite`: store it, then ask for the next.
    pub(super) fn ata_write_next(&mut self, host: &mut Host) {
        let d = self.cur_mut();
        let Xfer::AtaWrite {
            lba,
            count,
            lba48,
            block,
        } = d.xfer
        else {
            return;
        };
        let n = (d.buf.len() as u64 / SECTOR_SIZE).min(count);
        if !host.write(lba * SECTOR_SIZE, &d.buf[..(n * SECTOR_SIZE) as usize]) {
            d.set_position(lba, lba48);
            d.fail(ER_ABRT);
            self.raise_irq();
            return;
        }
        d.set_position(lba + n, lba48);
        d.set_remaining(count - n, lba48);
        if count <= n {
            d.stop_transfer();
            d.ok();
        } else {
            let m = (count - n).min(block.max(1) as u64);
            d.start_pio(
                vec![0; (m * SECTOR_SIZE) as usize],
                Xfer::AtaWrite {
                    lba: lba + n,
                    count: count - n,
                    lba48,
                    block,
                },
            );
        }
        self.raise_irq();
    }

    fn ata_dma(&mut self, lba48: bool, write: bool) {
        let d = self.cur_mut();
        match d.checked_range(lba48) {
            Ok((lba, count)) => {
                d.stop_transfer();
                d.xfer = Xfer::AtaDma {
                    lba,
                    count,
                    write,
                    lba48,
                };
                d.status = ST_DRDY | ST_DSC | ST_DRQ;
            }
            Err(e) => {
                d.fail(e);
                self.raise_irq();
            }
        }
    }
}
