"""One warm Lambda execution environment: imports a handler once, then runs invocations in turn.

Started by :mod:`longrun.local.awslambda.runtime` with the function's environment. Requests arrive
as JSON lines on stdin; answers go back as JSON lines on the file descriptor named by
``LONGRUN_RESULT_FD``, so that whatever the handler prints (its logs) stays on stdout/stderr.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from typing import Any


class Context:
    """The subset of Lambda's context object that handlers and Powertools read."""

    def __init__(self, request_id: str, deadline_ms: int) -> None:
        self.aws_request_id = request_id
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        region, account = os.environ["AWS_REGION"], os.environ.get("LONGRUN_ACCOUNT_ID", "123456789012")
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{account}:function:{self.function_name}"
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = f"local/{os.getpid()}"
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def _load(handler: str) -> Any:
    module_name, _, function = handler.rpartition(".")
    return getattr(importlib.import_module(module_name.replace("/", ".")), function)


def _error(e: BaseException) -> dict[str, Any]:
    return {
        "errorMessage": str(e),
        "errorType": type(e).__name__,
        "stackTrace": traceback.format_tb(e.__traceback__),
    }


def main() -> None:
    out = os.fdopen(int(os.environ["LONGRUN_RESULT_FD"]), "w", buffering=1)
    sys.path.insert(0, os.environ["LAMBDA_TASK_ROOT"])
    try:
        fn = _load(os.environ["_HANDLER"])
        init_error = None
    except Exception as e:  # Lambda reports an init failure on every invocation
        fn, init_error = None, _error(e)
        init_error["errorType"] = "Runtime.ImportModuleError"
    out.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        if init_error:
            out.write(json.dumps({"id": request["id"], "error": init_error}) + "\n")
            continue
        try:
            payload = fn(request["event"], Context(request["id"], request["deadline_ms"]))
            answer = {"id": request["id"], "payload": payload}
            text = json.dumps(answer, default=str)
        except Exception as e:
            text = json.dumps({"id": request["id"], "error": _error(e)})
        sys.stdout.flush()
        sys.stderr.flush()
        out.write(text + "\n")


if __name__ == "__main__":
    main()
