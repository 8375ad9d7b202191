"""fcclient: the client side of tests that drive mvm through Firecracker's API: mvm started with
--api-sock in the background with its console collected, and requests made with Debian's curl
(a real HTTP client, as the ecosystem's tools are)."""
import json
import os
import subprocess
import threading
import time

import mvmtest

ACCEL = mvmtest.ACCEL or "kvm"


class Mvm:
    """mvm --api-sock in the background, its console (stdout) collected as it comes."""

    def __init__(self, mvm, sock, extra=(), cwd=None):
        self.sock = sock
        self.p = subprocess.Popen([mvm, "--api-sock", sock, "--accel", ACCEL, *extra],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, cwd=cwd)
        self.out, self.err = bytearray(), bytearray()
        for stream, buf in ((self.p.stdout, self.out), (self.p.stderr, self.err)):
            threading.Thread(target=self._drain, args=(stream, buf), daemon=True).start()
        deadline = time.monotonic() + 10
        while not os.path.exists(sock) and time.monotonic() < deadline:
            if self.p.poll() is not None:
                break
            time.sleep(0.01)

    @staticmethod
    def _drain(stream, buf):
        for chunk in iter(lambda: stream.read1(65536), b""):
            buf.extend(chunk)

    def wait_out(self, text, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text.encode() in self.out:
                return True
            if self.p.poll() is not None:
                time.sleep(0.2)
                return text.encode() in self.out
            time.sleep(0.02)
        return False

    def send(self, text):
        self.p.stdin.write(text.encode())
        self.p.stdin.flush()

    def wait(self, timeout):
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
            return None

    def __repr__(self):
        return (f"--- console ---\n{self.out.decode(errors='replace')}\n"
                f"--- stderr ---\n{self.err.decode(errors='replace')}")


def curl(sock, method, path, body=None):
    """One request with curl; returns (status, parsed JSON body or None, raw body)."""
    args = ["curl", "-sS", "--unix-socket", sock, "-X", method, "-w", "\n%{http_code}",
            f"http://localhost{path}"]
    if body is not None:
        args += ["-H", "Content-Type: application/json",
                 "-d", body if isinstance(body, str) else json.dumps(body)]
    p = subprocess.run(args, capture_output=True, text=True, timeout=120)
    raw, _, code = p.stdout.rpartition("\n")
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = None
    return (int(code) if code.isdigit() else None), parsed, raw


def fault_says(r, text):
    return r[0] == 400 and isinstance(r[1], dict) and text in r[1].get("fault_message", "")


def state(sock):
    r = curl(sock, "GET", "/")
    return r[1].get("state") if r[0] == 200 and r[1] else None
