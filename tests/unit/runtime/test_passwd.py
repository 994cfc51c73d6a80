"""User resolution from generated /etc/passwd and /etc/group, docker's rules."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.runtime import passwd
from agent.runtime.passwd import ResolvedUser, UserError, resolve_user

PASSWD = """\
root:x:0:0:root:/root:/bin/sh
# a comment
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
broken:x:notanumber:5:uid is not a number:/nope:/bin/sh
short:x
www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin

app:x:1000:1000::/home/app:/bin/sh
app:x:1001:1001:second entry ignored:/elsewhere:/bin/sh
nohome:x:1002:1002::
"""  # noqa: S105 - a passwd file, not a password
GROUP = """\
root:x:0:
daemon:x:1:
www-data:x:33:
adm:x:4:app,daemon
staff:x:50: app ,other
bad:x:NaN:app
app:x:1000:
video:x:44:app
"""


@pytest.fixture
def root(tmp_path: Path) -> Path:
    made = tmp_path / "rootfs"
    (made / "etc").mkdir(parents=True)
    (made / "etc" / "passwd").write_text(PASSWD)
    (made / "etc" / "group").write_text(GROUP)
    return made


@pytest.mark.parametrize(("spec", "expected"), [
    (None, ResolvedUser(0, 0, (), "/root")),
    ("", ResolvedUser(0, 0, (), "/root")),
    ("root", ResolvedUser(0, 0, (), "/root")),
    ("app", ResolvedUser(1000, 1000, (4, 50, 44), "/home/app")),
    ("1000", ResolvedUser(1000, 1000, (4, 50, 44), "/home/app")),
    ("daemon", ResolvedUser(1, 1, (4,), "/usr/sbin")),
    ("33", ResolvedUser(33, 33, (), "/var/www")),
    ("4242", ResolvedUser(4242, 0, (), "/")),               # no entry: fine when numeric
    ("app:staff", ResolvedUser(1000, 50, (), "/home/app")),  # explicit: no supplementary
    ("app:44", ResolvedUser(1000, 44, (), "/home/app")),
    ("1000:777", ResolvedUser(1000, 777, (), "/home/app")),  # numeric gid need not exist
    ("4242:video", ResolvedUser(4242, 44, (), "/")),
    ("app:staff:ignored", ResolvedUser(1000, 50, (), "/home/app")),
    ("nohome", ResolvedUser(1002, 1002, (), "/")),
])
def test_docker_rules(root: Path, spec: str | None, expected: ResolvedUser) -> None:
    assert resolve_user(root, spec) == expected


@pytest.mark.parametrize(("spec", "missing"), [
    ("nobody", "no user named 'nobody'"),
    ("broken", "no user named 'broken'"),  # its line is malformed: skipped
    ("app:nogroup", "no group named 'nogroup'"),
    ("99999999999", "out of range"),
])
def test_unknown_names_are_errors(root: Path, spec: str, missing: str) -> None:
    with pytest.raises(UserError) as caught:
        resolve_user(root, spec)
    assert missing in caught.value.reason
    assert caught.value.spec


def test_no_files_numeric_only(tmp_path: Path) -> None:
    empty = tmp_path / "scratch"
    empty.mkdir()
    assert resolve_user(empty, "") == ResolvedUser(0, 0, (), "/")
    assert resolve_user(empty, "65534:65534") == ResolvedUser(65534, 65534, (), "/")
    with pytest.raises(UserError):
        resolve_user(empty, "root")


def test_passwd_linked_to_the_hosts_reads_the_images(root: Path) -> None:
    host = Path("/etc/passwd").read_text()
    host_root_home = next(line.split(":")[5] for line in host.splitlines()
                          if line.startswith("root:"))
    (root / "etc" / "passwd").unlink()
    (root / "etc" / "passwd").symlink_to("/etc/passwd")  # means root/etc/passwd: itself
    (root / "etc" / "group").unlink()
    (root / "etc" / "group").symlink_to("../../../../../../etc/image-group")
    (root / "etc" / "image-group").write_text("wheel:x:10:root\n")
    with pytest.raises(UserError) as caught:  # a link to itself: a loop, not the host's
        resolve_user(root, "root")
    assert host_root_home not in str(caught.value)

    (root / "etc" / "passwd").unlink()
    (root / "etc" / "passwd").symlink_to("/etc/shadow-of-passwd")
    (root / "etc" / "shadow-of-passwd").write_text("root:x:0:0::/image-root:/bin/sh\n")
    assert resolve_user(root, "root") == ResolvedUser(0, 0, (10,), "/image-root")


def test_passwd_linked_to_the_host_path_missing_in_the_image(root: Path) -> None:
    (root / "etc" / "passwd").unlink()
    (root / "etc" / "passwd").symlink_to("/host/etc/passwd")
    assert resolve_user(root, "") == ResolvedUser(0, 0, (), "/")
    with pytest.raises(UserError):
        resolve_user(root, "root")  # the host has a root; the image does not


def test_huge_files_are_refused(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwd, "MAX_FILE", 1 << 16)
    with (root / "etc" / "group").open("a") as out:
        out.write("filler:x:9:" + "a" * (1 << 17) + "\n")
    with pytest.raises(UserError) as caught:
        resolve_user(root, "app")
    assert "larger than" in caught.value.reason
    assert resolve_user(root, "4242") == ResolvedUser(4242, 0, (), "/")  # no group lookup


def test_a_fifo_or_device_is_not_read(root: Path) -> None:
    (root / "etc" / "passwd").unlink()
    os.mkfifo(root / "etc" / "passwd")  # opening it blocking would hang the agent
    with pytest.raises(UserError) as caught:
        resolve_user(root, "root")
    assert "not a regular file" in caught.value.reason
