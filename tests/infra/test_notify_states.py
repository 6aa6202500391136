"""Every machine ends through the one definition of its notify states, ``statemachines/notify-states.json``.

ASL has no include and DefinitionSubstitutions only fill strings (see the fragment's Comment), so
each machine holds a copy; this test holds each copy to the fragment, but for what the fragment's
``MachineMayChange`` lists (a Comment, a Fail state's Cause, a second success state's result path).
"""

from __future__ import annotations

import copy

import pytest

from core.workflow_errors import FAIL_STATE_ERRORS
from tests.support import workflow_rules as rules


@pytest.fixture(scope="module")
def fragment():
    return rules.notify_fragment()


def test_every_machine_s_notify_and_fail_states_are_the_fragment_s(fragment):
    machines = rules.machines()
    assert set(machines) >= {"build", "create_project", "git_clone", "git_merge", "sync"}
    assert [p for name, d in machines.items() for p in rules.notify_problems(name, d, fragment)] == []


def test_the_fragment_s_fail_states_are_those_core_retries_refuses_to_redrive(fragment):
    errors = {s["Error"] for s in fragment["States"].values() if s["Type"] == "Fail"}
    assert errors == FAIL_STATE_ERRORS
    assert all(s["Next"] in fragment["States"] for s in fragment["States"].values() if "Next" in s)


def test_a_planted_notify_state_that_drifted_fails(fragment):
    machines = rules.machines()
    drifted = copy.deepcopy(machines["git_clone"])
    drifted["States"]["NotifyFailure"]["TimeoutSeconds"] = 60
    assert any("git_clone/NotifyFailure" in p for p in rules.notify_problems("git_clone", drifted, fragment))

    missing = copy.deepcopy(machines["git_merge"])
    missing["States"].pop("JobFailed")
    assert any("no state JobFailed" in p for p in rules.notify_problems("git_merge", missing, fragment))

    elsewhere = copy.deepcopy(machines["build"])
    elsewhere["States"]["NotifySuccess"]["Parameters"]["result.$"] = "$.build"
    assert any("build/NotifySuccess" in p for p in rules.notify_problems("build", elsewhere, fragment))

    unknown = copy.deepcopy(machines["sync"])
    unknown["States"]["NotifyFailure"]["Parameters"]["status"] = "CANCELLED"
    assert any("does not define" in p for p in rules.notify_problems("sync", unknown, fragment))


def test_what_a_machine_may_change_passes(fragment):
    """sync's NotifyCopiedInListing: a second success state with its own Comment and result path."""
    machines = rules.machines()
    assert "NotifyCopiedInListing" in machines["sync"]["States"]
    changed = copy.deepcopy(machines["create_project"])
    changed["States"]["JobFailed"]["Cause"] = "In other words."
    changed["States"]["NotifyFailure"]["Comment"] = "Why this machine says so."
    assert rules.notify_problems("create_project", changed, fragment) == []
