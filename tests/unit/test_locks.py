"""The per-project git lock: one holder, lapses on its own, released only by its holder."""

from __future__ import annotations

import threading

from core import locks


def test_one_job_holds_a_project_and_a_second_learns_who(aws):
    assert locks.acquire("prj-1", "job-a", "git-clone") is None
    assert locks.acquire("prj-1", "job-b", "git-merge") == "job-a"
    assert locks.acquire("prj-2", "job-b", "git-merge") is None, "other projects are not affected"


def test_the_holder_may_take_it_again_and_only_the_holder_releases(aws):
    assert locks.acquire("prj-1", "job-a", "git-clone") is None
    assert locks.acquire("prj-1", "job-a", "git-clone") is None, "a retried step"
    assert locks.release("prj-1", "job-b") is False
    assert locks.acquire("prj-1", "job-b", "git-clone") == "job-a"
    assert locks.release("prj-1", "job-a") is True
    assert locks.release("prj-1", "job-a") is False, "releasing twice is harmless"
    assert locks.acquire("prj-1", "job-b", "git-clone") is None


def test_a_lock_left_by_a_killed_job_lapses(aws, monkeypatch):
    assert locks.acquire("prj-1", "job-killed", "git-clone") is None
    real_now = locks.epoch_seconds()
    monkeypatch.setattr(locks, "epoch_seconds", lambda: real_now + locks.LOCK_SECONDS + 1)
    assert locks.acquire("prj-1", "job-next", "git-clone") is None
    assert locks.release("prj-1", "job-killed") is False, "the lapsed holder cannot release its successor's lock"


def test_of_many_racing_jobs_exactly_one_gets_the_lock(aws, atomic_requests):
    winners: list[str] = []
    guard = threading.Lock()

    def take(i: int) -> None:
        if locks.acquire("prj-race", f"job-{i}", "git-clone") is None:
            with guard:
                winners.append(f"job-{i}")

    threads = [threading.Thread(target=take, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1
