"""The REST API behind a custom domain's API mapping: routing without the base path, and true ``Location``s.

One API answers at two kinds of address (docs/contract.md, "Base URL"):

- its stage, ``https://{api}.execute-api.{region}.amazonaws.com/{stage}/jobs``: the event's ``path``
  is ``/jobs``, and ``requestContext.path`` is what the client asked for, ``/{stage}/jobs``;
- a custom domain with an API mapping, ``https://platform.example.com/api/jobs``: API Gateway
  routes on ``/jobs`` but leaves the mapping's base path in the event's ``path`` (``/api/jobs``), and
  ``requestContext.path`` is the same. Powertools routes on ``path``, so without the base path
  stripped no route would match (its docs, "Custom Domain API Mappings":
  https://docs.powertools.aws.dev/lambda/python/latest/core/event_handler/api_gateway/#custom-domain-api-mappings).

``API_BASE_PATH`` is the template's ``RestApiBasePath`` (empty: none). :func:`routed` strips it only
from a request that came through the mapping (``path`` equal to ``requestContext.path``; at the
stage the two differ by the stage), so a stage request whose path merely starts like the base path
is never cut. :func:`public_path` is then a path of the API as *this* client addresses it (stage or
base path in front), what a ``Location`` header must be: an HTTP client resolves it against the URL
it asked (RFC 9110, section 10.2.2), and ``/jobs/…`` alone would leave the stage or the mapping.
"""

from __future__ import annotations

import os
from typing import Any


def base_path() -> str:
    """``/api`` for ``API_BASE_PATH=api`` (or ``/api/``), ``""`` without one."""
    value = os.environ.get("API_BASE_PATH", "").strip().strip("/")
    return f"/{value}" if value else ""


def _context_path(event: dict[str, Any]) -> str | None:
    path = (event.get("requestContext") or {}).get("path")
    return path if isinstance(path, str) else None


def routed(event: dict[str, Any]) -> dict[str, Any]:
    """The event with its ``path`` as the API's routes name it: the mapping's base path taken off."""
    prefix = base_path()
    path = event.get("path")
    if not prefix or not isinstance(path, str) or path != _context_path(event):
        return event
    if path == prefix or path.startswith(prefix + "/"):
        return {**event, "path": path[len(prefix) :] or "/"}
    return event


def public_path(event: dict[str, Any], path: str) -> str:
    """``path`` (a route of the API, ``/jobs/…``) as the client that sent ``event`` reaches it.

    The prefix is what the client's path has in front of the routed path: ``/{stage}`` at the stage,
    the base path behind a mapping, nothing at a domain's root (or the local cloud's root).
    """
    asked = _context_path(event)
    route = routed(event).get("path")
    if not asked or not isinstance(route, str) or not asked.endswith(route):
        return path
    prefix = asked[: len(asked) - len(route)].rstrip("/")
    return prefix + path
