"""The agent process: ``pyprov agent run`` (the loop) and ``pyprov agent serve`` (no loop).

One thread, one ``select``: the resident server's socket (the controller's pushes over
SSH, ``agent status``, host commands), the pass in progress, the requests being served,
and signals. A pass runs in a forked child (every import already paid, ~2 ms), so the
socket keeps answering during a long pull, a crash in a pass cannot take the agent
down, and the pass dies with the agent (``PR_SET_PDEATHSIG``): every write of a pass is
atomic and its next start repairs what a killed one left. A pushed ``apply`` (or
``check``) runs in a child too, and finishes its answer even if the agent stops.

    SIGTERM, SIGINT   stop: the current pass may finish (``stop_timeout``), then is killed
    SIGHUP            re-read the stored desired state and pass at once

Containers are not the agent's children: their monitors come from the zygote, so they
run on while the agent stops, restarts or upgrades.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.drift import DEFAULT_KEEP, LAST_REPORT, DriftReport, read_report
from agent.loop.passes import run_pass
from agent.loop.schedule import DEFAULT_INTERVAL, DEFAULT_MAX_BACKOFF, DEFAULT_SPLAY, Schedule
from agent.loop.status import LoopStatus, metrics_text, report_json, write_metrics
from agent.loop.stored import NoDesiredState, UnusableDesiredState, stored_generation
from agent.server import Handler, Server
from agent.state import StateDir
from agent.textfmt import now_rfc3339

POLL = 2.0  # seconds between looks at desired.json while idle: a new one passes at once
DEFAULT_LOCK_TIMEOUT = 300.0
DEFAULT_STOP_TIMEOUT = 30.0

Signature = tuple[int, int, int] | None


@dataclass(frozen=True)
class LoopSettings:
    mode: str = "enforce"
    interval: float = DEFAULT_INTERVAL
    splay: float = DEFAULT_SPLAY
    max_backoff: float = DEFAULT_MAX_BACKOFF
    keep: int = DEFAULT_KEEP
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    stop_timeout: float = DEFAULT_STOP_TIMEOUT
    metrics_file: Path | None = None

    def identity(self) -> dict[str, object]:
        """What a running agent must match to be left alone by ``run --detach``."""
        return {"mode": self.mode, "interval": self.interval,
                "metrics_file": str(self.metrics_file) if self.metrics_file else None}

    def argv(self) -> list[str]:
        """``agent run`` with these settings (``--detach`` and the systemd unit start it)."""
        argv = ["run", "--mode", self.mode, "--interval", f"{self.interval:g}",
                "--splay", f"{self.splay:g}", "--max-backoff", f"{self.max_backoff:g}",
                "--keep", str(self.keep), "--lock-timeout", f"{self.lock_timeout:g}",
                "--stop-timeout", f"{self.stop_timeout:g}"]
        return argv + (["--metrics-file", str(self.metrics_file)] if self.metrics_file
                       else [])


@dataclass
class _Pass:
    pid: int
    pipe: int
    data: bytearray = field(default_factory=bytearray)


_live: Runner | None = None


def live() -> Runner | None:
    """The runner of this process, if it is the agent (``agent status`` served by it)."""
    return _live


def _signature(path: Path) -> Signature:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


def _say(text: str) -> None:
    print(f"pyprov agent: {text}", file=sys.stderr, flush=True)


class Runner:
    def __init__(self, state: StateDir, settings: LoopSettings | None,
                 handle: Handler) -> None:
        self.state, self.settings, self._handle = state, settings, handle
        self._schedule = Schedule(settings.interval, settings.splay, settings.max_backoff) \
            if settings else None
        self._due = float("inf")
        self._seen: Signature = None
        self._pass: _Pass | None = None
        self._stopping: str | bool = False  # the signal's name, once one asked to stop
        self._reload = False
        self._started_at = now_rfc3339()
        self._passes = 0
        self._served: dict[str, int] = {}
        self._last: DriftReport | None = read_report(state.reports / LAST_REPORT)
        self._desired_error: str | None = None
        self._generation: str | None = None
        self._server: Server | None = None
        self._selector: selectors.BaseSelector = selectors.DefaultSelector()
        self._requests: dict[int, tuple[int, list[str]]] = {}  # pidfd: (pid, argv)
        self._wait: float | None = None

    # -- the loop ---------------------------------------------------------------------

    def run(self) -> int:
        global _live  # noqa: PLW0603 - the one agent of this process, for `status`
        _live = self
        server = self._server = Server(self.state, self._handle, self._spawn)
        wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        old_wakeup = signal.set_wakeup_fd(wake_w)
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_stop)
        signal.signal(signal.SIGHUP, self._on_reload)
        selector = self._selector
        selector.register(server, selectors.EVENT_READ, "server")
        selector.register(wake_r, selectors.EVENT_READ, "signal")
        if self._schedule is not None and self.settings is not None:
            self._due = time.monotonic() + self._schedule.first_delay()
            _say(f"loop: mode {self.settings.mode}, a pass every "
                 f"{self.settings.interval:g} s (+ up to {self.settings.splay:.0%} splay)")
            self._write_metrics()
        try:
            while not self._stopping:
                for key, _ in selector.select(self._timeout()):
                    if key.data == "server":
                        self._count(server.answer())
                    elif key.data == "signal":
                        with contextlib.suppress(BlockingIOError):
                            os.read(wake_r, 4096)
                    elif key.data == "pass":
                        self._collect(selector)
                    elif key.data == "request":
                        self._request_done(key.fd)
                self._maybe_pass(selector)
        finally:
            if self._stopping:
                _say(f"{self._stopping}: stopping")
            self._end_pass(selector)
            server.close()
            signal.set_wakeup_fd(old_wakeup)
            os.close(wake_r)
            os.close(wake_w)
            if self.settings and self.settings.metrics_file:
                self._write_metrics(up=False)
            _live = None
        _say("stopped")
        return 0

    def _timeout(self) -> float | None:
        if self._schedule is None:
            return None  # serving only: sleep until a request or a signal
        return max(0.0, min(self._due - time.monotonic(), POLL))

    def _on_stop(self, signum: int, _frame: object) -> None:
        # Only a flag: printing here could re-enter a print the signal interrupted.
        self._stopping = self._stopping or signal.Signals(signum).name

    def _on_reload(self, _signum: int, _frame: object) -> None:
        self._reload = True

    def _count(self, argv: list[str] | None) -> None:
        if argv is not None:
            self._served[argv[0]] = self._served.get(argv[0], 0) + 1

    def _spawn(self, argv: list[str], work: Callable[[], None]) -> None:
        """Serve a request in a child: the loop goes back to its select at once."""
        pid = os.fork()
        if pid == 0:  # pragma: no cover - covered by the served requests' tests
            code = 0
            try:
                self._forget_parent()
                work()
            except BaseException:  # a child never returns into the loop
                code = 1
            finally:
                os._exit(code)
        pidfd = os.pidfd_open(pid)
        self._requests[pidfd] = (pid, argv)
        self._selector.register(pidfd, selectors.EVENT_READ, "request")

    def _request_done(self, pidfd: int) -> None:
        pid, argv = self._requests.pop(pidfd)
        self._selector.unregister(pidfd)
        os.close(pidfd)
        os.waitpid(pid, 0)
        if argv[0] == "apply" and "--check" not in argv and self._schedule is not None:
            # The controller's push was a pass: the next one is an interval away.
            self._seen = _signature(self.state.desired)
            if self._pass is None:
                self._due = time.monotonic() + self._schedule.after(failed=False)

    def _forget_parent(self) -> None:
        """In a forked child: the agent's signals and socket are not its own."""
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        for signum in (signal.SIGINT, signal.SIGHUP):  # the agent's, not the child's
            signal.signal(signum, signal.SIG_IGN)
        if self._server is not None:
            self._server.close(unlink=False)

    def _maybe_pass(self, selector: selectors.BaseSelector) -> None:
        if self._schedule is None or self._pass is not None or self._stopping:
            return
        now = time.monotonic()
        if self._reload:
            self._reload = False
            _say("SIGHUP: re-reading the stored desired state")
            self._due = now
        elif _signature(self.state.desired) != self._seen and self._passes:
            _say("a new desired state is stored: passing now")
            self._due = now
        if now >= self._due:
            self._start_pass(selector)

    # -- a pass, in a forked child ----------------------------------------------------

    def _loop(self) -> tuple[LoopSettings, Schedule]:
        if self.settings is None or self._schedule is None:
            raise RuntimeError("this agent serves only: it has no loop")
        return self.settings, self._schedule

    def _start_pass(self, selector: selectors.BaseSelector) -> None:
        self._seen = _signature(self.state.desired)
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child's coverage is the passes' tests
            os.close(read_end)
            self._child(write_end, parent)
        os.close(write_end)
        self._pass = _Pass(pid, read_end)
        selector.register(read_end, selectors.EVENT_READ, "pass")

    def _child(self, result_fd: int, parent: int) -> None:
        code = 0
        try:
            from agent.runtime.linux import set_parent_death_signal

            set_parent_death_signal(signal.SIGKILL)
            if os.getppid() != parent:  # the agent died before the line above
                os._exit(0)
            self._forget_parent()
            os.write(result_fd, json.dumps(self._pass_result()).encode())
        except BaseException:
            code = 1
        finally:
            os._exit(code)

    def _pass_result(self) -> dict[str, Any]:
        settings, _ = self._loop()
        try:
            report = run_pass(self.state, settings.mode, settings.lock_timeout,
                              settings.keep, on_wait=lambda who: _say(
                                  f"pass waits for {who}"))
        except (NoDesiredState, UnusableDesiredState) as exc:
            return {"idle": str(exc), "unusable": isinstance(exc, UnusableDesiredState)}
        except Exception as exc:
            return {"error": f"{type(exc).__name__}: {exc}"}
        return {"report": report_json(report)}

    def _collect(self, selector: selectors.BaseSelector) -> None:
        current = self._pass
        if current is None:
            return
        chunk = os.read(current.pipe, 65536)
        if chunk:
            current.data += chunk
            return
        selector.unregister(current.pipe)
        os.close(current.pipe)
        _, status = os.waitpid(current.pid, 0)
        self._pass = None
        self._passes += 1
        self._finished(current, status)

    def _finished(self, current: _Pass, status: int) -> None:
        _, schedule = self._loop()
        try:
            result = json.loads(current.data or b"{}")
        except ValueError:
            result = {}
        previous = self._last
        failed = True
        if "report" in result:
            report = DriftReport.from_json(result["report"])
            self._last, self._generation = report, report.generation
            self._desired_error = next((str(e.get("error")) for e in report.failed
                                        if e.get("kind") == "Host"), None)
            # A refused desired state is reported, but the last good one passed: no backoff.
            failed = any(e.get("kind") != "Host" for e in report.failed)
            if report.noteworthy or previous is None or previous.noteworthy:
                _say(report.summary() + f" ({report.duration_s:.2f} s)")
        elif "idle" in result:
            if self._desired_error != result["idle"]:  # said once, not every interval
                _say(f"no pass: {result['idle']}")
            self._desired_error = str(result["idle"])
            failed = bool(result.get("unusable"))
        else:
            why = result.get("error") or (f"the pass died (signal {os.WTERMSIG(status)})"
                                          if os.WIFSIGNALED(status) else "the pass failed")
            _say(f"pass failed: {why}")
        self._wait = schedule.after(failed)
        self._due = time.monotonic() + self._wait
        if failed and schedule.failures > 1:
            _say(f"{schedule.failures} failed passes in a row: next in "
                 f"{self._due - time.monotonic():.0f} s")
        self._write_metrics()

    def _end_pass(self, selector: selectors.BaseSelector) -> None:
        """At stop: the pass in progress may finish within ``stop_timeout``."""
        current = self._pass
        if current is None or self.settings is None:
            return
        _say("waiting for the current pass to finish")
        deadline = time.monotonic() + self.settings.stop_timeout
        while self._pass is not None and time.monotonic() < deadline:
            for key, _ in selector.select(0.2):
                if key.data == "pass":
                    self._collect(selector)
        if self._pass is not None:
            _say("abandoning the current pass (the next start repairs what it left)")
            with contextlib.suppress(ProcessLookupError):
                os.kill(current.pid, signal.SIGKILL)
            os.waitpid(current.pid, 0)
            os.close(current.pipe)
            self._pass = None

    def _write_metrics(self, up: bool = True) -> None:
        if self.settings is None or self.settings.metrics_file is None:
            return
        failures = self._schedule.failures if self._schedule else 0
        try:
            write_metrics(self.settings.metrics_file, metrics_text(up, self._last, failures))
        except OSError as exc:
            _say(f"cannot write the metrics file: {exc}")

    # -- status -----------------------------------------------------------------------

    def status(self) -> LoopStatus:
        status = LoopStatus(running=True, state_dir=str(self.state.root), pid=os.getpid(),
                            started_at=self._started_at, passes=self._passes,
                            served=dict(self._served), last_pass=report_json(self._last),
                            generation=self._generation or stored_generation(self.state),
                            desired_error=self._desired_error)
        if self.settings is not None and self._schedule is not None:
            status.mode, status.interval = self.settings.mode, self.settings.interval
            status.failures_in_a_row = self._schedule.failures
            status.wait_s = round(self._wait, 3) if self._wait is not None else None
            if self._pass is None:
                wait = max(0.0, self._due - time.monotonic())
                status.next_pass_in_s = round(wait, 3)
                status.next_pass_at = _rfc3339(time.time() + wait)
        return status


def _rfc3339(unix: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(unix))
