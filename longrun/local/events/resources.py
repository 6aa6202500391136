"""The template's event buses and rules, created in moto's EventBridge (targets: see :mod:`.targets`)."""

from __future__ import annotations

import json
from typing import Any

from longrun.local.cloudformation.engine import CannotEmulate, ResourceType, StackBuilder, creates

# Rule targets the local cloud delivers: moto itself delivers to SQS; Lambda functions and state
# machines go through longrun.local.events.targets (moto fails PutEvents on them).
_RULE_TARGET_SERVICES = ("sqs", "lambda", "states")
_RULE_TARGET_FIELDS = {"Id", "Arn", "Input", "InputPath", "InputTransformer", "DeadLetterConfig", "RetryPolicy"}


def _create_event_bus(builder: StackBuilder, logical_id: str, props: dict[str, Any]) -> None:
    builder.aws("events").create_event_bus(Name=builder.stack.physical[logical_id])


def _create_rule(builder: StackBuilder, logical_id: str, props: dict[str, Any]) -> None:
    events = builder.aws("events")
    name = builder.stack.physical[logical_id]
    kwargs: dict[str, Any] = {"Name": name, "State": props.get("State", "ENABLED")}
    if "EventPattern" in props:
        kwargs["EventPattern"] = json.dumps(props["EventPattern"])
    if "ScheduleExpression" in props:
        kwargs["ScheduleExpression"] = props["ScheduleExpression"]
    if "EventBusName" in props:
        kwargs["EventBusName"] = props["EventBusName"]
    events.put_rule(**kwargs)
    targets = props.get("Targets", [])
    for target in targets:
        if not any(f":{service}:" in target["Arn"] for service in _RULE_TARGET_SERVICES):
            raise CannotEmulate(
                f"{logical_id}: rules deliver to SQS, Lambda and Step Functions targets here, not {target['Arn']}"
            )
    if targets:
        events.put_targets(
            Rule=name,
            **({"EventBusName": props["EventBusName"]} if "EventBusName" in props else {}),
            Targets=[{k: v for k, v in t.items() if k in _RULE_TARGET_FIELDS} for t in targets],
        )


TYPES = (
    ResourceType(
        "AWS::Events::Rule",  # moto delivers S3's EventBridge events to the rule's SQS target
        created_in_moto=True,
        ref=lambda b, lid: b.name(lid, "Name", 64),
        attributes={"Arn": lambda b, lid, ref: f"arn:aws:events:{b.arn_prefix()}:rule/{ref}"},
    ),
    ResourceType(
        "AWS::Events::EventBus",
        created_in_moto=True,
        ref=lambda b, lid: b.name(lid, "Name", 256),
        attributes={
            "Arn": lambda b, lid, ref: f"arn:aws:events:{b.arn_prefix()}:event-bus/{ref}",
            "Name": lambda b, lid, ref: ref,
        },
    ),
)
STEPS = (
    creates(60, "AWS::Events::EventBus", _create_event_bus),
    creates(61, "AWS::Events::Rule", _create_rule),
)
