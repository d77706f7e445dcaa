"""Worker: the worker runtime of libhopper (hopper_worker_*), in Python.

A claimer thread long-polls for as many messages as handler threads are
free; `concurrency` handler threads run handler(job) once per message; a
keeper thread extends each held lease every third of it and, after a
stop's grace, gives back what is still held. The handler settles its job
with job.ack(), job.retry(), job.fail() or job.snooze(); one that returns
without settling (or raises) gets a retry after the lane's backoff.

stop() stops the claiming: messages claimed but not started are given
back at once, running handlers get grace_ms to finish (job.stopping tells
them to hurry), and past it what is still held is given back and
job.cancelled turns true. Giving back is a nack with keep_attempt: it
uses no attempt and the message keeps its place in claim order. A broker
that cannot be reached makes the claimer back off (backoff_min_ms doubling
to backoff_max_ms, jittered) and a settle be retried while the lease
lasts: every such call is safe to repeat with the same claim token.
"""

import random
import threading
import time

from . import errors
from .client import AckItem
from .errors import Code, HopperError

_TRANSIENT = {
    Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED, Code.RESOURCE_EXHAUSTED,
    Code.ABORTED, Code.INTERNAL,
}
_KEEPER_TICK_S = 1.0


class Job:
    """One held message: .message (the claimed hopper.v1 Message, with
    its claim_token), .stopping, .cancelled, and the four settles."""

    def __init__(self, worker, message):
        self._w = worker
        self.message = message
        self._settled = False
        self._cancelled = False
        now = time.monotonic()
        self._extend_at = now + worker.lease_ms / 3000.0
        self._expires_at = now + worker.lease_ms / 1000.0
        self._extending = False

    @property
    def stopping(self):
        """The worker is stopping: finish soon, or the job is given back."""
        return self._w._stopping.is_set()

    @property
    def cancelled(self):
        """The claim is gone (given back, or found lost): abandon the work;
        settling raises LOST_CLAIM."""
        with self._w._cond:
            return self._cancelled

    def ack(self, result=b"", followups=None):
        """Done, with an optional result and follow-up drafts enqueued in
        the same commit; returns the follow-ups' Enqueued list."""
        return self._settle("ack", result=result, followups=followups)

    def retry(self, error="", delay_ms=0):
        """A failed attempt: again after delay_ms (0: the lane's backoff),
        or a dead letter when it was the last attempt."""
        return self._settle("retry", error=error, delay_ms=delay_ms)

    def fail(self, error=""):
        """A permanent failure: a dead letter now."""
        return self._settle("fail", error=error)

    def snooze(self, delay_ms):
        """Not now: pending again after delay_ms, no attempt used."""
        return self._settle("snooze", delay_ms=delay_ms)

    def _settle(self, kind, **args):
        w = self._w
        with w._cond:
            settled, cancelled = self._settled, self._cancelled
            self._settled = True
        if cancelled:
            raise HopperError(
                Code.FAILED_PRECONDITION, errors.LOST_CLAIM,
                f"claim on message {self.message.id} is lost: given back "
                "or expired",
            )
        if settled:
            raise HopperError(
                Code.FAILED_PRECONDITION, errors.ALREADY_SETTLED,
                f"message {self.message.id} was settled before",
            )
        return w._settle_retrying(self, kind, **args)


class Worker:
    """Worker(client, lane, handler, concurrency=1, ...): start(), stop(),
    wait(); or `with Worker(...) as w:` (started, stopped and waited for).

    handler(job) runs on a handler thread once per claimed message.
    on_error(what, err), when given, hears of every failed call of the
    runtime ("claim", "extend", "settle", "give back").
    """

    def __init__(self, client, lane, handler, *, concurrency=1, lease_ms=0,
                 wait_ms=0, grace_ms=0, target="", consumer="",
                 backoff_min_ms=0, backoff_max_ms=0, on_error=None):
        if not lane or handler is None:
            raise HopperError(Code.INVALID_ARGUMENT, errors.BAD_ARGUMENT,
                              "a worker needs a lane and a handler")
        if not 0 <= concurrency <= 1000 or not 0 <= wait_ms <= 30000:
            raise HopperError(Code.INVALID_ARGUMENT, errors.BAD_ARGUMENT,
                              "concurrency 1-1000, wait_ms up to 30000")
        if lease_ms and lease_ms < 300:
            raise HopperError(Code.INVALID_ARGUMENT, errors.BAD_ARGUMENT,
                              "lease_ms under 300 leaves no time for "
                              "heartbeats")
        self.client = client
        self.lane = lane
        self.handler = handler
        self.concurrency = concurrency or 1
        self.lease_ms = lease_ms or 30000
        self.wait_ms = wait_ms or 5000
        self.grace_ms = grace_ms or 10000
        self.target = target
        self.consumer = consumer
        self.backoff_min_ms = backoff_min_ms or 100
        self.backoff_max_ms = max(backoff_max_ms or 5000, self.backoff_min_ms)
        self.on_error = on_error
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._queued = []          # _cond
        self._held = set()         # _cond: queued and running jobs
        self._free = self.concurrency  # _cond
        self._claimer_done = False
        self._handlers_done = 0
        self._grace_end = None
        self._fatal = None
        self._threads = []
        self.counts = dict.fromkeys(
            ("claimed", "acked", "retried", "failed", "snoozed",
             "given_back", "lost", "extended", "errors"), 0)

    # ---- lifecycle --------------------------------------------------------

    def start(self):
        specs = [(self._handler_main, f"hopper-handler-{i}")
                 for i in range(self.concurrency)]
        specs += [(self._keeper_main, "hopper-keeper"),
                  (self._claimer_main, "hopper-claimer")]
        for fn, name in specs:
            t = threading.Thread(target=fn, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self):
        """Asks the worker to stop and returns at once. Any thread, and a
        signal handler (Python runs those on the main thread, and the
        lock taken here is reentrant)."""
        self._stopping.set()
        with self._cond:
            self._cond.notify_all()

    def wait(self):
        """Waits until stopped; raises the HopperError that stopped the
        worker by itself (a claim refused for good), if any."""
        for t in self._threads:
            t.join()
        if self._fatal is not None:
            raise self._fatal

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        self.wait()

    # ---- helpers ----------------------------------------------------------

    def _count(self, key):
        with self._cond:
            self.counts[key] += 1

    def _report(self, what, err):
        self._count("errors")
        if self.on_error is not None:
            self.on_error(what, err)

    def _backoff(self, cur):
        nxt = self.backoff_min_ms if cur == 0 else min(
            cur * 2, self.backoff_max_ms)
        return nxt, (nxt - nxt / 4 * random.random()) / 1000.0

    def _settle_once(self, job, kind, result=b"", followups=None, error="",
                     delay_ms=0):
        m, c = job.message, self.client
        if kind == "ack":
            return c.ack_many([AckItem(m.id, m.claim_token, result)],
                              followups=followups)
        return c.nack(m.id, m.claim_token, error=error, retry_in_ms=delay_ms,
                      keep_attempt=kind in ("snooze", "give back"),
                      dead_letter=kind == "fail")

    def _settle_retrying(self, job, kind, **args):
        backoff = 0
        counted = {"ack": "acked", "retry": "retried", "fail": "failed",
                   "snooze": "snoozed", "give back": "given_back"}[kind]
        while True:
            try:
                out = self._settle_once(job, kind, **args)
            except HopperError as e:
                if e.code == Code.FAILED_PRECONDITION:
                    self._count("lost")
                    raise
                if e.code not in _TRANSIENT:
                    raise
                self._report("settle", e)
                backoff, wait = self._backoff(backoff)
                until = time.monotonic() + wait
                with self._cond:
                    while True:
                        give_up = (until >= job._expires_at or (
                            kind != "give back" and job._cancelled))
                        left = until - time.monotonic()
                        if give_up or left <= 0:
                            break
                        self._cond.wait(left)
                if give_up:
                    raise
                continue
            self._count(counted)
            return out

    def _give_back(self, job):
        with self._cond:
            if job._settled:
                return
            job._settled = job._cancelled = True
        try:
            self._settle_retrying(job, "give back")
        except HopperError as e:
            if e.code != Code.FAILED_PRECONDITION:
                self._report("give back", e)

    # ---- threads ----------------------------------------------------------

    def _claimer_main(self):
        backoff = 0
        while True:
            with self._cond:
                while not self._stopping.is_set() and self._free == 0:
                    self._cond.wait(_KEEPER_TICK_S)
                want = self._free
            if self._stopping.is_set():
                break
            try:
                msgs = self.client.claim(
                    self.lane, max=want, lease_ms=self.lease_ms,
                    wait_ms=self.wait_ms, target=self.target,
                    consumer=self.consumer)
            except HopperError as e:
                self._report("claim", e)
                if e.code not in _TRANSIENT:
                    self._fatal = e
                    self.stop()
                    break
                backoff, wait = self._backoff(backoff)
                self._stopping.wait(wait)
                continue
            backoff = 0
            extra = []
            with self._cond:
                self.counts["claimed"] += len(msgs)
                for m in msgs:
                    job = Job(self, m)
                    if self._free > 0:
                        self._free -= 1
                        self._held.add(job)
                        self._queued.append(job)
                    else:
                        extra.append(job)
                self._cond.notify_all()
            for job in extra:
                self._give_back(job)
        with self._cond:
            self._claimer_done = True
            self._cond.notify_all()

    def _run(self, job):
        try:
            self.handler(job)
        except Exception as e:  # a handler's bug: retried, and said
            self._report("handler", HopperError(
                Code.UNKNOWN, "HANDLER_RAISED", repr(e)))
        with self._cond:
            done = job._settled or job._cancelled
        if not done:
            try:
                job._settle("retry", error="the handler returned without "
                            "settling the message")
            except HopperError as e:
                if e.code != Code.FAILED_PRECONDITION:
                    self._report("settle", e)

    def _handler_main(self):
        while True:
            with self._cond:
                while not self._queued and not (
                        self._stopping.is_set() and self._claimer_done):
                    self._cond.wait(_KEEPER_TICK_S)
                if not self._queued:
                    self._handlers_done += 1
                    self._cond.notify_all()
                    return
                job = self._queued.pop(0)
            if self._stopping.is_set():
                self._give_back(job)  # claimed, never started
            else:
                self._run(job)
            with self._cond:
                self._held.discard(job)
                self._free += 1
                self._cond.notify_all()

    def _extend(self, job):
        m = job.message
        sent = time.monotonic()
        try:
            self.client.extend(m.id, m.claim_token, self.lease_ms)
        except HopperError as e:
            self._report("extend", e)
            with self._cond:
                job._extending = False
                if e.code in (Code.FAILED_PRECONDITION, Code.NOT_FOUND):
                    if not job._settled:
                        self.counts["lost"] += 1
                        job._cancelled = True
                else:
                    job._extend_at = time.monotonic() + min(
                        self.lease_ms / 10000.0, _KEEPER_TICK_S)
            return
        with self._cond:
            job._extending = False
            self.counts["extended"] += 1
            job._expires_at = sent + self.lease_ms / 1000.0
            job._extend_at = sent + self.lease_ms / 3000.0

    def _keeper_main(self):
        while True:
            now = time.monotonic()
            due, back = [], []
            with self._cond:
                if self._stopping.is_set() and self._grace_end is None:
                    self._grace_end = now + self.grace_ms / 1000.0
                    self._cond.notify_all()
                if (self._grace_end is not None and self._claimer_done and
                        self._handlers_done == self.concurrency):
                    return
                nxt = now + _KEEPER_TICK_S
                for job in self._held:
                    if job._settled or job._cancelled or job._extending:
                        continue
                    if job._extend_at <= now:
                        job._extending = True
                        due.append(job)
                    else:
                        nxt = min(nxt, job._extend_at)
                    if self._grace_end is not None and now >= self._grace_end:
                        back.append(job)
                if self._grace_end is not None and self._grace_end > now:
                    nxt = min(nxt, self._grace_end)
            for job in due:
                self._extend(job)
            for job in back:
                self._give_back(job)
            with self._cond:
                left = nxt - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
