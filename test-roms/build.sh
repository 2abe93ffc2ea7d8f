#!/usr/bin/env bash
# Assemble every test ROM in this folder into test-roms/build/NAME.bin (needs `nasm`,
# Debian package `nasm`).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
command -v nasm >/dev/null || { echo "test-roms/build.sh: nasm not found: apt-get install nasm" >&2; exit 1; }
mkdir -p "$here/build"
for src in "$here"/*.asm; do
    name="$(basename "$src" .asm)"
    nasm -f bin -o "$here/build/$name.bin" "$src"
    echo "built test-roms/build/$name.bin"
done
