"""CloudWatch Logs' data plane across restarts: the events of every stream of every group.

``longrun logs`` of a job that ran before the restart reads its build's stream. A group the
template declares exists at start (its retention is the template's) and gets its streams back; a
group made at run time (a build's ``CreateLogGroup``) is put back whole. Event ids continue after the
largest saved one, so ids stay unique across restarts.
"""

from __future__ import annotations

from typing import Any

from longrun.local.state import backends

SERVICE = "logs"


def _backends() -> Any:
    from moto.logs.models import logs_backends

    return logs_backends


def dump() -> dict[tuple[str, str], dict[str, Any]]:
    return {where: dict(backend.groups) for where, backend in backends.existing(_backends())}


def restore(data: dict[tuple[str, str], dict[str, Any]]) -> None:
    from moto.logs.models import LogEvent

    last_id = -1
    for where, groups in data.items():
        backend = backends.get(_backends(), where)
        for name, saved in groups.items():
            group = backend.groups.get(name)
            if group is None:
                backend.groups[name] = group = saved
            else:
                group.streams = saved.streams
            for stream in group.streams.values():
                stream.log_group = group
                last_id = max([last_id, *(e.event_id for e in stream.events)])
    LogEvent._event_id = max(LogEvent._event_id, last_id + 1)
