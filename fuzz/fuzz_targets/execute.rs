//! Executing arbitrary bytes in real mode and in 32-bit flat mode never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use x86emu::cpu::{Cpu, SegReg};
use x86emu::devices::bus::NullBus;
use x86emu::mmu::PhysMem;

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let flat32 = data[0] & 1 != 0;
    let mut mem = PhysMem::new_flat(1 << 20);
    mem.write_bytes(0x1_0000, &data[1..]);
    let mut cpu = Cpu::new();
    if flat32 {
        cpu.state.enter_flat32();
        cpu.state.eip = 0x1_0000;
    } else {
        for s in SegReg::ALL {
            cpu.state.set_real_segment(s, 0x1000);
        }
        cpu.state.eip = 0;
    }
    cpu.state.gpr[4] = 0x8000;
    let _ = cpu.run(&mut mem, &mut NullBus, 2_000);
});
