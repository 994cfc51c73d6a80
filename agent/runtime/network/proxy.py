"""The user-space proxy for published ports (docker-proxy's job), where kernel NAT cannot
reach: connections to 127.0.0.1, and from containers to the host's published ports.

Standard library only, and little of it: the container's monitor imports this module.
It serves the listening sockets the runtime reserved (see ports.py), already bound, and
forwards to ``container_ip:container_port``: TCP connections both ways with half-close
passed on (a client's FIN becomes a shutdown towards the container, and back), UDP
datagrams through one upstream socket per client address, closed after
``udp_idle_timeout`` of silence (docker-proxy's 90 s). Everything runs in one daemon
thread around a ``selectors`` loop; a connection the container refuses closes the
client's connection, nothing more.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import selectors
import socket
import threading
import time
from collections.abc import Callable, Sequence

CHUNK = 1 << 16
UDP_DATAGRAM = 65535
UDP_IDLE_TIMEOUT = 90.0
UDP_MAX_CLIENTS = 1024  # per port: the least recently active client is dropped beyond it
UDP_BATCH = 64          # datagrams read per wake-up, so one busy port cannot starve others
_IPPROTO_TCP = 6
_READ, _WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
_WAIT = (BlockingIOError, InterruptedError)
_SEND = socket.MSG_NOSIGNAL

Callback = Callable[[int], None]
Address = tuple[object, ...]


class Proxy:
    """Forward ``routes`` (listening socket, container port) to ``container_ip``. The
    sockets stay the caller's: ``stop`` closes the proxied connections, not them."""

    def __init__(self, container_ip: str, routes: Sequence[tuple[socket.socket, int]], *,
                 udp_idle_timeout: float = UDP_IDLE_TIMEOUT) -> None:
        self.container_ip = container_ip
        self.udp_idle_timeout = udp_idle_timeout
        self._routes = list(routes)
        self._selector = selectors.DefaultSelector()
        self._sessions: set[_TcpSession] = set()
        self._paused: list[_TcpListener] = []
        self._udp: list[_UdpListener] = []
        self._stopping = False
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_fds(cls, container_ip: str, fds: Sequence[int], container_ports: Sequence[int],
                 **options: float) -> Proxy:
        """The monitor's way in: inherited descriptors, in the reservation's order."""
        routes = [(socket.socket(fileno=fd), port) for fd, port in zip(fds, container_ports,
                                                                        strict=True)]
        return cls(container_ip, routes, **options)

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the proxy is already started")
        self._wake_r.setblocking(False)
        self.watch(self._wake_r, _READ, self._woken)
        for sock, port in self._routes:
            target = (self.container_ip, port)
            if sock.type == socket.SOCK_DGRAM:
                self._udp.append(_UdpListener(self, sock, target))
            elif sock.type == socket.SOCK_STREAM and sock.proto in (0, _IPPROTO_TCP):
                _TcpListener(self, sock, target)
            # anything else (SCTP) is NAT's alone
        self._thread = threading.Thread(target=self._run, name="pyprov-proxy", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stopping = True
        self._wake_w.send(b"\0")
        self._thread.join()
        self._thread = None

    def udp_clients(self) -> int:
        """How many UDP clients hold an upstream socket now."""
        return sum(len(listener.flows) for listener in self._udp)

    def watch(self, sock: socket.socket, events: int, callback: Callback) -> None:
        """Set ``sock``'s interest to ``events`` (0: none)."""
        try:
            key = self._selector.get_key(sock)
        except KeyError:
            if events:
                self._selector.register(sock, events, callback)
            return
        if not events:
            self._selector.unregister(sock)
        elif key.events != events or key.data is not callback:
            self._selector.modify(sock, events, callback)

    def pause(self, listener: _TcpListener) -> None:
        """Stop accepting on ``listener`` until a session ends (out of descriptors)."""
        self.watch(listener.sock, 0, listener.ready)
        self._paused.append(listener)

    def session_opened(self, session: _TcpSession) -> None:
        self._sessions.add(session)

    def session_closed(self, session: _TcpSession) -> None:
        self._sessions.discard(session)
        while self._paused:  # a descriptor came free: accept again
            self._paused.pop().resume()

    def _run(self) -> None:
        try:
            while not self._stopping:
                for key, mask in self._selector.select(self._udp_timeout()):
                    key.data(mask)
                    if self._stopping:
                        break
                now = time.monotonic()
                for listener in self._udp:
                    listener.expire(now)
        finally:
            self._shut_down()

    def _udp_timeout(self) -> float | None:
        oldest = [listener.oldest() for listener in self._udp]
        active = [last for last in oldest if last is not None]
        if not active:
            return None
        return max(0.0, min(active) + self.udp_idle_timeout - time.monotonic())

    def _woken(self, _mask: int) -> None:
        with contextlib.suppress(*_WAIT):
            self._wake_r.recv(64)

    def _shut_down(self) -> None:
        for session in list(self._sessions):
            session.close()
        for listener in self._udp:
            listener.close_flows()
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()


class _TcpListener:
    def __init__(self, proxy: Proxy, sock: socket.socket, target: tuple[str, int]) -> None:
        self.proxy, self.sock, self.target = proxy, sock, target
        sock.setblocking(False)
        self.resume()

    def resume(self) -> None:
        self.proxy.watch(self.sock, _READ, self.ready)

    def ready(self, _mask: int) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except _WAIT:
                return
            except ConnectionAbortedError:
                continue
            except OSError:  # out of descriptors or memory: wait for a session to end
                self.proxy.pause(self)
                return
            _TcpSession(self.proxy, client, self.target)


class _Flow:
    """One direction of a TCP session: at most one chunk in flight."""

    __slots__ = ("buffer", "dst", "eof", "shut", "src")

    def __init__(self, src: socket.socket, dst: socket.socket) -> None:
        self.src, self.dst = src, dst
        self.buffer = b""
        self.eof = self.shut = False

    def read(self) -> None:
        try:
            data = self.src.recv(CHUNK)
        except _WAIT:
            return
        if data:
            self.buffer = data
        else:
            self.eof = True
        self.finish()

    def write(self) -> None:
        try:
            sent = self.dst.send(self.buffer, _SEND)
        except _WAIT:
            return
        self.buffer = self.buffer[sent:]
        self.finish()

    def finish(self) -> None:
        """Pass the end of the stream on once everything before it is delivered."""
        if self.eof and not self.buffer and not self.shut:
            self.shut = True
            # A peer already gone fails this; the session ends on its next event.
            with contextlib.suppress(OSError):
                self.dst.shutdown(socket.SHUT_WR)


class _TcpSession:
    def __init__(self, proxy: Proxy, client: socket.socket, target: tuple[str, int]) -> None:
        self.proxy, self.client = proxy, client
        self.upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.closed, self.connecting = False, True
        self.outbound = _Flow(client, self.upstream)   # client -> container
        self.inbound = _Flow(self.upstream, client)    # container -> client
        client.setblocking(False)
        self.upstream.setblocking(False)
        proxy.session_opened(self)
        if self.upstream.connect_ex(target) not in (0, errno.EINPROGRESS):
            self.close()
            return
        self._update()

    def _update(self) -> None:
        if self.closed:
            return
        if self.outbound.shut and self.inbound.shut:
            self.close()
            return
        client = upstream = 0
        if self.connecting:
            upstream = _WRITE
        else:
            client |= _READ if not (self.outbound.eof or self.outbound.buffer) else 0
            client |= _WRITE if self.inbound.buffer else 0
            upstream |= _READ if not (self.inbound.eof or self.inbound.buffer) else 0
            upstream |= _WRITE if self.outbound.buffer else 0
        self.proxy.watch(self.client, client, self._client_ready)
        self.proxy.watch(self.upstream, upstream, self._upstream_ready)

    def _client_ready(self, mask: int) -> None:
        self._step(mask, self.outbound, self.inbound)

    def _upstream_ready(self, mask: int) -> None:
        if self.connecting:
            code = self.upstream.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:  # the container refused, or is not there: end the client's connection
                self.close()
                return
            self.connecting = False
            self._update()
            return
        self._step(mask, self.inbound, self.outbound)

    def _step(self, mask: int, reading: _Flow, writing: _Flow) -> None:
        try:
            if mask & _READ and not (reading.eof or reading.buffer):
                reading.read()
            if mask & _WRITE and writing.buffer:
                writing.write()
        except OSError:  # reset, broken pipe: the session is over
            self.close()
            return
        self._update()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for sock in (self.client, self.upstream):
            self.proxy.watch(sock, 0, self._client_ready)
            sock.close()
        self.proxy.session_closed(self)


class _UdpListener:
    def __init__(self, proxy: Proxy, sock: socket.socket, target: tuple[str, int]) -> None:
        self.proxy, self.sock, self.target = proxy, sock, target
        self.flows: collections.OrderedDict[Address, _UdpFlow] = collections.OrderedDict()
        sock.setblocking(False)
        proxy.watch(sock, _READ, self.ready)

    def ready(self, _mask: int) -> None:
        for _ in range(UDP_BATCH):
            try:
                data, client = self.sock.recvfrom(UDP_DATAGRAM)
            except _WAIT:
                return
            except OSError:
                continue  # an error queued on the socket; the next datagram is fine
            flow = self.flows.get(client)
            if flow is None:
                flow = self._open(client)
                if flow is None:
                    continue
            self.touch(client)
            flow.send(data)

    def _open(self, client: Address) -> _UdpFlow | None:
        if len(self.flows) >= UDP_MAX_CLIENTS:
            self.flows.popitem(last=False)[1].close()
        try:
            flow = _UdpFlow(self, client)
        except OSError:
            return None  # out of descriptors: this datagram is dropped, as UDP allows
        self.flows[client] = flow
        return flow

    def touch(self, client: Address) -> None:
        flow = self.flows.get(client)
        if flow is not None:
            flow.last = time.monotonic()
            self.flows.move_to_end(client)

    def oldest(self) -> float | None:
        return next(iter(self.flows.values())).last if self.flows else None

    def expire(self, now: float) -> None:
        while self.flows:
            client, flow = next(iter(self.flows.items()))
            if now - flow.last < self.proxy.udp_idle_timeout:
                return
            del self.flows[client]
            flow.close()

    def close_flows(self) -> None:
        while self.flows:
            self.flows.popitem()[1].close()


class _UdpFlow:
    """One client's datagrams: an upstream socket connected to the container, so the
    container's answers come back on it and go to that client."""

    def __init__(self, listener: _UdpListener, client: Address) -> None:
        self.listener, self.client = listener, client
        self.upstream = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.last = time.monotonic()
        try:
            self.upstream.setblocking(False)
            self.upstream.connect(listener.target)
        except OSError:
            self.upstream.close()
            raise
        listener.proxy.watch(self.upstream, _READ, self.ready)

    def send(self, data: bytes) -> None:
        # Full, or the container refused an earlier datagram (ICMP): this one is dropped.
        with contextlib.suppress(OSError):
            self.upstream.send(data)

    def ready(self, _mask: int) -> None:
        for _ in range(UDP_BATCH):
            try:
                data = self.upstream.recv(UDP_DATAGRAM)
            except _WAIT:
                return
            except OSError:
                continue  # ICMP unreachable reported on the connected socket
            with contextlib.suppress(OSError):
                self.listener.sock.sendto(data, self.client)
            self.listener.touch(self.client)

    def close(self) -> None:
        self.listener.proxy.watch(self.upstream, 0, self.ready)
        self.upstream.close()

