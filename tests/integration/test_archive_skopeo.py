"""save / load against skopeo (containers/image, the reader and writer podman and CRI-O
use): what pyprov writes, skopeo reads with the same digests; what skopeo writes, pyprov
loads. skopeo 1.9.3 (Debian 12) is the peer CI installs; a missing one is an error."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from agent.images.archive import load, save
from agent.oci import media
from agent.oci.config import parse_config
from agent.oci.media import ImageManifest
from agent.store.layout import ImageStore
from tests.unit.images.test_archive import BASE, Built, add_image

NAME = "docker.io/library/busybox:latest"


def skopeo(*args: str) -> bytes:
    done = subprocess.run(["skopeo", "--insecure-policy", *args], capture_output=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


@pytest.fixture(scope="module", autouse=True)
def _skopeo_installed() -> None:
    assert shutil.which("skopeo"), "skopeo is not installed (apt-get install -y skopeo)"


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(tmp_path / "store")


@pytest.fixture
def built(store: ImageStore) -> Built:
    return add_image(store, NAME, [BASE, {"etc/motd": b"hello\n"}])


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_skopeo_reads_our_docker_archive_with_our_config(
        store: ImageStore, built: Built, tmp_path: Path) -> None:
    archive = tmp_path / "busybox.tar"
    save(store, [NAME], archive)
    source = f"docker-archive:{archive}"
    manifest = json.loads(skopeo("inspect", "--raw", source))
    assert manifest["config"]["digest"] == sha(built.config)
    assert [layer["digest"] for layer in manifest["layers"]] == list(built.diff_ids)
    assert skopeo("inspect", "--config", "--raw", source) == built.config
    # by the name RepoTags gives it, as `docker-archive:FILE:busybox:latest`
    named = json.loads(skopeo("inspect", "--raw", f"{source}:busybox:latest"))
    assert named["config"]["digest"] == sha(built.config)
    # copied as it is, the config keeps its digest
    skopeo("copy", source, f"dir:{tmp_path / 'copy'}")
    assert (tmp_path / "copy" / sha(built.config).removeprefix("sha256:")).read_bytes() == (
        built.config)
    # to an OCI layout too; skopeo re-marshals a Docker config into an OCI one there
    # (containers/image's schema2 -> OCI conversion), so the content is what must agree
    (tmp_path / "layout").mkdir()  # skopeo 1.9.3 does not make oci:'s parent
    target = f"oci:{tmp_path / 'layout' / 'copy'}:latest"
    skopeo("copy", source, target)
    config = skopeo("inspect", "--config", "--raw", target)
    assert sha(config) == json.loads(skopeo("inspect", "--raw", target))["config"]["digest"]
    assert parse_config(config) == parse_config(built.config)


def test_skopeo_reads_our_oci_archive_byte_for_byte(
        store: ImageStore, built: Built, tmp_path: Path) -> None:
    archive = tmp_path / "busybox-oci.tar"
    save(store, [NAME], archive, format="oci")
    raw = skopeo("inspect", "--raw", f"oci-archive:{archive}")
    assert sha(raw) == built.manifest.digest
    details = json.loads(skopeo("inspect", f"oci-archive:{archive}:{NAME}"))
    assert details["Digest"] == built.manifest.digest
    assert details["Layers"] == [layer.digest for layer in manifest(store).layers]


def manifest(store: ImageStore, name: str = NAME) -> ImageManifest:
    image = store.image(name)
    assert image is not None
    parsed = media.parse(store.read_blob(image.manifest.digest), image.manifest.media_type)
    assert isinstance(parsed, ImageManifest)
    return parsed


def oci_layout(store: ImageStore, built: Built, directory: Path) -> Path:
    """The image as a plain OCI layout directory (the ref.name is a bare tag, as skopeo's
    own oci: destination writes it)."""
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    parsed = manifest(store)
    for blob in (built.manifest, parsed.config, *parsed.layers):
        shutil.copyfile(store.blob_path(blob.digest), blobs / blob.digest.removeprefix("sha256:"))
    (directory / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    entry = {**built.manifest.to_json(),
             "annotations": {"org.opencontainers.image.ref.name": "v1"}}
    (directory / "index.json").write_text(json.dumps({"schemaVersion": 2,
                                                      "manifests": [entry]}))
    return directory


@pytest.mark.parametrize("transport", ["docker-archive", "oci-archive"])
def test_we_load_what_skopeo_writes(transport: str, store: ImageStore, built: Built,
                                    tmp_path: Path) -> None:
    layout = oci_layout(store, built, tmp_path / "layout")
    archive = tmp_path / f"skopeo-{transport}.tar"
    skopeo("copy", f"oci:{layout}:v1", f"{transport}:{archive}:example.com/team/app:v1")
    other = ImageStore(tmp_path / "other")
    assert load(other, archive, expect="example.com/team/app:v1") == [
        "example.com/team/app:v1"]
    loaded = manifest(other, "example.com/team/app:v1")
    assert loaded.config.digest == sha(built.config)
    config = parse_config(other.read_blob(loaded.config.digest))
    assert config.diff_ids == built.diff_ids
    if transport == "docker-archive":  # uncompressed, with skopeo's legacy symlink dirs
        assert [layer.digest for layer in loaded.layers] == list(built.diff_ids)
    else:  # blobs as they were (gzip)
        assert [layer.digest for layer in loaded.layers] == [
            layer.digest for layer in manifest(store).layers]
