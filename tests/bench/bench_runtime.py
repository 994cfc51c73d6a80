"""Benchmark: pyprov's container runtime against runc, crun and podman, in one run.

    .venv/bin/python tests/bench/bench_runtime.py [--runs 10] [--containers 100]
                                                  [--networks none bridge]

Needs root, runc, podman, Debian's docker-registry (crun if installed: it is run inside
``unshare -m`` without the cgroup2 mount, which it refuses here). The busybox test image
(made runnable by podman, see runtime_peers.peer_image) is served by a local registry;
pyprov gets a private state dir, podman a private --root/--runroot and the lowered ulimits
of FACTS.md, all under one work dir in /var/tmp.

1. start→exit of /bin/true: ``pyprov run --rm`` (--network none, bridge), each also on a
   second state dir that a resident agent serves (``agent serve --detach``: the command
   runs in its warm worker), the runtime alone (in-process ``Runtime.start`` of a created
   container until its monitor is gone: runc's analog on a prepared bundle), ``runc run``
   and ``crun run`` on a bundle whose rootfs is a copy of a pyprov container's, ``podman
   run --rm`` (none, bridge). Each tool gets a warm-up; then rounds, every tool once per
   round, the order rotated.
2. the same with ``-p PORT:80 -v DIR:/data -e A=1`` (a fresh host port each run): pyprov
   (without and with the resident agent) vs podman.
3. per network in --networks: N containers (sleep 3600) from one ``pyprov apply``; then
   the unchanged re-apply, the agent's pass alone as a process (``python -I -m agent
   apply < desired.json``, what the controller runs) and in-process (no interpreter
   start, modules loaded), interleaved; ``rm -f`` of the N; the peer: N ``podman run -d``
   one by one.
4. with the N running: PSS (smaps_rollup) of their monitors plus the zygote, per
   container, beside podman's conmon measured here and docker's shim as quoted in FACTS.md.

Between two measured commands the bench waits until nothing the last one started still
runs (pyprov's exit hook, podman's clean-up): printed as "tail", never counted in the
figures. Ratios are medians of per-round ratios. Asserts nothing about time.
This machine sets PYTHONDONTWRITEBYTECODE: dropped for pyprov's processes, so that the
checkout's bytecode is cached as an installed agent's would be.
"""

from __future__ import annotations

import argparse
import functools
import io
import itertools
import json
import os
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # run as a script: tests.* lives in the checkout
    sys.path.insert(0, str(REPO))

from tests.bench.runtime_peers import (  # noqa: E402
    Podman,
    Sample,
    Unshared,
    checked,
    free_port,
    interleaved,
    make_bundle,
    peer_image,
    pss_kib,
    remove_tree,
    report,
    settle,
    timed,
    zygote_pid,
)
from tests.registry.client import push  # noqa: E402
from tests.registry.server import Registry  # noqa: E402

if TYPE_CHECKING:
    from agent.runtime.engine import Runtime

PY = sys.executable
DOCKER_SHIM_MIB = 2.5  # containerd-shim PSS per container, quoted from FACTS.md

@dataclass
class Bench:
    work: Path
    image: str
    runs: int
    podman: Podman | None
    unshared: Unshared | None
    env: dict[str, str] = field(init=False)
    warm_env: dict[str, str] = field(init=False)  # the state dir a resident agent serves
    resident: int | None = None  # its pid, once started

    def __post_init__(self) -> None:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        self.env = {**env, "PYPROV_STATE_DIR": str(self.state)}
        self.warm_env = {**env, "PYPROV_STATE_DIR": str(self.warm_state)}

    @property
    def state(self) -> Path:
        return self.work / "state"

    @property
    def warm_state(self) -> Path:
        return self.work / "state-resident"

    @functools.cached_property
    def runtime(self) -> Runtime:
        """pyprov's runtime on the state dir, in this process."""
        from agent.runtime.engine import Runtime
        from agent.state import StateDir

        return Runtime(StateDir(self.state))

    def agent(self, *args: str) -> list[str]:
        return [PY, "-I", "-m", "agent", *args]

    def settle(self) -> float:
        return settle(self.work, {self.resident} if self.resident else set())

    def start_resident(self) -> None:
        """``agent serve --detach`` on the second state dir: host commands given that
        state dir are run by its warm workers (agent/fastclient.py)."""
        done = checked(self.agent("serve", "--detach"), self.warm_env, codes=(0, 2))
        self.resident = int(json.loads(done.stdout.splitlines()[-1])["pid"])
        checked(self.agent("pull", "-q", self.image), self.warm_env)


# -- samplers: one measured run each, in seconds ---------------------------------------------

def pyprov_run(bench: Bench, options: Callable[[], list[str]], warm: bool = False) -> Sample:
    env = bench.warm_env if warm else bench.env
    return lambda: timed(bench.agent("container", "run", "--rm", *options(), "--entrypoint", "true",
                                     bench.image), env)


def podman_run(podman: Podman, image: str, options: Callable[[], list[str]]) -> Sample:
    return lambda: podman.timed("run", "--rm", *options(), "--entrypoint", "true", image)


def runtime_start(runtime: Runtime, name: str, starts: list[float]) -> Sample:
    """In-process start of a created container until its monitor is gone; ``starts``
    gets the time ``Runtime.start`` took to return (the monitor reported a start)."""
    def run() -> float:
        record = runtime.store.find(name)
        started = time.perf_counter()
        status = runtime.start(record)
        starts.append(time.perf_counter() - started)
        if status.monitor_pid:
            try:
                pidfd = os.pidfd_open(status.monitor_pid)
            except ProcessLookupError:
                pidfd = -1  # gone already
            if pidfd >= 0:
                select.select([pidfd], [], [])
                os.close(pidfd)
        elapsed = time.perf_counter() - started
        final = runtime.status(record)
        if final.exit_code != 0 or final.monitor_pid:
            raise SystemExit(f"runtime start of {name}: {final}")
        return elapsed
    return run


def oci_run(argv: list[str], unshared: Unshared | None = None) -> Sample:
    counter = itertools.count()

    def run() -> float:
        command = [*argv, f"bench-{os.getpid()}-{next(counter)}"]
        return unshared.timed(command) if unshared else timed(command)
    return run


# -- 1 and 2: one container, start to exit -----------------------------------------------------

def prepared(bench: Bench, name: str) -> tuple[Runtime, Path]:
    """A created (and exited) ``--network none`` container for the runtime-level runs,
    and an OCI bundle over a copy of its root filesystem."""
    container_id = checked(bench.agent("container", "run", "-d", "--name", name,
                                       "--network", "none", "--entrypoint", "true",
                                       bench.image),
                           bench.env).stdout.strip()
    runtime = bench.runtime
    deadline = time.monotonic() + 20
    while runtime.status(runtime.store.find(name)).monitor_pid:
        if time.monotonic() > deadline:
            raise SystemExit(f"{name} did not exit")
        time.sleep(0.01)
    bench.settle()
    bundle = bench.work / "bundle"
    make_bundle(bench.state / "containers" / container_id / "rootfs", bundle)
    return runtime, bundle


def start_to_exit(bench: Bench) -> None:
    runtime, bundle = prepared(bench, "bench-runtime")
    starts: list[float] = []
    none, bridge = "pyprov run --rm --network none", "pyprov run --rm (bridge)"
    warm_none, warm_bridge = f"{none}, resident", f"{bridge}, resident"
    runtime_name = "pyprov runtime: start of a created one"
    tools: dict[str, Sample] = {
        none: pyprov_run(bench, lambda: ["--network", "none"]),
        bridge: pyprov_run(bench, list),
        warm_none: pyprov_run(bench, lambda: ["--network", "none"], warm=True),
        warm_bridge: pyprov_run(bench, list, warm=True),
        runtime_name: runtime_start(runtime, "bench-runtime", starts),
        "runc run (bundle)": oci_run(["runc", "--root", str(bench.work / "runc"), "run",
                                      "--bundle", str(bundle)]),
    }
    if bench.unshared is not None:
        tools["crun run (bundle, unshare -m)"] = oci_run(
            ["crun", "--root", str(bench.work / "crun"), "run", "--bundle", str(bundle)],
            bench.unshared)
    podman_none, podman_bridge = "podman run --rm --network none", "podman run --rm (bridge)"
    if bench.podman is not None:
        tools[podman_none] = podman_run(bench.podman, bench.image,
                                        lambda: ["--network", "none"])
        tools[podman_bridge] = podman_run(bench.podman, bench.image, list)
    print(f"\n1. start→exit of /bin/true, {bench.runs} rounds "
          f"(x: median of the per-round ratios)", flush=True)
    samples, tails = interleaved(tools, bench.runs, bench.settle)
    runc = "runc run (bundle)"
    peers: dict[str, list[str | None]] = {
        name: [runc, podman_bridge if "bridge" in name else podman_none]
        for name in tools}
    report(samples, tails, peers, ["runc", "podman"])
    print("  x podman: against podman with the same network (none for the runtime, runc, "
          "crun); tail: the work left running after the tool returned (pyprov's exit hook, "
          "a Python process)", flush=True)
    print(f"  the runtime's start() returned after {statistics.median(starts) * 1000:.1f} ms "
          f"(median), the rest is the run to the monitor's exit; ', resident': a resident "
          f"agent serves that state dir (warm workers), PSS "
          f"{pss_kib(bench.resident or 0) / 1024:.1f} MiB", flush=True)


def with_port_volume_env(bench: Bench) -> None:
    if bench.podman is None:
        print("\n2. -p -v -e: skipped (podman does not run here)")
        return
    data = bench.work / "data"
    data.mkdir(exist_ok=True)

    def options() -> list[str]:
        return ["-p", f"{free_port()}:80", "-v", f"{data}:/data", "-e", "A=1"]

    mine, theirs = "pyprov run --rm -p -v -e", "podman run --rm -p -v -e"
    warm = f"{mine}, resident"
    tools = {mine: pyprov_run(bench, options), warm: pyprov_run(bench, options, warm=True),
             theirs: podman_run(bench.podman, bench.image, options)}
    print(f"\n2. start→exit of /bin/true with -p PORT:80 -v DIR:/data -e A=1 (bridge), "
          f"{bench.runs} rounds", flush=True)
    samples, tails = interleaved(tools, bench.runs, bench.settle)
    report(samples, tails, {mine: [theirs], warm: [theirs], theirs: [None]}, ["podman"])


# -- 3 and 4: N containers from one apply ------------------------------------------------------

MANIFEST = """\
---
kind: Container
name: {name}
image: {image}
entrypoint: ["sleep"]
command: ["3600"]
network: {network}
"""


def in_process_pass(bench: Bench, desired: str) -> Sample:
    from agent.cli import run

    def sample() -> float:
        out = io.StringIO()
        started = time.perf_counter()
        code = run(["apply", "--state-dir", str(bench.state), "--log-format", "json"],
                   io.StringIO(desired), out)
        elapsed = time.perf_counter() - started
        if code != 0:
            raise SystemExit(f"in-process agent pass: exit {code}\n{out.getvalue()[-2000:]}")
        return elapsed
    return sample


def first_apply(bench: Bench, directory: Path, count: int) -> float:
    started = time.perf_counter()
    done = checked([PY, "-m", "controller", "apply", str(directory), "--output", "json"],
                   bench.env, codes=(2,))
    elapsed = time.perf_counter() - started
    recap = json.loads(done.stdout)["hosts"]["localhost"]
    if recap["changed"] != count or recap["failed"]:
        raise SystemExit(f"first apply: {recap['changed']} changed, {recap['failed']} failed")
    return elapsed


def monitors_pss(bench: Bench) -> tuple[list[int], int]:
    """PSS (KiB) of each running container's monitor, and of the zygote."""
    runtime = bench.runtime
    pids = [runtime.status(record).monitor_pid for record in runtime.store.all()]
    values = [pss_kib(pid) for pid in pids if pid]
    zygote = zygote_pid(bench.state)
    return values, pss_kib(zygote) if zygote else 0


def podman_fleet(bench: Bench, podman: Podman, network: str, count: int
                 ) -> tuple[float, list[int], float]:
    """N ``podman run -d`` one by one: seconds, conmon PSS (KiB) each, ``rm -af`` seconds."""
    options = ["--network", "none"] if network == "none" else []
    started = time.perf_counter()
    for index in range(count):
        podman.timed("run", "-d", "--name", f"p{network[0]}{index:03d}", *options,
                     "--entrypoint", "sleep", bench.image, "3600")
    elapsed = time.perf_counter() - started
    conmons = [pss_kib(pid) for pid in podman.conmon_pids()]
    removal = podman.remove_all() + bench.settle()
    return elapsed, conmons, removal


def many(bench: Bench, network: str, count: int) -> None:
    directory = bench.work / f"manifests-{network}"
    directory.mkdir()
    names = {f"{network[0]}{index:03d}" for index in range(count)}
    (directory / "all.yml").write_text("".join(
        MANIFEST.format(name=name, image=bench.image, network=network)
        for name in sorted(names)))
    print(f"\n3. {count} containers (sleep 3600, network {network}) from one apply", flush=True)
    first = first_apply(bench, directory, count)
    print(f"  first apply (create + start {count}): {first:.2f} s, "
          f"{first / count * 1000:.0f} ms per container", flush=True)

    desired = checked([PY, "-m", "controller", "render", str(directory)], bench.env).stdout
    samples, _ = interleaved({
        "controller apply (unchanged)": lambda: timed(
            [PY, "-m", "controller", "apply", str(directory), "--output", "json"], bench.env),
        "agent apply < desired.json (process)": lambda: timed(
            bench.agent("apply"), bench.env, stdin=desired),
        "agent pass in-process": in_process_pass(bench, desired)}, bench.runs, bench.settle)
    for name, values in samples.items():
        print(f"  {name:<40}{statistics.median(values) * 1000:>8.0f} ms "
              f"(min {min(values) * 1000:.0f})", flush=True)

    monitors, zygote = monitors_pss(bench)
    per = (sum(monitors) + zygote) / max(1, len(monitors)) / 1024
    print(f"\n4. memory ({network}): {len(monitors)} monitors, PSS median "
          f"{statistics.median(monitors) / 1024:.2f} MiB, zygote {zygote / 1024:.2f} MiB: "
          f"{per:.2f} MiB per container (monitors + zygote)", flush=True)

    ids = [record.id for record in bench.runtime.store.all() if record.name in names]
    removal = timed(bench.agent("rm", "-f", *ids), bench.env)
    tail = bench.settle()
    print(f"  rm -f of the {len(ids)}: {removal:.2f} s, then {tail:.2f} s until their exit "
          f"hooks were done", flush=True)
    if bench.podman is None:
        return
    peer, conmons, podman_removal = podman_fleet(bench, bench.podman, network, count)
    print(f"  peer: {count} x podman run -d ({network}) one by one: {peer:.2f} s "
          f"(pyprov/podman {first / peer:.2f}); podman rm -af {podman_removal:.2f} s",
          flush=True)
    print(f"  peer: conmon PSS {sum(conmons) / max(1, len(conmons)) / 1024:.2f} MiB per "
          f"container ({len(conmons)} measured); docker's containerd-shim "
          f"{DOCKER_SHIM_MIB} MiB (quoted from FACTS.md, not measured here)", flush=True)


# -- set-up and clean-up ---------------------------------------------------------------------

def versions() -> str:
    found = []
    for tool in ("runc", "crun", "podman"):
        try:
            first = checked([tool, "--version"]).stdout.splitlines()[0]
        except (OSError, SystemExit):
            first = f"{tool}: not installed"
        found.append(first)
    return "; ".join(found)


def peers(work: Path, image: str) -> tuple[Podman | None, Unshared | None]:
    podman: Podman | None = Podman(work)
    try:
        assert podman is not None
        podman.timed("pull", "-q", "--tls-verify=false", image)
    except (OSError, SystemExit) as exc:
        print(f"podman does not run here, skipped: {exc}", file=sys.stderr)
        podman = None
    unshared = None
    if shutil.which("crun"):
        unshared = Unshared()
    else:
        print("crun is not installed (apt-get install -y crun): skipped", flush=True)
    return podman, unshared


def clean_up(bench: Bench) -> None:
    """Every container, the zygote, podman's containers, leftovers of runc; each step
    even if another failed."""
    def step(what: str, action: Callable[[], object]) -> None:
        try:
            action()
        except (OSError, SystemExit, subprocess.SubprocessError) as exc:
            print(f"clean-up: {what}: {exc}", file=sys.stderr)

    def pyprov_containers(env: dict[str, str]) -> None:
        ids = checked(bench.agent("ps", "-aq", "--no-trunc"), env).stdout.split()
        if ids:
            checked(bench.agent("rm", "-f", *ids), env)

    def zygotes() -> None:
        for state in (bench.state, bench.warm_state):
            pid = zygote_pid(state)
            if pid:
                os.kill(pid, signal.SIGTERM)

    def runc_leftovers() -> None:
        root = bench.work / "runc"
        if root.exists():
            for name in checked(["runc", "--root", str(root), "list", "-q"]).stdout.split():
                checked(["runc", "--root", str(root), "delete", "-f", name])

    step("pyprov containers", lambda: pyprov_containers(bench.env))
    if bench.resident:
        step("pyprov containers", lambda: pyprov_containers(bench.warm_env))
        step("resident agent", lambda: checked(bench.agent("serve", "--stop"), bench.warm_env,
                                               codes=(0, 2)))
        bench.resident = None
    step("zygotes", zygotes)
    if bench.podman is not None:
        step("podman containers", bench.podman.remove_all)
    step("runc", runc_leftovers)
    if bench.unshared is not None:
        step("unshared helper", bench.unshared.close)
    step("leftover processes", lambda: settle(bench.work, timeout=60))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--containers", type=int, default=100)
    parser.add_argument("--networks", nargs="+", choices=("none", "bridge"),
                        default=["none", "bridge"])
    args = parser.parse_args()

    def interrupted(*_: object) -> NoReturn:
        raise KeyboardInterrupt

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupted)  # `finally` cleans up either way
    work = Path(tempfile.mkdtemp(prefix="bench-runtime-", dir="/var/tmp"))
    registry = Registry(name="bench")
    bench: Bench | None = None
    try:
        registry.start()
        push(registry, "busybox", "b", peer_image())
        image = f"{registry.host}/busybox:b"
        podman, unshared = peers(work, image)
        bench = Bench(work, image, args.runs, podman, unshared)
        checked(bench.agent("pull", "-q", image), bench.env)
        bench.start_resident()
        print(f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; {versions()}; "
              f"image {image}; work dir {work}", flush=True)
        start_to_exit(bench)
        with_port_volume_env(bench)
        for network in args.networks:
            many(bench, network, args.containers)
        print(f"\nload average (1 min) at the end: {os.getloadavg()[0]:.2f}")
    finally:
        if bench is not None:
            clean_up(bench)
        registry.close()
        remove_tree(work)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
