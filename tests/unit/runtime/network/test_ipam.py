"""The address allocator on real files: idempotent per owner, never the network, gateway
or broadcast address, a clear error when full, and consistent under several processes
allocating at once."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from agent.runtime.network.errors import AddressExhausted, CorruptState, InvalidNetworkConfig
from agent.runtime.network.ipam import Ipam, parse_subnet
from tests.conftest import REPO

SMALL = IPv4Network("10.86.0.0/29")  # .0 network, .1 gateway, .2-.6 usable, .7 broadcast


def test_same_owner_gets_its_same_address_back(tmp_path: Path) -> None:
    ipam = Ipam(tmp_path, IPv4Network("10.86.0.0/24"))
    first = ipam.allocate("a")
    assert ipam.allocate("b") != first
    assert ipam.allocate("a") == first
    assert Ipam(tmp_path, IPv4Network("10.86.0.0/24")).allocate("a") == first  # from disk


def test_never_hands_out_network_gateway_or_broadcast_and_says_when_full(tmp_path: Path) -> None:
    ipam = Ipam(tmp_path, SMALL)
    assert ipam.gateway == IPv4Address("10.86.0.1")
    got = {ipam.allocate(f"c{i}") for i in range(5)}
    assert got == {IPv4Address(f"10.86.0.{i}") for i in range(2, 7)}
    with pytest.raises(AddressExhausted) as caught:
        ipam.allocate("one-too-many")
    assert caught.value.subnet == "10.86.0.0/29"
    assert "10.86.0.0/29" in str(caught.value)
    assert "one-too-many" not in ipam.allocations()


def test_release_frees_the_address_and_is_safe_to_repeat(tmp_path: Path) -> None:
    ipam = Ipam(tmp_path, SMALL)
    for i in range(5):
        ipam.allocate(f"c{i}")
    freed = ipam.allocations()["c2"]
    ipam.release("c2")
    ipam.release("c2")
    ipam.release("never-allocated")
    assert "c2" not in ipam.allocations()
    assert ipam.allocate("new") == freed  # the only free one


def test_a_released_address_is_not_reused_at_once(tmp_path: Path) -> None:
    ipam = Ipam(tmp_path, IPv4Network("10.86.0.0/24"))
    first = ipam.allocate("a")
    ipam.release("a")
    assert ipam.allocate("b") != first


def test_preferred_address_is_honoured_when_free(tmp_path: Path) -> None:
    ipam = Ipam(tmp_path, IPv4Network("10.86.0.0/24"))
    taken = ipam.allocate("a")
    assert ipam.allocate("b", prefer=IPv4Address("10.86.0.77")) == IPv4Address("10.86.0.77")
    assert ipam.allocate("c", prefer=taken) != taken
    assert ipam.allocate("d", prefer=IPv4Address("10.86.0.255")) != IPv4Address("10.86.0.255")


def test_state_is_private_json(tmp_path: Path) -> None:
    ipam = Ipam(tmp_path / "ipam", IPv4Network("10.86.0.0/24"))
    address = ipam.allocate("a")
    assert stat.S_IMODE(ipam.path.stat().st_mode) == 0o600
    assert json.loads(ipam.path.read_text())["allocations"] == {"a": str(address)}


def test_corrupt_state_is_an_error_not_a_reset(tmp_path: Path) -> None:
    ipam = Ipam(tmp_path, IPv4Network("10.86.0.0/24"))
    ipam.allocate("a")
    ipam.path.write_text("{not json")
    with pytest.raises(CorruptState):
        ipam.allocate("b")
    ipam.path.write_text(json.dumps({"subnet": "10.1.0.0/16", "last": "10.1.0.1",
                                     "allocations": {}}))
    with pytest.raises(CorruptState):
        ipam.allocate("b")


@pytest.mark.parametrize("text", ["10.86.0.1/24", "10.86.0.0/31", "fd00::/64", "nonsense"])
def test_subnets_refused(text: str) -> None:
    with pytest.raises(InvalidNetworkConfig):
        parse_subnet(text)


WORKER = """
import sys
from ipaddress import IPv4Network
from pathlib import Path
from agent.runtime.network.ipam import Ipam
ipam = Ipam(Path(sys.argv[1]), IPv4Network("10.86.0.0/22"))
sys.stdin.readline()  # all workers start together
for i in range(int(sys.argv[3])):
    print(sys.argv[2] + str(i), ipam.allocate(sys.argv[2] + str(i)), flush=True)
"""


def test_several_processes_allocate_distinct_addresses(tmp_path: Path) -> None:
    workers, each = 4, 150
    children = [subprocess.Popen([sys.executable, "-c", WORKER, str(tmp_path), f"w{n}-",
                                  str(each)], cwd=REPO, stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True) for n in range(workers)]
    for child in children:  # released together, once all have started
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    outputs = [child.communicate(timeout=120)[0] for child in children]
    assert [child.returncode for child in children] == [0] * workers
    given = dict(line.split() for output in outputs for line in output.splitlines())
    assert len(given) == workers * each
    assert len(set(given.values())) == workers * each  # no address handed out twice
    on_disk = {owner: str(address)
               for owner, address in Ipam(tmp_path, IPv4Network("10.86.0.0/22"))
               .allocations().items()}
    assert on_disk == given  # no allocation lost by a concurrent write
