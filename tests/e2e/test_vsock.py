#!/usr/bin/env python3
"""virtio-vsock with the default Linux guest, end to end: `mvm run --vsock cid=3,path=PATH`
and the guest's /bin/vsock_test (guest-kernels/initramfs/vsock_test.c), in one boot.

- Guest to host: the guest connects to host port 5000, which reaches this test's Unix socket
  PATH_5000; it sends a greeting, echoes 256 KiB of random bytes back, and ends when the host
  closes. A guest connection to port 5999, where nothing listens, is refused.
- Host to guest: once the guest listens on port 6000, eight host connections at once each
  write "CONNECT 6000\\n" to PATH, read "OK <port>\\n" (eight different ports) and get their
  own 128 KiB echoed; a host peer that sends garbage first, one whose line never ends and
  one that asks for a port nothing listens on are closed without an "OK".
- Throughput, both ways (MVM_VSOCK_MB MiB, default 64): host to guest into a guest sink that
  answers with the byte count when the host shuts down its side, and guest to host from a
  guest source until the guest's end. Reported as "vsock-throughput ..." lines, not checked.
- The socket file is gone after mvm exits; --stats counts every connection and byte.

Usage: test_vsock.py MVM      (needs MVM_VMLINUX and MVM_INITRAMFS; MVM_TEST_ACCEL picks the
accelerator, dbt by default: a Linux boot under KVM-PVM takes minutes)
"""
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mvmtest  # noqa: E402

ECHO = 256 << 10
MANY, MANY_BYTES = 8, 128 << 10
MB = int(os.environ.get("MVM_VSOCK_MB", "64"))


def recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(min(n - len(buf), 1 << 16))
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


def recv_line(s, limit=64):
    buf = b""
    while not buf.endswith(b"\n") and len(buf) < limit:
        c = s.recv(1)
        if not c:
            break
        buf += c
    return buf


def closed_without_ok(path, first):
    """Connects, sends (first), and returns what came back before the end (b"" expected)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(path)
    s.sendall(first)
    got = b""
    try:
        while True:
            c = s.recv(64)
            if not c:
                break
            got += c
    except ConnectionResetError:
        pass  # closed with its unread bytes: a reset is as good an end
    except OSError as e:
        got += f"<{e}>".encode()
    s.close()
    return got


class Console(threading.Thread):
    """Collects mvm's stdout (the serial console) and wakes waiters on each line."""

    def __init__(self, pipe):
        super().__init__(daemon=True)
        self.pipe, self.text, self.cond = pipe, "", threading.Condition()

    def run(self):
        for line in iter(self.pipe.readline, b""):
            with self.cond:
                self.text += line.decode(errors="replace")
                self.cond.notify_all()
        with self.cond:
            self.text += "\n<EOF>"
            self.cond.notify_all()

    def wait_for(self, pattern, timeout):
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                m = re.search(pattern, self.text)
                if m or "<EOF>" in self.text:
                    return m
                left = end - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)


def main():
    for k in ("MVM_VMLINUX", "MVM_INITRAMFS"):
        if not os.environ.get(k) or not os.path.exists(os.environ[k]):
            mvmtest.skip(f"{k} unset or missing (scripts/test.sh sets it)")
    accel = os.environ.get("MVM_TEST_ACCEL", "dbt")
    c = mvmtest.Checker("vsock")
    tmp = tempfile.mkdtemp(prefix="mvm-vsock-")
    path = os.path.join(tmp, "v.sock")
    size = MB << 20

    # The guest's peers on the host: PATH_5000 (echo) and PATH_7001 (throughput source).
    l5000 = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    l5000.bind(f"{path}_5000")
    l5000.listen(4)
    l5000.settimeout(120)
    l7001 = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    l7001.bind(f"{path}_7001")
    l7001.listen(4)
    l7001.settimeout(300)

    run = ("vsock_test listen 6000 %d & "
           "vsock_test connect 5000 hello-from-guest; echo VSOCK-CONNECT-EXIT $?; "
           "vsock_test connect 5999; echo VSOCK-REFUSED-EXIT $?; "
           "wait $!; echo VSOCK-LISTEN-EXIT $?; "
           "vsock_test sink 7000; echo VSOCK-SINK-EXIT $?; "
           "vsock_test source 7001 %d; echo VSOCK-SOURCE-EXIT $?" % (MANY, size))
    cmdline = f'console=ttyS0 reboot=k panic=-1 mvm.run="{run}"'
    args = [MVM, "run", "--accel", accel, "-m", "256M", "-k", os.environ["MVM_VMLINUX"],
            "-i", os.environ["MVM_INITRAMFS"], "--vsock", f"cid=3,path={path}",
            "--stats", "-p", cmdline]
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    con = Console(proc.stdout)
    con.start()
    try:
        body(c, con, path, l5000, l7001, size)
    finally:
        try:
            proc.wait(timeout=300)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        con.join(5)
        err = proc.stderr.read().decode(errors="replace")
    c.check(proc.returncode == 0, f"mvm exited 0 (got {proc.returncode})",
            mvmtest.Result(proc.returncode, con.text[-3000:], err[-2000:]))
    c.check(not os.path.exists(path), "the socket file is gone after mvm exits")
    # --stats: every connection that reached the guest's or the host's peer, and every byte.
    m = re.search(r"mvm: virtio-vsock: (\d+) connections, (\d+) bytes to the guest, (\d+) "
                  r"from it, (\d+) RSTs sent", err)
    want = (1 + MANY + 2, ECHO + MANY * MANY_BYTES + size,
            16 + ECHO + MANY * MANY_BYTES + len(b"%d\n" % size) + size)
    c.check(m and tuple(int(x) for x in m.groups()[:3]) == want and int(m.group(4)) >= 1,
            f"--stats counts {want} and the RSTs ({m.group(0) if m else err[-500:]})")
    shutil.rmtree(tmp, ignore_errors=True)
    return c.done()


def body(c, con, path, l5000, l7001, size):
    # Guest to host: greeting, then an echo of random bytes; the host closes.
    try:
        s, _ = l5000.accept()
    except OSError as e:
        c.check(False, f"the guest's connection to port 5000 arrives ({e})")
        return
    s.settimeout(60)
    c.check(recv_exact(s, 16) == b"hello-from-guest", "guest to host: the greeting")
    data = os.urandom(ECHO)
    t = threading.Thread(target=s.sendall, args=(data,))
    t.start()
    back = recv_exact(s, ECHO)
    t.join()
    c.check(back == data, f"guest to host: 256 KiB echoed ({len(back)} bytes back)")
    s.close()
    c.check(con.wait_for(r"VSOCK-CONNECT-EXIT 0", 60), "the guest's echo ends with the host")
    c.check(con.wait_for(r"VSOCK-REFUSED-EXIT 1", 60),
            "the guest's connection to a port with no socket is refused")

    # Host to guest: eight connections at once.
    c.check(con.wait_for(r"VSOCK-LISTENING 6000", 60), "the guest listens on 6000")
    socks, ports = [], set()
    for _ in range(MANY):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(60)
        s.connect(path)
        s.sendall(b"CONNECT 6000\n")
        socks.append(s)
    for s in socks:
        line = recv_line(s)
        m = re.fullmatch(rb"OK (\d+)\n", line)
        c.check(m, f"host to guest: 'OK <port>' ({line!r})")
        if m:
            ports.add(int(m.group(1)))
    c.check(len(ports) == MANY, f"{MANY} connections, {MANY} host ports ({sorted(ports)})")
    payloads = [os.urandom(MANY_BYTES) for _ in socks]
    senders = [threading.Thread(target=s.sendall, args=(p,)) for s, p in zip(socks, payloads)]
    for t in senders:
        t.start()
    results = [None] * MANY

    def reader(i):
        results[i] = recv_exact(socks[i], MANY_BYTES)

    readers = [threading.Thread(target=reader, args=(i,)) for i in range(MANY)]
    for t in readers:
        t.start()
    for t in senders + readers:
        t.join(120)
    c.check(all(r == p for r, p in zip(results, payloads)),
            f"each of {MANY} connections got its own 128 KiB back")
    for s in socks:
        s.close()
    c.check(con.wait_for(r"VSOCK-LISTEN-EXIT 0", 60), "every guest echo ended cleanly")

    # Host peers that break the protocol: closed, no "OK".
    got = closed_without_ok(path, b"GET / HTTP/1.0\r\n\r\n")
    c.check(got == b"", f"a peer sending garbage is closed ({got!r})")
    got = closed_without_ok(path, b"CONNECT " + b"9" * 40)
    c.check(got == b"", f"a peer whose line never ends is closed ({got!r})")
    got = closed_without_ok(path, b"CONNECT 6001\n")
    c.check(got == b"", f"a CONNECT to a port nothing listens on is closed ({got!r})")

    # Throughput, host to guest: the sink answers with the count once the host shuts down.
    c.check(con.wait_for(r"VSOCK-LISTENING 7000", 60), "the guest sink listens on 7000")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(300)
    s.connect(path)
    s.sendall(b"CONNECT 7000\n")
    c.check(recv_line(s).startswith(b"OK "), "the sink accepted")
    chunk = bytes(range(256)) * 256
    start = time.monotonic()
    for _ in range(size // len(chunk)):
        s.sendall(chunk)
    s.shutdown(socket.SHUT_WR)
    count = recv_line(s)
    secs = time.monotonic() - start
    c.check(count == b"%d\n" % size, f"the sink counted {size} bytes ({count!r})")
    print(f"vsock-throughput host-to-guest {size >> 20} MiB in {secs:.2f} s: "
          f"{size / secs / 1e6:.1f} MB/s")
    c.check(recv_line(s) == b"", "the guest's close ends the host's connection")
    s.close()
    c.check(con.wait_for(r"VSOCK-SINK-EXIT 0", 60), "the guest sink exited 0")

    # Throughput, guest to host: the guest's source shuts down its side after SIZE bytes.
    try:
        s, _ = l7001.accept()
    except OSError as e:
        c.check(False, f"the guest source connects ({e})")
        return
    s.settimeout(300)
    total, start = 0, time.monotonic()
    while True:
        b = s.recv(1 << 16)
        if not b:
            break
        total += len(b)
    secs = time.monotonic() - start
    c.check(total == size, f"the host received {size} bytes from the guest ({total})")
    print(f"vsock-throughput guest-to-host {size >> 20} MiB in {secs:.2f} s: "
          f"{size / secs / 1e6:.1f} MB/s")
    s.close()
    c.check(con.wait_for(r"VSOCK-SOURCE-EXIT 0", 60), "the guest source exited 0")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    MVM = sys.argv[1]
    sys.exit(main())
