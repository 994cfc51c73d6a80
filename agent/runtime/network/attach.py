"""Attach a container to the bridge and detach it, from and into its record.

``attach`` writes the record (incomplete) before it makes anything, then ensures each
part in turn: namespace, veth pair, addresses, route. Every step checks before it acts,
so the same call returns an existing attachment, finishes one a crash interrupted, and
repairs a part that went missing (a deleted veth), keeping the namespace a running
container is in. ``detach`` removes what the record names, then the record, last, so a
crash during teardown leaves a record for the next ``detach`` to finish.

Callers hold the store's lock (``AttachmentStore.locked``).
"""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Network

from agent.runtime.network import links, netns
from agent.runtime.network.errors import NetworkError
from agent.runtime.network.ipam import Ipam
from agent.runtime.network.nat import Firewall
from agent.runtime.network.records import Attachment, AttachmentStore


def attach(container_id: str, store: AttachmentStore, ipam: Ipam, bridge: str,
           subnet: IPv4Network) -> Attachment:
    record = store.load(container_id)
    previous = record.attachment if record is not None else None
    ip = ipam.allocate(container_id, prefer=previous.ip if previous else None)
    attachment = Attachment(
        container_id=container_id, netns_path=store.netns_path(container_id), ip=ip,
        prefixlen=subnet.prefixlen, gateway=ipam.gateway, mac=links.mac_for(ip),
        host_veth=links.host_veth_name(container_id), bridge=bridge,
        ports=previous.ports if previous else ())
    if record is None or record.attachment != attachment or not record.complete:
        store.save(attachment, complete=False)
    netns.create(attachment.netns_path)
    links.ensure(attachment)
    if record is None or record.attachment != attachment or not record.complete:
        store.save(attachment, complete=True)
    return attachment


def detach(container_id: str, store: AttachmentStore, ipam: Ipam, firewall: Firewall) -> None:
    """Remove the container's rules (found by their tag), veth, namespace and address, as
    far as they exist; safe to repeat and after an interrupted ``attach``. A part that
    cannot be removed does not stop the others; the record and the address then stay,
    for the next ``detach``, and the first error is raised."""
    record = store.load(container_id)
    steps: list[Callable[[], object]] = [lambda: firewall.unpublish(container_id)]
    if record is not None:
        steps += [lambda: links.remove(record.attachment.host_veth),
                  lambda: netns.remove(record.attachment.netns_path)]
    failures = []
    for step in steps:
        try:
            step()
        except NetworkError as error:
            failures.append(error)
    if failures:
        raise failures[0]
    ipam.release(container_id)
    store.delete(container_id)
