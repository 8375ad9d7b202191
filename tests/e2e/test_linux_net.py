#!/usr/bin/env python3
"""Linux on virtio-net and virtio-rng, in one boot, inside a network namespace this test creates
(mvmtest-net-PID, deleted at the end even on failure; the TAP and both addresses live in it, no
traffic leaves it).

Two NICs. The guest brings eth0 up as 10.200.0.2/24 and eth1 as 10.201.0.2/24, pings the host
end of each TAP (10.200.0.1, 10.201.0.1), receives 4 MiB of random data from a TCP server of
this test (busybox nc -e dd bs=64k, so the socket sees 64 KiB reads and writes), prints its
SHA-256 and sends the same bytes back to another server; the test compares both with its own,
checks that frames larger than the MTU crossed the TAP in each direction (TSO/GSO offloads at
work) and reports the throughput it saw. The guest also reads /dev/hwrng (virtio-rng).

Usage: test_linux_net.py MVM          (needs MVM_VMLINUX and MVM_INITRAMFS, and root)
"""
import hashlib
import os
import re
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mvmtest  # noqa: E402

TAP, HOST_IP, GUEST_IP = "mvmtap0", "10.200.0.1", "10.200.0.2"
TAP2, HOST2_IP, GUEST2_IP = "mvmtap1", "10.201.0.1", "10.201.0.2"  # the second NIC
SIZE = 4 << 20
PORT_IN, PORT_OUT = 5001, 5002


def sh(*args):
    return subprocess.run(list(args), capture_output=True, text=True)


def outer():
    if os.geteuid() != 0:
        mvmtest.skip("network namespaces and TAPs need root")
    for k in ("MVM_VMLINUX", "MVM_INITRAMFS"):
        if not os.environ.get(k) or not os.path.exists(os.environ[k]):
            mvmtest.skip(f"{k} unset or missing (scripts/test.sh sets it)")
    ns = f"mvmtest-net-{os.getpid()}"
    r = sh("ip", "netns", "add", ns)
    if r.returncode != 0:
        mvmtest.skip(f"ip netns add: {r.stderr.strip()}")
    try:
        p = subprocess.run(["ip", "netns", "exec", ns, sys.executable,
                            os.path.abspath(__file__), MVM, "--inner"], timeout=900)
        return p.returncode
    finally:
        sh("ip", "netns", "delete", ns)


class Server(threading.Thread):
    """One TCP connection on HOST_IP:port: receives SIZE bytes, or sends (data)."""

    def __init__(self, port, data=None):
        super().__init__(daemon=True)
        self.sock = socket.create_server((HOST_IP, port))
        self.sock.settimeout(600)
        self.data, self.received, self.seconds = data, bytearray(), None

    def run(self):
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        start = time.monotonic()
        with conn:
            if self.data is None:
                while len(self.received) < SIZE:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    self.received += chunk
            else:
                conn.sendall(self.data)
        self.seconds = time.monotonic() - start


class Sniffer(threading.Thread):
    """The largest frame in each direction on (ifname): above 1514 bytes means a segmentation
    offload (TSO/GSO) frame crossed the TAP whole."""

    def __init__(self, ifname):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
        self.sock.bind((ifname, 0x0003))  # ETH_P_ALL: outgoing frames too
        self.sock.settimeout(0.5)
        self.from_guest, self.to_guest, self.stop = 0, 0, False

    def run(self):
        while not self.stop:
            try:
                frame, addr = self.sock.recvfrom(1 << 17)
            except OSError:
                continue
            if addr[2] == socket.PACKET_OUTGOING:
                self.to_guest = max(self.to_guest, len(frame))
            else:
                self.from_guest = max(self.from_guest, len(frame))


def inner():
    c = mvmtest.Checker("linux-net")
    sh("ip", "link", "set", "lo", "up")
    for cmd in (["ip", "tuntap", "add", "dev", TAP, "mode", "tap"],
                ["ip", "addr", "add", f"{HOST_IP}/24", "dev", TAP],
                ["ip", "link", "set", TAP, "up"],
                ["ip", "tuntap", "add", "dev", TAP2, "mode", "tap"],
                ["ip", "addr", "add", f"{HOST2_IP}/24", "dev", TAP2],
                ["ip", "link", "set", TAP2, "up"]):
        r = sh(*cmd)
        if not c.check(r.returncode == 0, f"{' '.join(cmd)}: {r.stderr.strip()}"):
            c.done()
    sniffer = Sniffer(TAP)
    sniffer.start()
    to_guest = os.urandom(SIZE)
    rx, tx = Server(PORT_IN), Server(PORT_OUT, to_guest)
    rx.start()
    tx.start()
    run = ("ip link set eth0 up; ip addr add %s/24 dev eth0; "
           "ping -c 2 -W 10 %s && echo PING-OK; "
           "ip link set eth1 up; ip addr add %s/24 dev eth1; "
           "ping -c 2 -W 10 %s && echo PING1-OK; "
           "nc %s %d -e dd of=/tmp/in bs=64k; echo IN-SHA $(sha256sum /tmp/in); "
           "nc %s %d -e dd if=/tmp/in bs=64k; "
           "dd if=/dev/hwrng bs=32 count=1 2>/dev/null | wc -c | sed 's/^/HWRNG-BYTES /'"
           % (GUEST_IP, HOST_IP, GUEST2_IP, HOST2_IP, HOST_IP, PORT_OUT, HOST_IP, PORT_IN))
    r = mvmtest.run(MVM, ["run", "--stats", "-k", os.environ["MVM_VMLINUX"], "-i",
                          os.environ["MVM_INITRAMFS"], "-n", f"tap={TAP}",
                          "-n", f"tap={TAP2}",
                          "-p", f'console=ttyS0 reboot=k panic=-1 mvm.run="{run}"'],
                    timeout=800)
    c.check(r.status == 0 and "MVM-RUN-EXIT" in r.out, f"the guest ran and rebooted "
            f"(status {r.status})", r)
    c.check("PING-OK" in r.out, "the guest pinged the host end of the TAP", r)
    c.check("PING1-OK" in r.out, "the second NIC (eth1) reached its own TAP", r)
    m = re.search(r"IN-SHA ([0-9a-f]{64})", r.out)
    c.check(m and m.group(1) == hashlib.sha256(to_guest).hexdigest(),
            f"{SIZE >> 20} MiB host -> guest arrived intact", r)
    c.check(len(rx.received) == SIZE and rx.received == to_guest,
            f"the same {SIZE >> 20} MiB guest -> host arrived intact", r)
    c.check(re.search(r"HWRNG-BYTES\s+32", r.out), "/dev/hwrng gave 32 bytes", r)
    sniffer.stop = True
    # Frames above the MTU on the TAP are TSO/GSO frames; mvm's own counters (--stats) say
    # it moved such frames whole between the TAP and the guest's buffers, and dropped none.
    print(f"largest frame on {TAP}: from the guest {sniffer.from_guest} bytes, "
          f"to the guest {sniffer.to_guest} bytes")
    c.check(sniffer.from_guest > 1514, "the guest sent TSO frames larger than the MTU")
    c.check(sniffer.to_guest > 1514, "the host sent the guest GSO frames larger than the MTU")
    m = re.search(r"virtio-net 0: received (\d+) frames, (\d+) bytes, largest (\d+), "
                  r"(\d+) dropped; sent (\d+) frames, (\d+) bytes, largest (\d+), (\d+) "
                  r"dropped", r.err)
    if c.check(m, "mvm --stats printed eth0's counters", r):
        rxp, rxb, rxl, rxd, txp, txb, txl, txd = (int(x) for x in m.groups())
        print(f"mvm eth0: to the guest {rxp} frames, {rxb} bytes, largest {rxl}, {rxd} "
              f"dropped; from the guest {txp} frames, {txb} bytes, largest {txl}, {txd} dropped")
        c.check(rxb >= SIZE and txb >= SIZE, "mvm counted both transfers")
        c.check(rxl > 1514, "mvm put a frame larger than the MTU into the guest's buffers")
        c.check(txl > 1514, "mvm wrote a TSO frame from the guest to the TAP")
        c.check(rxd == 0 and txd == 0, "mvm dropped no frame")
    for what, srv in (("guest -> host", rx), ("host -> guest", tx)):
        if srv.seconds:
            print(f"TCP {what}: {SIZE / srv.seconds / 1e6:.2f} MB/s "
                  f"({SIZE} bytes in {srv.seconds:.2f} s)")
    c.done()


if __name__ == "__main__":
    MVM = sys.argv[1]
    if "--inner" in sys.argv:
        inner()
    mvmtest.require_kvm()
    sys.exit(outer())
