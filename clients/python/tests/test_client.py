"""hopper.Client against a real hopperd: the lifecycle, errors and the
retry rules libhopper has."""

import socket
import struct
import threading
import time

import pytest

import hopper
from conftest import recv_exact
from hopper import Code, HopperError
from hopper._proto import envelope_pb2


def test_enqueue_claim_ack_get(client):
    e = client.enqueue("emails", b"hello", headers={"trace": "t1"})

    msgs = client.claim("emails", max=10, lease_ms=30000)
    client.ack(msgs[0].id, msgs[0].claim_token, result=b"sent")

    assert len(msgs) == 1 and msgs[0].id == e.id
    assert msgs[0].payload == b"hello" and msgs[0].attempts == 1
    assert [(h.key, h.value) for h in msgs[0].headers] == [("trace", "t1")]
    m = client.get(e.id)
    assert m.state == 4  # DELIVERED
    assert m.result == b"sent"


def test_await_message_returns_the_reply_once_acked(client):
    e = client.enqueue("rpc", b"question")
    msg = client.claim("rpc", lease_ms=30000)[0]
    got = {}
    waiter = threading.Thread(
        target=lambda: got.update(m=client.await_message(e.id,
                                                         wait_ms=30000)))
    waiter.start()

    client.ack(msg.id, msg.claim_token, result=b"answer")

    waiter.join(timeout=120)
    assert got["m"].state == 4  # DELIVERED
    assert got["m"].result == b"answer" and got["m"].payload == b""


def test_await_message_times_out_with_none(client):
    e = client.enqueue("rpc", b"question")

    assert client.await_message(e.id, wait_ms=200) is None


def test_a_second_enqueue_with_the_dedupe_key_returns_the_first_id(client):
    a = client.enqueue("emails", "hi", dedupe_key="welcome-42")

    b = client.enqueue("emails", "hi", dedupe_key="welcome-42")

    assert b.id == a.id and b.duplicate and not a.duplicate


def test_a_stale_token_is_lost_claim(client):
    client.enqueue("emails", "x")
    m = client.claim("emails")[0]
    client.nack(m.id, m.claim_token, keep_attempt=True)

    with pytest.raises(HopperError) as e:
        client.ack(m.id, m.claim_token)

    assert e.value.code == Code.FAILED_PRECONDITION
    assert e.value.reason == "LOST_CLAIM"


def test_get_of_an_unknown_id_is_not_found(client):
    with pytest.raises(HopperError) as e:
        client.get("01M8000000000000000000000Z")

    assert e.value.code == Code.NOT_FOUND and e.value.reason == "NO_MESSAGE"


def test_nack_keep_attempt_gives_the_attempt_back(client):
    e = client.enqueue("emails", "x", max_attempts=1)
    m = client.claim("emails")[0]

    r = client.nack(m.id, m.claim_token, keep_attempt=True)

    assert not r.dead
    assert client.get(e.id).attempts == 0


def test_nack_dead_letter_makes_a_dead_letter_now(client):
    e = client.enqueue("emails", "x", max_attempts=5)
    m = client.claim("emails")[0]

    r = client.nack(m.id, m.claim_token, error="bad input", dead_letter=True)

    assert r.dead
    assert client.get(e.id).state == 5  # DEAD


def test_extend_moves_the_expiry(client):
    client.enqueue("emails", "x")
    m = client.claim("emails", lease_ms=1000)[0]

    at = client.extend(m.id, m.claim_token, 60000)

    assert at > m.lease_expires_at_ms


def test_ack_each_acks_the_held_and_reports_the_lost(client):
    client.enqueue("emails", "a")
    client.enqueue("emails", "b")
    a, b = client.claim("emails", max=2)
    client.nack(b.id, b.claim_token, keep_attempt=True)

    outcomes, followups = client.ack_each(
        [(a.id, a.claim_token), (b.id, b.claim_token)],
        followups=[hopper.draft("next", "x")])

    assert outcomes[0] is None
    assert outcomes[1].code == Code.FAILED_PRECONDITION
    assert outcomes[1].reason == "LOST_CLAIM"
    assert followups is None
    with pytest.raises(HopperError) as e:
        client.stats("next")  # never created: no follow-up exists
    assert e.value.reason == "NO_LANE"


def test_a_refused_connection_fails_at_once_unreachable():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    c = hopper.Client(f"tcp://127.0.0.1:{port}", timeout=60)

    t0 = time.monotonic()
    with pytest.raises(HopperError) as e:
        c.ping()

    assert e.value.code == Code.UNAVAILABLE
    assert e.value.reason == "UNREACHABLE"
    assert time.monotonic() - t0 < 30  # not the call's 60 s


def test_a_bad_url_is_invalid_argument():
    with pytest.raises(HopperError) as e:
        hopper.Client("ipc:///tmp/x")

    assert e.value.code == Code.INVALID_ARGUMENT and e.value.reason == "BAD_URL"


def _sp_server(replies):
    """A one-shot SP rep0 peer on a free port: the first connection reads
    a request and closes without a reply; the second answers it. The
    request ids seen go to replies."""
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(4)

    def serve():
        for i in range(2):
            s, _ = ls.accept()
            recv_exact(s, 8)
            s.sendall(bytes([0, 0x53, 0x50, 0, 0, 0x31, 0, 0]))
            (n,) = struct.unpack(">Q", recv_exact(s, 8))
            msg = recv_exact(s, n)
            req = envelope_pb2.Request()
            req.ParseFromString(msg[4:])
            replies.append(req.request_id)
            if i == 1:
                resp = envelope_pb2.Response(request_id=req.request_id)
                resp.status.code = 0
                out = msg[:4] + resp.SerializeToString()
                s.sendall(struct.pack(">Q", len(out)) + out)
            s.close()
        ls.close()

    threading.Thread(target=serve, daemon=True).start()
    return ls.getsockname()[1]


def test_a_broken_connection_resends_the_same_request_once():
    seen = []
    port = _sp_server(seen)
    c = hopper.Client(f"tcp://127.0.0.1:{port}", timeout=60)

    c.ping()

    assert len(seen) == 2 and seen[0] == seen[1] and len(seen[0]) == 32
