"""``longrun local up --engine stepfunctions-local``: Step Functions Local in Docker as the engine.

Where Docker runs, the first test runs the real ``amazon/aws-stepfunctions-local`` image and a
create-project job through it; elsewhere it is skipped with the reason Docker is not usable.

The other two run everywhere, with a stand-in ``docker`` on ``PATH``: its ``run`` starts a second
AWS endpoint process (as in ``test_external_stepfunctions_engine.py``) on the published port,
with its Lambda calls to ``LAMBDA_ENDPOINT`` and ``host.docker.internal`` at 127.0.0.2, the
address a container sees the host at. They check what Docker cannot be asked here: the command
line the cloud runs, the relay that carries the engine's Lambda calls to the loopback endpoint,
and that ``docker stop`` follows SIGTERM and a failed start.
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
from typing import Any

import boto3
import httpx
import pytest

from longrun.local.stepfunctions.local_engine import CONTAINER_PORT, IMAGE, docker_problem
from longrun.tokens import make_token
from tests.e2e.helpers import settled_execution_status, unique_name

REPO = Path(__file__).resolve().parents[3]
DOCKER_PROBLEM = docker_problem()

FAKE_DOCKER = """#!{python}
import json, os, signal, subprocess, sys, time
from pathlib import Path

STATE = Path(os.environ["FAKE_DOCKER_STATE"])
args = sys.argv[1:]


def alive(pid):
    try:
        return "Z" not in Path(f"/proc/{{pid}}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False


if args[0] != "_container":
    with open(STATE / "calls", "a") as calls:
        calls.write(json.dumps(args) + "\\n")
if args[0] == "info":
    print("28.2.2")
elif args[0] == "run":
    name = args[args.index("--name") + 1]
    port = args[args.index("-p") + 1].split(":")[1]
    env = dict(args[i + 1].split("=", 1) for i, arg in enumerate(args) if arg == "-e")
    lambda_url = env["LAMBDA_ENDPOINT"].replace("host.docker.internal", "127.0.0.2")
    container = subprocess.Popen(
        [sys.executable, __file__, "_container", port, lambda_url, os.environ.get("FAKE_DOCKER_MODE", "serve")],
        start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=open(STATE / "container.log", "ab"),
    )
    (STATE / (name + ".pid")).write_text(str(container.pid))
    print("c0ffee")
elif args[0] == "_container":  # the container's process: the stand-in engine, until `docker stop`
    port, lambda_url, mode = args[1:]
    if mode == "exit":
        sys.exit(1)
    engine = subprocess.Popen(
        [sys.executable, "-m", "longrun.local.aws_server", "--port", port, "--lambda-url", lambda_url],
        cwd=os.environ["FAKE_DOCKER_REPO"], stdout=subprocess.DEVNULL,
    )
    signal.signal(signal.SIGTERM, lambda *_: engine.terminate())
    sys.exit(engine.wait())
elif args[0] == "logs":
    pid = int((STATE / (args[-1] + ".pid")).read_text())
    while alive(pid):
        time.sleep(0.1)
elif args[0] == "exec":
    print("127.0.0.1\\tlocalhost\\n127.0.0.2\\thost.docker.internal")
elif args[0] == "stop":
    pid_file = STATE / (args[-1] + ".pid")
    if not pid_file.exists():
        sys.exit("Error response from daemon: No such container: " + args[-1])
    pid = int(pid_file.read_text())
    if alive(pid):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    pid_file.unlink()
    print(args[-1])
else:
    sys.exit("fake docker: unexpected " + " ".join(args))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _sfn(url: str) -> Any:
    return boto3.client("stepfunctions", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip


def _serves(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _local_up(tmp_path: Path, env: dict[str, str], aws_port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "longrun.cli", "local", "up", "--engine", "stepfunctions-local",
         "--aws-port", str(aws_port), "--data-dir", str(tmp_path / "data"),
         "--endpoints-file", str(tmp_path / "endpoints.json")],
        cwd=REPO, stdout=open(tmp_path / "local-up.log", "wb"), stderr=subprocess.STDOUT,
        env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip


def _wait_for_endpoints(tmp_path: Path, process: subprocess.Popen[bytes], timeout: float) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while not (tmp_path / "endpoints.json").exists():
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail("longrun local up did not start:\n" + (tmp_path / "local-up.log").read_text())
        time.sleep(0.1)
    return json.loads((tmp_path / "endpoints.json").read_text())


def _create_project(endpoints: dict[str, str], user: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {make_token(user)}"}
    response = httpx.post(f"{endpoints['api']}/jobs", headers=headers, timeout=30,
                          json={"type": "create-project", "params": {"name": unique_name("sfl")}})  # fmt: skip
    assert response.status_code == 202, response.text
    job = response.json()
    deadline = time.monotonic() + 120
    while (job := httpx.get(f"{endpoints['api']}/jobs/{job['jobId']}", headers=headers, timeout=30).json())[
        "status"
    ] == "RUNNING":
        assert time.monotonic() < deadline, "the job did not finish"
        time.sleep(0.2)
    return job


def _stop(process: subprocess.Popen[bytes]) -> int:
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        raise


@pytest.mark.skipif(DOCKER_PROBLEM is not None, reason=f"Docker is not available here: {DOCKER_PROBLEM}")
@pytest.mark.timeout(900)  # the first run pulls the image
def test_jobs_run_on_step_functions_local_in_docker(tmp_path):
    process = _local_up(tmp_path, {}, _free_port())
    try:
        endpoints = _wait_for_endpoints(tmp_path, process, timeout=700)
        engine = endpoints["stepfunctions"]
        port = int(engine.rsplit(":", 1)[1])
        job = _create_project(endpoints, "sfl-docker")
        assert job["status"] == "SUCCEEDED", job
        assert settled_execution_status(_sfn(engine), job["executionArn"]) == "SUCCEEDED"
        assert _sfn(endpoints["aws"]).list_state_machines()["stateMachines"] == [], "moto's engine was not used"
        running = subprocess.run(["docker", "ps", "-q", "--filter", f"name=longrun-sfn-local-{port}",
                                  "--filter", f"ancestor={IMAGE}"], capture_output=True, text=True)  # fmt: skip
        assert running.stdout.strip(), "the engine is the container the cloud started"
    finally:
        assert _stop(process) == 0
    gone = subprocess.run(["docker", "ps", "-aq", "--filter", f"name=longrun-sfn-local-{port}"],
                          capture_output=True, text=True)  # fmt: skip
    assert gone.stdout.strip() == "", "the container is stopped (and removed) with the cloud"
    assert not _serves(port)


def _fake_docker(tmp_path: Path, mode: str) -> tuple[dict[str, str], Path]:
    state = tmp_path / "docker-state"
    state.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(FAKE_DOCKER.format(python=sys.executable))
    (bin_dir / "docker").chmod(0o755)
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "FAKE_DOCKER_STATE": str(state),
        "FAKE_DOCKER_REPO": str(REPO),
        "FAKE_DOCKER_MODE": mode,
    }
    return env, state


def _calls(state: Path) -> list[list[str]]:
    return [json.loads(line) for line in (state / "calls").read_text().splitlines()]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the stand-in uses 127.0.0.2 and /proc (Linux)")
def test_the_container_is_run_for_the_cloud_and_stopped_with_it(tmp_path):
    env, state = _fake_docker(tmp_path, "serve")
    aws_port = _free_port()
    process = _local_up(tmp_path, env, aws_port)
    try:
        endpoints = _wait_for_endpoints(tmp_path, process, timeout=120)
        port = int(endpoints["stepfunctions"].removeprefix("http://127.0.0.1:"))
        name = f"longrun-sfn-local-{port}"
        run = next(call for call in _calls(state) if call[0] == "run")
        assert run[:8] == ["run", "--rm", "-d", "--name", name, "-p", f"127.0.0.1:{port}:{CONTAINER_PORT}",
                           "--add-host"]  # fmt: skip
        assert run[-1] == IMAGE
        assert f"LAMBDA_ENDPOINT=http://host.docker.internal:{aws_port}" in run
        assert f"DYNAMODB_ENDPOINT=http://host.docker.internal:{aws_port}" in run
        # The engine's Lambda calls arrive at 127.0.0.2, the host as containers see it, and reach the cloud.
        job = _create_project(endpoints, "sfl-stand-in")
        assert job["status"] == "SUCCEEDED", job
        assert settled_execution_status(_sfn(endpoints["stepfunctions"]), job["executionArn"]) == "SUCCEEDED"
        assert _sfn(endpoints["aws"]).list_state_machines()["stateMachines"] == [], "moto's engine was not used"
        log = (tmp_path / "local-up.log").read_text()
        assert f"Step Functions  http://127.0.0.1:{port}  (Step Functions Local in Docker: container {name}" in log
    finally:
        assert _stop(process) == 0
    assert ["stop", "--time", "5", name] in _calls(state), "SIGTERM stops the container"
    assert not (state / f"{name}.pid").exists()
    assert not _serves(port) and not _serves(aws_port)
    assert not (tmp_path / "endpoints.json").exists()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the stand-in uses /proc (Linux)")
def test_a_container_that_ends_at_start_is_stopped_and_so_is_the_cloud(tmp_path):
    env, state = _fake_docker(tmp_path, "exit")
    aws_port = _free_port()
    process = _local_up(tmp_path, env, aws_port)
    try:
        assert process.wait(timeout=120) == 1
    finally:
        if process.poll() is None:
            process.kill()
    output = (tmp_path / "local-up.log").read_text()
    assert "longrun local up: Step Functions Local exited at start; see " in output
    assert "Traceback" not in output, "a message, not a traceback"
    calls = _calls(state)
    run = next(call for call in calls if call[0] == "run")
    assert ["stop", "--time", "5", run[run.index("--name") + 1]] in calls, "a failed start stops the container"
    assert not _serves(aws_port), "and every part of the cloud"
    assert not (tmp_path / "endpoints.json").exists()
