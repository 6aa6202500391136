"""Step 2 of delete-project, a loop: delete the project's S3 prefix ``projects/<projectId>/``, a turn at a time.

The projects bucket is versioned (infra/template.yaml, ProjectsBucket), where a plain delete only
hides an object behind a delete marker. So each page is a ``ListObjectVersions`` of at most 1,000
versions and delete markers, removed by one ``DeleteObjects`` naming each version (which takes at
most 1,000 keys: https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObjects.html), so the
files are gone for good, old versions included.

Each page lists from the start of the prefix: what was deleted is no longer listed, so the
listing is always exactly what is left, and a retried turn or a redriven execution neither skips
nor repeats a version. A turn works for ``turns.TURN_SECONDS`` (a bounded time, never a long
Lambda), then answers ``done: false`` with its counts, and the state machine's Choice runs the
next turn with them. ``objects`` counts the files deleted (each key's current version),
``versions`` every version and delete marker.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from core import aws, locks
from core.config import settings
from core.observability import logger, tracer
from core.steps import job_step
from steps.lifecycle.errors import ObjectsNotDeleted
from steps.lifecycle.turns import Turn
from steps.project.workspace import s3_prefix

# ListObjectVersions' MaxKeys and DeleteObjects' limit alike (tests make it smaller).
PAGE_KEYS = 1000


def delete_page(s3: Any, bucket: str, prefix: str) -> tuple[int, int, bool]:
    """Delete the first page of versions under ``prefix``: (files, versions, whether more are left)."""
    page = s3.list_object_versions(Bucket=bucket, Prefix=prefix, MaxKeys=PAGE_KEYS)
    versions = page.get("Versions", [])
    entries = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in versions + page.get("DeleteMarkers", [])]
    if entries:
        answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": entries, "Quiet": True})
        if answer.get("Errors"):
            first = answer["Errors"][0]
            raise ObjectsNotDeleted(
                f"S3 refused to delete {len(answer['Errors'])} of {len(entries)} versions "
                f"(first: {first.get('Key')}: {first.get('Code')})"
            )
    files = sum(1 for v in versions if v.get("IsLatest"))
    return files, len(entries), bool(page.get("IsTruncated"))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@job_step(
    "delete-objects",
    summary=lambda r: {"objects": r["objects"], "versions": r["versions"]},
    starts=lambda event: not event.get("objects"),
    ends=lambda result: result["done"],
)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    project_id, job_id = event["projectId"], event["jobId"]
    state = {"objects": 0, "versions": 0, "turns": 0, **(event.get("objects") or {})}
    locks.refresh(project_id, job_id)  # keeps the lock through a long delete; LockLost once cancelled
    s3 = aws.project_client(project_id, "s3")  # this project's prefix only (core.scoped)
    bucket, prefix = settings().projects_bucket, s3_prefix(project_id)
    turn = Turn()
    more = True
    while more and not turn.over():
        files, versions, more = delete_page(s3, bucket, prefix)
        state["objects"] += files
        state["versions"] += versions
    state["turns"] += 1
    logger.info("objects deleted", extra={**state, "done": not more})
    return {**state, "done": not more}
