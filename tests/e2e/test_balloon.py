#!/usr/bin/env python3
"""virtio-balloon with the default Linux guest, end to end.

1. Firecracker's API (curl on the Unix socket): PUT /balloon {amount_mib: 0, stats every 1 s},
   boot; the guest fills and frees most of its RAM so that the host has it resident; PATCH
   /balloon {amount_mib: 64}; once the guest's actual size (GET /balloon/statistics) is 64 MiB,
   the host's RSS of guest RAM (/proc/PID/smaps) has dropped by about 64 MiB and the guest's
   statistics say its total memory shrank by as much; bad PATCH bodies get a 400 naming the
   field and change nothing; PATCH {amount_mib: 0} deflates, the guest's MemTotal is back and
   it fills more memory than it had while inflated (the host's RSS grows again); the metrics
   and --stats count the pages that went back.
2. `mvm run --balloon amount_mib=32`: the guest starts 32 MiB smaller (MemTotal), --stats says
   8192 pages went back; malformed --balloon options exit 64 naming the option.
3. `mvm run --balloon amount_mib=0,free_page_reporting=on`: the guest touches 160 MiB and frees
   it; without any target, its free page reports take over 100 MiB off the host's RSS.

Usage: test_balloon.py MVM   (needs MVM_VMLINUX and MVM_INITRAMFS; MVM_TEST_ACCEL, dbt here)
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mvmtest  # noqa: E402
import fcclient  # noqa: E402
from fcclient import curl, fault_says  # noqa: E402

MEM_MIB = 256
TARGET_MIB = 64
MIB = 1 << 20
# Guest kernel code runs interpreted under KVM on KVM-PVM hosts (a boot takes minutes there):
# waits on the guest are that much longer under --accel kvm.
SLOW = 10 if mvmtest.ACCEL in ("", "kvm") else 1


def guest_ram_rss_kib(pid):
    """Rss of the guest RAM mapping (the one mapping of MEM_MIB MiB) in /proc/PID/smaps."""
    rss, size, found = None, None, []
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                if size == MEM_MIB * 1024 and rss is not None:
                    found.append(rss)
                rss, size = None, None
            elif line.startswith("Size:"):
                size = int(line.split()[1])
            elif line.startswith("Rss:"):
                rss = int(line.split()[1])
    if size == MEM_MIB * 1024 and rss is not None:
        found.append(rss)
    return found[0] if len(found) == 1 else None


def wait_for(what, fn, timeout):
    """Polls fn() until it returns a true value or (timeout) seconds pass; returns the value."""
    end = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > end:
            return v
        time.sleep(0.1)


def stats(sock):
    r = curl(sock, "GET", "/balloon/statistics")
    return r[1] if r[0] == 200 else {}


def command(vm, cmd, marker, timeout=60):
    """Types (cmd) on the guest's shell; waits for the line MARKER-<n> it prints (computed by
    the shell, so the echo of the typed command cannot match) and returns the output."""
    n = len(vm.out)
    vm.send(f"{cmd}; echo {marker}-$((6*7))\n")
    ok = vm.wait_out(f"{marker}-42", timeout * SLOW)
    return vm.out[n:].decode(errors="replace") if ok else None


def meminfo_kib(text, key):
    m = re.search(rf"^{key}:\s+(\d+) kB", text or "", re.M)
    return int(m.group(1)) if m else None


# The guest touches all but FREE_LEFT MiB of its free memory and frees it again (busybox dd's
# one buffer of n MiB, read from /dev/zero): every page it touched is then resident on the
# host, whichever of them the balloon takes later.
FREE_LEFT = 12
FILL = ("n=$(awk '/MemFree/ {print int($2 / 1024) - %d}' /proc/meminfo); "
        "dd if=/dev/zero of=/dev/null bs=${n}M count=1 2>/dev/null && echo FILLED-$n-MiB"
        % FREE_LEFT)


def api_case(c, tmp):
    sock, metrics = os.path.join(tmp, "api.sock"), os.path.join(tmp, "metrics")
    vm = fcclient.Mvm(MVM, sock, extra=["--stats"])
    steps = [
        ("/metrics", {"metrics_path": metrics}),
        ("/machine-config", {"vcpu_count": 1, "mem_size_mib": MEM_MIB}),
        ("/boot-source", {"kernel_image_path": os.environ["MVM_VMLINUX"],
                          "initrd_path": os.environ["MVM_INITRAMFS"],
                          "boot_args": "console=ttyS0 reboot=k panic=-1"}),
        ("/balloon", {"amount_mib": 0, "deflate_on_oom": False,
                      "stats_polling_interval_s": 1}),
        ("/actions", {"action_type": "InstanceStart"}),
    ]
    for path, body in steps:
        r = curl(sock, "PUT", path, body)
        c.check(r[0] == 204, f"PUT {path}: 204 ({r})", vm)
    r = curl(sock, "GET", "/balloon")
    c.check(r[0] == 200 and r[1] == {"amount_mib": 0, "deflate_on_oom": False,
                                     "stats_polling_interval_s": 1, "free_page_hinting": False,
                                     "free_page_reporting": False}, f"GET /balloon: {r}")
    r = curl(sock, "GET", "/vm/config")
    c.check(r[0] == 200 and r[1].get("balloon", {}).get("stats_polling_interval_s") == 1,
            f"GET /vm/config has the balloon: {r}")
    if not c.check(vm.wait_out("MVM-INIT-READY", 120 * SLOW), "Linux boots to its init", vm):
        return
    pid = vm.p.pid
    out = command(vm, "grep MemTotal /proc/meminfo", "TOTAL")
    total0 = meminfo_kib(out, "MemTotal")
    c.check(total0, f"the guest's MemTotal ({out!r})")
    out = command(vm, FILL, "FILL1", 120)
    c.check(out and "FILLED-" in out, f"the guest filled and freed its memory ({out!r})", vm)
    s = wait_for("statistics", lambda: stats(sock).get("total_memory"), 15 * SLOW)
    c.check(s and abs(s - total0 * 1024) < MIB,
            f"the guest's statistics arrive: total_memory {s} = MemTotal {total0} KiB")
    rss0 = guest_ram_rss_kib(pid)
    c.check(rss0 and rss0 > (MEM_MIB - 2 * FREE_LEFT - 48) * 1024,
            f"guest RAM is resident on the host after the fill: {rss0} KiB")

    # Inflate to TARGET_MIB: the guest's actual size follows, the host's RSS drops as much.
    t0 = time.monotonic()
    r = curl(sock, "PATCH", "/balloon", {"amount_mib": TARGET_MIB})
    c.check(r[0] == 204, f"PATCH /balloon {{amount_mib: {TARGET_MIB}}}: 204 ({r})", vm)
    st = wait_for("inflated", lambda: (lambda s: s if s.get("actual_mib") == TARGET_MIB
                                       else None)(stats(sock)), 60 * SLOW)
    secs = time.monotonic() - t0
    c.check(st and st["target_mib"] == TARGET_MIB and st["target_pages"] == TARGET_MIB * 256 and
            st["actual_pages"] == TARGET_MIB * 256,
            f"the guest reports {TARGET_MIB} MiB in its balloon: {st or stats(sock)}")
    rss1 = guest_ram_rss_kib(pid)
    print(f"balloon: inflated {TARGET_MIB} MiB in {secs:.2f} s; guest RAM RSS {rss0} -> {rss1} KiB")
    c.check(rss0 and rss1 and rss0 - rss1 >= (TARGET_MIB - 8) * 1024,
            f"the host's RSS of guest RAM dropped by about {TARGET_MIB} MiB: {rss0} -> {rss1} KiB")
    s = wait_for("statistics", lambda: (lambda t: t if t and t <= (total0 - TARGET_MIB * 1024)
                                        * 1024 + MIB else None)(stats(sock).get("total_memory")),
                 15 * SLOW)
    c.check(s, f"the guest's statistics show its total memory {TARGET_MIB} MiB smaller: "
            f"{stats(sock)} (MemTotal was {total0} KiB)")
    r = curl(sock, "GET", "/balloon")
    c.check(r[0] == 200 and r[1].get("amount_mib") == TARGET_MIB,
            f"GET /balloon says the new target: {r}")

    # Bad bodies after the start: 400 naming the field, nothing changes.
    bad = [
        ("PATCH", "/balloon", '{"amount_mib": -1}', "'amount_mib' must be a non-negative"),
        ("PATCH", "/balloon", '{"amount_mib": "64"}', "'amount_mib' must be"),
        ("PATCH", "/balloon", '{"amount_mib": 1.5}', "'amount_mib' must be"),
        ("PATCH", "/balloon", '{"amount_mib": 257}', "amount_mib 257 is more than the guest's"),
        ("PATCH", "/balloon", '{"amount_mib": 4294967296}',
         "amount_mib 4294967296 is more than"),
        ("PATCH", "/balloon", '{"amount_mib": 18446744073709551615}', "too big integer"),
        ("PATCH", "/balloon", '{}', "missing field 'amount_mib'"),
        ("PATCH", "/balloon", '{"amount_mib": 1, "deflate_on_oom": true}',
         "unknown field 'deflate_on_oom'"),
        ("PATCH", "/balloon", '[64]', "JSON object"),
        ("PUT", "/balloon", '{"amount_mib": 1, "deflate_on_oom": true}', "after starting"),
        ("PATCH", "/balloon/statistics", '{"stats_polling_interval_s": 0}',
         "cannot turn statistics off"),
        ("PATCH", "/balloon/statistics", '{"stats_polling_interval_s": 65536}',
         "stats_polling_interval_s 65536"),
        ("PATCH", "/balloon/statistics", '{"stats_polling_interval_s": -2}',
         "'stats_polling_interval_s' must be"),
        ("GET", "/balloon/nothing", None, "Invalid request method and/or path"),
    ]
    for method, path, body, says in bad:
        r = curl(sock, method, path, body)
        c.check(fault_says(r, says), f"{method} {path} {body}: 400 saying '{says}': {r}")
    r = curl(sock, "GET", "/balloon")
    c.check(r[1] and r[1].get("amount_mib") == TARGET_MIB and
            r[1].get("stats_polling_interval_s") == 1, f"refused bodies changed nothing: {r}")
    r = curl(sock, "PATCH", "/balloon/statistics", {"stats_polling_interval_s": 2})
    c.check(r[0] == 204 and curl(sock, "GET", "/balloon")[1].get("stats_polling_interval_s") == 2,
            f"PATCH /balloon/statistics changes the interval: {r}")

    # Deflate: the guest gets its memory back and can use it.
    r = curl(sock, "PATCH", "/balloon", {"amount_mib": 0})
    c.check(r[0] == 204, f"PATCH /balloon {{amount_mib: 0}}: 204 ({r})")
    st = wait_for("deflated", lambda: (lambda s: s if s.get("actual_pages") == 0 else None)(
        stats(sock)), 60 * SLOW)
    c.check(st, f"the guest deflated to 0: {stats(sock)}")
    out = command(vm, "grep MemTotal /proc/meminfo", "TOTAL2")
    c.check(meminfo_kib(out, "MemTotal") == total0,
            f"the guest's MemTotal is back to {total0} KiB ({out!r})")
    out = command(vm, FILL, "FILL2", 120)
    m = re.search(r"FILLED-(\d+)-MiB", out or "")
    c.check(m and int(m.group(1)) > MEM_MIB - TARGET_MIB - 40,
            f"the guest filled more than it had while inflated ({out!r})", vm)
    rss2 = guest_ram_rss_kib(pid)
    print(f"balloon: after deflating and filling, guest RAM RSS {rss2} KiB")
    c.check(rss1 and rss2 and rss2 - rss1 >= (TARGET_MIB - 8) * 1024,
            f"the guest's memory is resident again: {rss1} -> {rss2} KiB")

    # Metrics and --stats count what went back.
    r = curl(sock, "PUT", "/actions", {"action_type": "FlushMetrics"})
    c.check(r[0] == 204, f"FlushMetrics: {r}")
    lines = open(metrics).read().splitlines() if os.path.exists(metrics) else []
    dev = json.loads(lines[-1]).get("devices", {}).get("virtio-balloon", {}) if lines else {}
    c.check(dev.get("inflated_pages", 0) >= TARGET_MIB * 256 and
            dev.get("returned_pages", 0) >= TARGET_MIB * 256 and
            dev.get("deflated_pages", 0) >= TARGET_MIB * 256 and
            dev.get("stats_updates", 0) >= 2 and dev.get("guest_errors") == 0,
            f"the metrics count the balloon's pages: {dev}")
    r = curl(sock, "PUT", "/actions", {"action_type": "SendCtrlAltDel"})
    c.check(r[0] == 204, f"SendCtrlAltDel: {r}")
    status = vm.wait(60 * SLOW)
    c.check(status == 0, f"the guest rebooted, mvm exited 0 (got {status})", vm)
    err = vm.err.decode(errors="replace")
    m = re.search(r"mvm: virtio-balloon: (\d+) pages inflated, (\d+) deflated, (\d+) given back",
                  err)
    c.check(m and int(m.group(1)) >= TARGET_MIB * 256 and int(m.group(3)) == int(m.group(1)),
            f"--stats: every inflated page went back to the host ({m and m.group(0)})", vm)
    return total0


def cli_case(c, total0):
    cmdline = 'console=ttyS0 reboot=k panic=-1 mvm.run="grep MemTotal /proc/meminfo"'
    r = mvmtest.run(MVM, ["run", "-m", f"{MEM_MIB}M", "-k", os.environ["MVM_VMLINUX"],
                          "-i", os.environ["MVM_INITRAMFS"], "--balloon",
                          "amount_mib=32,stats_interval=1", "--stats", "-p", cmdline],
                    timeout=120 * SLOW)
    c.check(r.status == 0, f"mvm run --balloon amount_mib=32: exit 0 (got {r.status})", r)
    total = meminfo_kib(r.out, "MemTotal")
    c.check(total and total0 and total == total0 - 32 * 1024,
            f"the guest starts 32 MiB smaller: MemTotal {total} KiB, {total0} KiB without", r)
    c.check(re.search(r"mvm: virtio-balloon: 8192 pages inflated, 0 deflated, 8192 given back "
                      r"to the host .* guest errors; target 8192 pages, actual 8192", r.err),
            "--stats: 8192 pages given back, actual 8192", r)
    for opt, says in (("amount_mib=257", "amount_mib 257 is more than the guest's 256 MiB"),
                      ("amount_mib=-1", "amount_mib '-1'"),
                      ("deflate_on_oom=on", "needs amount_mib=N"),
                      ("amount_mib=8,deflate_on_oom=maybe", "deflate_on_oom 'maybe'"),
                      ("amount_mib=8,stats_interval=x", "stats_interval 'x'"),
                      ("amount_mib=8,free_page_reporting=2", "free_page_reporting '2'"),
                      ("amount_mib=8,hinting=on", "unknown option 'hinting=on'")):
        r = mvmtest.run(MVM, ["run", "-m", f"{MEM_MIB}M", "-k", os.environ["MVM_VMLINUX"],
                              "--balloon", opt])
        c.check(r.status == 64 and says in r.err,
                f"--balloon {opt}: exit 64 saying '{says}' ({r.status}: {r.err.strip()})")


def reporting_case(c):
    """Free page reporting: memory the guest touched and freed goes back without a target."""
    cmdline = ('console=ttyS0 reboot=k panic=-1 mvm.run="dd if=/dev/zero of=/dev/null bs=160M '
               'count=1 && echo TOUCHED-$((6*7)); sleep %d"' % (8 * SLOW))
    p = subprocess.Popen(mvmtest.command(MVM, [
        "run", "-m", f"{MEM_MIB}M,thp=off", "-k", os.environ["MVM_VMLINUX"], "-i",
        os.environ["MVM_INITRAMFS"], "--balloon", "amount_mib=0,free_page_reporting=on",
        "--stats", "-p", cmdline]), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    out = b""
    rss_touched = rss_reported = None
    try:
        for line in iter(p.stdout.readline, b""):
            out += line
            if b"TOUCHED-42" in line:
                rss_touched = guest_ram_rss_kib(p.pid)
                # Linux reports 2 s after free memory crossed its threshold.
                rss_reported = wait_for("reported", lambda: (lambda r: r if r and r <
                                                             rss_touched - 100 * 1024 else None)(
                    guest_ram_rss_kib(p.pid)), 6 * SLOW)
                break
        p.stdout.read()
        p.wait(120 * SLOW)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    err = p.stderr.read().decode(errors="replace")
    print(f"balloon: free page reporting, guest RAM RSS {rss_touched} -> {rss_reported} KiB")
    c.check(p.returncode == 0, f"mvm run --balloon ...,free_page_reporting=on: exit 0 "
            f"({p.returncode}): {out.decode(errors='replace')[-1500:]} {err[-1500:]}")
    c.check(rss_touched and rss_reported,
            f"the guest's freed memory left the host's RSS: {rss_touched} -> {rss_reported} KiB")
    m = re.search(r"mvm: virtio-balloon: 0 pages inflated, 0 deflated, (\d+) given back to the "
                  r"host \((\d+) of them reported free\)", err)
    c.check(m and int(m.group(1)) == int(m.group(2)) >= 100 * 256,
            f"--stats: over 100 MiB reported free and given back ({m and m.group(0)})")


def main():
    for k in ("MVM_VMLINUX", "MVM_INITRAMFS"):
        if not os.environ.get(k) or not os.path.exists(os.environ[k]):
            mvmtest.skip(f"{k} unset or missing (scripts/test.sh sets it)")
    if mvmtest.ACCEL != "dbt":
        mvmtest.require_kvm()
    c = mvmtest.Checker("balloon")
    tmp = tempfile.mkdtemp(prefix="mvm-balloon-")
    try:
        total0 = api_case(c, tmp)
        cli_case(c, total0)
        reporting_case(c)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return c.done()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    MVM = sys.argv[1]
    sys.exit(main())
