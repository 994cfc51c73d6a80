"""Registry authentication: Basic, and the Bearer token flow of the distribution spec.

A 401 names its scheme in ``WWW-Authenticate``. Basic: the host's credentials. Bearer:
ask the ``realm`` for a token for ``service`` and ``scope``; tokens are cached until
they expire (``expires_in``, 60 s by default as the spec says) and asked again on 401.

Credentials go only where they belong. A host's credentials are its own (a mirror never
gets the upstream's). A token realm on the registry's own host name (any port) gets
them, over HTTPS, or plain HTTP only if the registry itself is spoken to in plain HTTP
(no downgrade). A realm on another host must be HTTPS, and receives the registry's
credentials only if it is that registry's known realm (Docker Hub's ``auth.docker.io``)
or one the operator listed (``realms`` in RegistryConfig); otherwise the token is asked
for anonymously.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from agent.errors import AuthError
from agent.registry.credentials import Credentials, CredentialStore, registry_key
from agent.registry.hosts import Endpoint
from agent.registry.http import HttpTransport

DEFAULT_TOKEN_LIFETIME = 60
KNOWN_REALMS: Mapping[str, tuple[str, ...]] = {"registry-1.docker.io": ("auth.docker.io",)}
_TOKEN = re.compile(r'\s*([!#$%&\'*+.^_`|~0-9A-Za-z-]+)')
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lowercase: "basic", "bearer"
    params: Mapping[str, str]


def parse_challenges(header: str) -> list[Challenge]:
    """RFC 7235 challenges: ``Scheme k=v, k="quoted, value", Scheme2 ...``."""
    found: list[Challenge] = []
    pos, text = 0, header
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            pos += 1
            continue
        scheme, pos = match.group(1).lower(), match.end()
        params: dict[str, str] = {}
        while True:
            param = re.compile(r'\s*,?\s*([!#$%&\'*+.^_`|~0-9A-Za-z-]+)\s*=\s*').match(text, pos)
            if not param:
                break
            key, pos = param.group(1).lower(), param.end()
            quoted = _QUOTED.match(text, pos)
            if quoted:
                value = re.sub(r"\\(.)", r"\1", quoted.group(1))
                pos = quoted.end()
            else:
                plain = re.compile(r"[^,\s]*").match(text, pos)
                value = plain.group(0) if plain else ""
                pos = plain.end() if plain else pos
            params[key] = value
        found.append(Challenge(scheme, params))
        comma = re.compile(r"\s*,?").match(text, pos)
        pos = comma.end() if comma and comma.end() > pos else pos
    return found


class Authenticator:
    """Authorization headers for one client; thread-safe (layers download in parallel)."""

    def __init__(self, credentials: CredentialStore, http: HttpTransport,
                 trusted_realms: Mapping[str, tuple[str, ...]] | None = None) -> None:
        self._credentials = credentials
        self._http = http
        self._realms = {**KNOWN_REALMS, **(trusted_realms or {})}
        self._cache: dict[tuple[str, str], tuple[str, float]] = {}
        self._given: dict[str, Credentials] = {}
        self._lock = threading.Lock()

    def use(self, registry: str, credentials: Credentials) -> None:
        """Credentials for ``registry`` that win over the stored ones (``login`` tries
        them before storing them)."""
        self._given[registry_key(registry)] = credentials
        with self._lock:
            self._cache.clear()

    def cached(self, host: str, scope: str) -> str | None:
        """The header to send before any 401, if one is known and fresh."""
        with self._lock:
            entry = self._cache.get((host, scope))
        if entry and entry[1] > time.monotonic():
            return entry[0]
        return None

    def answer(self, endpoint: Endpoint, scope: str, challenge_header: str | None) -> str:
        """The header that answers a 401 from ``endpoint`` for ``scope``; raise AuthError."""
        host = endpoint.host
        challenges = parse_challenges(challenge_header or "")
        bearer = next((c for c in challenges if c.scheme == "bearer"), None)
        basic = next((c for c in challenges if c.scheme == "basic"), None)
        credentials = self._given.get(registry_key(host)) or self._credentials.get(host)
        if bearer is not None:
            header, lifetime = self._token(endpoint, scope, bearer, credentials)
        elif basic is not None:
            if credentials is None:
                raise AuthError(f"{host} asks for a login (`pyprov login {host}`)", status=401)
            secret = f"{credentials.username}:{credentials.password}".encode()
            header, lifetime = f"Basic {base64.b64encode(secret).decode()}", 3600.0
        else:
            raise AuthError(f"{host} answered 401 without a usable WWW-Authenticate challenge",
                            status=401)
        with self._lock:
            self._cache[(host, scope)] = (header, time.monotonic() + lifetime)
        return header

    def forget(self, host: str, scope: str) -> None:
        with self._lock:
            self._cache.pop((host, scope), None)

    def _token(self, endpoint: Endpoint, scope: str, challenge: Challenge,
               credentials: Credentials | None) -> tuple[str, float]:
        host = endpoint.host
        realm = challenge.params.get("realm", "")
        parts = urlsplit(realm)
        if parts.scheme not in ("https", "http") or not parts.netloc:
            raise AuthError(f"{host}: token realm {realm!r} is not an http(s) URL", status=401)
        foreign = parts.hostname != urlsplit(endpoint.base).hostname
        plain_registry = endpoint.plain_http or endpoint.http_fallback  # insecure: may be
        if parts.scheme != "https" and (foreign or not plain_registry):
            raise AuthError(f"{host}: refusing the plain-HTTP token realm {realm} "
                            + ("on another host (a token realm elsewhere must be HTTPS)"
                               if foreign else "of a registry spoken to over HTTPS"),
                            status=401)
        trusted = self._realms.get(host, ())
        if foreign and parts.hostname not in trusted and parts.netloc not in trusted:
            credentials = None  # never hand a registry's credentials to a stranger
        verify = endpoint.verify or foreign
        query = {"service": challenge.params.get("service", "")}
        scopes = [*scope.split(), *challenge.params.get("scope", "").split()]
        headers = {"User-Agent": "pyprov"}
        if credentials and credentials.identity_token:
            body = urlencode({"grant_type": "refresh_token", "client_id": "pyprov",
                              "refresh_token": credentials.identity_token,
                              "service": query["service"], "scope": " ".join(scopes)})
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            response = self._http.request("POST", realm, headers=headers, body=body.encode(),
                                          verify=verify)
        else:
            if credentials:
                secret = f"{credentials.username}:{credentials.password}".encode()
                headers["Authorization"] = f"Basic {base64.b64encode(secret).decode()}"
            url = realm + ("&" if parts.query else "?") + urlencode(
                [("service", query["service"]), *(("scope", s) for s in dict.fromkeys(scopes))])
            response = self._http.request("GET", url, headers=headers, verify=verify)
        body_bytes = response.read(limit=1 << 20)
        if response.status != 200:
            raise AuthError(f"{host}: the token realm {parts.netloc} refused "
                            f"({response.status}){'' if credentials else ' anonymous access'}",
                            status=response.status)
        try:
            answer = json.loads(body_bytes)
        except ValueError:
            raise AuthError(f"{host}: the token realm answered no JSON") from None
        token = answer.get("token") or answer.get("access_token")
        if not isinstance(token, str) or not token:
            raise AuthError(f"{host}: the token realm answered no token")
        lifetime = answer.get("expires_in")
        seconds = float(lifetime) if isinstance(lifetime, int | float) and lifetime > 0 else (
            DEFAULT_TOKEN_LIFETIME)
        return f"Bearer {token}", max(1.0, seconds - 5)
