"""Waiting for a condition: the one way tests (and the test fleet) wait. A deadline here
only bounds a failure; no test asserts how fast anything happens."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def poll(condition: Callable[[], T], timeout: float = 20.0,
         interval: float = 0.02) -> T | None:
    """``condition()``'s first truthy value, or None once ``timeout`` seconds passed."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            return None
        time.sleep(interval)


def wait_for(condition: Callable[[], T], what: str = "", timeout: float = 30.0,
             interval: float = 0.05) -> T:
    """``condition()``'s first truthy value; the test fails, naming ``what``, if none
    comes within ``timeout`` seconds."""
    value = poll(condition, timeout, interval)
    if not value:
        import pytest  # the test fleet uses poll outside pytest

        pytest.fail(f"gave up after {timeout:g} s waiting for {what or condition}",
                    pytrace=False)
    return value
