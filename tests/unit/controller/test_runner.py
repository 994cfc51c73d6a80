"""The controller never mistakes an agent that said too little for a success."""

from __future__ import annotations

import pytest

from controller.runner import _incomplete


@pytest.mark.parametrize(("code", "seen", "expected", "failure", "problem"), [
    (0, 1, 1, False, None),
    (2, 3, 3, False, None),
    (6, 3, 3, True, None),
    (4, 0, 3, True, None),  # the agent reported its own failure (a Host event)
    (2, 0, 1, False, "reported 0 of 1"),  # e.g. an argparse error exiting 2
    (0, 0, 2, False, "reported 0 of 2"),
    (4, 1, 1, False, "reported no failure"),
    (1, 0, 1, False, "exited with code 1"),
    (-9, 0, 1, True, "exited with code -9"),
])
def test_incomplete(code: int, seen: int, expected: int, failure: bool,
                    problem: str | None) -> None:
    found = _incomplete(code, seen, expected, failure)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert problem in found
