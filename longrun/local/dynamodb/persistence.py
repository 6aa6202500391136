"""DynamoDB's data plane across restarts: the items of every table.

Only ``Table.items`` is saved: the table's definition (keys, GSIs, TTL, billing) is the template's,
made anew at each start, and moto computes a GSI from the items at query time, so restoring the
items restores every index. Items are put back by assignment, not through ``put_item``: a table with
a stream would otherwise emit every restored item as a new INSERT record (the template has no
DynamoDB stream today; restoring this way keeps it true if one is added). A table the template no
longer declares is not recreated: its items are dropped, with a log line.
"""

from __future__ import annotations

import logging
from typing import Any

from longrun.local.state import backends

SERVICE = "dynamodb"
# Saved by a forked child (longrun.local.state.keeper): the items are most of the data dir and pickling
# them took 300 ms at 3 MB, with every request paused. dump() takes no lock, so a fork may run it.
SNAPSHOT_IN_CHILD = True
log = logging.getLogger("longrun.local.state")


def _backends() -> Any:
    from moto.dynamodb.models import dynamodb_backends

    return dynamodb_backends


def dump() -> dict[tuple[str, str], dict[str, Any]]:
    return {
        where: {name: table.items for name, table in backend.tables.items()}
        for where, backend in backends.existing(_backends())
    }


def restore(data: dict[tuple[str, str], dict[str, Any]]) -> None:
    for where, tables in data.items():
        backend = backends.get(_backends(), where)
        for name, items in tables.items():
            table = backend.tables.get(name)
            if table is None:
                log.warning("state: table %s is no longer in the stack; its %d saved keys are dropped",
                            name, len(items))  # fmt: skip
                continue
            table.items = items
