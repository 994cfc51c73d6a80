"""Registries for the tests: real ones, a hostile one, and the images to put in them.

- :class:`Registry` (``server.py``): Debian's CNCF distribution registry as a process,
  plain, TLS, htpasswd, token auth (:class:`TokenServer`, ``token_server.py``) or
  pull-through cache; always ``close()`` (or ``with``).
- :class:`HostileRegistry` (``hostile.py``): a programmable HTTP server for fault
  injection, with ready-made behaviours (``behaviours.py``: wrong digests, resets,
  stalls, 429s, ...).
- Images (``model.py`` the types, ``images.py`` the builders, ``big.py`` the benchmark
  image): deterministic busybox images in Docker, OCI and zstd flavours, multi-platform
  indexes, the ~200 MB benchmark image; written to disk by ``archives.py`` (OCI layout,
  ``docker save`` tar) and pushed by ``client.py``'s :func:`push`, a raw HTTP client that
  shares nothing with pyprov's.
- ``httpd.py`` (the stdlib servers' plumbing), ``certs.py`` (throw-away CA and keys),
  ``contents.py`` (users, grants and images of the fixture registries).

pytest: ``pytest_plugins = ["tests.registry.fixtures"]`` gives ``registry``,
``auth_registry``, ``token_registry``, ``mirror_registry``, ``tls_registry``,
``scratch_registry``, ``hostile``, ``registry_images`` and ``big_image``.
"""

from tests.registry.archives import write_docker_archive, write_oci_layout
from tests.registry.big import big_image
from tests.registry.client import PushError, RawClient, Response, parse_challenge, push
from tests.registry.hostile import HostileRegistry
from tests.registry.images import (
    DOCKER,
    OCI,
    OCI_LAYER_ZSTD,
    Blob,
    Entry,
    Image,
    ImageBuildError,
    ImageIndex,
    Layer,
    MediaTypes,
    Platform,
    build_image,
    busybox_image,
    multi_platform_index,
)
from tests.registry.server import Registry, RegistryError, reap_stale_registries
from tests.registry.token_server import ANONYMOUS, Access, TokenServer

__all__ = [
    "ANONYMOUS",
    "DOCKER",
    "OCI",
    "OCI_LAYER_ZSTD",
    "Access",
    "Blob",
    "Entry",
    "HostileRegistry",
    "Image",
    "ImageBuildError",
    "ImageIndex",
    "Layer",
    "MediaTypes",
    "Platform",
    "PushError",
    "RawClient",
    "Registry",
    "RegistryError",
    "Response",
    "TokenServer",
    "big_image",
    "build_image",
    "busybox_image",
    "multi_platform_index",
    "parse_challenge",
    "push",
    "reap_stale_registries",
    "write_docker_archive",
    "write_oci_layout",
]
