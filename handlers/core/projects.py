"""The project store: one item per project and one per reserved name, in the projects table.

* ``project#<projectId>``: the project as ``GET /projects/{projectId}`` shows it;
* ``name#<userId>#<name>``: the reservation that makes a name unique among a user's projects.
"""

from __future__ import annotations

from typing import Any

from core import aws
from core.config import settings
from core.records import plain

PROJECT_FIELDS = ("projectId", "name", "template", "s3Prefix", "workspace", "defaultBranch", "createdAt", "jobId")


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
    return {field: project.get(field) for field in PROJECT_FIELDS}
