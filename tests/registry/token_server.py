"""A token server for the registry's ``auth.token`` mode (distribution's Bearer scheme).

The flow it serves (docs/spec/auth/token.md, jwt.md of distribution/distribution): the
registry answers 401 with ``WWW-Authenticate: Bearer realm=REALM,service=S,scope=...``;
the client sends ``GET REALM?service=S&scope=repository:NAME:pull,push`` (HTTP Basic
credentials optional); this server intersects the requested actions with the user's
grants and returns ``{"token", "access_token", "expires_in", "issued_at"}``, the token an
ES256 JWT whose header carries ``x5c`` (the signing certificate, which the registry has
as ``rootcertbundle``) and ``kid`` (its libtrust fingerprint).

Registry v2.8 checks ``iss``, ``aud`` (one string), ``exp``/``nbf`` with 60 s of leeway,
then the signature through ``x5c`` before ``kid``; the ``access`` claim decides.

Every request is recorded (:attr:`TokenServer.requests`) so tests can assert which
credentials reached the realm and which scopes were asked for.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import fnmatch
import json
import secrets
import threading
import time
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from tests.registry.certs import KeyPair, libtrust_key_id, make_signing_cert
from tests.registry.httpd import Listener, RecordedRequest, owner_of, read_body, record

__all__ = ["ANONYMOUS", "Access", "Grants", "TokenServer"]

ANONYMOUS = ""  # the grants key of clients that send no credentials
DEFAULT_SERVICE = "pyprov-test-registry"
DEFAULT_ISSUER = "pyprov-test-token-server"

# user -> {fnmatch pattern over "TYPE:NAME" -> actions}; e.g.
# {"alice": {"repository:*": ["pull", "push"]}, ANONYMOUS: {"repository:public/*": ["pull"]}}
Grants = Mapping[str, Mapping[str, Collection[str]]]


@dataclass(frozen=True)
class Access:
    """One entry of a token's ``access`` claim (and one parsed ``scope``)."""

    type: str
    name: str
    actions: tuple[str, ...]

    @classmethod
    def parse(cls, scope: str) -> Access:
        """``repository:library/busybox:pull,push`` -> Access; the name may hold colons."""
        kind, _, rest = scope.partition(":")
        name, _, actions = rest.rpartition(":")
        return cls(kind, name, tuple(a for a in actions.split(",") if a))

    def as_claim(self) -> dict[str, Any]:
        return {"type": self.type, "name": self.name, "actions": list(self.actions)}


class TokenServer:
    """A threaded token endpoint at ``http://ADDRESS:PORT/token``; see the module doc.

    ``users`` maps user names to passwords. ``grants`` (default: every user may
    ``pull``/``push``/``delete`` every repository and read the catalog; anonymous clients
    get nothing) maps users to patterns over ``TYPE:NAME``. ``address`` may be another
    loopback address (``127.0.0.2``) to play a realm on another host than the registry.
    Start with :meth:`start` or ``with``; :meth:`stop` always.
    """

    def __init__(self, users: Mapping[str, str], grants: Grants | None = None, *,
                 address: str = "127.0.0.1", service: str = DEFAULT_SERVICE,
                 issuer: str = DEFAULT_ISSUER, expires_in: int = 300) -> None:
        self.users = dict(users)
        self.grants: Grants = grants if grants is not None else {
            user: {"repository:*": ("pull", "push", "delete"), "registry:catalog": ("*",)}
            for user in users}
        self.service = service
        self.issuer = issuer
        self.expires_in = expires_in
        self.signer: KeyPair = make_signing_cert()
        self._address = address
        self._listener: Listener | None = None
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []

    # ------------------------------------------------------------------ life cycle

    def start(self) -> TokenServer:
        if self._listener is None:
            self._listener = Listener(self._address, _TokenHandler, self, "token")
            self._listener.start()
        return self

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.stop()
            self._listener = None

    def __enter__(self) -> TokenServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ queries

    @property
    def host(self) -> str:
        return self._running().host

    @property
    def realm(self) -> str:
        """The realm URL the registry names in its Bearer challenge."""
        return f"{self._running().url}/token"

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def write_root_cert(self, path: Path) -> Path:
        """The registry's ``rootcertbundle``: the certificate that signs the tokens."""
        return self.signer.write(path)

    # ------------------------------------------------------------------ tokens

    def granted(self, user: str, requested: Access) -> Access:
        """``requested`` cut down to what ``user`` may do (the spec's intersection)."""
        allowed: set[str] = set()
        for pattern, actions in self.grants.get(user, {}).items():
            if fnmatch.fnmatchcase(f"{requested.type}:{requested.name}", pattern):
                allowed.update(actions)
        actions = requested.actions if "*" in allowed else tuple(
            a for a in requested.actions if a in allowed)
        return Access(requested.type, requested.name, actions)

    def issue(self, subject: str, access: Iterable[Access], *, expires_in: int | None = None,
              issuer: str | None = None, audience: str | None = None,
              not_before: int | None = None) -> str:
        """A signed JWT; the keyword overrides let tests forge expired or foreign tokens."""
        now = int(time.time())
        lifetime = self.expires_in if expires_in is None else expires_in
        header = {"typ": "JWT", "alg": "ES256",
                  "kid": libtrust_key_id(self.signer.key.public_key()),
                  "x5c": [self.signer.cert_der_b64()]}
        claims = {"iss": issuer or self.issuer, "sub": subject,
                  "aud": audience or self.service, "exp": now + lifetime,
                  "nbf": now - 1 if not_before is None else not_before, "iat": now,
                  "jti": secrets.token_hex(12),
                  "access": [entry.as_claim() for entry in access]}
        signing_input = f"{_b64(_json(header))}.{_b64(_json(claims))}"
        return f"{signing_input}.{_b64(_es256(self.signer.key, signing_input.encode()))}"

    def answer(self, request: RecordedRequest) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) for one request to the realm."""
        if request.path != "/token" or request.method != "GET":
            return 404, {}, b'{"details": "only GET /token is served here"}'
        user = self._authenticate(request.authorization)
        if user is None:
            return (401, {"WWW-Authenticate": 'Basic realm="pyprov test token server"'},
                    b'{"details": "incorrect username or password"}')
        query = request.query
        if query.get("service", [self.service])[0] != self.service:
            return 400, {}, b'{"details": "unknown service"}'
        scopes = [s for value in query.get("scope", []) for s in value.split()]
        access = [self.granted(user, Access.parse(scope)) for scope in scopes]
        token = self.issue(user, [a for a in access if a.actions])
        issued_at = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {"token": token, "access_token": token, "expires_in": self.expires_in,
                "issued_at": issued_at}
        return 200, {"Content-Type": "application/json"}, _json(body)

    # ------------------------------------------------------------------ internals

    def _authenticate(self, authorization: str | None) -> str | None:
        """The user name (ANONYMOUS without credentials), None for wrong credentials."""
        if authorization is None:
            return ANONYMOUS
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(value.strip()).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        expected = self.users.get(user)
        if expected is None or not secrets.compare_digest(expected, password):
            return None
        return user

    def _running(self) -> Listener:
        if self._listener is None:
            raise RuntimeError("the token server is not running: call start() first")
        return self._listener

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)


class _TokenHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        server = owner_of(self, TokenServer)
        request = record(self, read_body(self))
        server._record(request)
        status, headers, body = server.answer(request)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the requests are recorded, stderr would only clutter pytest's output."""


def _json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _es256(key: ec.EllipticCurvePrivateKey, data: bytes) -> bytes:
    """JWS ES256: the raw 64-byte r||s, not the DER that ``cryptography`` returns."""
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")
