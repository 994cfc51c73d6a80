"""The agent on its own, on the real sshd fleet: bootstrap installs it as asked by the
inventory (systemd unit, drift cron entry), loop agents repair (or only report) hand
edits, a push reaches them without starting a process, Debian's cron runs the drift
check for real, and ``pyprov drift`` gathers the fleet's reports.

The fleet has no systemd as PID 1: bootstrap starts the loop detached, as it does on
such hosts, and still installs the unit (checked with ``systemd-analyze verify``).
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.fleet import Fleet
from tests.integration.test_fleet_apply import bootstrapped, daemon_json, pyprov, site
from tests.waiting import wait_for

pytest_plugins = ["tests.fleet.fixtures"]
__all__ = ["bootstrapped", "site"]  # fixtures shared with the controller's fleet tests

UNIT = "/etc/systemd/system/pyprov-agent.service"
CRON = "/etc/cron.d/pyprov-drift"
EDIT = '{"registry-mirrors": ["https://evil.example"]}'



def agent_status(fleet: Fleet, name: str) -> dict[str, object]:
    done = fleet.ssh(name, "/opt/pyprov/bin/python -I -m agent status --output json")
    assert done.returncode == 0, done.stderr
    answer: dict[str, object] = json.loads(done.stdout)
    return answer


def inventory(fleet: Fleet, root: Path, host_vars: dict[str, str]) -> list[str]:
    fleet.write_inventory(root / "hosts.ini", groups={"registry": [fleet.names[0]]})
    (root / "host_vars").mkdir(exist_ok=True)
    for name in fleet.names:
        (root / "host_vars" / f"{name}.yml").write_text(host_vars.get(name, ""))
    return ["-i", str(root / "hosts.ini"), "--known-hosts", str(fleet.known_hosts),
            "--ssh-config", str(root / "ssh_config")]


def test_loop_agents_repair_or_report_cron_checks_and_drift_gathers(
        bootstrapped: Fleet, site: Path, mutable_fleet: Fleet, tmp_path: Path) -> None:
    fleet = mutable_fleet
    enforcing, reporting, cron_only = fleet.names[:3]
    (tmp_path / "ssh_config").write_text("")
    loop = "pyprov_agent: loop\npyprov_agent_interval: 1\n"
    args = inventory(fleet, tmp_path, {
        enforcing: loop + "pyprov_mode: enforce\n",
        reporting: loop + "pyprov_mode: report\n",
        cron_only: "pyprov_agent: none\npyprov_drift_cron: '* * * * *'\n"
                   "pyprov_drift_delay: 0\n"})
    try:
        first = pyprov(fleet, "bootstrap", *args)
        assert first.returncode == 2, first.stdout + first.stderr
        again = pyprov(fleet, "bootstrap", *args, "--output", "json")
        assert again.returncode == 0, again.stdout + again.stderr  # nothing rendered twice
        for name in (enforcing, reporting):
            assert fleet.ssh(name, f"test -f {UNIT} && test ! -e {CRON}").returncode == 0
            verify = fleet.ssh(name, f"systemd-analyze verify {UNIT}")
            assert verify.returncode == 0, verify.stdout + verify.stderr
            assert agent_status(fleet, name)["running"] is True
        unit = fleet.ssh(enforcing, f"cat {UNIT}").stdout
        assert "KillMode=process" in unit
        assert "--mode enforce --interval 1 " in unit
        assert "--mode report" in fleet.ssh(reporting, f"cat {UNIT}").stdout
        assert fleet.ssh(cron_only, f"test ! -e {UNIT} && test -f {CRON}").returncode == 0
        assert agent_status(fleet, cron_only)["running"] is False

        # A push reaches the loop agents over forwarded channels: no session, no process.
        logs = {n: fleet.host(n).dirs.sshd_log.read_text(errors="replace")
                for n in fleet.names}
        applied = pyprov(fleet, "apply", *args, str(site / "site.yml"))
        assert applied.returncode == 2, applied.stdout + applied.stderr
        for name in (enforcing, reporting):
            new = fleet.host(name).dirs.sshd_log.read_text(errors="replace")[len(logs[name]):]
            assert "Starting session" not in new, new
            served = agent_status(fleet, name)["served"]
            assert served.get("apply") == 1, served  # type: ignore[union-attr]
        wanted = daemon_json(fleet, enforcing)
        assert wanted is not None

        # Debian's cron runs the installed entry: a report appears within the minute.
        assert fleet.ssh(cron_only, "cron").returncode == 0
        for name in (enforcing, reporting):
            fleet.ssh(name, f"echo '{EDIT}' > /etc/docker/daemon.json")
        wait_for(lambda: daemon_json(fleet, enforcing) == wanted, "the loop's repair")

        def reported() -> bool:
            last = agent_status(fleet, reporting).get("last_pass") or {}
            return bool(last.get("drift"))  # type: ignore[union-attr]
        wait_for(reported, "the report-mode drift")
        assert daemon_json(fleet, reporting) == json.loads(EDIT)  # reported, not repaired
        wait_for(lambda: fleet.ssh(cron_only, "ls /var/lib/pyprov/reports/check-*.json")
                 .returncode == 0, "cron's drift check", timeout=150)

        gathered = pyprov(fleet, "drift", *args, "--output", "json")
        assert gathered.returncode == 2, gathered.stdout + gathered.stderr
        states = {n: h["state"] for n, h in json.loads(gathered.stdout)["hosts"].items()}
        assert states == {enforcing: "in_sync", reporting: "drift", cron_only: "in_sync"}
        table = pyprov(fleet, "drift", *args, "--now")
        assert table.returncode == 2
        rows = [line.split()[:2] for line in table.stdout.splitlines()[1:] if line.strip()]
        assert [reporting, "DaemonConfig/docker"] in rows, table.stdout
        assert "Secsh channel" not in table.stderr  # a host without agent refuses quietly

        # The inventory stops asking: the cron entry and the loops go, the unit with them.
        args = inventory(fleet, tmp_path, dict.fromkeys(fleet.names, "pyprov_agent: none\n"))
        removed = pyprov(fleet, "bootstrap", *args)
        assert removed.returncode == 2, removed.stdout + removed.stderr
        for name in fleet.names:
            assert fleet.ssh(name, f"test ! -e {UNIT} && test ! -e {CRON}").returncode == 0
            assert agent_status(fleet, name)["running"] is False
    finally:
        fleet.ssh(cron_only, "test -f /run/crond.pid && kill $(cat /run/crond.pid)")
        for name in fleet.names:
            fleet.ssh(name, "/opt/pyprov/bin/python -I -m agent run --stop")
