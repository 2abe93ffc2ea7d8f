//! The PCI bus, the PIIX3 IDE controller and the ACPI PM block wired together the way the
//! board wires them: port dispatch, decoder updates after configuration writes, PAM and
//! DMA applied after every access (`Bus::sync_memory`), disks behind copy-on-write
//! overlays over image files.

use std::path::PathBuf;

use rand::{Rng, SeedableRng};
use x86emu::clock::Clock;
use x86emu::devices::bus::all_ones;
use x86emu::devices::ide::{IdeController, IdeDrives};
use x86emu::devices::pci::piix3::AcpiPm;
use x86emu::devices::pci::{PciBus, IDE_DEVFN, PM_DEVFN};
use x86emu::devices::{PortDevice, Time};
use x86emu::disk::{CowDisk, MemDisk, RawFileDisk};
use x86emu::mmu::PhysMem;

struct Board {
    pci: PciBus,
    pm: AcpiPm,
    ide: IdeController,
    drives: IdeDrives,
    mem: PhysMem,
    now: u64,
}

impl Board {
    fn new(drives: IdeDrives) -> Board {
        Board {
            pci: PciBus::new(),
            pm: AcpiPm::new(),
            ide: IdeController::new(&drives),
            drives,
            mem: PhysMem::new_pc(8 << 20),
            now: 0,
        }
    }

    fn time(&mut self) -> Time {
        self.now += 10;
        Time::new(self.now, Clock::default())
    }

    fn in_ranges(ranges: &[(u16, u16)], port: u16) -> bool {
        ranges.iter().any(|&(a, b)| (a..=b).contains(&port))
    }

    fn io_read(&mut self, port: u16, size: u8) -> u32 {
        let t = self.time();
        let v = if (0xCF8..=0xCFF).contains(&port) {
            self.pci.io_read(port, size, t)
        } else if Self::in_ranges(&self.ide.port_ranges(), port) {
            self.ide.io_read(port, size, &mut self.drives)
        } else if Self::in_ranges(&self.pm.port_ranges(), port) {
            self.pm.io_read(port, size, t)
        } else {
            all_ones(size)
        };
        self.sync();
        v
    }

    fn io_write(&mut self, port: u16, size: u8, v: u32) {
        let t = self.time();
        if (0xCF8..=0xCFF).contains(&port) {
            self.pci.io_write(port, size, v, t);
        } else if Self::in_ranges(&self.ide.port_ranges(), port) {
            self.ide.io_write(port, size, v, &mut self.drives);
        } else if Self::in_ranges(&self.pm.port_ranges(), port) {
            self.pm.io_write(port, size, v, t);
        }
        self.sync();
    }

    /// What the board does in `Bus::sync_memory`.
    fn sync(&mut self) {
        if self.pci.take_config_changed() {
            self.ide.set_bm_base(self.pci.bmide_base());
            self.pm.set_base(self.pci.pm_io_base());
        }
        self.pci.sync_memory(&mut self.mem);
        if self.pci.bus_master(IDE_DEVFN) {
            self.ide.run_dma(&mut self.mem, &mut self.drives);
        }
    }

    fn cfg_write(&mut self, devfn: u8, reg: u8, size: u8, v: u32) {
        self.io_write(
            0xCF8,
            4,
            0x8000_0000 | (devfn as u32) << 8 | (reg & 0xFC) as u32,
        );
        self.io_write(0xCFC + (reg & 3) as u16, size, v);
    }

    fn outb(&mut self, p: u16, v: u8) {
        self.io_write(p, 1, v as u32);
    }
    fn inb(&mut self, p: u16) -> u8 {
        self.io_read(p, 1) as u8
    }
}

fn temp_file(name: &str, data: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("x86emu-pci-ide-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

fn image(len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 5) ^ (i >> 9)) as u8).collect()
}

#[test]
fn seabios_style_setup_then_dma_over_cow_disk() {
    let data = image(2 << 20);
    let path = temp_file("hd.img", &data);
    let base = RawFileDisk::open(&path).unwrap();
    let mut drives = IdeDrives::new();
    drives
        .attach_hard_disk(0, 0, Box::new(CowDisk::new(Box::new(base))))
        .unwrap();
    let mut b = Board::new(drives);
    // What SeaBIOS's pciinit does for 01.1: BAR4, IDETIM decode enable, I/O on.
    b.cfg_write(IDE_DEVFN, 0x20, 4, 0xC001);
    b.cfg_write(IDE_DEVFN, 0x40, 2, 0x8000);
    b.cfg_write(IDE_DEVFN, 0x04, 2, 0x0001);
    assert_eq!(b.ide.bm_base(), Some(0xC000));

    // PRD table at 0x8000: one entry, 4 KiB at 0x100000, EOT.
    let mut prd = Vec::new();
    prd.extend(0x10_0000u32.to_le_bytes());
    prd.extend(4096u16.to_le_bytes());
    prd.extend(0x8000u16.to_le_bytes());
    b.mem.write_bytes(0x8000, &prd);
    b.io_write(0xC004, 4, 0x8000);
    // READ DMA, 8 sectors at LBA 16.
    b.outb(0x1F2, 8);
    b.outb(0x1F3, 16);
    b.outb(0x1F4, 0);
    b.outb(0x1F5, 0);
    b.outb(0x1F6, 0xE0);
    b.outb(0x1F7, 0xC8);
    b.outb(0xC000, 0x09);
    // Bus mastering is still off in PCI: nothing moves.
    assert!(!b.ide.irq_level(0));
    assert!(b.ide.dma_pending());
    b.cfg_write(IDE_DEVFN, 0x04, 2, 0x0005);
    assert!(
        b.ide.irq_level(0),
        "DMA completes at the sync after bus mastering is enabled"
    );
    let mut got = vec![0; 4096];
    b.mem.read_bytes(0x10_0000, &mut got);
    assert_eq!(got, data[16 * 512..24 * 512]);
    assert_eq!(b.inb(0xC002) & 7, 4);
    assert_eq!(b.inb(0x1F7), 0x50);
    b.outb(0xC000, 0);
    b.outb(0xC002, 4);

    // WRITE DMA of the same 8 sectors from different memory contents.
    let new: Vec<u8> = (0..4096).map(|i| (i as u8) ^ 0xA5).collect();
    b.mem.write_bytes(0x10_0000, &new);
    b.outb(0x1F2, 8);
    b.outb(0x1F3, 16);
    b.outb(0x1F6, 0xE0);
    b.outb(0x1F7, 0xCA);
    b.outb(0xC000, 0x01);
    assert!(b.ide.irq_level(0));
    assert_eq!(b.inb(0x1F7), 0x50);
    // The guest sees its write (PIO read back) ...
    b.outb(0x1F2, 1);
    b.outb(0x1F3, 16);
    b.outb(0x1F6, 0xE0);
    b.outb(0x1F7, 0x20);
    let mut sector = Vec::new();
    for _ in 0..256 {
        sector.extend((b.io_read(0x1F0, 2) as u16).to_le_bytes());
    }
    assert_eq!(sector, new[..512]);
    // ... and the image file is untouched.
    assert_eq!(std::fs::read(&path).unwrap(), data);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn cdrom_from_iso_file_and_s5_power_off() {
    let mut iso = vec![0u8; 20 * 2048];
    iso[16 * 2048..16 * 2048 + 6].copy_from_slice(b"\x01CD001");
    let path = temp_file("cd.iso", &iso);
    let mut drives = IdeDrives::new();
    drives
        .attach_cdrom(1, 0, Some(Box::new(RawFileDisk::open(&path).unwrap())))
        .unwrap();
    let mut b = Board::new(drives);
    let routes = b.pci.firmware_setup(0xC000, 0x600);
    assert_eq!(routes, [10, 10, 11, 11]);
    b.sync();
    assert_eq!(b.pm.base(), Some(0x600));
    // SeaBIOS-style PIO READ(10) of the volume descriptor at LBA 16, limit 2048.
    b.outb(0x176, 0xA0);
    b.outb(0x171, 0);
    b.outb(0x174, 0x00);
    b.outb(0x175, 0x08);
    b.outb(0x177, 0xA0);
    for w in [0x0028u16, 0, 0x1000, 0, 0x0001, 0] {
        b.io_write(0x170, 2, w as u32);
    }
    assert!(b.ide.irq_level(1));
    assert_eq!(b.inb(0x177) & 0x08, 0x08);
    assert_eq!(b.inb(0x174) as u16 | (b.inb(0x175) as u16) << 8, 2048);
    let mut vd = Vec::new();
    for _ in 0..1024 {
        vd.extend((b.io_read(0x170, 2) as u16).to_le_bytes());
    }
    assert_eq!(&vd[..6], b"\x01CD001");
    assert_eq!(b.inb(0x177) & 0x09, 0);
    // A 2560-byte "ISO" is refused with a message naming the file.
    let bad = temp_file("bad.iso", &[0; 2560]);
    let err = IdeDrives::new()
        .attach_cdrom(1, 0, Some(Box::new(RawFileDisk::open(&bad).unwrap())))
        .unwrap_err();
    assert!(err.to_string().contains("bad.iso"), "{err}");
    // Power off: PM1a_CNT = SLP_EN | SLP_TYP(S5) | SCI_EN.
    assert!(!b.pm.take_poweroff());
    b.io_write(0x604, 2, 0x2001);
    assert!(b.pm.take_poweroff());
    // PM timer ticks on the virtual clock.
    let t0 = b.io_read(0x608, 4);
    b.now += 1_000_000; // 10 ms at 100 MIPS
    let t1 = b.io_read(0x608, 4);
    let d = t1.wrapping_sub(t0) & 0xFF_FFFF;
    assert!((35_795..=35_796).contains(&d), "{d} ticks in 10 ms");
    std::fs::remove_file(&path).unwrap();
    std::fs::remove_file(&bad).unwrap();
}

#[test]
fn random_traffic_on_the_whole_chipset() {
    for seed in 0..4u64 {
        let mut drives = IdeDrives::new();
        drives
            .attach_hard_disk(
                0,
                0,
                Box::new(CowDisk::new(Box::new(MemDisk::new(image(1 << 20))))),
            )
            .unwrap();
        drives
            .attach_cdrom(1, 0, Some(Box::new(MemDisk::new(image(64 * 2048)))))
            .unwrap();
        let mut b = Board::new(drives);
        b.pci.firmware_setup(0xC000, 0x600);
        b.sync();
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let hot: [u16; 8] = [0x1F0, 0x170, 0x3F6, 0x376, 0xC000, 0xC008, 0x600, 0xCFC];
        for _ in 0..30_000 {
            let size = [1u8, 2, 4][rng.gen_range(0..3)];
            let port = match rng.gen_range(0..10) {
                0 => {
                    // Move a decoder now and then.
                    let d = [IDE_DEVFN, PM_DEVFN, 0, 8][rng.gen_range(0..4)];
                    let a = 0x8000_0000u32 | (d as u32) << 8 | (rng.gen_range(0..64u32) * 4);
                    b.io_write(0xCF8, 4, a);
                    0xCFC + rng.gen_range(0..4)
                }
                1 => rng.gen(),
                _ => hot[rng.gen_range(0..hot.len())] + rng.gen_range(0..8),
            };
            if rng.gen_bool(0.5) {
                let v = if rng.gen_bool(0.1) {
                    0xFFFF_FFFF
                } else {
                    rng.gen()
                };
                b.io_write(port, size, v);
            } else {
                b.io_read(port, size);
            }
        }
        // Save → restore → save is identical for all three devices.
        let s = (
            serde_json::to_string(&b.pci).unwrap(),
            serde_json::to_string(&b.pm).unwrap(),
            serde_json::to_string(&b.ide).unwrap(),
        );
        let pci: PciBus = serde_json::from_str(&s.0).unwrap();
        let pm: AcpiPm = serde_json::from_str(&s.1).unwrap();
        let ide: IdeController = serde_json::from_str(&s.2).unwrap();
        assert_eq!(serde_json::to_string(&pci).unwrap(), s.0);
        assert_eq!(serde_json::to_string(&pm).unwrap(), s.1);
        assert_eq!(serde_json::to_string(&ide).unwrap(), s.2);
        assert!(ide.check_drives(&b.drives).is_ok());
        // The hard disk overlay holds whatever the guest wrote; its base never changes.
        let d = b.drives.disk(0, 0).unwrap();
        assert_eq!(d.len(), 1 << 20);
    }
}
