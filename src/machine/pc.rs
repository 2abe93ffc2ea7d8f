//! The PC: CPU, memory and the board (see `board.rs`), with the run loop that drives
//! virtual time.
//!
//! Time: the run loop lets the CPU execute until the earliest device deadline (an
//! instruction count), then lets the devices act (`advance`), which may raise
//! interrupts. While the CPU waits in HLT with interrupts enabled, the clock jumps to
//! the next deadline: idle time costs no host time and needs no host clock.

use super::board::PcBoard;
use crate::clock::Clock;
use crate::cpu::flags::IF;
use crate::cpu::{Cpu, CpuModel, RunExit};
use crate::devices::bus::StopRequest;
use crate::devices::fw_cfg::{FwCfg, E820_RAM, E820_RESERVED};
use crate::firmware::acpi::AcpiTables;
use crate::mmu::PhysMem;

/// What the machine starts from.
#[derive(Clone, Debug)]
pub enum BootSource {
    /// A BIOS image (64, 128 or 256 KiB; SeaBIOS's `bios-256k.bin`): mapped at the top
    /// of 4 GiB with its last 128 KiB (or all of a smaller image) below 1 MiB.
    Bios(Vec<u8>),
    /// A kernel loaded directly, without firmware: a Linux bzImage (boot protocol) or a
    /// Multiboot v1 image; `initrd` becomes the initrd or module 0.
    Kernel {
        kernel: Vec<u8>,
        initrd: Option<Vec<u8>>,
        cmdline: String,
    },
    /// Nothing loaded: the machine's state comes from a snapshot restored next
    /// ([`PcMachine::restore_snapshot`]) into a machine without firmware in ROM.
    None,
}

/// The machine configuration. It is part of a snapshot and checked on resume.
#[derive(Clone, Debug)]
pub struct PcConfig {
    /// RAM in bytes (at least 2 MiB, at most 3.5 GiB: above that is the PCI hole).
    pub ram_size: u64,
    pub clock: Clock,
    /// Wall-clock time of power-on for the RTC (seconds since the Unix epoch).
    pub rtc_base: i64,
    /// Copy SeaBIOS debug output (port 0x402) to the debug console.
    pub firmware_debug: bool,
    /// A VGA option ROM (SeaVGABIOS `vgabios-isavga.bin`) for the firmware to run.
    pub vga_bios: Option<Vec<u8>>,
    /// The processor model.
    pub cpu_model: CpuModel,
}

impl Default for PcConfig {
    fn default() -> Self {
        PcConfig {
            ram_size: 128 << 20,
            clock: Clock::default(),
            // A fixed, documented default (never the host clock).
            rtc_base: crate::clock::DEFAULT_RTC_BASE,
            firmware_debug: false,
            vga_bios: None,
            cpu_model: CpuModel::default(),
        }
    }
}

/// Why [`PcMachine::run`] returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MachineExit {
    /// The guest powered the machine off (ACPI S5).
    PowerOff,
    /// The instruction budget is used up.
    InstructionLimit,
    /// The CPU halted with interrupts disabled: nothing can wake it.
    Dead,
    /// The CPU waits for an interrupt and no device will raise one without host input
    /// (a key, a serial byte). `icount` stays where it is.
    Idle,
    /// A guest write to the isa-debug-exit port.
    DebugExit(u32),
    /// The guest used a feature this build does not implement.
    Unsupported {
        what: &'static str,
        cs: u16,
        eip: u32,
    },
}

pub const MIN_RAM: u64 = 2 << 20;
pub const MAX_RAM: u64 = 0xE000_0000;

#[derive(Debug)]
pub struct MachineError(pub String);

impl std::fmt::Display for MachineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for MachineError {}

pub struct PcMachine {
    pub config: PcConfig,
    pub cpu: Cpu,
    pub mem: PhysMem,
    pub board: PcBoard,
    /// Identity (size, sampled content hash) of each attached disk's base image, taken
    /// when the machine was built; part of the configuration a snapshot checks.
    pub(crate) disk_ids: [Option<super::snapshot::DiskIdentity>; 4],
    /// Host input events delivered so far ([`crate::replay::deliver`]): where this
    /// machine stands in a recording of its input. Saved in snapshots (optional section
    /// `input`) but not guest-visible, so not part of [`PcMachine::state_hash`].
    pub host_inputs: u64,
}

impl std::fmt::Debug for PcMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcMachine")
            .field("config", &self.config)
            .field("cpu", &self.cpu)
            .finish()
    }
}

/// The MTRRs as SeaBIOS leaves them (`mtrr_setup`), for direct kernel boot: below 1 MiB
/// RAM write-back, the VGA window uncached and the ROM area write-protected; 3.5-4 GiB
/// (the PCI hole, above [`MAX_RAM`]) uncached; everything else write-back by default.
fn firmware_mtrrs(m: &mut crate::cpu::state::Msrs) {
    const UC: u64 = 0;
    const WP: u64 = 0x0505_0505_0505_0505;
    const WB: u64 = 0x0606_0606_0606_0606;
    m.mtrr_fixed = [WB, WB, UC, WP, WP, WP, WP, WP, WP, WP, WP];
    m.mtrr_var = [0; 16];
    let phys_mask = (1u64 << crate::cpu::PHYS_ADDR_BITS) - 1;
    m.mtrr_var[0] = MAX_RAM | UC;
    m.mtrr_var[1] = (0u64.wrapping_sub(0x1_0000_0000 - MAX_RAM) & phys_mask) | 0x800;
    // Fixed and variable ranges enabled, default type write-back.
    m.mtrr_def_type = 0xC06;
}

/// The e820 map of a PC with `ram` bytes: conventional memory up to the EBDA, the
/// legacy hole (VGA, option ROMs, BIOS) reserved, extended memory above 1 MiB.
pub fn e820_map(ram: u64) -> Vec<(u64, u64, u32)> {
    vec![
        (0, 0x9_FC00, E820_RAM),
        (0x9_FC00, 0x400, E820_RESERVED),
        (0xF_0000, 0x1_0000, E820_RESERVED),
        (0x10_0000, ram - 0x10_0000, E820_RAM),
        (0xFFFC_0000, 0x4_0000, E820_RESERVED),
    ]
}

impl PcMachine {
    /// A PC with `config`, starting from `boot`, with `drives` on the IDE controller.
    pub fn new(
        config: PcConfig,
        boot: BootSource,
        drives: crate::devices::ide::IdeDrives,
    ) -> Result<PcMachine, MachineError> {
        let ram = config.ram_size;
        if !(MIN_RAM..=MAX_RAM).contains(&ram) || ram % (1 << 20) != 0 {
            return Err(MachineError(format!(
                "memory size {} MiB is not supported: use a whole number of MiB from {} to {}",
                ram >> 20,
                MIN_RAM >> 20,
                MAX_RAM >> 20
            )));
        }
        let mut mem = PhysMem::new_pc(ram as usize);
        let mut fw_cfg = FwCfg::new(ram, 1);
        fw_cfg.add_e820(&e820_map(ram));
        for (name, data) in AcpiTables::fw_cfg_files(PcBoard::pm_ports()) {
            fw_cfg.add_file(&name, data);
        }
        if let Some(rom) = &config.vga_bios {
            fw_cfg.add_file("vgaroms/vgabios-isavga.bin", rom.clone());
        }
        if let BootSource::Bios(image) = &boot {
            map_bios(&mut mem, image)?;
        }
        let mut drives = drives;
        let disk_ids = super::snapshot::disk_identities(&mut drives)
            .map_err(|e| MachineError(format!("cannot read a disk: {e}")))?;
        let board = PcBoard::new(&config, fw_cfg, drives);
        let mut m = PcMachine {
            cpu: Cpu::with_model(config.cpu_model),
            config,
            mem,
            board,
            disk_ids,
            host_inputs: 0,
        };
        m.reset();
        if let BootSource::Kernel {
            kernel,
            initrd,
            cmdline,
        } = &boot
        {
            m.load_kernel(kernel, initrd.as_deref(), cmdline)?;
        }
        Ok(m)
    }

    /// Where direct kernel boot puts the ACPI tables (in the BIOS area, where an OS
    /// scans for the RSDP).
    pub const ACPI_BASE: u32 = 0xE_0000;

    /// Direct kernel boot: do what firmware would have done (PCI power-management base,
    /// ACPI tables in RAM), load the kernel per its protocol and enter it.
    fn load_kernel(
        &mut self,
        kernel: &[u8],
        initrd: Option<&[u8]>,
        cmdline: &str,
    ) -> Result<(), MachineError> {
        use crate::boot::{self, e820::E820Entry, e820::E820Type, KernelKind};
        let err = |e: boot::BootError| MachineError(format!("cannot boot the kernel: {e}"));
        // PCI set up as SeaBIOS leaves it: PIRQ routing (level-triggered lines), the IDE
        // bus-master block, the PM block at PM_BASE.
        let routes = self
            .board
            .pci
            .firmware_setup(PcBoard::BMIDE_BASE, PcBoard::PM_BASE);
        let mut elcr: u16 = 0;
        for irq in routes {
            elcr |= 1 << irq;
        }
        self.board.set_elcr(elcr);
        // Shadow RAM read/write everywhere below 1 MiB (PAM0 high nibble, PAM1-PAM6), as
        // firmware leaves it: the ACPI tables live there.
        let host = crate::devices::pci::HOST_BRIDGE_DEVFN;
        self.board.pci.config_write(host, 0x59, 1, 0x30);
        for reg in 0x5A..=0x5F {
            self.board.pci.config_write(host, reg, 1, 0x33);
        }
        self.board.pci.sync_memory(&mut self.mem);
        self.board.pm.set_base(self.board.pci.pm_io_base());
        self.board.ide.set_bm_base(self.board.pci.bmide_base());
        let acpi = AcpiTables::build(Self::ACPI_BASE, PcBoard::pm_ports());
        self.mem.write_bytes(Self::ACPI_BASE, &acpi.bytes);
        let ram = self.config.ram_size as u32;
        let (regions, zero, entry) = match boot::detect(kernel) {
            KernelKind::BzImage => {
                let mut opts = boot::linux::LinuxBootOptions::new(ram);
                opts.acpi_rsdp = Some(acpi.rsdp);
                opts.e820_extra.push(E820Entry {
                    addr: Self::ACPI_BASE as u64,
                    size: acpi.bytes.len().next_multiple_of(4096) as u64,
                    kind: E820Type::Acpi,
                });
                let s =
                    boot::linux::load_linux_with(kernel, initrd, cmdline, &opts).map_err(err)?;
                (s.regions, Vec::new(), s.entry)
            }
            KernelKind::Multiboot => {
                let s =
                    boot::multiboot::load_multiboot(kernel, initrd, cmdline, ram).map_err(err)?;
                (s.regions, s.zero_fill, s.entry)
            }
            KernelKind::Unknown => {
                return Err(MachineError(
                    "the kernel is neither a Linux bzImage nor a Multiboot image".into(),
                ))
            }
        };
        for r in &regions {
            self.mem.write_bytes(r.addr, &r.bytes);
        }
        for &(addr, len) in &zero {
            self.mem.write_bytes(addr, &vec![0; len as usize]);
        }
        if self.cpu.model().has(crate::cpu::cpuid::edx1::MTRR) {
            firmware_mtrrs(&mut self.cpu.state.msr);
        }
        let s = &mut self.cpu.state;
        s.enter_flat32();
        s.seg[crate::cpu::SegReg::Cs as usize].selector = entry.gdt.cs;
        for seg in [
            crate::cpu::SegReg::Ds,
            crate::cpu::SegReg::Es,
            crate::cpu::SegReg::Ss,
            crate::cpu::SegReg::Fs,
            crate::cpu::SegReg::Gs,
        ] {
            s.seg[seg as usize].selector = entry.gdt.ds;
        }
        s.gdtr = crate::cpu::state::TableReg {
            base: entry.gdt.base,
            limit: entry.gdt.limit as u32,
        };
        s.cr0 = entry.cr0;
        s.set_eflags(entry.eflags);
        s.gpr = [
            entry.eax, entry.ecx, entry.edx, entry.ebx, entry.esp, entry.ebp, entry.esi, entry.edi,
        ];
        s.eip = entry.eip;
        self.cpu.flush_caches();
        Ok(())
    }

    /// RESET: CPU to its power-on state, devices reset, RAM kept.
    pub fn reset(&mut self) {
        self.cpu.reset();
        self.board.reset(&mut self.mem);
    }

    /// Run for up to `budget` instructions of virtual time.
    pub fn run(&mut self, budget: u64) -> MachineExit {
        let end = self.cpu.state.icount.saturating_add(budget);
        loop {
            let now = self.cpu.state.icount;
            self.board.advance(now, &mut self.mem);
            if now >= end {
                return MachineExit::InstructionLimit;
            }
            self.board.sync_apic_base(self.cpu.state.msr.apic_base);
            let deadline = self.board.next_deadline().unwrap_or(u64::MAX);
            let stop = deadline.clamp(now + 1, end);
            let r = self.cpu.run(&mut self.mem, &mut self.board, stop - now);
            match r {
                RunExit::InstructionLimit => {}
                RunExit::Halted => {
                    if self.cpu.state.eflags() & IF == 0 {
                        return MachineExit::Dead;
                    }
                    match self.board.next_deadline() {
                        // Idle: jump the clock to the next device event.
                        Some(d) if d > now => self.cpu.state.icount = d.min(end),
                        Some(_) => {}
                        None => return MachineExit::Idle,
                    }
                }
                RunExit::Stopped(StopRequest::PowerOff) => return MachineExit::PowerOff,
                RunExit::Stopped(StopRequest::DebugExit(v)) => return MachineExit::DebugExit(v),
                RunExit::Stopped(StopRequest::Reset) | RunExit::TripleFault => self.reset(),
                RunExit::Unsupported { what, cs, eip } => {
                    return MachineExit::Unsupported { what, cs, eip }
                }
                RunExit::Exception { .. } => {
                    unreachable!("the PC machine never sets stop_on_exception")
                }
            }
        }
    }
}

/// Map a BIOS image at the top of 4 GiB and its last 128 KiB (or all of it, if smaller)
/// below 1 MiB.
fn map_bios(mem: &mut PhysMem, image: &[u8]) -> Result<(), MachineError> {
    let len = image.len();
    if ![64 << 10, 128 << 10, 256 << 10, 512 << 10, 1 << 20].contains(&len) {
        return Err(MachineError(format!(
            "BIOS image is {len} bytes; expected 64, 128, 256 or 512 KiB or 1 MiB"
        )));
    }
    let top = (0x1_0000_0000u64 - len as u64) as u32;
    mem.map_rom(image, &[top])
        .map_err(|e| MachineError(format!("cannot map BIOS: {e}")))?;
    let low_len = len.min(128 << 10) as u32;
    mem.alias(0u32.wrapping_sub(low_len), low_len, 0x10_0000 - low_len)
        .map_err(|e| MachineError(format!("cannot map BIOS: {e}")))?;
    Ok(())
}
