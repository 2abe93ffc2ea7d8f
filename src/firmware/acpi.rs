//! ACPI tables for the PC board: RSDP, RSDT, FADT, FACS, MADT and a DSDT.
//!
//! The tables describe exactly the hardware the board emulates: one P6 processor with
//! a local APIC at 0xFEE00000, an IOAPIC at 0xFEC00000 (GSI 0-23), the dual 8259 PICs,
//! the PIIX4-compatible power-management block (SCI on IRQ 9, PM1a event/control, the
//! 24-bit PM timer) and the PCI root bridge. The DSDT's `\_S5` tells the OS which
//! SLP_TYP value powers the machine off ([`S5_SLP_TYP`]).
//!
//! [`AcpiTables::build`] lays the tables out for a given physical address and returns
//! the bytes; the same layout serves direct kernel boot (copied into RAM below 1 MiB
//! where the OS scans for the RSDP) and firmware (SeaBIOS) through fw_cfg.

use super::aml::*;

/// SLP_TYP value of S5 (soft off) on the PIIX4-compatible PM block.
pub const S5_SLP_TYP: u8 = 0;

pub const LAPIC_BASE: u32 = 0xFEE0_0000;
pub const IOAPIC_BASE: u32 = 0xFEC0_0000;
pub const SCI_IRQ: u8 = 9;

const OEM_ID: &[u8; 6] = b"X86EMU";
const OEM_TABLE_ID: &[u8; 8] = b"X86EMUPC";

/// Where the board's power-management registers are.
#[derive(Clone, Copy, Debug)]
pub struct PmPorts {
    /// PM1a event block (PM1_STS, PM1_EN), 4 bytes.
    pub pm1a_evt: u16,
    /// PM1a control block (PM1_CNT), 2 bytes.
    pub pm1a_cnt: u16,
    /// PM timer, 4 bytes (24 bits used).
    pub pm_tmr: u16,
}

/// Set a table's checksum byte so that all bytes sum to zero.
pub fn fix_checksum(t: &mut [u8], at: usize) {
    t[at] = 0;
    let sum = t.iter().fold(0u8, |a, &b| a.wrapping_add(b));
    t[at] = 0u8.wrapping_sub(sum);
}

/// A standard 36-byte SDT header followed by `body`, checksummed.
fn sdt(sig: &[u8; 4], rev: u8, body: &[u8]) -> Vec<u8> {
    let len = 36 + body.len();
    let mut t = Vec::with_capacity(len);
    t.extend_from_slice(sig);
    t.extend_from_slice(&(len as u32).to_le_bytes());
    t.push(rev);
    t.push(0); // checksum
    t.extend_from_slice(OEM_ID);
    t.extend_from_slice(OEM_TABLE_ID);
    t.extend_from_slice(&1u32.to_le_bytes()); // OEM revision
    t.extend_from_slice(b"X86E"); // creator ID
    t.extend_from_slice(&1u32.to_le_bytes()); // creator revision
    t.extend_from_slice(body);
    fix_checksum(&mut t, 9);
    t
}

/// The tables laid out in one blob at `base`.
#[derive(Clone, Debug)]
pub struct AcpiTables {
    pub base: u32,
    pub bytes: Vec<u8>,
    /// Physical address of the RSDP.
    pub rsdp: u32,
    /// Offsets in `bytes` of 32-bit physical pointers (relative to `base`).
    pub pointers: Vec<usize>,
    /// Tables as (offset, length, checksum byte offset).
    pub checksums: Vec<(usize, usize, usize)>,
}

fn align16(v: &mut Vec<u8>) {
    while v.len() % 16 != 0 {
        v.push(0);
    }
}

impl AcpiTables {
    /// Build the tables at physical address `base` (16-byte aligned; the RSDP comes
    /// first so an OS scanning 0xE0000-0xFFFFF finds it when `base` is in that range).
    pub fn build(base: u32, pm: PmPorts) -> AcpiTables {
        let dsdt = dsdt();
        let facs = facs();
        let madt = madt();
        // Layout: RSDP | RSDT | FADT | FACS (64-byte aligned) | MADT | DSDT.
        let mut out = vec![0u8; 20];
        align16(&mut out);
        let rsdt_off = out.len();
        let rsdt_len = 36 + 2 * 4;
        let fadt_off = rsdt_off + rsdt_len;
        let fadt_len = 36 + 80;
        let mut facs_off = fadt_off + fadt_len;
        facs_off = (facs_off + 63) & !63;
        let madt_off = facs_off + facs.len();
        let dsdt_off = madt_off + madt.len();
        let at = |off: usize| base + off as u32;

        let fadt = fadt(at(facs_off), at(dsdt_off), pm);
        let mut rsdt_body = Vec::new();
        rsdt_body.extend_from_slice(&at(fadt_off).to_le_bytes());
        rsdt_body.extend_from_slice(&at(madt_off).to_le_bytes());
        let rsdt = sdt(b"RSDT", 1, &rsdt_body);
        debug_assert_eq!(rsdt.len(), rsdt_len);
        debug_assert_eq!(fadt.len(), fadt_len);

        out.resize(dsdt_off + dsdt.len(), 0);
        out[rsdt_off..rsdt_off + rsdt.len()].copy_from_slice(&rsdt);
        out[fadt_off..fadt_off + fadt.len()].copy_from_slice(&fadt);
        out[facs_off..facs_off + facs.len()].copy_from_slice(&facs);
        out[madt_off..madt_off + madt.len()].copy_from_slice(&madt);
        out[dsdt_off..].copy_from_slice(&dsdt);

        // RSDP (ACPI 1.0, 20 bytes).
        let mut rsdp = Vec::with_capacity(20);
        rsdp.extend_from_slice(b"RSD PTR ");
        rsdp.push(0);
        rsdp.extend_from_slice(OEM_ID);
        rsdp.push(0); // revision 0 = ACPI 1.0
        rsdp.extend_from_slice(&at(rsdt_off).to_le_bytes());
        fix_checksum(&mut rsdp, 8);
        out[..20].copy_from_slice(&rsdp);
        AcpiTables {
            base,
            bytes: out,
            rsdp: base,
            pointers: vec![
                16,
                rsdt_off + 36,
                rsdt_off + 40,
                fadt_off + 36,
                fadt_off + 40,
            ],
            checksums: vec![
                (0, 20, 8),
                (rsdt_off, rsdt.len(), rsdt_off + 9),
                (fadt_off, fadt.len(), fadt_off + 9),
                (madt_off, madt.len(), madt_off + 9),
                (dsdt_off, dsdt.len(), dsdt_off + 9),
            ],
        }
    }

    /// The files for QEMU's fw_cfg table loader (`etc/table-loader`, `etc/acpi/tables`,
    /// `etc/acpi/rsdp`), as SeaBIOS consumes them: it allocates the files, patches the
    /// pointers with the allocated addresses and recomputes the checksums.
    pub fn fw_cfg_files(pm: PmPorts) -> Vec<(String, Vec<u8>)> {
        const TABLES: &str = "etc/acpi/tables";
        const RSDP: &str = "etc/acpi/rsdp";
        let mut t = AcpiTables::build(0, pm);
        let rsdp = t.bytes[..20].to_vec();
        // The RSDP travels in its own file; its slot in the tables blob stays unused.
        t.bytes[..20].fill(0);
        let mut loader = Vec::new();
        let mut cmd = |c: u32, args: &[&[u8]]| {
            let mut e = vec![0u8; 128];
            e[..4].copy_from_slice(&c.to_le_bytes());
            let mut at = 4;
            for a in args {
                e[at..at + a.len()].copy_from_slice(a);
                at += a.len();
            }
            loader.extend_from_slice(&e);
        };
        let fname = |n: &str| {
            let mut b = [0u8; 56];
            b[..n.len()].copy_from_slice(n.as_bytes());
            b
        };
        // ALLOCATE(file, align, zone): HIGH = 1, FSEG = 2.
        cmd(1, &[&fname(RSDP), &16u32.to_le_bytes(), &[2]]);
        cmd(1, &[&fname(TABLES), &64u32.to_le_bytes(), &[1]]);
        // ADD_POINTER(dest, src, offset, size).
        cmd(
            2,
            &[&fname(RSDP), &fname(TABLES), &16u32.to_le_bytes(), &[4]],
        );
        for &p in &t.pointers[1..] {
            cmd(
                2,
                &[
                    &fname(TABLES),
                    &fname(TABLES),
                    &(p as u32).to_le_bytes(),
                    &[4],
                ],
            );
        }
        // ADD_CHECKSUM(file, result offset, start, length).
        cmd(
            3,
            &[
                &fname(RSDP),
                &8u32.to_le_bytes(),
                &0u32.to_le_bytes(),
                &20u32.to_le_bytes(),
            ],
        );
        for &(start, len, at) in &t.checksums[1..] {
            cmd(
                3,
                &[
                    &fname(TABLES),
                    &(at as u32).to_le_bytes(),
                    &(start as u32).to_le_bytes(),
                    &(len as u32).to_le_bytes(),
                ],
            );
        }
        vec![
            ("etc/table-loader".to_string(), loader),
            (TABLES.to_string(), t.bytes),
            (RSDP.to_string(), rsdp),
        ]
    }
}

/// FADT revision 1 (ACPI 1.0 layout, 116 bytes).
fn fadt(facs: u32, dsdt: u32, pm: PmPorts) -> Vec<u8> {
    let mut b = Vec::with_capacity(80);
    b.extend_from_slice(&facs.to_le_bytes());
    b.extend_from_slice(&dsdt.to_le_bytes());
    b.push(0); // INT_MODEL (ACPI 1.0) / reserved
    b.push(0); // preferred PM profile: unspecified
    b.extend_from_slice(&(SCI_IRQ as u16).to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes()); // SMI_CMD: none, ACPI mode is always on
    b.push(0); // ACPI_ENABLE
    b.push(0); // ACPI_DISABLE
    b.push(0); // S4BIOS_REQ
    b.push(0); // PSTATE_CNT
    b.extend_from_slice(&(pm.pm1a_evt as u32).to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes()); // PM1b_EVT_BLK
    b.extend_from_slice(&(pm.pm1a_cnt as u32).to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes()); // PM1b_CNT_BLK
    b.extend_from_slice(&0u32.to_le_bytes()); // PM2_CNT_BLK
    b.extend_from_slice(&(pm.pm_tmr as u32).to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes()); // GPE0_BLK
    b.extend_from_slice(&0u32.to_le_bytes()); // GPE1_BLK
    b.push(4); // PM1_EVT_LEN
    b.push(2); // PM1_CNT_LEN
    b.push(0); // PM2_CNT_LEN
    b.push(4); // PM_TMR_LEN
    b.push(0); // GPE0_BLK_LEN
    b.push(0); // GPE1_BLK_LEN
    b.push(0); // GPE1_BASE
    b.push(0); // CST_CNT
    b.extend_from_slice(&0xFFFFu16.to_le_bytes()); // P_LVL2_LAT: C2 not supported
    b.extend_from_slice(&0xFFFFu16.to_le_bytes()); // P_LVL3_LAT: C3 not supported
    b.extend_from_slice(&0u16.to_le_bytes()); // FLUSH_SIZE
    b.extend_from_slice(&0u16.to_le_bytes()); // FLUSH_STRIDE
    b.push(0); // DUTY_OFFSET
    b.push(0); // DUTY_WIDTH
    b.push(0x0D); // DAY_ALRM: RTC day-of-month alarm register
    b.push(0); // MON_ALRM
    b.push(0x32); // CENTURY: RTC century register
    b.extend_from_slice(&0u16.to_le_bytes()); // IAPC_BOOT_ARCH (reserved in 1.0)
    b.push(0); // reserved
               // Flags: WBINVD (0), PROC_C1 (2), PWR_BUTTON as control method/absent (4),
               // SLP_BUTTON absent (5), RTC_S4 (7).
    let flags: u32 = 1 << 0 | 1 << 2 | 1 << 4 | 1 << 5 | 1 << 7;
    b.extend_from_slice(&flags.to_le_bytes());
    sdt(b"FACP", 1, &b)
}

fn facs() -> Vec<u8> {
    let mut f = vec![0u8; 64];
    f[0..4].copy_from_slice(b"FACS");
    f[4..8].copy_from_slice(&64u32.to_le_bytes());
    f
}

/// MADT: the local APIC, the IOAPIC and the ISA interrupt overrides of a PC.
fn madt() -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&LAPIC_BASE.to_le_bytes());
    b.extend_from_slice(&1u32.to_le_bytes()); // PCAT_COMPAT: dual 8259s present
                                              // Processor local APIC: ACPI id 0, APIC id 0, enabled.
    b.extend_from_slice(&[0, 8, 0, 0]);
    b.extend_from_slice(&1u32.to_le_bytes());
    // IOAPIC id 1 at IOAPIC_BASE, GSI base 0.
    b.extend_from_slice(&[1, 12, 1, 0]);
    b.extend_from_slice(&IOAPIC_BASE.to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    // Interrupt source overrides: IRQ0 -> GSI 2 (the PIT on IOAPIC pin 2),
    // IRQ9 (SCI) level, active high.
    for &(irq, gsi, flags) in &[(0u8, 2u32, 0u16), (SCI_IRQ, SCI_IRQ as u32, 0x000D)] {
        b.extend_from_slice(&[2, 10, 0, irq]);
        b.extend_from_slice(&gsi.to_le_bytes());
        b.extend_from_slice(&flags.to_le_bytes());
    }
    // Local APIC NMI on LINT1 for all processors.
    b.extend_from_slice(&[4, 6, 0xFF, 0, 0, 1]);
    sdt(b"APIC", 1, &b)
}

/// DSDT: the PCI root bridge with its resources and the sleep-state package.
fn dsdt() -> Vec<u8> {
    let mut crs = ResourceTemplate::new();
    crs.word_bus_number(0, 0xFF);
    crs.io(0xCF8, 8);
    crs.word_io(0x0000, 0x0CF7);
    crs.word_io(0x0D00, 0xFFFF);
    crs.dword_memory(0x000A_0000, 0x000B_FFFF);
    crs.dword_memory(0xE000_0000, 0xFEBF_FFFF);
    let pci0 = device(
        "PCI0",
        &[
            name("_HID", &eisa_id("PNP0A03")),
            name("_ADR", &integer(0)),
            name("_UID", &integer(0)),
            name("_BBN", &integer(0)),
            name("_CRS", &crs.finish()),
        ],
    );
    let sb = scope("\\_SB_", &[pci0]);
    let s5 = name(
        "_S5_",
        &package(&[
            integer(S5_SLP_TYP as u64),
            integer(S5_SLP_TYP as u64),
            integer(0),
            integer(0),
        ]),
    );
    let mut body = Vec::new();
    body.extend_from_slice(&sb);
    body.extend_from_slice(&s5);
    sdt(b"DSDT", 1, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum(b: &[u8]) -> u8 {
        b.iter().fold(0u8, |a, &x| a.wrapping_add(x))
    }

    fn table_at(t: &AcpiTables, addr: u32) -> &[u8] {
        let off = (addr - t.base) as usize;
        let len = u32::from_le_bytes(t.bytes[off + 4..off + 8].try_into().unwrap()) as usize;
        &t.bytes[off..off + len]
    }

    #[test]
    fn tables_link_up_and_checksum() {
        let pm = PmPorts {
            pm1a_evt: 0xB000,
            pm1a_cnt: 0xB004,
            pm_tmr: 0xB008,
        };
        let t = AcpiTables::build(0xE_0000, pm);
        let rsdp = &t.bytes[..20];
        assert_eq!(&rsdp[..8], b"RSD PTR ");
        assert_eq!(sum(rsdp), 0);
        let rsdt_addr = u32::from_le_bytes(rsdp[16..20].try_into().unwrap());
        let rsdt = table_at(&t, rsdt_addr);
        assert_eq!(&rsdt[..4], b"RSDT");
        assert_eq!(sum(rsdt), 0);
        let fadt = table_at(&t, u32::from_le_bytes(rsdt[36..40].try_into().unwrap()));
        assert_eq!(&fadt[..4], b"FACP");
        assert_eq!(sum(fadt), 0);
        assert_eq!(fadt.len(), 116);
        let madt = table_at(&t, u32::from_le_bytes(rsdt[40..44].try_into().unwrap()));
        assert_eq!(&madt[..4], b"APIC");
        assert_eq!(sum(madt), 0);
        let facs_addr = u32::from_le_bytes(fadt[36..40].try_into().unwrap());
        assert_eq!(facs_addr % 64, 0);
        let dsdt = table_at(&t, u32::from_le_bytes(fadt[40..44].try_into().unwrap()));
        assert_eq!(&dsdt[..4], b"DSDT");
        assert_eq!(sum(dsdt), 0);
        assert_eq!(u16::from_le_bytes(fadt[46..48].try_into().unwrap()), 9);
        assert_eq!(u32::from_le_bytes(fadt[64..68].try_into().unwrap()), 0xB004);
        for &p in &t.pointers {
            let v = u32::from_le_bytes(t.bytes[p..p + 4].try_into().unwrap());
            assert!(v >= t.base && ((v - t.base) as usize) < t.bytes.len());
        }
    }

    #[test]
    fn table_loader_relocates_like_firmware() {
        let pm = PmPorts {
            pm1a_evt: 0xB000,
            pm1a_cnt: 0xB004,
            pm_tmr: 0xB008,
        };
        let files = AcpiTables::fw_cfg_files(pm);
        let loader = &files[0].1;
        assert_eq!(loader.len() % 128, 0);
        // Replay the loader the way SeaBIOS does, with the tables at 0x7FE0000.
        let mut tables = files[1].1.clone();
        let mut rsdp = files[2].1.clone();
        let at = 0x07FE_0000u32;
        for e in loader.chunks(128) {
            let cmd = u32::from_le_bytes(e[..4].try_into().unwrap());
            let name = |o: usize| {
                let n = &e[o..o + 56];
                String::from_utf8_lossy(&n[..n.iter().position(|&b| b == 0).unwrap()]).to_string()
            };
            let u32_at = |o: usize| u32::from_le_bytes(e[o..o + 4].try_into().unwrap()) as usize;
            match cmd {
                2 => {
                    let off = u32_at(116);
                    let buf = if name(4) == "etc/acpi/rsdp" {
                        &mut rsdp
                    } else {
                        &mut tables
                    };
                    let v = u32::from_le_bytes(buf[off..off + 4].try_into().unwrap()) + at;
                    buf[off..off + 4].copy_from_slice(&v.to_le_bytes());
                }
                3 => {
                    let (res, start, len) = (u32_at(60), u32_at(64), u32_at(68));
                    let buf = if name(4) == "etc/acpi/rsdp" {
                        &mut rsdp
                    } else {
                        &mut tables
                    };
                    buf[res] = 0;
                    let s = sum(&buf[start..start + len]);
                    buf[res] = 0u8.wrapping_sub(s);
                }
                _ => {}
            }
        }
        let reference = AcpiTables::build(at, pm);
        assert_eq!(tables[20..], reference.bytes[20..]);
        assert_eq!(&rsdp[..], &reference.bytes[..20]);
    }
}

#[cfg(test)]
mod iasl {
    use super::*;

    /// Disassemble our DSDT with ACPICA's `iasl` (Debian package `acpica-tools`), a
    /// decoder nobody here wrote. Runs when iasl is installed; CI installs it.
    #[test]
    fn dsdt_disassembles_with_iasl() {
        let Ok(out) = std::process::Command::new("iasl").arg("-v").output() else {
            panic!("iasl not found: apt-get install acpica-tools");
        };
        assert!(out.status.success());
        let dir = std::env::temp_dir().join(format!("x86emu-iasl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pm = PmPorts {
            pm1a_evt: 0xB000,
            pm1a_cnt: 0xB004,
            pm_tmr: 0xB008,
        };
        let t = AcpiTables::build(0xE_0000, pm);
        let mut found = 0;
        for (sig, file) in [
            (b"DSDT", "dsdt.dat"),
            (b"APIC", "apic.dat"),
            (b"FACP", "facp.dat"),
        ] {
            let off = t.bytes.windows(4).position(|w| w == sig).unwrap();
            let len = u32::from_le_bytes(t.bytes[off + 4..off + 8].try_into().unwrap()) as usize;
            let path = dir.join(file);
            std::fs::write(&path, &t.bytes[off..off + len]).unwrap();
            let r = std::process::Command::new("iasl")
                .arg("-d")
                .arg(&path)
                .output()
                .unwrap();
            let dsl = std::fs::read_to_string(path.with_extension("dsl")).unwrap_or_default();
            assert!(
                r.status.success() && !dsl.is_empty(),
                "iasl failed on {file}: {}{}",
                String::from_utf8_lossy(&r.stdout),
                String::from_utf8_lossy(&r.stderr)
            );
            assert!(!dsl.contains("Invalid"), "{file}:\n{dsl}");
            if sig == b"DSDT" {
                assert!(dsl.contains("PNP0A03") && dsl.contains("_S5_"), "{dsl}");
                assert!(
                    dsl.contains("WordBusNumber") && dsl.contains("DWordMemory"),
                    "{dsl}"
                );
            }
            found += 1;
        }
        assert_eq!(found, 3);
        if std::env::var_os("X86EMU_KEEP_IASL").is_none() {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}
