//! One generated suite for every port-mapped device of the PC board: the same three
//! properties checked the same way for each chip.
//!
//! 1. Reset is idempotent: reset twice gives the state reset once gives.
//! 2. Save → restore → save is identical (postcard, the snapshot encoding), and the
//!    restored device equals the saved one.
//! 3. Random port sequences (inside the device's ports, with random sizes and values,
//!    virtual time moving forward, deadlines honoured) never panic, and a device
//!    restored mid-sequence behaves exactly like the original for the rest of it.

use rand::{rngs::StdRng, Rng, SeedableRng};
use serde::{de::DeserializeOwned, Serialize};
use x86emu::clock::Clock;
use x86emu::devices::cmos::Cmos;
use x86emu::devices::fw_cfg::FwCfg;
use x86emu::devices::i8042::I8042;
use x86emu::devices::pci::piix3::AcpiPm;
use x86emu::devices::pci::PciBus;
use x86emu::devices::pic::Pic8259Pair;
use x86emu::devices::pit::Pit8254;
use x86emu::devices::uart::{self, Uart16550};
use x86emu::devices::vga::Vga;
use x86emu::devices::{PortDevice, Time};

fn save<D: Serialize>(d: &D) -> Vec<u8> {
    postcard::to_allocvec(d).expect("device state encodes")
}

fn restore<D: DeserializeOwned>(b: &[u8]) -> D {
    postcard::from_bytes(b).expect("device state decodes")
}

/// Apply `ops` random accesses to `d` starting at instruction count `t0`; returns the
/// values read, so two runs can be compared.
fn drive<D: PortDevice>(d: &mut D, rng: &mut StdRng, t0: &mut u64, ops: usize) -> Vec<u32> {
    let clock = Clock::default();
    let ranges = d.port_ranges();
    let mut reads = Vec::new();
    for _ in 0..ops {
        *t0 += rng.gen_range(1..5_000);
        if let Some(dl) = d.next_deadline() {
            if dl <= *t0 {
                d.advance(Time::new(*t0, clock));
            }
        }
        let t = Time::new(*t0, clock);
        let port = if rng.gen_bool(0.95) && !ranges.is_empty() {
            let (lo, hi) = ranges[rng.gen_range(0..ranges.len())];
            rng.gen_range(lo..=hi)
        } else {
            rng.gen()
        };
        let size = [1u8, 2, 4][rng.gen_range(0..3)];
        if rng.gen_bool(0.5) {
            d.io_write(port, size, rng.gen(), t);
        } else {
            reads.push(d.io_read(port, size, t));
        }
    }
    reads
}

fn suite<D>(name: &str, make: impl Fn() -> D)
where
    D: PortDevice + Serialize + DeserializeOwned + Clone + PartialEq + std::fmt::Debug,
{
    // 1. Reset idempotence, also after random traffic.
    let mut rng = StdRng::seed_from_u64(0x5EED ^ name.len() as u64);
    let mut d = make();
    let mut t = 0;
    drive(&mut d, &mut rng, &mut t, 2_000);
    d.reset();
    let once = d.clone();
    d.reset();
    assert!(d == once, "{name}: reset is not idempotent");

    // 2. Save -> restore -> save.
    let mut d = make();
    drive(&mut d, &mut rng, &mut t, 3_000);
    let a = save(&d);
    let r: D = restore(&a);
    assert!(r == d, "{name}: restored state differs");
    assert_eq!(save(&r), a, "{name}: save -> restore -> save differs");

    // 3. A restored copy behaves like the original for the rest of a random run.
    let mut copy: D = restore(&a);
    let mut rng_a = StdRng::seed_from_u64(99);
    let mut rng_b = StdRng::seed_from_u64(99);
    let (mut ta, mut tb) = (t, t);
    let ra = drive(&mut d, &mut rng_a, &mut ta, 5_000);
    let rb = drive(&mut copy, &mut rng_b, &mut tb, 5_000);
    assert_eq!(ra, rb, "{name}: a restored device behaves differently");
    assert!(d == copy, "{name}: states diverged after identical input");
    println!("{name}: ok");
}

#[test]
fn every_port_device() {
    let clock = Clock::default();
    suite("pic", Pic8259Pair::new);
    suite("pit", || Pit8254::new(clock));
    suite("cmos", || Cmos::new(1_704_067_200, clock));
    suite("uart", || Uart16550::new(uart::COM1_BASE));
    suite("i8042", I8042::new);
    suite("fw_cfg", || FwCfg::new(64 << 20, 1));
    suite("pci", PciBus::new);
    suite("acpi_pm", || {
        let mut pm = AcpiPm::new();
        pm.set_base(Some(0x600));
        pm
    });
    suite("vga", Vga::new);
}
