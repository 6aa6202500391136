"""Where a project's build cache lives: EFS by default, the instance's disk with BUILD_CACHE_DIR (BuildCapacity EC2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from core import builds


def test_the_cache_is_on_efs_unless_the_worker_has_a_disk_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BUILD_CACHE_DIR", raising=False)
    efs = Path(builds.settings().efs_mount_path)
    assert builds.cache_dir("p-1") == efs / "cache" / "p-1"
    monkeypatch.setenv("BUILD_CACHE_DIR", "/var/cache/longrun-build")
    assert builds.cache_dir("p-1") == Path("/var/cache/longrun-build/p-1")


@pytest.mark.parametrize("project_id", ["", ".", "..", "a/../../etc", "p/1"])
def test_a_project_id_that_is_not_one_directory_name_is_refused(project_id: str) -> None:
    with pytest.raises(ValueError):
        builds.cache_dir(project_id)
