"""Patches of moto's server (moto/moto_server), not of one service: declared for :mod:`longrun.local.patches`."""

from __future__ import annotations

from typing import Any

from longrun.local.patches import Patch


def _remember_backend_for_host() -> None:
    """The backend of a request's host name is found once, then remembered (it depends on the host only)."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    original = DomainDispatcherApplication.get_backend_for_host
    known: dict[str | None, Any] = {}

    def get_backend_for_host(self: Any, host: str | None) -> Any:
        if host not in known:
            known[host] = original(self, host)
        return known[host]

    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host


PATCHES = (
    Patch(
        service="core",
        name="backend-remembered-per-host",
        behaviour=(
            "Each service answers at its own endpoint host name; routing a request to its service costs "
            "nothing measurable next to the service's work."
        ),
        doc="https://docs.aws.amazon.com/general/latest/gr/rande.html",
        gap=(
            "moto's server finds the backend of every request by matching the inferred host name against a "
            "few hundred URL patterns, under a lock: 40% of the endpoint's CPU while a sync copied small files."
        ),
        replaces=("moto.moto_server.werkzeug_app:DomainDispatcherApplication.get_backend_for_host",),
        apply=_remember_backend_for_host,
    ),
)
