"""Where moto's server differs from AWS in ways longrun relies on, the local cloud fixes moto.

Two fixes concern DynamoDB, whose guarantees the job store and the publisher build on:

* **Atomic requests.** DynamoDB applies each request, conditional writes and transactions
  included, atomically; moto's threaded server can interleave two requests between a
  condition's check and its write. The AWS endpoint serializes DynamoDB requests
  (:func:`dynamodb_request_lock`), which is what makes a conditional write a real arbiter.
* **Transactions that cost what they write.** moto backs a ``TransactWriteItems`` up by
  deep-copying every table it touches, so each transaction grows with the table (55 ms and
  gigabytes of garbage after a few thousand events). Here it snapshots only the items the
  transaction touches and restores those if it is cancelled.

Three concern Step Functions: ``StopExecution`` of an execution that waits on a task token left it
``RUNNING`` until the task's own timeout and then ``FAILED``; here it is ``ABORTED`` at once, as
on AWS (:func:`_stop_ends_task_token_waits`). ``SendTaskFailure`` dropped its ``cause``
(:func:`_task_failure_keeps_its_cause`), a heartbeat sent right after the task's message
was refused (:func:`_early_heartbeats_count`), and a retried task kept its first token
(:func:`_each_attempt_has_its_own_token`); a spent token's heartbeat was a ``500``
(:func:`_spent_tokens_answer_as_on_aws`); a Lambda task whose Invoke the Lambda service refused
(``429``, ``500``) failed with ``Exception`` instead of ``Lambda.TooManyRequestsException`` or
``Lambda.ServiceException``, which the workflows' Retry names (:func:`_lambda_refusals_named_as_on_aws`).
A definition that breaks the Amazon States Language (a state name used twice) was created; here it is
``InvalidDefinition``, as on AWS (:func:`_definitions_judged_as_on_aws`, by asl-validator).
And moto emits no "Execution Status Change" events
(:func:`_executions_announce_their_status`) and has no ``RedriveExecution``
(:mod:`longrun.local.redrive`, installed with these fixes); its Distributed Map never failed past
its tolerated failure threshold and its ResultWriter wrote no results (:mod:`longrun.local.map_runs`).

Two concern cost only:

* moto's Step Functions engine builds a new boto3 client for every task it runs (a sixth of its
  time under load); here clients are made once and shared, as boto3 allows.
* moto's SQS ``ReceiveMessage`` checks each message it hands out against the queue's retention
  period by computing *every* queue attribute, including the approximate counts, which walk all
  messages: quadratic in the queue's depth. A burst of 2,000 uploads queued as many events and
  held the endpoint's CPU for minutes (S3 PUTs went from 2 to 130 ms). Here it reads the one
  attribute it needs. Every message's visibility check (and every ``SendMessage``, which builds
  the queue's attributes) reads the clock through datetime arithmetic; here through
  ``time.time()``, the same value at a fraction of the cost.
* moto's server finds the backend of every request by matching the inferred host name against
  a few hundred URL patterns, under a lock: 40% of the endpoint's CPU while a sync copied small
  files. The answer depends only on the host name, so it is remembered.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from typing import Any

_LOCK = threading.RLock()
# Puts an "Execution Status Change" event for an execution as it is now; set by
# _executions_announce_their_status (the redrive of an execution announces it too).
_announcer: Callable[[Any], None] | None = None


def announce_status_change(execution: Any) -> None:
    """Announce the execution's status as it is now (a no-op before :func:`install`)."""
    if _announcer is not None:
        _announcer(execution)


def dynamodb_request_lock() -> threading.RLock:
    return _LOCK


def is_dynamodb_request(environ: dict[str, Any]) -> bool:
    return str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith("DynamoDB_")


class _TablesAreNotCopied:
    """Stands in for the ``copy`` module inside moto's DynamoDB models during a transaction."""

    @staticmethod
    def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
        from moto.dynamodb.models.table import Table

        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def _key_of(backend: Any, op_type: str, op: dict[str, Any]) -> dict[str, Any]:
    if op_type != "Put":
        return op["Key"]
    table = backend.get_table(op["TableName"])
    key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = op["Item"][table.range_key_attr]
    return key


class _SharedClients:
    """Stands in for ``boto3`` inside moto's Step Functions engine: one client per service and region."""

    def __init__(self) -> None:
        import boto3

        self._boto3 = boto3
        self._clients: dict[tuple[Any, ...], Any] = {}
        self._lock = threading.Lock()

    def client(self, *args: Any, **kwargs: Any) -> Any:
        config = kwargs.get("config")
        key = (
            args,
            kwargs.get("service_name"),
            kwargs.get("region_name"),
            kwargs.get("endpoint_url"),
            kwargs.get("aws_access_key_id"),
            getattr(config, "read_timeout", None),
        )
        with self._lock:
            if key not in self._clients:
                self._clients[key] = self._boto3.client(*args, **kwargs)
            return self._clients[key]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._boto3, name)


def _stop_ends_task_token_waits() -> None:
    """``StopExecution`` aborts an execution that waits on a task token at once, as on AWS.

    moto's engine marks the program stopped but leaves the task's thread waiting for its callback
    until the task's own timeout (the execution stays ``RUNNING`` for minutes), and the error that
    wait then raises overwrites the stop, so it ends ``FAILED``. Here the stop wakes every
    callback of the execution, and a stopped program stays stopped: ``ABORTED``.
    """
    from moto.stepfunctions.parser.asl.eval.environment import Environment
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped

    if getattr(Environment, "_longrun_stop_aborts", False):
        return
    set_stop, set_error, set_timed_out = Environment.set_stop, Environment.set_error, Environment.set_timed_out

    def stop(self: Any, stop_date: Any, cause: str | None, error: str | None) -> None:
        set_stop(self, stop_date=stop_date, cause=cause, error=error)
        for endpoint in list(self.callback_pool_manager._pool.values()):
            endpoint.interrupt_all()

    def error(self: Any, error: Any) -> None:
        if not isinstance(self.program_state(), ProgramStopped):
            set_error(self, error=error)

    def timed_out(self: Any) -> None:
        if not isinstance(self.program_state(), ProgramStopped):
            set_timed_out(self)

    Environment.set_stop, Environment.set_error, Environment.set_timed_out = stop, error, timed_out
    Environment._longrun_stop_aborts = True


def _remember_backend_for_host() -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    if getattr(DomainDispatcherApplication, "_longrun_remembers", False):
        return
    original = DomainDispatcherApplication.get_backend_for_host
    known: dict[str | None, Any] = {}

    def get_backend_for_host(self: Any, host: str | None) -> Any:
        if host not in known:
            known[host] = original(self, host)
        return known[host]

    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host
    DomainDispatcherApplication._longrun_remembers = True


def _fix_sqs_costs() -> None:
    """The clock read through ``time.time()``, and the retention check that reads one attribute, not all."""
    import time

    import moto.sqs.models as sqs_models
    from moto.core.utils import unix_time
    from moto.sqs.models import SQSBackend

    def fast_unix_time(dt: Any = None) -> float:
        return time.time() if dt is None else unix_time(dt)

    sqs_models.unix_time = fast_unix_time
    sqs_models.unix_time_millis = lambda dt=None: fast_unix_time(dt) * 1000.0

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        retention_period = int(self.get_queue(queue_name).message_retention_period)
        return retention_period + message.sent_timestamp / 1000 > unix_time()

    SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period


def _task_failure_keeps_its_cause() -> None:
    """moto's ``SendTaskFailure`` handler passes on the ``error`` and drops the ``cause``.

    On AWS the cause reaches the task's ``Catch`` (``$.Cause``); the build worker puts the user's
    message and the exit code there.
    """
    from moto.stepfunctions.responses import EmptyResult, StepFunctionResponse

    def send_task_failure(self: Any) -> Any:
        self.stepfunction_backend.send_task_failure(
            self._get_param("taskToken"), error=self._get_param("error"), cause=self._get_param("cause")
        )
        return EmptyResult()

    StepFunctionResponse.send_task_failure = send_task_failure


def _early_heartbeats_count() -> None:
    """A heartbeat for a token the engine has just sent is valid, as on AWS.

    moto's engine sends the task's message first and only then starts the thread that watches
    heartbeats; a worker that heartbeats at once (the build worker does, to drop messages of gone
    executions) got ``InvalidToken`` for a live token. Here such a heartbeat is kept and counted
    when the watch starts. A task without ``HeartbeatSeconds`` accepts heartbeats too, as on AWS.
    """
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackEndpoint

    setup = CallbackEndpoint.setup_heartbeat_endpoint

    def notify_heartbeat(self: Any) -> bool:
        endpoint = self._heartbeat_endpoint
        if endpoint is None:
            self._longrun_early_heartbeat = True
        else:
            endpoint.notify()
        return True

    def setup_heartbeat_endpoint(self: Any, heartbeat_seconds: int) -> Any:
        endpoint = setup(self, heartbeat_seconds)
        if getattr(self, "_longrun_early_heartbeat", False):
            endpoint.notify()
        return endpoint

    CallbackEndpoint.notify_heartbeat = notify_heartbeat
    CallbackEndpoint.setup_heartbeat_endpoint = setup_heartbeat_endpoint


def _each_attempt_has_its_own_token() -> None:
    """A retried ``.waitForTaskToken`` task gets a new token, and the old one is refused, as on AWS.

    moto's engine makes the token once when the state is entered, so a retry (after a heartbeat
    timeout: a lost build worker) reused it, and the lost worker's heartbeats and answer were still
    taken. A build worker relies on a refused heartbeat to stop a build that was given up.
    """
    from moto.stepfunctions.parser.asl.component.common.retry.retry_outcome import RetryOutcome
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
        StateTaskServiceCallback,
    )
    from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackConsumerTimeout

    handle_retry = StateTaskServiceCallback._handle_retry

    def _handle_retry(self: Any, env: Any, failure_event: Any) -> Any:
        outcome = handle_retry(self, env, failure_event)
        waits_for_token = (
            self._is_integration_pattern()
            and ResourceCondition.WaitForTaskToken in self._supported_integration_patterns
        )
        if waits_for_token:
            task = env.states.context_object.context_object_data.get("Task") or {}
            spent = env.callback_pool_manager.get(task.get("Token"))
            if spent is not None and spent.consumer_error is None:
                spent.report(CallbackConsumerTimeout())  # its worker's heartbeat now gets TaskTimedOut
            if outcome == RetryOutcome.CanRetry:
                env.callback_pool_manager.add(env.states.context_object.update_task_token())
        return outcome

    StateTaskServiceCallback._handle_retry = _handle_retry


def _spent_tokens_answer_as_on_aws() -> None:
    """A heartbeat or answer for a token whose task timed out gets ``TaskTimedOut`` (``400``), as on AWS.

    moto's backend tests the wrapper exception instead of the consumer's error it carries (so a
    timed-out token was "TaskDoesNotExist"), and raises error classes its server cannot render:
    the client got a bare ``500``. A build worker must tell "this token is spent" from "try again".
    """
    from moto.core.exceptions import AWSError
    from moto.stepfunctions.parser.api import ExecutionStatus
    from moto.stepfunctions.parser.asl.eval.callback.callback import (
        CallbackConsumerTimeout,
        CallbackNotifyConsumerError,
    )
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    class TokenSpent(AWSError):
        STATUS = 400

    def answered(method: Any) -> Any:
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except CallbackNotifyConsumerError as e:  # raised by our own callers below
                timed_out = isinstance(e.callback_consumer_error, CallbackConsumerTimeout)
                code = "TaskTimedOut" if timed_out else "TaskDoesNotExist"
                raise TokenSpent(f"the task of this token {'timed out' if timed_out else 'is gone'}", code) from None

        return call

    def heartbeat(self: Any, task_token: str) -> None:
        for execution in self._get_executions(ExecutionStatus.RUNNING):
            if execution.exec_worker.env.callback_pool_manager.heartbeat(callback_id=task_token):
                return
        raise TokenSpent("Invalid Token: 'Invalid token'", "InvalidToken")

    def notify(self: Any, task_token: str, outcome: Any) -> None:
        for execution in self._get_executions(ExecutionStatus.RUNNING):
            if execution.exec_worker.env.callback_pool_manager.notify(callback_id=task_token, outcome=outcome):
                return
        raise TokenSpent("Invalid Token: 'Invalid token'", "InvalidToken")

    def send_task_success(self: Any, task_token: str, outcome: str) -> None:
        from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackOutcomeSuccess

        notify(self, task_token, CallbackOutcomeSuccess(callback_id=task_token, output=outcome))

    def send_task_failure(self: Any, task_token: str, error: str | None = None, cause: str | None = None) -> None:
        from moto.stepfunctions.parser.asl.eval.callback.callback import CallbackOutcomeFailure

        notify(self, task_token, CallbackOutcomeFailure(callback_id=task_token, error=error, cause=cause))

    StepFunctionsParserBackend.send_task_heartbeat = answered(heartbeat)
    StepFunctionsParserBackend.send_task_success = answered(send_task_success)
    StepFunctionsParserBackend.send_task_failure = answered(send_task_failure)


def _executions_announce_their_status() -> None:
    """Every execution puts "Step Functions Execution Status Change" events on the default bus, as on AWS.

    moto's engine emits none. longrun's rule on them closes a job whose execution ended where no
    step of its own ran (a state machine timeout, a Stop from the console or the API's back).
    """
    import datetime
    import json
    import logging

    from moto.events.models import events_backends
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication, Execution

    from longrun.local import redrive

    global _announcer
    log = logging.getLogger("longrun.local.moto_fixes")

    def millis(moment: Any) -> int | None:
        return int(moment.timestamp() * 1000) if isinstance(moment, datetime.datetime) else None

    def announce(execution: Any) -> None:
        data = execution.input_data
        status = execution.exec_status
        detail = {
            "executionArn": execution.exec_arn,
            "stateMachineArn": execution.state_machine.arn,
            "name": execution.name,
            "status": getattr(status, "value", status),
            "startDate": millis(execution.start_date),
            "stopDate": millis(execution.stop_date),
            "input": data if isinstance(data, str) or data is None else json.dumps(data),
            "output": None if execution.output is None else json.dumps(execution.output),
            "error": execution.error,
            "cause": execution.cause,
            **redrive.event_fields(execution),  # redriveCount tells one attempt's end from another's
        }
        event = {
            "Source": "aws.states",
            "DetailType": "Step Functions Execution Status Change",
            "Detail": json.dumps(detail),
            "Resources": [execution.exec_arn],
            "EventBusName": "default",
        }
        try:
            events_backends[execution.account_id][execution.region_name].put_events([event])
        except Exception:  # EventBridge delivery is asynchronous on AWS: it never fails an execution
            log.exception("could not announce the status of %s", execution.exec_arn)

    # EventBridge delivers asynchronously: events go out from one thread, in the order they happen,
    # so neither StartExecution nor an execution's end waits for the rules and their targets.
    import queue

    outbox: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def deliver() -> None:
        while True:
            announce(outbox.get())

    threading.Thread(target=deliver, name="execution-status-events", daemon=True).start()

    def snapshot(execution: Any) -> Any:
        """What the event says, as it was when the status changed (the execution object moves on)."""
        return copy.copy(execution)

    start, terminated = Execution.start, BaseExecutionWorkerCommunication.terminated

    def started(self: Any) -> None:
        start(self)
        outbox.put(snapshot(self))

    def ended(self: Any) -> None:
        terminated(self)
        outbox.put(snapshot(self.execution))

    def announce_now(execution: Any) -> None:
        outbox.put(snapshot(execution))

    Execution.start = started
    BaseExecutionWorkerCommunication.terminated = ended
    _announcer = announce_now


def _lambda_refusals_named_as_on_aws() -> None:
    """A Task on a function ARN whose Invoke failed at the Lambda service fails with ``Lambda.<code>``.

    On AWS the error of a refused Invoke is ``Lambda.TooManyRequestsException``,
    ``Lambda.ServiceException`` and so on, for a ``Resource`` naming the function as for
    ``lambda:invoke``; moto names it so for the latter only and ``Exception`` for the former.
    """
    from botocore.exceptions import ClientError
    from moto.stepfunctions.parser.api import HistoryEventType, LambdaFunctionFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_lambda import (
        StateTaskServiceLambda,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.state_task_lambda import StateTaskLambda
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    original = StateTaskLambda._from_error
    if getattr(original, "_longrun_fixed", False):
        return

    def from_error(self: Any, env: Any, ex: Exception) -> Any:
        if not isinstance(ex, ClientError):
            return original(self, env, ex)
        error, cause = StateTaskServiceLambda._error_cause_from_client_error(ex)
        return FailureEvent(
            env=env,
            error_name=CustomErrorName(error),
            event_type=HistoryEventType.LambdaFunctionFailed,
            event_details=EventDetails(
                lambdaFunctionFailedEventDetails=LambdaFunctionFailedEventDetails(error=error, cause=cause)
            ),
        )

    from_error._longrun_fixed = True  # type: ignore[attr-defined]
    StateTaskLambda._from_error = from_error  # type: ignore[method-assign]


def _definitions_judged_as_on_aws() -> None:
    """``CreateStateMachine`` and ``UpdateStateMachine`` answer ``InvalidDefinition`` to what Step Functions refuses.

    Step Functions checks every definition against the Amazon States Language before it creates or
    updates a state machine ("Step Functions will implicitly perform the same syntax check when you
    invoke CreateStateMachine and UpdateStateMachine",
    https://docs.aws.amazon.com/step-functions/latest/apireference/API_ValidateStateMachineDefinition.html).
    moto's parser accepts much that check refuses: a state name used twice (an inline Map's and a
    Distributed Map's processors each naming ``CopyBatch``) was created here and rolled back on AWS.
    Here a definition moto's parser accepts is judged by asl-validator too
    (:mod:`longrun.local.asl_validator`: one node process, verdicts cached by sha256), and one it
    refuses gets ``InvalidDefinition`` (400) naming each rule and state.
    """
    from moto.core.exceptions import AWSError
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    from longrun.local import asl_validator

    original = StepFunctionsParserBackend._validate_definition
    if getattr(original, "_longrun_judged", False):
        return

    def validate_definition(definition: str) -> None:
        original(definition=definition)
        try:
            verdict = asl_validator.shared().validate(definition)
        except asl_validator.AslValidatorUnavailable as e:  # never accepted unjudged
            raise AWSError(str(e), "ValidatorUnavailable", 500) from None
        if not verdict.valid:
            raise AWSError(asl_validator.refusal_message(verdict), "InvalidDefinition", 400)

    validate_definition._longrun_judged = True  # type: ignore[attr-defined]
    StepFunctionsParserBackend._validate_definition = staticmethod(validate_definition)  # type: ignore[method-assign]


def install() -> None:
    """Patch moto in this process (the local cloud's AWS endpoint only)."""
    import moto.dynamodb.models as models
    import moto.stepfunctions.parser.asl.utils.boto_client as engine_clients

    from longrun.local import map_runs, redrive

    engine_clients.boto3 = _SharedClients()  # type: ignore[assignment]

    _fix_sqs_costs()
    _remember_backend_for_host()
    _stop_ends_task_token_waits()
    _task_failure_keeps_its_cause()
    _early_heartbeats_count()
    _each_attempt_has_its_own_token()
    _spent_tokens_answer_as_on_aws()
    _lambda_refusals_named_as_on_aws()
    _definitions_judged_as_on_aws()
    _executions_announce_their_status()
    redrive.install()  # after the announce: a redrive and an execution's end are announced in order
    map_runs.install()

    backend_class = models.DynamoDBBackend
    if getattr(backend_class, "_longrun_fixed", False):
        return
    original = backend_class.transact_write_items
    models.copy = _TablesAreNotCopied  # type: ignore[assignment]

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        with _LOCK:
            snapshot: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []
            for item in transact_items:
                op_type, op = next(iter(item.items()))
                try:
                    key = _key_of(self, op_type, op)
                    current = self.get_item(op["TableName"], key)
                except Exception:
                    continue  # moto's own checks report the problem
                attributes = copy.deepcopy(current.to_json()["Attributes"]) if current else None
                snapshot.append((op["TableName"], key, attributes))
            try:
                original(self, transact_items)
            except Exception:
                for table_name, key, attributes in reversed(snapshot):
                    if attributes is None:
                        if self.get_item(table_name, key) is not None:
                            self.delete_item(table_name, key)
                    else:
                        self.put_item(table_name, attributes)
                raise

    backend_class.transact_write_items = transact_write_items
    backend_class._longrun_fixed = True
