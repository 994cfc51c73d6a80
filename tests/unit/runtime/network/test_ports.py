"""Published ports held by real sockets: ranges, free-port choice, and PortInUse before
anything is held. Each test binds on its own random 127/8 address (all of 127/8 is
local on Linux), so tests running in parallel do not collide."""

from __future__ import annotations

import contextlib
import random
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.model.syntax.ports import PortMapping
from agent.runtime.network.errors import PortInUse, PortUnavailable
from agent.runtime.network.ports import ANY, Reservation, reserve
from agent.runtime.network.records import PublishedPort


@pytest.fixture
def ip() -> str:
    return f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"


@pytest.fixture
def port() -> int:
    return random.randint(20000, 30000)


def mappings(*texts: str) -> list[PortMapping]:
    return [PortMapping.model_validate(text) for text in texts]


@contextlib.contextmanager
def held(ip: str, port: int, kind: int = socket.SOCK_STREAM, reuse: bool = False
         ) -> Iterator[socket.socket]:
    """Someone else's socket on ``ip:port``."""
    with socket.socket(socket.AF_INET, kind) as sock:
        if reuse:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((ip, port))
        if kind == socket.SOCK_STREAM:
            sock.listen()
        yield sock


def bindable(ip: str, port: int, kind: int = socket.SOCK_STREAM) -> bool:
    try:
        with held(ip, port, kind):
            return True
    except OSError:
        return False


def test_ranges_pair_up_and_every_port_is_held(ip: str, port: int) -> None:
    with reserve(mappings(f"{ip}:{port}-{port + 2}:80-82")) as reservation:
        assert reservation.ports == tuple(PublishedPort(ip, port + i, 80 + i, "tcp")
                                          for i in range(3))
        for sock, published in zip(reservation.sockets, reservation.ports, strict=True):
            assert sock.getsockname() == (ip, published.host_port)
            assert not bindable(ip, published.host_port)
            with socket.create_connection((ip, published.host_port), timeout=5):
                pass  # listening: the kernel completes the handshake into the backlog


def test_a_host_range_for_one_container_port_takes_the_first_free(ip: str, port: int) -> None:
    with held(ip, port), reserve(mappings(f"{ip}:{port}-{port + 2}:80")) as reservation:
        assert reservation.ports == (PublishedPort(ip, port + 1, 80, "tcp"),)


def test_a_host_range_with_nothing_free(ip: str, port: int) -> None:
    with held(ip, port), held(ip, port + 1), pytest.raises(PortInUse) as caught:
        reserve(mappings(f"{ip}:{port}-{port + 1}:80"))
    assert (caught.value.host_port, caught.value.end) == (port, port + 1)
    assert f"{ip}:{port}-{port + 1}/tcp" in str(caught.value)


def test_no_host_port_takes_a_free_one_from_the_ephemeral_range() -> None:
    assert ANY == "0.0.0.0"  # noqa: S104 - docker's default host address
    low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    with reserve(mappings("8080", "53/udp")) as reservation:
        tcp, udp = reservation.ports
        assert (tcp.host_ip, tcp.container_port, tcp.protocol) == (ANY, 8080, "tcp")
        assert (udp.host_ip, udp.container_port, udp.protocol) == (ANY, 53, "udp")
        assert low <= tcp.host_port <= high
        assert low <= udp.host_port <= high


def test_port_in_use_names_it_and_releases_what_was_already_bound(ip: str, port: int) -> None:
    taken = port + 5
    with held(ip, taken), pytest.raises(PortInUse) as caught:
        reserve(mappings(f"{ip}:{port}:80", f"{ip}:{port + 1}:81/udp", f"{ip}:{taken}:82"))
    error = caught.value
    assert (error.host_ip, error.host_port, error.protocol) == (ip, taken, "tcp")
    assert f"{ip}:{taken}/tcp" in str(error)
    assert bindable(ip, port)
    assert bindable(ip, port + 1, socket.SOCK_DGRAM)


def test_udp_conflicts_are_seen_even_against_so_reuseaddr(ip: str, port: int) -> None:
    """Two UDP sockets that both set SO_REUSEADDR may share a port on Linux: pyprov's
    must not set it, or a taken UDP port would look free."""
    with held(ip, port, socket.SOCK_DGRAM, reuse=True), pytest.raises(PortInUse):
        reserve(mappings(f"{ip}:{port}:53/udp"))


def test_tcp_and_udp_share_a_port_number(ip: str, port: int) -> None:
    with reserve(mappings(f"{ip}:{port}:53/tcp", f"{ip}:{port}:53/udp")) as reservation:
        assert [p.host_port for p in reservation.ports] == [port, port]


def test_sockets_are_cloexec_and_tcp_reuses_addresses(ip: str, port: int) -> None:
    with reserve(mappings(f"{ip}:{port}:80", f"{ip}:{port}:80/udp")) as reservation:
        tcp, udp = reservation.sockets
        assert not tcp.get_inheritable()
        assert not udp.get_inheritable()
        assert tcp.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 1
        assert udp.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) == 0


def test_closing_the_reservation_gives_the_ports_back(ip: str, port: int) -> None:
    reservation: Reservation = reserve(mappings(f"{ip}:{port}:80"))
    assert not bindable(ip, port)
    reservation.close()
    assert bindable(ip, port)


def test_an_address_this_host_does_not_have(port: int) -> None:
    with pytest.raises(PortUnavailable) as caught:
        reserve(mappings(f"192.0.2.123:{port}:80"))
    assert not isinstance(caught.value, PortInUse)
    assert f"192.0.2.123:{port}/tcp" in str(caught.value)


def test_ipv6_loopback(port: int) -> None:
    with reserve(mappings(f"[::1]:{port}:80")) as reservation:
        assert reservation.ports == (PublishedPort("::1", port, 80, "tcp"),)
        assert str(reservation.ports[0]) == f"[::1]:{port}->80/tcp"
        assert reservation.sockets[0].family == socket.AF_INET6
