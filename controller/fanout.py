"""Run one function per host on at most ``forks`` threads, all started before any works.

A thread's ``start()`` waits until the new thread runs; once earlier workers are busy
with SSH key exchanges (CPU-bound, holding the GIL in turns) every later start waits a
GIL switch interval or more. A pool that starts workers as it submits spent ~0.3 s of a
30-host run only starting threads; here the workers are started idle behind a gate,
then released together.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")


def fan_out(items: Iterable[T], work: Callable[[T], None], forks: int) -> None:
    """``work(item)`` for every item, ``forks`` at a time; returns when all are done.
    ``work`` reports its own results and must not raise (an exception ends its thread's
    share of the work and is re-raised here once all threads have finished)."""
    pending: queue.SimpleQueue[T] = queue.SimpleQueue()
    count = 0
    for item in items:
        pending.put(item)
        count += 1
    gate = threading.Event()
    errors: list[BaseException] = []

    def worker() -> None:
        gate.wait()
        try:
            while True:
                try:
                    item = pending.get_nowait()
                except queue.Empty:
                    return
                work(item)
        except BaseException as exc:  # handed to the caller below
            errors.append(exc)

    threads = [threading.Thread(target=worker, daemon=True)
               for _ in range(max(1, min(forks, count)))]
    for thread in threads:
        thread.start()
    gate.set()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
