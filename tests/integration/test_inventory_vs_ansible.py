"""pyprov's inventory against Ansible itself, on the fixture inventories.

- ``to_ansible_list(load_inventory(path))`` must equal what ``ansible-inventory -i PATH
  --list`` prints: every host's variables and the group structure, list order included.
  One normalization, on purpose: ansible-core 2.19 adds ``_meta.profile:
  "inventory_legacy"`` (the name of its serializer for tagged values), which pyprov
  does not produce; it is removed from Ansible's side before comparing.
- ``select(inventory, pattern)`` must equal Ansible's ``InventoryManager.get_hosts``,
  order included, or both must fail. That one runs Ansible's Python API in a
  subprocess (one process for every pattern, a fresh manager for each, so no
  pattern sees another's implicit localhost): ``ansible --list-hosts`` would cost a
  second per pattern and turns the subscript error into "no hosts".

Ansible runs with an empty config file, no ANSIBLE_* variables from the caller, and
its home and temp dirs in the test's temp dir: it writes nothing to the real home and
no local ansible.cfg changes its behaviour. ansible-core is a dev dependency; if it
is missing the tests fail rather than skip.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from controller.inventory import InventoryError, load_inventory, select, to_ansible_list
from tests.conftest import REPO

FIXTURES = REPO / "tests" / "fixtures" / "inventories"
SOURCES = [
    "ini-basic/hosts",  # INI: ranges, inline typed vars, host:port, forward references
    "ini-basic",  # the same, as a directory
    "yaml-basic/inventory.yml",  # YAML: nested children, ranges, ports, dates, re-declared groups
    "vars-dirs/hosts",  # group_vars/ and host_vars/: files, sub-directories, precedence
    "vars-dirs",
    "priorities/inventory.yaml",  # ansible_group_priority, depth, name
    "directory",  # several files and formats, ignored names, a nested directory
    "quirks/inventory.yml",  # ungrouped corners, skipped entries, odd hosts
]
PATTERNS = {
    "ini-basic/hosts": [
        "all", "*", "web", "db", "prod", "backend", "ungrouped", "late", "empty",
        "web:db", "web,db", "db:web", "prod:!db", "prod:&db", "!web", "&db", "web:&backend",
        "prod:!web:late", "web*", "*.example.com", "db-0?", "10.0.1.*", "~web\\d+",
        "~(db|edge)", "~.*lab$", "web[0]", "web[-1]", "web[1:3]", "web[2:]", "prod[0]",
        "edge", "late-host", "2001:db8::10", "localhost", "127.0.0.1", "::1", "nosuch",
        "web:nosuch", "al*", "~[", "web[99]", "", "web:22",
    ],
    "yaml-basic/inventory.yml": [
        "all", "web", "canary", "db", "other", "web:!canary", "other:&web", "solo*",
        "localhost", "127.0.0.1", "127.0.0.1:&localhost", "::1,localhost", "empty", "web-?",
        "~db\\d+", "db[1]",
    ],
    "quirks/inventory.yml": ["all", "ungrouped", "sub", "lb", "parent", "!sub", "web*",
                             "2001:db8::1", "10.0.0.*"],
    "priorities/inventory.yaml": ["all", "parent", "child:alpha", "shared"],
}
ORACLE = """
import json, sys
from ansible.errors import AnsibleError
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
results = {}
for source, patterns in json.load(sys.stdin).items():
    results[source] = {}
    for pattern in patterns:
        manager = InventoryManager(DataLoader(), sources=[source])
        try:
            results[source][pattern] = [host.name for host in manager.get_hosts(pattern)]
        except AnsibleError:
            results[source][pattern] = None
json.dump(results, sys.stdout)
"""


def _ansible_inventory() -> Path:
    beside = Path(sys.executable).parent / "ansible-inventory"
    found = beside if beside.exists() else shutil.which("ansible-inventory")
    if not found:
        pytest.fail("ansible-inventory not found: install the dev extra (pip install -e .[dev])")
    return Path(found)


def _ansible_python(command: Path) -> list[str]:
    """The interpreter that has ansible-core: the one the command's shebang names."""
    first = command.read_bytes().split(b"\n", 1)[0]
    return shlex.split(first[2:].decode()) if first.startswith(b"#!") else [sys.executable]


@dataclass(frozen=True)
class Ansible:
    env: dict[str, str]
    cwd: Path

    def run(self, argv: list[str], stdin: str = "") -> str:
        done = subprocess.run(argv, input=stdin, capture_output=True, text=True, env=self.env,
                              cwd=self.cwd, timeout=300, check=False)
        assert done.returncode == 0, f"{argv[0]} failed:\n{done.stderr}"
        # Ansible carries on without a source it cannot parse: that would compare nothing.
        for failure in ("Failed to parse", "Unable to parse", "Traceback"):
            assert failure not in done.stderr, done.stderr
        return done.stdout


@pytest.fixture(scope="module")
def ansible(tmp_path_factory: pytest.TempPathFactory) -> Ansible:
    home = tmp_path_factory.mktemp("ansible")
    (home / "ansible.cfg").write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_CONFIG=str(home / "ansible.cfg"), ANSIBLE_HOME=str(home / "home"),
               ANSIBLE_LOCAL_TEMP=str(home / "tmp"), ANSIBLE_NOCOLOR="1")
    return Ansible(env, home)


def ansible_list(source: Path, ansible: Ansible) -> dict[str, Any]:
    listed: dict[str, Any] = json.loads(
        ansible.run([str(_ansible_inventory()), "-i", str(source), "--list"]))
    listed["_meta"].pop("profile", None)  # see the module docstring
    return listed


@pytest.mark.parametrize("source", SOURCES)
def test_list_matches_ansible_inventory(source: str, ansible: Ansible) -> None:
    theirs = ansible_list(FIXTURES / source, ansible)
    ours = to_ansible_list(load_inventory(FIXTURES / source))
    assert theirs["_meta"]["hostvars"], "a fixture without variables proves little"
    assert ours["_meta"]["hostvars"] == theirs["_meta"]["hostvars"]
    assert {k: v for k, v in ours.items() if k != "_meta"} == {
        k: v for k, v in theirs.items() if k != "_meta"}
    assert ours == theirs


def test_patterns_match_ansible(ansible: Ansible) -> None:
    command = _ansible_inventory()
    request = {str(FIXTURES / source): patterns for source, patterns in PATTERNS.items()}
    theirs = json.loads(ansible.run([*_ansible_python(command), "-c", ORACLE],
                                    json.dumps(request)))
    differences = []
    for source, patterns in PATTERNS.items():
        inventory = load_inventory(FIXTURES / source)
        for pattern in patterns:
            try:
                ours: list[str] | None = select(inventory, pattern)
            except InventoryError:
                ours = None
            expected = theirs[str(FIXTURES / source)][pattern]
            if ours != expected:
                differences.append(f"{source} {pattern!r}: ours {ours}, Ansible {expected}")
    assert differences == []
    assert sum(len(p) for p in PATTERNS.values()) > 60
