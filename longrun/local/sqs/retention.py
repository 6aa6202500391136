"""SQS deletes a message older than its queue's MessageRetentionPeriod, and refuses a period out of range.

"MessageRetentionPeriod - The length of time, in seconds, for which Amazon SQS retains a message.
Valid values: An integer representing seconds, from 60 (1 minute) to 1,209,600 (14 days)"
(https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SetQueueAttributes.html;
CreateQueue's attributes have the same ranges). Past it the message is deleted, whether it waits
or is in flight.

moto never deletes one: ReceiveMessage, meeting an expired message, marks it received (hidden for
the visibility timeout, its receive count up) and stops there, handing out no message behind it in
that call; the expired message stays in the queue for ever and in ``ApproximateNumberOfMessages``
and ``...NotVisible``. And moto takes any integer as the period (0, -5, 1,209,601), while a value
that is not an integer is a ``500``.

Here an expired message is removed whenever the queue's messages are read (every receive, every
count, the long poll's wait), so the counts drop it too; its receipt handles are remembered as
deleted, so a consumer's late ``DeleteMessage`` of it succeeds as moto answers a second delete.
(On AWS the deletion happens within a short while, not at the exact second: approximate, as the
counts are.) And the integer attributes whose ranges the API reference states are checked at
``CreateQueue`` and ``SetQueueAttributes``: ``InvalidAttributeValue``, as AWS answers.
"""

from __future__ import annotations

from typing import Any

# The queue attributes' ranges (API_SetQueueAttributes.html, API_CreateQueue.html).
RANGES = {
    "DelaySeconds": (0, 900),
    "MessageRetentionPeriod": (60, 1_209_600),
    "ReceiveMessageWaitTimeSeconds": (0, 20),
    "VisibilityTimeout": (0, 43_200),
}


def check_attributes(attributes: dict[str, Any]) -> None:
    """Refuse an integer attribute outside AWS's range, or one that is not an integer."""
    from moto.sqs.exceptions import InvalidAttributeValue

    for name, (low, high) in RANGES.items():
        if name not in attributes:
            continue
        value = attributes[name]
        try:
            number = int(str(value).strip())
        except ValueError:
            raise InvalidAttributeValue(name) from None
        if not low <= number <= high:
            raise InvalidAttributeValue(name)


def expire(queue: Any) -> None:
    """Delete the queue's messages past its retention period (waiting or in flight)."""
    from moto.sqs import models

    limit = models.unix_time_millis() - int(queue.message_retention_period) * 1000
    messages = queue._messages
    if not any(m.sent_timestamp is not None and m.sent_timestamp <= limit for m in messages):
        return
    with queue._messages_lock:
        kept = []
        for message in queue._messages:
            if message.sent_timestamp is not None and message.sent_timestamp <= limit:
                queue.pending_messages.discard(message)
                queue.deleted_messages.update(h for h in message.all_receipt_handles if h)
            else:
                kept.append(message)
        queue._messages = kept


def install() -> None:
    from moto.sqs.models import Queue

    moto_set_attributes = Queue._set_attributes

    def _set_attributes(self: Any, attributes: dict[str, Any], now: float | None = None) -> None:
        check_attributes(attributes)
        moto_set_attributes(self, attributes, now)

    def messages(self: Any) -> list[Any]:
        """moto's visible, undelayed messages, once the expired ones are gone."""
        expire(self)
        return [m for m in self._messages if m.visible and not m.delayed]

    def not_visible(self: Any) -> int:
        expire(self)
        return len([m for m in self._messages if not m.visible])

    def delayed(self: Any) -> int:
        expire(self)
        return len([m for m in self._messages if m.delayed])

    Queue._set_attributes = _set_attributes  # type: ignore[method-assign]
    Queue.messages = property(messages)  # type: ignore[method-assign,assignment]
    Queue.approximate_number_of_messages_not_visible = property(not_visible)  # type: ignore[method-assign,assignment]
    Queue.approximate_number_of_messages_delayed = property(delayed)  # type: ignore[method-assign,assignment]
