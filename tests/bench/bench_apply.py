"""Benchmark: the cost of a pass, against the interpreter floor measured in the same run.

    .venv/bin/python tests/bench/bench_apply.py [--runs 15]

Prints medians and ratios: an unchanged `pyprov apply` (controller + agent), the agent
alone, the agent's import time, and manifest validation throughput, next to
`python -c pass` (the floor any Python agent pays) measured on this machine now, and,
when an `ansible` command is found ($ANSIBLE or PATH), Ansible's unchanged `copy` of
the same daemon.json on localhost as the peer.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def median_seconds(command: list[str], runs: int, stdin: bytes = b"",
                   env: dict[str, str] | None = None) -> float:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, input=stdin, capture_output=True, check=False, cwd=REPO,
                       env=env)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def validation_rate(count: int) -> float:
    from controller.manifests.loader import load_manifests

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "many.yml"
        path.write_text("".join(
            f"---\nkind: Container\nname: c{i}\nimage: registry.test:5000/app:{i}\n"
            f"ports: [\"{10000 + i}:80\"]\nvolumes: [\"./d{i}:/data\"]\n"
            f"environment: {{A: '1', B: '2'}}\nrestart: always\n" for i in range(count)))
        started = time.perf_counter()
        documents = load_manifests([path])
        elapsed = time.perf_counter() - started
    assert len(documents) == count
    return count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    runs = parser.parse_args().runs
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "PYPROV_STATE_DIR": f"{tmp}/state"}
        manifest = Path(tmp) / "m.yml"
        manifest.write_text(f"kind: DaemonConfig\nname: d\npath: {tmp}/daemon.json\n"
                            "settings:\n  registry-mirrors: [\"https://m.test\"]\n")
        subprocess.run([py, "-m", "controller", "apply", str(manifest)], env=env, check=False,
                       capture_output=True, cwd=REPO)
        desired = subprocess.run([py, "-m", "controller", "render", str(manifest)], env=env,
                                 capture_output=True, check=True, cwd=REPO).stdout
        floor = median_seconds([py, "-c", "pass"], runs)
        floor_isolated = median_seconds([py, "-I", "-S", "-c", "pass"], runs)
        imports = median_seconds([py, "-c", "import agent.cli, agent.resources.daemon_config"],
                                 runs)
        agent_only = median_seconds([py, "-m", "agent", "apply"], runs, stdin=desired, env=env)
        full = median_seconds([py, "-m", "controller", "apply", str(manifest)], runs, env=env)
        ansible = os.environ.get("ANSIBLE") or shutil.which("ansible")
        peer = None
        if ansible:
            content = Path(tmp, "daemon.json").read_text()
            command = [ansible, "localhost", "-c", "local", "-i", "localhost,", "-m",
                       "ansible.builtin.copy", "-a",
                       f"content={json.dumps(content)} dest={tmp}/daemon.json mode=0644"]
            subprocess.run(command, capture_output=True, check=False)
            peer = median_seconds(command, runs)
    rate = validation_rate(1000)
    rows = [
        ("python -c pass (floor)", floor),
        ("python -I -S -c pass", floor_isolated),
        ("python -c 'import agent.cli ...'", imports),
        ("agent apply, nothing to change", agent_only),
        ("pyprov apply, nothing to change", full),
    ]
    if peer is not None:
        rows.append(("peer: ansible copy, nothing to change", peer))
    print(f"{'measure':<36}{'median':>10}{'x floor':>10}")
    for name, seconds in rows:
        print(f"{name:<36}{seconds * 1000:>8.1f}ms{seconds / floor:>10.2f}")
    print(f"validation: {rate:,.0f} Container documents/s (1,000 in one file)")
    if peer is not None:
        print(f"pyprov apply / ansible copy: {full / peer:.2f}")


if __name__ == "__main__":
    main()
