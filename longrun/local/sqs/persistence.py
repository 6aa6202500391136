"""SQS's data plane across restarts: every queue's messages, as SQS holds them.

Each message keeps its id, body, attributes, receipt handles, receive count, first-receive time
and ``visible_at`` (moto's wall-clock instant): an in-flight message stays invisible until its
visibility timeout runs out, as on SQS, whose queues do not stop for a restart; its receipt handle
still deletes it. Kept with the messages: the in-flight set, the receipt handles already deleted
(a late second ``DeleteMessage`` answers as before) and the fair-queue history of
:mod:`longrun.local.sqs.fair`. The queues' attributes are the template's, made anew each start.

Long-polling ``ReceiveMessage`` runs beside a snapshot (see the keeper), so the dump copies each
message's attributes (one C-level dict copy, atomic under the GIL) rather than pickling live ones.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from longrun.local.state import backends

SERVICE = "sqs"
log = logging.getLogger("longrun.local.state")
_FAIR = "_longrun_fair"


def _backends() -> Any:
    from moto.sqs.models import sqs_backends

    return sqs_backends


def _queue_data(queue: Any) -> dict[str, Any]:
    messages = [copy.copy(m) for m in list(queue._messages)]
    in_flight = {m.id for m in list(queue._pending_messages)}
    data = {"messages": messages, "in_flight": in_flight, "deleted": set(queue.deleted_messages)}
    if _FAIR in queue.__dict__:
        data["fair"] = copy.deepcopy(queue.__dict__[_FAIR])
    return data


def dump() -> dict[tuple[str, str], dict[str, Any]]:
    return {
        where: {name: _queue_data(queue) for name, queue in list(backend.queues.items())}
        for where, backend in backends.existing(_backends())
    }


def restore(data: dict[tuple[str, str], dict[str, Any]]) -> None:
    for where, queues in data.items():
        backend = backends.get(_backends(), where)
        for name, saved in queues.items():
            queue = backend.queues.get(name)
            if queue is None:
                log.warning("state: queue %s is no longer in the stack; its %d messages are dropped",
                            name, len(saved["messages"]))  # fmt: skip
                continue
            with queue._messages_lock:
                queue._messages = list(saved["messages"])
                queue._pending_messages = {m for m in queue._messages if m.id in saved["in_flight"]}
                queue.deleted_messages = set(saved["deleted"])
                if "fair" in saved:
                    queue.__dict__[_FAIR] = saved["fair"]
                queue._messages_lock.notify_all()
