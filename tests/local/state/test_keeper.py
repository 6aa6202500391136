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
