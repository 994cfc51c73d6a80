"""The one retry policy: Transient errors only, bounded, doubling, Retry-After honoured."""

from __future__ import annotations

import pytest

from agent.errors import DigestMismatch, NotFound, TransientRegistryError
from agent.retry import retrying


def flaky(failures: list[Exception]) -> tuple[list[int], object]:
    calls: list[int] = []

    def call() -> str:
        calls.append(1)
        if failures:
            raise failures.pop(0)
        return "done"
    return calls, call


def test_transient_errors_are_retried_with_doubling_waits() -> None:
    waits: list[float] = []
    calls, call = flaky([TransientRegistryError("503")] * 3)
    assert retrying(call, sleep=waits.append) == "done"  # type: ignore[arg-type]
    assert len(calls) == 4
    assert waits == pytest.approx([0.2, 0.4, 0.8])


def test_retry_after_is_honoured_and_capped() -> None:
    waits: list[float] = []
    _, call = flaky([TransientRegistryError("429", retry_after=3),
                     TransientRegistryError("429", retry_after=3600)])
    retrying(call, sleep=waits.append)  # type: ignore[arg-type]
    assert waits == [3, 30]


def test_attempts_are_bounded() -> None:
    waits: list[float] = []
    calls, call = flaky([TransientRegistryError("reset")] * 10)
    with pytest.raises(TransientRegistryError):
        retrying(call, attempts=3, sleep=waits.append)  # type: ignore[arg-type]
    assert len(calls) == 3
    calls, call = flaky([TransientRegistryError("reset")])
    with pytest.raises(TransientRegistryError):
        retrying(call, attempts=1, sleep=waits.append)  # type: ignore[arg-type]
    assert len(calls) == 1


@pytest.mark.parametrize("error", [NotFound("404", status=404),
                                   DigestMismatch("blob", "sha256:a", "sha256:b")])
def test_what_retrying_cannot_fix_fails_at_once(error: Exception) -> None:
    waits: list[float] = []
    calls, call = flaky([error])
    with pytest.raises(type(error)):
        retrying(call, sleep=waits.append)  # type: ignore[arg-type]
    assert (len(calls), waits) == (1, [])
