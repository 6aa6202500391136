"""What operator commands share: AWS clients from the standard environment and the stack's outputs.

``longrun logs`` (and ``longrun ops``) talk to AWS directly, as the AWS CLI would: credentials and
region from ``AWS_PROFILE`` or keys and ``AWS_REGION``, an endpoint from ``AWS_ENDPOINT_URL`` (the
local cloud prints it). They find the stack's tables, queues and log groups from its CloudFormation
outputs; the local cloud registers the same outputs under the same stack name.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError


class OperatorError(Exception):
    """A problem the operator can fix (no credentials, no such stack); printed without a traceback."""


def client(service: str) -> Any:
    """A client as the AWS CLI would make it; ``AWS_REGION`` counts as well as ``AWS_DEFAULT_REGION``."""
    try:
        return boto3.client(service, region_name=os.environ.get("AWS_REGION") or None)
    except BotoCoreError as e:
        raise OperatorError(f"cannot make an AWS client ({e}); set AWS_REGION and credentials") from None


@cache
def stack_outputs(stack: str) -> dict[str, str]:
    try:
        stacks = client("cloudformation").describe_stacks(StackName=stack)["Stacks"]
    except ClientError as e:
        raise OperatorError(f"stack {stack!r}: {e.response['Error']['Message']}") from None
    except BotoCoreError as e:
        raise OperatorError(f"cannot reach AWS ({e}); set AWS_REGION and credentials, or AWS_ENDPOINT_URL") from None
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


def output(stack: str, name: str) -> str:
    outputs = stack_outputs(stack)
    if name not in outputs:
        raise OperatorError(f"stack {stack!r} has no output {name}: is it a longrun stack of this version?")
    return outputs[name]


def job_item(stack: str, job_id: str) -> dict[str, Any]:
    """The job's item in the stack's jobs table (DynamoDB's typed form), or :class:`OperatorError`."""
    item = (
        client("dynamodb")
        .get_item(TableName=output(stack, "JobsTableName"), Key={"jobId": {"S": job_id}}, ConsistentRead=True)
        .get("Item")
    )
    if item is None:
        raise OperatorError(f"no job {job_id}")
    return item
