"""daemon.json keys and values, checked as dockerd checks them before it starts."""

from __future__ import annotations

import datetime
import re
from typing import Any

import pytest
from pydantic import ValidationError

from agent.model.daemon_settings import validate_settings
from agent.model.documents import DaemonConfig
from agent.model.syntax.errors import SyntaxProblem


def config(settings: dict[str, Any], **extra: Any) -> DaemonConfig:
    return DaemonConfig.model_validate(
        {"kind": "DaemonConfig", "name": "docker", "settings": settings, **extra})


@pytest.mark.parametrize(
    "settings",
    [
        {"registry-mirrors": ["https://mirror.gcr.io", "http://10.0.0.5:5000/",
                              "https://[2001:db8::1]:5000"]},
        {"insecure-registries": ["192.168.88.92:5000", "registry.local", "10.0.0.0/8",
                                 "fd00::/8", "[2001:db8::1]:5000", "localhost:65535"]},
        {"log-driver": "json-file", "log-opts": {"max-size": "10m", "max-file": "3"}},
        {"bip": "10.99.0.1/24", "mtu": 1450, "dns": ["1.1.1.1", "2606:4700::1111"]},
        {"live-restore": True, "debug": False, "log-level": "warn", "shutdown-timeout": 0},
        {"data-root": "/var/lib/docker", "default-address-pools": [{"base": "10.10.0.0/16",
                                                                     "size": 24}]},
    ],
)
def test_valid(settings: dict[str, Any]) -> None:
    assert config(settings).settings == settings


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"registry-mirrors": ["https://mirror.example/v2/"]}, "refuses a path"),
        ({"registry-mirrors": ["https://mirror.example/?x=1"]}, "refuses a path, query"),
        ({"registry-mirrors": ["https://mirror.example/#f"]}, "refuses a path, query"),
        ({"registry-mirrors": ["https://u:p@mirror.example"]}, "credentials"),
        ({"registry-mirrors": ["ftp://mirror.example"]}, "http:// or https://"),
        ({"registry-mirrors": ["mirror.example:5000"]}, "http:// or https://"),
        ({"registry-mirrors": ["https://mirror.example:99999"]}, "invalid port"),
        ({"registry-mirrors": ["http://[::1"]}, "not a valid URL"),
        ({"registry-mirrors": "https://mirror.gcr.io"}, "list of non-empty strings"),
        ({"registry-mirrors": ["https://a.example", "https://a.example"]}, "an entry twice"),
        ({"insecure-registries": ["http://myreg:5000"]}, "not a URL"),
        ({"insecure-registries": ["myreg:0"]}, "port out of range"),
        ({"insecure-registries": ["myreg:65536"]}, "port out of range"),
        ({"insecure-registries": ["10.0.0.0/33"]}, "not a valid CIDR"),
        ({"insecure-registries": ["my_reg:5000"]}, "not host[:port]"),
        ({"insecure-registries": ["myreg:5000\n"]}, "not host[:port]"),
        ({"insecure-registries": ["2001:db8::1"]}, "not host[:port]"),  # needs brackets
        ({"log-opts": {"max-file": 3}}, "quote numbers"),
        ({"debug": "true"}, "true or false"),
        ({"mtu": 67}, ">= 68"),
        ({"mtu": True}, ">= 68"),
        ({"log-level": "verbose"}, "debug, info, warn"),
        ({"bip": "10.99.0.1/33"}, "address with prefix"),
        ({"dns": ["dns.google"]}, "is not an IP address"),
        ({"data-root": "var/lib/docker"}, "absolute path"),
    ],
)
def test_rejected_value(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        config(settings)


@pytest.mark.parametrize(
    ("key", "hint"),
    [("registry-mirror", "registry-mirrors"), ("insecure-registry", "insecure-registries"),
     ("live_restore", "live-restore"), ("log-opt", "log-opts")],
)
def test_unknown_key_gets_a_hint(key: str, hint: str) -> None:
    with pytest.raises(SyntaxProblem, match=re.escape(f"did you mean {hint!r}?")) as caught:
        validate_settings({key: ["x"]}, allow_unknown_keys=False)
    assert caught.value.at == (key,)


def test_unknown_key_allowed_on_request() -> None:
    assert config({"some-future-key": {"a": 1}}, allow_unknown_keys=True).settings == {
        "some-future-key": {"a": 1}}
    with pytest.raises(ValidationError, match=r"not a daemon\.json key dockerd knows; dockerd"):
        config({"zzzz": 1})  # nothing close: no hint


@pytest.mark.parametrize(
    "value",
    [datetime.date(2024, 1, 1), [datetime.date(2024, 1, 1)], {"a": {"b": b"x"}}, {1: "x"},
     float("nan"), float("inf")],
)
def test_non_json_values_rejected(value: object) -> None:
    with pytest.raises(ValidationError, match=r"JSON cannot hold|mapping keys must be strings"):
        config({"future": value}, allow_unknown_keys=True)


def test_error_points_at_the_key() -> None:
    with pytest.raises(SyntaxProblem) as caught:
        validate_settings({"debug": True, "log-opts": {"max-file": 3}}, allow_unknown_keys=False)
    assert caught.value.at == ("log-opts", "max-file")


def test_settings_must_not_be_empty() -> None:
    with pytest.raises(ValidationError, match="at least 1 item"):
        config({})


@pytest.mark.parametrize("url", ["https://bob:s3cret@m.test", "https://bob:s3/cr@et@m.test/v2",
                                 "ftp://bob:s3cret@m.test"])
def test_mirror_errors_never_show_a_password(url: str) -> None:
    with pytest.raises(SyntaxProblem) as caught:
        validate_settings({"registry-mirrors": [url]}, allow_unknown_keys=False)
    assert "s3" not in str(caught.value)
    assert "*****@" in str(caught.value)
