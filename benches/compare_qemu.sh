#!/usr/bin/env bash
# Boot-to-shell wall time: x86emu against QEMU TCG, side by side, on the same guest.
#
#   benches/compare_qemu.sh            (from the repository root or anywhere inside it)
#
# Configurations (the Debian i386 test guest of test-roms/linux/build.sh):
#   direct  x86emu boot --kernel bzImage --initrd initrd.img --append "$(cat cmdline.txt)"
#           qemu-system-i386 -kernel bzImage -initrd initrd.img -append "..."
#   disk    x86emu boot disk.img  (SeaBIOS -> SYSLINUX -> Linux)
#           qemu-system-i386 -drive file=disk.img,format=raw,if=ide,snapshot=on
# QEMU runs with -machine pc -accel tcg,thread=single -cpu pentium3 -m 128 -nographic
# -serial stdio -no-reboot (plus -nodefaults -vga std -monitor none: the same device set
# as x86emu, i.e. VGA and the IDE disk, no NIC, no default CD-ROM drive).
#
# One boot is timed from just before the process starts to the first serial line that
# contains X86EMU-GUEST-READY (printed by the guest's /init right before its shell);
# then `poweroff -f` is typed (the process is killed if it does not exit). Runs are
# interleaved (x86emu, QEMU, x86emu, QEMU, ...) so that load from other processes hits
# both emulators alike. Reported: min and median wall time per emulator, the ratios
# x86emu/QEMU, the CPU time (user + system) each process used (on a loaded host a
# better measure of the work than wall time; QEMU may run device emulation in a second
# thread, x86emu is single-threaded), and the guest's own clock at READY (the timestamp
# of the last kernel message before it). x86emu's guest clock is its virtual time: instruction count
# (retired + fast-forwarded while halted) / 100 M/s, so guest seconds x 100 = millions of
# virtual instructions; QEMU's guest clock follows the host's wall clock.
#
# Environment:
#   RUNS=3               boots per configuration and emulator
#   MODES="direct disk"  which configurations
#   BOOT_TIMEOUT=600     seconds before one boot counts as failed
#   GUEST_DIR=target/linux-guest   bzImage, initrd.img, cmdline.txt, disk.img
#   X86EMU=target/release/x86emu   (build it with `cargo build --release`)
#   QEMU=/path/to/qemu-system-i386 use this QEMU instead of the unpacked Debian one
#   QEMU_CACHE=target/qemu-tcg     where Debian bookworm's qemu-system-x86 is unpacked
#
# QEMU comes from Debian's packages, unpacked with `dpkg -x` into $QEMU_CACHE (an
# installed qemu-utils 10 from backports blocks installing bookworm's qemu-system-x86):
# qemu-system-x86, -common (the TCG accelerator module), -data (option ROMs), plus the
# shared libraries `ldd` reports missing, run with LD_LIBRARY_PATH and QEMU_MODULE_DIR.
# SeaBIOS (bios-256k.bin, vgabios-stdvga.bin) comes from /usr/share/seabios, the same
# firmware x86emu uses. Nothing is installed system-wide; nothing under target/ is
# committed.
#
# Exit status: 0 if every boot reached the shell, 1 if one failed, 2 if a prerequisite
# is missing. Logs of every boot: target/compare_qemu/<mode>-<emulator>-<run>.log.
set -euo pipefail

die() { echo "compare_qemu: $*" >&2; exit 2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

RUNS=${RUNS:-3}
MODES=${MODES:-"direct disk"}
BOOT_TIMEOUT=${BOOT_TIMEOUT:-600}
GUEST_DIR=${GUEST_DIR:-target/linux-guest}
X86EMU=${X86EMU:-target/release/x86emu}
QEMU_CACHE=${QEMU_CACHE:-target/qemu-tcg}
LOG_DIR=target/compare_qemu
SEABIOS_DIR=/usr/share/seabios

[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive integer (got '$RUNS')"
[[ "$BOOT_TIMEOUT" =~ ^[1-9][0-9]*$ ]] || die "BOOT_TIMEOUT must be a positive integer"
for m in $MODES; do
    [[ "$m" == direct || "$m" == disk ]] || die "MODES: unknown configuration '$m' (direct, disk)"
done

# ---- prerequisites ------------------------------------------------------------------
command -v python3 >/dev/null || die "python3 is missing (apt-get install -y python3)"
[[ -x "$X86EMU" ]] || die "$X86EMU is missing: run 'cargo build --release' first"
for f in bzImage initrd.img cmdline.txt disk.img; do
    [[ -f "$GUEST_DIR/$f" ]] || die "$GUEST_DIR/$f is missing: build the guest with 'test-roms/linux/build.sh $GUEST_DIR'"
done
for f in bios-256k.bin vgabios-stdvga.bin; do
    [[ -f "$SEABIOS_DIR/$f" ]] || die "$SEABIOS_DIR/$f is missing (apt-get install -y seabios)"
done

# ---- QEMU ---------------------------------------------------------------------------
QEMU_ENV=()
QEMU_L=()
if [[ -n "${QEMU:-}" ]]; then
    [[ -x "$QEMU" ]] || die "QEMU=$QEMU is not an executable"
    QEMU_BIN=$QEMU
else
    QROOT=$QEMU_CACHE/root
    QEMU_BIN=$QROOT/usr/libexec/qemu-system-i386
    QLIBS="$ROOT/$QROOT/usr/lib/x86_64-linux-gnu:$ROOT/$QROOT/lib/x86_64-linux-gnu"
    missing_libs() {
        LD_LIBRARY_PATH=$QLIBS ldd "$QEMU_BIN" 2>/dev/null | awk '/not found/ { print $1 }' | sort -u
    }
    # Download Debian packages into the cache and unpack them.
    fetch() {
        mkdir -p "$QEMU_CACHE/debs" "$QROOT"
        echo "compare_qemu: fetching $* into $QEMU_CACHE" >&2
        (cd "$QEMU_CACHE/debs" && apt-get download "$@" >/dev/null 2>"../apt.err") ||
            die "'apt-get download $*' failed (see $QEMU_CACHE/apt.err); QEMU=/path/to/qemu-system-i386 uses another QEMU"
        local p deb
        for p in "$@"; do
            deb=$(ls -t "$QEMU_CACHE/debs/${p}"_*.deb 2>/dev/null | head -n1)
            [[ -n "$deb" ]] || die "apt-get download $p produced no .deb"
            dpkg -x "$deb" "$QROOT"
        done
    }
    if [[ ! -f "$QROOT/.complete" ]]; then
        command -v apt-get >/dev/null && command -v dpkg >/dev/null ||
            die "QEMU is not unpacked in $QEMU_CACHE and apt-get/dpkg are missing; set QEMU=/path/to/qemu-system-i386"
        fetch qemu-system-x86 qemu-system-common qemu-system-data
        [[ -x "$QEMU_BIN" ]] || die "$QEMU_BIN is missing after unpacking qemu-system-x86"
        # Shared libraries that are not installed: Debian names a library package after
        # its soname (libfoo.so.1 -> libfoo1, libnl-3.so.200 -> libnl-3-200). Libraries
        # may need further libraries, hence the rounds.
        for _round in 1 2 3 4 5; do
            libs=$(missing_libs)
            [[ -z "$libs" ]] && break
            pkgs=()
            for so in $libs; do
                base=${so%%.so.*}; ver=${so#*.so.}; ver=${ver%%.*}
                [[ "$base" =~ [0-9]$ ]] && pkgs+=("$base-$ver") || pkgs+=("$base$ver")
            done
            fetch "${pkgs[@]}"
        done
        libs=$(missing_libs)
        [[ -z "$libs" ]] || die "QEMU still misses shared libraries: $(echo $libs)"
        touch "$QROOT/.complete"
    fi
    QEMU_ENV=(env "LD_LIBRARY_PATH=$QLIBS" "QEMU_MODULE_DIR=$ROOT/$QROOT/usr/lib/x86_64-linux-gnu/qemu")
    QEMU_L=(-L "$QROOT/usr/share/qemu")
fi
QEMU_VERSION=$("${QEMU_ENV[@]}" "$QEMU_BIN" --version 2>&1 | head -n1) ||
    die "$QEMU_BIN does not run: $QEMU_VERSION"

# ---- the boots ----------------------------------------------------------------------
CMDLINE=$(cat "$GUEST_DIR/cmdline.txt")
QEMU_COMMON=("${QEMU_ENV[@]}" "$QEMU_BIN" "${QEMU_L[@]}" -L "$SEABIOS_DIR"
    -machine pc -accel tcg,thread=single -cpu pentium3 -m 128
    -nodefaults -vga std -nographic -monitor none -serial stdio -no-reboot)

boot_cmd() { # mode emulator -> the command line, NUL-separated on stdout
    local -a c
    case "$1/$2" in
        direct/x86emu) c=("$X86EMU" boot --kernel "$GUEST_DIR/bzImage" --initrd "$GUEST_DIR/initrd.img"
                          --append "$CMDLINE" --display none) ;;
        disk/x86emu)   c=("$X86EMU" boot "$GUEST_DIR/disk.img" --display none) ;;
        direct/qemu)   c=("${QEMU_COMMON[@]}" -kernel "$GUEST_DIR/bzImage" -initrd "$GUEST_DIR/initrd.img"
                          -append "$CMDLINE") ;;
        disk/qemu)     c=("${QEMU_COMMON[@]}" -drive "file=$GUEST_DIR/disk.img,format=raw,if=ide,snapshot=on") ;;
    esac
    printf '%s\0' "${c[@]}"
}

mkdir -p "$LOG_DIR"
RESULTS=$LOG_DIR/results.tsv
: >"$RESULTS"

# timeboot LOG TIMEOUT CMD... : prints "ok <wall s> <guest s> <cpu s>" or "fail <reason>".
timeboot() {
    python3 - "$@" <<'PY'
import os, re, resource, subprocess, sys, threading, time

log_path, timeout, cmd = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
stamp = re.compile(rb"^\[\s*(\d+\.\d+)\]")
log = open(log_path, "wb")
t0 = time.monotonic()
p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                     stderr=subprocess.STDOUT, start_new_session=True)
state = {"ready": None, "guest": None, "last_stamp": None}
ready_evt = threading.Event()

def reader():
    buf = b""
    for chunk in iter(lambda: os.read(p.stdout.fileno(), 65536), b""):
        log.write(chunk)
        buf += chunk
        *lines, buf = re.split(rb"\r?\n|\r", buf)
        for line in lines:
            m = stamp.match(line)
            if m and state["ready"] is None:
                state["last_stamp"] = float(m.group(1))
            if state["ready"] is None and b"X86EMU-GUEST-READY" in line:
                state["ready"] = time.monotonic() - t0
                state["guest"] = state["last_stamp"]
                ready_evt.set()
    ready_evt.set()

th = threading.Thread(target=reader, daemon=True)
th.start()
ready_evt.wait(timeout)

def stop():
    try:
        os.killpg(p.pid, 9)
    except ProcessLookupError:
        pass
    p.wait()

if state["ready"] is None:
    if p.poll() is None:
        stop()
        reason = "timeout after %ds" % timeout
    else:
        reason = "exit status %d before READY" % p.returncode
    th.join(5)
    print("fail", reason)
    sys.exit(0)
try:
    p.stdin.write(b"poweroff -f\n")
    p.stdin.flush()
except BrokenPipeError:
    pass
try:
    p.wait(60)
except subprocess.TimeoutExpired:
    stop()
th.join(5)
log.close()
g = state["guest"]
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print("ok %.3f %s %.3f" % (state["ready"], "%.3f" % g if g is not None else "-",
                            ru.ru_utime + ru.ru_stime))
PY
}

EMUS="x86emu qemu"
FAILED=0
echo "x86emu:  $X86EMU (repo HEAD $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'))"
echo "QEMU:    $QEMU_BIN ($QEMU_VERSION)"
echo "guest:   $GUEST_DIR; $RUNS run(s) per configuration; timeout ${BOOT_TIMEOUT}s per boot"
echo "host:    $(nproc) CPU(s), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
printf '%-7s %-7s %4s  %s\n' mode emu run "result (wall s to READY, guest clock s, CPU s)"
for run in $(seq 1 "$RUNS"); do
    for mode in $MODES; do
        for emu in $EMUS; do
            mapfile -d '' cmd < <(boot_cmd "$mode" "$emu")
            log="$LOG_DIR/$mode-$emu-$run.log"
            res=$(timeboot "$log" "$BOOT_TIMEOUT" "${cmd[@]}")
            printf '%-7s %-7s %4s  %s\n' "$mode" "$emu" "$run" "$res"
            if [[ "$res" == ok* ]]; then
                read -r _ wall guest cpu <<<"$res"
                printf '%s\t%s\t%s\t%s\t%s\n' "$mode" "$emu" "$wall" "$guest" "$cpu" >>"$RESULTS"
            else
                FAILED=1
                echo "        last lines of $log:"
                tail -n 15 "$log" | tr -d '\r' | sed 's/^/        | /'
            fi
        done
    done
done

echo
python3 - "$RESULTS" "$MODES" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
modes = sys.argv[2].split()
def vals(mode, emu, col):
    return [float(r[col]) for r in rows if r[0] == mode and r[1] == emu and r[col] != "-"]
hdr = "%-7s %-9s %4s %9s %9s %9s %9s" % ("mode", "emulator", "runs", "min s", "median s",
                                        "CPU s", "guest s")
print(hdr)
print("-" * len(hdr))
ratios = []
for mode in modes:
    st = {}
    for emu, name in (("x86emu", "x86emu"), ("qemu", "qemu-tcg")):
        w, g, c = vals(mode, emu, 2), vals(mode, emu, 3), vals(mode, emu, 4)
        if w:
            st[emu] = (min(w), statistics.median(w), statistics.median(c))
            print("%-7s %-9s %4d %9.2f %9.2f %9.2f %9s" % (mode, name, len(w), st[emu][0],
                  st[emu][1], st[emu][2], "%.2f" % statistics.median(g) if g else "-"))
        else:
            print("%-7s %-9s %4d %9s %9s %9s %9s" % (mode, name, 0, "-", "-", "-", "-"))
    if len(st) == 2:
        x, q = st["x86emu"], st["qemu"]
        ratios.append("%-7s x86emu/QEMU wall: %5.2fx (min) %5.2fx (median);  CPU: %5.2fx (median)"
                      % (mode, x[0] / q[0], x[1] / q[1], x[2] / q[2]))
print()
print("\n".join(ratios) if ratios else "no ratio: a configuration has no successful boot")
print("min/median s: wall time from process start to READY; CPU s: median user+system time")
print("of the whole process (boot plus the short power-off); guest s: median guest clock at")
print("READY (last kernel timestamp before it), for x86emu its virtual time: x 100 = millions")
print("of virtual instructions (retired, plus fast-forwarded while halted).")
PY
if [[ $FAILED -ne 0 ]]; then
    echo "compare_qemu: some boots failed (logs in $LOG_DIR)" >&2
    exit 1
fi
