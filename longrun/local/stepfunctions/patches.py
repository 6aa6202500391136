"""Where moto's Step Functions differs from Step Functions in ways longrun relies on: the patches.

Each is a :class:`~longrun.local.patches.Patch` in :data:`PATCHES` (installed by
:func:`longrun.local.patches.install`), naming the behaviour of Step Functions it supplies and what
moto's engine does instead. In short: ``StopExecution`` of an execution that waits on a task token
aborts it at once, and keeps its ``error`` and ``cause`` (:mod:`.stops`); ``SendTaskFailure`` keeps its
``cause``; a heartbeat sent right after the task's
message counts; a retried task gets a new token; a spent token's heartbeat answers ``TaskTimedOut``;
a Lambda task whose Invoke the Lambda service refused fails with ``Lambda.<code>``; a definition that
breaks the Amazon States Language is ``InvalidDefinition`` (judged by asl-validator); executions
emit "Execution Status Change" events; ``RedriveExecution`` exists (:mod:`.redrive`); a Distributed
Map fails past its tolerated failure threshold and its ResultWriter writes results (:mod:`.map_runs`);
and the engine's clients are made once (cost only).
"""

from __future__ import annotations

import copy
import os
import threading
from collections.abc import Callable
from typing import Any

from longrun.local.patches import Patch
from longrun.local.stepfunctions import map_runs, redrive, stops

# Set (by aws_server --integrations-url) when the engine has a process of its own: EventBridge is
# served at this URL, not in this process, and the status events are put there (PutEvents).
EVENTS_ENDPOINT_ENV = "LONGRUN_EVENTS_ENDPOINT"

# Puts an "Execution Status Change" event for an execution as it is now; set by
# _executions_announce_their_status (the redrive of an execution announces it too).
_announcer: Callable[[Any], None] | None = None


def announce_status_change(execution: Any) -> None:
    """Announce the execution's status as it is now (a no-op before :func:`install`)."""
    if _announcer is not None:
        _announcer(execution)


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


def _clients_made_once() -> None:
    """moto's engine gets its boto3 clients from :class:`_SharedClients`: one per service and region."""
    import moto.stepfunctions.parser.asl.utils.boto_client as engine_clients

    engine_clients.boto3 = _SharedClients()  # type: ignore[assignment]


def _stop_ends_task_token_waits() -> None:
    """``StopExecution`` aborts an execution that waits on a task token at once, as on AWS.

    moto's engine marks the program stopped but leaves the task's thread waiting for its callback
    until the task's own timeout (the execution stays ``RUNNING`` for minutes), and the error that
    wait then raises overwrites the stop, so it ends ``FAILED``. Here the stop wakes every
    callback of the execution, and a stopped program stays stopped: ``ABORTED``.
    """
    from moto.stepfunctions.parser.asl.eval.environment import Environment
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped

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

    def closed(pool: Any, task_token: str) -> None:
        """A token already answered is refused: TaskTimedOut is "the task associated with the token has
        already been closed" (https://docs.aws.amazon.com/step-functions/latest/apireference/API_SendTaskSuccess.html).
        moto keeps the answered endpoint and takes a second answer (or heartbeat) as if it were the first:
        two build workers would both think they claimed one build."""
        endpoint = pool.get(task_token)
        if endpoint is not None and endpoint.get_outcome() is not None:
            raise TokenSpent("the task of this token has already been closed", "TaskTimedOut")

    def heartbeat(self: Any, task_token: str) -> None:
        for execution in self._get_executions(ExecutionStatus.RUNNING):
            pool = execution.exec_worker.env.callback_pool_manager
            closed(pool, task_token)
            if pool.heartbeat(callback_id=task_token):
                return
        raise TokenSpent("Invalid Token: 'Invalid token'", "InvalidToken")

    def notify(self: Any, task_token: str, outcome: Any) -> None:
        for execution in self._get_executions(ExecutionStatus.RUNNING):
            pool = execution.exec_worker.env.callback_pool_manager
            closed(pool, task_token)
            if pool.notify(callback_id=task_token, outcome=outcome):
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
    from moto.stepfunctions.parser.backend.execution import Execution

    from longrun.local.stepfunctions import redrive

    global _announcer
    log = logging.getLogger("longrun.local.moto_fixes")
    clients: dict[tuple[str, str], Any] = {}

    def events_client(endpoint: str, region: str) -> Any:
        """One EventBridge client per endpoint and region, used by the one delivering thread only."""
        if (endpoint, region) not in clients:
            import boto3

            clients[endpoint, region] = boto3.client(
                "events", endpoint_url=endpoint, region_name=region,
                aws_access_key_id="testing", aws_secret_access_key="testing",
            )  # fmt: skip
        return clients[endpoint, region]

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
            endpoint = os.environ.get(EVENTS_ENDPOINT_ENV)
            if endpoint:  # the engine's own process: EventBridge lives in the AWS endpoint's
                answer = events_client(endpoint, execution.region_name).put_events(Entries=[event])
                if answer.get("FailedEntryCount"):
                    log.error("EventBridge refused the status of %s: %s", execution.exec_arn, answer["Entries"])
            else:
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

    start = Execution.start

    def started(self: Any) -> None:
        start(self)
        outbox.put(snapshot(self))

    def announce_now(execution: Any) -> None:
        outbox.put(snapshot(execution))

    Execution.start = started
    _announcer = announce_now  # an execution's end is announced by _ends_one_at_a_time_and_announced


def _ends_one_at_a_time_and_announced() -> None:
    """An execution's end sets its status and announces it under redrive's lock, as one step.

    Two behaviours meet in moto's ``terminated``: the end is announced (an "Execution Status Change"
    event) and cannot interleave with a redrive of the same execution, or the event could report the
    redriven execution (``RUNNING``) instead of the end. One patch composes both, in that order.
    """
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication

    terminated = BaseExecutionWorkerCommunication.terminated

    def ended(self: Any) -> None:
        with redrive.END_LOCK:
            terminated(self)
            announce_status_change(self.execution)

    BaseExecutionWorkerCommunication.terminated = ended


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
    (:mod:`longrun.local.stepfunctions.asl_validator`: one node process, verdicts cached by sha256), and one it
    refuses gets ``InvalidDefinition`` (400) naming each rule and state.
    """
    from moto.core.exceptions import AWSError
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    from longrun.local.stepfunctions import asl_validator

    original = StepFunctionsParserBackend._validate_definition

    def validate_definition(definition: str) -> None:
        original(definition=definition)
        try:
            verdict = asl_validator.shared().validate(definition)
        except asl_validator.AslValidatorUnavailable as e:  # never accepted unjudged
            raise AWSError(str(e), "ValidatorUnavailable", 500) from None
        if not verdict.valid:
            raise AWSError(asl_validator.refusal_message(verdict), "InvalidDefinition", 400)

    StepFunctionsParserBackend._validate_definition = staticmethod(validate_definition)  # type: ignore[method-assign]


_PARSER = "moto.stepfunctions.parser"
_SFN_API = "https://docs.aws.amazon.com/step-functions/latest/apireference"
_SFN_GUIDE = "https://docs.aws.amazon.com/step-functions/latest/dg"
_ANNOUNCE = "stepfunctions.executions-announce-their-status"
_CHILDREN = "stepfunctions.map-run-children-recorded"

PATCHES = (
    Patch(
        service="stepfunctions",
        name="clients-made-once",
        behaviour="A service integration's call costs the call: Step Functions does not build an SDK client per task.",
        doc=f"{_SFN_GUIDE}/integrate-services.html",
        gap="moto's engine builds a new boto3 client for every task it runs (a sixth of its time under load).",
        replaces=(f"{_PARSER}.asl.utils.boto_client:boto3",),
        apply=_clients_made_once,
    ),
    Patch(
        service="stepfunctions",
        name="stop-aborts-task-token-waits",
        behaviour="StopExecution ends an execution ABORTED at once, also while a task waits for its task token.",
        doc=f"{_SFN_API}/API_StopExecution.html",
        gap=(
            "moto marks the program stopped but leaves the task waiting for its callback until the task's own "
            "timeout (RUNNING for minutes), and the error that wait raises then overwrites the stop: FAILED."
        ),
        replaces=(
            f"{_PARSER}.asl.eval.environment:Environment.set_stop",
            f"{_PARSER}.asl.eval.environment:Environment.set_error",
            f"{_PARSER}.asl.eval.environment:Environment.set_timed_out",
        ),
        apply=_stop_ends_task_token_waits,
    ),
    Patch(
        service="stepfunctions",
        name="stop-keeps-its-error-and-cause",
        behaviour=(
            "StopExecution's error and cause reach the execution: its ExecutionAborted event, DescribeExecution "
            "and its Execution Status Change event carry them, with the stop's date."
        ),
        doc=f"{_SFN_API}/API_StopExecution.html",
        gap=(
            "moto's handler drops both (its backend stops with error='' and cause=''), and an execution that "
            "ends ABORTED gets no error or cause."
        ),
        replaces=(
            "moto.stepfunctions.responses:StepFunctionResponse.stop_execution",
            f"{_PARSER}.backend.execution:BaseExecutionWorkerCommunication._reflect_execution_status",
        ),
        apply=stops.apply,
    ),
    Patch(
        service="stepfunctions",
        name="task-failure-keeps-its-cause",
        behaviour="SendTaskFailure's cause reaches the task's Catch ($.Cause) with its error.",
        doc=f"{_SFN_API}/API_SendTaskFailure.html",
        gap="moto's SendTaskFailure handler passes on the error and drops the cause.",
        replaces=("moto.stepfunctions.responses:StepFunctionResponse.send_task_failure",),
        apply=_task_failure_keeps_its_cause,
    ),
    Patch(
        service="stepfunctions",
        name="early-heartbeats-count",
        behaviour="SendTaskHeartbeat is accepted for a live token as soon as the task's message is out.",
        doc=f"{_SFN_API}/API_SendTaskHeartbeat.html",
        gap=(
            "moto sends the task's message before it starts watching heartbeats: a heartbeat sent at once got "
            "InvalidToken for a live token."
        ),
        replaces=(
            f"{_PARSER}.asl.eval.callback.callback:CallbackEndpoint.notify_heartbeat",
            f"{_PARSER}.asl.eval.callback.callback:CallbackEndpoint.setup_heartbeat_endpoint",
        ),
        apply=_early_heartbeats_count,
    ),
    Patch(
        service="stepfunctions",
        name="each-attempt-has-its-own-token",
        behaviour=(
            "Each attempt of a .waitForTaskToken task gets its own task token ($$.Task.Token); an earlier "
            "attempt's token is refused once the task was retried."
        ),
        doc=f"{_SFN_GUIDE}/connect-to-resource.html",
        gap=(
            "moto makes the token once when the state is entered, so a retry reused it and a lost worker's "
            "answer was taken."
        ),
        replaces=(
            f"{_PARSER}.asl.component.state.exec.state_task.service.state_task_service_callback"
            ":StateTaskServiceCallback._handle_retry",
        ),
        apply=_each_attempt_has_its_own_token,
    ),
    Patch(
        service="stepfunctions",
        name="spent-tokens-answer-as-on-aws",
        behaviour=(
            "A heartbeat or answer for the token of a task that timed out, or was already answered, gets "
            "TaskTimedOut (400)."
        ),
        doc=f"{_SFN_API}/API_SendTaskHeartbeat.html",
        gap=(
            "moto tests the wrapper exception instead of the consumer's error (a timed-out token was "
            "TaskDoesNotExist) and raises error classes its server cannot render: a bare 500; and it takes "
            "a second answer to an answered token as if it were the first."
        ),
        replaces=(
            f"{_PARSER}.models:StepFunctionsParserBackend.send_task_heartbeat",
            f"{_PARSER}.models:StepFunctionsParserBackend.send_task_success",
            f"{_PARSER}.models:StepFunctionsParserBackend.send_task_failure",
        ),
        apply=_spent_tokens_answer_as_on_aws,
    ),
    Patch(
        service="stepfunctions",
        name="lambda-refusals-named-as-on-aws",
        behaviour=(
            "A Task on a function ARN whose Invoke the Lambda service refused fails with Lambda.<code> "
            "(Lambda.TooManyRequestsException, Lambda.ServiceException), which Retry names."
        ),
        doc=f"{_SFN_GUIDE}/bp-lambda-serviceexception.html",
        gap="moto names the error so for arn:aws:states:::lambda:invoke only, and Exception for a function ARN.",
        replaces=(f"{_PARSER}.asl.component.state.exec.state_task.state_task_lambda:StateTaskLambda._from_error",),
        apply=_lambda_refusals_named_as_on_aws,
    ),
    Patch(
        service="stepfunctions",
        name="definitions-judged-as-on-aws",
        behaviour=(
            "CreateStateMachine and UpdateStateMachine answer InvalidDefinition to a definition that breaks the "
            "Amazon States Language (the check of ValidateStateMachineDefinition)."
        ),
        doc=f"{_SFN_API}/API_ValidateStateMachineDefinition.html",
        gap="moto's parser accepts much that check refuses, such as a state name used twice.",
        replaces=(f"{_PARSER}.models:StepFunctionsParserBackend._validate_definition",),
        apply=_definitions_judged_as_on_aws,
    ),
    Patch(
        service="stepfunctions",
        name="executions-announce-their-status",
        behaviour='Every execution puts "Step Functions Execution Status Change" events on the default bus.',
        doc=f"{_SFN_GUIDE}/eventbridge-integration.html",
        gap="moto's engine emits none.",
        replaces=(f"{_PARSER}.backend.execution:Execution.start",),
        apply=_executions_announce_their_status,
    ),
    Patch(
        service="stepfunctions",
        name="redrive-execution",
        behaviour=(
            "RedriveExecution continues a FAILED, TIMED_OUT or ABORTED STANDARD execution under the same ARN "
            "from the step that did not succeed; DescribeExecution reports the redrive fields."
        ),
        doc=f"{_SFN_GUIDE}/redrive-executions.html",
        gap="moto has no RedriveExecution (and leaves stopDate out of a TIMED_OUT execution's description).",
        replaces=(
            f"{_PARSER}.asl.component.state.state:CommonStateField._get_state_entered_event_details",
            f"{_PARSER}.backend.execution_worker:ExecutionWorker._get_evaluation_environment",
            "moto.stepfunctions.responses:StepFunctionResponse.redrive_execution",
            "moto.stepfunctions.responses:StepFunctionResponse.describe_execution",
        ),
        apply=redrive.apply,
        after=(_ANNOUNCE,),  # a redrive announces the execution RUNNING again
    ),
    Patch(
        service="stepfunctions",
        name="ends-one-at-a-time-and-announced",
        behaviour=(
            "An execution's end is announced with the status it ended with, in order with its redrives "
            "(the redrive's RUNNING event never stands in for the end's)."
        ),
        doc=f"{_SFN_GUIDE}/eventbridge-integration.html",
        gap="moto's engine announces no end, and has no redrive to keep it apart from.",
        replaces=(f"{_PARSER}.backend.execution:BaseExecutionWorkerCommunication.terminated",),
        apply=_ends_one_at_a_time_and_announced,
        after=(_ANNOUNCE, "stepfunctions.redrive-execution"),
    ),
    Patch(
        service="stepfunctions",
        name="map-run-children-recorded",
        behaviour="A Map Run knows each child execution's outcome (its failure threshold and results depend on them).",
        doc=f"{_SFN_GUIDE}/input-output-resultwriter.html",
        gap="moto keeps only counts of a Map Run's children.",
        replaces=(
            f"{_PARSER}.asl.component.state.exec.state_map.iteration.itemprocessor.distributed_item_processor_worker"
            ":DistributedItemProcessorWorker._eval_job",
        ),
        apply=map_runs.children_are_recorded,
    ),
    Patch(
        service="stepfunctions",
        name="map-runs-fail-past-their-threshold",
        behaviour=(
            "A Map Run fails with States.ExceedToleratedFailureThreshold once more children failed than "
            "ToleratedFailureCount/Percentage allow (none, when neither is given)."
        ),
        doc=f"{_SFN_GUIDE}/maprun-fail-threshold.html",
        gap="moto evaluates both fields and compares them with nothing: a Map state whose child failed succeeded.",
        replaces=(
            f"{_PARSER}.asl.component.state.exec.state_map.iteration.distributed_iteration_component"
            ":DistributedIterationComponent._map_run",
            f"{_PARSER}.asl.component.state.exec.state_map.state_map:StateMap.from_state_props",
        ),
        apply=map_runs.map_runs_fail_past_their_threshold,
        after=(_CHILDREN,),
    ),
    Patch(
        service="stepfunctions",
        name="result-writer-writes-the-results",
        behaviour=(
            "A ResultWriter puts SUCCEEDED_0.json, FAILED_0.json and a manifest.json listing them under "
            "<Prefix>/<map run id>/, also for a Map Run that failed; its Parameters read the state's input."
        ),
        doc=f"{_SFN_GUIDE}/input-output-resultwriter.html",
        gap=(
            'moto writes only the manifest, its ResultFiles empty ("TODO: generate result files"), nothing for '
            'a failed Map Run, and evaluates "Prefix.$" against the children\'s outputs.'
        ),
        replaces=(
            f"{_PARSER}.asl.component.state.exec.state_map.result_writer.resource_eval.resource_eval_s3"
            ":ResourceEvalS3._handle_put_object",
            f"{_PARSER}.asl.component.state.exec.state_map.result_writer.result_writer_decl:ResultWriter._eval_body",
            f"{_PARSER}.asl.component.state.exec.state_map.state_map:StateMap._eval_execution",
        ),
        apply=map_runs.result_writer_writes_the_results,
        after=(_CHILDREN, "stepfunctions.map-runs-fail-past-their-threshold"),
    ),
)
