"""``--stepfunctions-endpoint``: an external Step Functions engine in place of moto's.

Step Functions Local (Docker) is the engine users with Docker may prefer; these machines have no
Docker engine, so the stand-in here is a second AWS endpoint process whose Lambda calls go to the
local cloud's AWS endpoint, exactly as Step Functions Local's ``LAMBDA_ENDPOINT`` would. The test
checks the wiring the option promises: the state machines live on the external engine, the API
starts executions there, and its Lambda tasks run in the local cloud.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import httpx

from longrun.tokens import make_token
from tests.e2e.helpers import settled_execution_status

REPO = Path(__file__).resolve().parents[3]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sfn(url: str):
    return boto3.client("stepfunctions", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip


def test_jobs_run_on_an_external_engine(tmp_path):
    aws_port = _free_port()
    engine = subprocess.Popen(
        [sys.executable, "-m", "longrun.local.aws_server", "--port", "0",
         "--lambda-url", f"http://127.0.0.1:{aws_port}"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO,
        env={**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"},
    )  # fmt: skip
    engine_url = f"http://127.0.0.1:{json.loads(engine.stdout.readline())['port']}"
    endpoints_file = tmp_path / "endpoints.json"
    cloud = subprocess.Popen(
        [sys.executable, "-m", "longrun.cli", "local", "up", "--aws-port", str(aws_port),
         "--stepfunctions-endpoint", engine_url, "--data-dir", str(tmp_path / "data"),
         "--endpoints-file", str(endpoints_file)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not endpoints_file.exists():
            assert cloud.poll() is None and time.monotonic() < deadline, "longrun local up did not start"
            time.sleep(0.05)
        endpoints = json.loads(endpoints_file.read_text())
        assert endpoints["stepfunctions"] == engine_url
        headers = {"Authorization": f"Bearer {make_token('sfl-user')}"}
        job = httpx.post(
            f"{endpoints['api']}/jobs",
            headers=headers,
            json={"type": "create-project", "params": {"name": "on-the-engine"}},
        ).json()
        deadline = time.monotonic() + 60
        while (
            status := httpx.get(f"{endpoints['api']}/jobs/{job['jobId']}", headers=headers).json()["status"]
        ) == "RUNNING":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert status == "SUCCEEDED"
        assert settled_execution_status(_sfn(engine_url), job["executionArn"]) == "SUCCEEDED"
        assert _sfn(endpoints["aws"]).list_state_machines()["stateMachines"] == [], "moto's engine was not used"
    finally:
        for process in (cloud, engine):
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
