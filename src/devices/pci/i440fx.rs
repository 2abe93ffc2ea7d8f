//! Intel 440FX PCI and memory controller (PMC), function 00.0: the host bridge.
//!
//! Software-visible parts modelled here:
//!
//! - Identity 8086:1237 revision 02, class 06/00/00.
//! - PAM0-PAM6 (0x59-0x5F), the Programmable Attribute Map for the legacy BIOS area. Each
//!   4-bit field has bit 0 = read enable (reads come from DRAM) and bit 1 = write enable
//!   (writes go to DRAM); with a bit clear the access goes to the PCI/ISA side (the BIOS ROM
//!   or nothing). PAM0's high nibble covers 0xF0000-0xFFFFF (its low nibble is reserved);
//!   PAM1-PAM6 each cover two 16 KiB regions, low nibble first: PAM1 = 0xC0000/0xC4000,
//!   PAM2 = 0xC8000/0xCC000, PAM3 = 0xD0000/0xD4000, PAM4 = 0xD8000/0xDC000,
//!   PAM5 = 0xE0000/0xE4000, PAM6 = 0xE8000/0xEC000. All start at 0 (accesses go to ROM).
//! - SMRAM (0x72), reset value 0x02, stored only: there is no SMM on this machine, so
//!   the SMRAM window at 0xA0000 is never opened to the CPU.
//!
//! The other device-specific registers (DRAM control and row boundaries, PMCCFG, ...)
//! read back what was written; memory sizing comes from the board's configuration
//! (fw_cfg / CMOS), not from DRB registers.

use super::{
    PamRegion, PciFunction, CMD_BUS_MASTER, CMD_MEMORY, COMMAND, STATUS, STATUS_DEVSEL_MEDIUM,
    STATUS_FAST_BACK,
};

pub const VENDOR: u16 = 0x8086;
pub const DEVICE: u16 = 0x1237;
pub const REVISION: u8 = 0x02;

/// PAM0; PAM1-PAM6 follow at 0x5A-0x5F.
pub const PAM0: u8 = 0x59;
pub const SMRAM: u8 = 0x72;
pub const SMRAM_RESET: u8 = 0x02;

/// The i440FX host bridge function.
pub fn host_bridge() -> PciFunction {
    let mut f = PciFunction::new(VENDOR, DEVICE, REVISION, 0x06_00_00, 0x00);
    // The PMC always responds to memory cycles and masters; the bits are hardwired.
    f.set_initial(COMMAND, &(CMD_MEMORY | CMD_BUS_MASTER).to_le_bytes());
    f.set_wmask(COMMAND, &[0x40, 0x01]); // parity error response, SERR#
    f.set_initial(
        STATUS,
        &(STATUS_FAST_BACK | STATUS_DEVSEL_MEDIUM).to_le_bytes(),
    );
    f.set_wmask(PAM0, &[0x30]);
    for i in 1..=6 {
        f.set_wmask(PAM0 + i, &[0x33]);
    }
    f.set_initial(SMRAM, &[SMRAM_RESET]);
    // D_OPEN, D_CLS, D_LCK, G_SMRAME are writable; C_BASE_SEG (bits 2:0) is fixed at 010b.
    f.set_wmask(SMRAM, &[0x78]);
    f
}

/// The regions in the order PAM0-high, PAM1-low, PAM1-high, ..., PAM6-high.
pub fn pam_regions(f: &PciFunction) -> [PamRegion; 13] {
    let cfg = &f.config.0;
    let mut out = [PamRegion {
        base: 0,
        len: 0,
        read_ram: false,
        write_ram: false,
    }; 13];
    let attr = |nibble: u8| (nibble & 1 != 0, nibble & 2 != 0);
    let (r, w) = attr(cfg[PAM0 as usize] >> 4);
    out[0] = PamRegion {
        base: 0xF0000,
        len: 0x10000,
        read_ram: r,
        write_ram: w,
    };
    for i in 0..12usize {
        let reg = cfg[PAM0 as usize + 1 + i / 2];
        let nibble = if i % 2 == 0 { reg & 0xF } else { reg >> 4 };
        let (r, w) = attr(nibble);
        out[1 + i] = PamRegion {
            base: 0xC0000 + 0x4000 * i as u32,
            len: 0x4000,
            read_ram: r,
            write_ram: w,
        };
    }
    out
}
