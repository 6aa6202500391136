"""``longrun local up --engine stepfunctions-local`` without Docker: what the user is told, and what would run.

The missing-Docker cases run the real command line with a ``PATH`` that has no ``docker`` or a
fake one whose daemon is down: exit status 2, one paragraph on stderr that names the cause and the
alternatives, and nothing started. The ``docker run`` line and the relay are checked as functions.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from longrun.local.stepfunctions import local_engine as stepfunctions_local
from longrun.local.stepfunctions.local_engine import _Relay, docker_problem, run_command

REPO = Path(__file__).resolve().parents[3]

DAEMON_DOWN = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"


def _fake_docker(directory: Path, body: str) -> Path:
    """A ``docker`` on ``directory`` that runs ``body`` (sh) for every call."""
    directory.mkdir(parents=True, exist_ok=True)
    docker = directory / "docker"
    docker.write_text("#!/bin/sh\n" + body)
    docker.chmod(0o755)
    return directory


def _local_up(tmp_path: Path, path: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "longrun.cli", "local", "up", "--engine", "stepfunctions-local",
         "--data-dir", str(tmp_path / "data"), "--endpoints-file", str(tmp_path / "endpoints.json"), *extra],
        cwd=REPO, capture_output=True, text=True, timeout=60, env={**os.environ, "PATH": path},
    )  # fmt: skip


def _assert_nothing_started(tmp_path: Path) -> None:
    assert not (tmp_path / "data").exists(), "the data directory is made only once the cloud starts"
    assert not (tmp_path / "endpoints.json").exists()


def _assert_one_paragraph_with_the_alternatives(stderr: str) -> None:
    assert stderr.strip().count("\n") == 0, f"one paragraph, not a traceback: {stderr!r}"
    assert "Docker is not usable here" in stderr
    assert "amazon/aws-stepfunctions-local" in stderr
    assert "leave out --engine to use the default engine" in stderr
    assert "--stepfunctions-endpoint URL" in stderr
    assert "Traceback" not in stderr


def test_without_a_docker_command_it_says_so_and_starts_nothing(tmp_path):
    empty = tmp_path / "bin"
    empty.mkdir()
    started = time.monotonic()
    result = _local_up(tmp_path, str(empty))
    assert result.returncode == 2, result.stderr
    assert "there is no `docker` command on PATH" in result.stderr
    _assert_one_paragraph_with_the_alternatives(result.stderr)
    assert result.stdout == "", "not even the starting banner"
    assert time.monotonic() - started < 30
    _assert_nothing_started(tmp_path)


def test_with_the_daemon_down_it_shows_dockers_own_error_and_starts_nothing(tmp_path):
    calls = tmp_path / "calls"
    bin_dir = _fake_docker(
        tmp_path / "bin",
        f'echo "$@" >> {calls}\n'
        'if [ "$1" = info ]; then echo "Client:"; echo " Version:    28.2.2"; echo; echo "Server:"\n'
        f'  echo "{DAEMON_DOWN}" >&2; exit 1; fi\n'
        "exit 99\n",
    )
    result = _local_up(tmp_path, f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    assert result.returncode == 2, result.stderr
    assert f"the Docker daemon is not reachable (`docker info`: {DAEMON_DOWN})" in result.stderr
    _assert_one_paragraph_with_the_alternatives(result.stderr)
    assert calls.read_text().split("\n")[:-1] == ["info --format {{.ServerVersion}}"], "only asked, never ran"
    _assert_nothing_started(tmp_path)


def test_an_engine_endpoint_and_the_docker_engine_together_are_a_usage_error(tmp_path):
    result = _local_up(tmp_path, os.environ["PATH"], "--stepfunctions-endpoint", "http://127.0.0.1:8083")
    assert result.returncode == 2
    assert result.stderr.startswith("usage: longrun local up")
    assert "error: --engine stepfunctions-local starts its own engine" in result.stderr
    _assert_nothing_started(tmp_path)


def test_a_daemon_that_does_not_answer_is_reported_within_the_timeout(tmp_path, monkeypatch):
    bin_dir = _fake_docker(tmp_path / "bin", "exec sleep 30\n")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    started = time.monotonic()
    problem = docker_problem(timeout=0.5)
    assert time.monotonic() - started < 5
    assert problem == "`docker info` did not answer within 0.5 s (is the Docker daemon running?)"


def test_a_usable_docker_is_no_problem(tmp_path, monkeypatch):
    bin_dir = _fake_docker(tmp_path / "bin", 'echo "28.2.2"\n')
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    assert docker_problem() is None


def test_the_docker_run_line_points_every_endpoint_at_the_local_cloud():
    command = run_command(18083, 4566, "us-east-1", "123456789012", linux=True)
    aws = "http://host.docker.internal:4566"
    assert command == [
        "docker", "run", "--rm", "-d", "--name", "longrun-sfn-local-18083",
        "-p", "127.0.0.1:18083:8083",  # published on loopback only
        "--add-host", "host.docker.internal:host-gateway",
        "-e", "AWS_DEFAULT_REGION=us-east-1", "-e", "AWS_ACCOUNT_ID=123456789012",
        "-e", "AWS_ACCESS_KEY_ID=testing", "-e", "AWS_SECRET_ACCESS_KEY=testing",
        "-e", f"LAMBDA_ENDPOINT={aws}", "-e", f"SQS_ENDPOINT={aws}",
        "-e", f"DYNAMODB_ENDPOINT={aws}", "-e", f"SNS_ENDPOINT={aws}",
        "amazon/aws-stepfunctions-local",
    ]  # fmt: skip


def test_docker_desktop_needs_no_host_gateway_alias():
    command = run_command(18083, 4566, "eu-west-1", "123456789012", linux=False)
    assert "--add-host" not in command
    assert "AWS_DEFAULT_REGION=eu-west-1" in command
    assert command[-1] == stepfunctions_local.IMAGE


class _Echo(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="127.0.0.2 is a loopback address on Linux only")
def test_the_relay_carries_requests_from_the_containers_address_to_loopback():
    """As on a Docker host: the endpoint listens on 127.0.0.1, the container reaches the host's other address."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    relay = _Relay("127.0.0.2", port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.2:{port}") as client:  # one kept-alive connection
            for size in (10, 3_000_000):
                payload = os.urandom(size)
                assert client.post("/2015-03-31/functions/f/invocations", content=payload).content == payload
    finally:
        relay.stop()
        server.shutdown()
        server.server_close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.2", port), timeout=1).close()
