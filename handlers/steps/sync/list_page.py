"""ListPage: one round of the sync's listing loop (a Choice state brings it back while ``done`` is false).

Each round compares pages of the source (up to ``page_size`` entries after the cursor) with the
destination's entries in the same key range, deletes what the source no longer has (only with
``delete``, and before any copy starts), and writes what must be copied as batch files to S3. It
keeps going for a few pages while time allows, then returns the cursor. When the source is
exhausted it decides how the copy runs: an inline Map over a short list in the state, or a
Distributed Map reading the batch index from S3.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from stat import S_ISREG
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from core import locks, publisher
from core.observability import logger, tracer
from core.steps import job_step
from steps.project.workspace import workspace_dir
from steps.sync import finish, manifest, work
from steps.sync.copy_batch import copy_items
from steps.sync.errors import Collision, UnsafePath
from steps.sync.files import Workspace
from steps.sync.listing import Item, Problem, efs_items, s3_item, s3_items, unchanged

ROUND_SECONDS = 20  # list pages for this long per invocation, then hand the cursor back
# A sync this small (a few uploaded files) is copied here, without the Map's fan-out.
SMALL_SYNC_FILES = 20
SMALL_SYNC_BYTES = 32 * 1024 * 1024
_manifest_cache: tuple[str, dict[str, manifest.Record]] | None = None


def _records(job_id: str, project_id: str) -> dict[str, manifest.Record]:
    """The manifest, read once per job by a warm container (only Finish writes it, after the listing)."""
    global _manifest_cache
    if _manifest_cache is None or _manifest_cache[0] != job_id:
        _manifest_cache = (job_id, manifest.load(project_id))
    return _manifest_cache[1]


def _take(items: Any, limit: int) -> tuple[list[Item], list[Problem], bool]:
    """Up to ``limit`` items from an iterator (problems ride along); True if it ran dry."""
    taken: list[Item] = []
    problems: list[Problem] = []
    for thing in items:
        if isinstance(thing, Problem):
            problems.append(thing)
            continue
        taken.append(thing)
        if len(taken) >= limit:
            return taken, problems, False
    return taken, problems, True


def _dest_range(
    direction: str, project_id: str, ws: Workspace, prefix: str, after: str | None, upto: str | None
) -> dict[str, Item]:
    """Destination items after ``after`` up to ``upto`` (inclusive; None: to the end)."""
    side = efs_items(ws, prefix, after) if direction == "s3-to-efs" else s3_items(project_id, prefix, after)
    found: dict[str, Item] = {}
    for thing in side:
        if isinstance(thing, Problem):
            continue  # reported when that side is the source
        if upto is not None and thing.path.encode() > upto.encode():
            break
        found[thing.path] = thing
    return found


def _keys_round(event: dict[str, Any], wanted: list[str], ws: Workspace) -> tuple[list[Item], int]:
    """An upload-started sync: only the uploaded keys, looked up one by one (no listing)."""
    with ThreadPoolExecutor(max_workers=16) as pool:
        sources = [s for s in pool.map(lambda p: s3_item(event["projectId"], p), wanted) if s is not None]
    records = _records(event["jobId"], event["projectId"])
    copies: list[Item] = []
    same = 0
    for source in sources:
        stat = ws.stat(source.path)
        dest = Item(source.path, stat.st_size, stat.st_mtime_ns) if stat is not None and S_ISREG(stat.st_mode) else None
        if unchanged("s3-to-efs", source, dest, records.get(source.path)):
            same += 1
        else:
            copies.append(source)
    return copies, same


def _delete_file(ws: Workspace, path: str) -> bool:
    try:
        return ws.delete(path)
    except (Collision, UnsafePath):
        return False  # a directory or a symlinked parent where the file was: left alone


def _delete(direction: str, project_id: str, ws: Workspace, paths: list[str]) -> list[str]:
    if not paths:
        return []
    if direction == "s3-to-efs":
        return [p for p in paths if _delete_file(ws, p)]
    base = work.project_prefix(project_id)
    for start in range(0, len(paths), 1000):
        objects = [{"Key": base + p} for p in paths[start : start + 1000]]
        work.project_s3(project_id).delete_objects(Bucket=work.bucket(), Delete={"Objects": objects, "Quiet": True})
    return paths


def _write_batches(job_id: str, listing: dict[str, Any], copies: list[Item], tuning: work.Tuning) -> None:
    batch: list[dict[str, Any]] = []
    size = 0
    for item in copies:
        batch.append(item.to_json())
        size += item.size
        if len(batch) >= tuning.batch_files or size >= tuning.batch_bytes:
            listing["batches"] += 1
            work.put_json(work.batch_key(job_id, listing["batches"]), {"items": batch})
            batch, size = [], 0
    if batch:
        listing["batches"] += 1
        work.put_json(work.batch_key(job_id, listing["batches"]), {"items": batch})


def _summary(listing: dict[str, Any]) -> dict[str, Any]:
    return {k: listing[k] for k in ("toCopy", "bytesToCopy", "unchanged", "deleted", "problems")}


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@job_step(
    "list",
    summary=_summary,
    starts=lambda event: event["listing"].get("page", 0) == 0,
    ends=lambda result: result["done"] and not result.get("copiedHere"),  # that path reports its own end
)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    job_id, project_id, params = event["jobId"], event["projectId"], event["params"]
    direction, prefix = params.get("direction", "s3-to-efs"), params.get("prefix", "")
    listing = dict(event["listing"])
    for name in ("page", "batches", "toCopy", "bytesToCopy", "unchanged", "deleted", "problems"):
        listing.setdefault(name, 0)
    tuning = work.Tuning.of(event)
    locks.refresh(project_id, job_id)  # a long listing keeps the lock; LockLost once cancelled
    ws = Workspace(workspace_dir(project_id))
    ws.root.mkdir(mode=0o700, parents=True, exist_ok=True)
    started = time.monotonic()

    if listing.get("keys") is not None or listing.get("keysRef"):
        wanted = listing.pop("keys", None) or work.get_json(listing["keysRef"])
        copies, same = _keys_round(event, wanted, ws)
        _account(listing, copies, same, [], [], job_id, tuning)
        listing["done"] = True
    else:
        records = _records(job_id, project_id)
        first_page = listing["page"]
        while True:
            cursor = listing.get("cursor")
            source_side = (
                s3_items(project_id, prefix, cursor) if direction == "s3-to-efs" else efs_items(ws, prefix, cursor)
            )
            sources, problems, exhausted = _take(source_side, tuning.page_size)
            upto = None if exhausted else sources[-1].path
            dests = _dest_range(direction, project_id, ws, prefix, cursor, upto)
            copies, same = [], 0
            for source in sources:
                if unchanged(direction, source, dests.get(source.path), records.get(source.path)):
                    same += 1
                else:
                    copies.append(source)
            gone: list[str] = []
            if params.get("delete"):
                present = {s.path for s in sources}
                gone = _delete(direction, project_id, ws, [p for p in dests if p not in present])
            _account(listing, copies, same, gone, problems, job_id, tuning)
            listing["cursor"] = upto
            if exhausted:
                listing["done"] = True
                break
            pages_this_round = listing["page"] - first_page
            if time.monotonic() - started > ROUND_SECONDS or pages_this_round == tuning.round_pages:
                listing["done"] = False
                break
        publisher.step_detail(event, "list", _progress(listing))

    if listing["done"]:
        small = listing["page"] == 1 and listing["toCopy"] <= SMALL_SYNC_FILES
        if small and listing["bytesToCopy"] <= SMALL_SYNC_BYTES and listing["batches"] == 1:
            _copy_here(event, job_id, listing, copies)
        _plan_copy(job_id, listing, tuning)
        if listing["batches"]:
            publisher.progress(event, "copy", "STARTED", {"files": listing["toCopy"], "bytes": listing["bytesToCopy"]})
    return listing


def _copy_here(event: dict[str, Any], job_id: str, listing: dict[str, Any], copies: list[Item]) -> None:
    """Copy a small sync's one batch in this step: no Map, no second Lambda for a handful of files."""
    batch = work.batch_key(job_id, 1)
    items = [c.to_json() for c in copies]
    copy_event = {**event, "toCopy": listing["toCopy"], "bytesToCopy": listing["bytesToCopy"], "batch": batch}
    publisher.progress(event, "list", "SUCCEEDED", _summary(listing))  # the listing is over; the copy starts
    publisher.progress(event, "copy", "STARTED", {"files": listing["toCopy"], "bytes": listing["bytesToCopy"]})
    copy_items(copy_event, items, work.done_key(job_id, batch), final_progress=False)
    listing["batches"] = 0
    listing["copiedHere"] = True
    # The bookkeeping too: the workflow goes straight to the notify step with this result.
    listing["result"] = finish.record(event, listing)
    listing["finished"] = True


def _account(
    listing: dict[str, Any], copies: list[Item], same: int, gone: list[str], problems: list[Problem], job_id: str,
    tuning: work.Tuning,
) -> None:  # fmt: skip
    """Fold one page into the listing's totals; its deletions and problems go to a page file."""
    listing["page"] += 1
    listing["toCopy"] += len(copies)
    listing["bytesToCopy"] += sum(c.size for c in copies)
    listing["unchanged"] += same
    listing["deleted"] += len(gone)
    listing["problems"] += len(problems)
    if gone or problems:
        work.put_json(
            work.page_key(job_id, listing["page"]),
            {"deleted": gone, "problems": [{"path": p.path, "message": p.message} for p in problems]},
        )
    _write_batches(job_id, listing, copies, tuning)


def _progress(listing: dict[str, Any]) -> dict[str, Any]:
    return {"phase": "listing", **{k: listing[k] for k in ("toCopy", "bytesToCopy", "unchanged", "deleted")}}


def _plan_copy(job_id: str, listing: dict[str, Any], tuning: work.Tuning) -> None:
    """Inline Map over a short list in the state, or a Distributed Map over an index file in S3."""
    keys = [work.batch_key(job_id, n) for n in range(1, listing["batches"] + 1)]
    listing["distributed"] = listing["batches"] > tuning.distributed_threshold
    listing["concurrency"] = tuning.max_concurrency
    listing.pop("batchList", None)
    if listing["distributed"]:
        listing["indexKey"] = work.index_key(job_id)
        work.put_json(listing["indexKey"], keys)
    else:
        listing["batchList"] = keys
