"""moto's per-account, per-region backends that exist in this process (none is created by looking)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def existing(backend_dict: Any) -> Iterator[tuple[tuple[str, str], Any]]:
    """((account, region), backend) of each backend made so far; ``dict.items`` skips moto's lazy creation."""
    for account, regional in dict.items(backend_dict):
        for region, backend in dict.items(regional):
            yield (account, region), backend


def get(backend_dict: Any, where: tuple[str, str]) -> Any:
    account, region = where
    return backend_dict[account][region]
