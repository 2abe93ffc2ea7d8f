//! Intel 8254 programmable interval timer (ports 0x40-0x43) and system control port B
//! (port 0x61: timer 2 gate, speaker enable, refresh toggle, timer 2 output).
//!
//! The counters are clocked at 1193182 Hz derived from the virtual clock: the PIT clock
//! tick at instruction count `n` is `Clock::ticks(n, PIT_HZ)`; tick `k` begins at
//! `Clock::icount_at_ticks(k, PIT_HZ)`. Nothing is stepped: each counter holds the
//! description of what it has been doing since its last change (a *segment*: idle,
//! stopped by its gate, counting down once, or running periodically) and the count and
//! OUT level at any tick are computed from it. A write that happens during tick `t`
//! takes effect on the next CLK pulse, at tick `t + 1`, as on the chip.
//!
//! Modes, per the 82C54 data sheet:
//! - 0 (interrupt on terminal count): OUT low from the control word; the count `N` is
//!   loaded one CLK after it is written and OUT goes high `N + 1` CLKs after the write;
//!   the counter keeps wrapping. Writing the first byte of a two-byte count stops
//!   counting and drives OUT low. GATE low suspends counting.
//! - 1 (hardware one-shot): a GATE rising edge loads the count on the next CLK and drives
//!   OUT low until terminal count; retriggerable.
//! - 2 (rate generator): OUT low for one CLK every `N` CLKs; a new count takes effect at
//!   the end of the current cycle; GATE low stops counting and forces OUT high, a GATE
//!   rising edge reloads.
//! - 3 (square wave): OUT high for `ceil(N/2)` and low for `floor(N/2)` CLKs, the count
//!   decrementing by two (odd counts load `N - 1`); a new count takes effect at the end
//!   of the current half cycle; GATE as in mode 2.
//! - 4 (software strobe) / 5 (hardware strobe): OUT low for one CLK when the count
//!   reaches zero, once per load; mode 4 loads on write and GATE low suspends counting,
//!   mode 5 loads on a GATE rising edge.
//!
//! Binary and BCD counting (a count of 0 means 65536 or 10000), LSB / MSB / LSB-then-MSB
//! access with separate read and write byte pointers, the counter latch command and the
//! read-back command (count and status latches, status with OUT and NULL COUNT).
//! Gates 0 and 1 are tied high; gate 2 is port 0x61 bit 0.
//!
//! IRQ 0 for the board: [`Pit8254::out0`] is the level, [`PortDevice::next_deadline`]
//! the instruction count of the next OUT0 rising edge, and every rising edge (from
//! counting or from a control word that raises OUT) is counted and handed out by
//! [`Pit8254::take_irq0_edges`], so none is lost between polls. The board should, after
//! any access to this device and whenever `next_deadline()` has been reached, call
//! `advance(t)`, and if `take_irq0_edges() > 0` pulse IRQ 0 on the PIC
//! (`set_irq(0, false); set_irq(0, true)`), then drive it to `out0(t)`. OUT0 is high
//! at power-on, so the board drives the PIC line from power-on on (the BIOS's ICW1 then
//! clears the edge sense) rather than first after the PIC is programmed.
//!
//! Illegal counts are handled deterministically: a count of 1 in mode 2 keeps OUT low
//! (no edges), in mode 3 keeps OUT high; BCD digits above 9 count at face value modulo
//! 10000. Time never runs backwards: a `Time` earlier than one already seen is taken as
//! the latest time seen.

use serde::{Deserialize, Serialize};

use super::{PortDevice, Time};
use crate::clock::Clock;

/// Input clock of the counters.
pub const PIT_HZ: u64 = 1_193_182;
pub const PORT_COUNTER0: u16 = 0x40;
pub const PORT_COUNTER2: u16 = 0x42;
pub const PORT_CONTROL: u16 = 0x43;
/// System control port B.
pub const PORT_B: u16 = 0x61;
/// Port 0x61 bit 4 toggles with every DRAM refresh request (15.085 µs).
pub const REFRESH_PERIOD_NS: u64 = 15_085;

/// What a counter is doing since its last change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Seg {
    /// Not counting (no count loaded since the control word, or gated off in modes 2
    /// and 3, or waiting for a trigger in modes 1 and 5).
    Idle { value: u32, out: bool },
    /// Modes 0 and 4 with GATE low: the count is held. `done`: terminal count already
    /// reached for this load.
    Frozen { value: u32, done: bool },
    /// Modes 0, 1, 4, 5: the counter held `start` (1..=modulus) at tick `base` and
    /// decrements every tick after it.
    OneShot { base: u64, start: u32, done: bool },
    /// Modes 2 and 3: period `period` started at `base`, `phase` ticks into the cycle.
    Periodic { base: u64, period: u32, phase: u32 },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Counter {
    /// Low six bits of the last control word: RW1 RW0 M2 M1 M0 BCD.
    ctrl: u8,
    /// Count register (as written, raw).
    cr: u16,
    /// First byte of an LSB-then-MSB write.
    cr_lsb: u8,
    write_msb_next: bool,
    read_msb_next: bool,
    count_latch: Option<u16>,
    status_latch: Option<u8>,
    gate: bool,
    /// A count has been written since the control word.
    cr_valid: bool,
    /// The status NULL COUNT bit, until the pending load happens.
    null_count: bool,
    /// Tick at which the count register is transferred to the counting element.
    pending: Option<u64>,
    seg: Seg,
}

fn bcd_to_bin(raw: u16) -> u32 {
    (0..4)
        .rev()
        .fold(0u32, |acc, i| acc * 10 + ((raw >> (4 * i)) & 0xF) as u32)
}

fn bin_to_bcd(v: u32) -> u16 {
    (0..4).fold(0u16, |acc, i| {
        acc | ((((v / 10u32.pow(i)) % 10) as u16) << (4 * i))
    })
}

impl Counter {
    fn new(gate: bool) -> Counter {
        Counter {
            // Mode 3, LSB then MSB, binary: what every BIOS programs.
            ctrl: 0x36,
            cr: 0,
            cr_lsb: 0,
            write_msb_next: false,
            read_msb_next: false,
            count_latch: None,
            status_latch: None,
            gate,
            cr_valid: false,
            null_count: true,
            pending: None,
            seg: Seg::Idle {
                value: 0,
                out: true,
            },
        }
    }

    fn mode(&self) -> u8 {
        match (self.ctrl >> 1) & 7 {
            m @ 6..=7 => m - 4,
            m => m,
        }
    }

    fn bcd(&self) -> bool {
        self.ctrl & 1 != 0
    }

    fn access(&self) -> u8 {
        (self.ctrl >> 4) & 3
    }

    fn modulus(&self) -> u32 {
        if self.bcd() {
            10_000
        } else {
            65_536
        }
    }

    /// The count a raw register value stands for: 1..=modulus (0 means the modulus).
    fn count_value(&self, raw: u16) -> u32 {
        let m = self.modulus();
        let v = if self.bcd() {
            bcd_to_bin(raw)
        } else {
            raw as u32
        } % m;
        if v == 0 {
            m
        } else {
            v
        }
    }

    fn encode(&self, v: u32) -> u16 {
        let v = v % self.modulus();
        if self.bcd() {
            bin_to_bcd(v)
        } else {
            v as u16
        }
    }

    /// (count, OUT) of `seg` at tick `t`.
    fn eval_seg(&self, seg: &Seg, t: u64) -> (u32, bool) {
        let m = self.modulus() as u64;
        match *seg {
            Seg::Idle { value, out } => (value, out),
            Seg::Frozen { value, done } => (value, self.mode() != 0 || done),
            Seg::OneShot { base, start, done } => {
                let j = t.saturating_sub(base);
                let value = ((start as u64 + m - j % m) % m) as u32;
                let out = match self.mode() {
                    0 | 1 => done || j >= start as u64,
                    _ => done || j != start as u64,
                };
                (value, out)
            }
            Seg::Periodic {
                base,
                period,
                phase,
            } => {
                let n = period.max(1) as u64;
                let p = ((t.saturating_sub(base) % n + phase as u64) % n) as u32;
                let n = n as u32;
                if self.mode() == 3 {
                    let hi = n.div_ceil(2);
                    let q = if p < hi { p } else { p - hi };
                    (((n & !1) - 2 * q) % m as u32, p < hi)
                } else {
                    ((n - p) % m as u32, p != n - 1)
                }
            }
        }
    }

    /// The segment that starts when the pending load happens at tick `e`.
    fn loaded(&self, e: u64) -> Seg {
        let n = self.count_value(self.cr);
        match self.mode() {
            0 | 4 if !self.gate => Seg::Frozen {
                value: n % self.modulus(),
                done: false,
            },
            0 | 1 | 4 | 5 => Seg::OneShot {
                base: e,
                start: n,
                done: false,
            },
            mode => {
                // A mode 3 count that takes over at the end of a high half cycle starts
                // with the low half.
                let hi = n.div_ceil(2);
                let starts_low = mode == 3
                    && hi < n
                    && matches!(self.seg, Seg::Periodic { .. })
                    && !self.eval_seg(&self.seg, e).1;
                Seg::Periodic {
                    base: e,
                    period: n,
                    phase: if starts_low { hi } else { 0 },
                }
            }
        }
    }

    /// The segment in force at tick `t`.
    fn seg_at(&self, t: u64) -> Seg {
        match self.pending {
            Some(e) if t >= e => self.loaded(e),
            _ => self.seg,
        }
    }

    fn value_out(&self, t: u64) -> (u32, bool) {
        self.eval_seg(&self.seg_at(t), t)
    }

    fn out(&self, t: u64) -> bool {
        self.value_out(t).1
    }

    fn null_count(&self, t: u64) -> bool {
        self.null_count && self.pending.is_none_or(|e| t < e)
    }

    /// Apply the pending load if it is due at `t`.
    fn commit(&mut self, t: u64) {
        if let Some(e) = self.pending {
            if t >= e {
                self.seg = self.loaded(e);
                self.pending = None;
                self.null_count = false;
            }
        }
    }

    /// The first tick after the segment's start at which OUT rises, counted by
    /// `rises_upto`: (first, period) with period 0 for a single edge.
    fn seg_rises(&self, seg: &Seg) -> Option<(u64, u64)> {
        match *seg {
            Seg::OneShot {
                base,
                start,
                done: false,
            } => {
                let strobe = matches!(self.mode(), 4 | 5) as u64;
                Some((base.saturating_add(start as u64 + strobe), 0))
            }
            Seg::Periodic {
                base,
                period,
                phase,
            } if period >= 2 => {
                let first = base.saturating_add((period - phase.min(period - 1)) as u64);
                Some((first, period as u64))
            }
            _ => None,
        }
    }

    /// Number of OUT rising edges of `seg` at ticks <= `y`.
    fn rises_upto(&self, seg: &Seg, y: u64) -> u64 {
        match self.seg_rises(seg) {
            Some((first, _)) if y < first => 0,
            Some((_, 0)) => 1,
            Some((first, period)) => (y - first) / period + 1,
            None => 0,
        }
    }

    /// The first OUT rising edge of `seg` after tick `after`.
    fn seg_next_rise(&self, seg: &Seg, after: u64) -> Option<u64> {
        match self.seg_rises(seg)? {
            (first, _) if first > after => Some(first),
            (_, 0) => None,
            (first, period) => {
                let k = (after - first) / period + 1;
                first.checked_add(k.checked_mul(period)?)
            }
        }
    }

    /// OUT rising edges at ticks in `(a, b]`.
    fn rises_in(&self, a: u64, b: u64) -> u64 {
        if b <= a {
            return 0;
        }
        match self.pending {
            Some(e) if e <= a => {
                let s = self.loaded(e);
                self.rises_upto(&s, b) - self.rises_upto(&s, a)
            }
            Some(e) if e <= b => {
                let new = self.loaded(e);
                let at_load = !self.eval_seg(&self.seg, e - 1).1 && self.eval_seg(&new, e).1;
                self.rises_upto(&self.seg, e - 1) - self.rises_upto(&self.seg, a)
                    + at_load as u64
                    + self.rises_upto(&new, b)
                    - self.rises_upto(&new, e)
            }
            _ => self.rises_upto(&self.seg, b) - self.rises_upto(&self.seg, a),
        }
    }

    /// The first OUT rising edge after tick `after`.
    fn next_rise(&self, after: u64) -> Option<u64> {
        match self.pending {
            Some(e) if e > after => {
                if let Some(r) = self.seg_next_rise(&self.seg, after) {
                    if r < e {
                        return Some(r);
                    }
                }
                let new = self.loaded(e);
                if !self.eval_seg(&self.seg, e - 1).1 && self.eval_seg(&new, e).1 {
                    return Some(e);
                }
                self.seg_next_rise(&new, e)
            }
            Some(e) => self.seg_next_rise(&self.loaded(e), after),
            None => self.seg_next_rise(&self.seg, after),
        }
    }

    /// The next half-cycle (mode 3) or cycle (mode 2) boundary after tick `t`.
    fn next_boundary(&self, t: u64) -> u64 {
        if let Seg::Periodic {
            base,
            period,
            phase,
        } = self.seg
        {
            let n = period.max(1) as u64;
            let p = (t.saturating_sub(base) % n + phase as u64) % n;
            let mut d = n - p;
            let hi = n.div_ceil(2);
            if self.mode() == 3 && hi < n {
                d = d.min(if p < hi { hi - p } else { n - p + hi });
            }
            t.saturating_add(d)
        } else {
            t.saturating_add(1)
        }
    }

    fn control(&mut self, ctrl: u8, t: u64) {
        let (v, _) = self.value_out(t);
        self.ctrl = ctrl & 0x3F;
        self.seg = Seg::Idle {
            value: v % self.modulus(),
            out: self.mode() != 0,
        };
        self.cr_valid = false;
        self.null_count = true;
        self.pending = None;
        self.write_msb_next = false;
        self.read_msb_next = false;
        self.count_latch = None;
        self.status_latch = None;
    }

    fn latch_count(&mut self, t: u64) {
        if self.count_latch.is_none() {
            self.count_latch = Some(self.encode(self.value_out(t).0));
        }
    }

    fn latch_status(&mut self, t: u64) {
        if self.status_latch.is_none() {
            let out = (self.out(t) as u8) << 7;
            let null = (self.null_count(t) as u8) << 6;
            self.status_latch = Some(out | null | self.ctrl);
        }
    }

    /// Mode 0: counting stops and OUT goes low at once.
    fn stop_mode0(&mut self, t: u64) {
        let (value, _) = self.value_out(t);
        self.seg = Seg::Idle { value, out: false };
        self.pending = None;
    }

    fn write(&mut self, v: u8, t: u64) {
        let raw = match self.access() {
            1 => v as u16,
            2 => (v as u16) << 8,
            _ if !self.write_msb_next => {
                self.cr_lsb = v;
                self.write_msb_next = true;
                if self.mode() == 0 {
                    self.stop_mode0(t);
                }
                return;
            }
            _ => {
                self.write_msb_next = false;
                u16::from_le_bytes([self.cr_lsb, v])
            }
        };
        self.cr = raw;
        self.cr_valid = true;
        self.null_count = true;
        match self.mode() {
            0 => {
                self.stop_mode0(t);
                self.pending = Some(t.saturating_add(1));
            }
            4 => self.pending = Some(t.saturating_add(1)),
            1 | 5 => {}
            _ => {
                if self.pending.is_none() {
                    if matches!(self.seg, Seg::Periodic { .. }) {
                        self.pending = Some(self.next_boundary(t));
                    } else if self.gate {
                        self.pending = Some(t.saturating_add(1));
                    }
                }
            }
        }
    }

    fn read(&mut self, t: u64) -> u8 {
        if let Some(s) = self.status_latch.take() {
            return s;
        }
        let word = match self.count_latch {
            Some(l) => l,
            None => self.encode(self.value_out(t).0),
        };
        let [lo, hi] = word.to_le_bytes();
        let (byte, last) = match self.access() {
            1 => (lo, true),
            2 => (hi, true),
            _ => {
                self.read_msb_next = !self.read_msb_next;
                if self.read_msb_next {
                    (lo, false)
                } else {
                    (hi, true)
                }
            }
        };
        if last {
            self.count_latch = None;
        }
        byte
    }

    fn set_gate(&mut self, level: bool, t: u64) {
        if self.gate == level {
            return;
        }
        self.gate = level;
        let (value, _) = self.value_out(t);
        match (self.mode(), level) {
            (0 | 4, true) => {
                if let Seg::Frozen { value, done } = self.seg {
                    self.seg = Seg::OneShot {
                        base: t,
                        start: if value == 0 { self.modulus() } else { value },
                        done,
                    };
                }
            }
            (0 | 4, false) => {
                if let Seg::OneShot { base, start, done } = self.seg {
                    let done = done || t.saturating_sub(base) >= start as u64;
                    self.seg = Seg::Frozen { value, done };
                }
            }
            (_, true) if self.cr_valid => self.pending = Some(t.saturating_add(1)),
            (2 | 3, false) => {
                self.seg = Seg::Idle { value, out: true };
                self.pending = None;
            }
            _ => {}
        }
    }
}

/// The 8254 and port 0x61.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pit8254 {
    counters: [Counter; 3],
    /// Port 0x61 bits 0-3 as written (gate 2, speaker data, parity/IOCHK disables).
    port_b: u8,
    /// The clock of the last access (converts ticks to instruction counts).
    clock: Clock,
    /// PIT tick up to which OUT0 edges have been counted.
    last_tick: u64,
    irq0_edges: u32,
}

impl Pit8254 {
    /// Power-on state: every counter in mode 3 (LSB then MSB, binary) with no count
    /// written, OUT high, so nothing counts until the BIOS programs it.
    pub fn new(clock: Clock) -> Pit8254 {
        Pit8254 {
            counters: [Counter::new(true), Counter::new(true), Counter::new(false)],
            port_b: 0,
            clock,
            last_tick: 0,
            irq0_edges: 0,
        }
    }

    fn tick(&self, t: Time) -> u64 {
        t.clock.ticks(t.now, PIT_HZ).max(self.last_tick)
    }

    /// Count OUT0 edges up to `t`, apply due loads; returns the tick.
    fn catch_up(&mut self, t: Time) -> u64 {
        self.clock = t.clock;
        let tick = self.tick(t);
        let n = self.counters[0].rises_in(self.last_tick, tick);
        self.irq0_edges = self
            .irq0_edges
            .saturating_add(n.min(u32::MAX as u64) as u32);
        self.last_tick = tick;
        for c in &mut self.counters {
            c.commit(tick);
        }
        tick
    }

    /// Run `f` at tick `tick`, counting a rising edge of OUT0 it causes.
    fn with_edge(&mut self, tick: u64, f: impl FnOnce(&mut Self)) {
        let before = self.counters[0].out(tick);
        f(self);
        if !before && self.counters[0].out(tick) {
            self.irq0_edges = self.irq0_edges.saturating_add(1);
        }
    }

    /// OUT of counter `ch` (0-2) at `t`; false for other numbers.
    pub fn out(&self, ch: u8, t: Time) -> bool {
        let tick = self.tick(t);
        self.counters.get(ch as usize).is_some_and(|c| c.out(tick))
    }

    /// The IRQ 0 level (counter 0's OUT) at `t`.
    pub fn out0(&self, t: Time) -> bool {
        self.out(0, t)
    }

    /// Rising edges of OUT0 since the last call (counted up to the last `advance` or
    /// port access).
    pub fn take_irq0_edges(&mut self) -> u32 {
        std::mem::take(&mut self.irq0_edges)
    }

    /// Drive the GATE input of counter `ch`. On a PC gates 0 and 1 are tied high and
    /// gate 2 follows port 0x61 bit 0; this is for other wirings and tests.
    pub fn set_gate(&mut self, ch: u8, level: bool, t: Time) {
        let tick = self.catch_up(t);
        if let Some(i) = (ch < 3).then_some(ch as usize) {
            self.with_edge(tick, |p| p.counters[i].set_gate(level, tick));
        }
    }

    fn read_port_b(&self, t: Time, tick: u64) -> u8 {
        let refresh = ((t.ns() / REFRESH_PERIOD_NS) & 1) as u8;
        let out2 = self.counters[2].out(tick) as u8;
        (self.port_b & 0x0F) | (refresh << 4) | (out2 << 5)
    }

    fn read_byte(&mut self, port: u16, t: Time) -> u8 {
        let tick = self.catch_up(t);
        match port {
            0x40..=0x42 => self.counters[(port - 0x40) as usize].read(tick),
            PORT_B => self.read_port_b(t, tick),
            _ => 0xFF,
        }
    }

    fn write_byte(&mut self, port: u16, v: u8, t: Time) {
        let tick = self.catch_up(t);
        self.with_edge(tick, |p| match port {
            0x40..=0x42 => p.counters[(port - 0x40) as usize].write(v, tick),
            PORT_CONTROL => p.control(v, tick),
            PORT_B => {
                p.port_b = v & 0x0F;
                p.counters[2].set_gate(v & 1 != 0, tick);
            }
            _ => {}
        });
    }

    fn control(&mut self, v: u8, tick: u64) {
        match v >> 6 {
            3 => {
                // Read-back: bit 5 = 0 latches counts, bit 4 = 0 latches status.
                for (i, c) in self.counters.iter_mut().enumerate() {
                    if v & (2 << i) != 0 {
                        if v & 0x20 == 0 {
                            c.latch_count(tick);
                        }
                        if v & 0x10 == 0 {
                            c.latch_status(tick);
                        }
                    }
                }
            }
            sc => {
                let c = &mut self.counters[sc as usize];
                if v & 0x30 == 0 {
                    c.latch_count(tick);
                } else {
                    c.control(v, tick);
                }
            }
        }
    }

    fn decodes(port: u16) -> bool {
        matches!(port, 0x40..=0x43 | PORT_B)
    }
}

impl PortDevice for Pit8254 {
    fn port_ranges(&self) -> Vec<(u16, u16)> {
        vec![(PORT_COUNTER0, PORT_CONTROL), (PORT_B, PORT_B)]
    }

    fn reset(&mut self) {
        let keep = (self.clock, self.last_tick);
        *self = Pit8254::new(keep.0);
        self.last_tick = keep.1;
    }

    /// Wider accesses are split into byte accesses at consecutive ports.
    fn io_read(&mut self, port: u16, size: u8, t: Time) -> u32 {
        let mut v = 0u32;
        for i in 0..size.clamp(1, 4) {
            let p = port.wrapping_add(i as u16);
            let b = if Self::decodes(p) {
                self.read_byte(p, t)
            } else {
                0xFF
            };
            v |= (b as u32) << (8 * i);
        }
        v
    }

    fn io_write(&mut self, port: u16, size: u8, value: u32, t: Time) {
        for i in 0..size.clamp(1, 4) {
            let p = port.wrapping_add(i as u16);
            if Self::decodes(p) {
                self.write_byte(p, (value >> (8 * i)) as u8, t);
            }
        }
    }

    /// The instruction count of the next OUT0 rising edge.
    fn next_deadline(&self) -> Option<u64> {
        let tick = self.counters[0].next_rise(self.last_tick)?;
        Some(self.clock.icount_at_ticks(tick, PIT_HZ))
    }

    fn advance(&mut self, t: Time) {
        self.catch_up(t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One PIT tick per instruction: tick numbers are instruction counts.
    fn clk() -> Clock {
        Clock::new(PIT_HZ)
    }

    fn at(n: u64) -> Time {
        Time::new(n, clk())
    }

    fn outb(p: &mut Pit8254, port: u16, v: u8, n: u64) {
        p.io_write(port, 1, v as u32, at(n));
    }

    fn inb(p: &mut Pit8254, port: u16, n: u64) -> u8 {
        p.io_read(port, 1, at(n)) as u8
    }

    /// Counter latch command, then LSB and MSB.
    fn latched(p: &mut Pit8254, ch: u8, n: u64) -> u16 {
        outb(p, 0x43, ch << 6, n);
        let lo = inb(p, 0x40 + ch as u16, n);
        let hi = inb(p, 0x40 + ch as u16, n);
        u16::from_le_bytes([lo, hi])
    }

    /// Program counter `ch` with control word `ctrl` (LSB then MSB) and `count` at `n`.
    fn program(p: &mut Pit8254, ch: u8, ctrl: u8, count: u16, n: u64) {
        outb(p, 0x43, (ch << 6) | ctrl, n);
        outb(p, 0x40 + ch as u16, count as u8, n);
        outb(p, 0x40 + ch as u16, (count >> 8) as u8, n);
    }

    fn status(p: &mut Pit8254, ch: u8, n: u64) -> u8 {
        outb(p, 0x43, 0xE0 | (2 << ch), n);
        inb(p, 0x40 + ch as u16, n)
    }

    #[test]
    fn mode0_terminal_count() {
        let mut p = Pit8254::new(clk());
        outb(&mut p, 0x43, 0x30, 100);
        assert!(!p.out0(at(100)), "mode 0 control word drives OUT low");
        outb(&mut p, 0x40, 5, 100);
        outb(&mut p, 0x40, 0, 100);
        assert_eq!(
            status(&mut p, 0, 100),
            0x70,
            "NULL COUNT until the next CLK"
        );
        assert_eq!(status(&mut p, 0, 101), 0x30);
        assert_eq!(p.next_deadline(), Some(106));
        for (n, count, out) in [
            (101, 5, false),
            (103, 3, false),
            (105, 1, false),
            (106, 0, true),
            (107, 0xFFFF, true),
            (110, 0xFFFC, true),
        ] {
            assert_eq!(latched(&mut p, 0, n), count, "count at {n}");
            assert_eq!(p.out0(at(n)), out, "OUT at {n}");
        }
        assert_eq!(p.take_irq0_edges(), 1);
        p.advance(at(200_000));
        assert_eq!(p.take_irq0_edges(), 0, "mode 0 rises once per count");
        assert_eq!(p.next_deadline(), None);
    }

    #[test]
    fn mode0_first_byte_stops_counting() {
        let mut p = Pit8254::new(clk());
        program(&mut p, 0, 0x30, 10, 0);
        assert_eq!(latched(&mut p, 0, 5), 6);
        outb(&mut p, 0x40, 3, 5);
        assert_eq!(latched(&mut p, 0, 8), 6, "held after the first byte");
        outb(&mut p, 0x40, 0, 8);
        assert_eq!(latched(&mut p, 0, 9), 3);
        assert!(!p.out0(at(11)));
        assert!(p.out0(at(12)));
        // A count written after terminal count drives OUT low again.
        program(&mut p, 0, 0x30, 2, 20);
        assert!(!p.out0(at(20)));
        assert!(p.out0(at(23)));
        p.advance(at(30));
        assert_eq!(p.take_irq0_edges(), 2);
    }

    #[test]
    fn mode2_rate_generator() {
        let mut p = Pit8254::new(clk());
        program(&mut p, 0, 0x34, 4, 10);
        let wave: Vec<(u16, bool)> = (11..20)
            .map(|n| (latched(&mut p, 0, n), p.out0(at(n))))
            .collect();
        assert_eq!(
            wave,
            [
                (4, true),
                (3, true),
                (2, true),
                (1, false),
                (4, true),
                (3, true),
                (2, true),
                (1, false),
                (4, true)
            ]
        );
        p.take_irq0_edges();
        p.advance(at(1010));
        // Rising edges at 15, 19, ..., 1007 (the two at 15 and 19 were already taken).
        assert_eq!(p.take_irq0_edges(), 249 - 2);
        assert_eq!(p.next_deadline(), Some(1011));
    }

    #[test]
    fn mode2_new_count_at_end_of_cycle() {
        let mut p = Pit8254::new(clk());
        program(&mut p, 0, 0x34, 4, 10);
        program(&mut p, 0, 0x34, 4, 10); // control word again: restarts cleanly
        outb(&mut p, 0x40, 10, 12);
        outb(&mut p, 0x40, 0, 12);
        assert_eq!(
            status(&mut p, 0, 13) & 0x40,
            0x40,
            "NULL COUNT until reload"
        );
        assert_eq!(latched(&mut p, 0, 14), 1);
        assert!(!p.out0(at(14)));
        assert_eq!(status(&mut p, 0, 15), 0xB4);
        assert_eq!(latched(&mut p, 0, 15), 10);
        assert!(!p.out0(at(24)));
        assert!(p.out0(at(25)));
        assert_eq!(latched(&mut p, 0, 25), 10);
    }

    #[test]
    fn mode3_square_wave_even_and_odd() {
        let mut p = Pit8254::new(clk());
        program(&mut p, 0, 0x36, 6, 10);
        let wave: Vec<(u16, bool)> = (11..18)
            .map(|n| (latched(&mut p, 0, n), p.out0(at(n))))
            .collect();
        assert_eq!(
            wave,
            [
                (6, true),
                (4, true),
                (2, true),
                (6, false),
                (4, false),
                (2, false),
                (6, true)
            ]
        );
        program(&mut p, 0, 0x36, 5, 100);
        let wave: Vec<(u16, bool)> = (101..107)
            .map(|n| (latched(&mut p, 0, n), p.out0(at(n))))
            .collect();
        assert_eq!(
            wave,
            [
                (4, true),
                (2, true),
                (0, true),
                (4, false),
                (2, false),
                (4, true)
            ]
        );
        p.take_irq0_edges();
        p.advance(at(100 + 1 + 5 * 100));
        // Rising edges at 106, 111, ..., 601; the first was seen by the reads above.
        assert_eq!(p.take_irq0_edges(), 99);
    }

    #[test]
    fn mode3_new_count_at_end_of_half_cycle() {
        let mut p = Pit8254::new(clk());
        program(&mut p, 0, 0x36, 6, 10); // high 11-13, low from 14
        outb(&mut p, 0x40, 4, 12);
        outb(&mut p, 0x40, 0, 12);
        // The new count takes over at 14 in the low half: low 14-15, high 16-17, ...
        let wave: Vec<bool> = (13..21).map(|n| p.out0(at(n))).collect();
        assert_eq!(wave, [true, false, false, true, true, false, false, true]);
        assert_eq!(latched(&mut p, 0, 14), 4);
        assert_eq!(latched(&mut p, 0, 15), 2);
    }

    #[test]
    fn mode3_bios_18hz() {
        let c = Clock::default();
        let mut p = Pit8254::new(c);
        p.io_write(0x43, 1, 0x36, Time::new(0, c));
        p.io_write(0x40, 1, 0, Time::new(0, c));
        p.io_write(0x40, 1, 0, Time::new(0, c));
        let second = c.ips;
        let mut edges = 0;
        while let Some(d) = p.next_deadline().filter(|&d| d <= second) {
            p.advance(Time::new(d, c));
            edges += p.take_irq0_edges();
        }
        // Rising edges at tick 1 + 65536k for k >= 1 within 1193182 ticks.
        assert_eq!(edges, (PIT_HZ as u32 - 1) / 65536);
    }

    #[test]
    fn mode4_software_strobe() {
        let mut p = Pit8254::new(clk());
        program(&mut p, 0, 0x38, 3, 10);
        assert_eq!(p.next_deadline(), Some(15));
        let wave: Vec<(u16, bool)> = (11..16)
            .map(|n| (latched(&mut p, 0, n), p.out0(at(n))))
            .collect();
        assert_eq!(
            wave,
            [(3, true), (2, true), (1, true), (0, false), (0xFFFF, true)]
        );
        p.advance(at(200_000));
        assert_eq!(p.take_irq0_edges(), 1, "one strobe per count");
        // Rewriting the count retriggers on the next CLK.
        program(&mut p, 0, 0x38, 5, 300_000);
        outb(&mut p, 0x40, 2, 300_003);
        outb(&mut p, 0x40, 0, 300_003);
        assert_eq!(latched(&mut p, 0, 300_004), 2);
        assert!(!p.out0(at(300_006)));
        assert_eq!(p.next_deadline(), Some(300_007));
    }

    #[test]
    fn control_word_raising_out_is_an_edge() {
        let mut p = Pit8254::new(clk());
        outb(&mut p, 0x43, 0x30, 5);
        assert_eq!(p.take_irq0_edges(), 0);
        outb(&mut p, 0x43, 0x34, 6);
        assert!(p.out0(at(6)));
        assert_eq!(p.take_irq0_edges(), 1);
    }

    #[test]
    fn mode1_one_shot_on_gate2() {
        let mut p = Pit8254::new(clk());
        program(&mut p, 2, 0x32, 3, 0);
        assert_eq!(
            inb(&mut p, 0x61, 5) & 0x20,
            0x20,
            "OUT2 high until triggered"
        );
        outb(&mut p, 0x61, 0x01, 20);
        let wave: Vec<bool> = (20..26).map(|n| p.out(2, at(n))).collect();
        assert_eq!(wave, [true, false, false, false, true, true]);
        assert_eq!(latched(&mut p, 2, 22), 2);
        // Retrigger during the one-shot restarts it.
        outb(&mut p, 0x61, 0x00, 40);
        outb(&mut p, 0x61, 0x01, 41);
        assert!(p.out(2, at(41)));
        assert!(!p.out(2, at(42)));
        assert_eq!(latched(&mut p, 2, 43), 2);
        outb(&mut p, 0x61, 0x00, 43);
        outb(&mut p, 0x61, 0x01, 44);
        let wave: Vec<bool> = (44..50).map(|n| p.out(2, at(n))).collect();
        assert_eq!(wave, [false, false, false, false, true, true]);
        assert_eq!(latched(&mut p, 2, 45), 3);
        // Gate level does not stop mode 1 counting.
        program(&mut p, 2, 0x32, 10, 100);
        outb(&mut p, 0x61, 0x00, 100);
        outb(&mut p, 0x61, 0x01, 101);
        outb(&mut p, 0x61, 0x00, 103);
        assert_eq!(latched(&mut p, 2, 105), 7);
        assert_eq!(inb(&mut p, 0x61, 112) & 0x20, 0x20);
    }

    #[test]
    fn mode5_hardware_strobe() {
        let mut p = Pit8254::new(clk());
        program(&mut p, 2, 0x3A, 3, 0);
        outb(&mut p, 0x61, 0x01, 20);
        let wave: Vec<bool> = (20..27).map(|n| p.out(2, at(n))).collect();
        assert_eq!(wave, [true, true, true, true, false, true, true]);
        assert_eq!(latched(&mut p, 2, 21), 3);
    }

    #[test]
    fn gate_pauses_mode0_and_restarts_mode2() {
        let mut p = Pit8254::new(clk());
        outb(&mut p, 0x61, 0x01, 0);
        program(&mut p, 2, 0x30, 10, 0);
        assert_eq!(latched(&mut p, 2, 4), 7);
        outb(&mut p, 0x61, 0x00, 4);
        assert_eq!(latched(&mut p, 2, 50), 7);
        outb(&mut p, 0x61, 0x01, 50);
        assert_eq!(latched(&mut p, 2, 51), 6);
        assert!(!p.out(2, at(56)));
        assert!(p.out(2, at(57)));
        // Mode 2: gate low forces OUT high and holds; gate high reloads.
        program(&mut p, 2, 0x34, 5, 100);
        assert_eq!(latched(&mut p, 2, 103), 3);
        assert!(p.out(2, at(104)));
        assert!(!p.out(2, at(105)), "look-ahead: low at count 1");
        outb(&mut p, 0x61, 0x00, 104);
        assert!(p.out(2, at(104)));
        assert_eq!(latched(&mut p, 2, 108), 2);
        outb(&mut p, 0x61, 0x01, 110);
        assert_eq!(latched(&mut p, 2, 111), 5);
        assert!(!p.out(2, at(115)));
        assert!(p.out(2, at(116)));
        // Mode 0 count written while the gate is low: loaded, held until the gate.
        outb(&mut p, 0x61, 0x00, 200);
        program(&mut p, 2, 0x30, 4, 200);
        assert_eq!(latched(&mut p, 2, 300), 4);
        outb(&mut p, 0x61, 0x01, 300);
        assert!(!p.out(2, at(303)));
        assert!(p.out(2, at(304)));
    }

    #[test]
    fn latch_and_read_back() {
        let mut p = Pit8254::new(clk());
        program(&mut p, 0, 0x34, 1000, 0);
        outb(&mut p, 0x43, 0x00, 10);
        assert_eq!(inb(&mut p, 0x40, 500), (991 & 0xFF) as u8);
        assert_eq!(inb(&mut p, 0x40, 600), (991 >> 8) as u8);
        // A second latch before the read is ignored.
        outb(&mut p, 0x43, 0x00, 600);
        outb(&mut p, 0x43, 0x00, 700);
        let v = u16::from_le_bytes([inb(&mut p, 0x40, 800), inb(&mut p, 0x40, 800)]);
        assert_eq!(v, 1000 - 599);
        // Read-back of count and status: status first, then the count.
        outb(&mut p, 0x43, 0xC2, 800);
        assert_eq!(inb(&mut p, 0x40, 900), 0xB4);
        let v = u16::from_le_bytes([inb(&mut p, 0x40, 900), inb(&mut p, 0x40, 900)]);
        assert_eq!(v, 1000 - 799);
        // Read-back of counts only, for counters 0 and 2.
        outb(&mut p, 0x61, 0x01, 900);
        program(&mut p, 2, 0x30, 50, 900);
        outb(&mut p, 0x43, 0xDA, 910);
        let c2 = u16::from_le_bytes([inb(&mut p, 0x42, 950), inb(&mut p, 0x42, 950)]);
        assert_eq!(c2, 41);
        let c0 = u16::from_le_bytes([inb(&mut p, 0x40, 950), inb(&mut p, 0x40, 950)]);
        assert_eq!(c0, 1000 - 909);
        // Live reads alternate LSB and MSB of the running count.
        assert_eq!(inb(&mut p, 0x40, 1000), ((1000 - 999) & 0xFF) as u8);
        assert_eq!(inb(&mut p, 0x40, 1000), 0);
    }

    #[test]
    fn lsb_only_and_msb_only_access() {
        let mut p = Pit8254::new(clk());
        outb(&mut p, 0x43, 0x50, 0); // counter 1, LSB only, mode 0
        outb(&mut p, 0x41, 0x20, 0);
        assert_eq!(inb(&mut p, 0x41, 5), 0x1C);
        assert_eq!(inb(&mut p, 0x41, 5), 0x1C, "no MSB phase");
        outb(&mut p, 0x43, 0x60, 10); // MSB only
        outb(&mut p, 0x41, 0x02, 10);
        assert_eq!(inb(&mut p, 0x41, 11), 0x02);
        assert_eq!(inb(&mut p, 0x41, 12), 0x01);
        assert_eq!(status(&mut p, 1, 12), 0x20);
    }

    #[test]
    fn bcd_counting() {
        let mut p = Pit8254::new(clk());
        program(&mut p, 0, 0x31, 0x0100, 0);
        assert_eq!(latched(&mut p, 0, 1), 0x0100);
        assert_eq!(latched(&mut p, 0, 2), 0x0099);
        assert_eq!(latched(&mut p, 0, 90), 0x0011);
        assert_eq!(latched(&mut p, 0, 101), 0x0000);
        assert!(p.out0(at(101)));
        assert_eq!(latched(&mut p, 0, 102), 0x9999);
        // BCD mode 2 with count 0 = 10000.
        program(&mut p, 0, 0x35, 0, 200);
        assert_eq!(latched(&mut p, 0, 201), 0);
        assert_eq!(latched(&mut p, 0, 202), 0x9999);
        p.take_irq0_edges();
        assert_eq!(p.next_deadline(), Some(10_201));
        assert_eq!(status(&mut p, 0, 203), 0xB5);
    }

    #[test]
    fn port_61_out2_refresh_and_bits() {
        let c = Clock::default(); // 100 MIPS: 15085 ns = 1508.5 instructions
        let mut p = Pit8254::new(c);
        let t = |n| Time::new(n, c);
        p.io_write(0x61, 1, 0xFE, t(0));
        assert_eq!(p.io_read(0x61, 1, t(0)), 0x0E | 0x20);
        assert_eq!(p.io_read(0x61, 1, t(1508)) & 0x10, 0);
        assert_eq!(p.io_read(0x61, 1, t(1509)) & 0x10, 0x10);
        assert_eq!(p.io_read(0x61, 1, t(3016)) & 0x10, 0x10);
        assert_eq!(p.io_read(0x61, 1, t(3017)) & 0x10, 0);
        p.io_write(0x43, 1, 0xB0, t(0));
        assert_eq!(p.io_read(0x61, 1, t(10)) & 0x20, 0, "mode 0 OUT2 low");
    }

    /// Linux `pit_calibrate_tsc()`: counter 2 in mode 0 for 50 ms, polling port 0x61.
    #[test]
    fn linux_pit_calibrate_tsc() {
        let c = Clock::default();
        let mut p = Pit8254::new(c);
        let t = |n| Time::new(n, c);
        let w = 123_457;
        let v = p.io_read(0x61, 1, t(w)) as u8;
        p.io_write(0x61, 1, ((v & !0x02) | 0x01) as u32, t(w));
        p.io_write(0x43, 1, 0xB0, t(w));
        let latch = (PIT_HZ / 20) as u16;
        p.io_write(0x42, 1, (latch & 0xFF) as u32, t(w));
        p.io_write(0x42, 1, (latch >> 8) as u32, t(w));
        let mut n = w;
        while p.io_read(0x61, 1, t(n)) & 0x20 == 0 {
            n += 37;
        }
        let high = c.icount_at_ticks(c.ticks(w, PIT_HZ) + 1 + latch as u64, PIT_HZ);
        assert!(n >= high && n - 37 < high);
        let ns = c.ns(n - w);
        assert!(ns.abs_diff(50_000_800) < 1_000, "{ns} ns");
    }

    /// Linux `quick_pit_calibrate()`: counter 2 mode 0 from 0xFFFF, reading LSB/MSB.
    #[test]
    fn linux_quick_pit_calibrate_msb_steps() {
        let c = Clock::default();
        let mut p = Pit8254::new(c);
        let t = |n| Time::new(n, c);
        p.io_write(0x61, 1, 0x01, t(0));
        p.io_write(0x43, 1, 0xB0, t(0));
        p.io_write(0x42, 1, 0xFF, t(0));
        p.io_write(0x42, 1, 0xFF, t(0));
        let mut last = 0xFFFFu32;
        let mut change = None;
        for n in (100..200_000u64).step_by(50) {
            p.io_read(0x42, 1, t(n));
            let msb = p.io_read(0x42, 1, t(n));
            let count = (0xFFFF - (c.ticks(n, PIT_HZ) - 1)) as u32;
            assert_eq!(msb, count >> 8, "at {n}");
            assert!(msb <= last >> 8 || last == 0xFFFF);
            if msb == 0xFE && change.is_none() {
                change = Some(n);
            }
            last = msb << 8;
        }
        // The MSB reaches 0xFE 257 ticks after the write (load + 256 decrements).
        let n = change.unwrap();
        assert!(c.ticks(n, PIT_HZ) >= 257 && c.ticks(n - 50, PIT_HZ) < 257);
    }

    /// Linux's periodic tick: counter 0 mode 2 at HZ=250, driven like the board does.
    #[test]
    fn linux_periodic_hz_through_deadlines() {
        let c = Clock::default();
        let mut p = Pit8254::new(c);
        let latch = ((PIT_HZ + 125) / 250) as u16;
        p.io_write(0x43, 1, 0x34, Time::new(0, c));
        p.io_write(0x40, 1, (latch & 0xFF) as u32, Time::new(0, c));
        p.io_write(0x40, 1, (latch >> 8) as u32, Time::new(0, c));
        let mut deadlines = Vec::new();
        while let Some(d) = p.next_deadline().filter(|&d| d <= c.ips) {
            assert!(!p.out0(Time::new(d - 1, c)), "low on the tick before");
            p.advance(Time::new(d, c));
            assert_eq!(p.take_irq0_edges(), 1);
            assert!(p.out0(Time::new(d, c)));
            deadlines.push(d);
        }
        assert_eq!(deadlines.len(), 249);
        for (k, d) in deadlines.iter().enumerate() {
            let tick = 1 + latch as u64 * (k as u64 + 1);
            assert_eq!(*d, c.icount_at_ticks(tick, PIT_HZ));
        }
    }

    #[test]
    fn illegal_count_of_one() {
        let mut p = Pit8254::new(clk());
        program(&mut p, 0, 0x34, 1, 0);
        assert!(p.out0(at(0)));
        assert!(
            (1..50).all(|n| !p.out0(at(n))),
            "mode 2, count 1: OUT stays low"
        );
        assert_eq!(p.next_deadline(), None);
        program(&mut p, 0, 0x36, 1, 100);
        assert!(
            (101..150).all(|n| p.out0(at(n))),
            "mode 3, count 1: OUT stays high"
        );
        assert_eq!(p.next_deadline(), None);
        p.advance(at(1_000));
        assert_eq!(
            p.take_irq0_edges(),
            1,
            "only the control word's rising edge"
        );
    }

    #[test]
    fn edges_are_not_lost_between_polls() {
        let mut p = Pit8254::new(clk());
        program(&mut p, 0, 0x34, 100, 0);
        // Reprogram mid-way: edges before the change are kept.
        p.io_write(0x40, 1, 50, at(1_050));
        p.io_write(0x40, 1, 0, at(1_050));
        p.advance(at(2_000));
        // Period 100 from tick 1: edges at 101, 201, ..., 1101 (11, the last one ends
        // the cycle in which the count was written); the new count runs from 1101:
        // 1151, 1201, ..., 1951 (17).
        assert_eq!(p.take_irq0_edges(), 11 + 17);
    }
}
