use std::io;

use rand::{Rng, SeedableRng};

use super::*;
use crate::disk::{CowDisk, MemDisk};

/// Byte `o` of the synthetic disks.
pub(crate) fn pat(o: u64) -> u8 {
    let s = o / 512;
    (o as u8).wrapping_mul(3) ^ s as u8 ^ ((s >> 8) as u8).rotate_left(3) ^ (s >> 16) as u8
}

/// A read-only disk of any size whose contents are `pat` (for LBA48-sized disks).
pub(crate) struct PatternDisk(pub u64);

impl Disk for PatternDisk {
    fn len(&self) -> u64 {
        self.0
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        if offset + buf.len() as u64 > self.0 {
            return Err(io::Error::other("beyond end"));
        }
        for (i, b) in buf.iter_mut().enumerate() {
            *b = pat(offset + i as u64);
        }
        Ok(())
    }
    fn write_at(&mut self, _offset: u64, _buf: &[u8]) -> io::Result<()> {
        Err(io::Error::other("pattern disk is read-only"))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
    fn name(&self) -> String {
        "pattern".into()
    }
}

fn pattern_mem(len: u64) -> MemDisk {
    MemDisk::new((0..len).map(pat).collect())
}

const BM: u16 = 0xC000;

struct Rig {
    ide: IdeController,
    drives: IdeDrives,
    mem: PhysMem,
}

impl Rig {
    fn new(drives: IdeDrives) -> Rig {
        let mut ide = IdeController::new(&drives);
        ide.set_bm_base(Some(BM));
        Rig {
            ide,
            drives,
            mem: PhysMem::new_flat(4 << 20),
        }
    }
    /// A 4 MiB hard disk as primary master, with pattern contents.
    fn hd() -> Rig {
        let mut d = IdeDrives::new();
        d.attach_hard_disk(0, 0, Box::new(pattern_mem(4 << 20)))
            .unwrap();
        Rig::new(d)
    }
    fn outb(&mut self, port: u16, v: u8) {
        self.ide.io_write(port, 1, v as u32, &mut self.drives);
    }
    fn inb(&mut self, port: u16) -> u8 {
        self.ide.io_read(port, 1, &mut self.drives) as u8
    }
    fn inw(&mut self, port: u16) -> u16 {
        self.ide.io_read(port, 2, &mut self.drives) as u16
    }
    fn outw(&mut self, port: u16, v: u16) {
        self.ide.io_write(port, 2, v as u32, &mut self.drives);
    }
    fn read_words(&mut self, base: u16, n: usize) -> Vec<u8> {
        let mut v = Vec::new();
        for _ in 0..n {
            v.extend(self.inw(base).to_le_bytes());
        }
        v
    }
    /// Task file for an LBA28 command on the primary master.
    fn lba28(&mut self, lba: u32, count: u8) {
        self.outb(0x1F2, count);
        self.outb(0x1F3, lba as u8);
        self.outb(0x1F4, (lba >> 8) as u8);
        self.outb(0x1F5, (lba >> 16) as u8);
        self.outb(0x1F6, 0xE0 | ((lba >> 24) as u8 & 0xF));
    }
    fn lba48(&mut self, lba: u64, count: u16) {
        self.outb(0x1F2, (count >> 8) as u8);
        self.outb(0x1F3, (lba >> 24) as u8);
        self.outb(0x1F4, (lba >> 32) as u8);
        self.outb(0x1F5, (lba >> 40) as u8);
        self.outb(0x1F2, count as u8);
        self.outb(0x1F3, lba as u8);
        self.outb(0x1F4, (lba >> 8) as u8);
        self.outb(0x1F5, (lba >> 16) as u8);
        self.outb(0x1F6, 0x40);
    }
    fn status(&mut self) -> u8 {
        self.inb(0x1F7)
    }
    fn dma(&mut self) {
        self.ide.run_dma(&mut self.mem, &mut self.drives);
    }
    fn disk_bytes(&mut self, ch: usize, unit: usize, off: u64, n: usize) -> Vec<u8> {
        let mut b = vec![0; n];
        self.drives
            .disk_mut(ch, unit)
            .unwrap()
            .read_at(off, &mut b)
            .unwrap();
        b
    }
}

fn expect(off: u64, n: usize) -> Vec<u8> {
    (0..n as u64).map(|i| pat(off + i)).collect()
}

fn word(id: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([id[2 * i], id[2 * i + 1]])
}

fn ata_string(id: &[u8], from: usize, to: usize) -> String {
    let mut s = String::new();
    for i in from..to {
        let w = word(id, i);
        s.push((w >> 8) as u8 as char);
        s.push(w as u8 as char);
    }
    s.trim_end().to_string()
}

fn identify(rig: &mut Rig) -> Vec<u8> {
    rig.outb(0x1F6, 0xA0);
    rig.outb(0x1F7, 0xEC);
    assert!(rig.ide.irq_level(0));
    assert_eq!(rig.status(), ST_DRDY | ST_DSC | ST_DRQ);
    assert!(!rig.ide.irq_level(0), "status read clears INTRQ");
    let id = rig.read_words(0x1F0, 256);
    assert_eq!(rig.status(), ST_DRDY | ST_DSC);
    id
}

#[test]
fn identify_small_disk() {
    let mut rig = Rig::hd();
    let id = identify(&mut rig);
    let sectors = (4u64 << 20) / 512;
    assert_eq!(word(&id, 0), 0x0040);
    assert_eq!(ata_string(&id, 27, 47), "x86emu HARDDISK");
    assert_eq!(ata_string(&id, 10, 20), "X86EMU-01");
    assert_eq!(ata_string(&id, 23, 27), "0.1.0");
    // CHS: 16 heads, 63 sectors, 8 cylinders (8128 of 8192 sectors).
    assert_eq!((word(&id, 1), word(&id, 3), word(&id, 6)), (8, 16, 63));
    assert_eq!((word(&id, 54), word(&id, 55), word(&id, 56)), (8, 16, 63));
    assert_eq!(
        word(&id, 57) as u32 | (word(&id, 58) as u32) << 16,
        8 * 16 * 63
    );
    assert_eq!(word(&id, 60) as u64 | (word(&id, 61) as u64) << 16, sectors);
    let l48: u64 = (0..4)
        .map(|i| (word(&id, 100 + i) as u64) << (16 * i))
        .sum();
    assert_eq!(l48, sectors);
    assert_eq!(word(&id, 47), 0x8010);
    assert_eq!(word(&id, 59), 0x0110, "multiple mode 16 at power-on");
    assert_eq!(word(&id, 49) & 0x0300, 0x0300, "LBA and DMA");
    assert_eq!(word(&id, 83), 0x7400, "LBA48, FLUSH CACHE (EXT)");
    assert_eq!(word(&id, 86), 0x3400);
    assert_eq!(word(&id, 80), 0x00F0);
    assert_eq!(word(&id, 63) & 0xFF, 0x07);
    assert_eq!(word(&id, 88) & 0xFF, 0x3F);
}

#[test]
fn identify_lba48_disk() {
    let mut d = IdeDrives::new();
    let sectors = 1u64 << 29; // 256 GiB
    d.attach_hard_disk(0, 0, Box::new(PatternDisk(sectors * 512)))
        .unwrap();
    let mut rig = Rig::new(d);
    let id = identify(&mut rig);
    assert_eq!(
        word(&id, 60) as u64 | (word(&id, 61) as u64) << 16,
        0x0FFF_FFFF
    );
    let l48: u64 = (0..4)
        .map(|i| (word(&id, 100 + i) as u64) << (16 * i))
        .sum();
    assert_eq!(l48, sectors);
    assert_eq!((word(&id, 1), word(&id, 3), word(&id, 6)), (16383, 16, 63));
    // A read near the end needs LBA48.
    let lba = sectors - 3;
    rig.lba48(lba, 2);
    rig.outb(0x1F7, 0x24);
    assert_eq!(rig.status() & (ST_DRQ | ST_ERR), ST_DRQ);
    let data = rig.read_words(0x1F0, 256);
    assert_eq!(data, expect(lba * 512, 512));
    assert_eq!(rig.status() & ST_DRQ, ST_DRQ);
    let data = rig.read_words(0x1F0, 256);
    assert_eq!(data, expect((lba + 1) * 512, 512));
    assert_eq!(rig.status(), ST_DRDY | ST_DSC);
    // Address registers now point at the next sector; HOB shows the high bytes.
    assert_eq!(rig.inb(0x1F3), (lba + 2) as u8);
    assert_eq!(rig.inb(0x1F4), ((lba + 2) >> 8) as u8);
    rig.outb(0x3F6, CTL_HOB);
    assert_eq!(rig.inb(0x1F3), ((lba + 2) >> 24) as u8);
    assert_eq!(rig.inb(0x1F4), ((lba + 2) >> 32) as u8);
    rig.outb(0x3F6, 0);
    // One sector past the end: IDNF.
    rig.lba48(sectors - 1, 2);
    rig.outb(0x1F7, 0x24);
    assert_eq!(rig.status(), ST_DRDY | ST_ERR);
    assert_eq!(rig.inb(0x1F1), ER_IDNF);
}

#[test]
fn pio_read_chs_lba28_lba48() {
    let mut rig = Rig::hd();
    // LBA28: 3 sectors at 100, one interrupt per sector.
    rig.lba28(100, 3);
    rig.outb(0x1F7, 0x20);
    for i in 0..3u64 {
        assert!(rig.ide.irq_level(0), "IRQ for sector {i}");
        assert_eq!(rig.status(), ST_DRDY | ST_DSC | ST_DRQ);
        assert_eq!(rig.read_words(0x1F0, 256), expect((100 + i) * 512, 512));
    }
    assert!(!rig.ide.irq_level(0), "no IRQ after the last PIO-in block");
    assert_eq!(rig.status(), ST_DRDY | ST_DSC);
    assert_eq!((rig.inb(0x1F2), rig.inb(0x1F3)), (0, 103));
    // CHS with the default translation 16/63: C=2 H=5 S=7 → ((2*16)+5)*63+6.
    let lba = (2 * 16 + 5) * 63 + 6;
    rig.outb(0x1F2, 1);
    rig.outb(0x1F3, 7);
    rig.outb(0x1F4, 2);
    rig.outb(0x1F5, 0);
    rig.outb(0x1F6, 0xA5);
    rig.outb(0x1F7, 0x20);
    assert_eq!(rig.read_words(0x1F0, 256), expect(lba * 512, 512));
    // Registers advanced in CHS terms: sector 8 of the same track.
    assert_eq!((rig.inb(0x1F3), rig.inb(0x1F6) & 0xF), (8, 5));
    // Dword data reads work as well.
    rig.lba28(7, 1);
    rig.outb(0x1F7, 0x20);
    let mut v = Vec::new();
    for _ in 0..128 {
        v.extend(rig.ide.io_read(0x1F0, 4, &mut rig.drives).to_le_bytes());
    }
    assert_eq!(v, expect(7 * 512, 512));
    // LBA48 with a count above 255.
    rig.lba48(1000, 300);
    rig.outb(0x1F7, 0x24);
    for i in 0..300u64 {
        assert_eq!(rig.status() & ST_DRQ, ST_DRQ);
        let d = rig.read_words(0x1F0, 256);
        assert_eq!(d, expect((1000 + i) * 512, 512), "sector {i}");
    }
    assert_eq!(rig.status(), ST_DRDY | ST_DSC);
    // Count 0 means 256 sectors for LBA28.
    rig.lba28(0, 0);
    rig.outb(0x1F7, 0x20);
    for _ in 0..256 {
        rig.read_words(0x1F0, 256);
    }
    assert_eq!(rig.status(), ST_DRDY | ST_DSC);
}

#[test]
fn pio_write_and_read_back() {
    let mut rig = Rig::hd();
    let data: Vec<u8> = (0..1024u32).map(|i| (i * 13 + 5) as u8).collect();
    rig.lba28(50, 2);
    rig.outb(0x1F7, 0x30);
    assert!(
        !rig.ide.irq_level(0),
        "first block of a write is requested without IRQ"
    );
    assert_eq!(rig.status(), ST_DRDY | ST_DSC | ST_DRQ);
    for (k, c) in data.chunks(2).enumerate() {
        rig.outw(0x1F0, u16::from_le_bytes([c[0], c[1]]));
        if k == 255 {
            assert!(rig.ide.irq_level(0), "IRQ after the first sector");
            assert_eq!(rig.status(), ST_DRDY | ST_DSC | ST_DRQ);
        }
    }
    assert!(rig.ide.irq_level(0));
    assert_eq!(rig.status(), ST_DRDY | ST_DSC);
    assert_eq!(rig.disk_bytes(0, 0, 50 * 512, 1024), data);
    assert_eq!(rig.disk_bytes(0, 0, 49 * 512, 512), expect(49 * 512, 512));
    assert_eq!(rig.disk_bytes(0, 0, 52 * 512, 512), expect(52 * 512, 512));
    // LBA48 write.
    rig.lba48(3000, 1);
    rig.outb(0x1F7, 0x34);
    for i in 0..256u16 {
        rig.outw(0x1F0, i);
    }
    assert_eq!(rig.status(), ST_DRDY | ST_DSC);
    let back = rig.disk_bytes(0, 0, 3000 * 512, 512);
    assert_eq!(back[..4], [0, 0, 1, 0]);
    // FLUSH CACHE completes.
    rig.outb(0x1F7, 0xE7);
    assert_eq!(rig.status(), ST_DRDY | ST_DSC);
    rig.outb(0x1F7, 0xEA);
    assert_eq!(rig.status(), ST_DRDY | ST_DSC);
}

#[test]
fn multiple_mode() {
    let mut rig = Rig::hd();
    // Invalid block sizes abort.
    rig.outb(0x1F2, 3);
    rig.outb(0x1F7, 0xC6);
    assert_eq!(rig.status(), ST_DRDY | ST_ERR);
    assert_eq!(rig.inb(0x1F1), ER_ABRT);
    rig.outb(0x1F2, 32);
    rig.outb(0x1F7, 0xC6);
    assert_eq!(rig.status(), ST_DRDY | ST_ERR);
    rig.outb(0x1F2, 4);
    rig.outb(0x1F7, 0xC6);
    assert_eq!(rig.status(), ST_DRDY | ST_DSC);
    let id = identify(&mut rig);
    assert_eq!(word(&id, 59), 0x0104);
    // READ MULTIPLE of 10 sectors: blocks of 4, 4, 2, one IRQ each.
    rig.lba28(200, 10);
    rig.outb(0x1F7, 0xC4);
    let mut got = Vec::new();
    for n in [4usize, 4, 2] {
        assert!(rig.ide.irq_level(0));
        assert_eq!(rig.status(), ST_DRDY | ST_DSC | ST_DRQ);
        got.extend(rig.read_words(0x1F0, 256 * n));
    }
    assert_eq!(got, expect(200 * 512, 10 * 512));
    assert_eq!(rig.status(), ST_DRDY | ST_DSC);
    // WRITE MULTIPLE EXT of 6 sectors: blocks of 4 and 2.
    rig.lba48(400, 6);
    rig.outb(0x1F7, 0x39);
    let data: Vec<u8> = (0..6 * 512u32).map(|i| (i / 3) as u8).collect();
    for (k, c) in data.chunks(2).enumerate() {
        if k == 4 * 256 {
            assert!(rig.ide.irq_level(0), "IRQ after the first block");
            assert_eq!(rig.status(), ST_DRDY | ST_DSC | ST_DRQ);
        }
        rig.outw(0x1F0, u16::from_le_bytes([c[0], c[1]]));
    }
    assert_eq!(rig.status(), ST_DRDY | ST_DSC);
    assert_eq!(rig.disk_bytes(0, 0, 400 * 512, 6 * 512), data);
    // Multiple mode disabled: READ MULTIPLE aborts.
    rig.outb(0x1F2, 0);
    rig.outb(0x1F7, 0xC6);
    rig.lba28(0, 1);
    rig.outb(0x1F7, 0xC4);
    assert_eq!(rig.status(), ST_DRDY | ST_ERR);
    assert_eq!(rig.inb(0x1F1), ER_ABRT);
}

/// A PRD table at 0x1000 with the given (address, bytes, eot) entries.
fn prd(rig: &mut Rig, ch: usize, entries: &[(u32, u32, bool)]) {
    let mut t = Vec::new();
    for &(a, n, eot) in entries {
        t.extend(a.to_le_bytes());
        t.extend(((n & 0xFFFF) as u16).to_le_bytes());
        t.extend((if eot { 0x8000u16 } else { 0 }).to_le_bytes());
    }
    let table = 0x1000 + 0x100 * ch as u32;
    rig.mem.write_bytes(table, &t);
    let o = BM + 8 * ch as u16;
    rig.ide.io_write(o + 4, 4, table, &mut rig.drives);
}

#[test]
fn dma_read_and_write_through_prd_table() {
    let mut rig = Rig::hd();
    // READ DMA of 8 sectors split over two regions (1000 + 3096 bytes).
    prd(
        &mut rig,
        0,
        &[(0x10000, 1000, false), (0x20000, 3096, true)],
    );
    rig.lba28(300, 8);
    rig.outb(0x1F7, 0xC8);
    assert_eq!(
        rig.ide.io_read(0x3F6, 1, &mut rig.drives) as u8,
        ST_DRDY | ST_DSC | ST_DRQ
    );
    assert!(!rig.ide.dma_pending(), "bus master not started");
    rig.dma();
    assert!(!rig.ide.irq_level(0));
    rig.outb(BM, BM_CMD_START | BM_CMD_WRITE);
    assert_eq!(rig.inb(BM + 2) & BM_ST_ACTIVE, BM_ST_ACTIVE);
    assert!(rig.ide.dma_pending());
    rig.dma();
    assert!(rig.ide.irq_level(0));
    assert_eq!(
        rig.inb(BM + 2) & 7,
        BM_ST_INT,
        "done: Active clear, Interrupt set"
    );
    rig.outb(BM, 0);
    assert_eq!(rig.status(), ST_DRDY | ST_DSC);
    let mut a = vec![0; 1000];
    rig.mem.read_bytes(0x10000, &mut a);
    let mut b = vec![0; 3096];
    rig.mem.read_bytes(0x20000, &mut b);
    a.extend(b);
    assert_eq!(a, expect(300 * 512, 4096));
    rig.outb(BM + 2, BM_ST_INT);
    assert_eq!(rig.inb(BM + 2) & 7, 0, "Interrupt is write-one-to-clear");

    // WRITE DMA EXT of 2 sectors from memory; PRD larger than the transfer.
    let data: Vec<u8> = (0..1024u32).map(|i| (i * 7 + 1) as u8).collect();
    rig.mem.write_bytes(0x30000, &data);
    prd(&mut rig, 0, &[(0x30000, 0x0000, true)]); // 0 = 64 KiB
    rig.lba48(77, 2);
    rig.outb(0x1F7, 0x35);
    rig.outb(BM, BM_CMD_START);
    rig.dma();
    assert_eq!(
        rig.inb(BM + 2) & 7,
        BM_ST_INT | BM_ST_ACTIVE,
        "PRD larger than the transfer: Active stays set"
    );
    assert_eq!(rig.status(), ST_DRDY | ST_DSC);
    assert_eq!(rig.disk_bytes(0, 0, 77 * 512, 1024), data);
    rig.outb(BM, 0);
    assert_eq!(rig.inb(BM + 2) & 1, 0);

    // PRD smaller than the transfer: no interrupt, Active and Interrupt clear.
    rig.outb(BM + 2, BM_ST_INT);
    prd(&mut rig, 0, &[(0x40000, 512, true)]);
    rig.lba28(10, 2);
    rig.outb(0x1F7, 0xC8);
    rig.outb(BM, BM_CMD_START | BM_CMD_WRITE);
    rig.dma();
    assert!(!rig.ide.irq_level(0));
    assert_eq!(rig.inb(BM + 2) & 7, 0);
    let mut c = vec![0; 512];
    rig.mem.read_bytes(0x40000, &mut c);
    assert_eq!(c, expect(10 * 512, 512));

    // DMA beyond the end: IDNF at once, nothing pending.
    rig.outb(BM, 0);
    rig.lba28(8191, 2);
    rig.outb(0x1F7, 0xC8);
    assert_eq!(rig.status(), ST_DRDY | ST_ERR);
    assert_eq!(rig.inb(0x1F1), ER_IDNF);
    rig.outb(BM, BM_CMD_START);
    assert!(!rig.ide.dma_pending());
}

#[test]
fn dma_started_before_command() {
    let mut rig = Rig::hd();
    prd(&mut rig, 0, &[(0x50000, 512, true)]);
    rig.outb(BM, BM_CMD_START | BM_CMD_WRITE);
    rig.dma();
    assert!(!rig.ide.irq_level(0));
    rig.lba28(5, 1);
    rig.outb(0x1F7, 0xC8);
    rig.dma();
    assert!(rig.ide.irq_level(0));
    let mut c = vec![0; 512];
    rig.mem.read_bytes(0x50000, &mut c);
    assert_eq!(c, expect(5 * 512, 512));
}

#[test]
fn error_paths() {
    let mut rig = Rig::hd();
    let last = (4u32 << 20) / 512 - 1;
    // Last sector is fine, one more is IDNF.
    rig.lba28(last, 1);
    rig.outb(0x1F7, 0x20);
    assert_eq!(rig.status() & ST_DRQ, ST_DRQ);
    rig.read_words(0x1F0, 256);
    rig.lba28(last, 2);
    rig.outb(0x1F7, 0x20);
    assert!(rig.ide.irq_level(0));
    assert_eq!(rig.status(), ST_DRDY | ST_ERR);
    assert_eq!(rig.inb(0x1F1), ER_IDNF);
    rig.lba28(last + 1, 1);
    rig.outb(0x1F7, 0x30);
    assert_eq!(rig.status(), ST_DRDY | ST_ERR);
    // CHS sector 0 and a head beyond the translation.
    rig.outb(0x1F3, 0);
    rig.outb(0x1F6, 0xA0);
    rig.outb(0x1F7, 0x20);
    assert_eq!(rig.inb(0x1F1), ER_IDNF);
    // READ VERIFY out of range.
    rig.lba28(last, 5);
    rig.outb(0x1F7, 0x40);
    assert_eq!(rig.inb(0x1F1), ER_IDNF);
    rig.lba28(last, 1);
    rig.outb(0x1F7, 0x40);
    assert_eq!(rig.status(), ST_DRDY | ST_DSC);
    // Unknown commands and NOP abort.
    for cmd in [0x00u8, 0xB0, 0xA0, 0xA1, 0xFF, 0x08] {
        rig.outb(0x1F7, cmd);
        assert_eq!(rig.status(), ST_DRDY | ST_ERR, "command {cmd:#x}");
        assert_eq!(rig.inb(0x1F1), ER_ABRT);
    }
    // A successful command clears the error.
    rig.outb(0x1F7, 0xE5);
    assert_eq!(rig.status(), ST_DRDY | ST_DSC);
    assert_eq!(rig.inb(0x1F1), 0);
    assert_eq!(rig.inb(0x1F2), 0xFF, "CHECK POWER MODE: active");
    // Bad transfer modes abort, good ones show in IDENTIFY.
    rig.outb(0x1F1, 0x03);
    rig.outb(0x1F2, 0x40 | 6);
    rig.outb(0x1F7, 0xEF);
    assert_eq!(rig.status(), ST_DRDY | ST_ERR);
    rig.outb(0x1F2, 0x20 | 2);
    rig.outb(0x1F7, 0xEF);
    assert_eq!(rig.status(), ST_DRDY | ST_DSC);
    let id = identify(&mut rig);
    assert_eq!(word(&id, 63), 0x0407);
    assert_eq!(word(&id, 88), 0x003F);
    // A host I/O error is reported as UNC and recorded.
    let mut d = IdeDrives::new();
    let cow = CowDisk::new(Box::new(PatternDisk(8 * 512)));
    d.attach_hard_disk(0, 0, Box::new(cow)).unwrap();
    let mut rig = Rig::new(d);
    rig.ide.channels[0].drives[0].capacity = 16; // pretend larger than the image
    rig.lba28(12, 1);
    rig.outb(0x1F7, 0x20);
    assert_eq!(rig.status(), ST_DRDY | ST_ERR);
    assert_eq!(rig.inb(0x1F1), ER_UNC);
    assert!(rig.drives.take_error().unwrap().contains("pattern"));
}

#[test]
fn initialize_device_parameters_changes_chs_translation() {
    let mut rig = Rig::hd();
    rig.outb(0x1F2, 32); // 32 sectors per track
    rig.outb(0x1F6, 0xA0 | 7); // 8 heads
    rig.outb(0x1F7, 0x91);
    assert_eq!(rig.status(), ST_DRDY | ST_DSC);
    let id = identify(&mut rig);
    assert_eq!((word(&id, 54), word(&id, 55), word(&id, 56)), (32, 8, 32));
    // C=1 H=2 S=3 → (8 + 2) * 32 + 2.
    rig.outb(0x1F2, 1);
    rig.outb(0x1F3, 3);
    rig.outb(0x1F4, 1);
    rig.outb(0x1F5, 0);
    rig.outb(0x1F6, 0xA2);
    rig.outb(0x1F7, 0x20);
    assert_eq!(rig.read_words(0x1F0, 256), expect(322 * 512, 512));
    rig.outb(0x1F2, 0);
    rig.outb(0x1F7, 0x91);
    assert_eq!(rig.inb(0x1F1), ER_ABRT);
}

#[test]
fn soft_reset_and_signatures() {
    let mut d = IdeDrives::new();
    d.attach_hard_disk(0, 0, Box::new(pattern_mem(1 << 20)))
        .unwrap();
    d.attach_cdrom(0, 1, Some(Box::new(pattern_mem(64 << 10))))
        .unwrap();
    let mut rig = Rig::new(d);
    // Leave the master in the middle of a transfer.
    rig.lba28(1, 2);
    rig.outb(0x1F7, 0x20);
    rig.outb(0x3F6, CTL_SRST | CTL_NIEN);
    assert_eq!(rig.inb(0x3F6) & ST_BSY, ST_BSY);
    rig.outb(0x3F6, CTL_NIEN);
    // Master: ATA signature.
    rig.outb(0x1F6, 0xA0);
    let sig: Vec<u8> = (2..=5).map(|r| rig.inb(0x1F0 + r)).collect();
    assert_eq!(sig, [1, 1, 0, 0]);
    assert_eq!(rig.inb(0x1F1), 0x01);
    assert_eq!(rig.status(), ST_DRDY | ST_DSC);
    // Slave: ATAPI signature, DRDY clear.
    rig.outb(0x1F6, 0xB0);
    let sig: Vec<u8> = (2..=5).map(|r| rig.inb(0x1F0 + r)).collect();
    assert_eq!(sig, [1, 1, 0x14, 0xEB]);
    assert_eq!(rig.status(), 0);
    assert!(!rig.ide.irq_level(0));
    // IDENTIFY DEVICE to the ATAPI drive aborts and leaves the signature.
    rig.outb(0x3F6, 0);
    rig.outb(0x1F4, 0);
    rig.outb(0x1F7, 0xEC);
    assert_eq!(rig.status() & ST_ERR, ST_ERR);
    assert_eq!((rig.inb(0x1F4), rig.inb(0x1F5)), (0x14, 0xEB));
    // EXECUTE DEVICE DIAGNOSTIC: both drives, error register 1, IRQ.
    rig.outb(0x1F7, 0x90);
    assert!(rig.ide.irq_level(0));
    assert_eq!(rig.inb(0x1F1), 0x01);
    rig.outb(0x1F6, 0xA0);
    assert_eq!((rig.inb(0x1F4), rig.inb(0x1F5), rig.inb(0x1F1)), (0, 0, 1));
    // DEVICE RESET on the ATAPI drive: no interrupt.
    rig.outb(0x1F6, 0xB0);
    rig.status();
    rig.outb(0x1F7, 0x08);
    assert!(!rig.ide.irq_level(0));
    assert_eq!((rig.inb(0x1F4), rig.inb(0x1F5)), (0x14, 0xEB));
}

#[test]
fn nien_and_absent_drives() {
    let mut rig = Rig::hd();
    rig.outb(0x3F6, CTL_NIEN);
    rig.outb(0x1F7, 0xE5);
    assert!(!rig.ide.irq_level(0), "nIEN masks INTRQ");
    assert_eq!(rig.inb(BM + 2) & BM_ST_INT, 0);
    rig.outb(0x3F6, 0);
    assert!(
        !rig.ide.irq_level(0),
        "an event masked at the time stays lost (as QEMU)"
    );
    rig.outb(0x1F7, 0xE5);
    assert!(rig.ide.irq_level(0));
    assert_eq!(rig.inb(0x3F6), ST_DRDY | ST_DSC);
    assert!(
        rig.ide.irq_level(0),
        "alternate status does not clear INTRQ"
    );
    // Absent slave: status 0, registers echo, commands ignored.
    rig.outb(0x1F6, 0xB0);
    assert_eq!(rig.status(), 0);
    rig.outb(0x1F2, 0x55);
    rig.outb(0x1F3, 0xAA);
    assert_eq!((rig.inb(0x1F2), rig.inb(0x1F3)), (0x55, 0xAA));
    rig.outb(0x1F7, 0xEC);
    assert_eq!(rig.status(), 0);
    assert_eq!(rig.inw(0x1F0), 0);
    // The empty secondary channel reads 0 everywhere.
    rig.outb(0x172, 0x55);
    for p in 0x170..=0x177 {
        assert_eq!(rig.inb(p), 0, "port {p:#x}");
    }
    assert_eq!(rig.inb(0x376), 0);
    assert!(!rig.ide.irq_level(1));
    // Unclaimed ports read all ones.
    assert_eq!(rig.ide.io_read(0x3F7, 1, &mut rig.drives), 0xFF);
}

#[test]
fn task_file_hob_and_busy_writes() {
    let mut rig = Rig::hd();
    rig.outb(0x1F2, 0x12);
    rig.outb(0x1F2, 0x34);
    rig.outb(0x1F5, 0x56);
    rig.outb(0x1F5, 0x78);
    assert_eq!(rig.inb(0x1F2), 0x34);
    rig.outb(0x3F6, CTL_HOB);
    assert_eq!((rig.inb(0x1F2), rig.inb(0x1F5)), (0x12, 0x56));
    // A write to a command block register clears HOB.
    rig.outb(0x1F3, 0);
    assert_eq!(rig.inb(0x1F2), 0x34);
    // While DRQ is set, task-file writes are ignored.
    rig.lba28(9, 1);
    rig.outb(0x1F7, 0x20);
    rig.outb(0x1F3, 0xEE);
    assert_eq!(rig.inb(0x1F3), 10);
}

// ---- ATAPI ----

fn iso(blocks: u64) -> MemDisk {
    pattern_mem(blocks * 2048)
}

fn cd_rig(disc: Option<MemDisk>) -> Rig {
    let mut d = IdeDrives::new();
    d.attach_cdrom(1, 0, disc.map(|m| Box::new(m) as Box<dyn Disk>))
        .unwrap();
    let mut rig = Rig::new(d);
    rig.outb(0x176, 0xA0);
    rig
}

/// Run a packet command on the secondary master by PIO; returns (data, final status, error).
fn packet(rig: &mut Rig, cdb: &[u8], bcl: u16) -> (Vec<u8>, u8, u8) {
    rig.outb(0x171, 0);
    rig.outb(0x174, bcl as u8);
    rig.outb(0x175, (bcl >> 8) as u8);
    rig.outb(0x177, 0xA0);
    assert!(!rig.ide.irq_level(1), "no IRQ for the packet phase");
    assert_eq!(rig.inb(0x177) & (ST_DRQ | ST_BSY), ST_DRQ);
    assert_eq!(rig.inb(0x172) & 3, 1, "C/D=1, I/O=0");
    let mut c = [0u8; 12];
    c[..cdb.len()].copy_from_slice(cdb);
    for w in c.chunks(2) {
        rig.outw(0x170, u16::from_le_bytes([w[0], w[1]]));
    }
    let mut data = Vec::new();
    loop {
        assert!(rig.ide.irq_level(1));
        let st = rig.inb(0x177);
        if st & ST_DRQ == 0 {
            assert_eq!(rig.inb(0x172) & 3, 3, "completion: I/O=1, C/D=1");
            return (data, st, rig.inb(0x171));
        }
        assert_eq!(rig.inb(0x172) & 3, 2, "data: I/O=1, C/D=0");
        let n = rig.inb(0x174) as usize | (rig.inb(0x175) as usize) << 8;
        assert!(n <= bcl.max(1) as usize);
        let chunk = rig.read_words(0x170, n.div_ceil(2));
        data.extend(&chunk[..n]);
    }
}

#[test]
fn atapi_identify_inquiry_capacity() {
    let mut rig = cd_rig(Some(iso(100)));
    rig.outb(0x177, 0xA1);
    assert!(rig.ide.irq_level(1));
    let id = rig.read_words(0x170, 256);
    assert_eq!(word(&id, 0), 0x85C0);
    assert_eq!(ata_string(&id, 27, 47), "x86emu DVD-ROM");
    assert_eq!(rig.inb(0x177), ST_DRDY | ST_DSC);
    let (inq, st, _) = packet(&mut rig, &[0x12, 0, 0, 0, 36], 0xFFFF);
    assert_eq!(st & ST_ERR, 0);
    assert_eq!(inq.len(), 36);
    assert_eq!(inq[0], 0x05, "CD/DVD device");
    assert_eq!(inq[1], 0x80, "removable");
    assert_eq!(&inq[8..16], b"x86emu  ");
    assert_eq!(&inq[16..30], b"x86emu DVD-ROM");
    // Allocation length cuts the reply.
    let (inq, _, _) = packet(&mut rig, &[0x12, 0, 0, 0, 5], 0xFFFF);
    assert_eq!(inq.len(), 5);
    let (cap, _, _) = packet(&mut rig, &[0x25], 8);
    assert_eq!(cap, [0, 0, 0, 99, 0, 0, 8, 0]);
    let (_, st, _) = packet(&mut rig, &[0x00], 0);
    assert_eq!(st, ST_DRDY | ST_DSC);
}

#[test]
fn atapi_read10_pio_chunks() {
    let mut rig = cd_rig(Some(iso(64)));
    // READ(10) of 3 blocks at LBA 16 with a 2048-byte limit: three chunks.
    let (d, st, _) = packet(&mut rig, &[0x28, 0, 0, 0, 0, 16, 0, 0, 3], 2048);
    assert_eq!(st, ST_DRDY | ST_DSC);
    assert_eq!(d, expect(16 * 2048, 3 * 2048));
    // An odd limit is rounded down to even while more data follows.
    let (d, _, _) = packet(&mut rig, &[0x28, 0, 0, 0, 0, 1, 0, 0, 1], 1001);
    assert_eq!(d, expect(2048, 2048));
    // 0xFFFF means 0xFFFE; READ(12).
    let (d, _, _) = packet(&mut rig, &[0xA8, 0, 0, 0, 0, 2, 0, 0, 0, 40], 0xFFFF);
    assert_eq!(d, expect(2 * 2048, 40 * 2048));
    // READ CD with user data.
    let (d, _, _) = packet(&mut rig, &[0xBE, 0, 0, 0, 0, 5, 0, 0, 1, 0x10], 0x8000);
    assert_eq!(d, expect(5 * 2048, 2048));
    // Zero blocks: completes without data.
    let (d, st, _) = packet(&mut rig, &[0x28, 0, 0, 0, 0, 1, 0, 0, 0], 2048);
    assert!(d.is_empty() && st & ST_ERR == 0);
    // Out of range: ILLEGAL REQUEST / LBA out of range, then REQUEST SENSE reports it.
    let (d, st, err) = packet(&mut rig, &[0x28, 0, 0, 0, 0, 63, 0, 0, 2], 2048);
    assert!(d.is_empty());
    assert_eq!(st, ST_DRDY | ST_ERR);
    assert_eq!(err >> 4, atapi::SENSE_ILLEGAL_REQUEST);
    let (s, st, _) = packet(&mut rig, &[0x03, 0, 0, 0, 18], 18);
    assert_eq!(st & ST_ERR, 0);
    assert_eq!((s[0], s[2], s[12]), (0x70, 5, 0x21));
    let (s, _, _) = packet(&mut rig, &[0x03, 0, 0, 0, 18], 18);
    assert_eq!((s[2], s[12]), (0, 0), "sense cleared after it was reported");
    // Unknown opcode.
    let (_, st, err) = packet(&mut rig, &[0xD8], 2048);
    assert_eq!((st & ST_ERR, err >> 4), (ST_ERR, 5));
    // Byte count limit 0 aborts the command at the ATA level.
    let (_, st, err) = packet(&mut rig, &[0x25], 0);
    assert_eq!((st & ST_ERR, err), (ST_ERR, ER_ABRT));
}

#[test]
fn atapi_read_dma() {
    let mut rig = cd_rig(Some(iso(32)));
    prd(
        &mut rig,
        1,
        &[(0x60000, 4096, false), (0x70000, 4096, true)],
    );
    rig.outb(0x171, 1); // DMA
    rig.outb(0x174, 0);
    rig.outb(0x175, 0x80);
    rig.outb(0x177, 0xA0);
    for w in [0x28u16, 0, 0x0300, 0, 0x0004, 0] {
        rig.outw(0x170, w);
    }
    assert!(!rig.ide.irq_level(1));
    rig.outb(BM + 8, BM_CMD_START | BM_CMD_WRITE);
    rig.dma();
    assert!(rig.ide.irq_level(1));
    assert_eq!(rig.inb(BM + 10) & 7, BM_ST_INT);
    assert_eq!(rig.inb(0x177), ST_DRDY | ST_DSC);
    assert_eq!(rig.inb(0x172) & 3, 3);
    let mut a = vec![0; 4096];
    rig.mem.read_bytes(0x60000, &mut a);
    let mut b = vec![0; 4096];
    rig.mem.read_bytes(0x70000, &mut b);
    a.extend(b);
    assert_eq!(a, expect(3 * 2048, 4 * 2048));
    // A reply (INQUIRY) by DMA as well.
    rig.outb(BM + 8, 0);
    rig.outb(BM + 10, BM_ST_INT);
    prd(&mut rig, 1, &[(0x60000, 36, true)]);
    rig.outb(0x171, 1);
    rig.outb(0x177, 0xA0);
    for w in [0x12u16, 0, 36, 0, 0, 0] {
        rig.outw(0x170, w);
    }
    rig.outb(BM + 8, BM_CMD_START | BM_CMD_WRITE);
    rig.dma();
    let mut inq = vec![0; 36];
    rig.mem.read_bytes(0x60000, &mut inq);
    assert_eq!(&inq[16..30], b"x86emu DVD-ROM");
}

#[test]
fn atapi_media_tray_and_toc() {
    let mut rig = cd_rig(None);
    let (_, st, err) = packet(&mut rig, &[0x00], 0);
    assert_eq!((st & ST_ERR, err >> 4), (ST_ERR, atapi::SENSE_NOT_READY));
    let (s, _, _) = packet(&mut rig, &[0x03, 0, 0, 0, 18], 18);
    assert_eq!((s[2], s[12], s[13]), (2, 0x3A, 0x01));
    // INQUIRY works without a disc.
    let (_, st, _) = packet(&mut rig, &[0x12, 0, 0, 0, 36], 36);
    assert_eq!(st & ST_ERR, 0);

    let mut rig = cd_rig(Some(iso(1000)));
    // TOC: track 1 at 0, lead-out at 1000 (LBA and MSF).
    let (toc, _, _) = packet(&mut rig, &[0x43, 0, 0, 0, 0, 0, 0, 0, 100], 100);
    assert_eq!(
        toc,
        [0, 18, 1, 1, 0, 0x14, 1, 0, 0, 0, 0, 0, 0, 0x16, 0xAA, 0, 0, 0, 0x03, 0xE8]
    );
    let (toc, _, _) = packet(&mut rig, &[0x43, 2, 0, 0, 0, 0, 0xAA, 0, 100], 100);
    // 1000 + 150 frames = 0 min 15 s 25 f.
    assert_eq!(toc, [0, 10, 1, 1, 0, 0x16, 0xAA, 0, 0, 0, 15, 25]);
    let (toc, _, _) = packet(&mut rig, &[0x43, 0, 0, 0, 0, 0, 0, 0, 12, 0x40], 12);
    assert_eq!(toc, [0, 10, 1, 1, 0, 0x14, 1, 0, 0, 0, 0, 0]);
    // Media events: none pending, medium present.
    let (ev, _, _) = packet(&mut rig, &[0x4A, 1, 0, 0, 0x10, 0, 0, 0, 8], 8);
    assert_eq!(ev, [0, 6, 4, 0x10, 0, 2, 0, 0]);
    // Locked tray refuses eject.
    packet(&mut rig, &[0x1E, 0, 0, 0, 1], 0);
    let (_, st, err) = packet(&mut rig, &[0x1B, 0, 0, 0, 0x02], 0);
    assert_eq!((st & ST_ERR, err >> 4), (ST_ERR, atapi::SENSE_NOT_READY));
    packet(&mut rig, &[0x1E, 0, 0, 0, 0], 0);
    let (_, st, _) = packet(&mut rig, &[0x1B, 0, 0, 0, 0x02], 0);
    assert_eq!(st & ST_ERR, 0);
    let (_, _, err) = packet(&mut rig, &[0x25], 8);
    assert_eq!(err >> 4, atapi::SENSE_NOT_READY, "tray open");
    let (ev, _, _) = packet(&mut rig, &[0x4A, 1, 0, 0, 0x10, 0, 0, 0, 8], 8);
    assert_eq!(ev[4..6], [3, 1], "media removal, tray open");
    packet(&mut rig, &[0x1B, 0, 0, 0, 0x03], 0);
    let (ev, _, _) = packet(&mut rig, &[0x4A, 1, 0, 0, 0x10, 0, 0, 0, 8], 8);
    assert_eq!(ev[4..6], [2, 2], "new media");
    let (cap, _, _) = packet(&mut rig, &[0x25], 8);
    assert_eq!(cap[..4], [0, 0, 0x03, 0xE7]);
    // MODE SENSE(10) page 0x2A and all pages; saved values are refused.
    let (ms, st, _) = packet(&mut rig, &[0x5A, 0, 0x2A, 0, 0, 0, 0, 0, 64], 64);
    assert_eq!(st & ST_ERR, 0);
    assert_eq!(ms.len(), 30);
    assert_eq!((ms[1], ms[8], ms[9]), (28, 0x2A, 20));
    let (ms, _, _) = packet(&mut rig, &[0x5A, 0, 0x3F, 0, 0, 0, 0, 1, 0], 256);
    assert_eq!(ms.len(), 8 + 8 + 16 + 22);
    let (_, st, _) = packet(&mut rig, &[0x5A, 0, 0xEA, 0, 0, 0, 0, 0, 64], 64);
    assert_eq!(st & ST_ERR, ST_ERR);
    // GET CONFIGURATION: current profile CD-ROM.
    let (gc, _, _) = packet(&mut rig, &[0x46, 0, 0, 0, 0, 0, 0, 0, 32], 32);
    assert_eq!(gc[6..8], [0, 8]);
    assert_eq!(gc.len(), 20);
    assert_eq!(gc[3] as usize, gc.len() - 4);
}

// ---- generic device properties ----

fn full_rig() -> Rig {
    let mut d = IdeDrives::new();
    d.attach_hard_disk(
        0,
        0,
        Box::new(CowDisk::new(Box::new(PatternDisk(64 << 20)))),
    )
    .unwrap();
    d.attach_cdrom(0, 1, Some(Box::new(iso(256)))).unwrap();
    d.attach_hard_disk(1, 1, Box::new(CowDisk::new(Box::new(PatternDisk(1 << 20)))))
        .unwrap();
    Rig::new(d)
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap()
}

/// Random traffic that often forms valid commands, so that transfers actually run.
fn random_traffic(rig: &mut Rig, seed: u64, n: usize) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let cmds = [
        0x20u8, 0x24, 0x29, 0xC4, 0x30, 0x34, 0x39, 0xC5, 0xC8, 0xCA, 0x25, 0x35, 0x40, 0xEC, 0xA0,
        0xA1, 0x08, 0x90, 0x91, 0xC6, 0xEF, 0xE5, 0xE7, 0xF8, 0x27, 0x00, 0xFF,
    ];
    let ops = [
        0x00u8, 0x03, 0x12, 0x1B, 0x1E, 0x25, 0x28, 0xA8, 0xBE, 0x2B, 0x43, 0x46, 0x4A, 0x51, 0x5A,
        0xBB, 0xBD, 0x77,
    ];
    for _ in 0..n {
        let ch = rng.gen_range(0..2u16);
        let base = if ch == 0 { 0x1F0 } else { 0x170 };
        let size = [1u8, 2, 4][rng.gen_range(0..3)];
        match rng.gen_range(0..12) {
            0 => rig.outb(base + 7, cmds[rng.gen_range(0..cmds.len())]),
            1 => {
                // A packet.
                let mut c = [0u8; 12];
                rng.fill(&mut c[..]);
                c[0] = ops[rng.gen_range(0..ops.len())];
                c[2] = 0;
                c[3] = 0;
                for w in c.chunks(2) {
                    rig.outw(base, u16::from_le_bytes([w[0], w[1]]));
                }
            }
            2 => {
                let v = (rng.gen_range(0..4u32) * 0x100) | rng.gen_range(0..0x100);
                rig.ide
                    .io_write(BM + 8 * ch + 4, 4, 0x1000 + v * 8, &mut rig.drives);
            }
            3 => rig.outb(BM + 8 * ch, [0, 1, 8, 9][rng.gen_range(0..4)]),
            4 => rig.dma(),
            5 => rig.outb(base + 0x206, [0, 2, 4, 6, 0x80][rng.gen_range(0..5)]),
            6 | 7 => {
                let v = rig.ide.io_read(base, size, &mut rig.drives);
                assert!(size == 4 || v >> (8 * size) == 0);
            }
            8 => rig.ide.io_write(base, size, rng.gen(), &mut rig.drives),
            9 => {
                let p = base + rng.gen_range(1..8);
                rig.ide.io_write(p, size, rng.gen(), &mut rig.drives);
            }
            10 => {
                let p = [
                    base + rng.gen_range(0..8),
                    base + 0x206,
                    BM + rng.gen_range(0..16),
                ][rng.gen_range(0..3)];
                rig.ide.io_read(p, size, &mut rig.drives);
            }
            _ => {
                let p: u16 = rng.gen();
                if rng.gen_bool(0.5) {
                    rig.ide.io_write(p, size, rng.gen(), &mut rig.drives);
                } else {
                    rig.ide.io_read(p, size, &mut rig.drives);
                }
            }
        }
    }
}

#[test]
fn reset_idempotent_and_save_restore() {
    let mut rig = full_rig();
    random_traffic(&mut rig, 1, 20_000);
    let s1 = json(&rig.ide);
    let back: IdeController = serde_json::from_str(&s1).unwrap();
    assert_eq!(back, rig.ide);
    assert_eq!(json(&back), s1);
    let mut a = rig.ide.clone();
    a.reset();
    let mut b = a.clone();
    b.reset();
    assert_eq!(a, b);
    let mut fresh = IdeController::new(&rig.drives);
    fresh.set_bm_base(Some(BM));
    assert_eq!(a, fresh, "reset equals power-on");
    assert!(rig.ide.check_drives(&rig.drives).is_ok());
    let other = IdeDrives::new();
    let e = rig.ide.check_drives(&other).unwrap_err();
    assert!(e.contains("IDE 0:0"), "{e}");
    // Inconsistent transfer state from a damaged snapshot is refused.
    let mut bad = rig.ide.clone();
    bad.channels[0].drives[0].xfer = Xfer::AtaRead {
        lba: u64::MAX - 1,
        count: 4,
        lba48: true,
        block: 1,
    };
    let e = bad.check_drives(&rig.drives).unwrap_err();
    assert!(e.contains("IDE 0:0") && e.contains("out of range"), "{e}");
    let mut bad = rig.ide.clone();
    bad.channels[0].drives[1].xfer = Xfer::AtapiIn {
        src: AtapiSource::Reply { pos: 10 },
        left: 100,
    };
    assert!(bad.check_drives(&rig.drives).is_err());
    let mut bad = rig.ide.clone();
    bad.channels[1].drives[1].buf = vec![0; 1 << 20];
    assert!(bad.check_drives(&rig.drives).is_err());
}

#[test]
fn random_port_sequences_never_panic() {
    for seed in 0..8 {
        let mut rig = full_rig();
        random_traffic(&mut rig, 100 + seed, 30_000);
        // A restored copy with hostile buffer positions keeps working.
        let mut ide = rig.ide.clone();
        for c in &mut ide.channels {
            for d in &mut c.drives {
                d.pos = u32::MAX - 1;
                d.buf.truncate(1);
                if let Xfer::AtapiIn {
                    src: AtapiSource::Reply { pos },
                    ..
                } = &mut d.xfer
                {
                    *pos = u32::MAX;
                }
            }
        }
        rig.ide = ide;
        random_traffic(&mut rig, 200 + seed, 5_000);
    }
    // Through the PortDevice view as well.
    let mut rig = full_rig();
    let mut ports = rig.ide.with_drives(&mut rig.drives);
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let t = Time::new(0, crate::clock::Clock::default());
    for _ in 0..20_000 {
        let ranges = ports.port_ranges();
        let (lo, hi) = ranges[rng.gen_range(0..ranges.len())];
        let p = rng.gen_range(lo..=hi);
        let size = [1u8, 2, 4][rng.gen_range(0..3)];
        if rng.gen_bool(0.5) {
            ports.io_write(p, size, rng.gen(), t);
        } else {
            ports.io_read(p, size, t);
        }
    }
}
