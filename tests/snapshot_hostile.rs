//! The PC snapshot loader treats its input as hostile: thousands of seeded mutations of a
//! valid snapshot (the golden fixture: every section type, a disk overlay) — bit flips,
//! truncations, and edits behind a recomputed checksum (payload bytes, section lengths,
//! versions, flags, names, dropped/duplicated/added sections, hand-made payloads) — each
//! give `Ok` or an error, never a panic; a failed restore leaves the machine exactly as
//! it was (state hash, disk overlay, host-side output); a snapshot that restores runs.
//! The same inputs go through `SnapshotConfig::from_snapshot` and `SnapshotSummary::of`.
//!
//! (`fuzz/fuzz_targets/machine_snapshot.rs` does the same coverage-guided with
//! `cargo +nightly fuzz run machine_snapshot`.)

use rand::{rngs::StdRng, Rng, SeedableRng};
use sha2::{Digest, Sha256};
use std::path::Path;
use x86emu::devices::ide::IdeDrives;
use x86emu::disk::{CowDisk, MemDisk};
use x86emu::machine::{BootSource, PcConfig, PcMachine, SnapshotConfig, SnapshotSummary};
use x86emu::snapshot::{SnapshotReader, SnapshotWriter};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .unwrap()
}

/// The machine the golden snapshot belongs to (as in tests/golden_snapshot.rs).
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
        // The fixture predates CPU models: its configuration upgrades to `legacy`.
        cpu_model: x86emu::cpu::CpuModel::Legacy,
        ..PcConfig::default()
    };
    PcMachine::new(config, BootSource::Bios(fixture("golden-rom.bin")), drives).unwrap()
}

/// Fix the total length and the checksum of a modified container.
fn reseal(mut b: Vec<u8>) -> Vec<u8> {
    if b.len() < 24 + 32 {
        return b;
    }
    let n = b.len();
    b[16..24].copy_from_slice(&(n as u64).to_le_bytes());
    let sum = Sha256::digest(&b[..n - 32]);
    b[n - 32..].copy_from_slice(&sum);
    b
}

struct Section {
    name: String,
    required: bool,
    version: u32,
    data: Vec<u8>,
}

fn sections(bytes: &[u8]) -> Vec<Section> {
    SnapshotReader::parse(bytes)
        .unwrap()
        .sections()
        .iter()
        .map(|s| Section {
            name: s.name.to_string(),
            required: s.required,
            version: s.version,
            data: s.data.to_vec(),
        })
        .collect()
}

fn build(secs: &[Section]) -> Vec<u8> {
    let mut w = SnapshotWriter::new();
    for s in secs {
        if s.required {
            w.add_section(&s.name, s.version, s.data.clone());
        } else {
            w.add_optional_section(&s.name, s.version, s.data.clone());
        }
    }
    w.finish()
}

/// Byte offsets of each section record's fields in `bytes`: (name length at, payload at).
fn record_offsets(bytes: &[u8]) -> Vec<(usize, usize)> {
    SnapshotReader::parse(bytes)
        .unwrap()
        .sections()
        .iter()
        .map(|s| {
            let payload = s.offset as usize;
            (payload - 8 - 4 - 1 - s.name.len() - 1, payload)
        })
        .collect()
}

fn flip_bits(rng: &mut StdRng, data: &mut [u8], n: usize) {
    if data.is_empty() {
        return;
    }
    for _ in 0..n {
        let i = rng.gen_range(0..data.len());
        data[i] ^= 1 << rng.gen_range(0..8);
    }
}

/// One mutation of `base` chosen by `rng`.
fn mutate(rng: &mut StdRng, base: &[u8]) -> Vec<u8> {
    let mut secs = sections(base);
    let k = rng.gen_range(0..secs.len());
    match rng.gen_range(0..14) {
        // Raw damage: the checksum catches it.
        0 => {
            let mut v = base.to_vec();
            let n = rng.gen_range(1..4);
            flip_bits(rng, &mut v, n);
            v
        }
        1 => base[..rng.gen_range(0..base.len())].to_vec(),
        // Behind a valid checksum: payload bit flips.
        2 | 3 => {
            let n = rng.gen_range(1..6);
            flip_bits(rng, &mut secs[k].data, n);
            build(&secs)
        }
        // A payload byte set to an extreme value (lengths, counts, enum tags).
        4 => {
            if !secs[k].data.is_empty() {
                let i = rng.gen_range(0..secs[k].data.len());
                secs[k].data[i] = [0, 0x7F, 0x80, 0xFF][rng.gen_range(0..4)];
            }
            build(&secs)
        }
        // A payload cut short or extended.
        5 => {
            let d = &mut secs[k].data;
            let cut = rng.gen_range(0..=d.len());
            d.truncate(cut);
            build(&secs)
        }
        6 => {
            let n = rng.gen_range(1..64);
            secs[k].data.extend((0..n).map(|_| rng.gen::<u8>()));
            build(&secs)
        }
        // Section version, flags, name; sections dropped, duplicated in content, added.
        7 => {
            secs[k].version = [0u32, 2, 3, 7, u32::MAX][rng.gen_range(0..5)].max(1);
            build(&secs)
        }
        8 => {
            secs[k].required = !secs[k].required;
            build(&secs)
        }
        9 => {
            secs.remove(k);
            build(&secs)
        }
        10 => {
            let j = rng.gen_range(0..secs.len());
            secs[k].data = secs[j].data.clone();
            build(&secs)
        }
        11 => {
            secs.push(Section {
                name: format!("x{}", rng.gen::<u16>()),
                required: rng.gen(),
                version: 1,
                data: (0..rng.gen_range(0..32)).map(|_| rng.gen()).collect(),
            });
            build(&secs)
        }
        // Raw record fields behind a recomputed checksum: the length field (u64), the
        // version (u32) or the name length of a record, or the header's length.
        12 => {
            let mut v = base.to_vec();
            let recs = record_offsets(base);
            let (at, payload) = recs[rng.gen_range(0..recs.len())];
            match rng.gen_range(0..4) {
                0 => {
                    let len = u64::from_le_bytes(v[payload - 8..payload].try_into().unwrap());
                    let new = [
                        0,
                        len.wrapping_add(1),
                        len.wrapping_sub(1),
                        len * 2,
                        u64::MAX,
                        1 << 40,
                    ][rng.gen_range(0..6)];
                    v[payload - 8..payload].copy_from_slice(&new.to_le_bytes());
                }
                1 => v[payload - 12..payload - 8].copy_from_slice(&rng.gen::<u32>().to_le_bytes()),
                2 => v[at] = rng.gen(),
                _ => v[payload - 13] = rng.gen(),
            }
            reseal(v)
        }
        // The end marker's count, or bytes between it and the checksum.
        _ => {
            let mut v = base.to_vec();
            let end = v.len() - 32;
            if rng.gen() {
                v[end - 4] = rng.gen();
            } else {
                v.insert(end, rng.gen());
            }
            reseal(v)
        }
    }
}

#[test]
fn seeded_mutations_never_panic_and_failed_restores_lose_nothing() {
    let base = fixture("golden-pc.snap");
    let mut m = machine();
    m.restore_snapshot(&base).unwrap();
    // Host-side output waiting in the UART must survive every restore, failed or not.
    let want_hash = m.state_hash();
    let mut rng = StdRng::seed_from_u64(0x5A9_F00D);
    let (mut ok, mut err) = (0, 0);
    let mut messages = std::collections::BTreeSet::new();
    for i in 0..2000 {
        let bytes = mutate(&mut rng, &base);
        let _ = SnapshotConfig::from_snapshot(&bytes);
        let _ = SnapshotSummary::of(&bytes);
        match m.restore_snapshot(&bytes) {
            Ok(()) => {
                ok += 1;
                // A snapshot that restores can run; then go back to the base state.
                let _ = m.run(20_000);
                m.board.com1.take_output();
                m.restore_snapshot(&base).unwrap();
            }
            Err(e) => {
                err += 1;
                let text = e.to_string();
                assert!(!text.is_empty());
                messages.insert(text.chars().take(60).collect::<String>());
                assert!(
                    m.state_hash() == want_hash,
                    "mutation {i}: a failed restore ({text}) changed the machine"
                );
            }
        }
    }
    assert_eq!(m.state_hash(), want_hash);
    eprintln!(
        "{ok} restored, {err} refused; {} distinct messages",
        messages.len()
    );
    // Most mutations are refused, some (payload bits in RAM data, say) restore.
    assert!(err > 1300 && ok > 0, "{ok} ok, {err} errors");
    assert!(messages.len() > 50, "{messages:#?}");
}

/// A failed restore leaves the guest's undelivered serial output and the disk overlay as
/// they were, and the error names the section.
#[test]
fn failed_restore_keeps_host_output_and_disk() {
    let mut m = machine();
    m.restore_snapshot(&fixture("golden-pc.snap")).unwrap();
    // Written by this build: RAM frames carry zstd content checksums.
    let base = m.save_snapshot();
    // Run on: output waits in COM1, the overlay and RAM change.
    let _ = m.run(30_000_000);
    let hash = m.state_hash();
    let mut secs = sections(&base);
    let disk = secs.iter_mut().find(|s| s.name == "disk0").unwrap();
    disk.data.truncate(disk.data.len() / 2);
    let e = m.restore_snapshot(&build(&secs)).unwrap_err().to_string();
    assert!(e.starts_with("section `disk0`: cannot decompress"), "{e}");
    assert_eq!(m.state_hash(), hash);
    let mut secs = sections(&base);
    let ram = secs.iter_mut().find(|s| s.name == "ram").unwrap();
    let last = ram.data.len() - 1;
    ram.data[last - 100] ^= 0xFF; // inside the last chunk's compressed data
    match m.restore_snapshot(&build(&secs)) {
        Err(e) => assert!(e.to_string().starts_with("section `ram`"), "{e}"),
        Ok(()) => panic!("damaged RAM data restored"),
    }
    assert_eq!(m.state_hash(), hash);
    assert!(!m.board.com1.take_output().is_empty());
}

/// Size limits: a hostile header or payload does not make the loader allocate what it
/// declares.
#[test]
fn declared_sizes_do_not_allocate() {
    let base = fixture("golden-pc.snap");
    let mut secs = sections(&base);
    // The RAM stream claims 4 GiB of RAM (config and stream agree): refused against the
    // machine, and the file-only summary refuses a mismatch with the configuration.
    let ram = secs.iter_mut().find(|s| s.name == "ram").unwrap();
    ram.data[..8].copy_from_slice(&(1u64 << 32).to_le_bytes());
    let bytes = build(&secs);
    let e = SnapshotSummary::of(&bytes).unwrap_err().to_string();
    assert!(e.starts_with("section `ram`"), "{e}");
    let mut m = machine();
    assert!(m.restore_snapshot(&bytes).is_err());
    // A header declaring 64 GiB + 1.
    let mut v = base.clone();
    v[16..24].copy_from_slice(&((64u64 << 30) + 1).to_le_bytes());
    assert!(SnapshotReader::parse(&v)
        .unwrap_err()
        .to_string()
        .contains("exceeds the limit"));
}
