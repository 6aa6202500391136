"""Where moto's SQS costs what SQS does not: declared for :mod:`longrun.local.patches`."""

from __future__ import annotations

from typing import Any

from longrun.local.patches import Patch


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
)
