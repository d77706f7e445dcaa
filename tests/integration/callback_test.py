"""Callback ingress end to end (docs/webhooks.md, "Callbacks"): a real
hopperd with --api and --webhook-allow-private on free loopback ports,
and the HTTP receiver of webhook_test.py (webhook_receiver.py) in its own
process, both stopped by pid. A delivery carries Hopper-Callback; a 202
leaves the message claimed; complete, fail and heartbeat POSTed to the
URL become its Ack, Nack and Extend (also when the callback beats the
202); a forged, tampered or lost-claim callback is refused with its
reason; --api-public-url sets the URL's base, and without --api there is
no callback at all. Nothing sleeps to synchronise: every wait is a
generous poll for a state.

hopperd has no clock a test process can move, so hours pass in
callback_clock_test.c (an in-process broker with a test clock); here the
lease logic is shown with a callback_timeout of a second or a minute."""

import json
import os
import subprocess
import time
import urllib.error
import urllib.request

import pytest

import hopper
from hopper._proto import broker_pb2 as pb
from webhook_helpers import (  # noqa: F401 (client, receiver: fixtures)
    LIMIT_S, client, deliver_to, receiver, set_secret, start_broker,
    wait_until)

SECRET = b"whsec-0123456789abcdef"


@pytest.fixture(scope="module")
def broker():
    b = start_broker("--webhook-allow-private", "--api", "127.0.0.1:0")
    try:
        with hopper.Client(b.url) as c:
            set_secret(c, SECRET)
        yield b
        b.stop()
    finally:
        b.cleanup()


def post(url, body, content_type="application/json"):
    """POSTs body (a dict as JSON, or bytes) to url: (status, JSON answer)."""
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    req = urllib.request.Request(url, data=data, method="POST")
    if content_type is not None:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=LIMIT_S) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def reason(answer):
    return answer["details"][0]["debug"]["reason"]


def delivered_to(receiver, path, msg_id, n=1):
    """The first n requests for msg_id to path, once they have arrived."""
    wait_until(lambda: len(receiver.requests(path, msg_id)) >= n,
               f"{n} request(s) for {msg_id}", LIMIT_S)
    return receiver.requests(path, msg_id)[:n]


def accepted(c, receiver, lane, payload=b"job", n=1):
    """Enqueues into lane (delivered to /accept) and returns the message's
    id and the Hopper-Callback URL of its nth delivery, once hopperd has
    taken the 202 (its lease then reaches past the request's)."""
    e = c.enqueue(lane, payload)
    r = delivered_to(receiver, "/accept", e.id, n)[-1]
    url = r["headers"]["hopper-callback"]
    sent_ms = time.time() * 1000
    # The request's lease is deliver_timeout_ms (10 s) + 30 s; the 202's is
    # callback_timeout_ms (a minute below) from when it was taken.
    wait_until(lambda: c.get(e.id).lease_expires_at_ms > sent_ms + 45000,
               "the 202 to extend the lease", LIMIT_S)
    return e.id, url


def test_a_delivery_carries_a_callback_url_on_the_api(client, receiver,
                                                      broker):
    deliver_to(client, "plain", receiver.base + "/ok")
    e = client.enqueue("plain", b"x")

    [r] = delivered_to(receiver, "/ok", e.id)

    url = r["headers"]["hopper-callback"]
    assert url.startswith(broker.api + "/hopper.v1.Callback/hpc1.")
    # Any other 2xx still acks.
    wait_until(lambda: client.get(e.id).state == pb.DELIVERED,
               "the 200 to ack", LIMIT_S)


def test_202_leaves_it_claimed_and_complete_delivers_it_with_the_result(
        client, receiver):
    deliver_to(client, "jobs", receiver.base + "/accept",
               callback_timeout_ms=60000)
    msg_id, url = accepted(client, receiver, "jobs")
    assert client.get(msg_id).state == pb.CLAIMED

    # Any content type: the body is JSON whatever it says.
    status, answer = post(url, {"action": "complete", "result": "finished"},
                          content_type="application/x-www-form-urlencoded")

    assert status == 200
    assert answer == {"id": msg_id, "state": "delivered"}
    m = client.get(msg_id)
    assert m.state == pb.DELIVERED and m.result == b"finished"
    # A repeated complete (its answer lost) is answered the same.
    assert post(url, {"action": "complete", "result": "finished"})[0] == 200


def test_a_result_may_be_bytes_in_base64(client, receiver):
    deliver_to(client, "jobs", receiver.base + "/accept",
               callback_timeout_ms=60000)
    msg_id, url = accepted(client, receiver, "jobs")

    status, _ = post(url, {"action": "complete",
                           "result_base64": "AAH/"})

    assert status == 200
    assert client.get(msg_id).result == b"\x00\x01\xff"


def test_fail_retries_it_and_the_old_url_is_then_a_lost_claim(
        client, receiver):
    deliver_to(client, "retried", receiver.base + "/accept",
               callback_timeout_ms=60000, backoff_base_ms=3600000,
               backoff_cap_ms=3600000, jitter_pct=0)
    msg_id, first = accepted(client, receiver, "retried")

    # retry_after_ms replaces the lane's hour of backoff.
    status, answer = post(first, {"action": "fail", "error": "printer on fire",
                                  "retry_after_ms": 200})

    assert status == 200
    assert answer["state"] == "pending" and answer["retry_at_ms"] > 0
    [_, again] = delivered_to(receiver, "/accept", msg_id, 2)
    assert again["headers"]["hopper-attempt"] == "2"
    second = again["headers"]["hopper-callback"]
    assert second != first
    wait_until(lambda: client.get(msg_id).lease_expires_at_ms >
               time.time() * 1000 + 45000, "the second 202", LIMIT_S)
    status, answer = post(first, {"action": "complete"})
    assert status == 409 and reason(answer) == "LOST_CLAIM"
    assert post(second, {"action": "complete"})[0] == 200
    m = client.get(msg_id)
    assert m.state == pb.DELIVERED and m.attempts == 2
    assert m.last_error == "printer on fire"


def test_fail_with_dead_letter_gives_up_now(client, receiver):
    deliver_to(client, "jobs", receiver.base + "/accept",
               callback_timeout_ms=60000)
    msg_id, url = accepted(client, receiver, "jobs")

    status, answer = post(url, {"action": "fail", "error": "bad input",
                                "dead_letter": True})

    assert (status, answer["state"]) == (200, "dead")
    m = client.get(msg_id)
    assert m.state == pb.DEAD and m.last_error == "bad input"


def test_a_heartbeat_extends_the_lease_and_hands_out_a_fresh_url(
        client, receiver):
    deliver_to(client, "long", receiver.base + "/accept",
               callback_timeout_ms=60000)
    msg_id, url = accepted(client, receiver, "long")

    status, answer = post(url, {"action": "heartbeat", "extend_ms": 50000})

    assert status == 200 and answer["state"] == "claimed"
    lease = client.get(msg_id).lease_expires_at_ms
    assert answer["lease_expires_at_ms"] == lease
    assert lease - time.time() * 1000 <= 50000
    # Without extend_ms, the lane's callback_timeout_ms; past it, refused.
    status, answer = post(url, {"action": "heartbeat"})
    assert status == 200
    assert answer["lease_expires_at_ms"] > lease
    status, answer = post(url, {"action": "heartbeat", "extend_ms": 60001})
    assert status == 400 and reason(answer) == "BAD_LEASE"
    # The fresh URL names the same claim.
    fresh = post(url, {"action": "heartbeat"})[1]["callback_url"]
    assert fresh != url
    assert fresh.split("/hopper.v1.Callback/")[0] == \
        url.split("/hopper.v1.Callback/")[0]
    assert post(fresh, {"action": "complete", "result": "ok"})[0] == 200
    assert client.get(msg_id).state == pb.DELIVERED


def test_a_callback_that_comes_before_the_202_settles_it(client, receiver):
    deliver_to(client, "early", receiver.base + "/early",
               callback_timeout_ms=60000)
    e = client.enqueue("early", b"quick")

    m = client.await_message(e.id, wait_ms=30000)

    assert m is not None and m.state == pb.DELIVERED and m.result == b"early"
    assert len(receiver.requests("/early", e.id)) == 1


def test_a_lease_that_runs_out_makes_a_late_callback_a_lost_claim(
        client, receiver):
    # A second to call back: the lease runs out, the message is delivered
    # again, and the first delivery's callback comes too late.
    deliver_to(client, "short", receiver.base + "/accept",
               callback_timeout_ms=1000)
    e = client.enqueue("short", b"s")
    [first, _] = delivered_to(receiver, "/accept", e.id, 2)
    url = first["headers"]["hopper-callback"]

    status, answer = post(url, {"action": "complete", "result": "late"})

    assert status == 409 and reason(answer) == "LOST_CLAIM"
    assert client.get(e.id).result == b""
    deliver_to(client, "short", "")  # stop redelivering


def test_a_forged_or_tampered_token_is_refused(client, receiver, broker):
    deliver_to(client, "jobs", receiver.base + "/accept",
               callback_timeout_ms=60000)
    msg_id, url = accepted(client, receiver, "jobs")
    base, token = url.split("/hopper.v1.Callback/")
    body, mac = token[len("hpc1."):].split(".")
    flipped = body[:10] + ("A" if body[10] != "A" else "B") + body[11:]
    forged = [
        f"{base}/hopper.v1.Callback/hpc1.{flipped}.{mac}",
        f"{base}/hopper.v1.Callback/hpc1.{body}.{mac[::-1]}",
        f"{base}/hopper.v1.Callback/hpc1.{body}",
        f"{base}/hopper.v1.Callback/not-a-token",
    ]

    for f in forged:
        status, answer = post(f, {"action": "complete", "result": "forged"})
        assert status == 401 and reason(answer) == "BAD_CALLBACK_TOKEN", f

    assert client.get(msg_id).state == pb.CLAIMED
    assert post(url, {"action": "complete"})[0] == 200


def test_bodies_that_are_not_callbacks_are_refused(client, receiver):
    deliver_to(client, "jobs", receiver.base + "/accept",
               callback_timeout_ms=60000)
    msg_id, url = accepted(client, receiver, "jobs")
    cases = [
        (b"{not json", "BAD_JSON"),
        (b'{"action":"complete","colour":"red"}', "UNKNOWN_FIELD"),
        (b'{"action":"explode"}', "BAD_CALLBACK"),
        (b'{"action":"complete","error":"x"}', "BAD_CALLBACK"),
        (b'{"action":"complete","result":"a","result_base64":"YQ=="}',
         "BAD_CALLBACK"),
        (b'{"action":"complete","extend_ms":1000}', "BAD_CALLBACK"),
        (b'{"action":"heartbeat","dead_letter":true}', "BAD_CALLBACK"),
        (b'{"action":"fail","retry_after_ms":1000,"dead_letter":true}',
         "BAD_CALLBACK"),
    ]

    for body, want in cases:
        status, answer = post(url, body)
        assert status == 400 and reason(answer) == want, body

    big = {"action": "complete", "result": "x" * (96 * 1024)}
    status, answer = post(url, big)
    assert status == 429 and reason(answer) == "BODY_TOO_LARGE"
    assert client.get(msg_id).state == pb.CLAIMED


def test_without_an_api_listener_a_delivery_has_no_callback_and_202_acks(
        receiver):
    b = start_broker("--webhook-allow-private")
    try:
        with hopper.Client(b.url) as c:
            set_secret(c, SECRET)
            deliver_to(c, "noapi", receiver.base + "/accept")
            e = c.enqueue("noapi", b"n")

            [r] = delivered_to(receiver, "/accept", e.id)

            assert "hopper-callback" not in r["headers"]
            wait_until(lambda: c.get(e.id).state == pb.DELIVERED,
                       "the 202 to ack", LIMIT_S)
            assert c.get(e.id).result == b"accepted"
        b.stop()
    finally:
        b.cleanup()


def test_api_public_url_is_the_base_of_the_callback_url(receiver):
    b = start_broker("--webhook-allow-private", "--api", "127.0.0.1:0",
                     "--api-public-url", "https://hooks.example.test/hopper/")
    try:
        with hopper.Client(b.url) as c:
            set_secret(c, SECRET)
            deliver_to(c, "public", receiver.base + "/ok")
            e = c.enqueue("public", b"p")

            [r] = delivered_to(receiver, "/ok", e.id)

            assert r["headers"]["hopper-callback"].startswith(
                "https://hooks.example.test/hopper/hopper.v1.Callback/hpc1.")
        b.stop()
    finally:
        b.cleanup()


@pytest.mark.parametrize("url", [
    "ftp://hooks.example.test/", "https://", "https:///hopper",
    "https://hooks.example.test/x?y=1", "https://hooks.example.test/x#y",
    'https://hooks.example.test/"x', "https://hooks.example.test/a\\b",
    "https://hooks.example.test/a b", "https://hooks.example.test/\x7f",
    "https://hooks.example.test/" + "a" * 2400,
])
def test_a_bad_api_public_url_stops_hopperd(tmp_path, url):
    # The base goes into a header and into JSON answers unescaped: only a
    # plain http(s) URL of printable ASCII without '"' or '\\' may start.
    r = subprocess.run(
        [os.environ["HOPPERD"], "--listen", "tcp://127.0.0.1:0",
         "--data", str(tmp_path / "data"), "--api", "127.0.0.1:0",
         "--api-public-url", url],
        capture_output=True, timeout=60)
    assert r.returncode != 0
    assert b"--api-public-url" in r.stderr
