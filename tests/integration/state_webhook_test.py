"""State webhooks end to end (docs/webhooks.md, "State webhooks"): a real
hopperd started with --webhook-allow-private on free loopback ports, and
the HTTP receiver of webhook_test.py (webhook_receiver.py) in its own
process, both stopped by pid. A message enqueued with a state_webhook_url
and worked by a client (claim, nack, claim, ack) sends its events in
order, signed with the scope's secret hopper.events, with stable event
ids; a 500 gets the same event again; an event the receiver drops leaves
the message as it was, readable with Get; without the secret nothing is
sent until it is set. Nothing sleeps to synchronise: every wait is a
generous poll for a state."""

import base64
import json
import os
import subprocess

import pytest

import hopper
from hopper._proto import broker_pb2 as pb
from hopper.errors import HopperError
from webhook_helpers import (  # noqa: F401 (client, receiver: fixtures)
    LIMIT_S, Broker, client, receiver, verify, wait_until)

SECRET = b"whsec-events-0123456789"
EVENTS = "hopper.events"


@pytest.fixture(scope="module")
def broker():
    b = Broker(extra=("--webhook-allow-private", "--api", "127.0.0.1:0"))
    try:
        b.start()
        with hopper.Client(b.url) as c:
            set_secret(c, SECRET)
        yield b
        b.stop()
    finally:
        b.cleanup()


def set_secret(c, value):
    return c.call("SetSecret", pb.SetSecretRequest(
        secret_id=EVENTS, value=value), pb.SetSecretResponse)


def events_of(receiver, msg_id, n, path=None):
    """Waits (generously) for at least n POSTs about msg_id."""
    wait_until(lambda: len(receiver.events(msg_id, path)) >= n,
               f"{n} events of {msg_id}", LIMIT_S)
    return receiver.events(msg_id, path)


def settled_events(c, n):
    """Waits until the scope's events lane has nothing left to send and
    n events were delivered in all; returns its stats."""
    def done():
        s = c.stats(EVENTS)
        return s.pending + s.delayed + s.claimed == 0 and \
            s.acked_total + s.dead_total >= n
    wait_until(done, f"{n} events sent", LIMIT_S)
    return c.stats(EVENTS)


def claim_one(c, lane):
    [m] = c.claim(lane, wait_ms=10000, lease_ms=60000)
    return m


def test_a_worked_message_sends_every_state_in_order_signed(
        client, receiver):
    url = receiver.base + "/ok"
    e = client.enqueue("jobs", b"work", state_webhook_url=url)
    m = claim_one(client, "jobs")
    client.nack(m.id, m.claim_token, error="try again", retry_in_ms=1)
    m = claim_one(client, "jobs")
    client.ack(m.id, m.claim_token, result=b"all done")

    got = events_of(receiver, e.id, 5)

    assert [(r["event"]["state"], r["event"]["attempt"]) for r in got] == [
        ("enqueued", 0), ("claimed", 1), ("retry_scheduled", 1),
        ("claimed", 2), ("delivered", 2)]
    assert [r["event"]["event_id"] for r in got] == [
        f"{e.id}:enqueued:0", f"{e.id}:claimed:1",
        f"{e.id}:retry_scheduled:1", f"{e.id}:claimed:2",
        f"{e.id}:delivered:2"]
    for r in got:
        h = r["headers"]
        assert verify(SECRET, h["hopper-signature"], r["body"])
        assert h["content-type"] == "application/json"
        assert h["hopper-lane"] == EVENTS
        assert "hopper-event-url" not in h
        assert r["event"]["lane"] == "jobs"
        assert r["event"]["message_id"] == e.id
    at = [r["event"]["at_ms"] for r in got]
    assert at == sorted(at)
    assert got[2]["event"]["error"] == "try again"
    assert got[4]["event"]["result"] == "all done"
    assert client.get(e.id).state_webhook_url == url


def test_a_500_gets_the_same_event_again(client, receiver):
    e = client.enqueue("flaky-jobs", b"x",
                       state_webhook_url=receiver.base + "/flaky")

    tries = events_of(receiver, e.id, 2, "/flaky")

    first, again = tries[0], tries[1]
    assert first["event"] == again["event"]  # the same event, same at_ms
    assert first["event"]["event_id"] == f"{e.id}:enqueued:0"
    assert first["headers"]["hopper-id"] == again["headers"]["hopper-id"]
    assert (first["headers"]["hopper-attempt"],
            again["headers"]["hopper-attempt"]) == ("1", "2")
    assert verify(SECRET, again["headers"]["hopper-signature"], again["body"])
    # The failures were the event's, not the message's.
    m = client.get(e.id)
    assert (m.state, m.attempts, m.last_error) == (pb.PENDING, 0, "")


def test_a_dropped_event_is_reconciled_with_get(client, receiver):
    # 410: the receiver throws the events away; each is a dead letter of
    # the events lane at once, and the message goes on as if nothing.
    before = client.stats(EVENTS).dead_total
    e = client.enqueue("dropped", b"d",
                       state_webhook_url=receiver.base + "/gone")
    m = claim_one(client, "dropped")
    client.ack(m.id, m.claim_token, result=b"kept")

    events_of(receiver, e.id, 3, "/gone")
    wait_until(lambda: client.stats(EVENTS).dead_total >= before + 3,
               "the dropped events dead-lettered", LIMIT_S)

    got = client.get(e.id)
    assert (got.state, got.result, got.attempts) == (pb.DELIVERED, b"kept", 1)
    assert client.await_message(e.id).state == pb.DELIVERED


def test_a_bad_url_is_refused_with_its_reason(client):
    for bad in ("ftp://example.com/x", "http://user:pw@example.com/",
                "not a url"):
        with pytest.raises(HopperError) as err:
            client.enqueue("jobs", b"x", state_webhook_url=bad)
        assert err.value.code == hopper.Code.INVALID_ARGUMENT
        assert err.value.reason == "BAD_DELIVER_URL"
        assert "state_webhook_url" in err.value.message


def test_without_the_secret_events_wait_then_go_in_order(broker, receiver):
    # A scope without the secret hopper.events: its events lane is held
    # (nothing claimed, no attempt used, hopperd says so in its log) while
    # the message goes on; once the secret is set, they go, in order.
    log = os.path.join(broker.dir, "err")
    with hopper.Client(broker.url, scope="unsigned") as c:
        e = c.enqueue("jobs", b"u", state_webhook_url=receiver.base + "/ok")
        m = claim_one(c, "jobs")
        wait_until(lambda: "scope=unsigned" in open(log).read(),
                   "the held events logged", LIMIT_S)
        c.ack(m.id, m.claim_token)
        assert receiver.events(e.id) == []
        s = c.stats(EVENTS)
        assert (s.pending, s.claimed_total) == (3, 0)

        set_secret(c, SECRET)

        got = events_of(receiver, e.id, 3)
        assert [r["event"]["state"] for r in got] == [
            "enqueued", "claimed", "delivered"]
        assert all(r["headers"]["hopper-attempt"] == "1" for r in got)
        assert all(verify(SECRET, r["headers"]["hopper-signature"], r["body"])
                   for r in got)


def test_the_http_api_and_the_cli_take_the_url(broker, client, receiver):
    url = receiver.base + "/ok"
    body = json.dumps({"drafts": [{
        "lane": "api-jobs", "payload": base64.b64encode(b"j").decode(),
        "stateWebhookUrl": url}]}).encode()
    out = subprocess.run(
        ["curl", "-sS", "--max-time", str(LIMIT_S), "-H",
         "Content-Type: application/json", "--data-binary", "@-",
         broker.api + "/hopper.v1.Broker/Enqueue"],
        input=body, capture_output=True, check=True)
    api_id = json.loads(out.stdout)["results"][0]["id"]
    hopper_cli = os.path.join(os.path.dirname(broker.binary), "..", "..",
                              "clients", "cli", "hopper")
    out = subprocess.run(
        [hopper_cli, "--url", broker.url, "enqueue", "cli-jobs", "c",
         "--state-webhook-url", url],
        capture_output=True, check=True, timeout=LIMIT_S)
    cli_id = out.stdout.decode().split()[0]

    for i in (api_id, cli_id):
        [r] = events_of(receiver, i, 1)
        assert r["event"]["state"] == "enqueued"
        assert client.get(i).state_webhook_url == url
    out = subprocess.run(
        ["curl", "-sS", "--max-time", str(LIMIT_S), "-H",
         "Content-Type: application/json", "--data-binary",
         json.dumps({"id": api_id}), broker.api + "/hopper.v1.Broker/Get"],
        capture_output=True, check=True)
    assert json.loads(out.stdout)["message"]["stateWebhookUrl"] == url


def test_a_kill_9_mid_event_sends_it_again(receiver):
    b = Broker(extra=("--webhook-allow-private",))
    try:
        b.start()
        with hopper.Client(b.url) as c:
            set_secret(c, SECRET)
            e = c.enqueue("crashy", b"c",
                          state_webhook_url=receiver.base + "/hang")
            events_of(receiver, e.id, 1, "/hang")
        b.kill()
        b.restart()
        # The event's lease (the 10 s timeout + 30 s) runs out, then it is
        # sent again, to a receiver that still hangs: seen twice is enough.
        events_of(receiver, e.id, 2, "/hang")
        with hopper.Client(b.url) as c:
            assert c.get(e.id).state == pb.PENDING
        b.stop()
    finally:
        b.cleanup()
