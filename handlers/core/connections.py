"""WebSocket connections and subscriptions, and pushing messages to them.

One table holds both, keyed ``pk``/``sk``:

* ``conn#<connectionId>`` / ``conn``: the connection, its user and the subscriptions it holds;
* ``sub#<userId>`` / ``<connectionId>#<job|project>#<id>``: one subscription.

Subscriptions live under their user, so finding who to push an event to is one query that can
only ever return that user's connections: tenants are kept apart by the key itself.
Every item carries ``expiresAt`` (DynamoDB TTL): API Gateway closes a connection after two hours
at most, so a ``$disconnect`` that never arrives leaves nothing behind for long.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from core import aws
from core.clock import epoch_seconds, now_iso
from core.config import settings

logger = Logger(child=True)

CONNECTION_LIFETIME_SECONDS = 2 * 60 * 60 + 300


def _table() -> Any:
    return aws.table(settings().connections_table)


def _sub_key(user_id: str, connection_id: str, kind: str, target_id: str) -> dict[str, str]:
    return {"pk": f"sub#{user_id}", "sk": f"{connection_id}#{kind}#{target_id}"}


def save_connection(connection_id: str, user_id: str) -> None:
    _table().put_item(
        Item={
            "pk": f"conn#{connection_id}",
            "sk": "conn",
            "userId": user_id,
            "connectedAt": now_iso(),
            "expiresAt": epoch_seconds() + CONNECTION_LIFETIME_SECONDS,
        }
    )


def connection(connection_id: str) -> dict[str, Any] | None:
    return _table().get_item(Key={"pk": f"conn#{connection_id}", "sk": "conn"}).get("Item")


def subscribe(connection_id: str, user_id: str, kind: str, target_id: str) -> None:
    key = _sub_key(user_id, connection_id, kind, target_id)
    table = _table()
    table.put_item(
        Item={
            **key,
            "connectionId": connection_id,
            "kind": kind,
            "targetId": target_id,
            "expiresAt": epoch_seconds() + CONNECTION_LIFETIME_SECONDS,
        }
    )
    # The connection may go away (and $disconnect forget it) while this runs: then this update makes
    # the item again, so it carries what forget() and the TTL need, whichever came first.
    table.update_item(
        Key={"pk": f"conn#{connection_id}", "sk": "conn"},
        UpdateExpression="ADD subs :k SET userId = :u, expiresAt = if_not_exists(expiresAt, :e)",
        ExpressionAttributeValues={
            ":k": {key["sk"]},
            ":u": user_id,
            ":e": epoch_seconds() + CONNECTION_LIFETIME_SECONDS,
        },
    )


def unsubscribe(connection_id: str, user_id: str, kind: str, target_id: str) -> None:
    key = _sub_key(user_id, connection_id, kind, target_id)
    table = _table()
    table.delete_item(Key=key)
    table.update_item(
        Key={"pk": f"conn#{connection_id}", "sk": "conn"},
        UpdateExpression="DELETE subs :k",
        ExpressionAttributeValues={":k": {key["sk"]}},
    )


def forget(connection_id: str) -> None:
    """Delete a connection and every subscription it held."""
    item = connection(connection_id)
    keys = [{"pk": f"conn#{connection_id}", "sk": "conn"}]
    if item and item.get("userId"):  # an item an older subscribe made again holds no user: TTL removes it
        keys += [{"pk": f"sub#{item['userId']}", "sk": sk} for sk in item.get("subs", set())]
    with _table().batch_writer() as batch:
        for key in keys:
            batch.delete_item(Key=key)


def subscribers(user_id: str, targets: list[tuple[str, str]]) -> list[str]:
    """Connection ids of ``user_id`` subscribed to any of ``targets`` (``(kind, id)`` pairs), each once."""
    wanted = set(targets)
    found: dict[str, None] = {}
    kwargs: dict[str, Any] = {
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": {":pk": f"sub#{user_id}"},
        # Strongly consistent, like the subscribe handler's read of the job: a subscription made
        # while a job closes is either seen here or sees the closed job, never neither.
        "ConsistentRead": True,
        "ProjectionExpression": "#c, #k, #t",
        "ExpressionAttributeNames": {"#c": "connectionId", "#k": "kind", "#t": "targetId"},
    }
    while True:
        page = _table().query(**kwargs)
        for item in page.get("Items", []):
            if (item.get("kind"), item.get("targetId")) in wanted:
                found[item["connectionId"]] = None
        if not page.get("LastEvaluatedKey"):
            return list(found)
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def send(connection_id: str, message: dict[str, Any]) -> bool:
    """Push one message; a connection that is gone is forgotten. Never raises: a push must not fail a workflow."""
    data = json.dumps(message, separators=(",", ":")).encode()
    try:
        aws.connections_client(settings().connections_url).post_to_connection(ConnectionId=connection_id, Data=data)
        return True
    except ClientError as e:
        code = e.response.get("Error", {}).get("Code", "")
        if code in ("GoneException", "410"):
            logger.info("connection gone, forgetting it", extra={"connectionId": connection_id})
            try:
                forget(connection_id)
            except ClientError:
                logger.exception("could not forget a gone connection")
        else:
            logger.warning("push failed", extra={"connectionId": connection_id, "code": code})
        return False
    except Exception:  # network trouble: the event is stored, the client can catch up
        logger.exception("push failed", extra={"connectionId": connection_id})
        return False
