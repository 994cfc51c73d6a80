"""Benchmark: an unchanged pass over a fleet of sshd hosts: pyprov, Ansible, pyinfra, paramiko.

    sudo .venv/bin/python tests/bench/bench_fleet.py [--hosts 10 30] [--runs 3]

For each fleet size: bring a fleet up (tests.fleet, in /dev/shm), prebuild the wheel house
outside the fleet's networks, `pyprov bootstrap` it, converge one daemon.json with `pyprov
apply`, then time (median wall seconds, controller CPU per host) a pass that changes
nothing with: pyprov, ansible-playbook (copy, pipelining), pyinfra (files.put, its own venv
in /tmp/pyinfra-venv, installed if absent) and a minimal threaded paramiko script (the
floor). Every run is checked to reach every host and change nothing; one unmeasured
warm-up run per tool comes first. Also times the agent alone on one host, over ssh.
Not a test: nothing is asserted about time. Needs root (the fleet).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version as distribution_version
from pathlib import Path
from typing import NoReturn

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # run as a script: tests.fleet lives in the checkout
    sys.path.insert(0, str(REPO))

from controller.bootstrap.wheelhouse import HostPython, build_wheelhouse  # noqa: E402
from tests.fleet import Fleet  # noqa: E402

PY = sys.executable
PYINFRA_VENV = Path("/tmp/pyinfra-venv")
DAEMON_JSON = "/etc/docker/daemon.json"
MANIFEST = """\
kind: DaemonConfig
name: docker
settings:
  registry-mirrors: ["https://mirror.fleet.test"]
  insecure-registries: ["registry.fleet.test:5000"]
  log-driver: json-file
"""
PLAYBOOK = """\
- name: daemon.json, fleet-wide
  hosts: fleet
  gather_facts: false
  tasks:
    - name: daemon.json
      ansible.builtin.copy: {{src: {src}, dest: {dest}}}
"""
ANSIBLE_CFG = """\
[defaults]
forks = {forks}
host_key_checking = True
retry_files_enabled = False
[ssh_connection]
pipelining = True
"""
DEPLOY = """\
from pyinfra.operations import files

files.put(name="daemon.json", src={src!r}, dest={dest!r})
"""
FLOOR = """\
import json, socket, sys, threading
import paramiko

spec = json.load(open(sys.argv[1]))
expected = open(spec["expected"], "rb").read()
results = {}

def one(address, port):
    try:
        sock = socket.create_connection((address, port), timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client = paramiko.SSHClient()
        client.load_host_keys(spec["known_hosts"])
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client.connect(address, port, username="root", key_filename=spec["key"], sock=sock,
                       look_for_keys=False, allow_agent=False)
        _, out, _ = client.exec_command("cat %s" % spec["dest"])
        results[address] = out.read() == expected or "differs"
        client.close()
    except Exception as error:
        results[address] = repr(error)

threads = [threading.Thread(target=one, args=tuple(h)) for h in spec["hosts"]]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
bad = {a: r for a, r in results.items() if r is not True}
print("unchanged %d/%d %s" % (len(results) - len(bad), len(spec["hosts"]), bad or ""))
sys.exit(1 if bad or len(results) != len(spec["hosts"]) else 0)
"""
Check = Callable[[int, str], bool]  # (exit code, stdout + stderr): an unchanged pass?
Tool = tuple[str, list[str], dict[str, str], Check]


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def recap_check(names: list[str], pattern: str, code: int = 0) -> Check:
    """Every host has a recap line matching ``pattern`` (``{name}`` filled in), exit ``code``."""
    def check(returncode: int, output: str) -> bool:
        return returncode == code and all(
            re.search(pattern.format(name=re.escape(name)), output, re.MULTILINE)
            for name in names)
    return check


def reap_ssh_masters() -> None:
    """Stop the ControlPersist masters ansible left (orphans, reparented to us) and reap
    them, so that the next run starts cold and their CPU lands in RUSAGE_CHILDREN."""
    for entry in Path("/proc").iterdir():
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == os.getpid() and (entry / "comm").read_text().strip() == "ssh":
            os.kill(int(entry.name), signal.SIGTERM)
            os.waitpid(int(entry.name), 0)


def timed(fleet: Fleet, tool: Tool, runs: int) -> tuple[float, float]:
    """(median seconds, median controller CPU seconds) of ``runs`` checked runs, after one
    unmeasured warm-up."""
    name, argv, env, check = tool
    seconds, cpu = [], []
    for run in range(runs + 1):
        before, started = children_cpu(), time.perf_counter()
        done = fleet.run_in_controller(argv, env=env, cwd=REPO, capture_output=True,
                                       text=True, timeout=900)
        elapsed = time.perf_counter() - started
        reap_ssh_masters()
        if not check(done.returncode, done.stdout + done.stderr):
            raise SystemExit(f"{name}: not an unchanged pass on every host "
                             f"(exit {done.returncode}):\n{done.stdout[-3000:]}\n"
                             f"{done.stderr[-3000:]}")
        if run:
            seconds.append(elapsed)
            cpu.append(children_cpu() - before)
    return statistics.median(seconds), statistics.median(cpu)


def ensure_pyinfra() -> Path:
    pyinfra = PYINFRA_VENV / "bin" / "pyinfra"
    if not pyinfra.exists():
        subprocess.run(["python3", "-m", "venv", str(PYINFRA_VENV)], check=True)
        subprocess.run([str(PYINFRA_VENV / "bin" / "pip"), "install", "-q", "pyinfra"],
                       check=True)
    return pyinfra


def tools(fleet: Fleet, work: Path, expected: Path) -> list[Tool]:
    n, names, key = len(fleet.hosts), fleet.names, str(fleet.client_key)
    inventory, known_hosts = str(fleet.directory / "inventory.ini"), str(fleet.known_hosts)
    empty = work / "ssh_config"
    env = {**os.environ, "PYPROV_STATE_DIR": str(work / "controller-state")}
    pyprov = [PY, "-m", "controller", "apply", "-i", inventory, "--known-hosts", known_hosts,
              "--ssh-config", str(empty), "--forks", str(n), str(work / "manifests")]

    home = work / "ansible"
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    (work / "ansible.cfg").write_text(ANSIBLE_CFG.format(forks=n))
    (work / "site.yml").write_text(PLAYBOOK.format(src=expected, dest=DAEMON_JSON))
    ansible_env = {**os.environ, "ANSIBLE_CONFIG": str(work / "ansible.cfg"),
                   "ANSIBLE_HOME": str(home), "ANSIBLE_LOCAL_TEMP": str(home / "tmp"),
                   "ANSIBLE_REMOTE_TEMP": str(home / "remote-tmp"),
                   "ANSIBLE_SSH_CONTROL_PATH_DIR": str(home / "cp"),
                   "ANSIBLE_NOCOLOR": "1", "LC_ALL": "C.UTF-8"}
    ansible = [str(Path(PY).parent / "ansible-playbook"), "-i", inventory,
               "--forks", str(n), str(work / "site.yml")]

    hosts = [(h.name, {"ssh_hostname": h.address, "ssh_port": h.port, "ssh_user": "root",
                       "ssh_key": key, "ssh_known_hosts_file": known_hosts,
                       "ssh_strict_host_key_checking": "yes", "ssh_config_file": str(empty),
                       "ssh_look_for_keys": False, "ssh_allow_agent": False})
             for h in fleet.hosts]
    (work / "inventory.py").write_text(f"hosts = {hosts!r}\n")
    (work / "deploy.py").write_text(DEPLOY.format(src=str(expected), dest=DAEMON_JSON))
    pyinfra = [str(ensure_pyinfra()), str(work / "inventory.py"), str(work / "deploy.py"),
               "-y", "--parallel", str(n)]

    (work / "floor.py").write_text(FLOOR)
    (work / "floor.json").write_text(json.dumps({
        "hosts": [(h.address, h.port) for h in fleet.hosts], "key": key,
        "known_hosts": known_hosts, "expected": str(expected), "dest": DAEMON_JSON}))
    floor = [PY, str(work / "floor.py"), str(work / "floor.json")]
    connected = recap_check(names, r"^\s+\[{name}\] Connected$")
    unchanged = recap_check(names, r"^\s+\[{name}\] No changes$")
    total = rf"^\s+Grand total\s+{n}\s+-\s+-\s+{n}\s*$"

    return [
        ("pyprov", pyprov, env, recap_check(names, r"^{name}\s+: ok=1\s+changed=0\s+failed=0")),
        ("ansible", ansible, ansible_env, recap_check(
            names, r"^{name}\s+: ok=1\s+changed=0\s+unreachable=0\s+failed=0")),
        ("pyinfra", pyinfra, dict(os.environ), lambda code, out: connected(code, out)
         and unchanged(code, out) and re.search(total, out, re.MULTILINE) is not None),
        ("paramiko", floor, dict(os.environ), lambda code, _: code == 0),
    ]


def agent_alone(fleet: Fleet, work: Path, runs: int) -> tuple[float, float]:
    """(median ssh + agent no-op, median ``ssh HOST true``) on the first host."""
    name = fleet.names[0]
    desired = fleet.run_in_controller(
        [PY, "-m", "controller", "render", "-i", str(fleet.directory / "inventory.ini"),
         "--limit", name, str(work / "manifests")],
        cwd=REPO, capture_output=True, text=True, check=True).stdout
    medians = []
    for command in ("/opt/pyprov/bin/python -I -m agent apply", "true"):
        samples = []
        for run in range(runs + 1):
            started = time.perf_counter()
            done = fleet.run_in_controller(fleet.ssh_argv(name, command), input=desired,
                                           capture_output=True, text=True, timeout=60)
            if done.returncode != 0:
                raise SystemExit(f"{command} on {name}: exit {done.returncode}: "
                                 f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
            if run:
                samples.append(time.perf_counter() - started)
        medians.append(statistics.median(samples))
    return medians[0], medians[1]


def bench(n: int, runs: int) -> tuple[list[tuple[str, float, float]], tuple[float, float]]:
    with tempfile.TemporaryDirectory(prefix="bench-fleet-", dir="/dev/shm") as tmp:
        work = Path(tmp)
        fleet = Fleet.create(n, work / "fleet")
        try:
            (work / "manifests").mkdir()
            (work / "manifests" / "daemon.yml").write_text(MANIFEST)
            (work / "ssh_config").write_text("")
            common = ["-i", str(fleet.directory / "inventory.ini"), "--known-hosts",
                      str(fleet.known_hosts), "--ssh-config", str(work / "ssh_config"),
                      "--forks", str(n)]
            env = {**os.environ, "PYPROV_STATE_DIR": str(work / "controller-state")}
            for step in (["bootstrap", *common], ["apply", *common, str(work / "manifests")]):
                done = fleet.run_in_controller([PY, "-m", "controller", *step], cwd=REPO,
                                               env=env, capture_output=True, text=True)
                if done.returncode not in (0, 2):
                    raise SystemExit(f"pyprov {step[0]} failed ({done.returncode}):\n"
                                     f"{done.stdout[-3000:]}{done.stderr[-3000:]}")
            expected = work / "daemon.json"
            expected.write_bytes(fleet.run_in_controller(
                fleet.ssh_argv(fleet.names[0], f"cat {DAEMON_JSON}"),
                capture_output=True, check=True).stdout)
            rows = []
            for tool in tools(fleet, work, expected):
                print(f"  {n} hosts: {tool[0]}: {' '.join(tool[1])}", flush=True)
                rows.append((tool[0], *timed(fleet, tool, runs)))
            return rows, agent_alone(fleet, work, max(runs, 5))
        finally:
            fleet.destroy()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hosts", type=int, nargs="+", default=[10, 30])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    def interrupted(*_: object) -> NoReturn:
        raise KeyboardInterrupt

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # even if inherited ignored
        signal.signal(signum, interrupted)  # `finally` tears the fleet down either way
    # Orphans (ansible's ControlPersist masters) become our children: reaped and counted.
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    build_wheelhouse(HostPython.local(), distribution_version("pyprov"))  # outside the netns
    ensure_pyinfra()
    load = os.getloadavg()[0]
    results = {n: bench(n, args.runs) for n in args.hosts}
    print(f"\nload average (1 min) before: {load:.2f}, after: {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} CPUs (the hosts share them with the controller)")
    print(f"{'hosts':>5}  {'tool':<9}{'median s':>10}{'x pyprov':>10}{'CPU ms/host':>13}")
    for n, (rows, (agent_ssh, ssh_true)) in results.items():
        base = rows[0][1]
        for tool, seconds, cpu in rows:
            print(f"{n:>5}  {tool:<9}{seconds:>10.3f}{seconds / base:>10.2f}"
                  f"{cpu * 1000 / n:>13.1f}")
        print(f"{n:>5}  agent alone on one host: ssh+agent {agent_ssh * 1000:.0f} ms, "
              f"ssh true {ssh_true * 1000:.0f} ms, agent ~{(agent_ssh - ssh_true) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
