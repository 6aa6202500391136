"""Lambda's SQS event source mappings, locally: poll the queue, invoke the function, delete what it handled.

It behaves as Lambda's poller does: a batch of up to ``BatchSize`` messages gathered for at most
``MaximumBatchingWindowInSeconds``, one synchronous invocation with the SQS event shape, and then
every message deleted on success; with ``ReportBatchItemFailures`` only those not listed in
``batchItemFailures``; on a function error none, so they come back after the queue's visibility
timeout and, past ``maxReceiveCount``, land in the dead-letter queue (moto applies the redrive).
An Invoke the Lambda service itself refuses (throttled, or its ``500``) is not the function's
error: the poller backs off and invokes the same batch again, as Lambda's poller does, and only
after :data:`SERVICE_RETRIES` such refusals leaves the batch to the visibility timeout.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from longrun.local.awslambda.resources import EventSourceSpec
from longrun.local.awslambda.runtime import LambdaRuntime, Outcome, ServiceFailure, Throttled

log = logging.getLogger("longrun.local.event_sources")


def _record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


# Lambda's SQS poller starts with five concurrent batches per mapping (and scales up from there).
CONCURRENT_BATCHES = 5
# Lambda long-polls the queue (https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html), for up to SQS's
# maximum wait of 20 s (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-short-and-long-polling.html).
# A long poll answers as soon as a message arrives, so it adds no latency; it only spares the idle asks.
# With 1 s, the three mappings' fifteen pollers made fifteen receives a second, most of an idle cloud's CPU.
LONG_POLL_SECONDS = 20
# How long stop() lets the batches being delivered finish. A poller still in a long poll is not waited for: it is a
# daemon thread that delivers nothing more (what it receives returns after the visibility timeout, as when a
# mapping is disabled).
STOP_GRACE_SECONDS = 5.0
# Throttled or failed Invokes of one batch retried, 0.1 s doubling (about 6 s in all), before the
# batch is left to come back after the queue's visibility timeout.
SERVICE_RETRIES = 6


class SqsPoller:
    """One event source mapping, polled by CONCURRENT_BATCHES threads, each delivering its own batches."""

    def __init__(self, spec: EventSourceSpec, sqs: Any, runtime: LambdaRuntime, region: str) -> None:
        self.spec = spec
        self.sqs = sqs
        self.runtime = runtime
        self.region = region
        self.queue_arn = sqs.get_queue_attributes(QueueUrl=spec.queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self._stop = threading.Event()
        self._delivering = threading.Condition()
        self._busy = 0  # batches being delivered, under _delivering
        self._threads = [
            threading.Thread(target=self._run, name=f"sqs-{spec.function}-{i}", daemon=True)
            for i in range(CONCURRENT_BATCHES)
        ]
        self.invocations = 0

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        with self._delivering:
            self._stop.set()
            self._delivering.wait_for(lambda: self._busy == 0, timeout=STOP_GRACE_SECONDS)

    def _receive(self) -> list[dict[str, Any]]:
        """A batch: up to batch_size messages, gathered for at most the batching window after the first."""
        batch: list[dict[str, Any]] = []
        first_at = None
        while not self._stop.is_set() and len(batch) < self.spec.batch_size:
            waited = 0 if first_at is None else time.monotonic() - first_at
            if first_at is not None and waited >= self.spec.batching_window:
                break
            response = self.sqs.receive_message(
                QueueUrl=self.spec.queue_url,
                MaxNumberOfMessages=min(10, self.spec.batch_size - len(batch)),
                # The first message is waited for as long as SQS lets one wait; the rest of a batch only briefly.
                WaitTimeSeconds=LONG_POLL_SECONDS if first_at is None else 1,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            messages = response.get("Messages", [])
            if messages and first_at is None:
                first_at = time.monotonic()
            batch += messages
            if not messages and first_at is None:
                return []
            if not messages:
                time.sleep(min(0.05, max(0.0, self.spec.batching_window - waited)))
        return batch

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                batch = self._receive()
                if not batch:
                    continue
                with self._delivering:
                    if self._stop.is_set():  # a long poll that outlived stop() delivers nothing
                        return
                    self._busy += 1
                try:
                    self._deliver(batch)
                finally:
                    with self._delivering:
                        self._busy -= 1
                        self._delivering.notify_all()
            except Exception:
                if self._stop.is_set():
                    return
                log.exception("polling %s for %s failed", self.spec.queue_url, self.spec.function)
                time.sleep(1)

    def _invoke(self, event: dict[str, Any]) -> Outcome | None:
        """The batch's invocation, again after each refusal by the Lambda service; None if it never ran."""
        for attempt in range(SERVICE_RETRIES + 1):
            try:
                return self.runtime.invoke(self.spec.function, event)
            except (Throttled, ServiceFailure) as e:
                log.info("%s: %s; invoking the batch again", self.spec.function, e)
                if attempt == SERVICE_RETRIES or self._stop.wait(0.1 * 2**attempt):
                    break
        return None

    def _deliver(self, batch: list[dict[str, Any]]) -> None:
        event = {"Records": [_record(m, self.queue_arn, self.region) for m in batch]}
        self.invocations += 1
        outcome = self._invoke(event)
        if outcome is None:
            log.warning("%s: the Lambda service refused a batch of %d %d times; it returns after the visibility "
                        "timeout", self.spec.function, len(batch), SERVICE_RETRIES + 1)  # fmt: skip
            return
        if outcome.function_error:
            log.warning("%s failed on a batch of %d; the messages return after the visibility timeout",
                        self.spec.function, len(batch))  # fmt: skip
            return
        failed: set[str] = set()
        if self.spec.report_batch_item_failures:
            try:
                response = json.loads(outcome.payload or b"{}") or {}
                failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
            except (ValueError, TypeError, KeyError):
                failed = {m["MessageId"] for m in batch}  # a malformed response fails the whole batch, as on AWS
        done = [m for m in batch if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            entries = [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done[start : start + 10])
            ]
            self.sqs.delete_message_batch(QueueUrl=self.spec.queue_url, Entries=entries)
