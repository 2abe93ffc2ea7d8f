//! The generic device suite for the UART and the keyboard controller: reset is idempotent,
//! save -> restore -> save is identical (and the restored device behaves the same), and
//! random port sequences with host input never panic, keep the devices' invariants, and
//! leave no deadline due after `advance` (so a machine that runs deadlines cannot spin).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::de::DeserializeOwned;
use serde::Serialize;
use x86emu::clock::Clock;
use x86emu::devices::i8042::{self, Key, I8042};
use x86emu::devices::uart::{self, Uart16550};
use x86emu::devices::{PortDevice, Time};

fn at(now: u64) -> Time {
    Time::new(now, Clock::new(100_000_000))
}

fn json<T: Serialize>(d: &T) -> String {
    serde_json::to_string(d).expect("device state serialises")
}

/// A device under test with its host-side stimuli.
trait Dut: PortDevice + Serialize + DeserializeOwned + Clone {
    fn fresh() -> Self;
    /// A random port access or host event; reads are appended to `trace`.
    fn step(&mut self, rng: &mut StdRng, now: u64, trace: &mut Vec<u32>);
    /// Invariants that must hold at every instruction boundary.
    fn check(&self, _state: &serde_json::Value) {}
    /// Hand host-side queues (not part of the state) to the host, as the console does
    /// before a snapshot.
    fn drain_host_side(&mut self) {}
}

impl Dut for Uart16550 {
    fn fresh() -> Self {
        Uart16550::new(uart::COM1_BASE)
    }

    fn drain_host_side(&mut self) {
        self.take_output();
    }

    fn step(&mut self, rng: &mut StdRng, now: u64, trace: &mut Vec<u32>) {
        let base = self.base();
        match rng.gen_range(0..100) {
            0..=4 => {
                let n = rng.gen_range(0..40);
                let bytes: Vec<u8> = (0..n).map(|_| rng.gen()).collect();
                trace.push(self.push_input(&bytes) as u32);
            }
            5 => trace.push(self.push_break() as u32),
            6..=8 => trace.extend(self.take_output().into_iter().map(u32::from)),
            _ => {
                let port = base.wrapping_add(rng.gen_range(0..10)).wrapping_sub(1);
                let size = [1u8, 1, 1, 1, 2, 4][rng.gen_range(0..6)];
                if rng.gen_bool(0.5) {
                    trace.push(self.io_read(port, size, at(now)));
                } else {
                    // Keep the divisor small now and then so reception happens often.
                    let v = if rng.gen_bool(0.1) { 1 } else { rng.gen() };
                    self.io_write(port, size, v, at(now));
                }
            }
        }
        trace.push(self.irq_level() as u32);
    }

    fn check(&self, state: &serde_json::Value) {
        let fifo = state["rx_fifo"].as_array().expect("rx_fifo").len();
        assert!(fifo <= 16, "receive FIFO holds {fifo} bytes");
        assert!(state["input"].as_array().expect("input").len() <= uart::INPUT_CAPACITY);
        // The transmit queue is host-side (not in the state): ask the chip.
        assert!(self.pending_output() <= uart::OUTPUT_CAPACITY);
    }
}

impl Dut for I8042 {
    fn fresh() -> Self {
        I8042::new()
    }

    fn step(&mut self, rng: &mut StdRng, now: u64, trace: &mut Vec<u32>) {
        const CMDS: [u8; 30] = [
            0x20, 0x60, 0x21, 0x7F, 0xA4, 0xA7, 0xA8, 0xA9, 0xAA, 0xAB, 0xAD, 0xAE, 0xC0, 0xD0,
            0xD1, 0xD2, 0xD3, 0xD4, 0xD4, 0xD4, 0xDD, 0xDF, 0xE0, 0xF0, 0xFE, 0xFF, 0xA1, 0xC1,
            0x00, 0x90,
        ];
        const DEV: [u8; 24] = [
            0xFF, 0xFE, 0xF6, 0xF5, 0xF4, 0xF3, 0xF2, 0xF0, 0xEE, 0xED, 0xEC, 0xEB, 0xEA, 0xE9,
            0xE8, 0xE7, 0xE6, 0x00, 0x01, 0x02, 0x03, 0x64, 0xC8, 0x50,
        ];
        match rng.gen_range(0..100) {
            0..=5 => {
                let k = Key(rng.gen_range(0..0x202));
                let ok = if rng.gen_bool(0.5) {
                    self.key_down(k)
                } else {
                    self.key_up(k)
                };
                trace.push(ok as u32);
            }
            6..=8 => {
                let n = rng.gen_range(0..12);
                let bytes: Vec<u8> = (0..n).map(|_| rng.gen()).collect();
                trace.push(self.type_terminal_bytes(&bytes) as u32);
            }
            9..=12 => self.mouse_event(
                rng.gen_range(-600..600),
                rng.gen_range(-600..600),
                rng.gen(),
            ),
            13 => trace.push(self.take_reset_request() as u32),
            14..=40 => {
                let v = if rng.gen_bool(0.7) {
                    CMDS[rng.gen_range(0..CMDS.len())]
                } else {
                    rng.gen()
                };
                self.io_write(i8042::STATUS_PORT, 1, u32::from(v), at(now));
            }
            41..=60 => {
                let v = if rng.gen_bool(0.7) {
                    DEV[rng.gen_range(0..DEV.len())]
                } else {
                    rng.gen()
                };
                self.io_write(i8042::DATA_PORT, 1, u32::from(v), at(now));
            }
            61..=97 => {
                let port = [i8042::DATA_PORT, i8042::STATUS_PORT][rng.gen_range(0..2)];
                let size = [1u8, 1, 1, 2, 4][rng.gen_range(0..5)];
                trace.push(self.io_read(port, size, at(now)));
            }
            _ => {
                // Ports the controller does not decode.
                self.io_write(0x61, 1, rng.gen(), at(now));
                trace.push(self.io_read(0x62, 1, at(now)));
            }
        }
        trace.push(self.irq1() as u32 | (self.irq12() as u32) << 1 | (self.a20() as u32) << 2);
    }

    fn check(&self, state: &serde_json::Value) {
        assert!(!(self.irq1() && self.irq12()), "one output buffer, one IRQ");
        let _ = state;
    }
}

/// Run `steps` random steps from `d`, honouring deadlines as a machine does; returns the
/// trace of everything observable.
fn run_random<D: Dut>(d: &mut D, rng: &mut StdRng, now: &mut u64, steps: usize) -> Vec<u32> {
    let mut trace = Vec::new();
    let mut checked = 0u32;
    for _ in 0..steps {
        // Time passes: often a little, sometimes a lot (a halted CPU fast-forwarding).
        let dt = match rng.gen_range(0..10) {
            0 => rng.gen_range(0..2_000_000),
            1..=3 => 0,
            _ => rng.gen_range(0..20_000),
        };
        let target = *now + dt;
        let mut guard = 0;
        while let Some(dl) = d.next_deadline() {
            if dl > target {
                break;
            }
            *now = (*now).max(dl);
            d.advance(at(*now));
            if let Some(next) = d.next_deadline() {
                assert!(
                    next > *now,
                    "deadline {next} still due after advance at {now}"
                );
            }
            guard += 1;
            assert!(guard < 100_000, "deadlines do not make progress");
        }
        *now = target;
        d.step(rng, *now, &mut trace);
        checked += 1;
        if checked % 64 == 0 {
            d.check(&serde_json::to_value(&*d).expect("serialise"));
        }
    }
    d.check(&serde_json::to_value(&*d).expect("serialise"));
    trace
}

fn reset_is_idempotent<D: Dut>(seed: u64, ignore: &[&str]) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut d = D::fresh();
    let mut now = 0;
    run_random(&mut d, &mut rng, &mut now, 500);
    d.reset();
    let once = json(&d);
    d.reset();
    assert_eq!(
        once,
        json(&d),
        "seed {seed}: second reset changed the state"
    );
    // Reset from a used device equals the power-on state, host-side queues aside.
    let strip = |s: &str| {
        let mut v: serde_json::Value = serde_json::from_str(s).unwrap();
        for k in ignore {
            v.as_object_mut().unwrap().remove(*k);
        }
        v
    };
    assert_eq!(strip(&once), strip(&json(&D::fresh())), "seed {seed}");
}

fn save_restore_save<D: Dut>(seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut d = D::fresh();
    let mut now = 0;
    let steps = rng.gen_range(0..800);
    run_random(&mut d, &mut rng, &mut now, steps);
    d.drain_host_side();
    let saved = json(&d);
    let mut restored: D = serde_json::from_str(&saved).expect("state deserialises");
    assert_eq!(
        saved,
        json(&restored),
        "seed {seed}: save -> restore -> save differs"
    );
    // The restored device continues exactly as the original.
    let mut rng_a = StdRng::seed_from_u64(seed ^ 0xA5A5);
    let mut rng_b = rng_a.clone();
    let (mut now_a, mut now_b) = (now, now);
    let ta = run_random(&mut d, &mut rng_a, &mut now_a, 400);
    let tb = run_random(&mut restored, &mut rng_b, &mut now_b, 400);
    assert_eq!(ta, tb, "seed {seed}: restored device diverged");
    assert_eq!(json(&d), json(&restored));
}

fn random_sequences<D: Dut>(seeds: u64, steps: usize) {
    for seed in 0..seeds {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut d = D::fresh();
        let mut now = rng.gen_range(0..1000);
        run_random(&mut d, &mut rng, &mut now, steps);
    }
}

#[test]
fn uart_reset_is_idempotent() {
    for seed in 0..20 {
        reset_is_idempotent::<Uart16550>(seed, &["input", "output"]);
    }
}

#[test]
fn uart_save_restore_save() {
    for seed in 0..20 {
        save_restore_save::<Uart16550>(seed);
    }
}

#[test]
fn uart_random_port_sequences() {
    random_sequences::<Uart16550>(100, 3000);
}

#[test]
fn i8042_reset_is_idempotent() {
    for seed in 0..20 {
        reset_is_idempotent::<I8042>(seed, &[]);
    }
}

#[test]
fn i8042_save_restore_save() {
    for seed in 0..20 {
        save_restore_save::<I8042>(seed);
    }
}

#[test]
fn i8042_random_port_sequences() {
    random_sequences::<I8042>(100, 3000);
}

/// The same inputs at the same instruction counts give the same device state, byte for byte.
#[test]
fn runs_are_deterministic() {
    for seed in 0..5 {
        let run = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            let (mut u, mut k) = (Uart16550::fresh(), I8042::fresh());
            let (mut nu, mut nk) = (0, 0);
            let tu = run_random(&mut u, &mut rng, &mut nu, 1000);
            let tk = run_random(&mut k, &mut rng, &mut nk, 1000);
            (tu, tk, json(&u), json(&k))
        };
        assert_eq!(run(seed), run(seed));
    }
}
