"""Fixtures shared by the workflow and end-to-end tests: one real ``longrun local up`` per session."""

from __future__ import annotations

import contextlib
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


@pytest.fixture(scope="session")
def translated() -> Any:
    """infra/template.yaml after the SAM transform, as ``longrun local up`` reads it (unit and emulator tests)."""
    from longrun.local.cloudformation.template import translate

    return translate(REPO / "infra" / "template.yaml", {"StageName": "test"})


@pytest.fixture(scope="session")
def boto_session() -> boto3.Session:
    """One botocore session for the whole run: its service models load once, not per test."""
    return boto3.Session(region_name="us-east-1")


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


@contextlib.contextmanager
def started_local_cloud(base: Path, *options: str, new_session: bool = False) -> Iterator[LocalCloud]:
    """``longrun local up`` exactly as a user starts it, on free ports, with ``options`` added; stopped after.

    The one way the tests start a local cloud of their own (the session's ``local_cloud``, and the
    clouds with other options of tests/e2e/test_faults.py and tests/e2e/test_quota.py): its output
    goes to ``base/local-up.log``, its data to ``base/data``. ``new_session``: the cloud and its
    processes get a process group of their own, which a test may SIGKILL whole (tests/e2e/test_restart.py).
    """
    endpoints_file = base / "endpoints.json"
    log = open(base / "local-up.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "longrun.cli", "local", "up", "--api-port", "0", "--ws-port", "0", "--aws-port", "0",
         "--data-dir", str(base / "data"), "--endpoints-file", str(endpoints_file), *options],
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=new_session,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not endpoints_file.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                started = " ".join(["longrun local up", *options])
                pytest.fail(f"{started} did not start:\n" + (base / "local-up.log").read_text())
            time.sleep(0.1)
        endpoints = json.loads(endpoints_file.read_text())
        yield LocalCloud(endpoints["api"], endpoints["ws"], endpoints["aws"], base / "data", process)
        _stop(process, fail_if_slow=True)
    finally:
        # A test that failed inside the ``with`` stops its cloud too: a leaked one would load every later test.
        if process.poll() is None:
            _stop(process, fail_if_slow=False)
        log.close()


def _stop(process: subprocess.Popen[bytes], fail_if_slow: bool) -> None:
    """SIGTERM, as Ctrl-C would; a cloud that has not stopped within 30 s is killed (and fails the test)."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        if fail_if_slow:
            raise


@pytest.fixture(scope="session")
def local_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    """The session's ``longrun local up``, with the default options."""
    with started_local_cloud(tmp_path_factory.mktemp("local-cloud")) as cloud:
        yield cloud
