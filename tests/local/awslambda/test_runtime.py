"""The local cloud's Lambda: warm worker processes that answer like Lambda's Invoke API."""

from __future__ import annotations

import json
import math
import os
import re
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from longrun.local.awslambda.runtime import FunctionSpec, LambdaRuntime

HANDLERS = textwrap.dedent(
    """
    import os


    def ok(e, c):
        return {"echo": e}


    def boom(e, c):
        raise ValueError("nope")


    def slow(e, c):
        import time
        time.sleep(5)


    def whoami(e, c):
        return {
            "pid": os.getpid(),
            "function": c.function_name,
            "memory": c.memory_limit_in_mb,
            "arn": c.invoked_function_arn,
            "remaining": c.get_remaining_time_in_millis(),
            "request": c.aws_request_id,
            "env": os.environ.get("GREETING"),
        }


    def chatty(e, c):
        print("a log line, not the answer")
        return "answer"
    """
)


@pytest.fixture
def code_dir(tmp_path: Path) -> Path:
    code = tmp_path / "code"
    code.mkdir()
    (code / "mod.py").write_text(HANDLERS)
    (code / "broken.py").write_text("import this_module_does_not_exist\n\ndef handler(e, c):\n    return 1\n")
    return code


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[LambdaRuntime]:
    rt = LambdaRuntime(base_env={"PATH": os.environ["PATH"], "AWS_REGION": "us-east-1"}, log_dir=tmp_path / "logs")
    yield rt
    rt.close()


def add(runtime: LambdaRuntime, code_dir: Path, handler: str, name: str | None = None, **kwargs) -> FunctionSpec:
    name = name or handler.replace(".", "-")
    spec = FunctionSpec(
        logical_id=name.title().replace("-", ""),
        name=name,
        arn=f"arn:aws:lambda:us-east-1:123456789012:function:{name}",
        handler=handler,
        code_dir=code_dir,
        timeout=kwargs.pop("timeout", 1.0),
        **kwargs,
    )
    runtime.add(spec)
    return spec


def test_ok_returns_the_payload(runtime, code_dir):
    add(runtime, code_dir, "mod.ok")
    outcome = runtime.invoke("mod-ok", {"hello": ["world", 1]})
    assert outcome.function_error is None
    assert json.loads(outcome.payload) == {"echo": {"hello": ["world", 1]}}


def test_a_function_is_found_by_name_arn_or_logical_id(runtime, code_dir):
    spec = add(runtime, code_dir, "mod.ok")
    for ref in (spec.name, spec.arn, spec.arn + ":$LATEST", spec.logical_id, spec.name + ":1"):
        assert json.loads(runtime.invoke(ref, 1).payload) == {"echo": 1}, ref
    with pytest.raises(KeyError):
        runtime.invoke("no-such-function", {})


def test_a_raising_handler_is_an_unhandled_error(runtime, code_dir):
    add(runtime, code_dir, "mod.boom")
    outcome = runtime.invoke("mod-boom", {})
    assert outcome.function_error == "Unhandled"
    payload = json.loads(outcome.payload)
    assert payload["errorType"] == "ValueError"
    assert payload["errorMessage"] == "nope"
    assert isinstance(payload["stackTrace"], list)
    # The environment survives a handled exception, as on Lambda.
    assert runtime.pool("mod-boom").cold_starts == 1
    assert runtime.invoke("mod-boom", {}).function_error == "Unhandled"
    assert runtime.pool("mod-boom").cold_starts == 1


def test_a_handler_past_its_timeout_is_killed(runtime, code_dir):
    add(runtime, code_dir, "mod.slow", name="slow")
    pool = runtime.pool("slow")
    pool.warm()  # measure the timeout, not the worker's start

    started = time.monotonic()
    outcome = runtime.invoke("slow", {})
    elapsed = time.monotonic() - started

    assert outcome.function_error == "Unhandled"
    payload = json.loads(outcome.payload)
    assert payload["errorType"] == "Sandbox.Timedout"
    assert "1.00 seconds" in payload["errorMessage"]
    assert 0.9 <= elapsed < 1.5
    assert pool.cold_starts == 1


def test_after_a_timeout_the_next_invocation_gets_a_fresh_worker(runtime, code_dir, tmp_path):
    # One module whose handler is slow only when asked to be.
    (code_dir / "maybe.py").write_text(
        "import os, time\n\ndef handler(e, c):\n    if e.get('sleep'):\n        time.sleep(e['sleep'])\n"
        "    return os.getpid()\n"
    )
    add(runtime, code_dir, "maybe.handler", name="maybe")
    first_pid = json.loads(runtime.invoke("maybe", {}).payload)
    assert json.loads(runtime.invoke("maybe", {"sleep": 5}).payload)["errorType"] == "Sandbox.Timedout"
    outcome = runtime.invoke("maybe", {})
    assert outcome.function_error is None
    new_pid = json.loads(outcome.payload)
    assert new_pid != first_pid
    assert runtime.pool("maybe").cold_starts == 2


def test_warm_invocations_reuse_one_process(runtime, code_dir):
    add(runtime, code_dir, "mod.whoami", name="who", environment={"GREETING": "hi"}, memory=512)
    first = json.loads(runtime.invoke("who", {}).payload)
    second = json.loads(runtime.invoke("who", {}).payload)
    pool = runtime.pool("who")
    assert pool.cold_starts == 1
    assert pool.invocations == 2
    assert first["pid"] == second["pid"]
    assert first["request"] != second["request"]
    assert first["function"] == "who"
    assert first["memory"] == 512
    assert first["arn"] == "arn:aws:lambda:us-east-1:123456789012:function:who"
    assert 0 < first["remaining"] <= 1000
    assert first["env"] == "hi"


def test_prints_go_to_the_log_not_the_answer(runtime, code_dir, tmp_path):
    add(runtime, code_dir, "mod.chatty", name="chatty")
    outcome = runtime.invoke("chatty", {})
    assert json.loads(outcome.payload) == "answer"
    runtime.close()
    assert "a log line, not the answer" in (tmp_path / "logs" / "chatty.log").read_text()


def test_a_module_that_fails_to_import(runtime, code_dir):
    add(runtime, code_dir, "broken.handler", name="broken")
    for _ in range(2):  # reported on every invocation, as Lambda does
        outcome = runtime.invoke("broken", {})
        assert outcome.function_error == "Unhandled"
        payload = json.loads(outcome.payload)
        assert payload["errorType"] == "Runtime.ImportModuleError"
        assert "this_module_does_not_exist" in payload["errorMessage"]


def test_a_missing_handler_function_is_an_import_error(runtime, code_dir):
    add(runtime, code_dir, "mod.not_there", name="missing")
    payload = json.loads(runtime.invoke("missing", {}).payload)
    assert payload["errorType"] == "Runtime.ImportModuleError"


REPORT = re.compile(
    r"^REPORT RequestId: (?P<id>[0-9a-f-]{36})\tDuration: (?P<duration>\d+\.\d\d) ms"
    r"\tBilled Duration: (?P<billed>\d+) ms"
    r"\tMemory Size: (?P<memory>\d+) MB\tMax Memory Used: (?P<used>\d+) MB(\tInit Duration: (?P<init>\d+\.\d\d) ms)?$"
)


def test_each_invocation_is_reported_as_lambda_reports_it(runtime, code_dir, tmp_path):
    """START, END and REPORT in the function's log, as Lambda writes them: what bench/costs.py bills from."""
    add(runtime, code_dir, "mod.ok", name="reported", memory=512)
    runtime.invoke("reported", {})  # a cold start: the environment starts for this invocation
    runtime.invoke("reported", {})  # warm
    lines = (tmp_path / "logs" / "reported.log").read_text().splitlines()
    reports = [REPORT.match(line) for line in lines if line.startswith("REPORT")]
    assert len(reports) == 2 and all(reports), lines
    starts = [line for line in lines if line.startswith("START RequestId: ")]
    ends = [line for line in lines if line.startswith("END RequestId: ")]
    assert [s.split()[2] for s in starts] == [e.split()[2] for e in ends] == [r["id"] for r in reports]
    cold, warm = reports
    assert cold["memory"] == warm["memory"] == "512"
    assert cold["init"] is not None and warm["init"] is None, "Init Duration only after a cold start"
    # Billed: rounded up to the millisecond, the INIT phase of a cold start included (billed since 1 August 2025).
    assert int(cold["billed"]) == math.ceil(float(cold["duration"]) + float(cold["init"]))
    assert int(warm["billed"]) == math.ceil(float(warm["duration"]))
    assert int(warm["used"]) > 0


def test_a_warmed_environment_reports_no_init(runtime, code_dir, tmp_path):
    add(runtime, code_dir, "mod.ok", name="warmed")
    runtime.pool("warmed").warm()
    runtime.invoke("warmed", {})
    lines = (tmp_path / "logs" / "warmed.log").read_text().splitlines()
    (report,) = [line for line in lines if line.startswith("REPORT")]
    assert "Init Duration" not in report
