//! The PIC, PIT and CMOS/RTC together and through the generic device checks: reset is
//! idempotent, save -> restore -> save is identical (also mid-run, continuing the same
//! way), random port sequences never panic and deadlines always move forward.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::de::DeserializeOwned;
use serde::Serialize;

use x86emu::clock::Clock;
use x86emu::devices::cmos::{self, Cmos};
use x86emu::devices::pic::Pic8259Pair;
use x86emu::devices::pit::Pit8254;
use x86emu::devices::{PortDevice, Time};

/// What the generic checks need from a device besides `PortDevice`.
trait Dut: PortDevice + Serialize + DeserializeOwned + Clone + PartialEq + std::fmt::Debug {
    /// Device-specific side calls the board makes (interrupt lines, acknowledges, edge
    /// counters), driven by random numbers.
    fn poke(&mut self, rng: &mut StdRng, t: Time);
}

impl Dut for Pic8259Pair {
    fn poke(&mut self, rng: &mut StdRng, _t: Time) {
        match rng.gen_range(0..3) {
            0 => self.set_irq(rng.gen_range(0..20), rng.gen()),
            1 => {
                let _ = self.acknowledge();
            }
            _ => {
                let _ = (self.output(), self.irr(), self.isr(), self.imr());
            }
        }
    }
}

impl Dut for Pit8254 {
    fn poke(&mut self, rng: &mut StdRng, t: Time) {
        match rng.gen_range(0..3) {
            0 => {
                let _ = self.take_irq0_edges();
            }
            1 => self.set_gate(rng.gen_range(0..4), rng.gen(), t),
            _ => {
                let _ = (self.out0(t), self.out(rng.gen_range(0..4), t));
            }
        }
    }
}

impl Dut for Cmos {
    fn poke(&mut self, rng: &mut StdRng, t: Time) {
        match rng.gen_range(0..3) {
            0 => self.set_nvram(rng.gen(), rng.gen()),
            1 => {
                let _ = (self.irq_level(), self.unix_time(t), self.nmi_disabled());
            }
            _ => self.fill_pc_defaults(
                rng.gen::<u64>() >> rng.gen_range(0..64),
                &Default::default(),
            ),
        }
    }
}

fn save<D: Serialize>(d: &D) -> String {
    serde_json::to_string(d).expect("device state serialises")
}

/// One random step: a port access (mostly in the device's ranges), a board call, or an
/// advance to the deadline. Returns the new time.
fn step<D: Dut>(d: &mut D, rng: &mut StdRng, clock: Clock, now: u64) -> u64 {
    let now = match rng.gen_range(0..10) {
        0 => {
            let bits = rng.gen_range(0..40);
            now + rng.gen_range(0..1u64 << bits)
        }
        1..=4 => now + rng.gen_range(0..200),
        _ => now,
    };
    let t = Time::new(now, clock);
    let ranges = d.port_ranges();
    let port = if rng.gen_ratio(9, 10) {
        let (lo, hi) = ranges[rng.gen_range(0..ranges.len())];
        rng.gen_range(lo..=hi).wrapping_add(rng.gen_range(0..2))
    } else {
        rng.gen()
    };
    let size = [1u8, 1, 1, 2, 4][rng.gen_range(0..5)];
    match rng.gen_range(0..10) {
        0..=3 => {
            let v = d.io_read(port, size, t);
            assert!(
                size == 4 || v >> (8 * size) == 0,
                "read wider than the access"
            );
        }
        4..=7 => d.io_write(port, size, rng.gen(), t),
        8 => d.poke(rng, t),
        _ => {
            d.advance(t);
            if let Some(dl) = d.next_deadline() {
                assert!(dl > now, "deadline {dl} not after the advance at {now}");
                if rng.gen() && dl - now < 1 << 30 {
                    let t = Time::new(dl, clock);
                    d.advance(t);
                    return dl;
                }
            }
        }
    }
    now
}

fn generic_checks<D: Dut>(make: impl Fn(Clock) -> D, seed: u64) {
    // Slow, PIT-speed, default and fast virtual CPUs. Times stay below 2^56 (22 years
    // at 100 MIPS), where no tick count overflows.
    let clocks = [
        Clock::new(1_000_000),
        Clock::new(1_193_182),
        Clock::default(),
        Clock::new(4_000_000_000),
    ];
    for (i, clock) in clocks.into_iter().enumerate() {
        let mut rng = StdRng::seed_from_u64(seed + i as u64);
        let mut d = make(clock);
        let mut now = 0u64;
        for n in 0..20_000 {
            now = step(&mut d, &mut rng, clock, now).min(1 << 56);
            if n % 1000 == 999 {
                // Save, restore, save: identical, and the restored copy runs on the same.
                let s = save(&d);
                let mut r: D = serde_json::from_str(&s).expect("device state restores");
                assert_eq!(r, d);
                assert_eq!(save(&r), s);
                let mut rng2 = rng.clone();
                let mut now2 = now;
                let mut d2 = d.clone();
                for _ in 0..200 {
                    now2 = step(&mut r, &mut rng2, clock, now2);
                }
                let mut rng3 = rng.clone();
                let mut now3 = now;
                for _ in 0..200 {
                    now3 = step(&mut d2, &mut rng3, clock, now3);
                }
                assert_eq!(save(&r), save(&d2));
                // Reset is idempotent.
                let mut a = d.clone();
                a.reset();
                let once = save(&a);
                a.reset();
                assert_eq!(save(&a), once);
            }
        }
    }
}

#[test]
fn pic_generic_device_checks() {
    generic_checks(|_| Pic8259Pair::new(), 1);
}

#[test]
fn pit_generic_device_checks() {
    generic_checks(Pit8254::new, 100);
}

#[test]
fn cmos_generic_device_checks() {
    generic_checks(|c| Cmos::new(1_700_000_000, c), 200);
}

#[test]
fn cmos_restore_rejects_a_short_ram() {
    let c = Cmos::new(0, Clock::default());
    let s = save(&c);
    assert_eq!(serde_json::from_str::<Cmos>(&s).unwrap(), c);
    let short = s.replacen("\"ram\":[0,", "\"ram\":[", 1);
    assert_ne!(short, s);
    let err = serde_json::from_str::<Cmos>(&short).unwrap_err();
    assert!(err.to_string().contains("127 bytes"), "{err}");
}

fn outb<D: PortDevice>(d: &mut D, port: u16, v: u8, now: u64) {
    d.io_write(port, 1, v as u32, Time::new(now, Clock::default()));
}

fn inb<D: PortDevice>(d: &mut D, port: u16, now: u64) -> u8 {
    d.io_read(port, 1, Time::new(now, Clock::default())) as u8
}

/// A miniature board: the PIT's channel 0 at 1000 Hz on IRQ 0 and the RTC's 1024 Hz
/// periodic interrupt on IRQ 8, through a PIC pair programmed as Linux does, with the
/// interrupt handlers' EOIs and register C reads, run from deadline to deadline for one
/// virtual second.
#[test]
fn board_loop_delivers_timer_and_rtc_interrupts() {
    let clock = Clock::default();
    let mut pic = Pic8259Pair::new();
    let mut pit = Pit8254::new(clock);
    let mut rtc = Cmos::new(1_700_000_000, clock);
    // The board drives the lines from power-on (OUT0 starts high).
    let t0 = Time::new(0, clock);
    pic.set_irq(0, pit.out0(t0));
    pic.set_irq(8, rtc.irq_level());
    for (port, v) in [
        (0x20, 0x11),
        (0x21, 0x30),
        (0x21, 0x04),
        (0x21, 0x01),
        (0xA0, 0x11),
        (0xA1, 0x38),
        (0xA1, 0x02),
        (0xA1, 0x01),
        (0x21, 0x00),
        (0xA1, 0x00),
    ] {
        outb(&mut pic, port, v, 0);
    }
    outb(&mut pit, 0x43, 0x34, 0);
    outb(&mut pit, 0x40, (1193 & 0xFF) as u8, 0);
    outb(&mut pit, 0x40, (1193 >> 8) as u8, 0);
    outb(&mut rtc, 0x70, cmos::REG_B, 0);
    outb(&mut rtc, 0x71, cmos::B_PIE | cmos::B_24H, 0);

    let end = clock.ips;
    let (mut timer, mut periodic) = (0u32, 0u32);
    loop {
        let next = [pit.next_deadline(), rtc.next_deadline()]
            .into_iter()
            .flatten()
            .min()
            .expect("both devices have deadlines");
        if next > end {
            break;
        }
        let t = Time::new(next, clock);
        pit.advance(t);
        rtc.advance(t);
        if pit.take_irq0_edges() > 0 {
            pic.set_irq(0, false);
            pic.set_irq(0, true);
        }
        pic.set_irq(0, pit.out0(t));
        pic.set_irq(8, rtc.irq_level());
        while pic.output() {
            match pic.acknowledge() {
                0x30 => {
                    timer += 1;
                    outb(&mut pic, 0x20, 0x60, next);
                }
                0x38 => {
                    periodic += 1;
                    outb(&mut rtc, 0x70, cmos::REG_C, next);
                    let c = inb(&mut rtc, 0x71, next);
                    assert_eq!(c & (cmos::C_IRQF | cmos::C_PF), cmos::C_IRQF | cmos::C_PF);
                    pic.set_irq(8, rtc.irq_level());
                    outb(&mut pic, 0xA0, 0x60, next);
                    outb(&mut pic, 0x20, 0x62, next);
                }
                v => panic!("unexpected vector {v:#x} at {next}"),
            }
        }
    }
    // PIT: rising edges at tick 1 + 1193k <= 1193182; RTC: 1024 per second.
    assert_eq!(timer, 1000);
    assert_eq!(periodic, 1024);
}

/// Edges that happen while the CPU cannot take interrupts are latched once by the PIC
/// (as on hardware), and none is lost to the board between polls.
#[test]
fn pit_edges_latch_once_while_interrupts_are_held_off() {
    let clock = Clock::default();
    let mut pic = Pic8259Pair::new();
    for (port, v) in [(0x20, 0x11), (0x21, 0x08), (0x21, 0x04), (0x21, 0x01)] {
        outb(&mut pic, port, v, 0);
    }
    let mut pit = Pit8254::new(clock);
    outb(&mut pit, 0x43, 0x34, 0);
    outb(&mut pit, 0x40, 100, 0);
    outb(&mut pit, 0x40, 0, 0);
    // Poll only every 10 ms: 119 periods of 100 ticks each time.
    let t = Time::new(clock.ips / 100, clock);
    pit.advance(t);
    let edges = pit.take_irq0_edges();
    assert_eq!(edges as u64, (clock.ticks(t.now, 1_193_182) - 1) / 100);
    pic.set_irq(0, false);
    pic.set_irq(0, true);
    pic.set_irq(0, pit.out0(t));
    assert_eq!(pic.acknowledge(), 0x08);
    assert!(!pic.output());
}
