//! Shared harness for running small IA-32 code snippets twice: natively on the
//! host CPU (through `tests/native/runner32.c`, built with `gcc -m32`) and in
//! the emulator (32-bit flat protected mode), with the same code and data
//! addresses in both worlds.
//!
//! A snippet is a short byte sequence that must not use the stack. Natively it
//! is followed by a RET back to the runner's trampoline; in the emulator by a
//! HLT. Registers other than ESP, the arithmetic flags plus DF, and a
//! [`DATA_LEN`]-byte data buffer at [`DATA_ADDR`] are inputs and outputs.

#![allow(dead_code)]

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Once;

use x86emu::cpu::regs::{EAX, EBP, EBX, ECX, EDI, EDX, ESI, ESP};
use x86emu::cpu::Cpu;
use x86emu::devices::bus::NullBus;
use x86emu::mmu::PhysMem;
use x86emu::RunExit;

/// Where snippets are placed (same address natively and in the emulator).
pub const CODE_ADDR: u32 = 0x0040_0000;
/// Where the data buffer is placed.
pub const DATA_ADDR: u32 = 0x0050_0000;
/// Size of the data buffer that is loaded and compared.
pub const DATA_LEN: usize = 256;
/// Page size; the code page and the data page are cleared before each case.
pub const PAGE: usize = 0x1000;
/// Longest snippet the runner accepts.
pub const MAX_CODE: usize = PAGE - 16;
/// ESP inside the emulator (snippets must not use the stack).
pub const EMU_STACK_TOP: u32 = 0x0070_0000;
/// Guest RAM for the emulator side.
pub const EMU_RAM: usize = 8 << 20;

pub const CF: u32 = 1 << 0;
pub const PF: u32 = 1 << 2;
pub const AF: u32 = 1 << 4;
pub const ZF: u32 = 1 << 6;
pub const SF: u32 = 1 << 7;
pub const DF: u32 = 1 << 10;
pub const OF: u32 = 1 << 11;
/// The six arithmetic status flags.
pub const ARITH: u32 = CF | PF | AF | ZF | SF | OF;
/// Every flag a snippet may set on input and that is compared on output.
pub const FLAGS_IO: u32 = ARITH | DF;

/// Register names in `gpr` index order (EAX ECX EDX EBX ESP EBP ESI EDI).
pub const REG_NAMES: [&str; 8] = ["eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi"];

// The emulator's register indices must follow the hardware encoding order,
// which is the order used by the runner protocol.
const _: () = assert!(
    EAX == 0 && ECX == 1 && EDX == 2 && EBX == 3 && ESP == 4 && EBP == 5 && ESI == 6 && EDI == 7
);

/// One snippet and its initial state.
#[derive(Clone, Debug)]
pub struct Snippet {
    pub code: Vec<u8>,
    /// EAX ECX EDX EBX ESP EBP ESI EDI; ESP is ignored.
    pub regs: [u32; 8],
    /// Only [`FLAGS_IO`] bits are used.
    pub eflags: u32,
    pub data: [u8; DATA_LEN],
}

/// How a snippet ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Ran to the end of the snippet.
    Done,
    /// Raised an exception: the vector (natively derived from the signal:
    /// SIGFPE = #DE 0 (or #XM 19 when the kernel reports trap 19), SIGILL =
    /// #UD 6, SIGSEGV = #GP 13, SIGBUS = #AC 17, SIGTRAP = #BP 3).
    Fault(u8),
    /// Anything else (emulator only): a panic, the instruction limit, a HLT
    /// at an unexpected address, ...
    Other(String),
}

impl Exit {
    /// Whether two exits are the same outcome. SIGSEGV cannot tell #GP, #SS
    /// and #PF apart, so those compare equal; SIGFPE is #DE or #XM (SIMD
    /// floating point), so those do too.
    pub fn same_as(&self, other: &Exit) -> bool {
        let norm = |v: u8| match v {
            12..=14 => 13,
            19 => 0,
            _ => v,
        };
        match (self, other) {
            (Exit::Done, Exit::Done) => true,
            (Exit::Fault(a), Exit::Fault(b)) => norm(*a) == norm(*b),
            _ => false,
        }
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Done => write!(f, "completed"),
            Exit::Fault(v) => write!(f, "exception {}", vector_name(*v)),
            Exit::Other(s) => write!(f, "{s}"),
        }
    }
}

pub fn vector_name(v: u8) -> String {
    let n = match v {
        0 => "#DE",
        1 => "#DB",
        3 => "#BP",
        4 => "#OF",
        5 => "#BR",
        6 => "#UD",
        7 => "#NM",
        8 => "#DF",
        10 => "#TS",
        11 => "#NP",
        12 => "#SS",
        13 => "#GP",
        14 => "#PF",
        16 => "#MF",
        17 => "#AC",
        19 => "#XM",
        _ => return format!("vector {v}"),
    };
    format!("{n} ({v})")
}

/// State after a snippet.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub exit: Exit,
    /// ESP is meaningless and never compared.
    pub regs: [u32; 8],
    /// For [`Exit::Done`]: `CODE_ADDR + code.len()`. For a fault: the address
    /// of the faulting instruction.
    pub eip: u32,
    pub eflags: u32,
    pub data: [u8; DATA_LEN],
}

/// Whether this host can execute i386 code natively.
pub fn host_runs_i386() -> bool {
    cfg!(any(target_arch = "x86", target_arch = "x86_64"))
}

/// Compiles `tests/native/runner32.c` with `gcc -m32` (once per process).
/// Panics with installation advice when that is impossible: a host that can
/// run i386 code must be able to run this test.
pub fn runner_path() -> PathBuf {
    static BUILD: Once = Once::new();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/native/runner32.c");
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("native-runner");
    let exe = out_dir.join("runner32");
    BUILD.call_once(|| {
        std::fs::create_dir_all(&out_dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", out_dir.display()));
        // Several test binaries may build at once: compile to a private name,
        // then rename into place atomically.
        let tmp = out_dir.join(format!("runner32.{}.tmp", std::process::id()));
        let cc = std::env::var("X86EMU_CC32").unwrap_or_else(|_| "gcc".to_string());
        let result = Command::new(&cc)
            .args([
                "-m32", "-O1", "-static", "-fno-pie", "-no-pie", "-Wall", "-o",
            ])
            .arg(&tmp)
            .arg(&src)
            .output();
        match result {
            Ok(o) if o.status.success() => {}
            Ok(o) => panic!(
                "cannot build the native i386 runner with `{cc} -m32` ({}).\n{}\n\
                 This test needs a 32-bit capable C toolchain: on Debian/Ubuntu run \
                 `apt-get install gcc-multilib` (or point X86EMU_CC32 at an i386 gcc).",
                o.status,
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => panic!(
                "cannot run `{cc}` to build the native i386 runner: {e}.\n\
                 This test needs gcc with 32-bit support: on Debian/Ubuntu run \
                 `apt-get install gcc-multilib`."
            ),
        }
        std::fs::rename(&tmp, &exe)
            .unwrap_or_else(|e| panic!("cannot move {} into place: {e}", tmp.display()));
    });
    exe
}

const RESULT_LEN: usize = 4 + 32 + 4 + 4 + DATA_LEN;

fn encode_case(buf: &mut Vec<u8>, s: &Snippet) {
    assert!(
        !s.code.is_empty() && s.code.len() <= MAX_CODE,
        "bad snippet length"
    );
    buf.extend_from_slice(&(s.code.len() as u32).to_le_bytes());
    buf.extend_from_slice(&s.code);
    for r in s.regs {
        buf.extend_from_slice(&r.to_le_bytes());
    }
    buf.extend_from_slice(&(s.eflags & FLAGS_IO).to_le_bytes());
    buf.extend_from_slice(&s.data);
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

/// Size of an FXSAVE image.
pub const FX_LEN: usize = 512;

/// Runs every snippet natively, in order, in one runner process.
pub fn run_native(runner: &Path, cases: &[Snippet]) -> Vec<Outcome> {
    run_native_impl(runner, cases, false)
        .into_iter()
        .map(|(o, _)| o)
        .collect()
}

/// Like [`run_native`], and also returns the FXSAVE image of the x87/MMX/SSE
/// state after each snippet (for a fault: at the faulting instruction, as the
/// kernel saved it in the signal frame; all zeros if it saved none).
pub fn run_native_fx(runner: &Path, cases: &[Snippet]) -> Vec<(Outcome, Box<[u8; FX_LEN]>)> {
    run_native_impl(runner, cases, true)
        .into_iter()
        .map(|(o, fx)| (o, fx.expect("fx mode returns images")))
        .collect()
}

type NativeResult = (Outcome, Option<Box<[u8; FX_LEN]>>);

fn run_native_impl(runner: &Path, cases: &[Snippet], fx: bool) -> Vec<NativeResult> {
    let result_len = RESULT_LEN + if fx { FX_LEN } else { 0 };
    let mut input = Vec::with_capacity(cases.len() * (DATA_LEN + 64));
    for c in cases {
        encode_case(&mut input, c);
    }
    input.extend_from_slice(&0u32.to_le_bytes());

    let mut cmd = Command::new(runner);
    if fx {
        cmd.arg("--fx");
    }
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", runner.display()));
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        // A write error means the runner died; its exit status says why.
        let _ = stdin.write_all(&input);
    });
    let mut out = Vec::with_capacity(cases.len() * result_len);
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut out)
        .expect("reading runner output");
    let mut err = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut err);
    let status = child.wait().expect("waiting for runner");
    writer.join().unwrap();
    assert!(
        status.success() && out.len() == cases.len() * result_len,
        "native runner failed ({status}); {} of {} results; stderr: {err}",
        out.len() / result_len,
        cases.len()
    );

    out.chunks_exact(result_len)
        .map(|r| {
            let exit = match u32_at(r, 0) {
                0 => Exit::Done,
                1 => Exit::Fault(0),
                2 => Exit::Fault(13),
                3 => Exit::Fault(6),
                4 => Exit::Fault(17),
                6 => Exit::Fault(19),
                _ => Exit::Fault(3),
            };
            let mut regs = [0u32; 8];
            for (i, reg) in regs.iter_mut().enumerate() {
                *reg = u32_at(r, 4 + 4 * i);
            }
            let mut data = [0u8; DATA_LEN];
            data.copy_from_slice(&r[44..44 + DATA_LEN]);
            let image = fx.then(|| {
                let mut b = Box::new([0u8; FX_LEN]);
                b.copy_from_slice(&r[RESULT_LEN..RESULT_LEN + FX_LEN]);
                b
            });
            let o = Outcome {
                exit,
                regs,
                eip: u32_at(r, 36),
                eflags: u32_at(r, 40),
                data,
            };
            (o, image)
        })
        .collect()
}

thread_local! {
    static QUIET_PANICS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Installs (once) a panic hook that stays silent while the emulator runs a
/// snippet: an emulator panic is reported as a mismatch, not as noise.
fn install_quiet_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !QUIET_PANICS.with(|q| q.get()) {
                default(info);
            }
        }));
    });
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    }
}

/// The emulator side: one guest RAM reused for every snippet, a fresh CPU for
/// each.
pub struct Emu {
    mem: PhysMem,
    /// Upper bound of instructions per snippet.
    pub max_instructions: u64,
    /// CR4 for every snippet (0 by default; SSE tests set OSFXSR and OSXMMEXCPT as the
    /// host OS does).
    pub cr4: u32,
}

impl Emu {
    pub fn new() -> Emu {
        install_quiet_hook();
        Emu {
            mem: PhysMem::new_flat(EMU_RAM),
            max_instructions: 100_000,
            cr4: 0,
        }
    }

    /// Runs one snippet: code at [`CODE_ADDR`] followed by HLT, the data
    /// buffer at [`DATA_ADDR`], 32-bit flat protected mode, CPL 0, exceptions
    /// stop the run (state rolled back to the faulting instruction).
    pub fn run(&mut self, s: &Snippet) -> Outcome {
        self.run_with(s, |_| ()).0
    }

    /// Like [`Emu::run`], and also applies `inspect` to the CPU after the run
    /// (None if the emulator panicked).
    pub fn run_with<T>(
        &mut self,
        s: &Snippet,
        inspect: impl FnOnce(&Cpu) -> T,
    ) -> (Outcome, Option<T>) {
        let mut page = vec![0xF4u8; PAGE];
        page[..s.code.len()].copy_from_slice(&s.code);
        self.mem.write_bytes(CODE_ADDR, &page);
        let mut dpage = vec![0u8; PAGE];
        dpage[..DATA_LEN].copy_from_slice(&s.data);
        self.mem.write_bytes(DATA_ADDR, &dpage);

        let max = self.max_instructions;
        let cr4 = self.cr4;
        let mem = &mut self.mem;
        QUIET_PANICS.with(|q| q.set(true));
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            let mut cpu = Cpu::new();
            cpu.state.enter_flat32();
            cpu.state.cr4 = cr4;
            cpu.stop_on_exception = true;
            for (i, &v) in s.regs.iter().enumerate() {
                cpu.state.gpr[i] = v;
            }
            cpu.state.gpr[ESP] = EMU_STACK_TOP;
            cpu.state.eip = CODE_ADDR;
            cpu.state.set_eflags((s.eflags & FLAGS_IO) | 0x2);
            let mut bus = NullBus;
            let exit = cpu.run(mem, &mut bus, max);
            let mut regs = [0u32; 8];
            for (i, r) in regs.iter_mut().enumerate() {
                *r = cpu.state.gpr[i];
            }
            let seen = inspect(&cpu);
            (exit, regs, cpu.state.eip, cpu.state.eflags(), seen)
        }));
        QUIET_PANICS.with(|q| q.set(false));

        let mut data = [0u8; DATA_LEN];
        self.mem.read_bytes(DATA_ADDR, &mut data);
        let end = CODE_ADDR + s.code.len() as u32;
        match result {
            Ok((exit, regs, eip, eflags, seen)) => {
                let (exit, eip) = match exit {
                    RunExit::Halted if eip == end + 1 => (Exit::Done, end),
                    RunExit::Halted => (
                        Exit::Other(format!("HLT reached at {:#010x}", eip.wrapping_sub(1))),
                        eip,
                    ),
                    RunExit::Exception { vector, .. } => (Exit::Fault(vector), eip),
                    other => (Exit::Other(format!("run() returned {other:?}")), eip),
                };
                let o = Outcome {
                    exit,
                    regs,
                    eip,
                    eflags,
                    data,
                };
                (o, Some(seen))
            }
            Err(p) => {
                let o = Outcome {
                    exit: Exit::Other(format!("emulator panicked: {}", panic_message(&*p))),
                    regs: [0; 8],
                    eip: 0,
                    eflags: 0,
                    data,
                };
                (o, None)
            }
        }
    }
}

/// A short textual rendering of decoded instructions (iced-x86 is built
/// without a formatter): mnemonic and operands, e.g. `Shl ax, cl`.
pub fn disasm(code: &[u8], ip: u32) -> String {
    use iced_x86::{Decoder, DecoderOptions, OpKind, Register};
    let reg = |r: Register| format!("{r:?}").to_lowercase();
    let mut out = String::new();
    let mut dec = Decoder::with_ip(32, code, ip as u64, DecoderOptions::NONE);
    while dec.can_decode() {
        let ins = dec.decode();
        if !out.is_empty() {
            out.push_str("; ");
        }
        if ins.is_invalid() {
            out.push_str("(bad)");
            break;
        }
        if ins.has_rep_prefix() {
            out.push_str("rep ");
        } else if ins.has_repne_prefix() {
            out.push_str("repne ");
        }
        let _ = write!(out, "{:?}", ins.mnemonic());
        for i in 0..ins.op_count() {
            out.push_str(if i == 0 { " " } else { ", " });
            match ins.op_kind(i) {
                OpKind::Register => out.push_str(&reg(ins.op_register(i))),
                OpKind::Memory => {
                    let _ = write!(out, "{:?} [", ins.memory_size());
                    let mut parts = Vec::new();
                    if ins.memory_base() != Register::None {
                        parts.push(reg(ins.memory_base()));
                    }
                    if ins.memory_index() != Register::None {
                        parts.push(format!(
                            "{}*{}",
                            reg(ins.memory_index()),
                            ins.memory_index_scale()
                        ));
                    }
                    let d = ins.memory_displacement32();
                    if d != 0 || parts.is_empty() {
                        parts.push(format!("{d:#x}"));
                    }
                    let _ = write!(out, "{}]", parts.join("+"));
                }
                OpKind::MemorySegESI
                | OpKind::MemorySegSI
                | OpKind::MemorySegEDI
                | OpKind::MemorySegDI
                | OpKind::MemoryESEDI
                | OpKind::MemoryESDI => {
                    let _ = write!(out, "{:?}", ins.op_kind(i));
                }
                kind => match ins.try_immediate(i) {
                    Ok(v) => {
                        let v = if kind == OpKind::Immediate8to16 {
                            v & 0xFFFF
                        } else {
                            v & 0xFFFF_FFFF
                        };
                        let _ = write!(out, "{v:#x}");
                    }
                    Err(_) => {
                        let _ = write!(out, "{kind:?}");
                    }
                },
            }
        }
    }
    out
}

/// Names of the flags set in `f` (arithmetic flags and DF).
pub fn flag_names(f: u32) -> String {
    let mut s = String::new();
    for (bit, n) in [
        (OF, "OF"),
        (DF, "DF"),
        (SF, "SF"),
        (ZF, "ZF"),
        (AF, "AF"),
        (PF, "PF"),
        (CF, "CF"),
    ] {
        if f & bit != 0 {
            if !s.is_empty() {
                s.push(' ');
            }
            s.push_str(n);
        }
    }
    if s.is_empty() {
        s.push('-');
    }
    s
}

pub fn hex_bytes(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}
