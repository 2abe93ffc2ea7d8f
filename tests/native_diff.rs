//! Differential test of the integer ALU against the host CPU.
//!
//! Thousands of generated single-instruction snippets (ALU, shifts and
//! rotates, multiply/divide, bit operations, BCD, string instructions, ...) in
//! 8/16/32-bit forms, with register and memory operands, edge and random
//! values, and both all-zero and all-one arithmetic flags, run natively in a
//! 32-bit Linux process (`tests/native/runner32.c`) and in the emulator. The
//! registers, the defined flags and a 256-byte data buffer must agree, and so
//! must exceptions (#DE).
//!
//! Flags and results that the Intel SDM calls undefined are masked; see
//! [`shift_mask`] and the `mask:` comments at each form (summary in
//! `UNDEFINED_TABLE`).
//!
//! Knobs (environment): `X86EMU_NATIVE_DIFF_FILTER=substr` runs only forms
//! whose name contains `substr`; `X86EMU_NATIVE_DIFF_SCALE=f` multiplies the
//! case counts; `X86EMU_NATIVE_DIFF_SEED=n` changes the RNG seed;
//! `X86EMU_NATIVE_DIFF_SHOW=n` prints up to `n` mismatches per form (default 3).

mod common;

use common::native::{
    self, disasm, flag_names, hex_bytes, Emu, Exit, Outcome, Snippet, AF, ARITH, CF, CODE_ADDR,
    DATA_ADDR, DATA_LEN, DF, FLAGS_IO, OF, PF, REG_NAMES, SF, ZF,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::Instant;

const EAX: usize = 0;
const ECX: usize = 1;
const EDX: usize = 2;
const EBX: usize = 3;
const ESP: usize = 4;
const EBP: usize = 5;
const ESI: usize = 6;
const EDI: usize = 7;

/// Summary of what is masked as undefined (printed with the report).
const UNDEFINED_TABLE: &str = "\
undefined-flag masks (Intel SDM):
  AND OR XOR TEST                AF
  MUL IMUL (all forms)           SF ZF AF PF
  DIV IDIV                       CF PF AF ZF SF OF (all; nothing masked when #DE is raised)
  SHL SAL SHR SAR (count&31 != 0) AF; OF unless count==1; CF of SHL/SHR when count >= width (8/16-bit)
  ROL ROR RCL RCR (count&31 != 0) OF unless count==1
  SHLD SHRD (count&31 != 0)      AF; OF unless count==1; count > width (16-bit): all flags + result
  any shift/rotate, count&31 == 0  nothing (flags unchanged)
  BT BTS BTR BTC                 OF SF AF PF
  BSF BSR                        CF OF SF AF PF; destination when the source is 0
  DAA DAS                        OF
  AAA AAS                        OF SF ZF PF
  AAM AAD                        OF AF CF (nothing masked when AAM 0 raises #DE)
  everything else                nothing";

// ---------------------------------------------------------------------------
// Case generation

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Sz {
    B,
    W,
    D,
}

use Sz::{B, D, W};

impl Sz {
    fn bits(self) -> u32 {
        match self {
            B => 8,
            W => 16,
            D => 32,
        }
    }
    fn bytes(self) -> u32 {
        self.bits() / 8
    }
    fn mask(self) -> u32 {
        match self {
            B => 0xFF,
            W => 0xFFFF,
            D => 0xFFFF_FFFF,
        }
    }
    fn tag(self) -> &'static str {
        match self {
            B => "8",
            W => "16",
            D => "32",
        }
    }
}

/// GPR that holds register operand `r` of size `sz` (AH..BH live in EAX..EBX).
fn gpr_of(r: u8, sz: Sz) -> usize {
    if sz == B {
        (r & 3) as usize
    } else {
        r as usize
    }
}

#[derive(Clone, Debug)]
struct MemOp {
    md: u8,
    rm: u8,
    tail: Vec<u8>,
    addr: u32,
}

#[derive(Clone, Debug)]
enum Rm {
    Reg(u8),
    Mem(MemOp),
}

const EDGES: [u32; 11] = [
    0,
    1,
    0x7F,
    0x80,
    0xFF,
    0x7FFF,
    0x8000,
    0xFFFF,
    0x7FFF_FFFF,
    0x8000_0000,
    0xFFFF_FFFF,
];

/// One generated case plus what to compare.
struct Case {
    snip: Snippet,
    /// Flags compared when the snippet completes (subset of FLAGS_IO).
    flags_mask: u32,
    /// Register bits compared.
    reg_mask: [u32; 8],
    /// Data-buffer bytes whose final value is undefined.
    data_undef: Option<(usize, usize)>,
    /// Address of the (last) explicit memory operand, for reports.
    mem_at: Option<u32>,
}

/// Case builder: starts from random registers, random data and random flags;
/// form generators add code and operand values.
struct G {
    rng: StdRng,
    code: Vec<u8>,
    regs: [u32; 8],
    data: [u8; DATA_LEN],
    eflags: u32,
    /// GPRs reserved (addresses, implicit operands) that operand picking avoids.
    used: u8,
    flags_mask: u32,
    reg_mask: [u32; 8],
    data_undef: Option<(usize, usize)>,
    /// Index of the case within its form (drives the flags pattern).
    n: usize,
    /// A segment-override prefix (CS/DS/ES/SS: flat in both worlds) put in
    /// front of the instruction.
    seg: Option<u8>,
    mem_at: Option<u32>,
}

impl G {
    fn new(seed: u64) -> G {
        G {
            rng: StdRng::seed_from_u64(seed),
            code: Vec::new(),
            regs: [0; 8],
            data: [0; DATA_LEN],
            eflags: 0,
            used: 0,
            flags_mask: FLAGS_IO,
            reg_mask: [u32::MAX; 8],
            data_undef: None,
            n: 0,
            seg: None,
            mem_at: None,
        }
    }

    fn reset(&mut self, n: usize) {
        self.n = n;
        self.code.clear();
        for r in self.regs.iter_mut() {
            *r = self.rng.gen();
        }
        self.regs[ESP] = 0;
        self.rng.fill(&mut self.data[..]);
        // Flags: all zero, all arithmetic flags one, or random (DF random).
        let arith = match n % 3 {
            0 => 0,
            1 => ARITH,
            _ => self.rng.gen::<u32>() & ARITH,
        };
        let df = if self.rng.gen_ratio(1, 4) { DF } else { 0 };
        self.eflags = arith | df;
        self.used = 1 << ESP;
        self.flags_mask = FLAGS_IO;
        self.reg_mask = [u32::MAX; 8];
        self.reg_mask[ESP] = 0;
        self.data_undef = None;
        self.seg = None;
        self.mem_at = None;
    }

    fn finish(&mut self) -> Case {
        if let Some(p) = self.seg {
            self.code.insert(0, p);
        }
        Case {
            snip: Snippet {
                code: self.code.clone(),
                regs: self.regs,
                eflags: self.eflags,
                data: self.data,
            },
            flags_mask: self.flags_mask,
            reg_mask: self.reg_mask,
            data_undef: self.data_undef,
            mem_at: self.mem_at,
        }
    }

    fn chance(&mut self, percent: u32) -> bool {
        self.rng.gen_range(0..100) < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.rng.gen_range(0..items.len())]
    }

    /// An operand value: edge values, values next to them, small numbers or
    /// random bits.
    fn val(&mut self, sz: Sz) -> u32 {
        let m = sz.mask();
        match self.rng.gen_range(0..10) {
            0..=2 => self.pick(&EDGES) & m,
            3 => {
                (self
                    .pick(&EDGES)
                    .wrapping_add(self.rng.gen_range(0..5))
                    .wrapping_sub(2))
                    & m
            }
            4 => self.rng.gen_range(0..16),
            _ => self.rng.gen::<u32>() & m,
        }
    }

    /// Random arithmetic flags, uniformly (for SETcc/CMOVcc).
    fn random_flags(&mut self) {
        self.eflags = (self.rng.gen::<u32>() & ARITH) | (self.eflags & DF);
    }

    /// A register operand number not aliasing a reserved GPR (never ESP).
    fn reg(&mut self, sz: Sz) -> u8 {
        loop {
            let r: u8 = self.rng.gen_range(0..8);
            if sz != B && r == 4 {
                continue;
            }
            if self.used & (1 << gpr_of(r, sz)) == 0 {
                return r;
            }
        }
    }

    /// A random free 32-bit GPR (not ESP), reserved on return.
    fn take_gpr(&mut self) -> usize {
        loop {
            let r = self.rng.gen_range(0..8usize);
            if self.used & (1 << r) == 0 {
                self.used |= 1 << r;
                return r;
            }
        }
    }

    fn reserve(&mut self, gprs: &[usize]) {
        for &g in gprs {
            self.used |= 1 << g;
        }
    }

    fn set(&mut self, r: u8, sz: Sz, v: u32) {
        let g = gpr_of(r, sz);
        let (shift, m) = if sz == B && r >= 4 {
            (8, 0xFF)
        } else {
            (0, sz.mask())
        };
        self.regs[g] = (self.regs[g] & !(m << shift)) | ((v & m) << shift);
    }

    fn get(&self, r: u8, sz: Sz) -> u32 {
        let g = gpr_of(r, sz);
        if sz == B && r >= 4 {
            (self.regs[g] >> 8) & 0xFF
        } else {
            self.regs[g] & sz.mask()
        }
    }

    fn wmem(&mut self, addr: u32, sz: Sz, v: u32) {
        let off = (addr - DATA_ADDR) as usize;
        for i in 0..sz.bytes() as usize {
            self.data[off + i] = (v >> (8 * i)) as u8;
        }
    }

    fn rmem(&self, addr: u32, sz: Sz) -> u32 {
        let off = (addr - DATA_ADDR) as usize;
        (0..sz.bytes() as usize).fold(0, |acc, i| acc | (self.data[off + i] as u32) << (8 * i))
    }

    /// A memory operand addressing buffer offset `lo..=hi` (chosen at
    /// random) through one of many ModRM/SIB forms. Base and index registers
    /// are taken from the free GPRs and reserved.
    fn mem(&mut self, lo: u32, hi: u32) -> MemOp {
        let addr = DATA_ADDR + self.rng.gen_range(lo..=hi);
        self.mem_at = Some(addr);
        if self.chance(10) {
            self.seg = Some(self.pick(&[0x26u8, 0x2E, 0x36, 0x3E]));
        }
        let free = |g: &G, r: usize| g.used & (1 << r) == 0;
        let bases: Vec<usize> = [EBX, ESI, EDI, EBP, EAX, ECX, EDX]
            .into_iter()
            .filter(|&r| free(self, r))
            .collect();
        let kind = if bases.len() >= 2 {
            self.rng.gen_range(0..7)
        } else if bases.len() == 1 {
            self.pick(&[0, 1, 2, 5, 6])
        } else {
            5
        };
        let disp8: i8 = self.rng.gen();
        let disp32: u32 = self.rng.gen();
        let scale_bits: u8 = self.rng.gen_range(0..4);
        let mut tail = Vec::new();
        match kind {
            // [base], [base+disp8], [base+disp32]
            0..=2 => {
                let mut base = self.pick(&bases);
                if kind == 0 && base == EBP {
                    // mod=00 rm=101 means disp32: use another base.
                    base = *bases.iter().find(|&&b| b != EBP).unwrap_or(&EBX);
                    if base == EBP || !free(self, base) {
                        return self.mem_abs(addr);
                    }
                }
                self.used |= 1 << base;
                let (md, disp) = match kind {
                    0 => (0, 0u32),
                    1 => {
                        tail.push(disp8 as u8);
                        (1, disp8 as i32 as u32)
                    }
                    _ => {
                        tail.extend_from_slice(&disp32.to_le_bytes());
                        (2, disp32)
                    }
                };
                self.regs[base] = addr.wrapping_sub(disp);
                MemOp {
                    md,
                    rm: base as u8,
                    tail,
                    addr,
                }
            }
            // [base + index*scale + disp8]
            3 => {
                let base = self.pick(&bases);
                self.used |= 1 << base;
                let index = self.take_gpr();
                let iv: u32 = self.rng.gen();
                self.regs[index] = iv;
                tail.push((scale_bits << 6) | ((index as u8) << 3) | base as u8);
                tail.push(disp8 as u8);
                self.regs[base] = addr
                    .wrapping_sub(disp8 as i32 as u32)
                    .wrapping_sub(iv << scale_bits);
                MemOp {
                    md: 1,
                    rm: 4,
                    tail,
                    addr,
                }
            }
            // [index*scale + disp32]
            4 => {
                let index = self.take_gpr();
                let iv: u32 = self.rng.gen();
                self.regs[index] = iv;
                tail.push((scale_bits << 6) | ((index as u8) << 3) | 5);
                tail.extend_from_slice(&addr.wrapping_sub(iv << scale_bits).to_le_bytes());
                MemOp {
                    md: 0,
                    rm: 4,
                    tail,
                    addr,
                }
            }
            // [disp32]
            5 => self.mem_abs(addr),
            // SIB without index: [base] (mod 00) or [base+disp8] (mod 01)
            _ => {
                let base = self.pick(&bases);
                self.used |= 1 << base;
                let md = if base == EBP {
                    1
                } else {
                    self.rng.gen_range(0..2)
                };
                tail.push((scale_bits << 6) | (4 << 3) | base as u8);
                let disp = if md == 1 {
                    tail.push(disp8 as u8);
                    disp8 as i32 as u32
                } else {
                    0
                };
                self.regs[base] = addr.wrapping_sub(disp);
                MemOp {
                    md,
                    rm: 4,
                    tail,
                    addr,
                }
            }
        }
    }

    fn mem_abs(&mut self, addr: u32) -> MemOp {
        MemOp {
            md: 0,
            rm: 5,
            tail: addr.to_le_bytes().to_vec(),
            addr,
        }
    }

    /// An r/m operand of size `sz`: a memory operand (`mem_percent` % of the
    /// time) inside the buffer, otherwise a register.
    fn rm(&mut self, sz: Sz, mem_percent: u32) -> Rm {
        if self.chance(mem_percent) {
            Rm::Mem(self.mem(0, DATA_LEN as u32 - 8))
        } else {
            let r = self.reg(sz);
            Rm::Reg(r)
        }
    }

    /// Like [`G::rm`], but a memory operand's base and index registers avoid
    /// `avoid` (implicit operands set afterwards); a register operand may
    /// still be one of them.
    fn rm_x(&mut self, sz: Sz, mem_percent: u32, avoid: &[usize]) -> Rm {
        if self.chance(mem_percent) {
            let saved = self.used;
            let am = avoid.iter().fold(0u8, |m, &r| m | (1 << r));
            self.used |= am;
            let m = self.mem(0, DATA_LEN as u32 - 8);
            self.used = (self.used & !am) | (saved & am);
            Rm::Mem(m)
        } else {
            let r = self.reg(sz);
            Rm::Reg(r)
        }
    }

    fn put(&mut self, rm: &Rm, sz: Sz, v: u32) {
        match rm {
            Rm::Reg(r) => self.set(*r, sz, v),
            Rm::Mem(m) => self.wmem(m.addr, sz, v),
        }
    }

    fn fetch(&self, rm: &Rm, sz: Sz) -> u32 {
        match rm {
            Rm::Reg(r) => self.get(*r, sz),
            Rm::Mem(m) => self.rmem(m.addr, sz),
        }
    }

    fn op16(&mut self, sz: Sz) {
        if sz == W {
            self.code.push(0x66);
        }
    }

    fn bytes(&mut self, b: &[u8]) {
        self.code.extend_from_slice(b);
    }

    fn modrm(&mut self, reg: u8, rm: &Rm) {
        match rm {
            Rm::Reg(r) => self.code.push(0xC0 | (reg << 3) | r),
            Rm::Mem(m) => {
                self.code.push((m.md << 6) | (reg << 3) | m.rm);
                self.code.extend_from_slice(&m.tail);
            }
        }
    }

    fn imm(&mut self, sz: Sz, v: u32) {
        self.code
            .extend_from_slice(&v.to_le_bytes()[..sz.bytes() as usize]);
    }

    /// Clears the compare mask of an undefined destination.
    fn undefined_dest(&mut self, rm: &Rm, sz: Sz) {
        match rm {
            Rm::Reg(r) => {
                let g = gpr_of(*r, sz);
                let m = if sz == B && *r >= 4 {
                    0xFF00
                } else {
                    sz.mask()
                };
                self.reg_mask[g] &= !m;
            }
            Rm::Mem(m) => {
                self.data_undef = Some(((m.addr - DATA_ADDR) as usize, sz.bytes() as usize))
            }
        }
    }

    /// A shift/rotate count: the interesting values around the operand
    /// widths and the 5-bit mask, or random bytes.
    fn count(&mut self) -> u32 {
        if self.chance(60) {
            self.pick(&[
                0u32, 1, 2, 3, 7, 8, 9, 15, 16, 17, 18, 24, 31, 32, 33, 63, 64, 255,
            ])
        } else {
            self.rng.gen_range(0..256)
        }
    }
}

type GenFn = Box<dyn Fn(&mut G)>;

struct Form {
    name: String,
    count: usize,
    gen: GenFn,
}

fn form(
    forms: &mut Vec<Form>,
    name: impl Into<String>,
    count: usize,
    gen: impl Fn(&mut G) + 'static,
) {
    forms.push(Form {
        name: name.into(),
        count,
        gen: Box::new(gen),
    });
}

/// Flags defined after a shift or rotate (group-2 `op`: 0 ROL, 1 ROR, 2 RCL,
/// 3 RCR, 4 SHL, 5 SHR, 6 SAL alias, 7 SAR) of a `sz` operand by `count`
/// (before masking).
fn shift_mask(op: u8, sz: Sz, count: u32) -> u32 {
    let c = count & 31;
    if c == 0 {
        // No flags are affected.
        return FLAGS_IO;
    }
    let mut m = FLAGS_IO;
    if c != 1 {
        // OF is defined only for 1-bit shifts and rotates.
        m &= !OF;
    }
    match op {
        // Rotates: only CF and OF are affected.
        0..=3 => {}
        _ => {
            // AF is undefined after any non-zero shift.
            m &= !AF;
            // "CF is undefined for SHL and SHR where the count is greater
            // than or equal to the size of the destination."
            if op != 7 && c >= sz.bits() {
                m &= !CF;
            }
        }
    }
    m
}

const ALU_NAMES: [&str; 8] = ["ADD", "OR", "ADC", "SBB", "AND", "SUB", "XOR", "CMP"];
const SHIFT_NAMES: [&str; 8] = ["ROL", "ROR", "RCL", "RCR", "SHL", "SHR", "SAL(/6)", "SAR"];

fn build_forms() -> Vec<Form> {
    let mut f = Vec::new();
    let sizes = [B, W, D];

    // ADD OR ADC SBB AND SUB XOR CMP: r/m,r  r,r/m  acc,imm  80/81/82/83.
    // mask: AF after OR AND XOR; everything else defined.
    for (op, name) in ALU_NAMES.iter().enumerate() {
        let op = op as u8;
        for sz in sizes {
            form(&mut f, format!("{name} {}", sz.tag()), 3000, move |g| {
                if matches!(op, 1 | 4 | 6) {
                    g.flags_mask &= !AF;
                }
                let wide = (sz != B) as u8;
                let (a, b) = (g.val(sz), g.val(sz));
                match g.rng.gen_range(0..7) {
                    0 | 1 => {
                        // op r/m, r  (00/01)  or  op r, r/m  (02/03)
                        let dir = g.rng.gen_range(0..2u8);
                        let rm = g.rm(sz, 40);
                        let r = g.reg(sz);
                        g.put(&rm, sz, a);
                        g.set(r, sz, b);
                        g.op16(sz);
                        g.code.push(op * 8 + dir * 2 + wide);
                        g.modrm(r, &rm);
                    }
                    2 => {
                        // op AL/AX/EAX, imm
                        g.set(0, sz, a);
                        g.op16(sz);
                        g.code.push(op * 8 + 4 + wide);
                        g.imm(sz, b);
                    }
                    3 | 4 => {
                        // 80/81 /op imm
                        let rm = g.rm(sz, 40);
                        g.put(&rm, sz, a);
                        g.op16(sz);
                        g.code.push(0x80 + wide);
                        g.modrm(op, &rm);
                        g.imm(sz, b);
                    }
                    _ => {
                        // 83 /op imm8 (sign-extended); 82 /op imm8 for bytes
                        let rm = g.rm(sz, 40);
                        g.put(&rm, sz, a);
                        g.op16(sz);
                        g.code.push(if sz == B { 0x82 } else { 0x83 });
                        g.modrm(op, &rm);
                        g.imm(B, b);
                    }
                }
            });
        }
    }

    // TEST r/m,r (84/85), acc,imm (A8/A9), r/m,imm (F6/F7 /0).  mask: AF.
    for sz in sizes {
        form(&mut f, format!("TEST {}", sz.tag()), 2500, move |g| {
            g.flags_mask &= !AF;
            let wide = (sz != B) as u8;
            let (a, b) = (g.val(sz), g.val(sz));
            match g.rng.gen_range(0..3) {
                0 => {
                    let rm = g.rm(sz, 40);
                    let r = g.reg(sz);
                    g.put(&rm, sz, a);
                    g.set(r, sz, b);
                    g.op16(sz);
                    g.code.push(0x84 + wide);
                    g.modrm(r, &rm);
                }
                1 => {
                    g.set(0, sz, a);
                    g.op16(sz);
                    g.code.push(0xA8 + wide);
                    g.imm(sz, b);
                }
                _ => {
                    let rm = g.rm(sz, 40);
                    g.put(&rm, sz, a);
                    g.op16(sz);
                    g.code.push(0xF6 + wide);
                    g.modrm(0, &rm);
                    g.imm(sz, b);
                }
            }
        });
    }

    // INC/DEC: 40+r/48+r (16/32), FE/FF /0 /1.  mask: none (CF preserved).
    for (sub, name) in [(0u8, "INC"), (1u8, "DEC")] {
        for sz in sizes {
            form(&mut f, format!("{name} {}", sz.tag()), 2000, move |g| {
                let v = g.val(sz);
                if sz != B && g.chance(40) {
                    let r = g.reg(sz);
                    g.set(r, sz, v);
                    g.op16(sz);
                    g.code.push(0x40 + sub * 8 + r);
                } else {
                    let rm = g.rm(sz, 40);
                    g.put(&rm, sz, v);
                    g.op16(sz);
                    g.code.push(if sz == B { 0xFE } else { 0xFF });
                    g.modrm(sub, &rm);
                }
            });
        }
    }

    // NOT (F6/F7 /2; no flags) and NEG (F6/F7 /3; all flags defined).
    for (sub, name) in [(2u8, "NOT"), (3u8, "NEG")] {
        for sz in sizes {
            form(&mut f, format!("{name} {}", sz.tag()), 1500, move |g| {
                let v = g.val(sz);
                let rm = g.rm(sz, 40);
                g.put(&rm, sz, v);
                g.op16(sz);
                g.code.push(if sz == B { 0xF6 } else { 0xF7 });
                g.modrm(sub, &rm);
            });
        }
    }

    // MUL / IMUL r/m (F6/F7 /4 /5).  mask: SF ZF AF PF.
    for (sub, name) in [(4u8, "MUL"), (5u8, "IMUL(1-op)")] {
        for sz in sizes {
            form(&mut f, format!("{name} {}", sz.tag()), 3000, move |g| {
                g.flags_mask &= !(SF | ZF | AF | PF);
                let (a, b) = (g.val(sz), g.val(sz));
                let rm = g.rm_x(sz, 40, &[EAX, EDX]);
                g.set(0, sz, a);
                g.put(&rm, sz, b);
                g.op16(sz);
                g.code.push(if sz == B { 0xF6 } else { 0xF7 });
                g.modrm(sub, &rm);
            });
        }
    }

    // IMUL r, r/m (0F AF); IMUL r, r/m, imm (69 / 6B).  mask: SF ZF AF PF.
    for sz in [W, D] {
        form(&mut f, format!("IMUL r,r/m {}", sz.tag()), 3000, move |g| {
            g.flags_mask &= !(SF | ZF | AF | PF);
            let (a, b) = (g.val(sz), g.val(sz));
            let rm = g.rm(sz, 40);
            let r = g.reg(sz);
            g.set(r, sz, a);
            g.put(&rm, sz, b);
            g.op16(sz);
            g.bytes(&[0x0F, 0xAF]);
            g.modrm(r, &rm);
        });
        form(
            &mut f,
            format!("IMUL r,r/m,imm {}", sz.tag()),
            3000,
            move |g| {
                g.flags_mask &= !(SF | ZF | AF | PF);
                let (a, b, c) = (g.val(sz), g.val(sz), g.val(sz));
                let rm = g.rm(sz, 40);
                let r = g.reg(sz);
                g.set(r, sz, a);
                g.put(&rm, sz, b);
                g.op16(sz);
                if g.chance(50) {
                    g.code.push(0x69);
                    g.modrm(r, &rm);
                    g.imm(sz, c);
                } else {
                    g.code.push(0x6B);
                    g.modrm(r, &rm);
                    g.imm(B, c);
                }
            },
        );
    }

    // DIV / IDIV r/m (F6/F7 /6 /7).  mask: all arithmetic flags (undefined);
    // a #DE is compared in full (state at the faulting instruction).
    for (sub, name) in [(6u8, "DIV"), (7u8, "IDIV")] {
        for sz in sizes {
            form(&mut f, format!("{name} {}", sz.tag()), 3000, move |g| {
                g.flags_mask = DF;
                let signed = sub == 7;
                let n = sz.bits();
                let rm = g.rm_x(sz, 40, &[EAX, EDX]);
                // Divisor
                let d = match g.rng.gen_range(0..10) {
                    0 => 0,
                    1..=3 => g.pick(&EDGES) & sz.mask(),
                    _ => g.val(sz),
                };
                // Dividend (2n bits): mostly built from a quotient that fits.
                let dividend: u64 = match g.rng.gen_range(0..10) {
                    0..=5 if d != 0 => {
                        if signed {
                            let ds = ((d << (32 - n)) as i32 >> (32 - n)) as i64;
                            let q = g.rng.gen_range(-(1i64 << (n - 1))..(1i64 << (n - 1)));
                            let r = g.rng.gen_range(0..ds.abs());
                            let neg = g.chance(50);
                            let mut x = q * ds;
                            // The remainder has the sign of the dividend.
                            if neg && x <= 0 {
                                x -= r;
                            } else if !neg && x >= 0 {
                                x += r;
                            }
                            x as u64
                        } else {
                            let q = g.rng.gen::<u64>() & ((1u64 << n) - 1);
                            let r = g.rng.gen_range(0..d as u64);
                            q * d as u64 + r
                        }
                    }
                    6 | 7 => {
                        let hi = g.pick(&EDGES) as u64 & sz.mask() as u64;
                        let lo = g.val(sz) as u64;
                        (hi << n) | lo
                    }
                    _ => g.rng.gen::<u64>(),
                };
                let mask2n = if n == 32 {
                    u64::MAX
                } else {
                    (1u64 << (2 * n)) - 1
                };
                let dividend = dividend & mask2n;
                match sz {
                    B => g.set(0, W, dividend as u32),
                    _ => {
                        g.set(0, sz, dividend as u32);
                        g.set(EDX as u8, sz, (dividend >> n) as u32);
                    }
                }
                g.put(&rm, sz, d);
                g.op16(sz);
                g.code.push(if sz == B { 0xF6 } else { 0xF7 });
                g.modrm(sub, &rm);
            });
        }
    }

    // ROL ROR RCL RCR SHL SHR SAL(/6 alias) SAR: D0/D1 (1), D2/D3 (CL),
    // C0/C1 (imm8).  mask: see shift_mask.
    for (op, name) in SHIFT_NAMES.iter().enumerate() {
        let op = op as u8;
        for sz in sizes {
            let count = if op == 6 { 600 } else { 3000 };
            form(&mut f, format!("{name} {}", sz.tag()), count, move |g| {
                let wide = (sz != B) as u8;
                let v = g.val(sz);
                let variant = g.rng.gen_range(0..3);
                let c = g.count();
                let final_count;
                if variant == 1 {
                    // by CL; the operand itself may be CL/CX/ECX
                    let rm = if g.chance(5) {
                        Rm::Reg(1)
                    } else {
                        g.reserve(&[ECX]);
                        g.rm(sz, 35)
                    };
                    g.set(1, B, c);
                    g.put(&rm, sz, v);
                    final_count = g.regs[ECX] & 0xFF;
                    g.op16(sz);
                    g.code.push(0xD2 + wide);
                    g.modrm(op, &rm);
                } else {
                    let rm = g.rm(sz, 35);
                    g.put(&rm, sz, v);
                    g.op16(sz);
                    if variant == 0 {
                        final_count = 1;
                        g.code.push(0xD0 + wide);
                        g.modrm(op, &rm);
                    } else {
                        final_count = c;
                        g.code.push(0xC0 + wide);
                        g.modrm(op, &rm);
                        g.imm(B, c);
                    }
                }
                g.flags_mask = shift_mask(op, sz, final_count);
            });
        }
    }

    // SHLD / SHRD r/m, r, imm8 | CL (0F A4/A5/AC/AD).
    // mask: count&31 == 0: nothing; count > width (16-bit): result and all
    // flags; else AF, and OF unless count == 1.
    for (base, name) in [(0xA4u8, "SHLD"), (0xACu8, "SHRD")] {
        for sz in [W, D] {
            form(&mut f, format!("{name} {}", sz.tag()), 3000, move |g| {
                let (a, b) = (g.val(sz), g.val(sz));
                let c = g.count();
                let by_cl = g.chance(50);
                if by_cl {
                    g.reserve(&[ECX]);
                }
                let rm = g.rm(sz, 35);
                let r = g.reg(sz);
                g.put(&rm, sz, a);
                g.set(r, sz, b);
                let final_count;
                g.op16(sz);
                if by_cl {
                    g.set(1, B, c);
                    final_count = g.regs[ECX] & 0xFF;
                    g.bytes(&[0x0F, base + 1]);
                    g.modrm(r, &rm);
                } else {
                    final_count = c;
                    g.bytes(&[0x0F, base]);
                    g.modrm(r, &rm);
                    g.imm(B, c);
                }
                let m = final_count & 31;
                if m == 0 {
                    g.flags_mask = FLAGS_IO;
                } else if m > sz.bits() {
                    g.flags_mask = DF;
                    g.undefined_dest(&rm, sz);
                } else {
                    g.flags_mask = FLAGS_IO & !AF & if m == 1 { !0 } else { !OF };
                }
            });
        }
    }

    // BT BTS BTR BTC: r/m,r (0F A3/AB/B3/BB) incl. memory with bit offsets
    // far outside the addressed word; r/m,imm8 (0F BA /4-/7).
    // mask: OF SF AF PF.
    for (i, name) in ["BT", "BTS", "BTR", "BTC"].iter().enumerate() {
        let i = i as u8;
        for sz in [W, D] {
            form(&mut f, format!("{name} {}", sz.tag()), 3000, move |g| {
                g.flags_mask = CF | ZF | DF;
                let v = g.val(sz);
                match g.rng.gen_range(0..4) {
                    0 => {
                        // register, bit offset in a register (mod width)
                        let rm = Rm::Reg(g.reg(sz));
                        g.put(&rm, sz, v);
                        let r = g.reg(sz);
                        let off: u32 = g.rng.gen();
                        g.set(r, sz, off);
                        g.op16(sz);
                        g.bytes(&[0x0F, 0xA3 + i * 8]);
                        g.modrm(r, &rm);
                    }
                    1 => {
                        // memory, bit offset in a register: signed, may
                        // address other words of the buffer
                        let m = g.mem(96, 156);
                        let t = (m.addr - DATA_ADDR) as i32;
                        let w = sz.bytes() as i32;
                        let k = g.rng.gen_range(-(t / w)..=((DATA_LEN as i32 - 4 - t) / w));
                        let off = k * sz.bits() as i32 + g.rng.gen_range(0..sz.bits() as i32);
                        let r = g.reg(sz);
                        // 16-bit: the upper half of the offset register is ignored
                        let junk: u32 = g.rng.gen();
                        g.set(r, D, junk);
                        g.set(r, sz, off as u32);
                        g.op16(sz);
                        g.bytes(&[0x0F, 0xA3 + i * 8]);
                        g.modrm(r, &Rm::Mem(m));
                    }
                    _ => {
                        // r/m, imm8 (the immediate is taken modulo the width)
                        let rm = g.rm(sz, 50);
                        g.put(&rm, sz, v);
                        let imm: u32 = g.rng.gen_range(0..256);
                        g.op16(sz);
                        g.bytes(&[0x0F, 0xBA]);
                        g.modrm(4 + i, &rm);
                        g.imm(B, imm);
                    }
                }
            });
        }
    }

    // BSF / BSR r, r/m (0F BC / 0F BD).  mask: CF OF SF AF PF, and the
    // destination when the source is zero.
    for (op, name) in [(0xBCu8, "BSF"), (0xBDu8, "BSR")] {
        for sz in [W, D] {
            form(&mut f, format!("{name} {}", sz.tag()), 2500, move |g| {
                g.flags_mask = ZF | DF;
                let src = if g.chance(15) {
                    0
                } else if g.chance(50) {
                    let bit = g.rng.gen_range(0..sz.bits());
                    (1u32 << bit) | (g.rng.gen::<u32>() & sz.mask() & (1u32 << bit).wrapping_neg())
                } else {
                    g.val(sz)
                };
                let rm = g.rm(sz, 40);
                let r = g.reg(sz);
                let d = g.val(sz);
                g.set(r, sz, d);
                g.put(&rm, sz, src);
                if g.fetch(&rm, sz) == 0 {
                    g.undefined_dest(&Rm::Reg(r), sz);
                }
                g.op16(sz);
                g.bytes(&[0x0F, op]);
                g.modrm(r, &rm);
            });
        }
    }

    // BSWAP r32 (0F C8+r).  No flags.
    form(&mut f, "BSWAP 32", 800, |g| {
        let r = g.reg(D);
        g.bytes(&[0x0F, 0xC8 + r]);
    });

    // XADD r/m, r (0F C0/C1).  Flags as ADD.
    for sz in sizes {
        form(&mut f, format!("XADD {}", sz.tag()), 2000, move |g| {
            let (a, b) = (g.val(sz), g.val(sz));
            let rm = g.rm(sz, 40);
            let r = g.reg(sz);
            g.put(&rm, sz, a);
            g.set(r, sz, b);
            g.op16(sz);
            g.bytes(&[0x0F, 0xC0 + (sz != B) as u8]);
            g.modrm(r, &rm);
        });
    }

    // CMPXCHG r/m, r (0F B0/B1).  Flags as CMP.
    for sz in sizes {
        form(&mut f, format!("CMPXCHG {}", sz.tag()), 2000, move |g| {
            let (a, b, c) = (g.val(sz), g.val(sz), g.val(sz));
            let rm = g.rm_x(sz, 40, &[EAX]);
            let r = g.reg(sz);
            g.set(0, sz, c);
            g.put(&rm, sz, a);
            g.set(r, sz, b);
            if g.chance(50) {
                // make the comparison succeed
                let cur = g.fetch(&rm, sz);
                g.set(0, sz, cur);
            }
            g.op16(sz);
            g.bytes(&[0x0F, 0xB0 + (sz != B) as u8]);
            g.modrm(r, &rm);
        });
    }

    // CMPXCHG8B m64 (0F C7 /1).  Only ZF changes; all flags compared.
    form(&mut f, "CMPXCHG8B", 1500, |g| {
        g.reserve(&[EAX, ECX, EDX, EBX]);
        let m = g.mem(0, DATA_LEN as u32 - 8);
        if g.chance(50) {
            let (lo, hi) = (g.regs[EAX], g.regs[EDX]);
            g.wmem(m.addr, D, lo);
            g.wmem(m.addr + 4, D, hi);
            if g.chance(20) {
                // equal except one bit
                let bit = g.rng.gen_range(0..64u32);
                let a = m.addr + bit / 8 - DATA_ADDR;
                g.data[a as usize] ^= 1 << (bit % 8);
            }
        }
        g.bytes(&[0x0F, 0xC7]);
        g.modrm(1, &Rm::Mem(m));
    });

    // CBW CWDE CWD CDQ.  No flags.
    for (bytes, name) in [
        (&[0x66u8, 0x98][..], "CBW"),
        (&[0x98u8][..], "CWDE"),
        (&[0x66u8, 0x99][..], "CWD"),
        (&[0x99u8][..], "CDQ"),
    ] {
        form(&mut f, name, 600, move |g| {
            let v = g.val(D);
            let v = if g.chance(50) { v } else { g.val(W) };
            let v = if g.chance(30) { g.val(B) } else { v };
            g.regs[EAX] = v;
            g.bytes(bytes);
        });
    }

    // MOVZX / MOVSX r16/r32, r/m8 | r/m16 (0F B6/B7, 0F BE/BF).  No flags.
    for (base, name) in [(0xB6u8, "MOVZX"), (0xBEu8, "MOVSX")] {
        form(&mut f, name, 2000, move |g| {
            let src = if g.chance(50) { B } else { W };
            let dst = if g.chance(70) { D } else { W };
            let v = g.val(src);
            let rm = g.rm(src, 40);
            let r = g.reg(dst);
            g.put(&rm, src, v);
            g.op16(dst);
            g.bytes(&[0x0F, base + (src == W) as u8]);
            g.modrm(r, &rm);
        });
    }

    // SETcc r/m8 (0F 90+cc).  No flags; random flags in.
    form(&mut f, "SETcc", 4000, |g| {
        g.random_flags();
        let cc: u8 = g.rng.gen_range(0..16);
        let rm = g.rm(B, 30);
        g.bytes(&[0x0F, 0x90 + cc]);
        g.modrm(0, &rm);
    });

    // CMOVcc r, r/m (0F 40+cc).  No flags; random flags in.
    for sz in [W, D] {
        form(&mut f, format!("CMOVcc {}", sz.tag()), 3000, move |g| {
            g.random_flags();
            let cc: u8 = g.rng.gen_range(0..16);
            let rm = g.rm(sz, 40);
            let r = g.reg(sz);
            g.op16(sz);
            g.bytes(&[0x0F, 0x40 + cc]);
            g.modrm(r, &rm);
        });
    }

    // LEA with every 32-bit ModRM/SIB shape (no ESP base), 16/32-bit
    // operand size.  No memory access, no flags.
    form(&mut f, "LEA addr32", 4000, |g| {
        let sz = if g.chance(25) { W } else { D };
        let r = g.reg(sz);
        g.op16(sz);
        g.code.push(0x8D);
        let md: u8 = g.rng.gen_range(0..3);
        let sib = g.chance(60);
        let rm = if sib {
            4
        } else {
            let mut x = g.rng.gen_range(0..8u8);
            while x == 4 {
                x = g.rng.gen_range(0..8u8);
            }
            x
        };
        g.code.push((md << 6) | (r << 3) | rm);
        if sib {
            let mut base = g.rng.gen_range(0..8u8);
            while base == 4 {
                base = g.rng.gen_range(0..8u8);
            }
            let index = g.rng.gen_range(0..8u8); // 4 = no index
            let scale = g.rng.gen_range(0..4u8);
            g.code.push((scale << 6) | (index << 3) | base);
            if md == 0 && base == 5 {
                let d: u32 = g.rng.gen();
                g.imm(D, d);
            }
        } else if md == 0 && rm == 5 {
            let d: u32 = g.rng.gen();
            g.imm(D, d);
        }
        match md {
            1 => {
                let d: u32 = g.rng.gen();
                g.imm(B, d);
            }
            2 => {
                let d: u32 = g.rng.gen();
                g.imm(D, d);
            }
            _ => {}
        }
    });

    // LEA with 16-bit addressing (67 prefix): [bx+si] .. [bx], disp8/16.
    form(&mut f, "LEA addr16", 1500, |g| {
        let sz = if g.chance(50) { W } else { D };
        let r = g.reg(sz);
        g.op16(sz);
        g.code.push(0x67);
        g.code.push(0x8D);
        let md: u8 = g.rng.gen_range(0..3);
        let rm: u8 = g.rng.gen_range(0..8);
        g.code.push((md << 6) | (r << 3) | rm);
        let d: u32 = g.rng.gen();
        if md == 1 {
            g.imm(B, d);
        } else if md == 2 || (md == 0 && rm == 6) {
            g.imm(W, d);
        }
    });

    // DAA DAS (mask: OF), AAA AAS (mask: OF SF ZF PF), AAM AAD imm8
    // (mask: OF AF CF; AAM 0 raises #DE).
    for (op, name, undef) in [
        (0x27u8, "DAA", OF),
        (0x2F, "DAS", OF),
        (0x37, "AAA", OF | SF | ZF | PF),
        (0x3F, "AAS", OF | SF | ZF | PF),
        (0xD4, "AAM", OF | AF | CF),
        (0xD5, "AAD", OF | AF | CF),
    ] {
        form(&mut f, name, 3000, move |g| {
            g.random_flags();
            g.flags_mask &= !undef;
            if g.chance(50) {
                // mostly valid packed/unpacked BCD
                let hi = g.rng.gen_range(0..10u32);
                let lo = g.rng.gen_range(0..16u32);
                g.regs[EAX] = (g.regs[EAX] & !0xFF) | (hi << 4) | lo;
            }
            g.code.push(op);
            if op >= 0xD4 {
                let imm = match g.rng.gen_range(0..20) {
                    0 => 0,
                    1..=9 => 10,
                    _ => g.rng.gen_range(0..256),
                };
                g.imm(B, imm);
            }
        });
    }

    // String instructions, DF = 0/1, with/without REP/REPE/REPNE, on the
    // data buffer.  Flags: CMPS/SCAS as CMP, others none.
    let strings: [(&str, u8, bool, bool, bool); 5] = [
        // name, opcode (byte form), uses ESI, uses EDI, compares
        ("MOVS", 0xA4, true, true, false),
        ("CMPS", 0xA6, true, true, true),
        ("STOS", 0xAA, false, true, false),
        ("LODS", 0xAC, true, false, false),
        ("SCAS", 0xAE, false, true, true),
    ];
    for (name, opc, src, dst, cmp) in strings {
        for sz in sizes {
            let suffix = match sz {
                B => "B",
                W => "W",
                D => "D",
            };
            form(&mut f, format!("{name}{suffix}"), 1200, move |g| {
                let s = sz.bytes();
                let df = g.chance(50);
                g.eflags = (g.eflags & !DF) | if df { DF } else { 0 };
                let prefix = match g.rng.gen_range(0..10) {
                    0..=2 => None,
                    3..=6 => Some(0xF3u8),
                    _ => Some(if cmp { 0xF2 } else { 0xF3 }),
                };
                let n = if prefix.is_some() {
                    if g.chance(10) {
                        0
                    } else {
                        g.rng.gen_range(1..=16u32)
                    }
                } else {
                    1
                };
                // A start pointer whose n elements stay inside [lo, lo+128).
                let place = |g: &mut G, lo: u32| -> u32 {
                    let span = n.max(1) * s;
                    let slack = 128 - span;
                    let first = lo + g.rng.gen_range(0..=slack);
                    if df {
                        first + span - s
                    } else {
                        first
                    }
                };
                let (slo, dlo) = if g.chance(50) { (0, 128) } else { (128, 0) };
                let si = place(g, slo);
                let di = if g.chance(15) {
                    // overlapping source and destination
                    place(g, slo)
                } else {
                    place(g, dlo)
                };
                if src {
                    g.regs[ESI] = DATA_ADDR + si;
                }
                if dst {
                    g.regs[EDI] = DATA_ADDR + di;
                }
                if prefix.is_some() {
                    g.regs[ECX] = n;
                }
                if cmp && g.chance(70) {
                    // make the compared elements mostly equal
                    let step = |i: u32, p: u32| {
                        if df {
                            p - i * s
                        } else {
                            p + i * s
                        }
                    };
                    let acc = g.regs[EAX];
                    for i in 0..n.max(1) {
                        for k in 0..s {
                            let d = (step(i, di) + k) as usize;
                            g.data[d] = if name == "SCAS" {
                                (acc >> (8 * k)) as u8
                            } else {
                                g.data[(step(i, si) + k) as usize]
                            };
                        }
                    }
                    if g.chance(50) {
                        let i = g.rng.gen_range(0..n.max(1));
                        let k = g.rng.gen_range(0..s);
                        g.data[(step(i, di) + k) as usize] ^= 1 << g.rng.gen_range(0..8);
                    }
                }
                if let Some(p) = prefix {
                    g.code.push(p);
                }
                g.op16(sz);
                g.code.push(opc + (sz != B) as u8);
            });
        }
    }

    // XCHG r/m, r (86/87) and XCHG eAX, r (90+r).  No flags.
    for sz in sizes {
        form(&mut f, format!("XCHG {}", sz.tag()), 1500, move |g| {
            if sz != B && g.chance(30) {
                let r = g.reg(sz);
                g.op16(sz);
                g.code.push(0x90 + r);
            } else {
                let rm = g.rm(sz, 40);
                let r = g.reg(sz);
                g.op16(sz);
                g.code.push(0x86 + (sz != B) as u8);
                g.modrm(r, &rm);
            }
        });
    }

    // LOCK prefix: lockable read-modify-write forms with a memory
    // destination work; a register destination, CMP, BT or "r, r/m" forms
    // raise #UD.
    form(&mut f, "LOCK", 4000, |g| {
        let variant = g.rng.gen_range(0..8);
        let sz = if variant == 6 {
            g.pick(&[W, D])
        } else {
            g.pick(&[B, W, D])
        };
        let wide = (sz != B) as u8;
        // CMPXCHG sets the accumulator below: keep EAX out of the address.
        let rm = g.rm_x(sz, 80, &[EAX]);
        let (a, b) = (g.val(sz), g.val(sz));
        g.put(&rm, sz, a);
        let r = g.reg(sz);
        g.set(r, sz, b);
        g.code.push(0xF0);
        g.op16(sz);
        match variant {
            0 | 7 => {
                // op r/m, r (00/01..) or op r, r/m (02/03.., never lockable)
                let op = g.rng.gen_range(0..8u8);
                if matches!(op, 1 | 4 | 6) {
                    g.flags_mask &= !AF;
                }
                let dir = if variant == 7 { 2 } else { 0 };
                g.code.push(op * 8 + dir + wide);
                g.modrm(r, &rm);
            }
            1 => {
                let op = g.rng.gen_range(0..8u8);
                if matches!(op, 1 | 4 | 6) {
                    g.flags_mask &= !AF;
                }
                g.code.push(0x80 + wide);
                g.modrm(op, &rm);
                g.imm(sz, b);
            }
            2 => {
                // NOT NEG (F6/F7 /2 /3), INC DEC (FE/FF /0 /1)
                if g.chance(50) {
                    g.code.push(0xF6 + wide);
                    let sub = g.rng.gen_range(2..4);
                    g.modrm(sub, &rm);
                } else {
                    g.code.push(0xFE + wide);
                    let sub = g.rng.gen_range(0..2);
                    g.modrm(sub, &rm);
                }
            }
            3 => {
                g.bytes(&[0x0F, 0xC0 + wide]);
                g.modrm(r, &rm);
            }
            4 => {
                if g.chance(50) {
                    // make the comparison succeed
                    let cur = g.fetch(&rm, sz);
                    g.set(0, sz, cur);
                }
                g.bytes(&[0x0F, 0xB0 + wide]);
                g.modrm(r, &rm);
            }
            5 => {
                g.code.push(0x86 + wide);
                g.modrm(r, &rm);
            }
            _ => {
                // BT (not lockable) BTS BTR BTC r/m, imm8
                g.flags_mask = CF | ZF | DF;
                let sub = g.rng.gen_range(4..8);
                g.bytes(&[0x0F, 0xBA]);
                g.modrm(sub, &rm);
                let imm = g.rng.gen_range(0..256);
                g.imm(B, imm);
            }
        }
    });

    // CMC CLC STC CLD STD LAHF SAHF.  No undefined flags.
    form(&mut f, "CMC/CLC/STC/CLD/STD/LAHF/SAHF", 1200, |g| {
        g.random_flags();
        let op = g.pick(&[0xF5u8, 0xF8, 0xF9, 0xFC, 0xFD, 0x9F, 0x9E]);
        g.code.push(op);
    });

    f
}

// ---------------------------------------------------------------------------
// Comparison and reporting

/// Differences between the host (expected) and the emulator (got), or an
/// empty list.
fn compare(case: &Case, exp: &Outcome, got: &Outcome) -> Vec<String> {
    let mut d = Vec::new();
    if !exp.exit.same_as(&got.exit) {
        d.push(format!("exit: expected {}, got {}", exp.exit, got.exit));
        return d;
    }
    if exp.eip != got.eip {
        d.push(format!(
            "eip: expected {:#010x}, got {:#010x}",
            exp.eip, got.eip
        ));
    }
    for (i, name) in REG_NAMES.iter().enumerate() {
        let m = case.reg_mask[i];
        if i != ESP && (exp.regs[i] ^ got.regs[i]) & m != 0 {
            d.push(format!(
                "{}: expected {:08x}, got {:08x}{}",
                name,
                exp.regs[i],
                got.regs[i],
                if m != u32::MAX {
                    format!(" (compared bits {m:08x})")
                } else {
                    String::new()
                }
            ));
        }
    }
    let fm = if exp.exit == Exit::Done {
        case.flags_mask
    } else {
        FLAGS_IO
    };
    let fx = (exp.eflags ^ got.eflags) & fm;
    if fx != 0 {
        d.push(format!(
            "flags: expected [{}], got [{}] (differ: {}; compared: {})",
            flag_names(exp.eflags & fm),
            flag_names(got.eflags & fm),
            flag_names(fx),
            flag_names(fm)
        ));
    }
    let mut bad = Vec::new();
    for i in 0..DATA_LEN {
        if let Some((s, l)) = case.data_undef {
            if i >= s && i < s + l {
                continue;
            }
        }
        if exp.data[i] != got.data[i] {
            bad.push(i);
        }
    }
    if !bad.is_empty() {
        let show: Vec<String> = bad
            .iter()
            .take(8)
            .map(|&i| {
                format!(
                    "[{:#x}] {:02x}/{:02x}",
                    DATA_ADDR as usize + i,
                    exp.data[i],
                    got.data[i]
                )
            })
            .collect();
        d.push(format!(
            "data: {} byte(s) differ (expected/got): {}{}",
            bad.len(),
            show.join(" "),
            if bad.len() > 8 { " ..." } else { "" }
        ));
    }
    d
}

fn describe(case: &Case, exp: &Outcome, diffs: &[String]) -> String {
    let s = &case.snip;
    let mut out = format!(
        "    {}   {}\n",
        hex_bytes(&s.code),
        disasm(&s.code, CODE_ADDR)
    );
    let regs: Vec<String> = (0..8)
        .filter(|&i| i != ESP)
        .map(|i| format!("{}={:08x}", REG_NAMES[i], s.regs[i]))
        .collect();
    out += &format!(
        "      in:  {} flags=[{}]\n",
        regs.join(" "),
        flag_names(s.eflags)
    );
    if let Some(a) = case.mem_at {
        let o = (a - DATA_ADDR) as usize;
        let end = (o + 8).min(DATA_LEN);
        out += &format!(
            "      mem [{a:#010x}..]: in {}  host {}\n",
            hex_bytes(&s.data[o..end]),
            hex_bytes(&exp.data[o..end])
        );
    }
    let regs: Vec<String> = (0..8)
        .filter(|&i| i != ESP)
        .map(|i| format!("{}={:08x}", REG_NAMES[i], exp.regs[i]))
        .collect();
    out += &format!(
        "      host: {} {} flags=[{}]\n",
        exp.exit,
        regs.join(" "),
        flag_names(exp.eflags & FLAGS_IO)
    );
    for d in diffs {
        out += &format!("      {d}\n");
    }
    out
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn seed_for(name: &str, base: u64) -> u64 {
    // FNV-1a over the form name: stable when forms are added or reordered.
    name.bytes().fold(0xcbf2_9ce4_8422_2325 ^ base, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

#[test]
fn native_diff() {
    if !native::host_runs_i386() {
        println!(
            "native-diff: skipped: this host ({}) cannot run i386 code natively",
            std::env::consts::ARCH
        );
        return;
    }
    let runner = native::runner_path();
    let filter = std::env::var("X86EMU_NATIVE_DIFF_FILTER").unwrap_or_default();
    let scale: f64 = env_or("X86EMU_NATIVE_DIFF_SCALE", 1.0);
    let seed: u64 = env_or("X86EMU_NATIVE_DIFF_SEED", 0x0038_6d1f);
    let show: usize = env_or("X86EMU_NATIVE_DIFF_SHOW", 3);

    let forms = build_forms();
    let mut emu = Emu::new();
    let (mut t_gen, mut t_native, mut t_emu) = (0f64, 0f64, 0f64);
    let mut rows = Vec::new();
    let mut reports = String::new();
    let (mut passed, mut failed) = (0usize, 0usize);
    for form in forms.iter().filter(|f| f.name.contains(&filter)) {
        let count = ((form.count as f64 * scale).round() as usize).max(1);
        let t0 = Instant::now();
        let mut g = G::new(seed_for(&form.name, seed));
        let cases: Vec<Case> = (0..count)
            .map(|i| {
                g.reset(i);
                (form.gen)(&mut g);
                g.finish()
            })
            .collect();
        let snips: Vec<Snippet> = cases.iter().map(|c| c.snip.clone()).collect();
        let t1 = Instant::now();
        let host = native::run_native(&runner, &snips);
        let t2 = Instant::now();
        let (mut ok, mut bad, mut faults) = (0usize, 0usize, 0usize);
        let mut shown = 0;
        for (case, exp) in cases.iter().zip(&host) {
            if exp.exit != Exit::Done {
                faults += 1;
            }
            let got = emu.run(&case.snip);
            let diffs = compare(case, exp, &got);
            if diffs.is_empty() {
                ok += 1;
            } else {
                bad += 1;
                if shown < show {
                    shown += 1;
                    reports += &format!("  [{}]\n{}", form.name, describe(case, exp, &diffs));
                }
            }
        }
        let t3 = Instant::now();
        t_gen += (t1 - t0).as_secs_f64();
        t_native += (t2 - t1).as_secs_f64();
        t_emu += (t3 - t2).as_secs_f64();
        passed += ok;
        failed += bad;
        rows.push((form.name.clone(), count, ok, bad, faults));
    }

    println!(
        "{:<22} {:>7} {:>7} {:>7} {:>7}",
        "form", "cases", "pass", "FAIL", "faults"
    );
    for (name, count, ok, bad, faults) in &rows {
        println!(
            "{:<22} {:>7} {:>7} {:>7} {:>7}{}",
            name,
            count,
            ok,
            bad,
            faults,
            if *bad > 0 { "   <--" } else { "" }
        );
    }
    println!("{UNDEFINED_TABLE}");
    println!("time: generate {t_gen:.2}s, host {t_native:.2}s, emulator {t_emu:.2}s");
    if !reports.is_empty() {
        println!("first mismatches per form (host = expected):\n{reports}");
    }
    println!("native-diff: {passed} passed, {failed} failed");
    assert!(
        rows.iter().any(|r| r.1 > 0),
        "no forms matched the filter {filter:?}"
    );
    assert_eq!(
        failed, 0,
        "native-diff: {failed} mismatches (see the table above)"
    );
}

/// The runner itself: a few hand-checked results, so that a broken runner
/// cannot make the differential test meaningless.
#[test]
fn native_runner_sanity() {
    if !native::host_runs_i386() {
        println!("native runner: skipped: this host cannot run i386 code natively");
        return;
    }
    let runner = native::runner_path();
    let mut data = [0u8; DATA_LEN];
    data[0x10] = 0x5A;
    let mk = |code: &[u8], regs: [u32; 8], eflags: u32| Snippet {
        code: code.to_vec(),
        regs,
        eflags,
        data,
    };
    let cases = [
        // add eax, edx: 0xFFFFFFFF + 1 = 0, CF ZF AF PF
        mk(&[0x01, 0xD0], [0xFFFF_FFFF, 0, 1, 0, 0, 0, 0, 0], 0),
        // div ecx with ecx = 0: #DE at the DIV, state untouched
        mk(&[0x90, 0xF7, 0xF1], [5, 0, 0, 0, 0, 0, 0, 0], ARITH),
        // mov al, [ebx]; std
        mk(
            &[0x8A, 0x03, 0xFD],
            [0, 0, 0, DATA_ADDR + 0x10, 0, 0, 0, 0],
            0,
        ),
    ];
    let out = native::run_native(&runner, &cases);
    assert_eq!(out[0].exit, Exit::Done);
    assert_eq!(out[0].regs[EAX], 0);
    assert_eq!(out[0].eflags & FLAGS_IO, CF | ZF | AF | PF);
    assert_eq!(out[0].eip, CODE_ADDR + 2);
    assert_eq!(out[1].exit, Exit::Fault(0));
    assert_eq!(out[1].eip, CODE_ADDR + 1);
    assert_eq!(out[1].regs[EAX], 5);
    assert_eq!(out[1].eflags & FLAGS_IO, ARITH);
    assert_eq!(out[2].regs[EAX] & 0xFF, 0x5A);
    assert_eq!(out[2].eflags & DF, DF);
    assert_eq!(out[2].data[0x10], 0x5A);
}
