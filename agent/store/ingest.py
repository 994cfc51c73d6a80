"""Blobs enter the store only verified: streamed into ``ingest/``, hashed on the fly, and
renamed into ``blobs/sha256/`` only when size and digest match.

A partial download stays in ``ingest/<hex>.partial`` (its bytes hashed again when
resumed, so a corrupt partial is caught like any other), and the next pull continues it
with an HTTP Range request. One writer per blob across processes (flock on the partial):
a second pull of the same layer waits, then finds it in the store.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from pathlib import Path
from types import TracebackType

from agent.errors import DigestMismatch, SizeMismatch
from agent.fsutil.atomic import fsync_dir

READ_CHUNK = 1 << 20


class Ingest:
    """One blob being written: ``offset`` bytes already there (resume), ``write`` the rest,
    ``commit`` to admit it. Use as a context manager: leaving without ``commit`` keeps the
    partial for a resume; ``discard`` drops it."""

    def __init__(self, partial: Path, final: Path, digest: str, size: int) -> None:
        self.partial, self.final, self.digest, self.size = partial, final, digest, size
        self._hash = hashlib.sha256()
        self._fd = -1
        self.offset = 0
        self.resumed_from = 0

    def __enter__(self) -> Ingest:
        if self.final.exists():  # nothing to write: no partial file either
            self.offset = self.size
            return self
        self.partial.parent.mkdir(parents=True, exist_ok=True)
        while True:
            self._fd = os.open(self.partial, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)  # another process may be writing this blob
            try:  # it may have committed or discarded the file while we waited
                if self.partial.stat().st_ino == os.fstat(self._fd).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(self._fd)
            self._fd = -1
            if self.final.exists():
                break
        if self.final.exists():  # it finished while we waited
            self.offset = self.size
            if self._fd >= 0 and os.fstat(self._fd).st_size == 0:
                self.partial.unlink(missing_ok=True)
            return self
        length = os.fstat(self._fd).st_size
        if length > self.size:
            os.ftruncate(self._fd, 0)
            length = 0
        while self.offset < length:  # re-hash what a previous run left
            chunk = os.pread(self._fd, min(READ_CHUNK, length - self.offset), self.offset)
            if not chunk:
                break
            self._hash.update(chunk)
            self.offset += len(chunk)
        self.resumed_from = self.offset
        os.lseek(self._fd, self.offset, os.SEEK_SET)
        return self

    @property
    def done(self) -> bool:
        return self.final.exists()

    def restart(self) -> None:
        """The server sent the whole blob instead of the range: start over."""
        os.ftruncate(self._fd, 0)
        os.lseek(self._fd, 0, os.SEEK_SET)
        self._hash = hashlib.sha256()
        self.offset = 0

    def write(self, chunk: bytes) -> None:
        if self.offset + len(chunk) > self.size:
            self.discard()
            raise SizeMismatch(f"blob {self.digest}", self.size, f"more than {self.size}")
        self._hash.update(chunk)
        view = memoryview(chunk)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self.offset += len(chunk)

    def commit(self) -> None:
        if self.done:
            return
        if self.offset != self.size:
            raise SizeMismatch(f"blob {self.digest}", self.size, self.offset)
        actual = "sha256:" + self._hash.hexdigest()
        if actual != self.digest:
            self.discard()
            raise DigestMismatch(f"blob {self.digest}", self.digest, actual)
        os.fsync(self._fd)
        self.final.parent.mkdir(parents=True, exist_ok=True)
        self.partial.replace(self.final)
        fsync_dir(self.final.parent)

    def discard(self) -> None:
        self.partial.unlink(missing_ok=True)
        self.offset = 0
        self._hash = hashlib.sha256()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # releases the flock
            self._fd = -1
