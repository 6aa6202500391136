"""A Distributed Map's Map Run in the local cloud's moto engine, as Step Functions runs it.

moto 5.2.5 runs a Distributed Map's children but leaves out two things AWS does, both of which
the sync workflow relies on:

* **The tolerated failure threshold.** On AWS a Map Run fails with
  ``States.ExceedToleratedFailureThreshold`` once more of its children failed (or timed out) than
  ``ToleratedFailureCount`` / ``ToleratedFailurePercentage`` allow; with neither given it tolerates
  none ("The default percentage value is zero, which means that the workflow fails if any one of
  its child workflow executions fails or times out",
  https://docs.aws.amazon.com/step-functions/latest/dg/maprun-fail-threshold.html). moto evaluates
  both fields and never compares them with anything: a child that failed was counted and the Map
  state succeeded, so a sync that lost a batch was reported done. Here the Map Run fails as on AWS
  (:func:`map_runs_fail_past_their_threshold`).
* **The ResultWriter's results.** On AWS a ResultWriter puts every child's result in S3 under
  ``<Prefix>/<map run id>/``: ``SUCCEEDED_0.json``, ``FAILED_0.json`` (JSON arrays of the child
  executions: ARN, input, output or ``Error`` and ``Cause``, status, dates) and a
  ``manifest.json`` that lists them by status; the Map state's output is the Map Run's ARN and
  the manifest's place (``ResultWriterDetails``), also when the Map Run failed
  (https://docs.aws.amazon.com/step-functions/latest/dg/input-output-resultwriter.html). moto
  writes only the manifest, its ``ResultFiles`` empty ("TODO: generate result files"), and
  nothing when the Map Run fails; and it evaluated the ResultWriter's ``Parameters`` paths
  (``"Prefix.$"``) against the children's outputs instead of the state's input. Here the result
  files are written and listed, also for a Map Run that failed past its threshold, and the paths
  read the state's input (:func:`result_writer_writes_the_results`).

What still differs (documented, not hidden): the children are not executions of their own
(``ListExecutions`` does not list them; their ARNs in the results are made up the way AWS's
look), every result file holds all the children of its status (AWS starts a new one every 5 GB),
and ``WriterConfig`` (``Transformation``, ``OutputType``) is not applied: results are written as
``NONE`` and ``JSON``, the defaults when results are exported.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import Any

THRESHOLD_ERROR = "States.ExceedToleratedFailureThreshold"
THRESHOLD_CAUSE = "The specified tolerated failure threshold was exceeded"
_RESULTS = "_longrun_results"  # on a MapRunRecord: one record per child, as the ResultWriter writes it
RESULTS_ATTRIBUTE = _RESULTS  # what persistence restores a Map Run's children into
_DECLARED = "_longrun_tolerance_declared"  # on a distributed iteration component: (count, percentage) given
_LOCK = threading.Lock()


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def exceeds_threshold(
    failed: int, total: int, count: int, percentage: float, count_declared: bool, percentage_declared: bool
) -> bool:
    """Whether ``failed`` of ``total`` children fail the Map Run (either declared bound; 0 % when neither is)."""
    if failed <= 0:
        return False
    over_count = failed > count
    over_percentage = total > 0 and failed * 100.0 / total > percentage
    if not count_declared and not percentage_declared:
        return True
    return (count_declared and over_count) or (percentage_declared and over_percentage)


def _child_record(record: Any, job: Any, started: str, state: Any, output: Any) -> dict[str, Any]:
    """One child as AWS's results files list it (``Transformation: NONE``)."""
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramError, ProgramStopped, ProgramTimedOut

    run_id = record.map_run_arn.rsplit(":", 1)[-1]
    base = record.map_run_arn.split(":mapRun:", 1)
    arn = f"{base[0]}:execution:{base[1].rsplit(':', 1)[0]}:{run_id[:8]}-{job.job_index:06d}"
    child: dict[str, Any] = {
        "ExecutionArn": arn,
        "Input": json.dumps(job.job_input, separators=(",", ":")),
        "InputDetails": {"Included": True},
        "Name": arn.rsplit(":", 1)[-1],
        "StartDate": started,
        "StateMachineArn": record.map_state_machine_arn,
        "StopDate": _now(),
    }
    if isinstance(state, ProgramError):
        error = state.error or {}
        child.update(Status="FAILED", Error=error.get("error") or "", Cause=error.get("cause") or "")
    elif isinstance(state, ProgramTimedOut):
        child.update(Status="TIMED_OUT", Error="States.Timeout", Cause="")
    elif isinstance(state, ProgramStopped):
        child.update(Status="ABORTED")
    elif output is None:
        child.update(Status="FAILED", Error="States.Runtime", Cause="the child execution failed")
    else:
        child.update(
            Status="SUCCEEDED", Output=json.dumps(output, separators=(",", ":")), OutputDetails={"Included": True}
        )
    return child


def children_are_recorded() -> None:
    """Each child's outcome is kept on its Map Run (moto keeps only counts), for the threshold and the results."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor import (
        distributed_item_processor_worker as workers,
    )

    worker_class = workers.DistributedItemProcessorWorker
    original = worker_class._eval_job

    def eval_job(self: Any, env: Any, job: Any) -> None:
        started = _now()
        try:
            original(self, env=env, job=job)
        finally:
            child = _child_record(self._map_run_record, job, started, env.program_state(), job.job_output)
            with _LOCK:
                self._map_run_record.__dict__.setdefault(_RESULTS, []).append((job.job_index, child))

    worker_class._eval_job = eval_job  # type: ignore[method-assign]


def results_of(record: Any) -> list[dict[str, Any]]:
    """The Map Run's children so far, in item order."""
    with _LOCK:
        return [child for _, child in sorted(record.__dict__.get(_RESULTS, []), key=lambda pair: pair[0])]


def map_runs_fail_past_their_threshold() -> None:
    from moto.stepfunctions.parser.api import HistoryEventType, MapRunFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map import state_map
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import (
        distributed_iteration_component as distributed,
    )
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.tolerated_failure import (
        ToleratedFailureCountDecl,
        ToleratedFailurePercentageDecl,
    )
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    component_class = distributed.DistributedIterationComponent
    original_map_run = component_class._map_run
    original_props = state_map.StateMap.from_state_props

    def from_state_props(self: Any, state_props: Any) -> None:
        original_props(self, state_props)
        declared = (
            state_props.get(ToleratedFailureCountDecl) is not None,
            state_props.get(ToleratedFailurePercentageDecl) is not None,
        )
        setattr(self.iteration_component, _DECLARED, declared)  # what AWS's defaults depend on

    def map_run(self: Any, env: Any, eval_input: Any) -> None:
        original_map_run(self, env=env, eval_input=eval_input)
        children = results_of(eval_input.map_run_record)
        failed = sum(1 for c in children if c["Status"] in ("FAILED", "TIMED_OUT"))
        count_declared, percentage_declared = getattr(self, _DECLARED, (False, False))
        if exceeds_threshold(
            failed, len(children), int(eval_input.tolerated_failure_count),
            float(eval_input.tolerated_failure_percentage), count_declared, percentage_declared,
        ):  # fmt: skip
            env.stack.pop()  # the children's outputs: the Map state fails instead
            raise FailureEventException(
                FailureEvent(
                    env=env,
                    error_name=StatesErrorName(typ=StatesErrorNameType.StatesExceedToleratedFailureThreshold),
                    event_type=HistoryEventType.MapRunFailed,
                    event_details=EventDetails(
                        mapRunFailedEventDetails=MapRunFailedEventDetails(error=THRESHOLD_ERROR, cause=THRESHOLD_CAUSE)
                    ),
                )
            )

    component_class._map_run = map_run  # type: ignore[method-assign]
    state_map.StateMap.from_state_props = from_state_props  # type: ignore[method-assign]


def result_writer_writes_the_results() -> None:
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEventException
    from moto.stepfunctions.parser.asl.component.state.exec.state_map import state_map
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer import result_writer_decl
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.resource_eval import (
        resource_eval_s3,
    )

    writer_class = resource_eval_s3.ResourceEvalS3

    def eval_body(self: Any, env: Any) -> None:
        results = env.stack.pop()
        env.stack.append(env.states.get_input())  # "Prefix.$" reads the Map state's input, as on AWS
        self.parargs.eval(env=env)
        parameters = env.stack.pop()
        env.stack.pop()
        env.stack.extend([results, parameters])
        self.resource_eval.eval_resource(env=env)

    def handle_put_object(env: Any, resource_runtime_part: Any, state_credentials: Any) -> None:
        parameters = env.stack.pop()
        env.stack.pop()  # the children's outputs: the results below hold them
        s3 = writer_class._get_s3_client(resource_runtime_part, state_credentials)
        record = env.map_run_record_pool_manager.get_all()[-1]
        prefix = parameters.get("Prefix") or ""
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        base = f"{prefix}{record.map_run_arn.rsplit(':', 1)[-1]}/"
        files: dict[str, list[dict[str, Any]]] = {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
        children = results_of(record)
        for status in files:
            written = [c for c in children if (c["Status"] if c["Status"] in files else "FAILED") == status]
            if written:
                body = json.dumps(written).encode()
                key = f"{base}{status}_0.json"
                s3.put_object(Bucket=parameters["Bucket"], Key=key, Body=body)
                files[status].append({"Key": key, "Size": len(body)})
        manifest = {"DestinationBucket": parameters["Bucket"], "MapRunArn": record.map_run_arn, "ResultFiles": files}
        key = f"{base}manifest.json"
        s3.put_object(Bucket=parameters["Bucket"], Key=key, Body=json.dumps(manifest, indent=2).encode())
        env.stack.append(
            {"MapRunArn": record.map_run_arn, "ResultWriterDetails": {"Bucket": parameters["Bucket"], "Key": key}}
        )

    original_execution = state_map.StateMap._eval_execution

    def eval_execution(self: Any, env: Any) -> None:
        try:
            original_execution(self, env)
        except FailureEventException as e:
            pair = e.extract_error_cause_pair() or (None, None)
            if self.result_writer is not None and pair[0] == THRESHOLD_ERROR:
                env.stack.append(None)  # where the children's outputs would be
                self.result_writer.eval(env)  # AWS writes a failed Map Run's results too
                env.stack.pop()
            raise

    writer_class._handle_put_object = staticmethod(handle_put_object)  # type: ignore[method-assign]
    result_writer_decl.ResultWriter._eval_body = eval_body  # type: ignore[method-assign]
    state_map.StateMap._eval_execution = eval_execution  # type: ignore[method-assign]
