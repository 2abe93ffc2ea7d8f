//! Local APIC and IOAPIC: register semantics, timer arithmetic at exact instruction
//! counts, priorities, EOI, the IOAPIC → local APIC path, and the generic device
//! properties (reset idempotent, save → restore → save identical, random MMIO never
//! panics).

use rand::{rngs::StdRng, Rng, SeedableRng};
use x86emu::clock::Clock;
use x86emu::devices::ioapic::IoApic;
use x86emu::devices::lapic::{ApicMessage, DeliveryMode, LocalApic};
use x86emu::devices::Time;

const IPS: u64 = 100_000_000;

fn t(now: u64) -> Time {
    Time::new(now, Clock::new(IPS))
}

// Local APIC register offsets.
const ID: u32 = 0x20;
const VER: u32 = 0x30;
const TPR: u32 = 0x80;
const APR: u32 = 0x90;
const PPR: u32 = 0xA0;
const EOI: u32 = 0xB0;
const LDR: u32 = 0xD0;
const DFR: u32 = 0xE0;
const SVR: u32 = 0xF0;
const ISR: u32 = 0x100;
const TMR: u32 = 0x180;
const IRR: u32 = 0x200;
const ESR: u32 = 0x280;
const ICR_LO: u32 = 0x300;
const ICR_HI: u32 = 0x310;
const LVTT: u32 = 0x320;
const LVTTHMR: u32 = 0x330;
const LVTPC: u32 = 0x340;
const LVT0: u32 = 0x350;
const LVT1: u32 = 0x360;
const LVTERR: u32 = 0x370;
const TMICT: u32 = 0x380;
const TMCCT: u32 = 0x390;
const TDCR: u32 = 0x3E0;

const MASKED: u32 = 1 << 16;
const PERIODIC: u32 = 1 << 17;

fn rd(a: &mut LocalApic, off: u32) -> u32 {
    a.mmio_read(off, 4, t(0))
}

fn wr(a: &mut LocalApic, off: u32, v: u32) {
    a.mmio_write(off, 4, v, t(0))
}

fn rd_at(a: &mut LocalApic, off: u32, now: u64) -> u32 {
    a.mmio_read(off, 4, t(now))
}

fn wr_at(a: &mut LocalApic, off: u32, v: u32, now: u64) {
    a.mmio_write(off, 4, v, t(now))
}

/// A local APIC set up the way Linux's `setup_local_APIC` leaves the BSP in virtual
/// wire mode: flat logical mode, LDR = CPU 0, TPR 0, SVR enabled with vector 0xFF,
/// LINT0 ExtINT, LINT1 NMI, error vector 0xFE, ESR cleared.
fn linux_apic() -> LocalApic {
    let mut a = LocalApic::new(0, 100_000_000);
    wr(&mut a, DFR, 0xFFFF_FFFF);
    wr(&mut a, LDR, 1 << 24);
    wr(&mut a, TPR, 0);
    wr(&mut a, SVR, 0x1FF);
    wr(&mut a, LVT0, 0x700);
    wr(&mut a, LVT1, 0x400);
    wr(&mut a, LVTERR, 0xFE);
    wr(&mut a, ESR, 0);
    wr(&mut a, ESR, 0);
    a
}

fn bit_reg(a: &mut LocalApic, base: u32, v: u8) -> bool {
    rd(a, base + 0x10 * (v as u32 / 32)) & (1 << (v % 32)) != 0
}

// ---------------------------------------------------------------- local APIC

#[test]
fn lapic_power_on_state() {
    let mut a = LocalApic::new(3, 100_000_000);
    assert_eq!(a.base_msr(), 0xFEE0_0900);
    assert_eq!(a.mmio_base(), Some(0xFEE0_0000));
    assert_eq!(rd(&mut a, ID), 3 << 24);
    assert_eq!(rd(&mut a, VER), 0x0005_0014);
    assert_eq!(rd(&mut a, DFR), 0xFFFF_FFFF);
    assert_eq!(rd(&mut a, SVR), 0xFF);
    for off in [LVTT, LVTTHMR, LVTPC, LVT0, LVT1, LVTERR] {
        assert_eq!(rd(&mut a, off), MASKED, "LVT {off:#x}");
    }
    for off in [TPR, APR, PPR, LDR, ESR, ICR_LO, ICR_HI, TMICT, TMCCT, TDCR] {
        assert_eq!(rd(&mut a, off), 0, "reg {off:#x}");
    }
    assert!(!a.software_enabled());
    // Software disabled after reset: the PIC reaches the CPU directly.
    assert!(a.lint0_extint());
    assert!(!a.has_interrupt());
    assert_eq!(a.next_deadline(), None);
}

#[test]
fn lapic_linux_style_init() {
    let mut a = linux_apic();
    assert!(a.software_enabled());
    assert_eq!(rd(&mut a, SVR), 0x1FF);
    assert_eq!(rd(&mut a, LDR), 1 << 24);
    assert_eq!(rd(&mut a, DFR), 0xFFFF_FFFF);
    assert_eq!(rd(&mut a, LVT0), 0x700);
    assert_eq!(rd(&mut a, LVT1), 0x400);
    assert_eq!(rd(&mut a, LVTERR), 0xFE);
    assert_eq!(rd(&mut a, ESR), 0);
    assert!(a.lint0_extint(), "virtual wire through LINT0");
    // Switching to symmetric I/O mode: LINT0 masked, the PIC no longer reaches the CPU.
    wr(&mut a, LVT0, 0x700 | MASKED);
    assert!(!a.lint0_extint());
    // LINT0 unmasked in fixed mode is not the PIC path either.
    wr(&mut a, LVT0, 0x30);
    assert!(!a.lint0_extint());
    // The DFR only keeps its model bits; reserved bits read 1.
    wr(&mut a, DFR, 0x0000_0000);
    assert_eq!(rd(&mut a, DFR), 0x0FFF_FFFF);
    // Reserved LVT bits do not stick; delivery status and remote IRR are read-only.
    wr(&mut a, LVTT, 0xFFFF_FFFF);
    assert_eq!(rd(&mut a, LVTT), 0x0003_00FF);
    wr(&mut a, LVTERR, 0xFFFF_FFFF);
    assert_eq!(rd(&mut a, LVTERR), 0x0001_00FF);
    wr(&mut a, LVT1, 0xFFFF_FFFF);
    assert_eq!(rd(&mut a, LVT1), 0x0001_A7FF);
    // Read-only registers ignore writes.
    wr(&mut a, VER, 0);
    wr(&mut a, PPR, 0xFF);
    assert_eq!(rd(&mut a, VER), 0x0005_0014);
    assert_eq!(rd(&mut a, PPR), 0);
}

/// Each divide configuration value and its divisor.
const DIVIDERS: [(u32, u64); 8] = [
    (0x0, 2),
    (0x1, 4),
    (0x2, 8),
    (0x3, 16),
    (0x8, 32),
    (0x9, 64),
    (0xA, 128),
    (0xB, 1),
];

#[test]
fn lapic_timer_one_shot_each_divider() {
    for (tdcr, div) in DIVIDERS {
        let mut a = linux_apic();
        wr(&mut a, TDCR, tdcr);
        assert_eq!(rd(&mut a, TDCR), tdcr);
        wr(&mut a, LVTT, 0xEC);
        wr_at(&mut a, TMICT, 5, 1000);
        assert_eq!(rd(&mut a, TMICT), 5);
        // 100 MHz bus at 100 M instructions/s: one bus clock per instruction.
        let deadline = 1000 + 5 * div;
        assert_eq!(a.next_deadline(), Some(deadline), "divider {div}");
        for now in 1000..deadline + 3 {
            let expect = if now >= deadline {
                0
            } else {
                5 - (now - 1000) / div
            };
            assert_eq!(
                rd_at(&mut a, TMCCT, now),
                expect as u32,
                "div {div} at {now}"
            );
        }
        a.advance(t(deadline - 1));
        assert!(!a.has_interrupt(), "div {div}: not before the deadline");
        a.advance(t(deadline));
        assert!(a.has_interrupt());
        assert_eq!(a.acknowledge(), 0xEC);
        assert_eq!(a.next_deadline(), None, "one-shot fires once");
        a.advance(t(deadline + 100 * div));
        assert!(!a.has_interrupt());
        assert_eq!(rd_at(&mut a, TMCCT, deadline + 100 * div), 0);
    }
}

#[test]
fn lapic_timer_periodic_each_divider() {
    for (tdcr, div) in DIVIDERS {
        let mut a = linux_apic();
        wr(&mut a, TDCR, tdcr);
        wr(&mut a, LVTT, 0xEC | PERIODIC);
        wr_at(&mut a, TMICT, 3, 500);
        let period = 3 * div;
        // The count runs 3, 2, 1 and reloads to 3 as it reaches 0.
        for k in 0..3 * period {
            let expect = 3 - (k / div) % 3;
            assert_eq!(
                rd_at(&mut a, TMCCT, 500 + k),
                expect as u32,
                "div {div} +{k}"
            );
        }
        for n in 1..=4u64 {
            let due = 500 + n * period;
            assert_eq!(a.next_deadline(), Some(due), "div {div} period {n}");
            a.advance(t(due - 1));
            assert!(!a.has_interrupt());
            a.advance(t(due));
            assert_eq!(a.acknowledge(), 0xEC);
            wr(&mut a, EOI, 0);
        }
    }
}

#[test]
fn lapic_timer_late_advance_coalesces() {
    let mut a = linux_apic();
    wr(&mut a, TDCR, 0xB);
    wr(&mut a, LVTT, 0x40 | PERIODIC);
    wr_at(&mut a, TMICT, 10, 0);
    // Ten periods pass before the board looks: one interrupt, next deadline ahead.
    a.advance(t(105));
    assert_eq!(a.acknowledge(), 0x40);
    assert!(!a.has_interrupt());
    assert_eq!(a.next_deadline(), Some(110));
    assert_eq!(rd_at(&mut a, TMCCT, 105), 5);
}

#[test]
fn lapic_timer_masked_expirations_are_lost() {
    let mut a = linux_apic();
    wr(&mut a, TDCR, 0xB);
    wr(&mut a, LVTT, 0x40 | PERIODIC | MASKED);
    wr_at(&mut a, TMICT, 100, 0);
    assert_eq!(a.next_deadline(), None);
    // Counting goes on while masked.
    assert_eq!(rd_at(&mut a, TMCCT, 250), 50);
    a.advance(t(250));
    assert!(!a.has_interrupt());
    wr_at(&mut a, LVTT, 0x40 | PERIODIC, 250);
    assert!(!a.has_interrupt(), "earlier expirations are not replayed");
    assert_eq!(a.next_deadline(), Some(300));
    a.advance(t(300));
    assert_eq!(a.acknowledge(), 0x40);
}

#[test]
fn lapic_timer_bus_clock_differs_from_instruction_rate() {
    // 50 MHz bus at 100 M instructions/s: one bus clock every two instructions.
    let mut a = LocalApic::new(0, 50_000_000);
    wr(&mut a, SVR, 0x1FF);
    wr(&mut a, TDCR, 0xB);
    wr(&mut a, LVTT, 0x30);
    wr_at(&mut a, TMICT, 10, 1001); // bus clock 500
    assert_eq!(a.next_deadline(), Some(1020)); // bus clock 510
    assert_eq!(rd_at(&mut a, TMCCT, 1001), 10);
    assert_eq!(rd_at(&mut a, TMCCT, 1002), 9);
    assert_eq!(rd_at(&mut a, TMCCT, 1019), 1);
    assert_eq!(rd_at(&mut a, TMCCT, 1020), 0);
    // Same with a 3:1 instruction-to-bus ratio that does not divide evenly.
    let mut a = LocalApic::new(0, 33_333_333);
    wr(&mut a, SVR, 0x1FF);
    wr(&mut a, TDCR, 0xB);
    wr(&mut a, LVTT, 0x30);
    wr_at(&mut a, TMICT, 1, 0);
    let d = a.next_deadline().unwrap();
    // The first count at which a 33,333,333 Hz clock has ticked once.
    assert_eq!(d, 4);
    assert_eq!(rd_at(&mut a, TMCCT, d - 1), 1);
    a.advance(t(d));
    assert_eq!(a.acknowledge(), 0x30);
}

#[test]
fn lapic_timer_divider_change_keeps_count() {
    let mut a = linux_apic();
    wr(&mut a, TDCR, 0xB); // /1
    wr(&mut a, LVTT, 0x40);
    wr_at(&mut a, TMICT, 100, 0);
    assert_eq!(rd_at(&mut a, TMCCT, 40), 60);
    wr_at(&mut a, TDCR, 0x3, 40); // /16 from here
    assert_eq!(rd_at(&mut a, TMCCT, 40), 60);
    assert_eq!(rd_at(&mut a, TMCCT, 56), 59);
    assert_eq!(a.next_deadline(), Some(40 + 60 * 16));
    // Mode change to periodic mid-count keeps the count, then reloads from 100.
    wr_at(&mut a, LVTT, 0x40 | PERIODIC, 56);
    assert_eq!(rd_at(&mut a, TMCCT, 56), 59);
    let d = a.next_deadline().unwrap();
    assert_eq!(d, 40 + 60 * 16);
    a.advance(t(d));
    assert_eq!(a.acknowledge(), 0x40);
    assert_eq!(rd_at(&mut a, TMCCT, d), 100);
    assert_eq!(a.next_deadline(), Some(d + 100 * 16));
}

#[test]
fn lapic_timer_stop_and_restart() {
    let mut a = linux_apic();
    wr(&mut a, TDCR, 0xB);
    wr(&mut a, LVTT, 0x40 | PERIODIC);
    wr_at(&mut a, TMICT, 10, 0);
    wr_at(&mut a, TMICT, 0, 5);
    assert_eq!(a.next_deadline(), None);
    assert_eq!(rd_at(&mut a, TMCCT, 50), 0);
    a.advance(t(50));
    assert!(!a.has_interrupt());
    // Writing the initial count restarts the count from now.
    wr_at(&mut a, TMICT, 10, 50);
    assert_eq!(a.next_deadline(), Some(60));
    // An expired one-shot stays stopped when switched to periodic.
    let mut b = linux_apic();
    wr(&mut b, TDCR, 0xB);
    wr(&mut b, LVTT, 0x40);
    wr_at(&mut b, TMICT, 10, 0);
    b.advance(t(10));
    assert_eq!(b.acknowledge(), 0x40);
    wr_at(&mut b, LVTT, 0x40 | PERIODIC, 20);
    assert_eq!(b.next_deadline(), None);
    assert_eq!(rd_at(&mut b, TMCCT, 25), 0);
}

#[test]
fn lapic_tpr_ppr_masking() {
    let mut a = linux_apic();
    a.accept(0x45, false);
    assert!(bit_reg(&mut a, IRR, 0x45));
    for (tpr, deliverable) in [
        (0x00, true),
        (0x3F, true),
        (0x40, false),
        (0x4F, false),
        (0x50, false),
    ] {
        wr(&mut a, TPR, tpr);
        assert_eq!(rd(&mut a, TPR), tpr);
        assert_eq!(rd(&mut a, PPR), tpr, "PPR follows TPR with an empty ISR");
        assert_eq!(a.has_interrupt(), deliverable, "TPR {tpr:#x}");
    }
    // A masked vector is still acknowledged as spurious, not taken.
    assert_eq!(a.acknowledge(), 0xFF);
    assert!(bit_reg(&mut a, IRR, 0x45));
    wr(&mut a, TPR, 0x20);
    assert_eq!(a.acknowledge(), 0x45);
    // In service 0x45: PPR is the ISR class when it is above the TPR class.
    assert_eq!(rd(&mut a, PPR), 0x40);
    wr(&mut a, TPR, 0x47);
    assert_eq!(rd(&mut a, PPR), 0x47);
    wr(&mut a, TPR, 0x00);
    // APR: with the ISR class above TPR and IRR empty, the ISR class.
    assert_eq!(rd(&mut a, APR), 0x40);
    wr(&mut a, TPR, 0x70);
    assert_eq!(rd(&mut a, APR), 0x70);
    // Only the low byte of the TPR exists.
    wr(&mut a, TPR, 0xFFFF_FF12);
    assert_eq!(rd(&mut a, TPR), 0x12);
}

#[test]
fn lapic_priority_ordering_of_pending_vectors() {
    let mut a = linux_apic();
    for v in [0x31, 0x85, 0x42, 0x8F, 0x20] {
        a.accept(v, false);
    }
    // Highest vector first; each EOI lets the next one in.
    let mut order = Vec::new();
    while a.has_interrupt() {
        order.push(a.acknowledge());
        wr(&mut a, EOI, 0);
    }
    assert_eq!(order, vec![0x8F, 0x85, 0x42, 0x31, 0x20]);
    // Without EOI, a lower vector of the same or a lower class waits.
    a.accept(0x85, false);
    a.accept(0x8F, false);
    a.accept(0x42, false);
    assert_eq!(a.acknowledge(), 0x8F);
    assert!(!a.has_interrupt(), "0x85 is in the class of 0x8F");
    assert_eq!(a.acknowledge(), 0xFF);
}

#[test]
fn lapic_eoi_and_isr_nesting() {
    let mut a = linux_apic();
    a.accept(0x42, false);
    assert_eq!(a.acknowledge(), 0x42);
    a.accept(0x45, false);
    assert!(!a.has_interrupt(), "same class as the one in service");
    a.accept(0x91, false);
    assert!(a.has_interrupt(), "a higher class nests");
    assert_eq!(a.acknowledge(), 0x91);
    assert!(bit_reg(&mut a, ISR, 0x42) && bit_reg(&mut a, ISR, 0x91));
    assert_eq!(rd(&mut a, PPR), 0x90);
    // EOI retires the highest in-service vector first.
    wr(&mut a, EOI, 0);
    assert!(!bit_reg(&mut a, ISR, 0x91) && bit_reg(&mut a, ISR, 0x42));
    assert!(!a.has_interrupt());
    wr(&mut a, EOI, 0);
    assert_eq!(rd(&mut a, ISR + 0x20), 0);
    assert_eq!(a.acknowledge(), 0x45);
    wr(&mut a, EOI, 0);
    // EOI with nothing in service does nothing.
    wr(&mut a, EOI, 0);
    assert!(
        a.take_eoi_broadcasts().is_empty(),
        "edge vectors do not broadcast"
    );
}

#[test]
fn lapic_level_eoi_broadcast_and_tmr() {
    let mut a = linux_apic();
    a.accept(0x61, true);
    a.accept(0x52, false);
    assert!(bit_reg(&mut a, TMR, 0x61));
    assert!(!bit_reg(&mut a, TMR, 0x52));
    assert_eq!(a.acknowledge(), 0x61);
    wr(&mut a, EOI, 0);
    assert_eq!(a.acknowledge(), 0x52);
    wr(&mut a, EOI, 0);
    assert_eq!(a.take_eoi_broadcasts(), vec![0x61]);
    assert!(a.take_eoi_broadcasts().is_empty());
    // Re-accepting a vector as edge clears its TMR bit.
    a.accept(0x61, false);
    assert!(!bit_reg(&mut a, TMR, 0x61));
}

#[test]
fn lapic_spurious_when_nothing_pending() {
    let mut a = linux_apic();
    assert!(!a.has_interrupt());
    assert_eq!(a.acknowledge(), 0xFF);
    wr(&mut a, SVR, 0x1E7);
    assert_eq!(a.acknowledge(), 0xE7);
    for i in 0..8 {
        assert_eq!(
            rd(&mut a, ISR + 0x10 * i),
            0,
            "spurious does not enter the ISR"
        );
    }
}

#[test]
fn lapic_self_ipi_via_icr() {
    let mut a = linux_apic();
    // Shorthand "self", fixed, vector 0x50.
    wr(&mut a, ICR_LO, 0x0004_0050);
    assert_eq!(rd(&mut a, ICR_LO) & (1 << 12), 0, "delivery status idle");
    assert_eq!(rd(&mut a, ICR_LO), 0x0004_0050);
    assert!(a.has_interrupt());
    assert_eq!(a.acknowledge(), 0x50);
    wr(&mut a, EOI, 0);
    // No shorthand, physical destination = our ID 0.
    wr(&mut a, ICR_HI, 0);
    wr(&mut a, ICR_LO, 0x51);
    assert_eq!(a.acknowledge(), 0x51);
    wr(&mut a, EOI, 0);
    // Physical destination 1: another CPU, dropped.
    wr(&mut a, ICR_HI, 1 << 24);
    assert_eq!(rd(&mut a, ICR_HI), 1 << 24);
    wr(&mut a, ICR_LO, 0x52);
    assert!(!a.has_interrupt());
    // Logical destination 0x01 matches LDR bit 0 in the flat model; 0x02 does not.
    wr(&mut a, ICR_HI, 0x02 << 24);
    wr(&mut a, ICR_LO, 0x800 | 0x53);
    assert!(!a.has_interrupt());
    wr(&mut a, ICR_HI, 0x01 << 24);
    wr(&mut a, ICR_LO, 0x800 | 0x53);
    assert_eq!(a.acknowledge(), 0x53);
    wr(&mut a, EOI, 0);
    // All excluding self: nobody. All including self: us.
    wr(&mut a, ICR_LO, 0x000C_0054);
    assert!(!a.has_interrupt());
    wr(&mut a, ICR_LO, 0x0008_0055);
    assert_eq!(a.acknowledge(), 0x55);
    wr(&mut a, EOI, 0);
    // NMI and INIT to self.
    wr(&mut a, ICR_LO, 0x0004_0400);
    assert!(a.take_nmi());
    assert!(!a.take_nmi());
    wr(&mut a, ICR_HI, 0);
    wr(&mut a, ICR_LO, 0x0000_C500); // INIT, level assert
    assert!(a.take_init());
    wr(&mut a, ICR_LO, 0x0000_8500); // INIT level de-assert
    assert!(!a.take_init());
    // Start-up and SMI are dropped.
    wr(&mut a, ICR_LO, 0x0004_0610);
    wr(&mut a, ICR_LO, 0x0004_0200);
    assert!(!a.has_interrupt() && !a.take_nmi() && !a.take_init());
    // Illegal vector: not sent, logged as "send illegal vector".
    wr(&mut a, ICR_LO, 0x0004_0005);
    assert_eq!(a.acknowledge(), 0xFE, "only the error interrupt");
    assert!(!bit_reg(&mut a, IRR, 0x05));
    wr(&mut a, ESR, 0);
    assert_eq!(rd(&mut a, ESR), 1 << 5);
}

#[test]
fn lapic_esr_write_then_read_and_error_interrupt() {
    let mut a = linux_apic();
    a.accept(3, false); // illegal vector received
    assert_eq!(rd(&mut a, ESR), 0, "not visible before an ESR write");
    // The error LVT (vector 0xFE) fired.
    assert_eq!(a.acknowledge(), 0xFE);
    wr(&mut a, EOI, 0);
    wr(&mut a, ESR, 0);
    assert_eq!(rd(&mut a, ESR), 1 << 6);
    assert_eq!(rd(&mut a, ESR), 1 << 6, "reading does not clear");
    wr(&mut a, ESR, 0);
    assert_eq!(rd(&mut a, ESR), 0);
    // A reserved register: illegal register address; reads 0.
    assert_eq!(rd(&mut a, 0x40), 0);
    wr(&mut a, 0x3F0, 0x1234);
    wr(&mut a, ESR, 0);
    assert_eq!(rd(&mut a, ESR), 1 << 7);
    // Masked error LVT: logged, no interrupt.
    wr(&mut a, EOI, 0);
    while a.has_interrupt() {
        a.acknowledge();
        wr(&mut a, EOI, 0);
    }
    wr(&mut a, LVTERR, 0xFE | MASKED);
    a.accept(1, false);
    assert!(!a.has_interrupt());
    wr(&mut a, ESR, 0);
    assert_eq!(rd(&mut a, ESR), 1 << 6);
}

#[test]
fn lapic_bad_sizes_and_offsets() {
    let mut a = linux_apic();
    wr(&mut a, TPR, 0x20);
    assert_eq!(a.mmio_read(TPR, 1, t(0)), 0);
    assert_eq!(a.mmio_read(TPR, 2, t(0)), 0);
    assert_eq!(a.mmio_read(TPR + 4, 4, t(0)), 0);
    a.mmio_write(TPR, 1, 0x30, t(0));
    a.mmio_write(TPR + 1, 4, 0x30, t(0));
    assert_eq!(rd(&mut a, TPR), 0x20);
    // Offsets wrap inside the page.
    assert_eq!(a.mmio_read(0x1000 + TPR, 4, t(0)), 0x20);
    wr(&mut a, ESR, 0);
    assert_eq!(
        rd(&mut a, ESR),
        0,
        "unaligned accesses are not register errors"
    );
}

#[test]
fn lapic_software_disable() {
    let mut a = linux_apic();
    wr(&mut a, LVTT, 0x40);
    a.accept(0x70, false);
    wr(&mut a, SVR, 0xFF);
    assert!(!a.software_enabled());
    assert!(!a.has_interrupt(), "held while disabled");
    assert_eq!(a.acknowledge(), 0xFF);
    assert!(a.lint0_extint());
    for off in [LVTT, LVTTHMR, LVTPC, LVT0, LVT1, LVTERR] {
        assert_ne!(rd(&mut a, off) & MASKED, 0, "LVT {off:#x} masked");
    }
    // Masks cannot be cleared while disabled.
    wr(&mut a, LVT0, 0x700);
    assert_eq!(rd(&mut a, LVT0), 0x700 | MASKED);
    // The timer counts but does not interrupt.
    wr(&mut a, TDCR, 0xB);
    wr_at(&mut a, TMICT, 10, 0);
    assert_eq!(a.next_deadline(), None);
    assert_eq!(rd_at(&mut a, TMCCT, 4), 6);
    // Re-enabled: the held vector is deliverable, the masks stay until rewritten.
    wr(&mut a, SVR, 0x1FF);
    assert!(a.has_interrupt());
    assert_eq!(a.acknowledge(), 0x70);
    assert_eq!(rd(&mut a, LVT0), 0x700 | MASKED);
    assert!(!a.lint0_extint());
}

#[test]
fn lapic_base_msr() {
    let mut a = linux_apic();
    a.accept(0x70, false);
    // Reserved bits: refused.
    assert!(!a.set_base_msr(0xFEE0_0801));
    assert!(!a.set_base_msr(0x10_FEE0_0800));
    assert_eq!(a.base_msr(), 0xFEE0_0900);
    // Relocation; BSP is read-only.
    assert!(a.set_base_msr(0xFED0_0800));
    assert_eq!(a.base_msr(), 0xFED0_0900);
    assert_eq!(a.mmio_base(), Some(0xFED0_0000));
    assert!(a.has_interrupt(), "relocation keeps state");
    // Above 4 GiB (36-bit base): not mappable on this board.
    assert!(a.set_base_msr(0x1_0000_0800));
    assert_eq!(a.mmio_base(), None);
    // Global disable: power-on register state, PIC path, nothing accepted.
    assert!(a.set_base_msr(0xFEE0_0000));
    assert_eq!(a.base_msr(), 0xFEE0_0100);
    assert!(!a.globally_enabled());
    assert_eq!(a.mmio_base(), None);
    assert!(a.lint0_extint());
    assert!(!a.has_interrupt());
    a.accept(0x70, false);
    assert!(!a.has_interrupt());
    // Re-enabled: registers at their reset values.
    assert!(a.set_base_msr(0xFEE0_0800));
    assert_eq!(rd(&mut a, SVR), 0xFF);
    assert_eq!(rd(&mut a, LVT0), MASKED);
    assert_eq!(rd(&mut a, IRR + 0x30), 0);
    assert_eq!(rd(&mut a, ID), 0);
}

#[test]
fn lapic_logical_destinations() {
    let mut a = linux_apic();
    wr(&mut a, LDR, 0x24 << 24);
    // Flat model: any common bit.
    assert!(a.matches_destination(0x04, true));
    assert!(a.matches_destination(0x20, true));
    assert!(!a.matches_destination(0x41, true));
    assert!(a.matches_destination(0xFF, true));
    // Cluster model: cluster 2, member bit 2.
    wr(&mut a, DFR, 0x0FFF_FFFF);
    assert!(a.matches_destination(0x24, true));
    assert!(a.matches_destination(0x2C, true));
    assert!(!a.matches_destination(0x34, true));
    assert!(!a.matches_destination(0x28, true));
    assert!(a.matches_destination(0xF4, true), "cluster broadcast");
    // Physical.
    assert!(a.matches_destination(0, false));
    assert!(!a.matches_destination(0x24, false));
    assert!(a.matches_destination(0xFF, false));
    wr(&mut a, ID, 5 << 24);
    assert!(a.matches_destination(5, false));
}

#[test]
fn lapic_lint_pins() {
    let mut a = linux_apic();
    // LINT1 in NMI mode: one NMI per asserting edge.
    a.set_lint(1, true);
    assert!(a.take_nmi());
    a.set_lint(1, true);
    assert!(!a.take_nmi());
    a.set_lint(1, false);
    a.set_lint(1, true);
    assert!(a.take_nmi());
    // LINT0 in ExtINT mode: the board's business, nothing in the IRR.
    a.set_lint(0, true);
    assert!(!a.has_interrupt());
    a.set_lint(0, false);
    // LINT0 fixed, level-triggered: remote IRR until EOI, re-sent while asserted.
    wr(&mut a, LVT0, 0x8000 | 0x66);
    a.set_lint(0, true);
    assert_eq!(rd(&mut a, LVT0) & (1 << 14), 1 << 14);
    assert_eq!(a.acknowledge(), 0x66);
    wr(&mut a, EOI, 0);
    assert_eq!(a.take_eoi_broadcasts(), vec![0x66]);
    assert_eq!(
        rd(&mut a, LVT0) & (1 << 14),
        1 << 14,
        "re-sent while asserted"
    );
    assert_eq!(a.acknowledge(), 0x66);
    a.set_lint(0, false);
    wr(&mut a, EOI, 0);
    assert_eq!(rd(&mut a, LVT0) & (1 << 14), 0);
    assert!(!a.has_interrupt());
    // Active-low edge-triggered fixed LINT0: delivers on the falling wire edge.
    wr(&mut a, LVT0, 0x2000 | 0x67);
    a.set_lint(0, true);
    assert!(!a.has_interrupt());
    a.set_lint(0, false);
    assert_eq!(a.acknowledge(), 0x67);
    // Masked: nothing.
    wr(&mut a, LVT1, 0x400 | MASKED);
    a.set_lint(1, false);
    a.set_lint(1, true);
    assert!(!a.take_nmi());
}

#[test]
fn lapic_receive_messages() {
    let mut a = linux_apic();
    let msg = |vector, mode, level, dest, logical| ApicMessage {
        vector,
        mode,
        level,
        dest,
        logical,
    };
    assert!(a.receive(msg(0x30, DeliveryMode::Fixed, false, 0, false)));
    assert!(a.receive(msg(0x31, DeliveryMode::LowestPriority, true, 1, true)));
    assert!(!a.receive(msg(0x32, DeliveryMode::Fixed, false, 2, false)));
    assert!(!a.receive(msg(0x33, DeliveryMode::Fixed, false, 2, true)));
    assert!(a.receive(msg(0, DeliveryMode::Nmi, false, 0, false)));
    assert!(a.take_nmi());
    assert!(!a.receive(msg(0, DeliveryMode::Smi, false, 0, false)));
    assert!(!a.receive(msg(0, DeliveryMode::ExtInt, false, 0, false)));
    assert!(bit_reg(&mut a, TMR, 0x31));
    assert_eq!(a.acknowledge(), 0x31);
    wr(&mut a, EOI, 0);
    assert_eq!(a.acknowledge(), 0x30);
}

// ---------------------------------------------------------------- IOAPIC

fn io_rd(io: &mut IoApic, index: u8) -> u32 {
    io.mmio_write(0x00, 4, index as u32);
    io.mmio_read(0x10, 4)
}

fn io_wr(io: &mut IoApic, index: u8, v: u32) {
    io.mmio_write(0x00, 4, index as u32);
    io.mmio_write(0x10, 4, v);
}

/// Programs a redirection entry the way Linux does: high half first, then low.
fn route(io: &mut IoApic, pin: u8, low: u32, dest: u8) {
    io_wr(io, 0x11 + 2 * pin, (dest as u32) << 24);
    io_wr(io, 0x10 + 2 * pin, low);
}

const LEVEL: u32 = 1 << 15;
const ACTIVE_LOW: u32 = 1 << 13;
const REMOTE_IRR: u32 = 1 << 14;

fn vectors(io: &mut IoApic) -> Vec<(u8, bool)> {
    io.take_deliveries()
        .into_iter()
        .map(|m| (m.vector, m.level))
        .collect()
}

#[test]
fn ioapic_power_on_state_and_registers() {
    let mut io = IoApic::new(2);
    assert_eq!(io_rd(&mut io, 0), 2 << 24);
    assert_eq!(io_rd(&mut io, 1), 0x0017_0011);
    assert_eq!(io_rd(&mut io, 2), 2 << 24);
    for pin in 0..24 {
        assert_eq!(io_rd(&mut io, 0x10 + 2 * pin), MASKED);
        assert_eq!(io_rd(&mut io, 0x11 + 2 * pin), 0);
    }
    // IOREGSEL reads back; unimplemented indices read 0.
    io.mmio_write(0, 1, 0x42);
    assert_eq!(io.mmio_read(0, 4), 0x42);
    assert_eq!(io_rd(&mut io, 0x03), 0);
    assert_eq!(io_rd(&mut io, 0x40), 0);
    // ID: 4 bits, arbitration ID follows; version is read-only.
    io_wr(&mut io, 0, 0xFF00_0000);
    assert_eq!(io_rd(&mut io, 0), 0x0F00_0000);
    assert_eq!(io_rd(&mut io, 2), 0x0F00_0000);
    io_wr(&mut io, 1, 0);
    assert_eq!(io_rd(&mut io, 1), 0x0017_0011);
    // Entries: reserved, delivery status and remote IRR bits do not stick.
    io_wr(&mut io, 0x10, 0xFFFF_FFFF);
    io_wr(&mut io, 0x11, 0xFFFF_FFFF);
    assert_eq!(io_rd(&mut io, 0x10), 0x0001_AFFF);
    assert_eq!(io_rd(&mut io, 0x11), 0xFF00_0000);
    assert_eq!(io.redirection(0), Some(0xFF00_0000_0001_AFFF));
    assert_eq!(io.redirection(24), None);
    // IOWIN only as a dword; other offsets read 0.
    io.mmio_write(0, 4, 0x01);
    assert_eq!(io.mmio_read(0x10, 2), 0);
    assert_eq!(io.mmio_read(0x20, 4), 0);
    assert_eq!(
        io.mmio_read(0x1010, 4),
        0x0017_0011,
        "offset wraps in the page"
    );
}

#[test]
fn ioapic_edge_pin() {
    let mut io = IoApic::new(0);
    route(&mut io, 1, 0x31, 0);
    io.set_irq(1, true);
    assert_eq!(vectors(&mut io), vec![(0x31, false)]);
    io.set_irq(1, true);
    assert!(!io.has_deliveries(), "no edge while held");
    io.set_irq(1, false);
    assert!(!io.has_deliveries());
    io.set_irq(1, true);
    assert_eq!(vectors(&mut io), vec![(0x31, false)]);
    // EOI does nothing to edge pins.
    io.eoi(0x31);
    assert!(!io.has_deliveries());
    assert_eq!(io_rd(&mut io, 0x12) & REMOTE_IRR, 0);
    // Message fields.
    route(&mut io, 3, 0x800 | 0x100 | 0x33, 0x01);
    io.set_irq(3, true);
    assert_eq!(
        io.take_deliveries(),
        vec![ApicMessage {
            vector: 0x33,
            mode: DeliveryMode::LowestPriority,
            level: false,
            dest: 0x01,
            logical: true,
        }]
    );
}

#[test]
fn ioapic_masked_pin() {
    let mut io = IoApic::new(0);
    route(&mut io, 4, MASKED | 0x34, 0);
    io.set_irq(4, true);
    assert!(!io.has_deliveries());
    // An edge seen while masked is lost, also after unmasking.
    route(&mut io, 4, 0x34, 0);
    assert!(!io.has_deliveries());
    io.set_irq(4, false);
    io.set_irq(4, true);
    assert_eq!(vectors(&mut io), vec![(0x34, false)]);
    // A level pin asserted while masked is sent once unmasked.
    route(&mut io, 5, MASKED | LEVEL | 0x35, 0);
    io.set_irq(5, true);
    assert!(!io.has_deliveries());
    route(&mut io, 5, LEVEL | 0x35, 0);
    assert_eq!(vectors(&mut io), vec![(0x35, true)]);
}

#[test]
fn ioapic_level_pin_remote_irr_and_eoi() {
    let mut io = IoApic::new(0);
    route(&mut io, 9, LEVEL | 0x39, 0);
    io.set_irq(9, true);
    assert_eq!(vectors(&mut io), vec![(0x39, true)]);
    assert_ne!(io_rd(&mut io, 0x10 + 18) & REMOTE_IRR, 0);
    // Still asserted, remote IRR set: nothing more.
    io.set_irq(9, true);
    assert!(!io.has_deliveries());
    // EOI for another vector: nothing.
    io.eoi(0x40);
    assert!(!io.has_deliveries());
    // EOI while still asserted: sent again.
    io.eoi(0x39);
    assert_eq!(vectors(&mut io), vec![(0x39, true)]);
    // Deasserted then EOI: remote IRR clear, nothing sent.
    io.set_irq(9, false);
    io.eoi(0x39);
    assert!(!io.has_deliveries());
    assert_eq!(io_rd(&mut io, 0x10 + 18) & REMOTE_IRR, 0);
    // Rewriting the entry (same level mode) keeps remote IRR; switching to edge clears
    // it (Linux's EOI for IOAPICs without an EOI register).
    io.set_irq(9, true);
    assert_eq!(vectors(&mut io), vec![(0x39, true)]);
    route(&mut io, 9, LEVEL | MASKED | 0x39, 0);
    assert_ne!(io_rd(&mut io, 0x10 + 18) & REMOTE_IRR, 0);
    route(&mut io, 9, MASKED | 0x39, 0);
    assert_eq!(io_rd(&mut io, 0x10 + 18) & REMOTE_IRR, 0);
    route(&mut io, 9, LEVEL | 0x39, 0);
    assert_eq!(
        vectors(&mut io),
        vec![(0x39, true)],
        "still asserted: sent again"
    );
}

#[test]
fn ioapic_polarity() {
    let mut io = IoApic::new(0);
    // Active-low level pin (PCI INTx style): the idle-high wire is deasserted.
    io.set_irq(16, true);
    route(&mut io, 16, ACTIVE_LOW | LEVEL | 0x50, 0);
    assert!(!io.has_deliveries());
    io.set_irq(16, false);
    assert_eq!(vectors(&mut io), vec![(0x50, true)]);
    io.set_irq(16, true);
    io.eoi(0x50);
    assert!(!io.has_deliveries());
    // Active-low edge pin: the falling wire edge is the asserting edge.
    io.set_irq(17, true);
    route(&mut io, 17, ACTIVE_LOW | 0x51, 0);
    io.set_irq(17, true);
    assert!(!io.has_deliveries());
    io.set_irq(17, false);
    assert_eq!(vectors(&mut io), vec![(0x51, false)]);
    io.set_irq(17, true);
    assert!(!io.has_deliveries());
    // Flipping the polarity of an asserted-by-polarity level pin sends it.
    route(&mut io, 18, LEVEL | 0x52, 0);
    assert!(!io.has_deliveries());
    route(&mut io, 18, ACTIVE_LOW | LEVEL | 0x52, 0);
    assert_eq!(vectors(&mut io), vec![(0x52, true)]);
}

#[test]
fn ioapic_nmi_and_extint_pins() {
    let mut io = IoApic::new(0);
    route(&mut io, 2, 0x400 | LEVEL, 0); // NMI: sent as an edge whatever the trigger bit
    io.set_irq(2, true);
    let m = io.take_deliveries();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].mode, DeliveryMode::Nmi);
    assert!(!m[0].level);
    io.eoi(0);
    assert!(!io.has_deliveries());
    // ExtINT: no message, a level query for the board.
    route(&mut io, 0, 0x700, 0);
    assert!(!io.extint_asserted());
    io.set_irq(0, true);
    assert!(!io.has_deliveries());
    assert!(io.extint_asserted());
    route(&mut io, 0, 0x700 | MASKED, 0);
    assert!(!io.extint_asserted());
    route(&mut io, 0, 0x700, 0);
    io.set_irq(0, false);
    assert!(!io.extint_asserted());
    // Pins past 23 are ignored.
    io.set_irq(24, true);
    io.set_irq(usize::MAX, true);
    assert!(!io.has_deliveries());
}

/// The board's wiring: IOAPIC messages to the local APIC, EOI broadcasts back.
fn pump(io: &mut IoApic, a: &mut LocalApic) {
    loop {
        let msgs = io.take_deliveries();
        let eois = a.take_eoi_broadcasts();
        if msgs.is_empty() && eois.is_empty() {
            break;
        }
        for m in msgs {
            a.receive(m);
        }
        for v in eois {
            io.eoi(v);
        }
    }
}

#[test]
fn ioapic_to_lapic_level_interrupt_round_trip() {
    let mut a = linux_apic();
    let mut io = IoApic::new(0);
    // Linux: logical flat destination 0x01, level, fixed.
    route(&mut io, 11, 0x800 | LEVEL | 0x3B, 0x01);
    route(&mut io, 1, 0x800 | 0x31, 0x01);
    io.set_irq(11, true);
    io.set_irq(1, true);
    pump(&mut io, &mut a);
    assert!(a.has_interrupt());
    assert_eq!(a.acknowledge(), 0x3B);
    // The handler clears the device, then EOI: remote IRR clear, nothing re-sent.
    io.set_irq(11, false);
    wr(&mut a, EOI, 0);
    pump(&mut io, &mut a);
    assert_eq!(io.redirection(11).unwrap() as u32 & REMOTE_IRR, 0);
    assert_eq!(a.acknowledge(), 0x31);
    wr(&mut a, EOI, 0);
    assert!(!a.has_interrupt());
    // EOI without clearing the device: the level interrupt comes back.
    io.set_irq(11, true);
    pump(&mut io, &mut a);
    assert_eq!(a.acknowledge(), 0x3B);
    wr(&mut a, EOI, 0);
    pump(&mut io, &mut a);
    assert!(a.has_interrupt());
    assert_eq!(a.acknowledge(), 0x3B);
    // A destination that is not this CPU is refused by the local APIC.
    route(&mut io, 12, 0x3C, 0x07);
    io.set_irq(12, true);
    let m = io.take_deliveries();
    assert_eq!(m.len(), 1);
    assert!(!a.receive(m[0]));
}

// ---------------------------------------------------------------- device properties

fn busy_lapic() -> LocalApic {
    let mut a = linux_apic();
    wr(&mut a, ID, 7 << 24);
    wr(&mut a, TDCR, 0x3);
    wr(&mut a, LVTT, 0xEC | PERIODIC);
    wr_at(&mut a, TMICT, 1000, 10);
    a.accept(0x41, true);
    a.accept(0x62, false);
    a.acknowledge();
    a.accept(3, false);
    a.set_lint(1, true);
    a.advance(t(40_000));
    a
}

fn busy_ioapic() -> IoApic {
    let mut io = IoApic::new(1);
    route(&mut io, 9, LEVEL | 0x39, 0x01);
    route(&mut io, 4, 0x34, 0);
    io.set_irq(9, true);
    io.set_irq(4, true);
    io.mmio_write(0, 4, 0x13);
    io
}

#[test]
fn lapic_reset_is_idempotent() {
    let mut a = busy_lapic();
    a.reset();
    let once = a.clone();
    a.reset();
    assert_eq!(a, once);
    // Reset gives the power-on state (the LINT wire levels excepted).
    let mut fresh = LocalApic::new(0, 100_000_000);
    fresh.set_lint(1, true);
    assert_eq!(a, fresh);
    // INIT keeps the APIC ID and the base MSR.
    wr(&mut a, ID, 7 << 24);
    assert!(a.set_base_msr(0xFED0_0800));
    a.init_reset();
    let once = a.clone();
    a.init_reset();
    assert_eq!(a, once);
    assert_eq!(rd(&mut a, ID), 7 << 24);
    assert_eq!(a.base_msr(), 0xFED0_0900);
    assert_eq!(rd(&mut a, SVR), 0xFF);
}

#[test]
fn ioapic_reset_is_idempotent() {
    let mut io = busy_ioapic();
    io_wr(&mut io, 0, 0x0500_0000);
    io.reset();
    let once = io.clone();
    io.reset();
    assert_eq!(io, once);
    assert_eq!(io_rd(&mut io, 0), 1 << 24, "configured ID restored");
    assert_eq!(io.redirection(9), Some(MASKED as u64));
    assert!(!io.has_deliveries());
}

#[test]
fn save_restore_save_is_identical() {
    let a = busy_lapic();
    let s1 = serde_json::to_string(&a).unwrap();
    let b: LocalApic = serde_json::from_str(&s1).unwrap();
    assert_eq!(a, b);
    assert_eq!(s1, serde_json::to_string(&b).unwrap());
    // The restored APIC behaves the same from here on.
    let (mut a, mut b) = (a, b);
    for now in [40_001u64, 60_000, 200_000] {
        a.advance(t(now));
        b.advance(t(now));
        assert_eq!(rd_at(&mut a, TMCCT, now), rd_at(&mut b, TMCCT, now));
        assert_eq!(a.acknowledge(), b.acknowledge());
    }
    assert_eq!(a, b);

    let io = busy_ioapic();
    let s1 = serde_json::to_string(&io).unwrap();
    let io2: IoApic = serde_json::from_str(&s1).unwrap();
    assert_eq!(io, io2);
    assert_eq!(s1, serde_json::to_string(&io2).unwrap());
}

#[test]
fn lapic_random_mmio_never_panics() {
    let mut rng = StdRng::seed_from_u64(0x1A91C);
    for round in 0..200 {
        let bus_hz = [1, 1_000_000, 33_333_333, 100_000_000, 10_000_000_000][round % 5];
        let mut a = LocalApic::new(0, bus_hz);
        let mut now = 0u64;
        for _ in 0..300 {
            now = now.saturating_add(match rng.gen_range(0..4) {
                0 => 0,
                1 => rng.gen_range(0..100),
                2 => rng.gen_range(0..100_000),
                // Up to 2^48 instructions: about a month of virtual time.
                _ => rng.gen::<u64>() >> rng.gen_range(16..64),
            });
            let off = match rng.gen_range(0..3) {
                0 => rng.gen_range(0..0x40u32) << 4,
                1 => rng.gen_range(0..0x1000),
                _ => rng.gen(),
            };
            let size = [1, 2, 4, 4, 4, 3, 8][rng.gen_range(0..7)];
            let value = match rng.gen_range(0..3) {
                0 => rng.gen(),
                1 => rng.gen_range(0..0x200),
                _ => rng.gen::<u32>() & 0x000F_FFFF,
            };
            match rng.gen_range(0..10) {
                0..=3 => a.mmio_write(off, size, value, t(now)),
                4..=5 => {
                    a.mmio_read(off, size, t(now));
                }
                6 => a.accept(rng.gen(), rng.gen()),
                7 => {
                    a.acknowledge();
                    a.take_eoi_broadcasts();
                    a.take_nmi();
                    a.take_init();
                }
                8 => a.set_lint(rng.gen_range(0..3), rng.gen()),
                _ => {
                    a.set_base_msr(rng.gen::<u64>() & 0xF_FFFF_F900);
                }
            }
            a.advance(t(now));
            if let Some(d) = a.next_deadline() {
                assert!(d > now, "deadline {d} not after {now}");
            }
            let init = a.mmio_read(TMICT, 4, t(now));
            assert!(a.mmio_read(TMCCT, 4, t(now)) <= init);
        }
    }
}

#[test]
fn ioapic_random_mmio_never_panics() {
    let mut rng = StdRng::seed_from_u64(0x10A91C);
    for _ in 0..200 {
        let mut io = IoApic::new(rng.gen());
        let mut a = LocalApic::new(0, 100_000_000);
        wr(&mut a, SVR, 0x1FF);
        for _ in 0..300 {
            let off = match rng.gen_range(0..3) {
                0 => [0x00, 0x10][rng.gen_range(0..2)],
                1 => rng.gen_range(0..0x1000),
                _ => rng.gen(),
            };
            let size = [1, 2, 4, 4, 3][rng.gen_range(0..5)];
            match rng.gen_range(0..8) {
                0..=2 => io.mmio_write(off, size, rng.gen()),
                3 => {
                    io.mmio_read(off, size);
                }
                4..=5 => io.set_irq(rng.gen_range(0..30), rng.gen()),
                6 => io.eoi(rng.gen()),
                _ => {
                    if a.has_interrupt() {
                        a.acknowledge();
                    }
                    wr(&mut a, EOI, 0);
                    pump(&mut io, &mut a);
                }
            }
            io.extint_asserted();
            // An edge-triggered entry never keeps remote IRR.
            for pin in 0..24 {
                let e = io.redirection(pin).unwrap();
                if e & LEVEL as u64 == 0 {
                    assert_eq!(e & REMOTE_IRR as u64, 0, "pin {pin}: {e:#x}");
                }
            }
        }
    }
}
