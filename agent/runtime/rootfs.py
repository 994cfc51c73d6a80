"""A container's root filesystem over the store's unpacked layers.

    CONTAINER_DIR/
      rootfs/        the merged root (an overlay mount, or the copy)
      upper/, work/  overlayfs's upper and work dirs: the container's own changes
      lower/0..N     short links to the layers (N the topmost), so the mount data fits
      rootfs.done    the copy is complete (it names the layers it was built from)

Overlay first: the layers are shared, read-only lower dirs (the store unpacks them in
overlayfs's own form: 0:0 character devices for whiteouts, ``trusted.overlay.opaque``).
The mount data is one page, and 60 store paths do not fit in it, so lowerdir names the
links in ``lower/`` by number, relative to ``lower/``: the mount runs in a forked child
that changed its directory there (a ``chdir`` in the agent would move every thread's).

Without overlayfs (or with ``overlay=False``), the layers are copied into ``rootfs/``
in order, whiteouts and opaque directories carried out as overlayfs would show them, by
directory fd and never following a link. ``rootfs.done`` is written last: a copy without
it (an agent killed half-way) is removed and made again.

A stopped container keeps its changes (``release``); ``destroy`` unmounts everything at
or below the container's directory (volumes bound into the root included) before it
deletes a file, so a deletion can never walk into a volume.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import re
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from agent.errors import PyprovError

MNT_DETACH = 2
_OPAQUE = "trusted.overlay.opaque"
_KEPT_XATTRS = ("security.capability", "user.")
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_MOUNT_DATA_MAX = 4096 - 512  # one page, with the margin containerd keeps
_OCTAL = re.compile(r"\\([0-7]{3})")
_libc = ctypes.CDLL(None, use_errno=True)


class RootfsError(PyprovError):
    """A container's root filesystem cannot be made or removed."""


@dataclass(frozen=True)
class Rootfs:
    path: Path
    """The merged root to pivot_root into."""
    upper: Path
    """The container's private changes (the copy itself, without overlayfs)."""
    overlay: bool
    """False: the copy fallback."""


def overlay_supported() -> bool:
    """Whether this kernel has overlayfs (loaded, or built in)."""
    try:
        filesystems = Path("/proc/filesystems").read_text()
    except OSError:
        return False
    return any(line.split()[-1:] == ["overlay"] for line in filesystems.splitlines())


def prepare(container_dir: Path, layers: list[Path], *, overlay: bool | None = None
            ) -> Rootfs:
    """The root of the container at ``container_dir`` over ``layers`` (lowest first).

    ``overlay``: True requires overlayfs, False copies, None uses overlayfs when the
    kernel has it and it mounts, else copies. A container keeps the kind it was made
    with (its changes live there). Idempotent: a mounted or complete root is left alone.
    """
    for layer in layers:
        if not layer.is_dir() or layer.is_symlink():
            raise RootfsError(f"layer {layer} is not an unpacked layer directory")
    container_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if overlay is None and _copy_done(container_dir) is not None:
        overlay = False  # the kind it was made with: its changes live there
    elif overlay is None and (container_dir / "upper").is_dir():
        overlay = True
    if overlay is None:
        if overlay_supported():
            try:
                return _prepare_overlay(container_dir, layers)
            except RootfsError:
                _remove_overlay_dirs(container_dir)
        return _prepare_copy(container_dir, layers)
    return _prepare_overlay(container_dir, layers) if overlay else _prepare_copy(
        container_dir, layers)


def release(rootfs: Rootfs) -> None:
    """Unmount the root (lazily if it is busy); the container's changes stay."""
    if rootfs.overlay:
        _unmount(rootfs.path)


def destroy(container_dir: Path) -> None:
    """Unmount everything at or below ``container_dir``, then delete it."""
    for target in sorted(_mounts_below(container_dir), key=len, reverse=True):
        _unmount(Path(target))
    if left := _mounts_below(container_dir):
        raise RootfsError(f"still mounted below {container_dir}: {', '.join(left)}")
    if container_dir.exists():
        shutil.rmtree(container_dir)


# -- overlay -----------------------------------------------------------------------------

def _prepare_overlay(container_dir: Path, layers: list[Path]) -> Rootfs:
    if _copy_done(container_dir) is not None:
        raise RootfsError(f"{container_dir} holds a copied root, not an overlay")
    rootfs = Rootfs(container_dir / "rootfs", container_dir / "upper", overlay=True)
    if _is_mounted(rootfs.path):
        return rootfs
    if not layers:
        raise RootfsError("overlayfs needs at least one layer")
    for name in ("rootfs", "upper", "work"):
        (container_dir / name).mkdir(mode=0o755, exist_ok=True)
    lower = _link_layers(container_dir / "lower", layers)
    stack = ":".join(str(n) for n in reversed(range(len(layers))))  # topmost first
    data = f"lowerdir={stack},upperdir=../upper,workdir=../work"
    if len(data) > _MOUNT_DATA_MAX:
        raise RootfsError(f"{len(layers)} layers do not fit in one overlay mount")
    _mount_from(lower, rootfs.path, data)
    return rootfs


def _link_layers(lower: Path, layers: list[Path]) -> Path:
    """``lower/<i>`` -> the i-th layer (absolute), made again each time."""
    if lower.exists():
        shutil.rmtree(lower)
    lower.mkdir(mode=0o700)
    for index, layer in enumerate(layers):
        (lower / str(index)).symlink_to(layer.absolute())
    return lower


def _mount_from(directory: Path, target: Path, data: str) -> None:
    """mount(2) overlay at ``target`` from a child whose cwd is ``directory``, so the
    relative names in ``data`` are resolved there."""
    target_b, data_b = os.fsencode(target.absolute()), data.encode()
    pid = os.fork()
    if pid == 0:  # the child: a syscall and out, never back into the caller's code
        code = 255
        try:
            os.chdir(directory)
            result = _libc.mount(b"overlay", target_b, b"overlay", 0, data_b)
            code = 0 if result == 0 else (ctypes.get_errno() or 255)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        reason = os.strerror(code) if 0 < code < 255 else "the mount child failed"
        raise RootfsError(f"cannot mount overlay at {target}: {reason}")


def _remove_overlay_dirs(container_dir: Path) -> None:
    for name in ("upper", "work", "lower"):
        shutil.rmtree(container_dir / name, ignore_errors=True)


def _unmount(target: Path) -> None:
    if _libc.umount2(os.fsencode(target), 0) == 0:
        return
    code = ctypes.get_errno()
    if code == errno.EBUSY and _libc.umount2(os.fsencode(target), MNT_DETACH) == 0:
        return
    code = ctypes.get_errno()
    if code not in (errno.EINVAL, errno.ENOENT):  # EINVAL: not a mount point
        raise RootfsError(f"cannot unmount {target}: {os.strerror(code)}")


def _mount_points() -> list[str]:
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        field = line.split(" ")[4]  # the kernel writes space, tab, \n and \\ in octal
        points.append(_OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field))
    return points


def _is_mounted(path: Path) -> bool:
    return str(path.absolute()) in _mount_points()


def _mounts_below(directory: Path) -> list[str]:
    top = str(directory.absolute())
    return [p for p in _mount_points() if p == top or p.startswith(top + "/")]


# -- copy --------------------------------------------------------------------------------

def _copy_done(container_dir: Path) -> list[str] | None:
    try:
        return list(json.loads((container_dir / "rootfs.done").read_text()))
    except (OSError, ValueError, TypeError):
        return None


def _prepare_copy(container_dir: Path, layers: list[Path]) -> Rootfs:
    rootfs = Rootfs(container_dir / "rootfs", container_dir / "rootfs", overlay=False)
    if _is_mounted(rootfs.path):
        raise RootfsError(f"{rootfs.path} is an overlay mount, not a copied root")
    names = [str(layer.absolute()) for layer in layers]
    done = _copy_done(container_dir)
    if done is not None:
        if done != names:
            raise RootfsError(f"{rootfs.path} was copied from other layers")
        return rootfs
    if rootfs.path.exists() or rootfs.path.is_symlink():
        shutil.rmtree(rootfs.path)  # half-built: an agent stopped while copying
    rootfs.path.mkdir(mode=0o755)
    dest_fd = os.open(rootfs.path, _DIR)
    try:
        for layer in layers:
            layer_fd = os.open(layer, _DIR)
            copy = _Copy()
            try:
                copy.directory(layer_fd, dest_fd)
            finally:
                copy.close()
                os.close(layer_fd)
    finally:
        os.close(dest_fd)
    (container_dir / "rootfs.done").write_text(json.dumps(names) + "\n")
    return rootfs


class _Copy:
    """One layer applied onto the copy, by fd, as overlayfs would show it on top."""

    def __init__(self) -> None:
        self._links: dict[tuple[int, int], tuple[int, str]] = {}
        """Hard links: (dev, ino) in the layer -> (dup'd parent fd, name) of the copy."""

    def directory(self, src: int, dst: int) -> None:
        with os.scandir(src) as entries:
            names = sorted(entry.name for entry in entries)
        for name in names:
            self._entry(src, dst, name)

    def close(self) -> None:
        for fd, _ in self._links.values():
            os.close(fd)
        self._links.clear()

    def _entry(self, src: int, dst: int, name: str) -> None:
        st = os.stat(name, dir_fd=src, follow_symlinks=False)
        kind = stat.S_IFMT(st.st_mode)
        if kind == stat.S_IFCHR and st.st_rdev == 0:
            _remove(dst, name)  # a whiteout: hide the lower entry
        elif kind == stat.S_IFDIR:
            self._dir(src, dst, name, st)
        elif kind == stat.S_IFREG:
            self._file(src, dst, name, st)
        elif kind == stat.S_IFLNK:
            _remove(dst, name)
            os.symlink(os.readlink(name, dir_fd=src), name, dir_fd=dst)
            os.chown(name, st.st_uid, st.st_gid, dir_fd=dst, follow_symlinks=False)
            os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst,
                     follow_symlinks=False)
        elif kind == stat.S_IFIFO:
            _remove(dst, name)
            os.mkfifo(name, 0o600, dir_fd=dst)
            fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW, dir_fd=dst)
            try:
                _metadata(fd, fd, st)
            finally:
                os.close(fd)
        # other devices and sockets: the store skips them (containers get their own /dev)
        # The layer's root itself is not copied over the rootfs's: overlayfs shows the
        # upper dir's, which prepare makes 0755 root.

    def _dir(self, src: int, dst: int, name: str, st: os.stat_result) -> None:
        src_fd = os.open(name, _DIR, dir_fd=src)
        try:
            existing = _lstat(dst, name)
            if existing is not None and not stat.S_ISDIR(existing.st_mode):
                _remove(dst, name)
                existing = None
            if existing is None:
                os.mkdir(name, 0o700, dir_fd=dst)
            dst_fd = os.open(name, _DIR, dir_fd=dst)
            try:
                if existing is not None and _xattr(src_fd, _OPAQUE) == b"y":
                    _empty(dst_fd)
                _metadata(src_fd, dst_fd, st)
                self.directory(src_fd, dst_fd)
                os.utime(dst_fd, ns=(st.st_atime_ns, st.st_mtime_ns))
            finally:
                os.close(dst_fd)
        finally:
            os.close(src_fd)

    def _file(self, src: int, dst: int, name: str, st: os.stat_result) -> None:
        _remove(dst, name)
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in self._links:
            first_dir, first = self._links[key]
            os.link(first, name, src_dir_fd=first_dir, dst_dir_fd=dst, follow_symlinks=False)
            return
        src_fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src)
        try:
            dst_fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                             | os.O_CLOEXEC, 0o600, dir_fd=dst)
            try:
                _copy_data(src_fd, dst_fd, st.st_size)
                _metadata(src_fd, dst_fd, st)
                os.utime(dst_fd, ns=(st.st_atime_ns, st.st_mtime_ns))
            finally:
                os.close(dst_fd)
        finally:
            os.close(src_fd)
        if st.st_nlink > 1:
            self._links[key] = (os.dup(dst), name)


def _metadata(src_fd: int, dst_fd: int, st: os.stat_result) -> None:
    """Owner, then mode (chown clears setuid and capabilities), then the kept xattrs."""
    os.fchown(dst_fd, st.st_uid, st.st_gid)
    os.fchmod(dst_fd, stat.S_IMODE(st.st_mode))
    for name in os.listxattr(src_fd):
        if name.startswith(_KEPT_XATTRS):
            os.setxattr(dst_fd, name, os.getxattr(src_fd, name))


def _copy_data(src_fd: int, dst_fd: int, size: int) -> None:
    copied = 0
    while copied < size:
        sent = os.sendfile(dst_fd, src_fd, copied, size - copied)
        if sent == 0:
            break  # the layer's file shrank: copy what is there
        copied += sent


def _xattr(fd: int, name: str) -> bytes | None:
    try:
        return os.getxattr(fd, name)
    except OSError as err:
        if err.errno in (errno.ENODATA, errno.ENOTSUP):
            return None
        raise


def _lstat(parent: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=parent, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _remove(parent: int, name: str) -> None:
    """Remove ``name`` (a whole tree if a directory), never following a link."""
    st = _lstat(parent, name)
    if st is None:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=parent)
    else:
        os.unlink(name, dir_fd=parent)


def _empty(fd: int) -> None:
    with os.scandir(fd) as entries:
        names = [entry.name for entry in entries]
    for name in names:
        _remove(fd, name)
