"""``longrun smoke``: every job kind, end to end, against a deployed stack, right after ``sam deploy``.

It finds the stack from its CloudFormation outputs (the local cloud registers the same outputs,
naming its own fronts), signs a short-lived token with the stack's secret (read from SSM with the
operator's own credentials, never printed), and runs over the public REST and WebSocket APIs, as a
user would: create-project, the project in ``GET /projects``, git-merge, git-branch (a git-flow
feature-start), upload → sync (the PUT to the pre-signed URL starts the sync through S3's
events), the download of that file (its bytes compared with what was uploaded), build, git-clone
of ``--repo``, git-pull of it, git-push to it (only with ``--push``: a push needs a repository the
operator may push to, so without it the row says SKIPPED and why), and last delete-project, the
clean-up, after which ``GET /projects/{id}`` must be ``404``. Each job is watched over the
WebSocket until its ``job.finished``; the table says how long that took from the request.

The push is of the cloned branch as it is: the origin is asked for its receive-pack with the
credentials (so the way there and the right to push are proven), and nothing on it changes.

Then it removes, with the operator's credentials, what delete-project leaves: the build
artifacts (``artifacts/<projectId>/``), the old versions of the sync manifest and, when every row
passed, the build log group. A delete-project that failed leaves the project; its S3 objects are
then removed by hand as before, and the output says what stays. Each run uses a project name of its own, so what stays
never collides with the next run.
"""

from __future__ import annotations

import contextlib
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from botocore.exceptions import BotoCoreError, ClientError

from longrun import operator
from longrun.client import ApiError, Client, Endpoints
from longrun.operator import OperatorError

DEFAULT_REPO = "https://github.com/octocat/Hello-World.git"
DEFAULT_USER = "longrun-smoke"
DEFAULT_TIMEOUT = 600
TOKEN_SECONDS = 900  # long enough for the run, short enough not to matter if it leaks
UPLOAD_PATH = "smoke/hello.txt"
UPLOAD_BODY = b"hello from longrun smoke\n"
FEATURE = "smoke"  # the git-flow feature-start's name: the branch feature/smoke, from develop
PASSED = frozenset({"SUCCEEDED", "OK"})  # a job's final status, or a check's (projects list, download)


@dataclass
class Row:
    job: str
    status: str = "NOT RUN"
    seconds: float | None = None
    job_id: str = ""
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.status in PASSED

    @property
    def failed(self) -> bool:
        """Neither passed nor skipped on purpose (git-push without ``--push``)."""
        return not self.ok and self.status != "SKIPPED"


@dataclass
class Stack:
    api: str
    ws: str
    bucket: str
    secret_parameter: str
    log_group_prefix: str


def find_stack(name: str) -> Stack:
    """The stack's URLs and names from its outputs; :class:`OperatorError` if it is not a longrun stack."""
    return Stack(
        api=operator.output(name, "RestApiUrl").rstrip("/"),
        ws=operator.output(name, "WebSocketUrl"),
        bucket=operator.output(name, "ProjectsBucketName"),
        secret_parameter=operator.output(name, "TokenSecretParameterName"),
        log_group_prefix=operator.output(name, "BuildLogGroupPrefix"),
    )


def mint_token(stack: Stack, user: str) -> str:
    """A token of ``TOKEN_SECONDS`` for ``user``, signed with the stack's secret (read, used, dropped)."""
    from longrun.tokens import make_token

    try:
        parameter = operator.client("ssm").get_parameter(Name=stack.secret_parameter, WithDecryption=True)
    except ClientError as e:
        raise OperatorError(
            f"cannot read the token secret {stack.secret_parameter} ({e.response['Error']['Code']}): "
            "the operator needs ssm:GetParameter on it (and kms:Decrypt on its key)"
        ) from None
    except BotoCoreError as e:
        raise OperatorError(f"cannot reach SSM ({e})") from None
    return make_token(user, TOKEN_SECONDS, parameter["Parameter"]["Value"])


def project_name() -> str:
    """``smoke-<UTC timestamp>-<random>``: a create-project name (3-40 of a-z0-9-) no other run has."""
    return f"smoke-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{secrets.token_hex(3)}"


class Smoke:
    def __init__(
        self,
        client: Client,
        repo: str,
        timeout: float,
        out: Callable[[str], None],
        push: bool = False,
        credentials: str | None = None,
    ) -> None:
        self.client, self.repo, self.timeout, self.out = client, repo, timeout, out
        self.push, self.credentials = push, credentials
        self.project_id: str | None = None
        self.uploaded = False  # the PUT to the upload URL answered 200: there is a file to download
        self.running: list[str] = []  # jobs that never finished: cancelled before the clean-up

    def watch(self, row: Row, job_id: str, started: float) -> None:
        """Follow the job over the WebSocket to its ``job.finished``; the row gets its status and time."""
        row.job_id = job_id
        try:
            for event in self.client.watch(job_id, timeout=self.timeout):
                if event["type"] == "job.finished":
                    row.seconds = time.monotonic() - started
                    row.status = event.get("status", "UNKNOWN")
                    if not row.ok:
                        error = event.get("error") or self.client.job(job_id).get("error") or {}
                        row.note = f"{error.get('code', '')}: {error.get('message', '')}".strip(": ")
                    return
        except TimeoutError:
            row.status, row.note = "TIMEOUT", f"no job.finished within {self.timeout:.0f} s"
            self.running.append(job_id)
            return
        except (ApiError, httpx.HTTPError, OSError) as e:  # the WebSocket refused, the events unreadable
            row.status, row.note = "ERROR", f"watching the job failed: {e}"
            self.running.append(job_id)
            return
        row.status, row.note = "NO FINISH", "the event stream ended without job.finished"

    def start(self, row: Row, job_type: str, params: dict[str, Any]) -> None:
        started = time.monotonic()
        try:
            job = self.client.start_job(job_type, params, self.project_id)
        except (ApiError, httpx.HTTPError) as e:
            row.status, row.note = "ERROR", str(e)
            return
        if job_type == "create-project":
            self.project_id = job.get("projectId")
        self.watch(row, job["jobId"], started)

    def upload_and_sync(self, row: Row) -> None:
        """A file PUT to its pre-signed URL; the sync its S3 event starts, found by listing the project's jobs."""
        assert self.project_id is not None
        try:
            grant = self.client.create_upload(self.project_id, UPLOAD_PATH, "text/plain", len(UPLOAD_BODY))
            started = time.monotonic()
            put = httpx.put(grant["url"], content=UPLOAD_BODY, headers=grant["headers"], timeout=30)
        except (ApiError, httpx.HTTPError) as e:
            row.status, row.note = "ERROR", str(e)
            return
        if put.status_code != 200:
            row.status, row.note = "ERROR", f"the PUT to the upload URL answered {put.status_code}"
            return
        self.uploaded = True
        deadline = started + self.timeout
        while time.monotonic() < deadline:
            syncs = [j for j in self.client.jobs(projectId=self.project_id, limit=20)["items"] if j["type"] == "sync"]
            if syncs:
                self.watch(row, syncs[0]["jobId"], started)
                return
            time.sleep(0.5)
        row.status, row.note = "TIMEOUT", f"no sync started within {self.timeout:.0f} s of the upload"

    def listed(self, row: Row, name: str) -> None:
        """The new project in ``GET /projects`` (newest first: on the first page), with its name."""
        started = time.monotonic()
        cursor: str | None = None
        try:
            for _ in range(20):  # pages of 100: a user with more projects than that is not the smoke's
                page = self.client.projects(limit=100, cursor=cursor)
                found = next((p for p in page["items"] if p.get("projectId") == self.project_id), None)
                if found is not None:
                    row.seconds = time.monotonic() - started
                    good = found.get("name") == name
                    row.status = "OK" if good else "FAILED"
                    row.note = "" if good else f"listed with the name {found.get('name')!r}, not {name!r}"
                    return
                cursor = page.get("nextCursor")
                if not cursor:
                    break
        except (ApiError, httpx.HTTPError) as e:
            row.status, row.note = "ERROR", str(e)
            return
        row.status, row.note = "FAILED", f"{self.project_id} is not in GET /projects"

    def download(self, row: Row) -> None:
        """The uploaded file back through a pre-signed GET: the same bytes, and the size the ticket says."""
        assert self.project_id is not None
        started = time.monotonic()
        try:
            ticket = self.client.create_download(self.project_id, UPLOAD_PATH)
            got = httpx.get(ticket["url"], timeout=30)  # no Authorization: the signature is the grant
        except (ApiError, httpx.HTTPError) as e:
            row.status, row.note = "ERROR", str(e)
            return
        row.seconds = time.monotonic() - started
        if got.status_code != 200:
            row.status, row.note = "FAILED", f"the GET of the download URL answered {got.status_code}"
        elif got.content != UPLOAD_BODY or ticket.get("size") != len(UPLOAD_BODY):
            row.status = "FAILED"
            back, size = len(got.content), ticket.get("size")
            row.note = f"{back} bytes back (ticket size {size}), not the {len(UPLOAD_BODY)} bytes uploaded"
        else:
            row.status = "OK"

    def git_params(self, params: dict[str, Any]) -> dict[str, Any]:
        return {**params, "credentials": self.credentials} if self.credentials else params

    def run(self, name: str) -> list[Row]:
        rows = [Row("create-project"), Row("projects list"), Row("git-merge"), Row("git-branch"), Row("upload->sync"),
                Row("download"), Row("build"), Row("git-clone"), Row("git-pull"), Row("git-push")]  # fmt: skip
        create, listed, merge, branch, sync, download, build, clone, pull, push = rows
        self.out(f"smoke project {name}: running {len(rows) + 1} checks (up to {self.timeout:.0f} s each)…")
        self.start(create, "create-project", {"name": name})
        if not create.ok or self.project_id is None:
            return rows
        self.listed(listed, name)
        # The new repository's develop and main (the scaffold's commit): a merge on a clean workspace.
        self.start(merge, "git-merge", {"source": "develop", "target": "main", "strategy": "merge"})
        self.start(branch, "git-branch", {"flow": "feature-start", "name": FEATURE})  # feature/smoke from develop
        self.upload_and_sync(sync)
        if self.uploaded:
            self.download(download)
        self.start(build, "build", {})
        self.start(clone, "git-clone", self.git_params({"repoUrl": self.repo}))  # it replaces the workspace
        if not clone.ok:
            return rows
        self.start(pull, "git-pull", self.git_params({"strategy": "ff-only"}))  # up to date: updated false
        if not self.push:
            push.status, push.note = "SKIPPED", "no --push: a push needs a --repo you may push to"
            return rows
        self.start(push, "git-push", self.git_params({}))  # the cloned branch as it is: nothing changes
        return rows

    def delete(self, row: Row) -> None:
        """The clean-up: the project's delete-project job, then ``GET /projects/{id}`` must be ``404``."""
        assert self.project_id is not None
        started = time.monotonic()
        try:
            job = self.client.delete_project(self.project_id)
        except (ApiError, httpx.HTTPError) as e:
            row.status, row.note = "ERROR", str(e)
            return
        self.watch(row, job["jobId"], started)
        if not row.ok:
            return
        try:
            self.client.project(self.project_id)
        except ApiError as e:
            if e.status == 404:
                return
            row.status, row.note = "FAILED", f"GET /projects/{self.project_id} afterwards: {e}"
            return
        except httpx.HTTPError as e:
            row.status, row.note = "ERROR", f"GET /projects/{self.project_id} afterwards: {e}"
            return
        row.status, row.note = "FAILED", f"GET /projects/{self.project_id} still answers 200 after the job"

    def cancel_unfinished(self) -> None:
        for job_id in self.running:
            with contextlib.suppress(ApiError, httpx.HTTPError):  # it may have finished meanwhile
                self.client.cancel(job_id)


def _delete_versions(s3: Any, bucket: str, prefix: str) -> int:
    """Every version and delete marker of the keys under ``prefix`` (the bucket keeps versions)."""
    count = 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]  # fmt: skip
        for at in range(0, len(keys), 1000):
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys[at : at + 1000], "Quiet": True})
        count += len(keys)
    return count


def clean_up(stack: Stack, project_id: str, drop_logs: bool, deleted: bool) -> list[str]:
    """What the operator's credentials remove of what delete-project left; lines that say what was and what stays.

    ``deleted``: the delete-project job succeeded, so the project's files, workspace and records
    are gone already; otherwise its S3 objects are removed here, by hand. The sync manifest's old
    versions always are: delete-project deletes the manifest, which in a versioned bucket leaves
    its versions behind a delete marker
    (https://docs.aws.amazon.com/AmazonS3/latest/userguide/DeleteMarker.html).
    """
    lines = []
    s3 = operator.client("s3")
    removed = 0
    prefixes = [f"artifacts/{project_id}/", f"manifests/{project_id}.json"]
    if not deleted:
        prefixes.append(f"projects/{project_id}/")
    try:
        for prefix in prefixes:
            removed += _delete_versions(s3, stack.bucket, prefix)
        named = ", ".join(p.split("/")[0] + "/" for p in prefixes)
        lines.append(f"removed {removed} object versions of s3://{stack.bucket} ({named})")
    except (ClientError, BotoCoreError) as e:
        lines.append(f"could not remove the project's S3 objects: {e}")
    group = f"{stack.log_group_prefix}{project_id}"
    if drop_logs:
        try:
            operator.client("logs").delete_log_group(logGroupName=group)
            lines.append(f"removed the build log group {group}")
        except ClientError as e:
            if e.response["Error"]["Code"] != "ResourceNotFoundException":
                lines.append(f"could not remove the build log group {group}: {e.response['Error']['Code']}")
        except BotoCoreError as e:
            lines.append(f"could not remove the build log group {group}: {e}")
    else:
        lines.append(f"kept the build log group {group} (a job failed: read it with `longrun logs JOB_ID`)")
    if deleted:
        lines.append(f"left: the build cache of {project_id} on EFS and the jobs' records (delete-project keeps "
                     "the jobs' history readable)")  # fmt: skip
    else:
        lines.append(f"left: the EFS workspace and build cache of {project_id}, its project record and the jobs' "
                     "records (delete-project did not succeed: see its row)")  # fmt: skip
    return lines


def print_table(rows: list[Row], out: Callable[[str], None]) -> None:
    header = ("job", "status", "to job.finished", "job id")
    cells = [(r.job, r.status, f"{r.seconds:.1f} s" if r.seconds is not None else "-", r.job_id or "-") for r in rows]
    widths = [max(len(str(c[i])) for c in [header, *cells]) for i in range(4)]
    out("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
    for row, cell in zip(rows, cells, strict=True):
        line = "  ".join(str(c).ljust(w) for c, w in zip(cell, widths, strict=True)).rstrip()
        out(line + (f"  ({row.note})" if row.note else ""))


def run(
    stack_name: str, repo: str, timeout: float, user: str, push: bool = False, credentials: str | None = None
) -> int:
    """0 when every row passed (or was SKIPPED), 1 when one did not (or never finished), 2 when it could not start."""

    def out(line: str) -> None:
        print(line, flush=True)

    try:
        stack = find_stack(stack_name)
        token = mint_token(stack, user)
    except OperatorError as e:
        print(f"longrun smoke: {e}", file=sys.stderr)
        return 2
    smoke = Smoke(Client(Endpoints(stack.api, stack.ws), token), repo, timeout, out, push, credentials)
    out(f"stack {stack_name}: REST {stack.api}, WebSocket {stack.ws}, as user {user} (a {TOKEN_SECONDS // 60}-minute "
        "token signed with the stack's secret)")  # fmt: skip
    rows: list[Row] = []
    try:
        rows = smoke.run(project_name())
    finally:
        smoke.cancel_unfinished()
        if smoke.project_id is not None:  # the clean-up is a job of its own, and a row of the table
            rows.append(Row("delete-project"))
            smoke.delete(rows[-1])
            smoke.cancel_unfinished()
        if rows:
            print_table(rows, out)
        if smoke.project_id is not None:
            deleted = rows[-1].ok
            for line in clean_up(stack, smoke.project_id, drop_logs=not any(r.failed for r in rows), deleted=deleted):
                out(line)
    failed = [r.job for r in rows if r.failed]
    skipped = [f"{r.job}: {r.note}" for r in rows if r.status == "SKIPPED"]
    verdict = "smoke: every job SUCCEEDED" + (f" (skipped {'; '.join(skipped)})" if skipped else "")
    out(verdict if not failed else f"smoke: FAILED ({', '.join(failed)})")
    return 1 if failed else 0
