//! The snapshot loader treats its input as hostile: any bytes give `Ok` or a clear
//! error, never a panic, and a state that restores can be run.
//!
//! The first byte picks how the rest is used, so the fuzzer reaches every layer:
//! - 0: the bytes are a snapshot file as they are (header, length and checksum checks);
//! - 1: the bytes are the body of a container (section records up to the end marker and
//!   beyond), given a valid header and checksum;
//! - 2, 3, 4: the bytes are XOR-ed onto the `config`, `cpu` or `ram` payload of a valid
//!   snapshot (all-zero input = the valid snapshot), resealed, so the section decoders and
//!   the restored CPU are exercised with near-valid data.
//!
//! A snapshot that restores is run for a few hundred instructions.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};
use std::sync::OnceLock;
use x86emu::cpu::Cpu;
use x86emu::devices::bus::NullBus;
use x86emu::mmu::PhysMem;
use x86emu::snapshot::{self, SnapshotReader, SnapshotWriter};

const RAM: usize = 64 << 10;

/// A valid snapshot of a CPU that has run a little code in flat 32-bit mode.
fn base() -> &'static [u8] {
    static BASE: OnceLock<Vec<u8>> = OnceLock::new();
    BASE.get_or_init(|| {
        let mut mem = PhysMem::new_flat(RAM);
        // mov eax,0x12345678; add eax,eax; rep stosb (ecx=64, edi=0x8000); sub eax,1; hlt
        let code = [
            0xB8, 0x78, 0x56, 0x34, 0x12, 0x01, 0xC0, 0xB9, 0x40, 0, 0, 0, 0xBF, 0, 0x80, 0, 0,
            0xF3, 0xAA, 0x83, 0xE8, 0x01, 0xF4,
        ];
        mem.write_bytes(0x1000, &code);
        let mut cpu = Cpu::new();
        cpu.state.enter_flat32();
        cpu.state.eip = 0x1000;
        cpu.state.gpr[4] = 0xF000;
        let _ = cpu.run(&mut mem, &mut NullBus, 20);
        snapshot::save_cpu_ram(&cpu, &mem)
    })
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

fn xor_section(which: &str, data: &[u8]) -> Vec<u8> {
    let r = SnapshotReader::parse(base()).expect("the base snapshot is valid");
    let mut w = SnapshotWriter::new();
    for s in r.sections() {
        let mut payload = s.data.to_vec();
        if s.name == which {
            for (i, &d) in data.iter().enumerate() {
                match payload.get_mut(i) {
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
    let file = match mode % 5 {
        0 => rest.to_vec(),
        1 => seal(rest),
        2 => xor_section("config", rest),
        3 => xor_section("cpu", rest),
        _ => xor_section("ram", rest),
    };
    let mut cpu = Cpu::new();
    let mut mem = PhysMem::new_flat(RAM);
    match snapshot::restore_cpu_ram(&file, &mut cpu, &mut mem) {
        Ok(()) => {
            let _ = cpu.run(&mut mem, &mut NullBus, 300);
            // A restored state saves and restores again to the same hash.
            let again = snapshot::save_cpu_ram(&cpu, &mem);
            let (mut cpu2, mut mem2) = (Cpu::new(), PhysMem::new_flat(RAM));
            snapshot::restore_cpu_ram(&again, &mut cpu2, &mut mem2).expect("re-restore");
            assert_eq!(
                snapshot::state_hash(&cpu.state, mem.ram(), &[]),
                snapshot::state_hash(&cpu2.state, mem2.ram(), &[])
            );
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
