"""A corpus of hostile layers, built in memory with ``tarfile`` (no binaries committed).

Modelled on containerd's ``TestBreakouts``/``TestRelativeSymlinks``
(``archive/tar_test.go``) and moby's breakout tests, widened to whiteouts, xattrs,
streams and limits. Each case says what ``unpack_layer`` must do with it:

- ``refused``: raise ``UnsafeLayer``;
- ``confined``: unpack, touching nothing outside ``dest`` (the test checks a victim tree
  beside ``dest`` and the host's ``/etc/passwd``), then pass the case's own ``check``.

Cases are built per run because some aim at the victim tree's absolute path. Anything
destructive (overwrite, remove, chown through a link) aims at that victim tree only; host
paths such as ``/etc`` only ever see attempts to *create* ``pyprov-escaped*`` names, so a
broken unpacker fails the test without damaging the host it runs on.
"""

from __future__ import annotations

import functools
import gzip
import io
import os
import stat
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import zstandard

from agent.store.unpack import UnpackResult

REFUSED: Literal["refused"] = "refused"
CONFINED: Literal["confined"] = "confined"
ESCAPED = "pyprov-escaped"
MTIME = 1_600_000_000

Entry = tuple[tarfile.TarInfo, bytes]
Check = Callable[[Path, UnpackResult], None]


@dataclass(frozen=True)
class Case:
    name: str
    expect: Literal["refused", "confined"]
    build: Callable[[Path], bytes]
    """The blob, given the victim directory's absolute path."""
    mode: Literal["overlay", "apply"] = "overlay"
    lower: Callable[[Path], bytes] | None = None
    """Applied to ``dest`` first (apply mode): a rootfs the hostile layer lands on."""
    max_size: int | None = None
    check: Check | None = None
    why: str = ""
    """For refused cases: a fragment of the reason, so a case refused by accident fails."""


# -- building entries ----------------------------------------------------------------

def _info(name: str, kind: bytes, mode: int, **attrs: object) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime = kind, mode, MTIME
    for key, value in attrs.items():
        setattr(info, key, value)
    return info


def file(name: str, data: bytes = b"", mode: int = 0o644, **attrs: object) -> Entry:
    return _info(name, tarfile.REGTYPE, mode, size=len(data), **attrs), data


def dir_(name: str, mode: int = 0o755, **attrs: object) -> Entry:
    return _info(name, tarfile.DIRTYPE, mode, **attrs), b""


def symlink(name: str, target: str) -> Entry:
    return _info(name, tarfile.SYMTYPE, 0o777, linkname=target), b""


def hardlink(name: str, target: str) -> Entry:
    return _info(name, tarfile.LNKTYPE, 0o644, linkname=target), b""


def device(name: str, major: int, minor: int, kind: bytes = tarfile.CHRTYPE) -> Entry:
    return _info(name, kind, 0o666, devmajor=major, devminor=minor), b""


def xattrs(entry: Entry, **pairs: str) -> Entry:
    """``entry`` with PAX ``SCHILY.xattr.*`` records (``_`` in a keyword stands for ``.``)."""
    info, data = entry
    info.pax_headers = {**info.pax_headers,
                        **{f"SCHILY.xattr.{k.replace('_', '.')}": v for k, v in pairs.items()}}
    return info, data


def pax(entry: Entry, **records: str) -> Entry:
    info, data = entry
    info.pax_headers = {**info.pax_headers, **records}
    return info, data


def tar(*entries: Entry, fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as out:
        for info, data in entries:
            out.addfile(info, io.BytesIO(data) if data else None)
    return buf.getvalue()


def gz(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=1, mtime=0)


def zst(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=1).compress(data)


@functools.cache
def _bomb_tar() -> bytes:
    """One 32 MiB file of zeros: a few tens of KiB once compressed."""
    return tar(file("zeros", bytes(32 << 20)))


def _raw_header(name: str, kind: bytes, size: int) -> bytes:
    info = _info(name, kind, 0o644, size=size)
    return info.tobuf(format=tarfile.USTAR_FORMAT)


# -- checks for confined cases -------------------------------------------------------

def exists(*rels: str) -> Check:
    def check(dest: Path, _: UnpackResult) -> None:
        for rel in rels:
            assert (dest / rel).is_file(), f"{rel} should be a file inside dest"
    return check


def content(rel: str, data: bytes) -> Check:
    def check(dest: Path, _: UnpackResult) -> None:
        path = dest / rel
        assert not path.is_symlink()
        assert path.read_bytes() == data
    return check


def missing(*rels: str) -> Check:
    def check(dest: Path, _: UnpackResult) -> None:
        for rel in rels:
            assert not os.path.lexists(dest / rel), f"{rel} should not exist"
    return check


def link_target(rel: str, target: str) -> Check:
    def check(dest: Path, _: UnpackResult) -> None:
        assert str((dest / rel).readlink()) == target
    return check


def same_inode(a: str, b: str) -> Check:
    def check(dest: Path, _: UnpackResult) -> None:
        assert os.lstat(dest / a).st_ino == os.lstat(dest / b).st_ino
    return check


def skipped(count: int) -> Check:
    def check(_: Path, result: UnpackResult) -> None:
        assert len(result.skipped) == count, result.skipped
    return check


def no_xattr(rel: str, name: str) -> Check:
    def check(dest: Path, _: UnpackResult) -> None:
        assert name not in os.listxattr(dest / rel, follow_symlinks=False)
    return check


def whiteout(rel: str) -> Check:
    def check(dest: Path, _: UnpackResult) -> None:
        st = os.lstat(dest / rel)
        assert stat.S_ISCHR(st.st_mode)
        assert st.st_rdev == 0
    return check


def all_of(*checks: Check) -> Check:
    def check(dest: Path, result: UnpackResult) -> None:
        for each in checks:
            each(dest, result)
    return check


def _small_and_sparse(rel: str, size: int) -> Check:
    def check(dest: Path, _: UnpackResult) -> None:
        st = os.lstat(dest / rel)
        assert st.st_size == size
        assert st.st_blocks * 512 < 1 << 20
    return check


def _victim_link(rel: str, tail: str = "") -> Check:
    def check(dest: Path, _: UnpackResult) -> None:
        target = str((dest / rel).readlink())
        assert target.startswith("/")
        assert target.endswith(f"/victim{tail}")
    return check


def _planted_inside(dest: Path, _: UnpackResult) -> None:
    [planted] = dest.rglob("secret")
    assert planted.parent.name == "victim"
    assert planted.read_bytes() == b"pwned"


def _mode(rel: str, mode: int, uid: int = 0) -> Check:
    def check(dest: Path, _: UnpackResult) -> None:
        st = os.lstat(dest / rel)
        assert (stat.S_IMODE(st.st_mode), st.st_uid) == (mode, uid)
    return check


# -- the corpus ----------------------------------------------------------------------

def _cases() -> list[Case]:
    e = ESCAPED
    return [
        # names that climb out
        Case("dotdot-top", REFUSED, lambda _: tar(file(f"../{e}", b"x")), why="climbs out"),
        Case("dotdot-deep", REFUSED, lambda _: tar(file(f"a/b/../../../{e}", b"x")),
             why="climbs out"),
        Case("dotdot-many", REFUSED, lambda _: tar(file("../" * 12 + f"tmp/{e}", b"x")),
             why="climbs out"),
        Case("dotdot-after-absolute", REFUSED, lambda _: tar(file(f"/../{e}", b"x")),
             why="climbs out"),
        Case("dotdot-in-pax-path", REFUSED,
             lambda _: tar(pax(file("innocent", b"x"), path=f"ok/../../{e}")), why="climbs out"),
        Case("dotdot-that-stays-inside", CONFINED,
             lambda _: tar(file("a/../b", b"x"), file("./c/./d/../e", b"y")),
             check=exists("b", "c/e")),
        Case("absolute-path", CONFINED,
             lambda _: tar(file(f"/etc/{e}", b"x"), file(f"//tmp//{e}", b"y")),
             check=exists(f"etc/{e}", f"tmp/{e}")),
        Case("victim-absolute-path", CONFINED, lambda v: tar(file(f"{v}/secret", b"pwned")),
             check=_planted_inside),
        Case("file-named-dot", REFUSED, lambda _: tar(file(".", b"x")), why="layer root"),
        Case("file-named-slash", REFUSED, lambda _: tar(file("/", b"x")), why="layer root"),
        Case("empty-name", REFUSED, lambda _: tar(file("", b"x")), why="layer root"),
        Case("symlink-named-dot", REFUSED, lambda v: tar(symlink("./", str(v))), why="layer root"),
        Case("root-dir-entry", CONFINED, lambda _: tar(dir_("./", 0o750), file("./f", b"x")),
             check=all_of(exists("f"), _mode(".", 0o750))),
        Case("nul-in-pax-path", REFUSED, lambda _: tar(pax(file("n", b"x"), path="a\0b")),
             why="NUL"),
        Case("component-too-long", REFUSED, lambda _: tar(file("x" * 300, b"x")),
             why="component longer"),
        Case("path-too-deep", REFUSED, lambda _: tar(file("d/" * 300 + "f", b"x")),
             why="deeper than"),
        Case("long-names-gnu", CONFINED,
             lambda _: tar(file("/".join(["n" * 200] * 10), b"x"),
                           symlink("l" * 150, "t" * 1000), fmt=tarfile.GNU_FORMAT),
             check=all_of(exists("/".join(["n" * 200] * 10)),
                          link_target("l" * 150, "t" * 1000))),
        # symlinks, then writes through them (containerd's TestBreakouts)
        Case("symlink-absolute-then-file", REFUSED,
             lambda _: tar(dir_("etc"), symlink("localetc", "/etc"),
                           file(f"/localetc/{e}", b"x")), why="is a symlink"),
        Case("symlink-to-root-then-file", REFUSED,
             lambda _: tar(symlink("root", "/"), file(f"root/etc/{e}", b"x")), why="is a symlink"),
        Case("symlink-dotdot-then-file", REFUSED,
             lambda _: tar(symlink("up", ".."), file(f"up/{e}", b"x")), why="is a symlink"),
        Case("symlink-up-and-out", REFUSED,
             lambda _: tar(dir_("etc"), dir_("dummy"), symlink("localetc", "/dummy/../etc"),
                           file(f"/localetc/{e}", b"x")), why="is a symlink"),
        Case("symlink-to-victim-then-overwrite", REFUSED,
             lambda v: tar(symlink("v", str(v)), file("v/secret", b"pwned")), why="is a symlink"),
        Case("symlink-chain-absolute", REFUSED,
             lambda v: tar(dir_("dummy"), symlink("dummy/etc", str(v)),
                           symlink("localetc", "/dummy/etc"), file("localetc/secret", b"p")),
             why="is a symlink"),
        Case("symlink-chain-relative", REFUSED,
             lambda _: tar(dir_("dummy"), symlink("dummy/v", "../../victim"),
                           symlink("localv", "./dummy/v"), file("dummy/v/secret", b"p")),
             why="is a symlink"),
        Case("symlink-loop-then-file", REFUSED,
             lambda _: tar(symlink("a", "b"), symlink("b", "a"), file("a/x", b"x")),
             why="is a symlink"),
        Case("symlink-targets-kept-verbatim", CONFINED,
             lambda v: tar(symlink("shadow", "../../../etc/shadow"), symlink("self", "self"),
                           symlink("proc", f"/proc/self/root/{e}"), symlink("vic", str(v))),
             check=all_of(link_target("shadow", "../../../etc/shadow"),
                          link_target("self", "self"), _victim_link("vic"))),
        Case("symlink-empty-file", REFUSED,
             lambda v: tar(dir_("etc"), file("etc/emptied", b"notempty"),
                           symlink("localetc", str(v)), file("localetc/secret", b"")),
             why="is a symlink"),
        Case("file-symlink-file-same-name", CONFINED,
             lambda v: tar(file("f", b"one"), symlink("f", f"{v}/secret"), file("f", b"new")),
             check=content("f", b"new")),
        Case("dir-replaced-by-symlink-then-child", REFUSED,
             lambda v: tar(dir_("d"), file("d/x", b"x"), symlink("d", str(v)),
                           file("d/secret", b"pwned")), why="is a symlink"),
        Case("symlink-replaced-by-dir-then-child", CONFINED,
             lambda v: tar(symlink("d", str(v)), dir_("d"), file("d/secret", b"mine")),
             check=content("d/secret", b"mine")),
        Case("dir-entry-through-symlink", REFUSED,
             lambda v: tar(symlink("l", str(v)), dir_(f"l/{e}")), why="is a symlink"),
        Case("symlink-over-symlink-through", REFUSED,
             lambda v: tar(symlink("l", str(v)), symlink("l/secret", "/nonexistent")),
             why="is a symlink"),
        # hard links
        Case("hardlink-absolute-host-passwd", REFUSED,
             lambda _: tar(hardlink("mypasswd", "/etc/passwd")), why="not in the layer's tree"),
        Case("hardlink-absolute-inside", CONFINED,
             lambda _: tar(dir_(e, 0o770), file(f"/{e}/passwd", b"inside"),
                           hardlink("localpasswd", f"/{e}/passwd")),
             check=same_inode("localpasswd", f"{e}/passwd")),
        Case("hardlink-dotdot", REFUSED,
             lambda _: tar(dir_("etc"), file("etc/passwd", b"inside"),
                           hardlink("localpasswd", "../../../../../etc/passwd")), why="climbs out"),
        Case("hardlink-to-victim-by-dotdot", REFUSED,
             lambda _: tar(hardlink("stolen", "../victim/secret")), why="climbs out"),
        Case("hardlink-via-symlinked-dir", REFUSED,
             lambda _: tar(dir_(e, 0o770), file(f"/{e}/passwd", b"inside"),
                           dir_("breakouts"), symlink("breakouts/d1", f"../../{e}"),
                           hardlink("breakouts/mypasswd", "/breakouts/d1/passwd")),
             why="is a symlink"),
        Case("hardlink-via-absolute-symlink", REFUSED,
             lambda v: tar(symlink("localv", str(v)), hardlink("stolen", "localv/secret")),
             why="is a symlink"),
        Case("hardlink-to-symlink-links-the-symlink", CONFINED,
             lambda v: tar(symlink("secretlink", f"{v}/secret"),
                           hardlink("localsecret", "/secretlink")),
             check=all_of(same_inode("localsecret", "secretlink"), _victim_link("localsecret",
                                                                                "/secret"))),
        Case("hardlink-to-dir", REFUSED, lambda _: tar(dir_("d"), hardlink("h", "d")),
             why="to a directory"),
        Case("hardlink-to-missing", REFUSED, lambda _: tar(hardlink("h", "nothing/here")),
             why="not in the layer's tree"),
        Case("hardlink-to-itself", REFUSED, lambda _: tar(file("h", b"x"), hardlink("h", "h")),
             why="to itself"),
        Case("hardlink-over-its-own-dir", REFUSED,
             lambda _: tar(dir_("d"), file("d/f", b"x"), hardlink("d", "d/f")),
             why="inside itself"),
        Case("file-over-hardlink-keeps-target", CONFINED,
             lambda _: tar(file("a", b"orig"), hardlink("b", "a"), file("b", b"new")),
             check=all_of(content("a", b"orig"), content("b", b"new"))),
        # devices, special files, metadata
        Case("device-nodes-skipped", CONFINED,
             lambda _: tar(device("dev/null", 1, 3), device("dev/sda", 8, 0, tarfile.BLKTYPE),
                           device("dev/mem", 1, 1)),
             check=all_of(missing("dev/null", "dev/sda", "dev/mem"), skipped(3))),
        Case("char-0-0-is-a-whiteout", CONFINED, lambda _: tar(device("gone", 0, 0)),
             check=whiteout("gone")),
        Case("setuid-root-file-kept", CONFINED,
             lambda _: tar(file("bin/su", b"\x7fELF", 0o4755), file("bin/wall", b"x", 0o2755)),
             check=all_of(_mode("bin/su", 0o4755), _mode("bin/wall", 0o2755))),
        Case("xattr-trusted-overlay-forgery", CONFINED,
             lambda _: tar(xattrs(dir_("d"), trusted_overlay_opaque="y"),
                           xattrs(file("f", b"x"), trusted_overlay_redirect="/etc",
                                  security_selinux="system_u:object_r:shadow_t:s0")),
             check=all_of(no_xattr("d", "trusted.overlay.opaque"), skipped(3))),
        Case("uid-minus-one", REFUSED, lambda _: tar(pax(file("f", b"x"), uid="4294967295")),
             why="out of range"),
        Case("mtime-nan", REFUSED, lambda _: tar(pax(file("f", b"x"), mtime="nan")),
             why="mtime nan"),
        Case("negative-size", REFUSED, lambda _: tar(pax(file("f"), size="-5")), why="size -5"),
        Case("unknown-entry-type", REFUSED,
             lambda _: tar((_info("volume", b"V", 0o644), b"")), why="unsupported entry type"),
        Case("readonly-dir-still-takes-children", CONFINED,
             lambda _: tar(dir_("ro", 0o555), file("ro/f", b"x"), dir_("ro/sub", 0o500)),
             check=all_of(exists("ro/f"), _mode("ro", 0o555), _mode("ro/sub", 0o500))),
        Case("file-over-dir-tree", CONFINED,
             lambda _: tar(dir_("d"), dir_("d/e"), file("d/e/f", b"x"), file("d", b"flat")),
             check=content("d", b"flat")),
        Case("sparse-map-out-of-order", REFUSED,
             lambda _: tar(pax(file("s", b"a" * 20), **{
                 "GNU.sparse.map": "100,10,0,10", "GNU.sparse.size": "110"})), why="sparse map"),
        Case("sparse-map-beyond-stored-data", REFUSED,
             lambda _: tar(pax(file("s", b"a" * 8), **{
                 "GNU.sparse.map": "0,600,1000,600", "GNU.sparse.size": "1600"}),
                 file("next", b"x")), why="sparse map"),
        Case("sparse-terabyte-hole", CONFINED,
             lambda _: tar(pax(file("s", b"tail"), **{
                 "GNU.sparse.map": f"{1 << 40},4", "GNU.sparse.size": str((1 << 40) + 4)})),
             check=_small_and_sparse("s", (1 << 40) + 4)),
        # whiteouts
        Case("whiteout-dotdot", REFUSED, lambda _: tar(file(".wh...", b"")), why="whiteout of"),
        Case("whiteout-dot", REFUSED, lambda _: tar(file("a/.wh..", b"")), why="whiteout of"),
        Case("whiteout-empty-name", REFUSED, lambda _: tar(file(".wh.", b"")), why="whiteout of"),
        Case("whiteout-escaping-path", REFUSED, lambda _: tar(file("../victim/.wh.secret")),
             why="climbs out"),
        Case("whiteout-as-directory", REFUSED, lambda _: tar(file(f".wh.x/{e}", b"x")),
             why="used as a directory"),
        Case("whiteout-dotdot-apply", REFUSED, lambda _: tar(file("etc/.wh...")),
             mode="apply", lower=lambda _: tar(file("etc/passwd", b"x")), why="whiteout of"),
        Case("whiteout-through-symlink-apply", REFUSED,
             lambda _: tar(file("link/.wh.secret")), mode="apply",
             lower=lambda v: tar(symlink("link", str(v))), why="is a symlink"),
        Case("opaque-through-symlink-apply", REFUSED,
             lambda _: tar(file("link/.wh..wh..opq")), mode="apply",
             lower=lambda v: tar(symlink("link", str(v))), why="is a symlink"),
        Case("whiteout-dir-with-symlink-inside-apply", CONFINED,
             lambda _: tar(file(".wh.d")), mode="apply",
             lower=lambda v: tar(dir_("d"), symlink("d/v", str(v)),
                                 symlink("d/secret", f"{v}/secret")),
             check=missing("d")),
        Case("whiteout-of-symlink-removes-the-link-apply", CONFINED,
             lambda _: tar(file(".wh.v")), mode="apply",
             lower=lambda v: tar(symlink("v", str(v))), check=missing("v")),
        Case("opaque-at-root-overlay", CONFINED,
             lambda _: tar(file("mine", b"x"), file(".wh..wh..opq")),
             check=all_of(exists("mine"), no_xattr(".", "trusted.overlay.opaque"),
                          skipped(1))),
        Case("opaque-at-root-apply", CONFINED,
             lambda _: tar(file("mine", b"x"), file("/.wh..wh..opq")), mode="apply",
             lower=lambda v: tar(file("old", b"x"), symlink("v", str(v))),
             check=all_of(exists("mine", "old"), skipped(1))),
        Case("opaque-dir-apply-keeps-own-entries", CONFINED,
             lambda _: tar(dir_("d"), file("d/mine", b"x"), file("d/.wh..wh..opq")),
             mode="apply", lower=lambda v: tar(dir_("d"), file("d/old", b"x"),
                                               symlink("d/v", str(v))),
             check=all_of(exists("d/mine"), missing("d/old", "d/v"))),
        Case("whiteout-of-own-entry-overlay", CONFINED,
             lambda _: tar(file("f", b"x"), file(".wh.f")),
             check=all_of(content("f", b"x"), skipped(1))),
        Case("whiteout-of-own-entry-apply", CONFINED,
             lambda _: tar(file("f", b"new"), file(".wh.f")), mode="apply",
             lower=lambda _: tar(file("f", b"old")),
             check=all_of(content("f", b"new"), skipped(1))),
        Case("aufs-metadata-skipped", CONFINED,
             lambda _: tar(dir_(".wh..wh.plnk"), file(".wh..wh.plnk/123.456", b"x"),
                           file(".wh..wh.aufs")),
             check=all_of(missing(".wh..wh.plnk", ".wh..wh.aufs"), skipped(3))),
        # streams and limits
        Case("bomb-gzip", REFUSED, lambda _: gz(_bomb_tar()), max_size=1 << 20, why="max_size"),
        Case("bomb-zstd", REFUSED, lambda _: zst(_bomb_tar()), max_size=1 << 20, why="max_size"),
        Case("bomb-plain", REFUSED, lambda _: _bomb_tar(), max_size=1 << 20, why="max_size"),
        Case("truncated-in-data", REFUSED, lambda _: tar(file("f", b"x" * 5000))[:2048],
             why="ends inside"),
        Case("truncated-in-header", REFUSED,
             lambda _: tar(file("a", b"x"), file("b", b"y"))[:1024 + 100],
             why="truncated tar header"),
        Case("truncated-at-header-boundary", REFUSED,
             lambda _: tar(file("a", b"x"), file("b", b"y"))[:2048], why="end marker"),
        Case("truncated-gzip", REFUSED, lambda _: gz(tar(file("f", os.urandom(4096))))[:-100],
             why="truncated"),
        Case("truncated-zstd", REFUSED,
             lambda _: zst(tar(file("f", os.urandom(4096)), file("g", b"y")))[:-600],
             why="end marker"),
        Case("gzip-trailing-garbage", REFUSED, lambda _: gz(tar(file("f", b"x"))) + b"garbage",
             why="not gzip"),
        Case("zstd-trailing-garbage", REFUSED, lambda _: zst(tar(file("f", b"x"))) + b"junk",
             why="corrupt zstd"),
        Case("corrupt-second-header", REFUSED,
             lambda _: _corrupt(tar(file("a", b"x"), file(f"{e}", b"y")), 1024 + 148),
             why="corrupt tar header"),
        Case("huge-pax-header", REFUSED,
             lambda _: _raw_header("pax", tarfile.XHDTYPE, 1 << 30) + bytes(1024),
             why="extended header"),
        Case("huge-gnu-longname", REFUSED,
             lambda _: _raw_header("././@LongLink", tarfile.GNUTYPE_LONGNAME, 1 << 30)
             + bytes(1024), why="extended header"),
        Case("xz-compressed", REFUSED, lambda _: b"\xfd7zXZ\x00" + bytes(100),
             why="OCI layers are"),
        Case("empty-blob", REFUSED, lambda _: b"", why="end marker"),
        Case("empty-layer", CONFINED, lambda _: bytes(1024), check=skipped(0)),
    ]


def _corrupt(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ 0x55]) + data[offset + 1:]


CASES = _cases()
