"""Delivery lanes end to end (docs/webhooks.md): a real hopperd started
with --webhook-allow-private on free loopback ports, and an HTTP receiver
in its own process (webhook_receiver.py), both stopped by pid. Signed
POSTs arrive and verify; 2xx acks with the body as result; 500 retries
with growing delays while another lane keeps flowing; Retry-After is
honoured within the lane's cap; a hanging receiver is cut at the timeout;
410 dead-letters; loopback is refused without the flag. Nothing sleeps to
synchronise and nothing asserts a time from above: every wait is a
generous poll for a state."""

import json
import os
import subprocess
import time
import urllib.request

import pytest

import hopper
from hopper._proto import broker_pb2 as pb
from webhook_helpers import (  # noqa: F401 (client, receiver: fixtures)
    LIMIT_S, client, deliver_to, receiver, set_secret, start_broker, verify,
    wait_until)

SECRET = b"whsec-0123456789abcdef"
NEWER = b"whsec-fedcba9876543210"


@pytest.fixture(scope="module")
def broker():
    b = start_broker("--webhook-allow-private", "--http", "127.0.0.1:0")
    try:
        yield b
        b.stop()  # exits 0 with requests in flight (the hanging one)
    finally:
        b.cleanup()


def settled(c, msg_id):
    """Awaits msg_id until it is delivered or dead (generous)."""
    until = time.monotonic() + LIMIT_S
    while time.monotonic() < until:
        m = c.await_message(msg_id, wait_ms=5000)
        if m is not None:
            return m
    pytest.fail(f"message {msg_id} was not settled in {LIMIT_S} s")


def test_a_signed_post_arrives_verifies_and_its_2xx_acks_with_the_result(
        client, receiver):
    set_secret(client, SECRET)
    deliver_to(client, "ok", receiver.base + "/ok")
    e = client.enqueue("ok", b'{"n":1}', headers={
        "content-type": "application/json", "X-Tenant": "acme",
        "Hopper-Id": "forged", "Host": "evil.example"})

    m = settled(client, e.id)

    assert m.state == pb.DELIVERED
    assert m.result == b"done:" + e.id.encode()
    [r] = receiver.requests("/ok", e.id)
    h = r["headers"]
    assert r["body"] == b'{"n":1}'
    assert h["hopper-lane"] == "ok" and h["hopper-attempt"] == "1"
    assert h["content-type"] == "application/json"
    assert h["x-tenant"] == "acme"
    assert h["host"] == f"127.0.0.1:{receiver.port}"  # not the message's
    assert h["user-agent"].startswith("hopperd/")
    assert verify(SECRET, h["hopper-signature"], r["body"])
    assert not verify(NEWER, h["hopper-signature"], r["body"])


def test_the_signature_matches_openssl_dgst(client, receiver):
    deliver_to(client, "ok", receiver.base + "/ok")
    e = client.enqueue("ok", b"payload for openssl")
    settled(client, e.id)
    [r] = receiver.requests("/ok", e.id)
    t, v1 = [p.split("=", 1)[1]
             for p in r["headers"]["hopper-signature"].split(",")]

    out = subprocess.run(
        ["openssl", "dgst", "-sha256", "-hmac", SECRET.decode(), "-r"],
        input=t.encode() + b"." + r["body"], capture_output=True, check=True)

    assert out.stdout.split()[0].decode() == v1


def test_after_a_rotate_both_secrets_sign_newest_first(client, receiver):
    set_secret(client, SECRET)
    assert set_secret(client, NEWER, rotate=True).active == 2
    deliver_to(client, "rotated", receiver.base + "/ok")
    e = client.enqueue("rotated", b"x")

    settled(client, e.id)

    [r] = receiver.requests("/ok", e.id)
    sig = r["headers"]["hopper-signature"]
    macs = [p for p in sig.split(",") if p.startswith("v1=")]
    assert len(macs) == 2
    assert verify(NEWER, sig.split(",v1=")[0] + "," + macs[0], r["body"])
    assert verify(SECRET, sig.split(",v1=")[0] + "," + macs[1], r["body"])
    set_secret(client, SECRET)  # back to one for the other tests


def test_500_retries_with_growing_delays_while_another_lane_flows(
        client, receiver):
    set_secret(client, SECRET)
    deliver_to(client, "flaky", receiver.base + "/fail", max_attempts=4,
               backoff=pb.EXPONENTIAL, backoff_base_ms=300,
               backoff_factor_pct=200, backoff_cap_ms=60000, jitter_pct=0)
    deliver_to(client, "steady", receiver.base + "/ok")
    bad = client.enqueue("flaky", b"will fail")
    wait_until(lambda: len(receiver.requests("/fail", bad.id)) >= 1,
               "the first failing attempt", LIMIT_S)

    # While flaky waits out its backoff, steady delivers everything.
    good = [client.enqueue("steady", b"s%d" % i).id for i in range(20)]
    for i in good:
        assert settled(client, i).state == pb.DELIVERED
    m = settled(client, bad.id)

    assert m.state == pb.DEAD
    assert m.last_error == "http 500: boom"
    tries = receiver.requests("/fail", bad.id)
    assert [r["headers"]["hopper-attempt"] for r in tries] == \
        ["1", "2", "3", "4"]
    # Each retry came no sooner than its backoff (300, 600, 1200 ms):
    # lower bounds only, which hopperd guarantees however loaded.
    gaps = [b["mono"] - a["mono"] for a, b in zip(tries, tries[1:])]
    for gap, least in zip(gaps, (0.3, 0.6, 1.2)):
        assert gap >= least, gaps


def test_retry_after_replaces_the_backoff_within_the_cap(client, receiver):
    # Without Retry-After the second attempt would wait an hour.
    deliver_to(client, "slowdown", receiver.base + "/fail?ra=1",
               max_attempts=2, backoff_base_ms=3600000,
               backoff_cap_ms=3600000, jitter_pct=0)
    deliver_to(client, "capped", receiver.base + "/fail?ra=86400",
               max_attempts=2, backoff_base_ms=100, backoff_cap_ms=500,
               jitter_pct=0)
    a = client.enqueue("slowdown", b"a")
    b = client.enqueue("capped", b"b")

    assert settled(client, a.id).state == pb.DEAD
    assert settled(client, b.id).state == pb.DEAD

    tries = receiver.requests("/fail", a.id)
    assert len(tries) == 2 and tries[1]["mono"] - tries[0]["mono"] >= 1.0
    assert len(receiver.requests("/fail", b.id)) == 2


def test_a_hanging_receiver_is_cut_at_the_timeout(client, receiver):
    deliver_to(client, "hung", receiver.base + "/hang", max_attempts=1,
               deliver_timeout_ms=500)
    e = client.enqueue("hung", b"h")

    m = settled(client, e.id)

    assert m.state == pb.DEAD
    assert m.last_error == "timeout after 500 ms"
    assert len(receiver.requests("/hang", e.id)) == 1


def test_requests_in_flight_are_capped_across_lanes(receiver):
    """Six lanes of concurrency 64 to a receiver that never answers: the
    broker holds at most 256 requests (claims being made included) in
    all, not 6 x 64. Its own broker, whose cap the others need."""
    lanes = [f"wide-{i}" for i in range(6)]
    b = start_broker("--webhook-allow-private")
    try:
        with hopper.Client(b.url) as c:
            set_secret(c, SECRET)
            for lane in lanes:
                deliver_to(c, lane, receiver.base + "/hang",
                           deliver_concurrency=64,
                           deliver_timeout_ms=300000)
                for i in range(70):
                    c.enqueue(lane, b"w%d" % i)

            def held():
                return [r for r in receiver.requests("/hang")
                        if r["headers"].get("hopper-lane") in lanes]
            wait_until(lambda: len(held()) >= 256, "256 requests held",
                       LIMIT_S)

            # Every request holds a claim until it ends, and the cap counts
            # claims still being made, so the store's own count is the
            # bound: exactly the 256 the receiver holds, the rest waiting.
            claimed = sum(c.stats(lane).claimed for lane in lanes)
            pending = sum(c.stats(lane).pending for lane in lanes)
            assert (claimed, pending) == (256, 6 * 70 - 256)
            assert len(held()) == 256
        b.stop()
    finally:
        b.cleanup()


def test_410_dead_letters_at_once(client, receiver):
    deliver_to(client, "gone", receiver.base + "/gone", max_attempts=5)
    e = client.enqueue("gone", b"g")

    m = settled(client, e.id)

    assert m.state == pb.DEAD
    assert m.attempts == 1
    assert m.last_error == "http 410: gone"


def test_a_missing_secret_sends_nothing_and_uses_no_attempt(client, receiver):
    # A secret_id with a typo must not empty the lane into the dead
    # letters: nothing is sent, the message goes back with its attempts
    # as they were, and once the secret exists it is delivered.
    deliver_to(client, "typo", receiver.base + "/ok", secret_id="later",
               max_attempts=1)
    e = client.enqueue("typo", b"t")

    until = time.monotonic() + LIMIT_S
    m = client.get(e.id)
    while not m.last_error.startswith("not sent") and \
            time.monotonic() < until:
        time.sleep(0.05)  # polling a condition, bounded by LIMIT_S
        m = client.get(e.id)
    assert m.last_error.startswith("not sent: ")
    assert m.state != pb.DEAD
    assert m.attempts == 0
    assert receiver.requests("/ok", msg_id=e.id) == []

    set_secret(client, b"whsec-late-0123456789", secret_id="later")
    m = settled(client, e.id)
    assert m.state == pb.DELIVERED
    assert m.attempts == 1


def test_loopback_is_refused_without_webhook_allow_private(receiver):
    b = start_broker()
    try:
        with hopper.Client(b.url) as c:
            set_secret(c, SECRET)
            deliver_to(c, "private", receiver.base + "/ok?private",
                       max_attempts=1)
            e = c.enqueue("private", b"p")

            m = settled(c, e.id)

            assert m.state == pb.DEAD
            assert m.last_error.startswith(
                "address refused: 127.0.0.1 is private")
            assert receiver.requests("/ok", e.id) == []
        b.stop()
    finally:
        b.cleanup()


def scrape(b):
    with urllib.request.urlopen(b.http + "/metrics", timeout=LIMIT_S) as r:
        return r.read().decode()


def sample(text, name, **labels):
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(name + "{" + want + "}"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_deliveries_by_lane_outcome_and_class(
        broker, client, receiver):
    set_secret(client, SECRET)
    deliver_to(client, "metered-ok", receiver.base + "/ok")
    deliver_to(client, "metered-gone", receiver.base + "/gone")
    a = [client.enqueue("metered-ok", b"m%d" % i).id for i in range(3)]
    b = client.enqueue("metered-gone", b"g").id
    for i in a + [b]:
        settled(client, i)

    text = scrape(broker)

    assert sample(text, "hopper_deliveries_total", scope="default",
                  lane="metered-ok", outcome="ack", **{"class": "2xx"}) == 3
    assert sample(text, "hopper_deliveries_total", scope="default",
                  lane="metered-gone", outcome="dead",
                  **{"class": "4xx"}) == 1
    assert sample(text, "hopper_delivery_duration_seconds_count",
                  scope="default", lane="metered-ok") == 3


def test_webhook_test_posts_once_signed_and_changes_no_message(
        broker, client, receiver):
    set_secret(client, SECRET)
    deliver_to(client, "probe", receiver.base + "/ok")
    before = client.stats("probe").enqueued_total

    a = client.call("TestWebhook", pb.TestWebhookRequest(lane="probe"),
                    pb.TestWebhookResponse)

    assert (a.status, a.outcome, a.body, a.error) == (200, "ack",
                                                      b"done:test", "")
    [r] = receiver.requests("/ok", "test")
    assert r["headers"]["hopper-test"] == "true"
    assert verify(SECRET, r["headers"]["hopper-signature"], r["body"])
    assert json.loads(r["body"])["lane"] == "probe"
    assert client.stats("probe").enqueued_total == before


def test_webhook_test_shows_what_a_delivery_would_do(client, receiver):
    deliver_to(client, "probe-gone", receiver.base + "/gone")
    deliver_to(client, "probe-hang", receiver.base + "/hang",
               deliver_timeout_ms=300)

    gone = client.call("TestWebhook", pb.TestWebhookRequest(
        lane="probe-gone"), pb.TestWebhookResponse)
    hung = client.call("TestWebhook", pb.TestWebhookRequest(
        lane="probe-hang"), pb.TestWebhookResponse)

    assert (gone.status, gone.outcome, gone.body) == (410, "dead", b"gone")
    assert (hung.status, hung.outcome) == (0, "retry")
    assert hung.error == "timeout after 300 ms"


def test_hopper_webhook_test_prints_the_answer(broker, client, receiver):
    deliver_to(client, "probe", receiver.base + "/ok")
    hopper_cli = os.path.join(os.path.dirname(broker.binary), "..", "..",
                              "clients", "cli", "hopper")

    out = subprocess.run([hopper_cli, "--url", broker.url, "--json",
                          "webhook", "test", "probe"],
                         capture_output=True, check=True, timeout=LIMIT_S)

    j = json.loads(out.stdout)
    assert (j["status"], j["outcome"], j["body"]) == (200, "ack", "done:test")


def test_a_kill_9_mid_delivery_redelivers_and_loses_nothing(receiver):
    b = start_broker("--webhook-allow-private")
    try:
        with hopper.Client(b.url) as c:
            set_secret(c, SECRET)
            # Cut at 1 s: the kill comes while the request hangs, or just
            # after it was cut and nacked; either way it must come back.
            deliver_to(c, "crashy", receiver.base + "/hang",
                       deliver_timeout_ms=1000, backoff_base_ms=100,
                       backoff_cap_ms=100, jitter_pct=0)
            e = c.enqueue("crashy", b"survives")
            wait_until(lambda: receiver.requests("/hang", e.id),
                       "the first attempt", LIMIT_S)
        b.kill()
        b.restart()
        with hopper.Client(b.url) as c:
            deliver_to(c, "crashy", receiver.base + "/ok")

            m = settled(c, e.id)  # after the lease (1 s + 30 s) at most

            assert m.state == pb.DELIVERED
            assert m.attempts >= 2
            assert m.result == b"done:" + e.id.encode()
        b.stop()
    finally:
        b.cleanup()

