"""``ports:`` / ``-p``: docker's short syntax and compose's long form."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from agent.model.syntax.ports import PortMapping


def summary(mapping: PortMapping) -> tuple[str | None, str | None, str, str]:
    """(host_ip, published, target, protocol) with ranges written as docker does."""
    published = str(mapping.published) if mapping.published else None
    return (mapping.host_ip, published, str(mapping.target), mapping.protocol)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("3307:3306", (None, "3307", "3306", "tcp")),
        ("127.0.0.1:53:53/udp", ("127.0.0.1", "53", "53", "udp")),
        ("8080", (None, None, "8080", "tcp")),  # docker picks the host port at run time
        ("8000-8010:8000-8010", (None, "8000-8010", "8000-8010", "tcp")),
        ("127.0.0.1::80", ("127.0.0.1", None, "80", "tcp")),
        ("[::1]:8080:80", ("::1", "8080", "80", "tcp")),
        ("[0:0::1]::80", ("::1", None, "80", "tcp")),  # address normalized
        ("9090-9091:8080-8081", (None, "9090-9091", "8080-8081", "tcp")),
        ("8000-8010:80", (None, "8000-8010", "80", "tcp")),  # docker: any free port in range
        ("80/TCP", (None, None, "80", "tcp")),
        ("5060:5060/sctp", (None, "5060", "5060", "sctp")),
        ("1:65535", (None, "1", "65535", "tcp")),
        (80, (None, None, "80", "tcp")),
    ],
)
def test_short_form(spec: str | int, expected: tuple[str | None, str | None, str, str]) -> None:
    assert summary(PortMapping.model_validate(spec)) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("8000-8001:8080-8082", "differ in length"),
        ("8000:8080-8081", "differ in length"),
        ("0", "outside 1-65535"),
        ("65536", "outside 1-65535"),
        ("8080:0", "outside 1-65535"),
        ("80/icmp", "not tcp, udp or sctp"),
        ("8010-8000:80", "ends before it starts"),
        ("http", "not a port"),
        ("127.0.0.1:80", "not a port"),  # docker: HOST_IP needs a second ':'
        ("[::1]:80", "[addr]:port:port"),  # ambiguous, docker rejects it too
        ("[::1]", "[addr]:port:port"),
        ("1.2.3.4.5:80:80", "not an IP address"),
        (":80:80", "empty host address"),
        ("1:2:3:4", "too many ':'"),
        ("", "empty port specification"),
        ("٨٠:80", "not a port"),  # Unicode digits are not ASCII port numbers
        (True, "not a boolean"),
        (0, "outside 1-65535"),
        (-1, "not a port"),
        (8.5, "not float"),
    ],
)
def test_rejected(spec: object, message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        PortMapping.model_validate(spec)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"target": 80}, (None, None, "80", "tcp")),
        ({"target": 80, "published": 8080}, (None, "8080", "80", "tcp")),
        ({"target": "80", "published": "8000-8001", "host_ip": "127.0.0.1", "protocol": "udp"},
         ("127.0.0.1", "8000-8001", "80", "udp")),
        ({"target": 80, "published": 8080, "host_ip": "::1", "mode": "host"},
         ("::1", "8080", "80", "tcp")),
        ({"target": 80, "published": "8000-8001"}, (None, "8000-8001", "80", "tcp")),
        ({"target": {"start": 80, "end": 81}, "published": None, "host_ip": None,
          "protocol": "tcp"}, (None, None, "80-81", "tcp")),  # the dumped form
    ],
)
def test_long_form(spec: dict[str, object], expected: tuple[str | None, ...]) -> None:
    assert summary(PortMapping.model_validate(spec)) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"published": 8080}, "needs 'target'"),
        ({"target": True}, "number or a range string"),
        ({"target": 80, "published": 0}, "outside 1-65535"),
        ({"target": 80, "host_ip": "localhost"}, "not an IP address"),
        ({"target": 80, "protocol": "icmp"}, "'tcp', 'udp' or 'sctp'"),
        ({"target": 80, "mode": "global"}, "'ingress' or 'host'"),
        ({"target": 80, "hostport": 8080}, "unknown port keys: hostport"),
        ({8080: 80}, "unknown port keys: 8080"),  # YAML `- 8080: 80`, not a TypeError
    ],
)
def test_long_form_rejected(spec: dict[object, object], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        PortMapping.model_validate(spec)


@pytest.mark.parametrize(
    "spec", ["3307:3306", "127.0.0.1:53:53/udp", "8080", "[::1]:8080:80", "127.0.0.1::80",
             "8000-8010:80", "9090-9091:8080-8081/sctp"],
)
def test_dump_round_trips(spec: str) -> None:
    mapping = PortMapping.model_validate(spec)
    assert PortMapping.model_validate_json(mapping.model_dump_json()) == mapping
    assert PortMapping.model_validate(str(mapping)) == mapping  # __str__ is valid -p syntax
