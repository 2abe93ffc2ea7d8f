//! PC snapshots with the Linux test guest (built by `test-roms/linux/build.sh` into
//! `target/linux-guest`, or set `X86EMU_LINUX_GUEST_DIR`): running N instructions
//! straight gives the same state hash as N/2, snapshot, restore into a freshly built
//! machine, N/2; save → restore → save gives identical bytes; a mismatched machine is
//! refused with a clear message.

mod common;

use common::guest::linux_guest_dir as guest_dir;
use std::path::Path;
use x86emu::devices::ide::IdeDrives;
use x86emu::disk::{CowDisk, RawFileDisk};
use x86emu::machine::{BootSource, PcConfig, PcMachine};
use x86emu::snapshot::to_hex;

/// Mid-boot (the kernel is still decompressing itself; 2e9 is too): the straight run
/// goes on its own thread beside the split one.
const N: u64 = 1_200_000_000;

fn machine(g: &Path, ram_mib: u64, with_disk: bool) -> PcMachine {
    let mut drives = IdeDrives::new();
    if with_disk {
        let base = RawFileDisk::open(&g.join("disk.img")).unwrap();
        drives
            .attach_hard_disk(0, 0, Box::new(CowDisk::new(Box::new(base))))
            .unwrap();
    }
    let boot = BootSource::Kernel {
        kernel: std::fs::read(g.join("bzImage")).unwrap(),
        initrd: Some(std::fs::read(g.join("initrd.img")).unwrap()),
        cmdline: std::fs::read_to_string(g.join("cmdline.txt"))
            .unwrap()
            .trim()
            .to_string(),
    };
    let config = PcConfig {
        ram_size: ram_mib << 20,
        ..PcConfig::default()
    };
    PcMachine::new(config, boot, drives).unwrap()
}

fn run_to(m: &mut PcMachine, icount: u64) {
    while m.cpu.state.icount < icount {
        let exit = m.run(icount - m.cpu.state.icount);
        assert!(
            matches!(
                exit,
                x86emu::machine::MachineExit::InstructionLimit | x86emu::machine::MachineExit::Idle
            ),
            "unexpected exit {exit:?}"
        );
        if exit == x86emu::machine::MachineExit::Idle {
            break;
        }
    }
}

#[test]
fn split_run_with_snapshot_matches_straight_run() {
    let g = guest_dir();
    let straight = {
        let g = g.clone();
        std::thread::spawn(move || {
            let mut m = machine(&g, 128, true);
            run_to(&mut m, N);
            (
                m.cpu.state.icount,
                m.state_hash(),
                m.board.com1.take_output(),
            )
        })
    };

    let mut first = machine(&g, 128, true);
    run_to(&mut first, N / 2);
    let t = std::time::Instant::now();
    let snap = first.save_snapshot();
    eprintln!(
        "snapshot at {}: {} bytes, saved in {:?}",
        first.cpu.state.icount,
        snap.len(),
        t.elapsed()
    );
    let half_hash = first.state_hash();
    // The serial output so far is the host's (not in the snapshot): the console would
    // have delivered it already.
    let mut serial = first.board.com1.take_output();
    drop(first);

    let mut second = machine(&g, 128, true);
    let t = std::time::Instant::now();
    second.restore_snapshot(&snap).unwrap();
    eprintln!("restored in {:?}", t.elapsed());
    assert_eq!(to_hex(&second.state_hash()), to_hex(&half_hash));
    // The summary computes the same hash from the file alone.
    let sum = x86emu::machine::SnapshotSummary::of(&snap).unwrap();
    assert_eq!(sum.state_hash, half_hash);
    assert_eq!(sum.icount, N / 2);
    // save -> restore -> save is byte-identical.
    assert!(second.save_snapshot() == snap, "re-saved snapshot differs");
    run_to(&mut second, N);
    let (icount, want, out) = straight.join().unwrap();
    assert_eq!(second.cpu.state.icount, icount);
    assert_eq!(
        to_hex(&second.state_hash()),
        to_hex(&want),
        "state after N/2 + snapshot + restore + N/2 differs from N straight"
    );
    serial.extend(second.board.com1.take_output());
    assert_eq!(serial, out, "first half + second half of the serial output");
    let text = String::from_utf8_lossy(&out);
    eprintln!(
        "serial at N: ...{}",
        &text[text.len().saturating_sub(300)..]
    );
}

#[test]
fn restore_refuses_a_different_machine() {
    let g = guest_dir();
    let m = machine(&g, 64, true);
    let snap = m.save_snapshot();

    let mut other_ram = machine(&g, 128, true);
    let e = other_ram.restore_snapshot(&snap).unwrap_err().to_string();
    assert_eq!(
        e,
        "machine configuration mismatch: the snapshot was taken with 64 MiB of RAM, this machine has 128 MiB"
    );
    let mut no_disk = machine(&g, 64, false);
    let e = no_disk.restore_snapshot(&snap).unwrap_err().to_string();
    assert!(
        e.starts_with("machine configuration mismatch: IDE 0:0: the snapshot had a hard disk image of 50331648 bytes"),
        "{e}"
    );
    assert!(
        e.ends_with("this machine has nothing: attach the same images"),
        "{e}"
    );
    // A damaged file is refused before anything is decoded.
    let mut bad = snap.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 1;
    let mut same = machine(&g, 64, true);
    assert_eq!(
        same.restore_snapshot(&bad).unwrap_err().to_string(),
        "checksum mismatch: the file is corrupt or truncated"
    );
    same.restore_snapshot(&snap).unwrap();
    assert_eq!(same.state_hash(), m.state_hash());
}

#[test]
fn cli_snapshot_info_and_resume_continue_the_machine() {
    use std::process::{Command, Stdio};
    let g = guest_dir();
    let mut m = machine(&g, 64, true);
    run_to(&mut m, 50_000_000);
    // The UART's output that the host has not taken is not machine state: the snapshot
    // and the hash are the same whether or not it was drained.
    let undrained = (m.save_snapshot(), m.state_hash());
    assert!(!m.board.com1.take_output().is_empty(), "the guest printed");
    let snap = m.save_snapshot();
    assert!(snap == undrained.0 && m.state_hash() == undrained.1);
    let dir = std::env::temp_dir().join(format!("x86emu-snap-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("a.snap");
    x86emu::snapshot::write_atomic(&file, &snap).unwrap();
    let at_snap = to_hex(&m.state_hash());
    run_to(&mut m, 100_000_000);
    let want = to_hex(&m.state_hash());

    let exe = env!("CARGO_BIN_EXE_x86emu");
    let info = Command::new(exe)
        .args(["snapshot-info", file.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&info.stdout);
    assert_eq!(info.status.code(), Some(0), "{text}");
    assert!(
        text.contains(&format!("state hash:      {at_snap}")),
        "{text}"
    );
    assert!(text.contains("instructions:    50000000"), "{text}");
    assert!(text.contains("RAM:             64 MiB"), "{text}");

    let out = Command::new(exe)
        .args(["resume", file.to_str().unwrap(), "--disk"])
        .arg(g.join("disk.img"))
        .args(["--display", "none", "--max-instructions", "50000000"])
        .arg("--print-state-hash")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(124), "{err}");
    assert!(
        err.contains(&format!("state hash {want} at instruction 100000000")),
        "{err}"
    );

    // Without the disk: a clear error and exit status 3.
    let out = Command::new(exe)
        .args(["resume", file.to_str().unwrap(), "--display", "none"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("machine configuration mismatch: IDE 0:0"),
        "{err}"
    );
    // A truncated file.
    std::fs::write(&file, &snap[..snap.len() - 1]).unwrap();
    let out = Command::new(exe)
        .args(["snapshot-info", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    std::fs::remove_dir_all(&dir).unwrap();
}
