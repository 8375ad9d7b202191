#!/usr/bin/env python3
"""mvm's seccomp allow-lists (vmm/sandbox/seccomp.c) on a running mvm.

Usage: test_seccomp.py MVM GUEST_DIR CASE
  trap    MVM_SECCOMP_SELFTEST=<role> makes the first thread of that role call socket(2) once
          its filter is loaded: mvm must stop with status 159 and a line naming the thread and
          the call, for every role the accelerator has (KVM: vcpu, io, control; dbt and
          hybrid: io, engine); and a role with no thread in this mode changes nothing
  status  while the guest runs, every thread has exactly one filter (/proc/PID/task/*/status:
          Seccomp 2, Seccomp_filters 1) and the names mvm gives them
  args    the arguments are checked too: MVM_SECCOMP_SELFTEST=<role>:futex (a futex operation
          glibc never makes for mvm) and <role>:ioctl (a request of the role's list on stderr,
          not an fd of the kind it is for) stop mvm with 159 and the line, on every role the
          accelerator has; under --seccomp log both are let through and the guest passes
  log     --seccomp log: the same socket(2) is allowed (the kernel logs it), the guest passes
  off     --seccomp off: no filter on any thread, the self-test hook does nothing
"""
import os
import re
import select
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mvmtest  # noqa: E402

EXIT_SECCOMP = 159
ROLE_NAMES = {"vcpu": "vCPU", "io": "I/O", "control": "control", "engine": "engine"}


def roles():
    """The thread roles under the accelerator this test runs on, and the others."""
    if mvmtest.ACCEL in ("dbt", "hybrid"):
        return ("io", "engine"), ("vcpu", "control")
    return ("vcpu", "io", "control"), ("engine",)


def run_env(extra, env):
    e = dict(os.environ, **env)
    args = mvmtest.command(MVM, ["run", "-k", mvmtest.guest_path(GUEST_DIR, "hello")] +
                           list(extra))
    try:
        p = subprocess.run(args, input=b"", capture_output=True, timeout=60, env=e)
        return mvmtest.Result(p.returncode, p.stdout.decode(errors="replace"),
                              p.stderr.decode(errors="replace"))
    except subprocess.TimeoutExpired as ex:
        return mvmtest.Result(None, (ex.stdout or b"").decode(errors="replace"),
                              (ex.stderr or b"").decode(errors="replace"), timed_out=True)


def case_trap(c):
    mine, others = roles()
    for role in mine:
        r = run_env([], {"MVM_SECCOMP_SELFTEST": role})
        c.check(r.status == EXIT_SECCOMP,
                f"{role}: a forbidden call stops mvm with status {EXIT_SECCOMP} "
                f"(got {r.status})", r)
        want = f"the {ROLE_NAMES[role]} thread made system call 41 (socket)"
        c.check(want in r.err, f"{role}: the message names the thread and the call", r)
        c.check("RESULT PASS" not in r.out, f"{role}: the guest did not finish", r)
    for role in others:
        r = run_env([], {"MVM_SECCOMP_SELFTEST": role})
        mvmtest.guest_passed(c, r, f"{role} (no such thread here)")
    # Without the hook the same run passes: the filters alone do not stop the guest.
    r = run_env([], {})
    mvmtest.guest_passed(c, r, "hello under the default filters")


def case_args(c):
    mine, _ = roles()
    for role in mine:
        for what, want in (("futex", "made system call 202 (futex)"),
                           ("ioctl", "made system call 16 (ioctl) with arguments 0x2, ")):
            r = run_env([], {"MVM_SECCOMP_SELFTEST": f"{role}:{what}"})
            c.check(r.status == EXIT_SECCOMP,
                    f"{role}: a forbidden {what} argument stops mvm with status {EXIT_SECCOMP} "
                    f"(got {r.status})", r)
            c.check(f"the {ROLE_NAMES[role]} thread {want}" in r.err,
                    f"{role}: the message names the thread, the call and its {what} argument",
                    r)
            r = run_env(["--seccomp", "log"], {"MVM_SECCOMP_SELFTEST": f"{role}:{what}"})
            mvmtest.guest_passed(c, r, f"log, {what} self-test on the {role} thread")
            c.check(f"self-test: {what}(" in r.err, f"log: the {role} thread made the {what} "
                    "call", r)


def start_echo(extra=()):
    args = mvmtest.command(MVM, ["run", "-k", mvmtest.guest_path(GUEST_DIR, "echo")] +
                           list(extra))
    return subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def read_until(p, needle, timeout=60):
    buf, end = b"", time.monotonic() + timeout
    while needle not in buf and time.monotonic() < end:
        r, _, _ = select.select([p.stdout], [], [], 0.2)
        if r:
            chunk = os.read(p.stdout.fileno(), 4096)
            if not chunk:
                break
            buf += chunk
    return buf


# PF_USER_WORKER: a kernel worker in the process's thread group (KVM's kvm-nx-lpage-recovery,
# 6.13+). It never returns to user space, so no filter applies to it.
PF_USER_WORKER = 0x4000


def threads(pid):
    """{tid: (name, Seccomp, Seccomp_filters)} of every user thread of (pid)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/status") as f:
                status = f.read()
            with open(f"/proc/{pid}/task/{tid}/comm") as f:
                name = f.read().strip()
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                flags = int(f.read().rsplit(")", 1)[1].split()[6])
        except OSError:
            continue
        if flags & PF_USER_WORKER:
            continue
        mode = re.search(r"^Seccomp:\s+(\d+)", status, re.M)
        filters = re.search(r"^Seccomp_filters:\s+(\d+)", status, re.M)
        out[int(tid)] = (name, mode and int(mode.group(1)), filters and int(filters.group(1)))
    return out


def echo_with_threads(c, what, extra, check):
    """Runs the echo guest, calls check(threads) while it waits for input, then finishes it."""
    p = start_echo(extra)
    out = read_until(p, b"ECHO-READY")
    c.check(b"ECHO-READY" in out, f"{what}: the guest runs")
    check(threads(p.pid))
    try:
        stdout, stderr = p.communicate(b"seccomp\n", timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        stdout, stderr = p.communicate()
    r = mvmtest.Result(p.returncode, (out + stdout).decode(errors="replace"),
                       stderr.decode(errors="replace"))
    mvmtest.guest_passed(c, r, what)
    c.check("ECHO: seccomp" in r.out, f"{what}: the line came back", r)
    return r


def expect_names(c, what, ts):
    names = sorted(n for n, _, _ in ts.values())
    want = ["mvm", "mvm-io"] + ([] if mvmtest.ACCEL in ("dbt", "hybrid") else ["mvm-vcpu0"])
    c.check(names == sorted(want), f"{what}: threads {want} (got {names})")


def case_status(c):
    def check(ts):
        expect_names(c, "default", ts)
        for tid, (name, mode, filters) in ts.items():
            c.check(mode == 2, f"thread {name} ({tid}) is in seccomp filter mode (got {mode})")
            c.check(filters == 1, f"thread {name} ({tid}) has exactly one filter, its own "
                    f"(got {filters})")
    echo_with_threads(c, "default", [], check)


def case_log(c):
    def check(ts):
        for tid, (name, mode, filters) in ts.items():
            c.check(mode == 2 and filters == 1, f"log: thread {name} has its filter "
                    f"(Seccomp {mode}, Seccomp_filters {filters})")
    echo_with_threads(c, "log", ["--seccomp", "log"], check)
    role = roles()[0][0]
    r = run_env(["--seccomp", "log"], {"MVM_SECCOMP_SELFTEST": role})
    mvmtest.guest_passed(c, r, f"log, self-test on the {role} thread")
    m = re.search(r"self-test: socket\(\) on the .* thread returned (-?\d+)", r.err)
    c.check(m and int(m.group(1)) >= 0, "log: the forbidden call was let through", r)


def case_off(c):
    def check(ts):
        for tid, (name, mode, filters) in ts.items():
            c.check(mode == 0, f"off: thread {name} has no filter (Seccomp {mode})")
    echo_with_threads(c, "off", ["--seccomp", "off"], check)
    for role in roles()[0]:
        r = run_env(["--seccomp", "off"], {"MVM_SECCOMP_SELFTEST": role})
        mvmtest.guest_passed(c, r, f"off, self-test on the {role} thread")
        c.check("self-test" not in r.err, f"off: no self-test on the {role} thread", r)
    r = run_env(["--seccomp", "maybe"], {})
    c.check(r.status == 64 and "--seccomp: 'maybe' is not on, log or off" in r.err,
            "a bad --seccomp value is a usage error", r)


def main():
    case = sys.argv[3]
    c = mvmtest.Checker(f"seccomp-{case}")
    mvmtest.require_kvm()
    {"trap": case_trap, "args": case_args, "status": case_status, "log": case_log,
     "off": case_off}[case](c)
    c.done()


if __name__ == "__main__":
    MVM, GUEST_DIR = sys.argv[1], sys.argv[2]
    main()
