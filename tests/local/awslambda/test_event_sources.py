"""The SQS event source mapping's pollers long-poll, as Lambda's do, and stop without waiting out a long poll.

Lambda long-polls the queue (https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html), up to SQS's 20 s
(https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-short-and-long-polling.html).
Polling every second made an idle local cloud spend most of its CPU asking empty queues.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from longrun.local.awslambda import event_sources
from longrun.local.awslambda.event_sources import SqsPoller
from longrun.local.awslambda.resources import EventSourceSpec
from longrun.local.awslambda.runtime import Outcome


class _Queue:
    """An SQS client whose receive waits as SQS does: until ``arrive()`` or the asked wait is over."""

    def __init__(self) -> None:
        self.waits: list[int] = []
        self.deleted: list[str] = []
        self._arrived = threading.Event()
        self._lock = threading.Lock()
        self._messages: list[dict[str, Any]] = []

    def get_queue_attributes(self, **_: Any) -> dict[str, Any]:
        return {"Attributes": {"QueueArn": "arn:aws:sqs:us-east-1:123456789012:q"}}

    def arrive(self, *ids: str) -> None:
        with self._lock:
            self._messages += [{"MessageId": i, "ReceiptHandle": f"r-{i}", "Body": "{}"} for i in ids]
        self._arrived.set()

    def receive_message(self, WaitTimeSeconds: int, **_: Any) -> dict[str, Any]:
        self.waits.append(WaitTimeSeconds)
        self._arrived.wait(WaitTimeSeconds)
        with self._lock:
            taken, self._messages = self._messages[:1], self._messages[1:]
            if not self._messages:
                self._arrived.clear()
        return {"Messages": taken} if taken else {}

    def delete_message_batch(self, Entries: list[dict[str, str]], **_: Any) -> None:
        self.deleted += [e["ReceiptHandle"] for e in Entries]


class _Runtime:
    def __init__(self, seconds: float = 0.0) -> None:
        self.events: list[dict[str, Any]] = []
        self.seconds = seconds

    def invoke(self, function: str, event: dict[str, Any]) -> Outcome:
        time.sleep(self.seconds)
        self.events.append(event)
        return Outcome(payload=b"{}")


def _poller(queue: _Queue, runtime: _Runtime) -> SqsPoller:
    return SqsPoller(EventSourceSpec("http://q", "fn"), queue, runtime, "us-east-1")  # type: ignore[arg-type]


def test_an_idle_poller_waits_for_a_message_as_long_as_sqs_lets_it():
    queue, runtime = _Queue(), _Runtime()
    poller = _poller(queue, runtime)
    poller.start()
    time.sleep(0.5)
    assert queue.waits == [20] * event_sources.CONCURRENT_BATCHES, "one long poll per poller, none repeated"
    queue.arrive("m1")
    deadline = time.monotonic() + 5
    while not runtime.events and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [r["messageId"] for e in runtime.events for r in e["Records"]] == ["m1"], "a long poll adds no latency"
    poller.stop()
    queue.arrive("wake")  # the other pollers' long polls end; stopped, they deliver nothing


def test_stop_does_not_wait_out_a_long_poll_and_what_it_then_receives_is_not_delivered():
    queue, runtime = _Queue(), _Runtime()
    poller = _poller(queue, runtime)
    poller.start()
    time.sleep(0.2)
    started = time.monotonic()
    poller.stop()
    assert time.monotonic() - started < 0.5, "stop() waited for pollers that were only waiting for messages"
    queue.arrive("late")
    time.sleep(0.3)
    assert runtime.events == [] and queue.deleted == [], "a poller stopped mid-poll delivered a batch"


def test_stop_lets_a_batch_being_delivered_finish():
    queue, runtime = _Queue(), _Runtime(seconds=1.0)
    poller = _poller(queue, runtime)
    poller.start()
    queue.arrive("m1")
    time.sleep(0.3)  # the batch is being delivered
    poller.stop()
    assert len(runtime.events) == 1 and queue.deleted == ["r-m1"], "stop() cut a delivery short"
    queue.arrive("wake")
