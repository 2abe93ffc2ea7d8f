//! EFLAGS bits and lazy arithmetic flags.
//!
//! The hot ALU operations (ADD/ADC/SUB/SBB/CMP/NEG, AND/OR/XOR/TEST, INC/DEC) do not
//! compute flags: they record the operation, its operands and its result in
//! [`LazyFlags`]. Flags are derived only when something reads them (Jcc, PUSHF, ...).
//! The carry/borrow and overflow formulas below are valid with or without a carry in,
//! so ADC and SBB share the ADD and SUB records.

use serde::{Deserialize, Serialize};

pub const CF: u32 = 1 << 0;
pub const PF: u32 = 1 << 2;
pub const AF: u32 = 1 << 4;
pub const ZF: u32 = 1 << 6;
pub const SF: u32 = 1 << 7;
pub const TF: u32 = 1 << 8;
pub const IF: u32 = 1 << 9;
pub const DF: u32 = 1 << 10;
pub const OF: u32 = 1 << 11;
pub const IOPL: u32 = 3 << 12;
pub const NT: u32 = 1 << 14;
pub const RF: u32 = 1 << 16;
pub const VM: u32 = 1 << 17;
pub const AC: u32 = 1 << 18;
pub const VIF: u32 = 1 << 19;
pub const VIP: u32 = 1 << 20;
pub const ID: u32 = 1 << 21;

/// The six arithmetic status flags.
pub const ARITH: u32 = CF | PF | AF | ZF | SF | OF;
/// Bit 1 always reads as one.
pub const FIXED1: u32 = 1 << 1;
/// Bits that exist on a P6-class processor.
pub const WRITABLE: u32 = ARITH | TF | IF | DF | IOPL | NT | RF | VM | AC | VIF | VIP | ID;

/// Kind of the last flag-producing operation.
#[repr(u8)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum LazyOp {
    /// Flags are materialised in the raw EFLAGS word.
    #[default]
    None = 0,
    /// `res = dst + src (+ carry)`.
    Add = 1,
    /// `res = dst - src (- borrow)`.
    Sub = 2,
    /// AND/OR/XOR/TEST: CF=OF=0, AF=0.
    Logic = 3,
    /// INC: like Add with src=1, but CF comes from the raw EFLAGS word.
    Inc = 4,
    /// DEC: like Sub with src=1, CF from the raw EFLAGS word.
    Dec = 5,
}

/// A recorded flag-producing operation. Operands are zero-extended to 32 bits.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LazyFlags {
    pub op: LazyOp,
    /// Operand size in bytes: 1, 2 or 4.
    pub size: u8,
    pub _pad: u16,
    pub res: u32,
    pub dst: u32,
    pub src: u32,
}

#[inline]
pub fn parity(v: u32) -> bool {
    (v as u8).count_ones() & 1 == 0
}

#[inline]
pub fn size_mask(size: u8) -> u32 {
    match size {
        1 => 0xFF,
        2 => 0xFFFF,
        _ => 0xFFFF_FFFF,
    }
}

/// Flags ZF, SF and PF of a result of `size` bytes.
#[inline]
pub fn szp(res: u32, size: u8) -> u32 {
    let r = res & size_mask(size);
    let mut f = 0;
    if r == 0 {
        f |= ZF;
    }
    if r >> (size as u32 * 8 - 1) & 1 != 0 {
        f |= SF;
    }
    if parity(r) {
        f |= PF;
    }
    f
}

impl LazyFlags {
    #[inline]
    pub fn is_pending(&self) -> bool {
        self.op != LazyOp::None
    }

    #[inline]
    pub fn clear(&mut self) {
        self.op = LazyOp::None;
    }

    #[inline]
    pub fn set(&mut self, op: LazyOp, size: u8, dst: u32, src: u32, res: u32) {
        let m = size_mask(size);
        *self = LazyFlags {
            op,
            size,
            _pad: 0,
            res: res & m,
            dst: dst & m,
            src: src & m,
        };
    }

    #[inline]
    fn top(&self) -> u32 {
        self.size as u32 * 8 - 1
    }

    /// CF of the recorded operation (`raw` supplies it for Inc/Dec/None).
    #[inline]
    pub fn cf(&self, raw: u32) -> bool {
        let (d, s, r) = (self.dst, self.src, self.res);
        match self.op {
            LazyOp::Add => ((d & s) | ((d | s) & !r)) >> self.top() & 1 != 0,
            LazyOp::Sub => ((!d & s) | ((!d | s) & r)) >> self.top() & 1 != 0,
            LazyOp::Logic => false,
            LazyOp::Inc | LazyOp::Dec | LazyOp::None => raw & CF != 0,
        }
    }

    #[inline]
    pub fn zf(&self, raw: u32) -> bool {
        if self.op == LazyOp::None {
            raw & ZF != 0
        } else {
            self.res == 0
        }
    }

    #[inline]
    pub fn sf(&self, raw: u32) -> bool {
        if self.op == LazyOp::None {
            raw & SF != 0
        } else {
            self.res >> self.top() & 1 != 0
        }
    }

    #[inline]
    pub fn of(&self, raw: u32) -> bool {
        let (d, s, r) = (self.dst, self.src, self.res);
        match self.op {
            LazyOp::Add | LazyOp::Inc => ((d ^ r) & (s ^ r)) >> self.top() & 1 != 0,
            LazyOp::Sub | LazyOp::Dec => ((d ^ s) & (d ^ r)) >> self.top() & 1 != 0,
            LazyOp::Logic => false,
            LazyOp::None => raw & OF != 0,
        }
    }

    /// All six arithmetic flags of the recorded operation.
    pub fn arith_flags(&self, raw: u32) -> u32 {
        if self.op == LazyOp::None {
            return raw & ARITH;
        }
        let mut f = szp(self.res, self.size);
        if self.cf(raw) {
            f |= CF;
        }
        if self.of(raw) {
            f |= OF;
        }
        if self.op != LazyOp::Logic {
            f |= (self.dst ^ self.src ^ self.res) & AF;
        }
        f
    }
}
