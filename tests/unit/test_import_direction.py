"""The dependency direction of the architecture, checked on the source (AST, no imports run).

- ``agent.model`` imports nothing else of pyprov: it is the contract.
- ``controller`` uses only ``agent.model`` of the agent; it reaches the agent through
  its CLI and JSON, never by calling agent code.
- ``agent`` never imports ``controller``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO

OURS = ("agent", "controller")


def imports_of(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            yield f"<relative:{node.module}>"


def modules(package: str) -> list[Path]:
    return sorted((REPO / package).rglob("*.py"))


def ours(name: str) -> bool:
    return name.split(".", maxsplit=1)[0] in OURS or name.startswith("<relative")


def violations(package: str, allowed: tuple[str, ...]) -> list[str]:
    found = []
    for path in modules(package):
        for name in imports_of(path):
            if ours(name) and not any(name == a or name.startswith(a + ".") for a in allowed):
                found.append(f"{path.relative_to(REPO)} imports {name}")
    return found


def test_model_imports_nothing_else_of_ours() -> None:
    assert violations("agent/model", ("agent.model",)) == []


def test_controller_uses_only_the_agent_model() -> None:
    assert violations("controller", ("controller", "agent.model")) == []


def test_agent_never_imports_controller() -> None:
    assert violations("agent", ("agent",)) == []


@pytest.mark.parametrize("package", ["agent", "controller"])
def test_checker_sees_imports(package: str) -> None:
    """Guard against a checker that passes because it found nothing to check."""
    names = [n for p in modules(package) for n in imports_of(p) if ours(n)]
    assert len(names) > 10


def test_registry_client_and_store_do_not_import_each_other() -> None:
    """agent/images/ joins them; each stays usable (and testable) alone."""
    shared = ("agent.errors", "agent.oci", "agent.model", "agent.fsutil", "agent.retry")
    assert violations("agent/registry", ("agent.registry", *shared)) == []
    assert violations("agent/store", ("agent.store", *shared)) == []
    assert violations("agent/oci", ("agent.oci", "agent.errors")) == []
