"""pyprov's registry client against Debian's docker-registry, cross-checked with skopeo.

Pulls land in a temp store; every digest is compared with what the test images are
(built and pushed by tests.registry, independently of pyprov) and with what skopeo says.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.errors import AuthError, NotFound, RegistryError
from agent.images.pull import Puller
from agent.images.push import push, tag
from agent.model.syntax.reference import ImageReference, parse_reference
from agent.oci.media import Platform
from agent.registry.client import RegistryClient
from agent.registry.credentials import Credentials, CredentialStore
from agent.registry.hosts import RegistryConfig
from agent.store.layout import ImageStore
from tests.registry.contents import USERS, TestImages
from tests.registry.images import Image, ImageIndex
from tests.registry.server import Registry
from tests.registry.token_server import TokenServer

pytest_plugins = ["tests.registry.fixtures"]


def client(tmp_path: Path, config: RegistryConfig | None = None,
           credentials: dict[str, Credentials] | None = None) -> RegistryClient:
    store = CredentialStore(tmp_path / "docker-config.json")
    for registry, given in (credentials or {}).items():
        store.store(registry, given)
    return RegistryClient(config or RegistryConfig(), credentials=store)


def pull(tmp_path: Path, name: str, config: RegistryConfig | None = None,
         platform: str | None = None, **kwargs: dict[str, Credentials]) -> tuple[
             ImageStore, object]:
    store = ImageStore(tmp_path / "images")
    puller = Puller(client(tmp_path, config, **kwargs), store, unpack=False)
    return store, puller.pull(parse_reference(name),
                              Platform.parse(platform) if platform else None)


def skopeo(*args: str) -> str:
    done = subprocess.run(["skopeo", *args], capture_output=True, text=True, check=False,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("tag_name", ["busybox:docker", "busybox:oci", "busybox:zstd"])
def test_pull_verifies_and_stores_every_blob(registry: Registry, registry_images: TestImages,
                                            tmp_path: Path, tag_name: str) -> None:
    image = registry_images.by_reference()[tag_name]
    assert isinstance(image, Image)
    store, _ = pull(tmp_path, f"{registry.host}/{tag_name}")
    stored = store.image(f"{registry.host}/{tag_name}")
    assert stored is not None
    assert stored.manifest.digest == image.digest
    assert stored.resolved == image.digest
    for blob in image.blobs:
        assert store.blob_path(blob.digest).read_bytes() == blob.read()
    # The same digest as an independent client sees.
    raw = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{registry.host}/{tag_name}")
    assert store.read_blob(image.digest) == raw.encode()


def test_a_second_pull_downloads_nothing(registry: Registry, tmp_path: Path) -> None:
    store = ImageStore(tmp_path / "images")
    puller = Puller(client(tmp_path), store, unpack=False)
    first = puller.pull(parse_reference(f"{registry.host}/busybox:oci"))
    second = puller.pull(parse_reference(f"{registry.host}/busybox:oci"))
    assert first.downloaded > 0
    assert first.changed
    assert (second.downloaded, second.changed) == (0, False)


@pytest.mark.parametrize("tag_name", ["multi:latest", "multi:list"])
def test_an_index_yields_the_hosts_platform_or_the_one_asked(
        registry: Registry, registry_images: TestImages, tmp_path: Path, tag_name: str) -> None:
    index = registry_images.by_reference()[tag_name]
    assert isinstance(index, ImageIndex)
    store, _ = pull(tmp_path, f"{registry.host}/{tag_name}")
    stored = store.image(f"{registry.host}/{tag_name}")
    assert stored is not None
    assert stored.manifest.digest == index.for_platform("linux/amd64").digest
    assert stored.resolved == index.digest  # what `pull: always` compares with upstream
    arm_store, _ = pull(tmp_path / "arm", f"{registry.host}/{tag_name}", platform="linux/arm64")
    arm = arm_store.image(f"{registry.host}/{tag_name}")
    assert arm is not None
    assert arm.manifest.digest == index.for_platform("linux/arm64").digest
    with pytest.raises(RegistryError, match="no image for platform linux/s390x"):
        pull(tmp_path / "s390x", f"{registry.host}/{tag_name}", platform="linux/s390x")


def test_unknown_references_are_not_found(registry: Registry, tmp_path: Path) -> None:
    with pytest.raises(NotFound, match=r"MANIFEST_UNKNOWN|NAME_UNKNOWN"):
        pull(tmp_path, f"{registry.host}/busybox:no-such-tag")
    assert not (tmp_path / "images" / "index.json").exists()


def test_push_keeps_digests_skopeo_agrees_and_mounts_within_a_registry(
        registry: Registry, scratch_registry: Registry, tmp_path: Path) -> None:
    store, _ = pull(tmp_path, f"{registry.host}/busybox:docker")
    registry_client = client(tmp_path)
    source = f"{registry.host}/busybox:docker"
    target = f"{scratch_registry.host}/team/busybox:1"
    tag(store, source, target)
    first = push(registry_client, store, target)
    assert set(first.blobs.values()) == {"uploaded"}
    assert first.digest == store.image(str(parse_reference(source))).manifest.digest  # type: ignore[union-attr]
    inspected = json.loads(skopeo("inspect", "--tls-verify=false", f"docker://{target}"))
    assert inspected["Digest"] == first.digest
    skopeo("copy", "--src-tls-verify=false", f"docker://{target}",
           f"oci:{tmp_path}/skopeo-copy:x")  # skopeo verifies every blob it copies
    again = push(registry_client, store, target)
    assert set(again.blobs.values()) == {"exists"}
    other = f"{scratch_registry.host}/other/busybox:1"
    tag(store, target, other)
    mounted = push(registry_client, store, other)
    assert set(mounted.blobs.values()) == {"mounted"}
    assert "mount=" in scratch_registry.log_text()


def test_what_skopeo_pushes_pyprov_pulls_identically(
        registry: Registry, scratch_registry: Registry, tmp_path: Path) -> None:
    skopeo("copy", "--src-tls-verify=false", "--dest-tls-verify=false",
           f"docker://{registry.host}/busybox:zstd", f"docker://{scratch_registry.host}/z:1")
    expected = json.loads(skopeo("inspect", "--tls-verify=false",
                                 f"docker://{scratch_registry.host}/z:1"))["Digest"]
    store, _ = pull(tmp_path, f"{scratch_registry.host}/z:1")
    stored = store.image(f"{scratch_registry.host}/z:1")
    assert stored is not None
    assert stored.manifest.digest == expected


def test_catalog_tags_and_delete(registry: Registry, scratch_registry: Registry,
                                 tmp_path: Path) -> None:
    registry_client = client(tmp_path)
    assert {"busybox", "multi"} <= set(registry_client.catalog(registry.host))
    busybox = ImageReference(registry.host, "busybox", None, None)
    assert {"docker", "oci", "zstd"} <= set(registry_client.tags(busybox))
    store, _ = pull(tmp_path, f"{registry.host}/busybox:oci")
    target = f"{scratch_registry.host}/doomed:1"
    tag(store, f"{registry.host}/busybox:oci", target)
    digest = push(registry_client, store, target).digest
    registry_client.delete_manifest(parse_reference(target), digest)
    with pytest.raises(NotFound):
        registry_client.get_manifest(parse_reference(target))


def test_basic_auth_needs_the_right_credentials(auth_registry: Registry,
                                                tmp_path: Path) -> None:
    name = f"{auth_registry.host}/busybox:oci"
    with pytest.raises(AuthError, match="asks for a login"):
        pull(tmp_path / "anonymous", name)
    with pytest.raises(AuthError, match="401"):
        pull(tmp_path / "wrong", name,
             credentials={auth_registry.host: Credentials("alice", "wrong")})
    store, _ = pull(tmp_path / "right", name,
                    credentials={auth_registry.host: Credentials("alice", USERS["alice"])})
    assert store.image(name) is not None


@pytest.fixture(scope="module")
def local_realm_registry() -> Iterator[Registry]:
    """Token auth with the realm on the registry's own host name (another port, HTTP, as
    the registry itself): the credentials may go there."""
    tokens = TokenServer(USERS, address="127.0.0.1")
    tokens.start()
    registry = Registry(token_server=tokens, name="local-realm")
    try:
        registry.start()
        yield registry
    finally:
        registry.close()
        tokens.stop()


def test_token_flow_sends_credentials_to_the_registrys_own_realm_and_caches(
        local_realm_registry: Registry, tmp_path: Path) -> None:
    tokens = local_realm_registry.token_server
    assert tokens is not None
    alice = {local_realm_registry.host: Credentials("alice", USERS["alice"])}
    registry_client = client(tmp_path, credentials=alice)
    tokens.clear_requests()
    ref = parse_reference(f"{local_realm_registry.host}/none:1")
    with pytest.raises(NotFound):  # authorized (a token), and there is no such image
        registry_client.get_manifest(ref)
    asked = tokens.requests
    assert len(asked) == 1
    assert (asked[0].authorization or "").startswith("Basic ")
    with pytest.raises(NotFound):  # the cached token serves the same scope again
        registry_client.get_manifest(parse_reference(f"{local_realm_registry.host}/none:2"))
    assert len(tokens.requests) == 1


def test_a_plain_http_realm_on_another_host_is_refused_unasked(token_registry: Registry,
                                                               tmp_path: Path) -> None:
    tokens = token_registry.token_server
    assert tokens is not None
    tokens.clear_requests()
    with pytest.raises(AuthError, match=r"plain-HTTP token realm .* on another host"):
        pull(tmp_path, f"{token_registry.host}/busybox:oci",
             credentials={token_registry.host: Credentials("alice", USERS["alice"])})
    assert tokens.requests == []  # nothing, not even an anonymous request, went there


def test_a_mirror_serves_and_a_dead_one_is_skipped(registry: Registry,
                                                   mirror_registry: Registry,
                                                   registry_images: TestImages,
                                                   tmp_path: Path) -> None:
    name = f"{registry.host}/busybox:docker"
    before = mirror_registry.log_text()
    config = RegistryConfig(mirrors={registry.host: ("http://127.0.0.1:9",  # nothing listens
                                                     mirror_registry.url)})
    store, _ = pull(tmp_path, name, config)
    stored = store.image(name)
    assert stored is not None
    assert stored.manifest.digest == registry_images.busybox_docker.digest
    served = mirror_registry.log_text()[len(before):]
    assert "GET /v2/busybox/manifests/docker" in served
    assert "/v2/busybox/blobs/" in served


def test_an_insecure_tls_registry_is_spoken_to_in_tls_without_verification(
        tls_registry: Registry, tmp_path: Path) -> None:
    # 127.0.0.0/8 is insecure as dockerd decides: TLS without verification first; this
    # registry speaks only TLS (self-signed), so a success means no downgrade happened.
    assert tls_registry.url.startswith("https://")
    store, _ = pull(tmp_path, f"{tls_registry.host}/busybox:oci")
    assert store.image(f"{tls_registry.host}/busybox:oci") is not None
