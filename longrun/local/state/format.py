"""The on-disk format of ``<data-dir>/state``, versioned, and the refusal of a data dir this version cannot read.

``FORMAT.json`` names the layout (``format``) and the moto release whose classes the pickles hold
(``moto``): a pickle of moto's objects is only as stable as moto's private attributes, so a data dir
written with another moto release, or another layout, is refused at start rather than half-restored.
The way out is named in the message: ``longrun local reset`` (clear it) or ``--fresh`` (start empty).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from longrun.local.state.files import write_atomic

# Bump when the layout of <data-dir>/state or of an adapter's data changes incompatibly.
FORMAT = 1
STATE_DIR = "state"
FORMAT_FILE = "FORMAT.json"


class StateRefused(RuntimeError):
    """The data dir was written by an incompatible version: ``longrun local up`` exits 2 with this message."""


def state_dir(data_dir: Path) -> Path:
    return data_dir / STATE_DIR


def current() -> dict[str, Any]:
    from longrun.local.patches import moto_version

    return {"format": FORMAT, "moto": moto_version()}


def check(data_dir: Path) -> None:
    """Refuse a state dir written by another format or moto release; write ``FORMAT.json`` where there is none."""
    path = state_dir(data_dir) / FORMAT_FILE
    mine = current()
    if not path.exists():
        write_atomic(path, (json.dumps(mine, indent=2) + "\n").encode())
        return
    try:
        theirs = json.loads(path.read_text())
        found = {"format": int(theirs["format"]), "moto": str(theirs["moto"])}
    except (ValueError, KeyError, TypeError) as e:
        raise StateRefused(_message(data_dir, f"an unreadable {FORMAT_FILE} ({e})", mine)) from None
    if found != mine:
        written = f"state format {found['format']} with moto {found['moto']}"
        raise StateRefused(_message(data_dir, written, mine))


def _message(data_dir: Path, written: str, mine: dict[str, Any]) -> str:
    return (
        f"the data dir {data_dir} holds {written}; this longrun reads state format {mine['format']} "
        f"with moto {mine['moto']}. Start empty with `longrun local up --fresh --data-dir {data_dir}`, "
        f"or clear it with `longrun local reset --data-dir {data_dir}` (both remove its tables, objects, "
        "queues, parameters, logs, executions and EFS files)."
    )
