//! Snapshots of the whole PC: configuration, CPU, RAM, every device, the board's own
//! wiring state and the disk overlays, in the container of `crate::snapshot` (sections
//! listed in `docs/snapshot-format.md`, "Sections of a PC snapshot").
//!
//! Every section has its own version and upgrade chain ([`SECTIONS`] lists them): a
//! device whose state struct changes bumps its section's version and adds an upgrade
//! (old struct kept beside it) to its entry in `board_devices!` below.
//!
//! Restore decodes and checks everything before it changes anything (configuration,
//! every device, the disk overlays, CPU and RAM), so a bad snapshot leaves the machine as
//! it was; then it replaces the state and rebuilds what is derived: the memory map (PAM
//! shadowing, A20) and the CPU's caches.
//!
//! Disk identity: each attached image is identified by its size and the SHA-256 of its
//! whole content (of the base image, for a disk behind a copy-on-write overlay), taken
//! when the machine is built. The image's guest writes live in the overlay, which the
//! snapshot holds in full.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::board::{PcBoard, ISA_IRQS};
use super::pc::PcMachine;
use crate::cpu::CpuModel;
use crate::devices::bus::StopRequest;
use crate::devices::cmos::Cmos;
use crate::devices::fw_cfg::FwCfg;
use crate::devices::i8042::I8042;
use crate::devices::ide::{IdeController, IdeDrives};
use crate::devices::ioapic::IoApic;
use crate::devices::lapic::LocalApic;
use crate::devices::pci::piix3::AcpiPm;
use crate::devices::pci::PciBus;
use crate::devices::pic::Pic8259Pair;
use crate::devices::pit::Pit8254;
use crate::devices::sysctl::SystemControlA;
use crate::devices::uart::{self, Uart16550};
use crate::devices::vga::Vga;
use crate::disk::{CowOverlay, Disk, MediaKind, COW_BLOCK};
use crate::snapshot::{
    self, decode, encode, load_section, MachineConfigSection, SnapshotError, SnapshotReader,
    SnapshotWriter, UpgradeFn,
};

/// The machine model named in the configuration.
pub const MODEL: &str = "pc-i440fx-piix3";
/// Bytes hashed at each end of a disk image for a version-1 ("sampled") identity.
const SAMPLE: u64 = 1 << 20;

/// A section of a PC snapshot: its name, current version and upgrade chain
/// (`upgrades[v - 1]` turns version `v` into `v + 1`; current = `upgrades.len() + 1`).
#[derive(Clone, Copy, Debug)]
pub struct SectionSpec {
    pub name: &'static str,
    pub upgrades: &'static [UpgradeFn],
}

impl SectionSpec {
    /// The version this build writes.
    pub const fn version(&self) -> u32 {
        self.upgrades.len() as u32 + 1
    }

    fn load<T: serde::de::DeserializeOwned>(
        &self,
        r: &SnapshotReader<'_>,
    ) -> Result<T, SnapshotError> {
        load_section(r, self.name, self.upgrades)
    }
}

/// The `config` section of a PC snapshot. Version 1 identified disks by a sampled hash;
/// version 2 by the SHA-256 of the whole image; version 3 added the CPU model.
pub const CONFIG: SectionSpec = SectionSpec {
    name: snapshot::CONFIG_SECTION,
    upgrades: &[config_v1_to_v2, config_v2_to_v3],
};
/// Optional: [`PcMachine::host_inputs`] (`u64`), the machine's position in a recording
/// of its host input (`crate::replay`); absent means 0. Not guest state: not hashed.
pub const INPUT: SectionSpec = SectionSpec {
    name: "input",
    upgrades: &[],
};
/// The board's own state beside its devices.
pub const BOARD: SectionSpec = SectionSpec {
    name: "board",
    upgrades: &[],
};
/// The copy-on-write overlay of each IDE position (channel * 2 + unit).
pub const DISKS: [SectionSpec; 4] = [
    SectionSpec {
        name: "disk0",
        upgrades: &[],
    },
    SectionSpec {
        name: "disk1",
        upgrades: &[],
    },
    SectionSpec {
        name: "disk2",
        upgrades: &[],
    },
    SectionSpec {
        name: "disk3",
        upgrades: &[],
    },
];

/// Restoring a device's state from a snapshot: by default the saved state replaces the
/// device. A device with host-side parts (the UART's transmit queue) keeps them.
trait RestoreState: Sized {
    /// Check invariants of a decoded state that its encoding does not guarantee (buffer
    /// sizes the device indexes without checks): a hostile snapshot is refused here.
    fn validate(&self) -> Result<(), String> {
        Ok(())
    }
    fn restore_state(&mut self, saved: Self) {
        *self = saved;
    }
}
impl RestoreState for Pic8259Pair {}
impl RestoreState for Pit8254 {}
impl RestoreState for Cmos {}
impl RestoreState for I8042 {}
impl RestoreState for LocalApic {}
impl RestoreState for IoApic {}
impl RestoreState for PciBus {}
impl RestoreState for AcpiPm {}
impl RestoreState for IdeController {}
impl RestoreState for FwCfg {}
impl RestoreState for Vga {
    fn validate(&self) -> Result<(), String> {
        Vga::validate(self)
    }
}
impl RestoreState for SystemControlA {}
impl RestoreState for Uart16550 {
    fn restore_state(&mut self, saved: Self) {
        self.restore_guest_state(saved);
    }
}
impl RestoreState for [Uart16550; 3] {
    fn restore_state(&mut self, saved: Self) {
        for (u, s) in self.iter_mut().zip(saved) {
            u.restore_guest_state(s);
        }
    }
}

/// The device sections: `field: Type = "section", [upgrades]`, in the order they are
/// written. To change a device's state struct: keep the old struct (e.g. `FooV1`), write
/// `fn upgrade_v1_to_v2(&[u8]) -> Result<Vec<u8>, String>` and append it to the list;
/// the section version follows (`docs/snapshot-format.md`, "Compatibility policy").
macro_rules! board_devices {
    ($($field:ident : $ty:ty = $name:literal, [$($up:expr),*];)*) => {
        /// Every device section, in the order a snapshot holds them.
        pub const DEVICES: &[SectionSpec] = &[
            $(SectionSpec { name: $name, upgrades: &[$($up),*] },)*
        ];

        /// Every device's state, decoded from a snapshot and checked.
        struct DecodedDevices {
            $($field: $ty,)*
        }

        fn encode_devices(b: &PcBoard) -> Vec<(&'static str, Vec<u8>)> {
            vec![$(($name, encode(&b.$field)),)*]
        }

        impl DecodedDevices {
            fn load(r: &SnapshotReader<'_>) -> Result<DecodedDevices, SnapshotError> {
                let mut specs = DEVICES.iter();
                Ok(DecodedDevices {
                    $($field: {
                        let v: $ty = specs.next().map_or_else(
                            || Err(SnapshotError::Missing { name: $name.into() }),
                            |s| s.load(r),
                        )?;
                        v.validate().map_err(|e| SnapshotError::section($name, e))?;
                        v
                    },)*
                })
            }

            fn encodings(&self) -> Vec<(&'static str, Vec<u8>)> {
                vec![$(($name, encode(&self.$field)),)*]
            }

            fn install(self, b: &mut PcBoard) {
                $(b.$field.restore_state(self.$field);)*
            }
        }
    };
}

board_devices! {
    pic: Pic8259Pair = "pic", [];
    pit: Pit8254 = "pit", [];
    cmos: Cmos = "cmos", [];
    kbc: I8042 = "kbc", [];
    com1: Uart16550 = "com1", [uart::upgrade_v1_to_v2];
    com2_4: [Uart16550; 3] = "com2_4", [uart::upgrade_array_v1_to_v2];
    lapic: LocalApic = "lapic", [];
    ioapic: IoApic = "ioapic", [];
    pci: PciBus = "pci", [];
    pm: AcpiPm = "pm", [];
    ide: IdeController = "ide", [];
    fw_cfg: FwCfg = "fw_cfg", [];
    vga: Vga = "vga", [crate::devices::vga::upgrade_v1_to_v2];
    port92: SystemControlA = "port92", [];
}

/// Every section a PC snapshot holds, with the version this build writes: `config`,
/// `cpu`, `ram`, the devices, `board`, `disk0`..`disk3` (`creator` and `input` are
/// optional).
pub fn section_versions() -> Vec<(&'static str, u32)> {
    let mut v = vec![
        (CONFIG.name, CONFIG.version()),
        (snapshot::CPU_SECTION, snapshot::CPU_VERSION),
        (snapshot::ram::SECTION, snapshot::ram::VERSION),
        (snapshot::CREATOR_SECTION, snapshot::CREATOR_VERSION),
    ];
    v.extend(DEVICES.iter().map(|s| (s.name, s.version())));
    v.push((BOARD.name, BOARD.version()));
    v.extend(DISKS.iter().map(|s| (s.name, s.version())));
    v.push((INPUT.name, INPUT.version()));
    v
}

/// What identifies the content of a disk image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ContentHash {
    /// SHA-256 of the whole image (what this build records).
    Sha256([u8; 32]),
    /// SHA-256 over the size (u64 LE), the first and the last MiB: what `config` version 1
    /// recorded. Checked as such when such a snapshot is restored.
    SampledSha256([u8; 32]),
}

/// What identifies a disk attached to an IDE position.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskIdentity {
    /// A CD-ROM drive (else a hard disk).
    pub cdrom: bool,
    /// Image size in bytes (0: a CD-ROM drive without a disc).
    pub size: u64,
    /// The base image's content (all zero bytes for an empty CD-ROM drive).
    pub hash: ContentHash,
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
    /// The processor model (encoded as its `--cpu` name).
    pub cpu_model: CpuModel,
}

/// `config` section version 2 (kept for the upgrade).
#[derive(Serialize, Deserialize)]
struct SnapshotConfigV2 {
    model: String,
    ram_size: u64,
    clock_ips: u64,
    rtc_base: i64,
    rom_sha256: Option<[u8; 32]>,
    disks: [Option<DiskIdentity>; 4],
}

/// `config` section version 1 (kept for the upgrade).
#[derive(Deserialize)]
struct SnapshotConfigV1 {
    model: String,
    ram_size: u64,
    clock_ips: u64,
    rtc_base: i64,
    rom_sha256: Option<[u8; 32]>,
    disks: [Option<DiskIdentityV1>; 4],
}

#[derive(Deserialize)]
struct DiskIdentityV1 {
    cdrom: bool,
    size: u64,
    sample_sha256: [u8; 32],
    overlay: bool,
}

/// `config` version 1 to 2: disk identities by sampled hash become
/// [`ContentHash::SampledSha256`] (checked as sampled hashes on restore).
fn config_v1_to_v2(old: &[u8]) -> Result<Vec<u8>, String> {
    let env: MachineConfigSection = postcard::from_bytes(old).map_err(|e| e.to_string())?;
    let v1: SnapshotConfigV1 = postcard::from_bytes(&env.blob).map_err(|e| e.to_string())?;
    let v2 = SnapshotConfigV2 {
        model: v1.model,
        ram_size: v1.ram_size,
        clock_ips: v1.clock_ips,
        rtc_base: v1.rtc_base,
        rom_sha256: v1.rom_sha256,
        disks: v1.disks.map(|d| {
            d.map(|d| DiskIdentity {
                cdrom: d.cdrom,
                size: d.size,
                hash: ContentHash::SampledSha256(d.sample_sha256),
                overlay: d.overlay,
            })
        }),
    };
    Ok(encode(&MachineConfigSection {
        ram_size: env.ram_size,
        blob: encode(&v2),
    }))
}

/// The error for a configuration blob naming a CPU model this build does not know (the
/// decoder's own error does not say which field failed), if that is what is wrong.
fn unknown_cpu_model(blob: &[u8]) -> Option<SnapshotError> {
    let (_, rest) = postcard::take_from_bytes::<SnapshotConfigV2>(blob).ok()?;
    let (name, _) = postcard::take_from_bytes::<String>(rest).ok()?;
    CpuModel::from_name(&name).is_none().then(|| {
        SnapshotError::section(
            CONFIG.name,
            format!(
                "CPU model `{name}` is unknown to this build (it has {})",
                CpuModel::names()
            ),
        )
    })
}

/// `config` version 2 to 3: every snapshot before CPU models was taken with the one fixed
/// model that is now called `legacy`.
fn config_v2_to_v3(old: &[u8]) -> Result<Vec<u8>, String> {
    let env: MachineConfigSection = postcard::from_bytes(old).map_err(|e| e.to_string())?;
    let v2: SnapshotConfigV2 = postcard::from_bytes(&env.blob).map_err(|e| e.to_string())?;
    let v3 = SnapshotConfig {
        model: v2.model,
        ram_size: v2.ram_size,
        clock_ips: v2.clock_ips,
        rtc_base: v2.rtc_base,
        rom_sha256: v2.rom_sha256,
        disks: v2.disks,
        cpu_model: CpuModel::Legacy,
    };
    Ok(encode(&MachineConfigSection {
        ram_size: env.ram_size,
        blob: encode(&v3),
    }))
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

fn sampled_hash(d: &mut dyn Disk) -> Result<[u8; 32], String> {
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

/// The base image of the disk at IDE position `i`: behind the overlay, if there is one.
fn base_disk(drives: &mut IdeDrives, i: usize) -> Option<&mut dyn Disk> {
    let d = drives.disk_mut(i / 2, i % 2)?;
    if d.as_cow().is_some() {
        return d.as_cow_mut().map(|c| c.base_mut());
    }
    Some(d)
}

/// The identities of the disks in `drives` (reads every image once, completely).
pub(crate) fn disk_identities(drives: &mut IdeDrives) -> Result<[Option<DiskIdentity>; 4], String> {
    let mut ids: [Option<DiskIdentity>; 4] = Default::default();
    for (i, id) in ids.iter_mut().enumerate() {
        let Some(kind) = drives.kind(i / 2, i % 2) else {
            continue;
        };
        let cdrom = kind == MediaKind::Cdrom;
        let overlay = drives
            .disk(i / 2, i % 2)
            .is_some_and(|d| d.as_cow().is_some());
        *id = Some(match base_disk(drives, i) {
            None => DiskIdentity {
                cdrom,
                size: 0,
                hash: ContentHash::Sha256([0; 32]),
                overlay: false,
            },
            Some(d) => DiskIdentity {
                cdrom,
                size: d.len(),
                hash: ContentHash::Sha256(
                    crate::disk::content_sha256(d).map_err(|e| e.to_string())?,
                ),
                overlay,
            },
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
            "a {} image of {} bytes ({}{})",
            if d.cdrom { "CD-ROM" } else { "hard disk" },
            d.size,
            match &d.hash {
                ContentHash::Sha256(h) => format!("SHA-256 {}…", short_hex(h)),
                ContentHash::SampledSha256(h) => format!("sampled SHA-256 {}…", short_hex(h)),
            },
            if d.overlay { "" } else { ", no overlay" }
        ),
    }
}

impl SnapshotConfig {
    /// Error unless `self` (from a snapshot) matches `machine`, saying what differs.
    /// Disk identities recorded as sampled hashes (version-1 snapshots) are compared by
    /// `sampled`, which gives the sampled hash of the machine's disk at an IDE position.
    fn check_with(
        &self,
        machine: &SnapshotConfig,
        mut sampled: impl FnMut(usize) -> Result<[u8; 32], String>,
    ) -> Result<(), SnapshotError> {
        let err = |m: String| Err(SnapshotError::ConfigMismatch(m));
        if self.model != machine.model {
            return err(format!(
                "the snapshot is of a `{}` machine, this is a `{}`",
                self.model, machine.model
            ));
        }
        MachineConfigSection {
            ram_size: self.ram_size,
            blob: Vec::new(),
        }
        .check(&MachineConfigSection {
            ram_size: machine.ram_size,
            blob: Vec::new(),
        })?;
        if self.cpu_model != machine.cpu_model {
            return err(format!(
                "the snapshot was taken with CPU model `{}`, this machine's CPU is `{}`",
                self.cpu_model, machine.cpu_model
            ));
        }
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
            let mut mine = b.clone();
            if let (
                Some(DiskIdentity {
                    hash: ContentHash::SampledSha256(_),
                    ..
                }),
                Some(m),
            ) = (a, &mut mine)
            {
                if m.size > 0 {
                    m.hash = ContentHash::SampledSha256(sampled(i).map_err(|e| {
                        SnapshotError::ConfigMismatch(format!("IDE {}:{}: {e}", i / 2, i % 2))
                    })?);
                }
            }
            if *a != mine {
                return err(format!(
                    "IDE {}:{}: the snapshot had {}, this machine has {}: attach the same images",
                    i / 2,
                    i % 2,
                    describe_disk(a),
                    describe_disk(&mine)
                ));
            }
        }
        Ok(())
    }

    /// Error unless `self` (from a snapshot) matches `machine`, saying what differs.
    /// (A version-1 snapshot's sampled disk hashes cannot be compared here: use
    /// [`PcMachine::restore_snapshot`], which reads the disks.)
    pub fn check(&self, machine: &SnapshotConfig) -> Result<(), SnapshotError> {
        self.check_with(machine, |_| {
            Err("the snapshot records a sampled disk hash; compare with the disk attached".into())
        })
    }

    /// The configuration stored in snapshot `bytes` (checksum verified, nothing else
    /// decoded): what a machine must look like to restore it.
    pub fn from_snapshot(bytes: &[u8]) -> Result<SnapshotConfig, SnapshotError> {
        let r = SnapshotReader::parse(bytes)?;
        Self::from_reader(&r)
    }

    fn from_reader(r: &SnapshotReader<'_>) -> Result<SnapshotConfig, SnapshotError> {
        let c: MachineConfigSection = CONFIG.load(r)?;
        let cfg: SnapshotConfig =
            decode(CONFIG.name, &c.blob).map_err(|e| unknown_cpu_model(&c.blob).unwrap_or(e))?;
        if cfg.ram_size != c.ram_size {
            return Err(SnapshotError::section(
                CONFIG.name,
                "the RAM size is stored twice with different values",
            ));
        }
        snapshot::ram::checked_ram_size(cfg.ram_size).map_err(|_| {
            SnapshotError::section(
                CONFIG.name,
                format!(
                    "RAM size {} is not a multiple of 4 KiB up to 4 GiB",
                    cfg.ram_size
                ),
            )
        })?;
        Ok(cfg)
    }
}

/// Decompress a disk overlay section for a disk of `len` bytes: at most what a full
/// overlay of that disk takes, and memory grows only as data actually decompresses.
fn decompress_overlay(name: &str, data: &[u8], len: u64) -> Result<Vec<u8>, SnapshotError> {
    use std::io::Read;
    let limit = len.div_ceil(COW_BLOCK).saturating_mul(COW_BLOCK + 24) + 64;
    let bad = |e: String| SnapshotError::section(name, format!("cannot decompress: {e}"));
    let dec = zstd::stream::read::Decoder::with_buffer(data).map_err(|e| bad(e.to_string()))?;
    let mut out = Vec::new();
    dec.take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| bad(e.to_string()))?;
    if out.len() as u64 > limit {
        return Err(bad(format!(
            "more than the {limit} bytes an overlay of a {len}-byte disk can hold"
        )));
    }
    Ok(out)
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
            cpu_model: self.cpu.model(),
        }
    }

    fn board_state(&self) -> BoardState {
        let b = &self.board;
        BoardState {
            now: b.now,
            irq_levels: b.irq_levels,
            reset_requested: b.reset_requested,
            debug_exit: match b.debug.stop {
                Some(StopRequest::DebugExit(v)) => Some(v),
                _ => None,
            },
            last_post: b.debug.last_post,
        }
    }

    /// `(section name, postcard encoding)` of every device and the board's own state.
    fn device_encodings(&self) -> Vec<(&'static str, Vec<u8>)> {
        let mut v = encode_devices(&self.board);
        v.push((BOARD.name, encode(&self.board_state())));
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
        let cfg = MachineConfigSection {
            ram_size: self.config.ram_size,
            blob: encode(&self.snapshot_config()),
        };
        w.add_section(CONFIG.name, CONFIG.version(), encode(&cfg));
        snapshot::add_state_sections(&mut w, &self.cpu, &self.mem);
        for ((name, bytes), spec) in encode_devices(&self.board).into_iter().zip(DEVICES) {
            w.add_section(name, spec.version(), bytes);
        }
        w.add_section(BOARD.name, BOARD.version(), encode(&self.board_state()));
        for (i, ov) in self.overlays() {
            let data = zstd::bulk::compress(&encode(ov), 3).expect("zstd compression in memory");
            w.add_section(DISKS[i].name, DISKS[i].version(), data);
        }
        w.add_optional_section(INPUT.name, INPUT.version(), encode(&self.host_inputs));
        w
    }

    /// The names of every section [`PcMachine::restore_snapshot`] understands.
    fn known_sections() -> Vec<&'static str> {
        let mut known: Vec<&str> = snapshot::CPU_RAM_SECTIONS.to_vec();
        known.extend(DEVICES.iter().map(|s| s.name));
        known.push(BOARD.name);
        known.extend(DISKS.iter().map(|s| s.name));
        known
    }

    /// Restore a snapshot made by [`PcMachine::save_snapshot`] (by this build or an older
    /// one) into this machine, which must have the same configuration (RAM, clock, RTC
    /// base, firmware, disk images by size and content hash).
    ///
    /// Everything is decoded and checked before anything changes: on an error the
    /// machine (CPU, RAM, devices, disk overlays) is exactly as it was.
    pub fn restore_snapshot(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        let r = SnapshotReader::parse(bytes)?;
        r.check_unknown(&Self::known_sections())?;

        // Configuration first: nothing else is looked at on a mismatch.
        let saved = SnapshotConfig::from_reader(&r)?;
        let mine = self.snapshot_config();
        let drives = &mut self.board.drives;
        saved.check_with(&mine, |i| match base_disk(drives, i) {
            Some(d) => sampled_hash(d),
            None => Err("no disk".into()),
        })?;

        // Decode every section before touching anything.
        let devices = DecodedDevices::load(&r)?;
        let board: BoardState = BOARD.load(&r)?;
        devices
            .ide
            .check_drives(&self.board.drives)
            .map_err(|e| SnapshotError::section("ide", e))?;
        let mut overlays: Vec<(usize, CowOverlay)> = Vec::new();
        for (i, spec) in DISKS.iter().enumerate() {
            let name = spec.name;
            let base_len = self
                .board
                .drives
                .disk(i / 2, i % 2)
                .and_then(|d| d.as_cow())
                .map(|c| c.base().len());
            match (r.section(name), base_len) {
                (None, None) => {}
                (None, Some(_)) => {
                    return Err(SnapshotError::Missing {
                        name: name.to_string(),
                    })
                }
                (Some(_), None) => {
                    return Err(SnapshotError::section(
                        name,
                        format!(
                        "the snapshot has a disk overlay for IDE {}:{}, whose disk here has none",
                        i / 2,
                        i % 2
                    ),
                    ))
                }
                (Some(_), Some(len)) => {
                    let (version, data) = r.require(name, spec.version())?;
                    let raw = decompress_overlay(name, data, len)?;
                    let raw = snapshot::upgrade(name, version, &raw, spec.upgrades)?;
                    let ov: CowOverlay = decode(name, &raw)?;
                    ov.validate(len)
                        .map_err(|e| SnapshotError::section(name, e.to_string()))?;
                    overlays.push((i, ov));
                }
            }
        }
        let cpu_ram = snapshot::decode_cpu_ram(&r, self.mem.ram().len())?;
        let host_inputs: u64 = match r.section(INPUT.name) {
            Some(_) => INPUT.load(&r)?,
            None => 0,
        };

        // Commit: nothing below can fail.
        let b = &mut self.board;
        for (i, ov) in overlays {
            if let Some(cow) = b.drives.disk_mut(i / 2, i % 2).and_then(|d| d.as_cow_mut()) {
                cow.replace_overlay(ov);
            }
        }
        devices.install(b);
        b.now = board.now;
        b.irq_levels = board.irq_levels;
        b.reset_requested = board.reset_requested;
        b.debug.stop = board.debug_exit.map(StopRequest::DebugExit);
        b.debug.last_post = board.last_post;
        cpu_ram.apply(&mut self.cpu, &mut self.mem);
        self.host_inputs = host_inputs;
        // Derived state: the memory map and the CPU's caches.
        let b = &mut self.board;
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
            parts.push((DISKS[i].name, encode(ov)));
        }
        let refs: Vec<(&str, &[u8])> = parts.iter().map(|(n, b)| (*n, b.as_slice())).collect();
        snapshot::state_hash(&self.cpu.state, self.mem.ram(), &refs)
    }

    /// Write every disk overlay into its base image and empty the overlays (`--persist`,
    /// at the end of a run). Snapshots taken before no longer match the changed images.
    /// Disks whose base is read-only are skipped; returns how many were written.
    pub fn commit_disks(&mut self) -> std::io::Result<usize> {
        let mut n = 0;
        for i in 0..4 {
            let Some(cow) = self
                .board
                .drives
                .disk_mut(i / 2, i % 2)
                .and_then(|d| d.as_cow_mut())
            else {
                continue;
            };
            if cow.base().is_read_only() || cow.overlay().blocks.is_empty() {
                continue;
            }
            cow.commit()?;
            n += 1;
        }
        Ok(n)
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
    /// Check and summarize snapshot `bytes` (every section is decoded and upgraded to
    /// this build's version, as a restore would).
    pub fn of(bytes: &[u8]) -> Result<SnapshotSummary, SnapshotError> {
        let r = SnapshotReader::parse(bytes)?;
        r.check_unknown(&PcMachine::known_sections())?;
        let config = SnapshotConfig::from_reader(&r)?;
        let cpu: crate::cpu::CpuState =
            load_section(&r, snapshot::CPU_SECTION, snapshot::CPU_UPGRADES)?;
        snapshot::validate_cpu(&cpu)?;
        let (_, ram_data) = r.require(snapshot::ram::SECTION, snapshot::ram::VERSION)?;
        let ram = snapshot::decode_ram(ram_data, config.ram_size)?;
        let devices = DecodedDevices::load(&r)?;
        let board: BoardState = BOARD.load(&r)?;
        let mut parts = devices.encodings();
        parts.push((BOARD.name, encode(&board)));
        for (i, spec) in DISKS.iter().enumerate() {
            if r.section(spec.name).is_some() {
                let (version, data) = r.require(spec.name, spec.version())?;
                let len = config.disks[i].as_ref().map_or(0, |d| d.size);
                let raw = decompress_overlay(spec.name, data, len)?;
                let raw = snapshot::upgrade(spec.name, version, &raw, spec.upgrades)?;
                let ov: CowOverlay = decode(spec.name, &raw)?;
                ov.validate(len)
                    .map_err(|e| SnapshotError::section(spec.name, e.to_string()))?;
                parts.push((spec.name, encode(&ov)));
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

/// The encodings of every section, pinned (like the `cpu` section's in
/// `snapshot::tests`, but generically over [`DEVICES`] and the other sections): the serde
/// data model of each section's state type, traced with `serde-reflection`, must equal
/// `tests/fixtures/snapshot-formats.txt`. Any change to a state struct that changes its
/// encoding (a field added, removed, renamed, reordered or re-typed, an enum variant
/// added or moved) fails here.
#[cfg(test)]
mod format_tests {
    use super::*;
    use crate::cpu::CpuState;
    use serde_reflection::VariantFormat;
    use serde_reflection::{ContainerFormat, Format, Named, Samples, Tracer, TracerConfig};
    use std::fmt::Write;

    /// Enum types inside section states: traced until every variant has its index.
    /// (A new enum shows up with a provisional index: add its name here.)
    const ENUMS: &[&str] = &[
        "AtapiSource",
        "BarKind",
        "ContentHash",
        "DeliveryMode",
        "DriveKind",
        "Init",
        "LazyOp",
        "RxItem",
        "Seg",
        "Xfer",
    ];

    fn fmt(f: &Format) -> String {
        match f {
            Format::Variable(v) => match v.borrow().as_ref() {
                Some(f) => fmt(f),
                None => "?".into(),
            },
            Format::TypeName(n) => n.clone(),
            Format::Option(f) => format!("Option<{}>", fmt(f)),
            Format::Seq(f) => format!("Seq<{}>", fmt(f)),
            Format::Map { key, value } => format!("Map<{}, {}>", fmt(key), fmt(value)),
            Format::Tuple(v) => format!("({})", v.iter().map(fmt).collect::<Vec<_>>().join(", ")),
            Format::TupleArray { content, size } => format!("[{}; {size}]", fmt(content)),
            other => format!("{other:?}"),
        }
    }

    fn fields(v: &[Named<Format>]) -> String {
        v.iter()
            .map(|n| format!("{}: {}", n.name, fmt(&n.value)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn variant(v: &VariantFormat) -> String {
        match v {
            VariantFormat::Variable(x) => match x.borrow().as_ref() {
                Some(v) => variant(v),
                None => "?".into(),
            },
            VariantFormat::Unit => String::new(),
            VariantFormat::NewType(f) => format!("({})", fmt(f)),
            VariantFormat::Tuple(v) => {
                format!("({})", v.iter().map(fmt).collect::<Vec<_>>().join(", "))
            }
            VariantFormat::Struct(v) => format!(" {{ {} }}", fields(v)),
        }
    }

    /// The formats of every PC snapshot section, as text.
    fn formats() -> String {
        let mut tracer = Tracer::new(TracerConfig::default());
        let mut samples = Samples::new();
        let m = PcMachine::new(
            crate::machine::PcConfig {
                ram_size: 2 << 20,
                ..Default::default()
            },
            crate::machine::BootSource::None,
            IdeDrives::new(),
        )
        .unwrap();
        let b = &m.board;
        let mut out = String::from(
            "# The encoding of every PC snapshot section (see docs/snapshot-format.md).\n\
             # Checked by machine::snapshot::format_tests; never edit by hand.\n\n",
        );
        let mut tops: Vec<(&str, u32, Format)> = Vec::new();
        // Trace each type (repeatedly, until every enum variant has its index), then a
        // sample value (types with a hand-written Deserialize are only seen this way).
        let none = Samples::new();
        macro_rules! trace {
            ($name:expr, $version:expr, $v:expr, $ty:ty) => {{
                for _ in 0..16 {
                    let _ = tracer.trace_type_once::<$ty>(&none);
                    for e in ENUMS {
                        tracer.check_incomplete_enum(e);
                    }
                }
                let (f, _) = tracer.trace_value(&mut samples, &$v).unwrap();
                tops.push(($name, $version, f));
            }};
        }
        // Enums met only inside an Option or a sequence are explored once, by name:
        // trace them directly so every variant gets its index.
        tracer.trace_simple_type::<ContentHash>().unwrap();
        tracer
            .trace_simple_type::<crate::devices::lapic::DeliveryMode>()
            .unwrap();
        tracer.trace_simple_type::<uart::RxItem>().unwrap();
        let config = MachineConfigSection {
            ram_size: 0,
            blob: Vec::new(),
        };
        let board = m.board_state();
        trace!(CONFIG.name, CONFIG.version(), config, MachineConfigSection);
        trace!(
            "config.blob",
            CONFIG.version(),
            m.snapshot_config(),
            SnapshotConfig
        );
        trace!(
            snapshot::CPU_SECTION,
            snapshot::CPU_VERSION,
            m.cpu.state,
            CpuState
        );
        trace!(DEVICES[0].name, DEVICES[0].version(), b.pic, Pic8259Pair);
        trace!(DEVICES[1].name, DEVICES[1].version(), b.pit, Pit8254);
        trace!(DEVICES[2].name, DEVICES[2].version(), b.cmos, Cmos);
        trace!(DEVICES[3].name, DEVICES[3].version(), b.kbc, I8042);
        trace!(DEVICES[4].name, DEVICES[4].version(), b.com1, Uart16550);
        trace!(
            DEVICES[5].name,
            DEVICES[5].version(),
            b.com2_4,
            [Uart16550; 3]
        );
        trace!(DEVICES[6].name, DEVICES[6].version(), b.lapic, LocalApic);
        trace!(DEVICES[7].name, DEVICES[7].version(), b.ioapic, IoApic);
        trace!(DEVICES[8].name, DEVICES[8].version(), b.pci, PciBus);
        trace!(DEVICES[9].name, DEVICES[9].version(), b.pm, AcpiPm);
        trace!(
            DEVICES[10].name,
            DEVICES[10].version(),
            b.ide,
            IdeController
        );
        trace!(DEVICES[11].name, DEVICES[11].version(), b.fw_cfg, FwCfg);
        trace!(DEVICES[12].name, DEVICES[12].version(), b.vga, Vga);
        trace!(
            DEVICES[13].name,
            DEVICES[13].version(),
            b.port92,
            SystemControlA
        );
        trace!(BOARD.name, BOARD.version(), board, BoardState);
        trace!(
            DISKS[0].name,
            DISKS[0].version(),
            CowOverlay::new(4096),
            CowOverlay
        );
        assert_eq!(
            tops.len(),
            DEVICES.len() + 5,
            "every device section is traced: add the new one above"
        );
        let _ = writeln!(out, "## Sections (name, version this build writes, type)");
        for (name, version, f) in &tops {
            let _ = writeln!(out, "{name} v{version}: {}", fmt(f));
        }
        let _ = writeln!(out, "\n## Types");
        for (name, c) in tracer.registry_unchecked() {
            let body = match &c {
                ContainerFormat::UnitStruct => "unit".to_string(),
                ContainerFormat::NewTypeStruct(f) => format!("({})", fmt(f)),
                ContainerFormat::TupleStruct(v) => {
                    format!("({})", v.iter().map(fmt).collect::<Vec<_>>().join(", "))
                }
                ContainerFormat::Struct(v) => format!("{{ {} }}", fields(v)),
                ContainerFormat::Enum(vs) => vs
                    .iter()
                    .map(|(i, n)| format!("{i}={}{}", n.name, variant(&n.value)))
                    .collect::<Vec<_>>()
                    .join(" | "),
            };
            let _ = writeln!(out, "{name}: {body}");
        }
        out
    }

    #[test]
    fn section_encodings_are_pinned() {
        let actual = formats();
        let expected = include_str!("../../tests/fixtures/snapshot-formats.txt");
        if actual != expected {
            let path = std::env::temp_dir().join("snapshot-formats.actual.txt");
            let _ = std::fs::write(&path, &actual);
            let diff: Vec<String> = expected
                .lines()
                .filter(|l| !actual.lines().any(|a| a == *l))
                .map(|l| format!("- {l}"))
                .chain(
                    actual
                        .lines()
                        .filter(|l| !expected.lines().any(|e| e == *l))
                        .map(|l| format!("+ {l}")),
                )
                .collect();
            panic!(
                "The encoding of a snapshot section changed:\n{}\n\n\
                 Old snapshots (and tests/fixtures/golden-pc.snap) no longer decode as they \
                 are. Bump that section's version: keep the old struct as `...V<n>`, add an \
                 upgrade `v<n> -> v<n+1>` to its entry (`board_devices!`, `CONFIG`, `BOARD`, \
                 `DISKS` in src/machine/snapshot.rs, or `CPU_UPGRADES`), see \
                 docs/snapshot-format.md, \"Compatibility policy\". Then copy {} to \
                 tests/fixtures/snapshot-formats.txt.",
                diff.join("\n"),
                path.display()
            );
        }
        assert!(
            !actual.contains("?") && !actual.contains("42949"),
            "a type was not traced completely (unknown format or provisional enum index): \
             add the enum to ENUMS, or trace it with `trace_simple_type`\n{actual}"
        );
    }
}
