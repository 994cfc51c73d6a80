"""Unpack one layer into a directory, making every entry by hand so a hostile layer
cannot reach outside it.

``tarfile`` only reads the headers here (stream mode: nothing seeks, so a blob can be
unpacked as it downloads). Its own extraction is not enough: it works by path name, so
it follows symlinks earlier members made (its PEP 706 filters check with ``realpath``
first, a check a later member can invalidate), and the ``data`` filter drops ownership
and setuid bits real images need. Entries are made by :mod:`agent.store.tar_entries`
through :class:`~agent.store.safe_fs.Tree`, by directory fd, never following a symlink.

What a layer meets (each choice is applied the same way everywhere):

- names: a leading ``/`` is stripped, ``.`` and empty components dropped and ``a/../b``
  cleaned lexically; a ``..`` that climbs above the root is **refused** (as moby does),
  in member names, hard link targets and whiteouts alike. Paths are capped at 4096 bytes,
  components at 255, depth at 256; a layer at a million entries.
- a path through a symlink or any non-directory (``link/passwd`` after ``link -> /etc``)
  is **refused**: never followed, never silently replaced.
- symlinks are made verbatim, whatever their target: only following one is dangerous.
- hard links: the target is cleaned like a name and must already exist below the root,
  reached without symlinks, and not be a directory; otherwise **refused**.
- devices: a character device 0:0 is the overlay form of a whiteout and is treated as
  one; other devices are **skipped** (containers get their own /dev). FIFOs are made.
- xattrs (PAX ``SCHILY.xattr.*``): ``security.capability`` and ``user.*`` on files and
  directories are kept; every other one is **dropped** and listed in ``skipped``: notably
  ``trusted.overlay.*`` (it would forge whiteouts and opaque directories) and
  ``security.selinux`` (the host's policy labels, not the image's).
- AUFS metadata (``.wh..wh.*`` other than the opaque marker) is skipped, as moby does.
- unknown entry types, corrupt or truncated headers, a stream without the end-of-archive
  marker, and more than ``max_size`` uncompressed bytes are **refused**.

Whiteouts follow the OCI image spec: they hide what lower layers made, never what this
layer makes (``.wh.NAME`` of an entry this layer also has is skipped). In ``overlay``
mode they become overlayfs's own (a 0:0 character device; ``trusted.overlay.opaque=y``);
in ``apply`` mode they remove, below the root only. An opaque marker at the layer's root
is skipped in both modes: overlayfs ignores the xattr on a lower dir's root, and both
modes must show a container the same tree.

A refusal raises :class:`~agent.errors.UnsafeLayer`; a host failure (disk full)
:class:`~agent.errors.StoreError`. Either way ``dest`` may hold part of the layer, never
anything outside it: the caller deletes ``dest``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import tarfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, Self, cast

from agent.errors import StoreError, UnsafeLayer
from agent.store.compression import CHUNK, Reader, open_layer
from agent.store.safe_fs import Refused, Tree
from agent.store.tar_entries import Entries, Mode

MAX_ENTRIES = 1_000_000
MAX_HEADER_DATA = 1 << 20
"""PAX and GNU long-name payloads are held in memory whole by tarfile: cap them."""
STREAM = "(tar stream)"

_META_TYPES = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE,
               tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK)
_MALFORMED = (tarfile.TarError, ValueError, OverflowError, IndexError, KeyError)
_TAR_BUFSIZE = 64 * 1024
"""tarfile's stream copies the rest of its buffer on every read: small enough that header
reads stay cheap, large enough that data reads are few (measured: 10 KiB to 1 MiB)."""


@dataclass(frozen=True)
class UnpackResult:
    diff_id: str
    """``sha256:<hex>`` of the whole uncompressed stream, padding after the tar included."""
    size: int
    """Uncompressed bytes."""
    entries: int
    """Entries applied: made, updated, or whiteouts carried out."""
    skipped: tuple[str, ...]
    """``"name: reason"`` for what was deliberately not made (devices, dropped xattrs)."""


def unpack_layer(blob: Path | BinaryIO, dest: Path, *, mode: Mode = "overlay",
                 max_size: int | None = None) -> UnpackResult:
    """Unpack ``blob`` (gzip, zstd or plain tar, told by its bytes) into ``dest``.

    ``overlay``: ``dest`` is an empty directory, this layer's overlayfs lower dir.
    ``apply``: ``dest`` is a rootfs the lower layers were applied to.
    ``max_size``: refuse past this many uncompressed bytes (decompression bombs).

    Raises UnsafeLayer (the layer's fault) or StoreError (the host's); then ``dest`` may
    hold part of the layer, and the caller deletes it.
    """
    try:
        root_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as err:
        raise StoreError(f"cannot unpack into {dest}: {err}") from err
    try:
        if mode == "overlay" and _has_entries(root_fd):
            raise StoreError(f"{dest} is not empty: overlay mode unpacks one layer alone")
        with open_layer(blob) as raw:
            digest = _Digesting(raw, max_size)
            stream = _ReadAhead(digest)
            tree = Tree(root_fd, track=mode == "apply")
            try:
                entries = _read_all(stream, tree, mode)
                tree.finish()
                stream.drain()
            finally:
                tree.close()
                stream.close()
    except OSError as err:  # reading the blob, or finishing directories: not the layer's fault
        raise StoreError(f"unpacking {blob} into {dest}: {err}") from err
    finally:
        os.close(root_fd)
    return UnpackResult(digest.diff_id, digest.size, entries.made, tuple(entries.skipped))


def _has_entries(fd: int) -> bool:
    with os.scandir(fd) as entries:
        return next(entries, None) is not None


class _Digesting:
    """The uncompressed stream, hashed and counted as it is read."""

    def __init__(self, raw: Reader, max_size: int | None) -> None:
        self._raw, self._max = raw, max_size
        self._hash = hashlib.sha256()
        self.size = 0

    def read(self, size: int, /) -> bytes:
        data = self._raw.read(size)
        self.size += len(data)
        if self._max is not None and self.size > self._max:
            raise UnsafeLayer(STREAM, f"more than max_size={self._max} uncompressed bytes")
        self._hash.update(data)
        return data

    @property
    def diff_id(self) -> str:
        return f"sha256:{self._hash.hexdigest()}"


class _ReadAhead:
    """Reads ``source`` on a thread, a few chunks ahead of the tar reader.

    Decompressing and hashing release the GIL, so they overlap with making entries, as
    ``tar -z`` overlaps the gzip process. At most ``_AHEAD`` chunks wait in memory.
    Errors on the thread are raised again by :meth:`read`.
    """

    _AHEAD = 8

    def __init__(self, source: Reader) -> None:
        self._source = source
        self._chunks: queue.Queue[bytes | StoreError | OSError] = queue.Queue(self._AHEAD)
        self._stop = threading.Event()
        self._ended = False
        self._buf, self._at = b"", 0
        self._thread = threading.Thread(target=self._run, name="layer-read-ahead",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        last: bytes | StoreError | OSError = b""
        try:
            while chunk := self._source.read(CHUNK):
                if not self._put(chunk):
                    return
            self._ended = True
        except (StoreError, OSError) as err:
            last = err
        finally:  # always: else a reader waits forever (it reports an unclean end)
            self._put(last)

    def _put(self, item: bytes | StoreError | OSError) -> bool:
        while not self._stop.is_set():
            with contextlib.suppress(queue.Full):
                self._chunks.put(item, timeout=0.1)
                return True
        return False

    def read(self, size: int, /) -> bytes:
        if self._at >= len(self._buf):
            item = self._chunks.get()
            if isinstance(item, (StoreError, OSError)):
                self._chunks.put(b"")  # whoever reads next sees the end, not a hang
                raise item
            if not item and not self._ended:
                self._chunks.put(b"")
                raise StoreError("the layer read-ahead thread failed (see its traceback)")
            if not item:
                self._chunks.put(b"")  # the end stays the end
                return b""
            self._buf, self._at = item, 0
        out = self._buf[self._at:self._at + size]
        self._at += len(out)
        return out

    def drain(self) -> None:
        """Read what follows the tar's end: the diff_id covers it."""
        while self.read(CHUNK):
            pass

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(queue.Empty):
            while True:
                self._chunks.get_nowait()
        self._thread.join()


class _Header(tarfile.TarInfo):
    """A header read strictly: tarfile takes a corrupt or cut header after the first for
    the end of the archive, and holds PAX payloads of any size in memory."""

    @classmethod
    def frombuf(cls, buf: bytes | bytearray, encoding: str, errors: str) -> Self:
        if not buf:
            raise UnsafeLayer(STREAM, "truncated: the stream ends without the tar end marker")
        if len(buf) != tarfile.BLOCKSIZE:
            raise UnsafeLayer(STREAM, "truncated tar header")
        if buf.count(0) == tarfile.BLOCKSIZE:
            return super().frombuf(buf, encoding, errors)  # raises tarfile's end-of-archive
        try:
            header = super().frombuf(buf, encoding, errors)
        except tarfile.HeaderError as err:
            raise UnsafeLayer(STREAM, f"corrupt tar header: {err}") from None
        if header.type in _META_TYPES and header.size > MAX_HEADER_DATA:
            raise UnsafeLayer(header.name, f"a {header.size}-byte extended header")
        return header


class _TarStream(tarfile.TarFile):
    tarinfo = _Header
    members: list[tarfile.TarInfo]  # kept by tarfile even when streaming; not in typeshed


def _read_all(stream: _ReadAhead, tree: Tree, mode: Mode) -> Entries:
    try:  # opening reads the first header
        tar = _TarStream.open(fileobj=cast("IO[bytes]", stream), mode="r|",
                              bufsize=_TAR_BUFSIZE)
    except _MALFORMED as err:
        raise UnsafeLayer(STREAM, f"not a tar stream: {err}") from None
    entries = Entries(tree, mode, tar)
    last, count = STREAM, 0
    while True:
        try:
            member = tar.next()
        except _MALFORMED as err:
            raise UnsafeLayer(last, f"malformed tar after this entry: {err}") from None
        if member is None:
            return entries
        tar.members.clear()  # else every header stays in memory until the end
        count += 1
        if count > MAX_ENTRIES:
            raise UnsafeLayer(member.name, f"more than {MAX_ENTRIES} entries")
        last = member.name
        try:
            entries.apply(member)
        except Refused as refused:
            raise UnsafeLayer(member.name, refused.reason) from None
        except tarfile.TarError as err:
            raise UnsafeLayer(member.name, f"unreadable data: {err}") from None
        except OSError as err:
            raise StoreError(f"cannot make {member.name!r}: {err}") from err
