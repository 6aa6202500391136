"""The state adapters: one ``longrun/local/<service>/persistence.py`` per saved service, listed here.

Each adapter module has ``SERVICE`` (moto's backend name), ``dump() -> Any`` (the service's data
plane in this process, picklable; called while its requests are paused) and ``restore(data)`` (put it
back into the stack just created from the template, whose definitions win). Optional:
``busy() -> bool`` (the service changes without requests: keep saving while True) and
``saved(data)`` (called once the snapshot holding ``data`` is on disk: S3 drops unreferenced blobs).

Like :mod:`longrun.local.patches`, one list names them all, so a service is saved only where it is
declared; an adapter whose module is not there (yet) is skipped with a log line, not guessed at.
"""

from __future__ import annotations

import importlib
import logging
from types import ModuleType

log = logging.getLogger("longrun.local.state")

# service (moto's backend name) -> the module of its adapter
ADAPTERS = {
    "dynamodb": "longrun.local.dynamodb.persistence",
    "s3": "longrun.local.s3.persistence",
    "sqs": "longrun.local.sqs.persistence",
    "ssm": "longrun.local.ssm.persistence",
    "logs": "longrun.local.logs.persistence",
    "stepfunctions": "longrun.local.stepfunctions.persistence",
}
# The signing name of a request (its credential scope) -> the service whose state it changes.
SIGNING_NAMES = {"states": "stepfunctions"}


class UnknownService(ValueError):
    pass


def load(services: list[str]) -> dict[str, ModuleType]:
    """The adapters of ``services``; unknown names are an error, a declared adapter not written yet is skipped."""
    adapters = {}
    for service in services:
        if service not in ADAPTERS:
            raise UnknownService(f"no state adapter is declared for {service!r} (known: {', '.join(ADAPTERS)})")
        try:
            module = importlib.import_module(ADAPTERS[service])
        except ModuleNotFoundError as e:
            if e.name != ADAPTERS[service]:
                raise
            log.warning("state: %s is not saved: %s does not exist yet", service, ADAPTERS[service])
            continue
        if getattr(module, "SERVICE", None) != service:
            found = getattr(module, "SERVICE", None)
            raise UnknownService(f"{ADAPTERS[service]}.SERVICE is {found!r}, not {service!r}")
        adapters[service] = module
    return adapters
