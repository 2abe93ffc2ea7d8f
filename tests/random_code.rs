//! Robustness: random byte streams executed in real mode and in 32-bit flat protected
//! mode must never panic the emulator. Every outcome is an architectural exception, a
//! halt, an instruction-limit stop or a clean "unsupported" report. (Run under the
//! test profile, which keeps integer-overflow checks on.)

use rand::{rngs::StdRng, Rng, SeedableRng};
use x86emu::cpu::{Cpu, RunExit, SegReg};
use x86emu::devices::bus::NullBus;
use x86emu::mmu::PhysMem;

fn run_random(flat32: bool, programs: usize, seed: u64) -> [usize; 5] {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut mem = PhysMem::new_flat(2 << 20);
    // [halted, limit, exception, unsupported, triple/other]
    let mut outcomes = [0usize; 5];
    for _ in 0..programs {
        let mut code = [0u8; 96];
        rng.fill(&mut code[..]);
        let base = 0x1_0000u32;
        mem.write_bytes(base, &code);
        let mut cpu = Cpu::new();
        cpu.stop_on_exception = true;
        if flat32 {
            cpu.state.enter_flat32();
            cpu.state.eip = base;
        } else {
            for s in SegReg::ALL {
                cpu.state.set_real_segment(s, 0x1000);
            }
            cpu.state.eip = 0;
        }
        for r in cpu.state.gpr.iter_mut() {
            *r = rng.gen::<u32>() & 0x000F_FFFF;
        }
        cpu.state.gpr[4] = 0x8000;
        cpu.state.set_eflags(rng.gen::<u32>() & 0x0CD5);
        let mut steps = 0;
        loop {
            match cpu.run(&mut mem, &mut NullBus, 200) {
                RunExit::Halted => {
                    outcomes[0] += 1;
                    break;
                }
                RunExit::InstructionLimit => {
                    outcomes[1] += 1;
                    break;
                }
                RunExit::Exception { .. } => {
                    outcomes[2] += 1;
                    // Skip the faulting byte and keep going a little.
                    cpu.state.eip = cpu.state.eip.wrapping_add(1);
                    steps += 1;
                    if steps > 8 {
                        break;
                    }
                }
                RunExit::Unsupported { .. } => {
                    outcomes[3] += 1;
                    break;
                }
                _ => {
                    outcomes[4] += 1;
                    break;
                }
            }
        }
    }
    outcomes
}

#[test]
fn random_code_real_mode_never_panics() {
    let o = run_random(false, 20_000, 1);
    println!(
        "real mode: halted {} limit {} exceptions {} unsupported {} other {}",
        o[0], o[1], o[2], o[3], o[4]
    );
}

#[test]
fn random_code_flat32_never_panics() {
    let o = run_random(true, 20_000, 2);
    println!(
        "flat32: halted {} limit {} exceptions {} unsupported {} other {}",
        o[0], o[1], o[2], o[3], o[4]
    );
}
