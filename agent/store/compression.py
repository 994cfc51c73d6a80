"""A layer blob as its uncompressed tar stream, whatever compression its bytes show.

The descriptor's media type is deliberately not consulted: registries and build tools
mislabel layers (a gzip blob served as ``.tar``, a plain tar as ``.tar+gzip``), so the
magic bytes decide. gzip (``1f 8b``) and zstd (``28 b5 2f fd``) are decompressed;
anything else is handed on as a plain tar for the tar reader to judge, except the
compressions OCI does not allow (xz, bzip2), which are refused by name so the error says
what happened.

Malformed compressed data is the layer's fault, so it raises
:class:`~agent.errors.UnsafeLayer` with the member ``STREAM``.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, BinaryIO, Literal, Protocol, cast

from agent.errors import UnsafeLayer

if TYPE_CHECKING:
    import zstandard

Compression = Literal["gzip", "zstd", "tar"]

STREAM = "(compressed stream)"
"""The ``member`` of an UnsafeLayer that is about the stream, not one tar entry."""

CHUNK = 256 * 1024
"""Compressed bytes read at a time: large enough that per-call overhead vanishes."""

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_REFUSED_MAGIC = {b"\xfd7zXZ\x00": "xz", b"BZh": "bzip2"}
SNIFF = 6
"""Bytes :func:`sniff` needs to see (xz's magic is the longest)."""


class Reader(Protocol):
    """What the tar reader needs: ``read(n)`` returning at most n bytes, b"" only at the end."""

    def read(self, size: int, /) -> bytes: ...


def sniff(head: bytes) -> Compression:
    """The compression the first :data:`SNIFF` bytes of a blob show."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    for magic, name in _REFUSED_MAGIC.items():
        if head.startswith(magic):
            raise UnsafeLayer(STREAM, f"{name}-compressed: OCI layers are tar, gzip or zstd")
    return "tar"


@contextmanager
def open_layer(blob: Path | BinaryIO) -> Iterator[Reader]:
    """Yield the uncompressed stream of ``blob`` (a path, or a binary stream the caller
    keeps ownership of; it is read from its current position and need not seek)."""
    with ExitStack() as stack:
        raw: Reader = stack.enter_context(blob.open("rb")) if isinstance(blob, Path) else blob
        head = _read_upto(raw, SNIFF)
        source = _Prefixed(head, raw)
        kind = sniff(head)
        if kind == "gzip":
            yield _GzipReader(source)
        elif kind == "zstd":
            yield _ZstdReader(source)
        else:
            yield source


def _read_upto(raw: Reader, size: int) -> bytes:
    """Exactly ``size`` bytes, fewer only at the end (sockets return short reads)."""
    parts: list[bytes] = []
    got = 0
    while got < size:
        part = raw.read(size - got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


class _Prefixed:
    """The bytes already read for sniffing, then the rest: streams need not seek back."""

    def __init__(self, prefix: bytes, rest: Reader) -> None:
        self._prefix, self._rest = prefix, rest

    def read(self, size: int, /) -> bytes:
        if self._prefix:
            out, self._prefix = self._prefix[:size], self._prefix[size:]
            return out
        return self._rest.read(size)


class _GzipReader:
    """Concatenated gzip members (as ``pigz`` or ``cat a.gz b.gz`` make them), then only
    zero padding if anything. Trailing garbage is refused rather than ignored, because
    tools that disagree on where a stream ends see different layers."""

    def __init__(self, raw: Reader) -> None:
        self._raw = raw
        self._inflate: zlib._Decompress | None = None
        self._pending = b""
        self._members = 0
        self._done = False

    def read(self, size: int, /) -> bytes:
        while not self._done:
            inflate = self._inflate or self._next_member()
            if inflate is None:
                break
            if not self._pending:
                self._pending = self._raw.read(CHUNK)
                if not self._pending:
                    raise UnsafeLayer(STREAM, f"gzip member {self._members} is truncated")
            try:
                # max_length bounds what one call returns: a bomb expands chunk by chunk
                out = inflate.decompress(self._pending, max(size, 1))
            except zlib.error as err:
                raise UnsafeLayer(STREAM, f"corrupt gzip data: {err}") from None
            self._pending = inflate.unconsumed_tail
            if inflate.eof:
                self._pending = inflate.unused_data
                self._inflate = None
            if out:
                return out
        return b""

    def _next_member(self) -> zlib._Decompress | None:
        """Start the next member, or see that the stream ended properly (None)."""
        while len(self._pending) < len(GZIP_MAGIC):
            more = self._raw.read(CHUNK)
            if not more:
                break
            self._pending += more
        if self._pending.startswith(GZIP_MAGIC):
            self._inflate = zlib.decompressobj(wbits=31)
            self._members += 1
            return self._inflate
        self._done = True
        tail = self._pending
        while tail:
            if tail.count(0) != len(tail):
                raise UnsafeLayer(STREAM, f"data that is not gzip after member {self._members}")
            tail = self._raw.read(CHUNK)
        self._pending = b""
        return None


class _ZstdReader:
    """Concatenated zstd frames (skippable frames allowed). libzstd refuses trailing
    garbage itself; a stream cut at a frame boundary it cannot tell from a complete one,
    which the tar reader's end-of-archive check catches instead."""

    def __init__(self, raw: Reader) -> None:
        import zstandard

        self._error = zstandard.ZstdError
        # The default window limit (128 MiB) bounds the decoder's memory. It only calls
        # read() on its source, whatever its stub says.
        self._reader: zstandard.ZstdDecompressionReader = (
            zstandard.ZstdDecompressor().stream_reader(
                cast("IO[bytes]", raw), read_size=CHUNK, read_across_frames=True, closefd=False))

    def read(self, size: int, /) -> bytes:
        try:
            return self._reader.read(size)
        except self._error as err:
            raise UnsafeLayer(STREAM, f"corrupt zstd data: {err}") from None
