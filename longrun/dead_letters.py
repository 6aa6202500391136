"""``longrun ops dead-letters [--redrive]``: the "Start Job" events that started nothing, with their reasons.

They wait in the stack's ``StartJobDeadLetterQueue`` (output ``StartJobDeadLetterQueueUrl``) in
one of three forms, each read here with its reason:

* written by the Start Job trigger: ``{"reason": {"code", "message", "details"?}, "event", ...}``
  (an untrusted source, an invalid detail, what ``POST /jobs`` would have refused, a start that
  kept failing);
* moved by the queue's redrive policy: the bare EventBridge event, after the trigger failed to
  answer on every attempt (a crash, a timeout);
* put by EventBridge when it could not deliver to the queue at all: the event, with
  ``ERROR_CODE`` / ``ERROR_MESSAGE`` message attributes.

Reading leaves every message where it was (each is made visible again at once). ``--redrive`` puts
each event back on the stack's bus as it was first put (same source, detail-type and detail) and
deletes the dead letter only once EventBridge took it: an event that still cannot start a job comes
back with its reason, and nothing is lost either way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from longrun.operator import client, output

READ_VISIBILITY_SECONDS = 60


@dataclass
class DeadLetter:
    message_id: str
    receipt_handle: str
    event: Any
    reason: dict[str, Any]
    dead_lettered_at: str | None = None
    attempts: int | None = None
    redriven: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        found = {
            "messageId": self.message_id,
            "reason": self.reason,
            "event": self.event,
            "deadLetteredAt": self.dead_lettered_at,
            "attempts": self.attempts,
        }
        if self.redriven:
            found["redrive"] = self.redriven
        return found


def parse(message: dict[str, Any]) -> DeadLetter:
    """One SQS message of the dead-letter queue, whichever of the three forms it has."""
    attributes = {k: v.get("StringValue") for k, v in message.get("MessageAttributes", {}).items()}
    receives = int(message.get("Attributes", {}).get("ApproximateReceiveCount", 0) or 0)
    try:
        body: Any = json.loads(message["Body"])
    except ValueError:
        body = message["Body"]
    common = {"message_id": message["MessageId"], "receipt_handle": message["ReceiptHandle"]}
    if isinstance(body, dict) and isinstance(body.get("reason"), dict) and "event" in body:
        return DeadLetter(
            event=body["event"],
            reason=body["reason"],
            dead_lettered_at=body.get("deadLetteredAt"),
            attempts=body.get("attempts"),
            **common,
        )
    if "ERROR_CODE" in attributes:
        why = f"EventBridge could not deliver it: {attributes['ERROR_CODE']} {attributes.get('ERROR_MESSAGE', '')}"
        reason = {"code": "NotDelivered", "message": why.strip()}
        return DeadLetter(event=body, reason=reason, **common)
    reason = {"code": "TriggerFailed", "message": "the Start Job trigger failed on every attempt; see its log"}
    return DeadLetter(event=body, reason=reason, attempts=receives or None, **common)


def _queue(stack: str) -> str:
    return output(stack, "StartJobDeadLetterQueueUrl")


def read(stack: str, limit: int = 100) -> list[DeadLetter]:
    """Up to ``limit`` dead letters, oldest first as SQS gives them; each left in the queue."""
    sqs, url = client("sqs"), _queue(stack)
    found: list[DeadLetter] = []
    seen: set[str] = set()
    while len(found) < limit:
        messages = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=min(10, limit - len(found)),
            VisibilityTimeout=READ_VISIBILITY_SECONDS,
            MessageAttributeNames=["All"],
            AttributeNames=["All"],
            WaitTimeSeconds=0,
        ).get("Messages", [])
        fresh = [m for m in messages if m["MessageId"] not in seen]
        if not fresh:
            break
        for message in fresh:
            seen.add(message["MessageId"])
            found.append(parse(message))
    return found


def release(stack: str, letters: list[DeadLetter]) -> None:
    """Make what was read visible again at once, for the next reader."""
    sqs, url = client("sqs"), _queue(stack)
    for letter in letters:
        if not letter.redriven.get("deleted"):
            sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=letter.receipt_handle, VisibilityTimeout=0)


def _entry(event: Any, bus: str) -> dict[str, Any]:
    if not isinstance(event, dict) or not isinstance(event.get("detail"), dict):
        raise ValueError("not an EventBridge event with a detail object; it cannot be put back")
    source = event.get("source")
    if not isinstance(source, str) or not source or source.startswith("aws."):
        raise ValueError("its source cannot be put on a bus again")
    return {
        "Source": source,
        "DetailType": str(event.get("detail-type", "")),
        "Detail": json.dumps(event["detail"]),
        "EventBusName": bus,
    }


def redrive(stack: str, letters: list[DeadLetter]) -> None:
    """Put each event back on the stack's bus, then delete its dead letter (only if the put succeeded)."""
    events, sqs = client("events"), client("sqs")
    bus, url = output(stack, "EventBusName"), _queue(stack)
    for letter in letters:
        try:
            entry = _entry(letter.event, bus)
        except ValueError as e:
            letter.redriven = {"deleted": False, "error": str(e)}
            continue
        answer = events.put_events(Entries=[entry])["Entries"][0]
        if "EventId" not in answer:
            letter.redriven = {"deleted": False, "error": f"{answer.get('ErrorCode')}: {answer.get('ErrorMessage')}"}
            continue
        sqs.delete_message(QueueUrl=url, ReceiptHandle=letter.receipt_handle)
        letter.redriven = {"deleted": True, "eventId": answer["EventId"]}


def run(stack: str, do_redrive: bool, limit: int, as_json: bool) -> int:
    """The command: list (and with ``--redrive``, put back); exit 1 if a redrive failed."""
    letters = read(stack, limit)
    try:
        if do_redrive:
            redrive(stack, letters)
    finally:
        release(stack, letters)
    _print(letters, as_json, do_redrive)
    return 1 if any(letter.redriven.get("error") for letter in letters) else 0


def _summary(event: Any) -> str:
    if not isinstance(event, dict):
        return str(event)[:60]
    detail = event.get("detail") if isinstance(event.get("detail"), dict) else {}
    parts = [str(event.get("source", "?")), str(detail.get("type", "")), str(detail.get("userId", ""))]
    return " ".join(p for p in parts if p)


def _print(letters: list[DeadLetter], as_json: bool, redriven: bool) -> None:
    if as_json:
        print(json.dumps([letter.as_json() for letter in letters], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not letters:
        console.print("No dead letters: every Start Job event started its job.")
        return
    table = Table(title=f"Start Job dead letters ({len(letters)})")
    for column in ("dead-lettered", "event (source type user)", "reason", "message"):
        table.add_column(column)
    if redriven:
        table.add_column("redrive")
    for letter in letters:
        row = [
            letter.dead_lettered_at or "",
            _summary(letter.event),
            letter.reason.get("code", ""),
            letter.reason.get("message", "")
            + "".join(f"\n  {d.get('path')}: {d.get('message')}" for d in letter.reason.get("details", [])),
        ]
        if redriven and letter.redriven.get("deleted"):
            row.append(f"put back ({letter.redriven['eventId']})")
        elif redriven:
            row.append(f"kept: {letter.redriven.get('error')}")
        table.add_row(*row)
    console.print(table)
