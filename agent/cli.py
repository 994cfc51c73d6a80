"""The agent CLI: ``pyprov agent apply`` reads desired state (JSON) on stdin and
writes one JSON event per line on stdout; the exit code is Puppet's detailed one.

    pyprov agent version            -> {"version": ..., "protocol": N, "build": ...}
    pyprov agent apply [--check] [--diff] [--force] [--state-dir DIR] < desired.json
    pyprov agent serve [--state-dir DIR]   resident: the same, per request on a unix socket
    pyprov agent serve --detach | --stop   start (or replace) / stop it, idempotently
    pyprov agent check [--keep N] [--output text|json]
                                    drift against the stored desired state, for cron:
                                    changes nothing, writes a report, exits 0/2/4
    pyprov agent pull|push|tag|images|rmi|inspect|save|load|login|logout|catalog ...
                                    the host's image store and registries, docker-like
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import time
from functools import cache
from pathlib import Path
from typing import NoReturn, TextIO

from agent.drift import DEFAULT_KEEP, build_report, generation, store_report
from agent.errors import ProtocolError, PyprovError
from agent.fsutil.atomic import write_if_changed
from agent.logsetup import configure
from agent.model import PROTOCOL_VERSION, DaemonConfig, DesiredState, Event, exit_code
from agent.model.constants import EXIT_FAILED
from agent.process import leave_for_callers_directory
from agent.reconcile.actions import Options
from agent.reconcile.engine import reconcile
from agent.reconcile.handler import DAEMON_JSON, HostContext
from agent.reconcile.lock import host_lock
from agent.resident import ensure, identity
from agent.resources import handlers
from agent.state import StateDir, resolve_state_dir
from agent.textfmt import now_rfc3339

DEFAULT_LOCK_TIMEOUT = 300.0



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
    from agent.images import cli as images_cli

    images_cli.register(sub)
    return parser


def _emit(event: Event, out: TextIO) -> None:
    out.write(event.model_dump_json(exclude_defaults=True) + "\n")
    out.flush()


def read_desired(stream: TextIO) -> DesiredState:
    """Re-validate what the controller sent; a protocol mismatch is its own error."""
    raw = json.load(stream)
    if not isinstance(raw, dict) or raw.get("protocol") != PROTOCOL_VERSION:
        got = raw.get("protocol") if isinstance(raw, dict) else None
        raise ProtocolError(got, PROTOCOL_VERSION)
    return DesiredState.model_validate(raw)


def _say_waiting(holder: str) -> None:
    print(f"pyprov: waiting for {holder} to finish", file=sys.stderr, flush=True)


def _context(desired: DesiredState, state: StateDir) -> HostContext:
    daemon_json = next((Path(doc.path) for doc in desired.documents
                        if isinstance(doc, DaemonConfig)), DAEMON_JSON)
    return HostContext(host=desired.host, state=state, daemon_json=daemon_json)


def run_check(args: argparse.Namespace, out: TextIO) -> int:
    """``agent check``: the stored desired state against the host, in check mode."""
    state = StateDir(resolve_state_dir(args.state_dir))
    try:
        raw = state.desired.read_bytes()
        desired = read_desired(io.StringIO(raw.decode("utf-8", "replace")))
    except FileNotFoundError:
        print(f"pyprov check: no desired state in {state.desired}: nothing was ever applied "
              "here (run pyprov apply first)", file=sys.stderr)
        return EXIT_FAILED
    except (ProtocolError, ValueError) as exc:
        print(f"pyprov check: the stored desired state {state.desired} is unusable: {exc}",
              file=sys.stderr)
        return EXIT_FAILED
    started, clock = now_rfc3339(), time.monotonic()
    with host_lock(state.lock, args.lock_timeout, on_wait=_say_waiting, shared=True):
        events = list(reconcile(list(desired.documents), handlers(), _context(desired, state),
                                Options(check=True)))
    report = build_report(desired.host, started, time.monotonic() - clock, generation(raw),
                          events)
    store_report(state.reports, report, args.keep)
    out.write(report.to_json().decode() if args.output == "json" else report.summary() + "\n")
    return report.exit_code


def run_apply(args: argparse.Namespace, desired: DesiredState, out: TextIO) -> int:
    state = StateDir(resolve_state_dir(args.state_dir))
    options = Options(check=args.check, diff=args.diff, force=args.force)
    ctx = _context(desired, state)
    changed = failed = False
    if not args.check:
        state.ensure()
    # Check mode on a host pyprov never touched must not even create the state dir.
    lock = (host_lock(state.lock, args.lock_timeout, on_wait=_say_waiting, shared=args.check)
            if not args.check or state.root.exists() else contextlib.nullcontext())
    with lock:
        if not args.check:  # the last desired state, for the loop and drift checks
            write_if_changed(state.desired, desired.model_dump_json(indent=2).encode(),
                             mode=0o600, dir_mode=0o700)
        for event in reconcile(list(desired.documents), handlers(), ctx, options):
            _emit(event, out)
            changed |= event.changed
            failed |= event.failed
    return exit_code(changed, failed)


def _serve(args: argparse.Namespace, stdout: TextIO) -> int:
    state = StateDir(resolve_state_dir(args.state_dir))
    if args.detach or args.stop:
        return ensure(state, want=args.detach, out=stdout)
    from agent.server import serve

    identity()  # the build this process runs, read before anything is installed over it
    handlers()  # import every resource now: the first request must not pay for it
    from agent.workers import warm_up

    warm_up()  # and what the host commands' workers need
    from agent.runtime.engine import Runtime

    for name in Runtime(state).restore():  # dockerd's restart at boot
        print(f"pyprov agent: restarted container {name}", file=sys.stderr, flush=True)
    serve(state, run)
    return 0


def run(argv: list[str], stdin: TextIO, stdout: TextIO) -> int:
    """One CLI invocation on the given streams: from ``main``, or per request when served."""
    args = _parser().parse_args(argv)
    from agent.images import cli as images_cli

    if args.command in images_cli.COMMANDS:
        return images_cli.run(args, stdin, stdout)
    if args.command == "version":
        stdout.write(json.dumps(identity()) + "\n")
        return 0
    if args.command == "serve":
        return _serve(args, stdout)
    if args.command == "check":
        configure(0, None)
        return run_check(args, stdout)
    configure(args.verbose, {"auto": None, "console": False, "json": True}[args.log_format])
    host = "localhost"  # until the desired state names the host
    try:
        with (args.input.open() if args.input else contextlib.nullcontext(stdin)) as source:
            desired = read_desired(source)
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
