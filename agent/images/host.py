"""This host's image machinery, configured one way for the CLI and the reconciler alike:
the store under the state dir, the registry client from the daemon.json dockerd reads
(mirrors, insecure registries) plus pyprov's own registry settings."""

from __future__ import annotations

from pathlib import Path

from agent.errors import PyprovError
from agent.registry.client import RegistryClient
from agent.registry.hosts import DAEMON_JSON, RegistryConfig
from agent.state import StateDir
from agent.store.layout import ImageStore, StoredImage


def store_for(state: StateDir) -> ImageStore:
    return ImageStore(state.images)


def client_for(state: StateDir, daemon_json: Path = DAEMON_JSON) -> RegistryClient:
    return RegistryClient(RegistryConfig.load(daemon_json, state.registries))


def is_complete(store: ImageStore, image: StoredImage, unpacked: bool = True) -> bool:
    """Every blob of the image in the store (and every layer unpacked, if asked)."""
    try:
        manifest = store.manifest_of(image)
        config = store.config_of(image)
    except (PyprovError, OSError):
        return False
    blobs = all(store.has_blob(layer.digest) for layer in manifest.layers)
    return blobs and (not unpacked or all(store.has_layer(d) for d in config.diff_ids))
