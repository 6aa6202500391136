"""SSM's data plane across restarts: parameters (every version, labels) and their tags.

What the stack writes at start (the template's ``AWS::SSM::Parameter`` resources, the token
secret the local cloud puts) exists before :func:`restore` runs, and wins: only parameters the
fresh stack does not hold are put back, so a template edit or a new local secret applies.
"""

from __future__ import annotations

from typing import Any

from longrun.local.state import backends

SERVICE = "ssm"


def _backends() -> Any:
    from moto.ssm.models import ssm_backends

    return ssm_backends


def dump() -> dict[tuple[str, str], dict[str, Any]]:
    out = {}
    for where, backend in backends.existing(_backends()):
        parameters = {
            name: list(versions)
            for name, versions in dict.items(backend._parameters)
            if versions and not name.startswith("/aws/")  # AWS's public parameters, which moto loads on demand
        }
        tags = {name: dict(t) for name, t in backend._resource_tags.get("Parameter", {}).items() if name in parameters}
        out[where] = {"parameters": parameters, "tags": tags}
    return out


def restore(data: dict[tuple[str, str], dict[str, Any]]) -> None:
    for where, saved in data.items():
        backend = backends.get(_backends(), where)
        fresh = {name for name, versions in dict.items(backend._parameters) if versions}
        for name, versions in saved["parameters"].items():
            if name in fresh:
                continue  # the stack's own, written at this start
            dict.__setitem__(backend._parameters, name, versions)
            if name in saved["tags"]:
                backend._resource_tags["Parameter"][name] = dict(saved["tags"][name])
