"""When the loop's next pass is due.

Level-triggered, as kubelet's sync loop: a pass every ``interval`` seconds whatever
happened, plus a random splay (up to ``splay`` of the interval) so a fleet started
together does not pass in step. A pass that fails is retried later and later: the wait
grows as tenacity's exponential backoff from the interval up to ``max_backoff``, and
falls back to the interval at the first pass that succeeds.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

DEFAULT_INTERVAL = 30.0
DEFAULT_SPLAY = 0.1          # a fraction of the interval
DEFAULT_MAX_BACKOFF = 600.0  # ten minutes between attempts at worst


@dataclass
class Schedule:
    interval: float = DEFAULT_INTERVAL
    splay: float = DEFAULT_SPLAY
    max_backoff: float = DEFAULT_MAX_BACKOFF
    failures: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def first_delay(self) -> float:
        """The first pass of a fresh agent waits only for its splay: a restarted agent
        repairs at once what changed while it was down, a fleet still spreads out."""
        return self._jitter()

    def after(self, failed: bool) -> float:
        """Seconds until the pass after one that failed or not."""
        self.failures = self.failures + 1 if failed else 0
        if not self.failures:
            return self.interval + self._jitter()
        return self.backoff(self.failures)

    def backoff(self, failures: int) -> float:
        from tenacity import RetryCallState
        from tenacity.wait import wait_exponential

        state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
        state.attempt_number = failures
        wait = wait_exponential(multiplier=self.interval, min=self.interval,
                                max=max(self.max_backoff, self.interval))
        return float(wait(state)) + self._jitter()

    def _jitter(self) -> float:
        return self.rng.uniform(0, self.interval * self.splay) if self.splay > 0 else 0.0
