"""The one retry policy: errors marked :class:`agent.errors.Transient`, and nothing else.

Backoff doubles from 0.2 s up to 5 s; a server's ``Retry-After`` (429, 503) is honoured
up to 30 s. Never on 4xx, never on a digest mismatch: retrying cannot fix those.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_exponential

from agent.errors import Transient

T = TypeVar("T")
ATTEMPTS = 5
MAX_RETRY_AFTER = 30.0
_backoff = wait_exponential(multiplier=0.2, max=5)


def _wait(state: RetryCallState) -> float:
    outcome = state.outcome
    error = outcome.exception() if outcome is not None else None
    after = getattr(error, "retry_after", None)
    if isinstance(after, int | float) and after > 0:
        return min(float(after), MAX_RETRY_AFTER)
    return float(_backoff(state))


def retrying(call: Callable[[], T], attempts: int = ATTEMPTS) -> T:
    """``call()``, again while it raises a Transient error, at most ``attempts`` times."""
    for attempt in Retrying(retry=retry_if_exception_type(Transient), wait=_wait,
                            stop=stop_after_attempt(max(1, attempts)), reraise=True):
        with attempt:
            return call()
    raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover
