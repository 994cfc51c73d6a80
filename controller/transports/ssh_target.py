"""Where and how to reach a host: inventory variables over ~/.ssh/config over defaults.

Ansible passes ``ansible_host``/``ansible_port``/``ansible_user``/key to OpenSSH, which
then applies the user's ssh config: inventory values win, the config fills the rest
(HostName, User, Port, IdentityFile, ProxyJump, UserKnownHostsFile).
"""

from __future__ import annotations

import getpass
import importlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import paramiko

DEFAULT_PORT = 22
_MATCH_EXEC = re.compile(r"^\s*match\b.*\bexec\b", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class SshTarget:
    """A host as the inventory names it; ``None`` fields defer to ssh config, then defaults."""

    name: str
    hostname: str
    port: int | None = None
    user: str | None = None
    key_file: str | None = None


@dataclass(frozen=True)
class ResolvedTarget:
    name: str
    hostname: str
    port: int
    user: str
    key_files: tuple[str, ...]
    proxy_jump: str | None
    known_hosts: tuple[str, ...]


def load_ssh_config(path: Path | None) -> paramiko.SSHConfig:
    if path is None:
        default = Path.home() / ".ssh" / "config"
        path = default if default.is_file() else None
    if path is None:
        return paramiko.SSHConfig()
    text = path.read_text(errors="replace")
    if _MATCH_EXEC.search(text):
        _enable_match_exec()
    return paramiko.SSHConfig.from_text(text)


def _enable_match_exec() -> None:
    """paramiko runs `Match exec` with invoke, which this package keeps unimported."""
    if "invoke" in sys.modules and sys.modules["invoke"] is None:
        del sys.modules["invoke"]
    setattr(paramiko.config, "invoke", importlib.import_module("invoke"))  # noqa: B010


def resolve(target: SshTarget, config: paramiko.SSHConfig) -> ResolvedTarget:
    found = config.lookup(target.hostname)
    port = target.port or int(found.get("port", DEFAULT_PORT))
    user = target.user or found.get("user") or getpass.getuser()
    keys = (target.key_file,) if target.key_file else tuple(found.get("identityfile", ()))
    known = found.get("userknownhostsfile")
    return ResolvedTarget(
        name=target.name,
        hostname=found.get("hostname", target.hostname),
        port=port,
        user=user,
        key_files=tuple(str(Path(k).expanduser()) for k in keys),
        proxy_jump=found.get("proxyjump"),
        known_hosts=tuple(str(Path(p).expanduser()) for p in known.split()) if known else (),
    )
