"""Client: the calls on messages, with libhopper's semantics.

Every call carries a fresh random request id; a connection that breaks
under a call is redialled and the same request sent again within the
call's timeout, and the broker answers a repeated mutating call with its
first outcome. A refused connection fails at once (UNAVAILABLE,
UNREACHABLE). Failures raise HopperError(code, reason, message).

Messages come back as the generated hopper.v1 Message (fields id, state,
lane, target, attempts, payload, headers, claim_token, result, ...), as
broker.proto describes them. One Client may be used by many threads.

There is no await(): the broker has no rpc that waits for a message's
outcome yet; poll get() for the state and result.
"""

from dataclasses import dataclass

from . import errors
from ._proto import broker_pb2
from ._transport import Target, Transport
from .errors import Code, HopperError

SERVICE = "/hopper.v1.Broker/"
DEFAULT_TIMEOUT_S = 10.0


@dataclass
class Enqueued:
    """The outcome of one enqueued draft."""

    id: str
    duplicate: bool  # the dedupe key matched: id is the first message's


@dataclass
class AckItem:
    """One claim to ack: id, token (16 bytes), optional result bytes."""

    id: str
    token: bytes
    result: bytes = b""


def draft(lane, payload=b"", *, target="", headers=None, dedupe_key="",
          delay_ms=0, available_at_ms=0, priority=0, max_attempts=0,
          state_webhook_url=""):
    """A hopper.v1.Draft. payload may be str (sent as UTF-8) or bytes;
    headers a dict or a list of (key, value) pairs; state_webhook_url
    gets a signed event on every state change (docs/webhooks.md)."""
    if isinstance(payload, str):
        payload = payload.encode()
    d = broker_pb2.Draft(
        lane=lane,
        target=target or "",
        payload=payload,
        dedupe_key=dedupe_key or "",
        delay_ms=delay_ms,
        available_at_ms=available_at_ms,
        priority=priority,
        max_attempts=max_attempts,
        state_webhook_url=state_webhook_url or "",
    )
    items = headers.items() if isinstance(headers, dict) else headers or ()
    for k, v in items:
        d.headers.add(key=k, value=v)
    return d


def _enqueued(results):
    return [Enqueued(r.id, r.duplicate) for r in results]


def _drafts(followups):
    return [f if isinstance(f, broker_pb2.Draft) else draft(**f)
            for f in followups or ()]


class Client:
    """A client of one broker: Client(url, token=..., scope=...).

    url: tcp://HOST:PORT (default tcp://127.0.0.1:7450), tcp4://, tcp6://
    or tls+tcp:// (then tls_ca is required; tls_server_name, tls_cert and
    tls_key as libhopper's options). timeout: seconds per call (a claim
    adds its wait). Nothing is dialled here.
    """

    def __init__(self, url=None, *, token=None, scope=None,
                 timeout=DEFAULT_TIMEOUT_S, tls_ca=None, tls_server_name=None,
                 tls_cert=None, tls_key=None):
        if timeout <= 0:
            raise HopperError(
                Code.INVALID_ARGUMENT, errors.BAD_ARGUMENT,
                "timeout must be positive",
            )
        self.token = token or ""
        self.scope = scope or ""
        self.timeout = float(timeout)
        self._transport = Transport(
            Target(url, tls_ca, tls_server_name, tls_cert, tls_key)
        )

    @property
    def url(self):
        return self._transport.target.url

    def close(self):
        self._transport.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- the generic call -------------------------------------------------

    def call(self, rpc, request, response_type, extra_ms=0):
        """Calls rpc ("Enqueue") with a request message; returns the
        response message of response_type."""
        timeout = self.timeout + extra_ms / 1000.0
        deadline_ms = min(int(timeout * 1000), 0xFFFFFFFF)
        resp = self._transport.roundtrip(
            SERVICE + rpc,
            request.SerializeToString(),
            self.scope,
            self.token,
            timeout,
            deadline_ms,
        )
        out = response_type()
        try:
            out.ParseFromString(resp.body)
        except Exception:
            raise HopperError(
                Code.INTERNAL, errors.BAD_RESPONSE,
                "cannot decode the response message",
            ) from None
        return out

    # ---- messages ---------------------------------------------------------

    def enqueue(self, lane, payload=b"", **opts):
        """Enqueues one message; opts as draft(). Returns Enqueued."""
        return self.enqueue_many([draft(lane, payload, **opts)])[0]

    def enqueue_many(self, drafts):
        """Enqueues drafts (1-1000) atomically: all or none."""
        if not drafts:
            raise HopperError(
                Code.INVALID_ARGUMENT, errors.BAD_ARGUMENT,
                "enqueue needs 1 or more drafts",
            )
        resp = self.call(
            "Enqueue", broker_pb2.EnqueueRequest(drafts=_drafts(drafts)),
            broker_pb2.EnqueueResponse,
        )
        if len(resp.results) != len(drafts):
            raise HopperError(
                Code.INTERNAL, errors.BAD_RESPONSE,
                "enqueue answered with the wrong number of results",
            )
        return _enqueued(resp.results)

    def claim(self, lane, *, max=1, lease_ms=0, wait_ms=0, target="",
              untargeted_only=False, consumer=""):
        """Claims up to max due messages (a list, maybe empty), waiting up
        to wait_ms for one when none is due."""
        req = broker_pb2.ClaimRequest(
            lane=lane, target=target or "", untargeted_only=untargeted_only,
            max=max, lease_ms=lease_ms, consumer=consumer or "",
            wait_ms=wait_ms,
        )
        resp = self.call(
            "Claim", req, broker_pb2.ClaimResponse, extra_ms=wait_ms
        )
        return list(resp.messages)

    def ack(self, id, token, *, result=b"", followups=None):
        """Acks one claim; follow-ups (drafts) are enqueued in the same
        commit. Returns the follow-ups' Enqueued list."""
        return self.ack_many([AckItem(id, token, result)], followups=followups)

    def _ack(self, items, followups, per_item):
        req = broker_pb2.AckRequest(per_item=per_item)
        for it in items:
            if not isinstance(it, AckItem):
                it = AckItem(*it)
            req.items.add(id=it.id, claim_token=bytes(it.token),
                          result=it.result or b"")
        req.followups.extend(_drafts(followups))
        if not req.items:
            raise HopperError(
                Code.INVALID_ARGUMENT, errors.BAD_ARGUMENT,
                "ack needs 1 or more items",
            )
        return req, self.call("Ack", req, broker_pb2.AckResponse)

    def ack_many(self, items, *, followups=None):
        """Acks claims (AckItem or (id, token[, result])) all or nothing:
        a lost claim raises FAILED_PRECONDITION/LOST_CLAIM and acks none."""
        req, resp = self._ack(items, followups, False)
        return _enqueued(resp.followups)

    def ack_each(self, items, *, followups=None):
        """The per-item ack: returns (outcomes, followups) where outcomes
        has one entry per item, None when it was acked, else a HopperError
        (LOST_CLAIM, NO_MESSAGE) that was not raised; the good items commit.
        followups is the follow-ups' Enqueued list, or None when an item
        failed (then none were enqueued)."""
        req, resp = self._ack(items, followups, True)
        if len(resp.items) != len(req.items):
            raise HopperError(
                Code.INTERNAL, errors.BAD_RESPONSE,
                "per-item ack without an outcome per item",
            )
        outcomes = [
            None if r.code == 0 else HopperError(r.code, r.reason, r.message)
            for r in resp.items
        ]
        if any(o is not None for o in outcomes):
            return outcomes, None
        return outcomes, _enqueued(resp.followups)

    def nack(self, id, token, *, error="", retry_at_ms=0, retry_in_ms=0,
             keep_attempt=False, dead_letter=False, followups=None):
        """Gives a claim back: retried after the lane's backoff (or the
        time given), a dead letter when it was the last attempt; with
        keep_attempt without using the attempt, with dead_letter a dead
        letter now. Returns the NackResponse (dead, retry_at_ms,
        followups)."""
        req = broker_pb2.NackRequest(
            id=id, claim_token=bytes(token), error=error or "",
            retry_at_ms=retry_at_ms, retry_in_ms=retry_in_ms,
            keep_attempt=keep_attempt, dead_letter=dead_letter,
        )
        req.followups.extend(_drafts(followups))
        return self.call("Nack", req, broker_pb2.NackResponse)

    def extend(self, id, token, lease_ms):
        """Extends a held lease to lease_ms from now; returns the new
        expiry (Unix ms)."""
        req = broker_pb2.ExtendRequest(
            id=id, claim_token=bytes(token), lease_ms=lease_ms
        )
        return self.call(
            "Extend", req, broker_pb2.ExtendResponse
        ).lease_expires_at_ms

    def get(self, id):
        """One message by id (NOT_FOUND/NO_MESSAGE when there is none)."""
        resp = self.call(
            "Get", broker_pb2.GetRequest(id=id), broker_pb2.GetResponse
        )
        if not resp.HasField("message"):
            raise HopperError(
                Code.INTERNAL, errors.BAD_RESPONSE,
                "Get answered OK without a message",
            )
        return resp.message

    def await_message(self, id, *, wait_ms=0):
        """Waits up to wait_ms (at most 30000; 0 looks once) for message id
        to be settled: delivered (its ack's result in .result) or dead (its
        .last_error). Returns that Message, without payload and headers,
        or None when the wait ran out first. NOT_FOUND/NO_MESSAGE when
        there is no such message (or no longer: a lane with retention 0
        keeps no delivered message). Named so because `await` is a Python
        keyword."""
        resp = self.call(
            "Await", broker_pb2.AwaitRequest(id=id, wait_ms=wait_ms),
            broker_pb2.AwaitResponse, extra_ms=wait_ms,
        )
        return resp.message if resp.HasField("message") else None

    def stats(self, lane):
        """The lane's counters (a LaneStats)."""
        return self.call(
            "Stats", broker_pb2.StatsRequest(lane=lane),
            broker_pb2.StatsResponse,
        ).stats

    def ping(self):
        """The broker's PingResponse (version, now_ms, instance)."""
        return self.call("Ping", broker_pb2.PingRequest(),
                         broker_pb2.PingResponse)
