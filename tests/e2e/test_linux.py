#!/usr/bin/env python3
"""Linux end to end: the default kernel and initramfs under `mvm run`.

Usage: test_linux.py MVM CASE
  pvh      vmlinux through PVH, 2 vCPUs: MVM-INIT-READY, the mvm.run command's output
           (/proc/cpuinfo, /dev, system calls from user space), both CPUs online, a clean
           reboot (status 0)
  bzimage  the same kernel as a bzImage through the 64-bit boot protocol
  clock    the guest's clock against the host's: /proc/uptime read twice 10 s apart must
           advance as much as host time did (within 1%), and `date +%s` must match the host
The kernel and initramfs come from MVM_VMLINUX, MVM_BZIMAGE and MVM_INITRAMFS (scripts/test.sh
builds or reuses them). A Linux boot takes about a minute on KVM-PVM hosts, so each case is one
boot with every check of its kind.
"""
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mvmtest  # noqa: E402

BOOT_TIMEOUT = 600


def images():
    paths = {k: os.environ.get(k) for k in ("MVM_VMLINUX", "MVM_BZIMAGE", "MVM_INITRAMFS")}
    missing = [k for k, v in paths.items() if not v or not os.path.exists(v)]
    if missing:
        mvmtest.skip(f"guest images not built ({', '.join(missing)} unset or missing; "
                     "scripts/test.sh sets them)")
    return paths


def boot(kernel, initrd, run, extra=()):
    cmdline = f'console=ttyS0 reboot=k panic=-1 mvm.run="{run}"'
    start = time.monotonic()
    r = mvmtest.run(MVM, ["run", "-k", kernel, "-i", initrd, "-p", cmdline, *extra],
                    timeout=BOOT_TIMEOUT)
    r.seconds = time.monotonic() - start
    return r


def common_checks(c, r, what):
    c.check(not r.timed_out, f"{what}: finished within {BOOT_TIMEOUT} s", r)
    c.check("MVM-INIT-READY" in r.out, f"{what}: /init ran (MVM-INIT-READY)", r)
    c.check("MVM-RUN-EXIT 0" in r.out, f"{what}: the mvm.run command exited 0", r)
    c.check(r.status == 0, f"{what}: mvm exits 0 after the guest reboots (got {r.status})", r)
    c.check("Kernel panic" not in r.out, f"{what}: no kernel panic", r)
    print(f"{what}: {r.seconds:.1f} s from exec to exit")


def case_pvh(c):
    p = images()
    run = "cat /proc/cpuinfo; ls /dev; nproc; echo ok"
    # --accel hybrid runs one vCPU.
    n = 1 if mvmtest.ACCEL == "hybrid" else 2
    r = boot(p["MVM_VMLINUX"], p["MVM_INITRAMFS"], run, ["-c", str(n), "-m", "256M"])
    common_checks(c, r, "vmlinux (PVH)")
    c.check(re.search(rf"^processor\s*: {n - 1}", r.out, re.M),
            f"/proc/cpuinfo lists {n} CPUs", r)
    c.check(re.search(r"\bttyS0\b", r.out) and re.search(r"\bnull\b", r.out),
            "ls /dev shows devtmpfs nodes", r)
    c.check(re.search(rf"^{n}\r?$", r.out, re.M), f"nproc says {n}", r)
    c.check(re.search(r"^ok\r?$", r.out, re.M), "the command ran to its end", r)


def case_bzimage(c):
    p = images()
    r = boot(p["MVM_BZIMAGE"], p["MVM_INITRAMFS"], "uname -r; echo bz-ok")
    common_checks(c, r, "bzImage")
    c.check(re.search(r"^bz-ok\r?$", r.out, re.M), "the command ran", r)


def case_clock(c):
    """Time in the guest advances with the host's. The guest prints its uptime around a 10 s
    sleep; the host timestamps each line as it arrives on the console (streamed, not read at
    the end), so the two intervals can be compared."""
    import subprocess
    p = images()
    run = ("echo CLOCK-A $(cut -d' ' -f1 /proc/uptime) $(date +%s); sleep 10; "
           "echo CLOCK-B $(cut -d' ' -f1 /proc/uptime) $(date +%s)")
    cmdline = f'console=ttyS0 reboot=k panic=-1 mvm.run="{run}"'
    argv = mvmtest.command(MVM, ["run", "-k", p["MVM_VMLINUX"], "-i", p["MVM_INITRAMFS"],
                                 "-p", cmdline])
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    seen, out = {}, []
    deadline = time.monotonic() + BOOT_TIMEOUT
    for raw in proc.stdout:
        line = raw.decode(errors="replace").strip()
        out.append(line)
        m = re.match(r"CLOCK-([AB]) ([0-9.]+) ([0-9]+)", line)
        if m:
            seen[m.group(1)] = (time.monotonic(), time.time(), float(m.group(2)),
                                int(m.group(3)))
        if time.monotonic() > deadline:
            proc.kill()
            break
    status = proc.wait()
    r = mvmtest.Result(status, "\n".join(out), proc.stderr.read().decode(errors="replace"))
    if not c.check("A" in seen and "B" in seen, "the guest printed both clock lines", r):
        return
    host = seen["B"][0] - seen["A"][0]
    guest = seen["B"][2] - seen["A"][2]
    print(f"clock: host {host:.3f} s, guest uptime {guest:.3f} s")
    c.check(abs(guest - host) <= 0.01 * host + 0.02, f"guest uptime advanced {guest:.3f} s "
            f"while the host's clock advanced {host:.3f} s (within 1%)", r)
    c.check(abs(seen["A"][3] - seen["A"][1]) <= 2, "date +%s matches the host's time", r)
    c.check(status == 0, f"mvm exits 0 (got {status})", r)


def case_forkexec(c):
    """Processes: 200 command substitutions (fork, exec, exit, wait), subshells that change a
    variable their parent must keep (copy-on-write), awk filling and summing a 100,000-entry
    array (brk/mmap and page faults), a pipeline, a signal caught by a shell handler and one
    that kills a process. Under --accel hybrid every one of those changes page tables that KVM
    runs user code on (dbt/ptwatch.h), and signals cross between the engine and KVM."""
    p = images()
    run = ("i=0; while [ $i -lt 200 ]; do x=$(echo $i); [ $x = $i ] || echo BAD-SUBST $i; "
           "i=$((i+1)); done; echo FORKS $i; "
           "v=parent; for k in 1 2 3; do (v=child$k; [ $v = child$k ] || echo BAD-CHILD); "
           "done; echo COW $v; "
           "echo AWK $(awk 'BEGIN{for(i=0;i<100000;i++)a[i]=i;s=0;for(i in a)s+=a[i];"
           "print s}'); "
           "seq 1 5000 | sort -rn | head -n 1 | sed 's/^/PIPE /'; "
           "caught(){ echo SIG-CAUGHT; }; trap caught USR1; kill -USR1 $$; "
           "sh -c 'kill -SEGV $$'; echo SIG-RC $?")
    r = boot(p["MVM_VMLINUX"], p["MVM_INITRAMFS"], run, ["-m", "256M"])
    common_checks(c, r, "fork/exec")
    c.check(not re.search(r"^BAD-", r.out, re.M), "every child saw what it should", r)
    c.check(re.search(r"^FORKS 200\r?$", r.out, re.M), "200 command substitutions ran", r)
    c.check(re.search(r"^COW parent\r?$", r.out, re.M),
            "the parent kept its variable while children changed theirs", r)
    c.check(re.search(r"^AWK 4999950000\r?$", r.out, re.M), "awk summed 0..99999", r)
    c.check(re.search(r"^PIPE 5000\r?$", r.out, re.M), "the pipeline sorted 5000 lines", r)
    c.check(re.search(r"^SIG-CAUGHT\r?$", r.out, re.M),
            "a signal handler ran in user mode (signal frame, sigreturn)", r)
    c.check(re.search(r"^SIG-RC 139\r?$", r.out, re.M),
            "a process killed by SIGSEGV was reported as such (128 + 11)", r)


CASES = {"pvh": case_pvh, "bzimage": case_bzimage, "clock": case_clock,
         "forkexec": case_forkexec}

if __name__ == "__main__":
    MVM, CASE = sys.argv[1], sys.argv[2]
    mvmtest.require_kvm()
    checker = mvmtest.Checker(f"linux-{CASE}")
    CASES[CASE](checker)
    checker.done()
