"""The user-space proxy against real servers on loopback: TCP both ways with half-close
passed on in either direction, many connections on its one thread, a refused upstream
closing the client, UDP per-client mappings and their idle expiry."""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator

import pytest

from agent.runtime.network.proxy import Proxy
from tests.conftest import REPO
from tests.waiting import poll

TIMEOUT = 20.0

Handler = Callable[[socket.socket], None]



def recv_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


@pytest.fixture
def tcp_server() -> Iterator[Callable[[Handler], int]]:
    """Start a threaded TCP server on 127.0.0.1 running ``handler`` per connection."""
    servers: list[socket.socket] = []

    def start(handler: Handler) -> int:
        server = socket.create_server(("127.0.0.1", 0))
        servers.append(server)

        def serve() -> None:
            while True:
                try:
                    conn, _ = server.accept()
                except OSError:
                    return
                conn.settimeout(TIMEOUT)
                threading.Thread(target=lambda c=conn: (handler(c), c.close()),
                                 daemon=True).start()

        threading.Thread(target=serve, daemon=True).start()
        return int(server.getsockname()[1])

    yield start
    for server in servers:
        server.shutdown(socket.SHUT_RDWR)
        server.close()


@pytest.fixture
def proxied() -> Iterator[Callable[[int, int], tuple[Proxy, tuple[str, int]]]]:
    """A started proxy for one listening socket of ``kind`` forwarding to ``port``."""
    started: list[tuple[Proxy, socket.socket]] = []

    def start(port: int, kind: int = socket.SOCK_STREAM, **options: float
              ) -> tuple[Proxy, tuple[str, int]]:
        listener = socket.socket(socket.AF_INET, kind)
        listener.bind(("127.0.0.1", 0))
        if kind == socket.SOCK_STREAM:
            listener.listen()
        proxy = Proxy("127.0.0.1", [(listener, port)], **options)
        proxy.start()
        started.append((proxy, listener))
        return proxy, listener.getsockname()

    yield start  # type: ignore[misc]
    for proxy, listener in started:
        proxy.stop()
        listener.close()


def digest_then_echo(conn: socket.socket) -> None:
    """Read to EOF (only possible if the client's half-close got through), then answer
    with the digest and the data back."""
    data = recv_all(conn)
    conn.sendall(hashlib.sha256(data).digest() + data)


def test_tcp_both_ways_with_the_clients_half_close(tcp_server, proxied) -> None:
    _, address = proxied(tcp_server(digest_then_echo))
    payload = os.urandom(3 << 20)
    with socket.create_connection(address, timeout=TIMEOUT) as client:
        client.sendall(payload)
        client.shutdown(socket.SHUT_WR)
        answer = recv_all(client)
    assert answer == hashlib.sha256(payload).digest() + payload


def test_tcp_half_close_from_the_container_side(tcp_server, proxied) -> None:
    received: list[bytes] = []

    def greet_first(conn: socket.socket) -> None:
        conn.sendall(b"hello")
        conn.shutdown(socket.SHUT_WR)
        received.append(recv_all(conn))

    _, address = proxied(tcp_server(greet_first))
    with socket.create_connection(address, timeout=TIMEOUT) as client:
        assert recv_all(client) == b"hello"  # the server's FIN came through
        client.sendall(b"still talking")    # ... and our direction is still open
        client.shutdown(socket.SHUT_WR)
        assert client.recv(1) == b""         # both directions done: the proxy closes
    assert poll(lambda: received == [b"still talking"])


def test_many_connections_at_once_on_one_thread(tcp_server, proxied) -> None:
    _, address = proxied(tcp_server(digest_then_echo))
    results: dict[int, bool] = {}

    def client(n: int) -> None:
        payload = os.urandom(50_000 + n)
        with socket.create_connection(address, timeout=TIMEOUT) as sock:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
            results[n] = recv_all(sock) == hashlib.sha256(payload).digest() + payload

    clients = [threading.Thread(target=client, args=(n,)) for n in range(30)]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join()
    assert results == dict.fromkeys(range(30), True)


def test_a_refused_upstream_closes_the_client_cleanly(proxied) -> None:
    with socket.socket() as placeholder:  # a port nobody listens on, held so nobody will
        placeholder.bind(("127.0.0.1", 0))
        _, address = proxied(placeholder.getsockname()[1])
        with socket.create_connection(address, timeout=TIMEOUT) as client:
            assert client.recv(1) == b""  # FIN, not a hang


def test_stop_ends_sessions_and_leaves_the_listening_socket_open(tcp_server) -> None:
    gate = threading.Event()

    def hold(conn: socket.socket) -> None:
        gate.wait(TIMEOUT)

    port = tcp_server(hold)
    listener = socket.create_server(("127.0.0.1", 0))
    proxy = Proxy("127.0.0.1", [(listener, port)])
    proxy.start()
    try:
        with socket.create_connection(listener.getsockname(), timeout=TIMEOUT) as client:
            client.sendall(b"x")
            proxy.stop()
            with contextlib.suppress(ConnectionResetError):  # RST if "x" was still unread
                assert client.recv(1) == b""
        assert listener.fileno() != -1
    finally:
        gate.set()
        proxy.stop()
        listener.close()


STOP = b"\0stop"


@pytest.fixture
def udp_server() -> Iterator[int]:
    """Answers each datagram with it upper-cased and the source port it came from."""
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))

    def serve() -> None:
        while (received := server.recvfrom(65535))[0] != STOP:
            data, peer = received
            server.sendto(data.upper() + b" " + str(peer[1]).encode(), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(server.getsockname()[1])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stopper:
        stopper.sendto(STOP, server.getsockname())
    thread.join(TIMEOUT)
    server.close()


def ask(sock: socket.socket, address: tuple[str, int], data: bytes) -> tuple[bytes, int]:
    sock.sendto(data, address)
    answer, source = sock.recvfrom(65535)
    assert source == address
    text, _, upstream = answer.rpartition(b" ")
    return text, int(upstream)


def udp_client() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(TIMEOUT)
    sock.bind(("127.0.0.1", 0))
    return sock


def test_udp_keeps_one_upstream_per_client(udp_server, proxied) -> None:
    proxy, address = proxied(udp_server, socket.SOCK_DGRAM)
    with udp_client() as one, udp_client() as two:
        text, first = ask(one, address, b"ping")
        assert text == b"PING"
        assert ask(one, address, b"again") == (b"AGAIN", first)
        text, other = ask(two, address, b"pong")
        assert (text, other != first) == (b"PONG", True)
        assert proxy.udp_clients() == 2


def test_udp_mappings_expire_when_idle(udp_server, proxied) -> None:
    # Idle long enough that a stalled machine does not expire a mapping mid-exchange.
    proxy, address = proxied(udp_server, socket.SOCK_DGRAM, udp_idle_timeout=1.0)
    with udp_client() as client:
        assert ask(client, address, b"one")[0] == b"ONE"
        assert proxy.udp_clients() == 1
        assert poll(lambda: proxy.udp_clients() == 0)
        assert ask(client, address, b"two")[0] == b"TWO"  # a fresh mapping serves it
        assert proxy.udp_clients() == 1


def test_from_inherited_descriptors(tcp_server, udp_server) -> None:
    """The monitor's path: descriptors passed in, the socket kind read from them."""
    tcp = socket.create_server(("127.0.0.1", 0))
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    proxy = Proxy.from_fds("127.0.0.1", [os.dup(tcp.fileno()), os.dup(udp.fileno())],
                           [tcp_server(digest_then_echo), udp_server])
    proxy.start()
    try:
        with socket.create_connection(tcp.getsockname(), timeout=TIMEOUT) as client:
            client.sendall(b"abc")
            client.shutdown(socket.SHUT_WR)
            assert recv_all(client) == hashlib.sha256(b"abc").digest() + b"abc"
        with udp_client() as client:
            assert ask(client, udp.getsockname(), b"x")[0] == b"X"
    finally:
        proxy.stop()
        tcp.close()
        udp.close()


def test_imports_neither_pyroute2_nor_pydantic() -> None:
    probe = ("import sys, agent.runtime.network.proxy, agent.runtime.network.files;"
             "print(sorted({'pyroute2', 'pydantic'} & {m.split('.')[0] for m in sys.modules}))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True,
                          text=True, check=True)
    assert done.stdout == "[]\n"
