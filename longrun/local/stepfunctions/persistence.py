"""Step Functions' executions across a restart of the local cloud: the state adapter (``local up --data-dir``).

What is kept is what Step Functions' read APIs answer about an execution, so that after a restart
``DescribeExecution``, ``ListExecutions``, ``GetExecutionHistory``, ``ListMapRuns`` and
``DescribeMapRun`` (what ``longrun ops history`` and the console read) answer what they answered
before: every execution of every state machine, with its ARN, name, input, output, status,
dates, error and cause, redrive count and date, the definition it ran, its history events, its
Map Runs, and where a redrive would resume it.

What cannot be kept is a running program: moto runs each execution as a thread whose state
(the task it waits in, its task token, its retries' clocks) lives in Python objects that do not
pickle. So an execution that was ``RUNNING`` comes back as a record that is still ``RUNNING``,
with its history so far and nothing running it (:class:`RestoredWorker`). Nothing advances it;
a ``StopExecution`` ends it as the engine ends a stopped program (``ABORTED``, an
``ExecutionAborted`` event with the stop's error and cause, its Map Runs ``ABORTED``, the
"Execution Status Change" event), and ``RedriveExecution`` runs it again from the top-level state
it was in. At start, the local cloud stops every such execution
(:mod:`longrun.local.stepfunctions.settle`); a task token of an execution from before the restart
is unknown to every execution now (``InvalidToken``), as a stopped execution's is on AWS.

The adapter interface (``SERVICE``, :func:`dump`, :func:`restore`, :func:`busy`) is the one every
service's ``persistence`` module has; the snapshot loop calls it in the process that serves Step
Functions. The data is plain (dicts, lists, strings, numbers, datetimes): no moto object is
pickled, so a moto upgrade within the tested range reads it.
"""

from __future__ import annotations

import copy
import enum
import json
import logging
import threading
from typing import Any

SERVICE = "stepfunctions"
log = logging.getLogger("longrun.local.stepfunctions.persistence")


def _backends() -> list[tuple[str, str, Any]]:
    """(account, region, backend) of every Step Functions backend this process has made."""
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    return [
        (account, region, backend)
        for account, regions in dict.items(stepfunctions_parser_backends)
        for region, backend in dict.items(regions)
    ]


def _plain(value: Any) -> Any:
    """``value`` with moto's enums as their strings (what the API serializes them as)."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _status(execution: Any) -> str | None:
    status = getattr(execution, "exec_status", None)
    return getattr(status, "value", status)


def _map_run(record: Any) -> dict[str, Any]:
    from longrun.local.stepfunctions import map_runs

    described = record.describe()
    return {
        "map_run_arn": record.map_run_arn,
        "map_state_machine_arn": record.map_state_machine_arn,
        "execution_arn": record.execution_arn,
        "max_concurrency": record.max_concurrency,
        "tolerated_failure_count": record.tolerated_failure_count,
        "tolerated_failure_percentage": record.tolerated_failure_percentage,
        "start_date": record.start_date,
        "stop_date": record.stop_date,
        "status": _plain(record.status),
        "item_counts": _plain(described["itemCounts"]),
        "execution_counts": _plain(described["executionCounts"]),
        "results": copy.deepcopy(list(enumerate(map_runs.results_of(record)))),
    }


def _execution(execution: Any) -> dict[str, Any]:
    from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

    worker = execution.exec_worker
    env = getattr(worker, "env", None)
    events = env.event_manager.get_event_history() if env is not None else []
    return {
        "account": execution.account_id,
        "region": execution.region_name,
        "state_machine_arn": execution.state_machine.arn,
        "definition": execution.state_machine.definition,
        "arn": execution.exec_arn,
        "name": execution.name,
        "sm_type": _plain(execution.sm_type),
        "role_arn": execution.role_arn,
        "trace_header": execution.trace_header,
        "input": to_json_str(execution.input_data),
        "output": None if execution.output is None else to_json_str(execution.output),
        "status": _status(execution),
        "start_date": execution.start_date,
        "stop_date": execution.stop_date,
        "error": execution.error,
        "cause": execution.cause,
        "redrive_count": getattr(execution, "redrive_count", 0),
        "redrive_date": getattr(execution, "redrive_date", None),
        "redrive_tokens": dict(execution.__dict__.get("_longrun_redrive_tokens", {})),
        # Where a redrive resumes (redrive._resume_point): the top-level state entered last, with its input.
        "entered": getattr(env, "_longrun_entered", None) or getattr(execution, "_longrun_resumed_at", None),
        "events": _plain(events),
        "map_runs": [_map_run(r) for r in env.map_run_record_pool_manager.get_all()] if env is not None else [],
    }


# arn -> (the finished execution's signature, its plain data): a finished execution does not change
# until it is redriven, so a save converts only the executions that run or changed since the last one.
# Without it a save cost ~2 ms per execution ever run (2.3 s with the engine paused, at 1,200).
_converted: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {}


def _finished_signature(execution: Any) -> tuple[Any, ...] | None:
    """What tells one finished state of an execution from another (a redrive changes it); None while it runs."""
    status = _status(execution)
    if status == "RUNNING":  # its history grows without a request
        return None
    redriven = (getattr(execution, "redrive_count", 0), getattr(execution, "redrive_date", None))
    return (status, execution.stop_date, *redriven)


def dump() -> dict[str, Any]:
    """Every execution this process holds, as plain data (called while requests are paused)."""
    executions = []
    for _, _, backend in _backends():
        for machine in list(backend.state_machines):
            for execution in list(machine.executions):
                if getattr(execution, "exec_worker", None) is None:
                    continue  # a StartExecution still being answered: its first snapshot comes next
                signature = _finished_signature(execution)
                cached = _converted.get(execution.exec_arn)
                if signature is not None and cached is not None and cached[0] == signature:
                    executions.append(cached[1])
                    continue
                plain = _execution(execution)
                if signature is not None:
                    _converted[execution.exec_arn] = (signature, plain)
                executions.append(plain)
    return {"executions": executions}


def busy() -> bool:
    """True while an execution runs here: its history changes without any request."""
    return any(
        _status(execution) == "RUNNING" and not _is_restored(execution.exec_worker)
        for _, _, backend in _backends()
        for machine in list(backend.state_machines)
        for execution in list(machine.executions)
    )


def _is_restored(worker: Any) -> bool:
    """Whether the worker is a restored execution's, which runs nothing (a redrive replaces it)."""
    return _RestoredWorker is not None and isinstance(worker, _RestoredWorker)


def restore(data: dict[str, Any]) -> None:
    """Put the executions back under the freshly created state machines of the same ARNs.

    An execution whose state machine the template no longer has is left out (and logged), as
    deleting a state machine on AWS deletes its executions; one already present is not doubled.
    """
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    restored = skipped = 0
    for record in data.get("executions", []):
        backend = stepfunctions_parser_backends[record["account"]][record["region"]]
        machine = next((m for m in backend.state_machines if m.arn == record["state_machine_arn"]), None)
        if machine is None:
            skipped += 1
            continue
        if any(e.exec_arn == record["arn"] for e in machine.executions):
            continue
        machine.executions.append(_restored_execution(machine, record))
        restored += 1
    for machine_list in (b.state_machines for _, _, b in _backends()):
        for machine in machine_list:
            machine.executions.sort(key=lambda e: e.start_date)
    if skipped:
        log.warning("left out %d executions of state machines the stack no longer has", skipped)
    log.info("restored %d executions", restored)


def _restored_execution(machine: Any, record: dict[str, Any]) -> Any:
    from moto.stepfunctions.parser.api import ExecutionStatus
    from moto.stepfunctions.parser.backend.execution import Execution

    # The execution's own copy of its state machine, as StartExecution makes it, with the
    # definition it ran (a redrive runs that one, even if the template changed since).
    clone = copy.deepcopy(machine, {id(machine.executions): [], id(machine.backend): machine.backend})
    clone.definition = record["definition"]
    execution = Execution(
        name=record["name"],
        sm_type=record["sm_type"],
        role_arn=record["role_arn"],
        exec_arn=record["arn"],
        account_id=record["account"],
        region_name=record["region"],
        state_machine=clone,
        start_date=record["start_date"],
        cloud_watch_logging_session=None,
        activity_store={},
        input_data=record["input"],
        trace_header=record["trace_header"],
    )
    execution.exec_status = ExecutionStatus(record["status"])
    execution.stop_date = record["stop_date"]
    execution.output = None if record["output"] is None else json.loads(record["output"])
    execution.error, execution.cause = record["error"], record["cause"]
    execution.redrive_count = record["redrive_count"]
    execution.redrive_date = record["redrive_date"]
    execution.__dict__["_longrun_redrive_tokens"] = dict(record["redrive_tokens"])
    if record["entered"] is not None:
        execution._longrun_resumed_at = tuple(record["entered"])
    execution.exec_worker = _worker_class()(execution, record)
    return execution


def _program_state(record: dict[str, Any]) -> Any:
    """The engine's state of a program that ended as the execution did (or still runs)."""
    from moto.stepfunctions.parser.api import ExecutionFailedEventDetails
    from moto.stepfunctions.parser.asl.eval.program_state import (
        ProgramEnded,
        ProgramError,
        ProgramRunning,
        ProgramStopped,
        ProgramTimedOut,
    )

    status = record["status"]
    if status == "RUNNING":
        return ProgramRunning()
    if status == "SUCCEEDED":
        return ProgramEnded()
    if status == "TIMED_OUT":
        return ProgramTimedOut()
    if status == "ABORTED":
        return ProgramStopped(stop_date=record["stop_date"], error=record["error"], cause=record["cause"])
    failure = {k: record[k] for k in ("error", "cause") if record[k] is not None}
    return ProgramError(error=ExecutionFailedEventDetails(**failure))


def _restored_map_run(saved: dict[str, Any]) -> Any:
    from moto.stepfunctions.parser.api import MapRunStatus
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor.map_run_record import (
        MapRunRecord,
    )

    from longrun.local.stepfunctions import map_runs

    record = MapRunRecord(
        state_machine_arn=saved["map_state_machine_arn"].rsplit("/", 1)[0],
        execution_arn=saved["execution_arn"],
        max_concurrency=saved["max_concurrency"],
        tolerated_failure_count=saved["tolerated_failure_count"],
        tolerated_failure_percentage=saved["tolerated_failure_percentage"],
        label=None,
    )
    record.map_run_arn, record.map_state_machine_arn = saved["map_run_arn"], saved["map_state_machine_arn"]
    record.start_date, record.stop_date = saved["start_date"], saved["stop_date"]
    record.status = MapRunStatus(saved["status"])
    names = {"resultsWritten": "results_written", "timedOut": "timed_out"}
    for counter, counts in (
        (record.item_counter, saved["item_counts"]),
        (record.execution_counter, saved["execution_counts"]),
    ):
        for key, count in counts.items():
            getattr(counter, names.get(key, key)).offset(int(count))
    record.__dict__[map_runs.RESULTS_ATTRIBUTE] = [tuple(pair) for pair in saved["results"]]
    return record


def _worker_class() -> type:
    """The worker of a restored execution (built on first use: moto is imported lazily)."""
    global _RestoredWorker
    if _RestoredWorker is not None:
        return _RestoredWorker
    from moto.stepfunctions.parser.api import (
        ExecutionAbortedEventDetails,
        HistoryEventType,
        MapRunStatus,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    from longrun.local.stepfunctions import redrive

    class RestoredWorker(ExecutionWorker):
        """Holds a restored execution's environment (its history, Map Runs, program state); runs nothing.

        moto reads an execution's history, Map Runs and task tokens through its worker's
        environment, and a redrive continues that history; this worker gives them one without a
        program. Its :meth:`stop` does what moto's engine does when a stopped program returns.
        """

        def __init__(self, execution: Any, record: dict[str, Any]) -> None:
            super().__init__(**redrive.worker_arguments(execution, None))  # no logging: it runs nothing
            env = self._get_evaluation_environment()
            env.states.context_object.context_object_data["Execution"]["RedriveCount"] = record["redrive_count"]
            events = record["events"]
            last_id = max((int(event["id"]) for event in events), default=0)
            with env.event_manager._mutex:
                env.event_manager._history_event_list.extend(copy.deepcopy(events))
                env.event_manager._event_id_gen._next_id = last_id + 1
            env.event_history_context.source_event_id = last_id
            env.event_history_context.last_published_event_id = last_id
            env._program_state = _program_state(record)
            if record["entered"] is not None:
                env._longrun_entered = tuple(record["entered"])
            for saved in record["map_runs"]:
                env.map_run_record_pool_manager.add(_restored_map_run(saved))
            self.env = env
            self._stopping = threading.Lock()

        def start(self) -> None:
            raise RuntimeError("a restored execution has no program to run; redrive it")

        def stop(self, stop_date: Any, error: str | None, cause: str | None) -> None:
            env = self.env
            with self._stopping:
                if not env.is_running():
                    return  # it ended already: a stop changes nothing
                env.set_stop(stop_date=stop_date, cause=cause, error=error)
                # What moto's Program.eval adds once a stopped program returns.
                env.event_history_context.source_event_id = 0
                details = {k: v for k, v in (("error", error), ("cause", cause)) if v is not None}
                env.event_manager.add_event(
                    context=env.event_history_context,
                    event_type=HistoryEventType.ExecutionAborted,
                    event_details=EventDetails(executionAbortedEventDetails=ExecutionAbortedEventDetails(**details)),
                )
                for record in env.map_run_record_pool_manager.get_all():
                    if getattr(record.status, "value", record.status) == "RUNNING":
                        record.set_stop(MapRunStatus.ABORTED)
                self._execution_communication.terminated()  # ABORTED, announced (stepfunctions.patches)

    _RestoredWorker = RestoredWorker
    return RestoredWorker


_RestoredWorker: type | None = None
