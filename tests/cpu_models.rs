//! CPU models: CPUID per model, #UD for instruction groups a model lacks, MSRs (which
//! exist, read/write, reserved bits), CR4 validity, snapshots refusing another model, and
//! the `--cpu` option of the command line.
//!
//! The expected values are written out here from the real parts' documentation rather
//! than taken from the model table, so a wrong table entry fails a test.

use std::process::Command;

use x86emu::cpu::regs::*;
use x86emu::cpu::{Cpu, CpuModel, RunExit};
use x86emu::devices::bus::NullBus;
use x86emu::mmu::PhysMem;

const CODE: u32 = 0x1000;
const DATA: u32 = 0x4000;

/// A CPU of `model` in flat 32-bit protected mode at CPL 0 with `code` at CODE, EAX =
/// DATA (16-byte aligned scratch memory), exceptions returned to the caller.
fn flat(model: CpuModel, code: &[u8]) -> (Cpu, PhysMem) {
    let mut mem = PhysMem::new_flat(1 << 20);
    mem.write_bytes(CODE, code);
    let mut cpu = Cpu::with_model(model);
    cpu.state.enter_flat32();
    cpu.state.eip = CODE;
    cpu.state.gpr[ESP] = 0x8000;
    cpu.state.gpr[EAX] = DATA;
    // The OS supports FXSAVE/FXRSTOR and SSE exceptions where the model has them.
    cpu.state.cr4 = model.cr4_valid() & (1 << 9 | 1 << 10);
    cpu.stop_on_exception = true;
    (cpu, mem)
}

/// Run `code` (which should end in HLT) and return the exception vector it raised.
fn run(cpu: &mut Cpu, mem: &mut PhysMem) -> Option<u8> {
    match cpu.run(mem, &mut NullBus, 1000) {
        RunExit::Halted => None,
        RunExit::Exception { vector, .. } => Some(vector),
        other => panic!("unexpected exit {other:?}"),
    }
}

fn exec(model: CpuModel, code: &[u8]) -> Option<u8> {
    let (mut cpu, mut mem) = flat(model, code);
    run(&mut cpu, &mut mem)
}

/// CPUID executed by the guest: [EAX, EBX, ECX, EDX].
fn guest_cpuid(model: CpuModel, leaf: u32) -> [u32; 4] {
    // cpuid; hlt
    let (mut cpu, mut mem) = flat(model, &[0x0F, 0xA2, 0xF4]);
    cpu.state.gpr[EAX] = leaf;
    cpu.state.gpr[ECX] = 0;
    assert_eq!(run(&mut cpu, &mut mem), None);
    let g = cpu.state.gpr;
    let r = [g[EAX], g[EBX], g[ECX], g[EDX]];
    assert_eq!(r, model.cpuid(leaf, 0), "{model} leaf {leaf:#x}");
    r
}

fn brand(model: CpuModel) -> String {
    let mut b = Vec::new();
    for leaf in 0x8000_0002..=0x8000_0004 {
        for r in guest_cpuid(model, leaf) {
            b.extend_from_slice(&r.to_le_bytes());
        }
    }
    let end = b.iter().position(|&c| c == 0).expect("NUL-terminated");
    String::from_utf8(b[..end].to_vec()).unwrap()
}

/// Leaf 1 EDX flag names, bit by bit.
const EDX_NAMES: [&str; 32] = [
    "fpu", "vme", "de", "pse", "tsc", "msr", "pae", "mce", "cx8", "apic", "", "sep", "mtrr", "pge",
    "mca", "cmov", "pat", "pse36", "pn", "clflush", "", "dts", "acpi", "mmx", "fxsr", "sse",
    "sse2", "ss", "ht", "tm", "ia64", "pbe",
];

fn flags(edx: u32) -> Vec<&'static str> {
    (0..32)
        .filter(|b| edx & (1 << b) != 0)
        .map(|b| EDX_NAMES[b])
        .collect()
}

struct Expect {
    model: CpuModel,
    family: u32,
    model_no: u32,
    stepping: u32,
    max_basic: u32,
    edx: &'static str,
    nx: bool,
    clflush_size: u32,
    leaf2: Option<[u32; 4]>,
    brand: &'static str,
}

const P6_FLAGS: &str = "fpu de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat mmx fxsr";

fn expectations() -> Vec<Expect> {
    vec![
        Expect {
            model: CpuModel::Pentium,
            family: 5,
            model_no: 2,
            stepping: 12,
            max_basic: 1,
            edx: "fpu de pse tsc msr mce cx8 apic",
            nx: false,
            clflush_size: 0,
            leaf2: None,
            brand: "x86emu virtual Intel Pentium (P54C)",
        },
        Expect {
            model: CpuModel::PentiumMmx,
            family: 5,
            model_no: 4,
            stepping: 3,
            max_basic: 1,
            edx: "fpu de pse tsc msr mce cx8 apic mmx",
            nx: false,
            clflush_size: 0,
            leaf2: None,
            brand: "x86emu virtual Intel Pentium MMX (P55C)",
        },
        Expect {
            model: CpuModel::Pentium2,
            family: 6,
            model_no: 5,
            stepping: 2,
            max_basic: 2,
            edx: P6_FLAGS,
            nx: false,
            clflush_size: 0,
            leaf2: Some([0x0302_0101, 0, 0, 0x0C04_0843]),
            brand: "x86emu virtual Intel Pentium II (Deschutes)",
        },
        Expect {
            model: CpuModel::Pentium3,
            family: 6,
            model_no: 8,
            stepping: 6,
            max_basic: 2,
            edx: "fpu de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat mmx fxsr sse",
            nx: false,
            clflush_size: 0,
            leaf2: Some([0x0302_0101, 0, 0, 0x0C04_0882]),
            brand: "x86emu virtual Intel Pentium III (Coppermine)",
        },
        Expect {
            model: CpuModel::PentiumM,
            family: 6,
            model_no: 13,
            stepping: 8,
            max_basic: 2,
            edx: "fpu de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat clflush mmx fxsr sse sse2",
            nx: true,
            clflush_size: 64,
            leaf2: Some([0x02B3_B001, 0xF0, 0, 0x2C04_307D]),
            brand: "x86emu virtual Intel Pentium M (Dothan)",
        },
        Expect {
            model: CpuModel::Pentium4,
            family: 15,
            model_no: 2,
            stepping: 9,
            max_basic: 2,
            edx: "fpu de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat clflush mmx fxsr sse sse2",
            nx: false,
            clflush_size: 64,
            leaf2: Some([0x665B_5001, 0, 0, 0x007B_7040]),
            brand: "x86emu virtual Intel Pentium 4 (Northwood)",
        },
        Expect {
            model: CpuModel::Legacy,
            family: 6,
            model_no: 8,
            stepping: 6,
            max_basic: 1,
            edx: "fpu de pse tsc msr pae cx8 apic sep pge cmov mmx fxsr",
            nx: true,
            clflush_size: 0,
            leaf2: None,
            brand: "x86emu IA-32 virtual processor",
        },
    ]
}

#[test]
fn cpuid_reports_each_models_part_and_features() {
    assert_eq!(expectations().len(), CpuModel::ALL.len());
    for e in expectations() {
        let m = e.model;
        let l0 = guest_cpuid(m, 0);
        assert_eq!(l0[0], e.max_basic, "{m}");
        let vendor: Vec<u8> = [l0[1], l0[3], l0[2]]
            .iter()
            .flat_map(|r| r.to_le_bytes())
            .collect();
        assert_eq!(vendor, b"GenuineIntel", "{m}");
        let l1 = guest_cpuid(m, 1);
        let fam = (l1[0] >> 8) & 0xF;
        let family = if fam == 0xF {
            fam + (l1[0] >> 20 & 0xFF)
        } else {
            fam
        };
        assert_eq!(family, e.family, "{m}");
        let model_no = ((l1[0] >> 4) & 0xF) | if fam >= 6 { (l1[0] >> 12) & 0xF0 } else { 0 };
        assert_eq!(model_no, e.model_no, "{m}");
        assert_eq!(l1[0] & 0xF, e.stepping, "{m}");
        assert_eq!(l1[0] >> 12 & 3, 0, "{m}: original OEM processor");
        assert_eq!(flags(l1[3]).join(" "), e.edx, "{m}");
        assert_eq!(l1[2], 0, "{m}: no SSE3 or later, no EST/TM2");
        assert_eq!(((l1[1] >> 8) & 0xFF) * 8, e.clflush_size, "{m}");
        assert_eq!(
            l1[1] & !0xFF00,
            0,
            "{m}: brand index 0, one logical CPU, APIC ID 0"
        );
        if let Some(l2) = e.leaf2 {
            assert_eq!(guest_cpuid(m, 2), l2, "{m}");
        }
        let ext = guest_cpuid(m, 0x8000_0000);
        assert_eq!(ext[0], 0x8000_0004, "{m}");
        let e1 = guest_cpuid(m, 0x8000_0001);
        assert_eq!(e1, [0, 0, 0, if e.nx { 1 << 20 } else { 0 }], "{m}");
        assert_eq!(brand(m), e.brand, "{m}");
        // Above the highest basic leaf: the highest basic leaf (Intel behaviour).
        assert_eq!(
            guest_cpuid(m, e.max_basic + 1),
            guest_cpuid(m, e.max_basic),
            "{m}"
        );
        // The signature is also EDX after RESET.
        let mut cpu = Cpu::with_model(m);
        assert_eq!(cpu.state.gpr[EDX], l1[0], "{m}");
        cpu.state.gpr[EDX] = 0;
        cpu.reset();
        assert_eq!(cpu.state.gpr[EDX], l1[0], "{m}");
    }
    assert_eq!(CpuModel::default(), CpuModel::PentiumM);
}

/// Models that have a group, by name.
fn models(names: &str) -> Vec<CpuModel> {
    names
        .split_whitespace()
        .map(|n| CpuModel::from_name(n).unwrap())
        .collect()
}

const P6_ON: &str = "pentium2 pentium3 pentium-m pentium4 legacy";
const MMX_ON: &str = "pentium-mmx pentium2 pentium3 pentium-m pentium4 legacy";
const ALL: &str = "pentium pentium-mmx pentium2 pentium3 pentium-m pentium4 legacy";
const SSE_ON: &str = "pentium3 pentium-m pentium4";
const SSE2_ON: &str = "pentium-m pentium4";

/// Each gated instruction (followed by HLT) raises #UD exactly on the models that lack its
/// group; elsewhere it runs or raises something else.
#[test]
fn instructions_a_model_lacks_raise_ud() {
    let fninit = [0xDB, 0xE3];
    let cases: &[(&str, Vec<u8>, &str)] = &[
        ("CMOVE", vec![0x0F, 0x44, 0xC0], P6_ON),
        ("FCMOVB", [&fninit[..], &[0xDA, 0xC1]].concat(), P6_ON),
        ("FCMOVNBE", [&fninit[..], &[0xDB, 0xD1]].concat(), P6_ON),
        (
            "FCOMI",
            [&fninit[..], &[0xD9, 0xE8, 0xDB, 0xF0]].concat(),
            P6_ON,
        ),
        (
            "FUCOMI",
            [&fninit[..], &[0xD9, 0xE8, 0xDB, 0xE8]].concat(),
            P6_ON,
        ),
        (
            "FCOMIP",
            [&fninit[..], &[0xD9, 0xE8, 0xDF, 0xF0]].concat(),
            P6_ON,
        ),
        (
            "FUCOMIP",
            [&fninit[..], &[0xD9, 0xE8, 0xDF, 0xE8]].concat(),
            P6_ON,
        ),
        ("SYSENTER", vec![0x0F, 0x34], P6_ON),
        ("SYSEXIT", vec![0x0F, 0x35], P6_ON),
        ("FXSAVE", vec![0x0F, 0xAE, 0x00], P6_ON),
        ("FXRSTOR", vec![0x0F, 0xAE, 0x00, 0x0F, 0xAE, 0x08], P6_ON),
        ("EMMS", vec![0x0F, 0x77], MMX_ON),
        ("PXOR mm", vec![0x0F, 0xEF, 0xC0], MMX_ON),
        ("MOVD mm", vec![0x0F, 0x6E, 0xC0], MMX_ON),
        ("RDPMC", vec![0x31, 0xC9, 0x0F, 0x33], MMX_ON),
        ("NOP r/m32", vec![0x0F, 0x1F, 0x00], P6_ON),
        ("NOP 0F 18", vec![0x0F, 0x19, 0xC0], P6_ON),
        // SSE: XMM forms, the SSE additions on MMX registers, MXCSR, SFENCE.
        ("ADDPS", vec![0x0F, 0x58, 0xC1], SSE_ON),
        ("ADDSS", vec![0xF3, 0x0F, 0x58, 0xC1], SSE_ON),
        ("MOVAPS", vec![0x0F, 0x28, 0xC1], SSE_ON),
        ("PAVGB mm", vec![0x0F, 0xE0, 0xC1], SSE_ON),
        ("PSHUFW mm", vec![0x0F, 0x70, 0xC1, 0x1B], SSE_ON),
        ("STMXCSR", vec![0x0F, 0xAE, 0x18], SSE_ON),
        ("LDMXCSR", vec![0x0F, 0xAE, 0x18, 0x0F, 0xAE, 0x10], SSE_ON),
        ("SFENCE", vec![0x0F, 0xAE, 0xF8], SSE_ON),
        // SSE2: every 66/F2/F3-SSE2 form, the SSE2 additions on MMX registers, fences.
        ("ADDSD", vec![0xF2, 0x0F, 0x58, 0xC1], SSE2_ON),
        ("PADDB xmm", vec![0x66, 0x0F, 0xFC, 0xC1], SSE2_ON),
        ("MOVQ xmm", vec![0xF3, 0x0F, 0x7E, 0xC1], SSE2_ON),
        ("CVTDQ2PS", vec![0x0F, 0x5B, 0xC1], SSE2_ON),
        ("PADDQ mm", vec![0x0F, 0xD4, 0xC1], SSE2_ON),
        ("MOVNTI", vec![0x0F, 0xC3, 0x08], SSE2_ON),
        ("LFENCE", vec![0x0F, 0xAE, 0xE8], SSE2_ON),
        ("MFENCE", vec![0x0F, 0xAE, 0xF0], SSE2_ON),
        ("CLFLUSH", vec![0x0F, 0xAE, 0x38], SSE2_ON),
        ("CMPXCHG8B", vec![0x0F, 0xC7, 0x08], ALL),
        ("RDTSC", vec![0x0F, 0x31], ALL),
        ("RDMSR TSC", vec![0xB9, 0x10, 0, 0, 0, 0x0F, 0x32], ALL),
        // x87 and FPU-less forms that every model has.
        ("FUCOMPP", [&fninit[..], &[0xDA, 0xE9]].concat(), ALL),
        ("FILD", [&fninit[..], &[0xDB, 0x00]].concat(), ALL),
    ];
    for (name, code, having) in cases {
        let having = models(having);
        let mut code = code.clone();
        code.push(0xF4);
        for m in CpuModel::ALL {
            let got = exec(m, &code);
            if having.contains(&m) {
                assert_ne!(got, Some(6), "{name} on {m}: the model has it");
            } else {
                assert_eq!(got, Some(6), "{name} on {m}: the model lacks it");
            }
        }
    }
    // SYSENTER on a model with SEP gets as far as its own check (SYSENTER_CS = 0: #GP).
    assert_eq!(exec(CpuModel::Pentium2, &[0x0F, 0x34, 0xF4]), Some(13));
}

/// A gated instruction in the middle of a block faults at its own address, after the
/// instructions before it executed.
#[test]
fn a_gated_instruction_faults_at_its_boundary() {
    // inc ebx; inc ebx; cmove eax, ecx; hlt
    let (mut cpu, mut mem) = flat(CpuModel::Pentium, &[0x43, 0x43, 0x0F, 0x44, 0xC1, 0xF4]);
    assert_eq!(run(&mut cpu, &mut mem), Some(6));
    assert_eq!(cpu.state.gpr[EBX], 2);
    assert_eq!(cpu.state.eip, CODE + 2);
}

const CR4_BITS: [&str; 11] = [
    "VME",
    "PVI",
    "TSD",
    "DE",
    "PSE",
    "PAE",
    "MCE",
    "PGE",
    "PCE",
    "OSFXSR",
    "OSXMMEXCPT",
];

/// MOV CR4 with each bit alone: #GP(0) exactly for the bits the model does not have.
#[test]
fn cr4_bits_follow_the_model() {
    let valid: &[(CpuModel, &str)] = &[
        (CpuModel::Pentium, "TSD DE PSE MCE"),
        (CpuModel::PentiumMmx, "TSD DE PSE MCE PCE"),
        (CpuModel::Pentium2, "TSD DE PSE PAE MCE PGE PCE OSFXSR"),
        (
            CpuModel::Pentium3,
            "TSD DE PSE PAE MCE PGE PCE OSFXSR OSXMMEXCPT",
        ),
        (
            CpuModel::PentiumM,
            "TSD DE PSE PAE MCE PGE PCE OSFXSR OSXMMEXCPT",
        ),
        (
            CpuModel::Pentium4,
            "TSD DE PSE PAE MCE PGE PCE OSFXSR OSXMMEXCPT",
        ),
        (
            CpuModel::Legacy,
            "TSD DE PSE PAE MCE PGE PCE OSFXSR OSXMMEXCPT",
        ),
    ];
    for (m, names) in valid {
        let names: Vec<&str> = names.split_whitespace().collect();
        for bit in 0..32usize {
            // mov cr4, ebx; hlt
            let (mut cpu, mut mem) = flat(*m, &[0x0F, 0x22, 0xE3, 0xF4]);
            cpu.state.cr4 = 0;
            cpu.state.gpr[EBX] = 1 << bit;
            let name = CR4_BITS.get(bit).copied().unwrap_or("reserved");
            let ok = names.contains(&name);
            let got = run(&mut cpu, &mut mem);
            if ok {
                assert_eq!(got, None, "{m}: CR4.{name} must be accepted");
                assert_eq!(cpu.state.cr4, 1 << bit);
            } else {
                assert_eq!(got, Some(13), "{m}: CR4 bit {bit} ({name}) must be #GP");
                assert_eq!(cpu.state.cr4, 0);
            }
        }
    }
}

/// RDMSR `msr` on `m`: Ok(value) or Err(vector).
fn rdmsr(cpu: &mut Cpu, mem: &mut PhysMem, msr: u32) -> Result<u64, u8> {
    // rdmsr; hlt
    mem.write_bytes(CODE, &[0x0F, 0x32, 0xF4]);
    cpu.flush_caches();
    cpu.state.halted = false;
    cpu.state.eip = CODE;
    cpu.state.gpr[ECX] = msr;
    match run(cpu, mem) {
        None => Ok((cpu.state.gpr[EDX] as u64) << 32 | cpu.state.gpr[EAX] as u64),
        Some(v) => Err(v),
    }
}

fn wrmsr(cpu: &mut Cpu, mem: &mut PhysMem, msr: u32, v: u64) -> Result<(), u8> {
    // wrmsr; hlt
    mem.write_bytes(CODE, &[0x0F, 0x30, 0xF4]);
    cpu.flush_caches();
    cpu.state.halted = false;
    cpu.state.eip = CODE;
    cpu.state.gpr[ECX] = msr;
    cpu.state.gpr[EAX] = v as u32;
    cpu.state.gpr[EDX] = (v >> 32) as u32;
    match run(cpu, mem) {
        None => Ok(()),
        Some(v) => Err(v),
    }
}

/// MSR groups by the feature that brings them.
const MTRR_MSRS: &[u32] = &[
    0xFE, 0x2FF, 0x250, 0x258, 0x259, 0x268, 0x269, 0x26A, 0x26B, 0x26C, 0x26D, 0x26E, 0x26F,
    0x200, 0x201, 0x202, 0x203, 0x204, 0x205, 0x206, 0x207, 0x208, 0x209, 0x20A, 0x20B, 0x20C,
    0x20D, 0x20E, 0x20F,
];

#[test]
fn each_model_has_exactly_its_msrs() {
    let p6 = "pentium2 pentium3 pentium-m pentium4";
    let groups: &[(&str, &[u32], &str)] = &[
        ("TSC", &[0x10], ALL),
        ("P5 machine check", &[0x0, 0x1], "pentium pentium-mmx"),
        (
            "APIC_BASE",
            &[0x1B],
            "pentium2 pentium3 pentium-m pentium4 legacy",
        ),
        ("PLATFORM_ID, BIOS_SIGN_ID", &[0x17, 0x8B], p6),
        ("SYSENTER", &[0x174, 0x175, 0x176], P6_ON),
        ("MCA", &[0x179, 0x17A], p6),
        ("MTRR", MTRR_MSRS, p6),
        ("PAT", &[0x277], p6),
        ("MISC_ENABLE", &[0x1A0], "pentium-m pentium4"),
        ("EFER", &[0xC000_0080], "pentium-m legacy"),
        // Never: machine-check banks (MCG_CAP reports none), MCG_CTL, performance
        // counters, SYSCALL MSRs, 0x210 (a ninth variable range).
        (
            "absent",
            &[
                0x2,
                0x11,
                0x17B,
                0x186,
                0xC1,
                0x400,
                0x210,
                0xC000_0081,
                0xFFFF_FFFF,
            ],
            "",
        ),
    ];
    for m in CpuModel::ALL {
        let (mut cpu, mut mem) = flat(m, &[]);
        for (name, msrs, having) in groups {
            let has = models(having).contains(&m);
            for &msr in *msrs {
                let r = rdmsr(&mut cpu, &mut mem, msr);
                if has {
                    assert!(r.is_ok(), "{m}: RDMSR {msr:#x} ({name}) must work");
                } else {
                    assert_eq!(r, Err(13), "{m}: RDMSR {msr:#x} ({name}) must be #GP");
                    assert_eq!(
                        wrmsr(&mut cpu, &mut mem, msr, 0),
                        Err(13),
                        "{m}: WRMSR {msr:#x}"
                    );
                }
            }
        }
    }
}

#[test]
fn mtrrs_hold_their_values_and_refuse_reserved_bits() {
    for m in models("pentium2 pentium3 pentium-m pentium4") {
        let (mut cpu, mut mem) = flat(m, &[]);
        let c = &mut cpu;
        let mm = &mut mem;
        // MTRRcap: 8 variable ranges, fixed ranges, WC; read-only.
        assert_eq!(rdmsr(c, mm, 0xFE), Ok(0x508));
        assert_eq!(wrmsr(c, mm, 0xFE, 0x508), Err(13));
        // Power-on: disabled.
        assert_eq!(rdmsr(c, mm, 0x2FF), Ok(0));
        // MTRRdefType: type (7:0), FE (10), E (11).
        assert_eq!(wrmsr(c, mm, 0x2FF, 0xC06), Ok(()));
        assert_eq!(rdmsr(c, mm, 0x2FF), Ok(0xC06));
        for bad in [0xC02, 0xC03, 0xC07, 0xC16, 0xE06, 0x1C06, 1 << 32] {
            assert_eq!(wrmsr(c, mm, 0x2FF, bad), Err(13), "{m}: defType {bad:#x}");
        }
        assert_eq!(rdmsr(c, mm, 0x2FF), Ok(0xC06));
        // Fixed ranges: each byte UC, WC, WT, WP or WB.
        for (k, msr) in [0x250, 0x258, 0x259, 0x268, 0x26F].into_iter().enumerate() {
            let v = 0x0605_0400_0106_0504u64.rotate_left(8 * k as u32);
            assert_eq!(wrmsr(c, mm, msr, v), Ok(()));
            assert_eq!(rdmsr(c, mm, msr), Ok(v));
            assert_eq!(wrmsr(c, mm, msr, 0x0606_0606_0606_0602), Err(13));
            assert_eq!(wrmsr(c, mm, msr, 0x0706_0606_0606_0606), Err(13));
            assert_eq!(wrmsr(c, mm, msr, 0x1006_0606_0606_0606), Err(13));
            assert_eq!(rdmsr(c, mm, msr), Ok(v));
        }
        // Variable ranges: PhysBase = base (35:12) | type; PhysMask = mask (35:12) | V.
        for n in 0..8u32 {
            let (base, mask) = (0x200 + 2 * n, 0x201 + 2 * n);
            let b = 0xF_E000_0000 | 6;
            let k = 0xF_F000_0800;
            assert_eq!(wrmsr(c, mm, base, b), Ok(()));
            assert_eq!(wrmsr(c, mm, mask, k), Ok(()));
            assert_eq!(rdmsr(c, mm, base), Ok(b));
            assert_eq!(rdmsr(c, mm, mask), Ok(k));
            for bad in [
                b | 1 << 36,
                b | 1 << 8,
                b | 1 << 11,
                0xE000_0002,
                0xE000_0007,
            ] {
                assert_eq!(
                    wrmsr(c, mm, base, bad),
                    Err(13),
                    "{m}: PhysBase{n} {bad:#x}"
                );
            }
            for bad in [k | 1 << 36, k | 1, k | 1 << 10, 1 << 63] {
                assert_eq!(
                    wrmsr(c, mm, mask, bad),
                    Err(13),
                    "{m}: PhysMask{n} {bad:#x}"
                );
            }
            assert_eq!(rdmsr(c, mm, base), Ok(b));
            assert_eq!(rdmsr(c, mm, mask), Ok(k));
        }
        // The values are guest state: they survive in CpuState and a reset clears them.
        assert_eq!(cpu.state.msr.mtrr_def_type, 0xC06);
        cpu.reset();
        assert_eq!(cpu.state.msr.mtrr_def_type, 0);
        assert_eq!(cpu.state.msr.mtrr_var, [0; 16]);
    }
}

#[test]
fn pat_mca_misc_enable_and_bios_sign_id() {
    for m in models("pentium2 pentium3 pentium-m pentium4") {
        let (mut cpu, mut mem) = flat(m, &[]);
        let c = &mut cpu;
        let mm = &mut mem;
        assert_eq!(
            rdmsr(c, mm, 0x277),
            Ok(0x0007_0406_0007_0406),
            "{m}: PAT reset"
        );
        // Linux's PAT: WB WC UC- UC WB WP UC- WT.
        assert_eq!(wrmsr(c, mm, 0x277, 0x0407_0501_0007_0106), Ok(()));
        assert_eq!(rdmsr(c, mm, 0x277), Ok(0x0407_0501_0007_0106));
        for bad in [0x2, 0x3, 0x8, 0x0300_0000_0000_0000, 0xFF] {
            assert_eq!(wrmsr(c, mm, 0x277, bad), Err(13), "{m}: PAT {bad:#x}");
        }
        assert_eq!(rdmsr(c, mm, 0x277), Ok(0x0407_0501_0007_0106));
        // MCG_CAP: no banks, no MCG_CTL; read-only. MCG_STATUS: RIPV EIPV MCIP.
        assert_eq!(rdmsr(c, mm, 0x179), Ok(0));
        assert_eq!(wrmsr(c, mm, 0x179, 0), Err(13));
        assert_eq!(rdmsr(c, mm, 0x17A), Ok(0));
        assert_eq!(wrmsr(c, mm, 0x17A, 0), Ok(()));
        assert_eq!(wrmsr(c, mm, 0x17A, 8), Err(13));
        // PLATFORM_ID is read-only.
        assert_eq!(rdmsr(c, mm, 0x17), Ok(0));
        assert_eq!(wrmsr(c, mm, 0x17, 0), Err(13));
        // BIOS_SIGN_ID: what software wrote, until CPUID 1 loads the revision (none).
        assert_eq!(wrmsr(c, mm, 0x8B, 0x1234 << 32), Ok(()));
        assert_eq!(rdmsr(c, mm, 0x8B), Ok(0x1234 << 32));
        mm.write_bytes(CODE, &[0x0F, 0xA2, 0xF4]);
        c.flush_caches();
        c.state.halted = false;
        c.state.eip = CODE;
        c.state.gpr[EAX] = 1;
        assert_eq!(run(c, mm), None);
        assert_eq!(rdmsr(c, mm, 0x8B), Ok(0));
    }
    for m in models("pentium-m pentium4") {
        let (mut cpu, mut mem) = flat(m, &[]);
        let c = &mut cpu;
        let mm = &mut mem;
        // Fast strings on; BTS and PEBS unavailable (read-only).
        assert_eq!(rdmsr(c, mm, 0x1A0), Ok(0x1801));
        assert_eq!(wrmsr(c, mm, 0x1A0, 0), Ok(()));
        assert_eq!(rdmsr(c, mm, 0x1A0), Ok(0x1800));
        assert_eq!(wrmsr(c, mm, 0x1A0, 0x1801), Ok(()));
        assert_eq!(rdmsr(c, mm, 0x1A0), Ok(0x1801));
        for bad in [1 << 3, 1 << 16, 1 << 22, 1 << 34] {
            assert_eq!(
                wrmsr(c, mm, 0x1A0, bad | 1),
                Err(13),
                "{m}: MISC_ENABLE {bad:#x}"
            );
        }
    }
    // The Pentium's machine-check registers: nothing latched, read-only.
    for m in models("pentium pentium-mmx") {
        let (mut cpu, mut mem) = flat(m, &[]);
        assert_eq!(rdmsr(&mut cpu, &mut mem, 0), Ok(0));
        assert_eq!(rdmsr(&mut cpu, &mut mem, 1), Ok(0));
        assert_eq!(wrmsr(&mut cpu, &mut mem, 1, 0), Err(13));
    }
    // EFER: only NXE, only on models with NX.
    let (mut cpu, mut mem) = flat(CpuModel::PentiumM, &[]);
    assert_eq!(wrmsr(&mut cpu, &mut mem, 0xC000_0080, 0x800), Ok(()));
    assert_eq!(wrmsr(&mut cpu, &mut mem, 0xC000_0080, 0x100), Err(13));
    assert_eq!(wrmsr(&mut cpu, &mut mem, 0xC000_0080, 1), Err(13));
    // RDMSR/WRMSR outside ring 0: #GP.
    let (mut cpu, mut mem) = flat(CpuModel::PentiumM, &[]);
    cpu.state.cpl = 3;
    assert_eq!(rdmsr(&mut cpu, &mut mem, 0x277), Err(13));
}

// ----- snapshots and the command line ---------------------------------------------------

use x86emu::devices::ide::IdeDrives;
use x86emu::machine::{BootSource, PcConfig, PcMachine, SnapshotConfig};

fn pc(model: CpuModel) -> PcMachine {
    let config = PcConfig {
        ram_size: 4 << 20,
        cpu_model: model,
        ..PcConfig::default()
    };
    PcMachine::new(config, BootSource::None, IdeDrives::new()).unwrap()
}

#[test]
fn a_pc_snapshot_names_its_model_and_refuses_another() {
    let mut a = pc(CpuModel::Pentium3);
    a.run(1000);
    let snap = a.save_snapshot();
    let cfg = SnapshotConfig::from_snapshot(&snap).unwrap();
    assert_eq!(cfg.cpu_model, CpuModel::Pentium3);

    let mut b = pc(CpuModel::PentiumM);
    let before = b.state_hash();
    assert_eq!(
        b.restore_snapshot(&snap).unwrap_err().to_string(),
        "machine configuration mismatch: the snapshot was taken with CPU model `pentium3`, \
         this machine's CPU is `pentium-m`"
    );
    assert_eq!(b.state_hash(), before, "a refused restore changes nothing");

    let mut c = pc(CpuModel::Pentium3);
    c.restore_snapshot(&snap).unwrap();
    assert_eq!(c.state_hash(), a.state_hash());
}

/// A snapshot from before CPU models (`config` section version 2, no model) restores
/// into the legacy model only.
#[test]
fn an_old_snapshot_resumes_with_the_legacy_model() {
    use x86emu::machine::DiskIdentity;
    use x86emu::snapshot::{encode, SnapshotReader, SnapshotWriter, CONFIG_SECTION};
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Envelope {
        ram_size: u64,
        blob: Vec<u8>,
    }
    /// The PC configuration as `config` version 2 encoded it.
    #[derive(serde::Serialize)]
    struct ConfigV2 {
        model: String,
        ram_size: u64,
        clock_ips: u64,
        rtc_base: i64,
        rom_sha256: Option<[u8; 32]>,
        disks: [Option<DiskIdentity>; 4],
    }
    let a = pc(CpuModel::Legacy);
    let snap = a.save_snapshot();
    let r = SnapshotReader::parse(&snap).unwrap();
    let mut w = SnapshotWriter::new();
    for s in r.sections() {
        if s.name == CONFIG_SECTION {
            assert_eq!(s.version, 3);
            let env: Envelope = postcard::from_bytes(s.data).unwrap();
            let c: SnapshotConfig = postcard::from_bytes(&env.blob).unwrap();
            assert_eq!(c.cpu_model, CpuModel::Legacy);
            let v2 = ConfigV2 {
                model: c.model,
                ram_size: c.ram_size,
                clock_ips: c.clock_ips,
                rtc_base: c.rtc_base,
                rom_sha256: c.rom_sha256,
                disks: c.disks,
            };
            let env = Envelope {
                ram_size: env.ram_size,
                blob: encode(&v2),
            };
            w.add_section(CONFIG_SECTION, 2, encode(&env));
        } else if s.required {
            w.add_section(s.name, s.version, s.data.to_vec());
        } else {
            w.add_optional_section(s.name, s.version, s.data.to_vec());
        }
    }
    let old = w.finish();
    assert_eq!(
        SnapshotConfig::from_snapshot(&old).unwrap().cpu_model,
        CpuModel::Legacy
    );
    let mut b = pc(CpuModel::Legacy);
    b.restore_snapshot(&old).unwrap();
    assert_eq!(b.state_hash(), a.state_hash());
    assert!(pc(CpuModel::PentiumM).restore_snapshot(&old).is_err());
}

/// The model is stored by name: an unknown name is a clear error.
#[test]
fn an_unknown_model_name_in_a_snapshot_is_an_error() {
    let snap = pc(CpuModel::Pentium2).save_snapshot();
    // "pentium2" -> "pentium9": the name is the last thing in the config blob.
    let pos = snap
        .windows(8)
        .position(|w| w == b"pentium2")
        .expect("the model name is in the file");
    let mut bad = snap.clone();
    bad[pos + 7] = b'9';
    // Fix the checksum trailer so that the loader gets as far as the configuration.
    let n = bad.len() - 32;
    let sum: [u8; 32] = {
        use sha2::Digest;
        sha2::Sha256::digest(&bad[..n]).into()
    };
    bad[n..].copy_from_slice(&sum);
    let e = SnapshotConfig::from_snapshot(&bad).unwrap_err().to_string();
    assert!(
        e.contains("CPU model `pentium9` is unknown to this build"),
        "{e}"
    );
}

fn x86emu(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_x86emu"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run x86emu");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code(), text)
}

#[test]
fn cli_cpu_option() {
    let (code, text) = x86emu(&["boot", "--cpu", "pentium5", "--display", "none"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("unknown CPU model 'pentium5': use one of pentium, pentium-mmx, pentium2, pentium3, pentium-m, pentium4, legacy"),
        "{text}"
    );
    let (code, text) = x86emu(&["resume", "x.snap", "--cpu", "486"]);
    assert_eq!(code, Some(2), "{text}");

    // A snapshot of a Pentium III machine: `snapshot info` names the model, resume takes it
    // from the snapshot, and resume with another --cpu is an error.
    let dir = std::env::temp_dir().join(format!("x86emu-cpu-models-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("p3.snap");
    let mut m = pc(CpuModel::Pentium3);
    m.run(1000);
    std::fs::write(&file, m.save_snapshot()).unwrap();
    let f = file.to_str().unwrap();
    let (code, text) = x86emu(&["snapshot", "info", f]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("CPU:             pentium3 (Intel Pentium III (Coppermine), family 6 model 8 stepping 6)"),
        "{text}"
    );
    let run = [
        "--display",
        "none",
        "--max-instructions",
        "5000",
        "--print-state-hash",
    ];
    let (code, text) = x86emu(&[&["resume", f][..], &run].concat());
    assert_eq!(code, Some(124), "{text}");
    let (code2, text2) = x86emu(&[&["resume", f, "--cpu", "pentium3"][..], &run].concat());
    assert_eq!(code2, Some(124), "{text2}");
    let hash = |t: &str| {
        t.lines()
            .find(|l| l.contains("state hash"))
            .map(str::to_string)
    };
    assert_eq!(hash(&text), hash(&text2));
    let (code, text) = x86emu(&[&["resume", f, "--cpu", "pentium4"][..], &run].concat());
    assert_eq!(code, Some(3), "{text}");
    assert!(
        text.contains(
            "the snapshot was taken with CPU model `pentium3`, this machine's CPU is `pentium4`"
        ),
        "{text}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
