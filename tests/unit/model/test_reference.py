"""Image references, normalized as ``docker pull`` / distribution/reference do."""

from __future__ import annotations

import re

import pytest

from agent.model.syntax.errors import SyntaxProblem
from agent.model.syntax.reference import parse_reference

SHA = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("centos", ("docker.io", "library/centos", "latest", None)),
        ("centos:7", ("docker.io", "library/centos", "7", None)),
        ("user/app", ("docker.io", "user/app", "latest", None)),
        ("user/app/sub:v1.2_3-x", ("docker.io", "user/app/sub", "v1.2_3-x", None)),
        ("docker.io/centos", ("docker.io", "library/centos", "latest", None)),
        ("index.docker.io/library/x", ("docker.io", "library/x", "latest", None)),
        ("index.docker.io/x", ("docker.io", "library/x", "latest", None)),
        ("192.168.88.92:5000/centos:7", ("192.168.88.92:5000", "centos", "7", None)),
        ("localhost/app", ("localhost", "app", "latest", None)),
        ("localhost:5000/a/b:tag", ("localhost:5000", "a/b", "tag", None)),
        ("[::1]:5000/app", ("[::1]:5000", "app", "latest", None)),
        ("ghcr.io/org/my__app", ("ghcr.io", "org/my__app", "latest", None)),
        ("a--b.c_d", ("docker.io", "library/a--b.c_d", "latest", None)),
        ("localhost:5000", ("docker.io", "library/localhost", "5000", None)),  # as docker reads it
        (f"name@{SHA}", ("docker.io", "library/name", None, SHA)),
        (f"name:tag@{SHA}", ("docker.io", "library/name", "tag", SHA)),
        (f"reg.example:443/x@{SHA}", ("reg.example:443", "x", None, SHA)),
        ("x:" + "t" * 128, ("docker.io", "library/x", "t" * 128, None)),
    ],
)
def test_normalized(text: str, expected: tuple[str, str, str | None, str | None]) -> None:
    ref = parse_reference(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == expected


@pytest.mark.parametrize(
    ("text", "full", "familiar"),
    [
        ("centos", "docker.io/library/centos:latest", "centos:latest"),
        ("user/app:1", "docker.io/user/app:1", "user/app:1"),
        ("10.0.0.1:5000/centos:7", "10.0.0.1:5000/centos:7", "10.0.0.1:5000/centos:7"),
        (f"name@{SHA}", f"docker.io/library/name@{SHA}", f"name@{SHA}"),
        (f"name:t@{SHA}", f"docker.io/library/name:t@{SHA}", f"name:t@{SHA}"),
    ],
)
def test_string_forms(text: str, full: str, familiar: str) -> None:
    ref = parse_reference(text)
    assert (str(ref), ref.familiar) == (full, familiar)
    assert parse_reference(str(ref)) == ref == parse_reference(ref.familiar)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Ubuntu", "must be lowercase"),
        ("user/App:1", "must be lowercase"),
        ("name@sha256:abc", "is not sha256:<64 hex>"),
        (f"name@{SHA.upper()}", "is not sha256:<64 hex>"),
        (f"name@md5:{'0' * 32}", "is not sha256:<64 hex>"),
        ("x:" + "t" * 129, "must match"),
        ("x:", "must match"),
        ("x:.tag", "must match"),
        ("x:tést", "must match"),  # Go's \w is ASCII
        ("x:7\n", "must match"),
        ("centos\n", "repository component"),
        ("a__-b", "repository component"),
        ("-a", "repository component"),
        ("a//b", "repository component"),
        ("reg.example:5000/", "repository component"),
        ("", "1 to 455 characters"),
        ("a" * 250, "longer than 255"),  # docker.io/library/ counts
        ("bad_host.example/app", "is not a host[:port]"),
    ],
)
def test_rejected(text: str, message: str) -> None:
    with pytest.raises(SyntaxProblem, match=re.escape(message)):
        parse_reference(text)
