"""A minimal registry HTTP client for the fixtures, on stdlib ``http.client``.

Independent of pyprov's own client on purpose: it puts the test images into the
registries that pyprov's client is then tested against, so it must share no code (and
no bugs) with it. It knows just enough of the distribution spec to push (monolithic
blob uploads: ``POST /v2/NAME/blobs/uploads/`` then ``PUT LOCATION&digest=``, then
``PUT /v2/NAME/manifests/REF`` with the manifest's Content-Type) and to read, and of
auth to answer one ``WWW-Authenticate`` challenge per request: Basic, or Bearer through
the realm's token endpoint.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import urlencode, urljoin, urlsplit

from tests.registry.images import Blob, Image, ImageIndex
from tests.registry.server import Registry

__all__ = ["PushError", "RawClient", "Response", "parse_challenge", "push"]

_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


class PushError(RuntimeError):
    """The registry refused what the fixture client sent; carries the response."""

    def __init__(self, what: str, response: Response) -> None:
        super().__init__(f"{what}: HTTP {response.status} {response.body[:500]!r}")
        self.response = response


@dataclass(frozen=True)
class Response:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)

    def json(self) -> Any:
        return json.loads(self.body)


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="R",service="S"`` -> ("bearer", {"realm": "R", "service": "S"})."""
    scheme, _, params = header.strip().partition(" ")
    return scheme.lower(), dict(_CHALLENGE_PARAM.findall(params))


class RawClient:
    """Requests to one registry; answers 401 challenges with ``auth`` if given."""

    def __init__(self, base_url: str, *, auth: tuple[str, str] | None = None,
                 ssl_context: ssl.SSLContext | None = None, timeout: float = 60) -> None:
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.ssl_context = ssl_context
        self.timeout = timeout
        self._authorization: str | None = None

    @classmethod
    def of(cls, registry: Registry, auth: tuple[str, str] | None = None) -> RawClient:
        return cls(registry.url, auth=auth, ssl_context=registry.ssl_context())

    def request(self, method: str, target: str, body: bytes | IO[bytes] | None = None,
                headers: Mapping[str, str] | None = None) -> Response:
        """One request (``target`` a path or an absolute URL), re-sent once after a 401."""
        response = self._send(method, target, body, headers, self._authorization)
        challenge = response.header("WWW-Authenticate")
        if response.status != 401 or challenge is None:
            return response
        authorization = self._answer(challenge)
        if authorization is None or authorization == self._authorization:
            return response
        self._authorization = authorization
        if body is not None and not isinstance(body, bytes):
            body.seek(0)
        return self._send(method, target, body, headers, authorization)

    def get(self, target: str, accept: str | None = None) -> Response:
        return self.request("GET", target, headers={"Accept": accept} if accept else None)

    # ------------------------------------------------------------------ push

    def upload_blob(self, repository: str, blob: Blob) -> None:
        """Upload unless the registry has it (HEAD first: test images share layers)."""
        if self.request("HEAD", f"/v2/{repository}/blobs/{blob.digest}").status == 200:
            return
        started = self.request("POST", f"/v2/{repository}/blobs/uploads/",
                               headers={"Content-Length": "0"})
        location = started.header("Location")
        if started.status != 202 or location is None:
            raise PushError(f"start upload of {blob.digest} to {repository}", started)
        separator = "&" if "?" in location else "?"
        with blob.open() as stream:
            done = self.request("PUT", f"{location}{separator}{urlencode({'digest': blob.digest})}",
                                body=stream, headers={"Content-Type": "application/octet-stream",
                                                      "Content-Length": str(blob.size)})
        if done.status != 201:
            raise PushError(f"upload {blob.digest} to {repository}", done)

    def put_manifest(self, repository: str, reference: str, manifest: Blob) -> None:
        done = self.request("PUT", f"/v2/{repository}/manifests/{reference}",
                            body=manifest.read(), headers={"Content-Type": manifest.media_type})
        if done.status != 201:
            raise PushError(f"put manifest {repository}:{reference}", done)
        if done.header("Docker-Content-Digest") not in (None, manifest.digest):
            raise PushError(f"registry digest of {repository}:{reference} is not "
                            f"{manifest.digest}", done)

    # ------------------------------------------------------------------ internals

    def _send(self, method: str, target: str, body: bytes | IO[bytes] | None,
              headers: Mapping[str, str] | None, authorization: str | None) -> Response:
        """One exchange on a fresh connection; ``authorization`` goes to our host only."""
        url = urlsplit(urljoin(self.base_url + "/", target))
        connection: http.client.HTTPConnection
        if url.scheme == "https":
            connection = http.client.HTTPSConnection(url.netloc, timeout=self.timeout,
                                                     context=self.ssl_context)
        else:
            connection = http.client.HTTPConnection(url.netloc, timeout=self.timeout)
        all_headers = dict(headers or {})
        if authorization and url.netloc == urlsplit(self.base_url).netloc:
            all_headers["Authorization"] = authorization
        try:
            path = url.path + (f"?{url.query}" if url.query else "")
            connection.request(method, path, body=body, headers=all_headers)
            answer = connection.getresponse()
            return Response(answer.status, tuple(answer.getheaders()), answer.read())
        finally:
            connection.close()

    def _answer(self, challenge: str) -> str | None:
        """The Authorization value that answers ``challenge``, None if we cannot."""
        scheme, params = parse_challenge(challenge)
        if scheme == "basic":
            return None if self.auth is None else _basic(self.auth)
        if scheme != "bearer" or "realm" not in params:
            return None
        query: dict[str, str] = {key: params[key] for key in ("service", "scope") if key in params}
        realm = f"{params['realm']}?{urlencode(query)}" if query else params["realm"]
        token_endpoint = RawClient(realm, ssl_context=self.ssl_context, timeout=self.timeout)
        answer = token_endpoint._send("GET", realm, None, None,
                                      None if self.auth is None else _basic(self.auth))
        if answer.status != 200:
            raise PushError(f"token from {params['realm']}", answer)
        document = answer.json()
        return f"Bearer {document.get('token') or document['access_token']}"


def push(registry: Registry, repository: str, tag: str, image: Image | ImageIndex, *,
         auth: tuple[str, str] | None = None) -> str:
    """Upload ``image`` (an index: its children first, by digest) and tag it; its digest."""
    client = RawClient.of(registry, auth)
    children = image.images if isinstance(image, ImageIndex) else (image,)
    for child in children:
        for blob in child.blobs:
            client.upload_blob(repository, blob)
        if isinstance(image, ImageIndex):
            client.put_manifest(repository, child.digest, child.manifest)
    client.put_manifest(repository, tag, image.manifest)
    return image.digest


def _basic(auth: tuple[str, str]) -> str:
    return "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
