//! Two cascaded Intel 8259A programmable interrupt controllers, as on every PC/AT:
//! the master at ports 0x20/0x21 (IRQ 0-7), the slave at 0xA0/0xA1 (IRQ 8-15) on the
//! master's IR2, plus the PIIX3 edge/level control registers (ELCR) at 0x4D0/0x4D1.
//!
//! What is modelled:
//! - ICW1-ICW4 in every order the 8259A accepts: single or cascade (ICW3 skipped when
//!   single), ICW4 needed or not (without it every ICW4 function is 0), auto-EOI,
//!   special fully nested mode; the ADI, LTIM, buffered and master/slave bits are stored
//!   (on the PIIX3 the ELCR replaces LTIM, so LTIM does not change triggering).
//! - OCW1 (IMR), OCW2 (non-specific and specific EOI, rotate on EOI, rotate in auto-EOI
//!   mode set/clear, set priority), OCW3 (read IRR/ISR, poll, special mask mode).
//! - Priority resolution with rotation; special mask mode (every unmasked level that is
//!   not in service may interrupt); special fully nested mode on the master (a slave
//!   request of higher priority may interrupt while IR2 is in service).
//! - Triggering per line from the ELCR: an edge-triggered line latches its IRR bit on a
//!   rising edge and keeps it until the interrupt is acknowledged (as the chipset models
//!   of QEMU and Bochs do, so a short pulse from the board is never lost); a
//!   level-triggered line's IRR bit follows the line. ICW1 resets the edge sense: a line
//!   that is high must go low and high again to request.
//! - The cascade: the slave's INT output drives the master's IR2 input (edge-triggered).
//!   If the slave's request goes away before the acknowledge cycle, the slave answers
//!   with its IR7 vector (spurious IRQ 15) while the master marks IR2 in service, and a
//!   master with nothing to deliver answers with its IR7 vector (spurious IRQ 7) without
//!   setting ISR, exactly as Linux's spurious-IRQ handling expects.
//!
//! IRQ 2 has no input of its own: it is the cascade. (On the AT bus the ISA IRQ 2 pin is
//! wired to IRQ 9; the board routes it.) `set_irq(2, ..)` is therefore ignored.
//! The ELCR bits of IRQ 0, 1, 2, 8 and 13 are hard-wired to edge on the PIIX3.

use serde::{Deserialize, Serialize};

use super::{PortDevice, Time};

pub const MASTER_CMD: u16 = 0x20;
pub const MASTER_DATA: u16 = 0x21;
pub const SLAVE_CMD: u16 = 0xA0;
pub const SLAVE_DATA: u16 = 0xA1;
pub const ELCR_MASTER: u16 = 0x4D0;
pub const ELCR_SLAVE: u16 = 0x4D1;
/// The master input the slave is wired to.
pub const CASCADE_IR: u8 = 2;

/// Writable ELCR bits: IRQ 0, 1, 2 (master) and 8, 13 (slave) are always edge.
const ELCR_MASK_MASTER: u8 = 0xF8;
const ELCR_MASK_SLAVE: u8 = 0xDE;

const ICW1_IC4: u8 = 0x01;
const ICW1_SNGL: u8 = 0x02;
const ICW4_AEOI: u8 = 0x02;
const ICW4_SFNM: u8 = 0x10;

/// Where the chip is in its initialisation sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Init {
    /// Initialised: data-port writes go to the IMR.
    Ready,
    Icw2,
    Icw3,
    Icw4,
}

/// One 8259A.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pic8259 {
    is_master: bool,
    irr: u8,
    isr: u8,
    imr: u8,
    /// Current level of each IR input (for edge detection).
    lines: u8,
    elcr: u8,
    /// ICW1, ICW3 and ICW4 as last written (ICW4 reads 0 when ICW1 said "no ICW4").
    icw1: u8,
    icw3: u8,
    icw4: u8,
    /// ICW2 with the low three bits cleared.
    vector_base: u8,
    init: Init,
    /// The IR level with the highest priority (0 unless rotated).
    highest: u8,
    rotate_in_aeoi: bool,
    read_isr: bool,
    poll: bool,
    special_mask: bool,
}

impl Pic8259 {
    fn new(is_master: bool) -> Pic8259 {
        Pic8259 {
            is_master,
            irr: 0,
            isr: 0,
            imr: 0,
            lines: 0,
            elcr: 0,
            icw1: 0,
            icw3: 0,
            icw4: 0,
            vector_base: 0,
            init: Init::Ready,
            highest: 0,
            rotate_in_aeoi: false,
            read_isr: false,
            poll: false,
            special_mask: false,
        }
    }

    fn elcr_mask(&self) -> u8 {
        if self.is_master {
            ELCR_MASK_MASTER
        } else {
            ELCR_MASK_SLAVE
        }
    }

    fn single(&self) -> bool {
        self.icw1 & ICW1_SNGL != 0
    }

    fn auto_eoi(&self) -> bool {
        self.icw4 & ICW4_AEOI != 0
    }

    fn sfnm(&self) -> bool {
        self.icw4 & ICW4_SFNM != 0
    }

    /// Priority rank of `irq` (0 = highest).
    fn rank(&self, irq: u8) -> u8 {
        irq.wrapping_sub(self.highest) & 7
    }

    /// The highest-priority IR level set in `mask`.
    fn first(&self, mask: u8) -> Option<u8> {
        (0..8)
            .map(|i| self.highest.wrapping_add(i) & 7)
            .find(|&irq| mask & (1 << irq) != 0)
    }

    /// The level this chip would deliver now, if any (its INT output).
    fn pending(&self) -> Option<u8> {
        let req = self.irr & !self.imr;
        if self.special_mask {
            // Special mask mode: every unmasked level not in service is enabled.
            return self.first(req & !self.isr);
        }
        let irq = self.first(req)?;
        match self.first(self.isr) {
            None => Some(irq),
            Some(cur) if self.rank(irq) < self.rank(cur) => Some(irq),
            // Special fully nested mode: the slave may interrupt again while IR2 is in
            // service (it resolves the priority among its own inputs).
            Some(cur) if cur == irq && irq == CASCADE_IR && self.is_master && self.sfnm() => {
                Some(irq)
            }
            Some(_) => None,
        }
    }

    fn output(&self) -> bool {
        self.pending().is_some()
    }

    fn set_line(&mut self, irq: u8, level: bool) {
        let m = 1u8 << (irq & 7);
        let was = self.lines & m != 0;
        if level {
            self.lines |= m;
        } else {
            self.lines &= !m;
        }
        if self.elcr & m != 0 {
            if level {
                self.irr |= m;
            } else {
                self.irr &= !m;
            }
        } else if level && !was {
            self.irr |= m;
        }
    }

    /// The INTA cycle for level `irq` on this chip.
    fn intack(&mut self, irq: u8) {
        let m = 1u8 << irq;
        if self.auto_eoi() {
            if self.rotate_in_aeoi {
                self.highest = (irq + 1) & 7;
            }
        } else {
            self.isr |= m;
        }
        if self.elcr & m == 0 {
            self.irr &= !m;
        }
    }

    /// Poll command result: 0x80 | level (and the level is acknowledged) or 0.
    fn poll_read(&mut self) -> u8 {
        self.poll = false;
        match self.pending() {
            Some(irq) => {
                self.intack(irq);
                0x80 | irq
            }
            None => 0,
        }
    }

    fn read(&mut self, data_port: bool) -> u8 {
        if self.poll {
            return self.poll_read();
        }
        if data_port {
            self.imr
        } else if self.read_isr {
            self.isr
        } else {
            self.irr
        }
    }

    fn write(&mut self, data_port: bool, v: u8) {
        if !data_port {
            if v & 0x10 != 0 {
                self.icw1(v);
            } else if v & 0x08 != 0 {
                self.ocw3(v);
            } else {
                self.ocw2(v);
            }
            return;
        }
        match self.init {
            Init::Ready => self.imr = v,
            Init::Icw2 => {
                self.vector_base = v & 0xF8;
                self.init = if !self.single() {
                    Init::Icw3
                } else if self.icw1 & ICW1_IC4 != 0 {
                    Init::Icw4
                } else {
                    Init::Ready
                };
            }
            Init::Icw3 => {
                self.icw3 = v;
                self.init = if self.icw1 & ICW1_IC4 != 0 {
                    Init::Icw4
                } else {
                    Init::Ready
                };
            }
            Init::Icw4 => {
                self.icw4 = v;
                self.init = Init::Ready;
            }
        }
    }

    fn icw1(&mut self, v: u8) {
        self.icw1 = v;
        self.icw4 = 0;
        self.init = Init::Icw2;
        // Edge sense reset: edge-triggered requests are dropped and a line that is high
        // must go low before it can request again; level-triggered requests stand.
        self.irr = self.lines & self.elcr;
        self.isr = 0;
        self.imr = 0;
        self.highest = 0;
        self.rotate_in_aeoi = false;
        self.read_isr = false;
        self.poll = false;
        self.special_mask = false;
    }

    fn ocw2(&mut self, v: u8) {
        let level = v & 7;
        match v >> 5 {
            // Clear / set rotate in automatic EOI mode.
            0 => self.rotate_in_aeoi = false,
            4 => self.rotate_in_aeoi = true,
            // Non-specific EOI (1), rotate on non-specific EOI (5).
            cmd @ (1 | 5) => {
                if let Some(irq) = self.first(self.isr) {
                    self.isr &= !(1 << irq);
                    if cmd == 5 {
                        self.highest = (irq + 1) & 7;
                    }
                }
            }
            // Specific EOI.
            3 => self.isr &= !(1 << level),
            // Set priority: `level` becomes the lowest.
            6 => self.highest = (level + 1) & 7,
            // Rotate on specific EOI.
            7 => {
                self.isr &= !(1 << level);
                self.highest = (level + 1) & 7;
            }
            // 2: no operation.
            _ => {}
        }
    }

    fn ocw3(&mut self, v: u8) {
        if v & 0x04 != 0 {
            self.poll = true;
        }
        if v & 0x02 != 0 {
            self.read_isr = v & 0x01 != 0;
        }
        if v & 0x40 != 0 {
            self.special_mask = v & 0x20 != 0;
        }
    }
}

/// The master/slave pair with the ELCR.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pic8259Pair {
    master: Pic8259,
    slave: Pic8259,
}

impl Default for Pic8259Pair {
    fn default() -> Self {
        Self::new()
    }
}

impl Pic8259Pair {
    /// Power-on state: both chips uninitialised (vector base 0, nothing masked), all
    /// lines low and edge-triggered.
    pub fn new() -> Pic8259Pair {
        Pic8259Pair {
            master: Pic8259::new(true),
            slave: Pic8259::new(false),
        }
    }

    /// Drive interrupt line `line` (0-15) to `level`. Edge-triggered lines latch a
    /// request on a rising edge; level-triggered lines (ELCR) request while high.
    /// Lines above 15 and the cascade line 2 are ignored.
    pub fn set_irq(&mut self, line: u8, level: bool) {
        match line {
            CASCADE_IR => {}
            0..=7 => self.master.set_line(line, level),
            8..=15 => {
                self.slave.set_line(line - 8, level);
                self.cascade();
            }
            _ => {}
        }
    }

    /// The INTR line to the CPU.
    pub fn output(&self) -> bool {
        self.master.output()
    }

    /// The interrupt-acknowledge cycle: returns the vector and updates IRR/ISR (auto-EOI,
    /// rotation). With nothing to deliver it returns the spurious vector (IR7 of the
    /// master, or of the slave when the master delivers IR2 but the slave's request
    /// went away).
    pub fn acknowledge(&mut self) -> u8 {
        let vector = match self.master.pending() {
            Some(CASCADE_IR) if !self.master.single() => {
                let v = match self.slave.pending() {
                    Some(irq) => {
                        self.slave.intack(irq);
                        self.slave.vector_base | irq
                    }
                    None => self.slave.vector_base | 7,
                };
                self.master.intack(CASCADE_IR);
                // The slave drops INT during the acknowledge; if it still has a request
                // (special fully nested or special mask mode) it raises INT again.
                self.master.set_line(CASCADE_IR, false);
                v
            }
            Some(irq) => {
                self.master.intack(irq);
                self.master.vector_base | irq
            }
            None => self.master.vector_base | 7,
        };
        self.cascade();
        vector
    }

    /// Propagate the slave's INT output to the master's IR2 input.
    fn cascade(&mut self) {
        let out = !self.master.single() && self.slave.output();
        self.master.set_line(CASCADE_IR, out);
    }

    /// Interrupt request register (slave in the high byte).
    pub fn irr(&self) -> u16 {
        u16::from_le_bytes([self.master.irr, self.slave.irr])
    }

    /// In-service register (slave in the high byte).
    pub fn isr(&self) -> u16 {
        u16::from_le_bytes([self.master.isr, self.slave.isr])
    }

    /// Interrupt mask register (slave in the high byte).
    pub fn imr(&self) -> u16 {
        u16::from_le_bytes([self.master.imr, self.slave.imr])
    }

    /// Edge/level control (1 = level), slave in the high byte.
    pub fn elcr(&self) -> u16 {
        u16::from_le_bytes([self.master.elcr, self.slave.elcr])
    }

    /// Vector bases (ICW2) of master and slave.
    pub fn vector_bases(&self) -> (u8, u8) {
        (self.master.vector_base, self.slave.vector_base)
    }

    /// Buffered-mode and master/slave bits of ICW4 (stored, no effect on a PC).
    pub fn icw4(&self) -> (u8, u8) {
        (self.master.icw4, self.slave.icw4)
    }

    fn chip(&mut self, port: u16) -> Option<(&mut Pic8259, bool)> {
        match port {
            MASTER_CMD | MASTER_DATA => Some((&mut self.master, port == MASTER_DATA)),
            SLAVE_CMD | SLAVE_DATA => Some((&mut self.slave, port == SLAVE_DATA)),
            _ => None,
        }
    }

    fn read_byte(&mut self, port: u16) -> u8 {
        let v = match port {
            ELCR_MASTER => self.master.elcr,
            ELCR_SLAVE => self.slave.elcr,
            _ => match self.chip(port) {
                Some((chip, data)) => chip.read(data),
                None => 0xFF,
            },
        };
        self.cascade();
        v
    }

    fn write_byte(&mut self, port: u16, v: u8) {
        match port {
            ELCR_MASTER | ELCR_SLAVE => {
                let chip = if port == ELCR_MASTER {
                    &mut self.master
                } else {
                    &mut self.slave
                };
                chip.elcr = v & chip.elcr_mask();
                // Lines that became level-triggered request while high.
                chip.irr = (chip.irr & !chip.elcr) | (chip.lines & chip.elcr);
            }
            _ => {
                if let Some((chip, data)) = self.chip(port) {
                    chip.write(data, v);
                }
            }
        }
        self.cascade();
    }

    fn decodes(port: u16) -> bool {
        matches!(
            port,
            MASTER_CMD | MASTER_DATA | SLAVE_CMD | SLAVE_DATA | ELCR_MASTER | ELCR_SLAVE
        )
    }
}

impl PortDevice for Pic8259Pair {
    fn port_ranges(&self) -> Vec<(u16, u16)> {
        vec![
            (MASTER_CMD, MASTER_DATA),
            (SLAVE_CMD, SLAVE_DATA),
            (ELCR_MASTER, ELCR_SLAVE),
        ]
    }

    fn reset(&mut self) {
        *self = Pic8259Pair::new();
    }

    /// Wider accesses are split into byte accesses at consecutive ports, as the ISA bus
    /// does; bytes at ports the PICs do not decode read as 0xFF.
    fn io_read(&mut self, port: u16, size: u8, _t: Time) -> u32 {
        let mut v = 0u32;
        for i in 0..size.clamp(1, 4) {
            let p = port.wrapping_add(i as u16);
            let b = if Self::decodes(p) {
                self.read_byte(p)
            } else {
                0xFF
            };
            v |= (b as u32) << (8 * i);
        }
        v
    }

    fn io_write(&mut self, port: u16, size: u8, value: u32, _t: Time) {
        for i in 0..size.clamp(1, 4) {
            let p = port.wrapping_add(i as u16);
            if Self::decodes(p) {
                self.write_byte(p, (value >> (8 * i)) as u8);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;

    fn t() -> Time {
        Time::new(0, Clock::default())
    }

    fn out(p: &mut Pic8259Pair, port: u16, v: u8) {
        p.io_write(port, 1, v as u32, t());
    }

    fn inb(p: &mut Pic8259Pair, port: u16) -> u8 {
        p.io_read(port, 1, t()) as u8
    }

    /// Linux `init_8259A(0)`: vectors 0x30/0x38, ICW4 = 8086 mode, then masks.
    fn linux_init() -> Pic8259Pair {
        let mut p = Pic8259Pair::new();
        out(&mut p, 0x21, 0xFF);
        out(&mut p, 0xA1, 0xFF);
        out(&mut p, 0x20, 0x11);
        out(&mut p, 0x21, 0x30);
        out(&mut p, 0x21, 0x04);
        out(&mut p, 0x21, 0x01);
        out(&mut p, 0xA0, 0x11);
        out(&mut p, 0xA1, 0x38);
        out(&mut p, 0xA1, 0x02);
        out(&mut p, 0xA1, 0x01);
        out(&mut p, 0x21, 0x00);
        out(&mut p, 0xA1, 0x00);
        p
    }

    /// SeaBIOS `pic_reset(0x08, 0x70)`, interleaved master/slave, then IMR setup.
    fn seabios_init() -> Pic8259Pair {
        let mut p = Pic8259Pair::new();
        out(&mut p, 0x20, 0x11);
        out(&mut p, 0xA0, 0x11);
        out(&mut p, 0x21, 0x08);
        out(&mut p, 0xA1, 0x70);
        out(&mut p, 0x21, 0x04);
        out(&mut p, 0xA1, 0x02);
        out(&mut p, 0x21, 0x01);
        out(&mut p, 0xA1, 0x01);
        out(&mut p, 0x21, !0x04);
        out(&mut p, 0xA1, 0xFF);
        p
    }

    fn pulse(p: &mut Pic8259Pair, line: u8) {
        p.set_irq(line, true);
        p.set_irq(line, false);
    }

    #[test]
    fn linux_init_sequence_and_vectors() {
        let mut p = linux_init();
        assert_eq!(p.vector_bases(), (0x30, 0x38));
        assert_eq!(p.imr(), 0);
        assert_eq!(p.icw4(), (0x01, 0x01));
        assert!(!p.output());
        pulse(&mut p, 0);
        assert!(p.output());
        assert_eq!(p.acknowledge(), 0x30);
        assert_eq!(p.isr(), 0x0001);
        assert!(!p.output());
        // Linux reads the ISR to tell real from spurious interrupts.
        out(&mut p, 0x20, 0x0B);
        assert_eq!(inb(&mut p, 0x20), 0x01);
        out(&mut p, 0x20, 0x0A);
        // Specific EOI (0x60 + irq).
        out(&mut p, 0x20, 0x60);
        assert_eq!(p.isr(), 0);
        // Probe: the mask register reads back.
        out(&mut p, 0x21, 0xFF);
        assert_eq!(inb(&mut p, 0x21), 0xFF);
    }

    #[test]
    fn seabios_init_sequence_and_slave_irq() {
        let mut p = seabios_init();
        assert_eq!(p.vector_bases(), (0x08, 0x70));
        assert_eq!(p.imr(), 0xFFFB);
        pulse(&mut p, 8);
        assert!(!p.output(), "masked on the slave");
        out(&mut p, 0xA1, 0xFE);
        assert!(p.output());
        assert_eq!(p.acknowledge(), 0x70);
        assert_eq!(p.isr(), 0x0104);
        // BIOS EOI: non-specific to slave then master.
        out(&mut p, 0xA0, 0x20);
        out(&mut p, 0x20, 0x20);
        assert_eq!(p.isr(), 0);
        assert_eq!(p.irr(), 0);
    }

    #[test]
    fn fixed_priority_and_nesting() {
        let mut p = linux_init();
        pulse(&mut p, 5);
        pulse(&mut p, 3);
        assert_eq!(p.acknowledge(), 0x33);
        // IRQ 5 waits for the EOI of IRQ 3; IRQ 1 (higher) nests.
        assert!(!p.output());
        pulse(&mut p, 1);
        assert!(p.output());
        assert_eq!(p.acknowledge(), 0x31);
        assert_eq!(p.isr(), 0b1010);
        out(&mut p, 0x20, 0x20); // non-specific EOI clears the highest: IRQ 1
        assert_eq!(p.isr(), 0b1000);
        assert!(!p.output());
        out(&mut p, 0x20, 0x20);
        assert_eq!(p.acknowledge(), 0x35);
    }

    #[test]
    fn irr_reads_and_mask() {
        let mut p = linux_init();
        out(&mut p, 0x21, 0x10);
        pulse(&mut p, 4);
        pulse(&mut p, 6);
        assert_eq!(inb(&mut p, 0x20), 0x50, "IRR read by default");
        assert_eq!(p.acknowledge(), 0x36);
        assert_eq!(inb(&mut p, 0x20), 0x10);
        out(&mut p, 0x21, 0x00);
        assert!(p.output(), "IRQ 4 is above IRQ 6 in service: it nests");
        assert_eq!(p.acknowledge(), 0x34);
        assert_eq!(p.isr(), 0x50);
        out(&mut p, 0x20, 0x66);
        out(&mut p, 0x20, 0x64);
        pulse(&mut p, 7);
        pulse(&mut p, 6);
        out(&mut p, 0x21, 0x40);
        assert_eq!(p.acknowledge(), 0x37);
        out(&mut p, 0x20, 0x20);
        assert!(!p.output());
    }

    #[test]
    fn rotate_on_nonspecific_eoi() {
        let mut p = linux_init();
        pulse(&mut p, 2 + 1); // IRQ 3
        assert_eq!(p.acknowledge(), 0x33);
        out(&mut p, 0x20, 0xA0); // rotate on non-specific EOI: IRQ 3 becomes lowest
        assert_eq!(p.isr(), 0);
        pulse(&mut p, 3);
        pulse(&mut p, 6);
        pulse(&mut p, 1);
        // Priority order now 4,5,6,7,0,1,2,3.
        assert_eq!(p.acknowledge(), 0x36);
        out(&mut p, 0x20, 0x20);
        assert_eq!(p.acknowledge(), 0x31);
        out(&mut p, 0x20, 0x20);
        assert_eq!(p.acknowledge(), 0x33);
    }

    #[test]
    fn set_priority_and_rotate_on_specific_eoi() {
        let mut p = linux_init();
        out(&mut p, 0x20, 0xC0 | 4); // IRQ 4 lowest: order 5,6,7,0,1,...,4
        pulse(&mut p, 4);
        pulse(&mut p, 0);
        pulse(&mut p, 7);
        assert_eq!(p.acknowledge(), 0x37);
        out(&mut p, 0x20, 0xE0 | 7); // rotate on specific EOI 7: 7 lowest, 0 highest
        assert_eq!(p.acknowledge(), 0x30);
        out(&mut p, 0x20, 0x60);
        assert_eq!(p.acknowledge(), 0x34);
    }

    #[test]
    fn auto_eoi_with_rotation() {
        let mut p = Pic8259Pair::new();
        out(&mut p, 0x20, 0x13); // single, ICW4
        out(&mut p, 0x21, 0x08);
        out(&mut p, 0x21, 0x03); // 8086, auto-EOI
        out(&mut p, 0x20, 0x80); // rotate in AEOI mode
        pulse(&mut p, 0);
        pulse(&mut p, 1);
        assert_eq!(p.acknowledge(), 0x08);
        assert_eq!(p.isr(), 0);
        pulse(&mut p, 0);
        // IRQ 0 is now lowest, so IRQ 1 first.
        assert_eq!(p.acknowledge(), 0x09);
        assert_eq!(p.acknowledge(), 0x08);
        out(&mut p, 0x20, 0x00); // clear rotate in AEOI
        pulse(&mut p, 5);
        pulse(&mut p, 7);
        assert_eq!(p.acknowledge(), 0x0D);
        assert_eq!(p.acknowledge(), 0x0F);
        assert!(!p.output());
    }

    #[test]
    fn single_mode_without_icw4_skips_icw3_and_icw4() {
        let mut p = Pic8259Pair::new();
        out(&mut p, 0x20, 0x12); // single, no ICW4
        out(&mut p, 0x21, 0x20);
        out(&mut p, 0x21, 0xFB); // already OCW1
        assert_eq!(p.imr() & 0xFF, 0xFB);
        assert_eq!(p.icw4().0, 0);
        // Cascade mode without ICW4: ICW3 then ready.
        out(&mut p, 0x20, 0x10);
        out(&mut p, 0x21, 0x40);
        out(&mut p, 0x21, 0x04);
        out(&mut p, 0x21, 0x7F);
        assert_eq!(p.imr() & 0xFF, 0x7F);
        assert_eq!(p.vector_bases().0, 0x40);
    }

    #[test]
    fn spurious_irq7_when_request_vanishes() {
        let mut p = linux_init();
        out(&mut p, 0x4D0, 0x20); // IRQ 5 level-triggered
        p.set_irq(5, true);
        assert!(p.output());
        p.set_irq(5, false);
        assert!(!p.output());
        assert_eq!(p.acknowledge(), 0x37);
        assert_eq!(p.isr(), 0, "spurious IRQ 7 sets no ISR bit");
        // Masking after INTR was raised also ends in a spurious IRQ 7.
        pulse(&mut p, 3);
        out(&mut p, 0x21, 0x08);
        assert_eq!(p.acknowledge(), 0x37);
        assert_eq!(p.irr() & 0x08, 0x08, "the masked request stays pending");
    }

    #[test]
    fn spurious_irq15_on_slave() {
        let mut p = linux_init();
        out(&mut p, 0x4D1, 0x04); // IRQ 10 level
        p.set_irq(10, true);
        assert!(p.output());
        assert_eq!(
            p.irr() & 0x04,
            0x04,
            "cascade request latched on the master"
        );
        p.set_irq(10, false);
        assert!(p.output(), "the master's IR2 edge latch holds");
        assert_eq!(p.acknowledge(), 0x3F);
        assert_eq!(p.isr(), 0x0004, "master IR2 in service, slave none");
        out(&mut p, 0x20, 0x62);
        assert_eq!(p.isr(), 0);
        assert!(!p.output());
    }

    #[test]
    fn elcr_level_lines_follow_the_line() {
        let mut p = linux_init();
        out(&mut p, 0x4D0, 0xFF);
        out(&mut p, 0x4D1, 0xFF);
        assert_eq!(inb(&mut p, 0x4D0), 0xF8);
        assert_eq!(inb(&mut p, 0x4D1), 0xDE);
        assert_eq!(p.io_read(0x4D0, 2, t()), 0xDEF8);
        p.set_irq(11, true);
        assert_eq!(p.acknowledge(), 0x3B);
        // EOI with the line still high: requests again.
        out(&mut p, 0xA0, 0x63);
        out(&mut p, 0x20, 0x62);
        assert!(p.output());
        assert_eq!(p.acknowledge(), 0x3B);
        // The handler clears the device, then sends the EOIs.
        p.set_irq(11, false);
        out(&mut p, 0xA0, 0x20);
        out(&mut p, 0x20, 0x20);
        assert!(!p.output());
        // An edge line (IRQ 1 is hard-wired edge) keeps a latched request after the
        // line drops...
        p.set_irq(1, true);
        p.set_irq(1, false);
        assert!(p.output());
        assert_eq!(p.acknowledge(), 0x31);
        out(&mut p, 0x20, 0x20);
        // ... and a line held high requests only once.
        p.set_irq(1, true);
        p.set_irq(1, true);
        assert_eq!(p.acknowledge(), 0x31);
        out(&mut p, 0x20, 0x20);
        assert!(!p.output());
        // Switching a high line to level triggering requests immediately.
        out(&mut p, 0x4D0, 0x00);
        p.set_irq(4, true);
        assert_eq!(p.acknowledge(), 0x34);
        out(&mut p, 0x20, 0x20);
        assert!(!p.output());
        out(&mut p, 0x4D0, 0x10);
        assert!(p.output());
    }

    #[test]
    fn icw1_resets_edge_sense() {
        let mut p = linux_init();
        p.set_irq(3, true);
        out(&mut p, 0x20, 0x11);
        out(&mut p, 0x21, 0x30);
        out(&mut p, 0x21, 0x04);
        out(&mut p, 0x21, 0x01);
        assert!(!p.output(), "request cleared by ICW1");
        p.set_irq(3, true);
        assert!(!p.output(), "no new edge while the line stays high");
        p.set_irq(3, false);
        p.set_irq(3, true);
        assert_eq!(p.acknowledge(), 0x33);
    }

    #[test]
    fn cascade_priority() {
        let mut p = linux_init();
        pulse(&mut p, 12);
        pulse(&mut p, 3);
        // Slave requests enter at IR2 priority: above IRQ 3.
        assert_eq!(p.acknowledge(), 0x3C);
        assert!(!p.output(), "IRQ 3 below IR2 in service");
        pulse(&mut p, 9);
        assert!(!p.output(), "IR2 in service blocks the slave without SFNM");
        pulse(&mut p, 1);
        assert_eq!(p.acknowledge(), 0x31);
        out(&mut p, 0x20, 0x61);
        out(&mut p, 0xA0, 0x64);
        out(&mut p, 0x20, 0x62);
        assert_eq!(p.acknowledge(), 0x39);
        out(&mut p, 0xA0, 0x20);
        out(&mut p, 0x20, 0x20);
        assert_eq!(p.acknowledge(), 0x33);
    }

    #[test]
    fn special_fully_nested_mode() {
        let mut p = Pic8259Pair::new();
        for (port, v) in [
            (0x20, 0x11),
            (0x21, 0x20),
            (0x21, 0x04),
            (0x21, 0x1D), // 8086, buffered master, SFNM
            (0xA0, 0x11),
            (0xA1, 0x28),
            (0xA1, 0x02),
            (0xA1, 0x09), // 8086, buffered slave
        ] {
            out(&mut p, port, v);
        }
        assert_eq!(p.icw4(), (0x1D, 0x09));
        pulse(&mut p, 13);
        assert_eq!(p.acknowledge(), 0x2D);
        pulse(&mut p, 9);
        assert!(p.output(), "higher slave level nests through IR2 in SFNM");
        assert_eq!(p.acknowledge(), 0x29);
        assert_eq!(p.isr(), 0x2204);
        pulse(&mut p, 14);
        assert!(!p.output(), "lower slave level still waits");
        // Software checks the slave's ISR before the master EOI in SFNM.
        out(&mut p, 0xA0, 0x20);
        out(&mut p, 0xA0, 0x0B);
        assert_eq!(inb(&mut p, 0xA0), 0x20);
        assert!(!p.output());
        out(&mut p, 0xA0, 0x20);
        assert!(p.output());
        assert_eq!(p.acknowledge(), 0x2E);
    }

    #[test]
    fn special_mask_mode() {
        let mut p = linux_init();
        pulse(&mut p, 1);
        assert_eq!(p.acknowledge(), 0x31);
        pulse(&mut p, 6);
        assert!(!p.output());
        // The handler masks its own level and enters special mask mode.
        out(&mut p, 0x21, 0x02);
        out(&mut p, 0x20, 0x68);
        assert!(p.output(), "lower priority enabled in special mask mode");
        assert_eq!(p.acknowledge(), 0x36);
        assert_eq!(p.isr(), 0x42);
        out(&mut p, 0x20, 0x66);
        out(&mut p, 0x20, 0x48); // reset special mask
        out(&mut p, 0x21, 0x00);
        pulse(&mut p, 6);
        assert!(!p.output(), "IRQ 1 in service blocks again");
        out(&mut p, 0x20, 0x61);
        assert_eq!(p.acknowledge(), 0x36);
    }

    #[test]
    fn poll_mode() {
        let mut p = linux_init();
        out(&mut p, 0x20, 0x0C);
        assert_eq!(inb(&mut p, 0x20), 0x00, "nothing pending");
        pulse(&mut p, 5);
        pulse(&mut p, 6);
        out(&mut p, 0x20, 0x0C);
        assert_eq!(inb(&mut p, 0x21), 0x85, "poll works on either port");
        assert_eq!(p.isr(), 0x20);
        assert_eq!(inb(&mut p, 0x21), 0x00, "IMR again after one poll read");
        out(&mut p, 0x20, 0x20);
        out(&mut p, 0x20, 0x0C);
        assert_eq!(inb(&mut p, 0x20), 0x86);
        // Slave poll.
        pulse(&mut p, 15);
        out(&mut p, 0x20, 0x20);
        out(&mut p, 0x20, 0x0C);
        assert_eq!(inb(&mut p, 0x20), 0x82);
        out(&mut p, 0xA0, 0x0C);
        assert_eq!(inb(&mut p, 0xA0), 0x87);
        assert_eq!(p.isr(), 0x8004);
    }

    #[test]
    fn reset_and_lines_out_of_range() {
        let mut p = linux_init();
        p.set_irq(200, true);
        p.set_irq(2, true);
        assert!(!p.output());
        pulse(&mut p, 7);
        p.reset();
        assert_eq!(p, Pic8259Pair::new());
    }
}
