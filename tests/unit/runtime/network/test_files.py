"""The container's /etc files, byte for byte as docker 20.10 writes them."""

from __future__ import annotations

from pathlib import Path

from agent.runtime.network import files

DOCKER_HOSTS = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
)


def test_hosts_is_dockers() -> None:
    assert files.hosts("1e0b6a4a8b7f", "10.87.0.2") == DOCKER_HOSTS + "10.87.0.2\t1e0b6a4a8b7f\n"


def test_hosts_with_domain_extra_hosts_and_no_address() -> None:
    text = files.hosts("web", "10.87.0.3", domainname="example.org",
                       extra=(("db", "10.0.0.9"),))
    assert text.endswith("10.0.0.9\tdb\n10.87.0.3\tweb.example.org web\n")
    assert files.hosts("web", None) == DOCKER_HOSTS


def test_hostname() -> None:
    assert files.hostname_file("web") == "web\n"


def test_resolv_conf_drops_loopback_and_ipv6_nameservers_keeps_the_rest() -> None:
    host = ("# managed by someone\n"
            "nameserver 127.0.0.53\n"
            "nameserver 10.255.255.53\n"
            "nameserver fd00::53\n"
            "nameserver ::1\n"
            "search corp.example\n"
            "options edns0 trust-ad\n")
    assert files.resolv_conf(host) == ("# managed by someone\n"
                                       "nameserver 10.255.255.53\n"
                                       "search corp.example\n"
                                       "options edns0 trust-ad\n")


def test_resolv_conf_falls_back_to_public_servers() -> None:
    host = "nameserver 127.0.0.53\noptions edns0\nsearch lan\n"
    assert files.resolv_conf(host) == ("options edns0\nsearch lan\n"
                                       "nameserver 8.8.8.8\nnameserver 8.8.4.4\n")
    assert files.resolv_conf("") == "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"


def test_systemd_resolved_stub_points_at_its_upstream_file(tmp_path: Path) -> None:
    stub, upstream = tmp_path / "resolv.conf", tmp_path / "upstream.conf"
    stub.write_text("nameserver 127.0.0.53\noptions edns0\n")
    assert files.host_resolv_conf(stub, upstream) == stub  # no upstream file: keep the stub
    upstream.write_text("nameserver 192.0.2.53\n")
    assert files.host_resolv_conf(stub, upstream) == upstream
    stub.write_text("nameserver 127.0.0.53\nnameserver 192.0.2.1\n")
    assert files.host_resolv_conf(stub, upstream) == stub
