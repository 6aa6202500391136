"""The template's SQS queues and queue policies, created in moto's SQS."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from longrun.local.cloudformation.engine import ACCOUNT_ID, CannotEmulate, ResourceType, StackBuilder, Step, creates
from longrun.local.refusals import AwsRefused

_ATTRIBUTES_DOC = "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_CreateQueue.html"


def _base(builder: StackBuilder) -> str:
    """Queue URLs are ``{endpoint}/{account}/{name}`` on moto, as on AWS's legacy endpoints."""
    return str(builder.aws("sqs").meta.endpoint_url).rstrip("/")


def _create_queue(builder: StackBuilder, logical_id: str, props: dict[str, Any]) -> None:
    sqs = builder.aws("sqs")
    attributes = {
        k: str(props[k])
        for k in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", "ReceiveMessageWaitTimeSeconds")
        if k in props
    }
    try:
        url = sqs.create_queue(QueueName=builder.stack.physical[logical_id].rsplit("/", 1)[-1], Attributes=attributes)
    except ClientError as e:  # a value out of SQS's range (longrun/local/sqs/retention.py): the stack would not deploy
        if e.response["Error"]["Code"] != "InvalidAttributeValue":
            raise
        raise AwsRefused(logical_id, "SQS queue attributes' ranges", e.response["Error"]["Message"],
                         doc=_ATTRIBUTES_DOC) from None  # fmt: skip
    builder.stack.physical[logical_id] = url["QueueUrl"]
    if "RedrivePolicy" in props:
        builder.redrives.append((url["QueueUrl"], json.dumps(props["RedrivePolicy"])))
    _apply_redrives(builder)


def _apply_redrives(builder: StackBuilder) -> None:
    """Redrive policies whose dead-letter queue exists by now (queues are made in template order)."""
    sqs = builder.aws("sqs")
    waiting = []
    for url, policy in builder.redrives:
        dead_letter = json.loads(policy)["deadLetterTargetArn"].rsplit(":", 1)[-1]
        if dead_letter not in {u.rsplit("/", 1)[-1] for u in sqs.list_queues().get("QueueUrls", [])}:
            waiting.append((url, policy))
            continue
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": policy})
    builder.redrives = waiting


def _create_queue_policy(builder: StackBuilder, logical_id: str, props: dict[str, Any]) -> None:
    for url in props["Queues"]:
        builder.aws("sqs").set_queue_attributes(
            QueueUrl=url, Attributes={"Policy": json.dumps(props["PolicyDocument"])}
        )


def _no_redrive_left(builder: StackBuilder, by_type: dict[str, list[str]]) -> None:
    if builder.redrives:
        raise CannotEmulate(f"dead-letter queues that do not exist: {builder.redrives}")


TYPES = (
    ResourceType(
        "AWS::SQS::Queue",
        created_in_moto=True,
        ref=lambda b, lid: f"{_base(b)}/{ACCOUNT_ID}/{b.name(lid, 'QueueName', 80)}",
        attributes={
            "Arn": lambda b, lid, ref: f"arn:aws:sqs:{b.arn_prefix()}:{str(ref).rsplit('/', 1)[-1]}",
            "QueueName": lambda b, lid, ref: str(ref).rsplit("/", 1)[-1],
            "QueueUrl": lambda b, lid, ref: ref,
        },
    ),
    ResourceType("AWS::SQS::QueuePolicy", created_in_moto=True),
)
STEPS = (
    creates(40, "AWS::SQS::Queue", _create_queue),
    creates(41, "AWS::SQS::QueuePolicy", _create_queue_policy),
    Step(115, "every redrive policy applied", _no_redrive_left),  # after the functions, as before
)
