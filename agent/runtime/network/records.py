"""What the network added for each container, on disk, so teardown works from the record
and never from guessing.

    <state>/network.lock                 attach, publish and detach are serialized (flock)
    <state>/attachments/<id>.json        {"version", "complete", "attachment": {...}}
    <state>/netns/<id>                   the container's network namespace (nsfs mount)
    <state>/ipam/<net>-<len>.json        the address allocator (see ipam.py)

A record is written *before* the things it names are made, with ``complete: false``,
and marked complete after; a record left incomplete by a crash tells ``attach`` what to
repair and ``detach`` what to remove.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from agent.fsutil.atomic import atomic_write, make_dirs
from agent.runtime.network.errors import CorruptState, InvalidNetworkConfig

RECORD_VERSION = 1
_CONTAINER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}\Z")


def check_container_id(container_id: str) -> str:
    """Ids name files, interfaces and firewall comments: a conservative alphabet only."""
    if not _CONTAINER_ID.match(container_id):
        raise InvalidNetworkConfig(f"not a usable container id: {container_id!r}")
    return container_id


@dataclass(frozen=True)
class PublishedPort:
    """One concrete published port: ``host_ip:host_port/protocol -> container_port``."""

    host_ip: str
    host_port: int
    container_port: int
    protocol: str = "tcp"

    def __str__(self) -> str:  # docker ps: 0.0.0.0:8080->80/tcp
        address = f"[{self.host_ip}]" if ":" in self.host_ip else self.host_ip
        return f"{address}:{self.host_port}->{self.container_port}/{self.protocol}"

    def to_json(self) -> dict[str, Any]:
        return {"host_ip": self.host_ip, "host_port": self.host_port,
                "container_port": self.container_port, "protocol": self.protocol}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PublishedPort:
        return cls(str(data["host_ip"]), int(data["host_port"]), int(data["container_port"]),
                   str(data["protocol"]))


@dataclass(frozen=True)
class Attachment:
    """A container's place on the bridge: its namespace, address and published ports."""

    container_id: str
    netns_path: Path
    ip: IPv4Address
    prefixlen: int
    gateway: IPv4Address
    mac: str
    host_veth: str
    bridge: str
    ports: tuple[PublishedPort, ...] = field(default=())

    def with_ports(self, ports: tuple[PublishedPort, ...]) -> Attachment:
        return replace(self, ports=ports)

    def to_json(self) -> dict[str, Any]:
        return {"container_id": self.container_id, "netns_path": str(self.netns_path),
                "ip": str(self.ip), "prefixlen": self.prefixlen, "gateway": str(self.gateway),
                "mac": self.mac, "host_veth": self.host_veth, "bridge": self.bridge,
                "ports": [port.to_json() for port in self.ports]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Attachment:
        return cls(container_id=str(data["container_id"]), netns_path=Path(data["netns_path"]),
                   ip=IPv4Address(data["ip"]), prefixlen=int(data["prefixlen"]),
                   gateway=IPv4Address(data["gateway"]), mac=str(data["mac"]),
                   host_veth=str(data["host_veth"]), bridge=str(data["bridge"]),
                   ports=tuple(PublishedPort.from_json(port) for port in data["ports"]))


@dataclass(frozen=True)
class Record:
    attachment: Attachment
    complete: bool


class AttachmentStore:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.directory = state_dir / "attachments"

    def netns_path(self, container_id: str) -> Path:
        return self.state_dir / "netns" / check_container_id(container_id)

    def path(self, container_id: str) -> Path:
        return self.directory / f"{check_container_id(container_id)}.json"

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        make_dirs(self.state_dir, 0o700)
        fd = os.open(self.state_dir / "network.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                     0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def load(self, container_id: str) -> Record | None:
        path = self.path(container_id)
        try:
            return self._parse(path, path.read_bytes())
        except FileNotFoundError:
            return None

    def save(self, attachment: Attachment, complete: bool) -> None:
        data = {"version": RECORD_VERSION, "complete": complete,
                "attachment": attachment.to_json()}
        atomic_write(self.path(attachment.container_id),
                     (json.dumps(data, indent=1, sort_keys=True) + "\n").encode(),
                     mode=0o600, dir_mode=0o700)

    def delete(self, container_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(container_id).unlink()

    def ids(self) -> set[str]:
        try:
            return {entry.name[:-5] for entry in os.scandir(self.directory)
                    if entry.name.endswith(".json")}
        except FileNotFoundError:
            return set()

    def all(self) -> list[Record]:
        if not self.directory.is_dir():
            return []
        return [self._parse(path, path.read_bytes())
                for path in sorted(self.directory.glob("*.json"))]

    @staticmethod
    def _parse(path: Path, raw: bytes) -> Record:
        try:
            data = json.loads(raw)
            if data.get("version") != RECORD_VERSION:
                raise CorruptState(str(path), f"record version {data.get('version')!r}")
            return Record(Attachment.from_json(data["attachment"]), bool(data["complete"]))
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise CorruptState(str(path), f"{type(error).__name__}: {error}") from None
