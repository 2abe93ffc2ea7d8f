//! The I/O APIC (82093AA-style, version 0x11, 24 pins) at 0xFEC00000.
//!
//! # What the board does with it
//!
//! - MMIO: the page at [`DEFAULT_BASE`] goes to [`IoApic::mmio_read`] /
//!   [`IoApic::mmio_write`] with the offset in the page. IOREGSEL is at 0x00 (any access
//!   size; bits 0-7 select the register), IOWIN at 0x10 (32-bit accesses only). Other
//!   offsets and sizes read 0 and ignore writes; unimplemented register indices read 0.
//! - Interrupt inputs: [`IoApic::set_irq`] with the wire level of a pin (ISA IRQs on pins
//!   0-15 with the usual IRQ0 → pin 2 override in the MP/MADT tables, PCI PIRQs on
//!   16-23; that mapping is the board's).
//! - Output: [`IoApic::take_deliveries`] returns the interrupt messages in the order they
//!   were sent; the board hands each to `LocalApic::receive`. This keeps the two devices
//!   independent and the order of events deterministic.
//! - [`IoApic::eoi`] with each vector from `LocalApic::take_eoi_broadcasts` clears the
//!   remote IRR of the level-triggered pins with that vector and re-sends those still
//!   asserted.
//! - [`IoApic::extint_asserted`]: a pin in ExtINT mode (virtual wire through the IOAPIC)
//!   is unmasked and asserted: the 8259's INTR reaches the CPU and the vector comes from
//!   the PIC's acknowledge cycle.
//!
//! # Model
//!
//! - Edge-triggered pins send one message on each asserting edge (after polarity);
//!   edges on a masked pin are lost (82093AA). Level-triggered pins send while asserted,
//!   unmasked and with remote IRR clear, and set remote IRR; unmasking an asserted
//!   level pin sends at once.
//! - Fixed and lowest-priority messages carry the vector and trigger mode; NMI, INIT
//!   and SMI are always edge-sent (their trigger bit is ignored, as the datasheet
//!   requires edge for them); ExtINT pins send no message (see above).
//! - Delivery is instantaneous: delivery status (bit 12) always reads 0.
//! - Writing an entry with the edge trigger mode clears its remote IRR (what Linux's
//!   `__eoi_ioapic_pin` relies on for IOAPICs without an EOI register, and QEMU does).
//! - Pin input levels are wires driven by other devices: kept across [`IoApic::reset`].

use serde::{Deserialize, Serialize};

use super::lapic::{ApicMessage, DeliveryMode};

/// Default physical base.
pub const DEFAULT_BASE: u32 = 0xFEC0_0000;
pub const PINS: usize = 24;
/// Version 0x11, maximum redirection entry 23.
pub const VERSION: u32 = 0x0017_0011;

pub const REG_ID: u8 = 0x00;
pub const REG_VERSION: u8 = 0x01;
pub const REG_ARB: u8 = 0x02;
pub const REG_REDIR: u8 = 0x10;

const RTE_ACTIVE_LOW: u64 = 1 << 13;
const RTE_REMOTE_IRR: u64 = 1 << 14;
const RTE_LEVEL: u64 = 1 << 15;
const RTE_MASKED: u64 = 1 << 16;
const RTE_LOGICAL: u64 = 1 << 11;
/// Writable bits: vector, delivery mode, destination mode, polarity, trigger, mask,
/// destination (bits 56-63).
const RTE_WRITABLE: u64 = 0xFF00_0000_0001_AFFF;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IoApic {
    /// The ID the board configured (restored by reset).
    config_id: u8,
    /// 4-bit IOAPIC ID (bits 24-27 of register 0).
    id: u8,
    /// Arbitration ID, loaded from the ID when the ID is written.
    arb_id: u8,
    ioregsel: u8,
    redir: [u64; PINS],
    /// Raw input levels, bit per pin.
    pin_level: u32,
    /// Messages sent and not yet taken by the board.
    deliveries: Vec<ApicMessage>,
}

impl IoApic {
    /// An IOAPIC with ID `id` (the value the MP table / MADT gives it).
    pub fn new(id: u8) -> IoApic {
        let mut a = IoApic {
            config_id: id & 0xF,
            id: id & 0xF,
            arb_id: id & 0xF,
            ioregsel: 0,
            redir: [RTE_MASKED; PINS],
            pin_level: 0,
            deliveries: Vec::new(),
        };
        a.reset();
        a
    }

    /// RESET: every entry masked and cleared; the ID returns to the configured one
    /// (the value the firmware tables describe).
    pub fn reset(&mut self) {
        self.id = self.config_id;
        self.arb_id = self.id;
        self.ioregsel = 0;
        self.redir = [RTE_MASKED; PINS];
        self.deliveries.clear();
    }

    pub fn id(&self) -> u8 {
        self.id
    }

    /// The raw 64-bit redirection entry of `pin` (None for pins past 23).
    pub fn redirection(&self, pin: usize) -> Option<u64> {
        self.redir.get(pin).copied()
    }

    // ---- MMIO ----

    pub fn mmio_read(&mut self, offset: u32, size: u8) -> u32 {
        match offset & 0xFFF {
            0x00 if matches!(size, 1 | 2 | 4) => self.ioregsel as u32,
            0x10 if size == 4 => self.read_reg(self.ioregsel),
            _ => 0,
        }
    }

    pub fn mmio_write(&mut self, offset: u32, size: u8, value: u32) {
        match offset & 0xFFF {
            0x00 if matches!(size, 1 | 2 | 4) => self.ioregsel = value as u8,
            0x10 if size == 4 => self.write_reg(self.ioregsel, value),
            _ => {}
        }
    }

    /// Reads indirect register `index`.
    pub fn read_reg(&self, index: u8) -> u32 {
        match index {
            REG_ID => (self.id as u32) << 24,
            REG_VERSION => VERSION,
            REG_ARB => (self.arb_id as u32) << 24,
            _ => match Self::redir_index(index) {
                Some((pin, high)) => {
                    let e = self.redir[pin];
                    if high {
                        (e >> 32) as u32
                    } else {
                        e as u32
                    }
                }
                None => 0,
            },
        }
    }

    /// Writes indirect register `index`.
    pub fn write_reg(&mut self, index: u8, value: u32) {
        match index {
            REG_ID => {
                self.id = ((value >> 24) & 0xF) as u8;
                self.arb_id = self.id;
            }
            _ => {
                let Some((pin, high)) = Self::redir_index(index) else {
                    return;
                };
                let old = self.redir[pin];
                let new = if high {
                    (old & 0xFFFF_FFFF) | ((value as u64) << 32)
                } else {
                    (old & !0xFFFF_FFFF) | value as u64
                };
                let mut e = (new & RTE_WRITABLE) | (old & RTE_REMOTE_IRR);
                if e & RTE_LEVEL == 0 {
                    e &= !RTE_REMOTE_IRR;
                }
                self.redir[pin] = e;
                self.eval_level(pin);
            }
        }
    }

    fn redir_index(index: u8) -> Option<(usize, bool)> {
        let i = index.checked_sub(REG_REDIR)? as usize;
        (i < 2 * PINS).then_some((i / 2, i % 2 == 1))
    }

    // ---- interrupt inputs ----

    fn asserted(&self, pin: usize) -> bool {
        let raw = self.pin_level & (1 << pin) != 0;
        raw != (self.redir[pin] & RTE_ACTIVE_LOW != 0)
    }

    /// Sets the input level of `pin` (pins past 23 are ignored).
    pub fn set_irq(&mut self, pin: usize, level: bool) {
        if pin >= PINS {
            return;
        }
        let was = self.asserted(pin);
        if level {
            self.pin_level |= 1 << pin;
        } else {
            self.pin_level &= !(1 << pin);
        }
        let now = self.asserted(pin);
        if self.is_level(pin) {
            self.eval_level(pin);
        } else if now && !was && self.redir[pin] & RTE_MASKED == 0 {
            self.send(pin);
        }
    }

    /// Level semantics apply to fixed and lowest-priority entries with the level bit.
    fn is_level(&self, pin: usize) -> bool {
        let e = self.redir[pin];
        e & RTE_LEVEL != 0
            && matches!(
                DeliveryMode::from_reg(e as u32),
                DeliveryMode::Fixed | DeliveryMode::LowestPriority
            )
    }

    fn eval_level(&mut self, pin: usize) {
        if !self.is_level(pin) || !self.asserted(pin) {
            return;
        }
        if self.redir[pin] & (RTE_MASKED | RTE_REMOTE_IRR) == 0 {
            self.redir[pin] |= RTE_REMOTE_IRR;
            self.send(pin);
        }
    }

    fn send(&mut self, pin: usize) {
        let e = self.redir[pin];
        let mode = DeliveryMode::from_reg(e as u32);
        match mode {
            DeliveryMode::ExtInt | DeliveryMode::StartUp | DeliveryMode::Reserved => return,
            _ => {}
        }
        self.deliveries.push(ApicMessage {
            vector: e as u8,
            mode,
            level: self.is_level(pin),
            dest: (e >> 56) as u8,
            logical: e & RTE_LOGICAL != 0,
        });
    }

    /// End of interrupt for `vector` (a level-triggered EOI broadcast by the local
    /// APIC): clears remote IRR on matching level entries and re-sends those still
    /// asserted.
    pub fn eoi(&mut self, vector: u8) {
        for pin in 0..PINS {
            let e = self.redir[pin];
            if e & RTE_REMOTE_IRR != 0 && e as u8 == vector {
                self.redir[pin] &= !RTE_REMOTE_IRR;
                self.eval_level(pin);
            }
        }
    }

    /// Messages sent since the last call, oldest first.
    pub fn take_deliveries(&mut self) -> Vec<ApicMessage> {
        std::mem::take(&mut self.deliveries)
    }

    pub fn has_deliveries(&self) -> bool {
        !self.deliveries.is_empty()
    }

    /// Some unmasked pin in ExtINT mode is asserted (the PIC's INTR wired through
    /// the IOAPIC).
    pub fn extint_asserted(&self) -> bool {
        (0..PINS).any(|pin| {
            let e = self.redir[pin];
            e & RTE_MASKED == 0
                && DeliveryMode::from_reg(e as u32) == DeliveryMode::ExtInt
                && self.asserted(pin)
        })
    }
}
