#!/usr/bin/env python3
"""Writes frames.json and calls.json, the shared test vectors, from the
generated protobuf classes (not from either client, which both are
checked against them). Run from the build tree's environment:
  PYTHONPATH=build/asan/python python3 tests/vectors/make_vectors.py
The JSON is committed; rerun only to change a vector, and say why."""

import json
import os
import struct

from hopper.v1 import broker_pb2 as b
from hopper.v1 import envelope_pb2 as e

HERE = os.path.dirname(os.path.abspath(__file__))
ID1 = "01M92ZFH116C5727Q9B98YZP21"
ID2 = "01M92ZFX2M8ZTK0PCKKY2RK0QW"
TOK1 = bytes(range(16))
TOK2 = bytes(range(16, 32))
RID = "0123456789abcdef0123456789abcdef"


def hx(data):
    return data.hex()


def frame(sp_id, payload):
    return struct.pack(">QI", 4 + len(payload), sp_id | 0x80000000) + payload


def frames():
    body = b.EnqueueRequest(drafts=[b.Draft(lane="emails", payload=b"hello")])
    req = e.Request(method="/hopper.v1.Broker/Enqueue",
                    body=body.SerializeToString(), scope="acme",
                    deadline_ms=10000, request_id=RID)
    ok = e.Response(body=b.EnqueueResponse(
        results=[b.Enqueued(id=ID1)]).SerializeToString(), request_id=RID)
    lost = e.Response(status=e.Status(
        code=9, reason="LOST_CLAIM",
        message=f"claim on message {ID1} is lost: the lease expired"),
        request_id=RID)
    return [
        {"name": "handshake_req0",
         "meaning": "what a client sends first: SP, version 0, protocol "
                    "req0 (0x0030), two reserved bytes",
         "hex": "0053500000300000"},
        {"name": "handshake_rep0",
         "meaning": "what the broker answers: protocol rep0 (0x0031)",
         "hex": "0053500000310000"},
        {"name": "enqueue_request",
         "meaning": "an Enqueue of one draft (lane emails, payload hello) "
                    "in scope acme, 10 s deadline, SP request id 7: "
                    "8-byte length, header word 0x80000007, Request",
         "kind": "request", "sp_id": 7, "hex": hx(frame(7, req.SerializeToString())),
         "envelope": {"method": req.method, "scope": "acme", "token": "",
                      "deadline_ms": 10000, "request_id": RID,
                      "body": hx(req.body)}},
        {"name": "enqueue_reply",
         "meaning": "its OK reply: no status (code 0), the EnqueueResponse "
                    "with the new id, the request id echoed",
         "kind": "response", "sp_id": 7, "hex": hx(frame(7, ok.SerializeToString())),
         "response": {"code": 0, "reason": "", "message": "",
                      "request_id": RID, "body": hx(ok.body)}},
        {"name": "lost_claim_reply",
         "meaning": "a refusal: FAILED_PRECONDITION (9) with reason "
                    "LOST_CLAIM and a message for people, no body",
         "kind": "response", "sp_id": 0x1234, "hex": hx(frame(0x1234, lost.SerializeToString())),
         "response": {"code": 9, "reason": "LOST_CLAIM",
                      "message": lost.status.message, "request_id": RID,
                      "body": ""}},
    ]


def msg(**kw):
    return b.Message(**kw)


def calls():
    out = []

    def add(name, meaning, call, args, rpc, req, resp, expect, code=0,
            reason="", message=""):
        out.append({"name": name, "meaning": meaning, "call": call,
                    "args": args,
                    "request": {"method": "/hopper.v1.Broker/" + rpc,
                                "body": hx(req.SerializeToString())},
                    "response": {"code": code, "reason": reason,
                                 "message": message,
                                 "body": hx(resp.SerializeToString())
                                 if resp is not None else ""},
                    "expect": expect})

    add("enqueue", "one draft with a header and a dedupe key; the reply "
        "says it matched an earlier message", "enqueue",
        {"lane": "emails", "payload": "hello", "dedupe_key": "order-1",
         "headers": [["trace", "t1"]], "priority": 2},
        "Enqueue",
        b.EnqueueRequest(drafts=[b.Draft(
            lane="emails", payload=b"hello", dedupe_key="order-1",
            headers=[b.Header(key="trace", value="t1")], priority=2)]),
        b.EnqueueResponse(results=[b.Enqueued(id=ID1, duplicate=True)]),
        {"id": ID1, "duplicate": True})
    add("claim", "up to 2 messages, 30 s lease, long-poll 5 s; one comes "
        "back with its token", "claim",
        {"lane": "emails", "max": 2, "lease_ms": 30000, "wait_ms": 5000},
        "Claim",
        b.ClaimRequest(lane="emails", max=2, lease_ms=30000, wait_ms=5000),
        b.ClaimResponse(messages=[msg(
            id=ID1, state=b.CLAIMED, lane="emails", attempts=1,
            max_attempts=5, payload=b"hello", claim_token=TOK1,
            lease_expires_at_ms=1700000030000)]),
        {"messages": [{"id": ID1, "attempts": 1, "payload": "hello",
                       "token": hx(TOK1)}]})
    add("ack", "one claim with a result", "ack",
        {"id": ID1, "token": hx(TOK1), "result": "sent"}, "Ack",
        b.AckRequest(items=[b.AckItem(id=ID1, claim_token=TOK1,
                                      result=b"sent")]),
        b.AckResponse(), {})
    add("ack_lost_claim", "an ack whose lease ran out: the call fails with "
        "FAILED_PRECONDITION/LOST_CLAIM", "ack",
        {"id": ID1, "token": hx(TOK1), "result": ""}, "Ack",
        b.AckRequest(items=[b.AckItem(id=ID1, claim_token=TOK1)]), None,
        {"error": {"code": 9, "reason": "LOST_CLAIM"}}, code=9,
        reason="LOST_CLAIM",
        message=f"claim on message {ID1} is lost: the lease expired")
    add("ack_each", "a per-item ack of two claims with a follow-up: the "
        "first acked, the second lost, so no follow-up exists", "ack_each",
        {"items": [{"id": ID1, "token": hx(TOK1)},
                   {"id": ID2, "token": hx(TOK2)}],
         "followups": [{"lane": "next", "payload": "x"}]}, "Ack",
        b.AckRequest(items=[b.AckItem(id=ID1, claim_token=TOK1),
                            b.AckItem(id=ID2, claim_token=TOK2)],
                     followups=[b.Draft(lane="next", payload=b"x")],
                     per_item=True),
        b.AckResponse(items=[
            b.AckItemResult(),
            b.AckItemResult(code=9, reason="LOST_CLAIM",
                            message=f"claim on message {ID2} is lost: the "
                                    "lease expired")]),
        {"items": [{"code": 0}, {"code": 9, "reason": "LOST_CLAIM"}],
         "followups_done": False})
    add("nack_keep_attempt", "give a claim back without using an attempt, "
        "after 60 s (a snooze)", "nack",
        {"id": ID1, "token": hx(TOK1), "retry_in_ms": 60000,
         "keep_attempt": True}, "Nack",
        b.NackRequest(id=ID1, claim_token=TOK1, retry_in_ms=60000,
                      keep_attempt=True),
        b.NackResponse(retry_at_ms=1700000060000),
        {"dead": False, "retry_at_ms": 1700000060000})
    add("nack_dead_letter", "a permanent failure: a dead letter now",
        "nack", {"id": ID1, "token": hx(TOK1), "error": "bad input",
                 "dead_letter": True}, "Nack",
        b.NackRequest(id=ID1, claim_token=TOK1, error="bad input",
                      dead_letter=True),
        b.NackResponse(dead=True), {"dead": True, "retry_at_ms": 0})
    add("extend", "a heartbeat: the lease is 30 s from now again", "extend",
        {"id": ID1, "token": hx(TOK1), "lease_ms": 30000}, "Extend",
        b.ExtendRequest(id=ID1, claim_token=TOK1, lease_ms=30000),
        b.ExtendResponse(lease_expires_at_ms=1700000030000),
        {"lease_expires_at_ms": 1700000030000})
    add("get", "one message by id: delivered, with its result", "get",
        {"id": ID1}, "Get", b.GetRequest(id=ID1),
        b.GetResponse(message=msg(id=ID1, state=b.DELIVERED, lane="emails",
                                  attempts=1, result=b"sent")),
        {"id": ID1, "state": 4, "result": "sent"})
    return out


def main():
    for name, data in (("frames.json", frames()), ("calls.json", calls())):
        with open(os.path.join(HERE, name), "w") as f:
            json.dump(data, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
