"""A hostile registry: an HTTP server whose every answer a test programs.

Two listeners: ``main`` on 127.0.0.1 (the registry the client is pointed at) and
``other`` on 127.0.0.2 (another host: a token realm, a redirect target). Routes map
``(method, path regex)`` to a :data:`Behaviour`, a function that answers one
:class:`Exchange`; the newest matching route wins, so a test first serves a good image
with :meth:`HostileRegistry.serve_image` and then breaks one piece of it::

    image = busybox_image("oci")
    hostile.serve_image("busybox", image, tag="latest")
    layer = image.layers[0].blob
    hostile.route("GET", f"/v2/busybox/blobs/{layer.digest}", fail_then(blob(layer), times=2))
    ... pull hostile.host/busybox:latest with pyprov ...
    assert len(hostile.requests_to(f"/v2/busybox/blobs/{layer.digest}")) == 3

The ready-made behaviours live in :mod:`tests.registry.behaviours` and are re-exported
here. A blob that disagrees with its descriptor's size is just ``blob(data + b"more")``
(or ``blob(data[:-1])``) on the layer's route: honest HTTP framing, wrong content.
Every request is recorded (method, target, headers, client address, body, listener).
Fault injection at the socket level is the point here, so behaviours write raw bytes.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.registry.behaviours import (
    SCHEMA1_MEDIA_TYPE,
    Behaviour,
    Exchange,
    bearer_challenge,
    blob,
    error,
    fail_then,
    manifest,
    overlong,
    ranged,
    rate_limited,
    redirect,
    reset_mid_body,
    respond,
    schema1_manifest,
    sequence,
    stall_after_headers,
    stall_mid_body,
    token,
    truncated,
    wrong_digest,
    wrong_media_type,
)
from tests.registry.httpd import Listener, RecordedRequest, owner_of, read_body, record
from tests.registry.model import Image, ImageIndex

__all__ = [
    "SCHEMA1_MEDIA_TYPE", "Behaviour", "Exchange", "HostileRegistry", "bearer_challenge",
    "blob", "error", "fail_then", "manifest", "overlong", "ranged", "rate_limited",
    "redirect", "reset_mid_body", "respond", "schema1_manifest", "sequence",
    "stall_after_headers", "stall_mid_body", "token", "truncated", "wrong_digest",
    "wrong_media_type",
]

OTHER_ADDRESS = "127.0.0.2"


@dataclass(frozen=True)
class _Route:
    methods: frozenset[str]
    pattern: re.Pattern[str]
    behaviour: Behaviour
    listener: str


class HostileRegistry:
    """The programmable registry; see the module doc. ``with`` it or start()/stop()."""

    def __init__(self, *, other_address: str = OTHER_ADDRESS) -> None:
        self.closing = threading.Event()
        self.errors: list[BaseException] = []  # behaviours that raised (a test bug)
        self._other_address = other_address
        self._routes: list[_Route] = []
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._required: tuple[str, str, str] | None = None  # authorization, realm, service
        self._main: Listener | None = None
        self._other: Listener | None = None
        self.route(("GET", "HEAD"), "/v2/", respond(
            b"{}", content_type="application/json",
            headers={"Docker-Distribution-API-Version": "registry/2.0"}))

    def start(self) -> HostileRegistry:
        if self._main is None:
            self._main = Listener("127.0.0.1", _HostileHandler, self, "main")
            self._other = Listener(self._other_address, _HostileHandler, self, "other")
            self._main.start()
            self._other.start()
        return self

    def stop(self) -> None:
        """Release stalled answers, stop both listeners. Idempotent."""
        self.closing.set()
        for listener in (self._main, self._other):
            if listener is not None:
                listener.stop()
        self._main = self._other = None

    def __enter__(self) -> HostileRegistry:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ addresses

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``, the registry part of image references."""
        return self._listener("main").host

    @property
    def url(self) -> str:
        return self._listener("main").url

    @property
    def other_host(self) -> str:
        return self._listener("other").host

    @property
    def other_url(self) -> str:
        return self._listener("other").url

    # ------------------------------------------------------------------ programming

    def route(self, methods: str | Iterable[str], pattern: str, behaviour: Behaviour, *,
              on: str = "main") -> None:
        """Answer ``methods`` on paths matching ``pattern`` (whole path, no query)."""
        names = frozenset([methods] if isinstance(methods, str) else methods)
        with self._lock:
            self._routes.append(_Route(names, re.compile(pattern), behaviour, on))

    def serve_image(self, repository: str, image: Image | ImageIndex,
                    tag: str = "latest") -> None:
        """Correct GET/HEAD routes for the image's manifests (by tag and digest) and blobs."""
        methods = ("GET", "HEAD")
        base = f"/v2/{re.escape(repository)}"
        self.route(methods, f"{base}/manifests/({re.escape(tag)}|{image.digest})",
                   manifest(image.manifest))
        children = image.images if isinstance(image, ImageIndex) else (image,)
        for child in children:
            if child is not image:
                self.route(methods, f"{base}/manifests/{child.digest}", manifest(child.manifest))
            for content in child.blobs:
                self.route(methods, f"{base}/blobs/{content.digest}", blob(content))

    def require_token(self, value: str = "hostile-token",
                      service: str = "hostile-registry") -> str:
        """From now on main's /v2/ paths demand ``Authorization: Bearer VALUE`` and answer
        401 with a Bearer challenge whose realm (returned) is ``OTHER/token`` on the other
        listener, which hands VALUE to anyone who asks."""
        realm = f"{self.other_url}/token"
        self.route("GET", "/token", token(value), on="other")
        self._required = (f"Bearer {value}", realm, service)
        return realm

    # ------------------------------------------------------------------ records

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request so far, both listeners, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    def requests_to(self, pattern: str, listener: str | None = None) -> list[RecordedRequest]:
        """The requests whose path fully matches ``pattern`` (on ``listener`` if given)."""
        return [r for r in self.requests if re.fullmatch(pattern, r.path)
                and (listener is None or r.listener == listener)]

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

    # ------------------------------------------------------------------ internals

    def _listener(self, name: str) -> Listener:
        listener = self._main if name == "main" else self._other
        if listener is None:
            raise RuntimeError("the hostile registry is not running: call start() first")
        return listener

    def _dispatch(self, exchange: Exchange) -> None:
        request = exchange.request
        with self._lock:
            self._requests.append(request)
            found = next((r for r in reversed(self._routes)
                          if r.listener == request.listener and request.method in r.methods
                          and r.pattern.fullmatch(request.path)), None)
        if (self._required and request.listener == "main" and request.path.startswith("/v2/")
                and request.authorization != self._required[0]):
            _challenge(exchange, *self._required[1:])
        elif found is None:
            error(404, "NAME_UNKNOWN", f"no route for {request.method} {request.path}")(exchange)
        else:
            found.behaviour(exchange)


def _challenge(exchange: Exchange, realm: str, service: str) -> None:
    """The Bearer challenge a registry sends, its scope derived from the request path."""
    name = re.match(r"/v2/(.+)/(manifests|blobs|tags)/", exchange.request.path)
    actions = "pull" if exchange.request.method in ("GET", "HEAD") else "pull,push"
    scope = f"repository:{name.group(1)}:{actions}" if name else None
    bearer_challenge(realm, service, scope)(exchange)


class _HostileHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        registry = owner_of(self, HostileRegistry)
        exchange = Exchange(self, record(self, read_body(self)), registry.closing)
        try:
            registry._dispatch(exchange)
            if not exchange.responded and not self.close_connection:
                error(500, "UNKNOWN", "the behaviour sent nothing")(exchange)
        except OSError:  # the client went away, or a behaviour reset the connection
            self.close_connection = True
        except Exception as problem:  # a thread boundary: kept for the test, which fails
            registry.errors.append(problem)
            if not exchange.responded:
                with contextlib.suppress(OSError):
                    error(500, "UNKNOWN", f"behaviour raised {problem!r}")(exchange)
            self.close_connection = True

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _serve  # noqa: N815

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the requests are recorded."""
