"""Opaque pagination cursors for ``GET /jobs`` and ``GET /projects``.

A cursor is DynamoDB's last evaluated key, base64url-encoded. It is checked on the way back in:
it must decode, have exactly the index's key attributes, and continue the caller's own listing
(the user's, or the project's, whose rows are filtered by user anyway). A cursor of one listing
is refused by the other, and one of another user's listing by both.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from core.errors import ValidationError


def encode(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


def _invalid() -> ValidationError:
    return ValidationError("cursor is not one this API returned", [{"path": "query.cursor", "message": "invalid"}])


def _key_of(cursor: str) -> dict[str, Any]:
    """The JSON object ``cursor`` decodes to (the caller checks its keys); the same 400 for anything else.

    Both listings' cursors are :func:`encode`'s output, so they share this first check and its error,
    which never says what was wrong with a cursor: they are opaque to the client.
    """
    if len(cursor) > 2048:
        raise _invalid()
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise _invalid() from None
    if not isinstance(key, dict):
        raise _invalid()
    return key


def decode(cursor: str, *, user_id: str, project_id: str | None) -> dict[str, Any]:
    bad = _invalid()
    key = _key_of(cursor)
    owner = ("projectId", project_id) if project_id else ("userId", user_id)
    if set(key) != {"jobId", "createdAt", owner[0]}:
        raise bad
    if not all(isinstance(v, str) and v for v in key.values()) or key[owner[0]] != owner[1]:
        raise bad
    return key


def decode_projects(cursor: str, *, user_id: str) -> dict[str, Any]:
    """A ``GET /projects`` cursor: the ``byUser`` index's key of one of the caller's own project records."""
    from core import projects

    bad = _invalid()
    key = _key_of(cursor)
    if set(key) != {"pk", "userId", projects.LISTED_AT}:
        raise bad
    if not all(isinstance(v, str) and v for v in key.values()):
        raise bad
    if key["userId"] != user_id or not key["pk"].startswith("project#"):
        raise bad
    return key
