//! The whole-PC snapshot loader (`PcMachine::restore_snapshot`, `SnapshotConfig::
//! from_snapshot`, `SnapshotSummary::of`) treats its input as hostile: any bytes give `Ok`
//! or an error, never a panic; a failed restore leaves the machine as it was; a snapshot
//! that restores runs.
//!
//! The base is the golden snapshot (`tests/fixtures/golden-pc.snap`: every section type,
//! a disk overlay). The first byte picks how the rest is used:
//! - 0: the bytes are a snapshot file as they are;
//! - 1: the bytes are a container body, given a valid header and checksum;
//! - 2..: the bytes are XOR-ed onto the payload of section `(mode - 2) % sections` of
//!   the base (all-zero input = the base), resealed, so section decoders, upgrades and
//!   validation see near-valid data.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use std::cell::RefCell;
use x86emu::devices::ide::IdeDrives;
use x86emu::disk::{CowDisk, MemDisk};
use x86emu::machine::{BootSource, PcConfig, PcMachine, SnapshotConfig, SnapshotSummary};
use x86emu::snapshot::{SnapshotReader, SnapshotWriter};

const BASE: &[u8] = include_bytes!("../../tests/fixtures/golden-pc.snap");
const ROM: &[u8] = include_bytes!("../../tests/fixtures/golden-rom.bin");

/// The machine the golden snapshot belongs to (tests/golden_snapshot.rs).
fn machine() -> PcMachine {
    let mut x = 0x2545_F491u32;
    let disk: Vec<u8> = (0..64 << 10)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect();
    let mut drives = IdeDrives::new();
    drives
        .attach_hard_disk(0, 0, Box::new(CowDisk::new(Box::new(MemDisk::new(disk)))))
        .unwrap();
    let config = PcConfig {
        ram_size: 2 << 20,
        cpu_model: x86emu::cpu::CpuModel::Legacy,
        ..PcConfig::default()
    };
    PcMachine::new(config, BootSource::Bios(ROM.to_vec()), drives).unwrap()
}

thread_local! {
    /// One machine, restored to the base before every input.
    static MACHINE: RefCell<(PcMachine, [u8; 32])> = RefCell::new({
        let mut m = machine();
        m.restore_snapshot(BASE).expect("the golden snapshot restores");
        let h = m.state_hash();
        (m, h)
    });
}

fn seal(body: &[u8]) -> Vec<u8> {
    let mut v = b"X86EMU-SNAP\0".to_vec();
    v.extend_from_slice(&1u16.to_le_bytes());
    v.extend_from_slice(&0u16.to_le_bytes());
    v.extend_from_slice(&((24 + body.len() + 32) as u64).to_le_bytes());
    v.extend_from_slice(body);
    let sum = Sha256::digest(&v);
    v.extend_from_slice(&sum);
    v
}

fn xor_section(index: usize, data: &[u8]) -> Vec<u8> {
    let r = SnapshotReader::parse(BASE).expect("the base snapshot is valid");
    let which = index % r.sections().len();
    let mut w = SnapshotWriter::new();
    for (i, s) in r.sections().iter().enumerate() {
        let mut payload = s.data.to_vec();
        if i == which {
            for (j, &d) in data.iter().enumerate() {
                match payload.get_mut(j) {
                    Some(b) => *b ^= d,
                    None => payload.push(d),
                }
            }
        }
        if s.required {
            w.add_section(s.name, s.version, payload);
        } else {
            w.add_optional_section(s.name, s.version, payload);
        }
    }
    w.finish()
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let file = match mode {
        0 => rest.to_vec(),
        1 => seal(rest),
        m => xor_section(m as usize - 2, rest),
    };
    let _ = SnapshotConfig::from_snapshot(&file);
    let _ = SnapshotSummary::of(&file);
    MACHINE.with(|cell| {
        let (m, base_hash) = &mut *cell.borrow_mut();
        match m.restore_snapshot(&file) {
            Ok(()) => {
                let _ = m.run(20_000);
                m.board.com1.take_output();
                m.restore_snapshot(BASE).expect("the base restores");
            }
            Err(e) => {
                assert!(!e.to_string().is_empty());
                assert!(m.state_hash() == *base_hash, "a failed restore changed the machine: {e}");
            }
        }
    });
});
