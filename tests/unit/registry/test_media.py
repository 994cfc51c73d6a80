"""Manifests and indexes as registries serve them, and what pyprov refuses."""

from __future__ import annotations

import json

import pytest

from agent.errors import UnsupportedManifest
from agent.oci import media
from agent.oci.media import ImageIndex, ImageManifest, Platform

DIGEST = "sha256:" + "a" * 64
CONFIG = {"mediaType": media.OCI_CONFIG, "digest": DIGEST, "size": 10}
LAYER = {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": DIGEST,
         "size": 20}


def manifest(**changes: object) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": media.OCI_MANIFEST, "config": CONFIG,
                       "layers": [LAYER], **changes}).encode()


def index(*platforms: dict[str, str]) -> bytes:
    return json.dumps({"schemaVersion": 2, "mediaType": media.OCI_INDEX, "manifests": [
        {"mediaType": media.OCI_MANIFEST, "digest": "sha256:" + str(i) * 64, "size": 1,
         "platform": p} for i, p in enumerate(platforms)]}).encode()


def test_an_image_manifest_parses_with_its_descriptors() -> None:
    parsed = media.parse(manifest(), media.OCI_MANIFEST)
    assert isinstance(parsed, ImageManifest)
    assert parsed.config.digest == DIGEST
    assert [layer.size for layer in parsed.layers] == [20]


def test_the_content_type_stands_in_for_a_missing_media_type() -> None:
    body = json.dumps({"schemaVersion": 2, "config": CONFIG, "layers": []}).encode()
    assert isinstance(media.parse(body, media.DOCKER_MANIFEST + "; charset=utf-8"),
                      ImageManifest)
    with pytest.raises(UnsupportedManifest, match="unknown manifest media type"):
        media.parse(body, None)  # neither says what it is


@pytest.mark.parametrize(("body", "content_type", "message"), [
    (manifest(schemaVersion=1), media.OCI_MANIFEST, "schema 1"),
    (b'{"schemaVersion": 1, "fsLayers": []}', media.DOCKER_SCHEMA1[1], "schema 1"),
    (manifest(), media.OCI_INDEX, "Content-Type"),  # an index asked, a manifest served
    (manifest(layers=[{**LAYER, "digest": "sha256:xyz"}]), media.OCI_MANIFEST, "digest"),
    (manifest(layers=[{**LAYER, "size": -1}]), media.OCI_MANIFEST, "size"),
    (manifest(layers=[{**LAYER, "size": True}]), media.OCI_MANIFEST, "size"),
    (manifest(config="x"), media.OCI_MANIFEST, "descriptor"),
    (b"[1, 2]", media.OCI_MANIFEST, "object"),
    (b"not json", media.OCI_MANIFEST, "not JSON"),
    (b" " * (media.MAX_MANIFEST + 1), media.OCI_MANIFEST, "exceeds"),
    (manifest(mediaType="application/x-unknown"), None, "unknown"),
])
def test_what_a_registry_must_not_serve_is_refused(body: bytes, content_type: str | None,
                                                   message: str) -> None:
    with pytest.raises(UnsupportedManifest, match=message):
        media.parse(body, content_type)


def test_an_index_picks_this_hosts_platform_or_the_one_asked() -> None:
    parsed = media.parse(index({"os": "linux", "architecture": "arm64", "variant": "v8"},
                               {"os": "linux", "architecture": "amd64"},
                               {"os": "linux", "architecture": "arm", "variant": "v7"}),
                         media.OCI_INDEX)
    assert isinstance(parsed, ImageIndex)
    assert parsed.select(Platform.parse("linux/amd64")).digest == "sha256:" + "1" * 64
    assert parsed.select(Platform.parse("linux/arm64")).digest == "sha256:" + "0" * 64
    assert parsed.select(Platform.parse("linux/arm")).digest == "sha256:" + "2" * 64
    with pytest.raises(UnsupportedManifest, match="offers: linux/arm64/v8, linux/amd64"):
        parsed.select(Platform.parse("linux/s390x"))


def test_platform_names_normalize_as_containerd_does() -> None:
    assert Platform.parse("linux/x86_64") == Platform("linux", "amd64")
    assert Platform.parse("linux/aarch64/v8") == Platform("linux", "arm64")
    assert Platform.parse("linux/arm") == Platform("linux", "arm", "v7")
    assert media.host().os == "linux"
