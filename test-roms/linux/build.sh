#!/usr/bin/env bash
# Build the x86emu Linux test guest from Debian bookworm i386 packages.
#
#   test-roms/linux/build.sh [OUTDIR]        (default OUTDIR: target/linux-guest)
#
# Produces in OUTDIR:
#   bzImage      Debian's linux-image-6.1.0-*-686 kernel (non-PAE; needs FPU, CMPXCHG8B, CMOV)
#   initrd.img   gzip newc cpio: busybox-static (i386), /init (test-roms/linux/init),
#                the disk/CD kernel modules with modules.dep
#   cmdline.txt  the kernel command line for direct boot (one line)
#   disk.img     raw disk: MBR (syslinux mbr.bin) + one bootable FAT16 partition at 1 MiB
#                with syslinux, bzImage, initrd.img and syslinux.cfg (serial on COM1)
#   grub.img     raw disk: MBR (GRUB 2 boot.img) + GRUB core.img in the gap before 1 MiB +
#                one FAT16 partition at 1 MiB with bzImage, initrd.img and /boot/grub/grub.cfg
#                (serial on COM1); the core embeds every module it needs, so the partition
#                holds no GRUB modules
#   boot.iso     El Torito ISO (isolinux, no emulation) with the same kernel, initrd, cmdline
#   SHA256SUMS   sha256 of the above
#
# Needs: root with apt-get (to add the i386 architecture to apt's lists, download the .debs
# and install missing host tools), python3, and network access to Debian's archive. i386
# packages are only downloaded and unpacked with dpkg-deb, never installed. Set
# X86EMU_NO_APT_INSTALL=1 to make missing host tools an error instead of installing them.
# Downloads are cached in OUTDIR/cache; running it again re-uses them and rebuilds the
# outputs (about 30 s). The outputs are reproducible: the same packages give the same
# bytes (fixed timestamps from SOURCE_DATE_EPOCH, fixed volume and disk ids).
#
# The guest's serial protocol (markers, prompt) is described in test-roms/linux/init.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="${1:-$repo/target/linux-guest}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
cache="$out/cache"
# Reproducible outputs: fixed timestamps for mkcpio.py, mtools, mkfs.fat and xorriso.
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-1700000000}"
work="$out/work"
mkdir -p "$cache"

die() { echo "test-roms/linux/build.sh: error: $*" >&2; exit 1; }
say() { echo "== $*"; }

# ---------------------------------------------------------------------------- host tools
# tool -> Debian package that provides it
declare -A tool_pkg=(
    [apt-get]=apt [dpkg]=dpkg [dpkg-deb]=dpkg [python3]=python3 [sfdisk]=fdisk
    [mkfs.fat]=dosfstools [mcopy]=mtools [mmd]=mtools [syslinux]=syslinux
    [xorriso]=xorriso [depmod]=kmod [modinfo]=kmod [sha256sum]=coreutils
    [grub-mkimage]=grub-common
)
declare -A file_pkg=(
    [/usr/lib/syslinux/mbr/mbr.bin]=syslinux-common
    [/usr/lib/syslinux/modules/bios/ldlinux.c32]=syslinux-common
    [/usr/lib/ISOLINUX/isolinux.bin]=isolinux
    [/usr/lib/grub/i386-pc/boot.img]=grub-pc-bin
)
missing=()
for t in "${!tool_pkg[@]}"; do
    command -v "$t" >/dev/null 2>&1 || PATH="$PATH:/usr/sbin:/sbin" command -v "$t" >/dev/null 2>&1 \
        || missing+=("${tool_pkg[$t]}")
done
for f in "${!file_pkg[@]}"; do
    [ -e "$f" ] || missing+=("${file_pkg[$f]}")
done
export PATH="$PATH:/usr/sbin:/sbin"
if [ ${#missing[@]} -gt 0 ]; then
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    if [ "${X86EMU_NO_APT_INSTALL:-0}" = 1 ] || [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        die "missing host tools; install the Debian packages: apt-get install ${missing[*]}"
    fi
    say "installing host tools: ${missing[*]}"
    apt-get update -qq || echo "warning: apt-get update reported errors (continuing)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
        || die "apt-get install ${missing[*]} failed"
fi

# ------------------------------------------------------------------ i386 package lists
if ! dpkg --print-foreign-architectures | grep -qx i386; then
    [ "$(id -u)" = 0 ] || die "apt does not know the i386 architecture; as root run: dpkg --add-architecture i386 && apt-get update"
    say "adding the i386 architecture to apt (lists only; nothing i386 is installed)"
    dpkg --add-architecture i386
    apt-get update -qq || echo "warning: apt-get update reported errors (continuing)" >&2
fi
if ! apt-cache show busybox-static:i386 >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        say "apt has no i386 package lists yet: apt-get update"
        apt-get update -qq || echo "warning: apt-get update reported errors (continuing)" >&2
    fi
    apt-cache show busybox-static:i386 >/dev/null 2>&1 \
        || die "apt cannot find busybox-static:i386 (is Debian's archive reachable? run apt-get update)"
fi

# ----------------------------------------------------------------- choose the kernel
# The newest linux-image-6.1.0-N-686 (non-PAE): the linux-image-686 metapackage names it;
# if the metapackage is unavailable, take the highest N apt knows. X86EMU_KERNEL_PKG
# overrides.
kpkg="${X86EMU_KERNEL_PKG:-}"
if [ -z "$kpkg" ]; then
    kpkg="$(apt-cache depends linux-image-686:i386 2>/dev/null \
        | sed -n 's/^ *Depends: \(linux-image-6\.1\.0-[0-9]*-686\)\(:i386\)\?$/\1/p' | head -1)"
fi
if [ -z "$kpkg" ]; then
    kpkg="$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-686$' | awk '{print $1}' \
        | sort -V | tail -1)"
fi
[ -n "$kpkg" ] || die "no linux-image-6.1.0-*-686 package found for i386 (apt-get update?)"
kver="${kpkg#linux-image-}"   # e.g. 6.1.0-50-686
case "$kver" in *-686) ;; *) die "kernel package $kpkg is not a -686 (non-PAE) flavour" ;; esac

# ----------------------------------------------------------------------- downloads
# fetch PKG -> prints the path of the cached .deb (downloaded if not cached yet)
fetch() {
    local pkg="$1" ver deb
    ver="$(apt-cache show --no-all-versions "$pkg:i386" 2>/dev/null | sed -n 's/^Version: //p' | head -1)"
    [ -n "$ver" ] || die "apt knows no i386 package $pkg"
    deb="$cache/${pkg}_${ver//:/%3a}_i386.deb"
    if [ ! -s "$deb" ]; then
        echo "   downloading $pkg:i386 $ver" >&2
        # apt's sandbox user may not write into $cache; download in a temp dir we own
        local tmp; tmp="$(mktemp -d)"
        ( cd "$tmp" && apt-get download -qq "$pkg:i386=$ver" >/dev/null 2>"$tmp/err" ) \
            || { cat "$tmp/err" >&2; rm -rf "$tmp"; die "apt-get download $pkg:i386=$ver failed"; }
        local got; got="$(ls "$tmp"/*.deb 2>/dev/null | head -1)"
        [ -n "$got" ] || { rm -rf "$tmp"; die "apt-get download $pkg:i386 produced no .deb"; }
        mv "$got" "$deb.part" && mv "$deb.part" "$deb"
        rm -rf "$tmp"
    fi
    dpkg-deb --info "$deb" >/dev/null 2>&1 || { rm -f "$deb"; die "$deb is not a valid .deb (removed; run again)"; }
    echo "$deb"
}

say "kernel package: $kpkg"
kdeb="$(fetch "$kpkg")"
bdeb="$(fetch busybox-static)"

rm -rf "$work"
mkdir -p "$work/kernel" "$work/busybox"
say "unpacking $(basename "$kdeb")"
# Only the kernel, its config and the module folders the guest may need (the whole
# package is 180 MB unpacked; writing and deleting that is most of a rebuild's time).
dpkg-deb --fsys-tarfile "$kdeb" | tar -x -C "$work/kernel" --wildcards \
    "./boot/vmlinuz-$kver" "./boot/config-$kver" "./lib/modules/$kver/modules.*" \
    "./lib/modules/$kver/kernel/drivers/ata/*" "./lib/modules/$kver/kernel/drivers/scsi/*" \
    "./lib/modules/$kver/kernel/drivers/cdrom/*" "./lib/modules/$kver/kernel/fs/isofs/*" \
    "./lib/modules/$kver/kernel/fs/fat/*" "./lib/modules/$kver/kernel/fs/nls/*" \
    "./lib/modules/$kver/kernel/lib/*" "./lib/modules/$kver/kernel/block/*" \
    "./lib/modules/$kver/kernel/crypto/*" \
    || die "unpacking $kdeb failed (does it ship boot/vmlinuz-$kver and lib/modules/$kver?)"
dpkg-deb -x "$bdeb" "$work/busybox"
vmlinuz="$work/kernel/boot/vmlinuz-$kver"
[ -f "$vmlinuz" ] || die "$kdeb has no boot/vmlinuz-$kver"
kconfig="$work/kernel/boot/config-$kver"
moddir="$work/kernel/lib/modules/$kver"
[ -d "$moddir" ] || die "$kdeb has no lib/modules/$kver"
[ -x "$work/busybox/bin/busybox" ] || die "$bdeb has no bin/busybox"

# ------------------------------------------------------------------- kernel modules
# The drivers the disk and CD tests need, when the kernel has them as modules (=m);
# built-in (=y) ones need nothing. Dependencies are added from the modules' own
# "depends" lists, and depmod writes modules.dep for busybox's modprobe.
#   ata_piix: the PIIX3 IDE function; ata_generic: any other PCI IDE controller
#   sd_mod/sr_mod: ATA disks / ATAPI CD-ROMs as /dev/sd* and /dev/sr*
#   isofs, vfat (+nls): mount the boot ISO and the boot disk's FAT partition
want_modules=(ata_piix ata_generic sd_mod sr_mod isofs vfat nls_cp437 nls_ascii nls_utf8
    crct10dif_generic)
config_of() { sed -n "s/^CONFIG_$1=\(.*\)/\1/p" "$kconfig"; }
for opt in BLK_DEV_INITRD RD_GZIP DEVTMPFS SERIAL_8250 SERIAL_8250_CONSOLE; do
    [ "$(config_of "$opt")" = y ] || die "kernel $kver lacks CONFIG_$opt=y, which the guest needs"
done

declare -A modpath=()
while IFS= read -r f; do
    n="$(basename "$f" .ko)"; modpath[${n//-/_}]="$f"
done < <(find "$moddir/kernel" -name '*.ko')
declare -A chosen=()
order=()
add_module() {   # depth-first: dependencies first
    local m="${1//-/_}" d
    [ -n "${chosen[$m]:-}" ] && return 0
    local f="${modpath[$m]:-}"
    [ -n "$f" ] || return 1
    chosen[$m]=1
    for d in $(modinfo -F depends "$f" | tr ',' ' '); do
        add_module "$d" || die "module $m depends on $d, which $kpkg does not ship"
    done
    order+=("$m")
}
boot_modules=()
for m in "${want_modules[@]}"; do
    if add_module "$m"; then boot_modules+=("$m"); fi
done

# ------------------------------------------------------------------------- initramfs
say "building initrd.img"
root="$work/initramfs"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,mnt,root}
chmod 1777 "$root/tmp"
cp "$work/busybox/bin/busybox" "$root/bin/busybox"
install -m 0755 "$here/init" "$root/init"
mdest="$root/lib/modules/$kver"
mkdir -p "$mdest"
for m in "${order[@]}"; do
    rel="${modpath[$m]#"$moddir"/}"
    mkdir -p "$mdest/$(dirname "$rel")"
    cp "${modpath[$m]}" "$mdest/$rel"
done
cp "$moddir/modules.order" "$moddir/modules.builtin" "$mdest/" 2>/dev/null || true
[ -f "$moddir/modules.builtin.modinfo" ] && cp "$moddir/modules.builtin.modinfo" "$mdest/"
depmod -b "$root" "$kver" || die "depmod failed"
printf '%s\n' "${boot_modules[@]}" > "$root/etc/x86emu-modules"
echo "x86emu-guest" > "$root/etc/hostname"
python3 "$here/mkcpio.py" "$root" "$out/initrd.img.tmp" \
    --node /dev/console:c:5:1:600 --node /dev/null:c:1:3:666 --node /dev/ttyS0:c:4:64:660 >/dev/null
mv "$out/initrd.img.tmp" "$out/initrd.img"
cp "$vmlinuz" "$out/bzImage.tmp" && mv "$out/bzImage.tmp" "$out/bzImage"

# -------------------------------------------------------------------- command line
# Kept in one place: cmdline.txt is what direct boot should pass, and the boot loaders on
# the disk and the ISO use the same line.
#   console=tty0 console=ttyS0,115200
#       kernel messages on the VGA text console and on COM1; the last console= becomes
#       /dev/console, so the serial line is the system console (/init also talks to
#       /dev/ttyS0 directly)
#   earlyprintk=serial,ttyS0,115200
#       messages from the first moments of boot, before the 8250 driver registers, go
#       to COM1 by polled writes: a kernel that dies early still says why
#   nokaslr
#       no randomised physical/virtual placement: addresses in oopses and traces match
#       System.map, and the decompressor does not spend time choosing a location
#   cryptomgr.notests
#       skip the crypto self-tests (a large share of boot time when emulated)
#   no_timer_check
#       do not verify that the IO-APIC timer interrupt works by counting ticks; the check
#       is timing-sensitive and needless on a known platform
#   tsc=reliable
#       trust the TSC (ours counts retired instructions: monotonic, stable): no clocksource
#       watchdog and no TSC synchronisation checks
#   mitigations=off
#       no speculative-execution mitigations (page-table isolation, retpoline-style
#       thunks, buffer clearing): they only slow an emulated test guest down
#   panic=-1
#       reboot at once on a panic instead of hanging: the machine sees a reset
cmdline="console=tty0 console=ttyS0,115200 earlyprintk=serial,ttyS0,115200 nokaslr cryptomgr.notests no_timer_check tsc=reliable mitigations=off panic=-1"
echo "$cmdline" > "$out/cmdline.txt"

loader_cfg() {   # $1: path prefix of the kernel and initrd
    cat <<EOF
SERIAL 0 115200
DEFAULT linux
PROMPT 0
TIMEOUT 0
SAY x86emu test guest: booting Linux $kver
LABEL linux
    KERNEL $1bzImage
    INITRD $1initrd.img
    APPEND $cmdline
EOF
}

# ------------------------------------------------------------------------- disk.img
# MBR + one FAT16 partition from sector 2048 to the end, marked active; syslinux writes
# its boot sector and ldlinux.sys through mtools (no mount, no loop device).
say "building disk.img"
disk="$out/disk.img.tmp"
rm -f "$disk"
disk_mib=48
truncate -s "${disk_mib}M" "$disk"
echo 'label: dos
label-id: 0x5838364d
start=2048, type=e, bootable' | sfdisk --quiet "$disk" >/dev/null
part_sectors=$(( disk_mib * 2048 - 2048 ))
mkfs.fat -F 16 -n X86EMU -i 5838364d --invariant --offset 2048 -h 2048 "$disk" $(( part_sectors / 2 )) >/dev/null \
    || die "mkfs.fat failed"
export MTOOLS_SKIP_CHECK=1
img="$disk@@1M"
loader_cfg / > "$work/syslinux.cfg"
mcopy -i "$img" "$out/bzImage" ::/bzImage
mcopy -i "$img" "$out/initrd.img" ::/initrd.img
mcopy -i "$img" "$work/syslinux.cfg" ::/syslinux.cfg
mcopy -i "$img" "$out/cmdline.txt" ::/cmdline.txt
syslinux --install --offset $(( 2048 * 512 )) "$disk" || die "syslinux --install failed"
dd if=/usr/lib/syslinux/mbr/mbr.bin of="$disk" bs=440 count=1 conv=notrunc status=none
mdir -a -b -i "$img" ::/ | grep -qi ldlinux.sys || die "syslinux did not install ldlinux.sys"
mv "$disk" "$out/disk.img"

# ------------------------------------------------------------------------- grub.img
# The same layout as disk.img, booted by GRUB 2 instead of SYSLINUX, without mounting and
# without grub-install/grub-bios-setup (they want a block device): core.img goes at sector
# 1, where both boot.img's kernel_sector and diskboot.img's first blocklist entry already
# point by default (LBA 1 and 2), so only the 440 bytes of boot code are copied into the
# MBR, keeping the partition table and disk id. The core embeds the modules, and its
# prefix names the partition, so it needs nothing else from the disk but grub.cfg.
say "building grub.img"
grubdir=/usr/lib/grub/i386-pc
disk="$out/grub.img.tmp"
rm -f "$disk"
truncate -s "${disk_mib}M" "$disk"
echo 'label: dos
label-id: 0x5838364e
start=2048, type=e, bootable' | sfdisk --quiet "$disk" >/dev/null
mkfs.fat -F 16 -n X86EMU -i 5838364e --invariant --offset 2048 -h 2048 "$disk" $(( part_sectors / 2 )) >/dev/null \
    || die "mkfs.fat failed"
grub-mkimage -O i386-pc -d "$grubdir" -p '(hd0,msdos1)/boot/grub' -o "$work/core.img" \
    biosdisk part_msdos fat normal configfile linux boot echo serial terminal test \
    || die "grub-mkimage failed"
core_sectors=$(( ($(stat -c %s "$work/core.img") + 511) / 512 ))
[ "$core_sectors" -le 2047 ] || die "GRUB core.img ($core_sectors sectors) does not fit before 1 MiB"
cat > "$work/grub.cfg" <<EOF
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=0
set default=0
echo 'x86emu test guest: GRUB booting Linux $kver'
menuentry 'x86emu test guest: Linux $kver' {
    linux /bzImage $cmdline
    initrd /initrd.img
}
EOF
img="$disk@@1M"
mmd -i "$img" ::/boot ::/boot/grub
mcopy -i "$img" "$work/grub.cfg" ::/boot/grub/grub.cfg
mcopy -i "$img" "$out/bzImage" ::/bzImage
mcopy -i "$img" "$out/initrd.img" ::/initrd.img
mcopy -i "$img" "$out/cmdline.txt" ::/cmdline.txt
dd if="$grubdir/boot.img" of="$disk" bs=440 count=1 conv=notrunc status=none
dd if="$work/core.img" of="$disk" bs=512 seek=1 conv=notrunc status=none
mv "$disk" "$out/grub.img"

# ------------------------------------------------------------------------- boot.iso
say "building boot.iso"
iso="$work/iso"
mkdir -p "$iso/isolinux"
cp /usr/lib/ISOLINUX/isolinux.bin /usr/lib/syslinux/modules/bios/ldlinux.c32 "$iso/isolinux/"
loader_cfg / > "$iso/isolinux/isolinux.cfg"
cp "$out/bzImage" "$out/initrd.img" "$out/cmdline.txt" "$iso/"
find "$iso" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
xorriso -as mkisofs -quiet -o "$out/boot.iso.tmp" -V X86EMU -R -J \
    -b isolinux/isolinux.bin -c isolinux/boot.cat -no-emul-boot -boot-load-size 4 -boot-info-table \
    "$iso" 2>"$work/xorriso.log" || { cat "$work/xorriso.log" >&2; die "xorriso failed"; }
mv "$out/boot.iso.tmp" "$out/boot.iso"

# -------------------------------------------------------------------------- summary
rm -rf "$work"
( cd "$out" && sha256sum bzImage initrd.img cmdline.txt disk.img grub.img boot.iso > SHA256SUMS )
say "built the x86emu Linux test guest in $out (kernel $kver, busybox $(basename "$bdeb" | cut -d_ -f2 | sed 's/%3a/:/'))"
printf '   modules: %s\n' "${order[*]}"
while read -r sum name; do
    printf '   %-12s %10d bytes  sha256 %s\n' "$name" "$(stat -c %s "$out/$name")" "$sum"
done < "$out/SHA256SUMS"
printf '   cmdline: %s\n' "$cmdline"
