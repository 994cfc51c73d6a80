"""SSH options, kept apart from the SSH transport so that runs without SSH hosts never
import paramiko (~80 ms of start-up, most of it its ``invoke`` dependency)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class SshOptions:
    known_hosts: Path = field(default_factory=lambda: Path.home() / ".ssh" / "known_hosts")
    accept_new: bool = False
    ssh_config: Path | None = None
    connect_timeout: float = 10.0
    auth_timeout: float = 20.0
    connect_attempts: int = 3
