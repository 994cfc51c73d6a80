"""The container commands' bodies (parsing is in :mod:`agent.containers.cli`)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import socket
import sys
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

from agent.runtime.engine import Runtime, Status
from agent.runtime.records import ContainerError, ContainerRecord
from agent.state import StateDir
from agent.textfmt import ago, duration, print_table, since

EXIT_RUN_FAILED = 125
_ADJECTIVES = ("brave", "calm", "eager", "fervent", "gifted", "happy", "jolly", "keen",
               "lucid", "modest", "nifty", "quirky", "serene", "tender", "vibrant", "zen")
_NAMES = ("babbage", "curie", "dijkstra", "euler", "gauss", "hopper", "knuth", "lovelace",
          "noether", "pascal", "ritchie", "shannon", "thompson", "turing", "wirth", "yonath")


def dispatch(args: argparse.Namespace, state: StateDir, stdin: TextIO, out: TextIO) -> int:
    handler = {"run": _run, "ps": _ps, "logs": _logs, "exec": _exec, "stop": _stop,
               "start": _start, "restart": _restart, "rm": _rm, "port": _port, "top": _top,
               "container-exited": _exited}[args.command]
    return handler(args, Runtime(state), stdin, out)


# -- run -----------------------------------------------------------------------------------

def _environment(entries: list[str]) -> list[str]:
    """``-e KEY`` takes KEY from the caller's environment, as docker does (and is left
    out when the caller has none)."""
    resolved = []
    for entry in entries:
        if "=" in entry:
            resolved.append(entry)
        elif entry in os.environ:
            resolved.append(f"{entry}={os.environ[entry]}")
    return resolved


def _free_name(runtime: Runtime) -> str:
    taken = {record.name for record in runtime.store.all()}
    while True:
        name = f"{random.choice(_ADJECTIVES)}_{random.choice(_NAMES)}"  # noqa: S311
        if name not in taken:
            return name


def _document(args: argparse.Namespace, name: str) -> Any:
    from agent.model import Container

    body: dict[str, Any] = {
        "kind": "Container", "name": name, "image": args.image,
        "environment": _environment(args.env), "labels": args.label,
        "ports": args.publish, "volumes": args.volume, "restart": args.restart,
        "network": args.network, "volumes_from": args.volumes_from}
    for key, value in (("command", args.cmd or None),
                       ("entrypoint", [args.entrypoint] if args.entrypoint else None),
                       ("working_dir", args.workdir), ("user", args.user),
                       ("hostname", args.hostname), ("mem_limit", args.memory),
                       ("cpus", args.cpus), ("pids_limit", args.pids_limit)):
        if value is not None:
            body[key] = value
    return Container.model_validate(body, context={"base_dir": str(Path.cwd())})


def _image(runtime: Runtime, doc: Any, out: TextIO) -> tuple[Any, str]:
    from agent.images.host import client_for, is_complete
    from agent.images.pull import Puller

    ref = doc.image_reference
    stored = runtime.images.image(str(ref))
    if stored is None or not is_complete(runtime.images, stored):
        print(f"Unable to find image '{ref.familiar}' locally", file=sys.stderr)
        Puller(client_for(runtime.state), runtime.images).pull(ref)
        stored = runtime.images.image(str(ref))
        if stored is None:
            raise ContainerError(f"image {ref.familiar}: pulled, yet not in the store")
        del out
    return runtime.images.config_of(stored), stored.manifest.digest


def _run(args: argparse.Namespace, runtime: Runtime, stdin: TextIO, out: TextIO) -> int:
    from agent.runtime.spec import compose_spec

    del stdin
    if args.detach and (args.tty or args.interactive):
        raise ContainerError("run -d with -i/-t: attaching later is not supported; run it "
                             "detached without them, or -it in the foreground")
    doc = _document(args, args.name or _free_name(runtime))
    config, digest = _image(runtime, doc, out)
    spec = compose_spec(doc, config, digest)
    record = runtime.create(spec, managed=False, auto_remove=args.rm)
    if args.tty or args.interactive:
        return _interactive(runtime, record, tty=args.tty, interactive=args.interactive)
    try:
        runtime.start(record)
    except BaseException:
        if args.rm:
            runtime.remove(record, force=True, volumes=True)
        raise
    if args.detach:
        print(record.id, file=out)
        return 0
    return _attach(runtime, record, out)


def _interactive(runtime: Runtime, record: ContainerRecord, *, tty: bool,
                 interactive: bool) -> int:
    """``run -t``: the caller's terminal relayed to a pty of the container's own devpts;
    ``run -i``: the caller's stdin is the container's, its output followed as usual."""
    from agent.runtime.ptyrelay import receive_master, relay_master

    ours, theirs = socket.socketpair() if tty else (None, None)
    stdin_r, stdin_w = os.pipe2(os.O_CLOEXEC) if interactive and not tty else (None, None)
    try:
        status = runtime.start(record, console=theirs.fileno() if theirs else None,
                               stdin=stdin_r)
    except BaseException:
        if record.auto_remove:
            runtime.remove(record, force=True, volumes=True)
        raise
    finally:
        if theirs is not None:
            theirs.close()
        if stdin_r is not None:
            os.close(stdin_r)
    if ours is not None:
        with ours:
            watched = status.pid or status.monitor_pid  # a quick command may be gone
            if watched:
                relay_master(receive_master(ours), watched, interactive, 0, 1)
        return _attach(runtime, record, sys.stdout, quiet=True)
    if stdin_w is not None:
        threading.Thread(target=_copy_stdin, args=(stdin_w,), daemon=True).start()
    return _attach(runtime, record, sys.stdout)


def _copy_stdin(target: int) -> None:
    """The caller's stdin into the container's, until EOF (then the container sees EOF)."""
    try:
        while data := os.read(0, 65536):
            view = memoryview(data)
            while view:
                view = view[os.write(target, view):]
    except OSError:
        pass
    finally:
        os.close(target)


def _attach(runtime: Runtime, record: ContainerRecord, out: TextIO, *,
            quiet: bool = False) -> int:
    """Foreground ``run``: the container's output until it is down for good; its exit
    code. SIGINT and SIGTERM go to the container, as docker's sig-proxy does."""
    from agent.runtime.logs import follow

    def forward(signum: int, _frame: object) -> None:
        pid = runtime.status(record).pid
        if pid:
            os.kill(pid, signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, forward)
    directory = runtime.store.directory(record.id)
    last: dict[str, Any] = {}

    def done() -> bool:
        with_state = runtime.status(record)
        with contextlib.suppress(OSError, ValueError):
            last.update(json.loads((directory / "state.json").read_bytes()))
        return not with_state.monitor_pid

    monitor = runtime.status(record).monitor_pid
    wake = _pidfd(monitor)
    try:
        for line in follow(directory / f"{record.id}-json.log", done, tail=-1, wake_fd=wake):
            if quiet:  # its terminal already showed it
                continue
            stream = sys.stderr if line.stream == "stderr" else out
            stream.write(line.text)
            stream.flush()
    finally:
        if wake is not None:
            os.close(wake)
    code = last.get("exit_code")
    if record.auto_remove:  # gone before the prompt returns, as docker run --rm
        with contextlib.suppress(ContainerError, OSError):
            runtime.remove(runtime.store.load(record.id), force=True, volumes=True)
    return int(code) if isinstance(code, int) else EXIT_RUN_FAILED


def _pidfd(pid: int | None) -> int | None:
    if not pid:
        return None
    try:
        return os.pidfd_open(pid)
    except OSError:
        return None


# -- ps ------------------------------------------------------------------------------------

def _status_text(status: Status) -> str:
    if status.status == "running":
        return f"Up {duration(since(status.started_at) or 0)}"
    if status.status == "restarting":
        return f"Restarting ({status.exit_code}) {ago(status.finished_at)}"
    if status.status in ("exited", "dead"):
        code = status.exit_code if status.exit_code is not None else 255
        label = "Exited" if status.status == "exited" else "Dead"
        return f"{label} ({code}) {ago(status.finished_at)}"
    return "Created"


def ports_text(record: ContainerRecord) -> str:
    return ", ".join(f"{p['host_ip']}:{p['host_port']}->{p['container_port']}/{p['protocol']}"
                     for p in record.ports)


def _ps(args: argparse.Namespace, runtime: Runtime, _: TextIO, out: TextIO) -> int:
    rows = [("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES")]
    for record in runtime.store.all():
        status = runtime.status(record)
        if not args.all and not status.running:
            continue
        if args.quiet:
            print(record.id if args.no_trunc else record.short_id, file=out)
            continue
        command = " ".join(record.spec["argv"])
        if not args.no_trunc and len(command) > 20:
            command = command[:19] + "…"
        rows.append((record.id if args.no_trunc else record.short_id, record.spec["image"],
                     f'"{command}"', ago(record.created), _status_text(status),
                     ports_text(record), record.name))
    if not args.quiet:
        print_table(rows, out)
    return 0


# -- logs ----------------------------------------------------------------------------------

def _logs(args: argparse.Namespace, runtime: Runtime, _: TextIO, out: TextIO) -> int:
    from agent.runtime.logs import follow, read

    record = runtime.store.find(args.container)
    tail = None if args.tail == "all" else int(args.tail)
    log = runtime.store.directory(record.id) / f"{record.id}-json.log"
    lines = (follow(log, lambda: not runtime.status(record).monitor_pid, tail)
             if args.follow else iter(read(log, tail)))
    for line in lines:
        stream = sys.stderr if line.stream == "stderr" else out
        stream.write(f"{line.time} {line.text}" if args.timestamps else line.text)
        stream.flush()
    return 0


# -- exec, top -----------------------------------------------------------------------------

def _running(runtime: Runtime, reference: str) -> tuple[ContainerRecord, Status]:
    record = runtime.store.find(reference)
    status = runtime.status(record)
    if status.status != "running" or not status.pid:
        raise ContainerError(f"container {record.name} is not running")
    return record, status


def _exec(args: argparse.Namespace, runtime: Runtime, _: TextIO, out: TextIO) -> int:
    from agent.runtime.exec import ExecRequest, run_exec
    from agent.runtime.passwd import resolve_user

    if not args.cmd:
        raise ContainerError("exec needs a command")
    record, status = _running(runtime, args.container)
    uid, gid, groups = record.uid, record.gid, tuple(record.groups)
    if args.user is not None:
        user = resolve_user(Path(f"/proc/{status.pid}/root"), args.user)
        uid, gid, groups = user.uid, user.gid, user.additional_gids
    env = [*record.env, *_environment(args.env)]
    cgroup = [str(p) for p in runtime.cgroups.procs_files(f"pyprov/{record.id}")
              if p.exists()]
    out.flush()
    return int(run_exec(ExecRequest(
        pid=status.pid or 0, argv=tuple(args.cmd), env=tuple(env),
        cwd=args.workdir or record.spec["working_dir"], uid=uid, gid=gid, groups=groups,
        tty=args.tty, interactive=args.interactive, cgroup_procs=tuple(cgroup))))


def _top(args: argparse.Namespace, runtime: Runtime, _: TextIO, out: TextIO) -> int:
    from agent.runtime.top import format_table, processes

    status = _running(runtime, args.container)[1]
    print(format_table(processes(status.pid or 0)), file=out, end="")
    return 0


# -- lifecycle -----------------------------------------------------------------------------

def _each(args: argparse.Namespace, runtime: Runtime, out: TextIO, action: Any) -> int:
    failed = 0
    for reference in args.containers:
        try:
            action(runtime.store.find(str(reference)))
            print(reference, file=out)
        except (ContainerError, OSError) as exc:
            print(f"pyprov {args.command}: {exc}", file=sys.stderr)
            failed = 1
    return 4 if failed else 0


def _stop(args: argparse.Namespace, runtime: Runtime, _: TextIO, out: TextIO) -> int:
    return _each(args, runtime, out, lambda r: runtime.stop(r, args.time))


def _start(args: argparse.Namespace, runtime: Runtime, _: TextIO, out: TextIO) -> int:
    return _each(args, runtime, out, runtime.start)


def _restart(args: argparse.Namespace, runtime: Runtime, _: TextIO, out: TextIO) -> int:
    def restart(record: ContainerRecord) -> None:
        runtime.stop(record, args.time)
        runtime.start(runtime.store.load(record.id))
    return _each(args, runtime, out, restart)


def _rm(args: argparse.Namespace, runtime: Runtime, _: TextIO, out: TextIO) -> int:
    return _each(args, runtime, out,
                 lambda r: runtime.remove(r, force=args.force, volumes=args.volumes))


def _port(args: argparse.Namespace, runtime: Runtime, _: TextIO, out: TextIO) -> int:
    record = runtime.store.find(args.container)
    wanted = args.private
    if wanted and "/" not in wanted:
        wanted += "/tcp"
    for port in record.ports:
        private = f"{port['container_port']}/{port['protocol']}"
        if wanted and wanted != private:
            continue
        shown = f"{port['host_ip']}:{port['host_port']}"
        print(shown if wanted else f"{private} -> {shown}", file=out)
    return 0


def _exited(args: argparse.Namespace, runtime: Runtime, _: TextIO, __: TextIO) -> int:
    runtime.exited(args.id)
    return 0


def inspect_container(runtime: Runtime, reference: str) -> dict[str, Any]:
    record = runtime.store.find(reference)
    status = runtime.status(record)
    return {"Id": record.id, "Name": record.name, "Created": record.created,
            "Image": record.spec["image_digest"], "Config": {
                "Image": record.spec["image"], "Cmd": record.spec["argv"],
                "Env": record.env,
                "WorkingDir": record.spec["working_dir"], "User": record.spec["user"],
                "Hostname": record.hostname, "Labels": dict(record.spec["labels"])},
            "State": asdict(status), "HostConfig": {
                "RestartPolicy": record.spec["restart"], "NetworkMode": record.spec["network"],
                "Binds": record.spec["volumes"], "PortBindings": record.spec["ports"],
                "Memory": record.spec["mem_limit"], "NanoCpus": record.spec["cpus"],
                "PidsLimit": record.spec["pids_limit"]},
            "Mounts": record.mounts, "NetworkSettings": {
                "IPAddress": (record.network or {}).get("ip", ""), "Ports": record.ports},
            "SpecHash": record.spec_hash, "Managed": record.managed}
