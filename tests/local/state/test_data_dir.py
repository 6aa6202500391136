"""A data dir is refused when another version wrote it, used by one cloud at a time, and cleared on request.

Through the CLI a user runs (``longrun local up``, ``longrun local reset``); none of these starts a
cloud: each is refused or done before moto would start.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from longrun.local.cloud import LocalCloud, Options
from longrun.local.state import format as state_format
from longrun.local.state.lock import DataDirLock

REPO = Path(__file__).resolve().parents[3]


def _cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "longrun.cli", *args], cwd=REPO, input=stdin,
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def _plant(data_dir: Path, format_number: int = 0, moto: str = "4.1.0") -> None:
    (data_dir / "state").mkdir(parents=True)
    (data_dir / "state" / "FORMAT.json").write_text(json.dumps({"format": format_number, "moto": moto}))
    (data_dir / "state" / "dynamodb.pickle").write_bytes(b"an older layout")
    (data_dir / "efs" / "fs-1" / "projects" / "p").mkdir(parents=True)
    (data_dir / "efs" / "fs-1" / "projects" / "p" / "README").write_text("workspace")
    (data_dir / "logs").mkdir()
    (data_dir / "logs" / "aws.log").write_text("old")


def test_a_data_dir_of_an_older_format_is_refused_with_both_versions_and_the_way_out(tmp_path: Path) -> None:
    _plant(tmp_path)
    run = _cli("local", "up", "--data-dir", str(tmp_path))
    assert run.returncode == 2, run.stderr
    mine = state_format.current()
    assert "state format 0 with moto 4.1.0" in run.stderr
    assert f"state format {mine['format']} with moto {mine['moto']}" in run.stderr
    assert "longrun local reset" in run.stderr and "--fresh" in run.stderr
    assert (tmp_path / "state" / "dynamodb.pickle").read_bytes() == b"an older layout"  # refused, not touched


def test_a_data_dir_of_another_moto_release_is_refused(tmp_path: Path) -> None:
    _plant(tmp_path, format_number=state_format.FORMAT, moto="5.0.0")
    with pytest.raises(state_format.StateRefused, match=r"moto 5\.0\.0"):
        state_format.check(tmp_path)


def test_an_unreadable_format_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "FORMAT.json").write_text("{not json")
    with pytest.raises(state_format.StateRefused, match=r"unreadable FORMAT\.json"):
        state_format.check(tmp_path)


def test_a_new_data_dir_gets_the_current_format(tmp_path: Path) -> None:
    state_format.check(tmp_path)
    assert json.loads((tmp_path / "state" / "FORMAT.json").read_text()) == state_format.current()
    state_format.check(tmp_path)  # and reads it back


def test_a_second_cloud_on_one_data_dir_is_refused_and_a_running_ones_data_is_not_reset(tmp_path: Path) -> None:
    _plant(tmp_path, format_number=state_format.FORMAT, moto=state_format.current()["moto"])
    running = DataDirLock(tmp_path)
    running.acquire()  # what a running `longrun local up` holds
    try:
        (tmp_path / "endpoints.json").write_text("{}")  # the running cloud's
        up = _cli("local", "up", "--data-dir", str(tmp_path))
        assert up.returncode == 2 and "runs on the data dir" in up.stderr, up.stderr
        assert (tmp_path / "endpoints.json").exists()  # the refused cloud did not clean up the running one's files
        reset = _cli("local", "reset", "--data-dir", str(tmp_path), "--yes")
        assert reset.returncode == 2 and "runs on the data dir" in reset.stderr, reset.stderr
        assert (tmp_path / "state" / "dynamodb.pickle").exists()
    finally:
        running.release()


def test_reset_clears_state_efs_and_logs_and_asks_first(tmp_path: Path) -> None:
    _plant(tmp_path)
    declined = _cli("local", "reset", "--data-dir", str(tmp_path), stdin="n\n")
    assert declined.returncode == 1 and "nothing removed" in declined.stderr
    assert (tmp_path / "state" / "FORMAT.json").exists()
    confirmed = _cli("local", "reset", "--data-dir", str(tmp_path), stdin="y\n")
    assert confirmed.returncode == 0, confirmed.stderr
    assert not (tmp_path / "state").exists() and not (tmp_path / "efs").exists() and not (tmp_path / "logs").exists()
    _plant(tmp_path)
    assert _cli("local", "reset", "--data-dir", str(tmp_path), "--yes").returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["longrun.lock"]


def test_reset_says_what_it_removes(tmp_path: Path) -> None:
    shown = _cli("local", "reset", "--help").stdout
    assert "EFS files" in shown and "tables" in shown and "Refused while a local cloud runs" in shown


def test_fresh_starts_empty_even_on_an_older_format(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _plant(tmp_path)

    class Started(Exception):
        pass

    def moto_would_start(self: LocalCloud, lambda_url: str) -> None:
        raise Started  # the data dir checks are done: stop before any process starts

    monkeypatch.setattr(LocalCloud, "_start_moto", moto_would_start)
    with pytest.raises(Started):
        LocalCloud(Options(data_dir=tmp_path, fresh=True)).start()
    assert json.loads((tmp_path / "state" / "FORMAT.json").read_text()) == state_format.current()
    assert not (tmp_path / "state" / "dynamodb.pickle").exists() and not (tmp_path / "efs").exists()
    DataDirLock(tmp_path).acquire()  # and the stopped start released the lock
