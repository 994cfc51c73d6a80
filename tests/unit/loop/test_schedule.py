"""When the loop passes: interval plus splay, a backoff that doubles while passes fail."""

from __future__ import annotations

import random

from agent.loop.schedule import Schedule


def test_a_healthy_loop_passes_every_interval_plus_at_most_its_splay() -> None:
    schedule = Schedule(interval=30, splay=0.1, rng=random.Random(1))
    delays = [schedule.after(failed=False) for _ in range(200)]
    assert all(30 <= d <= 33 for d in delays)
    assert max(delays) - min(delays) > 2  # spread, not in step
    assert 0 <= schedule.first_delay() <= 3


def test_failures_back_off_doubling_up_to_the_cap_and_success_resets() -> None:
    schedule = Schedule(interval=10, splay=0, max_backoff=70)
    assert [schedule.after(failed=True) for _ in range(5)] == [10, 20, 40, 70, 70]
    assert schedule.failures == 5
    assert schedule.after(failed=False) == 10
    assert schedule.failures == 0
    assert schedule.after(failed=True) == 10


def test_a_cap_below_the_interval_never_passes_more_often_than_the_interval() -> None:
    schedule = Schedule(interval=30, splay=0, max_backoff=5)
    assert schedule.after(failed=True) == 30
    assert schedule.after(failed=True) == 30
