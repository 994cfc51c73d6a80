"""The DaemonConfig plan is a pure function: observed state in, action out."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agent.model import DaemonConfig
from agent.reconcile.actions import Options
from agent.resources.daemon_config.dockerd import Dockerd
from agent.resources.daemon_config.observe import ObservedDaemonConfig, parse_document
from agent.resources.daemon_config.ownership import Ownership, Pending
from agent.resources.daemon_config.plan import plan

PATH = "/etc/docker/daemon.json"
DOCKERD = Dockerd(pid=4242, config_file=PATH, manager=None, start_ticks=1000)


def doc(**settings: Any) -> DaemonConfig:
    return DaemonConfig(kind="DaemonConfig", name="d", path=PATH, settings=settings)


def observed(raw: str | None, dockerd: Dockerd | None = None,
             ownership: Ownership | None = None) -> ObservedDaemonConfig:
    data = raw.encode() if raw is not None else None
    parsed, error = parse_document(data) if data is not None else (None, None)
    return ObservedDaemonConfig(PATH, data, parsed, error, dockerd, ownership or Ownership())


def test_absent_file_is_created() -> None:
    action = plan(doc(debug=True), observed(None), Options(diff=True))
    assert action.op == "create"
    assert json.loads(action.payload.content) == {"debug": True}
    assert action.diff is not None
    assert action.diff.startswith("--- /dev/null")


def test_equal_settings_plan_nothing_whatever_the_formatting() -> None:
    action = plan(doc(debug=True, labels=["a"]),
                  observed('{"labels":["a"],"debug":true,"x-foreign":1}'), Options())
    assert action.op == "none"
    assert not action.changes_host


def test_one_is_not_true() -> None:
    action = plan(doc(debug=True), observed('{"debug": 1}'), Options())
    assert action.op == "update"
    assert action.changes == ("debug",)


def test_foreign_keys_keep_their_place_and_new_keys_follow() -> None:
    action = plan(doc(**{"registry-mirrors": ["https://m.test"], "debug": False}),
                  observed('{"b": 1, "debug": true, "a": 2}'), Options())
    assert list(json.loads(action.payload.content)) == ["b", "debug", "a", "registry-mirrors"]
    assert action.changes == ("registry-mirrors", "debug")


def test_previously_owned_key_is_dropped_unowned_key_is_kept() -> None:
    action = plan(doc(debug=True), observed(
        '{"debug": true, "labels": ["x"], "mtu": 1400}',
        ownership=Ownership(owned_keys=("debug", "labels"))), Options())
    assert json.loads(action.payload.content) == {"debug": True, "mtu": 1400}
    assert action.changes == ("labels",)


@pytest.mark.parametrize("raw", ['{"debug": true,,}', "[1, 2]", "\xff"])
def test_unparsable_file_is_refused_without_force(raw: str) -> None:
    action = plan(doc(debug=True), observed(raw), Options())
    assert action.refused is not None
    assert "--force" in action.refused
    assert not action.changes_host


def test_unparsable_file_is_replaced_with_force_and_dockerd_restarted() -> None:
    action = plan(doc(debug=True), observed("{oops", DOCKERD), Options(force=True))
    assert action.op == "replace"
    assert action.payload.dockerd_step == "restart"


def test_empty_file_counts_as_empty_object() -> None:
    action = plan(doc(debug=True), observed(""), Options())
    assert action.op == "update"


@pytest.mark.parametrize(("settings", "step"), [
    ({"registry-mirrors": ["https://m.test"], "insecure-registries": ["r:5000"]}, "reload"),
    ({"debug": True, "labels": ["a=b"]}, "reload"),
    ({"registry-mirrors": ["https://m.test"], "log-driver": "journald"}, "restart"),
    ({"data-root": "/srv/docker"}, "restart"),
])
def test_reload_only_when_every_changed_key_is_reloadable(settings: dict[str, Any],
                                                         step: str) -> None:
    action = plan(doc(**settings), observed("{}", DOCKERD), Options())
    assert action.payload.dockerd_step == step
    assert step in action.summary


def test_unchanged_reloadable_key_does_not_force_restart() -> None:
    # log-driver is already right; only the mirrors change: a reload suffices.
    action = plan(doc(**{"log-driver": "journald", "registry-mirrors": ["https://m.test"]}),
                  observed('{"log-driver": "journald"}', DOCKERD), Options())
    assert action.payload.dockerd_step == "reload"


def test_no_dockerd_means_no_signal() -> None:
    action = plan(doc(debug=True), observed("{}"), Options())
    assert action.payload.dockerd_step == "none"


def test_owed_restart_is_planned_while_dockerd_predates_it() -> None:
    owed = Ownership(owned_keys=("debug",), pending=Pending("restart", DOCKERD.identity))
    action = plan(doc(debug=True), observed('{"debug": true}', DOCKERD, owed), Options())
    assert action.op == "restart"
    # A pid reused by a later dockerd is a different incarnation: the restart happened.
    restarted = Dockerd(pid=4242, config_file=PATH, manager=None, start_ticks=1001)
    assert plan(doc(debug=True), observed('{"debug": true}', restarted, owed),
                Options()).op == "none"


def test_diff_masks_proxy_passwords() -> None:
    action = plan(doc(proxies={"http-proxy": "http://bob:s3cret@proxy.test:3128"}),
                  observed("{}"), Options(diff=True))
    assert action.diff is not None
    assert "s3cret" not in action.diff
    assert "bob:*****@proxy.test" in action.diff


def test_no_diff_is_computed_unless_asked() -> None:
    action = plan(doc(debug=True), observed("{}"), Options())
    assert action.op == "update"
    assert action.diff is None


def test_owed_restart_is_not_downgraded_by_a_reloadable_change() -> None:
    owed = Ownership(owned_keys=("debug",), pending=Pending("restart", DOCKERD.identity))
    action = plan(doc(debug=True, labels=["a=b"]), observed('{"debug": true}', DOCKERD, owed),
                  Options())
    assert action.op == "update"
    assert action.payload.dockerd_step == "restart"


def test_owed_reload_is_replayed_when_the_file_is_already_right() -> None:
    owed = Ownership(owned_keys=("debug",), pending=Pending("reload", DOCKERD.identity))
    action = plan(doc(debug=True), observed('{"debug": true}', DOCKERD, owed), Options())
    assert action.op == "reload"
    assert action.changes_host


def test_missing_record_is_settled_as_bookkeeping_not_a_change() -> None:
    action = plan(doc(debug=True), observed('{"debug": true}'), Options())
    assert action.op == "none"
    assert action.bookkeeping
    assert not action.changes_host
    settled = Ownership(owned_keys=("debug",))
    assert not plan(doc(debug=True), observed('{"debug": true}', ownership=settled),
                    Options()).bookkeeping
