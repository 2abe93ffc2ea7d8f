//! The test386 ALU reference table (`test386-EE-reference.txt`, POST code EE
//! of barotto/test386.asm) replayed on the emulator.
//!
//! Each line names an opcode, mnemonic and operand size, the inputs EAX, EDX
//! and flags, and the results. The table was produced by test386's
//! `tableOps`, whose entries are tiny instruction sequences; this test
//! rebuilds the same sequences (see [`templates`]):
//!
//! * destination AL/AX/EAX, source DL/DX/EDX (`op eax, edx` = `01 D0`);
//!   `02`/`03`-style "r, r/m" forms go through memory (`mov [m], edx;
//!   op eax, [m]`);
//! * immediate forms carry fixed immediates that are *not* in the line:
//!   ADD/ADC 0xFF/0x8002/0x80000002, SUB/SBB 0xFF/0x8000/0x80000000,
//!   logic ops, CMP and TEST 0xAA.. (83: the byte 0xFF or 0xAA sign-extended);
//!   `80`/`81`/`F6 TEST`/`F7 TEST` operate on DL/DX/EDX (the "EDX" column is
//!   then the destination), `04`/`05`/`0C`/.../`83`/`A8`/`A9` on AL/AX/EAX;
//! * `40`-`4F` INC/DEC r: `xchg eax, r; inc r; xchg eax, r`; `FE`/`FF`: the
//!   operand goes through memory;
//! * MUL/IMUL/DIV/IDIV `F6`/`F7`: operand DL/DX/EDX, and for DIV/IDIV a
//!   second block of lines with operand AL/AX/EAX; `0FAF` = `imul eax, edx`;
//!   `6B` = `imul eax, edx, 0x77` then a second block with `-0x77`; `69` =
//!   `imul eax, eax, 0x777` (W) / `0x777777` (D);
//! * shifts and rotates start with STC; `D0`/`D1` by 1, `C0`/`C1` by 7,
//!   `D2`/`D3` by CL = the line's DL (`xchg cl, dl` around the shift);
//! * SHLD/SHRD (STC first): `shld eax, edx, 8` (W) / `16` (D) for `0FA4`/
//!   `0FAC`; `0FA5`/`0FAD` shift by CL = the line's DL;
//! * `daa das aaa aas aam aad` (AAM/AAD base 10): EAX and all flags given.
//!
//! `PS` holds only the flags defined for the entry's type (test386's
//! `typeMasks`), so the emulator's flags are compared under the same mask;
//! a line with flags outside its mask means this mapping is wrong and fails
//! the test. `#DE` lines must raise #DE with EAX/EDX unchanged.
//!
//! `test386_mapping_on_host_cpu` replays the same table on the host CPU (via
//! `tests/native/runner32.c`) to show that the mapping above reproduces the
//! reference.
//!
//! Data: `../shared/conformance/test386/test386-EE-reference.txt` next to the
//! crate, or `$X86EMU_CONFORMANCE_DIR/test386/...`.

mod common;

use common::native::{
    self, flag_names, hex_bytes, Emu, Exit, Outcome, Snippet, AF, CF, CODE_ADDR, DATA_ADDR,
    DATA_LEN, FLAGS_IO, OF, PF, SF, ZF,
};
use std::collections::BTreeMap;
use std::path::PathBuf;

const REL_PATH: &str = "test386/test386-EE-reference.txt";

/// test386 `typeMasks`.
const PS_ARITH: u32 = CF | PF | AF | ZF | SF | OF;
const PS_LOGIC: u32 = CF | PF | ZF | SF | OF;
const PS_MULTIPLY: u32 = CF | OF;
const PS_DIVIDE: u32 = 0;
const PS_SHIFTS_1: u32 = CF | SF | ZF | PF | OF;
const PS_SHIFTS_R: u32 = CF | SF | ZF | PF;

/// Scratch memory used by the sequences that go through memory.
const SCRATCH: u32 = DATA_ADDR;

#[derive(Clone, Debug)]
struct Line {
    no: usize,
    text: String,
    /// `"01 ADD W"` or `"daa"`.
    key: String,
    opcode: String,
    mnem: String,
    size: char,
    eax: u32,
    edx: u32,
    ps: u32,
    de: bool,
    eax_out: u32,
    edx_out: u32,
    ps_out: u32,
}

fn data_file() -> PathBuf {
    let dir = match std::env::var_os("X86EMU_CONFORMANCE_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance"),
    };
    dir.join(REL_PATH)
}

fn hex(s: &str, what: &str, no: usize) -> Result<u32, String> {
    u32::from_str_radix(s, 16).map_err(|e| format!("line {no}: bad {what} {s:?}: {e}"))
}

fn field<'a>(tok: Option<&'a str>, name: &str, no: usize) -> Result<&'a str, String> {
    let t = tok.ok_or_else(|| format!("line {no}: missing {name}"))?;
    t.strip_prefix(name)
        .and_then(|t| t.strip_prefix('='))
        .ok_or_else(|| format!("line {no}: expected {name}=..., found {t:?}"))
}

fn parse(text: &str) -> Result<Vec<Line>, String> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let no = i + 1;
        let l = raw.trim();
        if l.is_empty() {
            continue;
        }
        let mut t = l.split_whitespace().peekable();
        let first = t.next().unwrap();
        let bcd = matches!(first, "daa" | "das" | "aaa" | "aas" | "aam" | "aad");
        let (opcode, mnem, size) = if bcd {
            (first.to_string(), first.to_string(), 'B')
        } else {
            let m = t.next().ok_or(format!("line {no}: missing mnemonic"))?;
            let s = t.next().ok_or(format!("line {no}: missing size"))?;
            let s = match s {
                "B" | "W" | "D" => s.chars().next().unwrap(),
                _ => return Err(format!("line {no}: bad size {s:?}")),
            };
            (first.to_string(), m.to_string(), s)
        };
        let eax = hex(field(t.next(), "EAX", no)?, "EAX", no)?;
        let edx = if bcd {
            0
        } else {
            hex(field(t.next(), "EDX", no)?, "EDX", no)?
        };
        let ps = hex(field(t.next(), "PS", no)?, "PS", no)?;
        let de = t.peek() == Some(&"#DE");
        if de {
            t.next();
        }
        let eax_out = hex(field(t.next(), "EAX", no)?, "EAX", no)?;
        let edx_out = if bcd {
            0
        } else {
            hex(field(t.next(), "EDX", no)?, "EDX", no)?
        };
        let ps_out = hex(field(t.next(), "PS", no)?, "PS", no)?;
        if let Some(extra) = t.next() {
            return Err(format!("line {no}: unexpected {extra:?}"));
        }
        let key = if bcd {
            opcode.clone()
        } else {
            format!("{opcode} {mnem} {size}")
        };
        out.push(Line {
            no,
            text: l.to_string(),
            key,
            opcode,
            mnem,
            size,
            eax,
            edx,
            ps,
            de,
            eax_out,
            edx_out,
            ps_out,
        });
    }
    Ok(out)
}

fn alu_index(m: &str) -> Option<u8> {
    ["ADD", "OR", "ADC", "SBB", "AND", "SUB", "XOR", "CMP"]
        .iter()
        .position(|x| *x == m)
        .map(|i| i as u8)
}

fn group2_index(m: &str) -> Option<u8> {
    match m {
        "ROL" => Some(0),
        "ROR" => Some(1),
        "RCL" => Some(2),
        "RCR" => Some(3),
        "SAL" | "SHL" => Some(4),
        "SHR" => Some(5),
        "SAR" => Some(7),
        _ => None,
    }
}

fn imm(size: char, v: u32) -> Vec<u8> {
    let n = match size {
        'B' => 1,
        'W' => 2,
        _ => 4,
    };
    v.to_le_bytes()[..n].to_vec()
}

/// The immediate of test386's ALU entries (`04`, `05`, `80`, `81`, `A8`...).
fn alu_imm(op: u8, size: char) -> u32 {
    match (op, size) {
        // ADD, ADC
        (0 | 2, 'B') => 0xFF,
        (0 | 2, 'W') => 0x8002,
        (0 | 2, _) => 0x8000_0002,
        // SBB, SUB
        (3 | 5, 'B') => 0xFF,
        (3 | 5, 'W') => 0x8000,
        (3 | 5, _) => 0x8000_0000,
        // OR AND XOR CMP (and TEST)
        (_, 'B') => 0xAA,
        (_, 'W') => 0xAAAA,
        _ => 0xAAAA_AAAA,
    }
}

/// Code sequences for an entry (more than one when test386 has several
/// table entries printed under the same name, one block of lines each), and
/// the entry's flag mask.
fn templates(opcode: &str, mnem: &str, size: char) -> Option<(Vec<Vec<u8>>, u32)> {
    let p: Vec<u8> = if size == 'W' { vec![0x66] } else { vec![] };
    let cat = |parts: &[&[u8]]| -> Vec<u8> { parts.concat() };
    let s = SCRATCH.to_le_bytes();
    let wide = size != 'B';
    let one = |v: Vec<u8>, mask: u32| Some((vec![v], mask));

    // BCD (testBCD: EAX and the flags are set directly)
    match opcode {
        "daa" => return one(vec![0x27], CF | PF | AF | ZF | SF),
        "das" => return one(vec![0x2F], CF | PF | AF | ZF | SF),
        "aaa" => return one(vec![0x37], CF | AF),
        "aas" => return one(vec![0x3F], CF | AF),
        "aam" => return one(vec![0xD4, 0x0A], PF | ZF | SF),
        "aad" => return one(vec![0xD5, 0x0A], PF | ZF | SF),
        _ => {}
    }
    let opc = u32::from_str_radix(opcode, 16).ok()?;
    match opc {
        0x98 => {
            // CBW (66 98) / CWDE (98)
            let b = if mnem == "CBW" {
                vec![0x66, 0x98]
            } else {
                vec![0x98]
            };
            one(b, PS_ARITH)
        }
        0x99 => {
            // CWD (66 99) / CDQ (99)
            let b = if mnem == "CWD" {
                vec![0x66, 0x99]
            } else {
                vec![0x99]
            };
            one(b, PS_ARITH)
        }
        0x00..=0x3D if opc & 7 <= 5 => {
            let op = (opc >> 3) as u8;
            if alu_index(mnem)? != op {
                return None;
            }
            let mask = if matches!(op, 1 | 4 | 6 | 7) {
                PS_LOGIC
            } else {
                PS_ARITH
            };
            let o = opc as u8;
            let code = match opc & 7 {
                // op al/ax/eax, dl/dx/edx
                0 | 1 => cat(&[&p, &[o, 0xD0]]),
                // mov [m], dl/dx/edx; op al/ax/eax, [m]
                2 | 3 => cat(&[
                    &p,
                    &[if wide { 0x89 } else { 0x88 }, 0x15],
                    &s,
                    &p,
                    &[o, 0x05],
                    &s,
                ]),
                // op al/ax/eax, imm
                _ => cat(&[&p, &[o], &imm(size, alu_imm(op, size))]),
            };
            one(code, mask)
        }
        0x80 | 0x81 | 0x83 => {
            let op = alu_index(mnem)?;
            let mask = if matches!(op, 1 | 4 | 6 | 7) {
                PS_LOGIC
            } else {
                PS_ARITH
            };
            let code = match opc {
                // op dl, imm8
                0x80 => vec![0x80, 0xC2 | (op << 3), alu_imm(op, 'B') as u8],
                // op dx/edx, imm
                0x81 => cat(&[&p, &[0x81, 0xC2 | (op << 3)], &imm(size, alu_imm(op, size))]),
                // op ax/eax, imm8 (sign-extended)
                _ => cat(&[&p, &[0x83, 0xC0 | (op << 3), alu_imm(op, 'B') as u8]]),
            };
            one(code, mask)
        }
        // test al/ax/eax, dl/dx/edx
        0x84 | 0x85 if mnem == "TEST" => one(cat(&[&p, &[opc as u8, 0xD0]]), PS_LOGIC),
        // test al/ax/eax, imm
        0xA8 | 0xA9 if mnem == "TEST" => one(
            cat(&[&p, &[opc as u8], &imm(size, alu_imm(7, size))]),
            PS_LOGIC,
        ),
        // inc/dec r16/r32 via xchg eax, r
        0x40..=0x4F => {
            let r = (opc & 7) as u8;
            let want = if opc < 0x48 { "INC" } else { "DEC" };
            if mnem != want || size == 'B' {
                return None;
            }
            let x = cat(&[&p, &[0x90 + r]]);
            one(cat(&[&x, &p, &[opc as u8], &x]), PS_ARITH)
        }
        // inc/dec byte/word/dword [m] via memory
        0xFE | 0xFF => {
            let sub = match mnem {
                "INC" => 0,
                "DEC" => 1,
                _ => return None,
            };
            let (st, ld) = if wide { (0x89, 0x8B) } else { (0x88, 0x8A) };
            one(
                cat(&[
                    &p,
                    &[st, 0x05],
                    &s,
                    &p,
                    &[opc as u8, 0x05 | (sub << 3)],
                    &s,
                    &p,
                    &[ld, 0x05],
                    &s,
                ]),
                PS_ARITH,
            )
        }
        0xF6 | 0xF7 => {
            let o = opc as u8;
            let g = |modrm: u8| cat(&[&p, &[o, modrm]]);
            match mnem {
                "TEST" => one(
                    cat(&[&p, &[o, 0xC2], &imm(size, alu_imm(7, size))]),
                    PS_LOGIC,
                ),
                "NOT" => one(g(0xD0), PS_LOGIC),
                "NEG" => one(g(0xD8), PS_ARITH),
                "MUL" => one(g(0xE2), PS_MULTIPLY),
                "IMUL" => one(g(0xEA), PS_MULTIPLY),
                // div dl/dx/edx, then div al/ax/eax
                "DIV" => Some((vec![g(0xF2), g(0xF0)], PS_DIVIDE)),
                "IDIV" => Some((vec![g(0xFA), g(0xF8)], PS_DIVIDE)),
                _ => None,
            }
        }
        0x0FAF if mnem == "IMUL" => one(cat(&[&p, &[0x0F, 0xAF, 0xC2]]), PS_MULTIPLY),
        0x6B if mnem == "IMUL" => Some((
            vec![
                cat(&[&p, &[0x6B, 0xC2, 0x77]]),
                cat(&[&p, &[0x6B, 0xC2, 0x89]]),
            ],
            PS_MULTIPLY,
        )),
        0x69 if mnem == "IMUL" => {
            let v = if size == 'W' { 0x0777 } else { 0x0077_7777 };
            one(cat(&[&p, &[0x69, 0xC0], &imm(size, v)]), PS_MULTIPLY)
        }
        0xC0 | 0xC1 | 0xD0 | 0xD1 | 0xD2 | 0xD3 => {
            let g2 = group2_index(mnem)?;
            let o = opc as u8;
            let modrm = 0xC0 | (g2 << 3);
            let stc = [0xF9u8];
            let xchg_cl_dl = [0x86u8, 0xD1];
            let (code, mask) = match opc {
                0xD0 | 0xD1 => (cat(&[&stc, &p, &[o, modrm]]), PS_SHIFTS_1),
                0xC0 | 0xC1 => (
                    cat(&[&stc, &p, &[o, modrm, 7]]),
                    if g2 <= 3 { PS_SHIFTS_1 } else { PS_SHIFTS_R },
                ),
                _ => (
                    cat(&[&stc, &xchg_cl_dl, &p, &[o, modrm], &xchg_cl_dl]),
                    PS_SHIFTS_R,
                ),
            };
            one(code, mask)
        }
        0x0FA4 | 0x0FAC if size != 'B' => {
            let n = if size == 'W' { 8 } else { 16 };
            one(
                cat(&[&[0xF9], &p, &[0x0F, (opc & 0xFF) as u8, 0xD0, n]]),
                PS_SHIFTS_R,
            )
        }
        0x0FA5 | 0x0FAD if size != 'B' => one(
            cat(&[
                &[0xF9, 0x88, 0x0D],
                &s,
                &[0x88, 0xD1],
                &p,
                &[0x0F, (opc & 0xFF) as u8, 0xD0],
                &[0x8A, 0x0D],
                &s,
            ]),
            PS_SHIFTS_R,
        ),
        _ => None,
    }
}

/// One runnable case per line.
struct Case {
    line: Line,
    snip: Snippet,
    mask: u32,
}

fn build_cases(lines: Vec<Line>) -> Result<Vec<Case>, String> {
    // Lines per key, to split keys with several blocks.
    let mut per_key: BTreeMap<String, usize> = BTreeMap::new();
    for l in &lines {
        *per_key.entry(l.key.clone()).or_default() += 1;
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = Vec::new();
    for l in lines {
        let (codes, mask) = templates(&l.opcode, &l.mnem, l.size).ok_or_else(|| {
            format!(
                "line {}: no instruction mapping for {:?} ({})",
                l.no, l.key, l.text
            )
        })?;
        let total = per_key[&l.key];
        if total % codes.len() != 0 {
            return Err(format!(
                "{}: {} lines cannot be split into {} blocks",
                l.key,
                total,
                codes.len()
            ));
        }
        let idx = seen.entry(l.key.clone()).or_default();
        let block = *idx / (total / codes.len());
        *idx += 1;
        // Table entries print both PS values under the type mask; testBCD
        // prints the input flags unmasked.
        let bcd = l.mnem == l.opcode;
        let printed = if bcd { l.ps_out } else { l.ps | l.ps_out };
        if printed & !mask != 0 {
            return Err(format!(
                "line {}: flags {:04X} outside the mask {:04X} assumed for {:?}",
                l.no, printed, mask, l.key
            ));
        }
        let mut regs = [
            0x0C0C_0C0C,
            0x1111_1111,
            0,
            0x3333_3333,
            0,
            0x5555_5555,
            0x6666_6666,
            0x7777_7777,
        ];
        regs[0] = l.eax;
        regs[2] = l.edx;
        let snip = Snippet {
            code: codes[block].clone(),
            regs,
            eflags: l.ps & FLAGS_IO,
            data: [0; DATA_LEN],
        };
        out.push(Case {
            line: l,
            snip,
            mask,
        });
    }
    Ok(out)
}

/// Why `got` does not reproduce the line, or `None`. `relax` lists flags
/// not compared.
fn check(c: &Case, got: &Outcome, relax: u32) -> Option<String> {
    let l = &c.line;
    if l.de {
        if got.exit != Exit::Fault(0) {
            return Some(format!("expected #DE, got {}", got.exit));
        }
    } else if got.exit != Exit::Done {
        return Some(format!("expected completion, got {}", got.exit));
    }
    let mut d = Vec::new();
    if got.regs[0] != l.eax_out {
        d.push(format!("EAX={:08X} (want {:08X})", got.regs[0], l.eax_out));
    }
    if l.mnem != l.opcode && got.regs[2] != l.edx_out {
        d.push(format!("EDX={:08X} (want {:08X})", got.regs[2], l.edx_out));
    }
    let mask = c.mask & !relax;
    let f = got.eflags & mask;
    if !l.de && f != l.ps_out & mask {
        d.push(format!(
            "PS={:04X} (want {:04X}; differ: {}; compared: {})",
            f,
            l.ps_out,
            flag_names(f ^ (l.ps_out & mask)),
            flag_names(mask)
        ));
    }
    if d.is_empty() {
        None
    } else {
        Some(d.join(", "))
    }
}

fn load_cases() -> Vec<Case> {
    let path = data_file();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read the test386 ALU reference table {}: {e}.\n\
             It lives in the shared conformance data beside the checkout \
             (../shared/conformance/test386/test386-EE-reference.txt); \
             set X86EMU_CONFORMANCE_DIR to the `conformance` folder to use another copy. \
             The file is `test386-EE-reference.txt` from https://github.com/barotto/test386.asm.",
            path.display()
        )
    });
    let lines = parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(!lines.is_empty(), "{}: no lines", path.display());
    build_cases(lines).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Checks every result against its line; prints the first 20 mismatches and
/// the failures per entry. `relax(case)` gives flags not to compare.
fn replay(
    label: &str,
    cases: &[Case],
    results: &[Outcome],
    relax: impl Fn(&Case) -> u32,
) -> (usize, usize) {
    let mut per_key: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut shown = Vec::new();
    let (mut pass, mut fail) = (0, 0);
    for (c, got) in cases.iter().zip(results) {
        let e = per_key.entry(&c.line.key).or_default();
        match check(c, got, relax(c)) {
            None => {
                pass += 1;
                e.0 += 1;
            }
            Some(why) => {
                fail += 1;
                e.1 += 1;
                if shown.len() < 20 {
                    shown.push(format!(
                        "  line {}: {}\n    code {}  in: EAX={:08X} EDX={:08X} flags=[{}]\n    got: {}",
                        c.line.no,
                        c.line.text,
                        hex_bytes(&c.snip.code),
                        c.line.eax,
                        c.line.edx,
                        flag_names(c.snip.eflags),
                        why
                    ));
                }
            }
        }
    }
    if fail > 0 {
        println!("{label}: first mismatches:");
        for s in &shown {
            println!("{s}");
        }
        println!("{label}: failures per entry (failed/total):");
        for (k, (p, f)) in &per_key {
            if *f > 0 {
                println!("  {k:<14} {f:>5}/{}", p + f);
            }
        }
    }
    println!("{label}: {} entries checked", per_key.len());
    (pass, fail)
}

#[test]
fn test386_alu_reference() {
    let cases = load_cases();
    let mut emu = Emu::new();
    let results: Vec<Outcome> = cases.iter().map(|c| emu.run(&c.snip)).collect();
    let (pass, fail) = replay("test386-alu", &cases, &results, |_| 0);
    println!("test386-alu: {pass} passed, {fail} failed");
    assert_eq!(
        fail, 0,
        "test386-alu: {fail} lines do not match the reference"
    );
}

/// Flags of a line that test386's type mask keeps although the Intel SDM
/// calls them undefined, so a modern CPU may differ from the reference:
/// OF after ROL/ROR/RCL/RCR by 7 (`C0`/`C1`; the reference computes it as
/// for a 1-bit rotate, an Intel Xeon does not), and CF after SHL/SHR by CL
/// when the count is at least the operand width.
fn sdm_undefined(c: &Case) -> u32 {
    let l = &c.line;
    let rotate = matches!(l.mnem.as_str(), "ROL" | "ROR" | "RCL" | "RCR");
    if rotate && (l.opcode == "C0" || l.opcode == "C1") {
        return OF;
    }
    let width = match l.size {
        'B' => 8,
        'W' => 16,
        _ => 32,
    };
    let shl_shr = matches!(l.mnem.as_str(), "SAL" | "SHL" | "SHR");
    if shl_shr && (l.opcode == "D2" || l.opcode == "D3") && (l.edx & 31) >= width {
        return CF;
    }
    0
}

/// The same sequences on the host CPU: proof that the mapping from table
/// lines to instructions is right. Flags from [`sdm_undefined`] are not
/// compared here (the emulator test compares them).
#[test]
fn test386_mapping_on_host_cpu() {
    if !native::host_runs_i386() {
        println!(
            "test386 mapping check: skipped: this host ({}) cannot run i386 code natively",
            std::env::consts::ARCH
        );
        return;
    }
    let cases = load_cases();
    let runner = native::runner_path();
    let snips: Vec<Snippet> = cases.iter().map(|c| c.snip.clone()).collect();
    let results = native::run_native(&runner, &snips);
    for r in &results {
        assert!(r.eip >= CODE_ADDR);
    }
    let (pass, fail) = replay("test386-on-host", &cases, &results, sdm_undefined);
    println!("test386-on-host: {pass} passed, {fail} failed");
    assert_eq!(fail, 0);
}
