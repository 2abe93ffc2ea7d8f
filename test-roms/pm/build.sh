#!/usr/bin/env bash
# Assemble the protected-mode conformance ROMs into test-roms/pm/build/NAME.bin (needs `nasm`,
# Debian package `nasm`). Run one with: x86emu run-rom test-roms/pm/build/seg.bin
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
command -v nasm >/dev/null || { echo "test-roms/pm/build.sh: nasm not found: apt-get install nasm" >&2; exit 1; }
mkdir -p "$here/build"
for src in "$here"/*.asm; do
    name="$(basename "$src" .asm)"
    nasm -f bin -I "$here/" -o "$here/build/$name.bin" "$src"
    echo "built test-roms/pm/build/$name.bin"
done
