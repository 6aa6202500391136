"""The local AWS endpoint keeps the DynamoDB guarantees longrun builds on (see longrun/local/dynamodb/patches.py)."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError


@pytest.fixture(scope="module")
def table(local_cloud):
    ddb = local_cloud.aws_client("dynamodb")
    name = f"semantics-{uuid.uuid4().hex[:8]}"
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return ddb, name


def test_a_conditional_write_lets_exactly_one_of_many_racers_through(table):
    ddb, name = table

    def race(i: int) -> bool:
        try:
            ddb.put_item(
                TableName=name,
                Item={"id": {"S": "the-one"}, "by": {"N": str(i)}},
                ConditionExpression="attribute_not_exists(id)",
            )
            return True
        except ClientError as e:
            assert e.response["Error"]["Code"] == "ConditionalCheckFailedException"
            return False

    for _ in range(5):
        ddb.delete_item(TableName=name, Key={"id": {"S": "the-one"}})
        with ThreadPoolExecutor(max_workers=24) as pool:
            winners = sum(pool.map(race, range(24)))
        assert winners == 1


def test_a_cancelled_transaction_changes_nothing(table):
    ddb, name = table
    ddb.put_item(TableName=name, Item={"id": {"S": "kept"}, "n": {"N": "1"}})
    with pytest.raises(ClientError) as cancelled:
        ddb.transact_write_items(
            TransactItems=[
                {"Update": {"TableName": name, "Key": {"id": {"S": "kept"}}, "UpdateExpression": "SET n = :two",
                            "ExpressionAttributeValues": {":two": {"N": "2"}}}},
                {"Put": {"TableName": name, "Item": {"id": {"S": "new"}}}},
                {"Put": {"TableName": name, "Item": {"id": {"S": "kept-too"}},
                         "ConditionExpression": "attribute_exists(id)"}},
            ]
        )  # fmt: skip
    assert cancelled.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert ddb.get_item(TableName=name, Key={"id": {"S": "kept"}})["Item"]["n"] == {"N": "1"}
    assert "Item" not in ddb.get_item(TableName=name, Key={"id": {"S": "new"}})


def test_concurrent_counter_transactions_never_lose_an_increment(table):
    """Cancelled transactions race with successful ones; none may undo another's write.

    A table of some size makes the race window of a whole-table backup wide, as in a long run.
    """
    ddb, name = table

    def fill(i: int) -> None:
        ddb.put_item(TableName=name, Item={"id": {"S": f"filler-{i}"}, "pad": {"S": "x" * 200}})

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(fill, range(1500)))
    ddb.put_item(TableName=name, Item={"id": {"S": "counter"}, "n": {"N": "0"}})

    def bump(_: int) -> int:
        attempts = 0
        while True:
            attempts += 1
            n = int(ddb.get_item(TableName=name, Key={"id": {"S": "counter"}}, ConsistentRead=True)["Item"]["n"]["N"])
            try:
                ddb.transact_write_items(
                    TransactItems=[
                        {"Update": {"TableName": name, "Key": {"id": {"S": "counter"}},
                                    "UpdateExpression": "SET n = :next", "ConditionExpression": "n = :n",
                                    "ExpressionAttributeValues": {":n": {"N": str(n)}, ":next": {"N": str(n + 1)}}}},
                        {"Put": {"TableName": name, "Item": {"id": {"S": f"event-{n + 1}"}},
                                 "ConditionExpression": "attribute_not_exists(id)"}},
                    ]
                )  # fmt: skip
                return attempts
            except ClientError as e:
                assert e.response["Error"]["Code"] == "TransactionCanceledException"

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(bump, range(40)))
    assert ddb.get_item(TableName=name, Key={"id": {"S": "counter"}})["Item"]["n"] == {"N": "40"}
    for n in range(1, 41):
        assert "Item" in ddb.get_item(TableName=name, Key={"id": {"S": f"event-{n}"}}), n


def test_a_transaction_costs_what_it_writes_not_the_size_of_the_table(table):
    """moto backs a transaction up by copying whole tables; the local cloud snapshots items only.

    Compared within one run (the machine is shared): on a table of 1,500 items a small
    transaction must stay within a few GetItems' time, where a whole-table copy costs ~20x.
    """
    import statistics
    import time

    ddb, name = table
    if ddb.describe_table(TableName=name)["Table"].get("ItemCount", 0) < 1000:
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda i: ddb.put_item(TableName=name, Item={"id": {"S": f"filler-{i}"}}), range(1500)))

    def timed(call) -> float:
        samples = []
        for _ in range(15):
            started = time.perf_counter()
            call()
            samples.append(time.perf_counter() - started)
        return statistics.median(samples)

    get = timed(lambda: ddb.get_item(TableName=name, Key={"id": {"S": "filler-1"}}))
    transact = timed(
        lambda: ddb.transact_write_items(
            TransactItems=[{"Put": {"TableName": name, "Item": {"id": {"S": f"t-{uuid.uuid4().hex}"}}}}]
        )
    )
    assert transact < 5 * get, f"transaction {transact * 1000:.1f} ms vs GetItem {get * 1000:.1f} ms"
