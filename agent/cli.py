"""The agent CLI: ``pyprov agent apply`` reads desired state (JSON) on stdin and
writes one JSON event per line on stdout; the exit code is Puppet's detailed one.

    pyprov agent version            -> {"version": ..., "protocol": N, "build": ...}
    pyprov agent apply [--check] [--diff] [--force] [--state-dir DIR] < desired.json
    pyprov agent serve [--state-dir DIR]   resident: the same, per request on a unix socket
    pyprov agent serve --detach | --stop   start (or replace) / stop it, idempotently
    pyprov agent run [--mode enforce|report] [--interval S] [--once] [--detach|--stop]
                                    the agent on its own: serve, and pass over the stored
                                    desired state every interval (a reconcile loop)
    pyprov agent status [--output text|json]
                                    running or not, mode, last and next pass, drift
    pyprov agent check [--keep N] [--output text|json]
                                    drift against the stored desired state, for cron:
                                    changes nothing, writes a report, exits 0/2/4
    pyprov agent setup --agent loop|serve|none [--drift-cron SCHEDULE] ...
                                    the systemd unit and drift cron entry (bootstrap)
    pyprov agent pull|push|tag|images|rmi|inspect|save|load|login|logout|catalog ...
                                    the host's image store and registries, docker-like
    pyprov agent container run|ps|logs|exec|stop|start|restart|rm|port|top ...
                                    the host's containers, docker-like (``pyprov run``)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from functools import cache
from pathlib import Path
from typing import Any, NoReturn, TextIO

from agent.drift import DEFAULT_KEEP
from agent.errors import PyprovError
from agent.fsutil.atomic import write_if_changed
from agent.logsetup import configure
from agent.loop.passes import host_context, run_pass, say_waiting
from agent.loop.runner import DEFAULT_LOCK_TIMEOUT, DEFAULT_STOP_TIMEOUT, LoopSettings, live
from agent.loop.schedule import DEFAULT_INTERVAL, DEFAULT_MAX_BACKOFF, DEFAULT_SPLAY
from agent.loop.stored import NoDesiredState, UnusableDesiredState, parse_desired
from agent.model import DesiredState, Event, exit_code
from agent.model.constants import EXIT_FAILED
from agent.process import leave_for_callers_directory
from agent.reconcile.actions import Options
from agent.reconcile.engine import reconcile
from agent.reconcile.lock import host_lock
from agent.resident import ensure, identity
from agent.resources import handlers
from agent.state import StateDir, resolve_state_dir


class _Parser(argparse.ArgumentParser):
    """Usage errors exit 4 (failure), never 2, which means "changed" to the controller."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_FAILED, f"{self.prog}: error: {message}\n")


@cache
def _parser() -> argparse.ArgumentParser:
    """Built once per process: the resident agent parses every request with it."""
    parser = _Parser(prog="pyprov agent", description=__doc__,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("version", help="print the agent version and protocol as JSON")
    serve = sub.add_parser("serve", help="stay resident: answer apply requests on a unix "
                           "socket in the state dir (no interpreter start per run)")
    serve.add_argument("--state-dir", help="default $PYPROV_STATE_DIR or /var/lib/pyprov")
    detach = serve.add_mutually_exclusive_group()
    detach.add_argument("--detach", action="store_true", help="make a resident agent of "
                        "this build run, in the background (replacing one of another build)")
    detach.add_argument("--stop", action="store_true", help="stop the resident agent")
    apply = sub.add_parser("apply", help="reconcile this host to the desired state on stdin")
    apply.add_argument("--check", action="store_true", help="plan only; change nothing")
    apply.add_argument("--diff", action="store_true", help="include unified diffs in events")
    apply.add_argument("--force", action="store_true",
                       help="replace files pyprov cannot parse (a backup is kept)")
    apply.add_argument("--state-dir", help="default $PYPROV_STATE_DIR or /var/lib/pyprov")
    apply.add_argument("--lock-timeout", type=float, default=DEFAULT_LOCK_TIMEOUT,
                       help="seconds to wait for another pass on this host (default 300)")
    apply.add_argument("--input", type=Path, help="desired state file (default: stdin)")
    apply.add_argument("-v", "--verbose", action="count", default=0)
    apply.add_argument("--log-format", choices=("auto", "console", "json"), default="auto",
                       help="stderr logs: console on a terminal, JSON lines otherwise (auto)")
    check = sub.add_parser("check", help="compare this host with the desired state the last "
                           "apply stored; change nothing; write a drift report (cron)")
    check.add_argument("--state-dir", help="default $PYPROV_STATE_DIR or /var/lib/pyprov")
    check.add_argument("--lock-timeout", type=float, default=DEFAULT_LOCK_TIMEOUT)
    check.add_argument("--keep", type=int, default=DEFAULT_KEEP,
                       help=f"reports kept in STATE/reports (default {DEFAULT_KEEP})")
    check.add_argument("--output", choices=("text", "json"), default="text",
                       help="a one-line summary (cron mails it) or the whole report")
    check.add_argument("--metrics-file", type=Path, help="also write a Prometheus textfile "
                       "(node_exporter's textfile collector: a path ending in .prom)")
    check.add_argument("--quiet", action="store_true",
                       help="print nothing when in sync (cron mails only drift and failures)")
    check.add_argument("--random-delay", type=int, default=0, metavar="SECONDS",
                       help="first wait a random 0..SECONDS (a fleet's crons spread out)")
    setup = sub.add_parser("setup", help="install the agent's systemd unit and drift cron "
                           "entry as asked, remove them when not (pyprov bootstrap runs it)")
    setup.add_argument("--state-dir", help="default $PYPROV_STATE_DIR or /var/lib/pyprov")
    setup.add_argument("--agent", choices=("loop", "serve", "none"), required=True,
                       help="loop: agent run; serve: resident server only; none: no agent")
    setup.add_argument("--mode", choices=("enforce", "report"), default="enforce")
    setup.add_argument("--interval", type=_positive, default=DEFAULT_INTERVAL)
    setup.add_argument("--drift-cron", metavar="SCHEDULE",
                       help="a cron schedule for agent check (none: no cron entry)")
    setup.add_argument("--drift-delay", type=int, default=300, metavar="SECONDS",
                       help="the drift check's random delay (default 300)")
    setup.add_argument("--systemd-dir", type=Path, default=None, help=argparse.SUPPRESS)
    setup.add_argument("--cron-dir", type=Path, default=None, help=argparse.SUPPRESS)
    _add_run_parser(sub)
    status = sub.add_parser("status", help="the agent: running or not, mode, last and next "
                            "pass, drift, desired-state generation")
    status.add_argument("--state-dir", help="default $PYPROV_STATE_DIR or /var/lib/pyprov")
    status.add_argument("--output", choices=("text", "json"), default="text")
    from agent.images import cli as images_cli

    images_cli.register(sub)
    return parser


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0, not {text}")
    return value


def _add_run_parser(sub: Any) -> None:
    run = sub.add_parser("run", help="the agent on its own: serve requests, and reconcile "
                         "to the stored desired state in a loop")
    run.add_argument("--state-dir", help="default $PYPROV_STATE_DIR or /var/lib/pyprov")
    run.add_argument("--mode", choices=("enforce", "report"), default="enforce",
                     help="enforce: repair drift (default); report: only record it")
    run.add_argument("--interval", type=_positive, default=DEFAULT_INTERVAL,
                     help=f"seconds between passes (default {DEFAULT_INTERVAL:g})")
    run.add_argument("--splay", type=float, default=DEFAULT_SPLAY,
                     help="a random delay of up to this fraction of the interval per pass "
                     f"(default {DEFAULT_SPLAY:g})")
    run.add_argument("--max-backoff", type=_positive, default=DEFAULT_MAX_BACKOFF,
                     help="the longest wait between failing passes, in seconds "
                     f"(default {DEFAULT_MAX_BACKOFF:g})")
    run.add_argument("--keep", type=int, default=DEFAULT_KEEP,
                     help=f"reports kept in STATE/reports (default {DEFAULT_KEEP})")
    run.add_argument("--lock-timeout", type=float, default=DEFAULT_LOCK_TIMEOUT)
    run.add_argument("--stop-timeout", type=float, default=DEFAULT_STOP_TIMEOUT,
                     help="at SIGTERM, seconds the current pass may take to finish "
                     f"(default {DEFAULT_STOP_TIMEOUT:g})")
    run.add_argument("--metrics-file", type=Path, help="a Prometheus textfile written "
                     "after every pass (node_exporter's textfile collector)")
    how = run.add_mutually_exclusive_group()
    how.add_argument("--once", action="store_true",
                     help="one pass in the foreground, no server; its exit code")
    how.add_argument("--detach", action="store_true", help="make an agent of this build "
                     "and these settings run, in the background (replacing another)")
    how.add_argument("--stop", action="store_true", help="stop the running agent")


def _loop_settings(args: argparse.Namespace) -> LoopSettings:
    return LoopSettings(mode=args.mode, interval=args.interval, splay=args.splay,
                        max_backoff=args.max_backoff, keep=args.keep,
                        lock_timeout=args.lock_timeout, stop_timeout=args.stop_timeout,
                        metrics_file=args.metrics_file.absolute() if args.metrics_file
                        else None)


def _emit(event: Event, out: TextIO) -> None:
    out.write(event.model_dump_json(exclude_defaults=True) + "\n")
    out.flush()


def run_pass_once(args: argparse.Namespace, mode: str, out: TextIO) -> int:
    """``agent check`` and ``agent run --once``: one pass over the stored desired state."""
    state = StateDir(resolve_state_dir(args.state_dir))
    if getattr(args, "random_delay", 0) > 0:
        import random
        import time

        time.sleep(random.uniform(0, args.random_delay))  # noqa: S311 - a spread, not a secret
    try:
        report = run_pass(state, mode, args.lock_timeout, args.keep)
    except (NoDesiredState, UnusableDesiredState) as exc:
        print(f"pyprov agent {args.command}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.metrics_file:
        from agent.loop.status import metrics_text, write_metrics

        write_metrics(args.metrics_file, metrics_text(False, report, 0))
    for entry in report.failed:  # a refused desired state, a resource that failed: why
        print(f"pyprov agent {args.command}: {entry['kind']}/{entry['name']}: "
              f"{entry['error']}",
              file=sys.stderr)
    if getattr(args, "output", "text") == "json":
        out.write(report.to_json().decode())
    elif report.exit_code or not getattr(args, "quiet", False):
        out.write(report.summary() + "\n")
    return report.exit_code


def run_setup(args: argparse.Namespace, out: TextIO) -> int:
    import socket

    from agent.loop import install

    plan = install.ServicePlan(
        agent=args.agent, loop=LoopSettings(mode=args.mode, interval=args.interval),
        drift_cron=args.drift_cron, drift_delay=max(0, args.drift_delay),
        state=StateDir(resolve_state_dir(args.state_dir)),
        systemd_dir=args.systemd_dir or install.SYSTEMD_DIR,
        cron_dir=args.cron_dir or install.CRON_DIR)
    return install.setup(plan, socket.gethostname(), out)


def run_status(args: argparse.Namespace, out: TextIO) -> int:
    """``agent status``: the live agent's own view, else what the last pass left."""
    from agent.loop.status import LoopStatus, from_files

    state = StateDir(resolve_state_dir(args.state_dir))
    runner = live()
    status = runner.status() if runner is not None else None
    if status is None:
        from agent.resident import ask

        answer = ask(state, ["status", "--output", "json"])
        status = LoopStatus(**answer) if answer else from_files(state)
    out.write(json.dumps(status.as_json(), indent=2) + "\n" if args.output == "json"
              else status.text())
    return 0


def run_apply(args: argparse.Namespace, desired: DesiredState, out: TextIO) -> int:
    state = StateDir(resolve_state_dir(args.state_dir))
    options = Options(check=args.check, diff=args.diff, force=args.force)
    ctx = host_context(desired, state)
    changed = failed = False
    if not args.check:
        state.ensure()
    # Check mode on a host pyprov never touched must not even create the state dir.
    lock = (host_lock(state.lock, args.lock_timeout, on_wait=say_waiting, shared=args.check)
            if not args.check or state.root.exists() else contextlib.nullcontext())
    with lock:
        if not args.check:  # the last desired state, for the loop and drift checks
            stored = desired.model_dump_json(indent=2).encode()
            for path in (state.desired, state.desired_good):  # validated: a good one
                write_if_changed(path, stored, mode=0o600, dir_mode=0o700)
        for event in reconcile(list(desired.documents), handlers(), ctx, options):
            _emit(event, out)
            changed |= event.changed
            failed |= event.failed
    return exit_code(changed, failed)


def _serve(args: argparse.Namespace, stdout: TextIO) -> int:
    """``agent serve`` (no loop) and ``agent run``: the resident agent's process."""
    state = StateDir(resolve_state_dir(args.state_dir))
    settings = _loop_settings(args) if args.command == "run" else None
    if args.detach or args.stop:
        return ensure(state, want=args.detach,
                      command=settings.argv() if settings else None,
                      loop=settings.identity() if settings else None).write(stdout)
    from agent.loop.runner import Runner

    identity()  # the build this process runs, read before anything is installed over it
    handlers()  # import every resource now: the first request must not pay for it
    from agent.workers import warm_up

    warm_up()  # and what the host commands' workers need
    from agent.runtime.engine import Runtime

    for name in Runtime(state).restore():  # dockerd's restart at boot
        print(f"pyprov agent: restarted container {name}", file=sys.stderr, flush=True)
    return Runner(state, settings, run).run()


def _version(stdout: TextIO) -> int:
    runner = live()  # a running agent also names its loop settings
    loop = runner.settings.identity() if runner and runner.settings else None
    stdout.write(json.dumps({**identity(), "loop": loop} if runner else identity()) + "\n")
    return 0


def _agent_command(args: argparse.Namespace, stdout: TextIO) -> int:
    """The agent's own commands but ``apply``: version, serve, run, check, status."""
    if args.command == "version":
        return _version(stdout)
    if args.command == "serve" or (args.command == "run" and not args.once):
        return _serve(args, stdout)
    if args.command == "status":
        return run_status(args, stdout)
    if args.command == "setup":
        return run_setup(args, stdout)
    configure(0, None)
    return run_pass_once(args, "check" if args.command == "check" else args.mode, stdout)


def run(argv: list[str], stdin: TextIO, stdout: TextIO) -> int:
    """One CLI invocation on the given streams: from ``main``, or per request when served."""
    args = _parser().parse_args(argv)
    from agent.images import cli as images_cli

    if args.command in images_cli.COMMANDS:
        return images_cli.run(args, stdin, stdout)
    if args.command != "apply":
        return _agent_command(args, stdout)
    configure(args.verbose, {"auto": None, "console": False, "json": True}[args.log_format])
    host = "localhost"  # until the desired state names the host
    try:
        with (args.input.open() if args.input else contextlib.nullcontext(stdin)) as source:
            desired = parse_desired(source.read())
        host = desired.host
        return run_apply(args, desired, stdout)
    except (PyprovError, OSError, ValueError) as exc:
        # ValueError covers malformed JSON and pydantic's ValidationError.
        error = str(exc)
    except Exception as exc:  # the outermost boundary: report it, never a traceback
        error = f"internal error: {type(exc).__name__}: {exc}"
    _emit(Event(host=host, kind="Host", name="agent", failed=True,
                summary="agent error", error=error), stdout)
    return EXIT_FAILED


def main(argv: list[str] | None = None) -> int:
    leave_for_callers_directory()
    return run(sys.argv[1:] if argv is None else argv, sys.stdin, sys.stdout)
