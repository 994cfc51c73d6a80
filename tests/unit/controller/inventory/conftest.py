"""Helpers: write an inventory (and its vars files) into a temp dir and load it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from controller.inventory import Inventory, load_inventory
from tests.conftest import write_file

Write = Callable[..., Path]
Load = Callable[..., Inventory]


@pytest.fixture
def write(tmp_path: Path) -> Write:
    """``write("hosts", text)`` -> the file's path, parents created."""

    def run(relative: str, text: str | bytes) -> Path:
        return write_file(tmp_path / relative, text)

    return run


@pytest.fixture
def load(write: Write) -> Load:
    """``load(text, name="hosts")``: write one inventory file and load it."""

    def run(text: str, name: str = "hosts") -> Inventory:
        return load_inventory(write(name, text))

    return run
