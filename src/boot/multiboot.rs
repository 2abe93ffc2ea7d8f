//! Multiboot v1 (specification 0.6.96).
//!
//! The kernel carries a header (magic 0x1BADB002, flags, checksum) 4-byte aligned within
//! its first 8 KiB. Required-feature flags 0 (page-align modules), 1 (memory information)
//! and 2 (video mode information) are understood; any other of bits 0-15 makes the load
//! fail, as the specification demands. The image is loaded
//!
//! - by the *a.out kludge* address fields when flag 16 is set: the file from offset
//!   `header_offset - (header_addr - load_addr)` goes to `load_addr`, up to
//!   `load_end_addr` (0: the end of the file), then zeroes up to `bss_end_addr` (0: no
//!   BSS), and execution starts at `entry_addr`;
//! - otherwise as an ELF32 i386 executable: every `PT_LOAD` segment at its physical
//!   address, zero-filled from `p_filesz` to `p_memsz`; the entry point is `e_entry`,
//!   translated from virtual to physical when it falls inside a segment whose addresses
//!   differ (as GRUB does for higher-half kernels).
//!
//! Modules (the initrd is module 0) go page-aligned right after the kernel. The
//! information structure passes `mem_lower`/`mem_upper`, the command line, the modules,
//! the E820 memory map (`mmap`) and the boot loader name "x86emu"; it lives in low memory
//! (from 0x10000) when that is free. No video information is passed (flag 2 is accepted
//! but the kernel starts in VGA text mode, as with QEMU), nor boot device, symbols, drives,
//! APM or VBE tables. At entry EAX = 0x2BADB002, EBX = the information structure, and the
//! CPU is in flat 32-bit protected mode with paging and interrupts off.

use super::e820::{self, E820Entry};
use super::{
    cmdline_bytes, flat_gdt_bytes, put_u32, put_u64, BootError, EntryState, GdtSetup, LoadRegion,
    ReadLe, GDT_ADDR, GDT_LIMIT, SCRATCH_STACK_TOP,
};

pub const HEADER_MAGIC: u32 = 0x1BAD_B002;
/// EAX at entry.
pub const BOOTLOADER_MAGIC: u32 = 0x2BAD_B002;
pub const MULTIBOOT2_MAGIC: u32 = 0xE852_50D6;
/// The header must lie within this many bytes of the start of the file.
pub const SEARCH_LIMIT: usize = 8192;
/// Longest command line (kernel or module) accepted.
pub const CMDLINE_MAX: usize = 0xFFFF;
/// The name passed in `boot_loader_name`.
pub const BOOT_LOADER_NAME: &str = "x86emu";

const FLAG_PAGE_ALIGN: u32 = 1 << 0;
const FLAG_MEMORY_INFO: u32 = 1 << 1;
const FLAG_VIDEO_MODE: u32 = 1 << 2;
const FLAG_ADDRESSES: u32 = 1 << 16;

const INFO_MEMORY: u32 = 1 << 0;
const INFO_CMDLINE: u32 = 1 << 2;
const INFO_MODS: u32 = 1 << 3;
const INFO_MMAP: u32 = 1 << 6;
const INFO_LOADER_NAME: u32 = 1 << 9;
/// `struct multiboot_info` is 116 bytes; keep the next field aligned.
const INFO_SIZE: usize = 0x80;
/// Where the loader prefers its information block.
const INFO_MIN_ADDR: u64 = 0x1_0000;

/// The a.out kludge address fields (header flag 16).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AoutKludge {
    pub header_addr: u32,
    pub load_addr: u32,
    pub load_end_addr: u32,
    pub bss_end_addr: u32,
    pub entry_addr: u32,
}

/// The graphics mode the kernel asks for (header flag 2); recorded, not honoured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VideoRequest {
    pub mode_type: u32,
    pub width: u32,
    pub height: u32,
    pub depth: u32,
}

/// A parsed Multiboot header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MultibootHeader {
    /// File offset of the magic.
    pub offset: usize,
    pub flags: u32,
    pub addresses: Option<AoutKludge>,
    pub video: Option<VideoRequest>,
}

/// Find and parse the Multiboot v1 header in the first 8 KiB.
pub fn find_header(kernel: &[u8]) -> Result<MultibootHeader, BootError> {
    let mut bad_checksum = None;
    let mut off = 0;
    while off + 12 <= SEARCH_LIMIT.min(kernel.len()) {
        if kernel.u32_at(off) == Some(HEADER_MAGIC) {
            let flags = kernel.u32_at(off + 4).unwrap_or(0);
            let sum = kernel.u32_at(off + 8).unwrap_or(0);
            if HEADER_MAGIC.wrapping_add(flags).wrapping_add(sum) == 0 {
                return parse_header_at(kernel, off, flags);
            }
            bad_checksum.get_or_insert(off);
        }
        off += 4;
    }
    if let Some(offset) = bad_checksum {
        return Err(BootError::MultibootChecksum { offset });
    }
    if has_multiboot2_header(kernel) {
        return Err(BootError::Multiboot2Only);
    }
    Err(BootError::NoMultibootHeader)
}

fn parse_header_at(kernel: &[u8], off: usize, flags: u32) -> Result<MultibootHeader, BootError> {
    let field = |i: usize, what: &'static str| {
        kernel.u32_at(off + 12 + 4 * i).ok_or(BootError::Truncated {
            what,
            need: (off + 16 + 4 * i) as u64,
            have: kernel.len() as u64,
        })
    };
    let addresses = if flags & FLAG_ADDRESSES != 0 {
        let what = "the Multiboot header's address fields";
        Some(AoutKludge {
            header_addr: field(0, what)?,
            load_addr: field(1, what)?,
            load_end_addr: field(2, what)?,
            bss_end_addr: field(3, what)?,
            entry_addr: field(4, what)?,
        })
    } else {
        None
    };
    let video = if flags & FLAG_VIDEO_MODE != 0 {
        let what = "the Multiboot header's video fields";
        Some(VideoRequest {
            mode_type: field(5, what)?,
            width: field(6, what)?,
            height: field(7, what)?,
            depth: field(8, what)?,
        })
    } else {
        None
    };
    Ok(MultibootHeader {
        offset: off,
        flags,
        addresses,
        video,
    })
}

/// A Multiboot 2 header (magic, architecture, length, checksum), 8-byte aligned in the
/// first 32 KiB.
fn has_multiboot2_header(kernel: &[u8]) -> bool {
    (0..32768usize.min(kernel.len()))
        .step_by(8)
        .any(|off| match kernel.get(off..off + 16) {
            Some(h) => {
                let w = |i: usize| h.u32_at(4 * i).unwrap_or(0);
                w(0) == MULTIBOOT2_MAGIC
                    && w(0)
                        .wrapping_add(w(1))
                        .wrapping_add(w(2))
                        .wrapping_add(w(3))
                        == 0
            }
            None => false,
        })
}

/// A module to load with the kernel.
#[derive(Clone, Copy, Debug)]
pub struct MultibootModule<'a> {
    pub data: &'a [u8],
    /// The module's string in `mods_addr` (by convention its name and arguments).
    pub cmdline: &'a str,
}

/// Options beyond the basic call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MultibootOptions {
    /// RAM from physical address 0, in bytes.
    pub ram_size: u32,
    /// Ranges laid over the standard PC map (see [`e820::pc_memory_map`]).
    pub e820_extra: Vec<E820Entry>,
}

impl MultibootOptions {
    pub fn new(ram_size: u32) -> MultibootOptions {
        MultibootOptions {
            ram_size,
            e820_extra: Vec::new(),
        }
    }
}

/// The load plan for a Multiboot kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MultibootSetup {
    pub header: MultibootHeader,
    /// Bytes to copy into guest RAM (kernel image or segments, modules, the GDT and the
    /// information block). They do not overlap.
    pub regions: Vec<LoadRegion>,
    /// Ranges `(addr, len)` the machine must zero (BSS); they overlap no region.
    pub zero_fill: Vec<(u32, u32)>,
    /// CPU state at entry (EAX = 0x2BADB002, EBX = information structure).
    pub entry: EntryState,
    /// The memory map passed in `mmap`.
    pub e820: Vec<E820Entry>,
    /// Address of `struct multiboot_info`.
    pub info_addr: u32,
    /// Lowest and end address of the loaded kernel, BSS included.
    pub kernel_range: (u32, u32),
    /// Each module's `(mod_start, mod_end)`.
    pub modules: Vec<(u32, u32)>,
}

/// Parse a Multiboot kernel and plan its boot; the initrd, if any, becomes module 0 with
/// the string "initrd".
pub fn load_multiboot(
    kernel: &[u8],
    initrd: Option<&[u8]>,
    cmdline: &str,
    ram_size: u32,
) -> Result<MultibootSetup, BootError> {
    let modules: Vec<MultibootModule> = initrd
        .map(|data| MultibootModule {
            data,
            cmdline: "initrd",
        })
        .into_iter()
        .collect();
    load_multiboot_with(kernel, &modules, cmdline, &MultibootOptions::new(ram_size))
}

/// A piece of the kernel image: `file` bytes at `addr`, zeroes up to `memsz`.
struct Segment<'a> {
    addr: u64,
    file: &'a [u8],
    memsz: u64,
    /// For ELF: the virtual address the segment was linked at.
    vaddr: u64,
}

/// [`load_multiboot`] with any number of modules and a memory map overlay.
pub fn load_multiboot_with(
    kernel: &[u8],
    modules: &[MultibootModule],
    cmdline: &str,
    opts: &MultibootOptions,
) -> Result<MultibootSetup, BootError> {
    let header = find_header(kernel)?;
    let unknown = header.flags & 0xFFFF & !(FLAG_PAGE_ALIGN | FLAG_MEMORY_INFO | FLAG_VIDEO_MODE);
    if unknown != 0 {
        return Err(BootError::MultibootUnsupportedFlags {
            flags: header.flags,
        });
    }
    let map = e820::pc_memory_map(opts.ram_size, &opts.e820_extra)?;
    let (segments, entry) = match header.addresses {
        Some(a) => aout_segments(kernel, header.offset, &a)?,
        None => elf_segments(kernel)?,
    };

    // Every segment in RAM, none over another.
    let mut used: Vec<(u64, u64)> = Vec::new();
    for s in &segments {
        let end = s.addr + s.memsz;
        if end > u32::MAX as u64 || !e820::is_ram(&map, s.addr, s.memsz) {
            return Err(BootError::OutsideRam {
                what: "kernel segment",
                start: s.addr,
                end,
            });
        }
        if overlaps(&used, s.addr, end) {
            return Err(BootError::Overlap {
                what: "kernel segment",
                start: s.addr,
                end,
            });
        }
        used.push((s.addr, end));
    }
    let kernel_start = used.iter().map(|u| u.0).min().unwrap_or(0);
    let kernel_end = used.iter().map(|u| u.1).max().unwrap_or(0);
    if !segments
        .iter()
        .any(|s| (s.addr..s.addr + s.memsz).contains(&entry))
    {
        return Err(BootError::BadField {
            field: "entry point",
            value: entry,
            why: "it is outside the loaded kernel image",
        });
    }

    let mut regions = Vec::new();
    let mut zero_fill = Vec::new();
    for s in &segments {
        if !s.file.is_empty() {
            regions.push(LoadRegion {
                addr: s.addr as u32,
                bytes: s.file.to_vec(),
                what: "kernel",
            });
        }
        let bss = s.memsz - s.file.len() as u64;
        if bss != 0 {
            zero_fill.push(((s.addr + s.file.len() as u64) as u32, bss as u32));
        }
    }

    // The real-mode IVT and BIOS data area stay untouched.
    used.push((0, 0x1000));
    // GDT and scratch stack: 0x1000-0x8000 when free, else a page anywhere.
    let (gdt_base, stack_top) = if !overlaps(&used, GDT_ADDR as u64, SCRATCH_STACK_TOP as u64)
        && e820::is_ram(&map, GDT_ADDR as u64, (SCRATCH_STACK_TOP - GDT_ADDR) as u64)
    {
        used.push((GDT_ADDR as u64, SCRATCH_STACK_TOP as u64));
        (GDT_ADDR, SCRATCH_STACK_TOP)
    } else {
        let a = find_free(&map, &used, 0x1000, 0x1000, 0x1000).ok_or(BootError::NoRoom {
            what: "GDT and stack",
            size: 0x1000,
        })?;
        used.push((a, a + 0x1000));
        (a as u32, (a + 0x1000) as u32)
    };
    regions.push(LoadRegion {
        addr: gdt_base,
        bytes: flat_gdt_bytes().to_vec(),
        what: "GDT",
    });

    // Modules, page-aligned after the kernel.
    let mut mods = Vec::new();
    for (i, m) in modules.iter().enumerate() {
        let size = m.data.len() as u64;
        let at = find_free(&map, &used, size, 0x1000, kernel_end)
            .or_else(|| find_free(&map, &used, size, 0x1000, e820::EXTENDED_START))
            .ok_or(BootError::NoRoom {
                what: if i == 0 {
                    "initrd (module 0)"
                } else {
                    "module"
                },
                size,
            })?;
        used.push((at, at + size));
        mods.push((at as u32, (at + size) as u32));
        if size != 0 {
            regions.push(LoadRegion {
                addr: at as u32,
                bytes: m.data.to_vec(),
                what: "module",
            });
        }
    }

    // Information block: struct, strings, module list, memory map.
    let cmd = cmdline_bytes(cmdline, CMDLINE_MAX)?;
    let mut mod_strings = Vec::new();
    for m in modules {
        mod_strings.push(cmdline_bytes(m.cmdline, CMDLINE_MAX)?);
    }
    let name = cmdline_bytes(BOOT_LOADER_NAME, 64)?;
    let cmd_off = INFO_SIZE;
    let name_off = cmd_off + cmd.len();
    let mods_off = align4(name_off + name.len());
    let mut strings_off = mods_off + 16 * modules.len();
    let mmap_off_unaligned = strings_off + mod_strings.iter().map(Vec::len).sum::<usize>();
    let mmap_off = align4(mmap_off_unaligned);
    let total = mmap_off + 24 * map.len();
    let info = find_free(&map, &used, total as u64, 16, INFO_MIN_ADDR)
        .or_else(|| find_free(&map, &used, total as u64, 16, 0x1000))
        .ok_or(BootError::NoRoom {
            what: "Multiboot information",
            size: total as u64,
        })?;
    used.push((info, info + total as u64));
    let base = info as u32;
    let mut b = vec![0u8; total];
    let mem_lower = map
        .iter()
        .find(|e| e.kind == super::E820Type::Ram && e.addr == 0)
        .map_or(0, |e| e.size.min(640 * 1024) / 1024) as u32;
    let mem_upper = map
        .iter()
        .find(|e| e.kind == super::E820Type::Ram && e.addr == e820::EXTENDED_START)
        .map_or(0, |e| e.size / 1024) as u32;
    put_u32(
        &mut b,
        0,
        INFO_MEMORY | INFO_CMDLINE | INFO_MODS | INFO_MMAP | INFO_LOADER_NAME,
    );
    put_u32(&mut b, 4, mem_lower);
    put_u32(&mut b, 8, mem_upper);
    put_u32(&mut b, 16, base + cmd_off as u32);
    put_u32(&mut b, 20, modules.len() as u32);
    put_u32(&mut b, 24, base + mods_off as u32);
    put_u32(&mut b, 44, (24 * map.len()) as u32);
    put_u32(&mut b, 48, base + mmap_off as u32);
    put_u32(&mut b, 64, base + name_off as u32);
    b[cmd_off..cmd_off + cmd.len()].copy_from_slice(&cmd);
    b[name_off..name_off + name.len()].copy_from_slice(&name);
    for (i, ((start, end), s)) in mods.iter().zip(&mod_strings).enumerate() {
        let o = mods_off + 16 * i;
        put_u32(&mut b, o, *start);
        put_u32(&mut b, o + 4, *end);
        put_u32(&mut b, o + 8, base + strings_off as u32);
        b[strings_off..strings_off + s.len()].copy_from_slice(s);
        strings_off += s.len();
    }
    for (i, e) in map.iter().enumerate() {
        let o = mmap_off + 24 * i;
        put_u32(&mut b, o, 20);
        put_u64(&mut b, o + 4, e.addr);
        put_u64(&mut b, o + 12, e.size);
        put_u32(&mut b, o + 20, e.kind.code());
    }
    regions.push(LoadRegion {
        addr: base,
        bytes: b,
        what: "Multiboot information",
    });

    let entry_state = EntryState {
        eip: entry as u32,
        eax: BOOTLOADER_MAGIC,
        ebx: base,
        ecx: 0,
        edx: 0,
        esi: 0,
        edi: 0,
        ebp: 0,
        esp: stack_top,
        eflags: 0x2,
        cr0: 0x11,
        gdt: GdtSetup {
            base: gdt_base,
            limit: GDT_LIMIT,
            cs: super::BOOT_CS,
            ds: super::BOOT_DS,
        },
    };
    Ok(MultibootSetup {
        header,
        regions,
        zero_fill,
        entry: entry_state,
        e820: map,
        info_addr: base,
        kernel_range: (kernel_start as u32, kernel_end as u32),
        modules: mods,
    })
}

fn align4(x: usize) -> usize {
    (x + 3) & !3
}

fn overlaps(used: &[(u64, u64)], start: u64, end: u64) -> bool {
    used.iter().any(|&(s, e)| start < e && s < end)
}

/// The lowest `align`-aligned address at or above `min` where `size` bytes fit inside one
/// RAM range without touching `used`. The lowest fit starts at `min`, at the end of a used
/// range or at the start of a RAM range, so only those are tried.
fn find_free(
    map: &[E820Entry],
    used: &[(u64, u64)],
    size: u64,
    align: u64,
    min: u64,
) -> Option<u64> {
    let up = |x: u64| x.checked_add(align - 1).map(|v| v & !(align - 1));
    let mut candidates: Vec<u64> = std::iter::once(min)
        .chain(used.iter().map(|u| u.1))
        .chain(e820::ram_ranges(map).iter().map(|r| r.0))
        .filter_map(|c| up(c.max(min)))
        .collect();
    candidates.sort_unstable();
    candidates.dedup();
    candidates.into_iter().find(|&c| {
        c.checked_add(size)
            .is_some_and(|end| end <= u32::MAX as u64)
            && e820::is_ram(map, c, size.max(1))
            && !overlaps(used, c, c + size.max(1))
    })
}

/// The a.out kludge: one segment described by the header's address fields.
fn aout_segments<'a>(
    kernel: &'a [u8],
    hdr_off: usize,
    a: &AoutKludge,
) -> Result<(Vec<Segment<'a>>, u64), BootError> {
    let bad = |field, value: u32, why| BootError::BadField {
        field,
        value: value as u64,
        why,
    };
    if a.load_addr > a.header_addr {
        return Err(bad(
            "load_addr",
            a.load_addr,
            "it is above header_addr (the header must be inside the loaded image)",
        ));
    }
    let delta = (a.header_addr - a.load_addr) as usize;
    let Some(load_off) = hdr_off.checked_sub(delta) else {
        return Err(bad(
            "header_addr",
            a.header_addr,
            "header_addr - load_addr points before the start of the file",
        ));
    };
    let load_size = if a.load_end_addr == 0 {
        (kernel.len() - load_off) as u64
    } else {
        if a.load_end_addr < a.load_addr {
            return Err(bad(
                "load_end_addr",
                a.load_end_addr,
                "it is below load_addr",
            ));
        }
        (a.load_end_addr - a.load_addr) as u64
    };
    let have = (kernel.len() - load_off) as u64;
    if load_size > have {
        return Err(BootError::Truncated {
            what: "the image up to load_end_addr",
            need: load_off as u64 + load_size,
            have: kernel.len() as u64,
        });
    }
    let load_end = a.load_addr as u64 + load_size;
    let memsz = if a.bss_end_addr == 0 {
        load_size
    } else {
        if (a.bss_end_addr as u64) < load_end {
            return Err(bad(
                "bss_end_addr",
                a.bss_end_addr,
                "it is below the end of the loaded image",
            ));
        }
        a.bss_end_addr as u64 - a.load_addr as u64
    };
    let file = &kernel[load_off..load_off + load_size as usize];
    Ok((
        vec![Segment {
            addr: a.load_addr as u64,
            file,
            memsz,
            vaddr: a.load_addr as u64,
        }],
        a.entry_addr as u64,
    ))
}

/// ELF32 little-endian i386 executable: its PT_LOAD segments at their physical addresses.
fn elf_segments(kernel: &[u8]) -> Result<(Vec<Segment<'_>>, u64), BootError> {
    let bad = |why| BootError::BadElf { why };
    if kernel.len() < 52 || &kernel[0..4] != b"\x7fELF" {
        return Err(bad(
            "no ELF signature, and the Multiboot header has no address fields (flag 16)",
        ));
    }
    match kernel[4] {
        1 => {}
        2 => {
            return Err(bad(
                "64-bit ELF: a Multiboot v1 kernel must be ELF32 or use the a.out kludge",
            ))
        }
        _ => return Err(bad("unknown ELF class")),
    }
    if kernel[5] != 1 {
        return Err(bad("not little-endian"));
    }
    if kernel.u16_at(18) != Some(3) {
        return Err(bad("not an i386 (EM_386) executable"));
    }
    if kernel.u16_at(16) != Some(2) {
        return Err(bad("not an executable (ET_EXEC)"));
    }
    let entry = kernel.u32_at(24).unwrap_or(0);
    let phoff = kernel.u32_at(28).unwrap_or(0) as u64;
    let phentsize = kernel.u16_at(42).unwrap_or(0) as u64;
    let phnum = kernel.u16_at(44).unwrap_or(0) as u64;
    if phnum == 0 {
        return Err(bad("no program headers"));
    }
    if phentsize < 32 {
        return Err(bad("program header entries smaller than 32 bytes"));
    }
    if phoff + phentsize * phnum > kernel.len() as u64 {
        return Err(BootError::Truncated {
            what: "the ELF program header table",
            need: phoff + phentsize * phnum,
            have: kernel.len() as u64,
        });
    }
    let mut segs = Vec::new();
    for i in 0..phnum {
        let ph = &kernel[(phoff + i * phentsize) as usize..][..32];
        let w = |o: usize| ph.u32_at(o).unwrap_or(0) as u64;
        let (ptype, offset, vaddr, paddr, filesz, memsz) = (w(0), w(4), w(8), w(12), w(16), w(20));
        if ptype != 1 || memsz == 0 {
            continue;
        }
        if filesz > memsz {
            return Err(bad("a segment's file size exceeds its memory size"));
        }
        if offset + filesz > kernel.len() as u64 {
            return Err(BootError::Truncated {
                what: "an ELF segment",
                need: offset + filesz,
                have: kernel.len() as u64,
            });
        }
        segs.push(Segment {
            addr: paddr,
            file: &kernel[offset as usize..(offset + filesz) as usize],
            memsz,
            vaddr,
        });
    }
    if segs.is_empty() {
        return Err(bad("no loadable (PT_LOAD) segments"));
    }
    // e_entry is virtual; a higher-half kernel's entry is translated to physical.
    let e = entry as u64;
    let phys = segs
        .iter()
        .find(|s| s.vaddr <= e && e < s.vaddr + s.memsz)
        .map_or(e, |s| e - s.vaddr + s.addr);
    Ok((segs, phys))
}
