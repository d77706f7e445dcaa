#!/usr/bin/env python3
"""A Hopper worker over HTTP, with Python's standard library only.

Long-polls a lane for messages, "processes" each (upper-cases its text;
a text that says "fail" fails), and acks it with the result, or nacks it
with the error so the broker retries it later and dead-letters it once
its attempts are used up. Stops after --count messages, or on Ctrl-C.

    python3 worker.py --api http://127.0.0.1:7452 --lane upper

The broker is hopperd started with --api HOST:PORT (docs/http.md). With
--auth-keys on the broker, put a token with the consume permission in
HOPPER_TOKEN.
"""

import argparse
import base64
import json
import os
import sys
import urllib.error
import urllib.request

WAIT_MS = 20000   # how long one claim waits for work (at most 30000)
LEASE_MS = 60000  # how long we may hold a message before it goes back


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


def process(text):
    """The work: anything that raises is a failed attempt."""
    if "fail" in text:
        raise ValueError(f"cannot process {text!r}")
    return text.upper()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--api", default="http://127.0.0.1:7452")
    ap.add_argument("--lane", default="upper")
    ap.add_argument("--count", type=int, default=0,
                    help="stop after this many messages (0: never)")
    args = ap.parse_args()

    done = 0
    while args.count == 0 or done < args.count:
        got = call(args.api, "Claim",
                   {"lane": args.lane, "max": 1, "leaseMs": LEASE_MS,
                    "waitMs": WAIT_MS, "consumer": "worker.py"},
                   timeout_s=WAIT_MS / 1000 + 60)
        for msg in got.get("messages", []):  # none when the wait ran out
            text = base64.b64decode(msg.get("payload", "")).decode()
            # The claim token proves we hold the message: it travels back
            # as it came, base64.
            held = {"id": msg["id"], "claimToken": msg["claimToken"]}
            try:
                result = process(text)
            except Exception as e:  # a failed attempt, retried later
                call(args.api, "Nack", dict(held, error=str(e)))
                print(f"nacked {msg['id']} {e}", flush=True)
            else:
                item = dict(held,
                            result=base64.b64encode(result.encode()).decode())
                call(args.api, "Ack", {"items": [item]})
                print(f"acked {msg['id']} {result}", flush=True)
            done += 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(0)
    except (RuntimeError, urllib.error.URLError) as e:
        print(f"worker.py: {e}", file=sys.stderr)
        sys.exit(1)
