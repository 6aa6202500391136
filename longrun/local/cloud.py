"""``longrun local up``: the whole local cloud in one command, without Docker.

Parts, each in its place:

* the AWS endpoint — moto in server mode, in its own process (:mod:`longrun.local.aws_server`),
  and DynamoDB in a second one, since the job store's traffic is most of what a job costs;
* Lambda — warm worker processes per function (:mod:`longrun.local.awslambda.runtime`), reached
  through the control plane (:mod:`longrun.local.control_plane`);
* API Gateway — the REST front and the WebSocket front, in this process;
* EFS — a directory under ``--data-dir``.

At start the template is translated and every resource it names is created or served; the
endpoints file is written only once every part answers.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config

from longrun.local.apigateway.rest_front import RestFront
from longrun.local.apigateway.websocket_front import WebSocketFront
from longrun.local.awslambda.event_sources import SqsPoller
from longrun.local.awslambda.runtime import LambdaRuntime
from longrun.local.cloudformation.engine import ACCOUNT_ID, Stack, StackBuilder
from longrun.local.cloudformation.template import translate
from longrun.local.console import STATIC_PREFIX, ConsoleFiles
from longrun.local.control_plane import ControlPlane
from longrun.local.ecs.services import ServicePool
from longrun.local.faults import COUNTS_FILE, Faults, Reporter, to_spec
from longrun.local.state import clear as state_clear
from longrun.local.state import format as state_format
from longrun.local.state.lock import DataDirLock
from longrun.local.stepfunctions import settle
from longrun.local.stepfunctions.local_engine import StepFunctionsLocal
from longrun.tokens import local_secret  # the CLI signs with it too, without this package

log = logging.getLogger("longrun.local")

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TEMPLATE = REPO_ROOT / "infra" / "template.yaml"
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}
# Functions no API Gateway route or authorizer calls (workflow steps) yield the CPU to those that
# a client is waiting on: see FunctionSpec.niceness.
BACKGROUND_NICENESS = 10
# Functions the first request needs; the rest warm up in the background.
_WARM_FIRST = ("api.", "websocket.")


@dataclass
class Options:
    host: str = "127.0.0.1"
    api_port: int = 0
    ws_port: int = 0
    aws_port: int = 0
    data_dir: Path = Path(".longrun")
    endpoints_file: Path | None = None
    template: Path = DEFAULT_TEMPLATE
    region: str = "us-east-1"
    stack_name: str = "longrun"
    stage: str = "local"
    # An external Step Functions engine (AWS Step Functions Local in Docker) instead of moto's.
    stepfunctions_endpoint: str | None = None
    # "stepfunctions-local": the cloud runs that engine in Docker itself and sets the endpoint above.
    engine: str = "moto"
    # Private hosts git jobs may reach: this machine, so a repository served here can be cloned.
    git_private_hosts: tuple[str, ...] = ("127.0.0.1", "localhost")
    # EventBridge sources whose "Start Job" events start jobs (the stack's TrustedEventSources).
    trusted_sources: tuple[str, ...] = ("longrun.local",)
    # Jobs one user may have RUNNING at once (the stack's MaxConcurrentJobsPerUser).
    max_jobs_per_user: int = 20
    # Build worker processes (the template's ECS service), and how long a silent one is given.
    build_workers: int = 2
    build_heartbeat_timeout: int = 10
    # --faults: the rate of each fault to inject once the cloud is up (longrun.local.faults), and its seed.
    faults: dict[str, float] | None = None
    faults_seed: int = 0
    # The account's Lambda concurrency quota that reserved concurrency is judged against (aws_rules).
    account_concurrency: int = 1000
    # --parameter KEY=VALUE: template parameters over the local cloud's own (custom domains, ...).
    parameters: dict[str, str] | None = None
    # --fresh: start empty, clearing what the data dir kept (longrun.local.state.clear).
    fresh: bool = False


def _free_port(host: str) -> int:
    """A port free now, for a process that must be named before it starts (the engine: see _start_moto)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


class LocalCloud:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.data_dir = options.data_dir.resolve()
        self.moto: subprocess.Popen[str] | None = None
        self._processes: list[subprocess.Popen[str]] = []
        self.aws_url = ""
        self.dynamodb_url = ""
        # moto's Step Functions engine in a process of its own (see aws_server); "" with an external engine.
        self.stepfunctions_url = ""
        self.runtime: LambdaRuntime | None = None
        self.control: ControlPlane | None = None
        self.rest: RestFront | None = None
        self.websocket: WebSocketFront | None = None
        self.stack: Stack | None = None
        self.pollers: list[SqsPoller] = []
        self.services: list[ServicePool] = []
        self.stepfunctions_local: StepFunctionsLocal | None = None
        self.faults = Faults(options.faults, options.faults_seed)
        self._dynamodb_process: subprocess.Popen[str] | None = None
        self._fault_reporter: Reporter | None = None
        self._lock = DataDirLock(self.data_dir)

    # --- start --------------------------------------------------------------------------------

    def start(self) -> None:
        o = self.options
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # Outside the try below: a cloud refused here must not stop (or unlink the files of) the one that runs.
        self._lock.acquire()
        try:
            if o.fresh:
                state_clear.clear(self.data_dir)
            state_format.check(self.data_dir)  # StateRefused: `longrun local up` exits 2 with its message
        except BaseException:
            self._lock.release()
            raise
        (self.data_dir / "logs").mkdir(exist_ok=True)
        for stale in (self.data_dir / COUNTS_FILE, self._dynamodb_faults_file()):  # an earlier run's counts
            stale.unlink(missing_ok=True)
        try:
            # The control plane binds first: the AWS endpoint forwards Lambda invocations to it.
            self.control = ControlPlane(o.host, 0)
            self._start_moto(self.control.url)
            if o.engine == "stepfunctions-local":
                self._start_stepfunctions_local()
            self.runtime = LambdaRuntime(self._lambda_environment(), self.data_dir / "logs", self.faults)
            self.control.runtime = self.runtime
            self.control.faults = self.faults
            self.control.start()
            translated = translate(o.template, {"StageName": o.stage, **(o.parameters or {})}, region=o.region)
            self.stack = StackBuilder(
                translated,
                stack_name=o.stack_name,
                region=o.region,
                parameters={
                    "StageName": o.stage,
                    # No VpcId/SubnetIds: the template's default, where the stack makes its own network
                    # (served locally: nothing to route on loopback).
                    "GitPrivateHosts": ",".join(o.git_private_hosts),
                    "TrustedEventSources": ",".join(o.trusted_sources),
                    "MaxConcurrentJobsPerUser": str(o.max_jobs_per_user),
                    "BuildWorkerImage": "longrun-local",
                    "BuildHeartbeatTimeoutSeconds": str(o.build_heartbeat_timeout),
                    **(o.parameters or {}),
                },
                data_dir=self.data_dir,
                websocket_management_base=f"{self.control.url}/@ws",
                aws=self.client,
                account_concurrency=o.account_concurrency,
            ).build()
            self._put_token_secret()
            self._restore_state()  # the saved data into the stack just made, whose definitions win
            # Once the saved data is restored, before any front, poller or worker starts: the last run's
            # RUNNING executions end ABORTED (LocalCloudStopped), and the trigger closes their jobs.
            settle.settle_lost_executions(self.client("stepfunctions"), self.stack.state_machines.values())
            behind_apis = self.stack.api_functions()
            for spec in self.stack.functions:
                if spec.name not in behind_apis:
                    spec.niceness = BACKGROUND_NICENESS
                self.runtime.add(spec)
            self._warm()
            for source in self.stack.event_sources:
                poller = SqsPoller(source, self.client("sqs"), self.runtime, o.region)
                poller.start()
                self.pollers.append(poller)
            self._start_services()
            if self.stack.rest_api is None or self.stack.websocket_api is None:
                raise RuntimeError("the template has no REST API or no WebSocket API")
            self.websocket = WebSocketFront(o.host, o.ws_port, self.stack.websocket_api, self.runtime, o.region)
            console = ConsoleFiles(self.websocket.url)
            self._upload_console(console)
            self.rest = RestFront(
                o.host, o.api_port, self.stack.rest_api, self.runtime, o.region,
                s3=self.client("s3"), console=console,
                websocket_alias=(self.stack.websocket_api.endpoint, self.websocket.url),
            )  # fmt: skip
            self.control.websocket = self.websocket
            self._register_outputs()  # once the fronts have their URLs, which the outputs name
            self.rest.start()
            self.websocket.start()
            # Always in the data directory too, where `longrun jobs` looks by default.
            for path in self._endpoints_files():
                self._write_endpoints(path)
            self._arm_faults()
        except BaseException:
            self.stop()
            raise

    def _state_args(self, *services: str) -> tuple[str, ...]:
        """The options that make an AWS process keep ``services`` under ``<data-dir>/state`` (longrun.local.state)."""
        return ("--state-dir", str(state_format.state_dir(self.data_dir)), "--state-services", ",".join(services))

    def _restore_state(self) -> None:
        """Each AWS process puts its services' saved data back, and begins saving (not before: see the keeper)."""
        import urllib.error
        import urllib.request

        for url in (u for u in (self.dynamodb_url, self.aws_url, self.stepfunctions_url) if u):
            request = urllib.request.Request(f"{url}/_longrun/state/restore", data=b"", method="POST")
            try:
                with urllib.request.urlopen(request, timeout=300) as response:
                    log.info("state restored at %s: %s", url, response.read().decode())
            except urllib.error.HTTPError as e:
                raise RuntimeError(f"restoring the saved state at {url} failed: {e.read().decode()}") from None

    def _dynamodb_faults_file(self) -> Path:
        return self.data_dir / "logs" / "faults-dynamodb.json"

    def _arm_faults(self) -> None:
        """Faults begin once every part serves: the cloud's own setup is never failed."""
        if not self.faults:
            return
        self.faults.arm()
        process = self._dynamodb_process
        if self.faults.rates.get("dynamodb.throttle") and process is not None and process.poll() is None:
            process.send_signal(signal.SIGUSR1)  # only a process started with --faults handles it
        self._fault_reporter = Reporter(self.faults, self.data_dir / COUNTS_FILE, [self._dynamodb_faults_file()])
        self._fault_reporter.start()
        log.warning("injecting faults from now on: %s (seed %d); counts in %s",
                    to_spec(self.faults.rates), self.faults.seed, self.data_dir / COUNTS_FILE)  # fmt: skip

    def _upload_console(self, console: ConsoleFiles) -> None:
        """The web console's files where the template's S3 routes read them, as `make console-upload` puts them.

        ``/static/{proxy+}`` reads ``static/{proxy}`` of the bucket, so the console goes under
        ``static/console/`` and opens at ``{api}/static/console/index.html``, locally as on AWS.
        """
        assert self.stack is not None and self.stack.rest_api is not None
        s3 = self.client("s3")
        for route in self.stack.rest_api.routes:
            if route.s3 is not None and "{" in route.s3.key:
                prefix = route.s3.key.split("{", 1)[0] + STATIC_PREFIX
                count = console.upload(s3, route.s3.bucket, prefix)
                log.info("web console: %d files in s3://%s/%s for %s", count, route.s3.bucket, prefix, route.path)

    def _start_aws_process(
        self, name: str, port: int, lambda_url: str, dynamodb_url: str | None = None, extra: tuple[str, ...] = ()
    ) -> tuple[subprocess.Popen[str], str]:
        command = [sys.executable, "-m", "longrun.local.aws_server", "--host", self.options.host, "--port", str(port)]
        command += ["--lambda-url", lambda_url] + (["--dynamodb-url", dynamodb_url] if dynamodb_url else [])
        command += list(extra)
        log = self.data_dir / "logs" / f"{name}.log"
        process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=open(log, "ab"),  # noqa: SIM115 - the child owns it
            text=True,
            env={**os.environ, **LOCAL_CREDENTIALS, "MOTO_CALL_RESET_API": "false"},
        )
        self._processes.append(process)
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"the local {name} endpoint did not start; see {log}")
        return process, f"http://{self.options.host}:{json.loads(line)['port']}"

    def _start_moto(self, lambda_url: str) -> None:
        """DynamoDB first, in a process of its own; then the AWS endpoint, which forwards to it; then Step Functions.

        moto's engine runs every execution as threads of the process that answers StartExecution: in
        the AWS endpoint's process, the engine's threads and every other AWS call took turns on one
        interpreter lock, and StartExecution slowed down with the jobs in flight. So the engine gets a
        process of its own (unless an external engine runs the state machines), on a port chosen
        first: the AWS endpoint forwards Step Functions calls to it, and it calls the AWS endpoint
        for its integrations (Lambda, SQS, DynamoDB) and its events.
        """
        # DynamoDB's faults are injected where DynamoDB answers: in its own process.
        rate = self.faults.rates.get("dynamodb.throttle")
        extra = (
            ("--faults", f"dynamodb.throttle={rate!r}", "--faults-seed", str(self.faults.seed),
             "--faults-file", str(self._dynamodb_faults_file()))
            if rate else ()
        )  # fmt: skip
        extra += self._state_args("dynamodb")
        self._dynamodb_process, self.dynamodb_url = self._start_aws_process("dynamodb", 0, lambda_url, extra=extra)
        own_engine = self.options.engine == "moto" and not self.options.stepfunctions_endpoint
        engine_port = _free_port(self.options.host) if own_engine else 0
        aws_extra = self._state_args("s3", "sqs", "ssm", "logs", *(() if own_engine else ("stepfunctions",)))
        if own_engine:
            aws_extra += ("--stepfunctions-url", f"http://{self.options.host}:{engine_port}")
        self.moto, self.aws_url = self._start_aws_process(
            "aws", self.options.aws_port, lambda_url, self.dynamodb_url, extra=aws_extra
        )
        if own_engine:
            _, self.stepfunctions_url = self._start_aws_process(
                "stepfunctions", engine_port, lambda_url,
                extra=("--integrations-url", self.aws_url, *self._state_args("stepfunctions")),
            )  # fmt: skip
        deadline = time.monotonic() + 30
        while True:
            try:
                self.client("sts").get_caller_identity()
                self.client("dynamodb").list_tables()
                self.client("stepfunctions").list_state_machines(maxResults=1)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def _start_stepfunctions_local(self) -> None:
        """Step Functions Local in Docker, its Lambda calls to the AWS endpoint just started.

        From here on the cloud runs as with ``--stepfunctions-endpoint`` naming that container;
        :meth:`stop` stops it, on a failed start too.
        """
        self.stepfunctions_local = StepFunctionsLocal(
            aws_port=int(urlsplit(self.aws_url).port or 0),
            region=self.options.region,
            account_id=ACCOUNT_ID,
            log_file=self.data_dir / "logs" / "stepfunctions-local.log",
        )
        self.options.stepfunctions_endpoint = self.stepfunctions_local.start()

    def client(self, service: str) -> Any:
        endpoint = self.aws_url
        if service == "stepfunctions" and (self.options.stepfunctions_endpoint or self.stepfunctions_url):
            endpoint = self.options.stepfunctions_endpoint or self.stepfunctions_url
        elif service == "dynamodb" and self.dynamodb_url:
            endpoint = self.dynamodb_url
        return boto3.client(
            service,
            endpoint_url=endpoint,
            region_name=self.options.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            aws_session_token="testing",
            config=Config(retries={"max_attempts": 2}),
        )

    def _lambda_environment(self) -> dict[str, str]:
        """What Lambda's runtime puts in every function's environment, pointed at the local cloud."""
        engine = self.options.stepfunctions_endpoint or self.stepfunctions_url
        # boto3's service-specific endpoint variable sends Step Functions calls straight to the engine.
        return ({"AWS_ENDPOINT_URL_SFN": engine} if engine else {}) | {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "TZ": "UTC",
            "HOME": str(self.data_dir / "home"),
            **LOCAL_CREDENTIALS,
            "AWS_REGION": self.options.region,
            "AWS_DEFAULT_REGION": self.options.region,
            "AWS_ENDPOINT_URL": self.aws_url,
            # DynamoDB has a process of its own (see aws_server); boto3 reads this before the above.
            "AWS_ENDPOINT_URL_DYNAMODB": self.dynamodb_url,
            "LONGRUN_ACCOUNT_ID": ACCOUNT_ID,
            # No X-Ray daemon locally: Powertools Tracer would only warn on every segment.
            "POWERTOOLS_TRACE_DISABLED": "true",
            "PYTHONDONTWRITEBYTECODE": "1",
        }

    def _start_services(self) -> None:
        """The template's ECS services (build workers) as local processes, ``--build-workers`` each."""
        assert self.stack is not None
        if self.stack.services and self.stack.efs_root is not None and os.geteuid() == 0:
            self._make_efs_reachable(self.stack.efs_root)
        for spec in self.stack.services:
            if spec.scales:
                log.info("%s: %d local workers (scaling on the queue is AWS's)", spec.name, self.options.build_workers)
            pool = ServicePool(
                spec, self.options.build_workers, self._lambda_environment(), REPO_ROOT / "handlers",
                self.data_dir / "logs", self.faults,
            )  # fmt: skip
            pool.start()
            self.services.append(pool)

    @staticmethod
    def _make_efs_reachable(efs_root: Path) -> None:
        """Let every user pass through the directories above the local EFS root, as through /mnt/efs.

        A worker running as root runs each build as its project's own uid; that uid must reach its
        workspace under ``--data-dir``, whose parents (``/tmp/pytest-of-root``, a home) may be
        closed to other users. Each gets the search bit for others (not the read bit: nothing is
        listed); what changed is logged.
        """
        for directory in efs_root.resolve().parents:
            mode = directory.stat().st_mode
            if not mode & 0o001:
                directory.chmod((mode | 0o001) & 0o7777)
                log.info("made %s passable for the build users (o+x)", directory)

    def _register_outputs(self) -> None:
        """The stack's outputs as CloudFormation would show them, for `longrun logs`, `ops` and `smoke`.

        Operator commands find tables, queues and log groups with ``DescribeStacks``, locally as on
        AWS; the stack registered here holds no resources of its own (they were made above).
        """
        assert self.stack is not None
        aliases = self._front_aliases()
        outputs = {}
        for name, value in self.stack.outputs.items():
            text = value if isinstance(value, str) else json.dumps(value)
            for aws_url, local_url in aliases:
                text = text.replace(aws_url, local_url)
            outputs[name] = {"Value": text}
        template = {"Resources": {"Outputs": {"Type": "AWS::CloudFormation::WaitConditionHandle"}}, "Outputs": outputs}
        self.client("cloudformation").create_stack(StackName=self.options.stack_name, TemplateBody=json.dumps(template))

    def _front_aliases(self) -> list[tuple[str, str]]:
        """(the URL an API's stage has on AWS, as the template writes it; where the local front serves it).

        The template's outputs name the REST stage ``https://{api}.execute-api.{region}.{suffix}/{stage}``
        and the WebSocket stage ``{ApiEndpoint}/{stage}``; a user reads them (``longrun smoke``,
        ``aws cloudformation describe-stacks``) to call the APIs, so locally they name the fronts.
        """
        assert self.stack is not None and self.rest is not None and self.websocket is not None
        aliases = []
        if self.stack.rest_api is not None:
            rest = self.stack.rest_api
            aliases.append((f"https://{rest.api_id}.execute-api.{self.options.region}.amazonaws.com/{rest.stage}",
                            self.rest.url))  # fmt: skip
        if self.stack.websocket_api is not None:
            ws = self.stack.websocket_api
            aliases.append((f"{ws.endpoint}/{ws.stage}", self.websocket.url))
        # The custom domains (apigateway/domains.py): the fronts serve their mapped paths on their ports.
        fronts = [(self.stack.rest_api, "https", self.rest.url.rstrip("/")),
                  (self.stack.websocket_api, "wss", self.websocket.url.rsplit("/", 1)[0])]  # fmt: skip
        for spec, scheme, root in fronts:
            for domain, _ in spec.mappings if spec is not None else ():
                aliases.append((f"{scheme}://{domain}", root))
        return aliases

    def _put_token_secret(self) -> None:
        """Deployed stages keep the token secret in SSM; the local one holds the development secret."""
        assert self.stack is not None
        name = next(
            (
                f.environment.get("TOKEN_SECRET_PARAMETER")
                for f in self.stack.functions
                if f.environment.get("TOKEN_SECRET_PARAMETER")
            ),
            "/longrun/token-secret",
        )
        self.client("ssm").put_parameter(Name=name, Value=local_secret(), Type="SecureString", Overwrite=True)

    def _warm(self) -> None:
        assert self.runtime is not None
        pools = self.runtime.pools()
        first = [p for p in pools if p.spec.handler.startswith(_WARM_FIRST)]
        rest = [p for p in pools if p not in first]
        with ThreadPoolExecutor(max_workers=4) as executor:
            list(executor.map(lambda p: p.warm(), first))
        threading.Thread(target=lambda: [p.warm() for p in rest], name="warm-steps", daemon=True).start()

    def _write_endpoints(self, path: Path) -> None:
        path = path.resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(json.dumps(self.endpoints(), indent=2) + "\n")
        temporary.replace(path)

    def endpoints(self) -> dict[str, str]:
        assert self.rest and self.websocket
        endpoints = {"api": self.rest.url, "ws": self.websocket.url, "aws": self.aws_url}
        engine = self.options.stepfunctions_endpoint or self.stepfunctions_url
        if engine:  # the AWS endpoint forwards Step Functions calls there too; this is the direct way
            endpoints["stepfunctions"] = engine
        return endpoints

    def exited(self) -> bool:
        """Whether a process the cloud depends on has exited under it."""
        engine = self.stepfunctions_local
        return any(process.poll() is not None for process in self._processes) or bool(engine and engine.exited())

    # --- stop ---------------------------------------------------------------------------------

    def stop(self) -> None:
        for pool in self.services:
            pool.stop()
        for poller in self.pollers:
            poller.stop()
        for part in (self.websocket, self.rest, self.control):
            if part is not None:
                try:
                    part.stop()
                except Exception:
                    log.exception("stopping %s failed", type(part).__name__)
        if self.runtime is not None:
            self.runtime.close()
        for process in self._processes:
            if process.poll() is None:
                process.terminate()
        for process in self._processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        if self.stepfunctions_local is not None:
            self.stepfunctions_local.stop()
        if self._fault_reporter is not None:  # after the DynamoDB process wrote its last counts
            self._fault_reporter.stop()
        for path in self._endpoints_files():
            path.unlink(missing_ok=True)
        self._lock.release()  # after every process saved its last snapshot and exited

    def _endpoints_files(self) -> list[Path]:
        files = [self.data_dir / "endpoints.json"]
        if self.options.endpoints_file and self.options.endpoints_file.resolve() != files[0]:
            files.append(self.options.endpoints_file)
        return files
