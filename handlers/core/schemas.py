"""Validation against the JSON Schemas in ``schemas/``, with every violation reported by path.

On AWS the schemas are the ``SchemasLayer`` mounted at ``/opt``; ``SCHEMAS_DIR`` says where.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.config import settings

if TYPE_CHECKING:  # jsonschema is imported on first use: read-only routes never pay for it at cold start
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError as SchemaViolation


def _schemas_dir() -> Path:
    return Path(settings().schemas_dir)


@cache
def load(relative: str) -> dict[str, Any]:
    with open(_schemas_dir() / relative, encoding="utf-8") as f:
        return json.load(f)


@cache
def _validator(relative: str) -> Draft202012Validator:
    from jsonschema import Draft202012Validator

    schema = load(relative)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def job_types() -> list[str]:
    """The job kinds this deployment has a parameter schema for."""
    return sorted(p.stem for p in (_schemas_dir() / "jobs").glob("*.json"))


def _path(parts: list[Any]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _describe(error: SchemaViolation, prefix: list[Any]) -> list[dict[str, str]]:
    """One entry per violation; ``required`` and ``additionalProperties`` name the property itself."""
    base = [*prefix, *error.absolute_path]
    if error.validator == "required":
        missing = [p for p in error.validator_value if isinstance(error.instance, dict) and p not in error.instance]
        return [{"path": _path([*base, p]), "message": "is required"} for p in missing] or [
            {"path": _path(base), "message": error.message}
        ]
    if error.validator == "oneOf" and all("title" in s for s in error.validator_value):
        # "… is not valid under any of the given schemas" names neither shape: say which ones there are.
        shapes = "; or ".join(s["title"] for s in error.validator_value)
        return [{"path": _path(base) or "(body)", "message": f"is none of the accepted shapes: {shapes}"}]
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extra = [p for p in error.instance if p not in allowed]
        return [{"path": _path([*base, p]), "message": "is not an accepted property"} for p in extra]
    return [{"path": _path(base) or "(body)", "message": error.message}]


def violations(relative: str, instance: Any, prefix: list[Any] | None = None) -> list[dict[str, str]]:
    """Every violation of ``instance`` against ``schemas/<relative>``, sorted by path."""
    found: list[dict[str, str]] = []
    for error in _validator(relative).iter_errors(instance):
        found.extend(_describe(error, prefix or []))
    return sorted(found, key=lambda d: (d["path"], d["message"]))
