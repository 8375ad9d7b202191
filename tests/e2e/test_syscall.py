#!/usr/bin/env python3
"""System calls from guest user mode under `mvm run` (the syscall test guest).

Usage: test_syscall.py MVM GUEST_DIR CASE
  trap      the default: SYSCALL/SYSRET register semantics checked by the guest, MSRs read back
            what the guest wrote; int 0x80 is delivered, or on KVM-PVM raises #UD (documented)
  trap-off  MVM_SYSCALL_TRAP=off: the guest's kernel-mode part (user=0) still passes, so the
            guest and mvm work where the mechanism is not used
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mvmtest  # noqa: E402


def case_trap(c):
    r = mvmtest.run(MVM, ["run", "-k", GUEST], timeout=60)
    mvmtest.guest_passed(c, r, "syscall")
    c.check("SYSCALLS 3" in r.out, "three system calls reached the guest kernel", r)
    c.check("PASS syscall-cs-from-star" in r.out and "PASS sysret-ss" in r.out,
            "SYSCALL and SYSRET selector checks ran", r)
    c.check("PASS int80-delivered" in r.out or "PASS int80-ud" in r.out,
            "int 0x80 was delivered or raised #UD", r)


def case_trap_off(c):
    os.environ["MVM_SYSCALL_TRAP"] = "off"  # mvmtest.run passes the environment on
    r = mvmtest.run(MVM, ["run", "-k", GUEST, "-p", "user=0"], timeout=60)
    mvmtest.guest_passed(c, r, "syscall user=0 with the trap off")
    c.check("PASS msr-lstar-reads-back" in r.out, "LSTAR reads back without the trap", r)


CASES = {"trap": case_trap, "trap-off": case_trap_off}

if __name__ == "__main__":
    MVM, GUEST_DIR, CASE = sys.argv[1], sys.argv[2], sys.argv[3]
    GUEST = os.path.join(GUEST_DIR, "syscall.elf")
    mvmtest.require_kvm()
    checker = mvmtest.Checker(f"syscall-{CASE}")
    CASES[CASE](checker)
    checker.done()
