#!/usr/bin/env python3
"""Rate limiters (Firecracker's token buckets) on virtio-blk, virtio-net and virtio-rng, end to
end: each case runs a guest under a limit small enough that the device must make its queue wait,
and checks that it did (the wait counters in --stats or the metrics are above 0) and that the
data still arrived whole and in order. Counters, not timings: the rates are bench/'s business.

  blk        the virtio_blk test guest (all its checks, data read back) under bw and ops limits
  linux      Linux reads a 1 MiB disk with O_DIRECT and /dev/hwrng, both limited: checksums
  api        the same over Firecracker's API: rate_limiter on PUT /drives and /entropy, a
             PATCH that lifts a drive's limit while the guest reads, refused PATCHes, the
             metrics' counters, GET /vm/config
  net        the virtio_net guest's streams through a TAP with rx_ and tx_ limits, inside a
             network namespace the test creates: every echo comes back, nothing dropped
  bad-input  malformed limits on the command line: status 64 and a message naming the option

Usage: test_ratelimit.py MVM GUEST_DIR CASE
"""
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fcclient  # noqa: E402
import mvmtest  # noqa: E402

MVM_EXIT_USAGE = 64
SECTOR = 512
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def guest(name):
    return mvmtest.guest_path(GUEST_DIR, name)


def waits(err, device):
    """The rate limiter waits --stats printed for (device): a list (two for a NIC)."""
    for line in err.splitlines():
        if line.startswith(f"mvm: {device}:") and "rate limiter waits" in line:
            return [int(x) for x in re.findall(r"\d+", line.split("rate limiter waits", 1)[1])]
    return None


def linux_images():
    kernel, initrd = os.environ.get("MVM_VMLINUX"), os.environ.get("MVM_INITRAMFS")
    if not kernel or not initrd or not os.path.exists(kernel) or not os.path.exists(initrd):
        mvmtest.skip("guest images not built (MVM_VMLINUX, MVM_INITRAMFS; scripts/test.sh)")
    return kernel, initrd


def random_image(tmp, size):
    path = os.path.join(tmp, "data.img")
    data = os.urandom(size)
    with open(path, "wb") as f:
        f.write(data)
    return path, hashlib.sha256(data).hexdigest()


def pattern(seed, sector):
    """What virtio_blk.c writes: byte j of sector s."""
    return bytes((seed * 29 + sector * 131 + j * 7 + (j >> 8)) & 0xff for j in range(SECTOR))


def case_blk(c):
    """The virtio_blk guest's own checks (writes read back in other segmentations, flush,
    GET_ID, discard, ...) through 16 KiB and 5 requests per 100 ms."""
    with tempfile.TemporaryDirectory() as tmp:
        img = os.path.join(tmp, "disk.img")
        with open(img, "wb") as f:
            f.truncate(1 << 20)
        r = mvmtest.run(MVM, ["run", "--stats", "-k", guest("virtio_blk"),
                              "-d", f"{img},id=mvm-disk0,bw=16K/100,ops=5/100",
                              "-p", "cap0=2048 id0=mvm-disk0 hostile=0"], timeout=240)
        mvmtest.guest_passed(c, r, "virtio_blk under a rate limit")
        w = waits(r.err, "virtio-blk 0")
        c.check(w and w[0] > 0, f"the disk's queue waited for tokens: {w}", r)
        with open(img, "rb") as f:
            f.seek(8 * SECTOR)
            c.check(f.read(8 * SECTOR) == b"".join(pattern(1, s) for s in range(8, 16)),
                    "the pattern is in sectors 8-15 of the image")


def case_linux(c):
    """Linux reads 1 MiB of random data straight from the disk (O_DIRECT, in order) at 640 KB/s
    and 1 KiB from /dev/hwrng at 2.5 KB/s: the checksum matches the image's, every entropy byte
    came, and both devices waited."""
    kernel, initrd = linux_images()
    with tempfile.TemporaryDirectory() as tmp:
        img, want = random_image(tmp, 1 << 20)
        run = ("dd if=/dev/vda bs=64k iflag=direct 2>/dev/null | sha256sum; "
               "echo HWRNG $(dd if=/dev/hwrng bs=128 count=8 2>/dev/null | wc -c)")
        r = mvmtest.run(MVM, ["run", "--stats", "-k", kernel, "-i", initrd, "-m", "256M",
                              "-d", f"{img},ro,bw=64K/100", "--rng=bw=256/100",
                              "-p", f'console=ttyS0 reboot=k panic=-1 mvm.run="{run}"'],
                        timeout=240)
        c.check(not r.timed_out and r.status == 0, "Linux ran and rebooted (status 0)", r)
        c.check(re.search(rf"^{want}\s+-", r.out, re.M), "the guest read the image whole, "
                "in order (its checksum)", r)
        c.check("HWRNG 1024" in r.out, "the guest got 1024 bytes from /dev/hwrng", r)
        w = waits(r.err, "virtio-blk 0")
        c.check(w and w[0] > 0, f"the disk waited for tokens: {w}", r)
        w = waits(r.err, "virtio-rng")
        c.check(w and w[0] > 0, f"the rng waited for tokens: {w}", r)


def last_metrics(sock, path):
    """The devices of the last metrics line, after a FlushMetrics when (sock) is given."""
    if sock:
        fcclient.curl(sock, "PUT", "/actions", {"action_type": "FlushMetrics"})
    try:
        lines = open(path).read().splitlines()
        return json.loads(lines[-1]).get("devices", {}) if lines else {}
    except (OSError, ValueError):
        return {}


def case_api(c):
    """Firecracker's API: a drive limited to 16 KB/s that the guest reads 1 MiB from (about a
    minute at that rate), lifted by PATCH while it reads: the read then ends at once."""
    kernel, initrd = linux_images()
    curl = fcclient.curl
    with tempfile.TemporaryDirectory() as tmp:
        img, want = random_image(tmp, 1 << 20)
        sock, metrics = os.path.join(tmp, "api.sock"), os.path.join(tmp, "metrics")
        run = ("echo READ-START; dd if=/dev/vda bs=16k iflag=direct 2>/dev/null | sha256sum; "
               "echo READ-$((6*7)); dd if=/dev/hwrng bs=64 count=4 2>/dev/null | wc -c")
        vm = fcclient.Mvm(MVM, sock)
        slow = {"bandwidth": {"size": 16384, "refill_time": 1000}}
        steps = [
            ("PUT", "/metrics", {"metrics_path": metrics}),
            ("PUT", "/boot-source", {"kernel_image_path": kernel, "initrd_path": initrd,
                                     "boot_args": f'console=ttyS0 reboot=k panic=-1 '
                                                  f'mvm.run="{run}"'}),
            ("PUT", "/drives/data", {"drive_id": "data", "path_on_host": img,
                                     "is_root_device": False, "is_read_only": True,
                                     "rate_limiter": slow}),
            ("PUT", "/entropy", {"rate_limiter": {"ops": {"size": 1, "refill_time": 100}}}),
        ]
        for method, path, body in steps:
            r = curl(sock, method, path, body)
            c.check(r[0] == 204, f"{method} {path}: 204 ({r})", vm)
        r = curl(sock, "PUT", "/drives/bad", {"drive_id": "bad", "path_on_host": img,
                                              "is_root_device": False, "rate_limiter":
                                              {"bandwidth": {"size": 1, "refill_time": 0}}})
        c.check(fcclient.fault_says(r, "drives: rate_limiter.bandwidth: refill_time is 0"),
                f"a zero refill time is a 400 naming the field: {r}")
        r = curl(sock, "PUT", "/network-interfaces/eth0", {
            "iface_id": "eth0", "host_dev_name": "t0",
            "rx_rate_limiter": {"ops": {"size": -1, "refill_time": 5}}})
        c.check(fcclient.fault_says(r, "rx_rate_limiter.ops: 'size' must be a non-negative"),
                f"a negative size is a 400 naming the field: {r}")
        conf = curl(sock, "GET", "/vm/config")[1] or {}
        drives = conf.get("drives") or [{}]
        c.check(drives[0].get("rate_limiter") == {"bandwidth": {
            "size": 16384, "one_time_burst": 0, "refill_time": 1000}},
            f"GET /vm/config returns the drive's limiter: {drives}")
        r = curl(sock, "PUT", "/actions", {"action_type": "InstanceStart"})
        c.check(r[0] == 204, f"InstanceStart: {r}", vm)
        c.check(vm.wait_out("READ-START", 120), "Linux boots and starts reading", vm)
        # Until the metrics say the drive's queue waits (the 16 KiB bucket ran dry).
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and last_metrics(sock, metrics).get(
                "virtio-blk 0", {}).get("rate_limiter_throttled_events", 0) == 0:
            time.sleep(0.2)
        r = curl(sock, "PATCH", "/drives/data", {"drive_id": "data", "rate_limiter": {
            "bandwidth": {"size": 1, "refill_time": 0}}})
        c.check(fcclient.fault_says(r, "refill_time is 0"), f"a bad PATCH is a 400: {r}")
        r = curl(sock, "PATCH", "/drives/data", {"drive_id": "data", "path_on_host": img})
        c.check(fcclient.fault_says(r, "backing file"), f"a path change is still refused: {r}")
        r = curl(sock, "PATCH", "/drives/nope", {"drive_id": "nope", "rate_limiter": slow})
        c.check(r[0] == 400, f"PATCH of a drive that does not exist: 400 ({r})")
        r = curl(sock, "PATCH", "/network-interfaces/eth9", {"iface_id": "eth9"})
        c.check(r[0] == 400, f"PATCH of a NIC that does not exist: 400 ({r})")
        r = curl(sock, "PATCH", "/drives/data", {"drive_id": "data", "rate_limiter": {
            "bandwidth": {"size": 0, "refill_time": 0}}})
        c.check(r[0] == 204, f"PATCH lifting the drive's limit: 204 ({r})")
        # At 16 KB/s the rest of the read would take a minute; lifted, it ends in seconds.
        c.check(vm.wait_out("READ-42", 30), "the read finished once the limit was lifted", vm)
        status = vm.wait(120)
        out = vm.out.decode(errors="replace")
        c.check(status == 0, f"the guest rebooted, exit 0 (got {status})", vm)
        c.check(re.search(rf"^{want}\s+-", out, re.M), "the data came whole and in order", vm)
        c.check(re.search(r"^256\s*$", out, re.M), "256 bytes of entropy through 10 per second",
                vm)
        dev = last_metrics(None, metrics)
        blk = dev.get("virtio-blk 0", {}).get("rate_limiter_throttled_events", 0)
        rng = dev.get("virtio-rng", {}).get("rate_limiter_throttled_events", 0)
        c.check(blk > 0 and rng > 0, f"the metrics count the waits: blk {blk}, rng {rng}: {dev}")


def case_net(c):
    """Inside a network namespace: the virtio_net guest's bench streams (tx frames, and echo
    frames answered by bench/net_echo.py) through tx_bw and rx_ops limits; the guest fails a
    bench if a reply is lost, and mvm must drop nothing."""
    tap = "mvmrl0"
    for cmd in (["ip", "link", "set", "lo", "up"],
                ["ip", "tuntap", "add", "dev", tap, "mode", "tap"], ["ip", "link", "set", tap, "up"]):
        r = subprocess.run(cmd, capture_output=True, text=True)
        if not c.check(r.returncode == 0, f"{' '.join(cmd)}: {r.stderr.strip()}"):
            return
    echo = subprocess.Popen([sys.executable, os.path.join(ROOT, "bench", "net_echo.py"), tap],
                            stdout=subprocess.PIPE)
    try:
        c.check(echo.stdout.readline().strip() == b"ECHO-READY", "the echo server started")
        r = mvmtest.run(MVM, ["run", "--stats", "-k", guest("virtio_net"),
                              "-n", f"tap={tap},tx_bw=256K/100,rx_ops=50/100",
                              "-p", "bench=1 bench_ms=300"], timeout=120)
    finally:
        echo.kill()
        echo.wait()
    mvmtest.guest_passed(c, r, "virtio_net bench=1 under rate limits")
    m = re.search(r"received (\d+) frames, \d+ bytes, largest \d+, (\d+) dropped; "
                  r"sent (\d+) frames, \d+ bytes, largest \d+, (\d+) dropped", r.err)
    if c.check(m, "--stats printed the NIC's counters", r):
        c.check(m.group(2) == "0" and m.group(4) == "0", "mvm dropped nothing", r)
    w = waits(r.err, "virtio-net 0")
    c.check(w and len(w) == 2 and w[0] > 0 and w[1] > 0,
            f"both directions waited for tokens (rx, tx): {w}", r)


def case_bad_input(c):
    hello = guest("hello")
    for args, text in (
            (["-d", "x.img,bw=1M/0"], "--disk: bw=1M/0: refill_time is 0"),
            (["-d", "x.img,ops=0/10"], "--disk: ops: the count per refill must be more than 0"),
            (["-d", "x.img,bw=1M"], "--disk: bw='1M' is not SIZE/MS[/BURST]"),
            (["-d", "x.img,bw=20000T/1"], "--disk: bw=20000T/1: size is too large"),
            (["-n", "tap=t0,rx_bw=-5/10"], "--net: rx_bw='-5/10' is not SIZE/MS[/BURST]"),
            (["-n", "tap=t0,bw=1M/10"], "--net: unknown option 'bw=1M/10'"),
            (["--rng=ops=5/0"], "--rng: ops=5/0: refill_time is 0"),
            (["--rng=speed=1"], "--rng: unknown option 'speed=1'")):
        r = mvmtest.run(MVM, ["run", "-k", hello, *args])
        c.check(r.status == MVM_EXIT_USAGE and text in r.err and "Hello" not in r.out,
                f"{args}: status 64 and '{text}'", r)
    r = mvmtest.run(MVM, ["--help"])
    c.check("bw=SIZE/MS[/BURST]" in r.out and "tx_bw" in r.out and "--rng[=bw=" in r.out,
            "--help documents the limits", r)


def in_netns():
    """Runs this script's case inside a fresh network namespace, deleted afterwards."""
    if os.geteuid() != 0:
        mvmtest.skip("network namespaces and TAPs need root")
    ns = f"mvmtest-rl-{os.getpid()}"
    r = subprocess.run(["ip", "netns", "add", ns], capture_output=True, text=True)
    if r.returncode != 0:
        mvmtest.skip(f"ip netns add: {r.stderr.strip()}")
    try:
        p = subprocess.run(["ip", "netns", "exec", ns, sys.executable, os.path.abspath(__file__),
                            MVM, GUEST_DIR, CASE, "--inner"], timeout=600)
        return p.returncode
    finally:
        subprocess.run(["ip", "netns", "delete", ns], capture_output=True)


CASES = {name[5:].replace("_", "-"): fn for name, fn in globals().items()
         if name.startswith("case_")}

if __name__ == "__main__":
    MVM, GUEST_DIR, CASE = sys.argv[1], sys.argv[2], sys.argv[3]
    mvmtest.require_kvm()
    if CASE == "net" and "--inner" not in sys.argv:
        sys.exit(in_netns())
    checker = mvmtest.Checker(f"ratelimit-{CASE}")
    CASES[CASE](checker)
    checker.done()
