"""The benchmark image: ~200 MB in 5 layers, built once per machine and cached on disk.

Layer 0 is the busybox base layer of the small images (so the image runs, and shares a
blob with ``busybox:oci`` as real images share base layers); layers 1-4 hold 10 files of
pseudo-random bytes from a seeded generator interleaved with text, so gzip (level 1, for
speed) leaves them at ~50 MB each instead of compressing them to nothing.

The blobs live in ``/var/tmp/pyprov-test-images/<BUILDER_VERSION>-<busybox hash>/big/``
(``PYPROV_TEST_IMAGES`` overrides the root), written to a temporary sibling and renamed
into place, so concurrent sessions never see half a cache. Bump :data:`BUILDER_VERSION`
whenever the content below changes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.registry.images import (
    BUSYBOX,
    OCI,
    Blob,
    Image,
    ImageBuildError,
    Layer,
    Platform,
    assemble,
    busybox_layer,
    directory,
    file,
    make_layer,
)

__all__ = ["BUILDER_VERSION", "big_image", "cache_root"]

BUILDER_VERSION = "v1"
DATA_LAYERS = 4
FILES_PER_LAYER = 10
ROUNDS_PER_FILE = 76          # each round: 64 KiB random + 4 KiB of text
RANDOM_CHUNK = 64 << 10
BIG_CONFIG = {"Cmd": ["/bin/ls", "-l", "/data"], "Env": ["PATH=/bin"],
              "Labels": {"org.pyprov.test.image": "big"}}
_MANIFEST_FILE = "image.json"


def cache_root() -> Path:
    return Path(os.environ.get("PYPROV_TEST_IMAGES", "/var/tmp/pyprov-test-images"))


def big_image(root: Path | None = None) -> Image:
    """The cached benchmark image (file-backed blobs), building it first if needed."""
    busybox_hash = hashlib.sha256(BUSYBOX.read_bytes()).hexdigest()[:12]
    target = (root or cache_root()) / f"{BUILDER_VERSION}-{busybox_hash}" / "big"
    cached = _load(target)
    if cached is not None:
        return cached
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".big-", dir=target.parent))
    scratch.chmod(0o755)
    try:
        _build(scratch)
        with contextlib.suppress(OSError):  # another session won: use its identical cache
            scratch.rename(target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    built = _load(target)
    if built is None:
        raise ImageBuildError(f"the big test image cache at {target} is unreadable")
    return built


def _build(where: Path) -> None:
    blobs = where / "blobs"
    blobs.mkdir()
    base = busybox_layer()
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:  # zlib drops the GIL
        data_layers = list(pool.map(_data_layer, range(1, DATA_LAYERS + 1)))
    layers = [base, *data_layers]
    image = assemble(layers, BIG_CONFIG, OCI)
    for blob in (*image.blobs, image.manifest):
        (blobs / blob.digest.split(":")[1]).write_bytes(blob.read())
    description = {
        "manifest": image.digest, "config": image.config.digest,
        "platform": image.platform.as_json(),
        "layers": [{"digest": layer.blob.digest, "diff_id": layer.diff_id,
                    "uncompressed_size": layer.uncompressed_size, "paths": list(layer.paths)}
                   for layer in layers]}
    (where / _MANIFEST_FILE).write_text(json.dumps(description, indent=1))


def _data_layer(number: int) -> Layer:
    top = f"data/layer{number}"
    entries = [directory("data"), directory(top),
               file(f"{top}/README", f"pyprov benchmark layer {number}\n")]
    entries += [file(f"{top}/part{part:02d}.bin", _content(number, part))
                for part in range(FILES_PER_LAYER)]
    return make_layer(entries, OCI.layer_gzip, "gzip", level=1)


def _content(layer: int, part: int) -> bytes:
    generator = random.Random(f"pyprov-big-{BUILDER_VERSION}-{layer}-{part}")
    text = "".join(f"layer {layer} part {part} line {line}: the quick brown fox\n"
                   for line in range(80)).encode()[:4096]
    return b"".join(generator.randbytes(RANDOM_CHUNK) + text for _ in range(ROUNDS_PER_FILE))


def _load(where: Path) -> Image | None:
    """The cached image, or None if the cache is missing or incomplete."""
    try:
        description = json.loads((where / _MANIFEST_FILE).read_text())
    except (OSError, ValueError):
        return None

    def blob(media_type: str, digest: str) -> Blob | None:
        path = where / "blobs" / digest.split(":")[1]
        return Blob(media_type, digest, path.stat().st_size, path=path) if path.is_file() \
            else None

    manifest = blob(OCI.manifest, description["manifest"])
    config = blob(OCI.config, description["config"])
    if manifest is None or config is None:
        return None
    layers = []
    for saved, descriptor in zip(description["layers"], manifest.json()["layers"],
                                 strict=True):
        layer_blob = blob(descriptor["mediaType"], saved["digest"])
        if layer_blob is None or layer_blob.size != descriptor["size"]:
            return None
        layers.append(Layer(layer_blob, saved["diff_id"], saved["uncompressed_size"],
                            tuple(saved["paths"])))
    platform = Platform(**description["platform"])
    return Image(manifest, config, tuple(layers), platform)

