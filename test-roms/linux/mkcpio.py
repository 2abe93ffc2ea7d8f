#!/usr/bin/env python3
"""Write a directory tree as a gzip-compressed newc cpio archive (a Linux initramfs).

    mkcpio.py ROOT OUT.cpio.gz [--node PATH:c|b:MAJOR:MINOR:MODE ...]

Deterministic: entries are sorted, every file is owned by root, timestamps are
SOURCE_DATE_EPOCH (default 0) and the gzip header carries no name or time, so the same
tree always gives the same bytes. Device nodes are added with --node (so building needs
no root and no mknod): the kernel opens /dev/console before /init runs, so an initramfs
needs that node before devtmpfs is mounted.
"""

import argparse
import gzip
import os
import stat
import sys


def header(ino, mode, nlink, mtime, size, rmajor, rminor, name):
    fields = [ino, mode, 0, 0, nlink, mtime, size, 0, 0, rmajor, rminor, len(name) + 1, 0]
    return b"070701" + b"".join(b"%08X" % f for f in fields)


def pad4(n):
    return (4 - n % 4) % 4


class Writer:
    def __init__(self, out, mtime):
        self.out = out
        self.mtime = mtime
        self.ino = 1
        self.count = 0

    def entry(self, name, mode, data=b"", rdev=(0, 0), nlink=1):
        bname = name.encode()
        hdr = header(self.ino, mode, nlink, self.mtime, len(data), rdev[0], rdev[1], bname)
        self.ino += 1
        self.count += 1
        self.out.write(hdr + bname + b"\0")
        self.out.write(b"\0" * pad4(len(hdr) + len(bname) + 1))
        self.out.write(data)
        self.out.write(b"\0" * pad4(len(data)))


def walk(root):
    """Yield (archive path, host path) for every entry under root, parents first, sorted."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = os.path.relpath(dirpath, root)
        if rel != ".":
            yield rel, dirpath
        # os.walk lists symlinks to directories in dirnames and does not descend into them
        links = [n for n in dirnames if os.path.islink(os.path.join(dirpath, n))]
        for n in sorted(filenames + links):
            yield os.path.normpath(os.path.join(rel, n)), os.path.join(dirpath, n)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root")
    ap.add_argument("out")
    ap.add_argument("--node", action="append", default=[],
                    help="device node PATH:c|b:MAJOR:MINOR:MODE (mode in octal)")
    args = ap.parse_args()

    mtime = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    if not os.path.isdir(args.root):
        sys.exit(f"mkcpio.py: {args.root} is not a directory")

    tmp = args.out + ".tmp"
    with open(tmp, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz:
            w = Writer(gz, mtime)
            seen = set()
            for arc, host in walk(args.root):
                st = os.lstat(host)
                perm = stat.S_IMODE(st.st_mode)
                if stat.S_ISLNK(st.st_mode):
                    w.entry(arc, stat.S_IFLNK | 0o777, os.readlink(host).encode())
                elif stat.S_ISDIR(st.st_mode):
                    w.entry(arc, stat.S_IFDIR | perm, nlink=2)
                elif stat.S_ISREG(st.st_mode):
                    with open(host, "rb") as f:
                        w.entry(arc, stat.S_IFREG | perm, f.read())
                else:
                    sys.exit(f"mkcpio.py: {host}: unsupported file type (use --node for devices)")
                seen.add(arc)
            for spec in args.node:
                try:
                    path, kind, major, minor, mode = spec.split(":")
                    ftype = {"c": stat.S_IFCHR, "b": stat.S_IFBLK}[kind]
                    arc = path.lstrip("/")
                    if os.path.dirname(arc) and os.path.dirname(arc) not in seen:
                        sys.exit(f"mkcpio.py: --node {spec}: parent directory is not in the tree")
                    w.entry(arc, ftype | int(mode, 8), rdev=(int(major), int(minor)))
                except (ValueError, KeyError):
                    sys.exit(f"mkcpio.py: bad --node {spec!r}: want PATH:c|b:MAJOR:MINOR:MODE")
            w.entry("TRAILER!!!", 0)
    os.replace(tmp, args.out)
    print(f"mkcpio.py: {w.count - 1} entries -> {args.out}")


if __name__ == "__main__":
    main()
