"""What webhook_test.py, state_webhook_test.py and callback_test.py
share: hopperd on free loopback ports and a client on it (the Python
client's test helpers), the HTTP receiver (webhook_receiver.py) in its
own process, both stopped by pid, a lane set to deliver to it, and
docs/webhooks.md's signature check as a receiver runs it."""

import base64
import hashlib
import hmac
import importlib.util
import json
import os
import subprocess
import sys
import time

import pytest

from hopper._proto import broker_pb2 as pb

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LIMIT_S = 120  # generous: the tests run on loaded machines

_spec = importlib.util.spec_from_file_location(
    "client_conftest",
    os.path.join(TOP, "clients", "python", "tests", "conftest.py"))
_helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_helpers)
Broker = _helpers.Broker
wait_until = _helpers.wait_until
# The fixture: a hopper.Client on the importing module's broker fixture.
client = _helpers.client


def start_broker(*extra):
    """hopperd with these flags, started; cleaned up if it does not."""
    b = Broker(extra=extra)
    try:
        return b.start()
    except BaseException:
        b.cleanup()
        raise


def set_secret(c, value, rotate=False, secret_id="hook"):
    return c.call("SetSecret", pb.SetSecretRequest(
        secret_id=secret_id, value=value, rotate=rotate),
        pb.SetSecretResponse)


def deliver_to(c, lane, url, **settings):
    """Lane delivers to url ("" stops it), signed with secret "hook"
    unless settings say otherwise; other settings change too."""
    settings.setdefault("secret_id", "hook")
    c.call("UpdateLane", pb.UpdateLaneRequest(
        lane=lane, update_mask=["deliver_url", *settings],
        settings=pb.LaneSettings(deliver_url=url, **settings)),
        pb.LaneSettings)


class Receiver:
    def __init__(self, tmp):
        self.log = os.path.join(tmp, "requests.jsonl")
        self.proc = subprocess.Popen(
            [sys.executable,
             os.path.join(os.path.dirname(__file__), "webhook_receiver.py"),
             self.log], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
        self.port = int(self.proc.stdout.readline())
        self.base = f"http://127.0.0.1:{self.port}"

    def _all(self):
        if not os.path.exists(self.log):
            return []
        out = []
        with open(self.log) as f:
            for line in f:
                if not line.endswith("\n"):
                    break  # being written
                r = json.loads(line)
                r["body"] = base64.b64decode(r["body"])
                out.append(r)
        return out

    def requests(self, path=None, msg_id=None):
        """The POSTs to path (any when None) with Hopper-Id msg_id (any
        when None), in arrival order."""
        return [r for r in self._all()
                if (path is None or r["path"] == path) and
                (msg_id is None or r["headers"].get("hopper-id") == msg_id)]

    def events(self, msg_id, path=None):
        """The state events about message msg_id POSTed to path (any when
        None), in arrival order, each with its parsed JSON as "event"."""
        out = []
        for r in self.requests(path):
            try:
                r["event"] = json.loads(r["body"])
            except ValueError:
                continue  # not an event
            if isinstance(r["event"], dict) and \
                    r["event"].get("message_id") == msg_id:
                out.append(r)
        return out

    def stop(self):
        self.proc.kill()
        self.proc.wait()


@pytest.fixture(scope="module")
def receiver(tmp_path_factory):
    r = Receiver(str(tmp_path_factory.mktemp("receiver")))
    try:
        yield r
    finally:
        r.stop()


def verify(secret, header, body, tolerance_s=300):
    """docs/webhooks.md's Python verification, as a receiver runs it."""
    t, macs = None, []
    for part in header.split(","):
        k, _, v = part.strip().partition("=")
        if k == "t":
            t = v
        elif k == "v1":
            macs.append(v)
    if t is None or not t.isdigit() or abs(time.time() - int(t)) > tolerance_s:
        return False
    want = hmac.new(secret, t.encode() + b"." + body,
                    hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(want, m) for m in macs)
