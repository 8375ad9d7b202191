#!/usr/bin/env python3
"""virtio-mmio devices under `mvm run`: the virtio_blk and virtio_console test guests, disk
options and image locking, and durability across a SIGKILL. One case per CTest test.

Usage: test_virtio.py MVM GUEST_DIR CASE
"""
import ctypes
import fcntl
import hashlib
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mvmtest  # noqa: E402

MVM_EXIT_USAGE = 64
SECTOR = 512


def guest(name):
    return mvmtest.guest_path(GUEST_DIR, name)


def pattern(seed, sector):
    """What virtio_blk.c writes: byte j of sector s."""
    return bytes((seed * 29 + sector * 131 + j * 7 + (j >> 8)) & 0xff for j in range(SECTOR))


def image(tmp, name, size, fill=None):
    path = os.path.join(tmp, name)
    with open(path, "wb") as f:
        if fill is None:
            f.truncate(size)
        else:
            f.write(fill * (size // len(fill)))
    return path


def read_sectors(path, first, count):
    with open(path, "rb") as f:
        f.seek(first * SECTOR)
        return f.read(count * SECTOR)


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def page_cache(path, off=0, length=0):
    """(cached, dirty or under writeback) pages of [off, off + length) of the file (length 0:
    to its end) in the host page cache, from cachestat(2) (Linux 6.5), or None when the
    kernel cannot say."""
    libc = ctypes.CDLL(None, use_errno=True)
    rng = (ctypes.c_uint64 * 2)(off, length)
    cs = (ctypes.c_uint64 * 5)()
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.syscall(451, fd, rng, cs, 0) < 0:  # __NR_cachestat on x86-64
            return None
    finally:
        os.close(fd)
    return cs[0], cs[1] + cs[2]


def case_blk(c):
    """One writable disk: the guest's checks and hostile chains, then the data on the host."""
    with tempfile.TemporaryDirectory() as tmp:
        img = image(tmp, "disk.img", 1 << 20)
        r = mvmtest.run(MVM, ["run", "-k", guest("virtio_blk"), "-d", f"{img},id=mvm-disk0",
                              "-p", "cap0=2048 id0=mvm-disk0"], timeout=240)
        mvmtest.guest_passed(c, r, "virtio_blk")
        c.check("DISK 0 at 0xd0000000 irq 5" in r.out,
                "the guest found the device on the kernel command line", r)
        c.check(r.out.count("HOSTILE ") >= 13, "every hostile chain ran", r)
        c.check("needs a reset" in r.err, "mvm logged the guest error", r)
        c.check(r.err.count("guest error") == 1, "and only once", r)
        want = b"".join(pattern(1, s) for s in range(8, 16))
        c.check(read_sectors(img, 8, 8) == want, "the pattern is in sectors 8-15 of the image")
        c.check(read_sectors(img, 32, 4) == bytes(4 * SECTOR), "write-zeroes left zeroes")


def case_blk_direct(c):
    """The same disk checks with ,direct (O_DIRECT), on the build tree's file system."""
    base = os.path.dirname(os.path.abspath(GUEST_DIR))  # the build tree: a disk file system
    with tempfile.TemporaryDirectory(dir=base) as tmp:
        img = image(tmp, "disk.img", 1 << 20)
        r = mvmtest.run(MVM, ["run", "-k", guest("virtio_blk"), "-d", f"{img},direct,id=d0",
                              "-p", "cap0=2048 id0=d0"], timeout=240)
        if "does not support O_DIRECT" in r.err:
            mvmtest.skip(f"{base} has no O_DIRECT")
        mvmtest.guest_passed(c, r, "virtio_blk on an O_DIRECT disk")
        # Before the host reads it: the pattern's write (one 4 KiB block) and its reads never
        # went through the host page cache. (Not the whole image: ext4 zeroes the partial
        # blocks of the guest's 2 KiB discard and write-zeroes in the page cache.)
        pc = page_cache(img, 8 * SECTOR, 8 * SECTOR)
        c.check(pc is not None and pc[0] == 0,
                f"the written block is not in the host page cache (cachestat: {pc})")
        want = b"".join(pattern(1, s) for s in range(8, 16))
        c.check(read_sectors(img, 8, 8) == want, "the pattern reached the image")


def case_blk_ro(c):
    """A read-only disk: offered as RO, writes fail with IOERR, the image is unchanged."""
    with tempfile.TemporaryDirectory() as tmp:
        img = image(tmp, "ro.img", 1 << 20, fill=b"mvm!")
        os.chmod(img, 0o444)
        before = sha(img)
        r = mvmtest.run(MVM, ["run", "-k", guest("virtio_blk"), "-d", f"{img},ro",
                              "-p", "cap0=2048 ro0=1"], timeout=240)
        mvmtest.guest_passed(c, r, "virtio_blk on a read-only disk")
        c.check("PASS d0-ro-write-refused" in r.out, "the write was refused", r)
        c.check(sha(img) == before, "the image is unchanged")


def case_blk_two(c):
    """Two disks at once, a writable and a read-only one, on their own windows and IRQs."""
    with tempfile.TemporaryDirectory() as tmp:
        a = image(tmp, "a.img", 2 << 20)
        b = image(tmp, "b,c.img", 1 << 20)  # a comma in the name: ",," on the command line
        r = mvmtest.run(MVM, ["run", "-k", guest("virtio_blk"), "-d", f"{a},id=first",
                              "-d", f"{b.replace(',', ',,')},ro,id=second",
                              "-p", "disks=2 cap0=4096 id0=first cap1=2048 id1=second ro1=1 "
                              "hostile=0"], timeout=240)
        mvmtest.guest_passed(c, r, "virtio_blk with two disks")
        c.check("DISK 0 at 0xd0000000 irq 5" in r.out and "DISK 1 at 0xd0001000 irq 6" in r.out,
                "two devices at their windows and IRQs", r)
        want = b"".join(pattern(1, s) for s in range(8, 16))
        c.check(read_sectors(a, 8, 8) == want, "disk 0 has its pattern")
        c.check(read_sectors(b, 8, 8) == bytes(8 * SECTOR), "the read-only disk is untouched")


def case_blk_errors(c):
    """Missing, locked and unusable images are usage errors before any guest runs."""
    with tempfile.TemporaryDirectory() as tmp:
        img = image(tmp, "disk.img", 1 << 20)
        tiny = image(tmp, "tiny.img", 100)
        hello = guest("hello")

        r = mvmtest.run(MVM, ["run", "-k", hello, "-d", os.path.join(tmp, "missing.img")])
        c.check(r.status == MVM_EXIT_USAGE, f"missing image: status 64 (got {r.status})", r)
        c.check("missing.img" in r.err and "No such file" in r.err, "missing: says so", r)
        c.check("Hello" not in r.out, "missing: the guest never ran", r)

        r = mvmtest.run(MVM, ["run", "-k", hello, "-d", tmp])
        c.check(r.status == MVM_EXIT_USAGE and tmp in r.err, "a directory is refused", r)
        r = mvmtest.run(MVM, ["run", "-k", hello, "-d", tiny])
        c.check(r.status == MVM_EXIT_USAGE and "smaller than one" in r.err,
                "an image smaller than a sector is refused", r)
        r = mvmtest.run(MVM, ["run", "-k", hello, "-d", f"{img},bogus"])
        c.check(r.status == MVM_EXIT_USAGE and "unknown option 'bogus'" in r.err,
                "an unknown disk option is a usage error", r)

        # A file mvm may not write suggests ",ro". Root's CAP_DAC_OVERRIDE would open it
        # anyway, so as root mvm runs without it (setpriv); without setpriv that case skips.
        no_dac = ["--bounding-set=-dac_override,-dac_read_search",
                  "--inh-caps=-dac_override,-dac_read_search"]
        ro_ran = os.geteuid() != 0 or shutil.which("setpriv") is not None
        os.chmod(img, 0o444)
        if os.geteuid() != 0:
            r = mvmtest.run(MVM, ["run", "-k", hello, "-d", img])
        elif ro_ran:
            r = mvmtest.run("setpriv", no_dac + mvmtest.command(MVM, ["run", "-k", hello,
                                                                     "-d", img]))
        if ro_ran:
            c.check(r.status == MVM_EXIT_USAGE and ",ro" in r.err,
                    "a read-only file suggests ,ro", r)
        os.chmod(img, 0o644)

        # Another process holds the image: a writer is refused, readers share.
        with open(img, "rb") as holder:
            fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
            r = mvmtest.run(MVM, ["run", "-k", hello, "-d", img])
            c.check(r.status == MVM_EXIT_USAGE and "locked" in r.err,
                    f"locked image: status 64 with 'locked' (got {r.status})", r)
            r = mvmtest.run(MVM, ["run", "-k", hello, "-d", f"{img},ro"])
            c.check(r.status == MVM_EXIT_USAGE, "exclusively locked: read-only refused too", r)
            fcntl.flock(holder, fcntl.LOCK_SH)
            r = mvmtest.run(MVM, ["run", "-k", hello, "-d", f"{img},ro"])
            c.check(r.status == 0, f"shared lock: a read-only disk runs (got {r.status})", r)
            r = mvmtest.run(MVM, ["run", "-k", hello, "-d", img])
            c.check(r.status == MVM_EXIT_USAGE, "shared lock: a writable disk is refused", r)
        # The same image twice in one mvm is two users, too.
        r = mvmtest.run(MVM, ["run", "-k", hello, "-d", img, "-d", img])
        c.check(r.status == MVM_EXIT_USAGE and "locked" in r.err,
                "the same writable image twice is refused", r)
        if not ro_ran and not c.failures:
            mvmtest.skip("root without setpriv(1): the read-only file case did not run")


def case_blk_durable(c):
    """Written, flushed, acknowledged, then SIGKILL: the data is in the host file."""
    seed = 7
    with tempfile.TemporaryDirectory() as tmp:
        img = image(tmp, "durable.img", 1 << 20)
        p = subprocess.Popen(mvmtest.command(MVM, ["run", "-k", guest("virtio_blk"), "-d", img,
                                                   "-p", f"durable={seed}"]),
                             stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, deadline, seen = b"", time.monotonic() + 120, False
        while time.monotonic() < deadline and not seen:
            ready, _, _ = select.select([p.stdout], [], [], 1)
            if ready:
                chunk = os.read(p.stdout.fileno(), 4096)
                if not chunk:
                    break
                out += chunk
                seen = b"DURABLE-FLUSHED" in out
        p.send_signal(signal.SIGKILL)
        p.wait()
        # Surviving SIGKILL alone only needs the host page cache; the FLUSH is durable only
        # if its fdatasync wrote the pages back: none may be dirty (the kernel's own
        # writeback leaves them for 30 s).
        pc = page_cache(img)
        c.check(pc is not None and pc[0] > 0 and pc[1] == 0,
                f"the flushed pages are clean in the host page cache (cachestat: {pc})")
        err = p.stderr.read().decode(errors="replace")
        text = out.decode(errors="replace")
        c.check(seen, "the guest reported its flush", f"{text}\n{err}")
        c.check(p.returncode == -signal.SIGKILL, "mvm died of SIGKILL")
        want = b"".join(pattern(seed, s) for s in range(64))
        c.check(read_sectors(img, 0, 64) == want, "all 64 flushed sectors are in the file")


def case_console(c):
    """--console virtio: the guest's hvc0 on stdout, and a line from stdin echoed back."""
    r = mvmtest.run(MVM, ["run", "-k", guest("virtio_console"), "--console", "virtio"],
                    stdin=b"ping from the host\n", timeout=120)
    mvmtest.guest_passed(c, r, "virtio_console")
    c.check("HVC: hello from the virtio console" in r.out, "hvc0 output on stdout", r)
    c.check("HVC-ECHO: ping from the host" in r.out, "stdin reached hvc0 and came back", r)
    # Ctrl-A x quits through the virtio console too, while the guest waits for a line.
    r = mvmtest.run(MVM, ["run", "-k", guest("virtio_console"), "--console", "virtio"],
                    stdin=b"abc\x01x", timeout=60)
    c.check(not r.timed_out and r.status == 0, "Ctrl-A x quits with status 0", r)
    c.check("HVC-ECHO" not in r.out, "the guest never got a full line", r)


LINUX_TIMEOUT = 900


def run_interactive(args, trigger, line, timeout):
    """Runs mvm and writes (line) to its stdin once (trigger) appears on stdout.
    NOTE: Linux drops console input that arrives before its console is open (the 8250 clears
    its FIFO at startup; virtio_console discards data that lands between posting its receive
    buffers and attaching hvc0), so the test types only when the guest waits for it."""
    p = subprocess.Popen(mvmtest.command(MVM, args), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    out, sent, deadline, timed_out = b"", False, time.monotonic() + timeout, False
    while True:
        if time.monotonic() > deadline:
            timed_out = True
            p.kill()
            break
        ready, _, _ = select.select([p.stdout], [], [], 1)
        if ready:
            chunk = os.read(p.stdout.fileno(), 65536)
            if not chunk:
                break
            out += chunk
        if not sent and trigger in out:
            p.stdin.write(line)
            p.stdin.close()
            sent = True
    p.wait()
    err = p.stderr.read()
    return mvmtest.Result(None if timed_out else p.returncode, out.decode(errors="replace"),
                          err.decode(errors="replace"), timed_out)


def case_linux(c):
    """Linux on two disks and hvc0 in one boot (a boot takes about a minute on KVM-PVM): the
    guest mounts an ext4 /dev/vda, writes a file and syncs, and the host reads it back with
    debugfs and compares checksums; /dev/vdb is read-only and refuses writes; the console is
    the virtio console, both ways."""
    kernel, initrd = os.environ.get("MVM_VMLINUX"), os.environ.get("MVM_INITRAMFS")
    if not kernel or not initrd or not os.path.exists(kernel) or not os.path.exists(initrd):
        mvmtest.skip("guest images not built (MVM_VMLINUX, MVM_INITRAMFS; scripts/test.sh)")
    with tempfile.TemporaryDirectory() as tmp:
        rw = image(tmp, "rw.img", 64 << 20)
        ro = image(tmp, "ro.img", 16 << 20)
        src = os.path.join(tmp, "src")
        os.mkdir(src)
        with open(os.path.join(src, "hello"), "w") as f:
            f.write("hello from the host\n")
        for img, extra in ((rw, []), (ro, ["-d", src])):
            p = subprocess.run(["mkfs.ext4", "-q", "-F", *extra, img], capture_output=True)
            if p.returncode:
                mvmtest.skip(f"mkfs.ext4 failed: {p.stderr.decode(errors='replace')}")
        ro_sum = sha(ro)
        run = ("echo HVC-WAITING; read -r line; echo HVC-IN $line; mkdir -p /mnt/rw /mnt/ro; "
               "mount -t ext4 /dev/vda /mnt/rw && "
               "dd if=/dev/urandom of=/mnt/rw/data bs=64k count=16 2>/dev/null && "
               "sha256sum /mnt/rw/data && sync && umount /mnt/rw && echo RW-DONE; "
               "echo RO-FLAG $(cat /sys/block/vdb/ro); "
               "mount -t ext4 -o ro /dev/vdb /mnt/ro && cat /mnt/ro/hello && umount /mnt/ro; "
               "dd if=/dev/zero of=/dev/vdb bs=512 count=1 2>/dev/null || "
               "echo RO-WRITE-REFUSED; "
               "echo VDA-SIZE $(cat /sys/block/vda/size)")
        r = run_interactive(["run", "-k", kernel, "-i", initrd, "-m", "256M",
                             "--console", "virtio", "-d", f"{rw},id=linux-rw", "-d", f"{ro},ro",
                             "-p", f'console=hvc0 reboot=k panic=-1 mvm.run="{run}"'],
                            b"HVC-WAITING", b"typed-on-hvc0\n", LINUX_TIMEOUT)
        c.check(not r.timed_out and r.status == 0, "Linux ran and rebooted (status 0)", r)
        c.check("MVM-INIT-READY" in r.out, "init's output came through hvc0", r)
        c.check("HVC-IN typed-on-hvc0" in r.out, "a line typed on stdin reached hvc0", r)
        c.check("RW-DONE" in r.out, "ext4 on /dev/vda: write, sync, umount", r)
        c.check("VDA-SIZE 131072" in r.out, "vda has the image's 131072 sectors", r)
        c.check("RO-FLAG 1" in r.out, "vdb is read-only in the guest", r)
        c.check("hello from the host" in r.out, "the read-only ext4 disk mounts and reads", r)
        c.check("RO-WRITE-REFUSED" in r.out, "a raw write to vdb fails", r)
        c.check(sha(ro) == ro_sum, "the read-only image is unchanged")
        m = re.search(r"^([0-9a-f]{64})\s+/mnt/rw/data", r.out, re.M)
        c.check(m, "the guest printed its checksum", r)
        if m:
            out = os.path.join(tmp, "data")
            p = subprocess.run(["debugfs", "-R", f"dump /data {out}", rw], capture_output=True)
            c.check(p.returncode == 0 and os.path.exists(out), "debugfs extracted the file",
                    p.stderr.decode(errors="replace"))
            if os.path.exists(out):
                c.check(sha(out) == m.group(1), "the file on the host matches the guest's sum")


CASES = {name[5:].replace("_", "-"): fn for name, fn in globals().items()
         if name.startswith("case_")}

if __name__ == "__main__":
    MVM, GUEST_DIR, CASE = sys.argv[1], sys.argv[2], sys.argv[3]
    mvmtest.require_kvm()
    checker = mvmtest.Checker(CASE)
    CASES[CASE](checker)
    checker.done()
