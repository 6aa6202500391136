"""The build workflow's errors: what Prepare raises and what the build worker answers, by Step Functions name.

The worker answers the Run task with ``SendTaskFailure(error=<Class>.__name__)``
(:mod:`workers.build.worker`): those classes are never raised, only named, so that the name the
worker sends and the name ``build.asl.json`` catches are one definition. ``BuildQueueTimeout`` and
``WorkerLost`` are named by the machine itself (its QueueTimedOut and WorkersLost states), for the
engine's ``States.Timeout``/``States.HeartbeatTimeout``. The errors that are the
job's answer go through NotifyFailure or NotifyTimedOut; ``BuildError`` is left uncaught on purpose
(:data:`ENDS_EXECUTION`).
"""

from __future__ import annotations

MACHINES = ("build",)
# Workers that answer this workflow's callback tasks: Run (its token handed over by
# aws-sdk:dynamodb:putItem.waitForTaskToken) with success or the failures below.
WORKERS = ("workers.build",)
# Callback states whose token a worker only claims (SendTaskSuccess), never fails: Queue's
# (sqs:sendMessage.waitForTaskToken). The errors the worker sends are Run's to catch.
CLAIMED_ONLY = ("Queue",)


class WorkspaceNotFound(Exception):
    """The project has no workspace on the file system (its create-project or clone did not finish)."""


class NoBuildCommand(Exception):
    """Neither the job nor the project's longrun.json names a build command."""


class InvalidProjectFile(Exception):
    """The project's longrun.json is not what a build can use."""


class BuildFailed(Exception):
    """Sent by the worker: the build command exited non-zero (the code in ``details[0].exitCode``)."""


class BuildTimedOut(Exception):
    """Sent by the worker: the build ran past its ``timeoutSeconds`` and its process group was stopped."""


class TooManyArtifacts(Exception):
    """The artifact globs match more files or bytes than one build may upload."""


class BuildQueueTimeout(Exception):
    """No worker claimed the build within the deployment's ``BuildQueueTimeoutSeconds``; its message expired."""


class WorkerLost(Exception):
    """Three workers in a row stopped heartbeating on the build (their containers stopped)."""


class BuildError(Exception):
    """Sent by the worker: it could not run or finish the build (AWS refused a call, an artifact changed)."""


ERRORS: tuple[type[Exception], ...] = (
    WorkspaceNotFound,
    NoBuildCommand,
    InvalidProjectFile,
    BuildFailed,
    BuildTimedOut,
    TooManyArtifacts,
    BuildQueueTimeout,
    WorkerLost,
    BuildError,
)

ENDS_EXECUTION: dict[type[Exception], str] = {
    BuildError: "the worker, not the build, failed: the job ends FAILED at Run and POST /jobs/{id}/retry "
    "redrives Run, whose token no worker holds: after one heartbeat timeout the build is queued again",
}
