#!/usr/bin/env python3
"""bench/ratelimit.py: how closely mvm's rate limiters hold their limit: the virtio-blk and
virtio-net test guests' own bench modes, run under a limit and without one, the measured rate
reported as a ratio to the limit.

Usage: bench/ratelimit.py MVM GUEST_DIR [--runs N] [--ms MS] [--out PREFIX]

virtio-blk: `virtio_blk.elf bench=1` on a 64 MiB image (page cache): 4 KiB random reads at QD16,
QD1 and QD32, 64 KiB sequential at QD4, 1 MiB sequential at QD1, MS each, in that order, under
each limit below. virtio-net (root: a TAP in a network namespace this script makes and deletes,
bench/net_echo.py answering): `virtio_net.elf bench=1`: echo round trips with 1 and 16 in
flight, then 1514-byte frames to the TAP, 64 in flight.

Both guests run under `--accel dbt` (on KVM-PVM, KVM interprets the guests' kernel-mode drivers
and every rate would be the guest's, not the limiter's). A limit's bucket holds 100 ms of its
rate and starts full, so the first bench under a limit may exceed it by 100 ms worth over MS
(5% at 2000 ms); the later ones start with what the earlier left. A rate the unlimited run does
not reach is the guest's, not the limiter's: its ratio is marked so. Median of N runs. A
benchmark, not a test: it never judges the numbers.
"""
import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile

BENCH = os.path.dirname(os.path.abspath(__file__))
MIB = 1 << 20

BLK_RE = re.compile(r"BENCH (\S+) qd=(\d+) ios=(\d+) errors=(\d+) ms=(\d+)")
BLK_SIZES = {"randread-4k": 4096, "randread-4k-qd1": 4096, "seqread-64k": 65536,
             "randread-4k-qd32": 4096, "seqread-1m": MIB}
# (name, --disk suffix, the limit in bytes/s or None, in requests/s or None)
BLK_LIMITS = [
    ("unlimited", "", None, None),
    ("bw=1M/100 (10 MiB/s)", ",bw=1M/100", 10 * MIB, None),
    ("bw=8M/100 (80 MiB/s)", ",bw=8M/100", 80 * MIB, None),
    ("ops=200/100 (2000 requests/s)", ",ops=200/100", None, 2000),
]
NET_RE = re.compile(r"BENCH (\S+) frames=(\d+) ms=(\d+)")
NET_FRAME = 1514  # the tx bench's frames, without the virtio-net header (what tx_bw counts)
# (name, --net suffix, {bench: (limit, unit)})
NET_LIMITS = [
    ("unlimited", "", {}),
    ("tx_bw=1M/100 (10 MiB/s)", ",tx_bw=1M/100", {"tx": (10 * MIB, "B/s")}),
    ("tx_ops=500/100 (5000 frames/s)", ",tx_ops=500/100",
     {"tx": (5000, "frames/s"), "echo-qd1": (5000, "frames/s"), "echo-qd16": (5000, "frames/s")}),
    ("rx_ops=200/100 (2000 frames/s)", ",rx_ops=200/100",
     {"echo-qd1": (2000, "frames/s"), "echo-qd16": (2000, "frames/s")}),
]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def run_blk(mvm, guests, img, suffix, ms):
    """One guest run: {bench: (bytes/s, requests/s)} and the waits --stats printed."""
    p = subprocess.run([mvm, "run", "--accel", "dbt", "--stats", "-k",
                        os.path.join(guests, "virtio_blk.elf"), "-d", img + suffix,
                        "-p", f"bench=1 bench_ms={ms} hostile=0"],
                       capture_output=True, text=True, timeout=120)
    got = {}
    for m in BLK_RE.finditer(p.stdout):
        name, ios, errors, took = m.group(1), int(m.group(3)), int(m.group(4)), int(m.group(5))
        if errors:
            raise RuntimeError(f"virtio_blk bench {name}: {errors} errors")
        got[name] = (ios * BLK_SIZES[name] * 1000 / took, ios * 1000 / took)
    if p.returncode or len(got) != len(BLK_SIZES):
        raise RuntimeError(f"virtio_blk bench: status {p.returncode}\n{p.stdout}\n{p.stderr}")
    w = re.search(r"virtio-blk 0: rate limiter waits (\d+)", p.stderr)
    return got, int(w.group(1)) if w else None


def run_net_inner(mvm, guests, suffix, ms):
    """Inside the namespace: one guest run on a fresh TAP with the echo server."""
    tap = "mvmrlb0"
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["ip", "tuntap", "add", "dev", tap, "mode", "tap"], check=True)
    subprocess.run(["ip", "link", "set", tap, "up"], check=True)
    echo = subprocess.Popen([sys.executable, os.path.join(BENCH, "net_echo.py"), tap],
                            stdout=subprocess.PIPE)
    try:
        if echo.stdout.readline().strip() != b"ECHO-READY":
            raise RuntimeError("net_echo.py did not start")
        p = subprocess.run([mvm, "run", "--accel", "dbt", "--stats", "-k",
                            os.path.join(guests, "virtio_net.elf"), "-n", f"tap={tap}{suffix}",
                            "-p", f"bench=1 bench_ms={ms}"],
                           capture_output=True, text=True, timeout=120)
    finally:
        echo.kill()
        echo.wait()
        subprocess.run(["ip", "link", "delete", tap], capture_output=True)
    got = {m.group(1): int(m.group(2)) * 1000 / int(m.group(3))
           for m in NET_RE.finditer(p.stdout)}
    if p.returncode or set(got) != {"tx", "echo-qd1", "echo-qd16"}:
        raise RuntimeError(f"virtio_net bench: status {p.returncode}\n{p.stdout}\n{p.stderr}")
    w = re.search(r"rate limiter waits: rx (\d+), tx (\d+)", p.stderr)
    return got, (int(w.group(1)), int(w.group(2))) if w else None


def run_net(mvm, guests, suffix, ms):
    ns = f"mvmbench-rl-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        p = subprocess.run(["ip", "netns", "exec", ns, sys.executable, os.path.abspath(__file__),
                            "--inner-net", mvm, guests, suffix, str(ms)],
                           capture_output=True, text=True, timeout=300)
        if p.returncode:
            raise RuntimeError(p.stderr)
        got, w = json.loads(p.stdout)
        return got, w
    finally:
        subprocess.run(["ip", "netns", "delete", ns], capture_output=True)


def retried(what, fn, report):
    """fn() once more when the guest failed (a frame lost at the TAP's start-up leaves the
    echo guest waiting for a reply that never comes), at most twice; each failure is kept in
    the report."""
    for attempt in range(3):
        try:
            return fn()
        except RuntimeError as e:
            log(f"{what}: attempt {attempt + 1} failed: {str(e)[:2000]}")
            report.setdefault("failed_attempts", []).append({"what": what, "error": str(e)})
            if attempt == 2:
                raise
    return None


def fmt_rate(v, unit):
    if unit == "B/s":
        return f"{v / MIB:.2f} MiB/s"
    return f"{v:.0f} {unit}"


def ratio_cell(measured, limit, unlimited):
    if unlimited is not None and unlimited < limit:
        return f"{measured / limit:.3f} (guest-bound: {unlimited / limit:.2f} unlimited)"
    return f"{measured / limit:.3f}"


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--inner-net":
        got, w = run_net_inner(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
        print(json.dumps([got, w]))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mvm")
    ap.add_argument("guests")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--ms", type=int, default=2000)
    ap.add_argument("--out")
    a = ap.parse_args()
    load_before = os.getloadavg()
    report = {"runs": a.runs, "ms": a.ms, "blk": {}, "net": {}}
    lines = ["| device, limit | bench | measured (median) | limit | measured / limit | "
             "waits (median) |", "|---|---|---|---|---|---|"]

    with tempfile.TemporaryDirectory(prefix="mvm-bench-rl-") as tmp:
        img = os.path.join(tmp, "disk.img")
        with open(img, "wb") as f:
            f.truncate(64 * MIB)
        unlimited = {}
        for name, suffix, bw, ops in BLK_LIMITS:
            samples, waits = [], []
            for i in range(a.runs):
                log(f"virtio-blk {name}: run {i + 1}/{a.runs}")
                got, w = retried(f"virtio-blk {name}",
                                 lambda: run_blk(a.mvm, a.guests, img, suffix, a.ms), report)
                samples.append(got)
                waits.append(w)
            med = {b: (statistics.median(s[b][0] for s in samples),
                       statistics.median(s[b][1] for s in samples)) for b in BLK_SIZES}
            report["blk"][name] = {"samples": samples, "waits": waits, "median": med}
            if not suffix:
                unlimited = med
            for b in BLK_SIZES:
                if bw:
                    cells = (fmt_rate(med[b][0], "B/s"), fmt_rate(bw, "B/s"),
                             ratio_cell(med[b][0], bw, unlimited.get(b, (None,))[0]))
                elif ops:
                    cells = (f"{med[b][1]:.0f} requests/s", f"{ops} requests/s",
                             ratio_cell(med[b][1], ops, unlimited.get(b, (0, None))[1]))
                else:
                    cells = (f"{fmt_rate(med[b][0], 'B/s')}, {med[b][1]:.0f} requests/s", "–",
                             "–")
                lines.append(f"| virtio-blk, {name} | {b} | {cells[0]} | {cells[1]} | "
                             f"{cells[2]} | {statistics.median(waits) if waits[0] is not None else '–'} |")

    if os.geteuid() != 0:
        log("virtio-net: skipped (a TAP in a network namespace needs root)")
        report["net"] = "skipped: not root"
    else:
        unlimited = {}
        for name, suffix, limits in NET_LIMITS:
            samples, waits = [], []
            for i in range(a.runs):
                log(f"virtio-net {name}: run {i + 1}/{a.runs}")
                got, w = retried(f"virtio-net {name}",
                                 lambda: run_net(a.mvm, a.guests, suffix, a.ms), report)
                samples.append(got)
                waits.append(w)
            med = {b: statistics.median(s[b] for s in samples) for b in samples[0]}
            report["net"][name] = {"samples": samples, "waits": waits, "median": med}
            if not suffix:
                unlimited = med
            wcell = "rx {}, tx {}".format(statistics.median(w[0] for w in waits),
                                          statistics.median(w[1] for w in waits))
            for b in ("echo-qd1", "echo-qd16", "tx"):
                if b in limits:
                    limit, unit = limits[b]
                    v = med[b] * NET_FRAME if unit == "B/s" else med[b]
                    u = unlimited[b] * NET_FRAME if unit == "B/s" else unlimited[b]
                    cells = (fmt_rate(v, unit), fmt_rate(limit, unit), ratio_cell(v, limit, u))
                elif suffix:
                    continue
                else:
                    cells = (f"{med[b]:.0f} frames/s", "–", "–")
                lines.append(f"| virtio-net, {name} | {b} | {cells[0]} | {cells[1]} | "
                             f"{cells[2]} | {wcell} |")

    load_after = os.getloadavg()
    head = (f"mvm rate limiters: measured rate / limit, `--accel dbt`, median of {a.runs} runs "
            f"of {a.ms} ms per bench. Host {platform.node()}, {os.cpu_count()} CPUs, load "
            f"average {load_before[0]:.2f} before, {load_after[0]:.2f} after.")
    failed = report.get("failed_attempts", [])
    if failed:
        head += (f" {len(failed)} guest run(s) failed and were run again: " +
                 ", ".join(f["what"] for f in failed) + " (the errors are in the JSON).")
    md = head + "\n\n" + "\n".join(lines) + "\n"
    report["load"] = {"before": load_before, "after": load_after}
    report["markdown"] = md
    print(md)
    if a.out:
        with open(a.out + ".md", "w") as f:
            f.write(md)
        with open(a.out + ".json", "w") as f:
            json.dump(report, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
