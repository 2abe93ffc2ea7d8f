//! The state hash: SHA-256 over all guest-visible state in a canonical encoding (defined
//! in `docs/snapshot-format.md`), independent of how a snapshot stores or compresses it.

use crate::cpu::flags::LazyFlags;
use crate::cpu::CpuState;
use sha2::{Digest, Sha256};

/// Domain tag at the start of the hashed stream; bumped if the definition ever changes.
const TAG: &[u8] = b"x86emu state hash v1\0";

fn record(h: &mut Sha256, name: &str, bytes: &[u8]) {
    debug_assert!(name.len() <= 255);
    h.update([name.len() as u8]);
    h.update(name.as_bytes());
    h.update((bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

/// The canonical encoding of a CPU state: postcard of a normalized copy (lazy flags folded
/// into EFLAGS), as stored in the `cpu` section.
pub fn cpu_bytes(cpu: &CpuState) -> Vec<u8> {
    let mut c = cpu.clone();
    c.normalize();
    // `normalize` marks the record empty but leaves its operands behind; they are not
    // architectural, so two equal states must not differ in them.
    c.lazy = LazyFlags::default();
    super::encode(&c)
}

/// Hash of the CPU state, the RAM contents and each device's state (`(name, canonical
/// bytes)`, hashed in name order whatever order they are given in).
pub fn state_hash(cpu: &CpuState, ram: &[u8], devices: &[(&str, &[u8])]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(TAG);
    record(&mut h, "cpu", &cpu_bytes(cpu));
    record(&mut h, "ram", ram);
    let mut devs: Vec<&(&str, &[u8])> = devices.iter().collect();
    devs.sort_by(|a, b| a.0.cmp(b.0));
    for (name, bytes) in devs {
        record(&mut h, name, bytes);
    }
    h.finalize().into()
}

/// Lowercase hex of a hash (or any bytes).
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::flags::LazyOp;

    #[test]
    fn covers_every_part_and_only_architectural_state() {
        let cpu = CpuState::default();
        let ram = vec![0u8; 8192];
        let base = state_hash(&cpu, &ram, &[("pic", &[1, 2]), ("pit", &[3])]);
        assert_eq!(to_hex(&base).len(), 64);
        // Device order does not matter; device contents and names do.
        assert_eq!(
            base,
            state_hash(&cpu, &ram, &[("pit", &[3]), ("pic", &[1, 2])])
        );
        assert_ne!(
            base,
            state_hash(&cpu, &ram, &[("pic", &[1, 2]), ("pit", &[4])])
        );
        assert_ne!(
            base,
            state_hash(&cpu, &ram, &[("pic", &[1]), ("pit", &[2, 3])])
        );
        assert_ne!(base, state_hash(&cpu, &ram, &[("pic", &[1, 2])]));
        // RAM contents and size.
        let mut r2 = ram.clone();
        r2[4097] = 1;
        assert_ne!(
            base,
            state_hash(&cpu, &r2, &[("pic", &[1, 2]), ("pit", &[3])])
        );
        assert_ne!(
            base,
            state_hash(&cpu, &ram[..4096], &[("pic", &[1, 2]), ("pit", &[3])])
        );
        // CPU: the instruction count is state.
        let mut c2 = cpu.clone();
        c2.icount += 1;
        assert_ne!(
            base,
            state_hash(&c2, &ram, &[("pic", &[1, 2]), ("pit", &[3])])
        );
        // Lazy flags pending vs materialised: the same architectural state, one hash.
        let mut lazy = cpu.clone();
        lazy.lazy.set(LazyOp::Sub, 4, 5, 5, 0); // 5 - 5: ZF, PF set
        let mut folded = lazy.clone();
        folded.normalize();
        assert_ne!(lazy, folded);
        assert_eq!(state_hash(&lazy, &ram, &[]), state_hash(&folded, &ram, &[]));
        assert_ne!(state_hash(&lazy, &ram, &[]), state_hash(&cpu, &ram, &[]));
        // Stale operands left in an empty record are not state.
        let mut stale = folded.clone();
        stale.lazy.res = 0x1234;
        stale.lazy.size = 2;
        assert_eq!(
            state_hash(&stale, &ram, &[]),
            state_hash(&folded, &ram, &[])
        );
    }
}
