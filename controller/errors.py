"""The controller's exception tree.

    ControllerError
    ├── ManifestError       (controller.manifests.errors) invalid manifests: nothing applied
    ├── InventoryError      (controller.inventory.errors) an inventory cannot be read
    ├── YamlProblem         (controller.manifests.yaml_nodes) internal: becomes a ManifestProblem
    └── TransportError      the agent on a host could not be reached or started
"""

from __future__ import annotations


class ControllerError(Exception):
    """Root of every error the controller raises on purpose."""


class TransportError(ControllerError):
    """``unreachable``: the host could not be reached or authenticated (Ansible's
    UNREACHABLE); otherwise the connection worked and a command on it failed."""

    def __init__(self, host: str, reason: str, unreachable: bool = False) -> None:
        super().__init__(f"{host}: {reason}")
        self.host, self.reason, self.unreachable = host, reason, unreachable
