"""Errors with the contract's codes.

``ApiError`` subclasses become ``{"error": {"code", "message", "details"?}}`` bodies at the REST edge.
The workflows' step errors (whose class name is the error name Step Functions sees) are in their
catalogues: :mod:`core.workflow_errors` and ``steps/<kind>/errors.py``.
"""

from __future__ import annotations

import json
from typing import Any


class ApiError(Exception):
    status = 500
    code = "InternalError"

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None, headers: dict | None = None):
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = self.details
        return {"error": error}


class ValidationError(ApiError):
    status = 400
    code = "ValidationError"


class Unauthorized(ApiError):
    status = 401
    code = "Unauthorized"


class NotFound(ApiError):
    status = 404
    code = "NotFound"


class Conflict(ApiError):
    status = 409
    code = "Conflict"


class ProjectBusy(ApiError):
    """Another job holds the project (its lock, :mod:`core.locks`).

    One class for one meaning: the API answers it as 409 (``details`` names the job that holds the
    project), and a workflow step that finds the lock taken raises it too, so the job ends with
    the same ``error.code`` (Step Functions sees the class name; :mod:`core.workflow_errors`).
    """

    status = 409
    code = "ProjectBusy"


class PayloadTooLarge(ApiError):
    status = 413
    code = "PayloadTooLarge"


class Throttled(ApiError):
    status = 429
    code = "Throttled"


class ServiceUnavailable(ApiError):
    status = 503
    code = "ServiceUnavailable"


# --- what the user reads of a step's error ----------------------------------------------------


def user_error(caught: dict[str, Any] | None) -> dict[str, Any]:
    """A Step Functions ``Catch`` result (``Error``, ``Cause``) as the contract's ``{code, message}``.

    A Lambda's cause is its error payload (``errorMessage``, ``errorType``, ``stackTrace``): the
    user gets the message, never the stack trace, and the ``details`` of a
    ``StepErrorWithDetails`` (whose message is ``{"message", "details"}``) or of a build worker's
    ``SendTaskFailure`` (whose cause is ``{"errorMessage", "details"}``).
    """
    caught = caught or {}
    code = caught.get("Error") or "Failed"
    cause = caught.get("Cause") or ""
    message = cause
    details = None
    try:
        payload = json.loads(cause)
        if isinstance(payload, dict):
            message = payload.get("errorMessage") or payload.get("message") or code
            if isinstance(payload.get("details"), list):  # a worker's SendTaskFailure (builds)
                details = payload["details"]
        inner = json.loads(message) if isinstance(message, str) and message.startswith("{") else None
        if isinstance(inner, dict) and "message" in inner and isinstance(inner.get("details"), list):
            message, details = inner["message"], inner["details"]
    except ValueError:
        pass
    error: dict[str, Any] = {"code": code, "message": str(message)[:1000] or code}
    if details:
        error["details"] = details[:200]
    return error
