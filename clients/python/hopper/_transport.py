"""The SP request/reply transport (docs/protocol.md, "Transport"), in the
caller's thread, as libhopper's transport.c does it.

A call takes an idle connection (or dials one), writes its frame, reads
the reply within the call's deadline and puts the connection back; threads
never share a connection. Running out of time before a connection is up is
UNAVAILABLE/UNREACHABLE, and so is a refused connection, at once; running
out while waiting for the reply is DEADLINE_EXCEEDED/TIMEOUT (the broker
may or may not have acted). A connection that breaks under a call costs
the call nothing: the same frame, with the same request id, goes out on a
new connection (a reused one is always retried, a new one once), and the
broker answers a repeat of a mutating request from its replay cache.
"""

import secrets
import socket
import ssl
import struct
import threading
import time
from urllib.parse import urlsplit

from . import errors
from ._proto import envelope_pb2
from .errors import Code, HopperError

DEFAULT_URL = "tcp://127.0.0.1:7450"
HANDSHAKE_REQ = bytes([0x00, 0x53, 0x50, 0x00, 0x00, 0x30, 0x00, 0x00])
HANDSHAKE_REP = bytes([0x00, 0x53, 0x50, 0x00, 0x00, 0x31, 0x00, 0x00])
SP_ID_BIT = 0x80000000
MAX_IDLE = 16
DEFAULT_MAX_REPLY = 64 << 20


class _Lost(Exception):
    """The connection broke (reset, closed)."""


class _Timeout(Exception):
    """The deadline passed."""


class _Bad(Exception):
    """The peer broke the protocol."""


def new_request_id():
    """16 random bytes in hex. libhopper's sort in call order instead
    (docs/protocol.md), which saves the broker page writes; a module-level
    counter here would repeat ids in a forked child, where a Client may
    well be made anew."""
    return secrets.token_hex(16)


def pack_request(method, body, scope, token, deadline_ms, request_id):
    """The serialized hopper.v1.Request."""
    req = envelope_pb2.Request(
        method=method,
        body=body,
        scope=scope or "",
        token=token or "",
        deadline_ms=deadline_ms,
        request_id=request_id,
    )
    return req.SerializeToString()


def frame_request(sp_id, envelope):
    """An SP request message on the wire: length, header (one word, the
    request id with its high bit set), envelope."""
    return struct.pack(">QI", 4 + len(envelope), sp_id | SP_ID_BIT) + envelope


def unframe(frame):
    """(sp_id, envelope) from one whole message as framed on the wire;
    the reverse of frame_request for a direct (one-word) header."""
    if len(frame) < 12:
        raise ValueError("a frame holds at least a length and one word")
    (length,) = struct.unpack(">Q", frame[:8])
    if length != len(frame) - 8:
        raise ValueError("length does not match the frame")
    (word,) = struct.unpack(">I", frame[8:12])
    if not word & SP_ID_BIT:
        raise ValueError("header word without its high bit")
    return word & ~SP_ID_BIT, frame[12:]


def open_reply(data, request_id):
    """Decodes a Response and checks it answers request_id; returns it with
    an OK status, raises HopperError otherwise."""
    resp = envelope_pb2.Response()
    try:
        resp.ParseFromString(data)
    except Exception:  # protobuf's DecodeError, and anything it raises
        raise HopperError(
            Code.INTERNAL,
            errors.BAD_RESPONSE,
            "cannot decode the response envelope",
        ) from None
    echoed = resp.request_id == request_id
    if resp.status.code != 0:
        # A broker that could not decode our envelope cannot echo the id.
        if not echoed and resp.request_id:
            raise HopperError(
                Code.INTERNAL, errors.BAD_RESPONSE, "request id not echoed"
            )
        raise HopperError(
            resp.status.code, resp.status.reason, resp.status.message
        )
    if not echoed:
        raise HopperError(
            Code.INTERNAL, errors.BAD_RESPONSE, "request id not echoed"
        )
    return resp


class Target:
    """Where to connect, parsed once from the URL."""

    def __init__(self, url, tls_ca=None, tls_server_name=None,
                 tls_cert=None, tls_key=None):
        if url is None:
            url = DEFAULT_URL
        if url == "":
            raise HopperError(
                Code.INVALID_ARGUMENT, errors.BAD_URL, "empty broker URL"
            )
        self.url = url
        parts = urlsplit(url)
        scheme = parts.scheme
        if scheme not in ("tcp", "tcp4", "tcp6", "tls+tcp"):
            raise HopperError(
                Code.INVALID_ARGUMENT,
                errors.BAD_URL,
                f"unsupported URL '{url}': tcp://, tcp4://, tcp6:// or "
                "tls+tcp://",
            )
        try:
            port = parts.port
        except ValueError:
            port = None
        if not parts.hostname or port is None or parts.path not in ("", "/"):
            raise HopperError(
                Code.INVALID_ARGUMENT,
                errors.BAD_URL,
                f"malformed URL '{url}': want SCHEME://HOST:PORT",
            )
        self.host = parts.hostname
        self.port = port
        self.family = {
            "tcp4": socket.AF_INET,
            "tcp6": socket.AF_INET6,
        }.get(scheme, socket.AF_UNSPEC)
        self.tls = None
        if scheme == "tls+tcp":
            if not tls_ca:
                raise HopperError(
                    Code.INVALID_ARGUMENT,
                    errors.BAD_TLS_CONFIG,
                    "tls+tcp:// needs a CA file (tls_ca)",
                )
            try:
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.minimum_version = ssl.TLSVersion.TLSv1_2
                ctx.load_verify_locations(cafile=tls_ca)
                if tls_cert:
                    ctx.load_cert_chain(tls_cert, tls_key or tls_cert)
            except (OSError, ssl.SSLError) as e:
                raise HopperError(
                    Code.INVALID_ARGUMENT,
                    errors.BAD_TLS_CONFIG,
                    f"cannot load the TLS files: {e}",
                ) from None
            self.tls = ctx
            self.server_name = tls_server_name or self.host


class Conn:
    """One connection, SP handshake done."""

    def __init__(self, sock):
        self.sock = sock
        self.next_id = secrets.randbelow(SP_ID_BIT)
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def _left(deadline):
    left = deadline - time.monotonic()
    if left <= 0:
        raise _Timeout()
    return left


def _send_all(sock, data, deadline):
    view = memoryview(data)
    while view:
        sock.settimeout(_left(deadline))
        try:
            n = sock.send(view)
        except socket.timeout:
            raise _Timeout() from None
        except (ssl.SSLError, OSError):
            raise _Lost() from None
        view = view[n:]


def _recv_some(sock, deadline):
    sock.settimeout(_left(deadline))
    try:
        data = sock.recv(65536)
    except socket.timeout:
        raise _Timeout() from None
    except (ssl.SSLError, OSError):
        raise _Lost() from None
    if not data:
        raise _Lost()
    return data


def _recv_exact(conn, n, deadline):
    while len(conn.buf) < n:
        conn.buf += _recv_some(conn.sock, deadline)
    data, conn.buf = conn.buf[:n], conn.buf[n:]
    return data


def dial(target, deadline):
    """A connection with the TLS and SP handshakes done, or HopperError
    UNAVAILABLE/UNREACHABLE (refused at once, or none by the deadline)."""

    def unreachable(why):
        return HopperError(
            Code.UNAVAILABLE,
            errors.UNREACHABLE,
            f"cannot reach broker at '{target.url}': {why}",
        )

    try:
        infos = socket.getaddrinfo(
            target.host, target.port, target.family, socket.SOCK_STREAM
        )
    except socket.gaierror as e:
        raise unreachable(f"cannot resolve '{target.host}': {e}") from None
    last = "no address"
    for family, kind, proto, _, addr in infos:
        sock = socket.socket(family, kind, proto)
        try:
            try:
                sock.settimeout(_left(deadline))
            except _Timeout:
                sock.close()
                raise unreachable("no connection within the timeout") from None
            sock.connect(addr)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if target.tls is not None:
                sock = target.tls.wrap_socket(
                    sock, server_hostname=target.server_name
                )
            conn = Conn(sock)
            _send_all(sock, HANDSHAKE_REQ, deadline)
            if _recv_exact(conn, 8, deadline) != HANDSHAKE_REP:
                conn.close()
                raise unreachable("the peer is not a rep0 (SP) broker")
            return conn
        except socket.timeout:
            sock.close()
            last = "no connection within the timeout"
        except ssl.SSLError as e:
            sock.close()
            last = f"TLS handshake failed: {e}"
        except ConnectionRefusedError:
            sock.close()
            last = "connection refused"
        except (_Timeout, _Lost, OSError) as e:
            sock.close()
            last = {
                _Timeout: "no connection within the timeout",
                _Lost: "the connection was closed during the handshake",
            }.get(type(e), str(e))
    raise unreachable(last)


class Transport:
    """The idle connections of one client and its round trip."""

    def __init__(self, target, max_reply=DEFAULT_MAX_REPLY):
        self.target = target
        self.max_reply = max_reply
        self.lock = threading.Lock()
        self.idle = []

    def close(self):
        with self.lock:
            idle, self.idle = self.idle, []
        for k in idle:
            k.close()

    def _take(self):
        with self.lock:
            return self.idle.pop() if self.idle else None

    def _put(self, k):
        with self.lock:
            if len(self.idle) < MAX_IDLE:
                self.idle.append(k)
                return
        k.close()

    def _exchange(self, k, envelope, request_id, deadline, sent):
        sp_id = k.next_id
        k.next_id = (k.next_id + 1) & ~SP_ID_BIT
        _send_all(k.sock, frame_request(sp_id, envelope), deadline)
        sent[0] = True
        head = _recv_exact(k, 8, deadline)
        (length,) = struct.unpack(">Q", head)
        if length < 4 or length > self.max_reply:
            raise _Bad()
        msg = _recv_exact(k, length, deadline)
        (word,) = struct.unpack(">I", msg[:4])
        if word != sp_id | SP_ID_BIT or k.buf:
            raise _Bad()  # another request's reply, or more than one reply
        return open_reply(msg[4:], request_id)

    def roundtrip(self, method, body, scope, token, timeout_s, deadline_ms):
        """Sends one request and returns the OK Response; raises
        HopperError otherwise."""
        request_id = new_request_id()
        envelope = pack_request(
            method, body, scope, token, deadline_ms, request_id
        )
        deadline = time.monotonic() + timeout_s
        resends = 0
        k = self._take()
        while True:
            fresh = k is None
            if fresh:
                k = dial(self.target, deadline)
            sent = [False]
            try:
                resp = self._exchange(k, envelope, request_id, deadline, sent)
            except HopperError:
                self._put(k)  # a whole reply came: the connection is fine
                raise
            except _Lost:
                k.close()
                k = None
                if (not fresh or resends < 1) and time.monotonic() < deadline:
                    if fresh:
                        resends += 1
                    continue
                raise HopperError(
                    Code.UNAVAILABLE,
                    errors.UNREACHABLE,
                    f"cannot reach broker at '{self.target.url}': the "
                    "connection was lost",
                ) from None
            except _Timeout:
                k.close()
                if sent[0]:
                    raise HopperError(
                        Code.DEADLINE_EXCEEDED,
                        errors.TIMEOUT,
                        f"no reply from broker at '{self.target.url}' "
                        f"within {int(timeout_s * 1000)} ms",
                    ) from None
                raise HopperError(
                    Code.UNAVAILABLE,
                    errors.UNREACHABLE,
                    f"cannot reach broker at '{self.target.url}': the "
                    "request could not be sent within the timeout",
                ) from None
            except _Bad:
                k.close()
                raise HopperError(
                    Code.INTERNAL,
                    errors.BAD_RESPONSE,
                    "a reply that breaks the SP protocol",
                ) from None
            self._put(k)
            return resp
