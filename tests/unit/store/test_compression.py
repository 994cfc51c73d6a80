"""open_layer: the magic bytes decide, concatenated members and frames are one stream,
and anything after or inside the stream that is not what it claims is refused."""

from __future__ import annotations

import gzip
import io
import os
from pathlib import Path

import pytest
import zstandard

from agent.errors import UnsafeLayer
from agent.store.compression import Reader, open_layer, sniff

DATA = os.urandom(300_000) + bytes(700_000) + b"tail"


class Trickle:
    """A stream that cannot seek and answers in pieces of at most 7 bytes, like a socket."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def read(self, size: int = -1, /) -> bytes:
        return self._data.read(min(size if size >= 0 else 7, 7))


def read_all(blob: bytes | Path, chunk: int = 65536) -> bytes:
    source = blob if isinstance(blob, Path) else io.BytesIO(blob)
    with open_layer(source) as stream:
        return _drain(stream, chunk)


def _drain(stream: Reader, chunk: int) -> bytes:
    parts = []
    while part := stream.read(chunk):
        assert len(part) <= chunk
        parts.append(part)
    return b"".join(parts)


def zst(data: bytes) -> bytes:
    return zstandard.ZstdCompressor(level=3).compress(data)


@pytest.mark.parametrize(("head", "kind"), [
    (b"\x1f\x8b\x08\x00", "gzip"), (b"\x28\xb5\x2f\xfd", "zstd"), (b"ustar", "tar"),
    (b"etc/", "tar"), (b"", "tar"), (b"\x1f", "tar"),
])
def test_sniff(head: bytes, kind: str) -> None:
    assert sniff(head) == kind


@pytest.mark.parametrize("head", [b"\xfd7zXZ\x00", b"BZh91AY&SY"])
def test_compressions_oci_does_not_allow_are_refused(head: bytes) -> None:
    with pytest.raises(UnsafeLayer, match="OCI layers are tar, gzip or zstd"):
        sniff(head)
    with pytest.raises(UnsafeLayer, match="OCI layers are tar, gzip or zstd"):
        read_all(head + bytes(100))


@pytest.mark.parametrize("blob", [
    pytest.param(DATA, id="plain"),
    pytest.param(gzip.compress(DATA), id="gzip"),
    pytest.param(gzip.compress(DATA[:1234]) + gzip.compress(DATA[1234:]), id="gzip-members"),
    pytest.param(gzip.compress(DATA) + bytes(4096), id="gzip-zero-padding"),
    pytest.param(zst(DATA), id="zstd"),
    pytest.param(zst(DATA[:99_999]) + zst(DATA[99_999:]), id="zstd-frames"),
    pytest.param(zst(DATA) + b"\x50\x2a\x4d\x18\x04\x00\x00\x00skip", id="zstd-skippable"),
])
def test_round_trip_from_a_stream_a_trickle_and_a_path(blob: bytes, tmp_path: Path) -> None:
    assert read_all(blob) == DATA
    with open_layer(Trickle(blob)) as stream:  # type: ignore[arg-type]
        assert _drain(stream, 4096) == DATA
    (tmp_path / "blob").write_bytes(blob)
    assert read_all(tmp_path / "blob", chunk=1 << 20) == DATA


def test_the_media_type_does_not_matter_the_bytes_do(tmp_path: Path) -> None:
    path = tmp_path / "layer.tar"  # named plain, holds gzip
    path.write_bytes(gzip.compress(DATA))
    assert read_all(path) == DATA


@pytest.mark.parametrize(("blob", "match"), [
    pytest.param(gzip.compress(DATA) + b"garbage", "not gzip", id="gzip-garbage"),
    pytest.param(gzip.compress(DATA) + bytes(10) + b"\x01", "not gzip", id="gzip-zeros-then-junk"),
    pytest.param(gzip.compress(DATA)[:-9], "truncated", id="gzip-truncated"),
    pytest.param(gzip.compress(DATA)[:12] + bytes(100) + gzip.compress(DATA)[112:], "corrupt",
                 id="gzip-corrupt"),
    pytest.param(zst(DATA) + b"garbage!", "corrupt zstd", id="zstd-garbage"),
    pytest.param(zst(DATA) + bytes(8), "corrupt zstd", id="zstd-zeros"),
])
def test_bad_streams_are_refused(blob: bytes, match: str) -> None:
    with pytest.raises(UnsafeLayer, match=match):
        read_all(blob)


def test_a_truncated_zstd_stream_reads_short_and_the_tar_layer_must_notice() -> None:
    """libzstd reports no error for a frame cut short: this is why unpack refuses a tar
    stream without its end-of-archive marker (see test_unpack's truncated-* cases)."""
    cut = read_all(zst(DATA)[:-50])
    assert len(cut) < len(DATA)
    assert DATA.startswith(cut)


@pytest.mark.parametrize("compress", [
    pytest.param(lambda d: gzip.compress(d, 9), id="gzip"),
    pytest.param(lambda d: zstandard.ZstdCompressor(level=19).compress(d), id="zstd"),
])
def test_a_bomb_expands_only_as_fast_as_it_is_read(compress: object) -> None:
    bomb = compress(bytes(64 << 20))  # type: ignore[operator]
    assert len(bomb) < 1 << 17
    with open_layer(io.BytesIO(bomb)) as stream:
        for _ in range(10):
            assert len(stream.read(4096)) <= 4096


def test_gzip_many_small_and_empty_members() -> None:
    pieces = [os.urandom(i % 50) for i in range(400)]
    blob = b"".join(gzip.compress(p) for p in pieces)
    assert read_all(blob, chunk=17) == b"".join(pieces)
