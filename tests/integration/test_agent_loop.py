"""``pyprov agent run``: the loop over the stored desired state, with real containers.

Enforce repairs a hand-edited daemon.json and a removed container within a few passes;
report mode only records them; a refused desired state leaves the last good one in
force; SIGTERM stops the agent and not the containers; kill -9 mid-pass, again and
again, and the next start converges with every stored file intact; an environment
value never appears in the agent's log, reports, status or any process title.
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from agent.resident import ask
from agent.runtime.records import ContainerStore
from agent.state import StateDir
from tests.conftest import REPO, write_manifest
from tests.integration.test_container_resource import Host, container_manifest, host
from tests.registry.server import Registry
from tests.waiting import wait_for

pytest_plugins = ["tests.registry.fixtures"]
__all__ = ["host"]  # the fixture, shared with the Container resource's tests

SECRET = "hunter2"  # noqa: S105 - DB_PASSWORD in container_manifest


def daemon_manifest(host: Host) -> Path:
    target = host.state.parent / "daemon.json"
    write_manifest(host.manifests, "daemon.yml", f"""\
kind: DaemonConfig
name: docker
path: {target}
settings:
  registry-mirrors: ["https://mirror.example"]
""")
    return target


@contextmanager
def agent_loop(host: Host, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """``agent run`` in the background (interval 0.3 s, no splay), stopped at the end."""
    log = host.state.parent / "agent-run.log"
    env = {**os.environ, "PYPROV_STATE_DIR": str(host.state)}
    with log.open("ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "agent", "run", "--interval", "0.3",
                                 "--splay", "0", "--max-backoff", "2", *args], cwd=REPO,
                                env=env, stdout=out, stderr=out)
    try:
        wait_for((host.state / "agent.sock").exists, f"the agent's socket: {log}")
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=60)



def status(host: Host) -> dict[str, object]:
    result = host("agent", "status", "--output", "json")
    assert result.code == 0, result.stderr
    answer: dict[str, object] = json.loads(result.stdout)
    return answer


def running(host: Host, name: str) -> bool:
    found = host.container(name)
    return bool(found and found["State"]["status"] == "running")  # type: ignore[index]


def test_enforce_repairs_drift_and_sigterm_leaves_containers_running(
        host: Host, registry: Registry) -> None:
    target = daemon_manifest(host)
    container_manifest(host.manifests, f"{registry.host}/busybox:oci")
    code, _ = host.apply()
    assert code == 2
    with agent_loop(host, "--metrics-file", str(host.state.parent / "pyprov.prom")) as proc:
        target.write_text('{"registry-mirrors": ["https://evil.example"]}\n')  # hand edits
        assert host("rm", "-f", "web").code == 0
        wait_for(lambda: json.loads(target.read_text()) == {
            "registry-mirrors": ["https://mirror.example"]}, "daemon.json repaired")
        wait_for(lambda: running(host, "web"), "the container recreated")
        seen = status(host)
        assert seen["running"] is True
        assert seen["mode"] == "enforce"
        assert int(seen["passes"]) >= 1  # type: ignore[call-overload]
        metrics = (host.state.parent / "pyprov.prom").read_text()
        assert 'pyprov_agent_up{mode="enforce"} 1' in metrics
        monitor = host.container("web")["State"]["monitor_pid"]  # type: ignore[index]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    assert not (host.state / "agent.sock").exists()
    assert running(host, "web")  # its monitor is not the agent's child
    os.kill(monitor, 0)
    assert status(host)["running"] is False
    # Secrets: environment values appear nowhere the agent writes or shows.
    leaks = [path for path in [host.state.parent / "agent-run.log",
                               *(host.state / "reports").iterdir()]
             if SECRET in path.read_text(errors="replace")]
    assert not leaks
    assert SECRET not in json.dumps(status(host))
    titles = [p for p in Path("/proc").glob("[0-9]*/cmdline")
              if SECRET.encode() in _read(p)]
    assert not titles


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def test_report_mode_records_drift_and_repairs_nothing(host: Host) -> None:
    target = daemon_manifest(host)
    assert host.apply()[0] == 2
    with agent_loop(host, "--mode", "report"):
        target.write_text('{"debug": true}\n')

        def drift_seen() -> bool:
            last = status(host).get("last_pass") or {}
            return bool(last.get("drift"))  # type: ignore[union-attr]
        wait_for(drift_seen, "the drift reported")
        assert json.loads(target.read_text()) == {"debug": True}
        fleet = host("drift", "--output", "json")
        assert fleet.code == 2, fleet.stdout + fleet.stderr
        local = json.loads(fleet.stdout)["hosts"]["localhost"]
        assert local["state"] == "drift"
        assert local["report"]["mode"] == "report"
        assert [e["name"] for e in local["report"]["drift"]] == ["docker"]
        table = host("drift")
        assert "DaemonConfig/docker" in table.stdout
    assert json.loads(target.read_text()) == {"debug": True}


def test_a_refused_desired_state_keeps_the_last_good_one_in_force(host: Host) -> None:
    target = daemon_manifest(host)
    assert host.apply()[0] == 2
    with agent_loop(host):
        wait_for((host.state / "desired.good.json").exists, "a good generation")
        (host.state / "desired.json").write_text('{"protocol": 1, "documents": [{"kind"')
        target.write_text("{}\n")
        wait_for(lambda: json.loads(target.read_text()) != {}, "repair by the last good one")
        wait_for(lambda: status(host).get("desired_error"), "the refusal in the status")
        assert "refused" in str(status(host)["desired_error"])
    once = host("agent", "run", "--once")
    assert once.code == 4
    assert "refused" in once.stderr
    assert "last good one is in force" in once.stderr


def test_kill_9_mid_pass_again_and_again_then_converges(host: Host, registry: Registry) -> None:
    image = f"{registry.host}/busybox:oci"
    target = daemon_manifest(host)
    for name in ("a", "b", "c"):
        write_manifest(host.manifests, f"{name}.yml", f"""\
kind: Container
name: {name}
image: {image}
entrypoint: ["sleep"]
command: ["600"]
environment: {{TOKEN: "{SECRET}"}}
""")
    assert host.apply()[0] == 2
    rng = random.Random(7)
    env = {**os.environ, "PYPROV_STATE_DIR": str(host.state)}
    for _ in range(6):
        target.write_text("{}\n")
        for name in ("a", "b", "c"):
            host("rm", "-f", name)
        proc = subprocess.Popen([sys.executable, "-m", "agent", "run", "--interval", "0.1",
                                 "--splay", "0"], cwd=REPO, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.4, 1.2))  # start-up ~0.3 s, then the pass is under way
        proc.kill()
        proc.wait()
    desired = json.loads((host.state / "desired.json").read_text())  # never half written
    assert sorted(d["name"] for d in desired["documents"]) == ["a", "b", "c", "docker"]
    first = host("agent", "run", "--once")
    assert first.code in (0, 2), first.stdout + first.stderr
    second = host("agent", "run", "--once")
    assert second.code == 0, second.stdout + second.stderr
    assert all(running(host, name) for name in ("a", "b", "c"))
    assert json.loads(target.read_text()) == {"registry-mirrors": ["https://mirror.example"]}
    store = ContainerStore(host.state / "containers")
    assert sorted(store.load(cid).name for cid in store.ids()) == ["a", "b", "c"]
    assert not store.incomplete()
    # Nothing leaked by the killed passes: one namespace and address per container.
    ids = sorted(store.ids())
    namespaces = sorted(p.name for p in (host.state / "network" / "netns").iterdir())
    attachments = sorted(p.stem for p in (host.state / "network" / "attachments").iterdir())
    assert namespaces == ids
    assert attachments == ids


def test_the_socket_answers_while_a_pushed_check_and_a_pass_wait(host: Host) -> None:
    daemon_manifest(host)
    assert host.apply()[0] == 2
    answers: list[dict[str, object] | None] = []
    with agent_loop(host):
        lock = os.open(host.state / "agent.lock", os.O_RDWR)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)  # an operator's apply holds the host
            pushed = threading.Thread(target=lambda: answers.append(
                ask(StateDir(host.state), ["check", "--output", "json"])))
            pushed.start()
            wait_for(lambda: status(host)["served"].get("check"),  # type: ignore[union-attr]
                     "the pushed check under way")
            assert pushed.is_alive()  # it waits for the lock, and the agent still answers
            assert status(host)["running"] is True
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
            os.close(lock)
        pushed.join(timeout=60)
    (answer,) = answers
    assert answer is not None
    assert answer["mode"] == "check"
    assert answer["exit"] == 0


def test_a_new_desired_state_or_sighup_passes_at_once(host: Host, tmp_path: Path) -> None:
    target = daemon_manifest(host)
    assert host.apply()[0] == 2
    with agent_loop(host, "--interval", "3600") as proc:  # no timed pass in this test
        wait_for(lambda: status(host)["passes"] == 1, "the first pass (splay 0: at once)")
        write_manifest(host.manifests, "daemon.yml", f"""\
kind: DaemonConfig
name: docker
path: {target}
settings:
  registry-mirrors: ["https://other-mirror.example"]
""")
        assert host.apply()[0] == 2  # localhost: the agent process, not the socket
        wait_for(lambda: status(host)["passes"] == 2, "a pass for the new desired state")
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: status(host)["passes"] == 3, "a pass on SIGHUP")
        assert status(host)["next_pass_in_s"] > 3000  # type: ignore[operator]


def test_failing_passes_back_off(host: Host, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where daemon.json's directory should be\n")
    write_manifest(host.manifests, "daemon.yml", f"""\
kind: DaemonConfig
name: docker
path: {blocker}/daemon.json
settings: {{debug: true}}
""")
    assert host.apply()[0] == 4
    with agent_loop(host, "--interval", "0.2", "--max-backoff", "30"):
        wait_for(lambda: int(status(host)["failures_in_a_row"]) >= 3,  # type: ignore[call-overload]
                 "three failed passes")
        seen = status(host)
        failures = int(seen["failures_in_a_row"])  # type: ignore[call-overload]
        assert seen["wait_s"] == min(0.2 * 2 ** (failures - 1), 30)  # 0.2, 0.4, 0.8...
        assert seen["last_pass"]["failed"][0]["kind"] == "DaemonConfig"  # type: ignore[index]
        text = host("agent", "status").stdout
        assert "failed" in text
        assert "DaemonConfig/docker" in text
