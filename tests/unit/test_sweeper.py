"""The job sweeper finds each job kind's machine by the naming convention (STATE_MACHINE_ARN_PREFIX + type)."""

from __future__ import annotations

from core import schemas
from triggers import sweeper


def test_the_sweep_lists_every_kinds_machine_by_the_naming_convention(aws, monkeypatch):
    listed: list[str] = []
    original = sweeper._ended_since

    def spy(machine, status, since):
        listed.append(machine)
        return original(machine, status, since)

    monkeypatch.setattr(sweeper, "_ended_since", spy)
    assert sweeper.sweep() == {"looked": 0, "closed": 0}
    prefix = aws.env["STATE_MACHINE_ARN_PREFIX"]
    assert set(listed) == {prefix + kind for kind in schemas.job_types()}


def test_a_kind_whose_machine_is_not_deployed_does_not_stop_the_sweep(aws, monkeypatch):
    """A schema deployed before its machine (or without it) names an ARN that does not exist."""
    kinds = schemas.job_types()
    monkeypatch.setattr(schemas, "job_types", lambda: ["a-kind-not-deployed", *kinds])
    listed: list[str] = []
    original = sweeper._ended_since
    monkeypatch.setattr(sweeper, "_ended_since", lambda m, s, t: (listed.append(m), original(m, s, t))[1])
    assert sweeper.sweep() == {"looked": 0, "closed": 0}
    assert {aws.env["STATE_MACHINE_ARN_PREFIX"] + kind for kind in kinds} <= set(listed)
