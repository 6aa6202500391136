"""SQS fair queues: a standard queue's ReceiveMessage serves quiet tenants before noisy ones.

On AWS a standard queue whose messages carry a ``MessageGroupId`` is a *fair queue*
(https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-fair-queues.html):
the group id names the message's tenant, and when one tenant takes a disproportionate share of the
consumers, messages of the other ("quiet") tenants are delivered first. moto keeps the group id of
a message sent to a standard queue (and returns it as the ``MessageGroupId`` attribute) but hands
messages out in the order they were sent, so one user's 60 builds in the queue make another
user's single build wait for all 60.

The rules emulated here are the ones AWS states
(https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-fair-queues-detailed.html):

* a tenant is its ``MessageGroupId``; each message without one is a tenant of its own;
* a tenant is *noisy* when its **concurrency share** is over 10 % of the queue's in-flight messages
  with at least 30 of its own in flight, **or** its **processing-time share** is over 10 % of the
  consumers' recent processing time;
* a quiet tenant's message is delivered before any noisy tenant's; among noisy tenants, the one
  with the fewest messages in flight first; when no quiet tenant's message waits, noisy ones are
  delivered as usual (never dropped);
* a tenant stops being noisy when its backlog is drained, or after 5 minutes in which it sent no
  message.

Where the emulation chooses (AWS's thresholds are "approximate" in a distributed system; here they
are exact, so tests can rely on them):

* **processing time** of a message is the time from its receive to its delete, or to the end of its
  visibility timeout when it is not deleted (a message still in flight counts up to now);
  "recently" is a sliding window of the last :data:`WINDOW_SECONDS` (5 minutes);
* the shares are computed once per ``ReceiveMessage`` call; the in-flight counts are updated after
  each message that call hands out (a batch of 10 is spread over noisy tenants as AWS describes);
* a queue none of whose messages carries a group id is served in moto's order (every tenant is a
  single message there, and the order moto gives is what such a queue has always had locally);
* ties are broken by queue order (the order moto keeps: first sent, first served), and a tenant's
  own messages stay in that order;
* FIFO queues are left to moto untouched (their group ids mean ordering, not tenants).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from copy import deepcopy
from dataclasses import dataclass, field
from typing import Any

# AWS's stated thresholds (sqs-fair-queues-detailed.html).
SHARE = 0.10
MIN_IN_FLIGHT = 30
QUIET_AFTER_SECONDS = 300
# The "recent" processing time: our choice (AWS does not say), the same 5 minutes as above.
WINDOW_SECONDS = 300
_RECEIVED_AT = "_longrun_received_at"  # ms, on moto's Message: when its current receive began


@dataclass
class FairState:
    """What a queue remembers beyond its messages: finished processing, and when each tenant last sent."""

    finished: deque[tuple[float, Any, float]] = field(default_factory=deque)  # (end ms, tenant, start ms)
    last_sent: dict[Any, float] = field(default_factory=dict)  # tenant -> ms

    def record(self, tenant: Any, start: float, end: float, now: float) -> None:
        with _states_lock:
            if end > start:
                self.finished.append((end, tenant, start))
            horizon = now - WINDOW_SECONDS * 1000
            while self.finished and self.finished[0][0] <= horizon:
                self.finished.popleft()

    def sent(self, tenant: Any, at: float) -> None:
        with _states_lock:
            self.last_sent[tenant] = at

    def copied(self) -> tuple[list[tuple[float, Any, float]], dict[Any, float]]:
        with _states_lock:
            return list(self.finished), dict(self.last_sent)

    def __deepcopy__(self, memo: dict[int, Any]) -> FairState:
        """A consistent copy while requests go on (the snapshot of longrun/local/sqs/persistence.py takes one)."""
        finished, last_sent = self.copied()  # entries are tuples of str and float: nothing deeper to copy
        return FairState(deque(finished), last_sent)


_states_lock = threading.RLock()  # every queue's FairState: short sections, no I/O under it


def state(queue: Any) -> FairState:
    """The queue's fair-queue state, made on first use (a queue restored from a snapshot starts afresh)."""
    found = queue.__dict__.get("_longrun_fair")
    if found is None:
        with _states_lock:
            found = queue.__dict__.setdefault("_longrun_fair", FairState())
    return found


def tenant(message: Any) -> Any:
    """The message's tenant: its group id, or the message itself when it has none."""
    return ("group", message.group_id) if message.group_id is not None else ("message", message.id)


def _now_ms() -> float:
    from moto.sqs import models

    return float(models.unix_time_millis())  # moto's clock, read at call time (tests set it)


def _processing_end(message: Any, now: float) -> float:
    return min(now, float(message.visible_at))


def close_processing(queue: Any, message: Any, now: float) -> None:
    """The message's current receive ends (deleted, or received again): its time joins the queue's history."""
    start = message.__dict__.get(_RECEIVED_AT)
    if start is not None:
        state(queue).record(tenant(message), start, _processing_end(message, now), now)
        del message.__dict__[_RECEIVED_AT]


@dataclass
class _Shares:
    in_flight: dict[Any, int]
    total_in_flight: int
    processing: dict[Any, float]
    total_processing: float
    last_sent: dict[Any, float]
    now: float

    def noisy(self, who: Any) -> bool:
        if self.now - self.last_sent.get(who, 0.0) >= QUIET_AFTER_SECONDS * 1000:
            return False  # it sent nothing for 5 minutes
        mine = self.in_flight.get(who, 0)
        if mine >= MIN_IN_FLIGHT and mine > SHARE * self.total_in_flight:
            return True
        return self.total_processing > 0 and self.processing.get(who, 0.0) > SHARE * self.total_processing


def _shares(queue: Any, now: float) -> _Shares:
    fair = state(queue)
    horizon = now - WINDOW_SECONDS * 1000
    in_flight: dict[Any, int] = {}
    processing: dict[Any, float] = {}
    finished, last_sent = fair.copied()
    for end, who, start in finished:
        overlap = end - max(start, horizon)
        if overlap > 0:
            processing[who] = processing.get(who, 0.0) + overlap
    for message in queue._messages:
        who = tenant(message)
        if message.sent_timestamp is not None and message.sent_timestamp > last_sent.get(who, 0.0):
            last_sent[who] = float(message.sent_timestamp)
        start = message.__dict__.get(_RECEIVED_AT)
        if start is None:
            continue
        end = _processing_end(message, now)
        overlap = end - max(start, horizon)
        if overlap > 0:
            processing[who] = processing.get(who, 0.0) + overlap
        if now <= message.visible_at:  # moto's Message.visible: visible once the clock is past visible_at
            in_flight[who] = in_flight.get(who, 0) + 1
    return _Shares(in_flight, sum(in_flight.values()), processing, sum(processing.values()), last_sent, now)


def _pick(waiting: dict[Any, deque[tuple[int, Any]]], shares: _Shares | None) -> Any:
    """The tenant served next: quiet ones first (queue order), then the noisy one with fewest in flight."""
    if shares is None:
        return min(waiting, key=lambda who: waiting[who][0][0])
    quiet = [who for who in waiting if not shares.noisy(who)]
    if quiet:
        return min(quiet, key=lambda who: waiting[who][0][0])
    return min(waiting, key=lambda who: (shares.in_flight.get(who, 0), waiting[who][0][0]))


def receive_fairly(
    backend: Any, queue: Any, count: int, visibility_timeout: int, attribute_names: list[str]
) -> list[Any]:
    """One pass of ReceiveMessage on a standard queue: up to ``count`` messages, in the fair queues' order."""
    from moto.sqs.models import _filter_message_attributes

    with queue._messages_lock:
        visible = queue.messages  # visible and not delayed (and, with the retention patch, not expired)
        now = _now_ms()
        waiting: dict[Any, deque[tuple[int, Any]]] = {}
        to_dead_letters = []
        grouped = False
        for index, message in enumerate(visible):
            if message in queue.pending_messages:
                queue.pending_messages.remove(message)  # visible again: its consumer timed out
            if (
                queue.dead_letter_queue is not None
                and queue.redrive_policy
                and message.approximate_receive_count >= queue.redrive_policy["maxReceiveCount"]
            ):
                to_dead_letters.append(message)
                continue
            grouped = grouped or message.group_id is not None
            waiting.setdefault(tenant(message), deque()).append((index, message))
        shares = _shares(queue, now) if grouped else None
        result = []
        while waiting and len(result) < count:
            who = _pick(waiting, shares)
            _, message = waiting[who].popleft()
            if not waiting[who]:
                del waiting[who]
            close_processing(queue, message, now)  # a receive after a timed-out one: that one ended
            queue.pending_messages.add(message)
            message.mark_received(visibility_timeout=visibility_timeout)
            message.__dict__[_RECEIVED_AT] = now
            if shares is not None:
                shares.in_flight[who] = shares.in_flight.get(who, 0) + 1
                shares.total_in_flight += 1
            copy = deepcopy(message)
            _filter_message_attributes(copy, attribute_names)
            result.append(copy)
        for message in to_dead_letters:
            queue._messages.remove(message)
    for message in to_dead_letters:
        queue.dead_letter_queue.add_message(message)
    return result


def install() -> None:
    """ReceiveMessage in the fair queues' order; SendMessage and DeleteMessage keep what the rules read."""
    from moto.sqs.exceptions import ReceiptHandleIsInvalid
    from moto.sqs.models import Queue, SQSBackend

    moto_receive = SQSBackend.receive_message
    moto_send = SQSBackend.send_message

    def receive_message(
        self: Any,
        queue_name: str,
        count: int,
        wait_seconds_timeout: int,
        visibility_timeout: int,
        message_attribute_names: list[str] | None = None,
    ) -> list[Any]:
        queue = self.get_queue(queue_name)
        if queue.fifo_queue:
            return moto_receive(self, queue_name, count, wait_seconds_timeout, visibility_timeout,
                                message_attribute_names)  # fmt: skip
        names = message_attribute_names or []
        # Long polling measured on the real clock: moto's (which tests may freeze) only dates messages.
        deadline = time.monotonic() + (wait_seconds_timeout or 0)
        while True:
            result = receive_fairly(self, queue, count, visibility_timeout, names)
            if result or not wait_seconds_timeout or time.monotonic() >= deadline:
                return result
            queue.wait_for_messages(1)

    def send_message(self: Any, queue_name: str, message_body: str, *args: Any, **kwargs: Any) -> Any:
        message = moto_send(self, queue_name, message_body, *args, **kwargs)
        queue = self.get_queue(queue_name)
        if not queue.fifo_queue and message.sent_timestamp is not None:
            state(queue).sent(tenant(message), float(message.sent_timestamp))
        return message

    def delete_message(self: Any, receipt_handle: str) -> None:
        """moto's DeleteMessage (a handle deleted before is fine), recording the message's processing time."""
        if receipt_handle in self.deleted_messages:
            return
        with self._messages_lock:
            found = [m for m in self._messages if m.had_receipt_handle(receipt_handle)]
            if not found:
                raise ReceiptHandleIsInvalid()
            now = _now_ms()
            for message in found:
                close_processing(self, message, now)
                self.pending_messages.discard(message)
                self.deleted_messages.update(message.all_receipt_handles)
            gone = {id(m) for m in found}
            self._messages = [m for m in self._messages if id(m) not in gone]

    SQSBackend.receive_message = receive_message  # type: ignore[method-assign]
    SQSBackend.send_message = send_message  # type: ignore[method-assign]
    Queue.delete_message = delete_message  # type: ignore[method-assign]
