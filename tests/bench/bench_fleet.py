"""Benchmark: an unchanged pass over a fleet of sshd hosts: pyprov, Ansible, pyinfra, paramiko.

    sudo .venv/bin/python tests/bench/bench_fleet.py [--hosts 10 30] [--runs 3]

Per fleet size: a fleet (tests.fleet, /dev/shm), the wheel house prebuilt outside its netns,
`pyprov bootstrap` (which starts a resident agent per host), a converging `pyprov apply` of a
daemon.json; then medians (wall, CPU) of a pass that changes nothing by pyprov (resident
agents reached over forwarded channels), pyprov-exec (resident agents stopped: an agent
process per host and run), ansible-playbook (copy, pipelining), pyinfra (files.put;
venv /tmp/pyinfra-venv, made if absent) and a threaded paramiko script (the floor), from the
controller netns. Each tool gets a warm-up; every run must reach every host and change
nothing, and starts cold (ansible's ControlPersist masters are stopped, their CPU counted).
Also the agent alone on one host, over ssh. Asserts nothing about time. Needs root.
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
[thread.start() for thread in threads]
[thread.join() for thread in threads]
bad = {a: r for a, r in results.items() if r is not True}
print("unchanged %d/%d %s" % (len(results) - len(bad), len(spec["hosts"]), bad or ""))
sys.exit(1 if bad or len(results) != len(spec["hosts"]) else 0)
"""
Check = Callable[[int, str], bool]  # (exit code, stdout + stderr): an unchanged pass?
Tool = tuple[str, list[str], dict[str, str], Check]


def base_env(work: Path) -> dict[str, str]:
    """This machine sets PYTHONDONTWRITEBYTECODE, so the checkout (unlike the venvs) would be
    compiled on every run: every tool caches bytecode under the work dir (warm-ups fill it)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPYCACHEPREFIX": str(work / "pycache")}


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
            comm, rest = (entry / "stat").read_text().rsplit(")", 1)
        except (OSError, ValueError):
            continue
        if comm.endswith("(ssh") and int(rest.split()[1]) == os.getpid():
            os.kill(int(entry.name), signal.SIGTERM)
            os.waitpid(int(entry.name), 0)


def machine_cpu() -> float:
    """Busy CPU seconds of this whole machine: the hosts' sshd sessions and agents included
    (and whatever else runs here)."""
    user, nice, system, _, _, irq, softirq = map(int, Path("/proc/stat").read_text().split()[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def timed(fleet: Fleet, tool: Tool, runs: int, stdin: str = "") -> tuple[float, float, float]:
    """Medians of ``runs`` checked runs after an unmeasured warm-up: seconds, controller CPU
    seconds, machine CPU seconds."""
    name, argv, env, check = tool
    seconds, cpu, machine = [], [], []
    for run in range(runs + 1):
        before, busy, started = children_cpu(), machine_cpu(), time.perf_counter()
        done = fleet.run_in_controller(argv, env=env, cwd=REPO, capture_output=True,
                                       text=True, timeout=900, input=stdin)
        elapsed = time.perf_counter() - started
        reap_ssh_masters()
        if not check(done.returncode, done.stdout + done.stderr):
            raise SystemExit(f"{name}: not an unchanged pass on every host "
                             f"(exit {done.returncode}):\n{done.stdout[-3000:]}\n"
                             f"{done.stderr[-3000:]}")
        if run:
            seconds.append(elapsed)
            cpu.append(children_cpu() - before)
            machine.append(machine_cpu() - busy)
    return statistics.median(seconds), statistics.median(cpu), statistics.median(machine)


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
    env = {**base_env(work), "PYPROV_STATE_DIR": str(work / "controller-state")}
    pyprov = [PY, "-m", "controller", "apply", "-i", inventory, "--known-hosts", known_hosts,
              "--ssh-config", str(empty), "--forks", str(n), str(work / "manifests")]

    home = work / "ansible"
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    (work / "ansible.cfg").write_text(ANSIBLE_CFG.format(forks=n))
    (work / "site.yml").write_text(PLAYBOOK.format(src=expected, dest=DAEMON_JSON))
    ansible_env = {**base_env(work), "ANSIBLE_CONFIG": str(work / "ansible.cfg"),
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
             for h in fleet.hosts]  # strict host keys, the fleet's key only, no ~/.ssh/config
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
        ("pyinfra", pyinfra, base_env(work), lambda code, out: connected(code, out)
         and unchanged(code, out) and re.search(total, out, re.MULTILINE) is not None),
        ("paramiko", floor, base_env(work), lambda code, _: code == 0),
    ]


def agent_alone(fleet: Fleet, work: Path, runs: int) -> tuple[float, float]:
    """Medians of ``ssh HOST AGENT apply < desired.json`` and of ``ssh HOST true``, first host."""
    name = fleet.names[0]
    desired = fleet.run_in_controller(
        [PY, "-m", "controller", "render", "-i", str(fleet.directory / "inventory.ini"),
         "--limit", name, str(work / "manifests")],
        cwd=REPO, capture_output=True, text=True, check=True).stdout
    agent, true = (timed(fleet, (command, fleet.ssh_argv(name, command), base_env(work),
                                 lambda code, _: code == 0), runs, desired)[0]
                   for command in ("/opt/pyprov/bin/python -I -m agent apply", "true"))
    return agent, true


def _resident_agents(fleet: Fleet, running: bool) -> None:
    """Start (or stop) the resident agent on every host, as bootstrap's ``pyprov_agent``."""
    flag = "--detach" if running else "--stop"
    for name in fleet.names:
        done = fleet.ssh(name, f"/opt/pyprov/bin/python -I -m agent serve {flag}", timeout=60)
        if done.returncode not in (0, 2):
            raise SystemExit(f"agent serve {flag} failed on {name}: {done.stdout}{done.stderr}")


def converge(fleet: Fleet, work: Path) -> list[Tool]:
    """Manifests, bootstrap (a resident agent per host), a converging apply; then every
    tool to time, checked against the daemon.json the hosts now hold."""
    n = len(fleet.hosts)
    (work / "manifests").mkdir()
    (work / "manifests" / "daemon.yml").write_text(MANIFEST)
    (work / "ssh_config").write_text("")
    common = ["-i", str(fleet.directory / "inventory.ini"), "--known-hosts",
              str(fleet.known_hosts), "--ssh-config", str(work / "ssh_config"),
              "--forks", str(n)]
    env = {**base_env(work), "PYPROV_STATE_DIR": str(work / "controller-state")}
    # Here, where PyPI is reachable (the controller netns has no way out); just before
    # the bootstrap: the cache key is a digest of the checkout's sources.
    build_wheelhouse(HostPython.local(), distribution_version("pyprov"))
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
    return tools(fleet, work, expected)


def bench(n: int, runs: int) -> tuple[list[tuple[str, float, float, float]],
                                      tuple[float, float]]:
    with tempfile.TemporaryDirectory(prefix="bench-fleet-", dir="/dev/shm") as tmp:
        work = Path(tmp)
        fleet = Fleet.create(n, work / "fleet")
        try:
            rows = []
            every = converge(fleet, work)
            for tool in every:
                print(f"  {n} hosts: {tool[0]}: {' '.join(tool[1])}", flush=True)
                rows.append((tool[0], *timed(fleet, tool, runs)))
            exec_path = ("pyprov-exec", *every[0][1:])  # the same command, no resident agents
            _resident_agents(fleet, running=False)
            print(f"  {n} hosts: pyprov, an agent process started per host", flush=True)
            rows.insert(1, ("pyprov-exec", *timed(fleet, exec_path, runs)))
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
    ensure_pyinfra()
    load = os.getloadavg()[0]
    results = {n: bench(n, args.runs) for n in args.hosts}
    print(f"\nload average (1 min) before: {load:.2f}, after: {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} CPUs (the hosts share them with the controller)")
    print(f"{'hosts':>5}  {'tool':<9}{'median s':>10}{'x pyprov':>10}{'ctl CPU ms/host':>17}"
          f"{'machine CPU s':>15}")
    for n, (rows, (agent_ssh, ssh_true)) in results.items():
        base = rows[0][1]
        for tool, seconds, cpu, machine in rows:
            print(f"{n:>5}  {tool:<9}{seconds:>10.3f}{seconds / base:>10.2f}"
                  f"{cpu * 1000 / n:>17.1f}{machine:>15.2f}")
        print(f"{n:>5}  agent alone on one host: ssh+agent {agent_ssh * 1000:.0f} ms, "
              f"ssh true {ssh_true * 1000:.0f} ms, agent ~{(agent_ssh - ssh_true) * 1000:.0f} ms")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
