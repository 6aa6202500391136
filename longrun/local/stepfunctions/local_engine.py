"""``longrun local up --engine stepfunctions-local``: AWS Step Functions Local in Docker as the engine.

moto's engine is the default because the local cloud must start without Docker. Users who have
Docker may prefer AWS's own emulator, ``amazon/aws-stepfunctions-local``; this module runs it and
points it at the local cloud, after which the cloud treats it exactly as an engine named with
``--stepfunctions-endpoint``.

* **Docker is checked first** (:func:`docker_problem`): the ``docker`` command on ``PATH`` and a
  daemon that answers ``docker info`` within a few seconds. Where either is missing the command
  says so and starts nothing, rather than failing half-way with a pull or socket error.
* **The container reaches the cloud through the host.** Step Functions Local calls Lambda, SQS,
  DynamoDB and SNS at the endpoints its environment names (``LAMBDA_ENDPOINT`` and friends, see
  AWS's "Setting configuration options for Step Functions Local"): all are the local cloud's AWS
  endpoint, which answers the Lambda Invoke API and forwards DynamoDB. Inside the container that
  endpoint is ``host.docker.internal``; Docker Desktop defines the name, and on Linux
  ``--add-host host.docker.internal:host-gateway`` does.
* **On Linux a relay makes the endpoint reachable.** ``host-gateway`` is the Docker bridge's
  address on the host, and the AWS endpoint listens on loopback only (an unauthenticated AWS
  emulator is not for the network). :class:`_Relay` listens on that bridge address, at the AWS
  endpoint's port, and passes bytes to loopback: containers on this host reach it, nothing else.
* **The container is the cloud's to stop**: it runs ``--rm`` under a name that says whose it is
  (``longrun-sfn-local-<port>``), its port is published on loopback only, and :meth:`stop` runs
  ``docker stop`` when the cloud stops, on a failed start too.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
from botocore.config import Config

log = logging.getLogger("longrun.local.stepfunctions")

IMAGE = "amazon/aws-stepfunctions-local"
CONTAINER_PORT = 8083  # where the image's Step Functions Local listens
HOST_ALIAS = "host.docker.internal"
DOCKER_CHECK_SECONDS = 5.0
# The first run pulls the image (a few hundred MB); later ones start in seconds.
RUN_SECONDS = 600.0
READY_SECONDS = 90.0


class EngineFailed(RuntimeError):
    """The engine did not start; the cloud stops what it started and the user reads why, not a traceback."""


class DockerUnavailable(EngineFailed):
    """Docker cannot run the engine here; ``str()`` is the whole message for the user."""


def docker_problem(timeout: float = DOCKER_CHECK_SECONDS, docker: str = "docker") -> str | None:
    """Why Docker cannot run a container here, in one line; ``None`` when it can.

    ``docker info`` is the cheapest call that needs the daemon: a client without a reachable
    daemon fails it with the daemon's own error line, which is the most useful thing to show.
    """
    command = shutil.which(docker)
    if command is None:
        return f"there is no `{docker}` command on PATH"
    try:
        result = subprocess.run(
            [command, "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return f"`docker info` did not answer within {timeout:g} s (is the Docker daemon running?)"
    except OSError as e:
        return f"`{command}` could not be run: {e}"
    if result.returncode != 0:
        lines = [line.strip() for line in (result.stderr + "\n" + result.stdout).splitlines() if line.strip()]
        # The daemon's error is the line that says what failed, not the client's banner.
        reason = next((line for line in lines if "daemon" in line.lower() or "error" in line.lower()), None)
        reason = reason or (lines[-1] if lines else f"exit status {result.returncode}")
        return f"the Docker daemon is not reachable (`docker info`: {reason})"
    return None


def unavailable_message(problem: str) -> str:
    """The one paragraph ``longrun local up`` prints when ``--engine stepfunctions-local`` cannot run."""
    return (
        f"longrun local up: --engine stepfunctions-local runs AWS Step Functions Local ({IMAGE}) in Docker, "
        f"but Docker is not usable here: {problem}. Nothing was started. Start Docker (or install it) and try "
        "again; or leave out --engine to use the default engine (moto's, which needs no Docker); or run an "
        "engine some other way and name it with --stepfunctions-endpoint URL, its LAMBDA_ENDPOINT pointed at "
        "this cloud's AWS endpoint (fix that port with --aws-port)."
    )


def container_name(port: int) -> str:
    return f"longrun-sfn-local-{port}"


def engine_environment(aws_url: str, region: str, account_id: str) -> dict[str, str]:
    """The environment Step Functions Local reads, every service endpoint the local cloud's.

    ``aws_url`` is the AWS endpoint as the container sees it. The credentials are the local
    cloud's dummy ones (the engine signs its calls; nothing checks them).
    """
    return {
        "AWS_DEFAULT_REGION": region,
        "AWS_ACCOUNT_ID": account_id,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "LAMBDA_ENDPOINT": aws_url,
        "SQS_ENDPOINT": aws_url,
        "DYNAMODB_ENDPOINT": aws_url,
        "SNS_ENDPOINT": aws_url,
    }


def run_command(
    port: int,
    aws_port: int,
    region: str,
    account_id: str,
    linux: bool | None = None,
    image: str = IMAGE,
    docker: str = "docker",
) -> list[str]:
    """The ``docker run`` that starts the engine on ``127.0.0.1:port``, its AWS calls to ``aws_port``.

    ``linux`` (default: this platform) adds the ``host-gateway`` alias that Docker Engine on Linux
    lacks; Docker Desktop defines ``host.docker.internal`` itself.
    """
    linux = sys.platform.startswith("linux") if linux is None else linux
    command = [docker, "run", "--rm", "-d", "--name", container_name(port), "-p", f"127.0.0.1:{port}:{CONTAINER_PORT}"]
    if linux:
        command += ["--add-host", f"{HOST_ALIAS}:host-gateway"]
    for key, value in engine_environment(f"http://{HOST_ALIAS}:{aws_port}", region, account_id).items():
        command += ["-e", f"{key}={value}"]
    return [*command, image]


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class _Relay:
    """TCP from ``listen_host:port`` to ``127.0.0.1:port``: the loopback endpoint, as containers see the host."""

    def __init__(self, listen_host: str, port: int, target_host: str = "127.0.0.1") -> None:
        self.target = (target_host, port)
        self._server = socket.create_server((listen_host, port))
        self._stopped = threading.Event()
        threading.Thread(target=self._serve, name="sfn-local-relay", daemon=True).start()

    def _serve(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=10)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        back = threading.Thread(target=self._pipe, args=(upstream, client), daemon=True)
        back.start()
        self._pipe(client, upstream)
        back.join()
        for end in (client, upstream):
            end.close()

    @staticmethod
    def _pipe(source: socket.socket, target: socket.socket) -> None:
        """Copy one direction until its end, then pass the end on (HTTP keep-alive sees a clean close)."""
        try:
            while data := source.recv(65536):
                target.sendall(data)
            target.shutdown(socket.SHUT_WR)
        except OSError:
            # One side is gone: end both directions, so the other copy ends too.
            for end in (source, target):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        self._stopped.set()
        # A close alone leaves a thread blocked in accept() listening on Linux; shutdown wakes it.
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)
        self._server.close()


class StepFunctionsLocal:
    """One ``amazon/aws-stepfunctions-local`` container, started for a local cloud and stopped with it."""

    def __init__(
        self,
        aws_port: int,
        region: str,
        account_id: str,
        log_file: Path,
        port: int | None = None,
        image: str = IMAGE,
        docker: str = "docker",
    ) -> None:
        self.aws_port = aws_port
        self.region = region
        self.account_id = account_id
        self.log_file = log_file
        self.port = port or free_port()
        self.image = image
        self.docker = docker
        self.name = container_name(self.port)
        self.url = f"http://127.0.0.1:{self.port}"
        self._started = False
        self._logs: subprocess.Popen[bytes] | None = None
        self._relay: _Relay | None = None

    def start(self) -> str:
        """Run the container and return its endpoint once it answers ``ListStateMachines``."""
        problem = docker_problem(docker=self.docker)
        if problem is not None:
            raise DockerUnavailable(unavailable_message(problem))
        command = run_command(self.port, self.aws_port, self.region, self.account_id, image=self.image,
                              docker=self.docker)  # fmt: skip
        log.info("starting Step Functions Local: %s", " ".join(command))
        self._started = True  # from here on, stop() runs `docker stop` (a timed-out pull may still start it)
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=RUN_SECONDS,
                                    stdin=subprocess.DEVNULL)  # fmt: skip
        except subprocess.TimeoutExpired as e:
            raise EngineFailed(f"`docker run {self.image}` took over {RUN_SECONDS:g} s (pulling the image?)") from e
        if result.returncode != 0:
            raise EngineFailed(f"`docker run {self.image}` failed: {result.stderr.strip() or result.stdout.strip()}")
        # Its output goes where every part's log goes; the process also tells us if the container ends.
        self._logs = subprocess.Popen(
            [self.docker, "logs", "-f", self.name],
            stdout=open(self.log_file, "ab"),  # noqa: SIM115 - the child owns it
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        if sys.platform.startswith("linux"):
            self._relay_for_containers()
        self._wait_until_ready()
        return self.url

    def _relay_for_containers(self) -> None:
        gateway = self._host_gateway()
        if gateway is None:
            log.warning("could not read %s in the container; its Lambda calls may not reach the cloud", HOST_ALIAS)
            return
        try:
            self._relay = _Relay(gateway, self.aws_port)
        except OSError as e:
            # Not this host's address (a daemon in a VM, rootless Docker): Docker routes it itself, or nothing can.
            log.warning("no relay on %s:%d for the container (%s); Lambda tasks need it to reach "
                        "127.0.0.1:%d", gateway, self.aws_port, e, self.aws_port)  # fmt: skip

    def _host_gateway(self) -> str | None:
        """The address ``host.docker.internal`` has inside the container (what ``host-gateway`` became).

        Read from the container's ``/etc/hosts``; failing that, the default bridge's gateway, which is
        what ``host-gateway`` means unless the daemon was configured otherwise.
        """
        hosts = subprocess.run([self.docker, "exec", self.name, "cat", "/etc/hosts"], capture_output=True, text=True,
                               timeout=30, stdin=subprocess.DEVNULL)  # fmt: skip
        for line in hosts.stdout.splitlines():
            fields = line.split("#", 1)[0].split()
            if len(fields) >= 2 and HOST_ALIAS in fields[1:]:
                return fields[0]
        bridge = subprocess.run([self.docker, "network", "inspect", "bridge", "--format",
                                 "{{range .IPAM.Config}}{{.Gateway}} {{end}}"], capture_output=True, text=True,
                                timeout=30, stdin=subprocess.DEVNULL)  # fmt: skip
        gateways = bridge.stdout.split() if bridge.returncode == 0 else []
        return gateways[0] if gateways else None

    def _wait_until_ready(self) -> None:
        client = boto3.client(
            "stepfunctions",
            endpoint_url=self.url,
            region_name=self.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"max_attempts": 1}, connect_timeout=2, read_timeout=5),
        )
        deadline = time.monotonic() + READY_SECONDS
        while True:
            if self.exited():
                raise EngineFailed(f"Step Functions Local exited at start; see {self.log_file}")
            try:
                client.list_state_machines()
                return
            except Exception as e:
                if time.monotonic() > deadline:
                    raise EngineFailed(f"Step Functions Local did not answer at {self.url}: {e}") from e
                time.sleep(0.5)

    def exited(self) -> bool:
        """Whether the container has ended under the cloud (``docker logs -f`` ends with it)."""
        return self._logs is not None and self._logs.poll() is not None

    def stop(self) -> None:
        if self._relay is not None:
            self._relay.stop()
        if self._started:
            try:
                subprocess.run([self.docker, "stop", "--time", "5", self.name], capture_output=True, timeout=60,
                               stdin=subprocess.DEVNULL)  # fmt: skip
            except (OSError, subprocess.TimeoutExpired) as e:
                log.warning("could not stop container %s (%s): stop it with `docker stop %s`", self.name, e, self.name)
            self._started = False
        if self._logs is not None and self._logs.poll() is None:
            self._logs.terminate()
            try:
                self._logs.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._logs.kill()
