"""Container paths against hostile rootfs layouts, with openat2 and with the fd walk.

Every case that resolves or creates runs in a forked child whose mounts are read-only
but the test's temp dir (:func:`tests.unit.store.sandbox.sandboxed`): a resolution that
escaped to the host fails there instead of writing to it, and the host paths the links
aim at are compared before and after."""

from __future__ import annotations

import errno
import os
import pickle
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest

from agent.runtime import inroot
from agent.runtime.inroot import InRootError, open_in_root, resolve
from tests.unit.store.sandbox import sandboxed

T = TypeVar("T")
ESCAPE = f"pyprov-escaped-{secrets.token_hex(4)}"
"""A name no host path has: if it ever appears outside a root, something escaped."""


@pytest.fixture(params=["openat2", "walk"])
def kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each case twice: the kernel's RESOLVE_IN_ROOT, and the manual walk."""
    monkeypatch.setattr(inroot, "_have_openat2", None if request.param == "openat2" else False)
    return str(request.param)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    made = tmp_path / "rootfs"
    (made / "etc").mkdir(parents=True)
    (made / "etc" / "passwd").write_text("image passwd\n")
    return made


def link(root: Path, name: str, target: str) -> None:
    path = root / name.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target)


def host_state(*paths: Path) -> dict[str, object]:
    """What a write through a link would change: each path's entries and their times."""
    state: dict[str, object] = {}
    for path in paths:
        with os.scandir(path) as entries:
            names = sorted(e.name for e in entries)
        state[str(path)] = (names, path.stat().st_mtime_ns)
    return state


def confined(call: Callable[[], T], tmp_path: Path) -> T:
    """``call()`` in the sandbox; the host's /etc, /tmp and / are unchanged after it."""
    watched = (Path("/"), Path("/etc"), Path("/proc/self"))
    before = host_state(*watched)
    result = sandboxed(call, tmp_path)
    assert host_state(*watched) == before
    assert not Path("/tmp", ESCAPE).exists()
    assert not Path("/etc", ESCAPE).exists()
    return result


def test_etc_linked_to_slash_means_the_root(kind: str, root: Path, tmp_path: Path) -> None:
    (root / "etc" / "passwd").unlink()
    (root / "etc").rmdir()
    link(root, "etc", "/")
    (root / "passwd").write_text("the root's\n")
    assert resolve(root, "/etc/passwd") == root / "passwd"
    assert resolve(root, "/etc/etc/etc/") == root

    def write() -> Path:
        fd = open_in_root(root, f"/etc/{ESCAPE}", os.O_WRONLY | os.O_CREAT | os.O_EXCL)
        os.write(fd, b"hosts")
        os.close(fd)
        return resolve(root, f"/etc/{ESCAPE}.d/sub", create_dirs=True)

    assert confined(write, tmp_path) == root / f"{ESCAPE}.d" / "sub"
    assert (root / ESCAPE).read_bytes() == b"hosts"


def test_dotdot_above_the_root_stays_at_the_root(kind: str, root: Path,
                                                 tmp_path: Path) -> None:
    link(root, "data", "../../../../etc")
    link(root, "deep/er/up", "../../../../../../../../..")
    assert resolve(root, "/data/passwd") == root / "etc" / "passwd"
    assert resolve(root, "../../../../etc/passwd") == root / "etc" / "passwd"
    assert resolve(root, "/deep/er/up/etc") == root / "etc"
    fd = open_in_root(root, "/data/passwd", os.O_RDONLY)
    try:
        assert os.read(fd, 100) == b"image passwd\n"
    finally:
        os.close(fd)
    made = confined(lambda: resolve(root, f"/deep/er/up/{ESCAPE}", create_dirs=True), tmp_path)
    assert made == root / ESCAPE
    assert made.is_dir()


def test_a_link_loop_is_eloop(kind: str, root: Path) -> None:
    link(root, "a", "b")
    link(root, "b", "/a")
    link(root, "self", "self/x")
    for path in ("/a", "/a/x", "/self"):
        with pytest.raises(InRootError) as caught:
            resolve(root, path)
        assert caught.value.errno == errno.ELOOP
    with pytest.raises(InRootError) as caught:
        open_in_root(root, "/b", os.O_RDONLY)
    assert caught.value.errno == errno.ELOOP


def test_forty_links_resolve_and_forty_one_do_not(kind: str, root: Path) -> None:
    for index in range(41):
        link(root, f"l{index}", f"l{index + 1}" if index < 40 else "/etc")
    assert resolve(root, "/l1/passwd") == root / "etc" / "passwd"  # 40 links
    with pytest.raises(InRootError):
        resolve(root, "/l0/passwd")  # 41


def test_proc_self_fd_as_workdir_is_inside_the_root(kind: str, root: Path,
                                                    tmp_path: Path) -> None:
    made = confined(lambda: resolve(root, "/proc/self/fd/3", create_dirs=True, mode=0o750),
                    tmp_path)
    assert made == root / "proc" / "self" / "fd" / "3"
    assert made.is_dir()
    assert not made.is_symlink()
    assert (made.stat().st_mode & 0o777, made.stat().st_uid) == (0o750, 0)
    link(root, "run", "/proc/self/root")  # an image pointing at the magic link
    assert resolve(root, "/run/etc") == root / "proc" / "self" / "root" / "etc"


def test_volume_under_a_link_to_the_host_tmp(kind: str, root: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep").write_text("keep")
    link(root, "vol", "/tmp")
    link(root, "srv", str(victim))  # absolute: the victim's path *inside* the root
    before = host_state(victim)

    def make() -> tuple[Path, Path]:
        return (resolve(root, f"/vol/{ESCAPE}/target", create_dirs=True),
                resolve(root, f"/srv/{ESCAPE}", create_dirs=True))

    vol, srv = confined(make, tmp_path)
    assert vol == root / "tmp" / ESCAPE / "target"
    assert srv == root / str(victim).lstrip("/") / ESCAPE
    assert vol.is_dir()
    assert srv.is_dir()
    assert host_state(victim) == before


def test_missing_components_are_kept_as_named(kind: str, root: Path) -> None:
    link(root, "etc/alternatives", "/usr/lib/alt")
    assert resolve(root, "/etc/alternatives/x/./y/../z") == root / "usr/lib/alt/x/z"
    assert not (root / "usr").exists()


def test_open_creates_through_a_dangling_link_inside(kind: str, root: Path,
                                                     tmp_path: Path) -> None:
    (root / "run" / "systemd" / "resolve").mkdir(parents=True)
    link(root, "etc/resolv.conf", "/run/systemd/resolve/stub-resolv.conf")

    def write() -> None:
        fd = open_in_root(root, "/etc/resolv.conf", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.write(fd, b"nameserver 10.0.0.1\n")
        os.close(fd)

    confined(write, tmp_path)
    assert (root / "run/systemd/resolve/stub-resolv.conf").read_bytes().startswith(b"name")
    assert (root / "etc" / "resolv.conf").is_symlink()


def test_errors_carry_the_kernels_errno(kind: str, root: Path) -> None:
    with pytest.raises(InRootError) as caught:
        resolve(root, "/etc/passwd/below")
    assert caught.value.errno == errno.ENOTDIR
    with pytest.raises(InRootError) as caught:
        open_in_root(root, "/etc/missing", os.O_RDONLY)
    assert caught.value.errno == errno.ENOENT
    with pytest.raises(InRootError) as caught:
        open_in_root(root, "/no/such/file", os.O_WRONLY | os.O_CREAT)
    assert caught.value.errno == errno.ENOENT
    assert isinstance(caught.value, OSError)
    copy = pickle.loads(pickle.dumps(caught.value))  # noqa: S301 - our own bytes
    assert (type(copy), copy.errno) == (InRootError, errno.ENOENT)


def test_open_the_root_itself(kind: str, root: Path) -> None:
    fd = open_in_root(root, "/", os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert os.fstat(fd).st_ino == root.stat().st_ino
    finally:
        os.close(fd)
    assert resolve(root, "") == root


def test_this_kernel_has_openat2(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Else the "openat2" cases above would silently test the walk twice."""
    monkeypatch.setattr(inroot, "_have_openat2", None)
    resolve(root, "/etc/passwd")
    assert inroot._have_openat2 is True
