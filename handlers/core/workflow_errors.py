"""The errors every workflow shares, and the error names AWS gives that a workflow may name.

A step error is an exception class whose *class name* is the error name Step Functions sees: Lambda
reports a function's uncaught exception as ``errorType`` = the class name, and a build worker sends
``SendTaskFailure(error=<Class>.__name__)``. So a ``Catch`` or ``Retry`` names a class, and renaming a
class without its ``ErrorEquals`` would silently stop the catch. To keep the two together, each
workflow has one catalogue (``steps/<kind>/errors.py``) that defines the classes its steps raise and
says which of them end the execution on purpose; this module holds the ones every workflow shares.
``tests/infra/test_error_catalogues.py`` holds every ``ErrorEquals`` name to a class of the machine's
catalogue (or this one, or :data:`LAMBDA_SERVICE_ERRORS`), and every class a step raises to a
``Catch``/``Retry`` of its state or to its catalogue's ``ENDS_EXECUTION``.

A catalogue module declares:

- ``MACHINES``: the state machines it serves (``statemachines/<name>.asl.json``);
- ``ERRORS``: every error class of the workflow (defined there, or shared from here);
- ``ENDS_EXECUTION``: class -> why, for errors no ``Catch`` takes on purpose: the execution fails at
  the work state, the execution-status trigger closes the job ``FAILED`` with the class name as its
  ``error.code``, and ``POST /jobs/{id}/retry`` may redrive it (:mod:`core.retries`);
- ``WORKERS`` (optional): packages of workers that answer the workflow's callback tasks.
"""

from __future__ import annotations

import json
from typing import Any

from core.errors import ProjectBusy


class StepErrorWithDetails(Exception):
    """A step error that carries ``details`` for the user (a merge's conflicting paths).

    Lambda reports only ``errorType`` and ``errorMessage``, so the message is JSON
    ``{"message", "details"}``; the notify step unpacks it into the job's ``error``.
    """

    def __init__(self, message: str, details: list[dict[str, Any]]) -> None:
        super().__init__(json.dumps({"message": message, "details": details}))
        self.message = message
        self.details = details


class TransientError(Exception):
    """A failure worth retrying (an AWS throttle past the SDK's own retries): retry policy ``LambdaTransient``."""


class LockLost(Exception):
    """The job no longer holds its project's lock (cancelled, or lapsed): it must not touch the workspace."""


# ``ProjectBusy`` is one class (core.errors): another job holds the project. The API answers it as
# 409 ``ProjectBusy``; a step that finds the lock taken (core.locks.hold, a sync queued past its
# hour) raises the same class, so the job ends with the same code and meaning.
ERRORS: tuple[type[Exception], ...] = (TransientError, ProjectBusy, LockLost)

# The shared modules that raise these into the steps that import them (steps/ code raises the rest
# itself): the error catalogue test counts them as raised by every state whose code imports them.
RAISED_BY_CORE: dict[str, tuple[str, ...]] = {
    "core.locks": ("ProjectBusy", "LockLost"),
    "core.steps": ("TransientError",),
    "core.publisher": ("TransientError",),
}

# The names Step Functions gives a Lambda invoke that the Lambda service refused or failed
# (https://docs.aws.amazon.com/step-functions/latest/dg/bp-lambda-serviceexception.html): no class
# of ours, but a Retry may name them.
LAMBDA_SERVICE_ERRORS = frozenset(
    {
        "Lambda.ClientExecutionTimeoutException",
        "Lambda.ServiceException",
        "Lambda.AWSLambdaException",
        "Lambda.SdkClientException",
        "Lambda.TooManyRequestsException",
    }
)

# The names Step Functions gives a service integration's own call that AWS refused or failed: the
# optimized SQS integration's, and an AWS SDK integration's ServiceName.ErrorName with the Exception
# suffix (https://docs.aws.amazon.com/step-functions/latest/dg/supported-services-awssdk.html). No
# class of ours; the Handover retry policy names them (build's Queue and Run).
SDK_SERVICE_ERRORS = frozenset(
    {
        "SQS.SdkClientException",
        "SQS.AmazonSQSException",
        "DynamoDb.ProvisionedThroughputExceededException",
        "DynamoDb.ThrottlingException",
        "DynamoDb.RequestLimitExceededException",
        "DynamoDb.InternalServerErrorException",
    }
)

# The ``Error`` of the workflows' Fail states (statemachines/notify-states.json): the workflow caught
# the failure and told the user, so a redrive would only meet it again (core.retries refuses it).
FAIL_STATE_ERRORS = frozenset({"JobFailed", "JobTimedOut"})
