"""One directory tree, reached only through directory file descriptors.

Paths here are tuples of components already cleaned by the caller (no ``""``, ``"."`` or
``".."``). Every step down from the root is an ``openat(O_NOFOLLOW|O_DIRECTORY)``, so a
symlink (or any non-directory) on the way to an entry is refused, never followed, and
nothing is ever resolved against the host's ``/``. Entries are created with exclusive
flags after whatever was in their place is removed, and removals (``shutil.rmtree`` with
``dir_fd``) do not follow symlinks either.

The tree assumes it is the only writer below its root while it works: it caches the fds
of directories it opened and forgets them exactly when it removes them.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections import OrderedDict
from collections.abc import Callable
from typing import TypeVar

OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
CREATE_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
IMPLICIT_DIR_MODE = 0o755
"""Parents a layer uses without listing them are made as docker makes them: 0755, root."""

_CACHED_DIRS = 256
T = TypeVar("T")

Parts = tuple[str, ...]


class Refused(Exception):
    """An entry must not be made; ``reason`` says why. Internal: the unpacker, which
    knows the member's name, raises it as :class:`~agent.errors.UnsafeLayer`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Tree:
    """The root of a layer (or of a rootfs being assembled), worked on by fd.

    ``track``: remember which paths this unpack made, so whiteouts and opaque markers
    (apply mode) hide only what lower layers put there, as the OCI image spec requires.
    """

    def __init__(self, root_fd: int, *, track: bool) -> None:
        self.root_fd = root_fd
        self._dirs: OrderedDict[str, int] = OrderedDict()
        self._made: set[str] | None = set() if track else None
        self._deferred: dict[str, tuple[int, int]] = {}

    # -- directories on the way ------------------------------------------------------

    def make_dirs(self, parts: Parts) -> int:
        """The fd of the directory ``parts`` (the root for ``()``), missing directories
        made (0755, root). The fd is the tree's, valid until its next call. A symlink or
        non-directory on the way is refused."""
        fd = self._dir_fd(parts, create=True)
        if fd is None:
            raise FileNotFoundError("/".join(parts))  # cannot happen: made above
        return fd

    def find_dir(self, parts: Parts) -> int | None:
        """Like :meth:`make_dirs`, but None where a directory is missing."""
        return self._dir_fd(parts, create=False)

    def _dir_fd(self, parts: Parts, *, create: bool) -> int | None:
        if not parts:
            return self.root_fd
        key = "/".join(parts)
        fd = self._dirs.get(key)
        if fd is not None:
            self._dirs.move_to_end(key)
            return fd
        parent = self._dir_fd(parts[:-1], create=create)
        if parent is None:
            return None
        try:
            fd = os.open(parts[-1], OPEN_DIR, dir_fd=parent)
        except FileNotFoundError:
            if not create:
                return None
            os.mkdir(parts[-1], 0o700, dir_fd=parent)
            fd = os.open(parts[-1], OPEN_DIR, dir_fd=parent)
            os.fchown(fd, 0, 0)
            os.fchmod(fd, IMPLICIT_DIR_MODE)
            self.mark(key)
        except OSError as err:
            if err.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            st = lstat(parent, parts[-1])
            if st is not None and stat.S_ISLNK(st.st_mode):
                raise Refused(f"{key!r} is a symlink, never followed") from None
            raise Refused(f"{key!r} is not a directory") from None
        self._cache(key, fd)
        return fd

    def _cache(self, key: str, fd: int) -> None:
        self._dirs[key] = fd
        if len(self._dirs) > _CACHED_DIRS:
            _, old = self._dirs.popitem(last=False)
            os.close(old)

    def _forget(self, key: str) -> None:
        """Drop what the tree knows of ``key`` and below: it was removed."""
        prefix = key + "/"
        for cached in [k for k in self._dirs if k == key or k.startswith(prefix)]:
            os.close(self._dirs.pop(cached))
        for deferred in [k for k in self._deferred if k == key or k.startswith(prefix)]:
            del self._deferred[deferred]

    # -- entries ---------------------------------------------------------------------

    def make(self, parent: int, name: str, key: str, create: Callable[[], T]) -> T:
        """``create()`` the entry, first removing whatever holds its name (a whole tree if
        a directory), so every create can be exclusive."""
        try:
            made = create()
        except FileExistsError:
            self.remove(parent, name, key)
            made = create()
        self.mark(key)
        return made

    def make_dir(self, parent: int, name: str, key: str) -> int:
        """The directory ``key``: an existing directory is kept, anything else replaced.
        Returns its fd, owned by the tree."""
        fd = self._dirs.get(key)
        if fd is None:
            try:
                os.mkdir(name, 0o700, dir_fd=parent)
            except FileExistsError:
                st = lstat(parent, name)
                if st is None or not stat.S_ISDIR(st.st_mode):
                    self.remove(parent, name, key)
                    os.mkdir(name, 0o700, dir_fd=parent)
            fd = os.open(name, OPEN_DIR, dir_fd=parent)
            self._cache(key, fd)
        self.mark(key)
        return fd

    def remove(self, parent: int, name: str, key: str) -> None:
        """Remove ``name`` (a directory with everything below it); a symlink is removed
        itself, never what it points to."""
        st = lstat(parent, name)
        if st is None:
            return
        if stat.S_ISDIR(st.st_mode):
            self._forget(key)
            shutil.rmtree(name, dir_fd=parent)
        else:
            os.unlink(name, dir_fd=parent)

    def purge_lower(self, fd: int, key: str) -> None:
        """Remove everything below the directory ``fd`` (at ``key``) that this unpack did
        not make, keeping what it made (an opaque directory in apply mode)."""
        with os.scandir(fd) as entries:
            children = [(e.name, e.is_dir(follow_symlinks=False)) for e in entries]
        for name, is_dir in children:
            child = f"{key}/{name}" if key else name
            if not self.made(child):
                self.remove(fd, name, child)
            elif is_dir:
                # Our own fd: the cache may close its fds while we recurse.
                child_fd = os.open(name, OPEN_DIR, dir_fd=fd)
                try:
                    self.purge_lower(child_fd, child)
                finally:
                    os.close(child_fd)

    # -- bookkeeping -----------------------------------------------------------------

    def mark(self, key: str) -> None:
        """Record ``key`` as made here, and its ancestors as holding something made here
        (an opaque parent keeps them). Ancestors of a recorded key are always recorded,
        so the walk up stops at the first one already known."""
        if self._made is None:
            return
        while key and key not in self._made:
            self._made.add(key)
            key = key.rpartition("/")[0]

    def made(self, key: str) -> bool:
        """Whether this unpack made ``key`` (always true when not tracking: overlay mode
        unpacks into an empty directory)."""
        return self._made is None or key in self._made

    def defer_dir(self, key: str, mode: int, mtime_ns: int) -> None:
        """Directory mode and mtime wait for the end: a 0555 directory must still take
        its children, and creating them would move its mtime."""
        self._deferred[key] = (mode, mtime_ns)

    def finish(self) -> None:
        """Apply the deferred directory modes and mtimes."""
        for key, (mode, mtime_ns) in self._deferred.items():
            try:
                fd = self.find_dir(tuple(key.split("/")) if key else ())
            except Refused:
                continue  # no longer a directory there: nothing to finish
            if fd is not None:
                os.fchmod(fd, mode)
                os.utime(fd, ns=(mtime_ns, mtime_ns))
        self._deferred.clear()

    def close(self) -> None:
        while self._dirs:
            os.close(self._dirs.popitem()[1])


def lstat(parent: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        return None
