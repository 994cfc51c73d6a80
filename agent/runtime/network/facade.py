"""``Network``: the container network's one entry point (re-exported by the package).

The order a runtime follows: ``reserve`` (nothing changed if a port is taken), ``attach``,
``publish``, start the container with the attachment's namespace and hand the
reservation's sockets to its monitor; ``detach`` when the container is gone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from ipaddress import IPv4Interface
from pathlib import Path
from typing import TYPE_CHECKING

from agent.runtime.network import attach
from agent.runtime.network.bridge import ensure_bridge, remove_bridge
from agent.runtime.network.errors import InvalidNetworkConfig, NetworkError, NotAttached
from agent.runtime.network.ipam import Ipam, parse_subnet
from agent.runtime.network.nat import Firewall
from agent.runtime.network.records import (
    Attachment,
    AttachmentStore,
    PublishedPort,
    check_container_id,
)

if TYPE_CHECKING:
    from agent.model.syntax.ports import PortMapping
    from agent.runtime.network.ports import Reservation

DEFAULT_BRIDGE = "pyprov0"
DEFAULT_SUBNET = "10.87.0.0/16"  # not docker0's 172.17.0.0/16
DEFAULT_CHAIN_PREFIX = "PYPROV"
_IFNAME = re.compile(r"[A-Za-z0-9_.-]{1,15}\Z")


class Network:
    """One bridge network; ``state_dir`` holds its records (see records.py)."""

    def __init__(self, state_dir: Path, bridge: str = DEFAULT_BRIDGE,
                 subnet: str = DEFAULT_SUBNET, chain_prefix: str = DEFAULT_CHAIN_PREFIX) -> None:
        if not _IFNAME.match(bridge):
            raise InvalidNetworkConfig(f"bridge name {bridge!r}: 1-15 letters, digits, _ . -")
        self.state_dir, self.bridge = state_dir, bridge
        self.subnet = parse_subnet(subnet)
        self.ipam = Ipam(state_dir / "ipam", self.subnet)
        self.store = AttachmentStore(state_dir)
        self.firewall = Firewall(chain_prefix, bridge, self.subnet)
        self._ensured = False

    @property
    def gateway(self) -> IPv4Interface:
        return IPv4Interface(f"{self.ipam.gateway}/{self.subnet.prefixlen}")

    def ensure(self) -> None:
        """The bridge (checked on every call: cheap) and the firewall chains (once per
        instance: a dozen iptables runs)."""
        ensure_bridge(self.bridge, self.gateway)
        if not self._ensured:
            self.firewall.ensure()
            self._ensured = True

    def reserve(self, mappings: Sequence[PortMapping]) -> Reservation:
        """Hold every host port ``mappings`` ask for; ``PortInUse`` before anything is
        changed if one is taken."""
        from agent.runtime.network.ports import reserve

        return reserve(mappings)

    def attach(self, container_id: str) -> Attachment:
        check_container_id(container_id)
        with self.store.locked():
            self.ensure()
            return attach.attach(container_id, self.store, self.ipam, self.bridge, self.subnet)

    def publish(self, container_id: str, attachment: Attachment,
                ports: Sequence[PublishedPort]) -> Attachment:
        """Make the container's NAT rules exactly ``ports``; the attachment, with them,
        as recorded (the record is written first, so teardown never misses a rule)."""
        if attachment.container_id != container_id:
            raise InvalidNetworkConfig(f"attachment of {attachment.container_id} given for "
                                       f"{container_id}")
        with self.store.locked():
            self.ensure()
            record = self.store.load(container_id)
            if record is None or not record.complete:
                raise NotAttached(container_id)
            updated = record.attachment.with_ports(tuple(ports))
            self.store.save(updated, complete=True)
            self.firewall.publish(container_id, updated.ip, updated.ports)
            return updated

    def detach(self, container_id: str) -> None:
        check_container_id(container_id)
        with self.store.locked():
            attach.detach(container_id, self.store, self.ipam, self.firewall)

    def attachments(self) -> list[Attachment]:
        """Every recorded attachment, complete or left by a crash: the runtime detaches
        those whose container is gone."""
        return [record.attachment for record in self.store.all()]

    def attached_ids(self) -> set[str]:
        """The containers with something on the bridge, from the records' names alone
        (every creation checks them for orphans: no record is parsed)."""
        return self.store.ids()

    def attached(self, container_id: str) -> bool:
        """Whether anything of the container's is on the bridge, even if the container's
        own record never learnt it (a start killed between attach and that record)."""
        check_container_id(container_id)
        return self.store.path(container_id).exists()

    def remove(self) -> None:
        """Remove the bridge and the firewall chains, once nothing is attached."""
        with self.store.locked():
            left = self.store.all()
            if left:
                raise NetworkError(f"{len(left)} container(s) still attached to {self.bridge}")
            self.firewall.remove()
            remove_bridge(self.bridge)
            self._ensured = False
