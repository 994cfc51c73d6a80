"""The unix sockets the agent serves (the resident agent, the monitor zygote): private
from their first moment, and their peers identified by the kernel (SO_PEERCRED)."""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Peer:
    pid: int
    uid: int
    gid: int


def peer(conn: socket.socket) -> Peer:
    """Who is at the other end of ``conn``, as the kernel saw it connect."""
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return Peer(*struct.unpack("3i", creds))


def listen_private(path: Path, backlog: int = 64) -> socket.socket:
    """Bind at a temp name, restrict it to 0600, then rename into place: never a window
    where the socket is reachable with the umask's mode."""
    temp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(temp))
    temp.chmod(0o600)
    temp.replace(path)
    server.listen(backlog)
    return server
