"""Each service's state adapter round-trips its data plane in-process: dump, pickle, a fresh moto, restore.

The "fresh moto" is what a restart is: the stack's resources made anew (same names), then the saved
data put back. Each test asserts what a client would read through the AWS API after the restart.
"""

from __future__ import annotations

import json
import pickle
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

from longrun.local.dynamodb import persistence as dynamodb_state
from longrun.local.logs import persistence as logs_state
from longrun.local.s3 import persistence as s3_state
from longrun.local.sqs import persistence as sqs_state
from longrun.local.ssm import persistence as ssm_state
from longrun.local.state import files

REGION = "us-east-1"


@pytest.fixture(autouse=True)
def _credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    files.configure_blobs(tmp_path / "blobs")
    yield


def _client(service: str) -> Any:
    return boto3.client(service, region_name=REGION)


def restart(adapter: ModuleType, make_stack: Callable[[], None], write: Callable[[], Any]) -> Any:
    """Run ``write`` on a fresh stack, save the adapter's data as the keeper does, restore it into a new one."""
    with mock_aws():
        make_stack()
        result = write()
        saved = pickle.dumps(adapter.dump(), protocol=pickle.HIGHEST_PROTOCOL)
    mock = mock_aws()
    mock.start()
    make_stack()
    adapter.restore(pickle.loads(saved))
    return mock, result


@pytest.fixture
def restarted() -> Iterator[Callable[..., Any]]:
    mocks = []

    def run(adapter: ModuleType, make_stack: Callable[[], None], write: Callable[[], Any]) -> Any:
        mock, result = restart(adapter, make_stack, write)
        mocks.append(mock)
        return result

    yield run
    for mock in mocks:
        mock.stop()


# --- dynamodb ----------------------------------------------------------------------------------------


def _jobs_table() -> None:
    _client("dynamodb").create_table(
        TableName="jobs",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("pk", "sk", "user")],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-user",
                "KeySchema": [{"AttributeName": "user", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )


def test_dynamodb_items_and_their_index_survive_and_fire_no_stream_record(restarted: Callable[..., Any]) -> None:
    def write() -> None:
        db = _client("dynamodb")
        for i in range(3):
            db.put_item(
                TableName="jobs",
                Item={
                    "pk": {"S": f"job#{i}"},
                    "sk": {"S": "meta"},
                    "user": {"S": "alice"},
                    "n": {"N": str(i)},
                    "blob": {"B": b"\x00\xff"},
                },
            )

    restarted(dynamodb_state, _jobs_table, write)
    db = _client("dynamodb")
    item = db.get_item(TableName="jobs", Key={"pk": {"S": "job#2"}, "sk": {"S": "meta"}})["Item"]
    assert item["n"] == {"N": "2"} and item["blob"] == {"B": b"\x00\xff"}
    by_user = db.query(
        TableName="jobs",
        IndexName="by-user",
        KeyConditionExpression="#u = :u",
        ExpressionAttributeNames={"#u": "user"},
        ExpressionAttributeValues={":u": {"S": "alice"}},
    )
    assert by_user["Count"] == 3
    # The restored items are not new writes: the table's stream (moto's shard) holds no record of them,
    # where the three puts before the restart made three.
    from moto.dynamodb.models import dynamodb_backends

    assert dynamodb_backends["123456789012"][REGION].tables["jobs"].stream_shard.items == []


def test_dynamodb_table_dropped_from_the_template_is_not_recreated(restarted: Callable[..., Any]) -> None:
    made = []

    def stack() -> None:
        _jobs_table()
        if not made:  # the first run's template had a second table
            _client("dynamodb").create_table(
                TableName="gone",
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
            made.append(True)

    restarted(dynamodb_state, stack, lambda: _client("dynamodb").put_item(TableName="gone", Item={"pk": {"S": "x"}}))
    assert _client("dynamodb").list_tables()["TableNames"] == ["jobs"]


# --- s3 ------------------------------------------------------------------------------------------------


def _bucket() -> None:
    s3 = _client("s3")
    s3.create_bucket(Bucket="files")
    s3.put_bucket_versioning(Bucket="files", VersioningConfiguration={"Status": "Enabled"})


def test_s3_versions_delete_markers_metadata_tags_and_etags_survive(restarted: Callable[..., Any]) -> None:
    def write() -> dict[str, Any]:
        s3 = _client("s3")
        v1 = s3.put_object(
            Bucket="files",
            Key="a.txt",
            Body=b"one",
            Metadata={"owner": "alice"},
            ContentType="text/plain",
            Tagging="kind=doc",
        )
        v2 = s3.put_object(Bucket="files", Key="a.txt", Body=b"two")
        s3.put_object(Bucket="files", Key="gone.txt", Body=b"soon deleted")
        marker = s3.delete_object(Bucket="files", Key="gone.txt")
        s3.put_object(Bucket="files", Key="big.bin", Body=bytes(range(256)) * 4096)
        return {"v1": v1, "v2": v2, "marker": marker["VersionId"]}

    before = restarted(s3_state, _bucket, write)
    s3 = _client("s3")
    old = s3.get_object(Bucket="files", Key="a.txt", VersionId=before["v1"]["VersionId"])
    assert old["Body"].read() == b"one" and old["Metadata"] == {"owner": "alice"} and old["ContentType"] == "text/plain"
    assert old["ETag"] == before["v1"]["ETag"]
    latest = s3.get_object(Bucket="files", Key="a.txt")
    assert latest["Body"].read() == b"two" and latest["VersionId"] == before["v2"]["VersionId"]
    tags = s3.get_object_tagging(Bucket="files", Key="a.txt", VersionId=before["v1"]["VersionId"])["TagSet"]
    assert tags == [{"Key": "kind", "Value": "doc"}]
    listing = s3.list_object_versions(Bucket="files", Prefix="gone.txt")
    assert [m["VersionId"] for m in listing["DeleteMarkers"]] == [before["marker"]]
    assert len(listing["Versions"]) == 1
    with pytest.raises(s3.exceptions.NoSuchKey):
        s3.get_object(Bucket="files", Key="gone.txt")
    assert s3.get_object(Bucket="files", Key="big.bin")["Body"].read() == bytes(range(256)) * 4096


def test_s3_bodies_are_blobs_written_once_and_dropped_when_no_version_names_them(tmp_path: Path) -> None:
    with mock_aws():
        _bucket()
        s3 = _client("s3")
        s3.put_object(Bucket="files", Key="a", Body=b"same body")
        s3.put_object(Bucket="files", Key="b", Body=b"same body")
        data = s3_state.dump()
        blobs = sorted((tmp_path / "blobs").rglob("*"))
        assert len([b for b in blobs if b.is_file()]) == 1  # two objects, one body: one blob
        assert b"same body" not in pickle.dumps(data)  # the pickle names the body, does not hold it
        first = next(b for b in blobs if b.is_file())
        written = first.stat().st_mtime_ns
        time.sleep(0.01)
        s3_state.dump()
        assert first.stat().st_mtime_ns == written  # not rewritten by the next save
        s3.put_bucket_versioning(Bucket="files", VersioningConfiguration={"Status": "Suspended"})
        s3.delete_objects(Bucket="files", Delete={"Objects": [{"Key": "a"}, {"Key": "b"}]})
        for version in s3.list_object_versions(Bucket="files").get("Versions", []):
            s3.delete_object(Bucket="files", Key=version["Key"], VersionId=version["VersionId"])
        s3_state.saved(s3_state.dump())
        assert not first.exists()


# --- sqs -----------------------------------------------------------------------------------------------


def _queue() -> None:
    _client("sqs").create_queue(QueueName="builds", Attributes={"VisibilityTimeout": "30"})


def _url() -> str:
    return _client("sqs").get_queue_url(QueueName="builds")["QueueUrl"]


def test_sqs_messages_keep_ids_receive_counts_and_in_flight_visibility(restarted: Callable[..., Any]) -> None:
    def write() -> dict[str, Any]:
        sqs = _client("sqs")
        waiting = sqs.send_message(
            QueueUrl=_url(),
            MessageBody="waiting",
            MessageAttributes={"tenant": {"DataType": "String", "StringValue": "alice"}},
        )
        sqs.send_message(QueueUrl=_url(), MessageBody="in flight")
        got = sqs.receive_message(QueueUrl=_url(), MaxNumberOfMessages=10, AttributeNames=["All"])["Messages"]
        # keep "in flight" received; "waiting" is made visible again, with its receive count of 1
        for m in got:
            if m["Body"] == "waiting":
                sqs.change_message_visibility(QueueUrl=_url(), ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
        in_flight = next(m for m in got if m["Body"] == "in flight")
        return {"waiting": waiting["MessageId"], "in_flight": in_flight}

    before = restarted(sqs_state, _queue, write)
    sqs = _client("sqs")
    got = sqs.receive_message(
        QueueUrl=_url(), MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
    )["Messages"]
    # The in-flight message stays invisible until its 30 s run out, as on SQS.
    assert [m["Body"] for m in got] == ["waiting"]
    assert got[0]["MessageId"] == before["waiting"]
    assert got[0]["Attributes"]["ApproximateReceiveCount"] == "2"
    assert got[0]["MessageAttributes"]["tenant"]["StringValue"] == "alice"
    attributes = sqs.get_queue_attributes(QueueUrl=_url(), AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "2"
    # Its receipt handle from before the restart still deletes it.
    sqs.delete_message(QueueUrl=_url(), ReceiptHandle=before["in_flight"]["ReceiptHandle"])
    sqs.delete_message(QueueUrl=_url(), ReceiptHandle=got[0]["ReceiptHandle"])
    attributes = sqs.get_queue_attributes(QueueUrl=_url(), AttributeNames=["All"])["Attributes"]
    assert (
        attributes["ApproximateNumberOfMessages"] == "0" and attributes["ApproximateNumberOfMessagesNotVisible"] == "0"
    )


# --- ssm -----------------------------------------------------------------------------------------------


def _parameters() -> None:
    # What the stack writes at start: the token secret, fresh each time.
    _client("ssm").put_parameter(
        Name="/longrun/token-secret", Value=f"secret-{time.monotonic_ns()}", Type="SecureString", Overwrite=True
    )


def test_ssm_parameters_survive_but_the_stacks_own_are_its_new_ones(restarted: Callable[..., Any]) -> None:
    def write() -> None:
        ssm = _client("ssm")
        ssm.put_parameter(Name="/longrun/users/alice/git", Value="v1", Type="SecureString")
        ssm.put_parameter(Name="/longrun/users/alice/git", Value="v2", Type="SecureString", Overwrite=True)
        ssm.add_tags_to_resource(
            ResourceType="Parameter", ResourceId="/longrun/users/alice/git", Tags=[{"Key": "user", "Value": "alice"}]
        )
        return _client("ssm").get_parameter(Name="/longrun/token-secret", WithDecryption=True)["Parameter"]["Value"]

    old_secret = restarted(ssm_state, _parameters, write)
    ssm = _client("ssm")
    got = ssm.get_parameter(Name="/longrun/users/alice/git", WithDecryption=True)["Parameter"]
    assert got["Value"] == "v2" and got["Version"] == 2
    history = ssm.get_parameter_history(Name="/longrun/users/alice/git", WithDecryption=True)["Parameters"]
    assert [p["Value"] for p in history] == ["v1", "v2"]
    tags = ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId="/longrun/users/alice/git")["TagList"]
    assert tags == [{"Key": "user", "Value": "alice"}]
    secret = ssm.get_parameter(Name="/longrun/token-secret", WithDecryption=True)["Parameter"]
    assert secret["Value"] != old_secret and secret["Version"] == 1


# --- logs ----------------------------------------------------------------------------------------------


def _log_groups() -> None:
    _client("logs").create_log_group(logGroupName="/longrun/api")
    _client("logs").put_retention_policy(logGroupName="/longrun/api", retentionInDays=7)


def test_logs_events_of_template_and_runtime_groups_survive(restarted: Callable[..., Any]) -> None:
    now = int(time.time() * 1000)

    def write() -> None:
        logs = _client("logs")
        logs.create_log_group(logGroupName="/longrun/builds/job-1")  # made at run time, by a build
        for group in ("/longrun/api", "/longrun/builds/job-1"):
            logs.create_log_stream(logGroupName=group, logStreamName="s")
            logs.put_log_events(
                logGroupName=group,
                logStreamName="s",
                logEvents=[{"timestamp": now + i, "message": json.dumps({"line": i})} for i in range(3)],
            )

    restarted(logs_state, _log_groups, write)
    logs = _client("logs")
    for group in ("/longrun/api", "/longrun/builds/job-1"):
        events = logs.get_log_events(logGroupName=group, logStreamName="s", startFromHead=True)["events"]
        assert [json.loads(e["message"])["line"] for e in events] == [0, 1, 2]
    assert logs.describe_log_groups(logGroupNamePrefix="/longrun/api")["logGroups"][0]["retentionInDays"] == 7
    found = logs.filter_log_events(logGroupName="/longrun/builds/job-1")["events"]
    logs.put_log_events(
        logGroupName="/longrun/builds/job-1", logStreamName="s", logEvents=[{"timestamp": now + 9, "message": "after"}]
    )
    after = logs.filter_log_events(logGroupName="/longrun/builds/job-1")["events"]
    assert len({e["eventId"] for e in after}) == len(found) + 1  # new ids do not collide with restored ones
