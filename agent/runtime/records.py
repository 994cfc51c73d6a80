"""What pyprov knows about each container, on disk: one directory per container.

    STATE/containers/
      .lock                  creation, naming and removal are serialized (flock)
      <id>/config.json       the ContainerRecord (0600: the environment may hold secrets)
      <id>/state.json        the monitor's view: pid, status, exit code, times
      <id>/<id>-json.log     docker's json-file log (and .1, .2 when rotated)
      <id>/rootfs, upper ... the root filesystem (see rootfs.py)
      <id>/hosts, hostname, resolv.conf

The record is written when the container is created and when its network changes;
the monitor alone writes state.json. A directory without a config.json is a creation
that died half-way: ``ContainerStore.all`` skips it and the runtime removes it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agent.errors import PyprovError
from agent.fsutil.atomic import atomic_write

ID_LENGTH = 64
SHORT_ID = 12


class ContainerError(PyprovError):
    """A container operation cannot be done (the message says why)."""


class NoSuchContainer(ContainerError):
    def __init__(self, reference: str) -> None:
        super().__init__(f"no such container: {reference}")
        self.reference = reference

    def __reduce__(self) -> tuple[type, tuple[str]]:
        return type(self), (self.reference,)


class NameInUse(ContainerError):
    def __init__(self, name: str, holder: str) -> None:
        super().__init__(f'the container name "{name}" is already in use by container '
                         f'"{holder[:SHORT_ID]}": remove (or rename) that container first')
        self.name, self.holder = name, holder

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return type(self), (self.name, self.holder)


@dataclass
class ContainerRecord:
    id: str
    name: str
    created: str
    spec: dict[str, Any]           # the ContainerSpec, as hashed
    spec_hash: str
    managed: bool                  # made by a manifest (pruned when no manifest names it)
    hostname: str
    env: list[str]                 # the spec's environment plus HOME, as the process gets it
    uid: int
    gid: int
    groups: list[int]
    layers: list[str]              # unpacked layer dirs, bottom first
    mounts: list[dict[str, Any]]   # sandbox BindMounts, resolved at creation
    volumes: list[str]             # named volumes this container created (anonymous ones)
    auto_remove: bool = False      # --rm
    stopped_by_user: bool = False  # unless-stopped stays stopped; ``ps`` tells
    network: dict[str, Any] | None = None  # the Attachment while attached
    ports: list[dict[str, Any]] = field(default_factory=list)  # published, concrete

    @property
    def short_id(self) -> str:
        return self.id[:SHORT_ID]

    def to_json(self) -> bytes:
        return (json.dumps(asdict(self), indent=1, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes) -> ContainerRecord:
        values = json.loads(data)
        known = set(cls.__dataclass_fields__)
        return cls(**{key: value for key, value in values.items() if key in known})


class ContainerStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._names: dict[str, str] = {}  # name -> id, as last listed
    def directory(self, container_id: str) -> Path:
        if len(container_id) != ID_LENGTH or not all(c in "0123456789abcdef"
                                                     for c in container_id):
            raise ContainerError(f"not a container id: {container_id!r}")
        return self.root / container_id

    def new_id(self) -> str:
        while True:
            container_id = secrets.token_hex(ID_LENGTH // 2)
            if not (self.root / container_id).exists() and not container_id[:SHORT_ID].isdigit():
                return container_id  # docker avoids all-digit short ids too

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def save(self, record: ContainerRecord) -> None:
        atomic_write(self.directory(record.id) / "config.json", record.to_json(), mode=0o600,
                     dir_mode=0o700)

    def update(self, record: ContainerRecord) -> bool:
        """Save a record that exists; never bring back one removed meanwhile."""
        if not (self.directory(record.id) / "config.json").exists():
            return False
        self.save(record)
        return True

    def load(self, container_id: str) -> ContainerRecord:
        try:
            return ContainerRecord.from_json(
                (self.directory(container_id) / "config.json").read_bytes())
        except FileNotFoundError:
            raise NoSuchContainer(container_id) from None
        except (ValueError, TypeError) as exc:
            raise ContainerError(f"container {container_id[:SHORT_ID]}: its record is "
                                 f"unreadable ({exc})") from exc

    def ids(self) -> list[str]:
        try:
            return sorted(entry.name for entry in os.scandir(self.root)
                          if entry.is_dir(follow_symlinks=False) and len(entry.name) == ID_LENGTH)
        except FileNotFoundError:
            return []

    def incomplete(self) -> list[str]:
        """Directories of creations that died before their record was written."""
        return [cid for cid in self.ids()
                if not (self.root / cid / "config.json").exists()]

    def all(self) -> list[ContainerRecord]:
        records = []
        for container_id in self.ids():
            with contextlib.suppress(NoSuchContainer):
                records.append(self.load(container_id))
        return sorted(records, key=lambda r: r.created, reverse=True)

    def by_name(self, name: str) -> ContainerRecord | None:
        """One record read when the name is known (a pass over 100 containers reads 100
        records, not 100 x 100); a miss or a stale entry lists the directory again."""
        known = self._names.get(name)
        if known is not None:
            with contextlib.suppress(NoSuchContainer, ContainerError):
                record = self.load(known)
                if record.name == name:
                    return record
        records = self.all()
        self._names = {record.name: record.id for record in records}
        return next((r for r in records if r.name == name), None)

    def find(self, reference: str) -> ContainerRecord:
        """By name, full id, or a unique id prefix, as docker resolves them."""
        named = self.by_name(reference)
        if named is not None:
            return named
        records = self.all()
        for record in records:
            if reference in (record.name, record.id):
                return record
        matches = [r for r in records if reference and r.id.startswith(reference)]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise ContainerError(f"container id prefix {reference!r} is ambiguous "
                                 f"({len(matches)} containers)")
        raise NoSuchContainer(reference)
