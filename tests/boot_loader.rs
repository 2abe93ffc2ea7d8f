//! The firmware-less kernel loaders (`x86emu::boot`): Linux bzImage and Multiboot v1.
//!
//! - `real_debian_bzimage` parses the Debian test guest's kernel. It needs the guest
//!   built by `test-roms/linux/build.sh` (root + apt, about a minute; output in
//!   `target/linux-guest`, or set `X86EMU_LINUX_GUEST_DIR`) and fails when it is missing.
//! - Everything else builds synthetic images in the test and always runs: the zero page
//!   and E820 layout, initrd placement rules, Multiboot a.out-kludge and ELF kernels with
//!   modules, and hostile images (truncated, wrong magic, absurd sizes, random
//!   corruption) that must give errors, never panics.

use std::path::PathBuf;

use x86emu::boot::{
    self, detect, e820, flat_gdt_bytes, load_linux, load_linux_with, load_multiboot,
    load_multiboot_with, BootError, E820Entry, E820Type, KernelKind, LinuxBootOptions,
    MultibootModule, MultibootOptions,
};

const MIB: u32 = 1 << 20;

fn u16_at(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes(b[o..o + 2].try_into().unwrap())
}
fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

/// Copy a plan's regions into a flat RAM image, checking they fit and do not overlap.
fn apply(regions: &[boot::LoadRegion], zero_fill: &[(u32, u32)], ram: u32) -> Vec<u8> {
    let mut spans: Vec<(u64, u64, &str)> = regions
        .iter()
        .map(|r| (r.addr as u64, r.end(), r.what))
        .chain(
            zero_fill
                .iter()
                .map(|&(a, l)| (a as u64, a as u64 + l as u64, "zero fill")),
        )
        .collect();
    spans.sort();
    for w in spans.windows(2) {
        assert!(w[0].1 <= w[1].0, "{:?} overlaps {:?}", w[0], w[1]);
    }
    let mut mem = vec![0xCCu8; ram as usize];
    for r in regions {
        assert!(r.end() <= ram as u64, "{r:?} beyond RAM");
        mem[r.addr as usize..r.end() as usize].copy_from_slice(&r.bytes);
    }
    for &(a, l) in zero_fill {
        mem[a as usize..(a + l) as usize].fill(0);
    }
    mem
}

fn cstr(mem: &[u8], addr: u32) -> String {
    let s = &mem[addr as usize..];
    String::from_utf8(s[..s.iter().position(|&b| b == 0).unwrap()].to_vec()).unwrap()
}

// ------------------------------------------------------------------ synthetic bzImage

/// Header fields of a synthetic bzImage.
#[derive(Clone)]
struct Bz {
    version: u16,
    setup_sects: u8,
    pm_len: usize,
    loadflags: u8,
    relocatable: bool,
    kernel_alignment: u32,
    initrd_addr_max: u32,
    cmdline_size: u32,
    pref_address: u64,
    init_size: u32,
}

impl Default for Bz {
    fn default() -> Bz {
        Bz {
            version: 0x020F,
            setup_sects: 4,
            pm_len: 0x4000,
            loadflags: 0x01,
            relocatable: true,
            kernel_alignment: 0x20_0000,
            initrd_addr_max: 0x7FFF_FFFF,
            cmdline_size: 2047,
            pref_address: 0x100_0000,
            init_size: 0x80_0000,
        }
    }
}

impl Bz {
    fn build(&self) -> Vec<u8> {
        let setup = (self.setup_sects.max(1) as usize + 1) * 512;
        let mut k = vec![0u8; setup + self.pm_len];
        k[0x1F1] = self.setup_sects;
        k[0x1F4..0x1F8].copy_from_slice(&(self.pm_len.div_ceil(16) as u32).to_le_bytes());
        k[0x1FE..0x200].copy_from_slice(&0xAA55u16.to_le_bytes());
        k[0x200] = 0xEB; // jmp short to the end of the header
        k[0x201] = 0x6A;
        k[0x202..0x206].copy_from_slice(b"HdrS");
        k[0x206..0x208].copy_from_slice(&self.version.to_le_bytes());
        k[0x20E..0x210].copy_from_slice(&0x100u16.to_le_bytes()); // version string at 0x300
        k[0x300..0x300 + 21].copy_from_slice(b"9.9.9-synthetic (x) \0");
        k[0x211] = self.loadflags;
        k[0x214..0x218].copy_from_slice(&0x10_0000u32.to_le_bytes());
        k[0x22C..0x230].copy_from_slice(&self.initrd_addr_max.to_le_bytes());
        k[0x230..0x234].copy_from_slice(&self.kernel_alignment.to_le_bytes());
        k[0x234] = self.relocatable as u8;
        k[0x238..0x23C].copy_from_slice(&self.cmdline_size.to_le_bytes());
        k[0x258..0x260].copy_from_slice(&self.pref_address.to_le_bytes());
        k[0x260..0x264].copy_from_slice(&self.init_size.to_le_bytes());
        // protected-mode kernel: a recognisable pattern
        for (i, b) in k[setup..].iter_mut().enumerate() {
            *b = (i * 7 + 3) as u8;
        }
        k
    }
}

#[test]
fn synthetic_bzimage_plan_and_zero_page() {
    let kernel = Bz::default().build();
    assert_eq!(detect(&kernel), KernelKind::BzImage);
    let initrd = vec![0x5Au8; 300_000];
    let ram = 64 * MIB;
    let s = load_linux(&kernel, Some(&initrd), "console=ttyS0 quiet", ram).unwrap();

    assert_eq!(s.header.version, 0x020F);
    assert_eq!(s.header.setup_size, 5 * 512);
    assert_eq!(
        s.header.kernel_version.as_deref(),
        Some("9.9.9-synthetic (x) ")
    );
    assert_eq!(s.kernel_addr, 0x10_0000);
    assert_eq!(s.kernel_size, 0x4000);
    // relocatable at 1 MiB with alignment 2 MiB: decompresses at pref_address (16 MiB)
    assert_eq!(s.kernel_footprint, (0x100_0000, 0x180_0000));

    // initrd: top of RAM, 4K aligned
    let (ia, is) = s.initrd.unwrap();
    assert_eq!(is as usize, initrd.len());
    assert_eq!(ia, (ram - is) & !0xFFF);

    // entry state per the 32-bit boot protocol
    assert_eq!(s.entry.eip, 0x10_0000);
    assert_eq!(s.entry.esi, s.zero_page_addr);
    assert_eq!((s.entry.ebx, s.entry.ebp, s.entry.edi), (0, 0, 0));
    assert_eq!(s.entry.eflags & 0x200, 0, "interrupts off");
    assert_eq!((s.entry.gdt.cs, s.entry.gdt.ds), (0x10, 0x18));
    assert_eq!(s.entry.cr0 & 0x8000_0001, 1, "PE on, PG off");

    let mem = apply(&s.regions, &[], ram);
    let g = s.entry.gdt.base as usize;
    assert_eq!(mem[g..g + 32], flat_gdt_bytes());
    assert_eq!(&mem[0x10_0000..0x10_4000], &kernel[5 * 512..]);
    assert_eq!(&mem[ia as usize..(ia + is) as usize], &initrd[..]);
    assert_eq!(cstr(&mem, s.cmdline_addr), "console=ttyS0 quiet");

    let zp = &mem[s.zero_page_addr as usize..][..4096];
    // the setup header is copied...
    assert_eq!(&zp[0x202..0x206], b"HdrS");
    assert_eq!(u16_at(zp, 0x1FE), 0xAA55);
    assert_eq!(u16_at(zp, 0x206), 0x020F);
    assert_eq!(u32_at(zp, 0x260), 0x80_0000);
    // ...and completed by the loader
    assert_eq!(zp[0x210], 0xFF, "type_of_loader");
    assert_eq!(zp[0x211] & 1, 1, "LOADED_HIGH kept");
    assert_eq!(u16_at(zp, 0x1FA), 0xFFFF, "vid_mode");
    assert_eq!(u32_at(zp, 0x214), 0x10_0000, "code32_start");
    assert_eq!(u32_at(zp, 0x218), ia, "ramdisk_image");
    assert_eq!(u32_at(zp, 0x21C), is, "ramdisk_size");
    assert_eq!(u32_at(zp, 0x228), s.cmdline_addr, "cmd_line_ptr");
    assert_eq!(zp[0x1EF], 0, "sentinel");
    // memory sizes
    assert_eq!(u16_at(zp, 0x002) as u32, (ram - MIB) / 1024, "ext_mem_k");
    assert_eq!(u32_at(zp, 0x1E0), (ram - MIB) / 1024, "alt_mem_k");
    // screen_info: 80x25 colour VGA text
    assert_eq!((zp[0x06], zp[0x07], zp[0x0E], zp[0x0F]), (3, 80, 25, 1));
    assert_eq!(u16_at(zp, 0x10), 16);
    // e820 table
    assert_eq!(zp[0x1E8], 3);
    let e = |i: usize| {
        let o = 0x2D0 + 20 * i;
        (u64_at(zp, o), u64_at(zp, o + 8), u32_at(zp, o + 16))
    };
    assert_eq!(e(0), (0, 0x9F000, 1));
    assert_eq!(e(1), (0x9F000, 0x61000, 2));
    assert_eq!(e(2), (0x10_0000, (ram - MIB) as u64, 1));
    assert_eq!(e(3), (0, 0, 0));
}

#[test]
fn bzimage_without_initrd_and_options() {
    let kernel = Bz::default().build();
    let mut opts = LinuxBootOptions::new(64 * MIB);
    opts.e820_extra
        .push(E820Entry::new(0x3F0_0000, 0x10_0000, E820Type::Acpi));
    opts.acpi_rsdp = Some(0xF_0000);
    opts.vga_text = false;
    let initrd = vec![1u8; 0x2000];
    let s = load_linux_with(&kernel, Some(&initrd), "", &opts).unwrap();
    // the initrd avoids the ACPI range at the top
    assert_eq!(s.initrd, Some((0x3F0_0000 - 0x2000, 0x2000)));
    let zp = &s
        .regions
        .iter()
        .find(|r| r.what == "zero page")
        .unwrap()
        .bytes;
    assert_eq!(zp[0x1E8], 4);
    assert_eq!(u32_at(zp, 0x2D0 + 3 * 20 + 16), 3, "ACPI range type");
    assert_eq!(u64_at(zp, 0x070), 0xF_0000, "acpi_rsdp_addr");
    assert_eq!(zp[0x0F], 0, "no VGA");
    // empty initrd = none
    let s = load_linux(&kernel, Some(&[]), "", 64 * MIB).unwrap();
    assert_eq!(s.initrd, None);
    assert!(s.regions.iter().all(|r| r.what != "initrd"));
    let zp = &s
        .regions
        .iter()
        .find(|r| r.what == "zero page")
        .unwrap()
        .bytes;
    assert_eq!((u32_at(zp, 0x218), u32_at(zp, 0x21C)), (0, 0));
}

#[test]
fn initrd_placement_rules() {
    let ram = 256 * MIB;
    // initrd_addr_max below the end of RAM caps the placement
    let kernel = Bz {
        initrd_addr_max: 0x37FF_FFFF >> 2, // 224 MiB - 1
        ..Bz::default()
    }
    .build();
    let s = load_linux(&kernel, Some(&[7u8; 10_000]), "", ram).unwrap();
    let (a, l) = s.initrd.unwrap();
    assert!(a as u64 + l as u64 <= 0x0E00_0000);
    assert_eq!(a, (0x0E00_0000 - 10_000) & !0xFFF);

    // never inside the decompression buffer: an initrd that would have to overlap it fails
    let kernel = Bz::default().build(); // buffer 16..24 MiB
    let too_big = vec![0u8; 9 * MIB as usize];
    match load_linux(&kernel, Some(&too_big), "", 32 * MIB) {
        Err(BootError::InitrdTooLarge { size, room, .. }) => {
            assert_eq!(size, 9 * MIB as u64);
            assert_eq!(room, 8 * MIB as u64);
        }
        other => panic!("{other:?}"),
    }
    // exactly fitting works
    let fits = vec![0u8; 8 * MIB as usize];
    let s = load_linux(&kernel, Some(&fits), "", 32 * MIB).unwrap();
    assert_eq!(s.initrd, Some((24 * MIB, 8 * MIB)));

    // a non-relocatable kernel decompresses at pref_address too
    let kernel = Bz {
        relocatable: false,
        kernel_alignment: 0,
        ..Bz::default()
    }
    .build();
    let s = load_linux(&kernel, None, "", 32 * MIB).unwrap();
    assert_eq!(s.kernel_footprint, (0x100_0000, 0x180_0000));
}

#[test]
fn bzimage_errors() {
    let good = Bz::default().build();
    let err = |k: &[u8], ram: u32| load_linux(k, None, "", ram).unwrap_err();

    // truncation at every length up to past the header, and in the kernel body
    for len in (0..0x300).chain([good.len() - 17, good.len() - 1]) {
        let e = err(&good[..len], 64 * MIB);
        assert!(
            matches!(e, BootError::Truncated { .. } | BootError::BadMagic { .. }),
            "len {len}: {e:?}"
        );
    }
    let mut k = good.clone();
    k[0x202] = b'X';
    assert!(matches!(err(&k, 64 * MIB), BootError::BadMagic { .. }));
    assert_eq!(detect(&k), KernelKind::Unknown);
    let mut k = good.clone();
    k[0x1FE] = 0;
    assert!(matches!(err(&k, 64 * MIB), BootError::BadMagic { .. }));

    let old = Bz {
        version: 0x0205,
        ..Bz::default()
    }
    .build();
    let e = err(&old, 64 * MIB);
    assert_eq!(
        e,
        BootError::ProtocolTooOld {
            version: 0x0205,
            min: 0x0206
        }
    );
    assert!(e.to_string().contains("2.05"), "{e}");

    let zimage = Bz {
        loadflags: 0,
        ..Bz::default()
    }
    .build();
    assert_eq!(err(&zimage, 64 * MIB), BootError::NotLoadedHigh);

    let mut k = good.clone();
    k[0x1F4..0x1F8].copy_from_slice(&u32::MAX.to_le_bytes()); // syssize: 64 GiB
    assert!(matches!(err(&k, 64 * MIB), BootError::Truncated { .. }));
    k[0x1F4..0x1F8].copy_from_slice(&0u32.to_le_bytes());
    assert!(matches!(err(&k, 64 * MIB), BootError::BadField { .. }));

    let k = Bz {
        kernel_alignment: 0x30_0000,
        ..Bz::default()
    }
    .build();
    assert!(matches!(
        err(&k, 64 * MIB),
        BootError::BadField {
            field: "kernel_alignment",
            ..
        }
    ));

    // kernel does not fit: small RAM, huge init_size, load address at the top
    assert!(matches!(
        err(&good, 16 * MIB),
        BootError::KernelDoesNotFit { .. }
    ));
    let k = Bz {
        init_size: u32::MAX,
        ..Bz::default()
    }
    .build();
    let e = err(&k, u32::MAX);
    assert!(matches!(e, BootError::KernelDoesNotFit { .. }), "{e:?}");
    assert!(e.to_string().contains("does not fit"));
    let mut k = good.clone();
    k[0x214..0x218].copy_from_slice(&0xFFFF_F000u32.to_le_bytes());
    assert!(matches!(
        err(&k, u32::MAX),
        BootError::KernelDoesNotFit { .. }
    ));
    k[0x214..0x218].copy_from_slice(&0x8000u32.to_le_bytes());
    assert!(matches!(err(&k, 64 * MIB), BootError::BadField { .. }));
    let mut k = good.clone();
    k[0x201] = 0x20; // header ends before cmdline_size
    assert!(matches!(err(&k, 64 * MIB), BootError::BadField { .. }));

    // command line limits
    let small = Bz {
        cmdline_size: 8,
        ..Bz::default()
    }
    .build();
    assert!(load_linux(&small, None, "12345678", 64 * MIB).is_ok());
    let e = load_linux(&small, None, "123456789", 64 * MIB).unwrap_err();
    assert_eq!(e, BootError::CmdlineTooLong { len: 9, max: 8 });
    assert!(e.to_string().contains("too long"));
    assert_eq!(
        load_linux(&good, None, "a\0b", 64 * MIB).unwrap_err(),
        BootError::CmdlineHasNul
    );
    // an absurd cmdline_size is capped by the room in low memory
    let k = Bz {
        cmdline_size: u32::MAX,
        ..Bz::default()
    }
    .build();
    let long = "x".repeat(0x80000);
    assert!(matches!(
        load_linux(&k, None, &long, 64 * MIB),
        Err(BootError::CmdlineTooLong { .. })
    ));

    // a memory map overlay that takes the zero page away
    let mut opts = LinuxBootOptions::new(64 * MIB);
    opts.e820_extra
        .push(E820Entry::new(0x1_0000, 0x1000, E820Type::Reserved));
    assert!(matches!(
        load_linux_with(&good, None, "", &opts),
        Err(BootError::OutsideRam { .. })
    ));
}

/// xorshift64*: a deterministic stream for corruption tests.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// Check a successful plan's invariants: regions inside RAM ranges, no overlaps.
fn check_plan(regions: &[boot::LoadRegion], zero_fill: &[(u32, u32)], map: &[E820Entry]) {
    let mut spans: Vec<(u64, u64)> = regions.iter().map(|r| (r.addr as u64, r.end())).collect();
    spans.extend(
        zero_fill
            .iter()
            .map(|&(a, l)| (a as u64, a as u64 + l as u64)),
    );
    spans.sort();
    for w in spans.windows(2) {
        assert!(w[0].1 <= w[1].0, "overlap {:x?}", w);
    }
    for &(a, e) in &spans {
        assert!(
            e820::is_ram(map, a, (e - a).max(1)),
            "{a:#x}..{e:#x} not RAM"
        );
    }
}

#[test]
fn corrupted_headers_never_panic() {
    let good = Bz::default().build();
    let mb = aout_kernel(0x10_0000, 0x2000, 0x3000);
    let elf = elf_kernel();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for round in 0..6000 {
        let base = match round % 3 {
            0 => &good,
            1 => &mb,
            _ => &elf,
        };
        let mut k = base.clone();
        let hdr_span = if round % 3 == 0 {
            0x1F0..0x270
        } else {
            0..0x200
        };
        for _ in 0..1 + rng.next() % 6 {
            let i = hdr_span.start + (rng.next() as usize) % hdr_span.len();
            if rng.next() % 2 == 0 {
                k[i] = rng.next() as u8;
            } else {
                k[i] ^= 1 << (rng.next() % 8);
            }
        }
        if rng.next() % 8 == 0 {
            let len = (rng.next() as usize) % k.len();
            k.truncate(len);
        }
        let ram = [2 * MIB, 32 * MIB, 64 * MIB, u32::MAX][(rng.next() % 4) as usize];
        let initrd = vec![0u8; (rng.next() % 3 * 0x1000) as usize];
        let _ = detect(&k);
        if let Ok(s) = load_linux(&k, Some(&initrd), "console=ttyS0", ram) {
            check_plan(&s.regions, &[], &s.e820);
        }
        if let Ok(s) = load_multiboot(&k, Some(&initrd), "x", ram) {
            check_plan(&s.regions, &s.zero_fill, &s.e820);
        }
    }
}

// ------------------------------------------------------------------------ Multiboot

const MB_MAGIC: u32 = 0x1BAD_B002;

fn mb_header(flags: u32) -> Vec<u8> {
    let mut h = Vec::new();
    h.extend_from_slice(&MB_MAGIC.to_le_bytes());
    h.extend_from_slice(&flags.to_le_bytes());
    h.extend_from_slice(&(0u32.wrapping_sub(MB_MAGIC).wrapping_sub(flags)).to_le_bytes());
    h
}

/// An a.out-kludge kernel: header at file offset 0x40, image loaded at `load`,
/// `text` bytes of file, BSS up to `load + text + bss`, entry at load + 0x100.
fn aout_kernel(load: u32, text: u32, bss: u32) -> Vec<u8> {
    let mut k = vec![0x90u8; text as usize];
    let mut h = mb_header(0x0001_0003);
    for v in [
        load + 0x40,
        load,
        load + text,
        load + text + bss,
        load + 0x100,
    ] {
        h.extend_from_slice(&v.to_le_bytes());
    }
    k[0x40..0x40 + h.len()].copy_from_slice(&h);
    k
}

/// An ELF32 higher-half kernel: text linked at 0xC0100000 loaded at 0x100000 (with the
/// Multiboot header), data at 0xC0200000 / 0x200000 with 0x3000 bytes of BSS.
fn elf_kernel() -> Vec<u8> {
    let mut k = vec![0u8; 0x3000];
    k[0..4].copy_from_slice(b"\x7fELF");
    k[4] = 1; // 32-bit
    k[5] = 1; // little-endian
    k[6] = 1;
    k[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    k[18..20].copy_from_slice(&3u16.to_le_bytes()); // EM_386
    k[20..24].copy_from_slice(&1u32.to_le_bytes());
    k[24..28].copy_from_slice(&0xC010_0010u32.to_le_bytes()); // e_entry (virtual)
    k[28..32].copy_from_slice(&52u32.to_le_bytes()); // e_phoff
    k[40..42].copy_from_slice(&52u16.to_le_bytes());
    k[42..44].copy_from_slice(&32u16.to_le_bytes()); // e_phentsize
    k[44..46].copy_from_slice(&3u16.to_le_bytes()); // e_phnum
    let ph = |k: &mut Vec<u8>, i: usize, v: [u32; 8]| {
        for (j, x) in v.iter().enumerate() {
            let o = 52 + 32 * i + 4 * j;
            k[o..o + 4].copy_from_slice(&x.to_le_bytes());
        }
    };
    // type, offset, vaddr, paddr, filesz, memsz, flags, align
    ph(
        &mut k,
        0,
        [1, 0x1000, 0xC010_0000, 0x10_0000, 0x1000, 0x1000, 5, 0x1000],
    );
    ph(
        &mut k,
        1,
        [1, 0x2000, 0xC020_0000, 0x20_0000, 0x800, 0x3800, 6, 0x1000],
    );
    ph(&mut k, 2, [4, 0, 0, 0, 0, 0, 4, 4]); // PT_NOTE: ignored
    let h = mb_header(0x3);
    k[0x1000..0x1000 + 12].copy_from_slice(&h);
    k[0x1010] = 0xF4; // hlt at the entry
    for b in &mut k[0x2000..0x2800] {
        *b = 0xDA;
    }
    k
}

/// Read the Multiboot information structure back out of RAM.
struct Info {
    flags: u32,
    mem_lower: u32,
    mem_upper: u32,
    cmdline: String,
    mods: Vec<(u32, u32, String)>,
    mmap: Vec<(u64, u64, u32)>,
    loader: String,
}

fn read_info(mem: &[u8], addr: u32) -> Info {
    let i = &mem[addr as usize..];
    let mods_count = u32_at(i, 20) as usize;
    let mods_addr = u32_at(i, 24) as usize;
    let mods = (0..mods_count)
        .map(|n| {
            let m = &mem[mods_addr + 16 * n..];
            (u32_at(m, 0), u32_at(m, 4), cstr(mem, u32_at(m, 8)))
        })
        .collect();
    let (mlen, maddr) = (u32_at(i, 44) as usize, u32_at(i, 48) as usize);
    let mut mmap = Vec::new();
    let mut o = maddr;
    while o < maddr + mlen {
        let size = u32_at(mem, o) as usize;
        mmap.push((u64_at(mem, o + 4), u64_at(mem, o + 12), u32_at(mem, o + 20)));
        o += size + 4;
    }
    Info {
        flags: u32_at(i, 0),
        mem_lower: u32_at(i, 4),
        mem_upper: u32_at(i, 8),
        cmdline: cstr(mem, u32_at(i, 16)),
        mods,
        mmap,
        loader: cstr(mem, u32_at(i, 64)),
    }
}

#[test]
fn multiboot_aout_kludge() {
    let kernel = aout_kernel(0x10_0000, 0x2345, 0x4000);
    assert_eq!(detect(&kernel), KernelKind::Multiboot);
    let initrd: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
    let ram = 32 * MIB;
    let s = load_multiboot(&kernel, Some(&initrd), "kernel arg=1", ram).unwrap();
    assert_eq!(s.header.offset, 0x40);
    assert_eq!(s.header.flags, 0x0001_0003);
    assert_eq!(s.kernel_range, (0x10_0000, 0x10_0000 + 0x2345 + 0x4000));
    assert_eq!(s.zero_fill, vec![(0x10_2345, 0x4000)]);
    assert_eq!(s.entry.eip, 0x10_0100);
    assert_eq!(s.entry.eax, 0x2BAD_B002);
    assert_eq!(s.entry.ebx, s.info_addr);
    assert_eq!(s.entry.eflags & 0x200, 0);
    // module 0 page-aligned right after the kernel's BSS
    let mod_start = (0x10_0000 + 0x2345 + 0x4000 + 0xFFF) & !0xFFF;
    assert_eq!(s.modules, vec![(mod_start, mod_start + 5000)]);

    let mem = apply(&s.regions, &s.zero_fill, ram);
    assert_eq!(&mem[0x10_0000..0x10_2345], &kernel[..]);
    assert!(mem[0x10_2345..0x10_6345].iter().all(|&b| b == 0));
    assert_eq!(
        &mem[mod_start as usize..mod_start as usize + 5000],
        &initrd[..]
    );
    let g = s.entry.gdt.base as usize;
    assert_eq!(mem[g..g + 32], flat_gdt_bytes());
    assert!(s.entry.esp > s.entry.gdt.base + 32);

    let info = read_info(&mem, s.info_addr);
    assert_eq!(
        info.flags,
        (1 << 0) | (1 << 2) | (1 << 3) | (1 << 6) | (1 << 9)
    );
    assert_eq!(info.mem_lower, 0x9F000 / 1024);
    assert_eq!(info.mem_upper, (ram - MIB) / 1024);
    assert_eq!(info.cmdline, "kernel arg=1");
    assert_eq!(
        info.mods,
        vec![(mod_start, mod_start + 5000, "initrd".into())]
    );
    assert_eq!(
        info.mmap,
        vec![
            (0, 0x9F000, 1),
            (0x9F000, 0x61000, 2),
            (0x10_0000, (ram - MIB) as u64, 1)
        ]
    );
    assert_eq!(info.loader, "x86emu");
}

#[test]
fn multiboot_elf_and_several_modules() {
    let kernel = elf_kernel();
    assert_eq!(detect(&kernel), KernelKind::Multiboot);
    let a = vec![0xAAu8; 0x1800];
    let b = vec![0xBBu8; 10];
    let mods = [
        MultibootModule {
            data: &a,
            cmdline: "/boot/a.mod x=1",
        },
        MultibootModule {
            data: &b,
            cmdline: "b",
        },
        MultibootModule {
            data: &[],
            cmdline: "empty",
        },
    ];
    let mut opts = MultibootOptions::new(16 * MIB);
    opts.e820_extra
        .push(E820Entry::new(0xFF_0000, 0x1_0000, E820Type::Acpi));
    let s = load_multiboot_with(&kernel, &mods, "", &opts).unwrap();
    assert_eq!(
        s.entry.eip, 0x10_0010,
        "virtual entry translated to physical"
    );
    assert_eq!(s.kernel_range, (0x10_0000, 0x20_3800));
    assert_eq!(s.zero_fill, vec![(0x20_0800, 0x3000)]);
    assert_eq!(
        s.modules,
        vec![
            (0x20_4000, 0x20_5800),
            (0x20_6000, 0x20_600A),
            (0x20_7000, 0x20_7000)
        ]
    );
    let mem = apply(&s.regions, &s.zero_fill, 16 * MIB);
    assert_eq!(mem[0x10_0010], 0xF4);
    assert!(mem[0x20_0000..0x20_0800].iter().all(|&x| x == 0xDA));
    assert!(mem[0x20_0800..0x20_3800].iter().all(|&x| x == 0));
    let info = read_info(&mem, s.info_addr);
    assert_eq!(info.cmdline, "");
    assert_eq!(
        info.mods.iter().map(|m| m.2.as_str()).collect::<Vec<_>>(),
        ["/boot/a.mod x=1", "b", "empty"]
    );
    assert_eq!(info.mmap.len(), 4);
    assert_eq!(info.mmap[3], (0xFF_0000, 0x1_0000, 3));
    assert_eq!(info.mem_upper, (15 * MIB - 0x1_0000) / 1024);
}

#[test]
fn multiboot_errors() {
    let e = |k: &[u8]| load_multiboot(k, None, "", 32 * MIB).unwrap_err();
    assert_eq!(e(&[0u8; 9000]), BootError::NoMultibootHeader);
    assert_eq!(detect(&[0u8; 100]), KernelKind::Unknown);
    assert_eq!(e(&[]), BootError::NoMultibootHeader);

    // header beyond the first 8 KiB
    let mut k = vec![0u8; 0x3000];
    k[0x2000..0x200C].copy_from_slice(&mb_header(0x3));
    assert_eq!(e(&k), BootError::NoMultibootHeader);

    // bad checksum
    let mut k = aout_kernel(0x10_0000, 0x1000, 0);
    k[0x48] ^= 1;
    assert_eq!(e(&k), BootError::MultibootChecksum { offset: 0x40 });
    assert_eq!(detect(&k), KernelKind::Unknown);

    // Multiboot 2 only
    let mut k = vec![0u8; 0x100];
    let (m, arch, len) = (0xE852_50D6u32, 0u32, 16u32);
    for (i, v) in [m, arch, len, 0u32.wrapping_sub(m + arch + len)]
        .iter()
        .enumerate()
    {
        k[0x18 + 4 * i..0x1C + 4 * i].copy_from_slice(&v.to_le_bytes());
    }
    let err = e(&k);
    assert_eq!(err, BootError::Multiboot2Only);
    assert!(err.to_string().contains("Multiboot 2"));

    // unknown required flag (bit 3)
    let mut k = aout_kernel(0x10_0000, 0x1000, 0);
    k[0x40..0x4C].copy_from_slice(&mb_header(0x0001_000B));
    assert!(matches!(
        e(&k),
        BootError::MultibootUnsupportedFlags { flags: 0x0001_000B }
    ));

    // a.out kludge address fields
    let set = |k: &mut Vec<u8>, field: usize, v: u32| {
        let o = 0x40 + 12 + 4 * field;
        k[o..o + 4].copy_from_slice(&v.to_le_bytes());
    };
    let base = aout_kernel(0x10_0000, 0x1000, 0x1000);
    let mut k = base.clone();
    set(&mut k, 1, 0x10_0080); // load_addr above header_addr
    assert!(matches!(
        e(&k),
        BootError::BadField {
            field: "load_addr",
            ..
        }
    ));
    let mut k = base.clone();
    set(&mut k, 0, 0x10_1000); // header_addr - load_addr > offset of the header
    assert!(matches!(
        e(&k),
        BootError::BadField {
            field: "header_addr",
            ..
        }
    ));
    let mut k = base.clone();
    set(&mut k, 2, 0x10_2000); // load_end_addr beyond the file
    assert!(matches!(e(&k), BootError::Truncated { .. }));
    let mut k = base.clone();
    set(&mut k, 2, 0x0F_0000); // load_end_addr below load_addr
    assert!(matches!(e(&k), BootError::BadField { .. }));
    let mut k = base.clone();
    set(&mut k, 3, 0x10_0800); // bss_end below load_end
    assert!(matches!(e(&k), BootError::BadField { .. }));
    let mut k = base.clone();
    set(&mut k, 4, 0x50_0000); // entry outside the image
    assert!(matches!(
        e(&k),
        BootError::BadField {
            field: "entry point",
            ..
        }
    ));
    let mut k = base.clone();
    set(&mut k, 3, 0xFFFF_F000); // BSS to the top of the address space
    assert!(matches!(e(&k), BootError::OutsideRam { .. }));
    // address fields cut off by the end of the file
    let k = base[..0x40 + 20].to_vec();
    assert!(matches!(e(&k), BootError::Truncated { .. }));
    // the image in the legacy hole
    let k = aout_kernel(0xA_0000, 0x1000, 0);
    assert!(matches!(e(&k), BootError::OutsideRam { .. }));
    // kernel larger than RAM
    let k = aout_kernel(0x10_0000, 0x1000, 0x4000_0000);
    assert!(matches!(e(&k), BootError::OutsideRam { .. }));

    // ELF problems
    let elf = elf_kernel();
    let mut k = elf.clone();
    k[4] = 2;
    assert!(matches!(e(&k), BootError::BadElf { .. }));
    let mut k = elf.clone();
    k[18] = 62; // x86-64
    assert!(matches!(e(&k), BootError::BadElf { .. }));
    let mut k = elf.clone();
    k[44..46].copy_from_slice(&0xFFFFu16.to_le_bytes()); // phnum past the file
    assert!(matches!(e(&k), BootError::Truncated { .. }));
    let mut k = elf.clone();
    k[52 + 32 + 16..52 + 32 + 20].copy_from_slice(&0x8000u32.to_le_bytes()); // filesz > memsz
    assert!(matches!(e(&k), BootError::BadElf { .. }));
    let mut k = elf.clone();
    k[52 + 32 + 12..52 + 32 + 16].copy_from_slice(&0x10_0800u32.to_le_bytes()); // overlap
    assert!(matches!(e(&k), BootError::Overlap { .. }));
    let mut k = elf.clone();
    k[0] = 0; // not ELF and no address fields
    assert!(matches!(e(&k), BootError::BadElf { .. }));

    // module that does not fit
    let big = vec![0u8; 31 * MIB as usize];
    assert!(matches!(
        load_multiboot(&elf, Some(&big), "", 32 * MIB),
        Err(BootError::NoRoom { .. })
    ));
    // command line with NUL
    assert_eq!(
        load_multiboot(&elf, None, "a\0", 32 * MIB).unwrap_err(),
        BootError::CmdlineHasNul
    );
}

#[test]
fn error_messages_name_the_problem() {
    let cases: Vec<(BootError, &str)> = vec![
        (
            BootError::Truncated {
                what: "the setup header",
                need: 0x206,
                have: 10,
            },
            "truncated",
        ),
        (BootError::NotLoadedHigh, "zImage"),
        (
            BootError::KernelDoesNotFit {
                start: 0x100000,
                end: 0x2000000,
                ram_size: 16 << 20,
            },
            "16 MiB",
        ),
        (
            BootError::InitrdTooLarge {
                size: 10,
                room: 5,
                limit: 0x1000,
            },
            "initrd too large",
        ),
        (BootError::NoMultibootHeader, "0x1BADB002"),
    ];
    for (e, needle) in cases {
        assert!(e.to_string().contains(needle), "{e} lacks {needle}");
    }
}

// -------------------------------------------------------- the real Debian test guest

fn guest_dir() -> PathBuf {
    match std::env::var_os("X86EMU_LINUX_GUEST_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/linux-guest"),
    }
}

#[test]
fn real_debian_bzimage() {
    let dir = guest_dir();
    let read = |name: &str| {
        std::fs::read(dir.join(name)).unwrap_or_else(|e| {
            panic!(
                "{}: {e}\nThis test needs the Linux test guest. Build it with\n    \
                 test-roms/linux/build.sh {}\n(root and apt access to Debian's archive; \
                 about a minute) or point X86EMU_LINUX_GUEST_DIR at a built guest.",
                dir.join(name).display(),
                dir.display()
            )
        })
    };
    let kernel = read("bzImage");
    let initrd = read("initrd.img");
    let cmdline = String::from_utf8(read("cmdline.txt")).unwrap();
    let cmdline = cmdline.trim_end();

    assert_eq!(detect(&kernel), KernelKind::BzImage);
    let h = boot::linux::parse_header(&kernel).unwrap();
    assert!(h.version >= 0x020F, "protocol {:#x}", h.version);
    assert!(h.relocatable);
    assert_eq!(h.loadflags & 1, 1, "LOADED_HIGH");
    assert_eq!(h.code32_start, 0x10_0000);
    assert_eq!(h.kernel_alignment, 0x100_0000, "CONFIG_PHYSICAL_ALIGN");
    assert_eq!(h.pref_address, 0x100_0000, "CONFIG_PHYSICAL_START");
    assert_eq!(h.cmdline_size, 2047);
    assert_eq!(h.initrd_addr_max, 0x7FFF_FFFF);
    assert!(
        h.init_size > 0x100_0000 && h.init_size < 0x400_0000,
        "{:#x}",
        h.init_size
    );
    assert_eq!(h.header_end, 0x26C);
    let v = h.kernel_version.clone().expect("kernel version string");
    assert!(v.starts_with("6.1.0-") && v.contains("-686 "), "{v}");
    assert!(h.setup_size + h.syssize as usize * 16 <= kernel.len());

    let ram = 128 * MIB;
    let s = load_linux(&kernel, Some(&initrd), cmdline, ram).unwrap();
    assert_eq!(s.kernel_addr, 0x10_0000);
    assert_eq!(s.kernel_size as usize, kernel.len() - h.setup_size);
    // decompression buffer: 16 MiB (LOAD_PHYSICAL_ADDR) + init_size
    assert_eq!(
        s.kernel_footprint,
        (0x100_0000, 0x100_0000 + h.init_size as u64)
    );
    let (ia, is) = s.initrd.unwrap();
    assert_eq!(is as usize, initrd.len());
    assert_eq!(ia, (ram - is) & !0xFFF);
    assert!(ia as u64 >= s.kernel_footprint.1);
    assert_eq!(s.e820.len(), 3);
    assert_eq!(
        s.e820[2],
        E820Entry::new(0x10_0000, (ram - MIB) as u64, E820Type::Ram)
    );

    let mem = apply(&s.regions, &[], ram);
    assert_eq!(cstr(&mem, s.cmdline_addr), cmdline);
    let zp = &mem[s.zero_page_addr as usize..][..4096];
    assert_eq!(&zp[0x1F1..0x210], &kernel[0x1F1..0x210], "header copied");
    assert_eq!(zp[0x210], 0xFF);
    assert_eq!(u32_at(zp, 0x218), ia);
    assert_eq!(u32_at(zp, 0x21C), is);
    assert_eq!(zp[0x1E8], 3);
    assert_eq!(
        &mem[0x10_0000..0x10_0000 + 64],
        &kernel[h.setup_size..h.setup_size + 64]
    );

    // Debian's kernel needs about 32 MiB just to decompress
    assert!(matches!(
        load_linux(&kernel, Some(&initrd), cmdline, 32 * MIB),
        Err(BootError::KernelDoesNotFit { .. })
    ));
    // 33 MiB: the kernel fits, the initrd no longer does
    assert!(load_linux(&kernel, None, cmdline, 33 * MIB).is_ok());
    assert!(matches!(
        load_linux(&kernel, Some(&initrd), cmdline, 33 * MIB),
        Err(BootError::InitrdTooLarge { .. })
    ));
    assert!(load_linux(&kernel, Some(&initrd), cmdline, 40 * MIB).is_ok());
    // cmdline_size 2047
    assert!(load_linux(&kernel, None, &"x".repeat(2047), ram).is_ok());
    assert!(matches!(
        load_linux(&kernel, None, &"x".repeat(2048), ram),
        Err(BootError::CmdlineTooLong { max: 2047, .. })
    ));
    // it is not a Multiboot kernel
    assert!(load_multiboot(&kernel, None, "", ram).is_err());
}
