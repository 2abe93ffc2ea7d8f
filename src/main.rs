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
    /// Disk image (raw) to boot from.
    disk: Option<std::path::PathBuf>,
    /// BIOS image (default: SeaBIOS from /usr/share/seabios or /usr/share/qemu).
    #[arg(long)]
    bios: Option<std::path::PathBuf>,
    /// RAM size in MiB.
    #[arg(short = 'm', long, default_value_t = 128)]
    memory: u64,
    /// Stop after this many instructions of virtual time.
    #[arg(long)]
    max_instructions: Option<u64>,
    /// Copy the firmware's debug output (port 0x402) to stderr.
    #[arg(long)]
    firmware_debug: bool,
}

const BIOS_SEARCH: &[&str] = &[
    "/usr/share/seabios/bios-256k.bin",
    "/usr/share/seabios/bios.bin",
    "/usr/share/qemu/bios-256k.bin",
    "/usr/share/qemu/bios.bin",
];

fn boot(a: BootArgs) -> ExitCode {
    use x86emu::machine::{BootSource, MachineExit, PcConfig, PcMachine};
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
    let bios = match std::fs::read(&bios_path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("x86emu: cannot read BIOS {}: {e}", bios_path.display());
            return ExitCode::from(1);
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
    let mut m = match PcMachine::new(config, BootSource::Bios(bios)) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("x86emu: {e}");
            return ExitCode::from(1);
        }
    };
    let _ = a.disk;
    let exit = m.run(a.max_instructions.unwrap_or(u64::MAX));
    let s = &m.cpu.state;
    let cs = s.seg[SegReg::Cs as usize].selector;
    match exit {
        MachineExit::PowerOff => ExitCode::from(0),
        MachineExit::DebugExit(v) => ExitCode::from(((v << 1) | 1) as u8),
        MachineExit::InstructionLimit => {
            eprintln!(
                "x86emu: instruction limit reached at {cs:04x}:{:08x}",
                s.eip
            );
            ExitCode::from(124)
        }
        MachineExit::Dead => {
            eprintln!(
                "x86emu: the CPU halted with interrupts disabled at {cs:04x}:{:08x}",
                s.eip
            );
            ExitCode::from(2)
        }
        MachineExit::Idle => {
            eprintln!(
                "x86emu: the guest waits for input that cannot come (at {cs:04x}:{:08x})",
                s.eip
            );
            ExitCode::from(2)
        }
        MachineExit::Unsupported { what, cs, eip } => {
            eprintln!("x86emu: unsupported: {what} at {cs:04x}:{eip:08x}");
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
