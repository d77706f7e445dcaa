"""hopper: the Python client of the Hopper message broker.

Pure Python over the broker's native protocol (protobuf in NNG's SP
request/reply framing, docs/protocol.md), with libhopper's semantics,
errors and retry rules:

    import hopper
    c = hopper.Client("tcp://127.0.0.1:7450", token=None, scope=None)
    c.enqueue("emails", b"hello", dedupe_key="order-1234")
    for m in c.claim("emails", max=10, lease_ms=30000, wait_ms=5000):
        c.ack(m.id, m.claim_token)

and hopper.Worker for the claim loop with heartbeats (hopper/worker.py).
"""

import pkgutil

# The generated hopper.v1 modules live beside this package once
# installed, or in the build tree's python/hopper during the tests.
__path__ = pkgutil.extend_path(__path__, __name__)  # noqa: F821

from .client import AckItem, Client, Enqueued, draft  # noqa: E402
from .errors import Code, HopperError, code_name  # noqa: E402
from .worker import Job, Worker  # noqa: E402

__version__ = "0.1.0"
__all__ = [
    "AckItem",
    "Client",
    "Code",
    "Enqueued",
    "HopperError",
    "Job",
    "Worker",
    "code_name",
    "draft",
]
