"""Reaching a resident agent's unix socket over an SSH connection already open.

OpenSSH's sshd forwards a ``direct-streamlocal@openssh.com`` channel to a unix socket
on the host (its PROTOCOL file, section 2.4) in its own process: a run that finds a
resident agent starts no process on the host at all, not even the relay's interpreter.
paramiko has no such channel kind (``open_channel`` writes only the tcpip and x11
fields), so the open request is written here and paramiko's own channel bookkeeping
does the rest. Any refusal (no socket, forwarding disabled, another server) raises
:class:`paramiko.ChannelException`: the caller falls back to the relay.

On the channel the resident agent speaks its wire format (``agent.server``): a JSON
header line, the command's stdin, then its stdout and a last line ``{"exit": N}``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import paramiko
from paramiko.common import cMSG_CHANNEL_OPEN
from paramiko.message import Message

from controller.transports.base import AgentSession

KIND = "direct-streamlocal@openssh.com"
NO_ANSWER = 255  # the channel closed before the agent's exit line: like ssh's own 255


def open_streamlocal(transport: paramiko.Transport, path: str,
                     timeout: float) -> paramiko.Channel:
    """A channel to ``path`` on the host, or ``ChannelException`` when sshd refuses it."""
    if not transport.is_active():
        raise paramiko.SSHException("SSH session not active")
    # The same steps as paramiko.Transport.open_channel, with the streamlocal fields; its
    # private parts are untyped in paramiko's stubs.
    internals: Any = transport
    with transport.lock:
        window = internals._sanitize_window_size(None)
        packet = internals._sanitize_packet_size(None)
        chanid = internals._next_channel()
        message = Message()
        message.add_byte(cMSG_CHANNEL_OPEN)
        message.add_string(KIND)
        message.add_int(chanid)
        message.add_int(window)
        message.add_int(packet)
        message.add_string(path)
        message.add_string("")  # reserved
        message.add_int(0)  # reserved
        channel = paramiko.Channel(chanid)
        opening: Any = channel
        internals._channels.put(chanid, channel)
        transport.channel_events[chanid] = opened = threading.Event()
        transport.channels_seen[chanid] = True
        opening._set_transport(transport)
        opening._set_window(window, packet)
    internals._send_user_message(message)
    deadline = time.monotonic() + timeout
    while not opened.wait(0.05):
        if not transport.is_active() or time.monotonic() > deadline:
            internals._channels.delete(chanid)
            raise transport.get_exception() or paramiko.SSHException(
                f"no answer to opening {path}")
    if internals._channels.get(chanid) is None:  # refused: paramiko dropped it
        raise transport.get_exception() or paramiko.ChannelException(2, "connect failed")
    return channel


class ResidentAgentSession(AgentSession):
    """A request to a resident agent: its output lines, then the code of its exit line."""

    def __init__(self, channel: paramiko.Channel, args: list[str], stdin: bytes) -> None:
        self._channel = channel
        self._code = NO_ANSWER
        channel.sendall(json.dumps({"argv": args}).encode() + b"\n" + stdin)
        channel.shutdown_write()

    def lines(self) -> Iterator[str]:
        with self._channel.makefile("rb") as stdout:
            for raw in stdout:
                if raw.startswith(b'{"exit":'):
                    code = json.loads(raw).get("exit")
                    self._code = code if isinstance(code, int) else NO_ANSWER
                    return
                yield raw.decode("utf-8", "replace").rstrip("\n")

    def wait(self) -> int:
        return self._code

    def stderr_text(self) -> str:
        if self._code == NO_ANSWER:
            return "the resident agent closed the connection without an exit line"
        return ""
