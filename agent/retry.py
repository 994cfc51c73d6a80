"""The one retry policy: errors marked :class:`agent.errors.Transient`, and nothing else.

Backoff doubles from 0.2 s up to 5 s; a server's ``Retry-After`` (429, 503) is honoured
up to 30 s. Never on 4xx, never on a digest mismatch: retrying cannot fix those.
tenacity is imported only when a first attempt failed (most calls never need it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from agent.errors import Transient

if TYPE_CHECKING:
    from tenacity import RetryCallState

T = TypeVar("T")
ATTEMPTS = 5
MAX_RETRY_AFTER = 30.0
FIRST_BACKOFF = 0.2


def _first_wait(error: BaseException) -> float:
    after = getattr(error, "retry_after", None)
    return min(float(after), MAX_RETRY_AFTER) if isinstance(after, int | float) and after > 0 \
        else FIRST_BACKOFF


def _wait(state: RetryCallState) -> float:
    from tenacity.wait import wait_exponential

    outcome = state.outcome
    error = outcome.exception() if outcome is not None else None
    after = getattr(error, "retry_after", None)
    if isinstance(after, int | float) and after > 0:
        return min(float(after), MAX_RETRY_AFTER)
    # The first attempt and its wait happened before tenacity: continue the doubling.
    return float(wait_exponential(multiplier=FIRST_BACKOFF * 2, max=5)(state))


def retrying(call: Callable[[], T], attempts: int = ATTEMPTS,
             sleep: Callable[[float], None] = time.sleep) -> T:
    """``call()``, again while it raises a Transient error, at most ``attempts`` times."""
    try:
        return call()
    except Transient as first:
        if attempts <= 1:
            raise
        sleep(_first_wait(first))
    from tenacity import Retrying, retry_if_exception_type, stop_after_attempt

    for attempt in Retrying(retry=retry_if_exception_type(Transient), wait=_wait,
                            stop=stop_after_attempt(attempts - 1), reraise=True, sleep=sleep):
        with attempt:
            return call()
    raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover
