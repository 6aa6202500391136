"""Finish: fold what the batches copied and the pages deleted into the manifest, and count.

It is bookkeeping, not a step the user waits on: it reports no progress of its own (the copy's
end and the job's result say what it did). A small sync that copied in its listing step does the
same bookkeeping there (:func:`record`) and skips this state.

It also runs on the failure path (``failed: true``), so the files a failed sync did copy are
recorded and the next sync does not copy them again. The job's work files under ``sync/<jobId>/``
stay for operators to read and expire with the bucket's lifecycle rule.

On that path it answers the error the user is told. A Distributed Map whose batch failed fails as
a whole with ``States.ExceedToleratedFailureThreshold``, which says nothing of what went wrong;
the batch's own error is in the Map Run's results, which its ResultWriter put in S3 (not in the
state: they grow with the sync). The first failed batch's error is read back from there.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from core import publisher
from core.observability import append_job_keys, logger, tracer
from steps.sync import manifest, work

MAX_PROBLEMS = 100  # listed in the result; ``skipped`` counts them all
MAP_RUN_FAILED = "States.ExceedToleratedFailureThreshold"
MAX_RESULTS_BYTES = 16 * 1024 * 1024  # a results file larger than this is not read for its first error


def _read_all(keys: list[str]) -> list[Any]:
    with ThreadPoolExecutor(max_workers=16) as pool:
        return list(pool.map(work.get_json, keys))


def record(event: dict[str, Any], listing: dict[str, Any], failed: bool = False) -> dict[str, Any]:
    """Update the manifest from the job's page and done files; the job's result (empty when ``failed``)."""
    job_id, project_id = event["jobId"], event["projectId"]
    prefix = work.job_prefix(job_id)
    keys = work.keys_under(prefix)
    records = manifest.load(project_id)
    problems: list[dict[str, str]] = []
    for page in _read_all([k for k in keys if k.startswith(prefix + "pages/")]):
        for path in page["deleted"]:
            records.pop(path, None)
        problems += page["problems"]
    copied = nbytes = 0
    for done in _read_all([k for k in keys if k.startswith(prefix + "done/")]):
        for path, size, etag, mtime_ns in done["copied"]:
            records[path] = manifest.Record(size, etag, mtime_ns)
        copied += len(done["copied"])
        nbytes += done["bytes"]
        problems += done["problems"]
    manifest.save(project_id, records)
    if failed:
        logger.info("progress saved after a failure", extra={"copied": copied})
        return {}
    if listing.get("batches") or listing.get("copiedHere"):
        publisher.progress(event, "copy", "SUCCEEDED", {"files": copied, "bytes": nbytes})
    return {
        "direction": event["params"].get("direction", "s3-to-efs"),
        "copied": copied,
        "deleted": int(listing.get("deleted", 0)),
        "unchanged": int(listing.get("unchanged", 0)),
        "bytes": nbytes,
        "skipped": len(problems),
        "problems": problems[:MAX_PROBLEMS],
    }


def failed_batch_error(job_id: str) -> dict[str, Any] | None:
    """The ``Error`` and ``Cause`` of the first failed batch in the job's Map Run results (None if none is there).

    The ResultWriter writes ``<prefix>/<map run>/manifest.json``, which lists the results files by
    status; each file is a JSON array of child executions, a failed one with its ``Error`` and
    ``Cause`` (https://docs.aws.amazon.com/step-functions/latest/dg/input-output-resultwriter.html).
    """
    for key in sorted(k for k in work.keys_under(work.results_prefix(job_id)) if k.endswith("/manifest.json")):
        for written in work.get_json(key).get("ResultFiles", {}).get("FAILED", []):
            if int(written.get("Size", 0)) > MAX_RESULTS_BYTES:
                continue
            for child in work.get_json(written["Key"]):
                if child.get("Error"):
                    return {"Error": child["Error"], "Cause": child.get("Cause") or ""}
    return None


def reported_error(event: dict[str, Any]) -> dict[str, Any]:
    """The error the user is told: the one caught, or a failed Map Run's first failed batch's own."""
    caught = event.get("error") or {}
    if caught.get("Error") == MAP_RUN_FAILED:
        try:
            return failed_batch_error(event["jobId"]) or caught
        except Exception:  # the results are a better message, never a reason to lose the failure
            logger.exception("could not read the Map Run's results")
    return caught


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    append_job_keys(event)
    listing = event.get("listing") or {}
    failed = bool(event.get("failed"))
    # Not acquired: it failed before it held the project, and wrote nothing.
    result = record(event, listing, failed=failed) if listing.get("acquired") else {}
    return reported_error(event) if failed else result
