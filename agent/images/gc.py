"""Garbage collection and verification of the store.

GC (under the store's exclusive lock, so no pull is adding meanwhile): every blob and
unpacked layer that no reference reaches is deleted, and partial downloads older than a
day (a resume that never came). Verify re-hashes every blob against its name and checks
that each referenced image is complete; unpacked trees are checked for presence, not
re-hashed (their diff_id was verified when they were unpacked).
"""

from __future__ import annotations

import hashlib
import shutil
import time
from dataclasses import dataclass, field

from agent.errors import PyprovError
from agent.store.layout import ImageStore

PARTIAL_MAX_AGE = 24 * 3600
READ_CHUNK = 1 << 20


@dataclass
class Collected:
    blobs: list[str] = field(default_factory=list)
    layers: list[str] = field(default_factory=list)
    partials: list[str] = field(default_factory=list)
    freed: int = 0


def _reachable(store: ImageStore, in_use: frozenset[str]) -> tuple[set[str], set[str]]:
    """Blobs and unpacked layers that an image name, or a container (``in_use``: manifest
    digests, named or not any more), still needs."""
    blobs: set[str] = set()
    layers: set[str] = set()
    images = store.images()
    kept: list[tuple[str, str | None]] = [(image.manifest.digest, image.manifest.media_type)
                                          for image in images]
    kept += [(digest, None) for digest in in_use if store.has_blob(digest)]
    blobs.update(image.resolved for image in images)  # the index, not its children
    for digest, media_type in kept:
        blobs.add(digest)
        try:
            manifest = store.manifest_at(digest, media_type)
            blobs.add(manifest.config.digest)
            blobs.update(layer.digest for layer in manifest.layers)
            layers.update(store.config_at(digest).diff_ids)
        except (PyprovError, OSError):
            continue  # an incomplete image keeps what it has; a pull completes it
    return blobs, layers


def collect(store: ImageStore, in_use: frozenset[str] = frozenset()) -> Collected:
    """Delete what no image name, and no container (``in_use``: the manifest digests
    containers were made from), still needs."""
    done = Collected()
    with store.locked(exclusive=True):
        blobs, layers = _reachable(store, in_use)
        for digest in list(store.blobs()):
            if digest not in blobs:
                path = store.blob_path(digest)
                done.freed += path.stat().st_size
                path.unlink()
                done.blobs.append(digest)
        layer_root = store.root / "layers" / "sha256"
        if layer_root.is_dir():
            for entry in layer_root.iterdir():
                if f"sha256:{entry.name}" not in layers:  # also half-unpacked staging dirs
                    shutil.rmtree(entry, ignore_errors=True)
                    done.layers.append(entry.name)
        ingest = store.root / "ingest"
        if ingest.is_dir():
            for partial in ingest.iterdir():
                if time.time() - partial.stat().st_mtime > PARTIAL_MAX_AGE:
                    partial.unlink(missing_ok=True)
                    done.partials.append(partial.name)
    return done


def verify(store: ImageStore) -> list[str]:
    """Every problem found (empty: the store is sound)."""
    problems: list[str] = []
    with store.locked():
        for digest in store.blobs():
            sha = hashlib.sha256()
            with store.blob_path(digest).open("rb") as blob:
                while chunk := blob.read(READ_CHUNK):
                    sha.update(chunk)
            if "sha256:" + sha.hexdigest() != digest:
                problems.append(f"blob {digest} is damaged (hashes to sha256:{sha.hexdigest()})")
        for image in store.images():
            try:
                manifest = store.manifest_of(image)
                config = store.config_of(image)
            except (PyprovError, OSError) as exc:
                problems.append(f"{image.name}: {exc}")
                continue
            for layer, diff_id in zip(manifest.layers, config.diff_ids, strict=False):
                if not store.has_blob(layer.digest):
                    problems.append(f"{image.name}: layer {layer.digest} is missing")
                elif not store.has_layer(diff_id):
                    problems.append(f"{image.name}: layer {diff_id} is not unpacked")
    return problems
