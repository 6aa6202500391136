"""The snapshot loop inside a moto process: what it saves, when, and how it pauses requests.

A fake adapter stands for a service here, so each rule is seen on its own: nothing saved before the
restore (an empty stack would overwrite the data dir), a changing request makes a save within the
interval, a read does not, a snapshot waits for requests in flight and holds new ones, and a clean
stop saves every service.
"""

from __future__ import annotations

import pickle
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from longrun.local.state import registry
from longrun.local.state.gate import Gate
from longrun.local.state.keeper import Keeper


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    module = ModuleType("fake_persistence")
    module.SERVICE = "sqs"
    module.value = {"n": 0}
    module.restored = []
    module.dump = lambda: dict(module.value)
    module.restore = module.restored.append
    monkeypatch.setitem(sys.modules, "fake_persistence", module)
    monkeypatch.setitem(registry.ADAPTERS, "sqs", "fake_persistence")
    yield module


def _request(app: Any, target: str, method: str = "POST") -> str:
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": "/",
        "HTTP_X_AMZ_TARGET": target,
        "CONTENT_LENGTH": "0",
        "HTTP_AUTHORIZATION": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/sqs/aws4_request",
    }
    return b"".join(app(environ, lambda status, headers: None)).decode()


def _app(fake: ModuleType) -> Any:
    def moto(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if not environ["HTTP_X_AMZ_TARGET"].endswith(("Get", "GetQueueAttributes")):
            fake.value["n"] += 1
        start_response("200 OK", [])
        return [b"ok"]

    return moto


def _saved(tmp_path: Path) -> Any:
    path = tmp_path / "sqs.pickle"
    return pickle.loads(path.read_bytes()) if path.exists() else None


def test_nothing_is_saved_before_the_restore_then_a_change_is_saved_within_the_interval(
    tmp_path: Path, fake: ModuleType
) -> None:
    (tmp_path / "sqs.pickle").write_bytes(pickle.dumps({"n": 41}))
    keeper = Keeper(tmp_path, ["sqs"], interval=0.05)
    app = keeper.wrap(_app(fake))
    _request(app, "AmazonSQS.SendMessage")  # the stack's creation, before the restore
    time.sleep(0.2)
    assert _saved(tmp_path) == {"n": 41}  # not overwritten by the empty stack
    keeper.restore()
    assert fake.restored == [{"n": 41}]
    time.sleep(0.2)
    assert _saved(tmp_path) == {"n": 41}  # restored, unchanged: nothing to save
    fake.value = {"n": 41}
    _request(app, "AmazonSQS.SendMessage")
    time.sleep(0.3)
    assert _saved(tmp_path) == {"n": 42}
    keeper.final_save()


def test_reads_cause_no_save_and_a_stop_saves_everything(tmp_path: Path, fake: ModuleType) -> None:
    keeper = Keeper(tmp_path, ["sqs"], interval=0.05)
    app = keeper.wrap(_app(fake))
    keeper.restore()
    _request(app, "AmazonSQS.GetQueueAttributes")
    time.sleep(0.2)
    assert _saved(tmp_path) is None
    fake.value["n"] = 7  # changed without a request (as a running execution changes Step Functions)
    keeper.final_save()
    assert _saved(tmp_path) == {"n": 7}


def test_busy_keeps_saving_without_requests(tmp_path: Path, fake: ModuleType) -> None:
    fake.busy = lambda: True
    keeper = Keeper(tmp_path, ["sqs"], interval=0.05)
    keeper.restore()
    fake.value["n"] = 3
    time.sleep(0.3)
    assert _saved(tmp_path) == {"n": 3}
    keeper.final_save()


def test_a_snapshot_waits_for_requests_in_flight_and_holds_new_ones() -> None:
    gate = Gate()
    order: list[str] = []
    entered = threading.Event()
    release = threading.Event()

    def request(name: str, hold: threading.Event | None) -> None:
        with gate.shared():
            order.append(f"{name} in")
            entered.set()
            if hold:
                hold.wait(5)
            order.append(f"{name} out")

    first = threading.Thread(target=request, args=("first", release))
    first.start()
    entered.wait(5)
    assert not gate.acquire_exclusive(0.05)  # a request in flight: the snapshot gives up this round
    writer_done = threading.Event()

    def snapshot() -> None:
        assert gate.acquire_exclusive(5)
        order.append("snapshot")
        gate.release_exclusive()
        writer_done.set()

    writer = threading.Thread(target=snapshot)
    writer.start()
    time.sleep(0.05)
    second = threading.Thread(target=request, args=("second", None))
    second.start()
    time.sleep(0.05)
    assert order == ["first in"]  # the second waits behind the waiting snapshot
    release.set()
    for thread in (first, writer, second):
        thread.join(5)
    assert order == ["first in", "first out", "snapshot", "second in", "second out"]


def test_a_snapshot_in_a_child_pauses_requests_only_for_the_fork(tmp_path: Path, fake: ModuleType) -> None:
    """SNAPSHOT_IN_CHILD: the gate is held for the fork alone; the slow pickling happens in the child."""
    fake.SNAPSHOT_IN_CHILD = True

    def slow_dump() -> dict[str, int]:
        time.sleep(0.5)  # in the child: the parent's requests must not wait for it
        return dict(fake.value)

    fake.dump = slow_dump
    fake.value = {"n": 5}
    keeper = Keeper(tmp_path, ["sqs"], interval=3600)  # no loop: the saves below are the test's
    keeper.restore()
    assert keeper.save_all(force=True) == {"sqs": True}
    assert _saved(tmp_path) == {"n": 5}
    stats = keeper.stats["sqs"]
    assert stats["pause_ms"] < 200, stats  # the fork, not the 500 ms dump
    assert stats["save_ms"] >= 500, stats  # the child's whole run is the save's cost
    fake.value = {"n": 6}  # the parent's later change is not in the frozen copy, and is saved next
    keeper.final_save()  # at a stop, in this process
    assert _saved(tmp_path) == {"n": 6}


def test_a_costly_save_paces_the_next_one(tmp_path: Path, fake: ModuleType) -> None:
    """After a save that cost c, none for PACE * c: saving never takes more than 1/(PACE+1) of the time."""
    from longrun.local.state.keeper import PACE

    def dump() -> dict[str, int]:
        time.sleep(0.1)
        return dict(fake.value)

    fake.dump = dump
    fake.busy = lambda: True
    keeper = Keeper(tmp_path, ["sqs"], interval=0.01)
    keeper.restore()
    time.sleep(1.5)
    keeper.final_save()
    # Unpaced, a 100 ms save every 10 ms would run about 14 times in 1.5 s; paced, at most 1.5 / (0.1 * (PACE + 1)) + 1.
    saves = keeper.saves["sqs"]
    assert 2 <= saves <= 1.5 / (0.1 * (PACE + 1)) + 2, saves
