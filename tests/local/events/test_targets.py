"""The local cloud's EventBridge additions: what a Lambda or state-machine target receives, and when schedules fire."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from longrun.local.events import targets as event_targets

EVENT = {
    "version": "0", "id": "e-1", "detail-type": "Ping", "source": "com.example", "account": "123456789012",
    "time": 1795680000.0, "region": "us-east-1", "resources": [], "detail": {"n": 7, "who": {"name": "ada"}},
    "ingestion-time": 1795680000.5,
}  # fmt: skip


def test_a_target_without_input_settings_receives_the_event_as_eventbridge_sends_it():
    sent = json.loads(event_targets.payload({"Id": "t", "Arn": "arn:aws:lambda:us-east-1:1:function:f"}, EVENT))
    assert sent["detail"] == EVENT["detail"] and sent["time"] == "2026-11-26T08:00:00Z"
    assert "ingestion-time" not in sent


def test_input_input_path_and_input_transformer_shape_what_the_target_receives():
    arn = "arn:aws:states:us-east-1:1:stateMachine:m"
    assert event_targets.payload({"Id": "t", "Arn": arn, "Input": '{"fixed": true}'}, EVENT) == '{"fixed": true}'
    assert json.loads(event_targets.payload({"Id": "t", "Arn": arn, "InputPath": "$.detail.who"}, EVENT)) == {
        "name": "ada"
    }
    transformer = {"InputPathsMap": {"n": "$.detail.n", "name": "$.detail.who.name"},
                   "InputTemplate": '{"count": <n>, "hello": "<name>"}'}  # fmt: skip
    shaped = event_targets.payload({"Id": "t", "Arn": arn, "InputTransformer": transformer}, EVENT)
    assert json.loads(shaped) == {"count": 7, "hello": "ada"}


def test_only_lambda_and_state_machine_targets_are_the_local_clouds_to_deliver():
    assert event_targets.is_ours({"Arn": "arn:aws:lambda:us-east-1:1:function:f"})
    assert event_targets.is_ours({"Arn": "arn:aws:states:us-east-1:1:stateMachine:m"})
    assert not event_targets.is_ours({"Arn": "arn:aws:sqs:us-east-1:1:q"})


# --- schedules ----------------------------------------------------------------------------------

T0 = datetime(2026, 11, 26, 8, 0, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("rate(1 minute)", T0, T0 + timedelta(minutes=1)),
        ("rate(5 minutes)", T0 + timedelta(minutes=7), T0 + timedelta(minutes=10)),
        ("rate(2 hours)", T0, T0 + timedelta(hours=2)),
        ("rate(1 day)", T0 + timedelta(hours=1), T0 + timedelta(days=1)),
        ("cron(0/15 * * * ? *)", T0, datetime(2026, 11, 26, 8, 15, tzinfo=UTC)),
        ("cron(0 10 ? * MON-FRI *)", T0, datetime(2026, 11, 26, 10, 0, tzinfo=UTC)),  # a Thursday
        ("cron(0 0 L * ? *)", T0, datetime(2026, 11, 30, 0, 0, tzinfo=UTC)),
    ],
)
def test_when_a_schedule_fires_next(expression, after, expected):
    assert event_targets.next_fire(expression, after, first_seen=T0) == expected


@pytest.mark.parametrize("expression", ["rate(0 minutes)", "rate(5 weeks)", "every 5 minutes", "cron(bad)"])
def test_a_malformed_schedule_is_refused(expression):
    with pytest.raises(Exception):  # noqa: B017 - ValueError from us, aws_croniter's own for a bad cron
        event_targets.next_fire(expression, T0, first_seen=T0)


def _rule(expression: str, state: str = "ENABLED") -> Any:
    return SimpleNamespace(
        arn=f"arn:aws:events:us-east-1:123456789012:rule/{expression}", scheduled_expression=expression, state=state,
        account_id="123456789012", region_name="us-east-1", targets=[],
    )  # fmt: skip


def test_the_scheduler_fires_a_rate_rule_once_a_period_from_when_it_first_saw_it(monkeypatch):
    fired: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(event_targets, "_send", lambda rule, event, original: fired.append((rule.arn, event)))
    scheduler = object.__new__(event_targets.Scheduler)  # no thread: the test drives the clock
    scheduler.original, scheduler.due = None, {}
    rules = [_rule("rate(1 minute)"), _rule("rate(2 minutes)", state="DISABLED")]
    monkeypatch.setattr(scheduler, "_rules", lambda: rules)
    for second in range(0, 5 * 60 + 1, 1):
        scheduler.fire_due(T0 + timedelta(seconds=second))
    assert [arn.rsplit("/", 1)[1] for arn, _ in fired] == ["rate(1 minute)"] * 5, "a disabled rule never fires"
    event = fired[0][1]
    assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"
    assert event["resources"] == [rules[0].arn] and event["detail"] == {}
    assert event["time"] == (T0 + timedelta(minutes=1)).timestamp()
