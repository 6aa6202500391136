"""``statemachines/sync.asl.json`` and its template section, judged by Step Functions' rules and quotas.

- state names are unique across the whole machine, Map processors included (ASL: "State names
  MUST be unique within the scope of the whole state machine", https://states-language.net/spec.html);
- the Distributed Map writes its children's results to S3 (ResultWriter) rather than into the
  256 KiB state, tolerates no failed batch on purpose, and runs a bounded number of children;
- every Lambda task waits out throttling (``Lambda.TooManyRequestsException``) for minutes, not
  seconds, and the state machine's role may write the Map Run's results;
- no execution can reach the history's 25,000 events
  (https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html: "Maximum execution
  history size: 25,000 events"), counted from the definition: events per turn of each loop times
  the turns until its bound.
"""

from __future__ import annotations

import fnmatch
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

for _name, _value in {"POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_SERVICE_NAME": "longrun"}.items():
    os.environ.setdefault(_name, _value)  # the step modules build Powertools' tracer when imported

from core import locks, sync_requests  # noqa: E402
from steps.sync import acquire, list_page, work  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DEFINITION = REPO / "statemachines" / "sync.asl.json"
TEMPLATE = REPO / "infra" / "template.yaml"
HISTORY_LIMIT = 25_000  # events in one execution's history (service-quotas.html above)
THROTTLED = "Lambda.TooManyRequestsException"
# Events a state writes to its execution's history when it succeeds the first time. A Task whose
# Resource is a Lambda ARN: TaskStateEntered, LambdaFunctionScheduled, LambdaFunctionStarted,
# LambdaFunctionSucceeded, TaskStateExited; each retry adds Scheduled, Started, Failed.
EVENTS = {"Task": 5, "Choice": 2, "Wait": 2, "Pass": 2}
# An inline Map iteration: MapIterationStarted, its task's 5, MapIterationSucceeded.
EVENTS_PER_INLINE_ITERATION = 7


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    return json.loads(DEFINITION.read_text())


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    from cfnlint.decode import decode

    decoded, errors = decode(str(TEMPLATE))
    assert not errors, errors
    return decoded


def states_of(states: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every state, those of Map processors and Parallel branches included."""
    for name, state in states.items():
        yield name, state
        for key in ("ItemProcessor", "Iterator"):
            if key in state:
                yield from states_of(state[key]["States"])
        for branch in state.get("Branches", []):
            yield from states_of(branch["States"])


def test_state_names_are_unique_across_the_whole_machine(definition):
    names = [name for name, _ in states_of(definition["States"])]
    assert len(names) == len(set(names)), sorted(n for n in set(names) if names.count(n) > 1)


def distributed_map(definition: dict[str, Any]) -> dict[str, Any]:
    return next(
        s for _, s in states_of(definition["States"])
        if s["Type"] == "Map" and s.get("ItemProcessor", {}).get("ProcessorConfig", {}).get("Mode") == "DISTRIBUTED"
    )  # fmt: skip


def test_the_distributed_map_writes_its_results_to_s3_and_tolerates_no_failed_batch(definition):
    copy = distributed_map(definition)
    writer = copy.get("ResultWriter")
    assert writer, "without a ResultWriter the children's results come back into the 256 KiB state"
    assert writer["Resource"] == "arn:aws:states:::s3:putObject"
    assert writer["Parameters"]["Bucket"] == "${ProjectsBucketName}"
    assert writer["Parameters"]["Prefix.$"] == "States.Format('sync/{}/results', $.jobId)"
    assert work.results_prefix("J") == "sync/J/results/", "the finish step reads where the writer writes"
    assert copy.get("ResultPath", "absent") is None, "not even the manifest's reference needs the state"
    assert copy.get("ToleratedFailureCount") == 0, "declared: a sync that lost a batch fails"
    assert not {"ToleratedFailurePercentage", "ToleratedFailurePercentagePath", "ToleratedFailureCountPath"} & set(copy)
    assert "MaxConcurrency" in copy or "MaxConcurrencyPath" in copy, "unbounded: 10,000 children at once"


def _total_wait(retrier: dict[str, Any]) -> float:
    interval, rate = retrier.get("IntervalSeconds", 1), retrier.get("BackoffRate", 2.0)
    cap = retrier.get("MaxDelaySeconds", math.inf)
    return sum(min(interval * rate**i, cap) for i in range(retrier.get("MaxAttempts", 3)))


def throttle_retrier(task: dict[str, Any]) -> dict[str, Any] | None:
    """The retrier Step Functions applies to a throttled invoke: the first whose ErrorEquals matches it."""
    for retrier in task.get("Retry", []):
        if THROTTLED in retrier["ErrorEquals"] or "States.ALL" in retrier["ErrorEquals"]:
            return retrier
    return None


def test_every_lambda_task_waits_out_throttling(definition):
    """Syncs at full width together want more copy Lambdas than the account has: the rest wait, not fail."""
    tasks = [(n, s) for n, s in states_of(definition["States"]) if s["Type"] == "Task"]
    assert {"CopyBatchInline", "CopyBatchDistributed"} <= {n for n, _ in tasks}
    for name, task in tasks:
        retrier = throttle_retrier(task)
        assert retrier is not None, name
        assert _total_wait(retrier) >= 20 * 60, (name, _total_wait(retrier))
        assert retrier.get("MaxDelaySeconds", math.inf) <= 60, (name, "a wait longer than a minute wastes the slot")
        assert retrier.get("JitterStrategy") == "FULL", (name, "throttled children must not retry in step")


def test_the_state_machine_may_write_the_map_run_results(template):
    """ResultWriter's actions (https://docs.aws.amazon.com/step-functions/latest/dg/iam-policies-eg-dist-map.html)."""
    policies = template["Resources"]["SyncStateMachine"]["Properties"]["Policies"]
    statements = [s for p in policies if isinstance(p, dict) and "Statement" in p for s in p["Statement"]]
    key = "sync/0123abcd/results/0f1e-run/manifest.json"
    needed = {"s3:PutObject", "s3:GetObject", "s3:ListMultipartUploadParts", "s3:AbortMultipartUpload"}
    granted: set[str] = set()
    for statement in statements:
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for resource in resources:
            pattern = resource.get("Fn::Sub", "") if isinstance(resource, dict) else str(resource)
            if fnmatch.fnmatchcase("${ProjectsBucket.Arn}/" + key, pattern):
                granted |= set(statement["Action"])
    assert needed <= granted, needed - granted
    writes = [s for s in statements if "s3:PutObject" in s["Action"]]
    assert all("/results/" in json.dumps(s["Resource"]) for s in writes), "the role writes nowhere but the results"


# --- the history's 25,000 events ----------------------------------------------------------------


def cycle(definition: dict[str, Any], start: str, back: str) -> list[str]:
    """The states of the loop from ``start`` back to it, through ``back`` (a state that returns to ``start``)."""
    states = definition["States"]
    path, name = [start], start
    while name != back:
        state = states[name]
        name = next(n for n in _following(state) if n == back or _reaches(states, n, back, set()))
        path.append(name)
    assert start in _following(states[back])
    return path


def _following(state: dict[str, Any]) -> list[str]:
    """The states a state goes on to when it succeeds (Catch left out: a failure leaves the loop)."""
    nexts = [c["Next"] for c in state.get("Choices", [])] + [state.get("Default"), state.get("Next")]
    return [n for n in nexts if n]


def _reaches(states: dict[str, Any], name: str, target: str, seen: set[str]) -> bool:
    if name == target:
        return True
    if name in seen or name not in states:
        return False
    seen.add(name)
    return any(_reaches(states, n, target, seen) for n in _following(states[name]))


def events_per_turn(definition: dict[str, Any], loop: list[str]) -> int:
    return sum(EVENTS[definition["States"][name]["Type"]] for name in loop)


def queue_turns() -> int:
    """Turns of the wait loop a sync queued behind a job that never ends makes before ``ProjectBusy``."""
    before: dict[str, Any] = {}
    turns = 0
    bound = work.Tuning.of({}).max_queue_seconds
    while True:
        try:
            before = acquire.queued(before, "holder", bound)
        except locks.ProjectBusy:
            return turns
        turns += 1
        assert turns < HISTORY_LIMIT, "the queue never ends"


def test_the_wait_loop_is_the_one_through_acquire_and_writes_9_events_a_turn(definition):
    loop = cycle(definition, "Acquire", "WaitForProject")
    assert loop == ["Acquire", "Acquired", "WaitForProject"]
    assert events_per_turn(definition, loop) == 9


def test_a_sync_queued_behind_a_job_that_never_ends_stays_far_under_the_history_limit(definition):
    turns = queue_turns()
    events = turns * events_per_turn(definition, cycle(definition, "Acquire", "WaitForProject"))
    # Before: a turn every 2 s for ever; 25,000 events after 25,000 / 9 turns, about 1.5 h.
    assert turns <= 100 and events <= 1_000, (turns, events)


def test_no_execution_of_the_sync_reaches_the_history_limit(definition, template):
    """Every loop at its worst, one after the other, within the state machine's TimeoutSeconds."""
    per_turn = events_per_turn(definition, cycle(definition, "Acquire", "WaitForProject"))
    queue = queue_turns() * per_turn
    # Gathering uploads: a wait of at least 1 s a turn for at most MAX_GATHER_MS, after the first second.
    gather = (sync_requests.MAX_GATHER_MS // 1000 + 1) * per_turn
    # The listing loop: a round lasts ROUND_SECONDS unless it is the last; no longer than the execution.
    rounds = math.ceil(definition["TimeoutSeconds"] / list_page.ROUND_SECONDS)
    listing = rounds * events_per_turn(definition, cycle(definition, "ListPage", "MoreToList"))
    # The inline Map: at most SyncDistributedThreshold batches, each iteration's events in this history.
    threshold = template["Parameters"]["SyncDistributedThreshold"]
    assert "MaxValue" in threshold, "an unbounded threshold is an unbounded inline Map"
    inline = int(threshold["MaxValue"]) * EVENTS_PER_INLINE_ITERATION + 4
    rest = 2 + sum(EVENTS.get(s["Type"], 2) for s in definition["States"].values())  # every other state once
    worst = queue + gather + listing + inline + rest
    # Half the limit: room for the retries (3 events each) that a bad hour adds.
    assert worst < HISTORY_LIMIT // 2, {"queue": queue, "gather": gather, "listing": listing, "inline": inline}
