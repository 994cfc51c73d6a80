"""Invalid manifests: ``pyprov apply`` names file:line:column and field, exits 4, touches nothing.

Each file of ``tests/fixtures/invalid/`` is one case. Its first line says what the
error must be::

    # expect: line=7 column=5 field=ports[1] message~=quote it

(``field=`` left empty: the problem is the file or the document itself, not a
field; ``message~=`` is a substring of the message). A few cases are generated
here instead (an empty file, values too large to keep in the repository).

Every case is applied together with ``ok.yml``, a valid DaemonConfig whose
``path`` is a "canary" daemon.json in ``tmp_path``: nothing may be applied when
any manifest is invalid, so the canary, every other file under ``tmp_path`` and
the (absent) state dir must be exactly as before. Corpus files sort both before
and after ``ok.yml``.

Cases in ``KNOWN_BUGS`` expect where the loader *should* point; they are strict
xfails that only accept a wrong location or message (``WrongReport``), never a
wrong exit code or a touched file.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import Result, RunPyprov, write_manifest

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "invalid"
HEADER = re.compile(
    r"^# expect: line=(?P<line>\d+) column=(?P<column>\d+) field=(?P<field>\S*)"
    r" message~=(?P<message>.+)$"
)
EXIT_FAILED = 4
CANARY_BYTES = b'{\n  "debug": false,\n  "storage-driver": "overlay2"\n}\n'
CANARY_MTIME_NS = 1_000_000_000 * 1_000_000_000  # 2001-09-09: any rewrite shows
MIN_CASES = 25


@dataclass(frozen=True)
class Expect:
    line: int
    column: int
    field: str
    message: str


class WrongReport(AssertionError):
    """The error was reported, but not at the expected place or with the expected words."""


# Cases where the loader's report is wrong or unhelpful today: the corpus header
# holds what it should say. Strict xfail: a fix makes them XPASS, i.e. fail,
# so the entry must then be removed.
KNOWN_BUGS: dict[str, str] = {}


def _header(data: bytes) -> Expect:
    first_line = data.split(b"\n", 1)[0].decode("utf-8")
    match = HEADER.match(first_line)
    assert match, f"corpus file without a valid '# expect:' first line: {first_line!r}"
    return Expect(int(match["line"]), int(match["column"]), match["field"], match["message"])


def _huge_name() -> bytes:
    return b"kind: Container\nname: " + b"a" * 100_000 + b"\nimage: nginx:1.25\n"


def _many_ports() -> bytes:
    ports = "".join(f'  - "{port}:{port}"\n' for port in range(10_001, 15_001))
    return f"kind: Container\nname: web\nimage: nginx:1.25\nports:\n{ports}".encode()


def _too_large_file() -> bytes:
    labels = "".join(f'  l{i}: "{"x" * 60}"\n' for i in range(80_000))  # about 5.8 MB
    return f"kind: Container\nname: web\nimage: nginx:1.25\nlabels:\n{labels}".encode()


GENERATED: dict[str, tuple[Callable[[], bytes], Expect]] = {
    "empty-file.yml": (lambda: b"", Expect(1, 1, "", "holds no document")),
    "huge-name.yml": (_huge_name, Expect(2, 7, "name", "at most 65536 characters")),
    "huge-port-list.yml": (_many_ports,
                           Expect(5, 3, "ports", "at most 1000 items after validation")),
    "huge-file.yml": (_too_large_file, Expect(1, 1, "", "file is larger than 4194304 bytes")),
}


def _cases() -> list[object]:
    params = []
    for path in sorted(CORPUS.glob("*.yml")):
        marks = []
        if path.name in KNOWN_BUGS:
            marks.append(pytest.mark.xfail(strict=True, raises=WrongReport,
                                           reason=KNOWN_BUGS[path.name]))
        params.append(pytest.param(path.name, path.read_bytes, marks=marks, id=path.name))
    for name, (make, _) in GENERATED.items():
        params.append(pytest.param(name, make, id=name))
    return params


def _snapshot(root: Path) -> dict[str, tuple[str, bytes | None, int, int]]:
    """Every file and directory under ``root``: kind, bytes (files), mtime, inode."""
    snap = {}
    for path in sorted(root.rglob("*")):
        stat = path.lstat()
        content = path.read_bytes() if path.is_file() else None
        kind = "dir" if path.is_dir() else "file"
        snap[str(path.relative_to(root))] = (kind, content, stat.st_mtime_ns, stat.st_ino)
    return snap


def _canary(tmp_path: Path) -> Path:
    canary = tmp_path / "canary" / "daemon.json"
    canary.parent.mkdir(parents=True)
    canary.write_bytes(CANARY_BYTES)
    os.utime(canary, ns=(CANARY_MTIME_NS, CANARY_MTIME_NS))
    return canary


def _ok_manifest(directory: Path, canary: Path) -> Path:
    return write_manifest(directory, "ok.yml", (
        "kind: DaemonConfig\n"
        "name: canary\n"
        f"path: {canary}\n"
        "settings:\n"
        "  debug: true\n"
        "  log-level: warn\n"
    ))


def _problem_lines(result: Result, file: Path) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith(f"{file}:")]


def _check_report(result: Result, file: Path, expect: Expect) -> None:
    where = f"{file}:{expect.line}:{expect.column}: "
    prefix = f"{where}{expect.field}: " if expect.field else where
    lines = _problem_lines(result, file)
    for line in lines:
        rest = line.removeprefix(prefix)
        if rest == line or expect.message not in rest:
            continue
        if not expect.field and re.match(r"^\S+: ", rest):
            continue  # a field was named where none was expected
        return
    raise WrongReport(f"expected {prefix}...{expect.message}...; got:\n" + "\n".join(lines))


@pytest.mark.parametrize(("name", "content"), _cases())
def test_invalid_manifest_is_reported_and_nothing_applied(
    pyprov: RunPyprov, state_dir: Path, tmp_path: Path, name: str,
    content: Callable[[], bytes],
) -> None:
    data = content()
    expect = GENERATED[name][1] if name in GENERATED else _header(data)
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    bad = manifests / name
    bad.write_bytes(data)
    canary = _canary(tmp_path)
    _ok_manifest(manifests, canary)
    before = _snapshot(tmp_path)

    result = pyprov("apply", str(manifests))

    assert result.code == EXIT_FAILED, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith("pyprov: invalid manifests, nothing was applied:\n")
    assert result.stdout == "", "the play started although a manifest is invalid"
    problems = _problem_lines(result, bad)
    assert problems, f"no problem reported for {bad}:\n{result.stderr}"
    assert "ok.yml" not in result.stderr, "the valid manifest was reported as a problem"
    assert _snapshot(tmp_path) == before, "a file under tmp_path was created or changed"
    assert canary.read_bytes() == CANARY_BYTES
    assert canary.stat().st_mtime_ns == CANARY_MTIME_NS
    assert not state_dir.exists(), "the agent ran: its state dir was created"
    _check_report(result, bad, expect)


def test_corpus_is_large_and_every_file_has_an_expectation() -> None:
    files = sorted(CORPUS.glob("*.yml"))
    assert sorted(p.name for p in CORPUS.iterdir()) == [p.name for p in files]
    for path in files:
        _header(path.read_bytes())
    assert len(files) + len(GENERATED) >= MIN_CASES
    assert set(KNOWN_BUGS) <= {p.name for p in files}
    names = [p.name for p in files]
    assert min(names) < "ok.yml" < max(names), "cases must sort both before and after ok.yml"


# Positive controls: without them the test above could pass with a CLI that does nothing.


def test_valid_manifest_alone_is_applied_and_changes_the_canary(
    pyprov: RunPyprov, state_dir: Path, tmp_path: Path,
) -> None:
    manifests = tmp_path / "manifests"
    canary = _canary(tmp_path)
    _ok_manifest(manifests, canary)

    result = pyprov("apply", str(manifests))

    assert result.code == 2, result.stdout + result.stderr
    assert canary.read_bytes() != CANARY_BYTES
    assert canary.stat().st_mtime_ns != CANARY_MTIME_NS
    written = json.loads(canary.read_text())
    assert written == {"debug": True, "storage-driver": "overlay2", "log-level": "warn"}
    assert state_dir.is_dir()


def test_quoted_ports_and_safe_unquoted_yaml_values_are_accepted(
    pyprov: RunPyprov, tmp_path: Path,
) -> None:
    # Unquoted 80:80 and 3307:3306 stay strings in YAML 1.1 (a part after the first
    # is above 59, so no base-60 number); quoted "22:22" / "8080:22" / "1000:50"
    # are what the traps in the corpus must be rewritten to. An unquoted
    # `restart: no` is YAML's false and is accepted as "no" on purpose.
    manifest = write_manifest(tmp_path / "manifests", "traps.yml", (
        "kind: Container\n"
        "name: web\n"
        "image: nginx:1.25\n"
        "ports:\n"
        "  - 80:80\n"
        "  - 3307:3306\n"
        '  - "22:22"\n'
        '  - "8080:22"\n'
        'user: "1000:50"\n'
        "restart: no\n"
    ))

    validated = pyprov("validate", str(manifest))
    rendered = pyprov("render", str(manifest))

    assert validated.code == 0, validated.stderr
    assert validated.stdout.strip() == "1 documents valid for 1 hosts"
    assert rendered.code == 0, rendered.stderr
    (document,) = json.loads(rendered.stdout)["documents"]
    pairs = [(p["published"]["start"], p["target"]["start"]) for p in document["ports"]]
    assert pairs == [(80, 80), (3307, 3306), (22, 22), (8080, 22)]
    assert document["user"] == "1000:50"
    assert document["restart"] == "no"
