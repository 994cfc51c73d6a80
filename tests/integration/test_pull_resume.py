"""A pull killed with SIGKILL halfway resumes: finished layers are not downloaded again,
the interrupted one continues from its partial (HTTP Range), and the store verifies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO
from tests.registry.behaviours import ranged, stall_mid_body
from tests.registry.contents import TestImages
from tests.registry.hostile import HostileRegistry
from tests.waiting import wait_for

pytest_plugins = ["tests.registry.fixtures"]
CUT = 64 * 1024


def pyprov(state: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYPROV_STATE_DIR": str(state)}
    return subprocess.Popen([sys.executable, "-m", "agent", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)



def test_a_killed_pull_resumes_without_downloading_again(
        hostile: HostileRegistry, registry_images: TestImages, tmp_path: Path) -> None:
    image = registry_images.busybox_oci
    big, small = image.layers[0].blob, image.layers[1].blob
    assert big.size > CUT * 4
    hostile.serve_image("busybox", image)
    big_path = f"/v2/busybox/blobs/{big.digest}"
    hostile.route("GET", big_path, stall_mid_body(big.read(), CUT))
    state = tmp_path / "state"
    partial = state / "images" / "ingest" / f"{big.digest[7:]}.partial"
    finished = state / "images" / "blobs" / "sha256" / small.digest[7:]
    first = pyprov(state, "pull", f"{hostile.host}/busybox:latest")
    try:
        wait_for(lambda: finished.exists() and partial.exists()
                 and partial.stat().st_size >= CUT)
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate()
    assert not (state / "images" / "index.json").exists()  # no image yet

    hostile.route("GET", big_path, ranged(big.read()))
    second = pyprov(state, "pull", f"{hostile.host}/busybox:latest")
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    big_asked = hostile.requests_to(big_path)
    assert [r.header("Range") for r in big_asked] == [None, f"bytes={CUT}-"]
    assert len(hostile.requests_to(f"/v2/busybox/blobs/{small.digest}")) == 1
    assert not partial.exists()
    verify = pyprov(state, "images", "--verify")
    verified, _ = verify.communicate(timeout=60)
    assert verify.returncode == 0, verified
    assert "the store is sound" in verified
    assert out.splitlines()[-1] == f"{hostile.host}/busybox:latest"
