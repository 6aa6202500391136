"""The user each project's builds run as: one uid per project, never shared, never reused.

A build runs the user's code on a file system that holds every project. Its workspace and cache
belong to its project's uid with mode 0700, so a build of another project (another uid) can
neither list nor read nor write them. The uid is allocated once, from a counter in the projects
table (``builduid#next``), and recorded as ``builduid#<projectId>``; a conditional write settles a
race between two workers (the loser's number is skipped).
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from core import aws
from core.config import settings

# Far above the uids of system users and of any image's users.
FIRST_UID = 200_000
_COUNTER = {"pk": "builduid#next"}


def _table() -> Any:
    return aws.table(settings().projects_table)


def uid_for(project_id: str) -> int:
    """The project's build uid, allocated on its first build."""
    key = {"pk": f"builduid#{project_id}"}
    item = _table().get_item(Key=key, ConsistentRead=True).get("Item")
    if item:
        return int(item["uid"])
    number = _table().update_item(
        Key=_COUNTER, UpdateExpression="ADD #n :one", ExpressionAttributeNames={"#n": "next"},
        ExpressionAttributeValues={":one": 1}, ReturnValues="UPDATED_NEW",
    )["Attributes"]["next"]  # fmt: skip
    uid = FIRST_UID + int(number)
    try:
        _table().put_item(Item={**key, "uid": uid}, ConditionExpression="attribute_not_exists(pk)")
    except ClientError as e:
        if e.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise
        return int(_table().get_item(Key=key, ConsistentRead=True)["Item"]["uid"])
    return uid
