"""Real containers from pyprov's own runtime: the busybox image of the test registry,
run through the host CLI (``pyprov run/ps/logs/exec/stop/start/restart/rm/port/top``),
isolated, networked through the bridge and NAT, with volumes, restart policies and
stop signals, and surviving the processes that started them.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO, Result
from tests.registry.server import Registry
from tests.waiting import wait_for

pytest_plugins = ["tests.registry.fixtures"]


@dataclass
class Host:
    state: Path
    image: str

    def __call__(self, *args: str, timeout: float = 60, stdin: str | None = None) -> Result:
        env = {**os.environ, "PYPROV_STATE_DIR": str(self.state)}
        done = subprocess.run([sys.executable, "-m", "controller", *args], cwd=REPO,
                              capture_output=True, text=True, timeout=timeout, env=env,
                              input=stdin, check=False)
        return Result(done.returncode, done.stdout, done.stderr)

    def ok(self, *args: str, timeout: float = 60) -> str:
        result = self(*args, timeout=timeout)
        assert result.code == 0, f"pyprov {' '.join(args)}: {result.stderr}"
        return result.stdout

    def inspect(self, name: str) -> dict[str, object]:
        return json.loads(self.ok("inspect", name))[0]  # type: ignore[no-any-return]



def http_get(url: str, timeout: float = 5) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 - test URLs
        return answer.read().decode()


def host_address() -> str:
    """A non-loopback address of this host (published ports answer on it through DNAT)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: no packet is sent
            return str(probe.getsockname()[0])
        except OSError:
            pass
    out = subprocess.run(["hostname", "-I"], capture_output=True, text=True, check=True)
    return out.stdout.split()[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))  # noqa: S104
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def host(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    state = tmp_path_factory.mktemp("containers") / "state"
    made = Host(state, f"{registry.host}/busybox:oci")
    made.ok("pull", "-q", made.image, timeout=120)
    yield made
    for line in made.ok("ps", "-aq", "--no-trunc").split():
        made("rm", "-f", "-v", line)
    leftovers = made.ok("ps", "-aq")
    _stop_zygote(state)
    assert not leftovers.strip(), f"containers left behind: {leftovers}"


def _stop_zygote(state: Path) -> None:
    found = subprocess.run(["pgrep", "-f", f"{state}/zygote.sock"], capture_output=True,
                           text=True, check=False)
    for pid in found.stdout.split():
        os.kill(int(pid), signal.SIGTERM)


def log_lines(host: Host, name: str) -> list[str]:
    return host.ok("logs", name).splitlines()


# -- isolation, environment, users ---------------------------------------------------------

def test_foreground_run_is_isolated_and_gets_its_environment(host: Host) -> None:
    result = host("run", "--rm", "--name", "iso", "-e", "SECRET_TOKEN=s3cr3t", "-e", "EMPTY=",
                  "-h", "box1", "--entrypoint", "sh", host.image, "-c",
                  "env; hostname; id -u; echo pid=$$; ls /proc/1/ns >/dev/null; "
                  "grep -E '^(CapEff|NoNewPrivs)' /proc/self/status; ls /proc/self/fd; "
                  "cat /etc/hostname; echo to-stderr >&2; exit 7")
    assert result.code == 7, result.stderr
    out = result.stdout.splitlines()
    assert "SECRET_TOKEN=s3cr3t" in out
    assert "EMPTY=" in out
    assert "GREETING=hello from pyprov" in out  # the image's Env, merged
    assert "box1" in out
    assert "33" in out  # the image's USER www, resolved from its own /etc/passwd
    assert "pid=1" in out  # a pid namespace of its own
    assert "NoNewPrivs:\t1" in out
    assert "CapEff:\t0000000000000000" in out  # a non-root user holds no capability
    fds = out[out.index("NoNewPrivs:\t1") + 1:][:4]
    assert fds == ["0", "1", "2", "3"], fds  # ls's own directory fd: nothing leaked
    assert "to-stderr" in result.stderr
    wait_for(lambda: "iso" not in host.ok("ps", "-a"), what="--rm removal")


def test_root_keeps_dockers_default_capabilities_and_a_private_dev(host: Host) -> None:
    result = host("run", "--rm", "-u", "0", "--entrypoint", "sh", host.image, "-c",
                  "grep -E '^Cap(Eff|Bnd)' /proc/self/status; ls /dev; "
                  "cat /proc/1/cmdline | tr '\\0' ' '; echo; mount | grep -c ' / '; "
                  "echo x > /proc/sysrq-trigger 2>&1 || echo ro-proc")
    assert result.code == 0, result.stderr
    out = result.stdout.splitlines()
    assert "CapEff:\t00000000a80425fb" in out
    assert "CapBnd:\t00000000a80425fb" in out
    devices = set(out[2:2 + 20])
    assert {"null", "zero", "full", "random", "urandom", "tty", "pts", "shm",
            "ptmx"} <= devices
    assert "sda" not in devices
    assert "kmsg" not in devices
    assert "ro-proc" in result.stdout


def test_a_file_written_inside_is_invisible_on_the_host_except_through_a_volume(
        host: Host, tmp_path: Path) -> None:
    shared = tmp_path / "shared" / "created-by-run"  # missing: made, as docker -v does
    host.ok("run", "--rm", "-u", "0", "-v", f"{shared}:/shared", "--entrypoint", "sh",
            host.image, "-c",
            "echo inside > /private.txt; echo shared > /shared/out.txt; touch /tmp/x")
    assert (shared / "out.txt").read_text() == "shared\n"
    assert not Path("/private.txt").exists()
    found = subprocess.run(["find", str(host.state), "-name", "private.txt"],
                           capture_output=True, text=True, check=False)
    assert found.stdout == ""  # removed with its container (--rm)


# -- network ---------------------------------------------------------------------------------

@pytest.fixture
def client_netns() -> Iterator[str]:
    """A second network namespace, routed to this host by a veth pair: a client "across
    the NAT", as another machine on the LAN would be."""
    name = f"pyc{os.getpid() % 10000}"
    subnet = f"10.214.{os.getpid() % 250}"
    host_end, ns_end = f"{name}h", f"{name}n"
    commands = [
        ["ip", "netns", "add", name],
        ["ip", "link", "add", host_end, "type", "veth", "peer", "name", ns_end],
        ["ip", "link", "set", ns_end, "netns", name],
        ["ip", "addr", "add", f"{subnet}.1/24", "dev", host_end],
        ["ip", "link", "set", host_end, "up"],
        ["ip", "-n", name, "addr", "add", f"{subnet}.2/24", "dev", ns_end],
        ["ip", "-n", name, "link", "set", ns_end, "up"],
        ["ip", "-n", name, "link", "set", "lo", "up"],
        ["ip", "-n", name, "route", "add", "default", "via", f"{subnet}.1"],
    ]
    try:
        for command in commands:
            subprocess.run(command, check=True, capture_output=True)
        yield f"{name}|{subnet}.1"
    finally:
        subprocess.run(["ip", "link", "del", host_end], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


def test_httpd_published_with_a_read_only_volume_answers_everywhere(
        host: Host, tmp_path: Path, client_netns: str) -> None:
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text("served from the host's volume\n")
    port = free_port()
    cid = host.ok("run", "-d", "--name", "web", "-p", f"{port}:80", "-v", f"{www}:/www:ro",
                  "-u", "0", "--entrypoint", "httpd", host.image, "-f", "-p", "80",
                  "-h", "/www").strip()
    try:
        assert len(cid) == 64
        wait_for(lambda: _answers(f"http://127.0.0.1:{port}/"), what="httpd via loopback")
        assert http_get(f"http://127.0.0.1:{port}/") == "served from the host's volume\n"
        assert http_get(f"http://{host_address()}:{port}/") == "served from the host's volume\n"
        netns, gateway = client_netns.split("|")
        fetched = subprocess.run(
            ["ip", "netns", "exec", netns, sys.executable, "-c",
             "import sys, urllib.request; sys.stdout.write(urllib.request.urlopen("
             f"'http://{gateway}:{port}/', timeout=5).read().decode())"],
            capture_output=True, text=True, timeout=30, check=False)
        assert fetched.stdout == "served from the host's volume\n", fetched.stderr
        assert host.ok("port", "web").strip() == f"80/tcp -> 0.0.0.0:{port}"
        assert f"0.0.0.0:{port}->80/tcp" in host.ok("ps")
        written = host("exec", "web", "sh", "-c", "echo x > /www/new")
        assert written.code != 0
        assert not (www / "new").exists()
        top = host.ok("top", "web")
        assert "httpd -f -p 80 -h /www" in top
    finally:
        host.ok("rm", "-f", "web")
    assert not _answers(f"http://127.0.0.1:{port}/")
    rules = subprocess.run(["iptables-save", "-t", "nat"], capture_output=True, text=True,
                           check=True).stdout
    assert cid[:12] not in rules
    assert f"--dport {port}" not in rules


def _answers(url: str) -> bool:
    try:
        http_get(url, timeout=1)
    except OSError:
        return False
    return True


def test_publish_without_a_host_port_picks_a_free_one(host: Host) -> None:
    host.ok("run", "-d", "--name", "anyport", "-p", "8080", "-u", "0", "--entrypoint", "httpd",
            host.image, "-f", "-p", "8080", "-h", "/srv/www")
    try:
        shown = host.ok("port", "anyport", "8080").strip()
        port = int(shown.rsplit(":", 1)[1])
        assert port != 8080 or shown
        wait_for(lambda: _answers(f"http://127.0.0.1:{port}/"), what="picked port")
        assert "hello from pyprov busybox" in http_get(f"http://127.0.0.1:{port}/")
    finally:
        host.ok("rm", "-f", "anyport")


def test_a_port_already_in_use_is_refused_before_anything_starts(host: Host) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))  # noqa: S104
        taken.listen()
        port = taken.getsockname()[1]
        result = host("run", "-d", "--name", "clash", "-p", f"{port}:80", host.image)
        assert result.code == 125
        assert f"{port}" in result.stderr
        assert "in use" in result.stderr
    assert "clash" not in host.ok("ps", "-a")


def test_network_none_and_host(host: Host) -> None:
    none = host.ok("run", "--rm", "--network", "none", "--entrypoint", "ls", host.image,
                   "/sys/class/net")
    assert none.split() == ["lo"]
    ours = sorted(p.name for p in Path("/sys/class/net").iterdir())
    shared = host.ok("run", "--rm", "--network", "host", "--entrypoint", "ls", host.image,
                     "/sys/class/net")
    assert sorted(shared.split()) == ours


# -- lifecycle -------------------------------------------------------------------------------

def test_on_failure_restarts_with_growing_delays_and_stops_after_n(host: Host) -> None:
    host.ok("run", "-d", "--name", "crashy", "--restart", "on-failure:3", "--entrypoint", "sh",
            host.image, "-c", "echo started; exit 2")
    try:
        wait_for(lambda: host.inspect("crashy")["State"]["status"] == "exited",  # type: ignore[index]
                 what="the restarts to run out")
        state = host.inspect("crashy")["State"]
        assert state["restart_count"] == 3
        assert state["exit_code"] == 2
        log = host.state / "containers" / str(host.inspect("crashy")["Id"])
        times = [json.loads(line)["time"] for line in
                 (log / f"{host.inspect('crashy')['Id']}-json.log").read_text().splitlines()]
        assert len(times) == 4
        stamps = [_seconds(t) for t in times]
        gaps = [b - a for a, b in itertools.pairwise(stamps)]
        assert gaps[0] < gaps[1] < gaps[2], gaps  # 100 ms, 200 ms, 400 ms: doubling
    finally:
        host.ok("rm", "-f", "crashy")


def _seconds(stamp: str) -> float:
    from agent.textfmt import parse_time

    when = parse_time(stamp)
    assert when is not None
    return when.timestamp()


def test_stop_sends_the_images_stop_signal(host: Host) -> None:
    # The busybox test image declares StopSignal SIGINT; the shell traps only INT.
    host.ok("run", "-d", "--name", "polite", "--entrypoint", "sh", host.image, "-c",
            "trap 'echo got INT; exit 0' INT; echo ready; while true; do sleep 0.1; done")
    try:
        wait_for(lambda: "ready" in host.ok("logs", "polite"), what="the trap to be set")
        host.ok("stop", "polite")
        state = host.inspect("polite")["State"]
        assert state["status"] == "exited", state  # type: ignore[index]
        assert state["exit_code"] == 0, state  # type: ignore[index]
        assert "got INT" in host.ok("logs", "polite")
    finally:
        host.ok("rm", "-f", "polite")


def test_exec_sees_the_containers_hostname_and_pid_1(host: Host) -> None:
    host.ok("run", "-d", "--name", "execd", "-h", "exec-box", "--entrypoint", "sleep",
            host.image, "300")
    try:
        hostname = host.ok("exec", "execd", "hostname").strip()
        assert hostname == "exec-box"
        init = host.ok("exec", "execd", "cat", "/proc/1/cmdline").strip("\0\n")
        assert init.split("\0") == ["sleep", "300"]
        code = host("exec", "execd", "sh", "-c", "exit 5")
        assert code.code == 5
    finally:
        host.ok("rm", "-f", "execd")


def test_restart_keeps_the_config_and_id(host: Host) -> None:
    cid = host.ok("run", "-d", "--name", "again", "-e", "KEEP=me", "--entrypoint", "sh",
                  host.image, "-c", "echo KEEP=$KEEP; sleep 300").strip()
    try:
        wait_for(lambda: "KEEP=me" in host.ok("logs", "again"))
        before = host.inspect("again")["State"]["pid"]  # type: ignore[index]
        host.ok("restart", "-t", "1", "again")
        after = host.inspect("again")
        assert after["Id"] == cid
        assert after["State"]["status"] == "running"
        assert after["State"]["pid"] != before  # type: ignore[index]
        wait_for(lambda: host.ok("logs", "again").count("KEEP=me") == 2)
    finally:
        host.ok("rm", "-f", "again")


def test_containers_outlive_the_zygote_and_the_agent(host: Host) -> None:
    host.ok("run", "-d", "--name", "survivor", "--restart", "always", "--entrypoint", "sleep",
            host.image, "300")
    try:
        pid = host.inspect("survivor")["State"]["pid"]
        _stop_zygote(host.state)
        time.sleep(0.2)
        assert host.inspect("survivor")["State"]["pid"] == pid
        assert "Up" in host.ok("ps")
        host.ok("run", "--rm", "--entrypoint", "true", host.image)  # a new zygote starts on demand
        assert host.inspect("survivor")["State"]["status"] == "running"  # type: ignore[index]
    finally:
        host.ok("rm", "-f", "survivor")


# -- hostile input ---------------------------------------------------------------------------

def test_a_volume_source_through_a_symlink_is_refused(host: Host, tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    result = host("run", "--name", "linked", "-v", f"{tmp_path}/link:/data",
                  "--entrypoint", "true", host.image)
    assert result.code == 125
    assert "symbolic link" in result.stderr
    assert "linked" not in host.ok("ps", "-a")


def test_rm_refuses_a_running_container_without_force(host: Host) -> None:
    host.ok("run", "-d", "--name", "busy", "--entrypoint", "sleep", host.image, "300")
    try:
        refused = host("rm", "busy")
        assert refused.code == 4
        assert "running" in refused.stderr
        assert "busy" in host.ok("ps")
    finally:
        host.ok("rm", "-f", "busy")


@pytest.fixture
def hostile_images(scratch_registry: Registry) -> dict[str, str]:
    from tests.registry import images as build
    from tests.registry.client import push

    base = build.busybox_base_entries()
    without_passwd = [e for e in base if getattr(e, "path", "") != "etc/passwd"]
    made = {
        "escape": build.build_image([base, [build.symlink("data", "../../../../etc"),
                                            build.symlink("abs", "/etc")]],
                                    build.BUSYBOX_CONFIG),
        "passwd": build.build_image([without_passwd,
                                     [build.symlink("etc/passwd", "../../../../etc/passwd")]],
                                    build.BUSYBOX_CONFIG),
    }
    for tag, image in made.items():
        push(scratch_registry, "hostile", tag, image)
    return {tag: f"{scratch_registry.host}/hostile:{tag}" for tag in made}


def test_volume_targets_through_links_in_the_image_stay_inside(
        host: Host, hostile_images: dict[str, str], tmp_path: Path) -> None:
    source = tmp_path / "vol"
    source.mkdir()
    (source / "marker").write_text("from the volume\n")
    target = f"pyprov-escape-{os.getpid()}"
    out = host.ok("run", "--rm", "-u", "0", "-v", f"{source}:/data/{target}",
                  "-v", f"{source}:/abs/{target}-abs", "--entrypoint", "sh",
                  hostile_images["escape"], "-c",
                  f"cat /etc/{target}/marker /etc/{target}-abs/marker")
    assert out == "from the volume\n" * 2
    assert not Path(f"/etc/{target}").exists()
    assert not Path(f"/etc/{target}-abs").exists()


def test_an_image_passwd_linking_to_the_hosts_is_never_the_hosts(
        host: Host, hostile_images: dict[str, str]) -> None:
    host_only = next(line.split(":")[0] for line in Path("/etc/passwd").read_text().splitlines()
                     if line.split(":")[0] not in ("root", "www"))
    result = host("run", "--rm", "--name", "pw", "-u", host_only, "--entrypoint", "id",
                  hostile_images["passwd"])
    assert result.code == 125, result
    assert "user" in result.stderr, result
    assert "pw" not in host.ok("ps", "-a")


def test_an_image_in_use_is_kept_until_its_containers_go(host: Host) -> None:
    host.ok("tag", host.image, "127.0.0.1:1/kept:1")
    host.ok("run", "-d", "--name", "user", "--entrypoint", "sleep", "127.0.0.1:1/kept:1", "300")
    try:
        host.ok("rmi", "127.0.0.1:1/kept:1")  # another name remains: just untagged
        refused = host("rmi", host.image)  # the last name of an image a container uses
        assert refused.code == 4
        assert "user" in refused.stderr
        host.ok("rmi", "-f", host.image)
        host.ok("stop", "-t", "0", "user")
        host.ok("start", "user")  # its layers were kept for it
        assert host.inspect("user")["State"]["status"] == "running"  # type: ignore[index]
    finally:
        host.ok("rm", "-f", "user")
        host.ok("pull", "-q", host.image)


def test_a_container_that_exits_gives_its_ports_back(host: Host) -> None:
    port = free_port()
    host.ok("run", "-d", "--name", "brief", "-p", f"{port}:80", "--entrypoint", "sleep",
            host.image, "0.5")
    try:
        def nat_rules() -> str:
            return subprocess.run(["iptables-save", "-t", "nat"], capture_output=True,
                                  text=True, check=True).stdout
        assert f"--dport {port}" in nat_rules()
        wait_for(lambda: f"--dport {port}" not in nat_rules(), what="the exit clean-up")
        wait_for(lambda: host.inspect("brief")["NetworkSettings"]["Ports"] == [],  # type: ignore[index]
                 what="the record to drop its ports")
        with socket.socket() as again:
            again.bind(("0.0.0.0", port))  # noqa: S104 - free again
    finally:
        host.ok("rm", "-f", "brief")


def test_named_volumes_are_filled_from_the_image_and_shared_through_volumes_from(
        host: Host) -> None:
    volume = f"data{os.getpid()}"
    host.ok("run", "--rm", "--name", "filler", "-u", "0", "-v", f"{volume}:/var/www",
            "--entrypoint", "sh", host.image, "-c", "ls -n /var/www; echo kept > /var/www/new")
    data = host.state / "volumes" / volume / "_data"
    assert (data / "owned-by-www").read_text() == "uid 33\n"  # copied up from the image
    assert (data / "owned-by-www").stat().st_uid == 33
    host.ok("run", "-d", "--name", "holder", "-v", f"{volume}:/var/www", "--entrypoint",
            "sleep", host.image, "300")
    try:
        out = host.ok("run", "--rm", "--volumes-from", "holder:ro", "-u", "0",
                      "--entrypoint", "sh", host.image, "-c",
                      "cat /var/www/new; echo x > /var/www/other || echo read-only")
        assert out.splitlines()[0] == "kept"
        assert out.splitlines()[-1] == "read-only"
    finally:
        host.ok("rm", "-f", "holder")
    assert data.is_dir()  # a named volume outlives its containers


def test_resource_limits_reach_the_cgroup(host: Host) -> None:
    host.ok("run", "-d", "--name", "limited", "-m", "64m", "--pids-limit", "40",
            "--cpus", "0.5", "--entrypoint", "sleep", host.image, "300")
    try:
        cid = str(host.inspect("limited")["Id"])
        from agent.runtime.cgroups import detect

        driver = detect()
        stats = driver.stats(f"pyprov/{cid}")
        assert stats.get("pids_current", 1) >= 1
        procs = [Path(p).read_text().split() for p in driver.procs_files(f"pyprov/{cid}")]
        pid = str(host.inspect("limited")["State"]["pid"])  # type: ignore[index]
        assert all(pid in listed for listed in procs)
        memory = [p for p in driver.procs_files(f"pyprov/{cid}") if "memory" in str(p)]
        if memory:  # cgroup v1 (this machine)
            limit = memory[0].with_name("memory.limit_in_bytes").read_text().strip()
            assert limit == str(64 << 20)
            pids = next(p for p in driver.procs_files(f"pyprov/{cid}") if "pids" in str(p))
            assert pids.with_name("pids.max").read_text().strip() == "40"
    finally:
        host.ok("rm", "-f", "limited")


def test_logs_tail_and_follow(host: Host) -> None:
    host.ok("run", "-d", "--name", "talker", "--entrypoint", "sh", host.image, "-c",
            "for i in 1 2 3 4 5; do echo line$i; done; sleep 0.5; echo last >&2")
    try:
        followed = host("logs", "-f", "talker")
        assert followed.stdout.split() == [f"line{i}" for i in range(1, 6)]
        assert followed.stderr.strip() == "last"
        tail = host("logs", "--tail", "2", "talker")  # the last two of both streams
        assert tail.stdout.split() == ["line5"]
        assert tail.stderr.split() == ["last"]
        stamped = host("logs", "-t", "--tail", "1", "talker").stderr.split()
        assert stamped[1] == "last"
        assert _seconds(stamped[0]) > time.time() - 600
    finally:
        host.ok("rm", "-f", "talker")


def test_a_resident_agent_runs_host_commands_in_warm_workers(host: Host) -> None:
    """With ``agent serve`` up, ``run`` and ``ps`` are answered by a worker it forks, on
    the caller's own stdio, with the same results and exit codes."""
    assert host("agent", "serve", "--detach").code == 2  # started: a change
    try:
        result = host("run", "--rm", "-e", "WHO=worker", "--entrypoint", "sh", host.image,
                      "-c", "echo $WHO; echo oops >&2; exit 3")
        assert result.code == 3
        assert result.stdout == "worker\n"
        assert result.stderr == "oops\n"
        assert "CONTAINER ID" in host.ok("ps", "-a")
        log = (host.state / "agent.log").read_text()
        assert "forked a worker for run" in log
        assert "forked a worker for ps" in log
    finally:
        assert host("agent", "serve", "--stop").code == 2


def test_the_resident_agent_restarts_what_must_run_after_a_reboot(host: Host) -> None:
    host.ok("run", "-d", "--name", "always-on", "--restart", "always", "--entrypoint",
            "sleep", host.image, "300")
    host.ok("run", "-d", "--name", "left-stopped", "--restart", "unless-stopped",
            "--entrypoint", "sleep", host.image, "300")
    host.ok("stop", "-t", "0", "left-stopped")
    try:
        state = host.inspect("always-on")["State"]
        os.kill(state["monitor_pid"], signal.SIGKILL)  # type: ignore[index]  # a reboot
        os.kill(state["pid"], signal.SIGKILL)  # type: ignore[index]
        wait_for(lambda: host.inspect("always-on")["State"]["status"] == "dead")  # type: ignore[index]
        assert host("agent", "serve", "--detach").code == 2
        assert host.inspect("always-on")["State"]["status"] == "running"  # type: ignore[index]
        assert host.inspect("left-stopped")["State"]["status"] == "exited"  # type: ignore[index]
    finally:
        host("agent", "serve", "--stop")
        host.ok("rm", "-f", "always-on", "left-stopped")


def test_run_with_a_terminal_and_with_stdin(host: Host) -> None:
    """``run -it``: a terminal of the container's own devpts, keys in, output out, the exit
    code back; ``run -i``: the caller's stdin is the container's."""
    import pty
    import select as selects

    env = {**os.environ, "PYPROV_STATE_DIR": str(host.state)}
    child, terminal = pty.fork()
    if child == 0:  # the caller, on a terminal
        os.chdir(REPO)
        os.execve(sys.executable, [sys.executable, "-m", "controller", "run", "-it", "--rm",  # noqa: S606
                                   "--entrypoint", "sh", host.image, "-c",
                                   "tty; test -t 0 && echo IS-A-TTY; read line; "
                                   "echo got:$line; exit 4"], env)
    seen = b""
    deadline = time.monotonic() + 30
    sent = False
    while time.monotonic() < deadline:
        ready, _, _ = selects.select([terminal], [], [], 0.2)
        if ready:
            try:
                data = os.read(terminal, 4096)
            except OSError:
                break
            if not data:
                break
            seen += data
        if not sent and b"IS-A-TTY" in seen:
            os.write(terminal, b"typed\r")
            sent = True
    code = os.waitstatus_to_exitcode(os.waitpid(child, 0)[1])
    os.close(terminal)
    text = seen.decode(errors="replace")
    assert code == 4, text
    assert "/dev/pts/0" in text  # the container's own devpts instance
    assert "got:typed" in text
    piped = subprocess.run([sys.executable, "-m", "controller", "run", "-i", "--rm",
                            "--entrypoint", "sh", host.image, "-c", "cat; echo end"],
                           input="line one\nline two\n", capture_output=True, text=True,
                           env=env, cwd=REPO, timeout=60, check=False)
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == "line one\nline two\nend\n"
