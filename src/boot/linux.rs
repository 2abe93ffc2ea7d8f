//! The x86 Linux boot protocol, 32-bit entry (Documentation/x86/boot.rst, protocol 2.06+).
//!
//! A bzImage is the real-mode setup (boot sector + `setup_sects` sectors, with the setup
//! header at 0x1F1) followed by the protected-mode kernel (the self-decompressing
//! `startup_32`). With the 32-bit entry a loader skips the real-mode setup entirely:
//!
//! 1. load the protected-mode kernel at `code32_start` (1 MiB);
//! 2. build the zero page (`struct boot_params`): the setup header copied from the image
//!    and completed by the loader (`type_of_loader`, `cmd_line_ptr`, `ramdisk_image/size`,
//!    `vid_mode`), the E820 memory map, `ext_mem_k`/`alt_mem_k`, and a `screen_info` for
//!    an 80x25 VGA text console;
//! 3. enter at the load address with ESI = zero page, flat segments `__BOOT_CS` (0x10) and
//!    `__BOOT_DS` (0x18), interrupts off, EBP = EDI = EBX = 0.
//!
//! The initrd goes at the highest 4 KiB-aligned address that fits below both the end of
//! RAM and `initrd_addr_max`, and above the kernel's decompression buffer (`init_size`
//! bytes from the larger of `pref_address` and the aligned load address: a relocatable
//! 32-bit kernel loaded at 1 MiB decompresses at LOAD_PHYSICAL_ADDR, 16 MiB for Debian's),
//! so the decompressor never overwrites it.

use super::e820::{self, E820Entry};
use super::{
    cmdline_bytes, flat_gdt_bytes, put_u16, put_u32, put_u64, BootError, EntryState, LoadRegion,
    ReadLe, GDT_ADDR, SCRATCH_STACK_TOP,
};

/// Oldest protocol version accepted (cmdline_size, relocatable kernels).
pub const MIN_PROTOCOL: u16 = 0x0206;
/// Where the zero page goes.
pub const ZERO_PAGE_ADDR: u32 = 0x1_0000;
/// Where the command line goes.
pub const CMDLINE_ADDR: u32 = 0x2_0000;
/// Default (and lowest accepted) protected-mode load address.
pub const KERNEL_ADDR: u32 = 0x10_0000;
/// Longest command line the low-memory layout has room for (up to the EBDA).
pub const CMDLINE_ROOM: usize = (e820::CONVENTIONAL_END as usize) - (CMDLINE_ADDR as usize) - 1;

const HDR_START: usize = 0x1F1;
/// Size of `struct setup_header` in the zero page: the copy stops at the EDD buffer.
const HDR_MAX_END: usize = 0x290;
const LOADED_HIGH: u8 = 0x01;
const KEEP_SEGMENTS: u8 = 0x40;
const CAN_USE_HEAP: u8 = 0x80;

// boot_params offsets
const BP_EXT_MEM_K: usize = 0x002;
const BP_ACPI_RSDP: usize = 0x070;
const BP_ALT_MEM_K: usize = 0x1E0;
const BP_E820_ENTRIES: usize = 0x1E8;
const BP_E820_TABLE: usize = 0x2D0;
// setup header offsets (same in the file and in boot_params)
const H_SETUP_SECTS: usize = 0x1F1;
const H_SYSSIZE: usize = 0x1F4;
const H_VID_MODE: usize = 0x1FA;
const H_BOOT_FLAG: usize = 0x1FE;
const H_JUMP: usize = 0x200;
const H_MAGIC: usize = 0x202;
const H_VERSION: usize = 0x206;
const H_KERNEL_VERSION: usize = 0x20E;
const H_TYPE_OF_LOADER: usize = 0x210;
const H_LOADFLAGS: usize = 0x211;
const H_CODE32_START: usize = 0x214;
const H_RAMDISK_IMAGE: usize = 0x218;
const H_RAMDISK_SIZE: usize = 0x21C;
const H_HEAP_END_PTR: usize = 0x224;
const H_CMD_LINE_PTR: usize = 0x228;
const H_INITRD_ADDR_MAX: usize = 0x22C;
const H_KERNEL_ALIGNMENT: usize = 0x230;
const H_RELOCATABLE: usize = 0x234;
const H_MIN_ALIGNMENT: usize = 0x235;
const H_XLOADFLAGS: usize = 0x236;
const H_CMDLINE_SIZE: usize = 0x238;
const H_HARDWARE_SUBARCH: usize = 0x23C;
const H_SETUP_DATA: usize = 0x250;
const H_PREF_ADDRESS: usize = 0x258;
const H_INIT_SIZE: usize = 0x260;

/// The setup header fields the loader uses, as read from the image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinuxHeader {
    /// Boot protocol version, e.g. 0x020F for 2.15.
    pub version: u16,
    /// `setup_sects` as stored (0 means 4).
    pub setup_sects: u8,
    /// Bytes before the protected-mode kernel: (setup_sects + 1) * 512.
    pub setup_size: usize,
    /// Size of the protected-mode kernel in 16-byte units.
    pub syssize: u32,
    pub loadflags: u8,
    pub code32_start: u32,
    pub initrd_addr_max: u32,
    pub kernel_alignment: u32,
    pub relocatable: bool,
    pub min_alignment: u8,
    /// 0 before protocol 2.12.
    pub xloadflags: u16,
    pub cmdline_size: u32,
    /// 0 before protocol 2.10.
    pub pref_address: u64,
    /// 0 before protocol 2.10.
    pub init_size: u32,
    /// End of the setup header in the file (0x202 + the jump's displacement byte).
    pub header_end: usize,
    /// The kernel version string the header points to, if any (printable ASCII only).
    pub kernel_version: Option<String>,
}

/// Whether the image carries the Linux setup header signature.
pub fn has_setup_header(kernel: &[u8]) -> bool {
    kernel.get(H_MAGIC..H_MAGIC + 4) == Some(b"HdrS")
}

fn need(kernel: &[u8], what: &'static str, len: usize) -> Result<(), BootError> {
    if kernel.len() < len {
        Err(BootError::Truncated {
            what,
            need: len as u64,
            have: kernel.len() as u64,
        })
    } else {
        Ok(())
    }
}

/// Parse and check a bzImage's setup header.
pub fn parse_header(kernel: &[u8]) -> Result<LinuxHeader, BootError> {
    need(kernel, "the setup header signature", H_MAGIC + 4)?;
    if !has_setup_header(kernel) {
        return Err(BootError::BadMagic {
            what: "no Linux setup header signature \"HdrS\" at offset 0x202 (not a bzImage)",
        });
    }
    need(kernel, "the setup header", H_VERSION + 2)?;
    let k = kernel;
    let version = k.u16_at(H_VERSION).unwrap_or(0);
    if version < MIN_PROTOCOL {
        return Err(BootError::ProtocolTooOld {
            version,
            min: MIN_PROTOCOL,
        });
    }
    if k.u16_at(H_BOOT_FLAG) != Some(0xAA55) {
        return Err(BootError::BadMagic {
            what: "boot_flag at offset 0x1FE is not 0xAA55",
        });
    }
    let header_end = H_MAGIC + k.u8_at(H_JUMP + 1).unwrap_or(0) as usize;
    let required_end = if version >= 0x020A {
        H_INIT_SIZE + 4
    } else {
        H_CMDLINE_SIZE + 4
    };
    if header_end < required_end {
        return Err(BootError::BadField {
            field: "setup header length (jump at 0x200)",
            value: header_end as u64,
            why: "the header ends before the fields its protocol version defines",
        });
    }
    need(kernel, "the setup header", header_end)?;

    let setup_sects = k.u8_at(H_SETUP_SECTS).unwrap_or(0);
    let sects = if setup_sects == 0 {
        4
    } else {
        setup_sects as usize
    };
    let setup_size = (sects + 1) * 512;
    need(
        kernel,
        "the real-mode setup code (setup_sects)",
        setup_size + 1,
    )?;
    let syssize = k.u32_at(H_SYSSIZE).unwrap_or(0);
    if syssize == 0 {
        return Err(BootError::BadField {
            field: "syssize",
            value: 0,
            why: "the protected-mode kernel size is zero",
        });
    }
    let pm_need = setup_size as u64 + syssize as u64 * 16;
    if (kernel.len() as u64) < pm_need {
        return Err(BootError::Truncated {
            what: "the protected-mode kernel (setup_sects + syssize)",
            need: pm_need,
            have: kernel.len() as u64,
        });
    }
    let loadflags = k.u8_at(H_LOADFLAGS).unwrap_or(0);
    if loadflags & LOADED_HIGH == 0 {
        return Err(BootError::NotLoadedHigh);
    }
    let relocatable = k.u8_at(H_RELOCATABLE).unwrap_or(0) != 0;
    let kernel_alignment = k.u32_at(H_KERNEL_ALIGNMENT).unwrap_or(0);
    if relocatable && !kernel_alignment.is_power_of_two() {
        return Err(BootError::BadField {
            field: "kernel_alignment",
            value: kernel_alignment as u64,
            why: "a relocatable kernel's alignment must be a power of two",
        });
    }
    let (pref_address, init_size) = if version >= 0x020A {
        (
            k.u64_at(H_PREF_ADDRESS).unwrap_or(0),
            k.u32_at(H_INIT_SIZE).unwrap_or(0),
        )
    } else {
        (0, 0)
    };
    let kernel_version = match k.u16_at(H_KERNEL_VERSION) {
        Some(off) if off != 0 => version_string(k, 0x200 + off as usize, setup_size),
        _ => None,
    };
    Ok(LinuxHeader {
        version,
        setup_sects,
        setup_size,
        syssize,
        loadflags,
        code32_start: k.u32_at(H_CODE32_START).unwrap_or(0),
        initrd_addr_max: k.u32_at(H_INITRD_ADDR_MAX).unwrap_or(0),
        kernel_alignment,
        relocatable,
        min_alignment: k.u8_at(H_MIN_ALIGNMENT).unwrap_or(0),
        xloadflags: if version >= 0x020C {
            k.u16_at(H_XLOADFLAGS).unwrap_or(0)
        } else {
            0
        },
        cmdline_size: k.u32_at(H_CMDLINE_SIZE).unwrap_or(0),
        pref_address,
        init_size,
        header_end,
        kernel_version,
    })
}

/// The NUL-terminated version string inside the setup code, if it is printable ASCII.
fn version_string(k: &[u8], off: usize, setup_size: usize) -> Option<String> {
    let area = k.get(off..setup_size.min(k.len()))?;
    let area = &area[..area.len().min(256)];
    let end = area.iter().position(|&b| b == 0)?;
    let s = &area[..end];
    if s.is_empty() || !s.iter().all(|&b| (0x20..0x7F).contains(&b)) {
        return None;
    }
    Some(String::from_utf8_lossy(s).into_owned())
}

/// Options beyond the basic call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinuxBootOptions {
    /// RAM from physical address 0, in bytes (the machine keeps it below its PCI hole).
    pub ram_size: u32,
    /// Ranges laid over the standard PC map (ACPI tables, firmware), e.g. the machine's
    /// ACPI area as [`E820Type::Acpi`](super::E820Type::Acpi). The initrd avoids them.
    pub e820_extra: Vec<E820Entry>,
    /// Physical address of the ACPI RSDP, passed in `acpi_rsdp_addr` (protocol 2.14+);
    /// without it Linux scans the BIOS area 0xE0000-0xFFFFF.
    pub acpi_rsdp: Option<u32>,
    /// Describe an 80x25 colour VGA text console in `screen_info` (false: no video).
    pub vga_text: bool,
}

impl LinuxBootOptions {
    pub fn new(ram_size: u32) -> LinuxBootOptions {
        LinuxBootOptions {
            ram_size,
            e820_extra: Vec::new(),
            acpi_rsdp: None,
            vga_text: true,
        }
    }
}

/// The load plan for a bzImage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinuxBootSetup {
    pub header: LinuxHeader,
    /// Bytes to copy into guest RAM: the GDT, the zero page, the command line, the
    /// protected-mode kernel and the initrd. They do not overlap.
    pub regions: Vec<LoadRegion>,
    /// CPU state at the 32-bit entry (ESI = zero page).
    pub entry: EntryState,
    /// The memory map given to the kernel.
    pub e820: Vec<E820Entry>,
    pub zero_page_addr: u32,
    pub cmdline_addr: u32,
    /// Where the protected-mode kernel is loaded and its size.
    pub kernel_addr: u32,
    pub kernel_size: u32,
    /// The range the kernel decompresses into (start, end exclusive); kept free.
    pub kernel_footprint: (u64, u64),
    /// Initrd address and size, if one was given and is not empty.
    pub initrd: Option<(u32, u32)>,
}

/// Parse a bzImage and plan its 32-bit boot with `ram_size` bytes of RAM.
pub fn load_linux(
    kernel: &[u8],
    initrd: Option<&[u8]>,
    cmdline: &str,
    ram_size: u32,
) -> Result<LinuxBootSetup, BootError> {
    load_linux_with(kernel, initrd, cmdline, &LinuxBootOptions::new(ram_size))
}

/// [`load_linux`] with a memory map overlay, an RSDP pointer or no VGA.
pub fn load_linux_with(
    kernel: &[u8],
    initrd: Option<&[u8]>,
    cmdline: &str,
    opts: &LinuxBootOptions,
) -> Result<LinuxBootSetup, BootError> {
    let hdr = parse_header(kernel)?;
    let map = e820::pc_memory_map(opts.ram_size, &opts.e820_extra)?;
    // Low-memory structures must be in RAM (an overlay could have taken them away).
    for (addr, len, what) in [
        (GDT_ADDR as u64, 0x1000, "the GDT and scratch stack"),
        (
            GDT_ADDR as u64,
            SCRATCH_STACK_TOP as u64 - GDT_ADDR as u64,
            "the scratch stack",
        ),
        (ZERO_PAGE_ADDR as u64, 0x1000, "the zero page"),
    ] {
        if !e820::is_ram(&map, addr, len) {
            return Err(BootError::OutsideRam {
                what,
                start: addr,
                end: addr + len,
            });
        }
    }

    // Command line.
    // cmdline_size (protocol 2.06+) excludes the terminating NUL.
    let max = (hdr.cmdline_size as usize).min(CMDLINE_ROOM);
    let cmd = cmdline_bytes(cmdline, max)?;
    if !e820::is_ram(&map, CMDLINE_ADDR as u64, cmd.len() as u64) {
        return Err(BootError::OutsideRam {
            what: "the command line",
            start: CMDLINE_ADDR as u64,
            end: CMDLINE_ADDR as u64 + cmd.len() as u64,
        });
    }

    // Protected-mode kernel and the buffer it decompresses into.
    let pm = &kernel[hdr.setup_size..];
    let load = match hdr.code32_start {
        0 => KERNEL_ADDR,
        a if a < KERNEL_ADDR => {
            return Err(BootError::BadField {
                field: "code32_start",
                value: a as u64,
                why: "the protected-mode kernel must be loaded at 1 MiB or above",
            })
        }
        a => a,
    };
    let load64 = load as u64;
    let pm_end = load64 + pm.len() as u64;
    let (buf_start, buf_end) = if hdr.version >= 0x020A && hdr.init_size != 0 {
        let base = if hdr.relocatable {
            let align = hdr.kernel_alignment as u64;
            ((load64 + align - 1) & !(align - 1)).max(hdr.pref_address)
        } else if hdr.pref_address != 0 {
            hdr.pref_address
        } else {
            load64
        };
        (base, base.saturating_add(hdr.init_size as u64))
    } else {
        (load64, pm_end)
    };
    let need_start = load64.min(buf_start);
    let need_end = pm_end.max(buf_end);
    if need_end > u32::MAX as u64
        || !e820::is_ram(&map, load64, pm.len() as u64)
        || !e820::is_ram(&map, buf_start, buf_end - buf_start)
    {
        return Err(BootError::KernelDoesNotFit {
            start: need_start,
            end: need_end,
            ram_size: opts.ram_size,
        });
    }

    // Initrd: as high as possible, above everything the kernel uses.
    let initrd = initrd.filter(|d| !d.is_empty());
    let initrd_at = match initrd {
        Some(data) => {
            let limit = if hdr.version >= 0x0203 {
                hdr.initrd_addr_max as u64 + 1
            } else {
                0x3800_0000
            };
            let addr = place_high(&map, data.len() as u64, need_end, limit).ok_or_else(|| {
                BootError::InitrdTooLarge {
                    size: data.len() as u64,
                    room: largest_room(&map, need_end, limit),
                    limit: limit.min(opts.ram_size as u64),
                }
            })?;
            Some((addr as u32, data.len() as u32))
        }
        None => None,
    };

    // Zero page.
    let mut zp = vec![0u8; 4096];
    let hdr_end = hdr.header_end.min(HDR_MAX_END);
    zp[HDR_START..hdr_end].copy_from_slice(&kernel[HDR_START..hdr_end]);
    put_u16(&mut zp, H_VID_MODE, 0xFFFF); // "normal" VGA mode
    zp[H_TYPE_OF_LOADER] = 0xFF; // undefined boot loader
    zp[H_LOADFLAGS] = hdr.loadflags & !(KEEP_SEGMENTS | CAN_USE_HEAP);
    put_u32(&mut zp, H_CODE32_START, load);
    put_u16(&mut zp, H_HEAP_END_PTR, 0);
    put_u32(&mut zp, H_CMD_LINE_PTR, CMDLINE_ADDR);
    let (rd_addr, rd_size) = initrd_at.unwrap_or((0, 0));
    put_u32(&mut zp, H_RAMDISK_IMAGE, rd_addr);
    put_u32(&mut zp, H_RAMDISK_SIZE, rd_size);
    put_u32(&mut zp, H_HARDWARE_SUBARCH, 0); // a PC
    put_u64(&mut zp, H_HARDWARE_SUBARCH + 4, 0);
    if hdr.version >= 0x0209 {
        put_u64(&mut zp, H_SETUP_DATA, 0);
    }
    let ext_k = map
        .iter()
        .find(|e| e.kind == super::E820Type::Ram && e.addr == e820::EXTENDED_START)
        .map_or(0, |e| e.size / 1024);
    put_u16(&mut zp, BP_EXT_MEM_K, ext_k.min(0xFFFF) as u16);
    put_u32(&mut zp, BP_ALT_MEM_K, ext_k.min(u32::MAX as u64) as u32);
    if opts.vga_text {
        write_vga_text_screen_info(&mut zp);
    }
    if let Some(rsdp) = opts.acpi_rsdp {
        if hdr.version >= 0x020E {
            put_u64(&mut zp, BP_ACPI_RSDP, rsdp as u64);
        }
    }
    zp[BP_E820_ENTRIES] = map.len() as u8;
    for (i, e) in map.iter().enumerate() {
        let off = BP_E820_TABLE + 20 * i;
        zp[off..off + 20].copy_from_slice(&e.to_bytes());
    }

    let mut regions = vec![
        LoadRegion {
            addr: GDT_ADDR,
            bytes: flat_gdt_bytes().to_vec(),
            what: "GDT",
        },
        LoadRegion {
            addr: ZERO_PAGE_ADDR,
            bytes: zp,
            what: "zero page",
        },
        LoadRegion {
            addr: CMDLINE_ADDR,
            bytes: cmd,
            what: "command line",
        },
        LoadRegion {
            addr: load,
            bytes: pm.to_vec(),
            what: "kernel",
        },
    ];
    if let (Some((addr, _)), Some(data)) = (initrd_at, initrd) {
        regions.push(LoadRegion {
            addr,
            bytes: data.to_vec(),
            what: "initrd",
        });
    }
    let mut entry = EntryState::flat(load);
    entry.esi = ZERO_PAGE_ADDR;
    Ok(LinuxBootSetup {
        header: hdr,
        regions,
        entry,
        e820: map,
        zero_page_addr: ZERO_PAGE_ADDR,
        cmdline_addr: CMDLINE_ADDR,
        kernel_addr: load,
        kernel_size: pm.len() as u32,
        kernel_footprint: (buf_start, buf_end),
        initrd: initrd_at,
    })
}

/// The highest 4 KiB-aligned address for `size` bytes inside one RAM range of `map`,
/// at or above `floor` and ending at or below `limit`.
pub(crate) fn place_high(map: &[E820Entry], size: u64, floor: u64, limit: u64) -> Option<u64> {
    e820::ram_ranges(map)
        .iter()
        .rev()
        .filter_map(|&(start, end)| {
            let lo = start.max(floor);
            let top = end.min(limit);
            let addr = top.checked_sub(size)? & !0xFFF;
            (addr >= lo).then_some(addr)
        })
        .next()
}

/// The largest free stretch of RAM between `floor` and `limit` (for error messages).
fn largest_room(map: &[E820Entry], floor: u64, limit: u64) -> u64 {
    e820::ram_ranges(map)
        .iter()
        .map(|&(start, end)| end.min(limit).saturating_sub(start.max(floor)))
        .max()
        .unwrap_or(0)
}

/// `screen_info` for the 80x25 colour text mode 3 a VGA BIOS leaves behind: cursor at the
/// top left, page 0, 16-line characters, VGA present.
fn write_vga_text_screen_info(zp: &mut [u8]) {
    zp[0x00] = 0; // orig_x
    zp[0x01] = 0; // orig_y
    put_u16(zp, 0x04, 0); // orig_video_page
    zp[0x06] = 3; // orig_video_mode
    zp[0x07] = 80; // orig_video_cols
    put_u16(zp, 0x0A, 0); // orig_video_ega_bx
    zp[0x0E] = 25; // orig_video_lines
    zp[0x0F] = 1; // orig_video_isVGA (VIDEO_TYPE_VGAC)
    put_u16(zp, 0x10, 16); // orig_video_points
}
