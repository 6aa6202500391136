"""``longrun worker build``: take builds off the queue, run them, heartbeat, call back.

One worker runs one build at a time; a pool of them (an ECS service, ``--build-workers N``
locally) shares the queue. For each message:

1. Check it (``schemas/build-message.json``). A malformed message is left alone: it comes back,
   and after the queue's ``maxReceiveCount`` its redrive policy parks it in the dead-letter queue.
2. Claim the build: ``SendTaskSuccess`` of the message's token (the Queue state's) with this
   worker's id and a fresh claim id. A refused claim (``TaskTimedOut``, ``InvalidToken``: the
   execution was stopped, the build waited past ``BuildQueueTimeoutSeconds``, another worker
   claimed it, or its build was queued again) deletes the message: nothing is built, nothing is
   published.
3. Take the Run token: the state machine's Run state writes it as ``buildrun#<jobId>#<claim>`` in
   the projects table, a key only this worker knows; the worker reads and removes it in one
   ``DeleteItem`` (``ReturnValues=ALL_OLD``, as strongly consistent as any write).
4. Run the build (:mod:`sandbox`, :mod:`process`), shipping its log (:mod:`logs`), heartbeating
   the Run token and keeping the message invisible the while (so the queue's in-flight count is
   the builds running). A failed heartbeat means the job was cancelled or given up: the build's
   whole process group is killed and nothing is answered.
5. Answer the Run token: ``SendTaskSuccess`` (exit code 0: artifacts uploaded) or
   ``SendTaskFailure`` (``BuildFailed`` with the exit code, ``BuildTimedOut``), then delete the
   message. The error names are the classes of the build workflow's catalogue
   (:mod:`steps.build.errors`), sent as ``<Class>.__name__``, so the worker and ``build.asl.json``
   cannot drift apart.

A worker that dies mid-build answers nothing: the Run state's heartbeat times out and the machine
queues the build again (a new message, a new token); the old message, back after its visibility
timeout, meets a refused claim and is dropped.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from core import aws, build_users, builds, publisher, schemas
from core.config import settings
from steps.build.errors import BuildError, BuildFailed, BuildTimedOut, TooManyArtifacts, WorkspaceNotFound
from steps.project.workspace import workspace_dir
from workers.build import artifacts, protection, sandbox
from workers.build.logs import LogShipper, ensure_stream
from workers.build.process import BuildProcess

logger = Logger(service="longrun-build-worker")

# Step Functions' answers to a heartbeat for a task that is no longer waiting.
TOKEN_GONE = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"})
VISIBILITY_SECONDS = 60
KILL_GRACE_SECONDS = 2.0
READER_DRAIN_SECONDS = 5.0
# How long a claimed build's Run token may take to appear: one state transition and one PutItem.
HANDOFF_SECONDS = float(os.environ.get("BUILD_HANDOFF_SECONDS", "60"))


def heartbeat_interval(heartbeat_seconds: int) -> float:
    """Often enough that a cancel is noticed within a few seconds and a heartbeat is never missed."""
    return max(0.2, min(float(os.environ.get("BUILD_HEARTBEAT_INTERVAL_SECONDS", "1")), heartbeat_seconds / 4))


@dataclass
class Build:
    """One build: the message's fields, and what happened to it."""

    message: dict[str, Any]
    receipt: str
    gone: threading.Event = field(default_factory=threading.Event)
    timed_out: bool = False

    @property
    def job(self) -> dict[str, Any]:
        return {k: self.message[k] for k in ("jobId", "userId", "projectId")}


class Heartbeat(threading.Thread):
    """Tells Step Functions the build lives, and keeps its message invisible; notices a cancel."""

    def __init__(self, build: Build, queue_url: str, sfn: Any, sqs: Any) -> None:
        super().__init__(name=f"heartbeat-{build.message['jobId']}", daemon=True)
        self.build, self.queue_url, self.sfn, self.sqs = build, queue_url, sfn, sqs
        self.interval = heartbeat_interval(build.message["heartbeatSeconds"])
        self.stopped = threading.Event()

    def run(self) -> None:
        last_visibility = time.monotonic()
        while not self.stopped.wait(self.interval):
            if not beat(self.sfn, self.build.message["taskToken"]):
                self.build.gone.set()
                return
            if time.monotonic() - last_visibility > VISIBILITY_SECONDS / 3:
                last_visibility = time.monotonic()
                try:
                    self.sqs.change_message_visibility(
                        QueueUrl=self.queue_url, ReceiptHandle=self.build.receipt, VisibilityTimeout=VISIBILITY_SECONDS
                    )
                except ClientError:
                    logger.warning("could not extend the build message's visibility")

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=10)


def beat(sfn: Any, token: str) -> bool:
    """One heartbeat; False when the task no longer waits for this token (cancelled, timed out)."""
    try:
        sfn.send_task_heartbeat(taskToken=token)
        return True
    except ClientError as e:
        if e.response["Error"]["Code"] in TOKEN_GONE:
            return False
        logger.warning("heartbeat failed; trying again", extra={"code": e.response["Error"]["Code"]})
        return True


class Worker:
    def __init__(self, queue_url: str, worker_id: str | None = None, wait_seconds: int = 20) -> None:
        self.queue_url = queue_url
        self.worker_id = worker_id or f"{os.environ.get('LONGRUN_WORKER_ID') or socket.gethostname()}-{os.getpid()}"
        self.wait_seconds = wait_seconds
        self.sqs = aws.long_poll_client("sqs", wait_seconds)
        self.sfn, self.logs = aws.client("stepfunctions"), aws.client("logs")
        self.stopping = threading.Event()
        self.current: BuildProcess | None = None

    # --- the loop ---------------------------------------------------------------------------------

    def run_forever(self) -> None:
        sandbox.make_worker_undumpable()
        sandbox.warn_if_shared()
        logger.info("build worker ready", extra={"worker": self.worker_id, "queue": self.queue_url})
        while not self.stopping.is_set():
            try:
                self.poll_once()
            except Exception:
                logger.exception("the worker loop failed; going on")
                self.stopping.wait(1)

    def stop(self) -> None:
        """Stop taking builds; a build in progress is killed and left unanswered (another worker reruns it)."""
        self.stopping.set()
        if self.current is not None:
            self.current.kill_group(KILL_GRACE_SECONDS)

    def poll_once(self) -> bool:
        """Take at most one message and deal with it; True if there was one."""
        reply = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=1,
            WaitTimeSeconds=self.wait_seconds,
            VisibilityTimeout=VISIBILITY_SECONDS,
        )
        messages = reply.get("Messages", [])
        for message in messages:
            self.handle(message)
        return bool(messages)

    def handle(self, message: dict[str, Any]) -> str:
        """Deal with one queue message; what became of it: ``malformed``, ``dropped`` or ``answered``."""
        body = _parse(message["Body"])
        if body is None:
            logger.warning("malformed build message; left for the dead-letter queue", extra={"id": message["MessageId"]})
            self.sqs.change_message_visibility(
                QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )
            return "malformed"
        claim = self.claim(body)
        if claim is None:
            logger.info("dropped a build whose execution no longer waits for it", extra={"jobId": body["jobId"]})
            self._delete(message)
            return "dropped"
        run_token = self.take_run_token(body["jobId"], claim)
        if run_token is None:
            # Claimed, but the Run state never handed its token over (the execution was stopped in
            # between): its heartbeat timeout, if it still runs, queues the build again.
            logger.warning("no run token for a claimed build", extra={"jobId": body["jobId"]})
            self._delete(message)
            return "dropped"
        build = Build({**body, "taskToken": run_token}, message["ReceiptHandle"])
        logger.append_keys(jobId=body["jobId"], projectId=body["projectId"], attempt=body["attempt"])
        try:
            outcome = self.run_build(build)
        except Exception as e:
            # The build could not be run or finished (its workspace is gone, an artifact changed
            # under the upload, AWS refused a call): the user is told now, not after the heartbeat
            # timeouts and retries that an unanswered task would wait for.
            logger.exception("the build could not run")
            outcome = self._fail(body["taskToken"], *_worker_error(e, body), {"attempt": body["attempt"] + 1})
        finally:
            logger.remove_keys(["jobId", "projectId", "attempt"])
        if outcome != "stopped":
            self._delete(message)
        return outcome

    def _delete(self, message: dict[str, Any]) -> None:
        try:
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        except ClientError as e:  # expired meanwhile (MessageRetentionPeriod): gone either way
            logger.warning("could not delete the build message", extra={"code": e.response["Error"]["Code"]})

    # --- the claim and the handover ---------------------------------------------------------------

    def claim(self, body: dict[str, Any]) -> str | None:
        """Answer the Queue state's token with this worker's claim; its id, or None if the build is not waiting."""
        claim = uuid.uuid4().hex
        try:
            self.sfn.send_task_success(
                taskToken=body["taskToken"], output=json.dumps({"worker": self.worker_id, "claim": claim})
            )
        except ClientError as e:
            if e.response["Error"]["Code"] in TOKEN_GONE:
                return None
            raise  # the message comes back after its visibility timeout, and is claimed then
        return claim

    def take_run_token(self, job_id: str, claim: str) -> str | None:
        """The Run state's token for this claim, read and removed at once; None if it never came."""
        table = aws.table(settings().projects_table)
        deadline = time.monotonic() + HANDOFF_SECONDS
        delay = 0.05
        while not self.stopping.is_set():
            key = {"pk": f"buildrun#{job_id}#{claim}"}
            item = table.delete_item(Key=key, ReturnValues="ALL_OLD").get("Attributes")
            if item:
                return str(item["taskToken"])
            if time.monotonic() > deadline:
                return None
            self.stopping.wait(delay)
            delay = min(1.0, delay * 2)
        return None

    # --- one build --------------------------------------------------------------------------------

    def run_build(self, build: Build) -> str:
        m = build.message
        project_id, job_id = m["projectId"], m["jobId"]
        group, stream = builds.log_group(project_id), builds.log_stream(job_id)
        heartbeat = Heartbeat(build, self.queue_url, self.sfn, self.sqs)
        heartbeat.start()
        protection.protect(True, (m["timeoutSeconds"] + 600) / 60)
        home = tempfile.mkdtemp(prefix="longrun-build-")
        try:
            ensure_stream(self.logs, group, stream)
            publisher.progress(
                build.job, "build", "STARTED",
                {"worker": self.worker_id, "attempt": m["attempt"] + 1, "logGroup": group, "logStream": stream},
                while_running=True,
            )  # fmt: skip
            shipper = LogShipper(self.logs, group, stream, lambda lines: self._publish_lines(build, lines))
            if m["attempt"]:
                shipper.write(f"[longrun] attempt {m['attempt'] + 1}: the previous worker stopped reporting")
            code, duration_ms = self._run_process(build, shipper, home)
            shipper.close()
            return self._answer(build, code, duration_ms, group, stream, heartbeat)
        finally:
            heartbeat.stop()
            protection.protect(False)
            shutil.rmtree(home, ignore_errors=True)

    def _publish_lines(self, build: Build, lines: list[str]) -> None:
        publisher.publish(build.job, {"type": "job.log", "lines": lines}, while_running=True)

    def _run_process(self, build: Build, shipper: LogShipper, home: str) -> tuple[int, int]:
        m = build.message
        workspace, cache = workspace_dir(m["projectId"]), builds.cache_dir(m["projectId"])
        if not workspace.is_dir():
            raise FileNotFoundError(f"no workspace for project {m['projectId']}")
        user = build_users.uid_for(m["projectId"]) if sandbox.can_switch_users() else None
        if user is not None:
            sandbox.claim(workspace, user)
            sandbox.claim(cache, user)
        else:
            cache.mkdir(parents=True, exist_ok=True)
        sandbox.private_home(Path(home), user)
        env = sandbox.build_environment(
            job_id=m["jobId"], project_id=m["projectId"], workspace=workspace, cache_dir=cache,
            home=Path(home), path=os.environ.get("BUILD_PATH"),
        )  # fmt: skip
        process = BuildProcess(m["command"], cwd=workspace, env=env, user=user)
        self.current = process
        reader = threading.Thread(target=lambda: [shipper.write(line) for line in process.lines()], daemon=True)
        reader.start()
        deadline = time.monotonic() + m["timeoutSeconds"]
        try:
            while not _exited_within(process, 0.1):
                if build.gone.is_set() or self.stopping.is_set():
                    process.kill_group(KILL_GRACE_SECONDS)
                elif time.monotonic() > deadline:
                    build.timed_out = True
                    shipper.write(f"[longrun] the build ran past its {m['timeoutSeconds']} s and was stopped")
                    process.kill_group(KILL_GRACE_SECONDS)
            code = process.wait()
            if code < 0:  # killed by a signal: the status a shell reports for it (SIGTERM: 143)
                code = 128 - code
            process.kill_group(0.5)  # what the build left running in the background goes with it
            reader.join(READER_DRAIN_SECONDS)
            return code, process.elapsed_ms()
        finally:
            self.current = None

    def _answer(self, build: Build, code: int, duration_ms: int, group: str, stream: str, heartbeat: Heartbeat) -> str:
        m, token = build.message, build.message["taskToken"]
        if build.gone.is_set():
            logger.info("the build was cancelled or given up; its process group is gone")
            return "cancelled"
        if self.stopping.is_set():
            return "stopped"
        where = {"exitCode": code, "durationMs": duration_ms, "logGroup": group, "logStream": stream}
        if build.timed_out:
            self._progress(build, "FAILED", {"code": BuildTimedOut.__name__, **where})
            return self._fail(token, BuildTimedOut, f"the build ran longer than {m['timeoutSeconds']} s", where)
        if code != 0:
            self._progress(build, "FAILED", {"code": BuildFailed.__name__, **where})
            return self._fail(token, BuildFailed, f"the build command exited with code {code}", where)
        try:
            found = artifacts.collect(workspace_dir(m["projectId"]), m["artifacts"])
            listed = artifacts.upload(workspace_dir(m["projectId"]), found, m["projectId"], m["jobId"])
        except TooManyArtifacts as e:
            self._progress(build, "FAILED", {"code": TooManyArtifacts.__name__, **where})
            return self._fail(token, TooManyArtifacts, str(e), where)
        result = {
            "exitCode": code,
            "durationMs": duration_ms,
            "artifacts": listed,
            "artifactCount": len(found),
            "logGroup": group,
            "logStream": stream,
        }
        self._progress(build, "SUCCEEDED", {"exitCode": code, "durationMs": duration_ms, "artifacts": len(found)})
        try:
            self.sfn.send_task_success(taskToken=token, output=json.dumps(result))
        except ClientError as e:
            if e.response["Error"]["Code"] not in TOKEN_GONE:
                raise
            return "cancelled"
        return "answered"

    def _progress(self, build: Build, status: str, detail: dict[str, Any]) -> None:
        publisher.progress(build.job, "build", status, detail, while_running=True)

    def _fail(self, token: str, error: type[Exception], message: str, details: dict[str, Any]) -> str:
        """``SendTaskFailure`` with the catalogue class's name: the name build.asl.json catches."""
        cause = json.dumps({"errorMessage": message, "details": [details]})
        try:
            self.sfn.send_task_failure(taskToken=token, error=error.__name__, cause=cause)
        except ClientError as e:
            if e.response["Error"]["Code"] not in TOKEN_GONE:
                raise
            return "cancelled"
        return "answered"


def _worker_error(error: Exception, message: dict[str, Any]) -> tuple[type[Exception], str]:
    """The error (a class of steps.build.errors) and message a user is given for a build the worker could not run."""
    if isinstance(error, FileNotFoundError) and not workspace_dir(message["projectId"]).is_dir():
        return WorkspaceNotFound, f"project {message['projectId']} has no workspace"
    if isinstance(error, ClientError):
        return BuildError, f"the worker could not finish the build: {error.response['Error'].get('Code')}"
    return BuildError, f"the worker could not finish the build: {type(error).__name__}: {error}"[:500]


def _exited_within(process: BuildProcess, seconds: float) -> bool:
    """Wait up to ``seconds`` for the build to exit: its end is seen at once, a cancel within ``seconds``."""
    try:
        process.popen.wait(timeout=seconds)
        return True
    except subprocess.TimeoutExpired:
        return False


def _parse(body: str) -> dict[str, Any] | None:
    try:
        value = json.loads(body)
    except ValueError:
        return None
    if not isinstance(value, dict) or schemas.violations("build-message.json", value):
        return None
    return value
