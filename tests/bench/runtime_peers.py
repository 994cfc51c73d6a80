"""The parts of bench_runtime.py that are not pyprov: peers, processes, memory, clean-up.

- :func:`peer_image`: the busybox test image, made runnable by every peer (see its doc);
- :class:`Podman`: podman on a private ``--root``/``--runroot`` with FACTS.md's ulimits;
- :func:`make_bundle`: an OCI bundle for runc and crun (``runc spec``, args ``["true"]``);
- :class:`Unshared`: a helper in its own mount namespace without the cgroup2 mount (crun
  refuses hybrid cgroups here), which times the commands it is sent;
- :func:`settle`, :func:`pss_kib`, :func:`unmount_under`: processes and mounts by path;
- :func:`interleaved` and :func:`report`: rounds of paired runs, and their table.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from pathlib import Path

from tests.registry.images import (
    BUSYBOX_CONFIG,
    Image,
    build_image,
    busybox_app_entries,
    busybox_base_entries,
)

PY = sys.executable
Sample = Callable[[], float]  # one measured run: seconds
CONTAINERS_CONF = """[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
"""
UNSHARED = """\
import json, os, subprocess, sys, time
if os.path.ismount("/sys/fs/cgroup/unified"):
    subprocess.run(["umount", "/sys/fs/cgroup/unified"], check=True)
print("ready", flush=True)
for line in sys.stdin:
    started = time.perf_counter()
    done = subprocess.run(json.loads(line), stdin=subprocess.DEVNULL, capture_output=True)
    elapsed = time.perf_counter() - started
    print(json.dumps([elapsed, done.returncode, done.stderr.decode()[-2000:]]), flush=True)
"""


def peer_image() -> Image:
    """The busybox test image with one tar header changed: the ``bin/echo`` hard link to
    ``bin/busybox`` says mode 0755 instead of 0644. containers-storage (podman, docker)
    chmods a hard link's inode to the link header's mode, which leaves the test image's
    busybox non-executable there ("exec: /bin/true: permission denied"); pyprov keeps the
    first name's mode. With the link's mode equal to its target's, every tool sees the
    same files."""
    base = [dataclasses.replace(entry, mode=0o755) if entry.kind == "hardlink" else entry
            for entry in busybox_base_entries()]
    return build_image([base, busybox_app_entries()], BUSYBOX_CONFIG)


def checked(argv: list[str], env: dict[str, str] | None = None, stdin: str | None = None,
            codes: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, env=env, input=stdin,
                          check=False, stdin=None if stdin is not None else subprocess.DEVNULL)
    if done.returncode not in codes:
        raise SystemExit(f"{' '.join(argv[:6])} ... failed ({done.returncode}):\n"
                         f"{done.stdout[-1500:]}\n{done.stderr[-2500:]}")
    return done


def timed(argv: list[str], env: dict[str, str] | None = None, stdin: str | None = None,
          codes: tuple[int, ...] = (0,)) -> float:
    started = time.perf_counter()
    checked(argv, env, stdin, codes)
    return time.perf_counter() - started


class Podman:
    """podman with its own store and run dirs under ``work`` (nothing of the host's), the
    lowered ulimits of FACTS.md, and runc as its runtime: with crun installed podman
    prefers crun, which refuses this host's hybrid cgroups."""

    def __init__(self, work: Path) -> None:
        self.root, self.runroot = work / "podman-root", work / "podman-run"
        conf = work / "containers.conf"
        conf.write_text(CONTAINERS_CONF)
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf)}
        self.base = ["podman", "--root", str(self.root), "--runroot", str(self.runroot),
                     "--storage-driver", "overlay"]

    def argv(self, *args: str) -> list[str]:
        return [*self.base, *args]

    def timed(self, *args: str) -> float:
        return timed(self.argv(*args), self.env)

    def conmon_pids(self) -> list[int]:
        marker = str(self.runroot).encode()
        return [pid for pid, cmdline in processes() if cmdline.startswith(b"/usr/bin/conmon")
                and marker in cmdline]

    def remove_all(self) -> float:
        return timed(self.argv("rm", "-a", "-f", "-t", "0"), self.env)


def make_bundle(rootfs: Path, bundle: Path) -> None:
    """``runc spec`` in ``bundle`` (args ``["true"]``, no terminal), over a copy of
    ``rootfs`` made with ``cp -a``."""
    bundle.mkdir(parents=True)
    checked(["cp", "-a", str(rootfs), str(bundle / "rootfs")])
    checked(["runc", "spec", "--bundle", str(bundle)])
    config = json.loads((bundle / "config.json").read_text())
    config["process"]["args"], config["process"]["terminal"] = ["true"], False
    (bundle / "config.json").write_text(json.dumps(config, indent=1))


class Unshared:
    """``unshare -m`` (private propagation) around a small Python loop that unmounts
    /sys/fs/cgroup/unified in its namespace only, then runs and times commands."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", PY, "-I", "-S", "-c", UNSHARED],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "ready":
            self.close()
            raise SystemExit("the unshared helper did not start")

    def timed(self, argv: list[str]) -> float:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(json.dumps(argv) + "\n")
        self.process.stdin.flush()
        elapsed, code, stderr = json.loads(self.process.stdout.readline())
        if code != 0:
            raise SystemExit(f"{argv[0]} failed ({code}) in the unshared helper:\n{stderr}")
        return float(elapsed)

    def close(self) -> None:
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# -- processes and mounts ----------------------------------------------------------------

def processes() -> list[tuple[int, bytes]]:
    """(pid, NUL-separated cmdline) of every live process (zombies have none)."""
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                cmdline = Path(entry.path, "cmdline").read_bytes()
                if cmdline:
                    found.append((int(entry.name), cmdline))
    return found


def session_leader(pid: int) -> bool:
    try:
        rest = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1]
    except (OSError, IndexError):
        return False
    return int(rest.split()[3]) == pid


def zygote_pid(state: Path) -> int | None:
    """The zygote, among the processes with its command line (its monitors have it too):
    the one that leads its own session."""
    socket_path = str(state / "zygote.sock").encode()
    return next((pid for pid, cmdline in processes()
                 if socket_path in cmdline and session_leader(pid)), None)


def lingering(work: Path, keep: AbstractSet[int]) -> list[int]:
    """Processes whose command line names a path under ``work``, but ``keep`` and those
    forked by the zygote (the zygote, the monitors of running containers: pyprov's
    foreground commands wait for their monitors themselves): exit hooks, clean-ups."""
    marker = str(work).encode()
    return [pid for pid, cmdline in processes()
            if marker in cmdline and pid not in keep and pid != os.getpid()
            and b"zygote.sock" not in cmdline]


def settle(work: Path, keep: AbstractSet[int] = frozenset(), timeout: float = 30.0) -> float:
    """Wait until nothing started by the last command still runs; the seconds it took
    (the work a tool leaves behind after it returned)."""
    started = time.perf_counter()
    while lingering(work, keep):
        if time.perf_counter() - started > timeout:
            raise SystemExit(f"still running after {timeout:.0f} s: "
                             f"{lingering(work, keep)}")
        time.sleep(0.005)
    return time.perf_counter() - started


def pss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    raise ValueError(f"no Pss in /proc/{pid}/smaps_rollup")


def unmount_under(directory: Path) -> None:
    """Lazily unmount whatever is still mounted below ``directory``, deepest first."""
    prefix = str(directory) + "/"
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    for target in sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", target], capture_output=True, check=False)


def remove_tree(directory: Path) -> None:
    unmount_under(directory)
    shutil.rmtree(directory, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("", 0))
        return int(sock.getsockname()[1])


# -- rounds and reports ----------------------------------------------------------------------

def interleaved(tools: dict[str, Sample], runs: int, quiet: Sample
                ) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """A warm-up each, then ``runs`` rounds of every tool, the order rotated per round;
    samples and tails (``quiet()``: seconds until the tool's leftovers were done)."""
    names = list(tools)
    for name in names:
        tools[name]()
        quiet()
    samples: dict[str, list[float]] = {name: [] for name in names}
    tails: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(runs):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(tools[name]())
            tails[name].append(quiet())
    return samples, tails


def paired_ratio(mine: list[float], theirs: list[float]) -> float:
    return statistics.median(a / b for a, b in zip(mine, theirs, strict=True))


def report(samples: dict[str, list[float]], tails: dict[str, list[float]],
           peers: dict[str, list[str | None]], peer_names: list[str]) -> None:
    """One line per tool; ``peers[tool]``: the tool each ratio column compares it with."""
    ratio_heads = "".join(f"{'x ' + name:>16}" for name in peer_names)
    print(f"  {'tool':<40}{'median ms':>10}{'min ms':>8}{ratio_heads}{'tail ms':>9}")
    for name, values in samples.items():
        ratios = ""
        for peer in peers.get(name, [None] * len(peer_names)):
            ratios += f"{paired_ratio(values, samples[peer]):>16.2f}" \
                if peer and peer in samples and peer != name else f"{'':>16}"
        print(f"  {name:<40}{statistics.median(values) * 1000:>10.1f}"
              f"{min(values) * 1000:>8.1f}{ratios}"
              f"{statistics.median(tails[name]) * 1000:>9.0f}", flush=True)
