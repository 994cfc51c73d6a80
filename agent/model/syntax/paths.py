"""The one normalizer for absolute POSIX paths in manifests."""

from __future__ import annotations

import posixpath


def normalize_path(text: str) -> str:
    """``posixpath.normpath``, except that a leading ``//`` becomes ``/``: the kernel and
    dockerd read it as ``/``, so two spellings must not name two resources."""
    normalized = posixpath.normpath(text)
    return "/" + normalized.lstrip("/") if normalized.startswith("//") else normalized
