"""compose's mem_limit, cpus and pids_limit, as docker reads them."""

from __future__ import annotations

import pytest

from agent.model.syntax.errors import SyntaxProblem
from agent.model.syntax.sizes import parse_cpus, parse_memory, parse_pids


@pytest.mark.parametrize(("text", "size"), [
    ("512m", 512 << 20), ("512M", 512 << 20), ("512mb", 512 << 20), ("1g", 1 << 30),
    ("1.5g", 3 << 29), ("7340032", 7 << 20), (7 << 20, 7 << 20), ("6m", 6 << 20),
])
def test_memory_sizes_in_binary_units(text: object, size: int) -> None:
    assert parse_memory(text) == size


@pytest.mark.parametrize("text", ["1k", "5m", "lots", "1x", "-1g", True, None, "1 gb extra"])
def test_memory_sizes_refused(text: object) -> None:
    with pytest.raises(SyntaxProblem):
        parse_memory(text)


def test_cpus_and_pids() -> None:
    assert parse_cpus(1.5) == 1.5
    assert parse_cpus("0.25") == 0.25
    assert parse_pids(100) == 100
    assert parse_pids(-1) == 0  # unlimited, as compose writes it
    for bad in (0, "x", True, float("nan"), 5000):
        with pytest.raises(SyntaxProblem):
            parse_cpus(bad)
    for bad_pids in (-5, "10", True, 10**9):
        with pytest.raises(SyntaxProblem):
            parse_pids(bad_pids)
