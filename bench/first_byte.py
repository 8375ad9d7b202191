#!/usr/bin/env python3
"""Exec -> the first byte a VMM writes to stdout (the guest's first serial output), for several
commands launched interleaved so load changes hit each alike; one discarded warm-up launch
each. Prints median, min and max per command.

Usage: first_byte.py [--runs N] LABEL=COMMAND ...   (COMMAND split on spaces; an argument
       ENV:NAME=VALUE before it sets an environment variable for that command)
Example: first_byte.py "new=build/mvm run --accel kvm --no-rng -k build/guest-kernels/tests/hello.elf"
"""
import argparse
import os
import statistics
import subprocess
import time


def once(argv, env):
    t = time.monotonic_ns()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         stdin=subprocess.DEVNULL, env=env)
    got = os.read(p.stdout.fileno(), 1)
    t1 = time.monotonic_ns()
    p.kill()
    p.wait()
    if not got:
        raise SystemExit(f"{argv[0]}: no output (status {p.returncode})")
    return (t1 - t) / 1e6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("cases", nargs="+")
    a = ap.parse_args()
    cases = []
    for c in a.cases:
        label, _, cmd = c.partition("=")
        words, env = cmd.split(), dict(os.environ)
        while words and words[0].startswith("ENV:"):
            k, _, v = words.pop(0)[4:].partition("=")
            env[k] = v
        cases.append((label, words, env))
    for _, argv, env in cases:
        once(argv, env)
    res = {label: [] for label, _, _ in cases}
    for _ in range(a.runs):
        for label, argv, env in cases:
            res[label].append(once(argv, env))
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    for label, v in res.items():
        print(f"{label:40s} median {statistics.median(v):7.2f} ms  min {min(v):7.2f}  "
              f"max {max(v):7.2f}  ({len(v)} runs, load {load})")


main()
