//! Loading kernels without firmware: Linux bzImages (32-bit boot protocol) and Multiboot v1
//! kernels.
//!
//! The loaders are pure functions from the kernel file (and an optional initrd or module),
//! a command line and the RAM size to a *load plan*: byte regions to copy into guest
//! physical memory, ranges to zero, and the CPU state to enter the kernel with. They touch
//! no machine state; the machine copies the regions, loads the GDT and segment registers
//! and starts the CPU (see [`EntryState`]).
//!
//! - [`detect`] tells a bzImage from a Multiboot kernel.
//! - [`linux::load_linux`] follows the x86 Linux boot protocol (Documentation/x86/boot.rst,
//!   protocol 2.06 or newer, 32-bit entry): it parses the setup header, builds the zero page
//!   (`struct boot_params`: header copy, E820 map, memory sizes, VGA text `screen_info`,
//!   command line and initrd pointers) and plans the protected-mode kernel at 1 MiB and the
//!   initrd as high in RAM as the kernel allows.
//! - [`multiboot::load_multiboot`] follows the Multiboot specification 0.6.96: header in the
//!   first 8 KiB, a.out-kludge address fields or ELF32 program headers, modules (the initrd
//!   is module 0), memory map, command line and boot loader name; EAX = 0x2BADB002 and EBX
//!   = the information structure at entry.
//! - [`e820`] builds the PC memory map both use.
//!
//! All input is treated as hostile: every field is bounds-checked, all address arithmetic
//! is done in 64 bits or checked, and a bad image gives a [`BootError`] naming the problem,
//! never a panic. The plan never allocates more than the input's size plus a few pages:
//! zero-filled ranges (BSS) are listed, not materialised.
//!
//! Low-memory layout used by both loaders (all below the EBDA at 0x9F000):
//!
//! | address | what |
//! |---|---|
//! | 0x1000 | flat GDT (null, null, code 0x10, data 0x18), 32 bytes |
//! | 0x1020-0x8000 | scratch stack (ESP = 0x8000 at entry; neither protocol promises one) |
//! | 0x10000 | Linux zero page (4 KiB); Multiboot information block when free |
//! | 0x20000 | Linux command line |
//! | 0x100000 | Linux protected-mode kernel; Multiboot kernels go where their headers say |

pub mod e820;
pub mod linux;
pub mod multiboot;

use std::fmt;

pub use e820::{E820Entry, E820Type};
pub use linux::{load_linux, load_linux_with, LinuxBootOptions, LinuxBootSetup, LinuxHeader};
pub use multiboot::{
    load_multiboot, load_multiboot_with, MultibootModule, MultibootOptions, MultibootSetup,
};

/// Where the loaders put the flat GDT of [`flat_gdt_bytes`].
pub const GDT_ADDR: u32 = 0x1000;
/// GDTR limit for [`flat_gdt_bytes`].
pub const GDT_LIMIT: u16 = 31;
/// Code selector of the flat GDT (`__BOOT_CS` of the Linux boot protocol).
pub const BOOT_CS: u16 = 0x10;
/// Data selector of the flat GDT (`__BOOT_DS`).
pub const BOOT_DS: u16 = 0x18;
/// ESP at entry: top of the scratch stack below 0x8000.
pub const SCRATCH_STACK_TOP: u32 = 0x8000;

/// A GDT with two null descriptors, a flat 4 GiB 32-bit code segment at selector 0x10
/// (base 0, limit 0xFFFFF pages, type 0xB: execute/read, accessed) and a flat 4 GiB data
/// segment at 0x18 (type 0x3: read/write, accessed). The accessed bits are preset so
/// loading the selectors never writes to the table.
pub fn flat_gdt_bytes() -> [u8; 32] {
    let mut g = [0u8; 32];
    g[16..24].copy_from_slice(&0x00CF_9B00_0000_FFFFu64.to_le_bytes());
    g[24..32].copy_from_slice(&0x00CF_9300_0000_FFFFu64.to_le_bytes());
    g
}

/// Bytes to copy to guest physical memory.
#[derive(Clone, PartialEq, Eq)]
pub struct LoadRegion {
    pub addr: u32,
    pub bytes: Vec<u8>,
    /// What the bytes are ("zero page", "kernel", "initrd", ...), for logs and errors.
    pub what: &'static str,
}

impl LoadRegion {
    /// Exclusive end address (as u64: a region may end exactly at 4 GiB).
    pub fn end(&self) -> u64 {
        self.addr as u64 + self.bytes.len() as u64
    }
}

impl fmt::Debug for LoadRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "LoadRegion({} at {:#x}..{:#x}, {} bytes)",
            self.what,
            self.addr,
            self.end(),
            self.bytes.len()
        )
    }
}

/// The flat protected-mode GDT the entry state needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GdtSetup {
    /// GDTR base (the table itself is one of the plan's regions).
    pub base: u32,
    /// GDTR limit.
    pub limit: u16,
    /// CS selector: a flat 32-bit execute/read segment (base 0, limit 4 GiB, CPL 0).
    pub cs: u16,
    /// DS, ES, FS, GS and SS selector: a flat 32-bit read/write segment.
    pub ds: u16,
}

/// CPU state at kernel entry: 32-bit protected mode, paging off, interrupts off.
///
/// The machine loads GDTR from [`gdt`](Self::gdt) (the table is in the plan's regions),
/// loads CS and the data segment registers with the flat descriptors it names, sets CR0,
/// EFLAGS and the general registers, and starts at EIP. The IDT is not set up (IDTR may
/// stay at its reset value: both protocols enter with interrupts off and the kernel loads
/// its own). A20 must be enabled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryState {
    pub eip: u32,
    pub eax: u32,
    pub ebx: u32,
    pub ecx: u32,
    pub edx: u32,
    pub esi: u32,
    pub edi: u32,
    pub ebp: u32,
    pub esp: u32,
    /// 0x2: IF and all flags clear.
    pub eflags: u32,
    /// PE and ET set, PG clear.
    pub cr0: u32,
    pub gdt: GdtSetup,
}

impl EntryState {
    fn flat(eip: u32) -> EntryState {
        EntryState {
            eip,
            eax: 0,
            ebx: 0,
            ecx: 0,
            edx: 0,
            esi: 0,
            edi: 0,
            ebp: 0,
            esp: SCRATCH_STACK_TOP,
            eflags: 0x2,
            cr0: 0x11,
            gdt: GdtSetup {
                base: GDT_ADDR,
                limit: GDT_LIMIT,
                cs: BOOT_CS,
                ds: BOOT_DS,
            },
        }
    }
}

/// What kind of kernel image a file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelKind {
    /// A Linux boot-protocol image (the "HdrS" setup header signature at 0x202).
    BzImage,
    /// A Multiboot v1 image (a valid header in the first 8 KiB).
    Multiboot,
    /// Neither.
    Unknown,
}

/// Tell a bzImage from a Multiboot kernel by their signatures. A file with both is a
/// bzImage (Linux's own header wins, as with other loaders).
pub fn detect(kernel: &[u8]) -> KernelKind {
    if linux::has_setup_header(kernel) {
        KernelKind::BzImage
    } else if multiboot::find_header(kernel).is_ok() {
        KernelKind::Multiboot
    } else {
        KernelKind::Unknown
    }
}

/// Why a kernel could not be loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BootError {
    /// The file ends before a structure it must contain.
    Truncated {
        what: &'static str,
        need: u64,
        have: u64,
    },
    /// A signature is missing.
    BadMagic { what: &'static str },
    /// The Linux boot protocol version is older than the loader supports.
    ProtocolTooOld { version: u16, min: u16 },
    /// A zImage (LOADED_HIGH clear): its kernel would have to go below 1 MiB.
    NotLoadedHigh,
    /// A header field has an impossible value.
    BadField {
        field: &'static str,
        value: u64,
        why: &'static str,
    },
    /// The kernel (or its decompression buffer) does not fit in RAM.
    KernelDoesNotFit { start: u64, end: u64, ram_size: u32 },
    /// No room for the initrd between the kernel and the highest address it may use.
    InitrdTooLarge { size: u64, room: u64, limit: u64 },
    /// The command line is longer than the kernel accepts.
    CmdlineTooLong { len: usize, max: usize },
    /// The command line contains a NUL byte.
    CmdlineHasNul,
    /// No Multiboot v1 header in the first 8 KiB.
    NoMultibootHeader,
    /// The Multiboot header's checksum is wrong.
    MultibootChecksum { offset: usize },
    /// Only a Multiboot 2 header was found.
    Multiboot2Only,
    /// The Multiboot header requires features this loader does not know.
    MultibootUnsupportedFlags { flags: u32 },
    /// The ELF image is malformed.
    BadElf { why: &'static str },
    /// A piece of the kernel would be loaded outside RAM.
    OutsideRam {
        what: &'static str,
        start: u64,
        end: u64,
    },
    /// Two pieces of the kernel would be loaded over each other.
    Overlap {
        what: &'static str,
        start: u64,
        end: u64,
    },
    /// No free RAM for a loader structure or a module.
    NoRoom { what: &'static str, size: u64 },
    /// The memory map given to the loader is unusable.
    BadMemoryMap { why: &'static str },
}

impl fmt::Display for BootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use BootError::*;
        match self {
            Truncated { what, need, have } => write!(
                f,
                "image truncated: {what} needs {need} bytes but the file has {have}"
            ),
            BadMagic { what } => write!(f, "bad magic: {what}"),
            ProtocolTooOld { version, min } => write!(
                f,
                "Linux boot protocol {}.{:02} is too old (need {}.{:02} or newer)",
                version >> 8,
                version & 0xFF,
                min >> 8,
                min & 0xFF
            ),
            NotLoadedHigh => write!(
                f,
                "zImage (LOADED_HIGH clear in loadflags) is not supported: build a bzImage"
            ),
            BadField { field, value, why } => {
                write!(f, "bad header field {field} = {value:#x}: {why}")
            }
            KernelDoesNotFit {
                start,
                end,
                ram_size,
            } => write!(
                f,
                "kernel does not fit in RAM: it needs {start:#x}..{end:#x} but RAM is {} MiB \
                 ({ram_size:#x} bytes)",
                ram_size >> 20
            ),
            InitrdTooLarge { size, room, limit } => write!(
                f,
                "initrd too large: {size} bytes, but only {room} bytes of RAM are free between \
                 the kernel and {limit:#x} (the highest address the kernel accepts or the \
                 end of RAM); give the machine more memory"
            ),
            CmdlineTooLong { len, max } => write!(
                f,
                "command line too long: {len} bytes, the kernel accepts at most {max}"
            ),
            CmdlineHasNul => write!(f, "command line contains a NUL byte"),
            NoMultibootHeader => {
                write!(
                    f,
                    "no Multiboot header (magic 0x1BADB002) in the first 8 KiB"
                )
            }
            MultibootChecksum { offset } => write!(
                f,
                "Multiboot header at file offset {offset:#x} has a bad checksum \
                 (magic + flags + checksum must be 0)"
            ),
            Multiboot2Only => write!(
                f,
                "only a Multiboot 2 header (magic 0xE85250D6) was found; Multiboot v1 is supported"
            ),
            MultibootUnsupportedFlags { flags } => write!(
                f,
                "Multiboot header requires unsupported features (flags {flags:#x}; known \
                 required bits are 0, 1 and 2)"
            ),
            BadElf { why } => write!(f, "bad ELF image: {why}"),
            OutsideRam { what, start, end } => {
                write!(f, "{what} at {start:#x}..{end:#x} is not in RAM")
            }
            Overlap { what, start, end } => {
                write!(
                    f,
                    "{what} at {start:#x}..{end:#x} overlaps another part of the image"
                )
            }
            NoRoom { what, size } => {
                write!(f, "no free RAM for the {what} ({size} bytes)")
            }
            BadMemoryMap { why } => write!(f, "bad memory map: {why}"),
        }
    }
}

impl std::error::Error for BootError {}

/// Little-endian field readers over a byte slice that return `None` past the end.
pub(crate) trait ReadLe {
    fn u8_at(&self, off: usize) -> Option<u8>;
    fn u16_at(&self, off: usize) -> Option<u16>;
    fn u32_at(&self, off: usize) -> Option<u32>;
    fn u64_at(&self, off: usize) -> Option<u64>;
}

impl ReadLe for [u8] {
    fn u8_at(&self, off: usize) -> Option<u8> {
        self.get(off).copied()
    }
    fn u16_at(&self, off: usize) -> Option<u16> {
        let b = self.get(off..off.checked_add(2)?)?;
        Some(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32_at(&self, off: usize) -> Option<u32> {
        let b = self.get(off..off.checked_add(4)?)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64_at(&self, off: usize) -> Option<u64> {
        let b = self.get(off..off.checked_add(8)?)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Some(u64::from_le_bytes(a))
    }
}

/// Little-endian writers into a fixed buffer (the caller owns the layout; offsets are
/// constants inside the buffer).
pub(crate) fn put_u16(buf: &mut [u8], off: usize, v: u16) {
    buf[off..off + 2].copy_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_u32(buf: &mut [u8], off: usize, v: u32) {
    buf[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

pub(crate) fn put_u64(buf: &mut [u8], off: usize, v: u64) {
    buf[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

/// Check a command line and return it with its terminating NUL.
pub(crate) fn cmdline_bytes(cmdline: &str, max: usize) -> Result<Vec<u8>, BootError> {
    if cmdline.as_bytes().contains(&0) {
        return Err(BootError::CmdlineHasNul);
    }
    if cmdline.len() > max {
        return Err(BootError::CmdlineTooLong {
            len: cmdline.len(),
            max,
        });
    }
    let mut v = Vec::with_capacity(cmdline.len() + 1);
    v.extend_from_slice(cmdline.as_bytes());
    v.push(0);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gdt_descriptors() {
        let g = flat_gdt_bytes();
        assert_eq!(&g[0..16], &[0u8; 16]);
        // base 0, limit 0xFFFFF, G=1, D=1, P=1, DPL 0, S=1
        assert_eq!(g[16..24], [0xFF, 0xFF, 0, 0, 0, 0x9B, 0xCF, 0]);
        assert_eq!(g[24..32], [0xFF, 0xFF, 0, 0, 0, 0x93, 0xCF, 0]);
        assert_eq!(GDT_LIMIT as usize, g.len() - 1);
    }

    #[test]
    fn readers_stop_at_the_end() {
        let b = [1u8, 2, 3, 4, 5];
        assert_eq!(b.u32_at(1), Some(0x05040302));
        assert_eq!(b.u32_at(2), None);
        assert_eq!(b.u16_at(usize::MAX), None);
        assert_eq!(b.u64_at(0), None);
    }

    #[test]
    fn cmdline_checks() {
        assert_eq!(cmdline_bytes("ab", 2).unwrap(), b"ab\0");
        assert!(matches!(
            cmdline_bytes("abc", 2),
            Err(BootError::CmdlineTooLong { len: 3, max: 2 })
        ));
        assert_eq!(cmdline_bytes("a\0b", 9), Err(BootError::CmdlineHasNul));
    }
}
