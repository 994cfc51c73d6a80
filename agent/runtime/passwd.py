"""A container's user, resolved from the image's /etc/passwd and /etc/group.

Docker's rules (runc's ``user.GetExecUser``), running nothing from the image:

- ``""``: uid 0; its passwd entry, when there is one, gives gid and home.
- ``name`` / ``uid``: a numeric spec is always a uid; a uid with no passwd entry is fine
  (gid 0, home ``/``), an unknown name is an error.
- supplementary groups: the groups of /etc/group listing the matched user's *name*, only
  when no group is given explicitly.
- ``user:group`` / ``user:gid``: the group replaces the primary gid; a numeric gid need
  not exist, an unknown group name is an error.

The files are read through :func:`~agent.runtime.inroot.open_in_root` (an image whose
/etc/passwd links to ``/etc/passwd`` means its *own* /etc/passwd), as regular files only
(a FIFO would block, a device is not a passwd file), at most :data:`MAX_FILE` bytes.
Lines that do not parse (comments, a non-numeric uid) are skipped, where runc would take
a bad uid as 0.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from agent.errors import PyprovError
from agent.runtime.inroot import InRootError, open_in_root

MAX_FILE = 4 << 20
"""Bigger passwd or group files are refused: 4 MiB is tens of thousands of entries."""
MAX_ID = 2**31 - 1
_READ = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


class UserError(PyprovError):
    """``spec``: the user as configured; ``reason``: why it does not resolve."""

    def __init__(self, spec: str, reason: str) -> None:
        super().__init__(f"user {spec!r}: {reason}")
        self.spec, self.reason = spec, reason

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return type(self), (self.spec, self.reason)


@dataclass(frozen=True)
class ResolvedUser:
    uid: int
    gid: int
    additional_gids: tuple[int, ...]
    home: str


@dataclass(frozen=True)
class _Passwd:
    name: str
    uid: int
    gid: int
    home: str


@dataclass(frozen=True)
class _Group:
    name: str
    gid: int
    members: tuple[str, ...]


def resolve_user(root: Path, user: str | None) -> ResolvedUser:
    """The uid, gids and home of ``user`` (docker's ``--user`` syntax) in the image at
    ``root``. Raises :class:`UserError`."""
    spec = user or ""
    user_arg, _, group_arg = spec.partition(":")
    group_arg = group_arg.partition(":")[0]  # docker ignores anything past a second ':'
    uid, gid, home, matched = _user(root, spec, user_arg)
    extra: tuple[int, ...] = ()
    if group_arg:
        gid = _explicit_group(root, spec, group_arg)
    elif matched is not None:
        extra = tuple(g.gid for g in _groups(root, spec) if matched in g.members)
    return ResolvedUser(uid, gid, extra, home)


def _user(root: Path, spec: str, user_arg: str) -> tuple[int, int, str, str | None]:
    """uid, gid, home and the matched passwd name (None when no entry matched)."""
    wanted = _number(user_arg) if user_arg else 0
    for entry in _passwd(root, spec):
        if (entry.uid == wanted) if wanted is not None else (entry.name == user_arg):
            return entry.uid, entry.gid, entry.home, entry.name
    if wanted is None:
        raise UserError(spec, f"no user named {user_arg!r} in the image's /etc/passwd")
    return wanted, 0, "/", None


def _explicit_group(root: Path, spec: str, group_arg: str) -> int:
    wanted = _number(group_arg)
    for entry in _groups(root, spec):
        if (entry.gid == wanted) if wanted is not None else (entry.name == group_arg):
            return entry.gid
    if wanted is None:
        raise UserError(spec, f"no group named {group_arg!r} in the image's /etc/group")
    return wanted


def _number(text: str) -> int | None:
    """A numeric id (in range) or None for a name; an out-of-range number is an error."""
    if not text.isascii() or not text.isdigit():
        return None
    value = int(text)
    if value > MAX_ID:
        raise UserError(text, f"id out of range (0-{MAX_ID})")
    return value


def _passwd(root: Path, spec: str) -> Iterator[_Passwd]:
    for fields in _records(root, "/etc/passwd", spec, 7):
        uid, gid = _id(fields[2]), _id(fields[3])
        if fields[0] and uid is not None and gid is not None:
            yield _Passwd(fields[0], uid, gid, fields[5] or "/")


def _groups(root: Path, spec: str) -> Iterator[_Group]:
    for fields in _records(root, "/etc/group", spec, 4):
        gid = _id(fields[2])
        if fields[0] and gid is not None:
            members = tuple(m.strip() for m in fields[3].split(",") if m.strip())
            yield _Group(fields[0], gid, members)


def _id(text: str) -> int | None:
    text = text.strip()
    if not text.isascii() or not text.isdigit() or int(text) > MAX_ID:
        return None
    return int(text)


def _records(root: Path, path: str, spec: str, width: int) -> Iterator[list[str]]:
    """The ``:``-separated lines of the image's ``path``, padded to ``width`` fields;
    none when the file is missing."""
    data = _read(root, path, spec)
    for raw in data.decode("utf-8", "surrogateescape").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split(":")
        if len(fields) < 3:
            continue
        yield fields + [""] * (width - len(fields))


def _read(root: Path, path: str, spec: str) -> bytes:
    try:
        fd = open_in_root(root, path, _READ)
    except InRootError as err:
        if err.errno in (errno.ENOENT, errno.ENOTDIR):
            return b""
        raise UserError(spec, f"cannot open the image's {path}: {err.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UserError(spec, f"the image's {path} is not a regular file")
        chunks, size = [], 0
        while chunk := os.read(fd, 1 << 16):
            size += len(chunk)
            if size > MAX_FILE:
                raise UserError(spec, f"the image's {path} is larger than {MAX_FILE} bytes")
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
