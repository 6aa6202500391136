"""Credentials scoped to one project: what a step that touches a project's files and records acts with.

A step's own role may assume ``ProjectAccessRole`` (``PROJECT_ACCESS_ROLE_ARN``), whose policy
covers the project data of every project. The session policy passed with ``AssumeRole`` narrows
that session to one project, so a bug or a hostile input that makes a step name another project's
key is refused by IAM and not only by the code (the session's permissions are the intersection
of the role's policy and the session policy):

* S3: the objects under ``projects/<projectId>/``, the project's sync manifest
  ``manifests/<projectId>.json`` and its build artifacts ``artifacts/<projectId>/`` (written by the
  build worker, whose download URLs its own role signs); listing only with an ``s3:prefix`` inside
  the project's prefix;
* DynamoDB: the projects table's items whose key (``dynamodb:LeadingKeys``) is the project's:
  ``project#<projectId>`` (the record), ``lock#<projectId>`` (its lock), ``syncreq#<projectId>``
  (its waiting uploads). The key shapes are those of core.projects, core.locks, core.sync_requests.

What stays with the function's own role, and why: the job's records (jobs, job events,
connections: keyed by job, written by every workflow's publisher), a user's name reservations
(``name#<userId>#<name>``: the user's, made before the project exists) and a sync's work files
under ``sync/<jobId>/`` (the job's, read by the state machine's Distributed Map with its own role).

Cost: one AssumeRole per project per warm container. The session is kept (up to MAX_PROJECTS,
least recently used first out) and botocore refreshes its credentials before they expire.

Pre-signed URLs (core.presign) are signed with these sessions too (the API's
``PROJECT_ACCESS_ROLE_ARN`` names ``UploadSigningRole``, which may only put project files): their
credentials carry an Expiration the code can read (a Lambda role's own, in its environment, none),
and a URL signed with temporary credentials dies with them. :func:`lasting_credentials` gives
credentials that last as long as a URL needs, renewing the session when less is left.
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import botocore.loaders
import botocore.session
from botocore.credentials import DeferredRefreshableCredentials, ReadOnlyCredentials, RefreshableCredentials

from core.config import settings

# A Lambda role assuming another is role chaining, which caps a session at one hour. botocore
# refreshes 15 minutes before the end, so a step never signs with credentials about to lapse.
SESSION_SECONDS = 3600
MAX_PROJECTS = 64

OBJECT_ACTIONS = [
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:AbortMultipartUpload",
]
LIST_ACTIONS = ["s3:ListBucket", "s3:ListBucketVersions"]
ITEM_ACTIONS = [
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:DeleteItem",
    "dynamodb:ConditionCheckItem",
]
# The prefixes of the projects table's keys that belong to one project (tests check them against
# the modules that write them: core.projects, core.locks, core.sync_requests).
PROJECT_KEY_KINDS = ("project", "lock", "syncreq")

_lock = threading.Lock()
_sessions: OrderedDict[str, boto3.Session] = OrderedDict()
# The Expiration STS gave each access key of a project session (botocore keeps it private).
_expirations: OrderedDict[str, datetime] = OrderedDict()
# Service models are read once, not once per project session.
_loader = botocore.loaders.create_loader()


class NotConfigured(Exception):
    """The function has no ``PROJECT_ACCESS_ROLE_ARN``: the template wires it into every scoped step."""


def role_arn() -> str:
    arn = os.environ.get("PROJECT_ACCESS_ROLE_ARN", "")
    if not arn.startswith("arn:"):
        raise NotConfigured("PROJECT_ACCESS_ROLE_ARN is not set: this function may not touch project data")
    return arn


def item_keys(project_id: str) -> list[str]:
    """The projects table's keys of this project."""
    return [f"{kind}#{project_id}" for kind in PROJECT_KEY_KINDS]


def session_policy(project_id: str, *, partition: str, region: str, account: str, bucket: str, table: str) -> dict:
    """The session policy that limits a ``ProjectAccessRole`` session to ``project_id``'s data."""
    bucket_arn = f"arn:{partition}:s3:::{bucket}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ProjectObjects",
                "Effect": "Allow",
                "Action": OBJECT_ACTIONS,
                "Resource": [
                    f"{bucket_arn}/projects/{project_id}/*",
                    f"{bucket_arn}/manifests/{project_id}.json",
                    f"{bucket_arn}/artifacts/{project_id}/*",
                ],
            },
            {
                "Sid": "ListProject",
                "Effect": "Allow",
                "Action": LIST_ACTIONS,
                "Resource": bucket_arn,
                "Condition": {"StringLike": {"s3:prefix": f"projects/{project_id}/*"}},
            },
            {
                "Sid": "ProjectItems",
                "Effect": "Allow",
                "Action": ITEM_ACTIONS,
                "Resource": f"arn:{partition}:dynamodb:{region}:{account}:table/{table}",
                "Condition": {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": item_keys(project_id)}},
            },
        ],
    }


def policy_for(project_id: str) -> dict:
    """:func:`session_policy` for this function: its role's partition and account, its bucket and table."""
    _, partition, _, _, account, _ = role_arn().split(":", 5)
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION", "")
    return session_policy(
        project_id,
        partition=partition,
        region=region,
        account=account,
        bucket=settings().projects_bucket,
        table=settings().projects_table,
    )


def session_name(project_id: str) -> str:
    """The session's name (CloudTrail shows it): the project's id, within STS's 64 characters."""
    return f"longrun-{project_id}"[:64]


def _fetcher(project_id: str) -> Any:
    def fetch() -> dict[str, str]:
        from core import aws  # core.aws makes its project clients from this module

        response = aws.client("sts").assume_role(
            RoleArn=role_arn(),
            RoleSessionName=session_name(project_id),
            Policy=json.dumps(policy_for(project_id), separators=(",", ":")),
            DurationSeconds=SESSION_SECONDS,
        )
        credentials = response["Credentials"]
        _remember_expiration(credentials["AccessKeyId"], credentials["Expiration"])
        return {
            "access_key": credentials["AccessKeyId"],
            "secret_key": credentials["SecretAccessKey"],
            "token": credentials["SessionToken"],
            "expiry_time": credentials["Expiration"].isoformat(),
        }

    return fetch


def project_session(project_id: str) -> boto3.Session:
    """A session that acts as ``ProjectAccessRole`` limited to ``project_id``, kept for the container's life.

    The role is assumed on the session's first call (and again before the credentials expire),
    not here: a step that ends up making no call costs nothing.
    """
    role_arn()  # fail at once, not on the first call, when the function is not wired for it
    with _lock:
        session = _sessions.get(project_id)
        if session is not None:
            _sessions.move_to_end(project_id)
            return session
        return _keep(
            project_id, DeferredRefreshableCredentials(refresh_using=_fetcher(project_id), method="sts-assume-role")
        )


def _keep(project_id: str, credentials: RefreshableCredentials) -> boto3.Session:
    """A session on ``credentials``, kept as the project's (the caller holds ``_lock``)."""
    base = botocore.session.Session()  # reads the same environment (region, endpoint) as boto3's
    base.register_component("data_loader", _loader)
    # botocore has no public setter for refreshable credentials; this is how its own
    # assume-role provider hands them to a session.
    base._credentials = credentials
    session = boto3.Session(botocore_session=base)
    _sessions[project_id] = session
    _sessions.move_to_end(project_id)
    while len(_sessions) > MAX_PROJECTS:
        _sessions.popitem(last=False)
    return session


def _remember_expiration(access_key: str, expiration: datetime) -> None:
    with _lock:
        _expirations[access_key] = expiration if expiration.tzinfo else expiration.replace(tzinfo=UTC)
        while len(_expirations) > 4 * MAX_PROJECTS:
            _expirations.popitem(last=False)


@dataclass(frozen=True)
class Lasting:
    """Credentials to sign with, frozen (no refresh between reading the expiry and signing), and their end."""

    credentials: ReadOnlyCredentials
    expiration: datetime


def lasting_credentials(project_id: str, seconds: int) -> Lasting:
    """The project session's credentials, renewed first if they end within ``seconds``.

    botocore renews a session's credentials only when 15 minutes or less are left, which a URL
    that lives longer (or a refresh that failed) does not survive. A renewal assumes the role
    again and keeps the new session as the project's; if even fresh credentials end sooner than
    ``seconds`` (a URL longer than the role's session), the caller reads ``expiration`` and
    shortens the URL to it.
    """
    session = project_session(project_id)
    for attempt in range(2):
        frozen = session.get_credentials().get_frozen_credentials()
        with _lock:
            expiration = _expirations.get(frozen.access_key)
        if expiration is not None and expiration - datetime.now(UTC) >= timedelta(seconds=seconds):
            break
        if attempt == 0:
            fetch = _fetcher(project_id)
            fresh = RefreshableCredentials.create_from_metadata(fetch(), fetch, "sts-assume-role")
            with _lock:
                session = _keep(project_id, fresh)
    if expiration is None:  # not ours to know: treat as ending now, so no URL outlives it unseen
        expiration = datetime.now(UTC)
    return Lasting(frozen, expiration)


def forget() -> None:
    """Drop every kept session (tests; a new environment)."""
    with _lock:
        _sessions.clear()
        _expirations.clear()
