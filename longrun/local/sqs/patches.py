"""Where moto's SQS costs what SQS does not, or lacks what SQS does: declared for :mod:`longrun.local.patches`.

* receive-costs-what-it-reads: ReceiveMessage's retention check no longer walks the whole queue;
* messages-expire-past-retention (:mod:`longrun.local.sqs.retention`): MessageRetentionPeriod deletes,
  the counts follow, and the queue attributes' ranges are AWS's;
* fair-queues (:mod:`longrun.local.sqs.fair`): a standard queue's MessageGroupId is a tenant, and
  quiet tenants are served first.
"""

from __future__ import annotations

from typing import Any

from longrun.local.patches import Patch
from longrun.local.sqs import fair, retention


def _receive_costs_what_it_reads() -> None:
    """The clock read through ``time.time()``, and the retention check that reads one attribute, not all."""
    import time

    import moto.sqs.models as sqs_models
    from moto.core.utils import unix_time
    from moto.sqs.models import SQSBackend

    def fast_unix_time(dt: Any = None) -> float:
        return time.time() if dt is None else unix_time(dt)

    sqs_models.unix_time = fast_unix_time
    sqs_models.unix_time_millis = lambda dt=None: fast_unix_time(dt) * 1000.0

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        retention_period = int(self.get_queue(queue_name).message_retention_period)
        return retention_period + message.sent_timestamp / 1000 > unix_time()

    SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period


PATCHES = (
    Patch(
        service="sqs",
        name="receive-costs-what-it-reads",
        behaviour=(
            "ReceiveMessage hands out messages still within the queue's MessageRetentionPeriod, at a cost that "
            "does not grow with the queue's depth."
        ),
        doc="https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_ReceiveMessage.html",
        gap=(
            "moto checks each message's retention by computing every queue attribute, the approximate counts "
            "included, which walk all messages: quadratic in the depth (a burst of 2,000 uploads held the "
            "endpoint's CPU for minutes); and it reads the clock through datetime arithmetic for every "
            "visibility check."
        ),
        replaces=(
            "moto.sqs.models:unix_time",
            "moto.sqs.models:unix_time_millis",
            "moto.sqs.models:SQSBackend.is_message_valid_based_on_retention_period",
        ),
        apply=_receive_costs_what_it_reads,
    ),
    Patch(
        service="sqs",
        name="messages-expire-past-retention",
        behaviour=(
            "A message older than its queue's MessageRetentionPeriod is deleted, waiting or in flight, and no longer "
            "counted in ApproximateNumberOfMessages or ...NotVisible; CreateQueue and SetQueueAttributes refuse a "
            "period outside 60..1,209,600 s (and DelaySeconds, VisibilityTimeout, ReceiveMessageWaitTimeSeconds "
            "outside their ranges) with InvalidAttributeValue."
        ),
        doc="https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SetQueueAttributes.html",
        gap=(
            "moto never deletes an expired message: ReceiveMessage marks it received and stops, handing out nothing "
            "behind it; it stays in the counts for ever. moto takes any integer as a period (0, -5, 1,209,601) and "
            "answers 500 to one that is not an integer."
        ),
        replaces=(
            "moto.sqs.models:Queue._set_attributes",
            "moto.sqs.models:Queue.messages",
            "moto.sqs.models:Queue.approximate_number_of_messages_not_visible",
            "moto.sqs.models:Queue.approximate_number_of_messages_delayed",
        ),
        apply=retention.install,
    ),
    Patch(
        service="sqs",
        name="fair-queues",
        behaviour=(
            "On a standard queue, MessageGroupId names a tenant; ReceiveMessage delivers quiet tenants' messages "
            "before a noisy tenant's (over 10% of the in-flight messages with at least 30 of its own, or over 10% of "
            "the recent processing time), and the noisy tenant with fewest in flight first."
        ),
        doc="https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-fair-queues-detailed.html",
        gap=(
            "moto keeps a standard queue's MessageGroupId but hands messages out in the order they were sent: one "
            "tenant's backlog makes every other tenant's message wait behind all of it."
        ),
        replaces=(
            "moto.sqs.models:SQSBackend.receive_message",
            "moto.sqs.models:SQSBackend.send_message",
            "moto.sqs.models:Queue.delete_message",
        ),
        apply=fair.install,
        after=("sqs.messages-expire-past-retention",),
    ),
)
