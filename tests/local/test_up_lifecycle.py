"""``longrun local up`` as a process: it serves every part before it says so, and leaves nothing behind."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        return "Z" not in Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sigterm_stops_every_part_and_endpoints_are_served_when_written(tmp_path):
    endpoints_file = tmp_path / "endpoints.json"
    api_port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "longrun.cli", "local", "up", "--api-port", str(api_port),
         "--data-dir", str(tmp_path / "data"), "--endpoints-file", str(endpoints_file)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not endpoints_file.exists():
            assert process.poll() is None, "longrun local up exited early"
            assert time.monotonic() < deadline, "no endpoints file"
            time.sleep(0.05)
        endpoints = json.loads(endpoints_file.read_text())
        assert set(endpoints) == {"api", "ws", "aws", "stepfunctions"}  # the engine has a process of its own
        assert endpoints["api"] == f"http://127.0.0.1:{api_port}", "an explicit port is honoured"
        # Written means serving: every part answers at once.
        assert httpx.get(endpoints["api"] + "/jobs").status_code == 401
        assert (
            httpx.post(endpoints["aws"], data={"Action": "GetCallerIdentity", "Version": "2011-06-15"}).status_code
            == 200
        )
        host, port = endpoints["ws"].removeprefix("ws://").split("/")[0].split(":")
        socket.create_connection((host, int(port)), timeout=2).close()
        children = _descendants(process.pid)
        assert len(children) >= 2, "moto and the Lambda workers run in processes of their own"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    time.sleep(0.5)
    assert not [pid for pid in children if _alive(pid)], "every child process is stopped"
    assert not endpoints_file.exists(), "a stopped cloud leaves no stale endpoints file"
