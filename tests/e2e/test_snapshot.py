#!/usr/bin/env python3
"""Snapshots and restores: Firecracker's calls (PATCH /vm, PUT /snapshot/create, PUT
/snapshot/load) and `mvm run --restore DIR`, on the accelerator MVM_TEST_ACCEL names (KVM by
default; dbt: mvm's engine, no /dev/kvm needed). Under the engine the snapcount guest waits
STEP_MS on its LAPIC timer after each step (it would finish before it could be paused
otherwise), so snapshots catch it halted with its timer armed.

Cases:
  guest    the snapcount guest (its result depends on every step and on all its memory) is
           paused after step 10, snapshotted and resumed: the original finishes; two clones
           restored at once from the same files with --restore finish too, continuing from step
           11; a third is loaded through the API paused (GET / says Paused, nothing runs) and
           resumed. Every one prints the checksum this test computes on its own. Under the
           engine the clones start seconds after the snapshot and the guest's TSC must go on
           from where it was (no step longer than TSC_STEP_MAX_S).
  cli      mvm run --snapshot-dir: SIGUSR2 snapshots the running snapcount guest, which goes
           on to its checksum; --restore continues from there to the same checksum, also with
           --accel auto (which takes the snapshot's accelerator); with
           virtio-vsock too, the clone on a socket of its own (--vsock, same CID; another CID
           is refused) while the original goes on.
  bad      each damaged snapshot is refused before anything starts, with a reason and exit 64:
           a truncated or resized memory file, a flipped byte in the state file, another mvm
           version, a truncated state file, a missing file, the snapshot restored under the
           other accelerator (kvm <-> dbt) or --accel hybrid, and under the engine a snapshot
           of another CPU model; the API refuses a snapshot of a running (not paused) VM; a VM
           with virtio-vsock is loaded with vsock_override on a socket of its own.
  linux    (MVM_VMLINUX/MVM_INITRAMFS, root) in a network namespace of its own, the default
           Linux guest (two vCPUs under the engine, which must both come back) with an ext4
           disk and a NIC on a TAP is booted once, mounts the disk,
           brings the NIC up, and is snapshotted; a clone restored with its own disk copy and
           TAP (-d, -n) runs commands typed on its console, reads and writes the ext4 disk
           (checked on the host with debugfs) and pings the host over its TAP. A clone loaded
           through the API with network_overrides, vsock_override and clock_realtime pings
           the host, reaches the guest's vsock listener through its own socket (the listener
           survives the transport reset) and has the host's clock. A disk count, a MAC or an
           iface_id at restore that does not fit is refused.

Usage: test_snapshot.py MVM GUEST_DIR CASE
"""
import errno
import fcntl
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mvmtest  # noqa: E402
import fcclient  # noqa: E402
from fcclient import curl, fault_says, state  # noqa: E402

MVM, GUEST_DIR, CASE = sys.argv[1], sys.argv[2], sys.argv[3]
WORDS, ITERATIONS = 16 * 1024 // 4, 40  # guest-kernels/tests/snapcount.c
ACCEL = fcclient.ACCEL  # what the API's mvm runs on; mvmtest.command() adds it to "mvm run"
OTHER = "kvm" if ACCEL == "dbt" else "dbt"
# snapcount's wait after each step under the engine, and the longest step its TSC may show
# (1 GHz there) in a clone restored RESTORE_DELAY_S after the snapshot.
STEP_MS = 20 if ACCEL == "dbt" else 0
GUEST_ARGS = f"step_ms={STEP_MS}" if STEP_MS else ""
RESTORE_DELAY_S, TSC_STEP_MAX_S = 3.0, 2.0


def mvm_run(*args):
    """argv of `mvm run args` on the accelerator under test."""
    return mvmtest.command(MVM, ["run", *args])


def expected_checksum():
    a = list(range(WORDS))
    for i in range(1, ITERATIONS + 1):
        a = [(x * 1103515245 + 7 * i + j) & 0xffffffff for j, x in enumerate(a)]
    return "%x" % (sum(a) & 0xffffffff)


def start_guest(c, tmp, name="api.sock", kernel="snapcount", mem=32, extra_puts=()):
    sock = os.path.join(tmp, name)
    vm = fcclient.Mvm(MVM, sock)
    boot = {"kernel_image_path": mvmtest.guest_path(GUEST_DIR, kernel)}
    if GUEST_ARGS:
        boot["boot_args"] = GUEST_ARGS
    for path, body in (("/boot-source", boot),
                       ("/machine-config", {"vcpu_count": 1, "mem_size_mib": mem}),
                       *extra_puts,
                       ("/actions", {"action_type": "InstanceStart"})):
        r = curl(sock, "PUT", path, body)
        c.check(r[0] == 204, f"PUT {path}: {r}", vm)
    return vm, sock


def take_snapshot(c, vm, sock, snap, at_step=10):
    c.check(vm.wait_out(f"STEP {at_step}\r\n", 120), f"the guest reached step {at_step}", vm)
    r = curl(sock, "PATCH", "/vm", {"state": "Paused"})
    c.check(r[0] == 204, f"PATCH /vm Paused: {r}", vm)
    t = time.monotonic()
    r = curl(sock, "PUT", "/snapshot/create", {"snapshot_type": "Full",
                                              "snapshot_path": os.path.join(snap, "state"),
                                              "mem_file_path": os.path.join(snap, "mem")})
    took = time.monotonic() - t
    c.check(r[0] == 204, f"PUT /snapshot/create: {r}", vm)
    # Paused: the guest prints nothing more, but a step it printed just before the pause may
    # still be on its way to vm.out (mvm's console output, the reader thread): wait until the
    # output stops growing, or the clones' first step seems one too far.
    seen = -1
    while seen != len(vm.out):
        seen = len(vm.out)
        time.sleep(0.3)
    steps = [int(x) for x in re.findall(r"STEP (\d+)", vm.out.decode())]
    return max(steps) if steps else 0, took


def case_guest(c, tmp):
    want = expected_checksum()
    snap = os.path.join(tmp, "snap")
    os.mkdir(snap)
    vm, sock = start_guest(c, tmp)
    last, took = take_snapshot(c, vm, sock, snap)
    print(f"snapshot of a 32 MiB guest taken in {took * 1000:.0f} ms (curl round trip "
          f"included); memory file {os.stat(os.path.join(snap, 'mem')).st_blocks * 512} bytes "
          f"on disk of {os.path.getsize(os.path.join(snap, 'mem'))}")
    c.check(os.stat(os.path.join(snap, "mem")).st_blocks * 512 < 8 << 20,
            "the memory file is sparse (most of the 32 MiB guest is zeros)")
    r = curl(sock, "PATCH", "/vm", {"state": "Resumed"})
    c.check(r[0] == 204, f"PATCH /vm Resumed: {r}", vm)
    c.check(vm.wait(300) == 0 and f"CHECKSUM {want}" in vm.out.decode(),
            f"the original finishes with checksum {want}", vm)

    # Two clones at once from the same files (under the engine a while after the snapshot, so
    # that a TSC that jumped over the time between would show).
    if ACCEL == "dbt":
        time.sleep(RESTORE_DELAY_S)
    clones = [subprocess.Popen(mvm_run("--restore", snap), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE) for _ in range(2)]
    for i, p in enumerate(clones):
        try:
            out, err = p.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        out, err = out.decode(errors="replace"), err.decode(errors="replace")
        steps = [int(x) for x in re.findall(r"STEP (\d+)", out)]
        c.check(p.returncode == 0 and f"CHECKSUM {want}" in out,
                f"clone {i} finishes with checksum {want} (status {p.returncode})\n{out}\n{err}")
        c.check(steps and steps[0] == last + 1,
                f"clone {i} continues from step {last + 1}, where the snapshot was taken "
                f"(first step {steps[:1]})")
        c.check("PASS tsc-monotonic" in out, f"clone {i}: the guest's TSC never went back")
        m = re.search(r"TSC-MAX-STEP (\d+)", out)
        if ACCEL == "dbt":
            c.check(m and int(m.group(1)) < TSC_STEP_MAX_S * 1e9,
                    f"clone {i}: the TSC went on from the snapshot's value (longest step "
                    f"{int(m.group(1)) / 1e6 if m else '?'} ms, restored "
                    f"{RESTORE_DELAY_S} s after the snapshot)")

    # Loaded through the API, paused, then resumed.
    sock2 = os.path.join(tmp, "load.sock")
    vm = fcclient.Mvm(MVM, sock2)
    r = curl(sock2, "PUT", "/snapshot/load", {
        "snapshot_path": os.path.join(snap, "state"),
        "mem_backend": {"backend_type": "File", "backend_path": os.path.join(snap, "mem")},
        "resume_vm": False})
    c.check(r[0] == 204, f"PUT /snapshot/load: {r}", vm)
    c.check(state(sock2) == "Paused", "a snapshot loaded with resume_vm false is Paused")
    time.sleep(1)
    c.check(b"STEP" not in vm.out, "nothing runs while it is paused", vm)
    c.check(curl(sock2, "PATCH", "/vm", {"state": "Resumed"})[0] == 204, "PATCH /vm Resumed")
    c.check(vm.wait(300) == 0 and f"CHECKSUM {want}" in vm.out.decode(),
            "the loaded snapshot finishes with the same checksum", vm)


def case_cli(c, tmp):
    """mvm run --snapshot-dir: SIGUSR2 snapshots a running guest, which goes on; --restore
    continues it. With a virtio device the snapshot is refused and the guest goes on."""
    want = expected_checksum()
    snap = os.path.join(tmp, "snap")
    os.mkdir(snap)
    # virtio-rng (on by default) is in the snapshot too.
    args = ["-p", GUEST_ARGS] if GUEST_ARGS else []
    p = subprocess.Popen(mvm_run("--snapshot-dir", snap, *args, "-k",
                                 mvmtest.guest_path(GUEST_DIR, "snapcount")),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    buf = b""
    while b"STEP 5\r\n" not in buf:
        chunk = os.read(p.stdout.fileno(), 4096)
        if not chunk:
            break
        buf += chunk
    p.send_signal(15 if b"STEP 5" not in buf else 12)  # SIGUSR2 (SIGTERM if it never ran)
    out, err = p.communicate(timeout=300)
    out, err = (buf + out).decode(errors="replace"), err.decode(errors="replace")
    c.check(p.returncode == 0 and f"CHECKSUM {want}" in out,
            f"SIGUSR2 snapshots the running guest, which finishes with {want}: {p.returncode}"
            f"\n{out}\n{err}")
    c.check("snapshot written" in err, f"mvm says the snapshot was written: {err}")
    r = mvmtest.run(MVM, ["run", "--restore", snap], timeout=300)
    steps = [int(x) for x in re.findall(r"STEP (\d+)", r.out)]
    c.check(r.status == 0 and f"CHECKSUM {want}" in r.out and steps and steps[0] > 5,
            f"--restore continues from after step 5 to the same checksum: {r}")
    # --accel auto restores on the snapshot's accelerator, whatever it would pick for a boot.
    r = mvmtest.run(MVM, ["run", "--accel", "auto", "--restore", snap], timeout=300)
    c.check(r.status == 0 and f"CHECKSUM {want}" in r.out,
            f"--accel auto restores the {ACCEL} snapshot on {ACCEL}: {r}")

    # With virtio-vsock: the snapshot holds it; the clone gets its own host socket (--vsock,
    # same CID) while the original still listens on its own.
    vsnap, orig_sock = os.path.join(tmp, "vsnap"), os.path.join(tmp, "v.sock")
    os.mkdir(vsnap)
    p = subprocess.Popen(mvm_run("--snapshot-dir", vsnap, "--vsock", f"cid=3,path={orig_sock}",
                                 *args, "-k", mvmtest.guest_path(GUEST_DIR, "snapcount")),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    buf = b""
    while b"STEP 2\r\n" not in buf:
        chunk = os.read(p.stdout.fileno(), 4096)
        if not chunk:
            break
        buf += chunk
    p.send_signal(12)
    deadline = time.monotonic() + 60
    while not os.path.exists(os.path.join(vsnap, "state")) and time.monotonic() < deadline:
        time.sleep(0.05)
    clone_sock = os.path.join(tmp, "v-clone.sock")
    r = mvmtest.run(MVM, ["run", "--restore", vsnap, "--vsock", "cid=4,path=" + clone_sock],
                    timeout=60)
    c.check(r.status == 64 and "keeps CID 3" in r.err, f"--vsock with another CID: refused: {r}")
    r = mvmtest.run(MVM, ["run", "--restore", vsnap, "--vsock", "cid=3,path=" + clone_sock],
                    timeout=300)
    c.check(r.status == 0 and f"CHECKSUM {want}" in r.out,
            f"the clone of a guest with virtio-vsock runs on its own socket to {want}: {r}")
    out, err = p.communicate(timeout=300)
    c.check(p.returncode == 0 and f"CHECKSUM {want}" in (buf + out).decode(errors="replace"),
            f"the original with virtio-vsock finishes too: {p.returncode} {err}")


def corrupt(src, dst, fn):
    shutil.copytree(src, dst)
    fn(dst)


def case_bad(c, tmp):
    snap = os.path.join(tmp, "snap")
    os.mkdir(snap)
    vm, sock = start_guest(c, tmp)
    c.check(vm.wait_out("STEP 2\r\n", 120), "the guest runs", vm)
    r = curl(sock, "PUT", "/snapshot/create", {"snapshot_path": os.path.join(snap, "state"),
                                              "mem_file_path": os.path.join(snap, "mem")})
    c.check(fault_says(r, "must be paused"), f"a running VM is not snapshotted: {r}")
    take_snapshot(c, vm, sock, snap, at_step=3)
    vm.p.terminate()
    vm.wait(30)

    def flip(path, offset):
        with open(path, "r+b") as f:
            f.seek(offset)
            b = f.read(1)
            f.seek(offset)
            f.write(bytes([b[0] ^ 0x20]))

    def set_version(d):
        p = os.path.join(d, "state")
        data = bytearray(open(p, "rb").read())
        data[32:64] = b"0.0.1-other".ljust(32, b"\0")  # struct snap_header.mvm_version
        open(p, "wb").write(data)

    def other_model(d):
        """SNAP_DBT_MODEL's CPUID leaf 1 EAX (the family/model/stepping) changed, the CRC
        made right again: a well-formed state file from another CPU model."""
        p = os.path.join(d, "state")
        data = bytearray(open(p, "rb").read())
        at, n = 64, struct.unpack_from("<I", data, 24)[0]  # struct snap_header
        for _ in range(n):
            typ, _idx, ln = struct.unpack_from("<IIQ", data, at)
            if typ == 23:  # SNAP_DBT_MODEL: cpuid[0] is leaf 0, cpuid[1] leaf 1 (6 words each)
                struct.pack_into("<I", data, at + 16 + 24 + 8, 0x000906ea)
            at += 16 + (ln + 7) // 8 * 8
        struct.pack_into("<I", data, 12, zlib.crc32(bytes(data[64:])))
        open(p, "wb").write(data)

    size = os.path.getsize(os.path.join(snap, "state"))
    damaged = [
        ("truncated memory file", lambda d: os.truncate(os.path.join(d, "mem"), 16 << 20),
         "the snapshot's RAM is"),
        ("grown memory file", lambda d: os.truncate(os.path.join(d, "mem"), 64 << 20),
         "the snapshot's RAM is"),
        ("a flipped byte in the state file",
         lambda d: flip(os.path.join(d, "state"), size // 2), "corrupted"),
        ("another mvm version", set_version, "0.0.1-other"),
        ("a truncated state file", lambda d: os.truncate(os.path.join(d, "state"), size - 9),
         "state file"),
        ("no memory file", lambda d: os.unlink(os.path.join(d, "mem")), "No such file"),
    ]
    if ACCEL == "dbt":
        damaged.append(("another CPU model", other_model, "another CPU model"))
    for i, (what, fn, says) in enumerate(damaged):
        d = os.path.join(tmp, f"bad{i}")
        corrupt(snap, d, fn)
        r = mvmtest.run(MVM, ["run", "--restore", d], timeout=60)
        c.check(r.status == 64 and says in r.err and "STEP" not in r.out,
                f"{what}: refused with 64 naming it ('{says}'), nothing ran: {r}")
    # Under the other accelerator: refused before anything is built (no /dev/kvm needed).
    r = mvmtest.run(MVM, ["run", "--accel", OTHER, "--restore", snap], timeout=30)
    c.check(r.status == 64 and f"taken under --accel {ACCEL}" in r.err and
            f"cannot be restored under --accel {OTHER}" in r.err and "STEP" not in r.out,
            f"a {ACCEL} snapshot with --accel {OTHER}: refused with 64 saying why: {r}")
    r = mvmtest.run(MVM, ["run", "--accel", "hybrid", "--restore", snap], timeout=30)
    c.check(r.status == 64 and "--restore" in r.err and "STEP" not in r.out,
            f"--restore with --accel hybrid: refused: {r}")
    r = mvmtest.run(MVM, ["run", "--restore", snap, "-k", "x"], timeout=30)
    c.check(r.status == 64, f"--restore with -k: {r}")
    img = os.path.join(tmp, "disk.img")
    with open(img, "wb") as f:
        f.truncate(1 << 20)
    r = mvmtest.run(MVM, ["run", "--restore", snap, "-d", img], timeout=30)
    c.check(r.status == 64 and "the snapshot has 0 disk(s)" in r.err and "STEP" not in r.out,
            f"a disk the snapshot does not have: refused naming the count: {r}")

    # A VM with virtio-vsock: loaded through the API with vsock_override (its own socket).
    vs = os.path.join(tmp, "vs")
    os.mkdir(vs)
    vm, sock = start_guest(c, tmp, name="vsock.sock", extra_puts=(
        ("/vsock", {"guest_cid": 3, "uds_path": os.path.join(tmp, "v.sock")}),))
    take_snapshot(c, vm, sock, vs, at_step=2)
    c.check(curl(sock, "PATCH", "/vm", {"state": "Resumed"})[0] == 204, "resumed")
    sock2 = os.path.join(tmp, "vload.sock")
    vm2 = fcclient.Mvm(MVM, sock2)
    r = curl(sock2, "PUT", "/snapshot/load", {
        "snapshot_path": os.path.join(vs, "state"),
        "mem_backend": {"backend_type": "File", "backend_path": os.path.join(vs, "mem")},
        "vsock_override": {"uds_path": os.path.join(tmp, "v-clone.sock")}, "resume_vm": True})
    c.check(r[0] == 204, f"PUT /snapshot/load with vsock_override: {r}", vm2)
    c.check(vm2.wait(300) == 0 and f"CHECKSUM {expected_checksum()}" in vm2.out.decode(),
            "the clone with its own vsock socket finishes", vm2)
    c.check(vm.wait(300) == 0, "the original still finishes", vm)

    # A VM with a virtio-balloon cannot be snapshotted yet: said so, and it keeps running.
    vm, sock = start_guest(c, tmp, name="balloon.sock", extra_puts=(
        ("/balloon", {"amount_mib": 0, "deflate_on_oom": False}),))
    c.check(vm.wait_out("STEP 1\r\n", 120), "the guest with virtio-balloon runs", vm)
    c.check(curl(sock, "PATCH", "/vm", {"state": "Paused"})[0] == 204, "paused")
    r = curl(sock, "PUT", "/snapshot/create", {"snapshot_path": os.path.join(tmp, "b.state"),
                                              "mem_file_path": os.path.join(tmp, "b.mem")})
    c.check(fault_says(r, "virtio-balloon"), f"a VM with a balloon is refused, saying why: {r}")
    c.check(not os.path.exists(os.path.join(tmp, "b.state")), "and no state file is left")
    c.check(curl(sock, "PATCH", "/vm", {"state": "Resumed"})[0] == 204, "resumed")
    c.check(vm.wait(300) == 0, "the guest still finishes", vm)


TAP_A, TAP_B, HOST_IP, GUEST_IP = "mvmsnap0", "mvmsnap1", "10.210.0.1", "10.210.0.2"
# Under the engine (seconds per boot) the Linux guest has two vCPUs: both come back.
NCPUS_LINUX = 2 if ACCEL == "dbt" else 1


def sh(*args):
    return subprocess.run(list(args), capture_output=True, text=True)


def wait_re(vm, pattern, timeout):
    """The first match of (pattern) in the console of (vm) within (timeout) s, or None: a line
    can arrive in pieces, so wait_out() on its start is not enough."""
    deadline = time.monotonic() + timeout
    while True:
        m = re.search(pattern, vm.out.decode(errors="replace"))
        if m or time.monotonic() > deadline:
            return m
        time.sleep(0.05)


def vsock_connect(path):
    """A host connection to the guest's vsock port 6000 through mvm's socket (path), or None."""
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(180)
        s.connect(path)
        s.sendall(b"CONNECT 6000\n")
        line = b""
        while not line.endswith(b"\n"):
            chunk = s.recv(1)
            if not chunk:
                return None
            line += chunk
        return s if re.fullmatch(rb"OK \d+\n", line) else None
    except OSError:
        return None


def vsock_echo(s, msg):
    try:
        s.sendall(msg)
        got = b""
        while len(got) < len(msg):
            chunk = s.recv(len(msg) - len(got))
            if not chunk:
                break
            got += chunk
        return got == msg
    except OSError:
        return False


def tap_free(name):
    """Whether TAP (name) can be attached (TUNSETIFF does not say EBUSY)."""
    fd = os.open("/dev/net/tun", os.O_RDWR)
    try:
        fcntl.ioctl(fd, 0x400454ca, struct.pack("16sH", name.encode(), 0x0002 | 0x1000))
        return True
    except OSError as e:
        return e.errno != errno.EBUSY
    finally:
        os.close(fd)


def case_linux(c, tmp):
    """Runs case_linux_netns inside a network namespace this test creates (mvmtest-snap-PID,
    deleted at the end even on failure: both TAPs and every address live in it)."""
    if os.geteuid() != 0:
        mvmtest.skip("network namespaces and TAPs need root")
    for k in ("MVM_VMLINUX", "MVM_INITRAMFS"):
        if not os.environ.get(k) or not os.path.exists(os.environ[k]):
            mvmtest.skip(f"{k} unset or missing (scripts/test.sh sets it)")
    ns = f"mvmtest-snap-{os.getpid()}"
    r = sh("ip", "netns", "add", ns)
    if r.returncode != 0:
        mvmtest.skip(f"ip netns add: {r.stderr.strip()}")
    try:
        p = subprocess.run(["ip", "netns", "exec", ns, sys.executable, os.path.abspath(__file__),
                            MVM, GUEST_DIR, "linux-netns"], timeout=1800)
        sys.exit(p.returncode)
    finally:
        sh("ip", "netns", "delete", ns)


def case_linux_netns(c, tmp):
    """The default Linux guest with an ext4 disk and a NIC is booted once through the API,
    mounts the disk and brings its NIC up, and is snapshotted. A clone is restored with its own
    copy of the disk and its own TAP (-d, -n): its shell answers on the console, reads and
    writes the ext4 disk (the host finds the file in the clone's copy with debugfs, not in the
    original's) and pings the host over the new TAP."""
    sh("ip", "link", "set", "lo", "up")
    for cmd in (["ip", "tuntap", "add", "dev", TAP_A, "mode", "tap"],
                ["ip", "addr", "add", f"{HOST_IP}/24", "dev", TAP_A],
                ["ip", "link", "set", TAP_A, "up"],
                ["ip", "tuntap", "add", "dev", TAP_B, "mode", "tap"]):
        r = sh(*cmd)
        if not c.check(r.returncode == 0, f"{' '.join(cmd)}: {r.stderr.strip()}"):
            c.done()
    files = os.path.join(tmp, "files")
    os.mkdir(files)
    with open(os.path.join(files, "hello"), "w") as f:
        f.write("hello from the host\n")
    disk_a, disk_b = os.path.join(tmp, "a.ext4"), os.path.join(tmp, "b.ext4")
    p = subprocess.run(["mkfs.ext4", "-q", "-F", "-d", files, disk_a, "16M"], capture_output=True)
    if p.returncode != 0:
        mvmtest.skip(f"mkfs.ext4 failed: {p.stderr.decode(errors='replace')}")
    snap = os.path.join(tmp, "snap")
    os.mkdir(snap)
    vsock_a = os.path.join(tmp, "v.sock")
    sock = os.path.join(tmp, "linux.sock")
    vm = fcclient.Mvm(MVM, sock)
    for path, body in (("/boot-source", {"kernel_image_path": os.environ["MVM_VMLINUX"],
                                         "initrd_path": os.environ["MVM_INITRAMFS"],
                                         "boot_args": "console=ttyS0 reboot=k panic=-1"}),
                       ("/machine-config", {"vcpu_count": NCPUS_LINUX, "mem_size_mib": 256}),
                       ("/drives/data", {"drive_id": "data", "path_on_host": disk_a,
                                         "is_root_device": False, "is_read_only": False}),
                       ("/network-interfaces/eth0", {"iface_id": "eth0",
                                                     "host_dev_name": TAP_A}),
                       ("/vsock", {"guest_cid": 3, "uds_path": vsock_a}),
                       ("/actions", {"action_type": "InstanceStart"})):
        c.check(curl(sock, "PUT", path, body)[0] == 204, f"PUT {path}", vm)
    t = time.monotonic()
    c.check(vm.wait_out("MVM-INIT-READY", 900), "Linux boots", vm)
    boot = time.monotonic() - t
    # A guest listener on vsock port 6000 (an echo per connection), and a host connection to
    # it that is open when the snapshot is taken.
    vm.send("vsock_test listen 6000 4 &\n")
    c.check(vm.wait_out("VSOCK-LISTENING 6000", 300), "the guest listens on vsock port 6000", vm)
    held = vsock_connect(vsock_a)
    c.check(held and vsock_echo(held, b"before the snapshot\n"),
            "a host connection to the guest's vsock listener echoes", vm)
    vm.send(f"mkdir -p /mnt/d && mount -t ext4 /dev/vda /mnt/d && ip link set eth0 up && "
            f"ip addr add {GUEST_IP}/24 dev eth0 && ping -c 1 -W 20 {HOST_IP} >/dev/null && "
            f"echo SETUP-$((20+1)) DATE0 $(date +%s) END0\n")
    c.check(vm.wait_out("SETUP-21", 600), "the original mounts its disk and pings the host",
            vm)
    # The guest's clock against the host's just before the snapshot (a guest kernel on KVM-PVM
    # may keep its own rate, so the clone is compared with this offset, not with zero).
    m = wait_re(vm, r"DATE0 (\d+) END0", 60)
    offset0 = int(m.group(1)) - time.time() if m else 0.0
    c.check(curl(sock, "PATCH", "/vm", {"state": "Paused"})[0] == 204, "paused")
    t = time.monotonic()
    r = curl(sock, "PUT", "/snapshot/create", {"snapshot_path": os.path.join(snap, "state"),
                                              "mem_file_path": os.path.join(snap, "mem")})
    took = time.monotonic() - t
    snapped = time.monotonic()
    c.check(r[0] == 204, f"snapshot of Linux with a disk and a NIC: {r}", vm)
    # Stopped, not killed: mvm removes its vsock socket file on the way out.
    vm.p.terminate()
    vm.wait(60)
    if held:
        held.close()
    # The clone's own disk (a copy of the original's as of the snapshot) and TAP, which takes
    # over the host address of the original's.
    # The clone's ARP cache holds the MAC of the original's host end: the clone's host end
    # takes it over with the address, as a clone's network must look the same to the guest.
    shutil.copyfile(disk_a, disk_b)
    with open(f"/sys/class/net/{TAP_A}/address") as f:
        host_mac = f.read().strip()
    for cmd in (["ip", "link", "del", TAP_A], ["ip", "link", "set", TAP_B, "address", host_mac],
                ["ip", "addr", "add", f"{HOST_IP}/24", "dev", TAP_B],
                ["ip", "link", "set", TAP_B, "up"]):
        r = sh(*cmd)
        c.check(r.returncode == 0, f"{' '.join(cmd)}: {r.stderr.strip()}")
    # Through the API: PUT /snapshot/load with Firecracker's network_overrides puts eth0 on
    # the new TAP (the disk stays the snapshot's own, which this clone only reads).
    def api_load(name, overrides, clock_realtime=False):
        sock = os.path.join(tmp, name)
        vm = fcclient.Mvm(MVM, sock)
        r = curl(sock, "PUT", "/snapshot/load", {
            "snapshot_path": os.path.join(snap, "state"),
            "mem_backend": {"backend_type": "File", "backend_path": os.path.join(snap, "mem")},
            "resume_vm": True, "network_overrides": overrides,
            "clock_realtime": clock_realtime,
            "vsock_override": {"uds_path": os.path.join(tmp, "v-clone.sock")}})
        return vm, r

    vm, r = api_load("bad-load.sock", [{"iface_id": "nope", "host_dev_name": TAP_B}])
    c.check(r[0] == 400 and fault_says(r, "no network interface 'nope'"),
            f"network_overrides naming a NIC the snapshot lacks: 400 naming it: {r}", vm)
    vm.p.kill()
    vm.wait(30)
    # clock_realtime: the clone wakes with the host's date, not the snapshot's (at least 30 s
    # behind by now).
    time.sleep(max(0.0, 30 - (time.monotonic() - snapped)))
    vm, r = api_load("load.sock", [{"iface_id": "eth0", "host_dev_name": TAP_B}],
                     clock_realtime=True)
    c.check(r[0] == 204, f"PUT /snapshot/load with network_overrides: {r}", vm)
    # The guest's listener survived the transport reset the restored vsock device sent; the
    # clone's own socket (vsock_override) reaches it.
    conn = vsock_connect(os.path.join(tmp, "v-clone.sock"))
    c.check(conn and vsock_echo(conn, b"after the restore\n"),
            "the clone's vsock socket reaches the guest's listener, which echoes", vm)
    vm.send(f"echo CLOCKSOURCE $(cat /sys/devices/system/clocksource/clocksource0/"
            f"current_clocksource) GUEST-DATE $(date +%s) END; "
            f"ping -c 2 -W 20 {HOST_IP} >/dev/null && echo API-PING-$((4*4))\n")
    c.check(vm.wait_out("API-PING-16", 300),
            "the clone loaded through the API pings the host over the overriding TAP", vm)
    m = wait_re(vm, r"CLOCKSOURCE (\S+) GUEST-DATE (\d+) END", 60)
    if c.check(m, "the clone printed its date", vm):
        offset1 = int(m.group(2)) - time.time()
        print(f"clone clocksource {m.group(1)}; guest date - host date: {offset0:.1f} s at the "
              f"snapshot, {offset1:.1f} s in the clone {time.monotonic() - snapped:.0f} s later")
        c.check(abs(offset1 - offset0) < 12,
                f"with clock_realtime the clone's clock went on with the host's (offset "
                f"{offset0:.1f} s before, {offset1:.1f} s after; without it the clone would "
                f"lag by the time since the snapshot)")
    vm.p.terminate()
    vm.wait(60)
    # The kernel lets go of a TAP an io_uring had registered a moment after the process ends.
    for _ in range(100):
        if tap_free(TAP_B):
            break
        time.sleep(0.2)
    r = mvmtest.run(MVM, ["run", "--restore", snap, "-d", disk_b, "-d", disk_a], timeout=60)
    c.check(r.status == 64 and "the snapshot has 1 disk(s)" in r.err,
            f"--restore with two disks for the snapshot's one: refused: {r}")
    r = mvmtest.run(MVM, ["run", "--restore", snap, "-n", f"tap={TAP_B},mac=02:00:00:00:00:01"],
                    timeout=60)
    c.check(r.status == 64 and "keeps the MAC" in r.err, f"a MAC at restore: refused: {r}")
    # The restored shell: commands typed on its console run (markers the shell computes, so
    # the console's echo of the typed line cannot match).
    t = time.monotonic()
    p = subprocess.Popen(mvm_run("--restore", snap, "-d", disk_b, "-n", f"tap={TAP_B}"),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdin.write(f"echo RESTORED-$((6*7)); uname -s; echo CPUS-$(nproc)-ONLINE; "
                  f"cat /mnt/d/hello; "
                  f"echo written by the clone > /mnt/d/clone && sync && "
                  f"echo WROTE-$((5*5)); "
                  f"ping -c 2 -W 20 {HOST_IP} >/dev/null && echo PING-$((3*7)); "
                  f"umount /mnt/d && echo UMOUNT-$((2*4)); reboot -f\n".encode())
    p.stdin.flush()
    try:
        out, err = p.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    took_restore = time.monotonic() - t
    out, err = out.decode(errors="replace"), err.decode(errors="replace")
    what = f"(status {p.returncode})\n{out[-3000:]}\n{err[-3000:]}"
    c.check("RESTORED-42" in out and "Linux" in out,
            f"the restored Linux shell runs commands {what}")
    c.check(f"CPUS-{NCPUS_LINUX}-ONLINE" in out, f"the clone runs {NCPUS_LINUX} vCPU(s) {what}")
    c.check("hello from the host" in out, f"the clone reads its ext4 disk {what}")
    c.check("WROTE-25" in out and "UMOUNT-8" in out,
            f"the clone writes, syncs and unmounts its ext4 disk {what}")
    c.check("PING-21" in out, f"the clone pings the host over its own TAP {what}")
    got = subprocess.run(["debugfs", "-R", "cat /clone", disk_b], capture_output=True, text=True)
    c.check("written by the clone" in got.stdout,
            f"the clone's file is in the clone's disk copy: {got.stdout!r} {got.stderr!r}")
    got = subprocess.run(["debugfs", "-R", "cat /clone", disk_a], capture_output=True, text=True)
    c.check("written by the clone" not in got.stdout, "and not in the original's disk")
    print(f"boot to MVM-INIT-READY {boot:.1f} s; snapshot {took * 1000:.0f} ms (curl round "
          f"trip included); restore, run the commands and reboot {took_restore:.2f} s")


def main():
    mvmtest.require_kvm()
    c = mvmtest.Checker(f"snapshot-{CASE}")
    with tempfile.TemporaryDirectory(prefix="mvm-snap-") as tmp:
        {"guest": case_guest, "bad": case_bad, "cli": case_cli,
         "linux": case_linux, "linux-netns": case_linux_netns}[CASE](c, tmp)
    c.done()


main()
