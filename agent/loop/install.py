"""``pyprov agent setup``: the agent installed as operators expect, from bootstrap.

    /etc/systemd/system/pyprov-agent.service   ``agent run`` (or ``serve``), restarted on
                                               failure; its stop leaves the containers'
                                               monitors running (KillMode=process)
    /etc/cron.d/pyprov-drift                   ``agent check`` on a schedule, under
                                               ``flock -n``, after a random delay

Both are rendered here, written only when their content differs (atomically), and
removed when no longer asked for. Where systemd is PID 1 the unit is enabled and
(re)started through systemctl; elsewhere (containers, the test fleet) the agent is
started detached, as ``run --detach`` does. Output: one event per line, Puppet's exit
codes, as ``agent apply``.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from agent.errors import PyprovError
from agent.fsutil.atomic import write_if_changed
from agent.loop.runner import LoopSettings
from agent.model import Event, exit_code
from agent.state import StateDir

UNIT_NAME = "pyprov-agent.service"
CRON_NAME = "pyprov-drift"  # no dot: Debian's cron ignores files in cron.d with one
SYSTEMD_DIR = Path("/etc/systemd/system")
CRON_DIR = Path("/etc/cron.d")
AGENT_MODES = ("loop", "serve", "none")
HEADER = "# Written by pyprov (pyprov bootstrap); local changes are overwritten.\n"
_CRON_FIELD = re.compile(r"^[0-9A-Za-z*,/\-]+$")
_CRON_NICKNAMES = ("@reboot", "@yearly", "@annually", "@monthly", "@weekly", "@daily",
                   "@midnight", "@hourly")


class SetupError(PyprovError):
    """What bootstrap asked for cannot be installed (a bad schedule, systemctl failing)."""


@dataclass(frozen=True)
class ServicePlan:
    agent: str                      # loop | serve | none
    loop: LoopSettings
    drift_cron: str | None          # a cron schedule, or None: no drift cron entry
    drift_delay: int                # the random delay before a drift check, seconds
    state: StateDir
    python: str = sys.executable    # the agent's venv interpreter
    systemd_dir: Path = SYSTEMD_DIR
    cron_dir: Path = CRON_DIR

    def agent_argv(self) -> list[str]:
        """What the unit (or the detached start) runs."""
        return self.loop.argv() if self.agent == "loop" else ["serve"]


def check_schedule(schedule: str) -> str:
    """Five cron fields or a nickname; nothing that could end the line or add a command."""
    fields = schedule.split()
    if len(fields) == 1 and fields[0] in _CRON_NICKNAMES:
        return fields[0]
    if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
        raise SetupError(f"pyprov_drift_cron: {schedule!r} is not a cron schedule (five "
                         "fields such as '17 3 * * *', or @daily, @hourly...)")
    return " ".join(fields)


def render_unit(plan: ServicePlan) -> str:
    exec_start = shlex.join([plan.python, "-I", "-m", "agent", *plan.agent_argv(),
                             "--state-dir", str(plan.state.root)])
    what = "reconcile loop and resident server" if plan.agent == "loop" else "resident server"
    return HEADER + f"""[Unit]
Description=pyprov agent ({what})
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
ExecStart={exec_start}
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=5s
# Stop the agent alone: the containers' monitors and their zygote run in this unit's
# cgroup and must outlive the agent (as containerd's shims outlive containerd).
KillMode=process
TimeoutStopSec={int(plan.loop.stop_timeout) + 30}s

[Install]
WantedBy=multi-user.target
"""


def render_cron(plan: ServicePlan) -> str:
    schedule = check_schedule(plan.drift_cron or "")
    lock = plan.state.root / "drift-cron.lock"
    command = shlex.join(["flock", "-n", str(lock), plan.python, "-I", "-m", "agent",
                          "check", "--quiet", "--random-delay", str(plan.drift_delay),
                          "--state-dir", str(plan.state.root)])
    return HEADER + f"""# Drift check: this host against its stored desired state, nothing changed;
# cron mails the one-line summary when the host drifted or the check failed.
# Reports in {plan.state.reports}/: pyprov agent status; pyprov drift (controller).
SHELL=/bin/sh
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
{schedule} root {command}
"""


def _file(host: str, path: Path, content: str | None, mode: int) -> Event:
    """Write (if it differs) or remove the file; its event."""
    if content is None:
        if not path.exists():
            return Event(host=host, kind="Agent", name=str(path), summary="not asked for")
        path.unlink()
        return Event(host=host, kind="Agent", name=str(path), changed=True, action="delete",
                     summary="removed (no longer asked for)")
    existed = path.exists()
    if not write_if_changed(path, content.encode(), mode=mode):
        return Event(host=host, kind="Agent", name=str(path), summary="up to date")
    return Event(host=host, kind="Agent", name=str(path), changed=True,
                 action="update" if existed else "create",
                 summary="updated" if existed else "installed")


def systemd_running() -> bool:
    """systemd's own test (sd_booted): it is PID 1 when this directory exists."""
    return Path("/run/systemd/system").is_dir()


def _systemctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["systemctl", *args], capture_output=True, text=True, check=False,
                          timeout=120)


def _must(*args: str) -> None:
    done = _systemctl(*args)
    if done.returncode != 0:
        raise SetupError(f"systemctl {' '.join(args)} failed: {done.stderr.strip()}")


def _under_systemd(host: str, plan: ServicePlan, unit_changed: bool) -> Event:
    from agent.resident import ensure, identity, running

    name = f"systemd:{UNIT_NAME}"
    if plan.agent == "none":
        if _systemctl("is-enabled", UNIT_NAME).returncode != 0 and \
                _systemctl("is-active", UNIT_NAME).returncode != 0:
            return Event(host=host, kind="Agent", name=name, summary="not asked for")
        _must("disable", "--now", UNIT_NAME)
        _must("daemon-reload")
        return Event(host=host, kind="Agent", name=name, changed=True, action="stop",
                     summary="disabled and stopped")
    if unit_changed:
        _must("daemon-reload")
    changes = []
    if _systemctl("is-enabled", UNIT_NAME).returncode != 0:
        _must("enable", UNIT_NAME)
        changes.append("enabled")
    active = _systemctl("is-active", UNIT_NAME).returncode == 0
    found = running(plan.state)
    if not active and found is not None:  # a detached agent from before: systemd's now
        ensure(plan.state, want=False)
    want = {**identity(), "loop": plan.loop.identity() if plan.agent == "loop" else None}
    if active and (unit_changed or found is None or found.identity != want):
        _must("restart", UNIT_NAME)
        changes.append("restarted")
    elif not active:
        _must("start", UNIT_NAME)
        changes.append("started")
    if not changes:
        return Event(host=host, kind="Agent", name=name, summary="enabled and running")
    return Event(host=host, kind="Agent", name=name, changed=True, action="start",
                 summary=" and ".join(changes))


def _detached(host: str, plan: ServicePlan) -> Event:
    from agent.resident import ensure

    outcome = ensure(plan.state, want=plan.agent != "none", command=plan.agent_argv(),
                     loop=plan.loop.identity() if plan.agent == "loop" else None)
    if outcome.code not in (0, 2):
        raise SetupError(outcome.detail or "the agent did not start")
    return Event(host=host, kind="Agent", name="resident", changed=outcome.changed,
                 action=("stop" if plan.agent == "none" else "start") if outcome.changed
                 else "none", summary=outcome.detail)


def setup(plan: ServicePlan, host: str, out: TextIO) -> int:
    """Install what the plan asks, remove what it does not; one event per line."""
    changed = failed = False

    def emit(event: Event) -> None:
        nonlocal changed, failed
        changed |= event.changed
        failed |= event.failed
        out.write(event.model_dump_json(exclude_defaults=True) + "\n")
        out.flush()

    try:
        cron = render_cron(plan) if plan.drift_cron else None  # validated before any write
        unit = render_unit(plan) if plan.agent != "none" else None
        plan.state.ensure()
        unit_path = plan.systemd_dir / UNIT_NAME
        if unit is None:  # stopped (and disabled) before its unit goes
            emit(_under_systemd(host, plan, False) if systemd_running()
                 else _detached(host, plan))
            emit(_file(host, unit_path, None, 0o644))
        else:
            unit_event = _file(host, unit_path, unit, 0o644)
            emit(unit_event)
            emit(_under_systemd(host, plan, unit_event.changed) if systemd_running()
                 else _detached(host, plan))
        emit(_file(host, plan.cron_dir / CRON_NAME, cron, 0o644))
    except (SetupError, OSError, subprocess.SubprocessError) as exc:
        emit(Event(host=host, kind="Agent", name="setup", failed=True, summary="failed",
                   error=str(exc)))
    return exit_code(changed, failed)
