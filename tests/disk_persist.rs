//! Disk images are never modified unless the user asks (`boot --persist`); with it the
//! guest's writes reach the image when the run ends, and a snapshot taken against the old
//! image is refused against the new one (disk identity = size + SHA-256 of the content).
//! The guest is the golden test ROM (`test-roms/golden.asm`), which writes sector 1.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use x86emu::devices::ide::IdeDrives;
use x86emu::disk::{CowDisk, MemDisk};
use x86emu::machine::{BootSource, PcConfig, PcMachine};

fn rom_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden-rom.bin")
}

fn image() -> Vec<u8> {
    (0..64 << 10)
        .map(|i: u32| (i * 7 + i / 512) as u8)
        .collect()
}

fn boot(disk: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_x86emu"))
        .arg("boot")
        .arg(disk)
        .arg("--bios")
        .arg(rom_path())
        .args(["-m", "2", "--display", "none", "--no-realtime"])
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code(), text)
}

fn machine(disk: Vec<u8>) -> PcMachine {
    let mut drives = IdeDrives::new();
    drives
        .attach_hard_disk(0, 0, Box::new(CowDisk::new(Box::new(MemDisk::new(disk)))))
        .unwrap();
    let config = PcConfig {
        ram_size: 2 << 20,
        ..PcConfig::default()
    };
    PcMachine::new(
        config,
        BootSource::Bios(std::fs::read(rom_path()).unwrap()),
        drives,
    )
    .unwrap()
}

#[test]
fn images_change_only_with_persist_and_old_snapshots_are_refused_after() {
    let dir = std::env::temp_dir().join(format!("x86emu-persist-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let disk = dir.join("disk.img");
    let original = image();
    std::fs::write(&disk, &original).unwrap();

    // Without --persist the guest writes sector 1 (and reads it back) but the file stays.
    let (code, text) = boot(&disk, &[]);
    assert!(text.contains("golden: done"), "{text}");
    assert_eq!(code.map(|c| c & 1), Some(1), "debug-exit: {text}");
    assert_eq!(std::fs::read(&disk).unwrap(), original);

    // A snapshot of a machine with the original image, mid-run.
    let mut m = machine(original.clone());
    let _ = m.run(30_000_000);
    let snap = m.save_snapshot();

    // With --persist the image holds the guest's sector 1 afterwards, nothing else.
    let (code2, text2) = boot(&disk, &["--persist"]);
    assert_eq!(code2, code, "{text2}");
    assert!(
        text2.contains("wrote the guest's changes into 1 disk image"),
        "{text2}"
    );
    let now = std::fs::read(&disk).unwrap();
    let pattern = b"x86emu golden snapshot sector. ";
    let want: Vec<u8> = pattern.iter().copied().cycle().take(512).collect();
    assert_eq!(&now[512..1024], &want[..]);
    assert_eq!(now[..512], original[..512]);
    assert_eq!(now[1024..], original[1024..]);

    // The old snapshot no longer matches the image.
    let mut m2 = machine(now);
    let e = m2.restore_snapshot(&snap).unwrap_err().to_string();
    assert!(
        e.starts_with(
            "machine configuration mismatch: IDE 0:0: the snapshot had a hard disk image of 65536 bytes (SHA-256 "
        ) && e.ends_with("attach the same images"),
        "{e}"
    );
    let mut m3 = machine(original);
    m3.restore_snapshot(&snap).unwrap();

    // --persist does not combine with checkpoints (they need the image as it was).
    let (code, text) = boot(
        &disk,
        &["--persist", "--snapshot-dir", dir.to_str().unwrap()],
    );
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("cannot be used with"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}
