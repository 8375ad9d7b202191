#!/usr/bin/env python3
"""The jail around mvm (`mvm run --jail UID:GID ...`, sandbox/jail.h), checked from outside on a
running mvm through /proc: its user and groups, capabilities (none, bounding set empty),
no_new_privs, seccomp, its root (an empty tmpfs: no host file reachable), its mount and PID
namespaces, cgroup, rlimits, and descriptors (nothing inherited); the guest still runs to the end.

Usage: test_jail.py MVM GUEST_DIR CASE
  linux    Linux under --accel dbt, jailed with a PID namespace and a cgroup
  signal   SIGTERM to the parent of the PID namespace stops the jailed mvm (status 143)
  kvm      the echo guest on KVM, jailed (vCPU threads after the drop), console input
  hybrid   the syscall guest under --accel hybrid, jailed (KVM user mode after the drop)
  netns    --jail-netns: the TAP is made in the given network namespace, not the host's
  refused  not root, a network namespace that does not exist: status 64 and a message
Needs root; Linux cases need the guest images (scripts/test.sh sets them).
"""
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mvmtest  # noqa: E402

NOBODY = "65534:65534"


def images():
    p = {k: os.environ.get(k) for k in ("MVM_VMLINUX", "MVM_INITRAMFS")}
    if not all(v and os.path.exists(v) for v in p.values()):
        mvmtest.skip("guest images not built (scripts/test.sh sets MVM_VMLINUX, MVM_INITRAMFS)")
    return p


def status_of(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def jailed_pid(p, pidns):
    """The jailed process: mvm itself, or with a PID namespace the child of the waiting parent."""
    if not pidns:
        return p.pid
    for _ in range(100):
        try:
            with open(f"/proc/{p.pid}/task/{p.pid}/children") as f:
                kids = f.read().split()
            if kids:
                return int(kids[0])
        except FileNotFoundError:
            return None
        time.sleep(0.05)
    return None


def wait_jailed(pid, uid):
    """Until the process has dropped to (uid) (it does once every file is open)."""
    for _ in range(200):
        try:
            if status_of(pid)["Uid"].split()[0] == str(uid):
                return True
        except (FileNotFoundError, KeyError):
            return False
        time.sleep(0.02)
    return False


def check_jail(c, pid, pidns, cgroup, inherited):
    st = status_of(pid)
    c.check(st["Uid"].split() == ["65534"] * 4, f"runs as uid 65534 (Uid: {st['Uid']})")
    c.check(st["Gid"].split() == ["65534"] * 4, f"runs as gid 65534 (Gid: {st['Gid']})")
    c.check(st.get("Groups", "").strip() == "", "no supplementary groups")
    for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        c.check(int(st[cap], 16) == 0, f"{cap} is empty ({st[cap]})")
    c.check(st["NoNewPrivs"].strip() == "1", "no_new_privs is set")
    # The main thread loads its filter after starting the vCPU threads, a few ms after it
    # dropped to the uid: wait for it rather than race it.
    for _ in range(100):
        if st["Seccomp"].strip() == "2":
            break
        time.sleep(0.02)
        st = status_of(pid)
    c.check(st["Seccomp"].strip() == "2", "seccomp filters are on")
    root = f"/proc/{pid}/root"
    c.check(os.listdir(root) == [], f"its root is empty (got {os.listdir(root)[:8]})")
    for host_file in ("etc/passwd", "dev/kvm", "proc/self", "tmp"):
        c.check(not os.path.exists(os.path.join(root, host_file)),
                f"/{host_file} is not reachable from its root")
    c.check(os.readlink(f"/proc/{pid}/ns/mnt") != os.readlink("/proc/self/ns/mnt"),
            "its own mount namespace")
    if pidns:
        c.check(st["NSpid"].split()[-1] == "1", f"PID 1 of its own PID namespace ({st['NSpid']})")
    with open(f"/proc/{pid}/cgroup") as f:
        cg = f.read()
    if cgroup:
        c.check(re.search(rf"^0::/{re.escape(cgroup)}$", cg, re.M),
                f"in cgroup v2 group {cgroup} ({cg.strip()!r})")
    with open(f"/proc/{pid}/limits") as f:
        limits = f.read()
    c.check(re.search(r"^Max open files\s+2048\s+2048", limits, re.M), "RLIMIT_NOFILE 2048")
    c.check(re.search(r"^Max core file size\s+0\s+0", limits, re.M), "RLIMIT_CORE 0")
    fds = [os.readlink(f"/proc/{pid}/fd/{n}") for n in os.listdir(f"/proc/{pid}/fd")]
    c.check(inherited not in fds, f"the descriptor its parent left open is closed ({fds})")


def run_jailed(c, argv, pidns, cgroup, timeout=120, stdin_after=None):
    """Runs mvm with (argv) and a descriptor it must not keep, checks the jail while it runs,
    then feeds (stdin_after) (a guest waiting for input) and collects the result."""
    with tempfile.NamedTemporaryFile(prefix="mvm-jail-inherited-") as leak:
        p = subprocess.Popen(mvmtest.command(MVM, argv),
                             stdin=subprocess.PIPE if stdin_after else subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             pass_fds=(leak.fileno(),))
        try:
            pid = jailed_pid(p, pidns)
            ok = pid is not None and wait_jailed(pid, 65534)
            if c.check(ok, "mvm reached its jail"):
                check_jail(c, pid, pidns, cgroup, leak.name)
            if pidns:
                st = status_of(p.pid)
                c.check(st["Uid"].split() == ["65534"] * 4 and int(st["CapEff"], 16) == 0 and
                        int(st["CapBnd"], 16) == 0,
                        "the parent that waits for it holds no privilege either")
            out, err = p.communicate(input=stdin_after, timeout=timeout)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
    return mvmtest.Result(p.returncode, out.decode(errors="replace"),
                          err.decode(errors="replace"))


def case_linux(c):
    img = images()
    cgroup = f"mvm-test-jail-{os.getpid()}"
    argv = ["run", "--accel", "dbt", "--jail", NOBODY, "--jail-pidns", "--jail-cgroup", cgroup,
            "-m", "256M", "-k", img["MVM_VMLINUX"], "-i", img["MVM_INITRAMFS"], "-p",
            'console=ttyS0 reboot=k panic=-1 mvm.run="sleep 3; echo JAILED-$((1+1))"']
    try:
        r = run_jailed(c, argv, True, cgroup)
    finally:
        for root in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
            if os.path.isdir(os.path.join(root, cgroup)):
                os.rmdir(os.path.join(root, cgroup))
    c.check("JAILED-2" in r.out, "the guest ran its command to the end in the jail", r)
    c.check(r.status == 0, f"mvm (the waiting parent) exits 0 (got {r.status})", r)


def case_signal(c):
    """SIGTERM to the waiting parent reaches the jailed mvm (PID 1 of its namespace), which
    stops the guest and exits 128 + 15; the parent passes that on."""
    img = images()
    argv = ["run", "--accel", "dbt", "--jail", NOBODY, "--jail-pidns", "-m", "256M", "-k",
            img["MVM_VMLINUX"], "-i", img["MVM_INITRAMFS"], "-p",
            'console=ttyS0 reboot=k panic=-1 mvm.run="sleep 60"']
    p = subprocess.Popen(mvmtest.command(MVM, argv), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        pid = jailed_pid(p, True)
        c.check(pid is not None and wait_jailed(pid, 65534), "mvm reached its jail")
        time.sleep(0.5)
        p.send_signal(15)
        out, err = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    r = mvmtest.Result(p.returncode, out.decode(errors="replace"), err.decode(errors="replace"))
    c.check(p.returncode == 143, f"exit status 143 after SIGTERM (got {p.returncode})", r)


def case_kvm(c):
    mvmtest.require_kvm()
    r = run_jailed(c, ["run", "--jail", NOBODY, "-k", os.path.join(GUEST_DIR, "echo.elf")],
                   False, None, timeout=60, stdin_after=b"jailed\n")
    mvmtest.guest_passed(c, r, "echo guest, jailed, on KVM")
    c.check("ECHO: jailed" in r.out, "the console line reached the jailed guest and came back", r)


def case_hybrid(c):
    mvmtest.require_kvm()
    r = run_jailed(c, ["run", "--accel", "hybrid", "--jail", NOBODY, "-k",
                       os.path.join(GUEST_DIR, "usermap.elf")], False, None, timeout=120)
    mvmtest.guest_passed(c, r, "usermap guest, jailed, under --accel hybrid")


def case_netns(c):
    img = images()
    ns, tap = f"mvmjail{os.getpid()}", f"mvjt{os.getpid() % 100000}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        argv = ["run", "--accel", "dbt", "--jail", NOBODY, "--jail-netns", f"/var/run/netns/{ns}",
                "-m", "256M", "-n", f"tap={tap}", "-k", img["MVM_VMLINUX"], "-i",
                img["MVM_INITRAMFS"], "-p",
                'console=ttyS0 reboot=k panic=-1 mvm.run="ip link set eth0 up; sleep 3"']
        p = subprocess.Popen(mvmtest.command(MVM, argv), stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            ok = wait_jailed(p.pid, 65534)
            c.check(ok, "mvm reached its jail")
            inside = subprocess.run(["ip", "-n", ns, "link", "show", tap], capture_output=True)
            outside = subprocess.run(["ip", "link", "show", tap], capture_output=True)
            c.check(inside.returncode == 0, f"TAP {tap} exists in namespace {ns}")
            c.check(outside.returncode != 0, f"TAP {tap} is not in the host's namespace")
            c.check(os.readlink(f"/proc/{p.pid}/ns/net") !=
                    os.readlink("/proc/self/ns/net"), "mvm runs in the other namespace")
            out, err = p.communicate(timeout=120)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        r = mvmtest.Result(p.returncode, out.decode(errors="replace"),
                           err.decode(errors="replace"))
        c.check(r.status == 0, f"mvm exits 0 (got {r.status})", r)
    finally:
        subprocess.run(["ip", "netns", "del", ns])


def case_refused(c):
    hello = os.path.join(GUEST_DIR, "hello.elf")
    r = mvmtest.run("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", MVM,
                                "run", "--accel", "dbt", "--jail", NOBODY, "-k", hello])
    c.check(r.status == 64, f"not root: status 64 (got {r.status})", r)
    c.check("needs root" in r.err, "not root: the message says --jail needs root", r)
    r = mvmtest.run(MVM, ["run", "--accel", "dbt", "--jail", NOBODY, "--jail-netns",
                          "/var/run/netns/no-such-mvm-ns", "-k", hello])
    c.check(r.status == 64, f"missing namespace: status 64 (got {r.status})", r)
    c.check("no-such-mvm-ns" in r.err, "missing namespace: the message names it", r)


CASES = {"linux": case_linux, "signal": case_signal, "kvm": case_kvm, "hybrid": case_hybrid, "netns": case_netns,
         "refused": case_refused}

if __name__ == "__main__":
    MVM, GUEST_DIR, CASE = sys.argv[1], sys.argv[2], sys.argv[3]
    if os.geteuid() != 0:
        mvmtest.skip("the jail needs root")
    checker = mvmtest.Checker(f"jail-{CASE}")
    CASES[CASE](checker)
    checker.done()
