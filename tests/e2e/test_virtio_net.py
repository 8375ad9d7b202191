#!/usr/bin/env python3
"""virtio-net on real TAP devices, and virtio-rng, with the virtio_net test guest. Every case
runs inside a network namespace it creates (mvmtest-PID) and deletes at the end, even on
failure; the TAPs and all traffic stay inside it. The host side reads and writes the TAP with
an AF_PACKET socket. One case per CTest test.

Usage: test_virtio_net.py MVM GUEST_DIR CASE
"""
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mvmtest  # noqa: E402

MVM_EXIT_USAGE = 64
ETH_TYPE = 0x88b5
GUEST_MAC = "02:00:0a:c8:00:02"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def guest(name):
    return mvmtest.guest_path(GUEST_DIR, name)


def sh(*args):
    return subprocess.run(list(args), capture_output=True, text=True)


def in_netns(fn):
    """Runs this script's inner case fn inside a fresh network namespace."""
    if os.geteuid() != 0:
        mvmtest.skip("network namespaces and TAPs need root")
    if sh("ip", "-V").returncode != 0:
        mvmtest.skip("no ip(8)")
    ns = f"mvmtest-{os.getpid()}"
    r = sh("ip", "netns", "add", ns)
    if r.returncode != 0:
        mvmtest.skip(f"ip netns add: {r.stderr.strip()}")
    try:
        p = subprocess.run(["ip", "netns", "exec", ns, sys.executable, os.path.abspath(__file__),
                            MVM, GUEST_DIR, CASE, "--inner"], timeout=600)
        return p.returncode
    finally:
        sh("ip", "netns", "delete", ns)


def mac_bytes(s):
    return bytes(int(x, 16) for x in s.split(":"))


def wait_link(name, secs=30):
    end = time.time() + secs
    while time.time() < end:
        if sh("ip", "link", "show", name).returncode == 0:
            return True
        time.sleep(0.05)
    return False


def exchange(c, tap, precreated, extra_args=()):
    """Runs the guest on (tap); checks the guest's frame, answers it and checks the echo."""
    sh("ip", "link", "set", "lo", "up")
    if precreated:
        c.check(sh("ip", "tuntap", "add", tap, "mode", "tap").returncode == 0, "tuntap add")
        sh("ip", "link", "set", tap, "up")
    args = [MVM, "run", "-k", guest("virtio_net"), "-p", "rx_ms=60000",
            "-n", f"tap={tap},mac={GUEST_MAC}"] + list(extra_args)
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen_guest = echo = None
    try:
        if not precreated:
            c.check(wait_link(tap), "mvm created the TAP")
            sh("ip", "link", "set", tap, "up")
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_TYPE))
        s.bind((tap, ETH_TYPE))
        host_mac = s.getsockname()[4][:6]
        frame = (mac_bytes(GUEST_MAC) + host_mac + ETH_TYPE.to_bytes(2, "big") +
                 b"mvm-host-frame")
        end = time.time() + 120
        last = 0
        while time.time() < end and echo is None and p.poll() is None:
            if time.time() - last > 0.2:
                s.send(frame)   # until the guest answers: it may not be listening yet
                last = time.time()
            if select.select([s], [], [], 0.05)[0]:
                data = s.recv(4096)
                payload = data[14:].rstrip(b"\0")
                if data[6:12] != mac_bytes(GUEST_MAC):
                    continue
                if payload.startswith(b"mvm-guest-frame"):
                    seen_guest = data
                elif payload.startswith(b"mvm-guest-echo:"):
                    echo = payload
        s.close()
        out, err = p.communicate(timeout=120)
    except Exception:
        p.kill()
        out, err = p.communicate()
        raise
    r = mvmtest.Result(p.returncode, out.decode(errors="replace"), err.decode(errors="replace"))
    c.check(r.status == 0, f"exit status 0 (got {r.status})", r)
    c.check("RESULT PASS" in r.out, "guest printed RESULT PASS", r)
    c.check(not re.search(r"^FAIL", r.out, re.M), "no FAIL lines", r)
    c.check(f"MAC {GUEST_MAC}" in r.out, "the guest read its MAC from config space", r)
    c.check("PASS net-link" in r.out, "link up", r)
    c.check("NET-RX: mvm-host-frame" in r.out, "the guest received the host's frame", r)
    c.check("num_buffers 1" in r.out, "num_buffers is 1", r)
    c.check(echo == b"mvm-guest-echo:mvm-host-frame", f"the host got the echo ({echo!r})", r)
    if precreated:
        c.check(seen_guest is not None and seen_guest[:6] == b"\xff" * 6,
                "the host saw the guest's broadcast frame", r)
    return r


def case_frame(c):
    r = exchange(c, "mvmt0", precreated=True)
    c.check("PASS rng-read" in r.out and "RNG 64 bytes" in r.out,
            "virtio-rng gave 64 bytes (on by default)", r)


def case_create(c):
    r = exchange(c, "mvmnew0", precreated=False, extra_args=["--no-rng"])
    c.check("SKIP rng-read" in r.out, "--no-rng: no virtio-rng device", r)
    c.check(sh("ip", "link", "show", "mvmnew0").returncode != 0,
            "the TAP mvm created went away with it")


def case_stream(c):
    """The guest's bench mode, short: a ring of frames in flight out to the TAP, and echo
    frames answered by bench/net_echo.py with 1 and 16 outstanding; every reply must come back
    (the guest fails a bench otherwise) and mvm must drop nothing."""
    tap = "mvms0"
    for cmd in (["ip", "tuntap", "add", "dev", tap, "mode", "tap"],
                ["ip", "link", "set", tap, "up"]):
        r = sh(*cmd)
        if not c.check(r.returncode == 0, f"{' '.join(cmd)}: {r.stderr.strip()}"):
            return
    echo = subprocess.Popen([sys.executable, os.path.join(ROOT, "bench", "net_echo.py"), tap],
                            stdout=subprocess.PIPE)
    try:
        c.check(echo.stdout.readline().strip() == b"ECHO-READY", "the echo server started")
        r = mvmtest.run(MVM, ["run", "--stats", "-k", guest("virtio_net"), "-n", f"tap={tap}",
                              "-p", "bench=1 bench_ms=300"], timeout=120)
    finally:
        echo.kill()
        echo.wait()
    mvmtest.guest_passed(c, r, "virtio_net bench=1")
    got = dict((m.group(1), int(m.group(2)))
               for m in re.finditer(r"BENCH (\S+) frames=(\d+)", r.out))
    c.check(set(got) == {"tx", "echo-qd1", "echo-qd16"} and all(got.values()),
            f"three benches moved frames: {got}", r)
    m = re.search(r"received (\d+) frames, \d+ bytes, largest \d+, (\d+) dropped; "
                  r"sent (\d+) frames, \d+ bytes, largest \d+, (\d+) dropped", r.err)
    if c.check(m, "--stats printed the NIC's counters", r):
        rx, rxd, tx, txd = (int(x) for x in m.groups())
        echoes = got.get("echo-qd1", 0) + got.get("echo-qd16", 0)
        c.check(rx >= echoes and tx >= echoes + got.get("tx", 0) and rxd == 0 and txd == 0,
                f"mvm counted {rx} frames in, {tx} out, none dropped", r)


def case_bad(c):
    hello = guest("hello")
    sh("ip", "link", "set", "lo", "up")
    r = mvmtest.run(MVM, ["run", "-k", hello, "-n", "tap=t0,mac=02:00:00:00:00"])
    c.check(r.status == MVM_EXIT_USAGE and "not a unicast address" in r.err,
            "malformed MAC: status 64 with a message", r)
    r = mvmtest.run(MVM, ["run", "-k", hello, "-n", "tap=t0,mac=01:00:5e:00:00:01"])
    c.check(r.status == MVM_EXIT_USAGE and "not a unicast address" in r.err,
            "multicast MAC: status 64", r)
    r = mvmtest.run(MVM, ["run", "-k", hello, "-n", "tap=lo"])
    c.check(r.status == MVM_EXIT_USAGE and "TAP 'lo'" in r.err and "Hello" not in r.out,
            "not a TAP: status 64 before the guest runs", r)
    have_setpriv = shutil.which("setpriv") is not None
    if have_setpriv:
        r = mvmtest.run("setpriv", ["--bounding-set=-net_admin", "--inh-caps=-net_admin", MVM,
                                    "run", "-k", hello, "-n", "tap=mvmnoperm0"])
        c.check(r.status == MVM_EXIT_USAGE and "CAP_NET_ADMIN" in r.err
                and "Hello" not in r.out,
                "no permission to create the TAP: status 64 with a message", r)
        c.check(sh("ip", "link", "show", "mvmnoperm0").returncode != 0, "no TAP appeared")
    # In use: a TAP held by another mvm.
    sh("ip", "tuntap", "add", "mvmbusy0", "mode", "tap")
    p = subprocess.Popen([MVM, "run", "-k", guest("virtio_net"), "-p", "rx_ms=20000",
                          "-n", "tap=mvmbusy0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        time.sleep(1)
        r = mvmtest.run(MVM, ["run", "-k", hello, "-n", "tap=mvmbusy0"])
        c.check(r.status == MVM_EXIT_USAGE and "in use" in r.err, "a TAP in use: status 64", r)
    finally:
        p.kill()
        p.communicate()
    if not have_setpriv and not c.failures:
        mvmtest.skip("no setpriv(1): the no-CAP_NET_ADMIN case did not run")


CASES = {name[5:].replace("_", "-"): fn for name, fn in globals().items()
         if name.startswith("case_")}

if __name__ == "__main__":
    MVM, GUEST_DIR, CASE = sys.argv[1], sys.argv[2], sys.argv[3]
    mvmtest.require_kvm()
    if "--inner" not in sys.argv:
        sys.exit(in_netns(CASES[CASE]))
    checker = mvmtest.Checker(CASE)
    CASES[CASE](checker)
    checker.done()
