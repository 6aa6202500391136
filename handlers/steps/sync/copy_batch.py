"""CopyBatchInline, CopyBatchDistributed: copy the files of one batch file, the body of the sync's Maps.

Every file is streamed in chunks (memory stays bounded whatever its size), written under a
temporary name in its directory and renamed only once its size and checksum match the source,
through directory descriptors that never follow a symlink (:mod:`steps.sync.files`). What the
batch copied goes to a done file in S3, which Finish folds into the manifest; a retried batch
whose done file exists does nothing twice.
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from core import aws, locks, publisher, sync_requests
from core.config import settings
from core.observability import append_job_keys, logger, tracer
from core.workflow_errors import TransientError
from steps.project.workspace import workspace_dir
from steps.sync import work
from steps.sync.errors import Collision, ObjectArchived, UnsafePath
from steps.sync.files import Workspace
from steps.sync.listing import object_etag, object_mtime_ns

CHUNK = 1024 * 1024
SMALL = 8 * 1024 * 1024  # up to this size a file is one PutObject with Content-MD5; above, multipart
FILES_AT_ONCE = 8
_MD5 = re.compile(r"^[0-9a-f]{32}$")
_MULTIPART = TransferConfig(multipart_threshold=SMALL, multipart_chunksize=SMALL, max_concurrency=4)


@dataclass
class Copied:
    path: str
    size: int
    etag: str
    mtime_ns: int


@dataclass
class Problem:
    path: str
    message: str


class Progress:
    """Files and bytes done, added to the job's counters at most once a second from this batch.

    The counters are shared by every batch of the job; a conditional write on ``progressAt`` lets
    one ``job.progress`` through at most every half second, however many batches run at once.
    """

    def __init__(self, event: dict[str, Any]) -> None:
        self.event = event
        self.lock = threading.Lock()
        self.files = self.bytes = 0
        self.flushed_at = time.monotonic()

    def add(self, files: int = 0, nbytes: int = 0) -> None:
        with self.lock:
            self.files += files
            self.bytes += nbytes
            due = time.monotonic() - self.flushed_at >= 1.0
        if due:
            self.flush()

    def flush(self, publish: bool = True) -> None:
        with self.lock:
            files, nbytes, self.files, self.bytes = self.files, self.bytes, 0, 0
            self.flushed_at = time.monotonic()
        if not files and not nbytes:
            return
        table = aws.table(settings().jobs_table)
        # ALL_NEW, not UPDATED_NEW: an ADD of 0 (bytes of one long download, no file finished yet)
        # need not come back as "updated", and both totals are wanted either way.
        totals = table.update_item(
            Key={"jobId": self.event["jobId"]},
            UpdateExpression="ADD copiedFiles :f, copiedBytes :b",
            ExpressionAttributeValues={":f": files, ":b": nbytes},
            ReturnValues="ALL_NEW",
        )["Attributes"]
        if not publish:
            return
        now = time.time()
        try:
            table.update_item(
                Key={"jobId": self.event["jobId"]},
                UpdateExpression="SET progressAt = :now",
                ConditionExpression="attribute_not_exists(progressAt) OR progressAt < :cut",
                ExpressionAttributeValues={":now": str(now), ":cut": str(now - 0.5)},
            )
        except ClientError as e:
            if e.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return
            raise
        publisher.step_detail(
            self.event,
            "copy",
            {
                "files": int(totals.get("copiedFiles", 0)),
                "bytes": int(totals.get("copiedBytes", 0)),
                "ofFiles": int(self.event.get("toCopy", 0)),
                "ofBytes": int(self.event.get("bytesToCopy", 0)),
            },
        )


def _download(ws: Workspace, item: dict[str, Any], progress: Progress) -> Copied | Problem:
    """S3 → workspace: the object as listed (``If-Match``), or its newest version if it changed since."""
    s3 = work.project_s3(progress.event["projectId"])  # this project's objects only (core.scoped)
    try:
        try:
            obj = s3.get_object(Bucket=work.bucket(), Key=item["key"], IfMatch=item["etag"])
        except ClientError as e:
            if e.response["Error"]["Code"] not in ("PreconditionFailed", "412"):
                raise
            obj = s3.get_object(Bucket=work.bucket(), Key=item["key"])
    except ClientError as e:
        if e.response["Error"]["Code"] in ("NoSuchKey", "404"):
            return Problem(item["path"], "deleted from S3 after the listing; not copied")
        if e.response["Error"]["Code"] == "InvalidObjectState":
            raise ObjectArchived(
                f"{item['path']} is archived (Glacier): restore it, then sync again; the files copied so far are kept"
            ) from None
        raise
    etag = object_etag(obj["ETag"])
    mtime_ns = object_mtime_ns(obj["LastModified"])
    try:
        with ws.staged(item["path"]) as staged:
            for chunk in obj["Body"].iter_chunks(CHUNK):
                staged.write(chunk)
                progress.add(nbytes=len(chunk))
            if staged.size != obj["ContentLength"]:
                raise TransientError(f"{item['path']}: got {staged.size} of {obj['ContentLength']} bytes")
            if _MD5.match(etag) and staged.md5 != etag:
                raise TransientError(f"{item['path']}: checksum mismatch (MD5 {staged.md5}, ETag {etag})")
            staged.commit(mtime_ns)
    except (Collision, UnsafePath) as e:
        return Problem(item["path"], str(e))
    progress.add(files=1)
    return Copied(item["path"], int(obj["ContentLength"]), etag, mtime_ns)  # commit set exactly this mtime


def _upload(ws: Workspace, item: dict[str, Any], event: dict[str, Any], progress: Progress) -> Copied | Problem:
    """Workspace → S3: one PutObject with Content-MD5 (S3 checks it), or a multipart upload for large files.

    The object is marked as this job's writing, so its upload event does not sync it back.
    """
    project_id = event["projectId"]
    s3 = work.project_s3(project_id)  # this project's objects only (core.scoped)
    writer = {sync_requests.WRITER_METADATA: event["jobId"]}
    key = work.project_prefix(project_id) + item["path"]
    try:
        handle, stat = ws.open_read(item["path"])
    except FileNotFoundError:
        return Problem(item["path"], "deleted from the workspace after the listing; not copied")
    except UnsafePath as e:
        return Problem(item["path"], str(e))
    with handle:
        if stat.st_size <= SMALL:
            body = handle.read()
            digest = hashlib.md5(body, usedforsecurity=False)
            response = s3.put_object(
                Bucket=work.bucket(),
                Key=key,
                Body=body,
                ContentMD5=base64.b64encode(digest.digest()).decode(),
                Metadata=writer,
            )
            etag = object_etag(response["ETag"])
            progress.add(nbytes=len(body))
        else:
            s3.upload_fileobj(
                handle,
                work.bucket(),
                key,
                ExtraArgs={"Metadata": writer},
                Config=_MULTIPART,
                Callback=lambda n: progress.add(nbytes=n),
            )
            etag = object_etag(s3.head_object(Bucket=work.bucket(), Key=key)["ETag"])
    progress.add(files=1)
    # Recorded with the file's state when it was opened: a file changed meanwhile differs next time.
    return Copied(item["path"], stat.st_size, etag, stat.st_mtime_ns)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    append_job_keys(event, batch=event["batch"])
    try:
        return _copy(event)
    except Exception:
        logger.exception("batch failed")  # the Map's Catch reports it to the user; operators read it here
        raise


def _copy(event: dict[str, Any]) -> dict[str, Any]:
    job_id, project_id = event["jobId"], event["projectId"]
    done = work.done_key(job_id, event["batch"])
    if work.keys_under(done):
        summary = work.get_json(done)
        return {"copied": len(summary["copied"]), "bytes": summary["bytes"], "again": True}
    locks.refresh(project_id, job_id)  # LockLost once the job was cancelled
    return copy_items(event, work.get_json(event["batch"])["items"], done)


def copy_items(
    event: dict[str, Any], items: list[dict[str, Any]], done: str, final_progress: bool = True
) -> dict[str, Any]:
    """Copy ``items`` (a batch's, or a small sync's straight from its listing) and write their done file.

    ``final_progress`` False: the caller reports the end itself, so the last counts are added
    to the job without a progress event of their own.
    """
    direction = event["params"].get("direction", "s3-to-efs")
    ws = Workspace(workspace_dir(event["projectId"]))
    progress = Progress(event)

    def one(item: dict[str, Any]) -> Copied | Problem:
        if direction == "s3-to-efs":
            return _download(ws, item, progress)
        return _upload(ws, item, event, progress)

    with ThreadPoolExecutor(max_workers=FILES_AT_ONCE) as pool:
        outcomes = list(pool.map(one, items))
    progress.flush(publish=final_progress)
    copied = [o for o in outcomes if isinstance(o, Copied)]
    problems = [o for o in outcomes if isinstance(o, Problem)]
    nbytes = sum(c.size for c in copied)
    work.put_json(
        done,
        {
            "copied": [[c.path, c.size, c.etag, c.mtime_ns] for c in copied],
            "problems": [{"path": p.path, "message": p.message} for p in problems],
            "bytes": nbytes,
        },
    )
    logger.info("copied", extra={"files": len(copied), "bytes": nbytes, "problems": len(problems)})
    return {"copied": len(copied), "bytes": nbytes, "problems": len(problems)}
