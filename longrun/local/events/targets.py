"""EventBridge as the local cloud needs it: rules deliver to Lambda functions and state machines, and schedules fire.

moto's EventBridge delivers a matching event to SQS, CloudWatch Logs, another bus or an API
destination; a rule whose target is a Lambda function or a state machine makes its ``PutEvents``
fail with a 500, and rules with a ``ScheduleExpression`` never fire (worse, moto treats a
schedule rule's empty pattern as "match everything" and delivers every event put on its bus to
it). Installed in the local cloud's AWS endpoint process, this module:

* delivers to ``arn:aws:lambda:…:function:NAME`` targets with an asynchronous ``Invoke`` and to
  ``arn:aws:states:…:stateMachine:NAME`` targets with a ``StartExecution``, after the target's
  ``Input``, ``InputPath`` or ``InputTransformer``, from a thread of its own (EventBridge delivers
  asynchronously; ``PutEvents`` never waits for a target). A target that still fails after a few
  attempts goes to its ``DeadLetterConfig`` queue with EventBridge's error attributes, or is
  logged;
* fires ``rate(…)`` and ``cron(…)`` rules: a ``Scheduled Event`` to every target, the first one
  period after the rule is first seen for a rate, at each occurrence of a cron (UTC);
* leaves schedule rules out of ``PutEvents`` delivery, and delivers nothing for a ``DISABLED``
  rule, as on AWS (moto delivers to both).
"""

from __future__ import annotations

import copy
import datetime
import json
import logging
import os
import queue
import re
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("longrun.local.event_targets")

DELIVERY_ATTEMPTS = 3
_RATE = re.compile(r"^rate\((?P<value>[1-9][0-9]*) (?P<unit>minute|minutes|hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\((?P<fields>[^)]+)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def _service(arn: str) -> str:
    parts = arn.split(":")
    return parts[2] if len(parts) > 2 else ""


def is_ours(target: dict[str, Any]) -> bool:
    """A target moto cannot deliver to and this module does."""
    return _service(target["Arn"]) in ("lambda", "states")


def _iso(moment: Any) -> str:
    if isinstance(moment, int | float):
        moment = datetime.datetime.fromtimestamp(float(moment), datetime.UTC)
    if isinstance(moment, datetime.datetime):
        return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(moment)


def payload(target: dict[str, Any], event: dict[str, Any]) -> str:
    """What the target receives, as EventBridge computes it: Input, InputPath, InputTransformer or the event."""
    from moto.events.models import EventTemplateParser

    ingested = event.get("ingestion-time", event.get("time"))
    event = {k: v for k, v in event.items() if k != "ingestion-time"}
    event["time"] = _iso(event.get("time"))
    if "Input" in target:
        return str(target["Input"])
    if "InputPath" in target:
        from jsonpath_ng.ext import parse

        found = [m.value for m in parse(target["InputPath"]).find(event)]
        return json.dumps(found[0] if found else None)
    if "InputTransformer" in target:
        transformer = target["InputTransformer"]
        shaped = EventTemplateParser.parse(
            input_template=transformer.get("InputTemplate"),
            input_paths_map=transformer.get("InputPathsMap", {}),
            event={**event, "ingestion-time": _iso(ingested)},
        )
        return shaped if isinstance(shaped, str) else json.dumps(shaped)
    return json.dumps(event)


def _endpoint() -> str:
    return f"http://127.0.0.1:{os.environ['MOTO_PORT']}"


def _client(service: str, region: str) -> Any:
    import boto3

    return boto3.client(
        service,
        endpoint_url=_endpoint(),
        region_name=region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@dataclass
class Delivery:
    rule_arn: str
    target: dict[str, Any]
    body: str
    region: str


def deliver(delivery: Delivery) -> None:
    """One target, one event: an asynchronous Invoke, or a StartExecution with a name of its own."""
    arn = delivery.target["Arn"]
    if _service(arn) == "lambda":
        _client("lambda", delivery.region).invoke(
            FunctionName=arn, InvocationType="Event", Payload=delivery.body.encode()
        )
    else:
        _client("stepfunctions", delivery.region).start_execution(
            stateMachineArn=arn, name=uuid.uuid4().hex, input=delivery.body
        )


def _dead_letter(delivery: Delivery, error: Exception) -> None:
    """EventBridge's dead letter: the event as it was to be delivered, with why, in the target's DLQ."""
    queue_arn = delivery.target.get("DeadLetterConfig", {}).get("Arn")
    if not queue_arn:
        log.error("could not deliver an event to %s: %s", delivery.target["Arn"], error)
        return
    from moto.sqs import sqs_backends

    account, name = queue_arn.split(":")[4], queue_arn.split(":")[5]
    attributes = {
        "RULE_ARN": delivery.rule_arn,
        "TARGET_ARN": delivery.target["Arn"],
        "ERROR_CODE": type(error).__name__,
        "ERROR_MESSAGE": str(error)[:1000],
    }
    sqs_backends[account][delivery.region].send_message(
        queue_name=name,
        message_body=delivery.body,
        message_attributes={k: {"data_type": "String", "string_value": v} for k, v in attributes.items()},
    )


class _Outbox:
    """EventBridge delivers asynchronously: targets are reached from this thread, in order, with retries."""

    def __init__(self) -> None:
        self.queue: queue.SimpleQueue[Delivery] = queue.SimpleQueue()
        threading.Thread(target=self._run, name="eventbridge-targets", daemon=True).start()

    def put(self, delivery: Delivery) -> None:
        self.queue.put(delivery)

    def _run(self) -> None:
        while True:
            delivery = self.queue.get()
            for attempt in range(1, DELIVERY_ATTEMPTS + 1):
                try:
                    deliver(delivery)
                    break
                except Exception as e:
                    if attempt == DELIVERY_ATTEMPTS:
                        try:
                            _dead_letter(delivery, e)
                        except Exception:
                            log.exception("could not dead-letter an event for %s", delivery.target["Arn"])
                    else:
                        time.sleep(0.2 * 2**attempt)


_outbox: _Outbox | None = None


def _send(rule: Any, event: dict[str, Any], original: Any) -> None:
    """Deliver ``event`` to every target of ``rule``: moto's own kinds through moto, the rest through the outbox."""
    ours = [t for t in rule.targets if is_ours(t)]
    if len(ours) < len(rule.targets):
        theirs = copy.copy(rule)
        theirs.targets = [t for t in rule.targets if not is_ours(t)]
        original(theirs, copy.deepcopy(event))
    if ours and _outbox is not None:
        for target in ours:
            _outbox.put(Delivery(rule.arn, target, payload(target, event), rule.region_name))


def _is_schedule_only(rule: Any) -> bool:
    return bool(getattr(rule, "scheduled_expression", None)) and not getattr(rule, "event_pattern", None)._pattern


# --- schedules ----------------------------------------------------------------------------------


def next_fire(expression: str, after: datetime.datetime, first_seen: datetime.datetime) -> datetime.datetime:
    """When a schedule rule fires next after ``after``.

    A rate fires every period from when the rule was first seen; a cron at its next occurrence (UTC).
    """
    rate = _RATE.match(expression.strip())
    if rate:
        period = datetime.timedelta(seconds=int(rate["value"]) * _UNIT_SECONDS[rate["unit"].rstrip("s")])
        elapsed = after - first_seen
        return first_seen + period * (elapsed // period + 1)
    cron = _CRON.match(expression.strip())
    if cron:
        from aws_croniter import AwsCroniter

        return AwsCroniter(cron["fields"].strip()).get_next(after)[0]
    raise ValueError(f"not a schedule expression: {expression!r}")


def scheduled_event(rule: Any, moment: datetime.datetime) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": rule.account_id,
        "time": moment.timestamp(),
        "region": rule.region_name,
        "resources": [rule.arn],
        "detail": {},
    }


class Scheduler:
    """Fires the enabled schedule rules of every bus, once a second at most, as EventBridge does."""

    def __init__(self, original: Any, tick: float = 0.5) -> None:
        self.original, self.tick = original, tick
        self.due: dict[str, tuple[str, datetime.datetime, datetime.datetime]] = {}
        threading.Thread(target=self._run, name="eventbridge-schedules", daemon=True).start()

    def _rules(self) -> list[Any]:
        from moto.events.models import events_backends

        found = []
        for account in list(events_backends.keys()):
            for region in list(events_backends[account].keys()):
                for bus in list(events_backends[account][region].event_buses.values()):
                    found += [r for r in list(bus.rules.values()) if getattr(r, "scheduled_expression", None)]
        return found

    def _run(self) -> None:
        while True:
            time.sleep(self.tick)
            try:
                self.fire_due(datetime.datetime.now(datetime.UTC))
            except Exception:
                log.exception("schedule rules could not be fired")

    def fire_due(self, now: datetime.datetime) -> None:
        seen = set()
        for rule in self._rules():
            seen.add(rule.arn)
            expression = rule.scheduled_expression
            known = self.due.get(rule.arn)
            if known is None or known[0] != expression:  # new, or its schedule changed
                try:
                    self.due[rule.arn] = (expression, now, next_fire(expression, now, now))
                except ValueError as e:
                    log.error("rule %s: %s", rule.arn, e)
                continue
            _, first_seen, when = known
            if now < when:
                continue
            self.due[rule.arn] = (expression, first_seen, next_fire(expression, now, first_seen))
            if getattr(rule, "state", "ENABLED") == "ENABLED":
                _send(rule, scheduled_event(rule, when), self.original)
        for arn in set(self.due) - seen:
            del self.due[arn]


def apply() -> None:
    """Patch moto's rules (in the AWS endpoint process) and start the delivery and schedule threads.

    Declared in :mod:`longrun.local.events.patches`; :func:`longrun.local.patches.install` calls it once.
    """
    global _outbox
    from moto.events.models import Rule

    original = Rule.send_to_targets

    def send_to_targets(self: Any, event: dict[str, Any], transform_input: bool = True) -> None:
        if self.state != "ENABLED" or _is_schedule_only(self) or not self.event_pattern.matches_event(event):
            return
        _send(self, event, lambda rule, e: original(rule, e, transform_input))

    Rule.send_to_targets = send_to_targets
    _outbox = _Outbox()
    Scheduler(lambda rule, e: original(rule, e))
