"""The registry client against a hostile registry: wrong digests, wrong sizes, wrong types,
faults, stalls and foreign hosts. Each case must end in a clear error with nothing
admitted to the store, or in a correct image when the fault is transient; credentials
never reach another host.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from agent.errors import (
    AuthError,
    ContentError,
    DigestMismatch,
    NotFound,
    RegistryError,
    SizeMismatch,
    UnsupportedManifest,
)
from agent.images.pull import Puller, PullResult
from agent.model.syntax.reference import parse_reference
from agent.registry.client import RegistryClient
from agent.registry.credentials import Credentials, CredentialStore
from agent.registry.hosts import RegistryConfig
from agent.registry.http import ConnectionFailed, Urllib3Transport
from agent.store.layout import ImageStore
from tests.registry.behaviours import (
    Exchange,
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
    stall_mid_body,
    truncated,
    wrong_digest,
    wrong_media_type,
)
from tests.registry.contents import TestImages
from tests.registry.hostile import HostileRegistry
from tests.registry.images import Image

pytest_plugins = ["tests.registry.fixtures"]


@pytest.fixture
def image(registry_images: TestImages) -> Image:
    return registry_images.busybox_oci


def puller(tmp_path: Path, credentials: dict[str, Credentials] | None = None,
           read_timeout: float = 5.0) -> Puller:
    store = CredentialStore(tmp_path / "docker-config.json")
    for registry, given in (credentials or {}).items():
        store.store(registry, given)
    client = RegistryClient(RegistryConfig(), credentials=store,
                            http=Urllib3Transport(read_timeout=read_timeout))
    return Puller(client, ImageStore(tmp_path / "images"), unpack=False)


def pull(hostile: HostileRegistry, tmp_path: Path, **kwargs: object) -> PullResult:
    return puller(tmp_path, **kwargs).pull(  # type: ignore[arg-type]
        parse_reference(f"{hostile.host}/busybox:latest"))


def assert_nothing_admitted(tmp_path: Path, *digests: str) -> None:
    store = ImageStore(tmp_path / "images")
    assert store.images() == []
    for digest in digests:
        assert not store.has_blob(digest), digest


def layer_route(image: Image, index: int = 0) -> str:
    return f"/v2/busybox/blobs/{image.layers[index].blob.digest}"


# -- content that is not what it claims ----------------------------------------------------

def test_a_manifest_under_a_false_docker_content_digest(hostile: HostileRegistry,
                                                        image: Image, tmp_path: Path) -> None:
    hostile.serve_image("busybox", image)
    hostile.route("GET", "/v2/busybox/manifests/latest",
                  wrong_digest(image.manifest.read(), image.media_type))
    with pytest.raises(DigestMismatch, match="Docker-Content-Digest"):
        pull(hostile, tmp_path)
    assert_nothing_admitted(tmp_path, image.digest)


def test_a_manifest_fetched_by_digest_must_hash_to_it(hostile: HostileRegistry,
                                                      registry_images: TestImages,
                                                      tmp_path: Path) -> None:
    index = registry_images.multi_index
    hostile.serve_image("busybox", index)
    child = index.for_platform("linux/amd64")
    other = index.for_platform("linux/arm64")
    hostile.route("GET", f"/v2/busybox/manifests/{child.digest}",
                  respond(other.manifest.read(), content_type=child.media_type))
    with pytest.raises(DigestMismatch):
        pull(hostile, tmp_path)
    assert_nothing_admitted(tmp_path, child.digest, other.digest)


def test_a_layer_with_other_bytes_is_never_admitted(hostile: HostileRegistry, image: Image,
                                                    tmp_path: Path) -> None:
    hostile.serve_image("busybox", image)
    data = bytearray(image.layers[0].blob.read())
    data[len(data) // 2] ^= 0xFF
    hostile.route("GET", layer_route(image), blob(bytes(data)))
    with pytest.raises(DigestMismatch):
        pull(hostile, tmp_path)
    assert_nothing_admitted(tmp_path, image.layers[0].blob.digest)
    assert list((tmp_path / "images" / "ingest").iterdir()) == []  # the partial is gone


def test_a_layer_longer_than_its_descriptor(hostile: HostileRegistry, image: Image,
                                            tmp_path: Path) -> None:
    hostile.serve_image("busybox", image)
    hostile.route("GET", layer_route(image), blob(image.layers[0].blob.read() + b"x"))
    with pytest.raises(SizeMismatch):
        pull(hostile, tmp_path)
    assert_nothing_admitted(tmp_path, image.layers[0].blob.digest)


def test_a_body_longer_than_its_content_length(hostile: HostileRegistry, image: Image,
                                               tmp_path: Path) -> None:
    hostile.serve_image("busybox", image)
    hostile.route("GET", layer_route(image), overlong(image.layers[0].blob.read()))
    pull(hostile, tmp_path)  # the framing holds: the extra bytes are never read
    assert ImageStore(tmp_path / "images").has_blob(image.layers[0].blob.digest)


def test_a_layer_that_always_ends_short(hostile: HostileRegistry, image: Image,
                                        tmp_path: Path) -> None:
    hostile.serve_image("busybox", image)
    data = image.layers[0].blob.read()
    hostile.route("GET", layer_route(image), truncated(data, len(data) // 3))
    with pytest.raises(ConnectionFailed):
        pull(hostile, tmp_path)
    assert_nothing_admitted(tmp_path, image.layers[0].blob.digest)
    assert len(hostile.requests_to(layer_route(image))) == 5  # transient: retried, bounded


@pytest.mark.parametrize("case", ["index-as-manifest", "schema1", "unknown-type"])
def test_manifests_of_the_wrong_kind(hostile: HostileRegistry, registry_images: TestImages,
                                     image: Image, tmp_path: Path, case: str) -> None:
    hostile.serve_image("busybox", image)
    behaviour = {
        "index-as-manifest": wrong_media_type(registry_images.multi_index.manifest,
                                              image.media_type),
        "schema1": schema1_manifest("busybox", "latest"),
        "unknown-type": respond(b'{"schemaVersion": 2, "mediaType": "text/x-nope"}',
                                content_type="text/x-nope"),
    }[case]
    hostile.route("GET", "/v2/busybox/manifests/latest", behaviour)
    with pytest.raises(UnsupportedManifest):
        pull(hostile, tmp_path)
    assert_nothing_admitted(tmp_path)


# -- faults: transient ones are retried, the rest are not ----------------------------------

def test_5xx_then_success_is_retried(hostile: HostileRegistry, image: Image,
                                     tmp_path: Path) -> None:
    hostile.serve_image("busybox", image)
    hostile.route("GET", layer_route(image),
                  fail_then(blob(image.layers[0].blob), times=2, status=503))
    result = pull(hostile, tmp_path)
    assert result.manifest.digest == image.digest
    assert len(hostile.requests_to(layer_route(image))) == 3


def test_429_waits_for_retry_after(hostile: HostileRegistry, image: Image,
                                   tmp_path: Path) -> None:
    hostile.serve_image("busybox", image)
    hostile.route("GET", "/v2/busybox/manifests/latest",
                  rate_limited(manifest(image.manifest), retry_after="1"))
    pull(hostile, tmp_path)
    asked = hostile.requests_to("/v2/busybox/manifests/latest")
    assert len(asked) == 2


@pytest.mark.parametrize("status", [400, 403, 404])
def test_4xx_is_not_retried(hostile: HostileRegistry, image: Image, tmp_path: Path,
                            status: int) -> None:
    hostile.serve_image("busybox", image)
    hostile.route("GET", "/v2/busybox/manifests/latest", error(status, "DENIED"))
    with pytest.raises((RegistryError, ContentError)) as raised:
        pull(hostile, tmp_path)
    assert isinstance(raised.value, AuthError if status == 403 else
                      NotFound if status == 404 else RegistryError)
    assert len(hostile.requests_to("/v2/busybox/manifests/latest")) == 1


def test_a_reset_mid_layer_resumes_with_a_range(hostile: HostileRegistry, image: Image,
                                                tmp_path: Path) -> None:
    hostile.serve_image("busybox", image)
    data = image.layers[0].blob.read()
    cut = len(data) // 2
    hostile.route("GET", layer_route(image), ranged(data, cut_first_after=cut))
    pull(hostile, tmp_path)
    asked = hostile.requests_to(layer_route(image))
    assert len(asked) == 2
    assert asked[0].header("Range") is None
    # A reset drops what the kernel had not handed over yet: resume from what arrived.
    resumed = int((asked[1].header("Range") or "bytes=0-")[6:-1])
    assert 0 < resumed <= cut
    assert ImageStore(tmp_path / "images").has_blob(image.layers[0].blob.digest)


def test_a_stalled_layer_times_out_and_resumes(hostile: HostileRegistry, image: Image,
                                               tmp_path: Path) -> None:
    hostile.serve_image("busybox", image)
    data = image.layers[0].blob.read()
    hostile.route("GET", layer_route(image),
                  sequence(stall_mid_body(data, 4096), ranged(data)))
    pull(hostile, tmp_path, read_timeout=0.5)
    asked = hostile.requests_to(layer_route(image))
    assert [r.header("Range") for r in asked] == [None, "bytes=4096-"]


def test_a_reset_on_a_server_ignoring_ranges_starts_over(hostile: HostileRegistry,
                                                         image: Image, tmp_path: Path) -> None:
    hostile.serve_image("busybox", image)
    data = image.layers[0].blob.read()
    hostile.route("GET", layer_route(image),
                  sequence(reset_mid_body(data, len(data) // 2), blob(data)))
    pull(hostile, tmp_path)  # a 200 to a Range request: the partial is dropped, not mixed
    assert ImageStore(tmp_path / "images").has_blob(image.layers[0].blob.digest)


# -- credentials stay home -------------------------------------------------------------------

def _basic_only(expected: str, then: object) -> object:
    def behave(exchange: Exchange) -> None:
        if exchange.request.authorization == expected:
            then(exchange)  # type: ignore[operator]
        else:
            respond(status=401, headers={"WWW-Authenticate": 'Basic realm="hostile"'})(exchange)
    return behave


def test_credentials_do_not_follow_a_redirect_to_another_host(hostile: HostileRegistry,
                                                              image: Image,
                                                              tmp_path: Path) -> None:
    secret = "Basic " + base64.b64encode(b"alice:wonderland").decode()
    hostile.serve_image("busybox", image)
    for route in ("/v2/busybox/manifests/latest", f"/v2/busybox/manifests/{image.digest}"):
        hostile.route(["GET", "HEAD"], route,
                      _basic_only(secret, manifest(image.manifest)))  # type: ignore[arg-type]
    for layer_blob in image.blobs:
        path = f"/v2/busybox/blobs/{layer_blob.digest}"
        hostile.route("GET", path, _basic_only(  # type: ignore[arg-type]
            secret, redirect(f"{hostile.other_url}/cdn/{layer_blob.digest}")))
        hostile.route("GET", f"/cdn/{layer_blob.digest}", blob(layer_blob), on="other")
    pull(hostile, tmp_path, credentials={hostile.host: Credentials("alice", "wonderland")})
    cdn = [r for r in hostile.requests if r.listener == "other"]
    assert len(cdn) == len(image.blobs)
    assert all(r.authorization is None for r in cdn)
    assert any(r.authorization == secret for r in hostile.requests if r.listener == "main")


def test_a_plain_http_token_realm_on_another_host_gets_nothing(hostile: HostileRegistry,
                                                               image: Image,
                                                               tmp_path: Path) -> None:
    hostile.serve_image("busybox", image)
    hostile.require_token()
    with pytest.raises(AuthError, match="another host"):
        pull(hostile, tmp_path, credentials={hostile.host: Credentials("alice", "pw")})
    assert [r for r in hostile.requests if r.listener == "other"] == []
    assert_nothing_admitted(tmp_path)


def test_error_bodies_name_the_distribution_code(hostile: HostileRegistry,
                                                 tmp_path: Path) -> None:
    hostile.route("GET", "/v2/busybox/manifests/latest",
                  error(404, "MANIFEST_UNKNOWN", "manifest unknown"))
    with pytest.raises(NotFound) as raised:
        pull(hostile, tmp_path)
    assert raised.value.code == "MANIFEST_UNKNOWN"
    assert raised.value.status == 404
    assert json.dumps(str(raised.value))  # one line, printable
