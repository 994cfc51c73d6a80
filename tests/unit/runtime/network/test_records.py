"""Attachment records on disk, the names derived from a container, and the errors'
fields surviving pickling (they cross process boundaries)."""

from __future__ import annotations

import pickle
import stat
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from agent.runtime.network import errors
from agent.runtime.network.links import host_veth_name, mac_for
from agent.runtime.network.records import (
    Attachment,
    AttachmentStore,
    PublishedPort,
    check_container_id,
)

CID = "8d85d4b55c4912adbb5ad0d2f4c58c703c2575820b6f4814a91a528dd832210a"


def attachment(store: AttachmentStore, container_id: str = CID) -> Attachment:
    return Attachment(container_id=container_id, netns_path=store.netns_path(container_id),
                      ip=IPv4Address("10.87.0.2"), prefixlen=16,
                      gateway=IPv4Address("10.87.0.1"), mac="02:42:0a:57:00:02",
                      host_veth="vp8d85d4b55c4", bridge="pyprov0",
                      ports=(PublishedPort("0.0.0.0", 8080, 80),  # noqa: S104
                             PublishedPort("127.0.0.1", 5353, 53, "udp")))


def test_records_round_trip_with_their_completeness(tmp_path: Path) -> None:
    store = AttachmentStore(tmp_path)
    made = attachment(store)
    assert Attachment.from_json(made.to_json()) == made
    store.save(made, complete=False)
    assert store.path(CID) == tmp_path / "attachments" / f"{CID}.json"
    assert stat.S_IMODE(store.path(CID).stat().st_mode) == 0o600
    loaded = store.load(CID)
    assert loaded is not None
    assert (loaded.attachment, loaded.complete) == (made, False)
    store.save(made, complete=True)
    assert [(r.attachment, r.complete) for r in store.all()] == [(made, True)]
    store.delete(CID)
    store.delete(CID)
    assert store.load(CID) is None
    assert store.all() == []


def test_a_damaged_record_is_an_error(tmp_path: Path) -> None:
    store = AttachmentStore(tmp_path)
    store.path(CID).parent.mkdir(parents=True)
    store.path(CID).write_text('{"version": 1, "complete": true}')
    with pytest.raises(errors.CorruptState, match="KeyError"):
        store.load(CID)
    store.path(CID).write_text('{"version": 99}')
    with pytest.raises(errors.CorruptState, match="version 99"):
        store.all()


@pytest.mark.parametrize("bad", ["", ".", "..", "../etc", "a/b", "a b", "-x", "x" * 129])
def test_container_ids_that_cannot_name_files_and_rules(bad: str) -> None:
    with pytest.raises(errors.InvalidNetworkConfig):
        check_container_id(bad)


def test_names_derived_from_the_container() -> None:
    assert host_veth_name(CID) == "vp8d85d4b55c4"
    other = host_veth_name("web-1")
    assert len(other) == 13
    assert other.startswith("vp")
    assert other == host_veth_name("web-1") != host_veth_name("web-2")
    assert mac_for(IPv4Address("10.87.0.2")) == "02:42:0a:57:00:02"
    assert str(PublishedPort("::1", 8080, 80)) == "[::1]:8080->80/tcp"


@pytest.mark.parametrize("error", [
    errors.CorruptState("/x", "bad"), errors.AddressExhausted("10.0.0.0/30"),
    errors.NotAttached(CID), errors.NetnsError("/x", "gone"), errors.LinkError("add", 17, "x"),
    errors.FirewallError("iptables", 1, "no"), errors.PortInUse("0.0.0.0", 80, "tcp"),  # noqa: S104
    errors.PortUnavailable("::1", 80, "udp", "why", end=90)])
def test_errors_keep_their_fields_through_pickling(error: errors.NetworkError) -> None:
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes
    assert (type(copy), str(copy), vars(copy)) == (type(error), str(error), vars(error))
    assert isinstance(copy, errors.NetworkError)
