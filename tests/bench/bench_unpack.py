"""Benchmark: unpack_layer against GNU tar and Python's tarfile on the same layer, in
the same run.

    .venv/bin/python tests/bench/bench_unpack.py [--source /usr/lib/python3.11] [--runs 5]
                                                 [--dir /dev/shm]

The layer is ``--source`` archived by GNU tar (a real tree: many small files, some large
ones). Each compression (plain, gzip, zstd) is unpacked into a fresh directory per run by
``tar -xf`` (zstd through ``--use-compress-program``/``-I zstd`` when zstd is installed),
by ``tarfile.extractall(filter="tar")``, and by ``unpack_layer``; medians and the ratio
to GNU tar are printed. ``--dir`` picks where they unpack: on a disk, creating files
dominates for every tool; on tmpfs the figures are CPU alone.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import zstandard

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from agent.store.unpack import unpack_layer  # noqa: E402 -- after the path set-up


def medians(tools: dict[str, Callable[[Path], object]], work: Path,
            runs: int) -> dict[str, float]:
    """Median seconds per tool; runs interleave the tools, so that the disk's state
    (writeback, discards of the previous run's files) weighs on all of them alike."""
    samples: dict[str, list[float]] = {name: [] for name in tools}
    for run in range(runs):
        for name, unpack in tools.items():
            dest = work / f"dest-{run}-{name}"
            dest.mkdir()
            started = time.perf_counter()
            unpack(dest)
            samples[name].append(time.perf_counter() - started)
            shutil.rmtree(dest)
    return {name: statistics.median(times) for name, times in samples.items()}


def gnu_tar(blob: Path, kind: str) -> Callable[[Path], object]:
    flags = {"tar": [], "gzip": ["-z"], "zstd": ["-I", "zstd"]}[kind]
    return lambda dest: subprocess.run(["tar", *flags, "-xf", str(blob), "-C", str(dest)],
                                       check=True)


def python_tarfile(blob: Path, kind: str) -> Callable[[Path], object] | None:
    if kind == "zstd":
        return None  # tarfile has no zstd before Python 3.14

    def run(dest: Path) -> None:
        with tarfile.open(blob) as archive:
            archive.extractall(dest, filter="tar")
    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--source", type=Path, default=Path("/usr/lib/python3.11"))
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=None, help="where to unpack (a tmp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        work = Path(tmp)
        plain = work / "layer.tar"
        subprocess.run(["tar", "--numeric-owner", "-cf", str(plain), "-C",
                        str(args.source.parent), args.source.name], check=True)
        data = plain.read_bytes()
        blobs = {"tar": plain, "gzip": work / "layer.tar.gz", "zstd": work / "layer.tar.zst"}
        subprocess.run(["gzip", "-6", "-k", str(plain)], check=True)
        blobs["zstd"].write_bytes(zstandard.ZstdCompressor(level=3).compress(data))
        with tarfile.open(plain) as archive:
            entries = sum(1 for _ in archive)
        print(f"layer: {args.source}, {len(data) / 1e6:.1f} MB uncompressed, "
              f"{entries} entries; unpacked in {work}; median of {args.runs}")
        print(f"{'blob':<8}{'GNU tar':>10}{'tarfile':>10}{'pyprov':>10}{'pyprov/tar':>12}"
              f"{'MB/s':>8}")
        has_zstd = shutil.which("zstd") is not None
        for kind, blob in blobs.items():
            tools: dict[str, Callable[[Path], object]] = {
                "ours": lambda dest, b=blob: unpack_layer(b, dest)}
            if kind != "zstd" or has_zstd:
                tools["tar"] = gnu_tar(blob, kind)
            if (extract := python_tarfile(blob, kind)) is not None:
                tools["tarfile"] = extract
            got = medians(tools, work, args.runs)

            def cell(name: str, got: dict[str, float] = got) -> str:
                return f"{got[name] * 1000:>8.0f}ms" if name in got else f"{'-':>10}"

            ratio = f"{got['ours'] / got['tar']:>12.2f}" if "tar" in got else f"{'-':>12}"
            print(f"{kind:<8}{cell('tar')}{cell('tarfile')}{cell('ours')}{ratio}"
                  f"{len(data) / got['ours'] / 1e6:>8.0f}")

if __name__ == "__main__":
    main()
