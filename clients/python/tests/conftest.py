"""A real hopperd per test module (or per test, for the ones that stop
it), started on a free loopback port with a fresh data dir and stopped by
pid. HOPPERD names the binary (ctest sets it)."""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

START_LIMIT_S = 60


class Broker:
    def __init__(self, extra=()):
        """extra: more hopperd flags, e.g. ("--api", "127.0.0.1:0")."""
        self.binary = os.environ.get("HOPPERD")
        if not self.binary:
            pytest.fail("HOPPERD is not set: run these tests through ctest")
        self.dir = tempfile.mkdtemp(prefix="hopper-py-")
        self.extra = list(extra)
        self.proc = None
        self.url = None
        self.api = None   # http://HOST:PORT of --api, once started
        self.http = None  # http://HOST:PORT of --http, once started

    def start(self, url="tcp://127.0.0.1:0"):
        out = open(os.path.join(self.dir, "out"), "w+")
        err = open(os.path.join(self.dir, "err"), "w+")
        self.proc = subprocess.Popen(
            [self.binary, "--listen", url, "--data",
             os.path.join(self.dir, "data"), "--log-level", "warn",
             *self.extra],
            stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        until = time.monotonic() + START_LIMIT_S
        while time.monotonic() < until:
            out.seek(0)
            text = out.read()
            if "data in" in text:
                self.url = re.search(r"listening on (\S+)", text).group(1)
                api = re.search(r" api on (\S+)", text)
                http = re.search(r" http on (\S+)", text)
                self.api = api.group(1) if api else None
                self.http = http.group(1) if http else None
                return self
            if self.proc.poll() is not None:
                err.seek(0)
                pytest.fail(f"hopperd exited: {err.read()}")
            time.sleep(0.05)
        pytest.fail("hopperd did not start")

    def stop(self):
        """SIGTERM and wait (it must exit 0)."""
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            rc = self.proc.wait(timeout=120)
            self.proc = None
            assert rc == 0, f"hopperd exited {rc}"

    def restart(self):
        """Again on the same data dir and port."""
        return self.start(self.url)

    def kill(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def cleanup(self):
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def broker():
    b = Broker().start()
    try:
        yield b
    finally:
        b.cleanup()


@pytest.fixture
def client(broker):
    import hopper
    c = hopper.Client(broker.url)
    try:
        yield c
    finally:
        c.close()


def wait_until(cond, what, limit_s=60.0):
    """Polls cond() until true; fails after limit_s (generous: the tests
    run on loaded machines)."""
    until = time.monotonic() + limit_s
    while not cond():
        if time.monotonic() > until:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.005)


def recv_exact(sock, n):
    """n bytes from sock; EOFError when it closes first."""
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data
