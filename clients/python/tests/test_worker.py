"""hopper.Worker against a real hopperd: the outcomes, heartbeats past
the first lease, a graceful stop, a broker restart. Tests wait for a
condition (the worker's counts, a handler that started), never a fixed
time."""

import threading

import pytest

import hopper
from conftest import wait_until
from hopper import Code, HopperError


def start(client, handler, **opts):
    opts.setdefault("wait_ms", 1000)
    return hopper.Worker(client, "jobs", handler, **opts).start()


def test_every_message_is_acked_by_four_handlers(client):
    for i in range(20):
        client.enqueue("jobs", f"p{i}")
    w = start(client, lambda job: job.ack(b"done"), concurrency=4)

    wait_until(lambda: w.counts["acked"] == 20, "20 acks")
    w.stop()
    w.wait()

    s = client.stats("jobs")
    assert s.delivered == 20 and s.pending + s.claimed == 0


def test_retry_uses_an_attempt(client):
    e = client.enqueue("jobs", "x")
    w = start(client, lambda job: job.retry("later", delay_ms=60000))

    wait_until(lambda: w.counts["retried"] == 1, "a retry")
    w.stop()
    w.wait()

    m = client.get(e.id)
    assert m.attempts == 1 and m.last_error == "later" and m.state == 2


def test_fail_makes_a_dead_letter_with_attempts_left(client):
    e = client.enqueue("jobs", "x", max_attempts=5)
    w = start(client, lambda job: job.fail("bad input"))

    wait_until(lambda: w.counts["failed"] == 1, "a failure")
    w.stop()
    w.wait()

    assert client.get(e.id).state == 5


def test_snooze_uses_no_attempt(client):
    e = client.enqueue("jobs", "x", max_attempts=1)
    w = start(client, lambda job: job.snooze(60000))

    wait_until(lambda: w.counts["snoozed"] == 1, "a snooze")
    w.stop()
    w.wait()

    m = client.get(e.id)
    assert m.attempts == 0 and m.state == 2  # DELAYED


def test_a_handler_that_raises_gets_a_retry(client):
    e = client.enqueue("jobs", "x")

    def handler(job):
        raise ValueError("oops")

    w = start(client, handler)
    wait_until(lambda: w.counts["retried"] >= 1, "a retry")
    w.stop()
    w.wait()

    assert client.get(e.id).attempts >= 1


def test_heartbeats_keep_a_claim_past_its_first_lease(client):
    e = client.enqueue("jobs", "x")
    holder = {}

    def handler(job):
        # Four heartbeats, one a second: the first lease (3 s) is over.
        wait_until(lambda: holder["w"].counts["extended"] >= 4, "heartbeats")
        job.ack()

    w = holder["w"] = hopper.Worker(client, "jobs", handler, lease_ms=3000,
                                    wait_ms=1000)
    w.start()
    wait_until(lambda: w.counts["acked"] == 1, "the ack")
    w.stop()
    w.wait()

    assert w.counts["lost"] == 0
    assert client.get(e.id).state == 4


def test_stop_lets_a_running_handler_finish(client):
    client.enqueue("jobs", "x")
    started = threading.Event()

    def handler(job):
        started.set()
        wait_until(lambda: job.stopping, "the stop")
        job.ack()

    w = start(client, handler, grace_ms=60000)
    started.wait(60)
    w.stop()
    w.wait()

    assert w.counts["acked"] == 1


def test_stop_gives_back_past_the_grace_at_no_attempt(client):
    e = client.enqueue("jobs", "x", max_attempts=1)
    started = threading.Event()
    late = {}

    def handler(job):
        started.set()
        wait_until(lambda: job.cancelled, "the give-back")
        try:
            job.ack()
        except HopperError as err:
            late["err"] = err

    w = start(client, handler, grace_ms=300)
    started.wait(60)
    w.stop()
    w.wait()

    assert w.counts["given_back"] == 1
    assert late["err"].reason == "LOST_CLAIM"
    m = client.get(e.id)
    assert m.state == 1 and m.attempts == 0


def test_the_worker_carries_on_after_a_broker_restart(broker, client):
    w = start(client, lambda job: job.ack(), concurrency=2)
    client.enqueue("jobs", "one")
    wait_until(lambda: w.counts["acked"] == 1, "the first ack")

    broker.stop()
    errors = w.counts["errors"]
    wait_until(lambda: w.counts["errors"] >= errors + 2, "refused claims")
    broker.restart()
    client.enqueue("jobs", "two")
    wait_until(lambda: w.counts["acked"] == 2, "the second ack")
    w.stop()
    w.wait()


def test_a_bad_lane_stops_the_worker_with_its_error(client):
    w = hopper.Worker(client, "no spaces", lambda job: job.ack()).start()

    with pytest.raises(HopperError) as e:
        w.wait()

    assert e.value.code == Code.INVALID_ARGUMENT
    assert e.value.reason == "BAD_NAME"
