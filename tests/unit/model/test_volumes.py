"""``volumes:`` / ``-v``: bind mounts, named and anonymous volumes, compose's long form."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

from agent.model.syntax.volumes import VolumeMount

BASE = {"base_dir": "/srv/app"}


def summary(mount: VolumeMount) -> tuple[str, str | None, str, bool, tuple[str, ...]]:
    return (mount.type, mount.source, mount.target, mount.read_only, mount.options)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("/abs:/ctr", ("bind", "/abs", "/ctr", False, ())),
        ("/abs:/ctr:ro", ("bind", "/abs", "/ctr", True, ())),
        ("/abs:/ctr:rw,z", ("bind", "/abs", "/ctr", False, ("z",))),
        ("/var/run/docker.sock:/var/run/docker.sock", ("bind", "/var/run/docker.sock",
                                                       "/var/run/docker.sock", False, ())),
        ("data:/var/lib/mysql", ("volume", "data", "/var/lib/mysql", False, ())),
        ("db_data-1.x:/d:ro,nocopy", ("volume", "db_data-1.x", "/d", True, ("nocopy",))),
        ("/var/lib/mysql", ("volume", None, "/var/lib/mysql", False, ())),  # anonymous
        ("/a/../b/./c/:/x/y/", ("bind", "/b/c", "/x/y", False, ())),
        ("//srv/data://etc", ("bind", "/srv/data", "/etc", False, ())),  # '//' is '/'
    ],
)
def test_short_form(spec: str, expected: tuple[object, ...]) -> None:
    assert summary(VolumeMount.model_validate(spec)) == expected


@pytest.mark.parametrize(
    ("spec", "source"),
    [
        ("./conf:/etc/mysql/conf.d", "/srv/app/conf"),
        ("../x:/y", "/srv/x"),
        (".:/app", "/srv/app"),
        ("./a/../b:/y", "/srv/app/b"),
    ],
)
def test_relative_source_resolves_against_base_dir(spec: str, source: str) -> None:
    mount = VolumeMount.model_validate(spec, context=BASE)
    assert (mount.type, mount.source) == ("bind", source)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("./conf:/etc/mysql", "needs the manifest's directory"),  # no base_dir context
        ("~/x:/y", "'~' is ambiguous"),
        ("data:var/lib", "must be absolute"),
        ("var/lib", "must be absolute"),
        ("/abs:/", "over the container's /"),
        ("/abs:/tmp/..", "over the container's /"),
        ("/abs://", "over the container's /"),
        ("/a:/b:ro:z", "too many ':'"),
        ("/a:/b:ro,rw", "both 'ro' and 'rw'"),
        ("/a:/b:readonly", "option 'readonly'"),
        ("/a:/b:", "option ''"),
        ("x:/data", "neither an absolute path"),  # dockerd: names are 2+ characters
        ("-data:/d", "neither an absolute path"),
        ("da ta:/d", "neither an absolute path"),
        ("data\n:/d", "neither an absolute path"),
        (":/d", "neither an absolute path"),
        ("/a\0:/b", "NUL byte"),
        (5, "not int"),
    ],
)
def test_rejected(spec: object, message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        VolumeMount.model_validate(spec)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"type": "bind", "source": "/abs", "target": "/ctr", "read_only": True},
         ("bind", "/abs", "/ctr", True, ())),
        ({"type": "bind", "source": "./conf", "target": "/c"}, ("bind", "/srv/app/conf", "/c",
                                                                 False, ())),
        ({"type": "volume", "source": "data", "target": "/d"}, ("volume", "data", "/d", False, ())),
        ({"target": "/cache"}, ("volume", None, "/cache", False, ())),
        ({"type": "volume", "source": None, "target": "/d", "read_only": False,
          "options": ["nocopy"]}, ("volume", None, "/d", False, ("nocopy",))),  # the dumped form
    ],
)
def test_long_form(spec: dict[str, object], expected: tuple[object, ...]) -> None:
    assert summary(VolumeMount.model_validate(spec, context=BASE)) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"type": "tmpfs", "target": "/t"}, "not 'bind' or 'volume'"),
        ({"type": "bind", "target": "/t"}, "needs 'source'"),
        ({"type": "volume", "source": "/abs", "target": "/t"}, "is a bind source"),
        ({"type": "bind", "source": "data", "target": "/t"}, "is a volume source"),
        ({"source": "data"}, "needs 'target'"),
        ({"target": "/t", "read_only": "yes"}, "true or false"),
        ({"target": "/t", "bind": {"propagation": "rshared"}}, "unknown volume keys: bind"),
        ({1: "x", "target": "/t"}, "unknown volume keys: 1"),  # not a TypeError
        ({"target": "/t", "options": "nocopy"}, "must be a list"),  # not ('n', 'o', 'c', ...)
        ({"target": "/t", "options": None}, "must be a list"),
        ({"target": "/t", "options": ["ro"]}, "use 'read_only'"),
        ({"target": "/t", "options": ["bogus"]}, "must be a list"),
        ({"target": "/t", "options": [{"z": 1}]}, "must be a list"),
    ],
)
def test_long_form_rejected(spec: dict[object, object], message: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(message)):
        VolumeMount.model_validate(spec, context=BASE)


@pytest.mark.parametrize(
    "spec", ["/abs:/ctr:ro", "data:/var/lib/mysql:nocopy", "/cache", "./conf:/etc/conf:z"],
)
def test_dump_round_trips(spec: str) -> None:
    mount = VolumeMount.model_validate(spec, context=BASE)
    assert VolumeMount.model_validate_json(mount.model_dump_json()) == mount  # no context needed
    assert VolumeMount.model_validate(str(mount)) == mount  # __str__ is valid -v syntax
