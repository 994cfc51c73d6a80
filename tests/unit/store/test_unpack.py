"""unpack_layer against real parts: the hostile corpus, the kernel's overlayfs as the
oracle for whiteouts, and GNU tar as the peer for a benign tree. Runs as root (chown,
mknod, trusted xattrs, mount), as the agent does."""

from __future__ import annotations

import hashlib
import io
import os
import random
import shutil
import stat
import struct
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import cast

import pytest

from agent.errors import StoreError, UnsafeLayer
from agent.store import unpack
from agent.store.unpack import UnpackResult, unpack_layer
from tests.unit.store.hostile_layers import (
    CASES,
    ESCAPED,
    MTIME,
    Case,
    _info,
    dir_,
    file,
    gz,
    hardlink,
    symlink,
    tar,
    xattrs,
    zst,
)
from tests.unit.store.sandbox import sandboxed

Snapshot = dict[str, tuple[object, ...]]
FIXED_NS = 1_500_000_000_123_456_789
CAP_NET_RAW = struct.pack("<5I", 0x02000001, 1 << 13, 0, 0, 0)  # vfs_cap_data v2, effective


# -- the victim beside dest, and what must not change --------------------------------

def _victim(root: Path) -> tuple[Path, Path]:
    """``root/victim`` (files, a dir, a symlink) and an empty ``root/dest`` beside it."""
    victim = root / "victim"
    (victim / "dir").mkdir(parents=True)
    (victim / "secret").write_bytes(b"secret")
    (victim / "secret").chmod(0o640)
    (victim / "dir" / "inner").write_bytes(b"inner")
    (victim / "link").symlink_to("secret")
    (root / "beside").write_bytes(b"beside")
    for path in (victim / "link", victim / "secret", victim / "dir" / "inner",
                 victim / "dir", victim, root / "beside"):
        os.utime(path, ns=(FIXED_NS, FIXED_NS), follow_symlinks=False)
    dest = root / "dest"
    dest.mkdir()
    return victim, dest


def snapshot(root: Path, skip: Path | None = None) -> Snapshot:
    """Every entry below ``root`` (``skip``'s subtree aside): type, mode, owner, size,
    mtime, links, inode, content or link target, xattrs."""
    found: Snapshot = {}
    for top, dirs, files in os.walk(root):
        if skip is not None and Path(top) == skip.parent:
            dirs[:] = [d for d in dirs if d != skip.name]
        for name in [".", *dirs, *files]:
            path = Path(top, name)
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode):
                body: object = hashlib.sha256(path.read_bytes()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                body = str(path.readlink())
            else:
                body = None
            xattr_names = () if stat.S_ISLNK(st.st_mode) else tuple(sorted(os.listxattr(path)))
            found[str(path.relative_to(root))] = (
                st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns, st.st_nlink,
                st.st_ino, body, xattr_names)
    return found


def host_probe(root: Path) -> tuple[object, ...]:
    """The host's /etc/passwd as stat sees it, and any ``pyprov-escaped*`` left about."""
    st = Path("/etc/passwd").stat()
    escaped = [str(p) for d in ("/", "/etc", "/tmp", root.parent, root)
               for p in Path(d).iterdir() if ESCAPED in p.name]
    return st.st_ino, st.st_size, st.st_mtime_ns, st.st_nlink, st.st_mode, escaped


def _remove_escapes(before: tuple[object, ...], after: tuple[object, ...]) -> None:
    """A failing unpacker's ``pyprov-escaped*`` litter is removed before the test fails."""
    for name in set(cast("list[str]", after[-1])) - set(cast("list[str]", before[-1])):
        path = Path(name)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def _names(dest: Path) -> Iterator[str]:
    for _, dirs, files in os.walk(dest):
        yield from dirs
        yield from files


# -- the hostile corpus --------------------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_hostile_layer(case: Case, tmp_path: Path) -> None:
    victim, dest = _victim(tmp_path)
    if case.lower is not None:
        unpack_layer(io.BytesIO(case.lower(victim)), dest, mode="apply")
    blob = case.build(victim)
    before = snapshot(tmp_path, skip=dest), host_probe(tmp_path)

    outcome: UnpackResult | UnsafeLayer
    try:  # a broken extractor must fail this test, not damage this machine
        outcome = sandboxed(lambda: unpack_layer(io.BytesIO(blob), dest, mode=case.mode,
                                                 max_size=case.max_size), tmp_path)
    except UnsafeLayer as refused:
        outcome = refused

    after = snapshot(tmp_path, skip=dest), host_probe(tmp_path)
    _remove_escapes(before[1], after[1])
    assert after == before
    assert not [n for n in _names(dest) if n.startswith(".wh.")], "a .wh. file was made"
    if case.expect == "refused":
        assert isinstance(outcome, UnsafeLayer), f"unpacked: {outcome}"
        assert case.why in str(outcome)
    else:
        assert isinstance(outcome, UnpackResult), f"refused: {outcome}"
        assert outcome.diff_id.startswith("sha256:")
        if case.check is not None:
            case.check(dest, outcome)


def test_corpus_is_broad() -> None:
    names = [case.name for case in CASES]
    assert len(names) == len(set(names))
    assert sum(case.expect == "refused" for case in CASES) >= 30
    assert all(case.why for case in CASES if case.expect == "refused")
    assert sum(case.expect == "confined" for case in CASES) >= 15


def test_mutated_layers_fail_only_as_store_errors(tmp_path: Path) -> None:
    """Random byte flips in a small layer: unpacked or refused, never a stray exception,
    never a write outside dest."""
    victim, dest = _victim(tmp_path)
    base = tar(dir_("a"), file("a/f", b"data" * 100, 0o4755), symlink("a/l", str(victim)),
               hardlink("a/h", "a/f"), xattrs(file("x", b"1"), user_k="v"),
               file("n" * 120, b"long"), file("z", b"z"))
    before = snapshot(tmp_path, skip=dest), host_probe(tmp_path)
    rng = random.Random(1234)
    blobs = []
    for _ in range(300):
        blob = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            blob[rng.randrange(3072)] = rng.randrange(256)
        blobs.append(bytes(blob))

    def unpack_all() -> None:
        for blob in blobs:
            with suppress(StoreError):
                unpack_layer(io.BytesIO(blob), dest)
            for child in dest.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()

    sandboxed(unpack_all, tmp_path)  # one child for all: a broken extractor stays inside
    assert (snapshot(tmp_path, skip=dest), host_probe(tmp_path)) == before


# -- what a benign layer becomes -----------------------------------------------------

def test_entry_kinds_ownership_modes_xattrs(tmp_path: Path) -> None:
    layer = tar(
        dir_("etc"), file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n"),
        file("bin/su", b"\x7fELF", 0o4755),
        file("bin/usersuid", b"\x7fELF", 0o6750, uid=1000, gid=1000),
        dir_("tmp", 0o1777), dir_("ro", 0o555), file("ro/inside", b"x", 0o444),
        dir_("home/user", 0o700, uid=1000, gid=1000),
        file("home/user/.profile", b"export A=1\n", 0o600, uid=1000, gid=1000),
        symlink("bin/sh", "busybox"),
        # dangling: lchown or lutimes that followed it would fail, not touch the host
        (_info("bin/owned-link", tarfile.SYMTYPE, 0o777, linkname="/nonexistent/x", uid=7,
               gid=8), b""),
        hardlink("bin/su2", "bin/su"),
        (_info("run/initctl", tarfile.FIFOTYPE, 0o600, uid=3), b""),
        xattrs(file("bin/ping", b"\x7fELF", 0o755),
               security_capability=CAP_NET_RAW.decode("utf-8", "surrogateescape"),
               user_mime="application/x-elf"),
        xattrs(dir_("data"), user_note="hello"),
    )
    dest = tmp_path / "layer"
    dest.mkdir()
    result = unpack_layer(io.BytesIO(layer), dest)

    def st(rel: str) -> os.stat_result:
        return os.lstat(dest / rel)

    def mode_owner(rel: str) -> tuple[int, int, int]:
        return stat.S_IMODE(st(rel).st_mode), st(rel).st_uid, st(rel).st_gid

    assert result.entries == 15
    assert result.skipped == ()
    assert (dest / "etc/passwd").read_bytes().startswith(b"root:x:0:0")
    assert mode_owner("bin/su") == (0o4755, 0, 0)
    assert mode_owner("bin/usersuid") == (0o6750, 1000, 1000)  # chown came before chmod
    assert mode_owner("tmp") == (0o1777, 0, 0)
    assert mode_owner("ro") == (0o555, 0, 0)
    assert (dest / "ro/inside").exists()
    assert mode_owner("home") == (0o755, 0, 0)  # implicit parent, as docker makes it
    assert mode_owner("home/user") == (0o700, 1000, 1000)
    assert mode_owner("run/initctl") == (0o600, 3, 0)
    assert stat.S_ISFIFO(st("run/initctl").st_mode)
    assert str((dest / "bin/sh").readlink()) == "busybox"
    assert (st("bin/owned-link").st_uid, st("bin/owned-link").st_gid) == (7, 8)
    assert st("bin/su2").st_ino == st("bin/su").st_ino
    assert os.getxattr(dest / "bin/ping", "security.capability") == CAP_NET_RAW
    assert os.getxattr(dest / "bin/ping", "user.mime") == b"application/x-elf"
    assert os.getxattr(dest / "data", "user.note") == b"hello"
    for rel in ("etc", "etc/passwd", "bin/su", "tmp", "ro", "home/user", "bin/sh",
                "run/initctl", "data"):
        assert st(rel).st_mtime_ns == MTIME * 10**9, rel


@pytest.mark.parametrize("compress", [
    pytest.param(lambda t: t, id="plain"),
    pytest.param(gz, id="gzip"),
    pytest.param(zst, id="zstd"),
    pytest.param(lambda t: gz(t[:3001]) + gz(t[3001:]), id="gzip-two-members"),
    pytest.param(lambda t: zst(t[:5000]) + zst(t[5000:]), id="zstd-two-frames"),
])
def test_diff_id_is_the_uncompressed_stream(compress: object, tmp_path: Path) -> None:
    layer = tar(dir_("d"), file("d/a", os.urandom(7000)), symlink("s", "d/a"),
                file("e", b""))
    assert len(layer) % 10240 == 0  # tarfile's record padding, after the end marker
    blob = tmp_path / "blob"
    blob.write_bytes(compress(layer))  # type: ignore[operator]
    expected = "sha256:" + hashlib.sha256(layer).hexdigest()
    (tmp_path / "from-path").mkdir()
    (tmp_path / "from-pipe").mkdir()

    by_path = unpack_layer(blob, tmp_path / "from-path")
    with subprocess.Popen(["cat", str(blob)], stdout=subprocess.PIPE) as cat:
        assert cat.stdout is not None
        by_pipe = unpack_layer(cat.stdout, tmp_path / "from-pipe")  # cannot seek

    assert by_path == by_pipe
    assert (by_path.diff_id, by_path.size, by_path.entries) == (expected, len(layer), 4)
    assert _tree(tmp_path / "from-path") == _tree(tmp_path / "from-pipe")


def test_max_size_is_a_bound_on_uncompressed_bytes(tmp_path: Path) -> None:
    layer = gz(tar(file("f", bytes(100_000))))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    size = unpack_layer(io.BytesIO(layer), tmp_path / "a", max_size=len(gzip_d(layer))).size
    with pytest.raises(UnsafeLayer, match="max_size"):
        unpack_layer(io.BytesIO(layer), tmp_path / "b", max_size=size - 1)


def gzip_d(blob: bytes) -> bytes:
    import gzip

    return gzip.decompress(blob)


def test_replacing_entries(tmp_path: Path) -> None:
    layer = tar(
        dir_("d"), file("d/child", b"c"), dir_("d/sub"), file("d", b"file now"),
        file("f", b"x"), dir_("f", 0o711),
        dir_("keep", 0o700), file("keep/child", b"k"), dir_("keep", 0o750, uid=5),
        file("s", b"x"), symlink("s", "elsewhere"),
        symlink("t", "x"), file("t", b"file over symlink"),
    )
    dest = tmp_path / "layer"
    dest.mkdir()
    unpack_layer(io.BytesIO(layer), dest)
    assert (dest / "d").read_bytes() == b"file now"
    assert (dest / "f").is_dir()
    assert stat.S_IMODE(os.lstat(dest / "f").st_mode) == 0o711
    assert (dest / "keep/child").read_bytes() == b"k"
    assert (stat.S_IMODE(os.lstat(dest / "keep").st_mode), os.lstat(dest / "keep").st_uid) \
        == (0o750, 5)
    assert str((dest / "s").readlink()) == "elsewhere"
    assert (dest / "t").read_bytes() == b"file over symlink"
    assert not (dest / "t").is_symlink()


def test_no_thread_or_stream_outlives_the_call(tmp_path: Path) -> None:
    """The read-ahead thread is joined whether the layer unpacks or is refused, and a
    caller's stream is left open for the caller."""
    for blob, refused in [(gz(tar(file("a", os.urandom(3 << 20)))), False),
                          (gz(tar(file("a", os.urandom(3 << 20)), file("../x"))), True),
                          (gz(tar(file("../x"), file("b", os.urandom(3 << 20)))), True),
                          (gz(tar(file("a", bytes(8 << 20)))), True)]:
        dest = tmp_path / f"d{len(list(tmp_path.iterdir()))}"
        dest.mkdir()
        stream = io.BytesIO(blob)
        try:
            unpack_layer(stream, dest, max_size=4 << 20)
        except UnsafeLayer:
            assert refused
        else:
            assert not refused
        assert not stream.closed
        assert not [t for t in threading.enumerate() if t.name == "layer-read-ahead"]


def test_overlay_dest_must_be_empty_and_exist(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(StoreError, match="not empty"):
        unpack_layer(io.BytesIO(tar(file("a"))), tmp_path)
    with pytest.raises(StoreError):
        unpack_layer(io.BytesIO(tar(file("a"))), tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(StoreError, match="no-blob"):
        unpack_layer(tmp_path / "no-blob", tmp_path / "empty")


def test_entry_count_is_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(unpack, "MAX_ENTRIES", 5)
    (tmp_path / "ok").mkdir()
    (tmp_path / "over").mkdir()
    unpack_layer(io.BytesIO(tar(*(file(f"f{i}") for i in range(5)))), tmp_path / "ok")
    with pytest.raises(UnsafeLayer, match="more than 5 entries"):
        unpack_layer(io.BytesIO(tar(*(file(f"f{i}") for i in range(6)))), tmp_path / "over")


# -- whiteouts: apply mode, and overlay mode with the kernel as the oracle -----------

LOWER = tar(
    dir_("etc"), file("etc/a", b"a"), file("etc/b", b"b"),
    dir_("opq"), file("opq/old", b"old"), dir_("opq/olddir"), file("opq/olddir/x", b"x"),
    dir_("opq/both"), file("opq/both/lower", b"l"),
    dir_("keep"), file("keep/k", b"k"),
    dir_("gone"), file("gone/g", b"g"), symlink("lnk", "/nonexistent"),
)
UPPER = tar(
    dir_("etc"), file("etc/.wh.a"), file("etc/.wh.never-was"),
    dir_("opq"), file("opq/new", b"new"), dir_("opq/both"), file("opq/both/upper", b"u"),
    file("opq/.wh..wh..opq"),  # after entries of its own: they stay
    file(".wh.gone"), file(".wh.lnk"),
    file(".wh..wh..opq"),  # at the root: overlayfs ignores it, so apply mode must too
)
MERGED = {"etc", "etc/b", "opq", "opq/new", "opq/both", "opq/both/upper", "keep", "keep/k"}


def _tree(root: Path) -> dict[str, bytes | None]:
    found: dict[str, bytes | None] = {}
    for top, dirs, files in os.walk(root):
        for name in dirs:
            found[str(Path(top, name).relative_to(root))] = None
        for name in files:
            found[str(Path(top, name).relative_to(root))] = Path(top, name).read_bytes()
    return found


def test_apply_mode_whiteouts_and_opaque_dirs(tmp_path: Path) -> None:
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    unpack_layer(io.BytesIO(LOWER), rootfs, mode="apply")
    result = unpack_layer(io.BytesIO(UPPER), rootfs, mode="apply")
    assert set(_tree(rootfs)) == MERGED
    assert _tree(rootfs)["opq/new"] == b"new"
    assert len(result.skipped) == 1


@contextmanager
def overlay(lowers: list[Path], mountpoint: Path) -> Iterator[Path]:
    """A read-only overlayfs of ``lowers`` (topmost first) at ``mountpoint``."""
    mountpoint.mkdir()
    lowerdir = ":".join(str(p) for p in lowers)
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", f"lowerdir={lowerdir}",
                    str(mountpoint)], check=True)
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", str(mountpoint)], check=True)


def test_overlay_mode_whiteouts_as_the_kernel_reads_them(tmp_path: Path) -> None:
    lower, upper, rootfs = tmp_path / "lower", tmp_path / "upper", tmp_path / "rootfs"
    for path in (lower, upper, rootfs):
        path.mkdir()
    unpack_layer(io.BytesIO(LOWER), lower)
    unpack_layer(io.BytesIO(UPPER), upper)
    unpack_layer(io.BytesIO(LOWER), rootfs, mode="apply")
    unpack_layer(io.BytesIO(UPPER), rootfs, mode="apply")

    assert stat.S_ISCHR(os.lstat(upper / "etc/a").st_mode)
    assert os.getxattr(upper / "opq", "trusted.overlay.opaque") == b"y"
    with overlay([upper, lower], tmp_path / "merged") as merged:
        seen = _tree(merged)
    assert set(seen) == MERGED
    assert seen == _tree(rootfs)  # both modes agree on what the container sees


# -- GNU tar as the peer -------------------------------------------------------------

def _busybox_like(src: Path) -> None:
    """A small distro tree: applet symlinks, hard links, modes, owners, odd names."""
    for rel, mode, uid, gid in [("bin", 0o755, 0, 0), ("etc", 0o755, 0, 0),
                                ("tmp", 0o1777, 0, 0), ("root", 0o700, 0, 0),
                                ("usr/lib", 0o755, 0, 0), ("var/spool/mail", 0o2775, 0, 8),
                                ("home/user", 0o700, 1000, 1000), ("empty", 0o755, 0, 0),
                                ("run", 0o755, 0, 0), ("ro", 0o555, 0, 0)]:
        (src / rel).mkdir(parents=True, exist_ok=True)
        os.chown(src / rel, uid, gid)
        (src / rel).chmod(mode)
    shutil.copy("/usr/bin/busybox", src / "bin/busybox")  # keeps its 0755
    for applet in ["sh", "ls", "cat", "cp", "mv", "rm", "vi", "wget", "[", "[["]:
        (src / "bin" / applet).symlink_to("busybox")
    os.link(src / "bin/busybox", src / "bin/su")  # one inode, as busybox images ship su
    files = {"etc/passwd": (b"root:x:0:0:root:/root:/bin/sh\n", 0o644, 0, 0),
             "etc/shadow": (b"root:*:19000::::::\n", 0o640, 0, 42),
             "usr/lib/libc.so.6": (os.urandom(50_000), 0o755, 0, 0),
             "home/user/.profile": (b"PS1='$ '\n", 0o600, 1000, 1000),
             "usr/bin-suid": (b"\x7fELF", 0o4755, 0, 0),
             "usr/bin-sgid": (b"\x7fELF", 0o2711, 0, 5),
             "ro/locked": (b"locked", 0o400, 0, 0),
             "etc/ünïcødé name with spaces": (b"u", 0o644, 0, 0),
             "etc/empty": (b"", 0o644, 0, 0)}
    for rel, (data, mode, uid, gid) in files.items():
        (src / rel).write_bytes(data)
        os.chown(src / rel, uid, gid)
        (src / rel).chmod(mode)
    os.link(src / "etc/passwd", src / "etc/passwd.hardlink")
    (src / "lib").symlink_to("usr/lib")
    (src / "usr/lib/libc.so").symlink_to("libc.so.6")
    (src / "etc/absolute-link").symlink_to("/nonexistent/hostname")
    (src / "etc/dangling").symlink_to("../nowhere")
    os.mkfifo(src / "run/fifo", 0o620)
    for top, dirs, names in os.walk(src):
        for name in [*dirs, *names, "."]:
            os.utime(Path(top, name), ns=(FIXED_NS, FIXED_NS), follow_symlinks=False)


def _listing(root: Path) -> dict[str, tuple[object, ...]]:
    """Names, types, modes, owners, mtimes, link targets, contents, hard link groups."""
    listing: dict[str, tuple[object, ...]] = {}
    groups: dict[int, list[str]] = {}
    for rel, (mode, uid, gid, size, mtime, _, ino, body, _) in snapshot(root).items():
        mtime_s = mtime // 10**9  # GNU tar archives whole seconds
        listing[rel] = (stat.filemode(mode), uid, gid, size, mtime_s, body)
        if stat.S_ISREG(mode):
            groups.setdefault(ino, []).append(rel)
    listing["<hard link groups>"] = tuple(sorted(tuple(sorted(g)) for g in groups.values()))
    return listing


def test_same_tree_as_gnu_tar(tmp_path: Path) -> None:
    src, by_tar, ours = tmp_path / "src", tmp_path / "by-tar", tmp_path / "ours"
    for path in (src, by_tar, ours):
        path.mkdir()
    _busybox_like(src)
    layer = tmp_path / "layer.tar.gz"
    subprocess.run(["tar", "--numeric-owner", "-czpf", str(layer), "-C", str(src), "."],
                   check=True)
    subprocess.run(["tar", "--numeric-owner", "-xpf", str(layer), "-C", str(by_tar)],
                   check=True)
    result = unpack_layer(layer, ours)
    assert result.skipped == ()
    expected = _listing(by_tar)
    assert len(expected) > 35
    assert _listing(ours) == expected
    assert _listing(ours) == _listing(src)


@pytest.mark.parametrize("fmt", ["pax", "gnu"])
def test_sparse_files_from_gnu_tar(fmt: str, tmp_path: Path) -> None:
    src, dest = tmp_path / "src", tmp_path / "dest"
    src.mkdir()
    dest.mkdir()
    with (src / "sparse").open("wb") as out:
        out.write(b"head")
        out.seek(64 << 20)
        out.write(b"tail")
    subprocess.run(["tar", "--sparse", "-H", fmt, "-cf", str(tmp_path / "s.tar"),
                    "-C", str(src), "sparse"], check=True)
    unpack_layer(tmp_path / "s.tar", dest)
    assert (dest / "sparse").read_bytes() == (src / "sparse").read_bytes()
    assert os.lstat(dest / "sparse").st_blocks * 512 < 1 << 20


@pytest.mark.parametrize("whiteout_first", [True, False])
def test_a_directory_deleted_and_recreated_in_one_layer_hides_the_lower_one(
        tmp_path: Path, whiteout_first: bool) -> None:
    """The OCI spec: a whiteout hides what lower layers have; the same layer's own entry
    stays. So ``usr/.wh.lib`` with ``usr/lib/new`` means usr/lib holds only ``new``, in
    whichever order the tar lists them (both orders occur in real images)."""
    lower_tar = tar(dir_("usr"), dir_("usr/lib"), file("usr/lib/old", b"old"))
    recreate = [dir_("usr/lib"), file("usr/lib/new", b"new")]
    gone = [file("usr/.wh.lib")]
    upper_tar = tar(dir_("usr"), *(gone + recreate if whiteout_first else recreate + gone))
    lower, upper, rootfs = tmp_path / "lower", tmp_path / "upper", tmp_path / "rootfs"
    for path in (lower, upper, rootfs):
        path.mkdir()
    unpack_layer(io.BytesIO(lower_tar), lower)
    unpack_layer(io.BytesIO(upper_tar), upper)
    unpack_layer(io.BytesIO(lower_tar), rootfs, mode="apply")
    unpack_layer(io.BytesIO(upper_tar), rootfs, mode="apply")
    with overlay([upper, lower], tmp_path / "merged") as merged:
        assert [p.name for p in (merged / "usr/lib").iterdir()] == ["new"]
    assert [p.name for p in (rootfs / "usr/lib").iterdir()] == ["new"]
