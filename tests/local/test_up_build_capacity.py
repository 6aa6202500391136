"""``longrun local up --parameter BuildCapacity=EC2``: the local cloud takes the EC2 capacity AWS would take,
and refuses what AWS would refuse (docs/local-cloud.md, "Where it differs from AWS").

With EC2 capacity the worker's task definition bind-mounts the instance's cache directory; locally
that host volume is ``DATA_DIR/ec2-host/var/cache/longrun-build``, and the workers get it as their
``BUILD_CACHE_DIR``. A warm minimum above the group's maximum stops ``local up`` with exit 2, as
CreateAutoScalingGroup would roll the stack back.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


def _up(data_dir: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "longrun.cli", "local", "up", "--data-dir", str(data_dir),
         "--endpoints-file", str(data_dir / "up.json"), "--build-workers", "1", *args],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_ec2_capacity_runs_its_workers_with_the_cache_on_the_host_volume(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    cloud = _up(data_dir, "--parameter", "BuildCapacity=EC2", "--parameter", "BuildWarmInstances=2")
    try:
        deadline = time.monotonic() + 180
        while not (data_dir / "up.json").exists():
            assert cloud.poll() is None, cloud.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "the local cloud did not come up"
            time.sleep(0.5)
        assert json.loads((data_dir / "up.json").read_text())["api"].startswith("http://127.0.0.1:")
        cache = data_dir / "ec2-host" / "var" / "cache" / "longrun-build"
        assert cache.is_dir()
        worker_log = data_dir / "logs" / "longrun-build-worker-0.log"
        deadline = time.monotonic() + 30
        while not worker_log.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert worker_log.exists(), sorted(p.name for p in (data_dir / "logs").iterdir())
    finally:
        cloud.send_signal(signal.SIGINT)
        _, stderr = cloud.communicate(timeout=60)
    assert cloud.returncode == 0, stderr[-3000:]


def test_warm_instances_over_the_groups_maximum_stop_local_up_with_exit_2(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    cloud = _up(data_dir, "--parameter", "BuildCapacity=EC2", "--parameter", "BuildWarmInstances=11")
    _, stderr = cloud.communicate(timeout=180)
    assert cloud.returncode == 2, stderr[-3000:]
    assert "AWS would refuse BuildInstanceGroup: MinSize above MaxSize: MinSize 11 > MaxSize 10" in stderr, stderr[
        -2000:
    ]
    assert "API_CreateAutoScalingGroup.html" in stderr and not (data_dir / "up.json").exists()
    assert os.path.isdir(data_dir)
