"""Making one tar entry at a time below a :class:`~agent.store.safe_fs.Tree`.

The rules a hostile entry meets are listed in :mod:`agent.store.unpack`; this module
applies them. Every refusal is a :class:`~agent.store.safe_fs.Refused`, which the
unpacker raises again as ``UnsafeLayer`` with the member's name.
"""

from __future__ import annotations

import math
import os
import stat
import tarfile
from collections.abc import Callable
from typing import IO, Literal, cast

from agent.store.safe_fs import CREATE_FILE, Parts, Refused, Tree, lstat

Mode = Literal["overlay", "apply"]

MAX_PATH = 4096
MAX_COMPONENT = 255
MAX_DEPTH = 256
COPY_CHUNK = 1 << 20

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
AUFS_META = ".wh..wh."
XATTR_PAX = "SCHILY.xattr."

_MAX_NS = 2**63 - 1
_NO_ID = 2**32 - 1  # -1 to chown means "leave unchanged"
_OPEN_FIFO = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC


KEPT = "whiteout of an entry this layer has: the entry stays"


def clean(name: str) -> Parts:
    """``name`` as components below the root; refused if it climbs out of it."""
    if "\0" in name:
        raise Refused("NUL in name")
    size = len(name.encode("utf-8", "surrogateescape"))
    if size > MAX_PATH:
        raise Refused(f"name longer than {MAX_PATH} bytes")
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise Refused("'..' climbs out of the layer root")
            parts.pop()
        # Only a name longer than NAME_MAX can hold a component that is.
        elif size > MAX_COMPONENT and len(part.encode("utf-8", "surrogateescape")) > MAX_COMPONENT:
            raise Refused(f"a component longer than {MAX_COMPONENT} bytes")
        else:
            parts.append(part)
    if len(parts) > MAX_DEPTH:
        raise Refused(f"deeper than {MAX_DEPTH} components")
    return tuple(parts)


class Entries:
    """Applies the members of one tar stream, in order, to ``tree``."""

    def __init__(self, tree: Tree, mode: Mode, tar: tarfile.TarFile) -> None:
        self.tree, self.mode, self._tar = tree, mode, tar
        self._source = cast("IO[bytes]", tar.fileobj)  # forward-only: seek skips ahead
        self.made = 0
        self.skipped: list[str] = []
        self._kinds: dict[bytes, Callable[[tarfile.TarInfo, Parts], bool]] = {
            **dict.fromkeys(tarfile.REGULAR_TYPES, self._file),
            tarfile.DIRTYPE: self._dir,
            tarfile.SYMTYPE: self._symlink,
            tarfile.LNKTYPE: self._hardlink,
            tarfile.FIFOTYPE: self._fifo,
            tarfile.CHRTYPE: self._device,
            tarfile.BLKTYPE: self._device,
        }

    def apply(self, member: tarfile.TarInfo) -> None:
        if not (0 <= member.uid < _NO_ID and 0 <= member.gid < _NO_ID):
            raise Refused(f"uid/gid {member.uid}:{member.gid} out of range")
        if member.size < 0:
            raise Refused(f"size {member.size}")
        parts = clean(member.name)
        if parts and parts[0].startswith(AUFS_META) and parts != (OPAQUE,):
            self._skip(member, "AUFS metadata, not content")  # as moby does
            return
        if WHITEOUT in member.name and any(p.startswith(WHITEOUT) for p in parts[:-1]):
            raise Refused("a whiteout name used as a directory")
        if not parts and member.type != tarfile.DIRTYPE:
            raise Refused("only a directory may name the layer root")
        if parts and parts[-1].startswith(WHITEOUT):
            self.made += self._whiteout(member, parts)
            return
        make = self._kinds.get(member.type)
        if make is None:
            raise Refused(f"unsupported entry type {member.type!r}")
        self.made += make(member, parts)

    def _skip(self, member: tarfile.TarInfo, reason: str) -> bool:
        self.skipped.append(f"{member.name}: {reason}")
        return False

    def _slot(self, parts: Parts) -> tuple[int, str, str]:
        """The parent fd (made if missing), leaf name and key of a non-root entry."""
        return self.tree.make_dirs(parts[:-1]), parts[-1], "/".join(parts)

    # -- entry kinds -----------------------------------------------------------------

    def _file(self, member: tarfile.TarInfo, parts: Parts) -> bool:
        parent, leaf, key = self._slot(parts)
        fd = self.tree.make(parent, leaf, key,
                            lambda: os.open(leaf, CREATE_FILE, 0o600, dir_fd=parent))
        try:
            if member.sparse:
                self._sparse(member, fd)
            elif member.size:
                # Straight from tarfile's stream: extractfile's buffered wrapper would copy
                # every chunk twice more.
                self._source.seek(member.offset_data)
                _copy(self._source, fd, member.size)
            self._metadata(fd, member, xattrs=True)
        finally:
            os.close(fd)
        return True

    def _sparse(self, member: tarfile.TarInfo, fd: int) -> None:
        """Holes stay holes (a hostile map cannot fill the disk with zeros); the stored
        segments follow one another from ``offset_data`` up to the next header, which
        tarfile has already located (``offset``)."""
        stored, end, limit = member.offset_data, 0, self._tar.offset
        source = self._source
        for offset, length in cast("list[tuple[int, int]]", member.sparse):
            if length == 0:  # old GNU headers pad their map with empty slots
                continue
            if offset < end or length < 0 or offset + length > member.size \
                    or stored + length > limit:
                raise Refused("sparse map out of order, beyond the file or its data")
            source.seek(stored)  # forward only: tarfile's stream cannot go back
            os.lseek(fd, offset, os.SEEK_SET)
            _copy(source, fd, length)
            stored, end = stored + length, offset + length
        os.ftruncate(fd, member.size)

    def _dir(self, member: tarfile.TarInfo, parts: Parts) -> bool:
        whited_out = False
        if parts:
            parent, leaf, key = self._slot(parts)
            found = lstat(parent, leaf) if self.mode == "overlay" else None
            # This layer's whiteout, then the directory again: lower content stays hidden.
            whited_out = found is not None and stat.S_ISCHR(found.st_mode) \
                and found.st_rdev == os.makedev(0, 0)
            fd = self.tree.make_dir(parent, leaf, key)
        else:
            fd, key = self.tree.root_fd, ""
        if whited_out:
            os.setxattr(fd, "trusted.overlay.opaque", b"y")
        os.fchown(fd, member.uid, member.gid)
        self._xattrs(fd, member)
        self.tree.defer_dir(key, member.mode & 0o7777, _mtime_ns(member))
        return True

    def _symlink(self, member: tarfile.TarInfo, parts: Parts) -> bool:
        target = member.linkname
        if not target or len(target.encode("utf-8", "surrogateescape")) >= MAX_PATH:
            raise Refused("symlink target empty or too long")
        parent, leaf, key = self._slot(parts)
        self.tree.make(parent, leaf, key, lambda: os.symlink(target, leaf, dir_fd=parent))
        os.chown(leaf, member.uid, member.gid, dir_fd=parent, follow_symlinks=False)
        ns = _mtime_ns(member)
        os.utime(leaf, ns=(ns, ns), dir_fd=parent, follow_symlinks=False)
        self._no_xattrs(member)
        return True

    def _hardlink(self, member: tarfile.TarInfo, parts: Parts) -> bool:
        try:
            target = clean(member.linkname)
        except Refused as refused:
            raise Refused(f"hard link target: {refused.reason}") from None
        if not target or target[: len(parts)] == parts:
            raise Refused("hard link to the root, to itself or to something inside itself")
        target_dir = self.tree.find_dir(target[:-1])
        st = None if target_dir is None else lstat(target_dir, target[-1])
        if target_dir is None or st is None:
            raise Refused(f"hard link target {member.linkname!r} is not in the layer's tree")
        if stat.S_ISDIR(st.st_mode):
            raise Refused("hard link to a directory")
        # Our own fd: finding the link's parent may evict the tree's cached one.
        source = os.dup(target_dir)
        try:
            parent, leaf, key = self._slot(parts)
            self.tree.make(parent, leaf, key, lambda: os.link(
                target[-1], leaf, src_dir_fd=source, dst_dir_fd=parent, follow_symlinks=False))
        finally:
            os.close(source)
        return True  # the inode's metadata is its first name's

    def _fifo(self, member: tarfile.TarInfo, parts: Parts) -> bool:
        parent, leaf, key = self._slot(parts)
        self.tree.make(parent, leaf, key, lambda: os.mkfifo(leaf, 0o600, dir_fd=parent))
        fd = os.open(leaf, _OPEN_FIFO, dir_fd=parent)
        try:
            self._metadata(fd, member, xattrs=False)
        finally:
            os.close(fd)
        return True

    def _device(self, member: tarfile.TarInfo, parts: Parts) -> bool:
        if member.ischr() and member.devmajor == member.devminor == 0:
            return self._hide(member, parts[:-1], parts[-1])  # overlayfs's whiteout form
        return self._skip(member, f"device {member.devmajor}:{member.devminor} not made "
                                  "(containers get their own /dev)")

    # -- whiteouts -------------------------------------------------------------------

    def _whiteout(self, member: tarfile.TarInfo, parts: Parts) -> bool:
        leaf, where = parts[-1], parts[:-1]
        if leaf == OPAQUE and not where:
            return self._skip(member, "opaque marker at the layer root: overlayfs ignores "
                                      "it there, so apply mode does too")
        if leaf == OPAQUE:
            return self._opaque(where)
        if leaf.startswith(AUFS_META):
            return self._skip(member, "AUFS metadata, not content")
        hidden = leaf[len(WHITEOUT):]
        if hidden in ("", ".", ".."):
            raise Refused(f"whiteout of {hidden!r}")
        return self._hide(member, where, hidden)

    def _hide(self, member: tarfile.TarInfo, where: Parts, name: str) -> bool:
        """Hide ``where/name`` of lower layers. An entry this layer made stays; if it is a
        directory (deleted and recreated in one layer), what lower layers had in it is
        hidden all the same: it becomes opaque."""
        key = "/".join((*where, name))
        if self.mode == "apply":
            return self._hide_applied(member, where, name, key)
        parent = self.tree.make_dirs(where)
        found = lstat(parent, name)
        if found is not None:
            if stat.S_ISDIR(found.st_mode):
                return self._opaque((*where, name))
            return self._skip(member, KEPT)
        os.mknod(name, stat.S_IFCHR, os.makedev(0, 0), dir_fd=parent)
        os.chown(name, member.uid, member.gid, dir_fd=parent, follow_symlinks=False)
        self.tree.mark(key)
        return True

    def _hide_applied(self, member: tarfile.TarInfo, where: Parts, name: str,
                      key: str) -> bool:
        parent = self.tree.find_dir(where)
        found = None if parent is None else lstat(parent, name)
        if parent is None or found is None:
            return True  # nothing below to hide
        if not self.tree.made(key):
            self.tree.remove(parent, name, key)
            return True
        if stat.S_ISDIR(found.st_mode):
            return self._opaque((*where, name))
        return self._skip(member, KEPT)

    def _opaque(self, where: Parts) -> bool:
        """Hide everything lower layers put in ``where``."""
        if self.mode == "overlay":
            os.setxattr(self.tree.make_dirs(where), "trusted.overlay.opaque", b"y")
        elif (fd := self.tree.find_dir(where)) is not None:
            self.tree.purge_lower(fd, "/".join(where))
        return True

    # -- metadata --------------------------------------------------------------------

    def _metadata(self, fd: int, member: tarfile.TarInfo, *, xattrs: bool) -> None:
        # chown clears setuid/setgid and capabilities: mode and xattrs come after it.
        os.fchown(fd, member.uid, member.gid)
        os.fchmod(fd, member.mode & 0o7777)
        if xattrs:
            self._xattrs(fd, member)
        else:
            self._no_xattrs(member)
        ns = _mtime_ns(member)
        os.utime(fd, ns=(ns, ns))

    def _xattrs(self, fd: int, member: tarfile.TarInfo) -> None:
        for key, value in member.pax_headers.items():
            if not key.startswith(XATTR_PAX):
                continue
            name = key[len(XATTR_PAX):]
            if name == "security.capability" or (name.startswith("user.") and name != "user."):
                os.setxattr(fd, name, value.encode("utf-8", "surrogateescape"))
            else:
                self._skip(member, f"xattr {name} dropped")

    def _no_xattrs(self, member: tarfile.TarInfo) -> None:
        """Symlinks and FIFOs cannot carry user.* xattrs (the kernel says EPERM)."""
        for key in member.pax_headers:
            if key.startswith(XATTR_PAX):
                self._skip(member, f"xattr {key[len(XATTR_PAX):]} dropped on a "
                                   "symlink or special file")


def _mtime_ns(member: tarfile.TarInfo) -> int:
    if not math.isfinite(member.mtime):  # PAX mtime is a decimal string: "nan" parses
        raise Refused(f"mtime {member.mtime}")
    return max(-_MAX_NS, min(_MAX_NS, round(member.mtime * 1_000_000_000)))


def _copy(src: IO[bytes], fd: int, size: int) -> None:
    while size > 0:
        chunk = src.read(min(size, COPY_CHUNK))
        if not chunk:
            raise Refused("the stream ends inside this entry's data")
        done = os.write(fd, chunk)
        while done < len(chunk):  # short writes are rare; never lose the rest
            done += os.write(fd, memoryview(chunk)[done:])
        size -= len(chunk)
