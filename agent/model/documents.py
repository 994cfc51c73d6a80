"""Manifest documents: one pydantic model per ``kind``.

Flat documents (``kind``, ``name``, then the kind's fields) so a docker-compose
service body pastes in as a ``Container``. Every field is checked by its docker
syntax parser; unknown fields are errors.
"""

from __future__ import annotations

import posixpath
import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from agent.model.daemon_settings import validate_settings
from agent.model.syntax.command import parse_command
from agent.model.syntax.errors import SyntaxProblem
from agent.model.syntax.keyvalues import parse_key_values
from agent.model.syntax.paths import normalize_path
from agent.model.syntax.ports import PortMapping
from agent.model.syntax.reference import ImageReference, parse_reference
from agent.model.syntax.restart import RestartPolicy, parse_restart
from agent.model.syntax.sizes import parse_cpus, parse_memory, parse_pids
from agent.model.syntax.user import parse_user
from agent.model.syntax.volumes import VolumeMount

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}\Z")
_HOSTNAME = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)(?:\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\Z")
_REGISTRY = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                       r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])"
                       r"(?::[0-9]{1,5})?\Z")
_PLATFORM = re.compile(r"^[a-z0-9]+/[a-z0-9_]+(?:/[a-z0-9]+)?\Z")
_MAX_LIST = 1000


def _absolute_path(value: object, info: ValidationInfo) -> str:
    """Absolute host path; a relative one is resolved against the manifest's directory."""
    if not isinstance(value, str) or not value or len(value) > 4096 or "\0" in value:
        raise SyntaxProblem("a path must be a non-empty string of at most 4096 characters")
    if not value.startswith("/"):
        base_dir = (info.context or {}).get("base_dir")
        if base_dir is None:
            raise SyntaxProblem(f"path {value!r} must be absolute")
        value = posixpath.join(base_dir, value)
    return normalize_path(value)


def _reference(value: object) -> str:
    if not isinstance(value, str):
        raise SyntaxProblem("an image reference must be a string such as \"mysql:5.6\"")
    parse_reference(value)
    return value


HostPath = Annotated[str, BeforeValidator(_absolute_path)]
Reference = Annotated[str, BeforeValidator(_reference)]
Command = Annotated[tuple[str, ...], BeforeValidator(parse_command)]
KeyValues = dict[str, str | None]


class _Document(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_max_length=65536)
    kind: str
    name: str

    @property
    def key(self) -> tuple[str, str]:
        """The identity of a document on a host: two documents may not share it."""
        return (self.kind, self.name)


def _check_name(value: str) -> str:
    if not _NAME.match(value):
        raise SyntaxProblem(
            "name must start with a letter or digit and hold only letters, digits, '_', '.', '-'"
            " (at most 253 characters)"
        )
    return value


class DaemonConfig(_Document):
    """Owned keys of Docker's daemon.json; every other key in the file is preserved."""

    kind: Literal["DaemonConfig"]
    path: HostPath = "/etc/docker/daemon.json"
    settings: dict[str, Any] = Field(min_length=1)
    allow_unknown_keys: bool = False

    _name = field_validator("name")(_check_name)

    @model_validator(mode="after")
    def _settings_valid(self) -> DaemonConfig:
        try:
            validate_settings(self.settings, self.allow_unknown_keys)
        except SyntaxProblem as exc:
            raise SyntaxProblem(str(exc), at=("settings", *exc.at), at_key=exc.at_key) from None
        return self


def _mirror_url(value: object) -> str:
    """A mirror is the root URL of a registry (http or https), as dockerd's ValidateMirror."""
    if not isinstance(value, str) or not re.match(r"^https?://[^/?#\s]+/?\Z", value):
        raise SyntaxProblem(f"mirror {value!r} must be an http:// or https:// registry root "
                            "URL, without path or query (e.g. https://mirror.example.com)")
    return value.rstrip("/")


def _registry_host(value: object) -> str:
    if not isinstance(value, str) or not _REGISTRY.match(value):
        raise SyntaxProblem(f"{value!r} is not a registry host[:port] such as "
                            "192.168.88.92:5000 or docker.io")
    return value


MirrorUrl = Annotated[str, BeforeValidator(_mirror_url)]
RegistryHost = Annotated[str, BeforeValidator(_registry_host)]


class RegistryConfig(_Document):
    """pyprov's registry settings beyond daemon.json, which the agent's registry client
    reads with it: mirrors for any registry (daemon.json's ``registry-mirrors`` serve
    docker.io only), tried in order before the registry itself, and the token realms on
    other hosts a registry's credentials may be sent to. One per host."""

    kind: Literal["RegistryConfig"]
    mirrors: dict[RegistryHost, list[MirrorUrl]] = Field(default_factory=dict,
                                                         max_length=_MAX_LIST)
    realms: dict[RegistryHost, list[RegistryHost]] = Field(default_factory=dict,
                                                           max_length=_MAX_LIST)

    _name = field_validator("name")(_check_name)


class Image(_Document):
    """An image the host must hold; ``name`` is the reference."""

    kind: Literal["Image"]
    name: Reference
    pull: Literal["always", "if-not-present", "never"] = "if-not-present"
    archive: HostPath | None = None
    platform: str | None = None

    @field_validator("platform")
    @classmethod
    def _platform(cls, value: str | None) -> str | None:
        if value is not None and not _PLATFORM.match(value):
            raise SyntaxProblem(f"platform {value!r} must be os/arch[/variant], e.g. linux/amd64")
        return value

    @property
    def reference(self) -> ImageReference:
        return parse_reference(self.name)


class Container(_Document):
    """A container the host must run: a docker-compose service body plus ``state``."""

    kind: Literal["Container"]
    image: Reference
    state: Literal["running", "stopped", "absent"] = "running"
    command: Command | None = None
    entrypoint: Command | None = None
    environment: KeyValues = Field(default_factory=dict)
    ports: tuple[PortMapping, ...] = Field(default=(), max_length=_MAX_LIST)
    volumes: tuple[VolumeMount, ...] = Field(default=(), max_length=_MAX_LIST)
    restart: str = "no"
    working_dir: str | None = None
    user: str | None = None
    hostname: str | None = None
    labels: KeyValues = Field(default_factory=dict)
    mem_limit: Annotated[int, BeforeValidator(parse_memory)] | None = None
    cpus: Annotated[float, BeforeValidator(parse_cpus)] | None = None
    pids_limit: Annotated[int, BeforeValidator(parse_pids)] | None = None
    network: Literal["bridge", "host", "none"] = "bridge"
    volumes_from: tuple[str, ...] = Field(default=(), max_length=_MAX_LIST)

    _name = field_validator("name")(_check_name)

    @model_validator(mode="before")
    @classmethod
    def _network_mode(cls, value: Any) -> Any:
        """compose spells it ``network_mode``; both names are accepted, not both at once."""
        if isinstance(value, dict) and "network_mode" in value:
            if "network" in value:
                raise SyntaxProblem("give network or network_mode, not both")
            value = {**value, "network": value["network_mode"]}
            del value["network_mode"]
        return value

    @field_validator("volumes_from")
    @classmethod
    def _volumes_from(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        """compose's ``name[:ro|rw]``: the mounts of another container."""
        for entry in value:
            name, _, mode = entry.partition(":")
            if not _NAME.match(name) or mode not in ("", "ro", "rw"):
                raise SyntaxProblem(f"volumes_from {entry!r} is not CONTAINER[:ro|:rw]")
        return value

    @field_validator("environment", mode="before")
    @classmethod
    def _environment(cls, value: object) -> KeyValues:
        return parse_key_values(value, "environment variable")

    @field_validator("labels", mode="before")
    @classmethod
    def _labels(cls, value: object) -> KeyValues:
        return {k: v or "" for k, v in parse_key_values(value, "label").items()}

    @field_validator("restart", mode="before")
    @classmethod
    def _restart(cls, value: object) -> str:
        return str(parse_restart(value))

    @field_validator("user", mode="before")
    @classmethod
    def _user(cls, value: object) -> str | None:
        return None if value is None else parse_user(value)

    @field_validator("working_dir")
    @classmethod
    def _working_dir(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise SyntaxProblem(f"working_dir {value!r} must be an absolute path in the container")
        return value

    @field_validator("hostname")
    @classmethod
    def _hostname(cls, value: str | None) -> str | None:
        if value is not None and (len(value) > 253 or not _HOSTNAME.match(value)):
            raise SyntaxProblem(f"hostname {value!r} is not a valid host name")
        return value

    @model_validator(mode="after")
    def _no_port_twice(self) -> Container:
        claims = PortClaims()
        for index, mapping in enumerate(self.ports):
            clash = claims.claim(mapping, self.name)
            if clash is not None:
                raise SyntaxProblem(f"host port {clash[0]}/{mapping.protocol} is published twice",
                                    at=("ports", index))
        targets: set[str] = set()
        for index, volume in enumerate(self.volumes):
            if volume.target in targets:
                raise SyntaxProblem("two volumes are mounted on the same container path "
                                    f"{volume.target}", at=("volumes", index))
            targets.add(volume.target)
        return self

    @property
    def restart_policy(self) -> RestartPolicy:
        return parse_restart(self.restart)

    @property
    def image_reference(self) -> ImageReference:
        return parse_reference(self.image)


class PortClaims:
    """Host ports claimed so far. A wildcard address (no ``host_ip``) clashes with every
    address on the same port, as bind() does; a host range published for a single
    container port is a pick-one-free range (docker's), so it claims nothing fixed."""

    def __init__(self) -> None:
        self._owners: dict[tuple[str, int], list[tuple[str | None, str]]] = {}

    def claim(self, mapping: PortMapping, owner: str) -> tuple[int, str] | None:
        """Record ``mapping``'s ports; the first clashing (port, other owner) if any."""
        published = mapping.published
        if published is None or (published.size > 1 and mapping.target.size == 1):
            return None
        for port in range(published.start, published.end + 1):
            holders = self._owners.setdefault((mapping.protocol, port), [])
            for address, other in holders:
                if address is None or mapping.host_ip is None or address == mapping.host_ip:
                    return port, other
            holders.append((mapping.host_ip, owner))
        return None


AnyDocument = DaemonConfig | RegistryConfig | Image | Container
Document = Annotated[AnyDocument, Field(discriminator="kind")]
KINDS: dict[str, type[AnyDocument]] = {
    "DaemonConfig": DaemonConfig,
    "RegistryConfig": RegistryConfig,
    "Image": Image,
    "Container": Container,
}


def document_class(kind: object) -> type[AnyDocument]:
    """The model for ``kind``; ``KeyError`` names the known kinds."""
    if not isinstance(kind, str) or kind not in KINDS:
        raise KeyError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    return KINDS[kind]


FieldPath = tuple[str | int, ...]


def conflicts(
    documents: list[AnyDocument],
) -> list[tuple[int, FieldPath, str]]:
    """Problems no single document shows: (index, field path, message) per later duplicate."""
    problems: list[tuple[int, FieldPath, str]] = []
    seen: dict[tuple[str, str], int] = {}
    paths: dict[str, int] = {}
    registry_config: str | None = None
    claims = PortClaims()
    for index, doc in enumerate(documents):
        if doc.key in seen:
            problems.append((index, ("name",), f"{doc.kind} {doc.name!r} is declared twice"))
        seen.setdefault(doc.key, index)
        if isinstance(doc, RegistryConfig):
            if registry_config is not None:
                problems.append((index, ("kind",), "a host has one RegistryConfig; merge it "
                                 f"with {registry_config!r}"))
            registry_config = registry_config or doc.name
        if isinstance(doc, DaemonConfig):
            if doc.path in paths:
                problems.append((index, ("path",), f"{doc.path} is already managed by another "
                                 "DaemonConfig; merge their settings into one document"))
            paths.setdefault(doc.path, index)
        if isinstance(doc, Container) and doc.state != "absent":
            for port_index, mapping in enumerate(doc.ports):
                clash = claims.claim(mapping, doc.name)
                if clash is not None:
                    problems.append((index, ("ports", port_index),
                                     f"host port {clash[0]}/{mapping.protocol} "
                                     f"is also published by container {clash[1]!r}"))
    return problems
