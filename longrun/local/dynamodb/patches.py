"""Where moto's DynamoDB differs from DynamoDB in what the job store and the publisher build on.

* **Atomic requests.** DynamoDB applies each request, conditional writes and transactions
  included, atomically; moto's threaded server can interleave two requests between a
  condition's check and its write. The AWS endpoint serializes DynamoDB requests
  (:func:`dynamodb_request_lock`, held by :mod:`longrun.local.aws_server`), which is what makes a
  conditional write a real arbiter. That is the endpoint's doing, not a patch of moto.
* **Transactions that cost what they write.** moto backs a ``TransactWriteItems`` up by
  deep-copying every table it touches, so each transaction grows with the table (55 ms and
  gigabytes of garbage after a few thousand events). Here it snapshots only the items the
  transaction touches and restores those if it is cancelled (:data:`PATCHES`).
"""

from __future__ import annotations

import copy
import threading
from typing import Any

from longrun.local.patches import Patch

_LOCK = threading.RLock()


def dynamodb_request_lock() -> threading.RLock:
    return _LOCK


def is_dynamodb_request(environ: dict[str, Any]) -> bool:
    return str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith("DynamoDB_")


class _TablesAreNotCopied:
    """Stands in for the ``copy`` module inside moto's DynamoDB models during a transaction."""

    @staticmethod
    def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
        from moto.dynamodb.models.table import Table

        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


def _key_of(backend: Any, op_type: str, op: dict[str, Any]) -> dict[str, Any]:
    if op_type != "Put":
        return op["Key"]
    table = backend.get_table(op["TableName"])
    key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = op["Item"][table.range_key_attr]
    return key


def _transactions_copy_only_their_items() -> None:
    """``TransactWriteItems`` snapshots the items it touches, not the tables, and restores them if cancelled."""
    import moto.dynamodb.models as models

    backend_class = models.DynamoDBBackend
    original = backend_class.transact_write_items
    models.copy = _TablesAreNotCopied  # type: ignore[assignment]

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        with _LOCK:
            snapshot: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []
            for item in transact_items:
                op_type, op = next(iter(item.items()))
                try:
                    key = _key_of(self, op_type, op)
                    current = self.get_item(op["TableName"], key)
                except Exception:
                    continue  # moto's own checks report the problem
                attributes = copy.deepcopy(current.to_json()["Attributes"]) if current else None
                snapshot.append((op["TableName"], key, attributes))
            try:
                original(self, transact_items)
            except Exception:
                for table_name, key, attributes in reversed(snapshot):
                    if attributes is None:
                        if self.get_item(table_name, key) is not None:
                            self.delete_item(table_name, key)
                    else:
                        self.put_item(table_name, attributes)
                raise

    backend_class.transact_write_items = transact_write_items


PATCHES = (
    Patch(
        service="dynamodb",
        name="transactions-copy-only-their-items",
        behaviour=(
            "TransactWriteItems is all or nothing, and its cost depends on the items it writes, not on the "
            "size of the tables."
        ),
        doc="https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html",
        gap=(
            "moto backs a transaction up by deep-copying every table it touches: each transaction grows with "
            "the table (55 ms and gigabytes of garbage after a few thousand job events)."
        ),
        replaces=(
            "moto.dynamodb.models:copy",
            "moto.dynamodb.models:DynamoDBBackend.transact_write_items",
        ),
        apply=_transactions_copy_only_their_items,
    ),
)
