"""Manifest documents: field rules, the controller -> agent JSON round trip, conflicts()."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import ValidationError

from agent.model import Container, DaemonConfig, DesiredState, document_class
from agent.model.documents import conflicts

BASE = {"base_dir": "/srv/app"}
SHA = "sha256:" + "ab" * 32


def doc(kind: str, name: str = "web", **fields: Any) -> Any:
    body = {"kind": kind, "name": name, **fields}
    if kind == "Container":
        body.setdefault("image", "nginx")
    return document_class(kind).model_validate(body, context=BASE)


VALID = [
    doc("DaemonConfig", "docker", settings={"registry-mirrors": ["https://mirror.gcr.io"],
                                            "log-opts": {"max-size": "10m"}, "mtu": 1450}),
    doc("DaemonConfig", "rootless", path="./daemon.json", settings={"x-new": [1, 2.5, None]},
        allow_unknown_keys=True),
    doc("Image", "mysql:5.6"),
    doc("Image", f"192.168.88.92:5000/centos:7@{SHA}", pull="always", platform="linux/arm64/v8"),
    doc("Image", "app", pull="never", archive="./images/app.tar"),
    doc("Container", "db", image="mysql:5.6", ports=["3307:3306", "127.0.0.1:53:53/udp", "8080",
        "[::1]:9000-9001:9000-9001", "8000-8010:80", {"target": 90, "published": 9090}],
        volumes=["data:/var/lib/mysql", "./conf:/etc/mysql/conf.d:ro", "/cache",
                 {"type": "bind", "source": "/etc/tz", "target": "/etc/timezone",
                  "read_only": True}],
        environment=["MYSQL_ROOT_PASSWORD=secret", "EMPTY=", "FROM_ENV"], labels={"tier": 1},
        command='mysqld --character-set-server="utf8mb4"', entrypoint=["docker-entrypoint.sh"],
        restart="on-failure:3", user="999:999", working_dir="/var/lib", hostname="db.local"),
    doc("Container", "off", state="absent", restart=False, user=1000, labels=["a", "b=c"]),
]


@pytest.mark.parametrize("document", VALID, ids=lambda d: f"{d.kind}-{d.name}")
def test_document_round_trips_through_json(document: Any) -> None:
    sent = DesiredState(host="h1", documents=[document]).model_dump_json()
    received = DesiredState.model_validate_json(sent)  # the agent has no base_dir
    assert received.documents == [document]
    assert received.model_dump_json() == sent


def test_whole_state_round_trips() -> None:
    state = DesiredState(host="h1", documents=VALID)
    assert DesiredState.model_validate_json(state.model_dump_json()) == state


def test_container_fields_are_normalized() -> None:
    db = VALID[5]
    assert isinstance(db, Container)
    assert db.environment == {"MYSQL_ROOT_PASSWORD": "secret", "EMPTY": "", "FROM_ENV": None}
    assert db.labels == {"tier": "1"}
    assert db.command == ("mysqld", "--character-set-server=utf8mb4")
    assert (db.restart, db.restart_policy.max_retries) == ("on-failure:3", 3)
    assert db.volumes[1].source == "/srv/app/conf"
    assert str(db.image_reference) == "docker.io/library/mysql:5.6"
    off = VALID[6]
    assert isinstance(off, Container)
    assert (off.restart, off.user, off.labels) == ("no", "1000", {"a": "", "b": "c"})


def test_paths_resolve_against_base_dir() -> None:
    assert (VALID[1].path, VALID[4].archive) == ("/srv/app/daemon.json", "/srv/app/images/app.tar")
    assert doc("DaemonConfig", settings={"debug": True}).path == "/etc/docker/daemon.json"
    with pytest.raises(ValidationError, match="must be absolute"):
        DaemonConfig.model_validate({"kind": "DaemonConfig", "name": "d", "path": "daemon.json",
                                     "settings": {"debug": True}})


@pytest.mark.parametrize(
    ("kind", "fields", "message"),
    [
        ("Container", {"privileged": True}, "Extra inputs are not permitted"),
        ("Image", {"tag": "7"}, "Extra inputs are not permitted"),
        ("DaemonConfig", {"settings": {"debug": True}, "restart": True}, "Extra inputs"),
        ("Container", {"environment": {"DEBUG": True}}, 'quote it (e.g. "true")'),
        ("Container", {"ports": ["80:80", "80:81"]}, "host port 80/tcp is published twice"),
        ("Container", {"volumes": ["a1:/d", "/x:/d/"]}, "same container path"),
        ("Container", {"working_dir": "app"}, "must be an absolute path"),
        ("Container", {"hostname": "-bad"}, "not a valid host name"),
        ("Container", {"image": "Nginx"}, "must be lowercase"),
        ("Container", {"state": "paused"}, "'running', 'stopped' or 'absent'"),
        ("Container", {"name": "-web"}, "must start with a letter or digit"),
        ("Container", {"name": "a/b"}, "must start with a letter or digit"),
        ("Image", {"name": "x", "pull": "missing"}, "'always', 'if-not-present' or 'never'"),
    ],
)
def test_invalid_fields(kind: str, fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        doc(kind, **fields)


def test_same_port_on_other_protocol_or_address_is_fine() -> None:
    c = doc("Container", ports=["53:53/tcp", "53:53/udp", "127.0.0.1:80:80", "127.0.0.2:80:80"])
    assert [str(p) for p in c.ports] == ["53:53/tcp", "53:53/udp", "127.0.0.1:80:80/tcp",
                                         "127.0.0.2:80:80/tcp"]


@pytest.mark.parametrize("platform", ["linux/amd64", "linux/arm64/v8", "linux/arm/v7",
                                      "windows/amd64", "linux/386", "linux/mips64le"])
def test_platform(platform: str) -> None:
    assert doc("Image", "x", platform=platform).platform == platform


@pytest.mark.parametrize("platform", ["amd64", "linux", "Linux/amd64", "linux/amd64/v8/x",
                                      "linux/", "/amd64", "linux amd64", ""])
def test_platform_rejected(platform: str) -> None:
    with pytest.raises(ValidationError, match=re.escape("must be os/arch[/variant]")):
        doc("Image", "x", platform=platform)


def test_unknown_kind_and_extra_state_fields() -> None:
    with pytest.raises(KeyError,
                       match="is not one of DaemonConfig, RegistryConfig, Image, Container"):
        document_class("Network")
    with pytest.raises(ValidationError, match="Extra inputs"):
        DesiredState.model_validate({"documents": [], "hosts": []})
    with pytest.raises(ValidationError, match="does not match any of the expected tags"):
        DesiredState.model_validate({"documents": [{"kind": "Network", "name": "n"}]})


def test_conflicts() -> None:
    documents = [
        doc("Container", "a", ports=["8080:80", "53:53/udp", "9000-9002:9000-9002"]),
        doc("Container", "a"),  # 1: same name
        doc("Image", "a"),  # same name, other kind: fine
        doc("Container", "b", ports=["8080:8080", "53:53/tcp", "9002:9000"]),  # 3: 8080, 9002
        doc("Container", "c", state="absent", ports=["8080:80"]),  # absent publishes nothing
        doc("Container", "d", ports=["127.0.0.1:8080:80", "80", "53:53/sctp"]),  # 5: 8080 on the
        # wildcard of "a" covers 127.0.0.1 too
        doc("DaemonConfig", "x", settings={"debug": True}),
        doc("DaemonConfig", "y", path="/etc/docker/daemon.json", settings={"mtu": 1500}),  # 7
    ]
    assert [(i, field) for i, field, _ in conflicts(documents)] == [
        (1, ("name",)), (3, ("ports", 0)), (3, ("ports", 2)), (5, ("ports", 0)), (7, ("path",))]
    messages = [m for _, _, m in conflicts(documents)]
    assert messages[0] == "Container 'a' is declared twice"
    assert messages[1] == "host port 8080/tcp is also published by container 'a'"
    assert messages[2] == "host port 9002/tcp is also published by container 'a'"
    assert messages[3] == "host port 8080/tcp is also published by container 'a'"
    assert messages[4].startswith("/etc/docker/daemon.json is already managed")
    assert conflicts(VALID) == []


def test_conflicts_wildcard_and_specific_address() -> None:
    documents = [doc("Container", "a", ports=["8080:80"]),
                 doc("Container", "b", ports=["127.0.0.1:8080:80"])]
    assert [(i, field) for i, field, _ in conflicts(documents)] == [(1, ("ports", 0))]


@pytest.mark.parametrize(("kind", "fields"), [
    ("Container", {"name": "web\n"}), ("Image", {"name": "x", "platform": "linux/amd64\n"})])
def test_trailing_newline_rejected(kind: str, fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        doc(kind, **fields)


def test_registry_config_mirrors_for_any_registry_and_one_per_host() -> None:
    from agent.model import RegistryConfig
    from agent.model.documents import conflicts

    doc = RegistryConfig.model_validate({
        "kind": "RegistryConfig", "name": "registries",
        "mirrors": {"192.168.88.92:5000": ["http://10.0.0.5:5000/"], "docker.io": [
            "https://mirror.example"]},
        "realms": {"registry.example": ["auth.example"]}})
    assert doc.mirrors["192.168.88.92:5000"] == ["http://10.0.0.5:5000"]
    for bad in ({"mirrors": {"192.168.88.92:5000": ["ftp://x"]}},
                {"mirrors": {"192.168.88.92:5000": ["https://x/path"]}},
                {"mirrors": {"not a host": ["https://x"]}},
                {"realms": {"registry.example": ["https://auth.example"]}}):
        with pytest.raises(ValueError, match="registry"):
            RegistryConfig.model_validate({"kind": "RegistryConfig", "name": "r", **bad})
    other = RegistryConfig.model_validate({"kind": "RegistryConfig", "name": "more"})
    assert [message for _, _, message in conflicts([doc, other])] == [
        "a host has one RegistryConfig; merge it with 'registries'"]
