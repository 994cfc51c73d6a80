"""The hostile registry's behaviours: functions that answer one request, badly on purpose.

A :data:`Behaviour` takes an :class:`Exchange` (the request as it arrived, plus raw ways
to answer: headers, body bytes, a stall, a TCP reset) and answers it. The ready-made ones
below cover what a registry client must survive: wrong digests, bodies shorter or longer
than their Content-Length, wrong media types, Bearer challenges, redirects, N failures
then success, 429 with Retry-After, stalls, connection resets, Range-aware blobs and
schema-1 manifests. :func:`sequence` composes them over successive requests.
"""

from __future__ import annotations

import json
import re
import socket
import struct
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler

from tests.registry.httpd import RecordedRequest
from tests.registry.model import Blob, sha256

__all__ = [
    "SCHEMA1_MEDIA_TYPE", "STALL_SECONDS", "Behaviour", "Exchange", "bearer_challenge", "blob",
    "error", "fail_then", "manifest", "overlong", "ranged", "rate_limited", "redirect",
    "reset_mid_body", "respond", "schema1_manifest", "sequence", "stall_after_headers",
    "stall_mid_body", "token", "truncated", "wrong_digest", "wrong_media_type",
]

SCHEMA1_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v1+prettyjws"
STALL_SECONDS = 120.0  # a stall ends sooner when the server stops


class Exchange:
    """One request being answered: what arrived, and raw ways to answer it."""

    def __init__(self, handler: BaseHTTPRequestHandler, request: RecordedRequest,
                 closing: threading.Event) -> None:
        self.request = request
        self.closing = closing  # set when the server stops: stalls end
        self.responded = False
        self._handler = handler

    def send_head(self, status: int, headers: Mapping[str, str]) -> None:
        self._handler.send_response(status)
        for name, value in headers.items():
            self._handler.send_header(name, value)
        self._handler.end_headers()
        self._handler.wfile.flush()
        self.responded = True

    def write(self, data: bytes) -> None:
        """Body bytes (dropped for HEAD, whose answer has headers only)."""
        if self.request.method != "HEAD" and data:
            self._handler.wfile.write(data)
            self._handler.wfile.flush()

    def close(self) -> None:
        """Close the connection after this answer (its framing can no longer be trusted)."""
        self._handler.close_connection = True

    def reset(self) -> None:
        """Abort the connection with a TCP RST (SO_LINGER 0), as a crashing peer would."""
        connection = self._handler.connection
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        connection.close()
        self.close()

    def stall(self, seconds: float = STALL_SECONDS) -> None:
        """Send nothing for ``seconds`` (or until the server stops)."""
        self.closing.wait(seconds)


Behaviour = Callable[[Exchange], None]


# ---------------------------------------------------------------------- behaviours


def respond(body: bytes = b"", status: int = 200, *, content_type: str | None = None,
            digest: str | bool = False, headers: Mapping[str, str] | None = None,
            content_length: int | None = None) -> Behaviour:
    """A plain answer. ``digest=True`` sends the body's true Docker-Content-Digest, a
    string sends that one; ``content_length`` other than ``len(body)`` lies about framing
    (and closes the connection after)."""
    def behave(exchange: Exchange) -> None:
        sent = {"Content-Length": str(len(body) if content_length is None
                                      else content_length)}
        if content_type:
            sent["Content-Type"] = content_type
        if digest:
            sent["Docker-Content-Digest"] = sha256(body) if digest is True else str(digest)
        exchange.send_head(status, {**sent, **(headers or {})})
        exchange.write(body)
        if content_length is not None and content_length != len(body):
            exchange.close()
    return behave


def blob(content: Blob | bytes) -> Behaviour:
    """A blob, honestly served."""
    data = content.read() if isinstance(content, Blob) else content
    return respond(data, content_type="application/octet-stream", digest=True)


def manifest(content: Blob, content_type: str | None = None) -> Behaviour:
    """A manifest (or index) with its media type as Content-Type and its true digest."""
    return respond(content.read(), content_type=content_type or content.media_type,
                   digest=True)


def wrong_media_type(content: Blob, content_type: str) -> Behaviour:
    """The right bytes under another Content-Type (e.g. an index where a manifest was)."""
    return manifest(content, content_type)


def wrong_digest(data: bytes, content_type: str = "application/octet-stream") -> Behaviour:
    """The bytes with a Docker-Content-Digest that is not theirs."""
    return respond(data, content_type=content_type, digest=sha256(data + b"tampered"))


def truncated(data: bytes, sent: int) -> Behaviour:
    """Content-Length says ``len(data)``, only ``sent`` bytes come, then the connection ends."""
    return respond(data[:sent], content_type="application/octet-stream",
                   content_length=len(data))


def overlong(data: bytes, extra: bytes = b"trailing garbage") -> Behaviour:
    """Content-Length says ``len(data)`` but ``data + extra`` is written."""
    return respond(data + extra, content_type="application/octet-stream",
                   content_length=len(data))


def error(status: int, code: str = "UNKNOWN", message: str = "hostile registry",
          headers: Mapping[str, str] | None = None) -> Behaviour:
    """A distribution-spec error body: ``{"errors": [{"code", "message"}]}``."""
    body = json.dumps({"errors": [{"code": code, "message": message}]}).encode()
    return respond(body, status, content_type="application/json", headers=headers)


def sequence(*behaviours: Behaviour) -> Behaviour:
    """The n-th request gets the n-th behaviour; the last one repeats."""
    if not behaviours:
        raise ValueError("sequence() needs at least one behaviour")
    lock = threading.Lock()
    calls = [0]

    def behave(exchange: Exchange) -> None:
        with lock:
            index = min(calls[0], len(behaviours) - 1)
            calls[0] += 1
        behaviours[index](exchange)
    return behave


def fail_then(then: Behaviour, times: int = 1, status: int = 500) -> Behaviour:
    return sequence(*[error(status)] * times, then)


def rate_limited(then: Behaviour, times: int = 1, retry_after: str = "1") -> Behaviour:
    """429 TOOMANYREQUESTS with ``Retry-After`` ``times`` times, then ``then``."""
    limited = error(429, "TOOMANYREQUESTS", "slow down",
                    headers={"Retry-After": retry_after})
    return sequence(*[limited] * times, then)


def bearer_challenge(realm: str, service: str = "hostile-registry",
                     scope: str | None = None) -> Behaviour:
    """401 with ``WWW-Authenticate: Bearer realm=...,service=...[,scope=...]``."""
    value = f'Bearer realm="{realm}",service="{service}"'
    value += f',scope="{scope}"' if scope else ""
    return error(401, "UNAUTHORIZED", "authentication required",
                 headers={"WWW-Authenticate": value})


def token(value: str = "hostile-token", expires_in: int = 300) -> Behaviour:
    """A token endpoint's answer (``token`` and ``access_token``)."""
    body = json.dumps({"token": value, "access_token": value, "expires_in": expires_in})
    return respond(body.encode(), content_type="application/json")


def redirect(location: str, status: int = 307) -> Behaviour:
    return respond(status=status, headers={"Location": location})


def stall_after_headers(data: bytes, seconds: float = STALL_SECONDS) -> Behaviour:
    """Headers for the whole blob, then silence, then the connection ends."""
    return stall_mid_body(data, 0, seconds)


def stall_mid_body(data: bytes, sent: int, seconds: float = STALL_SECONDS) -> Behaviour:
    def behave(exchange: Exchange) -> None:
        exchange.send_head(200, _blob_headers(data))
        exchange.write(data[:sent])
        exchange.stall(seconds)
        exchange.close()
    return behave


def reset_mid_body(data: bytes, sent: int) -> Behaviour:
    """Headers for the whole blob, ``sent`` bytes, then a TCP reset."""
    def behave(exchange: Exchange) -> None:
        exchange.send_head(200, _blob_headers(data))
        exchange.write(data[:sent])
        exchange.reset()
    return behave


def ranged(data: bytes, *, cut_first_after: int | None = None) -> Behaviour:
    """A blob that honours ``Range: bytes=N-`` / ``bytes=N-M`` with 206; the first plain
    GET is reset after ``cut_first_after`` bytes if given (so a client has to resume)."""
    lock = threading.Lock()
    cut = [cut_first_after]

    def behave(exchange: Exchange) -> None:
        wanted = re.fullmatch(r"bytes=(\d+)-(\d*)", exchange.request.header("Range") or "")
        if wanted is None:
            exchange.send_head(200, _blob_headers(data))
            with lock:
                cut_at, cut[0] = cut[0], None
            if cut_at is None or exchange.request.method == "HEAD":
                exchange.write(data)
            else:
                exchange.write(data[:cut_at])
                exchange.reset()
            return
        start = int(wanted.group(1))
        end = min(int(wanted.group(2) or len(data) - 1), len(data) - 1)
        if start >= len(data) or start > end:
            respond(status=416, headers={"Content-Range": f"bytes */{len(data)}"})(exchange)
            return
        part = data[start:end + 1]
        exchange.send_head(206, {**_blob_headers(data), "Content-Length": str(len(part)),
                                 "Content-Range": f"bytes {start}-{end}/{len(data)}"})
        exchange.write(part)
    return behave


def schema1_manifest(name: str, tag: str) -> Behaviour:
    """A Docker schema-1 signed manifest, which a modern client must refuse clearly."""
    empty_layer = "sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4"
    document = {
        "schemaVersion": 1, "name": name, "tag": tag, "architecture": "amd64",
        "fsLayers": [{"blobSum": empty_layer}],
        "history": [{"v1Compatibility": json.dumps({"id": "0" * 64, "created": "2016-01-01"})}],
        "signatures": [{"header": {"alg": "ES256", "jwk": {"kty": "EC", "crv": "P-256"}},
                        "signature": "bm90LWEtcmVhbC1zaWduYXR1cmU",
                        "protected": "eyJmb3JtYXRMZW5ndGgiOjEsImZvcm1hdFRhaWwiOiJJSDAifQ"}],
    }
    body = json.dumps(document, indent=3).encode()
    return respond(body, content_type=SCHEMA1_MEDIA_TYPE, digest=True)


def _blob_headers(data: bytes) -> dict[str, str]:
    return {"Content-Length": str(len(data)), "Content-Type": "application/octet-stream",
            "Docker-Content-Digest": sha256(data), "Accept-Ranges": "bytes"}
