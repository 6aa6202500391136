"""Fixtures shared by the workflow and end-to-end tests: one real ``longrun local up`` per session."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from longrun.client import Client, Endpoints
from longrun.tokens import make_token

REPO = Path(__file__).resolve().parents[1]


@dataclass
class LocalCloud:
    api: str
    ws: str
    aws: str
    data_dir: Path
    process: subprocess.Popen[bytes]

    def client(self, user: str) -> Client:
        return Client(Endpoints(self.api, self.ws), make_token(user))

    def aws_client(self, service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.aws,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def efs_root(self) -> Path:
        return next((self.data_dir / "efs").glob("fs-*/longrun"))


@pytest.fixture(scope="session")
def local_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    """``longrun local up`` exactly as a user starts it, on free ports."""
    base = tmp_path_factory.mktemp("local-cloud")
    endpoints_file = base / "endpoints.json"
    log = open(base / "local-up.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "longrun.cli", "local", "up", "--api-port", "0", "--ws-port", "0", "--aws-port", "0",
         "--data-dir", str(base / "data"), "--endpoints-file", str(endpoints_file)],
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not endpoints_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail("longrun local up did not start:\n" + (base / "local-up.log").read_text())
        time.sleep(0.1)
    endpoints = json.loads(endpoints_file.read_text())
    yield LocalCloud(endpoints["api"], endpoints["ws"], endpoints["aws"], base / "data", process)
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    log.close()
