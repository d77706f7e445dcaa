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


# The reason words, to compare with HopperError.reason: the broker's (they
# arrive in the reply) and those the client reports itself, as libhopper
# does (docs/protocol.md), under the code each usually comes with. The
# block is generated from the broker's list (src/common/reasons.def) by
# scripts/gen-reasons.sh, and reasons_test fails when the two differ.
# BEGIN reasons (generated from src/common/reasons.def: do not edit)
# INVALID_ARGUMENT
BAD_ENVELOPE = "BAD_ENVELOPE"
BAD_BODY = "BAD_BODY"
NUL_IN_STRING = "NUL_IN_STRING"
BAD_NAME = "BAD_NAME"
BAD_ID = "BAD_ID"
BAD_CLAIM_TOKEN = "BAD_CLAIM_TOKEN"
BAD_PRIORITY = "BAD_PRIORITY"
BAD_MAX_ATTEMPTS = "BAD_MAX_ATTEMPTS"
BAD_LEASE = "BAD_LEASE"
BAD_WAIT = "BAD_WAIT"
BAD_DELAY = "BAD_DELAY"
BAD_DEDUPE_KEY = "BAD_DEDUPE_KEY"
BAD_HEADER = "BAD_HEADER"
BAD_CURSOR = "BAD_CURSOR"
BAD_LIMIT = "BAD_LIMIT"
BAD_STATE = "BAD_STATE"
BAD_SETTING = "BAD_SETTING"
BAD_CONSUMER = "BAD_CONSUMER"
BAD_ERROR_TEXT = "BAD_ERROR_TEXT"
BAD_NACK = "BAD_NACK"
EMPTY_BATCH = "EMPTY_BATCH"
BATCH_TOO_LARGE = "BATCH_TOO_LARGE"
PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
RESULT_TOO_LARGE = "RESULT_TOO_LARGE"
DUPLICATE_ID = "DUPLICATE_ID"
REQUEST_ID_REUSED = "REQUEST_ID_REUSED"
BAD_JSON = "BAD_JSON"
UNKNOWN_FIELD = "UNKNOWN_FIELD"
BAD_CONTENT_TYPE = "BAD_CONTENT_TYPE"
BAD_HTTP = "BAD_HTTP"
BAD_ARGUMENT = "BAD_ARGUMENT"
BAD_URL = "BAD_URL"
BAD_TLS_CONFIG = "BAD_TLS_CONFIG"

# DEADLINE_EXCEEDED
DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
TIMEOUT = "TIMEOUT"

# NOT_FOUND
NO_MESSAGE = "NO_MESSAGE"
NO_LANE = "NO_LANE"

# ALREADY_EXISTS
BACKUP_EXISTS = "BACKUP_EXISTS"

# PERMISSION_DENIED
NOT_IN_SCOPE = "NOT_IN_SCOPE"
NO_PERMISSION = "NO_PERMISSION"
NEEDS_ALL_SCOPES = "NEEDS_ALL_SCOPES"

# RESOURCE_EXHAUSTED
MAP_FULL = "MAP_FULL"
DISK_FULL = "DISK_FULL"
READERS_FULL = "READERS_FULL"
TOO_MANY_WAITERS = "TOO_MANY_WAITERS"
DECODE_BUDGET = "DECODE_BUDGET"
BODY_TOO_LARGE = "BODY_TOO_LARGE"
TOO_MANY_REQUESTS = "TOO_MANY_REQUESTS"
NO_MEMORY = "NO_MEMORY"
NO_DESCRIPTORS = "NO_DESCRIPTORS"
NO_THREAD = "NO_THREAD"

# FAILED_PRECONDITION
LOST_CLAIM = "LOST_CLAIM"
NOT_DEAD = "NOT_DEAD"
BACKUP_DISABLED = "BACKUP_DISABLED"
BACKUP_RUNNING = "BACKUP_RUNNING"
ALREADY_SETTLED = "ALREADY_SETTLED"

# UNIMPLEMENTED
UNKNOWN_METHOD = "UNKNOWN_METHOD"

# INTERNAL
STORE_ERROR = "STORE_ERROR"
IO_ERROR = "IO_ERROR"
BAD_RESPONSE = "BAD_RESPONSE"
BAD_METHOD = "BAD_METHOD"
NO_RANDOMNESS = "NO_RANDOMNESS"

# UNAVAILABLE
SHUTTING_DOWN = "SHUTTING_DOWN"
BUSY = "BUSY"
UNREACHABLE = "UNREACHABLE"

# DATA_LOSS
CORRUPT_RECORD = "CORRUPT_RECORD"

# UNAUTHENTICATED
NO_TOKEN = "NO_TOKEN"
BAD_TOKEN = "BAD_TOKEN"
UNKNOWN_KEY = "UNKNOWN_KEY"
BAD_SIGNATURE = "BAD_SIGNATURE"
TOKEN_EXPIRED = "TOKEN_EXPIRED"

# CANCELLED
CLOSED = "CLOSED"
# END reasons


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
