#!/usr/bin/env python3
"""A Hopper producer over HTTP, with Python's standard library only.

Enqueues one message per line of text given (or read from stdin), each
with a dedupe key so that running it again enqueues nothing twice, and
with --await waits for each message's reply: the result a worker acked it
with (worker.py), or its error if it became a dead letter.

    python3 producer.py --api http://127.0.0.1:7452 --lane upper hello world
    python3 producer.py --api http://127.0.0.1:7452 --lane upper --await hi
    python3 producer.py --lane upper --await --max-attempts 1 "please fail"

The broker is hopperd started with --api HOST:PORT (docs/http.md). With
--auth-keys on the broker, put a token with the produce permission in
HOPPER_TOKEN. Exit status 0 when every message was enqueued (and, with
--await, delivered), 1 otherwise.
"""

import argparse
import base64
import json
import os
import sys
import urllib.error
import urllib.request

AWAIT_WAIT_MS = 30000  # the broker's cap for one Await


def call(api, method, body, timeout_s=60):
    """POSTs body (a dict) to one rpc; returns the answer (a dict) or
    raises RuntimeError with Connect's error code, reason and message."""
    headers = {"Content-Type": "application/json"}
    token = os.environ.get("HOPPER_TOKEN")
    if token:
        headers["Authorization"] = "Bearer " + token
    req = urllib.request.Request(
        f"{api}/hopper.v1.Broker/{method}",
        data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            return json.load(resp)
    except urllib.error.HTTPError as e:
        err = json.load(e)
        reason = next((d["debug"]["reason"] for d in err.get("details", [])
                       if "debug" in d), "")
        raise RuntimeError(
            f"{method}: {err['code']} {reason}: {err.get('message', '')}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--api", default="http://127.0.0.1:7452")
    ap.add_argument("--lane", default="upper")
    ap.add_argument("--await", dest="wait", action="store_true",
                    help="wait for each message's reply")
    ap.add_argument("--max-attempts", type=int, default=0,
                    help="claims before a message is dead (0: the lane's)")
    ap.add_argument("text", nargs="*", help="one message each (else stdin)")
    args = ap.parse_args()
    texts = args.text or [line.rstrip("\n") for line in sys.stdin]

    drafts = [{
        "lane": args.lane,
        # bytes fields travel as base64 in protobuf's JSON mapping
        "payload": base64.b64encode(t.encode()).decode(),
        "dedupeKey": "producer.py:" + t,
        "maxAttempts": args.max_attempts,
    } for t in texts]
    results = call(args.api, "Enqueue", {"drafts": drafts})["results"]
    ok = True
    for text, r in zip(texts, results):
        print(f"enqueued {r['id']}{' (duplicate)' if r.get('duplicate') else ''}"
              f" {text}")
        if not args.wait:
            continue
        msg = None
        while msg is None:  # an Await answers empty when its wait runs out
            got = call(args.api, "Await",
                       {"id": r["id"], "waitMs": AWAIT_WAIT_MS},
                       timeout_s=AWAIT_WAIT_MS / 1000 + 60)
            msg = got.get("message")
        if msg["state"] == "DELIVERED":
            reply = base64.b64decode(msg.get("result", "")).decode()
            print(f"reply {r['id']} {reply}")
        else:
            ok = False
            print(f"dead {r['id']} {msg.get('lastError', '')}")
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (RuntimeError, urllib.error.URLError) as e:
        print(f"producer.py: {e}", file=sys.stderr)
        sys.exit(1)
