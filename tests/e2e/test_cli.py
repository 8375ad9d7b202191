#!/usr/bin/env python3
"""What the README and `mvm --help` promise about the command line, each with a real guest.

Usage: test_cli.py MVM GUEST_DIR CASE
  console-none    --console none: the guest runs, nothing of it reaches stdout
  console-file    --console file:PATH: the guest's output lands in the file, not on stdout
  stats           --stats: the unclaimed port I/O and MMIO the unclaimed guest makes are counted
  random-mac      without mac=, each run gives the NIC another locally administered unicast MAC
                  (the TAP lives in a network namespace the test makes and deletes)
  nopv            on KVM-PVM with more than one vCPU, 'nopv' joins the kernel command line (the
                  guest reads it); with one vCPU it does not
  vmm-failure     mvm that cannot get what a VM needs (file descriptors, address space for
                  guest RAM) exits 70 with a message naming what failed, before the guest runs
  debug-dump      a VM stopped by SIGTERM under MVM_LOG=debug prints every vCPU's registers
                  and exits 128+15; without debug it prints none
  poweroff        no guest power-off (README): Linux's `poweroff -f` halts the guest and mvm
                  waits for a signal; `reboot -f` ends it with status 0, "guest reset" (Linux:
                  MVM_VMLINUX and MVM_INITRAMFS, as test_linux.py)
"""
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mvmtest  # noqa: E402


def guest(name):
    return os.path.join(GUEST_DIR, f"{name}.elf")


def case_console_none(c):
    r = mvmtest.run(MVM, ["run", "-k", guest("hello"), "--console", "none"])
    c.check(r.status == 0, f"exit status 0 (got {r.status})", r)
    c.check("Hello from the mvm test guest" not in r.out and "RESULT" not in r.out,
            "nothing of the guest on stdout", r)


def case_console_file(c):
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "console.log")
        r = mvmtest.run(MVM, ["run", "-k", guest("hello"), "--console", f"file:{path}"])
        c.check(r.status == 0, f"exit status 0 (got {r.status})", r)
        c.check("Hello from the mvm test guest" not in r.out, "nothing of the guest on stdout",
                r)
        with open(path, errors="replace") as f:
            log = f.read()
        c.check("Hello from the mvm test guest" in log and "RESULT PASS" in log,
                f"the guest's output is in {path}", r)


def case_stats(c):
    r = mvmtest.run(MVM, ["run", "--stats", "-k", guest("unclaimed")])
    mvmtest.guest_passed(c, r, "unclaimed")
    m = re.search(r"unclaimed accesses: port I/O (\d+) reads, (\d+) writes; MMIO (\d+) reads, "
                  r"(\d+) writes", r.err)
    if c.check(m, "--stats prints the unclaimed-access counts", r):
        pr, pw, mr, mw = (int(x) for x in m.groups())
        c.check(pr > 0 and pw > 0 and mr > 0 and mw > 0,
                f"every kind the guest makes is counted ({pr}/{pw}/{mr}/{mw})", r)


def mac_of_run(ns, tap):
    env = dict(os.environ, MVM_LOG="info")
    p = subprocess.run(["ip", "netns", "exec", ns] + mvmtest.command(
        MVM, ["run", "-k", guest("hello"), "-n", f"tap={tap}"]),
        capture_output=True, timeout=60, env=env)
    err = p.stderr.decode(errors="replace")
    m = re.search(r"on TAP \S+, MAC ((?:[0-9a-f]{2}:){5}[0-9a-f]{2})", err)
    return p.returncode, (m.group(1) if m else None), err


def case_random_mac(c):
    if os.geteuid() != 0:
        mvmtest.skip("a TAP needs root")
    ns, tap = f"mvmcli{os.getpid()}", "mvmcli0"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        macs = []
        for _ in range(3):
            status, mac, err = mac_of_run(ns, tap)
            c.check(status == 0, f"the guest ran (status {status})")
            if c.check(mac, "mvm names the MAC it gave the NIC"):
                first = int(mac.split(":")[0], 16)
                c.check(first & 2, f"{mac} is locally administered")
                c.check(not first & 1, f"{mac} is unicast")
                macs.append(mac)
        c.check(len(set(macs)) == len(macs), f"each run another MAC ({macs})")
    finally:
        subprocess.run(["ip", "netns", "del", ns])


def case_nopv(c):
    mvmtest.require_kvm()
    if not os.path.exists("/sys/module/kvm_pvm"):
        mvmtest.skip("not a KVM-PVM host")
    r2 = mvmtest.run(MVM, ["run", "-k", guest("hello"), "-c", "2"])
    mvmtest.guest_passed(c, r2, "hello -c 2")
    c.check(re.search(r"^CMDLINE .*\bnopv\b", r2.out, re.M), "two vCPUs: the guest sees nopv",
            r2)
    r1 = mvmtest.run(MVM, ["run", "-k", guest("hello")])
    mvmtest.guest_passed(c, r1, "hello")
    c.check(not re.search(r"\bnopv\b", r1.out), "one vCPU: no nopv", r1)


MVM_EXIT_VMM = 70


def run_limited(args, limit, value):
    """mvm run with (args) under resource limit (limit) = (value), soft and hard."""
    def set_limit():
        resource.setrlimit(limit, (value, value))
    try:
        p = subprocess.run(mvmtest.command(MVM, args), stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=60, preexec_fn=set_limit)
    except subprocess.TimeoutExpired as e:
        return mvmtest.Result(None, (e.stdout or b"").decode(errors="replace"),
                              (e.stderr or b"").decode(errors="replace"), timed_out=True)
    return mvmtest.Result(p.returncode, p.stdout.decode(errors="replace"),
                          p.stderr.decode(errors="replace"))


def asan_build():
    """ASan reserves terabytes of address space for its shadow: no RLIMIT_AS case there. Its
    runtime is a shared library; the binary calls __asan_init."""
    with open(MVM, "rb") as f:
        return b"__asan_init" in f.read()


def case_vmm_failure(c):
    hello = guest("hello")
    # 16 file descriptors: enough to read the kernel image (a usage error would say so), too
    # few for /dev/kvm, the VM, its vCPUs, the io_uring and its file table, whichever comes
    # first on this accelerator.
    r = run_limited(["run", "-k", hello], resource.RLIMIT_NOFILE, 16)
    c.check(r.status == MVM_EXIT_VMM, f"RLIMIT_NOFILE 16: status {MVM_EXIT_VMM} "
            f"(got {r.status})", r)
    c.check("Too many open files" in r.err, "the message names the failed resource", r)
    c.check("Hello from the mvm test guest" not in r.out, "the guest never ran", r)
    c.check("AddressSanitizer" not in r.err and "runtime error" not in r.err,
            "no sanitizer report", r)
    if asan_build():
        return
    # 512 MiB of address space for a 1 GiB guest: its RAM cannot be mapped.
    r = run_limited(["run", "-k", hello, "-m", "1G"], resource.RLIMIT_AS, 512 << 20)
    c.check(r.status == MVM_EXIT_VMM, f"RLIMIT_AS 512M, -m 1G: status {MVM_EXIT_VMM} "
            f"(got {r.status})", r)
    c.check("cannot map 1024 MiB of guest RAM" in r.err, "the message names guest RAM", r)
    c.check("Hello from the mvm test guest" not in r.out, "the guest never ran", r)


def stop_with_sigterm(args, env):
    """Runs mvm on the echo guest (it waits for a line that never comes), sends SIGTERM once
    the guest is up, and returns the Result."""
    p = subprocess.Popen(mvmtest.command(MVM, args), stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    out = []
    deadline = time.monotonic() + 60
    for raw in p.stdout:
        out.append(raw.decode(errors="replace"))
        if "ECHO-READY" in out[-1] or time.monotonic() > deadline:
            break
    p.send_signal(signal.SIGTERM)
    try:
        rest, err = p.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill()
        rest, err = p.communicate()
        return mvmtest.Result(None, "".join(out), err.decode(errors="replace"), True)
    return mvmtest.Result(p.returncode, "".join(out) + rest.decode(errors="replace"),
                          err.decode(errors="replace"))


def case_debug_dump(c):
    ncpus = 1 if mvmtest.ACCEL == "hybrid" else 2  # the hybrid runs one vCPU
    args = ["run", "-k", guest("echo"), "-c", str(ncpus)]
    r = stop_with_sigterm(args, dict(os.environ, MVM_LOG="debug"))
    c.check("ECHO-READY" in r.out, "the guest was running when the signal came", r)
    c.check(r.status == 128 + signal.SIGTERM, f"status {128 + signal.SIGTERM} (got {r.status})",
            r)
    for i in range(ncpus):
        m = re.search(rf"^mvm: vCPU {i}: stopped by a signal\n  mode: .*\n(  .*\n)*?"
                      r"  rip=[0-9a-f]{16} rflags=[0-9a-f]{16}\n(  .*\n)*?  cr0=[0-9a-f]{16}",
                      r.err, re.M)
        c.check(m, f"vCPU {i}'s registers are printed", r)
    r = stop_with_sigterm(args, dict(os.environ, MVM_LOG="info"))
    c.check(r.status == 128 + signal.SIGTERM, f"MVM_LOG=info: status {128 + signal.SIGTERM} "
            f"(got {r.status})", r)
    c.check("stopped by a signal" not in r.err and "rip=" not in r.err,
            "MVM_LOG=info: no register dump", r)


def linux_images():
    kernel, initrd = os.environ.get("MVM_VMLINUX"), os.environ.get("MVM_INITRAMFS")
    if not (kernel and initrd and os.path.exists(kernel) and os.path.exists(initrd)):
        mvmtest.skip("guest images not built (MVM_VMLINUX, MVM_INITRAMFS; scripts/test.sh)")
    return kernel, initrd


def case_poweroff(c):
    kernel, initrd = linux_images()
    os.environ["MVM_LOG"] = "info"  # "guest stopped: ..." is an info line

    def args(command):
        return ["run", "-k", kernel, "-i", initrd,
                "-p", f'console=ttyS0 reboot=k panic=-1 mvm.run="{command}"']

    # Without ACPI, Linux turns a power-off into a halt: every CPU stops with interrupts
    # off. Nothing tells mvm, which must neither exit nor claim a power-off.
    p = subprocess.Popen(mvmtest.command(MVM, args("poweroff -f")), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    timer = threading.Timer(300, p.kill)
    timer.start()
    out = []
    for raw in p.stdout:
        out.append(raw.decode(errors="replace"))
        if "reboot: System halted" in out[-1]:
            break
    halted = "reboot: System halted" in out[-1] if out else False
    time.sleep(2)
    running = p.poll() is None
    p.send_signal(signal.SIGTERM)
    rest, err = p.communicate()
    timer.cancel()
    r = mvmtest.Result(p.returncode, "".join(out) + rest.decode(errors="replace"),
                       err.decode(errors="replace"))
    c.check(halted, "poweroff -f: the guest halted ('reboot: System halted')", r)
    c.check(running, "poweroff -f: mvm still runs 2 s after the guest halted", r)
    c.check(r.status == 128 + signal.SIGTERM, f"poweroff -f: SIGTERM ends mvm with "
            f"{128 + signal.SIGTERM} (got {r.status})", r)
    c.check("guest power-off" not in r.err, "poweroff -f: mvm claims no power-off", r)
    # A reboot is how a guest ends the VM: the i8042 reset (reboot=k), status 0.
    r = mvmtest.run(MVM, args("reboot -f"), timeout=300)
    c.check(r.status == 0, f"reboot -f: status 0 (got {r.status})", r)
    c.check("guest stopped: guest reset" in r.err, "reboot -f: mvm names the reset", r)


CASES = {"console-none": case_console_none, "console-file": case_console_file,
         "stats": case_stats, "random-mac": case_random_mac, "nopv": case_nopv,
         "vmm-failure": case_vmm_failure, "debug-dump": case_debug_dump,
         "poweroff": case_poweroff}

if __name__ == "__main__":
    MVM, GUEST_DIR, CASE = sys.argv[1], sys.argv[2], sys.argv[3]
    mvmtest.require_kvm()
    checker = mvmtest.Checker(f"cli-{CASE}")
    CASES[CASE](checker)
    checker.done()
