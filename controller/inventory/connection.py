"""How to reach a host, from Ansible's connection variables.

    ansible_host (alias ansible_ssh_host)          address, default: the inventory name
    ansible_port (alias ansible_ssh_port)          default 22
    ansible_user (alias ansible_ssh_user)          default: SSH's own (None)
    ansible_private_key_file (alias ansible_ssh_private_key_file)
    ansible_connection                             ssh (also smart, paramiko) or local
    ansible_python_interpreter                     the host's Python for the agent

Where both spellings are set, the ``ansible_ssh_*`` one wins: Ansible's ssh
connection plugin lists it last among its variables and the last one set wins.
Values are used as written: a Jinja2 expression is refused rather than dialled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from controller.inventory.errors import InventoryError
from controller.inventory.model import Host

ConnectionKind = Literal["ssh", "local"]

_KINDS: dict[str, ConnectionKind] = {
    "ssh": "ssh", "smart": "ssh", "paramiko": "ssh", "paramiko_ssh": "ssh",
    "ansible.builtin.ssh": "ssh", "ansible.builtin.paramiko_ssh": "ssh",
    "local": "local", "ansible.builtin.local": "local",
}
DEFAULT_PORT = 22


@dataclass(frozen=True)
class Connection:
    host: str
    port: int
    user: str | None
    key_file: str | None
    connection: ConnectionKind
    python: str | None


def _lookup(host: Host, *names: str) -> Any:
    """The value of the last of ``names`` that is set (not None), as Ansible's plugins do."""
    found = None
    for name in names:
        if host.vars.get(name) is not None:
            found = host.vars[name]
    return found


def _text(host: Host, *names: str) -> str | None:
    value = _lookup(host, *names)
    if value is None:
        return None
    if isinstance(value, (Mapping, list, bool)):
        raise InventoryError(f"host {host.name!r}: {names[0]} must be text, got {value!r}")
    text = str(value)
    if "{{" in text or "{%" in text:
        raise InventoryError(f"host {host.name!r}: {names[0]}={text!r} is a template; "
                             "connection variables must be literal values")
    return text


def _port(host: Host) -> int:
    text = _text(host, "ansible_port", "ansible_ssh_port")
    if text is None:
        return DEFAULT_PORT
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        raise InventoryError(f"host {host.name!r}: ansible_port {text!r} is not a port number")
    return port


def connection_for(host: Host) -> Connection:
    """The connection facts of one host (``InventoryError`` if they cannot be used)."""
    kind = _text(host, "ansible_connection") or "ssh"
    if kind not in _KINDS:
        raise InventoryError(f"host {host.name!r}: ansible_connection {kind!r} is not "
                             f"supported (one of: {', '.join(sorted(_KINDS))})")
    return Connection(host=_text(host, "ansible_host", "ansible_ssh_host") or host.name,
                      port=_port(host),
                      user=_text(host, "ansible_user", "ansible_ssh_user"),
                      key_file=_text(host, "ansible_private_key_file",
                                     "ansible_ssh_private_key_file"),
                      connection=_KINDS[kind],
                      python=_text(host, "ansible_python_interpreter"))
