#!/usr/bin/env python3
"""Bad input to `mvm run`: every case gets a clear message naming the problem, a non-zero
status (64 for usage and input errors) and no crash, hang or leftover.

Usage: test_bad_input.py MVM GUEST_DIR
Needs no /dev/kvm: every case fails before a VM is created. Run under the ASan build too.
"""
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mvmtest  # noqa: E402

USAGE = 64


def expect_usage(c, args, needle, what):
    r = mvmtest.run(MVM, ["run"] + args, timeout=30)
    c.check(not r.timed_out, f"{what}: returns at once", r)
    c.check(r.status == USAGE, f"{what}: status {USAGE} (got {r.status})", r)
    c.check(needle in r.err, f"{what}: message mentions {needle!r}", r)
    c.check("AddressSanitizer" not in r.err and "runtime error" not in r.err,
            f"{what}: no sanitizer report", r)


def main():
    c = mvmtest.Checker("bad-input")
    hello = os.path.join(GUEST_DIR, "hello.elf")
    with tempfile.TemporaryDirectory() as tmp:
        def write(name, data):
            path = os.path.join(tmp, name)
            with open(path, "wb") as f:
                f.write(data)
            return path

        text = write("notes.txt", b"this is not a kernel\n" * 100)
        empty = write("empty", b"")
        missing = os.path.join(tmp, "no-such-kernel")
        with open(hello, "rb") as f:
            elf = f.read()

        expect_usage(c, ["-k", missing], "no-such-kernel", "missing kernel")
        expect_usage(c, ["-k", tmp], "not a regular file", "directory as kernel")
        expect_usage(c, ["-k", empty], "empty", "empty kernel")
        expect_usage(c, ["-k", text], "neither a Linux bzImage", "text file as kernel")
        expect_usage(c, ["-k", hello, "-i", missing], "no-such-kernel", "missing initrd")
        expect_usage(c, ["-k", hello, "-m", "0"], "--mem", "-m 0")
        expect_usage(c, ["-k", hello, "-m", "1T"], "--mem", "-m 1T")
        expect_usage(c, ["-k", hello, "-m", "500G"], "host", "-m beyond host RAM")
        expect_usage(c, ["-k", hello, "-m", "twelve"], "--mem", "-m twelve")
        expect_usage(c, ["-k", hello, "-m", "64M,thp=maybe"], "thp=maybe", "-m 64M,thp=maybe")
        expect_usage(c, ["-k", hello, "-c", "0"], "--cpus", "-c 0")
        expect_usage(c, ["-k", hello, "-c", "1000"], "--cpus", "-c 1000")
        # The README's limits, at the edges: 1-64 vCPUs, 16 MiB-512 GiB.
        expect_usage(c, ["-k", hello, "-c", "65"], "1 to 64", "-c 65")
        expect_usage(c, ["-k", hello, "-m", "15M"], "16M to 512G", "-m 15M")
        expect_usage(c, ["-k", hello, "-m", "513G"], "16M to 512G", "-m 513G")
        expect_usage(c, ["-k", hello, "--bogus"], "--bogus", "unknown option")
        expect_usage(c, ["-k", hello, "--accel", "turbo"], "--accel", "unknown accelerator")
        expect_usage(c, ["-k", hello, "--jail", "0:0"], "--jail", "--jail as root")
        expect_usage(c, ["-k", hello, "--jail", "nobody"], "UID:GID", "--jail without ids")
        expect_usage(c, ["-k", hello, "--jail", "65534:65534", "--jail-cgroup", "../escape"],
                     "--jail-cgroup", "--jail-cgroup climbing out")
        expect_usage(c, ["-k", hello, "--jail-pidns"], "need --jail", "--jail-pidns alone")
        expect_usage(c, ["-k", hello, "--jail", "1:1", "--jail-nofile", "3"], "--jail-nofile",
                     "--jail-nofile too small")
        expect_usage(c, ["-k", hello, "--accel", "hybrid", "-c", "2"], "one vCPU",
                     "--accel hybrid with 2 vCPUs")
        expect_usage(c, ["-k", hello, "--console", "serial"], "--console", "bad console")
        expect_usage(c, ["-k", hello, "--console", f"file:{tmp}/no/such/dir/log"],
                     "console file", "console file in a missing directory")
        expect_usage(c, [], "no kernel", "no kernel at all")
        # Every truncation of a real guest image is refused cleanly, never half-loaded.
        for n in (4, 16, 52, 63, 64, 100, 200, 500, len(elf) // 2, len(elf) - 1):
            cut = write(f"cut{n}.elf", elf[:n])
            r = mvmtest.run(MVM, ["run", "-k", cut, "--console", "none"], timeout=30)
            c.check(r.status == USAGE, f"{n}-byte prefix of hello.elf: status {USAGE} "
                    f"(got {r.status})", r)
            c.check("kernel" in r.err, f"{n}-byte prefix: message names the kernel", r)
        # An initrd larger than guest RAM.
        big = write("big.initrd", b"\0" * (20 << 20))
        r = mvmtest.run(MVM, ["run", "-k", hello, "-i", big, "-m", "16M"], timeout=30)
        c.check(r.status == USAGE and "initrd" in r.err, "initrd larger than RAM", r)
    c.done()


if __name__ == "__main__":
    MVM, GUEST_DIR = sys.argv[1], sys.argv[2]
    main()
