"""``statemachines/delete_project.asl.json`` and its template section, judged by AWS's limits.

- no execution can reach the history's 25,000 events
  (https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html: "Maximum execution
  history size: 25,000 events"): each turn of the DeleteObjects and RemoveWorkspace loops works
  ``TURN_SECONDS`` unless it is the last, so the loops together take at most the machine's
  ``TimeoutSeconds / TURN_SECONDS`` turns, plus the last turn of each;
- a page is at most 1,000 keys, DeleteObjects' limit
  (https://docs.aws.amazon.com/AmazonS3/latest/API/API_DeleteObjects.html);
- a turn never holds a Lambda long: the loop functions' Timeout leaves room past TURN_SECONDS,
  each Task's TimeoutSeconds is a backstop above its function's Timeout.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

for _name, _value in {"POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_SERVICE_NAME": "longrun"}.items():
    os.environ.setdefault(_name, _value)  # the step modules build Powertools' tracer when imported

from steps.lifecycle import objects, turns  # noqa: E402
from tests.infra.test_sync_machine import EVENTS, HISTORY_LIMIT, cycle, events_per_turn  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DEFINITION = REPO / "statemachines" / "delete_project.asl.json"
TEMPLATE = REPO / "infra" / "template.yaml"
LOOPS = {"DeleteObjects": "ObjectsLeft", "RemoveWorkspace": "FilesLeft"}
FUNCTIONS = {
    "DeleteObjects": "DeleteProjectObjectsFunction",
    "RemoveWorkspace": "DeleteProjectWorkspaceFunction",
    "MarkDeleting": "DeleteProjectMarkFunction",
    "RemoveRecords": "DeleteProjectRecordsFunction",
}


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    return json.loads(DEFINITION.read_text())


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    from cfnlint.decode import decode

    decoded, errors = decode(str(TEMPLATE))
    assert not errors, errors
    return decoded


def worst_history(definition: dict[str, Any], turn_seconds: float) -> int:
    """Events of the longest execution: every turn the time allows, then every other state once."""
    per_turn = max(events_per_turn(definition, cycle(definition, task, choice)) for task, choice in LOOPS.items())
    turns_at_most = int(definition["TimeoutSeconds"] // turn_seconds) + len(LOOPS)
    rest = 2 + sum(EVENTS.get(s["Type"], 2) for s in definition["States"].values())  # start, end, each once
    return turns_at_most * per_turn + rest


def test_each_loop_is_its_task_and_its_choice(definition):
    for task, choice in LOOPS.items():
        assert cycle(definition, task, choice) == [task, choice]
        assert events_per_turn(definition, [task, choice]) == 7


def test_no_execution_reaches_the_history_limit(definition):
    worst = worst_history(definition, turns.TURN_SECONDS)
    # Half the limit: room for the retries (3 events each) that a bad hour adds.
    assert worst < HISTORY_LIMIT // 2, worst


def test_a_planted_shorter_turn_or_longer_timeout_fails(definition):
    """The count can fail: turns of a second, or a machine that may run a week, would pass the limit."""
    assert worst_history(definition, 1) >= HISTORY_LIMIT // 2
    assert worst_history({**definition, "TimeoutSeconds": 7 * 24 * 3600}, turns.TURN_SECONDS) >= HISTORY_LIMIT // 2


def test_a_page_is_within_delete_objects_limit():
    assert 1 <= objects.PAGE_KEYS <= 1000


def test_turns_are_short_and_each_task_outlasts_its_function(definition, template):
    resources = template["Resources"]
    for state, function in FUNCTIONS.items():
        timeout = int(resources[function]["Properties"].get("Timeout", 10))
        assert int(definition["States"][state]["TimeoutSeconds"]) > timeout, state
        if state in LOOPS:
            assert turns.TURN_SECONDS * 2 <= timeout <= 120, (state, timeout)
