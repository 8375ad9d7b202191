#!/usr/bin/env python3
"""mvm as Firecracker: its API over a Unix socket with a real HTTP client (Debian's curl, and raw
sockets where curl cannot misbehave on purpose), and its --config-file.

Cases:
  control      the echo guest started over the API; GET / through the states; PATCH /vm pauses
               (a line sent to the paused guest is not echoed until it is resumed); the phase
               rules; FlushMetrics; SIGTERM ends mvm and removes the socket.
  bad-input    malformed JSON, unknown fields, wrong types, a drive id that differs from its
               path, a missing kernel, a kernel that is not one (InstanceStart fails, nothing
               starts, a fixed configuration then starts), calls in the wrong phase, bodies over
               the limit (with Content-Length and chunked), a client that disconnects mid-request,
               100 requests on one connection, an existing socket path, bad command lines: each
               gets its 400 (or exit status 64) and the VMM stays up and correct.
  linux        (root, MVM_VMLINUX/MVM_INITRAMFS) in a network namespace this test creates: the
               Firecracker Go SDK's start sequence replayed with curl (GET /machine-config, PUT
               /logger, /metrics, /machine-config, GET /machine-config, PUT /boot-source,
               /drives/rootfs (an ext4 image), /network-interfaces/eth0 (a TAP), InstanceStart);
               the guest boots, mounts its drive, pings the host over the TAP; the metrics count
               the NIC's frames; SendCtrlAltDel ends the VM (exit 0). Then the same VM from
               --config-file with --no-api.

Usage: test_fc_api.py MVM GUEST_DIR CASE
"""
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mvmtest  # noqa: E402
from fcclient import ACCEL, curl, fault_says, state  # noqa: E402
import fcclient  # noqa: E402

MVM, GUEST_DIR, CASE = sys.argv[1], sys.argv[2], sys.argv[3]


def case_control(c, tmp):
    sock = os.path.join(tmp, "api.sock")
    metrics = os.path.join(tmp, "metrics.json")
    vm = fcclient.Mvm(MVM, sock)
    c.check(os.path.exists(sock), "the socket exists", vm)
    r = curl(sock, "GET", "/")
    c.check(r[0] == 200 and r[1] == {"id": "anonymous-instance", "state": "Not started",
                                     "vmm_version": r[1].get("vmm_version") if r[1] else None,
                                     "app_name": "mvm"}, f"GET /: {r}")
    r = curl(sock, "GET", "/version")
    c.check(r[0] == 200 and re.match(r"^\d+\.\d+\.\d+$", r[1].get("firecracker_version", "")),
            f"GET /version: {r}")
    c.check(fault_says(curl(sock, "PATCH", "/vm", {"state": "Paused"}), "before starting"),
            "PATCH /vm before InstanceStart is refused")
    c.check(fault_says(curl(sock, "PUT", "/actions", {"action_type": "SendCtrlAltDel"}),
                       "before starting"), "SendCtrlAltDel before InstanceStart is refused")
    for path, body in (("/metrics", {"metrics_path": metrics}),
                       ("/boot-source", {"kernel_image_path":
                                         mvmtest.guest_path(GUEST_DIR, "echo")}),
                       ("/machine-config", {"vcpu_count": 1, "mem_size_mib": 32}),
                       ("/actions", {"action_type": "InstanceStart"})):
        r = curl(sock, "PUT", path, body)
        c.check(r[0] == 204 and r[2] == "", f"PUT {path}: 204 with an empty body: {r}", vm)
    c.check(vm.wait_out("ECHO-READY", 60), "the guest runs", vm)
    c.check(state(sock) == "Running", "GET / says Running")
    if ACCEL == "kvm":
        names = [open(f"/proc/{vm.p.pid}/task/{t}/comm").read().strip()
                 for t in os.listdir(f"/proc/{vm.p.pid}/task")]
        c.check("fc_vcpu 0" in names, f"the vCPU thread is named as Firecracker's: {names}")
    c.check(fault_says(curl(sock, "PUT", "/machine-config", {"vcpu_count": 2,
                                                            "mem_size_mib": 64}),
                       "after starting"), "PUT /machine-config after InstanceStart is refused")
    c.check(fault_says(curl(sock, "PUT", "/actions", {"action_type": "InstanceStart"}),
                       "after starting"), "a second InstanceStart is refused")
    r = curl(sock, "PUT", "/actions", {"action_type": "FlushMetrics"})
    c.check(r[0] == 204, f"FlushMetrics: {r}")
    if ACCEL == "kvm":
        # The echo guest printed through the UART: port I/O exits on vCPU 0.
        last = json.loads(open(metrics).read().splitlines()[-1])
        c.check(last.get("vcpus", [{}])[0].get("exits", {}).get("io", 0) > 0,
                f"the metrics count vCPU 0's port I/O exits: {last.get('vcpus')}")
    r = curl(sock, "PATCH", "/vm", {"state": "Paused"})
    c.check(r[0] == 204, f"PATCH /vm Paused: {r}")
    c.check(state(sock) == "Paused", "GET / says Paused")
    # The guest polls the UART for the line: while paused nothing may echo it.
    vm.send("paused-line\n")
    time.sleep(1.5)
    c.check(b"ECHO:" not in vm.out, "a paused guest does not run", vm)
    # Resumed, the guest echoes the line and exits at once, which ends mvm.
    r = curl(sock, "PATCH", "/vm", {"state": "Resumed"})
    c.check(r[0] == 204, f"PATCH /vm Resumed: {r}")
    c.check(vm.wait_out("ECHO: paused-line", 30), "the resumed guest echoes the line", vm)
    status = vm.wait(60)
    c.check(status == 0, f"the guest's exit ends mvm with its status 0 (got {status})", vm)
    c.check(not os.path.exists(sock), "the socket is removed when mvm exits")
    lines = open(metrics).read().splitlines() if os.path.exists(metrics) else []
    c.check(len(lines) >= 1 and all(json.loads(x).get("utc_timestamp_ms") for x in lines),
            f"the metrics file has JSON lines: {lines[:2]}")

    # SIGTERM before any VM: exit 143, socket gone.
    vm = fcclient.Mvm(MVM, sock)
    vm.p.terminate()
    status = vm.wait(10)
    c.check(status == 143 and not os.path.exists(sock),
            f"SIGTERM before InstanceStart: status 143, socket removed (got {status})", vm)


def raw_request(sock, data, read=True):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(sock)
    s.sendall(data)
    out = b""
    if read:
        try:
            while b"\r\n\r\n" not in out or len(out) < out.index(b"\r\n\r\n") + 4 + int(
                    (re.search(rb"Content-Length: (\d+)", out, re.I) or [b"", b"0"])[1]):
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except socket.timeout:
            pass
    s.close()
    return out


def case_bad_input(c, tmp):
    sock = os.path.join(tmp, "api.sock")
    echo = mvmtest.guest_path(GUEST_DIR, "echo")
    not_a_kernel = os.path.join(tmp, "not-a-kernel")
    with open(not_a_kernel, "wb") as f:
        f.write(b"\x7fELF but not really" + bytes(4096))
    vm = fcclient.Mvm(MVM, sock)
    bad = [
        ("PUT", "/machine-config", '{"vcpu_count": 2, "mem_size_mib": ', "not JSON"),
        ("PUT", "/machine-config", '{"vcpu_count": 2, "mem_size_mib": 64, "gpu": true}',
         "unknown field 'gpu'"),
        ("PUT", "/machine-config", '{"vcpu_count": "two", "mem_size_mib": 64}',
         "'vcpu_count' must be"),
        ("PUT", "/machine-config", '{"vcpu_count": 99, "mem_size_mib": 64}', "outside"),
        ("PUT", "/machine-config", '[]', "JSON object"),
        ("PUT", "/boot-source", '{"kernel_image_path": "/nonexistent/vmlinux"}',
         "No such file"),
        ("PUT", "/boot-source", '{"kernel_image_path": 42}', "must be a string"),
        ("PUT", "/drives/rootfs", json.dumps({"drive_id": "data", "path_on_host": echo,
                                              "is_root_device": True}), "differs"),
        ("PUT", "/drives/root..fs", json.dumps({"drive_id": "root..fs", "path_on_host": echo,
                                                "is_root_device": True}), "characters"),
        ("PUT", "/drives/d", json.dumps({"drive_id": "d", "path_on_host": "/nonexistent.img",
                                         "is_root_device": False}), "No such file"),
        ("PUT", "/network-interfaces/eth0", '{"iface_id": "eth0"}', "host_dev_name"),
        ("PUT", "/vsock", '{"guest_cid": 1, "uds_path": "/tmp/v.sock"}', "guest_cid"),
        ("PUT", "/balloon", '{"amount_mib": -1, "deflate_on_oom": true}', "'amount_mib'"),
        ("PUT", "/balloon", '{"amount_mib": 64, "deflate_on_oom": "yes"}', "'deflate_on_oom'"),
        ("PATCH", "/balloon", '{"amount_mib": 64}', "before starting"),
        ("GET", "/balloon", None, "no balloon device"),
        ("GET", "/balloon/statistics", None, "before starting"),
        ("PUT", "/snapshot/create", '{"snapshot_path": "a", "mem_file_path": "b"}',
         "before starting"),
        ("PUT", "/snapshot/load", '{"snapshot_path": "a"}', "exactly one of mem_backend"),
        ("PUT", "/actions", '{"action_type": "Reboot"}', "unknown action_type"),
        ("PUT", "/actions", '{"action_type": "InstanceStart", "now": true}', "action_type"),
        ("PUT", "/actions", '{"action_type": "InstanceStart"}', "no boot source"),
        ("PATCH", "/vm", '{"state": "Paused"}', "before starting"),
        ("PATCH", "/drives/rootfs", '{"drive_id": "rootfs"}', "before starting"),
        ("DELETE", "/machine-config", None, "Invalid request method and/or path"),
        ("GET", "/no/such/path/here", None, "Invalid request method and/or path"),
        ("PUT", "/mmds", '"a string"', "JSON object"),
    ]
    for method, path, body, says in bad:
        r = curl(sock, method, path, body)
        c.check(fault_says(r, says), f"{method} {path} {body!r}: 400 saying '{says}': {r}", vm)
    c.check(curl(sock, "GET", "/machine-config")[1] ==
            {"vcpu_count": 1, "mem_size_mib": 128, "smt": False, "track_dirty_pages": False,
             "huge_pages": "None"}, "refused bodies changed nothing")

    # Bodies over the limit: with a Content-Length (refused before it is read) and chunked.
    big = json.dumps({"k": "x" * 60000})
    r = curl(sock, "PUT", "/mmds", big)
    c.check(fault_says(r, "over the limit"), f"a 60 KB body is refused: {r[:2]}")
    out = raw_request(sock, b"PUT /mmds HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                      b"Content-Type: application/json\r\n\r\n" +
                      b"".join(b"%x\r\n%s\r\n" % (len(p), p)
                               for p in [big[i:i + 4096].encode()
                                         for i in range(0, len(big), 4096)]) + b"0\r\n\r\n")
    c.check(out.startswith(b"HTTP/1.1 400") and b"over the limit" in out,
            f"a chunked 60 KB body is refused: {out[:200]!r}")
    # A client that disconnects mid-request, and one that sends garbage.
    raw_request(sock, b"PUT /machine-config HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
                b'{"vcpu_', read=False)
    out = raw_request(sock, b"\x00\x01garbage\r\n\r\n")
    c.check(not out or out.startswith(b"HTTP/1.1 400"), f"garbage gets 400 or a close: {out!r}")
    # 100 requests in a row on one connection (keep-alive).
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(sock)
    answered = 0
    buf = b""
    for i in range(100):
        body = json.dumps({"n": i}).encode()
        s.sendall(b"PATCH /mmds HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        head, sep, buf = buf.partition(b"\r\n\r\n")
        answered += head.startswith(b"HTTP/1.1 204")
        m = re.search(rb"Content-Length: (\d+)", head, re.I)
        buf = buf[int(m[1]) if m else 0:]
    s.close()
    c.check(answered == 100, f"100 requests on one connection answered 204 ({answered})")
    r = curl(sock, "GET", "/mmds")
    c.check(r[0] == 200 and r[1] == {"n": 99}, f"GET /mmds after 100 PATCHes: {r}")

    # A kernel that is not one: InstanceStart fails, nothing runs, the VMM stays up; the
    # fixed configuration then starts.
    c.check(curl(sock, "PUT", "/boot-source", {"kernel_image_path": not_a_kernel})[0] == 204,
            "PUT /boot-source with a readable file")
    r = curl(sock, "PUT", "/actions", {"action_type": "InstanceStart"})
    c.check(fault_says(r, "neither a Linux bzImage"), f"InstanceStart names the bad kernel: {r}")
    c.check(state(sock) == "Not started", "after a failed InstanceStart: Not started")
    c.check(curl(sock, "PUT", "/boot-source", {"kernel_image_path": echo})[0] == 204,
            "PUT /boot-source again")
    c.check(curl(sock, "PUT", "/actions", {"action_type": "InstanceStart"})[0] == 204,
            "InstanceStart after fixing the kernel")
    c.check(vm.wait_out("ECHO-READY", 60), "the guest runs", vm)
    vm.send("still-correct\n")
    c.check(vm.wait_out("ECHO: still-correct", 30), "and is correct", vm)
    c.check(vm.wait(30) == 0, "exit 0", vm)

    # Command lines Firecracker refuses too.
    open(sock, "w").close()
    r = mvmtest.run(MVM, ["--api-sock", sock], timeout=10)
    c.check(r.status == 64 and "already exists" in r.err, f"an existing socket path: {r}")
    os.unlink(sock)
    for args, says in ((["--no-api"], "--config-file"), (["--api-sock"], "needs a value"),
                       (["--api-sock", sock, "--level", "Loud"], "--level"),
                       (["--no-api", "--config-file", "/nonexistent.json"], "nonexistent"),
                       (["--api-sock", sock, "--bogus"], "unknown option")):
        r = mvmtest.run(MVM, args, timeout=10)
        c.check(r.status == 64 and says in r.err, f"mvm {' '.join(args)}: 64, '{says}': {r}")
        c.check(not os.path.exists(sock), "no socket left behind")


def sh(*args):
    return subprocess.run(list(args), capture_output=True, text=True)


TAP, HOST_IP, GUEST_IP, MAC = "fctap0", "10.203.0.1", "10.203.0.2", "06:00:0a:cb:00:02"


def linux_inner(c, tmp):
    sh("ip", "link", "set", "lo", "up")
    for cmd in (["ip", "tuntap", "add", "dev", TAP, "mode", "tap"],
                ["ip", "addr", "add", f"{HOST_IP}/24", "dev", TAP],
                ["ip", "link", "set", TAP, "up"]):
        r = sh(*cmd)
        if not c.check(r.returncode == 0, f"{' '.join(cmd)}: {r.stderr.strip()}"):
            return
    rootfs = os.path.join(tmp, "rootfs.ext4")
    with open(rootfs, "wb") as f:
        f.truncate(16 << 20)
    r = sh("mkfs.ext4", "-q", "-F", "-L", "fcroot", rootfs)
    if not c.check(r.returncode == 0, f"mkfs.ext4: {r.stderr}"):
        return
    sock, log, metrics = (os.path.join(tmp, n) for n in ("fc.sock", "fc.log", "metrics"))
    # The host end of the guest's vsock connection to port 5000 (Firecracker's uds_path_PORT):
    # it takes the guest's message, sends one of its own and reads the guest's echo of it.
    uds = os.path.join(tmp, "v.sock")
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(uds + "_5000")
    listener.listen(1)
    listener.settimeout(600)
    vsock_seen = {}

    def vsock_peer():
        try:
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(60)
                vsock_seen["from_guest"] = conn.recv(100)
                conn.sendall(b"from-the-host")
                vsock_seen["echo"] = conn.recv(100)
        except OSError as e:
            vsock_seen["error"] = str(e)
    threading.Thread(target=vsock_peer, daemon=True).start()
    vm = fcclient.Mvm(MVM, sock)
    # The Go SDK's order (firecracker-go-sdk handlers.go: defaultFcInitHandlerList).
    r = curl(sock, "GET", "/machine-config")
    c.check(r[0] == 200 and r[1]["vcpu_count"] == 1, f"GET /machine-config: {r}")
    steps = [
        ("PUT", "/logger", {"log_path": log, "level": "Info", "show_level": True,
                            "show_log_origin": False}),
        ("PUT", "/metrics", {"metrics_path": metrics}),
        ("PUT", "/machine-config", {"vcpu_count": 1, "mem_size_mib": 256, "smt": False,
                                    "track_dirty_pages": False}),
        ("GET", "/machine-config", None),
        ("PUT", "/boot-source", {"kernel_image_path": os.environ["MVM_VMLINUX"],
                                 "initrd_path": os.environ["MVM_INITRAMFS"],
                                 "boot_args": "console=ttyS0 reboot=k panic=-1"}),
        ("PUT", "/drives/rootfs", {"drive_id": "rootfs", "path_on_host": rootfs,
                                   "is_root_device": True, "is_read_only": False}),
        ("PUT", "/network-interfaces/eth0", {"iface_id": "eth0", "host_dev_name": TAP,
                                             "guest_mac": MAC}),
        ("PUT", "/vsock", {"guest_cid": 3, "uds_path": uds}),
        ("PUT", "/actions", {"action_type": "InstanceStart"}),
    ]
    for method, path, body in steps:
        r = curl(sock, method, path, body)
        want = 200 if method == "GET" else 204
        c.check(r[0] == want, f"{method} {path}: {want} ({r})", vm)
    c.check(curl(sock, "GET", "/machine-config")[1]["mem_size_mib"] == 256,
            "GET /machine-config returns what was put")
    c.check(vm.wait_out("MVM-INIT-READY", 300), "Linux boots to its init", vm)
    # The console echoes what is typed: each marker is computed by the shell, so only its
    # output (PING-42, not the typed "PING-$((6*7))") can match.
    vm.send(f"cat /sys/class/net/eth0/address; ip link set eth0 up; "
            f"ip addr add {GUEST_IP}/24 dev eth0; "
            f"ping -c 2 -W 10 {HOST_IP} && echo PING-$((6*7)); "
            f"echo ROOT-$(grep -c 'root=/dev/vda r[w]' /proc/cmdline); mkdir -p /mnt; "
            f"mount -t ext4 /dev/vda /mnt && echo MOUNT-$((6*7)); "
            f"echo SERIAL-$(cat /sys/block/vda/serial)-; umount /mnt; sync; "
            f"vsock_test connect 5000 fc-vsock-hi; "
            f"echo CMDS-$((6*7))\n")
    c.check(vm.wait_out("CMDS-42", 300), "the guest ran the commands", vm)
    out = vm.out.decode(errors="replace")
    c.check(MAC in out, "the guest's eth0 has the MAC that was put", vm)
    c.check("PING-42" in out, "the guest pinged the host over the TAP", vm)
    c.check("ROOT-1" in out, "root=/dev/vda rw is on the kernel command line", vm)
    c.check("MOUNT-42" in out, "the guest mounted the ext4 drive", vm)
    c.check("SERIAL-rootfs-" in out, "the drive's serial is its drive_id", vm)
    c.check(vsock_seen.get("from_guest") == b"fc-vsock-hi" and
            vsock_seen.get("echo") == b"from-the-host",
            f"the guest reached uds_path_5000 over the vsock that was put, both ways: "
            f"{vsock_seen}", vm)
    r = curl(sock, "PUT", "/actions", {"action_type": "FlushMetrics"})
    c.check(r[0] == 204, f"FlushMetrics: {r}")
    lines = [json.loads(x) for x in open(metrics).read().splitlines()] if os.path.exists(
        metrics) else []
    net = lines[-1].get("devices", {}).get("virtio-net 0", {}) if lines else {}
    c.check(net.get("tx_packets", 0) >= 2 and net.get("rx_packets", 0) >= 2,
            f"the metrics count the NIC's frames: {net}")
    r = curl(sock, "PUT", "/actions", {"action_type": "SendCtrlAltDel"})
    c.check(r[0] == 204, f"SendCtrlAltDel: {r}")
    status = vm.wait(120)
    c.check(status == 0, f"Ctrl+Alt+Del ends the VM (reboot=k), exit 0 (got {status})", vm)
    text = open(log).read() if os.path.exists(log) else ""
    c.check("guest reset" in text, f"the log file says the guest reset: {text[-300:]}")
    c.check(not os.path.exists(sock), "the socket is removed")

    # The same VM from --config-file with --no-api: it runs a command and reboots.
    config = {
        "boot-source": {"kernel_image_path": os.environ["MVM_VMLINUX"],
                        "initrd_path": os.environ["MVM_INITRAMFS"],
                        "boot_args": "console=ttyS0 reboot=k panic=-1 mvm.run=\"ip link set "
                                     f"eth0 up; ip addr add {GUEST_IP}/24 dev eth0; ping -c 1 "
                                     f"-W 10 {HOST_IP} && echo PING-$((6*7)); mount -t ext4 "
                                     "/dev/vda /mnt && ls /mnt\""},
        "drives": [{"drive_id": "rootfs", "path_on_host": rootfs, "is_root_device": True,
                    "is_read_only": True}],
        "machine-config": {"vcpu_count": 1, "mem_size_mib": 128},
        "network-interfaces": [{"iface_id": "eth0", "host_dev_name": TAP, "guest_mac": MAC}],
    }
    path = os.path.join(tmp, "vm.json")
    with open(path, "w") as f:
        json.dump(config, f)
    r = mvmtest.run(MVM, ["--no-api", "--config-file", path, "--accel", ACCEL], timeout=600)
    c.check(r.status == 0 and "MVM-RUN-EXIT 0" in r.out, f"--config-file boots and runs: {r}")
    # Computed markers: the kernel prints its command line, which holds the command.
    c.check("PING-42" in r.out and "lost+found" in r.out,
            "the config file's NIC and read-only drive work", r)


def case_linux(c, tmp):
    if os.geteuid() != 0:
        mvmtest.skip("network namespaces and TAPs need root")
    for k in ("MVM_VMLINUX", "MVM_INITRAMFS"):
        if not os.environ.get(k) or not os.path.exists(os.environ[k]):
            mvmtest.skip(f"{k} unset or missing (scripts/test.sh sets it)")
    if "--inner" in sys.argv:
        linux_inner(c, tmp)
        return
    ns = f"mvmtest-fc-{os.getpid()}"
    r = sh("ip", "netns", "add", ns)
    if r.returncode != 0:
        mvmtest.skip(f"ip netns add: {r.stderr.strip()}")
    try:
        p = subprocess.run(["ip", "netns", "exec", ns, sys.executable, os.path.abspath(__file__),
                            MVM, GUEST_DIR, CASE, "--inner"], timeout=1200)
        sys.exit(p.returncode)
    finally:
        sh("ip", "netns", "delete", ns)


def main():
    if ACCEL == "kvm":
        mvmtest.require_kvm()
    c = mvmtest.Checker(f"fc-api-{CASE}")
    with tempfile.TemporaryDirectory(prefix="mvm-fc-") as tmp:
        {"control": case_control, "bad-input": case_bad_input, "linux": case_linux}[CASE](c, tmp)
    c.done()


main()
