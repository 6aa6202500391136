"""moto's SQS in process (``mock_aws``), on a clock the test moves, with one patch of longrun/local/sqs/ or none.

Each test installs only the patch it is about, for itself only: the other tests of the process run
moto as it is (installing every patch would change them). A test asking for ``sqs_moto`` gets moto
alone, which is how the gap the patch fills is shown to exist.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from longrun.local import patches
from longrun.local.sqs import patches as sqs_patches

START = 1_700_000_000.0  # any fixed instant


class Clock:
    """moto's SQS clock (``moto.sqs.models.unix_time``), moved by the test: no real waits."""

    def __init__(self) -> None:
        self.now = START

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def unix_time(self, dt: Any = None) -> float:
        return self.now

    def unix_time_millis(self, dt: Any = None) -> float:
        return self.now * 1000.0


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    import moto.sqs.models as models

    fake = Clock()
    monkeypatch.setattr(models, "unix_time", fake.unix_time)
    monkeypatch.setattr(models, "unix_time_millis", fake.unix_time_millis)
    return fake


def install_only(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """The one patch ``sqs.<name>``, put back by ``monkeypatch`` after the test."""
    (patch,) = (p for p in sqs_patches.PATCHES if p.name == name)
    before = {}
    for target in patch.replaces:
        owner, attribute = patches._owner_and_name(target)
        before[target] = patches.current(target)
        monkeypatch.setattr(owner, attribute, before[target])  # recorded, restored after the test
    patch.apply()
    assert all(patches.current(target) is not value for target, value in before.items()), patch.key


def _client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


@pytest.fixture
def sqs_moto(monkeypatch: pytest.MonkeyPatch, clock: Clock) -> Iterator[Any]:
    """moto's SQS as it is."""
    yield from _client(monkeypatch)


@pytest.fixture
def sqs_fair(monkeypatch: pytest.MonkeyPatch, clock: Clock) -> Iterator[Any]:
    """moto's SQS with the fair-queues patch only."""
    install_only(monkeypatch, "fair-queues")
    yield from _client(monkeypatch)


@pytest.fixture
def sqs_retention(monkeypatch: pytest.MonkeyPatch, clock: Clock) -> Iterator[Any]:
    """moto's SQS with the retention patch only."""
    install_only(monkeypatch, "messages-expire-past-retention")
    yield from _client(monkeypatch)
