"""The template's log groups, created in moto's CloudWatch Logs."""

from __future__ import annotations

from typing import Any

from longrun.local.cloudformation.engine import ResourceType, StackBuilder, creates


def _create_log_group(builder: StackBuilder, logical_id: str, props: dict[str, Any]) -> None:
    logs = builder.aws("logs")
    name = builder.stack.physical[logical_id]
    logs.create_log_group(logGroupName=name)
    if "RetentionInDays" in props:
        logs.put_retention_policy(logGroupName=name, retentionInDays=int(props["RetentionInDays"]))


TYPES = (
    ResourceType(
        "AWS::Logs::LogGroup",
        created_in_moto=True,
        ref=lambda b, lid: b.name(lid, "LogGroupName", 512),
        attributes={"Arn": lambda b, lid, ref: f"arn:aws:logs:{b.arn_prefix()}:log-group:{ref}:*"},
    ),
)
STEPS = (creates(20, "AWS::Logs::LogGroup", _create_log_group),)
