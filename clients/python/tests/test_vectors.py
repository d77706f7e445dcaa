"""The shared vectors of tests/vectors (HOPPER_VECTORS): the frames
decode to what they mean and encode back to the same bytes, and each API
call sends exactly the vector's request body and returns what the vector
expects from its reply. tests/integration/vectors_test.c checks libhopper
against the same files, so the two clients cannot drift."""

import json
import os
import socket
import struct
import threading

import pytest

import hopper
from conftest import recv_exact
from hopper import HopperError, _transport
from hopper._proto import envelope_pb2

VECTORS = os.environ.get("HOPPER_VECTORS", "")


def load(name):
    if not VECTORS:
        pytest.fail("HOPPER_VECTORS is not set: run these tests via ctest")
    with open(os.path.join(VECTORS, name)) as f:
        return json.load(f)


FRAMES = load("frames.json")
CALLS = load("calls.json")


@pytest.mark.parametrize("v", FRAMES, ids=lambda v: v["name"])
def test_frame(v):
    raw = bytes.fromhex(v["hex"])
    if v["name"] == "handshake_req0":
        assert raw == _transport.HANDSHAKE_REQ
        return
    if v["name"] == "handshake_rep0":
        assert raw == _transport.HANDSHAKE_REP
        return
    sp_id, payload = _transport.unframe(raw)
    assert sp_id == v["sp_id"]
    if v["kind"] == "request":
        env = v["envelope"]
        req = envelope_pb2.Request()
        req.ParseFromString(payload)
        assert (req.method, req.scope, req.token, req.deadline_ms,
                req.request_id, req.body.hex()) == (
            env["method"], env["scope"], env["token"], env["deadline_ms"],
            env["request_id"], env["body"])
        again = _transport.pack_request(
            env["method"], bytes.fromhex(env["body"]), env["scope"],
            env["token"], env["deadline_ms"], env["request_id"])
        assert _transport.frame_request(sp_id, again) == raw
        return
    want = v["response"]
    if want["code"] == 0:
        resp = _transport.open_reply(payload, want["request_id"])
        assert resp.body.hex() == want["body"]
    else:
        with pytest.raises(HopperError) as e:
            _transport.open_reply(payload, want["request_id"])
        assert (e.value.code, e.value.reason, e.value.message) == (
            want["code"], want["reason"], want["message"])


class FakeBroker:
    """Answers each request with the current vector's reply, and keeps
    what it received."""

    def __init__(self):
        self.ls = socket.socket()
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(8)
        self.vector = None
        self.got = []
        threading.Thread(target=self.serve, daemon=True).start()

    @property
    def url(self):
        return "tcp://127.0.0.1:%d" % self.ls.getsockname()[1]

    def serve(self):
        while True:
            try:
                s, _ = self.ls.accept()
            except OSError:
                return
            threading.Thread(target=self.conn, args=(s,), daemon=True).start()

    def conn(self, s):
        try:
            recv_exact(s, 8)
            s.sendall(_transport.HANDSHAKE_REP)
            while True:
                (n,) = struct.unpack(">Q", recv_exact(s, 8))
                msg = recv_exact(s, n)
                req = envelope_pb2.Request()
                req.ParseFromString(msg[4:])
                self.got.append((req.method, req.body.hex()))
                r = self.vector["response"]
                resp = envelope_pb2.Response(
                    body=bytes.fromhex(r["body"]), request_id=req.request_id)
                if r["code"]:
                    resp.status.code = r["code"]
                    resp.status.reason = r["reason"]
                    resp.status.message = r["message"]
                out = msg[:4] + resp.SerializeToString()
                s.sendall(struct.pack(">Q", len(out)) + out)
        except (EOFError, OSError):
            s.close()


@pytest.fixture(scope="module")
def fake():
    f = FakeBroker()
    yield f
    f.ls.close()


def invoke(c, call, a):
    tok = bytes.fromhex(a["token"]) if "token" in a else None
    if call == "enqueue":
        e = c.enqueue(a["lane"], a["payload"].encode(),
                      dedupe_key=a["dedupe_key"],
                      headers=[tuple(h) for h in a["headers"]],
                      priority=a["priority"])
        return {"id": e.id, "duplicate": e.duplicate}
    if call == "claim":
        ms = c.claim(a["lane"], max=a["max"], lease_ms=a["lease_ms"],
                     wait_ms=a["wait_ms"])
        return {"messages": [{"id": m.id, "attempts": m.attempts,
                              "payload": m.payload.decode(),
                              "token": m.claim_token.hex()} for m in ms]}
    if call == "ack":
        c.ack(a["id"], tok, result=a["result"].encode())
        return {}
    if call == "ack_each":
        outcomes, fu = c.ack_each(
            [(i["id"], bytes.fromhex(i["token"])) for i in a["items"]],
            followups=[hopper.draft(f["lane"], f["payload"])
                       for f in a["followups"]])
        return {"items": [{"code": 0} if o is None else
                          {"code": int(o.code), "reason": o.reason}
                          for o in outcomes],
                "followups_done": fu is not None}
    if call == "nack":
        r = c.nack(a["id"], tok, error=a.get("error", ""),
                   retry_in_ms=a.get("retry_in_ms", 0),
                   keep_attempt=a.get("keep_attempt", False),
                   dead_letter=a.get("dead_letter", False))
        return {"dead": r.dead, "retry_at_ms": r.retry_at_ms}
    if call == "extend":
        return {"lease_expires_at_ms": c.extend(a["id"], tok, a["lease_ms"])}
    if call == "get":
        m = c.get(a["id"])
        return {"id": m.id, "state": m.state, "result": m.result.decode()}
    raise AssertionError(f"no such call {call}")


@pytest.mark.parametrize("v", CALLS, ids=lambda v: v["name"])
def test_call(v, fake):
    fake.vector = v
    fake.got.clear()
    c = hopper.Client(fake.url)
    try:
        try:
            got = invoke(c, v["call"], v["args"])
        except HopperError as e:
            got = {"error": {"code": int(e.code), "reason": e.reason}}
    finally:
        c.close()

    assert fake.got == [(v["request"]["method"], v["request"]["body"])]
    assert got == v["expect"]
