"""Status codes and the one exception every failed call raises."""

import enum


class Code(enum.IntEnum):
    """gRPC's status codes, as the broker sends them."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


# Reasons the client reports itself, as libhopper does (docs/protocol.md):
# the broker's own arrive in the reply.
TIMEOUT = "TIMEOUT"
UNREACHABLE = "UNREACHABLE"
BAD_RESPONSE = "BAD_RESPONSE"
BAD_ARGUMENT = "BAD_ARGUMENT"
BAD_URL = "BAD_URL"
BAD_TLS_CONFIG = "BAD_TLS_CONFIG"
ALREADY_SETTLED = "ALREADY_SETTLED"
LOST_CLAIM = "LOST_CLAIM"


def code_name(code):
    """'NOT_FOUND' for 5; 'UNKNOWN_CODE' outside 0-16."""
    try:
        return Code(code).name
    except ValueError:
        return "UNKNOWN_CODE"


class HopperError(Exception):
    """A call that did not succeed: code (a Code), reason (a stable word
    such as LOST_CLAIM) and message (for people)."""

    def __init__(self, code, reason, message):
        super().__init__(f"{code_name(code)} {reason or '-'}: {message}")
        try:
            self.code = Code(code)
        except ValueError:
            self.code = Code.UNKNOWN
        self.reason = reason
        self.message = message
