#!/usr/bin/env python3
"""mkcpio.py: write an uncompressed newc cpio archive from a file list.

Usage: mkcpio.py OUTPUT < LIST

LIST uses the format of the kernel's usr/gen_init_cpio (one entry a line,
'#' comments; see Documentation/filesystems/ramfs-rootfs-initramfs.rst):
  dir   <name> <mode> <uid> <gid>
  file  <name> <source> <mode> <uid> <gid>
  slink <name> <target> <mode> <uid> <gid>
  nod   <name> <mode> <uid> <gid> <c|b> <major> <minor>
Device nodes are written into the archive, never created on disk, so this
needs no privileges. Every mtime is 0, so the same inputs give the same bytes.
Format: "New ASCII Format" in cpio(5), as read by init/initramfs.c.
"""

import stat
import sys

TYPES = {"dir": stat.S_IFDIR, "file": stat.S_IFREG, "slink": stat.S_IFLNK, "nod": 0}


def pad4(n):
    return (4 - n % 4) % 4


class Writer:
    def __init__(self, out):
        self.out = out
        self.ino = 721  # arbitrary start, like gen_init_cpio

    def entry(self, name, mode, uid=0, gid=0, nlink=1, data=b"", rmaj=0, rmin=0):
        # The kernel unpacks names relative to /, without a leading slash.
        name = name.lstrip("/").encode() + b"\0"
        fields = (self.ino, mode, uid, gid, nlink, 0, len(data), 0, 0, rmaj, rmin, len(name), 0)
        self.ino += 1
        hdr = b"070701" + b"".join(b"%08X" % f for f in fields)
        self.out.write(hdr + name + b"\0" * pad4(len(hdr) + len(name)))
        self.out.write(data + b"\0" * pad4(len(data)))


def parse(w, lineno, words):
    kind = words[0]
    if kind not in TYPES:
        raise ValueError(f"line {lineno}: unknown entry type {kind!r}")
    if kind == "dir":
        name, mode, uid, gid = words[1:5]
        w.entry(name, stat.S_IFDIR | int(mode, 8), int(uid), int(gid), nlink=2)
    elif kind == "file":
        name, src, mode, uid, gid = words[1:6]
        with open(src, "rb") as f:
            data = f.read()
        w.entry(name, stat.S_IFREG | int(mode, 8), int(uid), int(gid), data=data)
    elif kind == "slink":
        name, target, mode, uid, gid = words[1:6]
        w.entry(name, stat.S_IFLNK | int(mode, 8), int(uid), int(gid), data=target.encode())
    else:
        name, mode, uid, gid, dtype, major, minor = words[1:8]
        if dtype not in ("c", "b"):
            raise ValueError(f"line {lineno}: device type must be c or b")
        ftype = stat.S_IFCHR if dtype == "c" else stat.S_IFBLK
        w.entry(name, ftype | int(mode, 8), int(uid), int(gid), rmaj=int(major), rmin=int(minor))


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    with open(sys.argv[1], "wb") as out:
        w = Writer(out)
        for lineno, line in enumerate(sys.stdin, 1):
            words = line.split("#", 1)[0].split()
            if words:
                try:
                    parse(w, lineno, words)
                except (ValueError, OSError) as e:
                    sys.exit(f"mkcpio: line {lineno}: {e}")
        w.entry("TRAILER!!!", 0)


if __name__ == "__main__":
    main()
