#!/usr/bin/env python3
"""`--console stdio` on a real terminal (a pseudo-terminal the test creates): raw mode while the
guest runs, input reaches the guest, Ctrl-A x quits, and the terminal's settings are restored on
every way out: guest exit, Ctrl-A x, and SIGTERM.

Usage: test_console_tty.py MVM GUEST_DIR
"""
import os
import pty
import select
import signal
import subprocess
import sys
import termios
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mvmtest  # noqa: E402


def start(mvm, guest, slave):
    return subprocess.Popen([mvm, "run", "-k", guest], stdin=slave, stdout=slave,
                            stderr=subprocess.PIPE, start_new_session=True)


def read_until(master, needle, timeout=30):
    buf, end = b"", time.monotonic() + timeout
    while needle not in buf and time.monotonic() < end:
        r, _, _ = select.select([master], [], [], 0.2)
        if r:
            try:
                buf += os.read(master, 4096)
            except OSError:
                break
    return buf


def raw_mode(attrs):
    return not (attrs[3] & termios.ICANON) and not (attrs[3] & termios.ECHO)


def main():
    c = mvmtest.Checker("console-tty")
    guest = os.path.join(GUEST_DIR, "echo.elf")
    cases = (("a line typed", b"typed on a tty\r", "exit"),
             ("Ctrl-A x", b"\x01x", "quit"),
             ("SIGTERM", None, "signal"))
    for what, keys, how in cases:
        master, slave = pty.openpty()
        before = termios.tcgetattr(slave)
        p = start(MVM, guest, slave)
        out = read_until(master, b"ECHO-READY")
        c.check(b"ECHO-READY" in out, f"{what}: the guest runs on the terminal")
        c.check(raw_mode(termios.tcgetattr(slave)), f"{what}: raw mode while running")
        if keys:
            os.write(master, keys)
        else:
            p.send_signal(signal.SIGTERM)
        try:
            status = p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            status = None
        out += read_until(master, b"\n", timeout=0.5)
        expect = {"exit": 0, "quit": 0, "signal": 128 + signal.SIGTERM}[how]
        c.check(status == expect, f"{what}: exit status {expect} (got {status})")
        if how == "exit":
            c.check(b"ECHO: typed on a tty" in out, f"{what}: the guest got the line")
        c.check(termios.tcgetattr(slave) == before, f"{what}: terminal settings restored")
        os.close(master)
        os.close(slave)
    c.done()


if __name__ == "__main__":
    MVM, GUEST_DIR = sys.argv[1], sys.argv[2]
    mvmtest.require_kvm()
    main()
