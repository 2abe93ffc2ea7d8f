//! The `x86emu` command line. No emulation logic lives here.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use x86emu::cpu::SegReg;
use x86emu::devices::bus::StopRequest;
use x86emu::{RomMachine, RunExit};

#[derive(Parser)]
#[command(name = "x86emu", version, about = "A pure-software IA-32 PC emulator")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a 64 KiB or 128 KiB BIOS-replacement ROM (test ROMs, CPU test suites).
    ///
    /// The ROM is mapped below 1 MiB and at the top of 4 GiB and the CPU starts at
    /// F000:FFF0. Bytes written to port 0xE9 go to stdout, POST codes (the POST port and
    /// 0x80) to stderr. Exit status: (value << 1) | 1 for a write of `value` to port 0xF4,
    /// 0 when the CPU halts, 124 at the instruction limit, 2 for a shutdown (triple
    /// fault) or an unimplemented feature, 1 for bad input.
    RunRom {
        /// The ROM image.
        file: std::path::PathBuf,
        /// Stop after this many instructions (REP iterations count one each).
        #[arg(long, default_value_t = 1_000_000_000)]
        max_instructions: u64,
        /// POST code port (decimal or 0x-prefixed hex); 0x80 is always logged too.
        #[arg(long, default_value = "0x190", value_parser = parse_port)]
        post_port: u16,
        /// RAM size in MiB.
        #[arg(long, default_value_t = 16)]
        memory: usize,
    },
    /// Boot a PC: SeaBIOS from the disk image, or a Linux/multiboot kernel directly.
    Boot(BootArgs),
}

#[derive(clap::Args)]
struct BootArgs {
    /// Disk image (raw) to boot from (IDE primary master).
    disk: Option<std::path::PathBuf>,
    /// A second disk image (IDE primary slave).
    #[arg(long)]
    hdb: Option<std::path::PathBuf>,
    /// An ISO image in the CD-ROM drive (IDE secondary master).
    #[arg(long)]
    cdrom: Option<std::path::PathBuf>,
    /// BIOS image (default: SeaBIOS from /usr/share/seabios or /usr/share/qemu).
    #[arg(long)]
    bios: Option<std::path::PathBuf>,
    /// Boot this kernel directly, without firmware (Linux bzImage or Multiboot v1).
    #[arg(long)]
    kernel: Option<std::path::PathBuf>,
    /// Initrd for --kernel (Multiboot: module 0).
    #[arg(long, requires = "kernel")]
    initrd: Option<std::path::PathBuf>,
    /// Kernel command line for --kernel.
    #[arg(long, requires = "kernel", default_value = "")]
    append: String,
    /// RAM size in MiB.
    #[arg(short = 'm', long, default_value_t = 128)]
    memory: u64,
    /// What the terminal shows: auto (VGA text until the guest uses the serial port),
    /// text (VGA text), none (serial only).
    #[arg(long, default_value = "auto", value_parser = ["auto", "text", "none"])]
    display: String,
    /// Stop after this many instructions of virtual time.
    #[arg(long)]
    max_instructions: Option<u64>,
    /// Run as fast as possible instead of pacing virtual time to the wall clock
    /// (the default when stdin is not a terminal).
    #[arg(long)]
    no_realtime: bool,
    /// Copy the firmware's debug output (port 0x402) to stderr.
    #[arg(long)]
    firmware_debug: bool,
}

fn read_file(what: &str, p: &std::path::Path) -> Result<Vec<u8>, ExitCode> {
    std::fs::read(p).map_err(|e| {
        eprintln!("x86emu: cannot read {what} {}: {e}", p.display());
        ExitCode::from(1)
    })
}

const BIOS_SEARCH: &[&str] = &[
    "/usr/share/seabios/bios-256k.bin",
    "/usr/share/seabios/bios.bin",
    "/usr/share/qemu/bios-256k.bin",
    "/usr/share/qemu/bios.bin",
];

fn boot(a: BootArgs) -> ExitCode {
    use x86emu::console::{ConsoleExit, ConsoleOptions, Display};
    use x86emu::machine::{BootSource, MachineExit, PcConfig, PcMachine};
    let source = if let Some(k) = &a.kernel {
        let kernel = match read_file("kernel", k) {
            Ok(b) => b,
            Err(c) => return c,
        };
        let initrd = match &a.initrd {
            Some(p) => match read_file("initrd", p) {
                Ok(b) => Some(b),
                Err(c) => return c,
            },
            None => None,
        };
        BootSource::Kernel {
            kernel,
            initrd,
            cmdline: a.append.clone(),
        }
    } else {
        let bios_path = match a.bios {
            Some(p) => p,
            None => match BIOS_SEARCH
                .iter()
                .map(std::path::PathBuf::from)
                .find(|p| p.exists())
            {
                Some(p) => p,
                None => {
                    eprintln!(
                        "x86emu: no BIOS found (looked in {}); install the Debian package `seabios` or pass --bios FILE",
                        BIOS_SEARCH.join(", ")
                    );
                    return ExitCode::from(1);
                }
            },
        };
        match read_file("BIOS", &bios_path) {
            Ok(b) => BootSource::Bios(b),
            Err(c) => return c,
        }
    };
    let vga_bios = [
        "/usr/share/seabios/vgabios-isavga.bin",
        "/usr/share/qemu/vgabios-isavga.bin",
    ]
    .iter()
    .find_map(|p| std::fs::read(p).ok());
    let config = PcConfig {
        ram_size: a.memory << 20,
        firmware_debug: a.firmware_debug,
        vga_bios,
        ..PcConfig::default()
    };
    let mut drives = x86emu::devices::ide::IdeDrives::new();
    let mut attach =
        |path: &std::path::Path, cd: bool, ch: usize, unit: usize| -> Result<(), ExitCode> {
            let fail = |e: String| {
                eprintln!("x86emu: {}: {e}", path.display());
                ExitCode::from(1)
            };
            let base = x86emu::disk::RawFileDisk::open(path).map_err(|e| fail(e.to_string()))?;
            // Guest writes go to a copy-on-write overlay: the image file is never modified.
            let disk = Box::new(x86emu::disk::CowDisk::new(Box::new(base)));
            if cd {
                drives.attach_cdrom(ch, unit, Some(disk))
            } else {
                drives.attach_hard_disk(ch, unit, disk)
            }
            .map_err(|e| fail(e.to_string()))
        };
    // Primary master: the boot disk; primary slave: --hdb; secondary master: --cdrom.
    if let Some(d) = &a.disk {
        if let Err(c) = attach(d, false, 0, 0) {
            return c;
        }
    }
    if let Some(d) = &a.hdb {
        if let Err(c) = attach(d, false, 0, 1) {
            return c;
        }
    }
    if let Some(d) = &a.cdrom {
        if let Err(c) = attach(d, true, 1, 0) {
            return c;
        }
    }
    let mut m = match PcMachine::new(config, source, drives) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("x86emu: {e}");
            return ExitCode::from(1);
        }
    };
    let opts = ConsoleOptions {
        display: match a.display.as_str() {
            "text" => Display::Text,
            "none" => Display::None,
            _ => Display::Auto,
        },
        max_instructions: a.max_instructions,
        realtime: !a.no_realtime && x86emu::console::stdin_is_tty(),
    };
    let exit = match x86emu::console::run_machine(&mut m, &opts) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("x86emu: terminal error: {e}");
            return ExitCode::from(1);
        }
    };
    let s = &m.cpu.state;
    let cs = s.seg[SegReg::Cs as usize].selector;
    match exit {
        ConsoleExit::Quit => ExitCode::from(0),
        ConsoleExit::Machine(MachineExit::PowerOff) => ExitCode::from(0),
        ConsoleExit::Machine(MachineExit::DebugExit(v)) => ExitCode::from(((v << 1) | 1) as u8),
        ConsoleExit::Machine(MachineExit::InstructionLimit) => {
            eprintln!(
                "\r\nx86emu: instruction limit reached at {cs:04x}:{:08x}",
                s.eip
            );
            ExitCode::from(124)
        }
        ConsoleExit::Machine(MachineExit::Dead) => {
            eprintln!(
                "\r\nx86emu: the CPU halted with interrupts disabled at {cs:04x}:{:08x}",
                s.eip
            );
            ExitCode::from(2)
        }
        ConsoleExit::Machine(MachineExit::Idle) => {
            eprintln!("\r\nx86emu: the guest waits for input that cannot come");
            ExitCode::from(2)
        }
        ConsoleExit::Machine(MachineExit::Unsupported { what, cs, eip }) => {
            eprintln!("\r\nx86emu: unsupported: {what} at {cs:04x}:{eip:08x}");
            ExitCode::from(2)
        }
    }
}

fn parse_port(s: &str) -> Result<u16, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u16::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|e| format!("invalid port '{s}': {e}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::RunRom {
            file,
            max_instructions,
            post_port,
            memory,
        } => run_rom(&file, max_instructions, post_port, memory),
        Cmd::Boot(a) => boot(a),
    }
}

fn run_rom(file: &std::path::Path, max: u64, post_port: u16, memory_mib: usize) -> ExitCode {
    let rom = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("x86emu: cannot read ROM {}: {e}", file.display());
            return ExitCode::from(1);
        }
    };
    if !(1..=3072).contains(&memory_mib) {
        eprintln!("x86emu: --memory must be between 1 and 3072 MiB");
        return ExitCode::from(1);
    }
    let mut m = match RomMachine::new(
        &rom,
        memory_mib << 20,
        post_port,
        Box::new(std::io::stdout()),
        Box::new(std::io::stderr()),
    ) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("x86emu: {}: {e}", file.display());
            return ExitCode::from(1);
        }
    };
    let exit = m.run(max);
    if m.resets > 0 {
        eprintln!(
            "x86emu: the CPU was reset {} time(s) (triple fault or reset request)",
            m.resets
        );
    }
    let s = &m.cpu.state;
    let cs = s.seg[SegReg::Cs as usize].selector;
    match exit {
        RunExit::Stopped(StopRequest::DebugExit(v)) => ExitCode::from(((v << 1) | 1) as u8),
        RunExit::Stopped(other) => {
            eprintln!("x86emu: machine stopped: {other:?}");
            ExitCode::from(0)
        }
        RunExit::Halted => {
            if s.eflags() & x86emu::cpu::flags::IF != 0 {
                eprintln!(
                    "halted at {cs:04x}:{:08x} with interrupts enabled, but this machine has no interrupt sources",
                    s.eip
                );
            } else {
                eprintln!("halted at {cs:04x}:{:08x}", s.eip);
            }
            ExitCode::from(0)
        }
        RunExit::InstructionLimit => {
            eprintln!(
                "x86emu: instruction limit ({max}) reached at {cs:04x}:{:08x}",
                s.eip
            );
            ExitCode::from(124)
        }
        RunExit::TripleFault => {
            eprintln!("x86emu: triple fault (shutdown) at {cs:04x}:{:08x}", s.eip);
            ExitCode::from(2)
        }
        RunExit::Unsupported { what, cs, eip } => {
            eprintln!("x86emu: unsupported: {what} at {cs:04x}:{eip:08x}");
            ExitCode::from(2)
        }
        RunExit::Exception { vector, error_code } => {
            eprintln!(
                "x86emu: exception {vector} ({error_code:?}) at {cs:04x}:{:08x}",
                s.eip
            );
            ExitCode::from(2)
        }
    }
}
