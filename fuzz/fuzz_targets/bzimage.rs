//! The kernel loaders (`x86emu::boot`) never panic on hostile images, and every plan they
//! accept stays inside RAM with no two pieces overlapping.
//!
//! The first input byte picks the RAM size and how the rest is used: as a raw kernel file,
//! or patched over a valid synthetic bzImage header, Multiboot a.out-kludge header or ELF
//! header (so mutations start from images that get past the signatures).
#![no_main]
use libfuzzer_sys::fuzz_target;
use x86emu::boot::{detect, e820, load_linux, load_multiboot, E820Entry, KernelKind, LoadRegion};

const RAM: [u32; 8] = [
    0,
    1 << 20,
    2 << 20,
    8 << 20,
    33 << 20,
    64 << 20,
    0xE000_0000,
    u32::MAX,
];

fn bzimage_template() -> Vec<u8> {
    let mut k = vec![0u8; 5 * 512 + 0x400];
    k[0x1F1] = 4;
    k[0x1F4..0x1F8].copy_from_slice(&0x40u32.to_le_bytes());
    k[0x1FE..0x200].copy_from_slice(&0xAA55u16.to_le_bytes());
    k[0x200] = 0xEB;
    k[0x201] = 0x6A;
    k[0x202..0x206].copy_from_slice(b"HdrS");
    k[0x206..0x208].copy_from_slice(&0x020Fu16.to_le_bytes());
    k[0x211] = 1;
    k[0x214..0x218].copy_from_slice(&0x10_0000u32.to_le_bytes());
    k[0x22C..0x230].copy_from_slice(&0x7FFF_FFFFu32.to_le_bytes());
    k[0x230..0x234].copy_from_slice(&0x20_0000u32.to_le_bytes());
    k[0x234] = 1;
    k[0x238..0x23C].copy_from_slice(&2047u32.to_le_bytes());
    k[0x258..0x260].copy_from_slice(&0x100_0000u64.to_le_bytes());
    k[0x260..0x264].copy_from_slice(&0x10_0000u32.to_le_bytes());
    k
}

fn multiboot_template(elf: bool) -> Vec<u8> {
    let mut k = vec![0u8; 0x2000];
    let flags: u32 = if elf { 3 } else { 0x0001_0003 };
    let magic = 0x1BAD_B002u32;
    let off = if elf { 0x1000 } else { 0x40 };
    for (i, v) in [magic, flags, 0u32.wrapping_sub(magic).wrapping_sub(flags)]
        .iter()
        .chain(&[0x10_0040, 0x10_0000, 0x10_1000, 0x10_3000, 0x10_0080])
        .enumerate()
    {
        k[off + 4 * i..off + 4 * i + 4].copy_from_slice(&v.to_le_bytes());
    }
    if elf {
        k[0..7].copy_from_slice(b"\x7fELF\x01\x01\x01");
        k[16..20].copy_from_slice(&[2, 0, 3, 0]);
        k[24..28].copy_from_slice(&0xC010_0010u32.to_le_bytes());
        k[28..32].copy_from_slice(&52u32.to_le_bytes());
        k[42..46].copy_from_slice(&[32, 0, 2, 0]);
        for (i, v) in [
            1u32,
            0x1000,
            0xC010_0000,
            0x10_0000,
            0x1000,
            0x3000,
            5,
            0x1000,
        ]
        .iter()
        .enumerate()
        {
            k[52 + 4 * i..56 + 4 * i].copy_from_slice(&v.to_le_bytes());
        }
        k[84] = 1; // second header: PT_LOAD with fields from the fuzzer
    }
    k
}

fn check(regions: &[LoadRegion], zero_fill: &[(u32, u32)], map: &[E820Entry], ram: u32) {
    let mut spans: Vec<(u64, u64)> = regions.iter().map(|r| (r.addr as u64, r.end())).collect();
    spans.extend(
        zero_fill
            .iter()
            .map(|&(a, l)| (a as u64, a as u64 + l as u64)),
    );
    spans.sort_unstable();
    for w in spans.windows(2) {
        assert!(w[0].1 <= w[1].0, "overlapping load regions {w:x?}");
    }
    for &(a, e) in &spans {
        assert!(e <= ram as u64, "region {a:#x}..{e:#x} beyond RAM {ram:#x}");
        assert!(
            e820::is_ram(map, a, (e - a).max(1)),
            "region {a:#x}..{e:#x} not in RAM"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let ram = RAM[(sel & 7) as usize];
    // Up to 64 bytes of the tail become the initrd (sizes matter, contents do not).
    let (rest, initrd) = rest.split_at(rest.len() - rest.len().min(64));
    let initrd_len = initrd
        .first()
        .map_or(0, |&b| b as usize * 4096 + initrd.len());
    let initrd = vec![0u8; initrd_len];
    let kernel = match sel >> 3 & 3 {
        0 => rest.to_vec(),
        mode => {
            let (mut k, at) = match mode {
                1 => (bzimage_template(), 0x1F1),
                2 => (multiboot_template(false), 0x40),
                _ => (multiboot_template(true), 0),
            };
            let n = rest.len().min(k.len() - at).min(0x100);
            k[at..at + n].copy_from_slice(&rest[..n]);
            k.extend_from_slice(&rest[n..]);
            k
        }
    };
    let kind = detect(&kernel);
    let cmdline = if sel & 0x20 != 0 { "console=ttyS0" } else { "" };
    match load_linux(&kernel, Some(&initrd), cmdline, ram) {
        Ok(s) => {
            assert_eq!(kind, KernelKind::BzImage);
            check(&s.regions, &[], &s.e820, ram);
            assert_eq!(s.entry.eip, s.kernel_addr);
            assert!(s
                .initrd
                .map_or(true, |(a, l)| a as u64 >= s.kernel_footprint.1
                    && l as usize == initrd.len()));
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    match load_multiboot(&kernel, Some(&initrd), cmdline, ram) {
        Ok(s) => {
            assert_ne!(kind, KernelKind::Unknown);
            check(&s.regions, &s.zero_fill, &s.e820, ram);
            assert!(s.kernel_range.0 <= s.entry.eip && s.entry.eip < s.kernel_range.1);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
