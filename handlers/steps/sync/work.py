"""Where a sync keeps its work in S3, and the settings that size it.

Step Functions caps a state at 256 KiB, so nothing that grows with the project travels in the
state: the listing writes batch files (what to copy) and the copy writes done files (what it
copied) under ``sync/<jobId>/`` in the projects bucket, outside every project's prefix (so they
start no sync and no upload can reach them). A lifecycle rule in the template expires them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from core import aws
from core.config import settings


@dataclass(frozen=True)
class Tuning:
    """How a sync cuts its work; the template's settings, or the execution input's ``tuning`` (tests)."""

    page_size: int = 1000  # source entries per ListPage round (one S3 list call)
    batch_files: int = 200  # files per batch file, that is per copy invocation (CopyBatchInline, CopyBatchDistributed)
    batch_bytes: int = 256 * 1024 * 1024  # or this many bytes, whichever comes first
    distributed_threshold: int = 20  # more batches than this: a Distributed Map
    max_concurrency: int = 100  # copy Lambdas at once in a Distributed Map (the account's quota is 1000)
    round_pages: int = 0  # pages per ListPage invocation; 0: as many as fit in its time budget
    max_queue_seconds: int = 3600  # a sync queued behind another job this long fails (ProjectBusy)

    @classmethod
    def of(cls, event: dict[str, Any]) -> Tuning:
        env = os.environ
        values = {
            "page_size": int(env.get("SYNC_PAGE_SIZE", cls.page_size)),
            "batch_files": int(env.get("SYNC_BATCH_FILES", cls.batch_files)),
            "batch_bytes": int(env.get("SYNC_BATCH_BYTES", cls.batch_bytes)),
            "distributed_threshold": int(env.get("SYNC_DISTRIBUTED_THRESHOLD", cls.distributed_threshold)),
            "max_concurrency": int(env.get("SYNC_MAX_CONCURRENCY", cls.max_concurrency)),
        }
        given = event.get("tuning") or {}
        names = {
            "pageSize": "page_size",
            "batchFiles": "batch_files",
            "distributedThreshold": "distributed_threshold",
            "roundPages": "round_pages",
            "maxQueueSeconds": "max_queue_seconds",
        }
        for camel, snake in names.items():
            if isinstance(given.get(camel), int) and given[camel] > 0:
                values[snake] = given[camel]
        values["page_size"] = min(values["page_size"], 1000)
        return cls(**values)


def project_prefix(project_id: str) -> str:
    return f"projects/{project_id}/"


def job_prefix(job_id: str) -> str:
    return f"sync/{job_id}/"


def batch_key(job_id: str, number: int) -> str:
    return f"{job_prefix(job_id)}batches/{number:06d}.json"


def index_key(job_id: str) -> str:
    return f"{job_prefix(job_id)}batches.json"


def results_prefix(job_id: str) -> str:
    """Where the Distributed Map's ResultWriter puts its Map Run's results (``<prefix>/<run>/manifest.json``)."""
    return f"{job_prefix(job_id)}results/"


def done_key(job_id: str, batch: str) -> str:
    return f"{job_prefix(job_id)}done/{batch.rsplit('/', 1)[-1]}"


def page_key(job_id: str, page: int) -> str:
    """What one listing page deleted and found unsafe."""
    return f"{job_prefix(job_id)}pages/{page:06d}.json"


def bucket() -> str:
    return settings().projects_bucket


def project_s3(project_id: str) -> Any:
    """S3 as the project (core.scoped): its files and manifest. Work files stay with the function's role."""
    return aws.project_client(project_id, "s3")


def put_json(key: str, value: Any, s3: Any = None) -> None:
    """Write ``value`` at ``key``; ``s3``: a project's client (the manifest), else the function's own."""
    body = json.dumps(value, separators=(",", ":")).encode()
    (s3 or aws.client("s3")).put_object(Bucket=bucket(), Key=key, Body=body, ContentType="application/json")


def get_json(key: str) -> Any:
    return json.loads(aws.client("s3").get_object(Bucket=bucket(), Key=key)["Body"].read())


def keys_under(prefix: str) -> list[str]:
    found: list[str] = []
    for page in aws.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket(), Prefix=prefix):
        found += [o["Key"] for o in page.get("Contents", [])]
    return found
