"""Container paths resolved inside a container's root, never through a link to the host.

A rootfs is the image's, and the image is not trusted: ``/etc -> /``, ``/data ->
../../../etc`` or a volume target below a link to the host's ``/tmp`` must all land
inside the root. Paths are resolved as the kernel's ``openat2(RESOLVE_IN_ROOT)`` does,
as if ``root`` were ``/``: an absolute link restarts at ``root``, ``..`` at the root stays
at the root, a trailing link is followed, more than 40 links is ELOOP.

openat2 (Linux 5.6) is used when the kernel has it; otherwise (and wherever something
must be created on the way) a component walk by directory fd with ``O_NOFOLLOW`` expands
links itself, keeping the directories it went through as a stack of fds, so ``..`` pops
to the real parent and can never climb above the root.

:func:`resolve` returns a path; it held no link when it was resolved, but anything with
write access to the rootfs could swap a component afterwards. That is fine before the
container runs (the rootfs is ours then) and for mount targets that are resolved again by
the caller's mount; anything that *writes* a file uses :func:`open_in_root`'s fd, which
cannot be redirected once open.

Failures are :class:`InRootError`, an ``OSError`` with the kernel's errno (ENOENT,
ELOOP, ENOTDIR...), so both paths fail alike.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
from pathlib import Path

from agent.errors import PyprovError

MAX_LINKS = 40
"""As the kernel's MAXSYMLINKS."""

_SYS_OPENAT2 = 437  # x86_64 and aarch64 (the unified table of new syscalls)
_RESOLVE_NO_MAGICLINKS = 0x02
_RESOLVE_IN_ROOT = 0x10
_O_PATH = getattr(os, "O_PATH", 0o10000000)
_STEP = _O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_libc = ctypes.CDLL(None, use_errno=True)


class InRootError(PyprovError, OSError):
    """A container path that cannot be resolved (or made) inside its root."""


class _OpenHow(ctypes.Structure):
    _fields_ = (("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                ("resolve", ctypes.c_uint64))


_have_openat2: bool | None = None
"""None until tried; tests set it False to exercise the walk."""


def resolve(root: Path, path: str, *, create_dirs: bool = False, mode: int = 0o755) -> Path:
    """The host path of the container's ``path`` below ``root``, links resolved in root.

    Missing components are kept as named (cleaned), or with ``create_dirs`` made as
    directories (root-owned, ``mode``), the last one included: a WORKDIR or a volume
    target. The result is the real path at the time of the call (see the module's note).
    """
    root_fd = os.open(root, _DIR)
    try:
        if not create_dirs:
            try:
                fd = _try_openat2(root_fd, path, _O_PATH | os.O_CLOEXEC, 0)
            except InRootError as err:
                if err.errno != errno.ENOENT:
                    raise
                fd = None  # the walk keeps the missing part as named
            if fd is not None:
                try:
                    return _inside(root_fd, root, fd, path)
                finally:
                    os.close(fd)
        walk = _Walk(root_fd, path)
        try:
            walk.run(create=create_dirs, mode=mode)
            return root.joinpath(*walk.names, *walk.missing)
        finally:
            walk.close()
    finally:
        os.close(root_fd)


def open_in_root(root: Path, path: str, flags: int, mode: int = 0o644) -> int:
    """``open(path, flags, mode)`` with ``path`` resolved inside ``root``: an fd.

    ``O_CREAT`` creates the last component only (its parent must exist: see
    :func:`resolve` with ``create_dirs``); through a dangling link it creates the link's
    target, inside root, as the kernel does.
    """
    root_fd = os.open(root, _DIR)
    try:
        fd = _try_openat2(root_fd, path, flags | os.O_CLOEXEC, mode)
        if fd is not None:
            return fd
        walk = _Walk(root_fd, path)
        try:
            walk.run(create=False, mode=0)
            return walk.open_last(flags | os.O_CLOEXEC, mode)
        finally:
            walk.close()
    finally:
        os.close(root_fd)


def _error(code: int | None, path: str) -> InRootError:
    code = code or errno.EIO
    return InRootError(code, os.strerror(code), path)


def _try_openat2(root_fd: int, path: str, flags: int, mode: int) -> int | None:
    """The fd, or None when this kernel has no openat2 (ENOSYS, or a seccomp filter)."""
    global _have_openat2  # noqa: PLW0603 - one probe per process
    if _have_openat2 is False:
        return None
    creates = flags & os.O_CREAT or flags & os.O_TMPFILE == os.O_TMPFILE
    how = _OpenHow(flags, mode if creates else 0,  # openat2 refuses a mode otherwise
                   _RESOLVE_IN_ROOT | _RESOLVE_NO_MAGICLINKS)
    fd = int(_libc.syscall(_SYS_OPENAT2, root_fd, path.encode(), ctypes.byref(how),
                           ctypes.sizeof(how)))
    if fd >= 0:
        _have_openat2 = True
        return fd
    code = ctypes.get_errno()
    if code == errno.ENOSYS:
        _have_openat2 = False
        return None
    if code == errno.EAGAIN:  # a rename raced the lookup: the walk copes
        return None
    raise _error(code, path)


def _inside(root_fd: int, root: Path, fd: int, path: str) -> Path:
    """The real path of ``fd``, checked to be below the real path of ``root_fd``."""
    real_root = Path(f"/proc/self/fd/{root_fd}").readlink()
    real = Path(f"/proc/self/fd/{fd}").readlink()
    if not real.is_relative_to(real_root):  # cannot happen: the kernel resolved it in root
        raise _error(errno.EXDEV, path)
    return root / real.relative_to(real_root)


class _Walk:
    """``path`` resolved component by component from ``root_fd``.

    ``names``/``fds``: the existing components reached (every fd an ``O_PATH`` or
    directory fd of an entry that was not a link). ``missing``: the components below
    that do not exist (or were not made).
    """

    def __init__(self, root_fd: int, path: str) -> None:
        self.root_fd, self.path = root_fd, path
        self.names: list[str] = []
        self.fds: list[int] = []
        self.missing: list[str] = []
        self._todo = _components(path)
        self._links = 0

    def run(self, *, create: bool, mode: int) -> None:
        try:
            self._run(create=create, mode=mode)
        except InRootError:
            raise
        except OSError as err:  # making a directory, reading a link
            raise _error(err.errno, self.path) from err

    def _run(self, *, create: bool, mode: int) -> None:
        while self._todo:
            name = self._todo.pop()
            if name == "..":
                self._up()
            elif self.missing:
                self.missing.append(name)
            else:
                self._step(name, create=create, mode=mode)

    def _up(self) -> None:
        if self.missing:
            self.missing.pop()
        elif self.fds:
            self.names.pop()
            os.close(self.fds.pop())

    def _here(self) -> int:
        return self.fds[-1] if self.fds else self.root_fd

    def _step(self, name: str, *, create: bool, mode: int) -> None:
        here = self._here()
        try:
            fd = os.open(name, _STEP, dir_fd=here)
        except FileNotFoundError:
            if not create:
                self.missing.append(name)
                return
            fd = _make_dir(here, name, mode)
        st = os.fstat(fd)
        if stat.S_ISLNK(st.st_mode):
            self._expand(here, name, fd)
            return
        if self._todo and not stat.S_ISDIR(st.st_mode):
            os.close(fd)
            raise _error(errno.ENOTDIR, self.path)
        self.names.append(name)
        self.fds.append(fd)

    def _expand(self, here: int, name: str, fd: int) -> None:
        """Replace the link ``name`` by its target's components: from root if absolute."""
        os.close(fd)
        self._links += 1
        if self._links > MAX_LINKS:
            raise _error(errno.ELOOP, self.path)
        target = os.readlink(name, dir_fd=here)
        self._todo.extend(_components(target))
        if target.startswith("/"):
            while self.fds:
                self._up()

    def open_last(self, flags: int, mode: int) -> int:
        """Open what the walk reached; a single missing last component only with O_CREAT."""
        if len(self.missing) > 1 or (self.missing and not flags & os.O_CREAT):
            raise _error(errno.ENOENT, self.path)
        if self.missing:
            parent, name = self._here(), self.missing[0]
        elif self.fds:
            parent = self.fds[-2] if len(self.fds) > 1 else self.root_fd
            name = self.names[-1]
        else:
            parent, name = self.root_fd, "."
        try:  # O_NOFOLLOW: the walk saw no link there; one swapped in since fails
            return os.open(name, flags | os.O_NOFOLLOW, mode, dir_fd=parent)
        except OSError as err:
            raise _error(err.errno, self.path) from None

    def close(self) -> None:
        while self.fds:
            os.close(self.fds.pop())


def _components(path: str) -> list[str]:
    """The components of ``path``, reversed (a stack: the next one last); "" and "." out."""
    return [part for part in reversed(path.split("/")) if part not in ("", ".")]


def _make_dir(parent: int, name: str, mode: int) -> int:
    """A new directory ``name`` (root-owned, exactly ``mode``), opened; one made
    concurrently is used as found."""
    try:
        os.mkdir(name, 0o700, dir_fd=parent)
    except FileExistsError:
        return os.open(name, _STEP, dir_fd=parent)
    fd = os.open(name, _DIR, dir_fd=parent)
    os.fchown(fd, 0, 0)
    os.fchmod(fd, mode)
    return fd
