"""Host-key checking: strict by default, ``accept-new`` on request, a changed key never.

paramiko raises ``BadHostKeyException`` for a key that differs from a known one before
any policy is asked, so neither policy can let a changed key through.

known_hosts files are parsed once per run, not once per connection: paramiko's
``load_host_keys`` parses every line for every client, which made a 30-host run parse
900 keys (~0.4 s of CPU, contended on the logging lock paramiko takes per line). Each
client gets only its host's keys, by the name paramiko looks up (``[host]:port``).
"""

from __future__ import annotations

import threading
from pathlib import Path

import paramiko

_write_lock = threading.Lock()  # threads of one run append to the same known_hosts
_parse_lock = threading.Lock()
_parsed: dict[tuple[tuple[str, int, int], ...], paramiko.HostKeys] = {}
SSH_PORT = 22


def _stamp(path: Path) -> tuple[str, int, int]:
    try:
        info = path.stat()
    except OSError:
        return str(path), -1, -1
    return str(path), info.st_mtime_ns, info.st_size


def _known(paths: list[Path]) -> paramiko.HostKeys:
    """The files' keys, parsed once while the files stay unchanged."""
    stamps = tuple(_stamp(path) for path in paths)
    with _parse_lock:
        keys = _parsed.get(stamps)
        if keys is None:
            keys = paramiko.HostKeys()
            for path, size, _ in stamps:
                if size >= 0 and Path(path).is_file():
                    keys.load(path)
            _parsed[stamps] = keys
        return keys


def load_known_host_keys(client: paramiko.SSHClient, paths: list[Path], hostname: str,
                         port: int) -> None:
    """Give ``client`` the known keys of ``hostname:port`` from ``paths``."""
    name = hostname if port == SSH_PORT else f"[{hostname}]:{port}"
    found = _known(paths).lookup(name)
    for key_type, key in (found or {}).items():
        client.get_host_keys().add(name, key_type, key)


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
