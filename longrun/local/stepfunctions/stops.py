"""``StopExecution`` with its ``error`` and ``cause``, as Step Functions keeps them.

On AWS, ``StopExecution`` takes an optional ``error`` (up to 256 characters) and ``cause`` (up to
32768) "of the failure" (https://docs.aws.amazon.com/step-functions/latest/apireference/API_StopExecution.html);
the execution ends ``ABORTED``, its ``ExecutionAborted`` history event carries both
(https://docs.aws.amazon.com/step-functions/latest/apireference/API_ExecutionAbortedEventDetails.html),
and so do ``DescribeExecution`` and the "Execution Status Change" event, whose detail "provides
the same information as the DescribeExecution API"
(https://docs.aws.amazon.com/step-functions/latest/dg/cw-events.html). Whoever reads why an
execution was stopped (the execution-status trigger, the job sweeper, ``longrun ops history``)
reads them there.

moto's handler drops both (its backend stops every execution with ``error=""`` and ``cause=""``),
and its engine sets no ``error``/``cause`` on an execution that ends ``ABORTED``. Here the
request's pair reaches the engine (:func:`stop_carries_its_error_and_cause`), and an execution
that ends stopped keeps the pair and the stop's own date (:func:`aborted_keeps_the_stop`).
"""

from __future__ import annotations

import datetime
from typing import Any

ERROR_MAX, CAUSE_MAX = 256, 32768


def stop_carries_its_error_and_cause() -> None:
    """moto's ``StopExecution`` handler passes the request's ``error`` and ``cause`` to the execution."""
    from moto.core.exceptions import AWSError
    from moto.core.responses import ActionResult
    from moto.stepfunctions.responses import StepFunctionResponse

    original = StepFunctionResponse.stop_execution

    def stop_execution(self: Any) -> Any:
        arn, error, cause = self._get_param("executionArn"), self._get_param("error"), self._get_param("cause")
        for name, value, most in (("error", error, ERROR_MAX), ("cause", cause, CAUSE_MAX)):
            if value is not None and len(value) > most:
                message = f"1 validation error detected: Value at '{name}' failed to satisfy constraint: "
                raise AWSError(message + f"Member must have length less than or equal to {most}", "ValidationException")
        execution = self.stepfunction_backend.describe_execution(arn)  # InvalidArn, ExecutionDoesNotExist
        if not hasattr(execution, "exec_worker"):  # moto's backend that runs nothing
            return original(self)
        stopped_at = datetime.datetime.now(tz=datetime.UTC)
        execution.stop(stop_date=stopped_at, error=error, cause=cause)
        return ActionResult({"stopDate": execution.stop_date or stopped_at})

    StepFunctionResponse.stop_execution = stop_execution


def aborted_keeps_the_stop() -> None:
    """An execution that ends ``ABORTED`` keeps its stop's ``error``, ``cause`` and date."""
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication

    reflect = BaseExecutionWorkerCommunication._reflect_execution_status

    def _reflect_execution_status(self: Any) -> None:
        state = self.execution.exec_worker.env.program_state()
        reflect(self)
        if isinstance(state, ProgramStopped):
            self.execution.error, self.execution.cause = state.error, state.cause
            if isinstance(state.stop_date, datetime.datetime):
                self.execution.stop_date = state.stop_date

    BaseExecutionWorkerCommunication._reflect_execution_status = _reflect_execution_status


def apply() -> None:
    """Both, declared as one patch in :mod:`longrun.local.stepfunctions.patches`."""
    stop_carries_its_error_and_cause()
    aborted_keeps_the_stop()
