"""The template's SNS topics and subscriptions, created in moto's SNS so operators find them as on AWS."""

from __future__ import annotations

from typing import Any

from longrun.local.cloudformation.engine import ResourceType, StackBuilder, creates


def _create_topic(builder: StackBuilder, logical_id: str, props: dict[str, Any]) -> None:
    attributes = {"DisplayName": str(props["DisplayName"])} if "DisplayName" in props else {}
    builder.aws("sns").create_topic(Name=builder.stack.physical[logical_id].rsplit(":", 1)[-1], Attributes=attributes)


def _create_subscription(builder: StackBuilder, logical_id: str, props: dict[str, Any]) -> None:
    # moto records it (an email subscription stays pending, as it would until confirmed); it sends nothing.
    builder.aws("sns").subscribe(TopicArn=props["TopicArn"], Protocol=props["Protocol"], Endpoint=props["Endpoint"])


TYPES = (
    ResourceType(
        "AWS::SNS::Topic",
        created_in_moto=True,
        ref=lambda b, lid: f"arn:aws:sns:{b.arn_prefix()}:{b.name(lid, 'TopicName', 256)}",
        attributes={"TopicArn": lambda b, lid, ref: ref, "TopicName": lambda b, lid, ref: str(ref).rsplit(":", 1)[-1]},
    ),
    ResourceType("AWS::SNS::Subscription", created_in_moto=True),
)
STEPS = (
    creates(80, "AWS::SNS::Topic", _create_topic),
    creates(81, "AWS::SNS::Subscription", _create_subscription),
)
