"""The ``longrun`` command line: the local cloud, tokens, and jobs against any stage."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from longrun.client import DEFAULT_ENDPOINTS_FILE, ApiError, Client, Endpoints


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2))


def _client(args: argparse.Namespace) -> Client:
    from longrun.tokens import make_token

    token = os.environ.get("LONGRUN_TOKEN") or make_token(args.user)
    return Client(Endpoints.discover(args.endpoints_file), token)


# --- local up -------------------------------------------------------------------------------------


def cmd_local_up(args: argparse.Namespace) -> int:
    from longrun.local_extra import missing_message

    # The emulator is the `local` extra: without it, say what to install before anything starts.
    if (problem := missing_message("longrun local up")) is not None:
        print(problem, file=sys.stderr)
        return 2
    from longrun.local.cloud import LocalCloud, Options

    if args.engine == "stepfunctions-local":
        if args.stepfunctions_endpoint:  # a usage error: argparse prints the usage and exits 2
            args.usage_error("--engine stepfunctions-local starts its own engine and --stepfunctions-endpoint names "
                             "one started some other way: give one or the other")  # fmt: skip
        from longrun.local.stepfunctions.local_engine import docker_problem, unavailable_message

        # Before anything starts: without Docker the engine cannot run, and the user should hear why at once.
        problem = docker_problem()
        if problem is not None:
            print(unavailable_message(problem), file=sys.stderr)
            return 2
    elif not args.stepfunctions_endpoint:
        from longrun.local.stepfunctions import asl_validator

        # moto's engine takes definitions Step Functions refuses; unjudged, none is accepted (docs/judges.md).
        problem = asl_validator.problem()
        if problem is not None:
            print(f"longrun local up: {problem}", file=sys.stderr)
            return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    options = Options(
        **({"template": args.template.resolve()} if args.template else {}),
        host=args.host,
        api_port=args.api_port,
        ws_port=args.ws_port,
        aws_port=args.aws_port,
        data_dir=args.data_dir,
        endpoints_file=args.endpoints_file,
        stepfunctions_endpoint=args.stepfunctions_endpoint,
        engine=args.engine,
        git_private_hosts=("127.0.0.1", "localhost", *args.git_private_host),
        trusted_sources=tuple(args.trusted_source or ["longrun.local"]),
        max_jobs_per_user=args.max_jobs_per_user,
        build_workers=args.build_workers,
        build_heartbeat_timeout=args.build_heartbeat_timeout,
        faults=args.faults,
        faults_seed=args.faults_seed,
        account_concurrency=args.account_concurrency,
        parameters=dict(args.parameter),
        fresh=args.fresh,
    )
    cloud = LocalCloud(options)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print("longrun local cloud: starting (moto, Lambda workers, API Gateway fronts)…", flush=True)
    from longrun.local.refusals import AwsRefused
    from longrun.local.state.format import StateRefused
    from longrun.local.state.lock import DataDirLocked
    from longrun.local.stepfunctions.local_engine import DockerUnavailable, EngineFailed

    try:
        cloud.start()
    except (StateRefused, DataDirLocked) as e:  # before anything started: the data dir is not this cloud's to use
        print(f"longrun local up: {e}", file=sys.stderr)
        return 2
    except AwsRefused as e:  # the template would not deploy: start() has stopped every part it started
        print(f"longrun local up: {e}", file=sys.stderr)
        return 2
    except EngineFailed as e:  # --engine stepfunctions-local; start() has stopped every part it started
        print(e if isinstance(e, DockerUnavailable) else f"longrun local up: {e}", file=sys.stderr)
        return 2 if isinstance(e, DockerUnavailable) else 1
    endpoints = cloud.endpoints()
    assert cloud.stack is not None
    engine_note = (
        f"\n  Step Functions  {options.stepfunctions_endpoint}  (its LAMBDA_ENDPOINT must be {endpoints['aws']})"
        if options.stepfunctions_endpoint
        else ""
    )
    if cloud.stepfunctions_url:
        engine_note = f"\n  Step Functions  {cloud.stepfunctions_url}  (moto's engine, in a process of its own)"
    if cloud.stepfunctions_local is not None:
        engine_note = (
            f"\n  Step Functions  {options.stepfunctions_endpoint}  (Step Functions Local in Docker: container "
            f"{cloud.stepfunctions_local.name}, log {cloud.stepfunctions_local.log_file})"
        )
    secret_note = "LONGRUN_LOCAL_SECRET" if os.environ.get("LONGRUN_LOCAL_SECRET") else "the default development secret"
    print(
        f"""
  REST API   {endpoints["api"]}
  WebSocket  {endpoints["ws"]}?token=<token>
  Console    {endpoints["api"]}/console/   (sign in with a token from the line below)
  AWS        {endpoints["aws"]}   (moto: DynamoDB, S3, Step Functions, SSM, IAM, Logs)
  Data       {cloud.data_dir}   (kept across restarts; --fresh starts empty, `longrun local reset` clears it)
  EFS        {cloud.stack.efs_root}
  Logs       {cloud.data_dir / "logs"}{engine_note}
  Tokens     longrun token --user alice   (signed with {secret_note})
  Events     bus "{options.stack_name}": Job Status Change out; Start Job in from {", ".join(options.trusted_sources)}

  For `aws` and `longrun ops`:
    export AWS_ENDPOINT_URL={endpoints["aws"]} AWS_REGION={options.region} AWS_DEFAULT_REGION={options.region} \\
           AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing

  Ready. Ctrl-C stops every part.""",
        flush=True,
    )
    try:
        while not stop.wait(0.5):
            if cloud.exited():
                print("a part of the local cloud (moto) exited; stopping", file=sys.stderr)
                return 1
    finally:
        print("longrun local cloud: stopping…", flush=True)
        cloud.stop()
    return 0


def cmd_local_reset(args: argparse.Namespace) -> int:
    """Clear a data dir (longrun.local.state.clear), under its lock: never while a cloud runs on it."""
    from longrun.local.state.clear import clear, describe
    from longrun.local.state.lock import DataDirLock, DataDirLocked

    data_dir = args.data_dir.resolve()
    if not data_dir.is_dir():
        print(f"longrun local reset: {data_dir} is not a directory; nothing to clear", file=sys.stderr)
        return 2
    lock = DataDirLock(data_dir)
    try:
        lock.acquire(doing=f"reset {data_dir}")
    except DataDirLocked as e:
        print(f"longrun local reset: {e}", file=sys.stderr)
        return 2
    try:
        if not args.yes:
            try:
                answer = input(f"Remove from {data_dir}: {describe()}? [y/N] ")
            except EOFError:  # nothing to read the answer from: the same as no
                answer = ""
            if answer.strip().lower() not in ("y", "yes"):
                print("longrun local reset: nothing removed (confirm with y, or give --yes)", file=sys.stderr)
                return 1
        removed = clear(data_dir)
    finally:
        lock.release()
    print(f"removed {', '.join(str(p) for p in removed) or 'nothing (already empty)'}")
    return 0


# --- token ----------------------------------------------------------------------------------------


def cmd_token(args: argparse.Namespace) -> int:
    from longrun.core_ids import USER_ID
    from longrun.tokens import make_token

    if not USER_ID.match(args.user):
        print("a user name is 1 to 128 of A-Z a-z 0-9 . _ @ + -", file=sys.stderr)
        return 2
    if args.ttl <= 0:
        print("--ttl must be positive", file=sys.stderr)
        return 2
    print(make_token(args.user, args.ttl))
    return 0


# --- jobs -----------------------------------------------------------------------------------------


def _params(pairs: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--param takes KEY=VALUE, not {pair!r}")
        try:
            params[key] = json.loads(value)  # numbers, booleans and JSON; plain text stays text
        except ValueError:
            params[key] = value
    return params


def _render(event: dict[str, Any]) -> str:
    kind = event["type"]
    if kind == "job.progress":
        detail = json.dumps(event.get("detail") or {}, separators=(",", ":"))
        return f"  [{event['seq']:>3}] {event['step']:<18} {event['status']:<9} {detail if detail != '{}' else ''}"
    if kind == "job.log":
        return "\n".join(f"  [{event['seq']:>3}] | {line}" for line in event.get("lines", []))
    if kind == "job.finished":
        return f"  [{event['seq']:>3}] finished: {event['status']}"
    return json.dumps(event)


def _watch(client: Client, job_id: str, as_json: bool) -> int:
    final: dict[str, Any] = {}
    for event in client.watch(job_id):
        print(json.dumps(event) if as_json else _render(event), flush=True)
        final = event
    if not as_json:
        print(json.dumps(final, indent=2))
    return 0 if final.get("status") == "SUCCEEDED" else 1


def cmd_jobs(args: argparse.Namespace) -> int:
    client = _client(args)
    try:
        if args.jobs_command == "start":
            job = client.start_job(args.type, _params(args.param), args.project, args.idempotency_key)
            if not args.watch:
                _print_json(job)
                return 0
            print(f"job {job['jobId']} ({job['type']}) accepted; watching…", flush=True)
            return _watch(client, job["jobId"], args.json)
        if args.jobs_command == "get":
            _print_json(client.job(args.job_id))
        elif args.jobs_command == "list":
            _print_json(client.jobs(projectId=args.project, status=args.status, limit=args.limit, cursor=args.cursor))
        elif args.jobs_command == "watch":
            return _watch(client, args.job_id, args.json)
        elif args.jobs_command == "cancel":
            _print_json(client.cancel(args.job_id))
        elif args.jobs_command == "retry":
            _print_json(client.retry(args.job_id))
        return 0
    except ApiError as e:
        print(json.dumps(e.body, indent=2) if e.body else str(e), file=sys.stderr)
        return 1


# --- logs and workers -----------------------------------------------------------------------------


def cmd_logs(args: argparse.Namespace) -> int:
    from longrun.build_logs import lines
    from longrun.operator import OperatorError

    try:
        for line in lines(args.stack, args.job_id, follow=args.follow):
            print(line, flush=True)
    except OperatorError as e:
        print(f"longrun logs: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def cmd_ops(args: argparse.Namespace) -> int:
    from longrun import ops
    from longrun.operator import OperatorError

    try:
        if args.ops_command == "history":
            ops.print_history(ops.history(args.stack, args.job_id), args.json)
        elif args.ops_command == "dead-letters":
            from longrun import dead_letters

            return dead_letters.run(args.stack, args.redrive, args.limit, args.json)
        else:
            since = ops.parse_since(args.since) if args.since else None
            ops.print_executions(ops.executions(args.stack, args.status, since, args.limit), args.json)
    except ValueError as e:
        print(f"longrun ops: --since: {e}", file=sys.stderr)
        return 2
    except OperatorError as e:
        print(f"longrun ops: {e}", file=sys.stderr)
        return 1
    return 0


def cmd_smoke(args: argparse.Namespace) -> int:
    from longrun import smoke

    return smoke.run(args.stack, args.repo, args.timeout, args.user, push=args.push, credentials=args.credentials)


def cmd_worker_build(args: argparse.Namespace) -> int:
    """The worker is deployed code (handlers/workers/build): run it from this checkout's handlers/."""
    handlers = Path(__file__).resolve().parents[1] / "handlers"
    if not (handlers / "workers" / "build").is_dir():
        print("longrun worker build runs from a checkout of longrun (handlers/ was not found)", file=sys.stderr)
        return 2
    from longrun.local_extra import HANDLERS_RUNTIME, missing_message

    if (problem := missing_message("longrun worker build", HANDLERS_RUNTIME)) is not None:
        print(problem, file=sys.stderr)  # the worker runs handlers/, whose runtime is in the local extra
        return 2
    sys.path.insert(0, str(handlers))
    from workers.build.__main__ import main as worker_main

    argv = (["--queue-url", args.queue_url] if args.queue_url else []) + (
        ["--worker-id", args.worker_id] if args.worker_id else []
    )
    return worker_main(argv)


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return value


def _parameter(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` of ``--parameter``: a template parameter's name (letters and digits) and its value."""
    key, sep, value = text.partition("=")
    if not sep or not key.isascii() or not key.isalnum():
        raise argparse.ArgumentTypeError(f"{text!r}: give KEY=VALUE, KEY a parameter of the template")
    return key, value


def _faults(text: str) -> dict[str, float]:
    from longrun.local.faults import FaultSpecError, parse

    try:
        return parse(text)
    except FaultSpecError as e:  # argparse prints it under the usage and exits 2
        raise argparse.ArgumentTypeError(str(e)) from None


# --- parser ---------------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="longrun", description="Long-running jobs on a serverless web platform.")
    sub = p.add_subparsers(dest="command", required=True)

    local = sub.add_parser("local", help="the local cloud").add_subparsers(dest="local_command", required=True)
    up = local.add_parser("up", help="run the local cloud in the foreground until SIGINT/SIGTERM")
    up.add_argument("--api-port", type=int, default=0, help="REST API port (0: a free one)")
    up.add_argument("--ws-port", type=int, default=0, help="WebSocket API port (0: a free one)")
    up.add_argument("--aws-port", type=int, default=0, help="AWS endpoint (moto) port (0: a free one)")
    up.add_argument("--host", default="127.0.0.1", help=argparse.SUPPRESS)
    up.add_argument("--data-dir", type=Path, default=Path(".longrun"),
                    help="the cloud's data, kept across restarts: tables, objects, queues, parameters, logs, "
                    "executions, EFS (default .longrun)")  # fmt: skip
    up.add_argument("--fresh", action="store_true",
                    help="start empty: clear what --data-dir kept first (as `longrun local reset --yes`)")  # fmt: skip
    up.add_argument("--endpoints-file", type=Path, help='write {"api","ws","aws"} here once every part serves')
    up.add_argument("--template", type=Path, metavar="FILE",
                    help="the SAM template to run (default infra/template.yaml of this checkout)")  # fmt: skip
    up.add_argument(
        "--git-private-host",
        action="append",
        default=[],
        metavar="HOST",
        help="a private host git jobs may reach (127.0.0.1 and localhost always may); repeatable",
    )
    up.add_argument(
        "--trusted-source",
        action="append",
        metavar="NAME",
        help='an EventBridge source whose "Start Job" events start jobs (default longrun.local); repeatable',
    )
    up.add_argument("--max-jobs-per-user", type=_positive, default=20, metavar="N",
                    help="jobs one user may have RUNNING at once; more is 429 Throttled (the stack's "
                         "MaxConcurrentJobsPerUser, default 20)")  # fmt: skip
    up.add_argument(
        "--stepfunctions-endpoint",
        metavar="URL",
        help="use an external Step Functions engine (Step Functions Local in Docker) instead of moto's; "
        "set its LAMBDA_ENDPOINT to this cloud's AWS endpoint (fix it with --aws-port)",
    )
    up.add_argument(
        "--engine",
        choices=["moto", "stepfunctions-local"],
        default="moto",
        help="the Step Functions engine: moto's (default, no Docker), or stepfunctions-local: AWS Step Functions "
        "Local (amazon/aws-stepfunctions-local) run in Docker by this command and stopped with it",
    )
    up.add_argument("--build-workers", type=_non_negative, default=2, metavar="N",
                    help="build worker processes, as the ECS service runs them on AWS (default 2)")  # fmt: skip
    up.add_argument("--build-heartbeat-timeout", type=_positive, default=10, metavar="SECONDS",
                    help="a build worker silent this long is lost and its build queued again (default 10)")  # fmt: skip
    up.add_argument("--faults", type=_faults, metavar="NAME=RATE,...",
                    help="inject faults once the cloud is up, each at its rate in [0, 1]: lambda.throttle, "
                    "lambda.error, ws.gone, dynamodb.throttle, worker.kill (docs/local-cloud.md#faults); counts in "
                    "DATA_DIR/faults.json")  # fmt: skip
    up.add_argument("--faults-seed", type=int, default=0, metavar="N",
                    help="seed of the faults' random draws: the same seed, the same faults (default 0)")  # fmt: skip
    up.add_argument("--account-concurrency", type=_positive, default=1000, metavar="N",
                    help="the account's Lambda concurrency quota: reserved concurrency must leave 100 of it "
                    "unreserved, or AWS refuses the stack (default 1000, AWS's; new accounts often 10)")  # fmt: skip
    up.add_argument("--parameter", type=_parameter, action="append", default=[], metavar="KEY=VALUE",
                    help="a template parameter, as `sam deploy --parameter-overrides KEY=VALUE` gives it (e.g. "
                    "RestApiDomainName=platform.example.test, RestApiBasePath=api); repeatable")  # fmt: skip
    up.set_defaults(func=cmd_local_up, usage_error=up.error)
    from longrun.local.state.clear import describe as cleared

    reset = local.add_parser(
        "reset", help="clear a data dir: everything `longrun local up` kept there",
        description=f"Remove what the local cloud kept in the data dir: {cleared()}. Refused while a local "
        "cloud runs on it.",
    )  # fmt: skip
    reset.add_argument("--data-dir", type=Path, default=Path(".longrun"), help="default .longrun")
    reset.add_argument("--yes", action="store_true", help="do not ask")
    reset.set_defaults(func=cmd_local_reset)

    logs = sub.add_parser("logs", help="a build's log from CloudWatch Logs (uses AWS directly)")
    logs.add_argument("job_id")
    logs.add_argument("--follow", "-f", action="store_true", help="keep reading until the build has finished")
    logs.add_argument(
        "--stack", default=os.environ.get("LONGRUN_STACK", "longrun"), help="stack name (default longrun)"
    )
    logs.set_defaults(func=cmd_logs)

    ops = sub.add_parser("ops", help="operator tools (use AWS directly)").add_subparsers(
        dest="ops_command", required=True
    )
    history = ops.add_parser("history", help="a job's execution as a timeline: states, durations, retries, errors")
    history.add_argument("job_id")
    listing = ops.add_parser("list", help="the stack's executions, newest first")
    listing.add_argument("--status", choices=["RUNNING", "SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"])
    listing.add_argument("--since", help="only those started this long ago or less: 30m, 1h, 2d")
    listing.add_argument("--limit", type=_positive, default=100)
    letters = ops.add_parser("dead-letters", help='the "Start Job" events that started nothing, with their reasons')
    letters.add_argument("--redrive", action="store_true", help="put them back on the stack's event bus")
    letters.add_argument("--limit", type=_positive, default=100)
    for command in (history, listing, letters):
        command.add_argument("--json", action="store_true", help="JSON instead of a table")
        command.add_argument("--stack", default=os.environ.get("LONGRUN_STACK", "longrun"), help="default longrun")
        command.set_defaults(func=cmd_ops)

    smoke = sub.add_parser("smoke", help="run every job kind end to end against a stack, then clean up (docs/smoke.md)")
    smoke.add_argument("--stack", default=os.environ.get("LONGRUN_STACK", "longrun"), help="default longrun")
    smoke.add_argument("--repo", default="https://github.com/octocat/Hello-World.git", metavar="URL",
                       help="the repository the git-clone job clones (default octocat/Hello-World)")  # fmt: skip
    smoke.add_argument("--timeout", type=_positive, default=600, metavar="SECONDS",
                       help="how long each job may take to its job.finished (default 600)")  # fmt: skip
    smoke.add_argument("--user", default="longrun-smoke", help="the user the token names (default longrun-smoke)")
    smoke.add_argument("--push", action="store_true",
                       help="--repo is one you may push to: run git-push (its cloned branch, unchanged)")  # fmt: skip
    smoke.add_argument("--credentials", metavar="NAME",
                       help="stored git credentials (of --user) for the clone, pull and push of --repo")  # fmt: skip
    smoke.set_defaults(func=cmd_smoke)

    worker = sub.add_parser("worker", help="run a worker").add_subparsers(dest="worker_kind", required=True)
    build = worker.add_parser("build", help="a build worker: polls the build queue until SIGTERM")
    build.add_argument("--queue-url", help="the build queue (default $BUILD_QUEUE_URL)")
    build.add_argument("--worker-id", help="its name in progress events (default host-pid)")
    build.set_defaults(func=cmd_worker_build)

    token = sub.add_parser("token", help="print a token for the local cloud")
    token.add_argument("--user", required=True)
    token.add_argument("--ttl", type=int, default=3600, help="seconds (default 3600)")
    token.set_defaults(func=cmd_token)

    jobs = sub.add_parser("jobs", help="start, read, watch and cancel jobs")
    jobs.add_argument(
        "--user",
        default=os.environ.get("LONGRUN_USER", "demo"),
        help="local cloud user when LONGRUN_TOKEN is not set (default demo)",
    )
    jobs.add_argument(
        "--endpoints-file",
        type=Path,
        default=None,
        help=f"the local cloud's endpoints (default {DEFAULT_ENDPOINTS_FILE})",
    )
    jsub = jobs.add_subparsers(dest="jobs_command", required=True)
    start = jsub.add_parser("start", help="start a job")
    start.add_argument("type")
    start.add_argument("--project")
    start.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    start.add_argument("--idempotency-key")
    start.add_argument("--watch", action="store_true", help="show progress until job.finished")
    start.add_argument("--json", action="store_true", help="with --watch: one JSON event per line")
    for name in ("get", "watch", "cancel", "retry"):
        cmd = jsub.add_parser(name)
        cmd.add_argument("job_id")
        if name == "watch":
            cmd.add_argument("--json", action="store_true", help="one JSON event per line")
    lst = jsub.add_parser("list")
    lst.add_argument("--project")
    lst.add_argument("--status")
    lst.add_argument("--limit", type=int)
    lst.add_argument("--cursor")
    jobs.set_defaults(func=cmd_jobs)

    from longrun.projects_cli import add_parsers as add_project_parsers

    add_project_parsers(sub)  # `projects list|get|delete` and `files get|put` (longrun/projects_cli.py)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
