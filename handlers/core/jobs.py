"""The job store: one item per job in the jobs table, read and written by every part of longrun.

A job item holds what ``GET /jobs/{jobId}`` shows, plus ``seq`` (the number of events published so
far) and ``steps`` (a map by step name, updated in the same transaction as each progress event).
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from core import aws
from core.config import settings
from core.records import plain, to_dynamo

FINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED", "CANCELLED", "TIMED_OUT"})
STATUSES = frozenset({"RUNNING"}) | FINAL_STATUSES


def _table() -> Any:
    return aws.table(settings().jobs_table)


def put_new(item: dict[str, Any]) -> None:
    """Write a new job; its id is fresh, so a collision is a bug and fails loudly."""
    _table().put_item(Item=item, ConditionExpression="attribute_not_exists(jobId)")


def put_new_unless(item: dict[str, Any], taken_key: dict[str, str]) -> bool:
    """Write a new job only if the projects table has no item at ``taken_key``; False if it has."""
    try:
        aws.client("dynamodb").transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": settings().jobs_table,
                        "Item": {k: to_dynamo(v) for k, v in item.items()},
                        "ConditionExpression": "attribute_not_exists(jobId)",
                    }
                },
                {
                    "ConditionCheck": {
                        "TableName": settings().projects_table,
                        "Key": {k: to_dynamo(v) for k, v in taken_key.items()},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )
        return True
    except ClientError as e:
        reasons = e.response.get("CancellationReasons") or []
        if len(reasons) > 1 and reasons[1].get("Code") == "ConditionalCheckFailed":
            return False
        raise


def get(job_id: str, *, consistent: bool = False) -> dict[str, Any] | None:
    item = _table().get_item(Key={"jobId": job_id}, ConsistentRead=consistent).get("Item")
    return plain(item) if item else None


def get_owned(job_id: str, user_id: str, *, consistent: bool = False) -> dict[str, Any] | None:
    """The job if it belongs to ``user_id``: another user's job is indistinguishable from none."""
    job = get(job_id, consistent=consistent)
    return job if job and job.get("userId") == user_id else None


def query_page(
    *,
    user_id: str,
    project_id: str | None,
    status: str | None,
    limit: int,
    start_key: dict[str, Any] | None,
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Up to ``limit`` of the user's jobs, newest first, and the key to go on from (or ``None``).

    DynamoDB applies ``Limit`` before the filter, so each query asks for exactly what is still
    missing: the last evaluated key is then always a correct place to resume.
    """
    from boto3.dynamodb.conditions import Attr, Key

    if project_id:
        kwargs: dict[str, Any] = {"IndexName": "byProject", "KeyConditionExpression": Key("projectId").eq(project_id)}
        flt = Attr("userId").eq(user_id)
    else:
        kwargs = {"IndexName": "byUser", "KeyConditionExpression": Key("userId").eq(user_id)}
        flt = None
    if status:
        flt = Attr("status").eq(status) if flt is None else flt & Attr("status").eq(status)
    if flt is not None:
        kwargs["FilterExpression"] = flt
    items: list[dict[str, Any]] = []
    key = start_key
    while True:
        page_kwargs = dict(kwargs, ScanIndexForward=False, Limit=limit - len(items))
        if key:
            page_kwargs["ExclusiveStartKey"] = key
        page = _table().query(**page_kwargs)
        items.extend(plain(i) for i in page.get("Items", []))
        key = page.get("LastEvaluatedKey")
        if not key or len(items) >= limit:
            return items, (plain(key) if key else None)


def view(job: dict[str, Any]) -> dict[str, Any]:
    """A job as users read it (``GET /jobs/{jobId}``)."""
    steps = sorted(
        ({"name": name, **step} for name, step in (job.get("steps") or {}).items()),
        key=lambda s: (s.get("startedAt") or "", s["name"]),
    )
    for step in steps:
        step.setdefault("startedAt", None)
        step.setdefault("endedAt", None)
    return {
        "jobId": job["jobId"],
        "type": job["type"],
        "projectId": job.get("projectId"),
        "status": job["status"],
        "createdAt": job["createdAt"],
        "updatedAt": job.get("updatedAt", job["createdAt"]),
        "steps": steps,
        "result": job.get("result"),
        "error": job.get("error"),
        "executionArn": job.get("executionArn"),
        "links": links(job["jobId"], job.get("executionArn")),
    }


def links(job_id: str, execution_arn: str | None = None) -> dict[str, str]:
    """Where a client reads the job and its events, and where an operator reads its execution."""
    found = {"self": f"/jobs/{job_id}", "events": f"/jobs/{job_id}/events"}
    if execution_arn:
        found["console"] = console_url(execution_arn)
    return found


def console_url(execution_arn: str) -> str:
    """The execution in the Step Functions console (its region is the ARN's)."""
    region = execution_arn.split(":")[3]
    return f"https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{execution_arn}"
