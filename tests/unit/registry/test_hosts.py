"""Endpoints in dockerd's order and security: mirrors first, insecure only when listed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.errors import RegistryError
from agent.registry.hosts import Endpoint, RegistryConfig, validate_mirror


def test_docker_hub_tries_its_mirrors_then_registry_1() -> None:
    config = RegistryConfig(mirrors={"docker.io": ("https://mirror.example/",
                                                   "http://10.0.0.9:5000")},
                            insecure=("10.0.0.0/8",))
    assert config.endpoints("docker.io") == [
        Endpoint("https://mirror.example", verify=True, mirror=True),
        Endpoint("http://10.0.0.9:5000", verify=False, mirror=True),  # http: no fallback
        Endpoint("https://registry-1.docker.io", verify=True),
    ]
    # Pushes never go to a mirror.
    assert config.endpoints("docker.io", push=True) == [
        Endpoint("https://registry-1.docker.io", verify=True)]


@pytest.mark.parametrize(("insecure", "registry", "expected"), [
    ((), "registry.example:5000", False),  # verified TLS only: never a downgrade
    (("registry.example:5000",), "registry.example:5000", True),
    (("registry.example",), "registry.example:5000", True),  # by host name, any port
    (("192.168.88.0/24",), "192.168.88.92:5000", True),  # by network
    (("192.168.88.0/24",), "192.168.89.92:5000", False),
    ((), "127.0.0.1:5000", True),  # dockerd always trusts loopback
    ((), "localhost:5000", True),  # resolved to loopback
    ((), "[::1]:5000", True),
])
def test_insecure_registries_as_dockerd_decides(insecure: tuple[str, ...], registry: str,
                                                expected: bool) -> None:
    config = RegistryConfig(insecure=insecure)
    assert config.is_insecure(registry) is expected
    endpoints = config.endpoints(registry)
    if expected:
        assert endpoints == [Endpoint(f"https://{registry}", verify=False, http_fallback=True)]
    else:
        assert endpoints == [Endpoint(f"https://{registry}", verify=True)]


def test_settings_come_from_daemon_json_and_pyprovs_own_file(tmp_path: Path) -> None:
    daemon = tmp_path / "daemon.json"
    daemon.write_text(json.dumps({"registry-mirrors": ["https://m.example"],
                                  "insecure-registries": ["192.168.88.92:5000"],
                                  "log-driver": "json-file"}))
    own = tmp_path / "registries.json"
    own.write_text(json.dumps({"mirrors": {"192.168.88.92:5000": ["http://cache:5000"]},
                               "realms": {"registry.example": ["auth.example"]}}))
    config = RegistryConfig.load(daemon, own)
    assert config.mirrors == {"docker.io": ("https://m.example",),
                              "192.168.88.92:5000": ("http://cache:5000",)}
    assert config.insecure == ("192.168.88.92:5000",)
    assert config.realms == {"registry.example": ("auth.example",)}
    assert RegistryConfig.load(tmp_path / "absent.json") == RegistryConfig()
    daemon.write_text("{broken")
    with pytest.raises(RegistryError, match="cannot read registry settings"):
        RegistryConfig.load(daemon)


@pytest.mark.parametrize("url", ["ftp://m", "https://m/path", "https://m?x=1", "m.example"])
def test_a_mirror_is_a_registry_root_url(url: str) -> None:
    with pytest.raises(RegistryError):
        validate_mirror(url)
    assert validate_mirror("https://m.example/") == "https://m.example/"
