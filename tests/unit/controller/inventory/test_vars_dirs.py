"""``vars_dirs``: which files hold a group's or host's variables, and how they merge."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.inventory import InventoryError
from controller.inventory.vars_dirs import VarsDirs, vars_files
from tests.unit.controller.inventory.conftest import Write


def names(found: list[Path], base: Path) -> list[str]:
    return [str(path.relative_to(base)) for path in found]


def test_first_of_name_yml_yaml_json_wins_alone(write: Write, tmp_path: Path) -> None:
    for name in ("web.json", "web.yaml", "web.yml"):
        write(f"group_vars/{name}", "x: 1\n")
    assert names(vars_files(tmp_path / "group_vars", "web"), tmp_path) == ["group_vars/web.yml"]
    write("group_vars/web", "x: 1\n")
    assert names(vars_files(tmp_path / "group_vars", "web"), tmp_path) == ["group_vars/web"]


def test_a_directory_is_read_recursively_in_sorted_order(write: Write, tmp_path: Path) -> None:
    for name in ("b.yml", "a/z.yaml", "a/y.json", "c", ".hidden.yml", "d.yml~", "e.txt",
                 "f.d/g.yml", "0.json"):
        write(f"host_vars/h1/{name}", "x: 1\n")
    assert names(vars_files(tmp_path / "host_vars", "h1"), tmp_path) == [
        "host_vars/h1/0.json", "host_vars/h1/a/y.json", "host_vars/h1/a/z.yaml",
        "host_vars/h1/b.yml", "host_vars/h1/c"]


@pytest.mark.parametrize("name", ["/etc/passwd", "../secrets", "a/../../b"])
def test_names_that_leave_the_directory_are_not_looked_up(write: Write, tmp_path: Path,
                                                          name: str) -> None:
    write("group_vars/x.yml", "x: 1\n")
    assert vars_files(tmp_path / "group_vars", name) == []


def test_later_files_and_names_override_whole_keys(write: Write, tmp_path: Path) -> None:
    write("group_vars/all.yml", "a: 1\nd: {x: 1, y: 2}\n")
    write("group_vars/web/1.yml", "a: 2\nb: 1\n")
    write("group_vars/web/2.json", '{"b": 2, "d": {"x": 9}}')
    write("group_vars/web/3.yml", "")  # empty: ignored
    assert VarsDirs(tmp_path).variables("group_vars", ["all", "web"]) == {
        "a": 2, "b": 2, "d": {"x": 9}}
    assert VarsDirs(tmp_path).variables("host_vars", ["web"]) == {}


@pytest.mark.parametrize(("text", "reason", "line"), [
    ("- a\n", "expected a mapping", None),
    ("a: [1\n", "invalid YAML", 2),
    ("$ANSIBLE_VAULT;1.1;AES256\n6162\n", "vault-encrypted", None),
    ("a: !!python/name:os.system\n", "invalid YAML", 1),
])
def test_bad_files(write: Write, tmp_path: Path, text: str, reason: str,
                   line: int | None) -> None:
    path = write("group_vars/web.yml", text)
    with pytest.raises(InventoryError, match=reason) as caught:
        VarsDirs(tmp_path).variables("group_vars", ["web"])
    assert caught.value.file == str(path)
    assert caught.value.line == line
