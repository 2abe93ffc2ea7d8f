//! Snapshots of the whole PC: configuration, CPU, RAM, every device, the board's own
//! wiring state and the disk overlays, in the container of `crate::snapshot` (sections
//! listed in `docs/snapshot-format.md`, "Sections of a PC snapshot").
//!
//! Restore decodes and checks everything before it changes anything (except for damage
//! inside compressed RAM data that the checksum did not catch, see
//! [`crate::snapshot::restore_cpu_ram_sections`]), then rebuilds what is derived: the
//! memory map (PAM shadowing, A20) and the CPU's caches.
//!
//! Disk identity: each attached image is identified by its size and a SHA-256 over the
//! size and its first and last MiB ("sampled hash"). Reading 2 MiB keeps building a
//! machine and resuming fast for images of any size; it catches a wrong or replaced
//! image, not an edit in the middle of the same image. The image's guest writes live in
//! the copy-on-write overlay, which the snapshot holds in full.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::board::ISA_IRQS;
use super::pc::PcMachine;
use crate::devices::bus::StopRequest;
use crate::devices::ide::IdeDrives;
use crate::disk::{CowOverlay, Disk, MediaKind, COW_BLOCK};
use crate::snapshot::{
    self, decode, encode, load_section, MachineConfigSection, SnapshotError, SnapshotReader,
    SnapshotWriter,
};

/// The machine model named in the configuration.
pub const MODEL: &str = "pc-i440fx-piix3";
/// Bytes hashed at each end of a disk image for its identity.
const SAMPLE: u64 = 1 << 20;
/// Version of every device section, of `board` and of `diskN`.
const DEVICE_VERSION: u32 = 1;
const BOARD_SECTION: &str = "board";
const DISK_SECTIONS: [&str; 4] = ["disk0", "disk1", "disk2", "disk3"];
/// Device sections, in the order they are written.
const DEVICES: [&str; 14] = [
    "pic", "pit", "cmos", "kbc", "com1", "com2_4", "lapic", "ioapic", "pci", "pm", "ide", "fw_cfg",
    "vga", "port92",
];

/// What identifies a disk attached to an IDE position.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskIdentity {
    /// A CD-ROM drive (else a hard disk).
    pub cdrom: bool,
    /// Image size in bytes (0: a CD-ROM drive without a disc).
    pub size: u64,
    /// SHA-256 over the size (u64 LE), the first and the last MiB of the base image.
    pub sample_sha256: [u8; 32],
    /// Guest writes go to a copy-on-write overlay, saved in section `disk<N>`.
    pub overlay: bool,
}

/// The machine configuration a PC snapshot carries (the `config` section's blob,
/// postcard-encoded) and checks on restore.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotConfig {
    pub model: String,
    pub ram_size: u64,
    /// Virtual instructions per second.
    pub clock_ips: u64,
    /// RTC wall-clock base (seconds since the Unix epoch).
    pub rtc_base: i64,
    /// SHA-256 of the firmware mapped in ROM, `None` without firmware (direct boot).
    pub rom_sha256: Option<[u8; 32]>,
    /// IDE positions (channel * 2 + unit).
    pub disks: [Option<DiskIdentity>; 4],
}

/// The board's own state beside its devices.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct BoardState {
    now: u64,
    irq_levels: [bool; ISA_IRQS],
    reset_requested: bool,
    /// A debug-exit request not yet taken by the run loop.
    debug_exit: Option<u32>,
    last_post: Option<u8>,
}

fn sample_hash(d: &mut dyn Disk) -> Result<[u8; 32], String> {
    let len = d.len();
    let n = len.min(SAMPLE);
    let mut buf = vec![0; n as usize];
    let mut h = Sha256::new();
    h.update(len.to_le_bytes());
    d.read_at(0, &mut buf).map_err(|e| e.to_string())?;
    h.update(&buf);
    d.read_at(len - n, &mut buf).map_err(|e| e.to_string())?;
    h.update(&buf);
    Ok(h.finalize().into())
}

/// The identities of the disks in `drives` (reads up to 2 MiB of each image).
pub(crate) fn disk_identities(drives: &mut IdeDrives) -> Result<[Option<DiskIdentity>; 4], String> {
    let mut ids: [Option<DiskIdentity>; 4] = Default::default();
    for (i, id) in ids.iter_mut().enumerate() {
        let (ch, u) = (i / 2, i % 2);
        let Some(kind) = drives.kind(ch, u) else {
            continue;
        };
        let cdrom = kind == MediaKind::Cdrom;
        *id = Some(match drives.disk_mut(ch, u) {
            None => DiskIdentity {
                cdrom,
                size: 0,
                sample_sha256: [0; 32],
                overlay: false,
            },
            Some(d) => {
                let size = d.len();
                let (sample_sha256, overlay) = match d.as_cow_mut() {
                    Some(c) => (sample_hash(c.base_mut())?, true),
                    None => (sample_hash(d)?, false),
                };
                DiskIdentity {
                    cdrom,
                    size,
                    sample_sha256,
                    overlay,
                }
            }
        });
    }
    Ok(ids)
}

fn short_hex(h: &[u8; 32]) -> String {
    snapshot::to_hex(&h[..8])
}

fn describe_disk(d: &Option<DiskIdentity>) -> String {
    match d {
        None => "nothing".into(),
        Some(d) if d.cdrom && d.size == 0 => "an empty CD-ROM drive".into(),
        Some(d) => format!(
            "a {} image of {} bytes (sampled SHA-256 {}…{})",
            if d.cdrom { "CD-ROM" } else { "hard disk" },
            d.size,
            short_hex(&d.sample_sha256),
            if d.overlay { "" } else { ", no overlay" }
        ),
    }
}

impl SnapshotConfig {
    /// Error unless `self` (from a snapshot) matches `machine`, saying what differs.
    pub fn check(&self, machine: &SnapshotConfig) -> Result<(), SnapshotError> {
        let err = |m: String| Err(SnapshotError::ConfigMismatch(m));
        if self.model != machine.model {
            return err(format!(
                "the snapshot is of a `{}` machine, this is a `{}`",
                self.model, machine.model
            ));
        }
        // RAM size: checked (with its message) by MachineConfigSection::check.
        if self.clock_ips != machine.clock_ips {
            return err(format!(
                "the snapshot's virtual clock runs at {} instructions/s, this machine's at {}",
                self.clock_ips, machine.clock_ips
            ));
        }
        if self.rtc_base != machine.rtc_base {
            return err(format!(
                "the snapshot's RTC base is {} (Unix time), this machine's is {}",
                self.rtc_base, machine.rtc_base
            ));
        }
        if self.rom_sha256 != machine.rom_sha256 {
            let rom = |r: &Option<[u8; 32]>| match r {
                None => "no firmware (direct kernel boot)".to_string(),
                Some(h) => format!("firmware with SHA-256 {}…", short_hex(h)),
            };
            return err(format!(
                "the snapshot was taken with {}, this machine has {}: use the same BIOS image",
                rom(&self.rom_sha256),
                rom(&machine.rom_sha256)
            ));
        }
        for (i, (a, b)) in self.disks.iter().zip(&machine.disks).enumerate() {
            if a != b {
                return err(format!(
                    "IDE {}:{}: the snapshot had {}, this machine has {}: attach the same images",
                    i / 2,
                    i % 2,
                    describe_disk(a),
                    describe_disk(b)
                ));
            }
        }
        Ok(())
    }

    /// The configuration stored in snapshot `bytes` (checksum verified, nothing else
    /// decoded): what a machine must look like to restore it.
    pub fn from_snapshot(bytes: &[u8]) -> Result<SnapshotConfig, SnapshotError> {
        let r = SnapshotReader::parse(bytes)?;
        Self::from_reader(&r)
    }

    fn from_reader(r: &SnapshotReader<'_>) -> Result<SnapshotConfig, SnapshotError> {
        let c: MachineConfigSection = load_section(r, snapshot::CONFIG_SECTION, &[])?;
        let cfg: SnapshotConfig = decode(snapshot::CONFIG_SECTION, &c.blob)?;
        if cfg.ram_size != c.ram_size {
            return Err(SnapshotError::section(
                snapshot::CONFIG_SECTION,
                "the RAM size is stored twice with different values",
            ));
        }
        Ok(cfg)
    }
}

/// Decompressed size bound of a disk overlay section for a disk of `len` bytes.
fn overlay_limit(len: u64) -> usize {
    let blocks = len.div_ceil(COW_BLOCK);
    (blocks * (COW_BLOCK + 24) + 64).min(usize::MAX as u64) as usize
}

impl PcMachine {
    /// The configuration a snapshot of this machine carries.
    pub fn snapshot_config(&self) -> SnapshotConfig {
        let rom = self.mem.rom_bytes();
        SnapshotConfig {
            model: MODEL.into(),
            ram_size: self.config.ram_size,
            clock_ips: self.config.clock.ips,
            rtc_base: self.config.rtc_base,
            rom_sha256: (!rom.is_empty()).then(|| Sha256::digest(rom).into()),
            disks: self.disk_ids.clone(),
        }
    }

    /// `(section name, postcard encoding)` of every device and the board's own state.
    fn device_encodings(&self) -> Vec<(&'static str, Vec<u8>)> {
        let b = &self.board;
        let board = BoardState {
            now: b.now,
            irq_levels: b.irq_levels,
            reset_requested: b.reset_requested,
            debug_exit: match b.debug.stop {
                Some(StopRequest::DebugExit(v)) => Some(v),
                _ => None,
            },
            last_post: b.debug.last_post,
        };
        let encs = [
            encode(&b.pic),
            encode(&b.pit),
            encode(&b.cmos),
            encode(&b.kbc),
            encode(&b.com1),
            encode(&b.com2_4),
            encode(&b.lapic),
            encode(&b.ioapic),
            encode(&b.pci),
            encode(&b.pm),
            encode(&b.ide),
            encode(&b.fw_cfg),
            encode(&b.vga),
            encode(&b.port92),
        ];
        let mut v: Vec<_> = DEVICES.iter().copied().zip(encs).collect();
        v.push((BOARD_SECTION, encode(&board)));
        v
    }

    /// The copy-on-write overlay of each IDE position whose disk has one.
    fn overlays(&self) -> Vec<(usize, &CowOverlay)> {
        (0..4)
            .filter_map(|i| {
                let d = self.board.drives.disk(i / 2, i % 2)?;
                Some((i, d.as_cow()?.overlay()))
            })
            .collect()
    }

    /// The whole machine as a snapshot file's bytes.
    pub fn save_snapshot(&self) -> Vec<u8> {
        self.snapshot_writer().finish()
    }

    /// The sections of [`PcMachine::save_snapshot`] in a writer, for callers that append
    /// optional sections of their own before finishing (batch checkpoints add
    /// `checkpoint` and `console`, see `crate::checkpoint`).
    pub fn snapshot_writer(&self) -> SnapshotWriter {
        let mut w = SnapshotWriter::new();
        let blob = encode(&self.snapshot_config());
        snapshot::add_cpu_ram_sections(&mut w, &self.cpu, &self.mem, &blob);
        for (name, bytes) in self.device_encodings() {
            w.add_section(name, DEVICE_VERSION, bytes);
        }
        for (i, ov) in self.overlays() {
            let data = zstd::bulk::compress(&encode(ov), 3).expect("zstd compression in memory");
            w.add_section(DISK_SECTIONS[i], DEVICE_VERSION, data);
        }
        w
    }

    /// Restore a snapshot made by [`PcMachine::save_snapshot`] into this machine, which
    /// must have the same configuration (RAM, clock, RTC base, firmware, disk images).
    /// On an error the machine is unchanged (see the module notes for the exception).
    pub fn restore_snapshot(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        let r = SnapshotReader::parse(bytes)?;
        let mut known: Vec<&str> = snapshot::CPU_RAM_SECTIONS.to_vec();
        known.extend(DEVICES);
        known.push(BOARD_SECTION);
        known.extend(DISK_SECTIONS);
        r.check_unknown(&known)?;

        // Configuration first: nothing else is looked at on a mismatch.
        let saved = SnapshotConfig::from_reader(&r)?;
        let mine = self.snapshot_config();
        MachineConfigSection {
            ram_size: saved.ram_size,
            blob: Vec::new(),
        }
        .check(&MachineConfigSection {
            ram_size: mine.ram_size,
            blob: Vec::new(),
        })?;
        saved.check(&mine)?;

        // Decode every device before touching anything.
        macro_rules! dev {
            ($name:literal) => {
                load_section(&r, $name, &[])?
            };
        }
        let pic = dev!("pic");
        let pit = dev!("pit");
        let cmos = dev!("cmos");
        let kbc = dev!("kbc");
        let com1 = dev!("com1");
        let com2_4 = dev!("com2_4");
        let lapic = dev!("lapic");
        let ioapic = dev!("ioapic");
        let pci = dev!("pci");
        let pm = dev!("pm");
        let ide: crate::devices::ide::IdeController = dev!("ide");
        let fw_cfg = dev!("fw_cfg");
        let vga = dev!("vga");
        let port92 = dev!("port92");
        let board: BoardState = load_section(&r, BOARD_SECTION, &[])?;
        ide.check_drives(&self.board.drives)
            .map_err(|e| SnapshotError::section("ide", e))?;

        let mut overlays: Vec<(usize, CowOverlay)> = Vec::new();
        for (i, name) in DISK_SECTIONS.iter().enumerate() {
            let has_overlay = mine.disks[i].as_ref().is_some_and(|d| d.overlay);
            match (r.section(name), has_overlay) {
                (None, false) => {}
                (None, true) => {
                    return Err(SnapshotError::Missing {
                        name: name.to_string(),
                    })
                }
                (Some(_), false) => {
                    return Err(SnapshotError::section(
                        name,
                        format!(
                        "the snapshot has a disk overlay for IDE {}:{}, whose disk here has none",
                        i / 2,
                        i % 2
                    ),
                    ))
                }
                (Some(_), true) => {
                    let (_, data) = r.require(name, DEVICE_VERSION)?;
                    let len = mine.disks[i].as_ref().map_or(0, |d| d.size);
                    let raw = zstd::bulk::decompress(data, overlay_limit(len)).map_err(|e| {
                        SnapshotError::section(name, format!("cannot decompress: {e}"))
                    })?;
                    let ov: CowOverlay = decode(name, &raw)?;
                    ov.validate(len)
                        .map_err(|e| SnapshotError::section(name, e.to_string()))?;
                    overlays.push((i, ov));
                }
            }
        }

        // CPU and RAM (checks the configuration blob once more, byte for byte).
        snapshot::restore_cpu_ram_sections(&r, &mut self.cpu, &mut self.mem, &encode(&mine))?;

        // Commit.
        let b = &mut self.board;
        b.pic = pic;
        b.pit = pit;
        b.cmos = cmos;
        b.kbc = kbc;
        b.com1 = com1;
        b.com2_4 = com2_4;
        b.lapic = lapic;
        b.ioapic = ioapic;
        b.pci = pci;
        b.pm = pm;
        b.ide = ide;
        b.fw_cfg = fw_cfg;
        b.vga = vga;
        b.port92 = port92;
        b.now = board.now;
        b.irq_levels = board.irq_levels;
        b.reset_requested = board.reset_requested;
        b.debug.stop = board.debug_exit.map(StopRequest::DebugExit);
        b.debug.last_post = board.last_post;
        for (i, ov) in overlays {
            let cow = b
                .drives
                .disk_mut(i / 2, i % 2)
                .and_then(|d| d.as_cow_mut())
                .expect("checked: the position has an overlay disk");
            cow.set_overlay(ov)
                .map_err(|e| SnapshotError::section(DISK_SECTIONS[i], e.to_string()))?;
        }
        // Derived state: the memory map and the CPU's caches.
        b.pci.apply_pam(&mut self.mem);
        self.mem.set_a20(b.port92.a20() || b.kbc.a20());
        self.cpu.flush_caches();
        Ok(())
    }

    /// SHA-256 over all guest-visible state: CPU, RAM, every device, the board, and
    /// the disk overlays (`snapshot::state_hash`; the sections' encodings are hashed).
    pub fn state_hash(&self) -> [u8; 32] {
        let mut parts = self.device_encodings();
        for (i, ov) in self.overlays() {
            parts.push((DISK_SECTIONS[i], encode(ov)));
        }
        let refs: Vec<(&str, &[u8])> = parts.iter().map(|(n, b)| (*n, b.as_slice())).collect();
        snapshot::state_hash(&self.cpu.state, self.mem.ram(), &refs)
    }
}

/// What `x86emu snapshot-info` shows: the stored configuration, the instruction count
/// and the state hash, computed from the sections alone (no machine is built). The
/// hash equals [`PcMachine::state_hash`] of the machine the snapshot restores to.
#[derive(Clone, Debug)]
pub struct SnapshotSummary {
    pub config: SnapshotConfig,
    pub icount: u64,
    pub state_hash: [u8; 32],
}

impl SnapshotSummary {
    /// Check and summarize snapshot `bytes` (every section it needs is decoded).
    pub fn of(bytes: &[u8]) -> Result<SnapshotSummary, SnapshotError> {
        let r = SnapshotReader::parse(bytes)?;
        let config = SnapshotConfig::from_reader(&r)?;
        let cpu: crate::cpu::CpuState =
            load_section(&r, snapshot::CPU_SECTION, snapshot::CPU_UPGRADES)?;
        snapshot::validate_cpu(&cpu)?;
        let (_, ram_data) = r.require(snapshot::ram::SECTION, snapshot::ram::VERSION)?;
        let ram = snapshot::decode_ram(ram_data, config.ram_size)?;
        let mut parts: Vec<(&str, Vec<u8>)> = Vec::new();
        for name in DEVICES.iter().chain([&BOARD_SECTION]) {
            let (_, data) = r.require(name, DEVICE_VERSION)?;
            parts.push((name, data.to_vec()));
        }
        for (i, name) in DISK_SECTIONS.iter().enumerate() {
            if r.section(name).is_some() {
                let (_, data) = r.require(name, DEVICE_VERSION)?;
                let len = config.disks[i].as_ref().map_or(0, |d| d.size);
                let raw = zstd::bulk::decompress(data, overlay_limit(len))
                    .map_err(|e| SnapshotError::section(name, format!("cannot decompress: {e}")))?;
                parts.push((name, raw));
            }
        }
        let refs: Vec<(&str, &[u8])> = parts.iter().map(|(n, b)| (*n, b.as_slice())).collect();
        Ok(SnapshotSummary {
            icount: cpu.icount,
            state_hash: snapshot::state_hash(&cpu, &ram, &refs),
            config,
        })
    }
}

/// A readable description of an IDE position's disk identity (for `snapshot-info`).
pub fn describe_disk_identity(d: &Option<DiskIdentity>) -> String {
    describe_disk(d)
}
