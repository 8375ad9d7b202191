#!/usr/bin/env python3
"""System calls from guest user mode under `mvm run` (the syscall test guest).

Usage: test_syscall.py MVM GUEST_DIR CASE
  trap      the default: SYSCALL/SYSRET register semantics checked by the guest, MSRs read back
            what the guest wrote; int 0x80 is delivered, or on KVM-PVM raises #UD (documented)
  trap-off  MVM_SYSCALL_TRAP=off: the guest's kernel-mode part (user=0) still passes, so the
            guest and mvm work where the mechanism is not used
  hostile-window, hostile-unbacked, hostile-forged-r11, hostile-nosce, hostile-cstar
            guest user code attacking the trap (the guest's hostile=MODE): it must not stop the
            VM (exit 81 before these were fixed) nor hand the kernel impossible state; the
            guest checks what its #UD handler and its kernel saw. Skipped where mvm does not
            trap SYSCALL (not KVM-PVM: the guest finds no trap window and prints SKIP)
Under MVM_TEST_ACCEL=hybrid (user mode on KVM, kernel mode in mvm's engine) every exit from
user mode goes to the engine, which runs the instruction itself: int 0x80 must be delivered,
and a user jump to the LSTAR trap is no SYSCALL (#UD, kernel not entered).
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
    if HYBRID:
        c.check("PASS int80-delivered" in r.out and "PASS int80-result" in r.out,
                "int 0x80 was delivered through the guest's DPL3 gate", r)
    else:
        c.check("PASS int80-delivered" in r.out or "PASS int80-ud" in r.out,
                "int 0x80 was delivered or raised #UD", r)
    # LSTAR written again once the CPU has set the window entry's accessed bit: still mvm's.
    c.check("PASS msr-lstar-again-reads-back" in r.out, "LSTAR written again reads back", r)
    c.check("is in use by the guest" not in r.err, "mvm still knows its trap window entry", r)


def case_trap_off(c):
    os.environ["MVM_SYSCALL_TRAP"] = "off"  # mvmtest.run passes the environment on
    r = mvmtest.run(MVM, ["run", "-k", GUEST, "-p", "user=0"], timeout=60)
    mvmtest.guest_passed(c, r, "syscall user=0 with the trap off")
    c.check("PASS msr-lstar-reads-back" in r.out, "LSTAR reads back without the trap", r)


# What each hostile mode must print, and the warning mvm logs once for it (None: nothing).
HOSTILE = {
    "window": (["PASS hostile-window-offset-ud"],
               "user code jumped into the SYSCALL trap window"),
    "unbacked": (["PASS hostile-unbacked-fetch-ud"],
                 "the bytes do not decode as an x86 instruction; #UD raised in the guest"),
    "forged-r11": (["PASS hostile-forged-r11-entered", "PASS hostile-forged-r11-kernel-rflags",
                    "PASS hostile-forged-r11-kernel-r11", "PASS hostile-forged-r11-user-if-df",
                    "PASS hostile-forged-r11-rcx"], None),
    "nosce": (["PASS hostile-nosce-ud", "PASS hostile-nosce-not-entered"], None),
    "cstar": (["PASS hostile-cstar-not-entered", "PASS hostile-cstar-64bit-ud"],
              "CSTAR trap reached from 64-bit code"),
}


def case_hostile(c, mode):
    os.environ["MVM_LOG"] = "info"  # says whether the trap is armed
    r = mvmtest.run(MVM, ["run", "-k", GUEST, "-p", f"hostile={mode}"], timeout=60)
    trapped = ("is trapped and completed by mvm" in r.err or
               "guest user mode runs on KVM" in r.err)
    if not trapped and r.status == 0 and "SKIP hostile-user" in r.out:
        mvmtest.skip("mvm does not trap SYSCALL on this host (not KVM-PVM): no trap window")
    c.check(r.status != 81, "guest user mode did not stop the VM (exit 81)", r)
    mvmtest.guest_passed(c, r, f"syscall hostile={mode}")
    c.check("SKIP hostile-user" not in r.out, "the guest found mvm's trap window", r)
    lines, warning = HOSTILE[mode]
    if HYBRID:
        # The engine raises the #UDs (its own once-only warning); a jump to the LSTAR trap
        # is no SYSCALL there.
        warning = None
        if mode == "forged-r11":
            lines = ["PASS hostile-forged-r11-ud"]
    for line in lines:
        c.check(line in r.out, f"guest printed '{line}'", r)
    if warning:
        n = sum(warning in ln for ln in r.err.splitlines())
        c.check(n == 1, f"mvm logged '{warning}' once (got {n})", r)


HYBRID = mvmtest.ACCEL == "hybrid"
CASES = {"trap": case_trap, "trap-off": case_trap_off}
CASES.update({f"hostile-{m}": (lambda c, m=m: case_hostile(c, m)) for m in HOSTILE})

if __name__ == "__main__":
    MVM, GUEST_DIR, CASE = sys.argv[1], sys.argv[2], sys.argv[3]
    GUEST = os.path.join(GUEST_DIR, "syscall.elf")
    mvmtest.require_kvm()
    checker = mvmtest.Checker(f"syscall-{CASE}")
    CASES[CASE](checker)
    checker.done()
