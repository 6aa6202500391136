"""``longrun ops`` pieces that need no cloud: durations, and a history folded into a timeline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from longrun.ops import parse_since, timeline


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("15m", 900), ("1h", 3600), ("2d", 172800)])
def test_since_durations(text: str, seconds: int) -> None:
    assert parse_since(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "1", "1w", "-1h", "h", "1.5h", "1h30m"])
def test_since_refuses_what_it_cannot_read(text: str) -> None:
    with pytest.raises(ValueError):
        parse_since(text)


def test_a_lambda_retried_then_caught_is_one_row_with_its_attempts_and_errors() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)

    def at(ms: int) -> datetime:
        return t0 + timedelta(milliseconds=ms)

    events = [
        {"type": "ExecutionStarted", "timestamp": at(0)},
        {"type": "TaskStateEntered", "timestamp": at(1), "stateEnteredEventDetails": {"name": "Clone"}},
        {"type": "LambdaFunctionScheduled", "timestamp": at(2)},
        {"type": "LambdaFunctionFailed", "timestamp": at(50),
         "lambdaFunctionFailedEventDetails": {"error": "TransientError", "cause": '{"errorMessage": "throttled"}'}},
        {"type": "LambdaFunctionScheduled", "timestamp": at(1050)},
        {"type": "LambdaFunctionFailed", "timestamp": at(1100),
         "lambdaFunctionFailedEventDetails": {"error": "GitFailed", "cause": "not json"}},
        {"type": "TaskStateExited", "timestamp": at(1101), "stateExitedEventDetails": {"name": "Clone"}},
        {"type": "FailStateEntered", "timestamp": at(1102), "stateEnteredEventDetails": {"name": "JobFailed"}},
        {"type": "ExecutionFailed", "timestamp": at(1103),
         "executionFailedEventDetails": {"error": "JobFailed", "cause": "see the job"}},
    ]  # fmt: skip
    found = timeline("arn:x", events)
    assert found.status == "FAILED" and found.error == "JobFailed"
    clone, failed = found.states
    assert (clone.attempts, clone.retries, clone.outcome) == (2, 1, "caught")
    assert clone.errors == [
        {"error": "TransientError", "cause": "throttled"},
        {"error": "GitFailed", "cause": "not json"},
    ]
    assert failed.outcome == "failed" and failed.exited == at(1103)
    assert found.as_json()["states"][0]["durationMs"] == 1100
