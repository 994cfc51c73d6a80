"""The registry client's HTTP seam: one small interface, urllib3 behind it.

urllib3 (rather than http.client by hand): pooled keep-alive connections per host, which
parallel layer downloads need, streaming bodies, TLS with the system's CAs, and nothing
automatic: no redirects followed, no retries, no proxies from the environment. The client
decides all three itself, because each is a security decision (credentials must not
follow a redirect to another host; only transient failures are retried).

Tests swap the transport (``RegistryClient(http=...)``) rather than patch module globals.
Library errors are mapped here, at one boundary, to :class:`agent.errors` types.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import urllib3
from urllib3.exceptions import HTTPError, SSLError

from agent.errors import RegistryError, TransientRegistryError

CHUNK = 1 << 20
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 60.0  # the longest silence tolerated mid-body
DRAIN_LIMIT = 1 << 16


class Response(Protocol):
    @property
    def status(self) -> int: ...

    def header(self, name: str) -> str | None: ...

    def read(self, limit: int | None = None) -> bytes:
        """The body (at most ``limit`` bytes: more is an error, for manifests)."""

    def chunks(self, size: int = CHUNK) -> Iterator[bytes]: ...

    def close(self) -> None: ...


class HttpTransport(Protocol):
    def request(self, method: str, url: str, *, headers: Mapping[str, str] | None = None,
                body: bytes | Iterator[bytes] | None = None, verify: bool = True) -> Response:
        """Send; the body is not read (``read`` or ``chunks`` it, or ``close``)."""


class ConnectionFailed(TransientRegistryError):
    """No HTTP answer at all (refused, reset, TLS failure, timeout): a reason to try the
    next endpoint (a mirror's fallback, an insecure registry's plain HTTP)."""


@dataclass
class _Urllib3Response:
    raw: Any  # urllib3.BaseHTTPResponse
    url: str

    @property
    def status(self) -> int:
        return int(self.raw.status)

    def header(self, name: str) -> str | None:
        value = self.raw.headers.get(name)
        return str(value) if value is not None else None

    def read(self, limit: int | None = None) -> bytes:
        try:
            data = self.raw.read(limit + 1 if limit is not None else None)
        except (HTTPError, OSError) as exc:
            raise _mapped(exc, self.url) from exc
        finally:
            self.close()
        if limit is not None and len(data) > limit:
            raise RegistryError(f"{self.url}: the answer exceeds {limit} bytes")
        return bytes(data)

    def chunks(self, size: int = CHUNK) -> Iterator[bytes]:
        """What arrives, as it arrives (``read1``): bytes received before a connection
        breaks are handed over, so a resumed download starts after them."""
        try:
            while chunk := self.raw.read1(size):
                yield bytes(chunk)
        except (HTTPError, OSError) as exc:
            raise _mapped(exc, self.url) from exc
        finally:
            self.close()

    def close(self) -> None:
        """Back to the pool, clean: a short unread body is drained, a long one (an
        abandoned blob) closes the connection rather than being read to its end."""
        with contextlib.suppress(HTTPError, OSError, ValueError):
            length = self.raw.headers.get("Content-Length")
            if length is not None and int(length) <= DRAIN_LIMIT:
                self.raw.drain_conn()
            else:
                self.raw.close()
            self.raw.release_conn()


def _mapped(exc: HTTPError | OSError, url: str) -> RegistryError:
    if isinstance(exc, SSLError):
        return ConnectionFailed(f"{url}: TLS failed: {exc}")
    return ConnectionFailed(f"{url}: {type(exc).__name__}: {exc}")


class Urllib3Transport:
    """Pooled connections: verified TLS with the system's CAs, or unverified for insecure
    registries (a separate pool, so a verified host never reuses an unverified one)."""

    def __init__(self, pool_size: int = 8, *, connect_timeout: float = CONNECT_TIMEOUT,
                 read_timeout: float = READ_TIMEOUT) -> None:
        import ssl

        timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
        common: dict[str, Any] = {"num_pools": 32, "maxsize": pool_size, "block": False,
                                  "timeout": timeout, "retries": False}
        self._verified = urllib3.PoolManager(cert_reqs=ssl.CERT_REQUIRED, **common)
        # Built here, without loading the system's CAs it would never use (~20 ms).
        unverified = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        unverified.check_hostname = False
        unverified.verify_mode = ssl.CERT_NONE
        self._unverified = urllib3.PoolManager(ssl_context=unverified, cert_reqs=ssl.CERT_NONE,
                                               assert_hostname=False, **common)
        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)

    def request(self, method: str, url: str, *, headers: Mapping[str, str] | None = None,
                body: bytes | Iterator[bytes] | None = None, verify: bool = True) -> Response:
        pool = self._verified if verify else self._unverified
        try:
            raw = pool.request(method, url, headers=dict(headers or {}), body=body,
                               redirect=False, retries=False, preload_content=False,
                               decode_content=False)
        except (HTTPError, OSError) as exc:
            raise _mapped(exc, url) from exc
        return _Urllib3Response(raw, url)
