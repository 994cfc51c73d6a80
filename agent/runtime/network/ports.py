"""From ``-p`` mappings to concrete published ports, each held by a real socket.

Holding the socket is what reserves the port: two containers (or a container and a host
service) cannot publish the same port, and the check happens before anything is
changed. The sockets then go to the container's monitor, which serves the user-space
proxy on them (docker-proxy's job), so the port stays held while the container lives.

Ranges pair up one to one; a host range for a single container port takes the first
free port of the range, and no host port (docker's ``-p 8080``) binds port 0, so the
kernel picks a free one from ``net.ipv4.ip_local_port_range``, atomically.
TCP sockets set SO_REUSEADDR (a restarted container must not wait for TIME_WAIT); UDP
ones must not, since on Linux two UDP sockets that both set it may bind the same port.
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType

from agent.model.syntax.ports import PortMapping
from agent.runtime.network.errors import PortInUse, PortUnavailable
from agent.runtime.network.records import PublishedPort

ANY = "0.0.0.0"  # noqa: S104 - docker publishes on every address unless told
BACKLOG = 128
EPHEMERAL_TRIES = 3
_IPPROTO_SCTP = 132


@dataclass(frozen=True)
class HeldPort:
    port: PublishedPort
    sock: socket.socket


class Reservation:
    """Published ports and the sockets holding them; ``sockets[i]`` holds ``ports[i]``.
    Closing gives every port back (the monitor keeps its own copies of the sockets)."""

    def __init__(self, held: Sequence[HeldPort]) -> None:
        self.held = tuple(held)

    @property
    def ports(self) -> tuple[PublishedPort, ...]:
        return tuple(entry.port for entry in self.held)

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return tuple(entry.sock for entry in self.held)

    def close(self) -> None:
        for entry in self.held:
            entry.sock.close()

    def __enter__(self) -> Reservation:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


@dataclass(frozen=True)
class _Wanted:
    host_ip: str
    first: int | None  # None: any free port
    last: int | None
    container_port: int
    protocol: str


def reserve(mappings: Sequence[PortMapping]) -> Reservation:
    """Bind every port ``mappings`` ask for; on the first that cannot be bound, release
    those already bound and raise ``PortInUse`` (or ``PortUnavailable``)."""
    held: list[HeldPort] = []
    try:
        for wanted in _expand(mappings):
            held.append(_hold(wanted))
    except BaseException:
        Reservation(held).close()
        raise
    return Reservation(held)


def _expand(mappings: Sequence[PortMapping]) -> Iterator[_Wanted]:
    for mapping in mappings:
        host_ip = mapping.host_ip or ANY
        target, published = mapping.target, mapping.published
        for offset, container_port in enumerate(range(target.start, target.end + 1)):
            if published is None:
                yield _Wanted(host_ip, None, None, container_port, mapping.protocol)
            elif target.size == 1:
                yield _Wanted(host_ip, published.start, published.end, container_port,
                              mapping.protocol)
            else:
                port = published.start + offset
                yield _Wanted(host_ip, port, port, container_port, mapping.protocol)


def _hold(wanted: _Wanted) -> HeldPort:
    if wanted.first is None or wanted.last is None:
        sock = _bind_any(wanted.host_ip, wanted.protocol)
        chosen = int(sock.getsockname()[1])
        return HeldPort(PublishedPort(wanted.host_ip, chosen, wanted.container_port,
                                      wanted.protocol), sock)
    for port in range(wanted.first, wanted.last + 1):
        try:
            sock = _bind(wanted.host_ip, port, wanted.protocol)
        except PortInUse:
            if port == wanted.last:
                raise PortInUse(wanted.host_ip, wanted.first, wanted.protocol,
                                end=wanted.last) from None
            continue
        return HeldPort(PublishedPort(wanted.host_ip, port, wanted.container_port,
                                      wanted.protocol), sock)
    raise AssertionError("unreachable: an empty port range")


def _bind_any(host_ip: str, protocol: str) -> socket.socket:
    """A port the kernel chooses. ``listen`` may still lose a race for it (another
    SO_REUSEADDR socket bound the same port before either listened): choose again."""
    for _ in range(EPHEMERAL_TRIES - 1):
        try:
            return _bind(host_ip, 0, protocol)
        except PortInUse:
            continue
    return _bind(host_ip, 0, protocol)


def _bind(host_ip: str, port: int, protocol: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host_ip else socket.AF_INET
    try:
        if protocol == "udp":
            sock = socket.socket(family, socket.SOCK_DGRAM)
        else:
            sock = socket.socket(family, socket.SOCK_STREAM,
                                 _IPPROTO_SCTP if protocol == "sctp" else 0)
    except OSError as error:
        raise PortUnavailable(host_ip, port, protocol, f"no {protocol} sockets here: "
                              f"{error.strerror}") from None
    try:
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if protocol != "udp":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host_ip, port))
        if protocol != "udp":
            sock.listen(BACKLOG)
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise PortInUse(host_ip, port, protocol) from None
        raise PortUnavailable(host_ip, port, protocol, error.strerror or str(error)) from None
    return sock
