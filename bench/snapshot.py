#!/usr/bin/env python3
"""bench/snapshot.py: what a snapshot saves on the default Linux guest under KVM or mvm's
engine (--accel dbt): the boot it replaces against the restore, on the same guest and machine,
as a ratio.

Usage: bench/snapshot.py MVM VMLINUX INITRAMFS [--accel kvm|dbt] [--runs N] [--out PREFIX]

Boots the default guest once through the Firecracker API (1 vCPU, 256 MiB, serial console) and
times exec to MVM-INIT-READY; pauses it and times PUT /snapshot/create (the HTTP round trip
included) and the files' sizes (apparent and on disk); then N times restores it with
`mvm run --restore` and times exec to the restored guest's first instruction (mvm's last line
before it, "restored: the guest goes on", read on its stderr with MVM_LOG=info) and to the
restored shell answering a command typed on its console (a marker the shell computes), the
clone's RSS then, and N clones started at once.
Prints markdown and writes PREFIX.md and PREFIX.json when --out is given. A benchmark, not a
test: it never judges the numbers.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "e2e"))
import fcclient  # noqa: E402
from fcclient import curl  # noqa: E402


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def restore(mvm, snap, accel):
    """exec -> first instruction, exec -> answer; returns (seconds to the first instruction,
    seconds to the answer, RSS KiB at the answer, process)."""
    first = []
    t0 = time.monotonic()
    p = subprocess.Popen([mvm, "run", "--accel", accel, "--restore", snap],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=dict(os.environ, MVM_LOG="info"))

    def watch_stderr():
        for line in p.stderr:
            if b"restored: the guest goes on" in line and not first:
                first.append(time.monotonic() - t0)

    threading.Thread(target=watch_stderr, daemon=True).start()
    p.stdin.write(b"echo RESTORED-$((6*7))\n")
    p.stdin.flush()
    buf = b""
    while b"RESTORED-42" not in buf:
        chunk = os.read(p.stdout.fileno(), 65536)
        if not chunk:
            break
        buf += chunk
    took = time.monotonic() - t0
    return first[0] if first else float("nan"), took, rss_kib(p.pid), p


def finish(p):
    p.stdin.write(b"reboot -f\n")
    p.stdin.flush()
    try:
        p.wait(120)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mvm")
    ap.add_argument("vmlinux")
    ap.add_argument("initramfs")
    ap.add_argument("--accel", choices=("kvm", "dbt"), default="kvm")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out")
    a = ap.parse_args()
    fcclient.ACCEL = a.accel
    res = {"date": time.strftime("%Y-%m-%d"), "host": platform.node(), "accel": a.accel,
           "load_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="mvm-bench-snap-") as tmp:
        sock, snap = os.path.join(tmp, "api.sock"), os.path.join(tmp, "snap")
        os.mkdir(snap)
        t0 = time.monotonic()
        vm = fcclient.Mvm(a.mvm, sock)
        for path, body in (("/boot-source", {"kernel_image_path": a.vmlinux,
                                             "initrd_path": a.initramfs,
                                             "boot_args": "console=ttyS0 reboot=k panic=-1"}),
                           ("/machine-config", {"vcpu_count": 1, "mem_size_mib": 256}),
                           ("/actions", {"action_type": "InstanceStart"})):
            if curl(sock, "PUT", path, body)[0] != 204:
                sys.exit(f"PUT {path} failed\n{vm}")
        if not vm.wait_out("MVM-INIT-READY", 1800):
            sys.exit(f"Linux did not boot\n{vm}")
        res["boot_s"] = time.monotonic() - t0
        curl(sock, "PATCH", "/vm", {"state": "Paused"})
        t = time.monotonic()
        r = curl(sock, "PUT", "/snapshot/create", {"snapshot_path": os.path.join(snap, "state"),
                                                  "mem_file_path": os.path.join(snap, "mem")})
        res["snapshot_s"] = time.monotonic() - t
        if r[0] != 204:
            sys.exit(f"snapshot failed: {r}")
        vm.p.terminate()
        vm.wait(30)
        st = os.stat(os.path.join(snap, "mem"))
        res["mem_file_bytes"], res["mem_file_on_disk"] = st.st_size, st.st_blocks * 512
        res["state_file_bytes"] = os.path.getsize(os.path.join(snap, "state"))
        answers, rss, firsts = [], [], []
        for _ in range(a.runs):
            first, took, kib, p = restore(a.mvm, snap, a.accel)
            firsts.append(first)
            answers.append(took)
            rss.append(kib)
            finish(p)
        res["restore_first_insn_s"] = firsts
        res["restore_answer_s"] = answers
        res["restore_rss_kib"] = rss
        # Clones at once: each its own copy-on-write view of the same memory file.
        t = time.monotonic()
        procs = []
        for _ in range(a.runs):
            p = subprocess.Popen([a.mvm, "run", "--accel", a.accel, "--restore", snap],
                                 stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
            p.stdin.write(b"echo RESTORED-$((6*7))\n")
            p.stdin.flush()
            procs.append(p)
        for p in procs:
            buf = b""
            while b"RESTORED-42" not in buf:
                chunk = os.read(p.stdout.fileno(), 65536)
                if not chunk:
                    break
                buf += chunk
        res["clones_at_once"] = a.runs
        res["clones_all_answered_s"] = time.monotonic() - t
        for p in procs:
            finish(p)
    res["load_after"] = os.getloadavg()[0]
    med = statistics.median(res["restore_answer_s"])
    first = statistics.median(res["restore_first_insn_s"])
    where = "KVM" if a.accel == "kvm" else "mvm's engine (`--accel dbt`)"
    lines = [
        f"# Snapshot and restore, default Linux guest under {where} ({res['date']}, "
        f"{res['host']})",
        "",
        f"Command: `bench/snapshot.py {a.mvm} VMLINUX INITRAMFS --accel {a.accel} --runs "
        f"{a.runs}`; load average {res['load_before']:.1f} before, {res['load_after']:.1f} "
        f"after.",
        "",
        "| figure | value |",
        "|---|---|",
        f"| boot, exec to MVM-INIT-READY | {res['boot_s']:.2f} s |",
        f"| PUT /snapshot/create (paused, HTTP round trip included) | "
        f"{res['snapshot_s'] * 1000:.0f} ms |",
        f"| memory file: size / on disk (sparse) | {res['mem_file_bytes'] >> 20} MiB / "
        f"{res['mem_file_on_disk'] / 2**20:.1f} MiB |",
        f"| state file | {res['state_file_bytes']} bytes |",
        f"| restore, exec to the guest's first instruction (median of {a.runs}) | "
        f"{first * 1000:.1f} ms (min {min(res['restore_first_insn_s']) * 1000:.1f}, max "
        f"{max(res['restore_first_insn_s']) * 1000:.1f}) |",
        f"| restore, exec to a typed command answered (median of {a.runs}) | {med:.3f} s "
        f"(min {min(res['restore_answer_s']):.3f}, max {max(res['restore_answer_s']):.3f}) |",
        f"| boot / restore to the answer | {res['boot_s'] / med:.1f}x |",
        f"| RSS of a restored clone at its answer (median) | "
        f"{statistics.median(res['restore_rss_kib']) / 1024:.1f} MiB |",
        f"| {a.runs} clones started at once, all answered | "
        f"{res['clones_all_answered_s']:.2f} s |",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        with open(a.out + ".md", "w") as f:
            f.write(text)
        with open(a.out + ".json", "w") as f:
            json.dump(res, f, indent=1)


main()
