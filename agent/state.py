"""The agent's state directory: everything pyprov keeps on a host lives under it."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from agent.model.constants import DEFAULT_STATE_DIR

STATE_DIR_ENV = "PYPROV_STATE_DIR"


def resolve_state_dir(explicit: str | None) -> Path:
    """``--state-dir`` beats ``$PYPROV_STATE_DIR`` beats the default."""
    return Path(explicit or os.environ.get(STATE_DIR_ENV) or DEFAULT_STATE_DIR).absolute()


@dataclass(frozen=True)
class StateDir:
    root: Path

    @property
    def lock(self) -> Path:
        return self.root / "agent.lock"

    @property
    def desired(self) -> Path:
        """The last desired state the controller sent (for the loop and drift checks)."""
        return self.root / "desired.json"

    @property
    def desired_good(self) -> Path:
        """The last stored desired state that validated: in force if desired.json breaks."""
        return self.root / "desired.good.json"

    @property
    def images(self) -> Path:
        """The image store (an OCI image layout plus unpacked layers)."""
        return self.root / "images"

    @property
    def registries(self) -> Path:
        """pyprov's registry settings beyond daemon.json (mirrors for any registry,
        trusted token realms), written by the DaemonConfig resource."""
        return self.root / "registries.json"

    @property
    def containers(self) -> Path:
        """One directory per container (see agent/runtime/records.py)."""
        return self.root / "containers"

    @property
    def volumes(self) -> Path:
        """Named and anonymous volumes: ``<name>/_data``."""
        return self.root / "volumes"

    @property
    def network(self) -> Path:
        """Address allocations, network namespaces and attachment records."""
        return self.root / "network"

    @property
    def zygote_socket(self) -> Path:
        """The monitor zygote's socket (it forks every container's monitor)."""
        return self.root / "zygote.sock"

    @property
    def reports(self) -> Path:
        """Drift reports of ``agent check`` (see agent/drift.py)."""
        return self.root / "reports"

    @property
    def backups(self) -> Path:
        return self.root / "backups"

    def ensure(self) -> None:
        """Create the state dir, private: it holds desired states, which may hold secrets."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        if self.root.stat().st_mode & 0o077:
            self.root.chmod(0o700)
