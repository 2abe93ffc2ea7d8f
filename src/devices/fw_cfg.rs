//! QEMU's firmware configuration interface (fw_cfg), the traditional I/O-port variant,
//! as documented in QEMU's `docs/specs/fw_cfg.rst`: a 16-bit selector at port 0x510 and a
//! byte-wide data port at 0x511. SeaBIOS built for QEMU reads its configuration here
//! (memory map, CPU count, boot order, ACPI tables through the table loader).
//!
//! Only the traditional interface is offered (the ID item says so: bit 0 set, DMA bit
//! clear), so firmware reads items byte by byte. Items are immutable after the machine is
//! built; the guest-visible state is the selector and the read offset.

use serde::{Deserialize, Serialize};

use super::{PortDevice, Time};

pub const SELECTOR_PORT: u16 = 0x510;
pub const DATA_PORT: u16 = 0x511;

/// Well-known selector keys.
pub mod key {
    pub const SIGNATURE: u16 = 0x0000;
    pub const ID: u16 = 0x0001;
    pub const RAM_SIZE: u16 = 0x0003;
    pub const NB_CPUS: u16 = 0x0005;
    pub const BOOT_MENU: u16 = 0x000E;
    pub const MAX_CPUS: u16 = 0x000F;
    pub const FILE_DIR: u16 = 0x0019;
    /// First selector used for named files.
    pub const FILE_FIRST: u16 = 0x0020;
}

/// E820 entry types.
pub const E820_RAM: u32 = 1;
pub const E820_RESERVED: u32 = 2;

/// One item: a selector key and its bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub key: u16,
    /// File name for items in the file directory.
    pub name: Option<String>,
    pub data: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FwCfg {
    items: Vec<Item>,
    selector: u16,
    offset: u32,
}

impl FwCfg {
    /// An fw_cfg with the standard items for `ram` bytes of memory and one CPU.
    pub fn new(ram: u64, cpus: u16) -> FwCfg {
        let mut f = FwCfg {
            items: Vec::new(),
            selector: 0,
            offset: 0,
        };
        f.set(key::SIGNATURE, b"QEMU".to_vec());
        f.set(key::ID, 1u32.to_le_bytes().to_vec());
        f.set(key::RAM_SIZE, ram.to_le_bytes().to_vec());
        f.set(key::NB_CPUS, cpus.to_le_bytes().to_vec());
        f.set(key::MAX_CPUS, cpus.to_le_bytes().to_vec());
        f.set(key::BOOT_MENU, 0u16.to_le_bytes().to_vec());
        f.rebuild_dir();
        f
    }

    fn set(&mut self, key: u16, data: Vec<u8>) {
        match self.items.iter_mut().find(|i| i.key == key) {
            Some(i) => i.data = data,
            None => self.items.push(Item {
                key,
                name: None,
                data,
            }),
        }
    }

    /// Add (or replace) a named file.
    pub fn add_file(&mut self, name: &str, data: Vec<u8>) {
        if let Some(i) = self
            .items
            .iter_mut()
            .find(|i| i.name.as_deref() == Some(name))
        {
            i.data = data;
        } else {
            let key =
                key::FILE_FIRST + self.items.iter().filter(|i| i.name.is_some()).count() as u16;
            self.items.push(Item {
                key,
                name: Some(name.to_string()),
                data,
            });
        }
        self.rebuild_dir();
    }

    /// The `etc/e820` file: entries of (address, length, type), little-endian.
    pub fn add_e820(&mut self, entries: &[(u64, u64, u32)]) {
        let mut d = Vec::with_capacity(entries.len() * 20);
        for &(a, l, t) in entries {
            d.extend_from_slice(&a.to_le_bytes());
            d.extend_from_slice(&l.to_le_bytes());
            d.extend_from_slice(&t.to_le_bytes());
        }
        self.add_file("etc/e820", d);
    }

    /// The file directory (big-endian): count, then (size, select, reserved, name[56]).
    fn rebuild_dir(&mut self) {
        let files: Vec<&Item> = self.items.iter().filter(|i| i.name.is_some()).collect();
        let mut d = Vec::with_capacity(4 + files.len() * 64);
        d.extend_from_slice(&(files.len() as u32).to_be_bytes());
        for f in files {
            d.extend_from_slice(&(f.data.len() as u32).to_be_bytes());
            d.extend_from_slice(&f.key.to_be_bytes());
            d.extend_from_slice(&0u16.to_be_bytes());
            let mut name = [0u8; 56];
            let n = f.name.as_deref().unwrap_or("").as_bytes();
            let len = n.len().min(55);
            name[..len].copy_from_slice(&n[..len]);
            d.extend_from_slice(&name);
        }
        self.set(key::FILE_DIR, d);
    }

    fn current(&self) -> Option<&Item> {
        // Bit 14 selects a write (not supported: items are read-only). Bit 15 marks an
        // architecture-specific item (0x8000 and up): a separate key space, none of
        // which this board provides, so those read as empty.
        self.items.iter().find(|i| i.key == self.selector & !0x4000)
    }

    fn read_byte(&mut self) -> u8 {
        let off = self.offset as usize;
        let b = self
            .current()
            .and_then(|i| i.data.get(off).copied())
            .unwrap_or(0);
        if self.current().is_some_and(|i| off < i.data.len()) {
            self.offset += 1;
        }
        b
    }
}

impl PortDevice for FwCfg {
    fn port_ranges(&self) -> Vec<(u16, u16)> {
        vec![(SELECTOR_PORT, DATA_PORT)]
    }

    fn reset(&mut self) {
        self.selector = 0;
        self.offset = 0;
    }

    fn io_read(&mut self, port: u16, size: u8, _t: Time) -> u32 {
        match port {
            DATA_PORT => {
                let mut v = 0u32;
                for i in 0..size.min(4) as u32 {
                    v |= (self.read_byte() as u32) << (8 * i);
                }
                v
            }
            SELECTOR_PORT => self.selector as u32,
            _ => super::bus::all_ones(size),
        }
    }

    fn io_write(&mut self, port: u16, size: u8, value: u32, _t: Time) {
        if port == SELECTOR_PORT && size >= 2 {
            self.selector = value as u16;
            self.offset = 0;
        }
        // Writes to the data port are ignored (read-only items), as QEMU does since 2.4.
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;

    fn t() -> Time {
        Time::new(0, Clock::default())
    }

    fn read_item(f: &mut FwCfg, key: u16, n: usize) -> Vec<u8> {
        f.io_write(SELECTOR_PORT, 2, key as u32, t());
        (0..n).map(|_| f.io_read(DATA_PORT, 1, t()) as u8).collect()
    }

    #[test]
    fn signature_id_and_ram() {
        let mut f = FwCfg::new(128 << 20, 1);
        assert_eq!(read_item(&mut f, key::SIGNATURE, 4), b"QEMU");
        assert_eq!(read_item(&mut f, key::ID, 4), [1, 0, 0, 0]);
        let r = read_item(&mut f, key::RAM_SIZE, 8);
        assert_eq!(u64::from_le_bytes(r.try_into().unwrap()), 128 << 20);
        // Reads past the end return 0 and do not advance.
        let sig = read_item(&mut f, key::SIGNATURE, 6);
        assert_eq!(&sig[4..], &[0, 0]);
        // Architecture-local keys do not alias the standard ones.
        assert_eq!(read_item(&mut f, 0x8000, 4), [0, 0, 0, 0]);
    }

    #[test]
    fn file_directory_lists_files() {
        let mut f = FwCfg::new(64 << 20, 1);
        f.add_e820(&[(0, 0x9FC00, E820_RAM), (0x10_0000, 63 << 20, E820_RAM)]);
        f.add_file("bootorder", b"/pci@i0cf8/ide@1,1/drive@0/disk@0\n".to_vec());
        let hdr = read_item(&mut f, key::FILE_DIR, 4 + 2 * 64);
        assert_eq!(u32::from_be_bytes(hdr[0..4].try_into().unwrap()), 2);
        let size = u32::from_be_bytes(hdr[4..8].try_into().unwrap());
        let sel = u16::from_be_bytes(hdr[8..10].try_into().unwrap());
        assert_eq!(size, 40);
        assert_eq!(&hdr[12..20], b"etc/e820");
        let e820 = read_item(&mut f, sel, 40);
        assert_eq!(
            u64::from_le_bytes(e820[28..36].try_into().unwrap()),
            63 << 20
        );
    }

    #[test]
    fn random_access_never_panics_and_state_round_trips() {
        use rand::{Rng, SeedableRng};
        let mut f = FwCfg::new(1 << 20, 1);
        f.add_file("x", vec![1, 2, 3]);
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..10_000 {
            let port = [SELECTOR_PORT, DATA_PORT, 0x512][rng.gen_range(0..3)];
            let size = [1u8, 2, 4][rng.gen_range(0..3)];
            if rng.gen_bool(0.5) {
                f.io_write(port, size, rng.gen(), t());
            } else {
                f.io_read(port, size, t());
            }
        }
        let a = serde_json::to_string(&f).unwrap();
        let g: FwCfg = serde_json::from_str(&a).unwrap();
        assert_eq!(a, serde_json::to_string(&g).unwrap());
        let mut r1 = f.clone();
        r1.reset();
        let mut r2 = r1.clone();
        r2.reset();
        assert_eq!(r1, r2);
    }
}
