"""Which URLs serve a registry, in which order, and how securely: dockerd's rules.

- docker.io is served by ``https://registry-1.docker.io``, after its mirrors
  (daemon.json ``registry-mirrors``), tried in order, for pulls only.
- pyprov goes beyond dockerd: mirrors for any registry (``mirrors`` in pyprov's registry
  settings, ``{"registry:port": ["https://mirror", ...]}``), with the same fallback.
- ``insecure-registries`` entries (``host``, ``host:port`` or a CIDR) and 127.0.0.0/8 and
  ::1 (which dockerd always treats as insecure) get TLS without verification first and
  plain HTTP when TLS cannot be spoken (``http_fallback``: the same registry, so the
  client remembers which works). Every other registry gets verified TLS only: never a
  downgrade.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from agent.errors import RegistryError

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
DAEMON_JSON = Path("/etc/docker/daemon.json")
ALWAYS_INSECURE = ("127.0.0.0/8", "::1/128")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Endpoint:
    """One registry (or mirror) to try: ``verify`` False and ``http_fallback`` only for
    insecure registries."""

    base: str
    verify: bool
    mirror: bool = False
    http_fallback: bool = False

    @property
    def host(self) -> str:
        return urlsplit(self.base).netloc

    @property
    def plain_http(self) -> bool:
        return self.base.startswith("http://")


@dataclass(frozen=True)
class RegistryConfig:
    mirrors: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    insecure: tuple[str, ...] = ()
    realms: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # trusted token realms

    @classmethod
    def load(cls, daemon_json: Path = DAEMON_JSON,
             extra: Path | None = None) -> RegistryConfig:
        """From the daemon.json dockerd reads (the agent honours what it writes), plus
        pyprov's own registry settings (mirrors for any registry), when present."""
        settings = _read_json(daemon_json)
        mirrors: dict[str, tuple[str, ...]] = {}
        hub = settings.get("registry-mirrors") or []
        if hub:
            mirrors[DOCKER_HUB] = tuple(str(m) for m in hub)
        own = _read_json(extra) if extra else {}
        for registry, urls in (own.get("mirrors") or {}).items():
            mirrors[str(registry)] = tuple(str(u) for u in urls)
        insecure = tuple(str(i) for i in settings.get("insecure-registries") or ())
        realms = {str(registry): tuple(str(h) for h in hosts)
                  for registry, hosts in (own.get("realms") or {}).items()}
        return cls(mirrors, insecure, realms)

    def is_insecure(self, host: str) -> bool:
        """dockerd's isSecureIndex, inverted: listed by name, or an address in a listed
        (or always insecure) network."""
        if host in self.insecure:
            return True
        name = _hostname(host)
        if name in self.insecure:
            return True
        networks = [n for n in (_network(e) for e in (*self.insecure, *ALWAYS_INSECURE)) if n]
        return any(address in net for address in _addresses(name) for net in networks
                   if address.version == net.version)

    def endpoints(self, registry: str, *, push: bool = False) -> list[Endpoint]:
        found: list[Endpoint] = []
        if not push:
            for url in self.mirrors.get(registry, ()):
                base = url.rstrip("/")
                insecure = self.is_insecure(urlsplit(base).netloc)
                found.append(Endpoint(base, verify=not insecure, mirror=True,
                                      http_fallback=insecure and base.startswith("https:")))
        host = DOCKER_HUB_API if registry == DOCKER_HUB else registry
        insecure = self.is_insecure(host)
        found.append(Endpoint(f"https://{host}", verify=not insecure, http_fallback=insecure))
        return found


def validate_mirror(url: str) -> str:
    """A mirror is an http(s) URL of a registry root, as dockerd's ValidateMirror."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise RegistryError(f"mirror {url!r} must be an http:// or https:// URL")
    if parts.query or parts.fragment or parts.path not in ("", "/"):
        raise RegistryError(f"mirror {url!r} must be a registry root, without path or query")
    return url


def _read_json(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise RegistryError(f"cannot read registry settings from {path}: {exc}") from None
    return data if isinstance(data, dict) else {}


def _hostname(host: str) -> str:
    if host.startswith("["):
        return host[1:host.index("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _network(entry: str) -> Network | None:
    if "/" not in entry:
        return None
    try:
        return ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return None


def _addresses(name: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(name)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return []
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
