"""The project store: one item per project and one per reserved name, in the projects table.

* ``project#<projectId>``: the project as ``GET /projects/{projectId}`` shows it;
* ``name#<userId>#<name>``: the reservation that makes a name unique among a user's projects.

A project record also carries ``projectCreatedAt`` (its ``createdAt``): with ``userId`` it is the key
of the table's ``byUser`` index, which ``GET /projects`` pages through newest first. The index has
keys of its own because other items of the table have a ``userId`` or a numeric ``createdAt``
(``syncreq#``): only project records carry ``projectCreatedAt``, so only they are in the (sparse) index.

``status`` is ``active``, or ``deleting`` from the moment a ``delete-project`` job marked it: then
no job but another ``delete-project`` starts on it (:func:`refuse_if_deleting`), and a delete that
failed midway leaves it ``deleting``, never half usable.
"""

from __future__ import annotations

from typing import Any

from core import aws
from core.config import settings
from core.errors import ProjectBusy
from core.records import plain

PROJECT_FIELDS = (
    "projectId", "name", "template", "repoUrl", "s3Prefix", "workspace", "defaultBranch", "createdAt", "jobId",
)  # fmt: skip
ACTIVE = "active"
DELETING = "deleting"
# The projects table's index of each user's projects (infra/template.yaml, ProjectsTable).
BY_USER_INDEX = "byUser"
LISTED_AT = "projectCreatedAt"
# The only job that may start on a project being deleted: a new try at deleting it.
DELETE_JOB_TYPE = "delete-project"


def _table() -> Any:
    return aws.table(settings().projects_table)


def name_key(user_id: str, name: str) -> dict[str, str]:
    return {"pk": f"name#{user_id}#{name}"}


def project_key(project_id: str) -> dict[str, str]:
    return {"pk": f"project#{project_id}"}


def name_reservation(user_id: str, name: str) -> dict[str, Any] | None:
    item = _table().get_item(Key=name_key(user_id, name), ConsistentRead=True).get("Item")
    return plain(item) if item else None


def get(project_id: str) -> dict[str, Any] | None:
    """A project whoever owns it: for triggers, which learn the owner from the project (never from the event)."""
    item = _table().get_item(Key=project_key(project_id)).get("Item")
    return plain(item) if item else None


def get_owned(project_id: str, user_id: str) -> dict[str, Any] | None:
    item = _table().get_item(Key=project_key(project_id)).get("Item")
    if not item or item.get("userId") != user_id:
        return None
    return plain(item)


def view(project: dict[str, Any]) -> dict[str, Any]:
    shown = {field: project.get(field) for field in PROJECT_FIELDS}
    shown["status"] = project.get("status") or ACTIVE
    return shown


def is_deleting(project: dict[str, Any]) -> bool:
    return project.get("status") == DELETING


def refuse_if_deleting(project: dict[str, Any], job_type: str | None = None) -> None:
    """``ProjectBusy`` (409) for a project being deleted, unless the job is another try at deleting it."""
    if is_deleting(project) and job_type != DELETE_JOB_TYPE:
        holder = project.get("deletingJobId")
        raise ProjectBusy(
            f"project {project['projectId']} is being deleted (job {holder})",
            [{"path": "projectId", "message": "the project is being deleted", "jobId": holder}],
        )


def query_page(
    *, user_id: str, limit: int, start_key: dict[str, Any] | None
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Up to ``limit`` of the user's projects, newest first, and the key to go on from (or ``None``)."""
    from boto3.dynamodb.conditions import Key

    kwargs: dict[str, Any] = {
        "IndexName": BY_USER_INDEX,
        "KeyConditionExpression": Key("userId").eq(user_id),
        "ScanIndexForward": False,
        "Limit": limit,
    }
    if start_key:
        kwargs["ExclusiveStartKey"] = start_key
    page = _table().query(**kwargs)
    key = page.get("LastEvaluatedKey")
    return [plain(i) for i in page.get("Items", [])], (plain(key) if key else None)
