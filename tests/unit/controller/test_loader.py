"""``controller.manifests.loader``: files -> validated documents, or each problem and its place."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.model import Container
from controller.manifests.errors import ManifestError, ManifestProblem
from controller.manifests.loader import load_file, load_manifests, manifest_files
from tests.conftest import write_file

CONTAINER = "kind: Container\nname: web\nimage: nginx:1.25\n"


write = write_file


def problems_of(path: Path) -> list[ManifestProblem]:
    documents, problems = load_file(path)
    assert not documents or problems
    return problems


# 4. Compose extension fields.


def test_top_level_extension_fields_are_ignored(tmp_path: Path) -> None:
    file = write(tmp_path / "web.yml", CONTAINER + "x-note: anything\nx-other: {a: [1, 2]}\n")
    documents, problems = load_file(file)
    assert problems == []
    (source,) = documents
    assert isinstance(source.document, Container)
    assert source.document.name == "web"


def test_extension_field_anchor_feeds_a_merge(tmp_path: Path) -> None:
    file = write(tmp_path / "web.yml", (
        "x-env: &env {TZ: UTC, LANG: C.UTF-8}\n"
        + CONTAINER
        + "environment:\n  <<: *env\n  TZ: Europe/Paris\n"
    ))
    documents, problems = load_file(file)
    assert problems == []
    container = documents[0].document
    assert isinstance(container, Container)
    assert container.environment == {"TZ": "Europe/Paris", "LANG": "C.UTF-8"}


def test_positions_stay_valid_after_extension_fields(tmp_path: Path) -> None:
    file = write(tmp_path / "web.yml", "x-note: anything\n" + CONTAINER + "portz: []\n")
    (found,) = problems_of(file)
    assert (found.line, found.column, found.field) == (5, 1, "portz")
    assert "unknown field" in found.message


def test_only_top_level_x_keys_are_dropped(tmp_path: Path) -> None:
    file = write(tmp_path / "d.yml", (
        "kind: DaemonConfig\nname: d\npath: /tmp/daemon.json\nsettings:\n  x-note: hi\n"
    ))
    (found,) = problems_of(file)
    assert found.field == "settings.x-note"


def test_an_x_key_is_not_a_kind(tmp_path: Path) -> None:
    file = write(tmp_path / "x.yml", "x-kind: Container\nname: web\n")
    (found,) = problems_of(file)
    assert "missing required field 'kind'" in found.message


# 5. Hidden directories and files.


def test_manifest_files_skip_hidden_directories_and_files(tmp_path: Path) -> None:
    root = tmp_path / "manifests"
    write(root / "a.yml", CONTAINER)
    write(root / "sub" / "b.yaml", CONTAINER)
    write(root / ".github" / "ci.yml", "on: push\n")
    write(root / "sub" / ".cache" / "deep" / "c.yml", "x")
    write(root / ".hidden.yml", "x")
    write(root / "notes.txt", "x")
    assert manifest_files([root]) == [root / "a.yml", root / "sub" / "b.yaml"]


def test_a_hidden_directory_named_explicitly_is_read(tmp_path: Path) -> None:
    root = tmp_path / ".config" / "manifests"
    write(root / "a.yml", CONTAINER)
    assert manifest_files([root]) == [root / "a.yml"]


def test_hidden_file_named_explicitly_is_read(tmp_path: Path) -> None:
    file = write(tmp_path / ".web.yml", CONTAINER)
    assert manifest_files([file]) == [file]


def test_validate_a_directory_with_a_github_workflow(tmp_path: Path) -> None:
    write(tmp_path / "web.yml", CONTAINER)
    write(tmp_path / ".github" / "workflows" / "ci.yml", "on: [push]\njobs: {}\n")
    (source,) = load_manifests([tmp_path])
    assert source.document.name == "web"


# 1 and 2 through the loader: file:line:column and field, never a traceback.


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        (CONTAINER + "environment:\n  UMASK: 0022\n", (5, 10, "environment.UMASK"),
         'as the number 18; quote it ("0022")'),
        (CONTAINER + "environment:\n  VERSION: 1.10\n", (5, 12, "environment.VERSION"),
         "as the number 1.1;"),
        (CONTAINER + "command: [chmod, 0755, /srv]\n", (4, 18, "command[1]"), "as the number 493"),
        (CONTAINER + "user: 01750\n", (4, 7, "user"), "as the number 1000"),
        (CONTAINER + "ports:\n  - 010\n", (5, 5, "ports[0]"), "as the number 8;"),
        (CONTAINER + "ports:\n  - 0x1F90\n", (5, 5, "ports[0]"), "as the number 8080;"),
        ("kind: Container\nname: 2024-13-45\nimage: nginx:1.25\n", (2, 7, "name"),
         "is not a valid date"),
        (CONTAINER + "hostname: !!int abc\n", (4, 11, "hostname"), "'abc' is not a valid !!int"),
        (CONTAINER + "hostname: !!bool maybe\n", (4, 11, "hostname"), "is not a valid !!bool"),
        (CONTAINER + "hostname: !!timestamp abc\n", (4, 11, "hostname"),
         "is not a valid !!timestamp"),
        (CONTAINER + "hostname: \x01\n", (4, 11, ""), "#x0001"),
        (CONTAINER + "labels:\n  a: b\x00\n", (5, 7, ""), "#x0000"),
        (CONTAINER + "labels: " + "[" * 20_000 + "\n", (4, 9 + 64, ""), "nested too deeply"),
        (CONTAINER + "ports:\n  - " + "9" * 5000 + "\n", (5, 5, "ports[0]"), "too many digits"),
    ],
)
def test_yaml_traps_are_reported_at_their_place(
    tmp_path: Path, text: str, where: tuple[int, int, str], message: str,
) -> None:
    file = write(tmp_path / "web.yml", text)
    (found,) = problems_of(file)
    assert (found.file, found.line, found.column, found.field) == (str(file), *where)
    assert message in found.message


def test_merged_environment_with_a_local_override_validates(tmp_path: Path) -> None:
    file = write(tmp_path / "web.yml", (
        "kind: Container\nname: base\nimage: nginx:1.25\n"
        'environment: &base {A: "1", B: "2"}\n'
        "---\n"
        "kind: Container\nname: web\nimage: nginx:1.25\n"
        'environment: {<<: *base, B: "3"}\n'
    ))
    with pytest.raises(ManifestError) as info:  # an anchor does not cross documents
        load_manifests([file])
    assert "found undefined alias" in str(info.value)
    file.write_text(
        "kind: Container\nname: web\nimage: nginx:1.25\n"
        'labels: &base {A: "1", B: "2"}\n'
        'environment: {<<: *base, B: "3"}\n'
    )
    (source,) = load_manifests([file])
    assert isinstance(source.document, Container)
    assert source.document.environment == {"A": "1", "B": "3"}
    assert source.document.labels == {"A": "1", "B": "2"}
