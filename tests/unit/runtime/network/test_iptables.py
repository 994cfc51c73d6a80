"""The iptables boundary without changing any rule: which binary, restore-file quoting,
and which rules carry a container's tag."""

from __future__ import annotations

import shlex
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

import pytest

from agent.runtime.network.errors import FirewallUnavailable, InvalidNetworkConfig
from agent.runtime.network.iptables import Iptables, ListedRule, render
from agent.runtime.network.nat import Firewall, check_prefix, tagged
from agent.runtime.network.records import PublishedPort


def test_this_hosts_iptables_is_found_with_its_backend() -> None:
    found = Iptables.detect()
    assert Path(found.binary).name == "iptables"
    assert Path(found.restore).name == "iptables-restore"
    assert found.backend == "nf_tables"  # Debian 12's default, as this host has it


def test_no_iptables_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FirewallUnavailable, match="apt-get install iptables"):
        Iptables.detect(str(tmp_path))
    nft = tmp_path / "nft"
    nft.write_text("#!/bin/sh\n")
    nft.chmod(0o755)
    with pytest.raises(FirewallUnavailable, match="nft alone is not supported"):
        Iptables.detect(str(tmp_path))


def test_restore_lines_quote_with_double_quotes_only() -> None:
    line = render("-A", "PYPROV", ("-p", "tcp", "-m", "comment", "--comment", "a b \"c\""))
    assert line == '-A PYPROV -p tcp -m comment --comment "a b \\"c\\""'
    assert render("-D", "X", ("!", "-d", "127.0.0.0/8", "--to-destination", "10.0.0.2:80")) \
        == "-D X ! -d 127.0.0.0/8 --to-destination 10.0.0.2:80"


def test_a_tag_matches_its_container_exactly() -> None:
    listed = ListedRule("PYPROV", tuple(shlex.split(
        '-p tcp -m comment --comment "pyprov:abc" -m tcp --dport 80 -j DNAT')))
    assert tagged(listed, "abc")
    assert not tagged(listed, "ab")
    assert not tagged(listed, "abcd")


def test_rules_for_a_port() -> None:
    firewall = Firewall("PT", "ptbr0", IPv4Network("10.86.0.0/24"),
                        Iptables("/nonexistent", "/nonexistent", "nf_tables"))
    ip = IPv4Address("10.86.0.2")
    assert firewall._dnat("c1", ip, PublishedPort("0.0.0.0", 8080, 80)) == (  # noqa: S104
        "!", "-i", "ptbr0", "-p", "tcp", "-m", "tcp", "--dport", "8080", "-m", "comment",
        "--comment", "pyprov:c1", "-j", "DNAT", "--to-destination", "10.86.0.2:80")
    specific = firewall._dnat("c1", ip, PublishedPort("192.0.2.2", 53, 53, "udp"))
    assert specific is not None
    assert specific[:2] == ("-d", "192.0.2.2/32")
    # loopback and IPv6 host addresses: the proxy's alone
    assert firewall._dnat("c1", ip, PublishedPort("127.0.0.1", 8080, 80)) is None
    assert firewall._dnat("c1", ip, PublishedPort("::1", 8080, 80)) is None


@pytest.mark.parametrize("prefix", ["", "1ABC", "A" * 17, "PY PROV", "PY;"])
def test_chain_prefixes_refused(prefix: str) -> None:
    with pytest.raises(InvalidNetworkConfig):
        check_prefix(prefix)
