"""The OCI distribution API v2, for one host's configuration (mirrors, insecure registries,
credentials): manifests, blobs, uploads, catalog, tags, delete.

Every request goes through :meth:`RegistryClient._send` (auth, redirects, error mapping)
and, for pulls, through the endpoint list of :mod:`agent.registry.hosts` (mirrors first,
falling back to the upstream). Transient failures are retried by the one policy of
:mod:`agent.retry`, on the last endpoint only: a failing mirror is skipped at once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import TypeVar
from urllib.parse import urlencode, urljoin, urlsplit

from agent.errors import (
    AuthError,
    ContentError,
    DigestMismatch,
    NotFound,
    RegistryError,
    TransientRegistryError,
)
from agent.model.syntax.reference import ImageReference
from agent.oci import media
from agent.registry.auth import Authenticator
from agent.registry.credentials import CredentialStore
from agent.registry.hosts import Endpoint, RegistryConfig
from agent.registry.http import ConnectionFailed, HttpTransport, Response, Urllib3Transport
from agent.retry import retrying

T = TypeVar("T")
MAX_REDIRECTS = 5
USER_AGENT = "pyprov"
MONOLITHIC_LIMIT = 64 << 20  # bigger blobs are pushed in chunks of this size


@dataclass(frozen=True)
class FetchedManifest:
    body: bytes
    media_type: str
    digest: str
    endpoint: Endpoint


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _error_code(response: Response) -> tuple[str | None, str]:
    try:
        body = json.loads(response.read(limit=64 << 10) or b"{}")
        first = (body.get("errors") or [{}])[0]
        return first.get("code"), str(first.get("message") or "")
    except (ValueError, AttributeError, RegistryError):
        return None, ""


def check(response: Response, what: str) -> Response:
    """2xx passes; everything else becomes the error type it means."""
    status = response.status
    if 200 <= status < 300:
        return response
    code, message = _error_code(response)
    detail = f"{what}: {status}" + (f" {code}" if code else "") + (f": {message}" if message
                                                                   else "")
    if status in (401, 403):
        raise AuthError(detail, status=status, code=code)
    if status == 404:
        raise NotFound(detail, status=status, code=code)
    if status == 429 or status >= 500:
        after = response.header("Retry-After")
        raise TransientRegistryError(detail, status=status, code=code,
                                     retry_after=float(after) if after and after.isdigit()
                                     else None)
    raise RegistryError(detail, status=status, code=code)


class RegistryClient:
    def __init__(self, config: RegistryConfig | None = None, *,
                 credentials: CredentialStore | None = None,
                 http: HttpTransport | None = None) -> None:
        self.config = config or RegistryConfig()
        self.http = http or Urllib3Transport()
        self.auth = Authenticator(credentials or CredentialStore(), self.http,
                                  self.config.realms)
        self._schemes: dict[str, str] = {}  # insecure registry host -> "https" | "http"

    # -- one request -----------------------------------------------------------------------

    def _send(self, endpoint: Endpoint, method: str, path: str, scope: str, *,
              headers: dict[str, str] | None = None,
              body: bytes | Iterator[bytes] | None = None) -> Response:
        """One request to one endpoint: the cached authorization, one answer to a 401
        (a streamed body must come after the auth is cached: it cannot be sent twice)."""
        url = path if "://" in path else endpoint.base + path
        sent = {"User-Agent": USER_AGENT, **(headers or {})}
        authorization = self.auth.cached(endpoint.host, scope)
        for answered in (False, True):
            if authorization:
                sent["Authorization"] = authorization
            response = self._follow(method, url, sent, body, endpoint)
            if response.status != 401 or answered or not isinstance(body, bytes | None):
                return response
            challenge = response.header("WWW-Authenticate")
            response.close()
            self.auth.forget(endpoint.host, scope)
            authorization = self.auth.answer(endpoint, scope, challenge)
        raise AssertionError("unreachable")  # pragma: no cover

    def _follow(self, method: str, url: str, headers: dict[str, str],
                body: bytes | Iterator[bytes] | None, endpoint: Endpoint) -> Response:
        """Redirects by hand: the credentials never leave the endpoint's host."""
        url = self._scheme_for(endpoint, url)
        origin = urlsplit(url)[:2]
        for _ in range(MAX_REDIRECTS + 1):
            same = urlsplit(url)[:2] == origin
            sent = headers if same else {k: v for k, v in headers.items()
                                         if k.lower() != "authorization"}
            response = self.http.request(method, url, headers=sent, body=body,
                                         verify=endpoint.verify if same else True)
            location = response.header("Location")
            if response.status not in (301, 302, 303, 307, 308) or not location:
                return response
            response.close()
            url = urljoin(url, location)
            if response.status == 303:
                method, body = "GET", None
        raise RegistryError(f"{endpoint.host}: more than {MAX_REDIRECTS} redirects")

    def _scheme_for(self, endpoint: Endpoint, url: str) -> str:
        """An insecure registry's URL in the scheme it speaks: TLS if it can, else plain
        HTTP (found once per host with a ``GET /v2/``, then remembered)."""
        if not endpoint.http_fallback or not url.startswith("https://"):
            return url
        host = endpoint.host
        if host not in self._schemes:
            try:
                self.http.request("GET", f"https://{host}/v2/",
                                  headers={"User-Agent": USER_AGENT}, verify=False).close()
                self._schemes[host] = "https"
            except ConnectionFailed:
                self._schemes[host] = "http"
        return url if self._schemes[host] == "https" else "http://" + url[len("https://"):]

    # -- endpoints -----------------------------------------------------------------------

    def _endpoints(self, ref: ImageReference, push: bool = False,
                   prefer: Endpoint | None = None) -> list[Endpoint]:
        found = self.config.endpoints(ref.registry, push=push)
        if prefer is not None and prefer in found:
            found.remove(prefer)
            found.insert(0, prefer)
        return found

    def try_endpoints(self, endpoints: list[Endpoint], call: Callable[[Endpoint], T]) -> T:
        """``call`` on the first endpoint that answers; retried on the last one only. A
        mirror that fails in any way (even serving bad content) yields to the next."""
        errors: list[str] = []
        for index, endpoint in enumerate(endpoints):
            last = index == len(endpoints) - 1
            try:
                return retrying(partial(call, endpoint), attempts=5 if last else 1)
            except (RegistryError, ContentError) as exc:
                if last:
                    if errors:
                        exc.args = (f"{exc} (after: {'; '.join(errors)})",)
                    raise
                errors.append(f"{endpoint.base}: {exc}")
        raise RegistryError("no endpoint to try")  # pragma: no cover - endpoints never empty

    # -- manifests -------------------------------------------------------------------------

    def get_manifest(self, ref: ImageReference, reference: str | None = None,
                     prefer: Endpoint | None = None) -> FetchedManifest:
        """The manifest or index ``reference`` (tag or digest; default: the ref's digest,
        else its tag), verified: a digest reference must match the bytes, and so must a
        ``Docker-Content-Digest`` the registry sends."""
        wanted = reference or ref.digest or ref.tag or "latest"
        path = f"/v2/{ref.repository}/manifests/{wanted}"
        scope = f"repository:{ref.repository}:pull"

        def fetch(endpoint: Endpoint) -> FetchedManifest:
            response = check(self._send(endpoint, "GET", path, scope,
                                        headers={"Accept": media.ACCEPT}),
                             f"manifest {ref.name}:{wanted}")
            content_type = response.header("Content-Type") or ""
            body = response.read(limit=media.MAX_MANIFEST)
            digest = sha256(body)
            if media.is_digest(wanted) and digest != wanted:
                raise DigestMismatch(f"manifest {ref.name}@{wanted}", wanted, digest)
            declared = response.header("Docker-Content-Digest")
            if declared and declared.startswith("sha256:") and declared != digest:
                raise DigestMismatch(f"manifest {ref.name}:{wanted} (Docker-Content-Digest)",
                                     declared, digest)
            return FetchedManifest(body, content_type.split(";")[0].strip(), digest, endpoint)

        return self.try_endpoints(self._endpoints(ref, prefer=prefer), fetch)

    def head_manifest(self, ref: ImageReference) -> tuple[str, Endpoint]:
        """The digest ``ref`` resolves to now, without downloading (``pull: always``)."""
        wanted = ref.digest or ref.tag or "latest"
        path = f"/v2/{ref.repository}/manifests/{wanted}"
        scope = f"repository:{ref.repository}:pull"

        def head(endpoint: Endpoint) -> tuple[str, Endpoint]:
            response = check(self._send(endpoint, "HEAD", path, scope,
                                        headers={"Accept": media.ACCEPT}),
                             f"manifest {ref.name}:{wanted}")
            response.close()
            digest = response.header("Docker-Content-Digest")
            if digest and media.is_digest(digest):
                return digest, endpoint
            fetched = self.get_manifest(ref, wanted, prefer=endpoint)  # no header: GET it
            return fetched.digest, fetched.endpoint

        return self.try_endpoints(self._endpoints(ref), head)

    def put_manifest(self, ref: ImageReference, body: bytes, media_type: str,
                     reference: str | None = None) -> str:
        wanted = reference or ref.tag or sha256(body)
        path = f"/v2/{ref.repository}/manifests/{wanted}"
        scope = f"repository:{ref.repository}:pull,push"
        digest = sha256(body)

        def put(endpoint: Endpoint) -> str:
            response = check(self._send(endpoint, "PUT", path, scope, body=body,
                                        headers={"Content-Type": media_type}),
                             f"put manifest {ref.name}:{wanted}")
            response.close()
            declared = response.header("Docker-Content-Digest")
            if declared and declared != digest:
                raise DigestMismatch(f"pushed manifest {ref.name}:{wanted}", digest, declared)
            return digest

        return self.try_endpoints(self._endpoints(ref, push=True), put)

    def delete_manifest(self, ref: ImageReference, digest: str) -> None:
        """The seeds' delete flow: DELETE by digest (the registry must allow deletes)."""
        path = f"/v2/{ref.repository}/manifests/{digest}"
        scope = f"repository:{ref.repository}:*"

        def delete(endpoint: Endpoint) -> None:
            check(self._send(endpoint, "DELETE", path, scope),
                  f"delete {ref.name}@{digest}").close()

        self.try_endpoints(self._endpoints(ref, push=True), delete)

    # -- blobs -----------------------------------------------------------------------------

    def open_blob(self, ref: ImageReference, digest: str, endpoint: Endpoint,
                  offset: int = 0) -> Response:
        """A blob's body as a stream, from ``offset`` (HTTP Range) when > 0: a 206 answers
        the range, a 200 the whole blob (the caller starts over). Raises like ``check``."""
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        response = self._send(endpoint, "GET", f"/v2/{ref.repository}/blobs/{digest}",
                              f"repository:{ref.repository}:pull", headers=headers)
        if offset and response.status == 416:
            response.close()
            raise TransientRegistryError(f"blob {digest}: range from {offset} refused")
        return check(response, f"blob {ref.name}@{digest}")

    def blob_exists(self, ref: ImageReference, digest: str, endpoint: Endpoint) -> bool:
        response = self._send(endpoint, "HEAD", f"/v2/{ref.repository}/blobs/{digest}",
                              f"repository:{ref.repository}:pull,push")
        response.close()
        if response.status == 404:
            return False
        check(response, f"blob {ref.name}@{digest}")
        return True

    def pull_endpoints(self, ref: ImageReference, prefer: Endpoint | None = None,
                       ) -> list[Endpoint]:
        return self._endpoints(ref, prefer=prefer)

    def push_endpoint(self, ref: ImageReference) -> Endpoint:
        """The endpoint that answers ``/v2/`` for pushes (verified TLS, or the insecure
        registry's TLS-without-verification, then its plain HTTP)."""

        def ping(endpoint: Endpoint) -> Endpoint:
            response = self._send(endpoint, "GET", "/v2/", f"repository:{ref.repository}:push")
            response.close()
            if response.status not in (200, 401):
                check(response, f"{endpoint.base}/v2/")
            return endpoint

        return self.try_endpoints(self._endpoints(ref, push=True), ping)

    def check_login(self, ref: ImageReference) -> None:
        """``GET /v2/`` with the credentials in use: AuthError if they are refused."""

        def ping(endpoint: Endpoint) -> None:
            check(self._send(endpoint, "GET", "/v2/", ""), f"{endpoint.base}/v2/").close()

        self.try_endpoints(self._endpoints(ref, push=True), ping)

    def upload_blob(self, ref: ImageReference, digest: str, *, size: int,
                    read: Callable[[], Iterator[bytes]], endpoint: Endpoint,
                    mount_from: str | None = None) -> str:
        """Push one blob unless the registry has it: cross-repository mount when
        ``mount_from`` names a repository of the same registry holding it, else a
        monolithic PUT, or PATCH chunks for big blobs. Returns what happened."""
        if self.blob_exists(ref, digest, endpoint):
            return "exists"
        scope = f"repository:{ref.repository}:pull,push"
        query = ""
        if mount_from and mount_from != ref.repository:
            scope += f" repository:{mount_from}:pull"
            query = "?" + urlencode({"mount": digest, "from": mount_from})
        start = self._send(endpoint, "POST", f"/v2/{ref.repository}/blobs/uploads/{query}",
                           scope, headers={"Content-Length": "0"}, body=b"")
        if start.status == 201:
            start.close()
            return "mounted"
        check(start, f"start upload of {digest}").close()
        location = start.header("Location")
        if not location:
            raise RegistryError(f"{endpoint.host}: upload started without a Location")
        location = urljoin(endpoint.base + "/", location)
        if size <= MONOLITHIC_LIMIT:
            final = _with_digest(location, digest)
            check(self._send(endpoint, "PUT", final, scope, body=b"".join(read()),
                             headers={"Content-Type": "application/octet-stream"}),
                  f"upload of {digest}").close()
            return "uploaded"
        offset = 0
        for chunk in _rechunk(read(), MONOLITHIC_LIMIT):
            end = offset + len(chunk) - 1
            response = check(self._send(endpoint, "PATCH", location, scope, body=chunk, headers={
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{offset}-{end}", "Content-Length": str(len(chunk))}),
                f"upload chunk {offset}-{end} of {digest}")
            response.close()
            location = urljoin(location, response.header("Location") or location)
            offset = end + 1
        check(self._send(endpoint, "PUT", _with_digest(location, digest), scope, body=b"",
                         headers={"Content-Length": "0"}), f"finish upload of {digest}").close()
        return "uploaded in chunks"

    # -- listings --------------------------------------------------------------------------

    def catalog(self, registry: str) -> list[str]:
        ref = ImageReference(registry, "_catalog", None, None)
        return self._paged(ref, "/v2/_catalog?n=1000", "registry:catalog:*", "repositories")

    def tags(self, ref: ImageReference) -> list[str]:
        return self._paged(ref, f"/v2/{ref.repository}/tags/list?n=1000",
                           f"repository:{ref.repository}:pull", "tags")

    def _paged(self, ref: ImageReference, path: str, scope: str, key: str) -> list[str]:
        """Every page, following ``Link: <...>; rel="next"`` as the spec paginates."""

        def listing(endpoint: Endpoint) -> list[str]:
            found: list[str] = []
            url: str | None = path
            while url:
                response = check(self._send(endpoint, "GET", url, scope), f"list {path}")
                link = response.header("Link")
                data = json.loads(response.read(limit=16 << 20) or b"{}")
                found += [str(item) for item in (data.get(key) or [])]
                url = link.split(";")[0].strip().strip("<>") if link and 'rel="next"' in link \
                    else None
            return found

        return self.try_endpoints(self._endpoints(ref, push=True), listing)


def _with_digest(location: str, digest: str) -> str:
    return location + ("&" if "?" in location else "?") + urlencode({"digest": digest})


def _rechunk(chunks: Iterator[bytes], size: int) -> Iterator[bytes]:
    pending = bytearray()
    for chunk in chunks:
        pending += chunk
        while len(pending) >= size:
            yield bytes(pending[:size])
            del pending[:size]
    if pending:
        yield bytes(pending)
