#!/usr/bin/env python3
"""Snapshots and restores (KVM): Firecracker's calls (PATCH /vm, PUT /snapshot/create, PUT
/snapshot/load) and `mvm run --restore DIR`.

Cases:
  guest    the snapcount guest (its result depends on every step and on all its memory) is
           paused after step 10, snapshotted and resumed: the original finishes; two clones
           restored at once from the same files with --restore finish too, continuing from step
           11; a third is loaded through the API paused (GET / says Paused, nothing runs) and
           resumed. Every one prints the checksum this test computes on its own.
  cli      mvm run --snapshot-dir: SIGUSR2 snapshots the running snapcount guest, which goes
           on to its checksum; --restore continues from there to the same checksum; with a
           virtio device the snapshot is refused and the guest goes on.
  bad      each damaged snapshot is refused before anything starts, with a reason and exit 64:
           a truncated or resized memory file, a flipped byte in the state file, another mvm
           version, a truncated state file, a missing file, --restore with --accel dbt; the API
           refuses a snapshot of a running (not paused) VM and of one with a virtio device.
  linux    (MVM_VMLINUX/MVM_INITRAMFS) the default Linux guest is booted once, snapshotted after
           MVM-INIT-READY, and restored: the restored shell runs commands typed on its console.

Usage: test_snapshot.py MVM GUEST_DIR CASE
"""
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mvmtest  # noqa: E402
import fcclient  # noqa: E402
from fcclient import curl, fault_says, state  # noqa: E402

MVM, GUEST_DIR, CASE = sys.argv[1], sys.argv[2], sys.argv[3]
WORDS, ITERATIONS = 16 * 1024 // 4, 40  # guest-kernels/tests/snapcount.c


def expected_checksum():
    a = list(range(WORDS))
    for i in range(1, ITERATIONS + 1):
        a = [(x * 1103515245 + 7 * i + j) & 0xffffffff for j, x in enumerate(a)]
    return "%x" % (sum(a) & 0xffffffff)


def start_guest(c, tmp, name="api.sock", kernel="snapcount", mem=32, extra_puts=()):
    sock = os.path.join(tmp, name)
    vm = fcclient.Mvm(MVM, sock)
    for path, body in (("/boot-source", {"kernel_image_path":
                                         mvmtest.guest_path(GUEST_DIR, kernel)}),
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

    # Two clones at once from the same files.
    clones = [subprocess.Popen([MVM, "run", "--restore", snap], stdout=subprocess.PIPE,
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
    p = subprocess.Popen([MVM, "run", "--no-rng", "--snapshot-dir", snap, "-k",
                          mvmtest.guest_path(GUEST_DIR, "snapcount")],
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

    # With virtio-rng: refused, said so, the guest goes on.
    p = subprocess.Popen([MVM, "run", "--snapshot-dir", os.path.join(tmp, "none"), "-k",
                          mvmtest.guest_path(GUEST_DIR, "snapcount")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    buf = b""
    while b"STEP 2\r\n" not in buf:
        chunk = os.read(p.stdout.fileno(), 4096)
        if not chunk:
            break
        buf += chunk
    p.send_signal(12)
    out, err = p.communicate(timeout=300)
    err = err.decode(errors="replace")
    c.check(p.returncode == 0 and "virtio" in err and
            not os.path.exists(os.path.join(tmp, "none", "state")),
            f"with virtio-rng the snapshot is refused naming virtio, the guest finishes: "
            f"{p.returncode} {err}")


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
    for i, (what, fn, says) in enumerate(damaged):
        d = os.path.join(tmp, f"bad{i}")
        corrupt(snap, d, fn)
        r = mvmtest.run(MVM, ["run", "--restore", d], timeout=60)
        c.check(r.status == 64 and says in r.err and "STEP" not in r.out,
                f"{what}: refused with 64 naming it ('{says}'), nothing ran: {r}")
    r = mvmtest.run(MVM, ["run", "--restore", snap, "--accel", "dbt"], timeout=30)
    c.check(r.status == 64 and "--restore" in r.err, f"--restore with --accel dbt: {r}")
    r = mvmtest.run(MVM, ["run", "--restore", snap, "-k", "x"], timeout=30)
    c.check(r.status == 64, f"--restore with -k: {r}")

    # A VM with a virtio device cannot be snapshotted yet: said so, and it keeps running.
    vm, sock = start_guest(c, tmp, name="rng.sock", extra_puts=(("/entropy", {}),))
    c.check(vm.wait_out("STEP 1\r\n", 120), "the guest with virtio-rng runs", vm)
    c.check(curl(sock, "PATCH", "/vm", {"state": "Paused"})[0] == 204, "paused")
    r = curl(sock, "PUT", "/snapshot/create", {"snapshot_path": os.path.join(tmp, "x.state"),
                                              "mem_file_path": os.path.join(tmp, "x.mem")})
    c.check(fault_says(r, "virtio"), f"a VM with virtio-rng is refused, saying why: {r}")
    c.check(not os.path.exists(os.path.join(tmp, "x.state")), "and no state file is left")
    c.check(curl(sock, "PATCH", "/vm", {"state": "Resumed"})[0] == 204, "resumed")
    c.check(vm.wait(300) == 0, "the guest still finishes", vm)


def case_linux(c, tmp):
    for k in ("MVM_VMLINUX", "MVM_INITRAMFS"):
        if not os.environ.get(k) or not os.path.exists(os.environ[k]):
            mvmtest.skip(f"{k} unset or missing (scripts/test.sh sets it)")
    snap = os.path.join(tmp, "snap")
    os.mkdir(snap)
    sock = os.path.join(tmp, "linux.sock")
    vm = fcclient.Mvm(MVM, sock)
    for path, body in (("/boot-source", {"kernel_image_path": os.environ["MVM_VMLINUX"],
                                         "initrd_path": os.environ["MVM_INITRAMFS"],
                                         "boot_args": "console=ttyS0 reboot=k panic=-1"}),
                       ("/machine-config", {"vcpu_count": 1, "mem_size_mib": 256}),
                       ("/actions", {"action_type": "InstanceStart"})):
        c.check(curl(sock, "PUT", path, body)[0] == 204, f"PUT {path}", vm)
    t = time.monotonic()
    c.check(vm.wait_out("MVM-INIT-READY", 900), "Linux boots", vm)
    boot = time.monotonic() - t
    c.check(curl(sock, "PATCH", "/vm", {"state": "Paused"})[0] == 204, "paused")
    r = curl(sock, "PUT", "/snapshot/create", {"snapshot_path": os.path.join(snap, "state"),
                                              "mem_file_path": os.path.join(snap, "mem")})
    c.check(r[0] == 204, f"snapshot of Linux: {r}", vm)
    vm.p.terminate()
    vm.wait(30)
    # The restored shell: a command typed on its console runs (a marker the shell computes,
    # so the console's echo of the typed line cannot match).
    t = time.monotonic()
    p = subprocess.Popen([MVM, "run", "--restore", snap], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdin.write(b"echo RESTORED-$((6*7)); uname -s; reboot -f\n")
    p.stdin.flush()
    try:
        out, err = p.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    took = time.monotonic() - t
    out, err = out.decode(errors="replace"), err.decode(errors="replace")
    c.check("RESTORED-42" in out and "Linux" in out,
            f"the restored Linux shell runs commands (status {p.returncode})\n{out[-2000:]}\n"
            f"{err[-2000:]}")
    print(f"boot to MVM-INIT-READY {boot:.1f} s; restore, run a command and reboot "
          f"{took:.2f} s")


def main():
    mvmtest.require_kvm()
    c = mvmtest.Checker(f"snapshot-{CASE}")
    with tempfile.TemporaryDirectory(prefix="mvm-snap-") as tmp:
        {"guest": case_guest, "bad": case_bad, "cli": case_cli,
         "linux": case_linux}[CASE](c, tmp)
    c.done()


main()
