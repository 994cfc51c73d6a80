"""Benchmark: the long-running agent (``agent run``): pushes to live loop agents, an idle
agent's footprint, and the cost of a pass that changes nothing.

    sudo .venv/bin/python tests/bench/bench_agent.py [--hosts 10 30] [--runs 3]
        [--skip-fleet] [--idle-minutes 10] [--skip-idle]

1. Fleet (tests.fleet, as tests/bench/bench_fleet.py, whose functions this reuses): per
   size, bootstrap and a converging apply, then the bootstrap's resident agents replaced
   by loop agents (``agent run --detach --interval 30``) and medians of an unchanged
   ``pyprov apply`` pushed to them (each host's ``served`` count must show the push went
   over the agent's socket), of the threaded paramiko floor, and of the same push with the
   agents stopped (pyprov-exec: an agent process per host and run). Ratios live/floor
   (target <= 1.2x) and live/exec.
2. Localhost: the repo's manifests/ applied into a temp state dir
   (/tmp/bench-agent-state), then ``agent run --interval 30`` (default splay) in the
   background, left idle for --idle-minutes: its RSS (VmRSS, sampled each second; VmHWM;
   Pss at the end; the forked pass children's VmRSS when a sample catches one) and its
   CPU (utime+stime+cutime+cstime from /proc/PID/stat: the reaped pass children
   included) over the window, which starts after the first pass and ends with no pass
   in progress. Targets: RSS <= 60 MB, CPU <= 0.5 % of one core.
3. A pass that changes nothing: the median ``last_pass.duration_s`` over the window's
   passes (read from STATE/reports/last.json as each pass ends, so that the window is
   not disturbed by requests; checked equal to what ``agent status`` reports at the
   end), and the median wall time of 5 cold ``agent run --once`` (after a warm-up).
   With --skip-idle, no footprint: an agent with --interval 2 --splay 0 gives 5 passes.

Asserts nothing about time; everything it started is stopped, and the fleet and the
temp state dir removed, also on Ctrl-C. Needs root. Not a pytest test.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # run as a script: tests.* lives in the checkout
    sys.path.insert(0, str(REPO))

from agent.loop.schedule import DEFAULT_SPLAY  # noqa: E402
from tests.bench.bench_fleet import (  # noqa: E402
    PY,
    _resident_agents,
    converge,
    timed,
)
from tests.fleet import Fleet  # noqa: E402

HOST_AGENT = "/opt/pyprov/bin/python -I -m agent"
LOOP_INTERVAL = 30.0
STATE = Path("/tmp/bench-agent-state")
RUN_LOG = Path("/tmp/bench-agent-run.log")
RSS_TARGET_MB = 60.0
CPU_TARGET_PCT = 0.5
FLOOR_TARGET = 1.2
ONCE_RUNS = 5
QUICK_PASSES = 5  # --skip-idle: passes of a fast loop, for the pass duration only
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
CLK_TCK = os.sysconf("SC_CLK_TCK")

Row = tuple[str, float, float, float]  # tool, median s, controller CPU s, machine CPU s


def say(text: str) -> None:
    print(text, flush=True)


# ---------------------------------------------------------------------------- 1. fleet


@dataclass
class FleetResult:
    hosts: int
    rows: list[Row] = field(default_factory=list)
    over_socket: int = 0          # hosts whose agent served every live push
    passes: int = 0               # loop passes the hosts' agents ran while pushes went on
    failures: list[str] = field(default_factory=list)

    def seconds(self, tool: str) -> float | None:
        return next((row[1] for row in self.rows if row[0] == tool), None)


def loop_agents(fleet: Fleet, running: bool) -> None:
    """``agent run --detach --interval 30`` (or ``--stop``) on every host; exit 0/2."""
    flag = f"--detach --interval {LOOP_INTERVAL:g}" if running else "--stop"
    for name in fleet.names:
        done = fleet.ssh(name, f"{HOST_AGENT} run {flag}", timeout=60)
        if done.returncode not in (0, 2):
            raise SystemExit(f"agent run {flag} failed on {name} (exit {done.returncode}): "
                             f"{done.stdout}{done.stderr}")


def host_statuses(fleet: Fleet) -> dict[str, dict[str, Any]]:
    statuses = {}
    for name in fleet.names:
        done = fleet.ssh(name, f"{HOST_AGENT} status --output json", timeout=60)
        if done.returncode != 0:
            raise SystemExit(f"agent status failed on {name} (exit {done.returncode}): "
                             f"{done.stdout}{done.stderr}")
        statuses[name] = json.loads(done.stdout)
    return statuses


def bench_fleet_size(n: int, runs: int) -> FleetResult:
    result = FleetResult(n)
    with tempfile.TemporaryDirectory(prefix="bench-agent-", dir="/dev/shm") as tmp:
        work = Path(tmp)
        say(f"  {n} hosts: creating the fleet, bootstrap, converging apply")
        fleet = Fleet.create(n, work / "fleet")
        try:
            every = converge(fleet, work)
            by_name = {tool[0]: tool for tool in every}
            pyprov, floor = by_name["pyprov"], by_name["paramiko"]
            say(f"  {n} hosts: resident agents replaced by loop agents "
                f"(agent run --detach --interval {LOOP_INTERVAL:g})")
            _resident_agents(fleet, running=False)
            loop_agents(fleet, running=True)
            before = host_statuses(fleet)
            for name, status in before.items():
                if not status.get("running") or status.get("mode") != "enforce" \
                        or status.get("interval") != LOOP_INTERVAL:
                    result.failures.append(f"{n} hosts: {name}: not a live enforce loop "
                                           f"every {LOOP_INTERVAL:g} s: {status}")
            say(f"  {n} hosts: pyprov-live: {' '.join(pyprov[1])}")
            result.rows.append(("pyprov-live", *timed(fleet, ("pyprov-live", *pyprov[1:]),
                                                      runs)))
            after = host_statuses(fleet)
            for name in fleet.names:
                old, new = before[name], after[name]
                pushed = new.get("served", {}).get("apply", 0) \
                    - old.get("served", {}).get("apply", 0)
                result.over_socket += pushed >= runs + 1  # the warm-up and each run
                if new.get("pid") != old.get("pid"):
                    result.failures.append(f"{n} hosts: {name}: the loop agent was "
                                           f"replaced ({old.get('pid')} -> {new.get('pid')})")
                result.passes += int(new.get("passes", 0)) - int(old.get("passes", 0))
                last = new.get("last_pass") or {}
                if last.get("failed") or new.get("failures_in_a_row"):
                    result.failures.append(f"{n} hosts: {name}: failed pass: "
                                           f"{last.get('failed')}")
            if result.over_socket != n:
                result.failures.append(f"{n} hosts: only {result.over_socket}/{n} loop agents "
                                       f"served every push over their socket")
            say(f"  {n} hosts: paramiko floor (loop agents live)")
            result.rows.append(("paramiko", *timed(fleet, floor, runs)))
            say(f"  {n} hosts: pyprov-exec (loop agents stopped)")
            loop_agents(fleet, running=False)
            result.rows.append(("pyprov-exec", *timed(fleet, ("pyprov-exec", *pyprov[1:]),
                                                      runs)))
        finally:
            with contextlib.suppress(Exception, SystemExit):
                loop_agents(fleet, running=False)  # stopped cleanly before the teardown
            fleet.destroy()
    return result


# ---------------------------------------------------------------------- 2./3. localhost


@dataclass
class Localhost:
    idle: bool
    window_s: float = 0.0
    cpu_s: float = 0.0
    own_cpu_s: float = 0.0           # this sampler's, for what it disturbed
    rss_kib: list[int] = field(default_factory=list)
    hwm_kib: int = 0
    pss_kib: int = 0
    child_rss_kib: list[int] = field(default_factory=list)
    children: set[int] = field(default_factory=set)
    passes_window: int = 0
    passes_total: int = 0
    durations: list[float] = field(default_factory=list)
    status_duration: float | None = None
    once_walls: list[float] = field(default_factory=list)
    once_durations: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def local_env() -> dict[str, str]:
    return {**os.environ, "PYPROV_STATE_DIR": str(STATE)}


def agent_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PY, "-I", "-m", "agent", *args], env=local_env(), cwd="/",
                          capture_output=True, text=True, timeout=timeout, check=False)


def local_status() -> dict[str, Any]:
    done = agent_cli("status", "--output", "json")
    if done.returncode != 0:
        raise SystemExit(f"agent status failed ({done.returncode}): {done.stderr}")
    status: dict[str, Any] = json.loads(done.stdout)
    return status


def store_desired_state() -> None:
    """A fresh state dir with the repo's manifests/ applied into it (agent apply)."""
    stop_local_agent()
    shutil.rmtree(STATE, ignore_errors=True)
    rendered = subprocess.run([PY, "-m", "controller", "render", "manifests/"], cwd=REPO,
                              capture_output=True, text=True, check=False)
    if rendered.returncode != 0:
        raise SystemExit(f"controller render failed: {rendered.stderr}")
    with tempfile.NamedTemporaryFile("w", prefix="bench-agent-desired-", suffix=".json",
                                     dir="/tmp") as desired:
        desired.write(rendered.stdout)
        desired.flush()
        done = agent_cli("apply", "--input", desired.name)
    if done.returncode not in (0, 2):
        raise SystemExit(f"agent apply failed ({done.returncode}): {done.stdout}{done.stderr}")


def stop_local_agent() -> subprocess.CompletedProcess[str]:
    return agent_cli("run", "--stop", timeout=60)


def proc_status(pid: int) -> dict[str, int]:
    """The kB fields of /proc/PID/status (VmRSS, VmHWM...); {} once it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    fields = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if value.strip().endswith(" kB"):
            fields[key] = int(value.split()[0])
    return fields


def pss_kib(pid: int) -> int:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """utime + stime + cutime + cstime (fields 14-17): the process and its reaped children."""
    rest = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(value) for value in rest[11:15]) / CLK_TCK


def children_of(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def last_report() -> dict[str, Any] | None:
    try:
        report: dict[str, Any] = json.loads((STATE / "reports" / "last.json").read_text())
    except (OSError, ValueError):
        return None
    return report


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextlib.contextmanager
def local_agent(interval: float, splay: float | None) -> Iterator[subprocess.Popen[bytes]]:
    """``agent run --interval S`` in the background (its own session: a Ctrl-C reaches it
    through us), stopped with ``agent run --stop`` at the end, killed if that fails."""
    argv = [PY, "-I", "-m", "agent", "run", "--interval", f"{interval:g}"]
    argv += ["--splay", f"{splay:g}"] if splay is not None else []
    with RUN_LOG.open("wb") as log:
        proc = subprocess.Popen(argv, env=local_env(), cwd="/", stdin=subprocess.DEVNULL,
                                stdout=log, stderr=log, start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            with contextlib.suppress(Exception):
                stop_local_agent()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_first_pass(proc: subprocess.Popen[bytes], timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"agent run exited ({proc.returncode}) at start: see {RUN_LOG}")
        if (STATE / "agent.sock").exists():
            status = local_status()
            if status.get("passes", 0) >= 1 and not children_of(proc.pid):
                return status
        time.sleep(0.5)
    raise SystemExit(f"agent run: no pass in {timeout:.0f} s: see {RUN_LOG}")


def watch(result: Localhost, proc: subprocess.Popen[bytes], seconds: float,
          schedule: tuple[float, float], passes: int | None = None) -> None:
    """Sample until ``seconds`` passed (or ``passes`` more passes ended), then until no
    pass is in progress: the agent's RSS and last.json each second (and as a pass child is
    seen to end); its pass children each 10 ms, but only around when a pass is due (the
    ``(interval, splay)`` after the last one ended), so that the sampler stays quiet."""
    pid, (interval, splay) = proc.pid, schedule
    seen = {str((last_report() or {}).get("started_at"))}
    started = time.monotonic()
    end, next_slow, was_busy, last_end = started + seconds, 0.0, False, started
    while True:
        now = time.monotonic()
        due_from = last_end + interval - 1.5
        due = due_from <= now <= last_end + interval * (1 + splay) + 1.5
        done = len(result.durations) >= passes if passes is not None else now >= end
        busy = children_of(pid) if due or was_busy or done or now >= next_slow else []
        for child in busy:
            rss = proc_status(child).get("VmRSS")
            if rss:
                result.child_rss_kib.append(rss)
                result.children.add(child)
        if now >= next_slow or (was_busy and not busy):  # a pass just ended, maybe
            if proc.poll() is not None:
                raise SystemExit(f"agent run died ({proc.returncode}): see {RUN_LOG}")
            report = last_report()
            if report is not None and str(report.get("started_at")) not in seen:
                seen.add(str(report.get("started_at")))
                last_end = now
                result.durations.append(float(report["duration_s"]))
                if report.get("failed") or report.get("repaired") or report.get("drift"):
                    result.failures.append(f"localhost: a pass was not a no-op: {report}")
        if now >= next_slow:
            next_slow = now + 1.0
            fields = proc_status(pid)
            result.rss_kib.append(fields.get("VmRSS", 0))
            result.hwm_kib = max(result.hwm_kib, fields.get("VmHWM", 0))
        was_busy = bool(busy)
        if done and not busy:
            return
        if now > end + 600:
            raise SystemExit("localhost: a pass has been in progress for 10 minutes")
        wake = min(next_slow, due_from if due_from > now else next_slow, end if not done
                   else next_slow)
        time.sleep(0.01 if due or busy or done else max(0.01, wake - time.monotonic()))


def bench_localhost(idle_minutes: float, skip_idle: bool) -> Localhost:
    result = Localhost(idle=not skip_idle)
    store_desired_state()
    try:
        interval, splay = (LOOP_INTERVAL, None) if not skip_idle else (2.0, 0.0)
        schedule = (interval, DEFAULT_SPLAY if splay is None else splay)
        say(f"  localhost: agent run --interval {interval:g}"
            + (f" --splay {splay:g}" if splay is not None else "") + f", state {STATE}")
        with local_agent(interval, splay) as proc:
            first = wait_first_pass(proc)
            if skip_idle:
                watch(result, proc, 0, schedule, passes=QUICK_PASSES)
            else:
                say(f"  localhost: idle window of {idle_minutes:g} min (pid {proc.pid})")
                mine, cpu, clock = own_cpu(), cpu_seconds(proc.pid), time.monotonic()
                watch(result, proc, idle_minutes * 60, schedule)
                result.cpu_s = cpu_seconds(proc.pid) - cpu
                result.window_s = time.monotonic() - clock
                result.own_cpu_s = own_cpu() - mine
            result.pss_kib = pss_kib(proc.pid)
            status = local_status()
            result.passes_total = int(status.get("passes", 0))
            result.passes_window = result.passes_total - int(first.get("passes", 0))
            last = status.get("last_pass") or {}
            result.status_duration = last.get("duration_s")
            if result.durations and result.status_duration != result.durations[-1]:
                result.failures.append(
                    f"localhost: status last_pass.duration_s {result.status_duration} != "
                    f"the last pass's report {result.durations[-1]}")
            if result.passes_window != len(result.durations):
                result.failures.append(
                    f"localhost: status counted {result.passes_window} passes in the window, "
                    f"reports/last.json showed {len(result.durations)}")
            stopped = stop_local_agent()
            if stopped.returncode != 2 or '"changed": true' not in stopped.stdout:
                result.failures.append(f"localhost: agent run --stop answered "
                                       f"{stopped.returncode}: {stopped.stdout.strip()}")
            code = proc.wait(timeout=60)
            if code != 0:
                result.failures.append(f"localhost: agent run exited {code} at --stop")
        if (STATE / "agent.sock").exists():
            result.failures.append("localhost: agent.sock left after the agent stopped")
        say(f"  localhost: agent run --once, a warm-up and {ONCE_RUNS} runs")
        for run in range(ONCE_RUNS + 1):
            clock = time.perf_counter()
            done = agent_cli("run", "--once")
            wall = time.perf_counter() - clock
            if done.returncode != 0 or "in sync" not in done.stdout:
                raise SystemExit(f"agent run --once: not an unchanged pass "
                                 f"({done.returncode}): {done.stdout}{done.stderr}")
            if run:
                result.once_walls.append(wall)
                result.once_durations.append(float((last_report() or {})["duration_s"]))
    finally:
        with contextlib.suppress(Exception):
            stop_local_agent()
        shutil.rmtree(STATE, ignore_errors=True)
    return result


# ------------------------------------------------------------------------------ report


def mib(kib: float) -> str:
    return f"{kib / 1024:.1f} MiB ({kib * 1024 / 1e6:.1f} MB)"


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def report(fleets: list[FleetResult], local: Localhost | None, runs: int,
           load: float) -> None:
    lines: list[tuple[str, str, str]] = []  # figure, value, target (and verdict)
    for fleet in fleets:
        n = fleet.hosts
        live, floor, exec_ = (fleet.seconds(t) for t in ("pyprov-live", "paramiko",
                                                         "pyprov-exec"))
        for tool, seconds, cpu, machine in fleet.rows:
            lines.append((f"push {n} hosts: {tool} (median of {runs}, s)",
                          f"{seconds:.3f}", f"ctl CPU {cpu * 1000 / n:.1f} ms/host, "
                          f"machine CPU {machine:.2f} s"))
        if live and floor:
            ratio = live / floor
            lines.append((f"push {n} hosts: live / floor", f"{ratio:.2f}x",
                          f"<= {FLOOR_TARGET}x: {verdict(ratio <= FLOOR_TARGET)}"))
        if live and exec_:
            lines.append((f"push {n} hosts: live / exec", f"{live / exec_:.2f}x", ""))
        lines.append((f"push {n} hosts: agents that served every push", f"{fleet.over_socket}"
                      f"/{n}", f"({fleet.passes} loop passes ran meanwhile)"))
    if local is not None:
        if local.idle:
            rss = max(local.rss_kib, default=0)
            lines += [
                (f"idle agent RSS, last sample ({len(local.rss_kib)} samples)",
                 mib(local.rss_kib[-1] if local.rss_kib else 0), ""),
                ("idle agent RSS, max of samples / VmHWM", f"{mib(rss)} / {mib(local.hwm_kib)}",
                 f"<= {RSS_TARGET_MB:g} MB: "
                 f"{verdict(max(rss, local.hwm_kib) * 1024 / 1e6 <= RSS_TARGET_MB)}"),
                ("idle agent Pss at the end", mib(local.pss_kib), ""),
                ("pass child VmRSS, max of samples",
                 mib(max(local.child_rss_kib)) if local.child_rss_kib else "not caught",
                 f"{len(local.children)} of {local.passes_window} passes caught"),
                (f"idle agent CPU over {local.window_s:.0f} s (agent + reaped passes)",
                 f"{local.cpu_s / local.window_s * 100:.3f} % of one core"
                 f" ({local.cpu_s:.2f} s)",
                 f"<= {CPU_TARGET_PCT} %: "
                 f"{verdict(local.cpu_s / local.window_s * 100 <= CPU_TARGET_PCT)}"),
                ("  (this sampler's own CPU meanwhile)",
                 f"{local.own_cpu_s / local.window_s * 100:.3f} %", ""),
            ]
        lines.append(("passes: in the window / total (agent status)",
                      f"{local.passes_window} / {local.passes_total}",
                      "interval 30 s, default splay" if local.idle
                      else "--skip-idle: interval 2 s, no splay"))
        if local.durations:
            lines.append((f"no-op pass: last_pass.duration_s, median of "
                          f"{len(local.durations)}",
                          f"{statistics.median(local.durations) * 1000:.1f} ms",
                          f"min {min(local.durations) * 1000:.1f}, "
                          f"max {max(local.durations) * 1000:.1f} ms"))
        if local.once_walls:
            lines += [
                (f"agent run --once, wall, median of {len(local.once_walls)}",
                 f"{statistics.median(local.once_walls) * 1000:.0f} ms", "cold process"),
                ("agent run --once: its pass's duration_s, median",
                 f"{statistics.median(local.once_durations) * 1000:.1f} ms", ""),
            ]
    lines.append(("load average (1 min) before / after",
                  f"{load:.2f} / {os.getloadavg()[0]:.2f}", f"{os.cpu_count()} CPUs"))
    width = max(len(line[0]) for line in lines)
    value_width = max(len(line[1]) for line in lines)
    say("\n" + f"{'figure':<{width}}  {'value':<{value_width}}  target / notes")
    say("-" * (width + value_width + 30))
    for figure, value, note in lines:
        say(f"{figure:<{width}}  {value:<{value_width}}  {note}".rstrip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, nargs="+", default=[10, 30])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-fleet", action="store_true")
    parser.add_argument("--idle-minutes", type=float, default=10.0)
    parser.add_argument("--skip-idle", action="store_true",
                        help="no idle window (pass durations from a 2 s loop instead)")
    args = parser.parse_args()

    def interrupted(_signum: int, _frame: FrameType | None) -> NoReturn:
        for signum in SIGNALS:  # the clean-up must not be interrupted in turn
            signal.signal(signum, signal.SIG_IGN)
        raise KeyboardInterrupt

    for signum in SIGNALS:
        signal.signal(signum, interrupted)  # `finally` blocks stop and remove everything
    load = os.getloadavg()[0]
    failures: list[str] = []
    try:
        run_all(args, failures, load)
    finally:
        if not failures:
            RUN_LOG.unlink(missing_ok=True)


def run_all(args: argparse.Namespace, failures: list[str], load: float) -> None:
    local, fleets = None, []
    try:
        say("localhost: the idle agent and the no-op pass")
        local = bench_localhost(args.idle_minutes, args.skip_idle)
        failures += local.failures
    except (Exception, SystemExit) as error:
        failures.append(f"localhost: {error}")
    if not args.skip_fleet:
        for n in args.hosts:
            say(f"fleet of {n}: pushes to live loop agents")
            try:
                fleet = bench_fleet_size(n, args.runs)
            except (Exception, SystemExit) as error:
                failures.append(f"{n} hosts: {error}")
                continue
            fleets.append(fleet)
            failures += fleet.failures
    report(fleets, local, args.runs, load)
    if failures:
        say("\nproblems:\n  " + "\n  ".join(failures)
            + (f"\n(the localhost agent's log: {RUN_LOG})" if RUN_LOG.exists() else ""))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
