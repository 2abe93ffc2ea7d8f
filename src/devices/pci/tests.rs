use rand::{Rng, SeedableRng};

use super::piix3::{self, AcpiPm, PM_TIMER_HZ};
use super::*;
use crate::clock::Clock;
use crate::devices::PortDevice;

fn t(now: u64) -> Time {
    Time::new(now, Clock::default())
}

fn addr(devfn: u8, reg: u8) -> u32 {
    0x8000_0000 | (devfn as u32) << 8 | reg as u32
}

fn cfg_read(bus: &mut PciBus, devfn: u8, reg: u8, size: u8) -> u32 {
    bus.io_write(0xCF8, 4, addr(devfn, reg & 0xFC), t(0));
    bus.io_read(0xCFC + (reg & 3) as u16, size, t(0))
}

fn cfg_write(bus: &mut PciBus, devfn: u8, reg: u8, size: u8, v: u32) {
    bus.io_write(0xCF8, 4, addr(devfn, reg & 0xFC), t(0));
    bus.io_write(0xCFC + (reg & 3) as u16, size, v, t(0));
}

#[test]
fn identities_and_access_widths() {
    let mut bus = PciBus::new();
    assert_eq!(cfg_read(&mut bus, HOST_BRIDGE_DEVFN, 0, 4), 0x1237_8086);
    assert_eq!(cfg_read(&mut bus, HOST_BRIDGE_DEVFN, 8, 1), 0x02);
    assert_eq!(cfg_read(&mut bus, ISA_BRIDGE_DEVFN, 0, 4), 0x7000_8086);
    assert_eq!(cfg_read(&mut bus, ISA_BRIDGE_DEVFN, 0x0E, 1), 0x80);
    assert_eq!(cfg_read(&mut bus, ISA_BRIDGE_DEVFN, 0x0A, 2), 0x0601);
    assert_eq!(cfg_read(&mut bus, IDE_DEVFN, 2, 2), 0x7010);
    assert_eq!(cfg_read(&mut bus, IDE_DEVFN, 8, 4), 0x0101_8000);
    assert_eq!(cfg_read(&mut bus, PM_DEVFN, 0, 4), 0x7113_8086);
    assert_eq!(cfg_read(&mut bus, PM_DEVFN, 8, 1), 0x03);
    // Byte and word reads at every lane of the data port.
    bus.io_write(0xCF8, 4, addr(HOST_BRIDGE_DEVFN, 0), t(0));
    assert_eq!(bus.io_read(0xCFC, 1, t(0)), 0x86);
    assert_eq!(bus.io_read(0xCFD, 1, t(0)), 0x80);
    assert_eq!(bus.io_read(0xCFE, 1, t(0)), 0x37);
    assert_eq!(bus.io_read(0xCFF, 1, t(0)), 0x12);
    assert_eq!(bus.io_read(0xCFE, 2, t(0)), 0x1237);
    assert_eq!(bus.io_read(0xCFD, 2, t(0)), 0x3780);
    // The address latch reads back, low bits and reserved bits masked.
    bus.io_write(0xCF8, 4, 0xFFFF_FFFF, t(0));
    assert_eq!(bus.io_read(0xCF8, 4, t(0)), 0x80FF_FFFC);
    // Absent functions, other buses and the enable bit clear read all ones.
    assert_eq!(cfg_read(&mut bus, devfn(5, 0), 0, 4), 0xFFFF_FFFF);
    assert_eq!(cfg_read(&mut bus, devfn(0, 1), 0, 2), 0xFFFF);
    bus.io_write(0xCF8, 4, 0x8001_0000, t(0));
    assert_eq!(bus.io_read(0xCFC, 4, t(0)), 0xFFFF_FFFF);
    bus.io_write(0xCF8, 4, 0x0000_0000, t(0));
    assert_eq!(bus.io_read(0xCFC, 4, t(0)), 0xFFFF_FFFF);
    bus.io_write(0xCFC, 4, 0x1234, t(0));
    assert_eq!(cfg_read(&mut bus, HOST_BRIDGE_DEVFN, 0, 4), 0x1237_8086);
    // Byte reads of 0xCF8 do not touch the latch (only 0xCF9, the RCR, answers).
    assert_eq!(bus.io_read(0xCF8, 1, t(0)), 0xFF);
    assert_eq!(bus.io_read(0xCF9, 1, t(0)), 0x00);
}

#[test]
fn writes_respect_masks_and_widths() {
    let mut bus = PciBus::new();
    // Identity is read-only.
    cfg_write(&mut bus, IDE_DEVFN, 0, 4, 0);
    assert_eq!(cfg_read(&mut bus, IDE_DEVFN, 0, 4), 0x7010_8086);
    // IDE command: only I/O and bus master are writable.
    cfg_write(&mut bus, IDE_DEVFN, COMMAND, 2, 0xFFFF);
    assert_eq!(cfg_read(&mut bus, IDE_DEVFN, COMMAND, 2), 0x0005);
    // Byte write into the upper half of a dword.
    cfg_write(&mut bus, IDE_DEVFN, 0x41, 1, 0x80);
    cfg_write(&mut bus, IDE_DEVFN, 0x42, 2, 0x8000);
    assert_eq!(cfg_read(&mut bus, IDE_DEVFN, 0x40, 4), 0x8000_8000);
    // Interrupt line is writable, pin is not.
    cfg_write(&mut bus, PM_DEVFN, INTERRUPT_LINE, 2, 0xFF09);
    assert_eq!(cfg_read(&mut bus, PM_DEVFN, INTERRUPT_LINE, 2), 0x0109);
    // Status: write-one-to-clear error bits, others read-only.
    let f = bus.function_mut(IDE_DEVFN).unwrap();
    f.config.0[STATUS as usize + 1] |= 0x20; // received master abort
    cfg_write(&mut bus, IDE_DEVFN, STATUS, 2, 0xFFFF);
    assert_eq!(cfg_read(&mut bus, IDE_DEVFN, STATUS, 2), 0x0280);
    // PIRQ route registers: reset 0x80, bits 6:4 reserved.
    assert_eq!(cfg_read(&mut bus, ISA_BRIDGE_DEVFN, 0x60, 4), 0x8080_8080);
    assert_eq!(bus.pirq_route(0), None);
    cfg_write(&mut bus, ISA_BRIDGE_DEVFN, 0x60, 4, 0x0B0B_0A7A);
    assert_eq!(cfg_read(&mut bus, ISA_BRIDGE_DEVFN, 0x60, 4), 0x0B0B_0A0A);
    assert_eq!(bus.pirq_route(0), Some(10));
    assert_eq!(bus.pirq_route(3), Some(11));
    cfg_write(&mut bus, ISA_BRIDGE_DEVFN, 0x61, 1, 0x02); // IRQ 2 is not routable
    assert_eq!(bus.pirq_route(1), None);
    // SMRAM: reset value 0x02, base segment fixed.
    assert_eq!(cfg_read(&mut bus, HOST_BRIDGE_DEVFN, 0x72, 1), 0x02);
    cfg_write(&mut bus, HOST_BRIDGE_DEVFN, 0x72, 1, 0x4F);
    assert_eq!(cfg_read(&mut bus, HOST_BRIDGE_DEVFN, 0x72, 1), 0x4A);
}

#[test]
fn bar_sizing_and_decode() {
    let mut bus = PciBus::new();
    // BAR4 of IDE: 16 bytes of I/O.
    assert_eq!(cfg_read(&mut bus, IDE_DEVFN, 0x20, 4), 0x0000_0001);
    cfg_write(&mut bus, IDE_DEVFN, 0x20, 4, 0xFFFF_FFFF);
    assert_eq!(cfg_read(&mut bus, IDE_DEVFN, 0x20, 4), 0xFFFF_FFF1);
    cfg_write(&mut bus, IDE_DEVFN, 0x20, 4, 0xC00F);
    assert_eq!(cfg_read(&mut bus, IDE_DEVFN, 0x20, 4), 0xC001);
    assert_eq!(bus.bmide_base(), None, "I/O decoding is off");
    cfg_write(&mut bus, IDE_DEVFN, COMMAND, 2, CMD_IO as u32);
    assert_eq!(bus.bmide_base(), Some(0xC000));
    assert!(!bus.bus_master(IDE_DEVFN));
    // Other BARs of the IDE function are unimplemented: they read 0 whatever is written.
    cfg_write(&mut bus, IDE_DEVFN, 0x10, 4, 0xFFFF_FFFF);
    assert_eq!(cfg_read(&mut bus, IDE_DEVFN, 0x10, 4), 0);

    // A board-added function with memory BARs and an expansion ROM (a VGA, say).
    let vga = PciFunction::new(0x1234, 0x1111, 2, 0x03_00_00, 0)
        .with_bar(
            0,
            BarKind::Mem {
                size: 16 << 20,
                prefetchable: true,
            },
        )
        .with_bar(
            2,
            BarKind::Mem {
                size: 4096,
                prefetchable: false,
            },
        )
        .with_rom(40 * 1024);
    let d = devfn(2, 0);
    bus.add_function(d, vga).unwrap();
    assert!(bus
        .add_function(d, PciFunction::new(1, 2, 0, 0, 0))
        .is_err());
    cfg_write(&mut bus, d, 0x10, 4, 0xFFFF_FFFF);
    assert_eq!(cfg_read(&mut bus, d, 0x10, 4), 0xFF00_0008);
    cfg_write(&mut bus, d, 0x18, 4, 0xFFFF_FFFF);
    assert_eq!(cfg_read(&mut bus, d, 0x18, 4), 0xFFFF_F000);
    cfg_write(&mut bus, d, ROM_BAR, 4, 0xFFFF_F800);
    assert_eq!(
        cfg_read(&mut bus, d, ROM_BAR, 4),
        0xFFFF_0000,
        "64 KiB after rounding"
    );
    cfg_write(&mut bus, d, 0x10, 4, 0xFD00_0000);
    cfg_write(&mut bus, d, 0x18, 4, 0xFEBF_0000);
    cfg_write(&mut bus, d, ROM_BAR, 4, 0xFEB0_0001);
    assert_eq!(bus.mem_bar(d, 0), None, "memory decoding is off");
    assert_eq!(bus.rom_bar(d), None);
    cfg_write(&mut bus, d, COMMAND, 2, CMD_MEMORY as u32);
    assert_eq!(bus.mem_bar(d, 0), Some(0xFD00_0000));
    assert_eq!(bus.mem_bar(d, 2), Some(0xFEBF_0000));
    assert_eq!(bus.mem_bar(d, 1), None);
    assert_eq!(bus.io_bar(d, 0), None);
    assert_eq!(bus.rom_bar(d), Some(0xFEB0_0000));
    cfg_write(&mut bus, d, ROM_BAR, 1, 0x00);
    assert_eq!(bus.rom_bar(d), None, "ROM enable bit cleared");
    // Oversized requests are clamped, not a panic: 2 GiB of memory, 64 KiB of I/O.
    let big = PciFunction::new(1, 2, 0, 0, 0)
        .with_bar(
            0,
            BarKind::Mem {
                size: u32::MAX,
                prefetchable: false,
            },
        )
        .with_bar(1, BarKind::Io { size: 1 << 20 })
        .with_rom(u32::MAX);
    let bd = devfn(6, 0);
    bus.add_function(bd, big).unwrap();
    for (reg, want) in [
        (0x10u8, 0x8000_0000u32),
        (0x14, 0xFFFF_0001),
        (ROM_BAR, 0x8000_0001),
    ] {
        cfg_write(&mut bus, bd, reg, 4, 0xFFFF_FFFF);
        assert_eq!(cfg_read(&mut bus, bd, reg, 4), want, "register {reg:#x}");
    }
    // Reset puts every BAR back to unassigned.
    bus.reset();
    assert_eq!(bus.mem_bar(d, 0), None);
    assert_eq!(cfg_read(&mut bus, d, 0x10, 4), 0x0000_0008);
}

#[test]
fn pam_registers_map_to_regions() {
    let mut bus = PciBus::new();
    assert!(bus.take_pam_dirty(), "power-on state must be applied once");
    assert!(bus
        .pam_regions()
        .iter()
        .all(|r| !r.read_ram && !r.write_ram));
    // PAM0 high nibble: 0xF0000-0xFFFFF; its low nibble is reserved.
    cfg_write(&mut bus, HOST_BRIDGE_DEVFN, 0x59, 1, 0x3F);
    assert!(bus.take_pam_dirty());
    assert!(!bus.take_pam_dirty());
    assert_eq!(cfg_read(&mut bus, HOST_BRIDGE_DEVFN, 0x59, 1), 0x30);
    let r = bus.pam_regions();
    assert_eq!(
        (r[0].base, r[0].len, r[0].read_ram, r[0].write_ram),
        (0xF0000, 0x10000, true, true)
    );
    // PAM1..PAM6: low nibble then high nibble, 16 KiB each from 0xC0000.
    // (Unaligned multi-byte writes through the ports would cross the data port; the
    // config_write entry point takes any offset.)
    bus.config_write(HOST_BRIDGE_DEVFN, 0x5A, 4, 0x3021_1201); // PAM1-PAM4
    cfg_write(&mut bus, HOST_BRIDGE_DEVFN, 0x5E, 2, 0x0330); // PAM5, PAM6
    let r = bus.pam_regions();
    let expect: [(u32, bool, bool); 12] = [
        (0xC0000, true, false),
        (0xC4000, false, false),
        (0xC8000, false, true),
        (0xCC000, true, false),
        (0xD0000, true, false),
        (0xD4000, false, true),
        (0xD8000, false, false),
        (0xDC000, true, true),
        (0xE0000, false, false),
        (0xE4000, true, true),
        (0xE8000, true, true),
        (0xEC000, false, false),
    ];
    for (i, &(base, rd, wr)) in expect.iter().enumerate() {
        let g = r[1 + i];
        assert_eq!(
            (g.base, g.len, g.read_ram, g.write_ram),
            (base, 0x4000, rd, wr),
            "region {i}"
        );
    }
    // A write elsewhere in the host bridge does not dirty the map.
    bus.take_pam_dirty();
    cfg_write(&mut bus, HOST_BRIDGE_DEVFN, 0x50, 4, 0);
    assert!(!bus.take_pam_dirty());
    // A dword write at 0x58 covers PAM0.
    cfg_write(&mut bus, HOST_BRIDGE_DEVFN, 0x58, 4, 0);
    assert!(bus.take_pam_dirty());
}

#[test]
fn pam_applied_to_physical_memory() {
    let mut bus = PciBus::new();
    let mut mem = PhysMem::new_pc(2 << 20);
    let rom: Vec<u8> = (0..0x10000u32).map(|i| (i as u8) ^ 0x5A).collect();
    mem.map_rom(&rom, &[0xF0000]).unwrap();
    let mut nb = crate::devices::bus::NullBus;
    bus.sync_memory(&mut mem);
    assert_eq!(mem.read(0xF0010, 1, &mut nb), 0x10 ^ 0x5A);
    mem.write(0xF0010, 1, 0x77, &mut nb);
    assert_eq!(
        mem.read(0xF0010, 1, &mut nb),
        0x10 ^ 0x5A,
        "ROM ignores writes"
    );
    // Write-only shadow: reads from ROM, writes to RAM (SeaBIOS copies itself this way).
    cfg_write(&mut bus, HOST_BRIDGE_DEVFN, 0x59, 1, 0x20);
    bus.sync_memory(&mut mem);
    mem.write(0xF0010, 1, 0x77, &mut nb);
    assert_eq!(mem.read(0xF0010, 1, &mut nb), 0x10 ^ 0x5A);
    // Read/write shadow: the RAM copy shows.
    cfg_write(&mut bus, HOST_BRIDGE_DEVFN, 0x59, 1, 0x30);
    bus.sync_memory(&mut mem);
    assert_eq!(mem.read(0xF0010, 1, &mut nb), 0x77);
    // Read-only shadow: RAM is read, writes are dropped.
    cfg_write(&mut bus, HOST_BRIDGE_DEVFN, 0x59, 1, 0x10);
    bus.sync_memory(&mut mem);
    mem.write(0xF0010, 1, 0x99, &mut nb);
    assert_eq!(mem.read(0xF0010, 1, &mut nb), 0x77);
    // Reset: back to ROM.
    bus.reset();
    bus.sync_memory(&mut mem);
    assert_eq!(mem.read(0xF0010, 1, &mut nb), 0x10 ^ 0x5A);
}

#[test]
fn reset_control_register() {
    let mut bus = PciBus::new();
    bus.io_write(0xCF9, 1, 0x02, t(0));
    assert!(!bus.take_reset());
    assert_eq!(bus.io_read(0xCF9, 1, t(0)), 0x02);
    bus.io_write(0xCF9, 1, 0x06, t(0));
    assert!(bus.take_reset());
    assert!(!bus.take_reset());
    assert_eq!(bus.reset_control(), 0x02);
    // A dword write to 0xCF8 is the address latch, never a reset.
    bus.io_write(0xCF8, 4, 0x0000_0600, t(0));
    assert!(!bus.take_reset());
}

#[test]
fn pirq_levels_follow_intx_and_swizzle() {
    let mut bus = PciBus::new();
    let d = devfn(3, 0);
    bus.add_function(
        d,
        PciFunction::new(0x10EC, 0x8139, 0, 0x02_00_00, 0).with_interrupt_pin(1),
    )
    .unwrap();
    assert_eq!(bus.pirq_levels(), [false; 4]);
    bus.function_mut(d).unwrap().set_intx(true);
    // Slot 3, INTA: (0 + 3 - 1) & 3 = PIRQC.
    assert_eq!(bus.pirq_levels(), [false, false, true, false]);
    assert_eq!(
        cfg_read(&mut bus, d, STATUS, 2) & STATUS_INTERRUPT as u32,
        8
    );
    cfg_write(&mut bus, d, COMMAND, 2, CMD_INTX_DISABLE as u32);
    assert_eq!(bus.pirq_levels(), [false; 4]);
    assert_eq!(piix3::pirq_for(devfn(1, 3), 1), 0);
    assert_eq!(piix3::pirq_for(devfn(2, 0), 1), 1);
    assert_eq!(piix3::pirq_for(devfn(4, 0), 2), 0);
}

fn enable_pm(bus: &mut PciBus, base: u16) -> AcpiPm {
    cfg_write(bus, PM_DEVFN, piix3::PMBA, 4, base as u32 | 1);
    assert_eq!(bus.pm_io_base(), None, "not enabled yet");
    cfg_write(bus, PM_DEVFN, piix3::PMREGMISC, 1, 1);
    assert_eq!(bus.pm_io_base(), Some(base));
    let mut pm = AcpiPm::new();
    pm.set_base(bus.pm_io_base());
    pm
}

#[test]
fn pm_base_register() {
    let mut bus = PciBus::new();
    assert_eq!(cfg_read(&mut bus, PM_DEVFN, 0x40, 4), 1);
    cfg_write(&mut bus, PM_DEVFN, 0x40, 4, 0xFFFF_FFFF);
    assert_eq!(cfg_read(&mut bus, PM_DEVFN, 0x40, 4), 0xFFC1);
    let pm = enable_pm(&mut bus, 0x600);
    assert_eq!(pm.port_ranges(), vec![(0xB2, 0xB3), (0x600, 0x63F)]);
}

#[test]
fn pm_timer_runs_at_3_579545_mhz_of_virtual_time() {
    let mut bus = PciBus::new();
    let mut pm = enable_pm(&mut bus, 0x600);
    for ips in [100_000_000u64, 7_000_000, 1_000_000_000] {
        let clock = Clock::new(ips);
        let at = |n: u64| Time::new(n, clock);
        let t0 = pm.io_read(0x608, 4, at(12_345));
        // One virtual second later: 3579545 ticks, modulo 2^24.
        let t1 = pm.io_read(0x608, 4, at(12_345 + ips));
        assert_eq!(t1.wrapping_sub(t0) & 0xFF_FFFF, 3_579_545, "ips {ips}");
        assert_eq!(t1 >> 24, 0, "24-bit timer");
        // Exact value at a known time: ticks = icount * HZ / ips.
        let v = pm.io_read(0x608, 4, at(ips / 2));
        assert_eq!(v as u64, (PM_TIMER_HZ / 2) & 0xFF_FFFF);
        // Word read of the low half agrees.
        assert_eq!(pm.io_read(0x608, 2, at(ips / 2)), v & 0xFFFF);
    }
    // Monotonic within a period, wraps at 2^24.
    let clock = Clock::default();
    let wrap = clock.icount_at_ticks(1 << 24, PM_TIMER_HZ);
    assert!(pm.io_read(0x608, 4, Time::new(wrap - 1, clock)) > 0xFF_FF00);
    assert!(pm.io_read(0x608, 4, Time::new(wrap, clock)) < 0x100);
}

#[test]
fn pm_timer_overflow_raises_sci_at_deadline() {
    let mut bus = PciBus::new();
    let mut pm = enable_pm(&mut bus, 0x600);
    let clock = Clock::default();
    assert_eq!(pm.next_deadline(), None);
    pm.io_write(0x602, 2, 1, Time::new(100, clock)); // TMR_EN
    let dl = pm.next_deadline().unwrap();
    assert_eq!(dl, clock.icount_at_ticks(1 << 23, PM_TIMER_HZ));
    pm.advance(Time::new(dl - 1, clock));
    assert!(!pm.sci_level());
    pm.advance(Time::new(dl, clock));
    assert!(pm.sci_level());
    assert_eq!(pm.io_read(0x600, 2, Time::new(dl, clock)) & 1, 1);
    assert_eq!(pm.next_deadline(), None, "status pending");
    pm.io_write(0x600, 2, 1, Time::new(dl + 1, clock)); // clear TMR_STS
    assert!(!pm.sci_level());
    assert_eq!(
        pm.next_deadline(),
        Some(clock.icount_at_ticks(2 << 23, PM_TIMER_HZ))
    );
    // Power button: SCI only when enabled.
    pm.press_power_button();
    assert!(!pm.sci_level());
    pm.io_write(0x602, 2, 0x0101, Time::new(dl + 2, clock));
    assert!(pm.sci_level());
    pm.io_write(0x600, 2, 0x0100, Time::new(dl + 3, clock));
    assert!(!pm.sci_level());
    // GPE0.
    pm.io_write(0x60E, 2, 0xFFFF, Time::new(dl + 4, clock));
    assert_eq!(pm.io_read(0x60C, 4, Time::new(dl + 4, clock)), 0xFFFF_0000);
}

#[test]
fn pm_s5_power_off() {
    assert_eq!(
        piix3::S5_SLP_TYP,
        crate::firmware::acpi::S5_SLP_TYP,
        "must match the DSDT"
    );
    let mut bus = PciBus::new();
    let mut pm = enable_pm(&mut bus, 0x600);
    assert!(pm.sci_enabled());
    assert_eq!(pm.io_read(0x604, 2, t(0)), 1);
    // SLP_TYP alone does nothing; S1 (001b) with SLP_EN is ignored.
    pm.io_write(0x604, 2, 1 | (1 << 10), t(1));
    assert!(!pm.take_poweroff());
    pm.io_write(0x604, 2, 1 | (1 << 10) | (1 << 13), t(2));
    assert!(!pm.take_poweroff());
    assert_eq!(pm.io_read(0x604, 2, t(3)), 1 | (1 << 10), "SLP_EN reads 0");
    // S5: SLP_TYP = 0 with SLP_EN, as Linux (word write) and SeaBIOS (0x2000) do it.
    pm.io_write(0x604, 2, 0x2000 | 1, t(4));
    assert!(pm.take_poweroff());
    assert!(!pm.take_poweroff());
    // Byte write of the high half.
    pm.io_write(0x605, 1, 0x20, t(5));
    assert!(pm.take_poweroff());
    // APM control port toggles SCI_EN.
    pm.io_write(0xB2, 1, 0xF0, t(6));
    assert!(!pm.sci_enabled());
    pm.io_write(0xB2, 1, 0xF1, t(7));
    assert!(pm.sci_enabled());
    assert_eq!(pm.io_read(0xB2, 1, t(8)), 0xF1);
}

// ---- generic device properties ----

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap()
}

fn random_port_ops<D: PortDevice>(dev: &mut D, ports: &[u16], seed: u64, n: usize) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for i in 0..n {
        let port = if rng.gen_bool(0.9) {
            ports[rng.gen_range(0..ports.len())].wrapping_add(rng.gen_range(0..4))
        } else {
            rng.gen()
        };
        let size = [1u8, 2, 4][rng.gen_range(0..3)];
        let now = i as u64 * rng.gen_range(1..100_000u64);
        if rng.gen_bool(0.5) {
            let v = if rng.gen_bool(0.2) {
                0xFFFF_FFFF
            } else {
                rng.gen()
            };
            dev.io_write(port, size, v, t(now));
        } else {
            let v = dev.io_read(port, size, t(now));
            assert!(
                size == 4 || v >> (8 * size) == 0,
                "read wider than its size"
            );
        }
        if let Some(d) = dev.next_deadline() {
            dev.advance(t(d.max(now)));
        }
    }
}

#[test]
fn pci_bus_reset_save_restore_random() {
    let mut bus = PciBus::new();
    // Random config traffic to every function, including address-latch changes.
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for _ in 0..20_000 {
        let d = [0u8, 8, 9, 11, 16, 255][rng.gen_range(0..6)];
        let a = 0x8000_0000 | (d as u32) << 8 | rng.gen_range(0..256u32);
        bus.io_write(
            0xCF8,
            4,
            if rng.gen_bool(0.95) { a } else { rng.gen() },
            t(0),
        );
        let p = 0xCFC + rng.gen_range(0..4u16);
        let size = [1u8, 2, 4][rng.gen_range(0..3)];
        if rng.gen_bool(0.5) {
            bus.io_write(p, size, rng.gen(), t(0));
        } else {
            bus.io_read(p, size, t(0));
        }
    }
    random_port_ops(&mut bus, &[0xCF8, 0xCFC], 3, 20_000);
    let s1 = json(&bus);
    let back: PciBus = serde_json::from_str(&s1).unwrap();
    assert_eq!(back, bus);
    assert_eq!(json(&back), s1);
    let mut a = bus.clone();
    a.reset();
    let mut b = a.clone();
    b.reset();
    assert_eq!(a, b);
    assert_eq!(a, {
        let mut n = PciBus::new();
        n.reset();
        n
    });
    // Config spaces of the wrong length are rejected, not accepted or panicking.
    let bad = s1.replacen("[134,128,55,18", "[134,128,55", 1);
    assert!(serde_json::from_str::<PciBus>(&bad).is_err());
}

#[test]
fn pm_reset_save_restore_random() {
    let mut pm = AcpiPm::new();
    pm.set_base(Some(0x600));
    random_port_ops(
        &mut pm,
        &[0x600, 0x604, 0x608, 0x60C, 0x610, 0x620, 0x63C, 0xB2],
        11,
        50_000,
    );
    let s1 = json(&pm);
    let back: AcpiPm = serde_json::from_str(&s1).unwrap();
    assert_eq!(back, pm);
    assert_eq!(json(&back), s1);
    let mut a = pm.clone();
    a.reset();
    let mut b = a.clone();
    b.reset();
    assert_eq!(a, b);
    // A hostile snapshot with a short register array must not panic.
    let mut short = pm.clone();
    short.misc.truncate(3);
    random_port_ops(&mut short, &[0x600, 0x620, 0x63C], 5, 5_000);
}

#[test]
fn firmware_setup_programs_decoders() {
    let mut bus = PciBus::new();
    assert!(bus.take_config_changed());
    assert!(!bus.take_config_changed());
    assert_eq!(bus.bmide_base(), None);
    assert_eq!(bus.pm_io_base(), None);
    let routes = bus.firmware_setup(0xC000, 0xB000);
    assert!(bus.take_config_changed());
    assert_eq!(routes, [10, 10, 11, 11]);
    assert_eq!(
        (0..4).map(|i| bus.pirq_route(i)).collect::<Vec<_>>(),
        routes.map(Some)
    );
    assert_eq!(bus.bmide_base(), Some(0xC000));
    assert!(bus.bus_master(IDE_DEVFN));
    assert_eq!(cfg_read(&mut bus, IDE_DEVFN, 0x40, 4), 0x8000_8000);
    assert_eq!(bus.pm_io_base(), Some(0xB000));
    assert_eq!(cfg_read(&mut bus, PM_DEVFN, INTERRUPT_LINE, 1), 9);
    // A config write through the ports sets the flag again.
    cfg_write(&mut bus, IDE_DEVFN, COMMAND, 2, 0);
    assert!(bus.take_config_changed());
    assert_eq!(bus.bmide_base(), None);
}
