"""pytest fixtures for the test fleet. Use with ``pytest_plugins = ["tests.fleet.fixtures"]``.

- ``fleet`` (session): :data:`FLEET_HOSTS` hosts (3; ``PYPROV_FLEET_HOSTS`` overrides),
  up before the first test that asks, torn down (and checked for leaks) at the end.
- ``mutable_fleet`` (function): the same fleet, for tests that stop hosts, change keys,
  disconnect or install things: afterwards every sshd runs, links are up, known_hosts is
  current, and the hosts' /etc/docker, /opt/pyprov, /var/lib/pyprov and /root are empty.

A fleet that cannot come up FAILS the tests that use it (with the sshd log), never skips.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from tests.fleet.fleet import DEFAULT_HOSTS, Fleet, FleetError

T = TypeVar("T")

FLEET_HOSTS = int(os.environ.get("PYPROV_FLEET_HOSTS", DEFAULT_HOSTS))


@pytest.fixture(scope="session")
def fleet() -> Iterator[Fleet]:
    """The session's fleet of :data:`FLEET_HOSTS` hosts; see :class:`tests.fleet.Fleet`."""
    running, problem = _attempt(lambda: Fleet.create(FLEET_HOSTS))
    if running is None:
        pytest.fail(f"the test fleet did not come up:\n{problem}", pytrace=False)
    try:
        yield running
    finally:
        _, problem = _attempt(running.destroy)
        if problem:
            pytest.fail(problem, pytrace=False)


@pytest.fixture
def mutable_fleet(fleet: Fleet) -> Iterator[Fleet]:
    """The session fleet, restored to health and emptied after the test."""
    yield fleet
    _, problem = _attempt(lambda: _restore_and_wipe(fleet))
    if problem:
        pytest.fail(f"could not restore the test fleet:\n{problem}", pytrace=False)


def _restore_and_wipe(fleet: Fleet) -> None:
    fleet.restore()
    fleet.wipe()


def _attempt(action: Callable[[], T]) -> tuple[T | None, str]:
    """(result, "") or (None, message): pytest.fail outside ``except`` reads better."""
    try:
        return action(), ""
    except FleetError as error:
        return None, str(error)
