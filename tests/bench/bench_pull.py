"""Benchmark: pull of the ~200 MB, 5-layer test image from a local docker-registry.

    .venv/bin/python tests/bench/bench_pull.py [--runs 5]

Paired runs, each into an empty store, interleaved so that both tools of a pair see the
same machine state:
- pull only: ``pyprov pull --no-unpack`` vs ``skopeo copy docker://... oci:DIR`` (both
  verify every blob, neither unpacks);
- pull + unpack: ``pyprov pull`` vs ``podman pull`` into an empty ``--root`` (if podman
  is installed and runs here: it needs the ulimits of FACTS.md in containers.conf).
Prints medians and the median of the paired ratios. Asserts nothing about time.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.registry.big import big_image  # noqa: E402
from tests.registry.client import push  # noqa: E402
from tests.registry.server import Registry  # noqa: E402

PY = sys.executable
CONTAINERS_CONF = """[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
"""


def timed(argv: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{argv[0]} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return elapsed


def pyprov(work: Path, ref: str, unpack: bool) -> Callable[[], float]:
    def run() -> float:
        state = work / "pyprov-state"
        shutil.rmtree(state, ignore_errors=True)
        env = {**os.environ, "PYPROV_STATE_DIR": str(state)}
        return timed([PY, "-m", "agent", "pull", "-q", ref, *([] if unpack else ["--no-unpack"])],
                     env)
    return run


def skopeo(work: Path, ref: str) -> Callable[[], float]:
    def run() -> float:
        target = work / "skopeo"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir()
        return timed(["skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{ref}",
                      f"oci:{target}/image:latest"])
    return run


def podman(work: Path, ref: str) -> Callable[[], float] | None:
    if shutil.which("podman") is None:
        return None
    conf = work / "containers.conf"
    conf.write_text(CONTAINERS_CONF)

    def run() -> float:
        root, runroot = work / "podman-root", work / "podman-run"
        for directory in (root, runroot):
            if directory.exists():
                subprocess.run(["umount", "-R", str(directory)], capture_output=True,
                               check=False)
                shutil.rmtree(directory, ignore_errors=True)
        env = {**os.environ, "CONTAINERS_CONF": str(conf)}
        return timed(["podman", "--root", str(root), "--runroot", str(runroot),
                      "--storage-driver", "overlay", "pull", "-q", "--tls-verify=false",
                      ref], env)

    try:
        run()
    except SystemExit as exc:
        print(f"podman does not run here, skipped: {exc}", file=sys.stderr)
        return None
    return run


def paired(name: str, ours: Callable[[], float], peer: Callable[[], float],
           runs: int) -> None:
    ours(), peer()  # warm-ups: page cache, pyc files
    pairs = [(ours(), peer()) for _ in range(runs)]
    mine, theirs = [p[0] for p in pairs], [p[1] for p in pairs]
    ratio = statistics.median(a / b for a, b in pairs)
    print(f"{name:<16} pyprov {statistics.median(mine):6.3f} s   peer "
          f"{statistics.median(theirs):6.3f} s   ratio {ratio:5.2f}  "
          f"(runs: {', '.join(f'{a:.2f}/{b:.2f}' for a, b in pairs)})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    image = big_image()
    size = sum(blob.size for blob in image.blobs)
    with tempfile.TemporaryDirectory(prefix="bench-pull-", dir="/var/tmp") as tmp:
        work = Path(tmp)
        with Registry(name="bench") as registry:
            push(registry, "big", "latest", image)
            ref = f"{registry.host}/big:latest"
            print(f"image: {len(image.layers)} layers, {size / 1e6:.0f} MB compressed, "
                  f"from {registry.url}; {os.cpu_count()} CPUs", flush=True)
            paired("pull (vs skopeo)", pyprov(work, ref, unpack=False), skopeo(work, ref),
                   args.runs)
            peer = podman(work, ref)
            if peer is not None:
                paired("pull+unpack (vs podman)", pyprov(work, ref, unpack=True), peer,
                       args.runs)


if __name__ == "__main__":
    main()
