"""Test images on disk, in the two formats peers exchange: OCI image layout, docker save.

Both are for feeding skopeo (``oci:DIR:TAG``, ``docker-archive:PATH``) and pyprov's
``load``; both are deterministic (fixed mtimes, sorted entries) like the images.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from tests.registry.images import EPOCH, OCI, Blob, Image, ImageIndex

__all__ = ["REF_NAME_ANNOTATION", "write_docker_archive", "write_oci_layout"]

REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"


def write_oci_layout(image: Image | ImageIndex, directory: Path, *,
                     ref_name: str | None = "latest") -> Path:
    """An OCI image layout: ``oci-layout``, ``index.json``, ``blobs/sha256/*``.

    ``index.json`` names ``image`` (a manifest or an index) under ``ref_name``, the tag
    skopeo's ``oci:DIR:REF`` looks up. ``directory`` may exist; it is returned.
    """
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    children = image.images if isinstance(image, ImageIndex) else (image,)
    for blob in _unique([image.manifest, *(b for child in children
                                           for b in (child.manifest, *child.blobs))]):
        _copy_blob(blob, blobs / blob.digest.split(":")[1])
    annotations = {REF_NAME_ANNOTATION: ref_name} if ref_name else {}
    descriptor = image.manifest.descriptor(**({"annotations": annotations}
                                              if annotations else {}))
    (directory / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    index = {"schemaVersion": 2, "mediaType": OCI.index, "manifests": [descriptor]}
    (directory / "index.json").write_text(json.dumps(index))
    return directory


def write_docker_archive(image: Image, path: Path, repo_tags: Sequence[str]) -> Path:
    """The classic ``docker save`` tar: ``manifest.json``, ``repositories``, the config
    as ``<hex>.json`` and each layer uncompressed as ``<diff_id hex>/layer.tar``.

    ``repo_tags`` like ``["busybox:latest"]`` (may be empty: an untagged image).
    """
    layer_dirs = [layer.diff_id.split(":")[1] for layer in image.layers]
    config_name = f"{image.config.digest.split(':')[1]}.json"
    manifest = [{"Config": config_name, "RepoTags": list(repo_tags),
                 "Layers": [f"{name}/layer.tar" for name in layer_dirs]}]
    repositories: dict[str, dict[str, str]] = {}
    for reference in repo_tags:
        repository, _, tag = reference.rpartition(":")
        repositories.setdefault(repository, {})[tag] = layer_dirs[-1]
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, layer in zip(layer_dirs, image.layers, strict=True):
            _add_dir(tar, name)
            _add(tar, f"{name}/VERSION", b"1.0")
            with layer.open_tar() as stream:
                _add_stream(tar, f"{name}/layer.tar", stream, layer.uncompressed_size)
        _add(tar, config_name, image.config.read())
        _add(tar, "manifest.json", json.dumps(manifest).encode())
        if repositories:
            _add(tar, "repositories", json.dumps(repositories).encode())
    return path


def _unique(blobs: Sequence[Blob]) -> list[Blob]:
    return list({blob.digest: blob for blob in blobs}.values())


def _copy_blob(blob: Blob, target: Path) -> None:
    if target.exists() and target.stat().st_size == blob.size:
        return
    if blob.path is not None:
        shutil.copyfile(blob.path, target)
    else:
        target.write_bytes(blob.read())


def _info(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mtime, info.mode = EPOCH, 0o644
    return info


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = _info(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    tar.addfile(info)


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    _add_stream(tar, name, io.BytesIO(data), len(data))


def _add_stream(tar: tarfile.TarFile, name: str, stream: IO[bytes], size: int) -> None:
    info = _info(name)
    info.size = size
    tar.addfile(info, stream)
