"""The small HTTP servers of the test package (token server, hostile registry).

Both are stdlib ``ThreadingHTTPServer`` s on a loopback address with a kernel-chosen
port, served from a daemon thread, that record every request they get. What they share
lives here: :class:`Listener` (start/stop one server) and :class:`RecordedRequest`.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

__all__ = ["Listener", "RecordedRequest", "owner_of", "read_body", "record"]

T = TypeVar("T")

_MAX_BODY = 64 << 20  # a test body; anything bigger is a mistake of the test


@dataclass(frozen=True)
class RecordedRequest:
    """One request as it arrived: for assertions about what a client sent where."""

    listener: str                       # which server got it ("main", "other", "token")
    method: str
    target: str                         # the request target: path and query, as sent
    headers: tuple[tuple[str, str], ...]
    client: tuple[str, int]             # the peer's (address, port)
    body: bytes

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.target).query, keep_blank_values=True)

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (case-insensitive), or None."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)

    @property
    def authorization(self) -> str | None:
        return self.header("Authorization")


def read_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The request body, framed by Content-Length or chunked transfer encoding."""
    if "chunked" in handler.headers.get("Transfer-Encoding", "").lower():
        chunks: list[bytes] = []
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
    length = int(handler.headers.get("Content-Length") or 0)
    if length > _MAX_BODY:
        raise ValueError(f"request body of {length} bytes is too big for a test server")
    return handler.rfile.read(length) if length else b""


def record(handler: BaseHTTPRequestHandler, body: bytes) -> RecordedRequest:
    """What arrived at ``handler`` (its listener's name included), with ``body``."""
    address = handler.client_address
    listener = str(getattr(handler.server, "name", ""))
    return RecordedRequest(listener=listener, method=handler.command, target=handler.path,
                           headers=tuple(handler.headers.items()),
                           client=(str(address[0]), int(address[1])), body=body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: Any = None
    name = ""

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet about clients that went away (and tests that reset connections)."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class Listener:
    """One ``ThreadingHTTPServer`` on ``address`` (port chosen by the kernel), on a thread.

    ``handler_class`` handlers find ``owner`` as ``self.server.owner``.
    """

    def __init__(self, address: str, handler_class: type[BaseHTTPRequestHandler],
                 owner: object, name: str) -> None:
        self.name = name
        self._server = _Server((address, 0), handler_class, bind_and_activate=True)
        self._server.owner = owner
        self._server.name = name
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def host(self) -> str:
        """``ADDRESS:PORT``, as in an image reference or a ``Host`` header."""
        return f"{self.address}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name=f"httpd:{self.name}:{self.port}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, close the listening socket. Idempotent."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5)
            self._thread = None
        with contextlib.suppress(OSError):
            self._server.server_close()


def owner_of(handler: BaseHTTPRequestHandler, kind: type[T]) -> T:
    """The object that owns the handler's server (a TokenServer, a HostileRegistry)."""
    owner = getattr(handler.server, "owner", None)
    if not isinstance(owner, kind):
        raise TypeError(f"handler served by {owner!r}, expected a {kind.__name__}")
    return owner
