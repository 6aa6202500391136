"""``longrun local up`` refuses a stack Lambda would refuse, as ``sam deploy`` would fail, and serves nothing.

The planted copy is infra/ and statemachines/ in a tmp dir (handlers/ and schemas/ linked), so that
the template's relative paths resolve as in the repository; its UploadEventsMapping asks for batches
of 100 with no batching window, which CreateEventSourceMapping refuses
(https://docs.aws.amazon.com/lambda/latest/dg/API_EventSourceMappingConfiguration.html).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


def _planted_copy(tmp_path: Path) -> Path:
    for folder in ("infra", "statemachines"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    for folder in ("handlers", "schemas"):
        (tmp_path / folder).symlink_to(REPO / folder, target_is_directory=True)
    template = tmp_path / "infra" / "template.yaml"
    text = template.read_text(encoding="utf-8")
    start = text.index("\n  UploadEventsMapping:\n")
    end = re.compile(r"\n  \S").search(text, start + 1)
    assert end is not None
    mapping = text[start : end.start()]
    planted = re.sub(r"MaximumBatchingWindowInSeconds: \d+", "MaximumBatchingWindowInSeconds: 0", mapping)
    assert "BatchSize: 100" in planted and planted != mapping
    template.write_text(text[:start] + planted + text[end.start() :], encoding="utf-8")
    return template


def test_a_batch_of_100_without_a_window_stops_local_up_with_exit_2(tmp_path: Path) -> None:
    template = _planted_copy(tmp_path / "planted")
    data_dir, endpoints = tmp_path / "data", tmp_path / "endpoints.json"
    result = subprocess.run(
        [sys.executable, "-m", "longrun.cli", "local", "up", "--template", str(template),
         "--data-dir", str(data_dir), "--endpoints-file", str(endpoints)],
        cwd=REPO, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-3000:]
    assert "longrun local up: AWS would refuse UploadEventsMapping: batch size over 10 needs a batching window" in (
        result.stderr
    ), result.stderr[-3000:]
    assert "API_EventSourceMappingConfiguration.html" in result.stderr
    assert not endpoints.exists() and not (data_dir / "endpoints.json").exists()
