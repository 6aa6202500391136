"""Planted defects: a copy of the template (and its state machines) with one thing AWS refuses.

The template's relative paths (``CodeUri: ../handlers/``, ``DefinitionUri: ../statemachines/...``)
resolve against its folder, so a planted copy is ``infra/`` and ``statemachines/`` copied into a
temporary folder beside links to the code it names.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def copy_of_template(into: Path) -> Path:
    """``infra/`` and ``statemachines/`` copied under ``into``, the code linked; the copy's template path."""
    for folder in ("infra", "statemachines"):
        shutil.copytree(REPO / folder, into / folder, symlinks=True)
    for folder in ("handlers", "schemas", "console"):
        (into / folder).symlink_to(REPO / folder, target_is_directory=True)
    return into / "infra" / "template.yaml"


def duplicate_a_state_name(definition: dict[str, Any]) -> str | None:
    """Rename a Map processor's first state like a top-level state, in place; that name (None: no Map).

    State names must be unique across the whole machine, Map processors included
    (https://states-language.net/spec.html): Step Functions answers ``InvalidDefinition``.
    """
    taken = next(iter(definition["States"]))
    for state in definition["States"].values():
        processor = state.get("ItemProcessor") or state.get("Iterator")
        if state.get("Type") != "Map" or not processor:
            continue
        old = processor["StartAt"]
        processor["States"][taken] = processor["States"].pop(old)
        processor["StartAt"] = taken
        for inner in processor["States"].values():
            if inner.get("Next") == old:
                inner["Next"] = taken
        return taken
    return None


def plant_duplicate_state_name(statemachines: Path) -> tuple[str, str]:
    """In the first ``*.asl.json`` under ``statemachines`` with a Map: (its file name, the duplicated name)."""
    for path in sorted(statemachines.glob("*.asl.json")):
        definition = json.loads(path.read_text(encoding="utf-8"))
        taken = duplicate_a_state_name(definition)
        if taken is not None:
            path.write_text(json.dumps(definition, indent=2), encoding="utf-8")
            return path.name, taken
    raise AssertionError(f"no state machine under {statemachines} has a Map state to plant a duplicate in")
