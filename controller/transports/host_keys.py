"""Host-key checking: strict by default, ``accept-new`` on request, a changed key never.

paramiko raises ``BadHostKeyException`` for a key that differs from a known one before
any policy is asked, so neither policy can let a changed key through.
"""

from __future__ import annotations

import threading
from pathlib import Path

import paramiko

_write_lock = threading.Lock()  # threads of one run append to the same known_hosts


class AcceptNewPolicy(paramiko.MissingHostKeyPolicy):
    """OpenSSH's ``StrictHostKeyChecking=accept-new``: learn unknown hosts, record them."""

    def __init__(self, known_hosts: Path) -> None:
        self._known_hosts = known_hosts

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str,
                         key: paramiko.PKey) -> None:
        client.get_host_keys().add(hostname, key.get_name(), key)
        line = f"{hostname} {key.get_name()} {key.get_base64()}\n"
        with _write_lock:
            self._known_hosts.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            with self._known_hosts.open("a") as out:
                out.write(line)


def host_key_policy(accept_new: bool, known_hosts: Path) -> paramiko.MissingHostKeyPolicy:
    return AcceptNewPolicy(known_hosts) if accept_new else paramiko.RejectPolicy()
