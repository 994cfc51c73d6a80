"""``pyprov``: the operator's command.

    pyprov apply PATH...      converge hosts to the manifests (files or directories)
    pyprov check PATH...      the same plan, nothing changed (= apply --check)
    pyprov validate PATH...   validate manifests only
    pyprov render PATH...     print the desired state a host's agent receives (JSON)
    pyprov agent ...          the host-side agent (see `pyprov agent --help`)

Exit codes (Puppet's detailed codes): 0 nothing to change, 2 changes made (check:
drift found), 4 failures, 6 changes and failures.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from agent.model.protocol import EXIT_FAILED
from controller.errors import ControllerError
from controller.manifests.errors import ManifestError
from controller.manifests.loader import load_manifests
from controller.report.recap import Recap
from controller.report.render import JsonRenderer, Renderer, TextRenderer
from controller.runner import AgentFlags, desired_state_json, run_host
from controller.transports.local import LocalTransport


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pyprov", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (("apply", "converge hosts to the manifests"),
                            ("check", "report drift, change nothing")):
        command = sub.add_parser(name, help=help_text)
        command.add_argument("paths", nargs="+", metavar="PATH")
        if name == "apply":
            command.add_argument("--check", action="store_true", help="plan only")
        command.add_argument("--diff", action="store_true", help="show unified diffs")
        command.add_argument("--force", action="store_true",
                             help="replace files pyprov cannot parse (a backup is kept)")
        command.add_argument("--output", choices=("text", "json"), default="text")
        command.add_argument("--state-dir", help="agent state dir (default $PYPROV_STATE_DIR "
                             "or /var/lib/pyprov)")
        command.add_argument("--lock-timeout", type=float,
                             help="seconds to wait for another pass on a host (default 300)")
        command.add_argument("-v", "--verbose", action="count", default=0)
        command.add_argument("--log-format", choices=("auto", "console", "json"),
                             default="auto", help="agent logs on stderr (auto: console on "
                             "a terminal, JSON lines otherwise)")
    for name, help_text in (("validate", "validate manifests only"),
                            ("render", "print the desired state sent to the agent")):
        command = sub.add_parser(name, help=help_text)
        command.add_argument("paths", nargs="+", metavar="PATH")
    sub.add_parser("agent", help="run the host agent (pyprov agent --help)", add_help=False)
    return parser


def _apply(args: argparse.Namespace) -> int:
    check = args.command == "check" or args.check
    documents = [d.document for d in load_manifests(args.paths)]
    renderer: Renderer = (JsonRenderer() if args.output == "json"
                          else TextRenderer(show_diff=args.diff))
    state_dir = str(Path(args.state_dir).absolute()) if args.state_dir else None  # agent: cwd /
    flags = AgentFlags(check=check, diff=args.diff, force=args.force, state_dir=state_dir,
                       lock_timeout=args.lock_timeout, verbose=args.verbose,
                       log_format=args.log_format)
    recap = Recap()
    renderer.start(" ".join(args.paths), check)
    run_host(LocalTransport(), documents, flags, recap, renderer)
    renderer.finish(recap)
    return recap.exit_code


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["agent"]:
        # The agent is its own program: the controller never imports its code.
        os.chdir("/")  # with -I: never run an `agent` package from the current directory
        os.execv(sys.executable, [sys.executable, "-I", "-m", "agent", *argv[1:]])  # noqa: S606
    args = _parser().parse_args(argv)
    try:
        if args.command == "validate":
            count = len(load_manifests(args.paths))
            print(f"{count} documents valid")
            return 0
        if args.command == "render":
            print(desired_state_json("localhost", [d.document for d in
                                                   load_manifests(args.paths)]))
            return 0
        return _apply(args)
    except ManifestError as exc:
        print(f"pyprov: invalid manifests, nothing was applied:\n{exc}", file=sys.stderr)
        return EXIT_FAILED
    except ControllerError as exc:
        print(f"pyprov: {exc}", file=sys.stderr)
        return EXIT_FAILED
