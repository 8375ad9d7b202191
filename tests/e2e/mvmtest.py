"""mvmtest: a small harness for tests that run the mvm binary.

Exit codes follow the rest of the suite: 0 pass, 1 fail, 77 skip. With MVM_REQUIRE_KVM=1 a test
that would skip for want of /dev/kvm fails instead, so CI cannot pass by skipping.
"""
import os
import re
import subprocess
import sys

PASS, FAIL, SKIP = 0, 1, 77

# MVM_TEST_ACCEL=dbt runs every "mvm run" of a test on mvm's own engine (--accel dbt), which
# needs no /dev/kvm: CTest registers the dbt/ variants of the e2e tests that way.
ACCEL = os.environ.get("MVM_TEST_ACCEL", "")


class Result:
    def __init__(self, status, out, err, timed_out=False):
        self.status, self.out, self.err, self.timed_out = status, out, err, timed_out

    def __repr__(self):
        return (f"status={self.status} timed_out={self.timed_out}\n--- stdout ---\n{self.out}"
                f"\n--- stderr ---\n{self.err}")


def skip(why):
    if os.environ.get("MVM_REQUIRE_KVM") == "1":
        print(f"FAIL (skip not allowed with MVM_REQUIRE_KVM=1): {why}")
        sys.exit(FAIL)
    print(f"SKIP: {why}")
    sys.exit(SKIP)


def require_kvm():
    if ACCEL == "dbt":
        return
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
    except OSError as e:
        skip(f"/dev/kvm: {e.strerror}")


def run(mvm, args, stdin=b"", timeout=60):
    """Runs mvm with args; stdin is fed and closed. Returns a Result (strings decoded)."""
    try:
        p = subprocess.run(command(mvm, args), input=stdin, capture_output=True,
                           timeout=timeout)
        return Result(p.returncode, p.stdout.decode(errors="replace"),
                      p.stderr.decode(errors="replace"))
    except subprocess.TimeoutExpired as e:
        return Result(None, (e.stdout or b"").decode(errors="replace"),
                      (e.stderr or b"").decode(errors="replace"), timed_out=True)


def command(mvm, args):
    """The argv of mvm with (args), on the accelerator the test runs under."""
    args = list(args)
    if ACCEL and args[:1] == ["run"]:
        args = ["run", "--accel", ACCEL] + args[1:]
    return [mvm] + args


def guest_path(guest_dir, name):
    """The test guest (name).elf in the build tree's guest directory."""
    return os.path.join(guest_dir, f"{name}.elf")


def guest_passed(c, r, what):
    """The test guests' success: in time, exit status 0, RESULT PASS, no FAIL line."""
    c.check(not r.timed_out, f"{what}: finished in time", r)
    c.check(r.status == 0, f"{what}: exit status 0 (got {r.status})", r)
    c.check("RESULT PASS" in r.out, f"{what}: guest printed RESULT PASS", r)
    c.check(not re.search(r"^FAIL", r.out, re.M), f"{what}: no FAIL lines", r)


class Checker:
    def __init__(self, name):
        self.name, self.failures, self.checks = name, 0, 0

    def check(self, cond, what, result=None):
        self.checks += 1
        if not cond:
            self.failures += 1
            print(f"FAIL {self.name}: {what}")
            if result is not None:
                print(result)
        return cond

    def done(self):
        if self.checks == 0:
            print("no checks ran")
            sys.exit(FAIL)
        print(f"{self.checks} checks, {self.failures} failed")
        sys.exit(FAIL if self.failures else PASS)
