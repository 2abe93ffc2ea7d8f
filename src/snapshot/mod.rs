//! Snapshots: the machine as a portable file (format and compatibility policy in
//! `docs/snapshot-format.md`).
//!
//! - [`container`]: the versioned container with named sections and a SHA-256 trailer
//!   ([`SnapshotWriter`], [`SnapshotReader`]), atomic file writes.
//! - [`ram`]: RAM as a compressed 4 KiB page stream in which zero pages cost nothing.
//! - [`hash`]: the state hash over all guest-visible state.
//! - Section payloads are postcard encodings of the state structs ([`encode`],
//!   [`decode`]); an older section version goes through that section's upgrade chain
//!   ([`upgrade`]) before it is decoded.
//! - [`save_cpu_ram`] / [`restore_cpu_ram`]: a snapshot of a bare [`Cpu`] and [`PhysMem`]
//!   with the machine configuration checked on restore. The PC machine adds its device
//!   sections to the same container.
//!
//! ```
//! use x86emu::cpu::Cpu;
//! use x86emu::mmu::PhysMem;
//! use x86emu::snapshot;
//!
//! let mut mem = PhysMem::new_flat(1 << 20);
//! mem.write_bytes(0x7C00, &[0xF4]);
//! let mut cpu = Cpu::new();
//! cpu.state.eip = 0x7C00;
//! let bytes = snapshot::save_cpu_ram(&cpu, &mem);
//!
//! let (mut cpu2, mut mem2) = (Cpu::new(), PhysMem::new_flat(1 << 20));
//! snapshot::restore_cpu_ram(&bytes, &mut cpu2, &mut mem2).unwrap();
//! assert_eq!(cpu2.state, cpu.state);
//! assert_eq!(mem2.ram(), mem.ram());
//! ```

pub mod container;
mod error;
pub mod hash;
pub mod ram;
pub mod sparse;

pub use container::{read_file, write_atomic, SectionInfo, SnapshotReader, SnapshotWriter};
pub use error::SnapshotError;
pub use hash::{state_hash, to_hex};
pub use ram::{decode_pages, decode_ram, decode_ram_into, encode_ram, DecodedRam};

use crate::cpu::{Cpu, CpuState};
use crate::mmu::PhysMem;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// Postcard encoding of a state struct (the payload of its section).
///
/// # Panics
/// If `value`'s `Serialize` implementation fails, which the plain-data state structs
/// (fixed-shape structs, arrays, vectors, integers) never do.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_stdvec(value).expect("postcard encoding of plain state data")
}

/// Decode the payload of section `section`; the payload must be consumed completely.
pub fn decode<T: DeserializeOwned>(section: &str, bytes: &[u8]) -> Result<T, SnapshotError> {
    let (value, rest) = postcard::take_from_bytes(bytes)
        .map_err(|e| SnapshotError::section(section, format!("cannot decode: {e}")))?;
    if !rest.is_empty() {
        return Err(SnapshotError::section(
            section,
            format!("{} unexpected bytes after the data", rest.len()),
        ));
    }
    Ok(value)
}

/// Converts the payload of one section version into the next version's payload.
pub type UpgradeFn = fn(&[u8]) -> Result<Vec<u8>, String>;

/// Bring the payload of section `name` from `version` to the current version,
/// `steps.len() + 1`: `steps[v - 1]` turns version `v` into version `v + 1`. A version
/// newer than the current one is an error naming the section.
pub fn upgrade<'a>(
    name: &str,
    version: u32,
    data: &'a [u8],
    steps: &[UpgradeFn],
) -> Result<Cow<'a, [u8]>, SnapshotError> {
    let current = steps.len() as u32 + 1;
    if version == 0 || version > current {
        return Err(SnapshotError::NewerSection {
            name: name.to_string(),
            version,
            max: current,
        });
    }
    let mut data = Cow::Borrowed(data);
    for (v, step) in steps.iter().enumerate().skip(version as usize - 1) {
        data = Cow::Owned(step(&data).map_err(|e| {
            SnapshotError::section(
                name,
                format!("upgrading version {} to {}: {e}", v + 1, v + 2),
            )
        })?);
    }
    Ok(data)
}

/// Section `name` from `reader`, upgraded to its current version (`steps.len() + 1`) and
/// decoded. A missing section is an error.
pub fn load_section<T: DeserializeOwned>(
    reader: &SnapshotReader<'_>,
    name: &str,
    steps: &[UpgradeFn],
) -> Result<T, SnapshotError> {
    let (version, data) = reader.require(name, steps.len() as u32 + 1)?;
    decode(name, &upgrade(name, version, data, steps)?)
}

/// Section names and versions of a CPU+RAM snapshot.
pub const CONFIG_SECTION: &str = "config";
pub const CONFIG_VERSION: u32 = 1;
pub const CPU_SECTION: &str = "cpu";
/// Bump when `CpuState`'s encoding changes, and add the upgrade to [`CPU_UPGRADES`].
/// Version 2 added `sse` (XMM0-7, MXCSR); version 3 the MTRR, PAT, MCG_STATUS,
/// BIOS_SIGN_ID and MISC_ENABLE MSRs.
pub const CPU_VERSION: u32 = 3;
pub const CREATOR_SECTION: &str = "creator";
pub const CREATOR_VERSION: u32 = 1;

/// Upgrade chain of the `cpu` section (`CPU_UPGRADES[v - 1]` turns v into v + 1).
pub const CPU_UPGRADES: &[UpgradeFn] = &[cpu_v1_to_v2, cpu_v2_to_v3];

/// `Msrs` as versions 1 and 2 of the `cpu` section encoded it.
#[derive(Serialize, Deserialize)]
struct MsrsV1 {
    efer: u64,
    apic_base: u64,
    sysenter_cs: u32,
    sysenter_esp: u32,
    sysenter_eip: u32,
    _pad: u32,
    tsc_offset: u64,
}

/// `CpuState` as version 1 of the `cpu` section encoded it (before SSE).
#[derive(Deserialize)]
struct CpuStateV1 {
    gpr: [u32; 8],
    eip: u32,
    flags_raw: u32,
    lazy: crate::cpu::flags::LazyFlags,
    seg: [crate::cpu::SegmentCache; 6],
    ldtr: crate::cpu::SegmentCache,
    tr: crate::cpu::SegmentCache,
    gdtr: crate::cpu::state::TableReg,
    idtr: crate::cpu::state::TableReg,
    cr0: u32,
    cr2: u32,
    cr3: u32,
    cr4: u32,
    dr: [u32; 8],
    pdpte: [u64; 4],
    msr: MsrsV1,
    fpu: crate::cpu::fpu::FpuState,
    cpl: u8,
    halted: bool,
    shadow: bool,
    db_shadow: bool,
    icount: u64,
}

/// `cpu` v1 -> v2: the processor had no SSE state; it gets the reset state (XMM0-7
/// zero, MXCSR 1F80H), which is what a guest that never used SSE would see.
fn cpu_v1_to_v2(d: &[u8]) -> Result<Vec<u8>, String> {
    let o: CpuStateV1 = decode(CPU_SECTION, d).map_err(|e| e.to_string())?;
    Ok(encode(&CpuStateV2 {
        gpr: o.gpr,
        eip: o.eip,
        flags_raw: o.flags_raw,
        lazy: o.lazy,
        seg: o.seg,
        ldtr: o.ldtr,
        tr: o.tr,
        gdtr: o.gdtr,
        idtr: o.idtr,
        cr0: o.cr0,
        cr2: o.cr2,
        cr3: o.cr3,
        cr4: o.cr4,
        dr: o.dr,
        pdpte: o.pdpte,
        msr: o.msr,
        fpu: o.fpu,
        sse: crate::cpu::state::SseState::default(),
        cpl: o.cpl,
        halted: o.halted,
        shadow: o.shadow,
        db_shadow: o.db_shadow,
        icount: o.icount,
    }))
}

/// `CpuState` as version 2 of the `cpu` section encoded it (before the added MSRs).
#[derive(Serialize, Deserialize)]
struct CpuStateV2 {
    gpr: [u32; 8],
    eip: u32,
    flags_raw: u32,
    lazy: crate::cpu::flags::LazyFlags,
    seg: [crate::cpu::SegmentCache; 6],
    ldtr: crate::cpu::SegmentCache,
    tr: crate::cpu::SegmentCache,
    gdtr: crate::cpu::state::TableReg,
    idtr: crate::cpu::state::TableReg,
    cr0: u32,
    cr2: u32,
    cr3: u32,
    cr4: u32,
    dr: [u32; 8],
    pdpte: [u64; 4],
    msr: MsrsV1,
    fpu: crate::cpu::fpu::FpuState,
    sse: crate::cpu::state::SseState,
    cpl: u8,
    halted: bool,
    shadow: bool,
    db_shadow: bool,
    icount: u64,
}

/// `cpu` v2 -> v3: the processor (the `legacy` CPU model, see the PC's `config` v2 -> v3)
/// had none of the added MSRs; they get their power-on values (MTRRs zero and disabled,
/// PAT 0007040600070406H, MCG_STATUS and BIOS_SIGN_ID zero, MISC_ENABLE's reset value),
/// which the legacy model never lets the guest see.
fn cpu_v2_to_v3(d: &[u8]) -> Result<Vec<u8>, String> {
    use crate::cpu::state::{Msrs, MISC_ENABLE_RESET, PAT_RESET};
    let o: CpuStateV2 = decode(CPU_SECTION, d).map_err(|e| e.to_string())?;
    Ok(encode(&CpuState {
        gpr: o.gpr,
        eip: o.eip,
        flags_raw: o.flags_raw,
        lazy: o.lazy,
        seg: o.seg,
        ldtr: o.ldtr,
        tr: o.tr,
        gdtr: o.gdtr,
        idtr: o.idtr,
        cr0: o.cr0,
        cr2: o.cr2,
        cr3: o.cr3,
        cr4: o.cr4,
        dr: o.dr,
        pdpte: o.pdpte,
        msr: Msrs {
            efer: o.msr.efer,
            apic_base: o.msr.apic_base,
            sysenter_cs: o.msr.sysenter_cs,
            sysenter_esp: o.msr.sysenter_esp,
            sysenter_eip: o.msr.sysenter_eip,
            _pad: o.msr._pad,
            tsc_offset: o.msr.tsc_offset,
            pat: PAT_RESET,
            misc_enable: MISC_ENABLE_RESET,
            ..Msrs::default()
        },
        fpu: o.fpu,
        sse: o.sse,
        cpl: o.cpl,
        halted: o.halted,
        shadow: o.shadow,
        db_shadow: o.db_shadow,
        icount: o.icount,
    }))
}
const CONFIG_UPGRADES: &[UpgradeFn] = &[];

/// Sections that [`restore_cpu_ram`] understands.
pub const CPU_RAM_SECTIONS: &[&str] = &[CONFIG_SECTION, CPU_SECTION, ram::SECTION, CREATOR_SECTION];

/// The machine configuration stored in a snapshot and checked on restore.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineConfigSection {
    /// RAM size in bytes.
    pub ram_size: u64,
    /// Everything else that must match (devices, CPU model, disk identities): an opaque
    /// blob chosen by the machine, compared byte for byte.
    pub blob: Vec<u8>,
}

const _: () = assert!(CPU_UPGRADES.len() as u32 + 1 == CPU_VERSION);

impl MachineConfigSection {
    /// Error unless `self` (from a snapshot) matches the machine's configuration.
    pub fn check(&self, machine: &MachineConfigSection) -> Result<(), SnapshotError> {
        if self.ram_size != machine.ram_size {
            return Err(SnapshotError::ConfigMismatch(format!(
                "the snapshot was taken with {} of RAM, this machine has {}",
                size_text(self.ram_size),
                size_text(machine.ram_size)
            )));
        }
        if self.blob != machine.blob {
            let text = |b: &[u8]| match std::str::from_utf8(b) {
                Ok(s) if s.len() <= 200 && !s.chars().any(char::is_control) => format!("{s:?}"),
                _ => format!("{} bytes", b.len()),
            };
            return Err(SnapshotError::ConfigMismatch(format!(
                "the snapshot's machine configuration ({}) differs from this machine's ({})",
                text(&self.blob),
                text(&machine.blob)
            )));
        }
        Ok(())
    }
}

fn size_text(bytes: u64) -> String {
    if bytes % (1 << 20) == 0 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} bytes")
    }
}

/// A snapshot of a bare CPU and its memory with an empty configuration blob.
pub fn save_cpu_ram(cpu: &Cpu, mem: &PhysMem) -> Vec<u8> {
    save_cpu_ram_with_config(cpu, mem, &[])
}

/// A snapshot of a CPU and its memory; `config` describes the rest of the machine and
/// must match on restore.
pub fn save_cpu_ram_with_config(cpu: &Cpu, mem: &PhysMem, config: &[u8]) -> Vec<u8> {
    let mut w = SnapshotWriter::new();
    add_cpu_ram_sections(&mut w, cpu, mem, config);
    w.finish()
}

/// Add the `config` (version [`CONFIG_VERSION`]), `cpu`, `ram` and `creator` sections to
/// `w`. A machine with devices writes its own `config` section and calls
/// [`add_state_sections`] instead.
pub fn add_cpu_ram_sections(w: &mut SnapshotWriter, cpu: &Cpu, mem: &PhysMem, config: &[u8]) {
    let cfg = MachineConfigSection {
        ram_size: mem.ram_size() as u64,
        blob: config.to_vec(),
    };
    w.add_section(CONFIG_SECTION, CONFIG_VERSION, encode(&cfg));
    add_state_sections(w, cpu, mem);
}

/// Add the `cpu`, `ram` and `creator` sections to `w`.
pub fn add_state_sections(w: &mut SnapshotWriter, cpu: &Cpu, mem: &PhysMem) {
    w.add_section(CPU_SECTION, CPU_VERSION, hash::cpu_bytes(&cpu.state));
    w.add_section(ram::SECTION, ram::VERSION, encode_ram(mem.ram()));
    w.add_optional_section(
        CREATOR_SECTION,
        CREATOR_VERSION,
        format!("x86emu {}", env!("CARGO_PKG_VERSION")).into_bytes(),
    );
}

/// The `cpu` and `ram` sections decoded and checked, not yet applied: holding one means
/// both sections were valid, and [`DecodedCpuRam::apply`] cannot fail.
#[derive(Debug)]
pub struct DecodedCpuRam {
    pub cpu: CpuState,
    pub ram: ram::DecodedRam,
}

/// Decode and check the `cpu` section (through its upgrade chain) and the `ram` section
/// for a machine with `ram_size` bytes of RAM, changing nothing.
pub fn decode_cpu_ram(
    r: &SnapshotReader<'_>,
    ram_size: usize,
) -> Result<DecodedCpuRam, SnapshotError> {
    let state: CpuState = load_section(r, CPU_SECTION, CPU_UPGRADES)?;
    validate_cpu(&state)?;
    let (_, ram_data) = r.require(ram::SECTION, ram::VERSION)?;
    let ram = ram::decode_pages(ram_data, ram_size)?;
    Ok(DecodedCpuRam { cpu: state, ram })
}

impl DecodedCpuRam {
    /// Replace the CPU state and the RAM contents, and flush the CPU's derived caches.
    ///
    /// # Panics
    /// If `mem`'s RAM size differs from the one the RAM was decoded for.
    pub fn apply(self, cpu: &mut Cpu, mem: &mut PhysMem) {
        self.ram.apply(mem.ram_mut());
        cpu.state = self.cpu;
        cpu.flush_caches();
    }
}

/// Checks that a decoded CPU state can be run: what the interpreter relies on but the
/// encoding alone does not guarantee.
pub fn validate_cpu(s: &CpuState) -> Result<(), SnapshotError> {
    let bad = |m: String| Err(SnapshotError::section(CPU_SECTION, m));
    if s.lazy.is_pending() && ![1, 2, 4].contains(&s.lazy.size) {
        return bad(format!(
            "lazy-flags record has operand size {}",
            s.lazy.size
        ));
    }
    if s.cpl > 3 {
        return bad(format!("CPL {} is not 0..=3", s.cpl));
    }
    Ok(())
}

/// Restore a snapshot made by [`save_cpu_ram`] into `cpu` and `mem`.
pub fn restore_cpu_ram(
    bytes: &[u8],
    cpu: &mut Cpu,
    mem: &mut PhysMem,
) -> Result<(), SnapshotError> {
    restore_cpu_ram_with_config(bytes, cpu, mem, &[])
}

/// Restore a snapshot made by [`save_cpu_ram_with_config`]; `config` must equal the blob
/// it was saved with and `mem` must have the same RAM size.
///
/// Everything is decoded and checked before anything is changed: on an error `cpu` and
/// `mem` are as they were.
pub fn restore_cpu_ram_with_config(
    bytes: &[u8],
    cpu: &mut Cpu,
    mem: &mut PhysMem,
    config: &[u8],
) -> Result<(), SnapshotError> {
    let r = SnapshotReader::parse(bytes)?;
    r.check_unknown(CPU_RAM_SECTIONS)?;
    restore_cpu_ram_sections(&r, cpu, mem, config)
}

/// The restore half of [`add_cpu_ram_sections`], for machines that add their own sections.
pub fn restore_cpu_ram_sections(
    r: &SnapshotReader<'_>,
    cpu: &mut Cpu,
    mem: &mut PhysMem,
    config: &[u8],
) -> Result<(), SnapshotError> {
    let saved: MachineConfigSection = load_section(r, CONFIG_SECTION, CONFIG_UPGRADES)?;
    saved.check(&MachineConfigSection {
        ram_size: mem.ram_size() as u64,
        blob: config.to_vec(),
    })?;
    decode_cpu_ram(r, mem.ram().len())?.apply(cpu, mem);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct V1 {
        a: u32,
    }
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct V2 {
        a: u32,
        b: u16,
    }
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct V3 {
        a: u64,
        b: u16,
        c: bool,
    }
    fn v1_to_v2(d: &[u8]) -> Result<Vec<u8>, String> {
        let old: V1 = postcard::from_bytes(d).map_err(|e| e.to_string())?;
        Ok(encode(&V2 { a: old.a, b: 7 }))
    }
    fn v2_to_v3(d: &[u8]) -> Result<Vec<u8>, String> {
        let old: V2 = postcard::from_bytes(d).map_err(|e| e.to_string())?;
        Ok(encode(&V3 {
            a: old.a as u64,
            b: old.b,
            c: true,
        }))
    }
    const STEPS: &[UpgradeFn] = &[v1_to_v2, v2_to_v3];

    #[test]
    fn upgrade_chain() {
        let mut w = SnapshotWriter::new();
        w.add_section("old", 1, encode(&V1 { a: 5 }));
        w.add_section("mid", 2, encode(&V2 { a: 6, b: 9 }));
        w.add_section(
            "new",
            3,
            encode(&V3 {
                a: 1,
                b: 2,
                c: false,
            }),
        );
        w.add_section("future", 4, vec![0]);
        w.add_section("junk", 1, vec![0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
        let b = w.finish();
        let r = SnapshotReader::parse(&b).unwrap();
        let v: V3 = load_section(&r, "old", STEPS).unwrap();
        assert_eq!(
            v,
            V3 {
                a: 5,
                b: 7,
                c: true
            }
        );
        let v: V3 = load_section(&r, "mid", STEPS).unwrap();
        assert_eq!(
            v,
            V3 {
                a: 6,
                b: 9,
                c: true
            }
        );
        let v: V3 = load_section(&r, "new", STEPS).unwrap();
        assert_eq!(
            v,
            V3 {
                a: 1,
                b: 2,
                c: false
            }
        );
        assert_eq!(
            load_section::<V3>(&r, "future", STEPS)
                .unwrap_err()
                .to_string(),
            "section `future`: version 4 is newer than this build supports (max 3)"
        );
        let e = load_section::<V3>(&r, "junk", STEPS)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("section `junk`: upgrading version 1 to 2: "),
            "{e}"
        );
        assert!(load_section::<V3>(&r, "absent", STEPS).is_err());
    }

    #[test]
    fn decode_requires_the_whole_payload() {
        let mut b = encode(&V2 { a: 1, b: 2 });
        assert_eq!(decode::<V2>("x", &b).unwrap(), V2 { a: 1, b: 2 });
        b.push(0);
        assert_eq!(
            decode::<V2>("x", &b).unwrap_err().to_string(),
            "section `x`: 1 unexpected bytes after the data"
        );
        assert!(decode::<V2>("x", &b[..1])
            .unwrap_err()
            .to_string()
            .starts_with("section `x`: cannot decode"));
        // A bool other than 0/1 is refused.
        assert!(decode::<V3>("x", &[1, 2, 2]).is_err());
    }

    /// The `cpu` section's encoding, pinned: every field is named here (so adding one
    /// stops the build) and the bytes are fixed (so reordering or re-typing fields fails).
    /// If this fails, the encoding of `CpuState` changed and old snapshots no longer decode
    /// as they are: bump `CPU_VERSION`, keep the old struct as `CpuStateV<n>` with an
    /// upgrade in `CPU_UPGRADES` (docs/snapshot-format.md, "Compatibility policy"), then
    /// update this test.
    #[test]
    fn cpu_section_encoding_is_pinned() {
        use crate::cpu::flags::{LazyFlags, LazyOp};
        use crate::cpu::fpu::FpuState;
        use crate::cpu::state::{Msrs, SseState, TableReg};
        use crate::cpu::SegmentCache;
        let seg = |i: u32| SegmentCache {
            selector: 0x10 + i as u16,
            attr: 0x93,
            base: 0x1000 * i,
            limit: 0xFFFF,
            valid: true,
            _pad: [0; 3],
        };
        let s = CpuState {
            gpr: [1, 2, 3, 4, 0x8000, 6, 7, 0xFFFF_FFFF],
            eip: 0x7C00,
            flags_raw: 0x202,
            lazy: LazyFlags {
                op: LazyOp::Sub,
                size: 2,
                _pad: 0,
                res: 0xFFFF,
                dst: 0,
                src: 1,
            },
            seg: [seg(0), seg(1), seg(2), seg(3), seg(4), seg(5)],
            ldtr: seg(6),
            tr: seg(7),
            gdtr: TableReg {
                base: 0x500,
                limit: 0x27,
            },
            idtr: TableReg {
                base: 0,
                limit: 0x3FF,
            },
            cr0: 0x11,
            cr2: 0x1234,
            cr3: 0x10_0000,
            cr4: 0x10,
            dr: [0, 0, 0, 0, 0, 0, 0xFFFF_0FF0, 0x400],
            pdpte: [1, 0, 0, 1 << 40],
            msr: Msrs {
                efer: 0x800,
                apic_base: 0xFEE0_0900,
                sysenter_cs: 8,
                sysenter_esp: 0x9000,
                sysenter_eip: 0xC000,
                _pad: 0,
                tsc_offset: 5,
                mtrr_def_type: 0xC06,
                mtrr_fixed: std::array::from_fn(|k| 0x0606_0606_0606_0600 | k as u64),
                mtrr_var: std::array::from_fn(|k| 0xE000_0000 + k as u64),
                pat: 0x0007_0106_0007_0106,
                mcg_status: 4,
                bios_sign_id: 1 << 32,
                misc_enable: 0x1801,
            },
            fpu: FpuState {
                sig: [0x8000_0000_0000_0000, 0, 0, 0, 0, 0, 0, 1],
                fip: 0x10,
                fdp: 0x20,
                se: [0x3FFF, 0, 0, 0, 0, 0, 0, 0x8000],
                cw: 0x37F,
                sw: 0x3800,
                fop: 0x1D9,
                fcs: 8,
                fds: 0x10,
                valid: 0x81,
                ferr: 0,
                _pad: 0,
            },
            sse: SseState {
                xmm: std::array::from_fn(|r| std::array::from_fn(|b| (16 * r + b) as u8)),
                mxcsr: 0x9FC0,
            },
            cpl: 0,
            halted: true,
            shadow: false,
            db_shadow: false,
            icount: 123_456_789,
        };
        // The section stores the normalized state: the SUB record becomes flags.
        assert_eq!(to_hex(&hash::cpu_bytes(&s)), CPU_V3);

        let unhex = |h: &str| -> Vec<u8> {
            (0..h.len() / 2)
                .map(|k| u8::from_str_radix(&h[2 * k..2 * k + 2], 16).unwrap())
                .collect()
        };
        let mut want = s.clone();
        want.normalize();
        want.lazy = LazyFlags::default();
        // Versions 1 and 2 (the same state before the added MSRs) upgrade to this state
        // with those MSRs at their power-on values...
        want.msr = Msrs {
            efer: s.msr.efer,
            apic_base: s.msr.apic_base,
            sysenter_cs: s.msr.sysenter_cs,
            sysenter_esp: s.msr.sysenter_esp,
            sysenter_eip: s.msr.sysenter_eip,
            _pad: 0,
            tsc_offset: s.msr.tsc_offset,
            pat: crate::cpu::state::PAT_RESET,
            misc_enable: crate::cpu::state::MISC_ENABLE_RESET,
            ..Msrs::default()
        };
        let up: CpuState = decode(
            CPU_SECTION,
            &upgrade(CPU_SECTION, 2, &unhex(CPU_V2), CPU_UPGRADES).unwrap(),
        )
        .unwrap();
        assert_eq!(up, want);
        // ... and version 1 (before SSE existed) also with the SSE reset state.
        want.sse = SseState::default();
        let up: CpuState = decode(
            CPU_SECTION,
            &upgrade(CPU_SECTION, 1, &unhex(CPU_V1), CPU_UPGRADES).unwrap(),
        )
        .unwrap();
        assert_eq!(up, want);
    }
    const CPU_V3: &str = "010203048080020607ffffffff0f80f801970500000000000010930100ffff03010000001193018020ffff03010000001293018040ffff03010000001393018060ffff0301000000149301808001ffff030100000015930180a001ffff030100000016930180c001ffff030100000017930180e001ffff0301000000800a2700ff0711b42480804010000000000000f09ffcff0f80080100008080808080208010809280f70f0880a00280800300058618808c98b0e0c0818306818c98b0e0c0818306828c98b0e0c0818306838c98b0e0c0818306848c98b0e0c0818306858c98b0e0c0818306868c98b0e0c0818306878c98b0e0c0818306888c98b0e0c0818306898c98b0e0c08183068a8c98b0e0c0818306808080800e818080800e828080800e838080800e848080800e858080800e868080800e878080800e888080800e898080800e8a8080800e8b8080800e8c8080800e8d8080800e8e8080800e8f8080800e86829c80e0a0c003048080808010813080808080808080808001000000000000011020ff7f000000000000808002ff068070d9030810810000000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7fc0bf0200010000959aef3a";
    const CPU_V2: &str = "010203048080020607ffffffff0f80f801970500000000000010930100ffff03010000001193018020ffff03010000001293018040ffff03010000001393018060ffff0301000000149301808001ffff030100000015930180a001ffff030100000016930180c001ffff030100000017930180e001ffff0301000000800a2700ff0711b42480804010000000000000f09ffcff0f80080100008080808080208010809280f70f0880a002808003000580808080808080808001000000000000011020ff7f000000000000808002ff068070d9030810810000000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7fc0bf0200010000959aef3a";
    const CPU_V1: &str = "010203048080020607ffffffff0f80f801970500000000000010930100ffff03010000001193018020ffff03010000001293018040ffff03010000001393018060ffff0301000000149301808001ffff030100000015930180a001ffff030100000016930180c001ffff030100000017930180e001ffff0301000000800a2700ff0711b42480804010000000000000f09ffcff0f80080100008080808080208010809280f70f0880a002808003000580808080808080808001000000000000011020ff7f000000000000808002ff068070d903081081000000010000959aef3a";

    #[test]
    fn validate_cpu_refuses_unrunnable_states() {
        let mut s = CpuState::default();
        assert!(validate_cpu(&s).is_ok());
        s.cpl = 4;
        assert_eq!(
            validate_cpu(&s).unwrap_err().to_string(),
            "section `cpu`: CPL 4 is not 0..=3"
        );
        s.cpl = 0;
        s.lazy.op = crate::cpu::flags::LazyOp::Add;
        s.lazy.size = 0;
        assert!(validate_cpu(&s).is_err());
        s.lazy.size = 2;
        assert!(validate_cpu(&s).is_ok());
    }

    #[test]
    fn config_mismatch_messages() {
        let a = MachineConfigSection {
            ram_size: 64 << 20,
            blob: b"pc".to_vec(),
        };
        let b = MachineConfigSection {
            ram_size: 32 << 20,
            blob: b"pc".to_vec(),
        };
        assert_eq!(
            a.check(&b).unwrap_err().to_string(),
            "machine configuration mismatch: the snapshot was taken with 64 MiB of RAM, this machine has 32 MiB"
        );
        let c = MachineConfigSection {
            ram_size: 64 << 20,
            blob: b"isa".to_vec(),
        };
        assert_eq!(
            a.check(&c).unwrap_err().to_string(),
            "machine configuration mismatch: the snapshot's machine configuration (\"pc\") differs from this machine's (\"isa\")"
        );
        assert!(a.check(&a.clone()).is_ok());
    }
}
