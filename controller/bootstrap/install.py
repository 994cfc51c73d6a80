"""Installing or upgrading the agent on one host, idempotently.

1. ``INSTALL/bin/python -I -m agent version`` answers this version, protocol and build:
   installed.
2. Probe the host's Python (the wheels must fit it), get the wheel house for it.
3. Copy over SFTP only the wheels the host's ``INSTALL/wheelhouse`` lacks.
4. ``python3 -m venv --without-pip INSTALL`` (Debian's python3 has no ensurepip without
   python3-venv; pip runs from its own wheel instead), then ``pip install --no-index``.
5. Ask the agent its version again: an install is only reported once it answers.
6. ``agent setup`` on the host, from the inventory's variables: the agent as a service
   (``pyprov_agent``: ``serve``, the default, a resident server; ``loop``, ``agent run``
   with ``pyprov_agent_interval`` and ``pyprov_mode``; ``none``) and the drift cron entry
   (``pyprov_drift_cron``: a schedule; ``pyprov_drift_delay``: its random delay): the
   systemd unit and /etc/cron.d file written when they differ, removed when not asked,
   the agent (re)started by systemd where it runs, detached elsewhere.
"""

from __future__ import annotations

import json
import shlex
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from agent.model import PROTOCOL_VERSION, Event
from agent.model.constants import BUILD_FILE
from controller.bootstrap.wheelhouse import PROBE, HostPython, build_id, parse_probe, wheels
from controller.errors import TransportError
from controller.transports.base import Transport

_house_lock = threading.Lock()
AGENT_MODES = ("loop", "serve", "none")
LOOP_MODES = ("enforce", "report")


def installed(transport: Transport, python: str) -> tuple[str | None, str]:
    """The agent version (None: no agent answers) and build at ``python``."""
    result = transport.run([python, "-I", "-m", "agent", "version"], timeout=120)
    if result.code != 0:
        return None, ""
    try:
        data = json.loads(result.stdout)
    except ValueError:
        return None, ""
    if not isinstance(data, dict):
        return None, ""
    build = str(data.get("build", ""))
    if data.get("protocol") != PROTOCOL_VERSION:
        return f"{data.get('version', '?')} (protocol {data.get('protocol')})", build
    version = data.get("version")
    return (version if isinstance(version, str) else None), build


def _check(transport: Transport, argv: list[str], what: str, timeout: float = 600) -> bytes:
    result = transport.run(argv, timeout=timeout)
    if result.code != 0:
        detail = result.stderr.decode("utf-8", "replace").strip().splitlines()[-3:]
        raise TransportError(transport.host, f"{what} failed (exit {result.code}): "
                             + " | ".join(detail))
    return result.stdout


def bootstrap_host(transport: Transport, *, install_dir: str, system_python: str,
                   version: str, wheelhouse_for: Callable[[HostPython], Path]) -> Event:
    host = transport.host
    python = f"{install_dir}/bin/python"
    probe = _check(transport, [system_python, "-c", PROBE], f"probing {system_python}", 60)
    target = parse_probe(probe.decode())
    with _house_lock:  # one build per interpreter kind, shared by the hosts that need it
        house = wheelhouse_for(target)
    build = build_id(house)
    before, before_build = installed(transport, python)
    if before == version and before_build == build:
        return Event(host=host, kind="Agent", name=install_dir, summary=f"pyprov {version} "
                     f"(build {build}) is installed")
    remote_house = f"{install_dir}/wheelhouse"
    _check(transport, ["mkdir", "-p", remote_house], "creating the wheel house dir")
    present = set(_check(transport, ["ls", "-1", remote_house], "listing wheels")
                  .decode().split())
    sent = [w for w in wheels(house) if w.name not in present]
    for wheel in sent:
        transport.upload(wheel, f"{remote_house}/{wheel.name}")
    if before is None:
        _check(transport, [system_python, "-m", "venv", "--without-pip", install_dir],
               "creating the venv")
    pip_wheel = next((w for w in wheels(house) if w.name.startswith("pip-")), None)
    if pip_wheel is None:
        raise TransportError(host, "the wheel house has no pip wheel")
    pip = [python, f"{remote_house}/{pip_wheel.name}/pip", "install", "-q",
           "--disable-pip-version-check", "--no-index", "--find-links", remote_house]
    _check(transport, [*pip, "--upgrade", f"pyprov=={version}"],
           f"pip install pyprov=={version}", timeout=900)
    if before == version:  # same version, other build: replace pyprov itself
        _check(transport, [*pip, "--force-reinstall", "--no-deps", f"pyprov=={version}"],
               "pip reinstall pyprov", timeout=900)
    _check(transport, ["sh", "-c", f'echo {build} > "$1"', "sh",
                       f"{install_dir}/{BUILD_FILE}"], "recording the build")
    after, _ = installed(transport, python)
    if after != version:
        asked = shlex.join([python, "-I", "-m", "agent", "version"])
        raise TransportError(host, f"installed, but {asked} answers {after!r}, not {version}")
    verb = f"upgraded from {before}" if before else "installed"
    return Event(host=host, kind="Agent", name=install_dir, changed=True, action="install",
                 summary=f"pyprov {version} {verb} ({len(sent)} wheels sent)")


@dataclass(frozen=True)
class AgentService:
    """What the inventory asks of the agent on a host (checked before any host is touched)."""

    agent: str = "serve"
    mode: str = "enforce"
    interval: float = 30.0
    drift_cron: str | None = None
    drift_delay: int = 300

    @classmethod
    def from_vars(cls, host: str, variables: Mapping[str, object]) -> AgentService:
        def number(name: str, default: float) -> float:
            value = variables.get(name, default)
            try:
                result = float(value)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                result = -1.0
            if result < 0 or (name == "pyprov_agent_interval" and result == 0):
                raise TransportError(host, f"{name}: {value!r} is not a positive number")
            return result

        agent, mode = str(variables.get("pyprov_agent", "serve")), \
            str(variables.get("pyprov_mode", "enforce"))
        if agent not in AGENT_MODES:
            raise TransportError(host, f"pyprov_agent: {agent!r} is not one of "
                                 f"{', '.join(AGENT_MODES)}")
        if mode not in LOOP_MODES:
            raise TransportError(host, f"pyprov_mode: {mode!r} is not one of "
                                 f"{', '.join(LOOP_MODES)}")
        cron = variables.get("pyprov_drift_cron")
        return cls(agent=agent, mode=mode, interval=number("pyprov_agent_interval", 30.0),
                   drift_cron=str(cron) if cron not in (None, "", False) else None,
                   drift_delay=int(number("pyprov_drift_delay", 300)))

    def argv(self) -> list[str]:
        argv = ["setup", "--agent", self.agent, "--mode", self.mode,
                "--interval", f"{self.interval:g}", "--drift-delay", str(self.drift_delay)]
        return argv + (["--drift-cron", self.drift_cron] if self.drift_cron else [])


def agent_service(transport: Transport, *, install_dir: str,
                  service: AgentService) -> list[Event]:
    """``agent setup`` on the host: its events (unit file, cron entry, the agent)."""
    result = transport.run([f"{install_dir}/bin/python", "-I", "-m", "agent",
                            *service.argv()], timeout=180)
    events = []
    for line in result.stdout.decode("utf-8", "replace").splitlines():
        try:
            event = Event.model_validate_json(line)
        except ValueError:
            continue
        events.append(event.model_copy(update={"host": transport.host}))
    if result.code not in (0, 2, 4, 6) or not events:
        detail = result.stderr.decode("utf-8", "replace").strip().splitlines()[-1:]
        raise TransportError(transport.host, f"agent setup failed (exit {result.code})"
                             + (f": {detail[0]}" if detail else ""))
    return events
