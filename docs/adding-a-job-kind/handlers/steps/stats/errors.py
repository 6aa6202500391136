"""The project-stats workflow's errors: every class its steps raise, by its Step Functions name.

Lambda reports a raised exception's class name as ``errorType``, which is the name the state
machine's ``Catch`` and ``Retry`` match (``ErrorEquals``) and the job's ``error.code`` the user reads.
``tests/infra/test_error_catalogues.py`` holds ``project_stats.asl.json`` to this catalogue: every
name it catches is a class here (or a shared one, :mod:`core.workflow_errors`), and every class a
step raises is caught or listed in :data:`ENDS_EXECUTION`.
"""

from __future__ import annotations

MACHINES = ("project_stats",)


class TooManyFiles(Exception):
    """The project holds more files than the job's ``maxFiles``: the count stops there."""


ERRORS: tuple[type[Exception], ...] = (TooManyFiles,)

# Nothing of ours ends the execution uncaught: TooManyFiles goes to NotifyFailure.
ENDS_EXECUTION: dict[type[Exception], str] = {}
