//! The Linux test guest built by `test-roms/linux/build.sh`, shared by the tests that
//! boot it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The guest directory: `$X86EMU_LINUX_GUEST_DIR`, else `target/linux-guest`. Panics,
/// saying how to build it, when any of its files is missing.
pub fn linux_guest_dir() -> PathBuf {
    let d = std::env::var_os("X86EMU_LINUX_GUEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/linux-guest"));
    for f in [
        "bzImage",
        "initrd.img",
        "disk.img",
        "grub.img",
        "boot.iso",
        "cmdline.txt",
    ] {
        assert!(
            d.join(f).exists(),
            "{} is missing: build the Linux test guest with `test-roms/linux/build.sh` \
             (or set X86EMU_LINUX_GUEST_DIR)",
            d.join(f).display()
        );
    }
    d
}
