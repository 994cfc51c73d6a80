"""The desired state stored on the host by the last apply, as the loop and checks read it.

``STATE/desired.json`` is written atomically by ``agent apply``; a disk fault or a hand
edit can still leave it unusable. Then it is refused, with the reason, and the last
good generation, kept at ``STATE/desired.good.json`` each time one validates, stays in
force (a pass never runs on half a desired state, and never on none when one was good).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from agent.drift import generation
from agent.errors import ProtocolError, PyprovError
from agent.fsutil.atomic import write_if_changed
from agent.model import PROTOCOL_VERSION, DesiredState
from agent.state import StateDir


class NoDesiredState(PyprovError):
    """Nothing was ever applied here: there is nothing to reconcile to."""


class UnusableDesiredState(PyprovError):
    """The stored desired state does not validate, and no good one was kept."""


@dataclass(frozen=True)
class Loaded:
    desired: DesiredState
    generation: str           # sha256 of the bytes in force
    refused: str | None = None  # why desired.json was refused (the last good is in force)


def parse_desired(data: str | bytes) -> DesiredState:
    """Re-validate a desired state; a protocol mismatch is its own error."""
    raw = json.loads(data)
    if not isinstance(raw, dict) or raw.get("protocol") != PROTOCOL_VERSION:
        got = raw.get("protocol") if isinstance(raw, dict) else None
        raise ProtocolError(got, PROTOCOL_VERSION)
    return DesiredState.model_validate(raw)


def load(state: StateDir) -> Loaded:
    """The desired state in force: desired.json if it validates, else the last good one."""
    try:
        raw = state.desired.read_bytes()
        desired = parse_desired(raw)
    except FileNotFoundError:
        refused = None
    except (ProtocolError, ValueError) as exc:  # ValueError: bad JSON, pydantic's errors
        refused = f"the stored desired state {state.desired} is refused: {_first_line(exc)}"
    else:
        write_if_changed(state.desired_good, raw, mode=0o600, dir_mode=0o700)
        return Loaded(desired, generation(raw))
    try:
        good = state.desired_good.read_bytes()
        return Loaded(parse_desired(good), generation(good), refused)
    except FileNotFoundError:
        if refused:
            raise UnusableDesiredState(f"{refused}; no good one was kept") from None
        raise NoDesiredState(f"no desired state in {state.desired}: nothing was ever "
                             "applied here (run pyprov apply first)") from None
    except (ProtocolError, ValueError) as exc:
        raise UnusableDesiredState(f"{refused or 'no desired state'}; the last good one "
                                   f"({state.desired_good}) is unusable too: "
                                   f"{_first_line(exc)}") from None


def stored_generation(state: StateDir) -> str | None:
    """The generation of desired.json as it is on disk (None: there is none)."""
    try:
        return generation(state.desired.read_bytes())
    except OSError:
        return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return " ".join(text.splitlines()[:3]) if text else type(exc).__name__
