"""The HTTP API (docs/http.md) against a real hopperd started on free
loopback ports and stopped by pid: every rpc answers the same over
HTTP/JSON, HTTP/proto and the native protocol (and the JSON is protobuf's
own mapping, checked with protobuf's reference parser); each kind of bad
request gets its Connect error; long-polls wake, time out, and notice a
client that hangs up; the examples of clients/examples run."""

import base64
import http.client
import importlib.util
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

import pytest
from google.protobuf import json_format

import hopper
from hopper import HopperError
from hopper._proto import broker_pb2 as pb

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
EXAMPLES = os.path.join(TOP, "clients", "examples")
LIMIT_S = 120  # generous: the tests run on loaded machines
NO_ID = "01ARZ3NDEKTSV4RRFFQ69G5FAV"

# hopperd on free loopback ports, stopped by pid: the Python client's
# test helper.
_spec = importlib.util.spec_from_file_location(
    "client_conftest",
    os.path.join(TOP, "clients", "python", "tests", "conftest.py"))
_helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_helpers)
Broker = _helpers.Broker
wait_until = _helpers.wait_until

# Connect's HTTP status for each code (connectrpc.com, "Error Codes").
HTTP_STATUS = {
    "canceled": 499, "unknown": 500, "invalid_argument": 400,
    "deadline_exceeded": 504, "not_found": 404, "already_exists": 409,
    "permission_denied": 403, "resource_exhausted": 429,
    "failed_precondition": 400, "aborted": 409, "out_of_range": 400,
    "unimplemented": 501, "internal": 500, "unavailable": 503,
    "data_loss": 500, "unauthenticated": 401,
}


def start(*extra):
    b = Broker(extra=("--api", "127.0.0.1:0", "--http", "127.0.0.1:0")
               + extra)
    try:
        return b.start()
    except BaseException:
        b.cleanup()
        raise


@pytest.fixture(scope="module")
def broker():
    backups = os.path.join(os.environ.get("TMPDIR", "/tmp"),
                           f"hopper-api-backups-{os.getpid()}")
    os.makedirs(backups, exist_ok=True)
    b = start("--backup-dir", backups)
    try:
        yield b
        b.stop()  # exits 0: no leak, no crash on the way out
    finally:
        b.cleanup()
        subprocess.run(["rm", "-rf", backups], check=False)


# ---- HTTP ------------------------------------------------------------------


class Reply:
    def __init__(self, resp):
        self.status = resp.status
        self.headers = {k.lower(): v for k, v in resp.getheaders()}
        self.body = resp.read()

    def json(self):
        return json.loads(self.body)

    def error(self):
        """Connect's error: (code, reason) from its ErrorInfo detail."""
        err = self.json()
        reasons = [d["debug"]["reason"] for d in err.get("details", [])
                   if d.get("type") == "google.rpc.ErrorInfo"]
        return err["code"], reasons[0] if reasons else ""


def post(base, method, body=b"", ctype="application/json", headers=None,
         path=None, verb="POST", timeout=LIMIT_S):
    u = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)
    try:
        h = {"Content-Type": ctype} if ctype else {}
        h.update(headers or {})
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        conn.request(verb, path or f"/hopper.v1.Broker/{method}", body, h)
        return Reply(conn.getresponse())
    finally:
        conn.close()


def metric(b, name):
    """The value of one sample of the broker's /metrics."""
    text = post(b.http, None, ctype=None, path="/metrics", verb="GET").body
    for line in text.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no {name} in /metrics")


# ---- one rpc three ways ------------------------------------------------------


class Native:
    name = "native"

    def __init__(self, b, scope):
        self.c = hopper.Client(b.url, scope=scope, timeout=LIMIT_S)

    def call(self, method, req, resp_type):
        try:
            return json_format.MessageToDict(
                self.c.call(method, req, resp_type))
        except HopperError as e:
            code = "canceled" if e.code.name == "CANCELLED" \
                else e.code.name.lower()
            return ("error", code, e.reason)


class Http:
    """proto: binary bodies; json: protobuf's JSON mapping, the request
    written as protobuf's reference encoder writes it, the answer checked
    with its reference parser (unknown fields refused)."""

    def __init__(self, b, scope, proto):
        self.b, self.scope, self.proto = b, scope, proto
        self.name = "proto" if proto else "json"

    def call(self, method, req, resp_type):
        hdrs = {"Hopper-Scope": self.scope, "Connect-Protocol-Version": "1"}
        if self.proto:
            r = post(self.b.api, method, req.SerializeToString(),
                     "application/proto", hdrs)
        else:
            r = post(self.b.api, method, json_format.MessageToDict(req),
                     "application/json", hdrs)
        if r.status != 200:
            assert r.headers["content-type"] == "application/json"
            code, reason = r.error()
            assert r.status == HTTP_STATUS[code], (method, r.status, code)
            return ("error", code, reason)
        assert r.headers["content-type"] == (
            "application/proto" if self.proto else "application/json")
        if self.proto:
            return json_format.MessageToDict(resp_type.FromString(r.body))
        got = r.json()
        json_format.ParseDict(got, resp_type())  # strict: a valid mapping
        assert json_format.MessageToDict(
            json_format.ParseDict(got, resp_type())) == got
        return got


# What differs between runs: ids, tokens, times, where a backup went.
VOLATILE = {"id", "claimToken", "nowMs", "instance", "createdAtMs",
            "availableAtMs", "leaseExpiresAtMs", "finishedAtMs", "retryAtMs",
            "oldestPendingAgeMs", "path", "bytes", "durationMs"}


def norm(v):
    if isinstance(v, dict):
        return {k: ("*" if k in VOLATILE else norm(x)) for k, x in v.items()}
    if isinstance(v, list):
        return [norm(x) for x in v]
    return v


def scenario(p):
    """Every rpc of service Broker, in one order, on protocol p; returns
    (label, method, answer) for each call."""
    out = []

    def rec(label, method, req, resp_type):
        got = p.call(method, req, resp_type)
        out.append((label, method, got))
        return got

    rec("ping", "Ping", pb.PingRequest(), pb.PingResponse)
    rec("update_lane", "UpdateLane", pb.UpdateLaneRequest(
        lane="work", update_mask=["max_attempts", "backoff", "retention_ms"],
        settings=pb.LaneSettings(max_attempts=2, backoff=pb.LINEAR,
                                 retention_ms=3600000)), pb.LaneSettings)
    rec("get_lane", "GetLane", pb.GetLaneRequest(lane="work"),
        pb.LaneSettings)
    enq = rec("enqueue", "Enqueue", pb.EnqueueRequest(drafts=[
        pb.Draft(lane="work", payload=b"\x00\xffone", priority=1,
                 headers=[pb.Header(key="trace", value="t \u00e9 \U0001f407")]),
        pb.Draft(lane="work", target="t1", payload=b"two", dedupe_key="d2"),
        pb.Draft(lane="work", payload=b"three", delay_ms=3600000),
    ]), pb.EnqueueResponse)
    ids = [r["id"] for r in enq["results"]]
    rec("enqueue_dup", "Enqueue", pb.EnqueueRequest(drafts=[
        pb.Draft(lane="work", payload=b"two", dedupe_key="d2")]),
        pb.EnqueueResponse)
    rec("get", "Get", pb.GetRequest(id=ids[0]), pb.GetResponse)
    rec("list", "List", pb.ListRequest(lane="work", with_payload=True),
        pb.ListResponse)
    claim = rec("claim", "Claim", pb.ClaimRequest(
        lane="work", max=2, lease_ms=60000, consumer="api_test"),
        pb.ClaimResponse)
    held = [(m["id"], base64.b64decode(m["claimToken"]))
            for m in claim["messages"]]
    rec("extend", "Extend", pb.ExtendRequest(
        id=held[0][0], claim_token=held[0][1], lease_ms=90000),
        pb.ExtendResponse)
    rec("ack", "Ack", pb.AckRequest(per_item=True, items=[pb.AckItem(
        id=held[0][0], claim_token=held[0][1], result=b"r\x00\xfe")]),
        pb.AckResponse)
    rec("nack", "Nack", pb.NackRequest(
        id=held[1][0], claim_token=held[1][1], error="boom",
        dead_letter=True), pb.NackResponse)
    rec("await_delivered", "Await", pb.AwaitRequest(id=held[0][0]),
        pb.AwaitResponse)
    rec("await_dead", "Await", pb.AwaitRequest(id=held[1][0], wait_ms=1000),
        pb.AwaitResponse)
    rec("await_pending", "Await", pb.AwaitRequest(id=ids[2]),
        pb.AwaitResponse)
    rec("stats", "Stats", pb.StatsRequest(lane="work"), pb.StatsResponse)
    rec("list_lanes", "ListLanes", pb.ListLanesRequest(),
        pb.ListLanesResponse)
    rec("dead_list", "DeadList", pb.DeadListRequest(
        lane="work", with_payload=True), pb.ListResponse)
    rec("dead_replay", "DeadReplay", pb.DeadRequest(
        lane="work", ids=[held[1][0]]), pb.DeadResponse)
    rec("dead_purge", "DeadPurge", pb.DeadRequest(lane="work"),
        pb.DeadResponse)
    rec("backup", "Backup", pb.BackupRequest(name=f"b-{p.name}"),
        pb.BackupResponse)
    rec("set_secret", "SetSecret", pb.SetSecretRequest(
        secret_id="hook", value=b"0123456789abcdef\x00\xff"),
        pb.SetSecretResponse)
    rec("rotate_secret", "SetSecret", pb.SetSecretRequest(
        secret_id="hook", value=b"fedcba9876543210", rotate=True),
        pb.SetSecretResponse)
    rec("test_webhook", "TestWebhook", pb.TestWebhookRequest(lane="work"),
        pb.TestWebhookResponse)
    rec("deliver_lane", "UpdateLane", pb.UpdateLaneRequest(
        lane="hooks", update_mask=["deliver_url", "secret_id"],
        settings=pb.LaneSettings(deliver_url="https://h.example/in",
                                 secret_id="hook")), pb.LaneSettings)
    rec("not_found", "Get", pb.GetRequest(id=NO_ID), pb.GetResponse)
    rec("bad_name", "Enqueue", pb.EnqueueRequest(
        drafts=[pb.Draft(lane="bad lane!")]), pb.EnqueueResponse)
    rec("lost_claim", "Ack", pb.AckRequest(items=[pb.AckItem(
        id=held[0][0], claim_token=b"\x01" * 16)]), pb.AckResponse)
    rec("bad_wait", "Claim", pb.ClaimRequest(lane="work", wait_ms=30001),
        pb.ClaimResponse)
    return out


def test_every_rpc_answers_alike_over_json_proto_and_native(broker):
    runs = [scenario(Native(broker, "s-native")),
            scenario(Http(broker, "s-proto", proto=True)),
            scenario(Http(broker, "s-json", proto=False))]

    methods = {m for _, m, _ in runs[0]}
    assert methods == set(pb.DESCRIPTOR.services_by_name["Broker"]
                          .methods_by_name)
    for (label, _, native), (_, _, proto), (_, _, js) in zip(*runs):
        assert norm(proto) == norm(native), label
        assert norm(js) == norm(native), label
    answers = {label: got for label, _, got in runs[2]}
    assert answers["ack"] == {"items": [{}]}
    assert answers["await_delivered"]["message"]["result"] == \
        base64.b64encode(b"r\x00\xfe").decode()
    assert answers["await_dead"]["message"]["lastError"] == "boom"
    assert answers["await_pending"] == {}
    assert answers["not_found"] == ("error", "not_found", "NO_MESSAGE")
    assert answers["lost_claim"] == ("error", "failed_precondition",
                                     "LOST_CLAIM")
    assert answers["bad_wait"] == ("error", "invalid_argument", "BAD_WAIT")


# ---- the errors ----------------------------------------------------------


@pytest.mark.parametrize("body,ctype,headers,status,code,reason", [
    (b"{\"lane\":", "application/json", {}, 400, "invalid_argument",
     "BAD_JSON"),
    (b"[]", "application/json", {}, 400, "invalid_argument", "BAD_JSON"),
    (b"{\"lane\":\"a\",\"lane\":\"b\"}", "application/json", {}, 400,
     "invalid_argument", "BAD_JSON"),
    (b"{\"lane\":\"a\",\"max\":1.5}", "application/json", {}, 400,
     "invalid_argument", "BAD_JSON"),
    (b"{\"lane\":\"a\",\"waitMS\":100}", "application/json", {}, 400,
     "invalid_argument", "UNKNOWN_FIELD"),
    (b"{\"lane\":\"a\\u0000b\"}", "application/json", {}, 400,
     "invalid_argument", "NUL_IN_STRING"),
    (b"\xff\xff\xff", "application/proto", {}, 400, "invalid_argument",
     "BAD_BODY"),
    (b"lane=a", "application/x-www-form-urlencoded", {}, 415,
     "invalid_argument", "BAD_CONTENT_TYPE"),
    (b"{}", None, {}, 415, "invalid_argument", "BAD_CONTENT_TYPE"),
    (b"{}", "application/json", {"Content-Encoding": "gzip"}, 501,
     "unimplemented", "BAD_HTTP"),
    (b"{}", "application/json", {"Connect-Protocol-Version": "2"}, 400,
     "invalid_argument", "BAD_HTTP"),
    (b"{}", "application/json", {"Connect-Timeout-Ms": "soon"}, 400,
     "invalid_argument", "BAD_HTTP"),
    (b"{}", "application/json", {"Hopper-Scope": "no scope"}, 400,
     "invalid_argument", "BAD_NAME"),
])
def test_a_bad_request_gets_its_connect_error(broker, body, ctype, headers,
                                              status, code, reason):
    r = post(broker.api, "Claim", body, ctype, headers)

    assert (r.status, r.error()) == (status, (code, reason)), r.body
    assert r.headers["content-type"] == "application/json"


def test_a_wrong_verb_or_path_gets_its_connect_error(broker):
    get = post(broker.api, "Ping", b"", None, verb="GET")
    other = post(broker.api, None, b"{}", path="/v1/ping")
    nope = post(broker.api, "Nope", b"{}")

    assert (get.status, get.error()) == (405, ("unimplemented", "BAD_HTTP"))
    assert get.headers["allow"] == "POST"
    assert (other.status, other.error()) == (
        501, ("unimplemented", "UNKNOWN_METHOD"))
    assert (nope.status, nope.error()) == (
        501, ("unimplemented", "UNKNOWN_METHOD"))


def test_a_body_over_max_frame_is_refused_unread():
    b = start("--max-frame", "65536", "--max-payload", "32768")
    try:
        big = b"{\"drafts\":[{\"lane\":\"a\",\"payload\":\"" + \
            b"A" * 70000 + b"\"}]}"

        r = post(b.api, "Enqueue", big)
        ok = post(b.api, "Ping", b"{}")

        assert (r.status, r.error()) == (
            429, ("resource_exhausted", "BODY_TOO_LARGE"))
        assert r.headers.get("connection") == "close"
        assert ok.status == 200
        b.stop()
    finally:
        b.cleanup()


def test_tokens_scopes_and_permissions_are_the_native_ones(tmp_path):
    keys = str(tmp_path / "keys")
    hopperd = os.environ["HOPPERD"]
    subprocess.run([hopperd, "keygen", "--keys", keys], check=True,
                   capture_output=True)

    def mint(perm):
        return subprocess.run(
            [hopperd, "token", "mint", "--keys", keys, "--scope", "acme",
             "--perm", perm], check=True, capture_output=True,
            text=True).stdout.strip()

    producer, consumer = mint("produce"), mint("consume")
    b = start("--auth-keys", keys)
    try:
        acme = {"Hopper-Scope": "acme"}
        enq = {"drafts": [{"lane": "a", "payload": "eA=="}]}
        none = post(b.api, "Enqueue", enq, headers=acme)
        bad = post(b.api, "Enqueue", enq,
                   headers=dict(acme, Authorization="Bearer hpt1.nope.nope"))
        basic = post(b.api, "Enqueue", enq,
                     headers=dict(acme, Authorization="Basic eDp5"))
        other_scope = post(b.api, "Enqueue", enq,
                           headers={"Authorization": "Bearer " + producer})
        no_perm = post(b.api, "Enqueue", enq,
                       headers=dict(acme, Authorization="Bearer " + consumer))
        # JSON that does not decode is checked after the token, as a
        # native body is.
        bad_json = post(b.api, "Enqueue", b"{", headers=acme)
        ok = post(b.api, "Enqueue", enq,
                  headers=dict(acme, Authorization="bearer " + producer))
        awaited = post(b.api, "Await", {"id": ok.json()["results"][0]["id"]},
                       headers=dict(acme, Authorization="Bearer " + producer))

        assert (none.status, none.error()) == (
            401, ("unauthenticated", "NO_TOKEN"))
        assert (bad.status, bad.error()) == (
            401, ("unauthenticated", "BAD_TOKEN"))
        assert basic.error() == ("unauthenticated", "BAD_TOKEN")
        assert (other_scope.status, other_scope.error()) == (
            403, ("permission_denied", "NOT_IN_SCOPE"))
        assert no_perm.error() == ("permission_denied", "NO_PERMISSION")
        assert bad_json.error() == ("unauthenticated", "NO_TOKEN")
        assert ok.status == 200
        assert awaited.status == 200 and awaited.json() == {}
        b.stop()
    finally:
        b.cleanup()


def test_a_request_id_makes_a_repeat_harmless(broker):
    h = {"Hopper-Request-Id": "api-test-rid-1", "Hopper-Scope": "rid"}
    enq = {"drafts": [{"lane": "rid", "payload": "eA=="}]}

    first = post(broker.api, "Enqueue", enq, headers=h)
    again = post(broker.api, "Enqueue", enq, headers=h)
    reused = post(broker.api, "Claim", {"lane": "rid"}, headers=h)

    assert first.json() == again.json()
    assert first.headers["hopper-request-id"] == "api-test-rid-1"
    assert reused.error() == ("invalid_argument", "REQUEST_ID_REUSED")
    stats = post(broker.api, "Stats", {"lane": "rid"},
                 headers={"Hopper-Scope": "rid"}).json()
    assert stats["stats"]["pending"] == "1"


# ---- connections -------------------------------------------------------------


def raw_request(method, body, extra=b""):
    return (f"POST /hopper.v1.Broker/{method} HTTP/1.1\r\n"
            f"Host: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n").encode() + extra + \
        b"\r\n" + body


def read_response(f):
    """(status, headers, body) of one response on the file f."""
    status = int(f.readline().split()[1])
    headers = {}
    while (line := f.readline().strip()):
        k, v = line.decode().split(":", 1)
        headers[k.lower()] = v.strip()
    return status, headers, f.read(int(headers.get("content-length", 0)))


def connect(base):
    u = urllib.parse.urlsplit(base)
    s = socket.create_connection((u.hostname, u.port), timeout=LIMIT_S)
    return s, s.makefile("rb")


def test_several_requests_share_one_connection(broker):
    s, f = connect(broker.api)
    try:
        s.sendall(raw_request("Ping", b"{}") + raw_request("Ping", b"{}"))

        first = read_response(f)
        second = read_response(f)

        assert first[0] == second[0] == 200
        assert "connection" not in first[1]
    finally:
        f.close()
        s.close()


def test_expect_100_continue_is_answered_before_the_body(broker):
    body = b"{\"lane\":\"e\"}"
    s, f = connect(broker.api)
    try:
        head = raw_request("Claim", body, b"Expect: 100-continue\r\n")
        s.sendall(head[:-len(body)])

        cont = f.readline()
        f.readline()
        s.sendall(body)
        status, _, got = read_response(f)

        assert cont.startswith(b"HTTP/1.1 100")
        assert status == 200 and json.loads(got) == {}
    finally:
        f.close()
        s.close()


# ---- long-polls ----------------------------------------------------------


def in_thread(fn):
    out = {}
    t = threading.Thread(target=lambda: out.update(r=fn()), daemon=True)
    t.start()
    return t, out


def test_a_long_poll_claim_over_http_wakes_on_an_enqueue(broker):
    h = {"Hopper-Scope": "lp"}
    t, out = in_thread(lambda: post(
        broker.api, "Claim", {"lane": "lp", "waitMs": 30000}, headers=h))
    wait_until(lambda: metric(broker, "hopper_parked_claims") == 1,
               "the claim to park")

    e = hopper.Client(broker.url, scope="lp").enqueue("lp", b"woke")

    t.join(LIMIT_S)
    got = out["r"]
    assert got.status == 200
    assert [m["id"] for m in got.json()["messages"]] == [e.id]
    # The connection it waited on is closed after the answer.
    assert got.headers.get("connection") == "close"


def test_await_over_http_wakes_on_the_ack_and_the_dead_letter(broker):
    c = hopper.Client(broker.url, scope="aw")
    h = {"Hopper-Scope": "aw"}
    ok, dead = c.enqueue("aw", b"q1"), c.enqueue("aw", b"q2",
                                                 max_attempts=1)
    msgs = c.claim("aw", max=2, lease_ms=60000)
    waiters = [in_thread(lambda i=i: post(
        broker.api, "Await", {"id": i, "waitMs": 30000}, headers=h))
        for i in (ok.id, dead.id)]
    wait_until(lambda: metric(broker, "hopper_parked_awaits") == 2,
               "both Awaits to park")

    by_id = {m.id: m for m in msgs}
    c.ack(ok.id, by_id[ok.id].claim_token, result=b"yes")
    c.nack(dead.id, by_id[dead.id].claim_token, error="no")

    for t, _ in waiters:
        t.join(LIMIT_S)
    delivered = waiters[0][1]["r"].json()["message"]
    died = waiters[1][1]["r"].json()["message"]
    assert delivered["state"] == "DELIVERED"
    assert base64.b64decode(delivered["result"]) == b"yes"
    assert died["state"] == "DEAD" and died["lastError"] == "no"


def test_await_over_http_times_out_empty(broker):
    e = hopper.Client(broker.url, scope="aw2").enqueue("aw2", b"q")

    r = post(broker.api, "Await", {"id": e.id, "waitMs": 200},
             headers={"Hopper-Scope": "aw2"})

    assert r.status == 200 and r.json() == {}


def test_a_client_that_hangs_up_during_a_long_poll_claims_nothing(broker):
    s, f = connect(broker.api)
    s.sendall(raw_request("Claim", b"{\"lane\":\"gone\",\"waitMs\":30000}",
                          b"Hopper-Scope: gone\r\n"))
    wait_until(lambda: metric(broker, "hopper_parked_claims") == 1,
               "the claim to park")

    f.close()
    s.close()

    wait_until(lambda: metric(broker, "hopper_parked_claims") == 0,
               "the claim to be dropped with its client")
    c = hopper.Client(broker.url, scope="gone")
    c.enqueue("gone", b"for someone still there")
    stats = c.stats("gone")
    assert (stats.pending, stats.claimed) == (1, 0)


# ---- the examples ----------------------------------------------------------


def test_the_python_examples_produce_and_work(broker):
    env = dict(os.environ, HOPPER_TOKEN="")
    worker = subprocess.Popen(
        [sys.executable, os.path.join(EXAMPLES, "worker.py"),
         "--api", broker.api, "--lane", "upper", "--count", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        producer = subprocess.run(
            [sys.executable, os.path.join(EXAMPLES, "producer.py"),
             "--api", broker.api, "--lane", "upper", "--await",
             "--max-attempts", "1", "hello", "world", "please fail"],
            capture_output=True, text=True, env=env, timeout=LIMIT_S)
        out, err = worker.communicate(timeout=LIMIT_S)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()

    assert producer.returncode == 1, producer.stderr  # one went dead
    lines = producer.stdout.splitlines()
    assert [ln.split()[0] for ln in lines] == [
        "enqueued", "reply", "enqueued", "reply", "enqueued", "dead"]
    assert lines[1].endswith(" HELLO") and lines[3].endswith(" WORLD")
    assert "cannot process" in lines[5]
    assert worker.returncode == 0, err
    assert [ln.split()[0] for ln in out.splitlines()] == [
        "acked", "acked", "nacked"]
