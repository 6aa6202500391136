"""Step Functions' ``RedriveExecution`` in the local cloud's moto engine, which lacks it.

On AWS a STANDARD execution that ended ``FAILED``, ``TIMED_OUT`` or ``ABORTED`` can be redriven:
it continues, under the same ARN, from the step that did not succeed, with the input that step
had; the steps that succeeded are not run again. ``POST /jobs/{id}/retry`` is built on it, so the
local cloud gives it to moto's engine:

* ``RedriveExecution`` answers ``{"redriveDate": ...}``; a ``RUNNING`` or ``SUCCEEDED`` execution
  answers ``ExecutionNotRedrivable`` (400), an unknown ARN ``ExecutionDoesNotExist``. A repeated
  ``clientToken`` (boto3 sends one with every call, and its retries reuse it) answers the first
  redrive's date without redriving again.
* The execution runs again in a new engine worker on the same ``Execution`` object, from the
  top-level state it was in when it ended, with the input that state was entered with; the
  context object keeps the execution's input and start time and gains ``RedriveCount`` and
  ``RedriveTime``. The state machine's ``TimeoutSeconds`` counts from the redrive.
* ``GetExecutionHistory`` keeps the first attempts' events, then ``ExecutionRedriven``
  (``{"redriveCount": N}``) and the new attempt's events, the ids going on from the last one.
* ``DescribeExecution`` reports ``redriveCount``, ``redriveDate``, ``redriveStatus`` and, when it
  is ``NOT_REDRIVABLE``, ``redriveStatusReason``; the "Execution Status Change" events of
  :mod:`longrun.local.stepfunctions.patches` carry the same fields and are put again for the redrive
  (``RUNNING``) and for the new end. (``DescribeExecution`` also gives a ``TIMED_OUT``
  execution its ``stopDate``, which moto leaves out.)

Where the local cloud differs from AWS (documented, not hidden):

* **Map and Parallel states are rerun whole.** AWS redrives only the iterations and branches of
  a failed inline Map or Parallel state that failed or were aborted (and, for a Distributed Map,
  only the failed child executions of its Map Run). Here the whole top-level Map or Parallel
  state runs again with its input: every iteration and every branch, the successful ones too.
  Locally, the steps inside them run again after a redrive even where they had succeeded.
* Variables (``Assign``) set before the redriven state are not restored; moto's engine fails on
  ``Assign`` at run time anyway, so longrun's workflows do not use it.
* An execution that had not yet entered any state when it ended runs again from ``StartAt``.
* No limits are enforced on the number of redrives, the 14-day redrivable period or the history's
  25,000 events; ``ListExecutions`` neither reports ``redriveCount`` nor filters by it.
"""

from __future__ import annotations

import datetime
import json
import threading
from typing import Any

from moto.core.exceptions import AWSError

REDRIVABLE, NOT_REDRIVABLE = "REDRIVABLE", "NOT_REDRIVABLE"
_REDRIVABLE_STATUSES = frozenset({"FAILED", "TIMED_OUT", "ABORTED"})
_END_EVENTS = frozenset({"ExecutionFailed", "ExecutionTimedOut", "ExecutionAborted", "ExecutionSucceeded"})

# An execution's end (its status set, then announced) and a redrive of it happen one at a time:
# otherwise a redrive could slip between an end's status and its event, and the event would
# report the redriven execution (RUNNING) instead of the end. Executions run in threads of this
# process, the redrive in a request's thread.
END_LOCK = threading.RLock()


class ExecutionNotRedrivable(AWSError):
    TYPE = "ExecutionNotRedrivable"
    STATUS = 400


def _status(execution: Any) -> str | None:
    status = getattr(execution, "exec_status", None)
    return getattr(status, "value", status)


def redrive_status(execution: Any) -> tuple[str, str | None]:
    """Whether ``RedriveExecution`` would redrive the execution now, and if not, AWS's reason."""
    sm_type = getattr(execution, "sm_type", "STANDARD")
    if getattr(sm_type, "value", sm_type) == "EXPRESS":
        return NOT_REDRIVABLE, "Execution is of type EXPRESS and cannot be redriven."
    status = _status(execution)
    if status not in _REDRIVABLE_STATUSES:
        return NOT_REDRIVABLE, f"Execution is {status} and cannot be redriven."
    return REDRIVABLE, None


def describe_fields(execution: Any) -> dict[str, Any]:
    """The redrive fields of ``DescribeExecution``, in its types (dates as datetimes)."""
    status, reason = redrive_status(execution)
    fields: dict[str, Any] = {"redriveCount": getattr(execution, "redrive_count", 0), "redriveStatus": status}
    if reason is not None:
        fields["redriveStatusReason"] = reason
    if getattr(execution, "redrive_date", None) is not None:
        fields["redriveDate"] = execution.redrive_date
    return fields


def event_fields(execution: Any) -> dict[str, Any]:
    """The redrive fields of an "Execution Status Change" event's detail (dates in epoch milliseconds)."""
    status, reason = redrive_status(execution)
    date = getattr(execution, "redrive_date", None)
    return {
        "redriveCount": getattr(execution, "redrive_count", 0),
        "redriveDate": int(date.timestamp() * 1000) if isinstance(date, datetime.datetime) else None,
        "redriveStatus": status,
        "redriveStatusReason": reason,
    }


def _remember_where_top_level_states_are_entered() -> None:
    """Each top-level state entered is noted on the execution's environment, with its input.

    A redrive resumes at the top-level state the execution was in when it ended. The history
    cannot tell it reliably (a state inside a Map or Parallel may have a top-level state's name,
    and a failed state leaves no ``StateExited``), so the engine notes it as it goes: the state
    name and its input, the very JSON text of its ``StateEntered`` event (nothing more is
    serialized). States inside Map iterations and Parallel branches run in frames and are not
    noted: a failure there resumes at the Map or Parallel state itself.
    """
    from moto.stepfunctions.parser.asl.component.state.state import CommonStateField

    details = CommonStateField._get_state_entered_event_details

    def _get_state_entered_event_details(self: Any, env: Any) -> Any:
        entered = details(self, env)
        if not env.is_frame():
            env._longrun_entered = (self.name, entered.get("input"))
        return entered

    CommonStateField._get_state_entered_event_details = _get_state_entered_event_details


def _context_tells_the_attempt() -> None:
    """``$$.Execution.RedriveCount`` is 0 in an execution's first attempt, as on AWS.

    A redriven attempt's :class:`RedriveWorker` sets it (and ``RedriveTime``) to its own.
    """
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    environment = ExecutionWorker._get_evaluation_environment

    def _get_evaluation_environment(self: Any) -> Any:
        env = environment(self)
        env.states.context_object.context_object_data["Execution"]["RedriveCount"] = 0
        return env

    ExecutionWorker._get_evaluation_environment = _get_evaluation_environment


def _resume_point(execution: Any) -> tuple[str | None, Any]:
    """The top-level state to redrive from and its input; ``(None, input)``: from ``StartAt``."""
    env = execution.exec_worker.env if execution.exec_worker is not None else None
    entered = getattr(env, "_longrun_entered", None) or getattr(execution, "_longrun_resumed_at", None)
    if entered is None:
        return None, execution.input_data
    name, input_text = entered
    return name, json.loads(input_text) if isinstance(input_text, str) else input_text


def _end_event(execution: Any) -> tuple[Any, dict[str, Any]]:
    """The history event of the execution's end, for a history whose end is not written yet.

    moto writes ``ExecutionTimedOut`` only when the state that was running returns (a Lambda task
    may run on for minutes), while the execution is ``TIMED_OUT`` at once; the redriven history
    must show that end before ``ExecutionRedriven``.
    """
    from moto.stepfunctions.parser.api import (
        ExecutionAbortedEventDetails,
        ExecutionFailedEventDetails,
        ExecutionTimedOutEventDetails,
        HistoryEventType,
    )

    status = _status(execution)
    if status == "TIMED_OUT":
        return HistoryEventType.ExecutionTimedOut, {"executionTimedOutEventDetails": ExecutionTimedOutEventDetails()}
    failure = {k: v for k, v in (("error", execution.error), ("cause", execution.cause)) if v is not None}
    if status == "ABORTED":
        aborted = ExecutionAbortedEventDetails(**failure)
        return HistoryEventType.ExecutionAborted, {"executionAbortedEventDetails": aborted}
    return HistoryEventType.ExecutionFailed, {"executionFailedEventDetails": ExecutionFailedEventDetails(**failure)}


def worker_arguments(execution: Any, logging_session: Any) -> dict[str, Any]:
    """What moto's ``ExecutionWorker`` is built from for ``execution``, as its own ``start`` builds it."""
    from moto.stepfunctions.parser.asl.eval.evaluation_details import EvaluationDetails

    return {
        "evaluation_details": EvaluationDetails(
            aws_execution_details=execution._get_start_aws_execution_details(),
            execution_details=execution.get_start_execution_details(),
            state_machine_details=execution.get_start_state_machine_details(),
        ),
        "exec_comm": execution._get_start_execution_worker_comm(),
        "cloud_watch_logging_session": logging_session,
        "activity_store": execution._activity_store,
    }


def _worker_class() -> type:
    """The engine worker of a redriven execution (built on first use: moto is imported lazily)."""
    from moto.stepfunctions.parser.api import ExecutionRedrivenEventDetails, HistoryEventType
    from moto.stepfunctions.parser.asl.component.common.flow.start_at import StartAt
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    class RedriveWorker(ExecutionWorker):
        """Runs an execution again from one top-level state, its history continuing the last attempt's.

        Unlike moto's worker, which builds its program and environment in its thread, this one
        builds them before it starts: a definition problem is the redrive's error, and the
        execution is never ``RUNNING`` without an environment (heartbeats and task answers look
        for their token in the environment of every running execution).
        """

        def __init__(self, execution: Any, start_at: str | None, state_input: Any, redrive_count: int) -> None:
            super().__init__(**worker_arguments(execution, execution._cloud_watch_logging_session))
            self._program = super()._get_evaluation_entrypoint()
            if start_at is not None:
                if start_at not in self._program.states.states:
                    raise ExecutionNotRedrivable(f"State '{start_at}' is not a top-level state of the definition.")
                self._program.start_at = StartAt(start_at)
            previous = execution.exec_worker.env if execution.exec_worker is not None else None
            env = self._get_evaluation_environment()
            context = env.states.context_object.context_object_data["Execution"]
            context["RedriveCount"] = redrive_count
            context["RedriveTime"] = execution.redrive_date.isoformat()
            self._continue_history(env, previous, execution, redrive_count)
            env.states.reset(state_input)
            if previous is not None:  # ListMapRuns and DescribeMapRun still find the earlier Map Runs
                for record in previous.map_run_record_pool_manager.get_all():
                    env.map_run_record_pool_manager.add(record)
            self.env = env

        @staticmethod
        def _continue_history(env: Any, previous: Any, execution: Any, redrive_count: int) -> None:
            events = previous.event_manager.get_event_history() if previous is not None else []
            manager = env.event_manager
            last_id = max((int(event["id"]) for event in events), default=0)
            with manager._mutex:
                manager._history_event_list.extend(events)
                manager._event_id_gen._next_id = last_id + 1
            env.event_history_context.source_event_id = last_id
            env.event_history_context.last_published_event_id = last_id
            last_type = events[-1].get("type") if events else None
            if getattr(last_type, "value", last_type) not in _END_EVENTS:
                event_type, details = _end_event(execution)
                manager.add_event(context=env.event_history_context, event_type=event_type, event_details=details)
            redriven = ExecutionRedrivenEventDetails(redriveCount=redrive_count)
            manager.add_event(
                context=env.event_history_context,
                event_type=HistoryEventType.ExecutionRedriven,
                event_details={"executionRedrivenEventDetails": redriven},
            )

        def _get_evaluation_entrypoint(self) -> Any:
            return self._program

        def _execution_logic(self) -> None:
            self._program.eval(self.env)
            self._execution_communication.terminated()

    return RedriveWorker


_RedriveWorker: type | None = None


def redrive(backend: Any, execution_arn: str, client_token: str | None = None) -> datetime.datetime:
    """Redrive the execution (see the module's docstring); its ``redriveDate``."""
    global _RedriveWorker
    from moto.stepfunctions.parser.api import ExecutionStatus

    from longrun.local.stepfunctions import patches

    execution = backend.describe_execution(execution_arn)  # ExecutionDoesNotExist, InvalidArn
    if not hasattr(execution, "exec_worker"):
        raise ExecutionNotRedrivable("Executions are not run: the local cloud's Step Functions engine is off.")
    with END_LOCK:
        answered: dict[str, datetime.datetime] = execution.__dict__.setdefault("_longrun_redrive_tokens", {})
        if client_token and client_token in answered:
            return answered[client_token]
        redrivable, reason = redrive_status(execution)
        if redrivable != REDRIVABLE:
            raise ExecutionNotRedrivable(reason or "Execution cannot be redriven.")
        start_at, state_input = _resume_point(execution)
        count = getattr(execution, "redrive_count", 0) + 1
        date = datetime.datetime.now(tz=datetime.UTC)
        previous_date = getattr(execution, "redrive_date", None)
        execution.redrive_date = date  # the worker's context object reads it
        if _RedriveWorker is None:
            _RedriveWorker = _worker_class()
        try:
            worker = _RedriveWorker(execution, start_at, state_input, count)
        except Exception:
            execution.redrive_date = previous_date
            raise
        execution._longrun_resumed_at = (start_at, json.dumps(state_input)) if start_at is not None else None
        execution.redrive_count = count
        execution.exec_worker = worker
        execution.stop_date = execution.output = execution.error = execution.cause = None
        execution.exec_status = ExecutionStatus.RUNNING
        worker.start()
        patches.announce_status_change(execution)
        if client_token:
            answered[client_token] = date
        return date


def _the_api_answers_it() -> None:
    """``RedriveExecution`` joins moto's Step Functions actions; ``DescribeExecution`` tells of redrives."""
    from moto.core.responses import ActionResult
    from moto.stepfunctions.responses import StepFunctionResponse

    def redrive_execution(self: Any) -> ActionResult:
        date = redrive(self.stepfunction_backend, self._get_param("executionArn"), self._get_param("clientToken"))
        return ActionResult({"redriveDate": date})

    describe = StepFunctionResponse.describe_execution

    def describe_execution(self: Any) -> Any:
        answer = describe(self)
        execution = self.stepfunction_backend.describe_execution(self._get_param("executionArn"))
        if isinstance(answer, ActionResult) and isinstance(answer.result, dict) and hasattr(execution, "exec_worker"):
            answer.result.update(describe_fields(execution))
            if _status(execution) == "TIMED_OUT" and execution.stop_date is not None:
                answer.result["stopDate"] = execution.stop_date  # moto leaves it out; AWS gives it
        return answer

    StepFunctionResponse.redrive_execution = redrive_execution
    StepFunctionResponse.describe_execution = describe_execution


def apply() -> None:
    """Patch moto in this process (declared in :mod:`longrun.local.stepfunctions.patches`, which also serializes
    an execution's end with its redrives under :data:`END_LOCK`)."""
    _remember_where_top_level_states_are_entered()
    _context_tells_the_attempt()
    _the_api_answers_it()
