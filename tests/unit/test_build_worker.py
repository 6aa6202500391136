"""The build worker (``workers.build``): its log shipping, process handling, sandbox, artifacts and answers.

A user watches a build through ``job.log`` events and reads the whole log in CloudWatch Logs; the
build is their code, so it must not see the worker's credentials, reach files outside its workspace
through the artifact globs, or outlive a cancel. CloudWatch Logs and S3 are moto's (in process); the
queue and Step Functions are stubs, since the worker's side of them is a handful of calls.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from workers.build import artifacts, logs, protection, sandbox
from workers.build.process import MAX_LINE_BYTES, BuildProcess
from workers.build.worker import Worker, _parse, beat

from core import aws, builds, publisher
from tests.unit.conftest import REGION, clear_caches

REPO = Path(__file__).resolve().parents[2]
BUCKET = "unit-builds-bucket"
PROJECT = "prj-unit"
JOB = "job0123456789abcdef"
LOG_PREFIX = "/longrun/unit/builds/"
PROJECTS_TABLE = "unit-projects"
RUN_TOKEN = "run-token-2"  # what the Run state hands over; the message carries the Queue state's "token-1"


@pytest.fixture
def cloud(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, boto_session: boto3.Session) -> Iterator[Path]:
    """moto for CloudWatch Logs, S3 and the projects table, and the worker's environment (its task definition's).

    Returns the EFS mount. ``settings()`` and the boto3 clients are cached per process: cleared on
    the way in and out, so no client outlives moto's mock.
    """
    efs = tmp_path / "efs"
    efs.mkdir()
    for name, value in {
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "PROJECTS_BUCKET": BUCKET,
        # Artifacts are uploaded as their project (core/scoped.py); moto's STS needs no such role.
        "PROJECT_ACCESS_ROLE_ARN": "arn:aws:iam::123456789012:role/unit/project-access/ProjectAccessRole",
        "EFS_MOUNT_PATH": str(efs),
        "SCHEMAS_DIR": str(REPO / "schemas"),
        "BUILD_LOG_GROUP_PREFIX": LOG_PREFIX,
        "BUILD_LOG_RETENTION_DAYS": "7",
        "PROJECTS_TABLE": PROJECTS_TABLE,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "ECS_AGENT_URI", "BUILD_PATH"):
        monkeypatch.delenv(name, raising=False)
    clear_clients()
    with mock_aws():
        boto3.DEFAULT_SESSION = boto_session  # mock_aws blanks it; a shared one keeps the models loaded (speed only)
        boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
        boto3.client("dynamodb", region_name=REGION).create_table(
            TableName=PROJECTS_TABLE, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        )  # fmt: skip
        yield efs
    clear_clients()


def clear_clients() -> None:
    """The unit conftest's ``clear_caches`` and the clients it does not know of (made inside moto's mock)."""
    clear_caches()
    for name in ("presigning_client", "long_poll_client"):
        cached = getattr(aws, name, None)
        if cached is not None:
            cached.cache_clear()


@pytest.fixture
def logs_client(cloud: Path) -> Any:
    return boto3.client("logs", region_name=REGION)


@dataclass
class Publishes:
    """Stands in for the worker's ``job.log`` publish: what the user would have received, and when."""

    calls: list[tuple[float, list[str]]] = field(default_factory=list)

    def __call__(self, lines: list[str]) -> None:
        self.calls.append((time.monotonic(), list(lines)))

    @property
    def lines(self) -> list[str]:
        return [line for _, batch in self.calls for line in batch]


def cloudwatch_lines(client: Any, group: str, stream: str) -> list[str]:
    """Every event of a stream, oldest first, across pages."""
    out: list[str] = []
    token = None
    while True:
        kwargs: dict[str, Any] = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
        if token:
            kwargs["nextToken"] = token
        page = client.get_log_events(**kwargs)
        out += [e["message"] for e in page["events"]]
        if not page["events"] or page["nextForwardToken"] == token:
            return out
        token = page["nextForwardToken"]


def wait_for(predicate: Any, timeout: float) -> float | None:
    """Seconds until ``predicate()`` held, or None if it did not within ``timeout``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.01)
    return None


@pytest.fixture
def shipper_for(logs_client: Any) -> Iterator[Any]:
    """A ``LogShipper`` on a fresh moto stream; closed at the end whatever the test did."""
    made: list[logs.LogShipper] = []

    def make(stream: str = JOB) -> tuple[logs.LogShipper, Publishes, str]:
        group = builds.log_group(PROJECT)
        logs.ensure_stream(logs_client, group, stream)
        published = Publishes()
        shipper = logs.LogShipper(logs_client, group, stream, published)
        made.append(shipper)
        return shipper, published, group

    yield make
    for shipper in made:
        shipper.close()


# --- logs: ensure_stream -------------------------------------------------------------------------


def test_ensure_stream_makes_the_group_with_the_stacks_retention_and_is_idempotent(logs_client: Any) -> None:
    """A retried attempt calls it again for the same job: no error, one group, one stream."""
    group = builds.log_group(PROJECT)
    assert group == LOG_PREFIX + PROJECT
    logs.ensure_stream(logs_client, group, JOB)
    logs.ensure_stream(logs_client, group, JOB)
    logs.ensure_stream(logs_client, group, "another-job")
    groups = logs_client.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert [(g["logGroupName"], g.get("retentionInDays")) for g in groups] == [(group, 7)]
    streams = logs_client.describe_log_streams(logGroupName=group)["logStreams"]
    assert sorted(s["logStreamName"] for s in streams) == sorted([JOB, "another-job"])


# --- logs: LogShipper ----------------------------------------------------------------------------


def test_a_flood_of_lines_becomes_few_publishes_each_under_the_event_cap(shipper_for: Any, logs_client: Any) -> None:
    """10,000 lines written as fast as a build can: batched (not one event a line), in order, none lost."""
    shipper, published, group = shipper_for()
    lines = [f"line {i:05d} of the build" for i in range(10_000)]
    for line in lines:
        shipper.write(line)
    shipper.close()
    assert shipper.lines_written == len(lines)
    assert 0 < len(published.calls) < 100, len(published.calls)
    for _, batch in published.calls:
        # The pushed event carries the lines as a compact JSON array (connections.send): under the cap, plus brackets.
        assert len(json.dumps(batch, separators=(",", ":"))) <= logs.MAX_EVENT_BYTES + 2
    assert published.lines == lines, "every line reaches the user once, in the order written"
    assert cloudwatch_lines(logs_client, group, JOB) == lines, "and CloudWatch Logs, the same"


def test_a_burst_over_the_batch_size_goes_out_without_waiting_for_close(shipper_for: Any) -> None:
    """The size trigger: a build that prints 24 KiB at once shows it live, not at its end."""
    shipper, published, _ = shipper_for()
    for i in range(3000):
        shipper.write(f"burst {i:04d}")
    took = wait_for(lambda: published.calls, 2.0)
    assert took is not None, "a full batch was not published while the build ran"


def test_one_line_alone_is_published_within_a_second(shipper_for: Any) -> None:
    """A slow build (one line, then minutes of work) shows that line live, within FLUSH_SECONDS and some slack.

    The time trigger: the first line of a batch wakes the sender, which sends it FLUSH_SECONDS later.
    """
    shipper, published, _ = shipper_for()
    shipper.write("Compiling 1 of 240 modules")
    took = wait_for(lambda: published.calls, 1.0)
    assert took is not None, "the line was not published within 1 s"
    assert published.lines == ["Compiling 1 of 240 modules"]
    assert took < logs.FLUSH_SECONDS + 0.5


def test_a_line_after_a_quiet_spell_is_published_within_a_second(shipper_for: Any) -> None:
    """After the queue has drained, the next line is sent on its own clock, not held until the next full batch."""
    shipper, published, _ = shipper_for()
    for i in range(3000):
        shipper.write(f"burst {i:04d}")  # a full batch wakes the sender, which then drains the queue
    assert wait_for(lambda: len(published.lines) == 3000, 3.0) is not None
    shipper.write("tests: 812 passed")
    assert wait_for(lambda: published.lines[-1:] == ["tests: 812 passed"], 1.0) is not None


def test_a_line_of_control_characters_stays_under_the_event_cap(shipper_for: Any) -> None:
    shipper, published, _ = shipper_for()
    shipper.write("\x01" * MAX_LINE_BYTES)  # what process.lines() lets through: 8 KiB of raw bytes
    shipper.close()
    sizes = [len(json.dumps(batch, separators=(",", ":"))) for _, batch in published.calls]
    assert sizes and max(sizes) <= logs.MAX_EVENT_BYTES + 2, sizes


def test_the_live_log_stops_at_its_cap_and_cloudwatch_keeps_everything(
    shipper_for: Any, logs_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A runaway build cannot fill the job's history: past the cap the user gets one line saying where the rest is."""
    monkeypatch.setattr(logs, "LIVE_MAX_BYTES", 4000)
    monkeypatch.setattr(logs, "MAX_EVENT_BYTES", 1000)
    shipper, published, group = shipper_for()
    lines = [f"runaway {i:04d}" for i in range(1000)]
    for line in lines:
        shipper.write(line)
    shipper.close()
    *live, last = published.calls
    notice = last[1]
    assert len(notice) == 1 and "CloudWatch" in notice[0] and group in notice[0] and JOB in notice[0], notice
    shown = [line for _, batch in live for line in batch]
    assert shown == lines[: len(shown)], "what the user saw is the log's beginning, in order"
    assert 0 < len(json.dumps(shown, separators=(",", ":"))) <= 4000 + 2
    assert cloudwatch_lines(logs_client, group, JOB) == lines


def test_nothing_is_published_after_the_cap_notice(shipper_for: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logs, "LIVE_MAX_BYTES", 200)
    monkeypatch.setattr(logs, "MAX_EVENT_BYTES", 100)
    shipper, published, _ = shipper_for()
    for i in range(100):
        shipper.write(f"line {i}")
    shipper.close()
    notices = [i for i, (_, batch) in enumerate(published.calls) if any("CloudWatch" in line for line in batch)]
    assert notices == [len(published.calls) - 1], "one notice, and it is the last publish"


def test_an_empty_line_reaches_cloudwatch_as_a_space_and_the_user_as_empty(shipper_for: Any, logs_client: Any) -> None:
    """CloudWatch refuses an empty event; the user still sees the blank line the build printed."""
    shipper, published, group = shipper_for()
    for line in ["before", "", "after"]:
        shipper.write(line)
    shipper.close()
    assert published.lines == ["before", "", "after"]
    assert cloudwatch_lines(logs_client, group, JOB) == ["before", " ", "after"]


def test_a_failing_publish_does_not_stop_cloudwatch(shipper_for: Any, logs_client: Any) -> None:
    """The user's channel failing (a throttled table) must not lose the log of record."""
    group = builds.log_group(PROJECT)
    logs.ensure_stream(logs_client, group, "flaky")

    def publish(lines: list[str]) -> None:
        raise RuntimeError("throttled")

    shipper = logs.LogShipper(logs_client, group, "flaky", publish)
    shipper.write("kept")
    shipper.close()
    assert cloudwatch_lines(logs_client, group, "flaky") == ["kept"]


# --- process -------------------------------------------------------------------------------------


def run_lines(command: str, cwd: Path) -> list[str]:
    process = BuildProcess(command, cwd=cwd, env={"PATH": sandbox.SAFE_PATH})
    out = list(process.lines())
    assert process.wait() == 0
    return out


def test_stdout_and_stderr_arrive_in_the_order_written(tmp_path: Path) -> None:
    command = 'for i in 1 2 3; do echo "out $i"; echo "err $i" >&2; done'
    assert run_lines(command, tmp_path) == ["out 1", "err 1", "out 2", "err 2", "out 3", "err 3"]


def test_a_line_over_8_kib_is_cut_with_a_note_and_the_next_line_still_arrives(tmp_path: Path) -> None:
    out = run_lines("head -c 10000 /dev/zero | tr '\\0' a; echo; echo next", tmp_path)
    assert len(out) == 2, [line[:40] for line in out]
    assert out[0].startswith("a" * MAX_LINE_BYTES) and not out[0].startswith("a" * (MAX_LINE_BYTES + 1))
    assert "more bytes of this line cut" in out[0]
    assert out[1] == "next"


@pytest.mark.parametrize(("size", "expected"), [(10_000, "a" * 8192 + " …[1808 more bytes of this line cut]"),
                                                (8192, "a" * 8192)])  # fmt: skip
def test_the_cut_note_counts_the_bytes_of_the_line(tmp_path: Path, size: int, expected: str) -> None:
    out = run_lines(f"head -c {size} /dev/zero | tr '\\0' a; echo", tmp_path)
    assert out == [expected]


def test_a_line_without_a_final_newline_is_kept(tmp_path: Path) -> None:
    assert run_lines("echo first; printf last", tmp_path) == ["first", "last"]


def _gone(pid: int) -> bool:
    """No such process, or only its zombie (nothing here reaps orphans: the test runs under a plain PID 1)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_kill_group_kills_a_child_that_ignores_sigterm(tmp_path: Path) -> None:
    """A build that traps SIGTERM (and its background child that does too) is gone after the grace period."""
    process = BuildProcess(
        'trap "" TERM; (trap "" TERM; sleep 60) & echo $!; wait', cwd=tmp_path, env={"PATH": sandbox.SAFE_PATH}
    )
    lines = process.lines()
    child = int(next(lines))
    assert not _gone(child)
    started = time.monotonic()
    process.kill_group(0.5)
    assert process.wait() == -signal.SIGKILL
    assert wait_for(lambda: _gone(child), 3.0) is not None, "the background child outlived kill_group"
    assert time.monotonic() - started < 3.0
    assert list(lines) == [], "the pipe closes once the whole group is gone"


def test_kill_group_does_not_wait_out_the_grace_for_a_build_that_stops_on_sigterm(tmp_path: Path) -> None:
    process = BuildProcess("sleep 60 & echo $!; wait", cwd=tmp_path, env={"PATH": sandbox.SAFE_PATH})
    child = int(next(process.lines()))
    started = time.monotonic()
    process.kill_group(10.0)
    # Well inside the grace. Not near zero: the group counts as alive until PID 1 reaps its zombies.
    assert time.monotonic() - started < 5.0
    assert process.wait() == -signal.SIGTERM
    assert wait_for(lambda: _gone(child), 3.0) is not None


# --- sandbox -------------------------------------------------------------------------------------

WORKER_SECRETS = {
    "AWS_ACCESS_KEY_ID": "AKIAWORKERKEY0000001",
    "AWS_SECRET_ACCESS_KEY": "worker-secret-access-key-value",
    "AWS_SESSION_TOKEN": "worker-session-token-value",
    "LONGRUN_LOCAL_SECRET": "local-cloud-signing-secret",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/worker-creds-id",
}


def test_the_build_environment_holds_none_of_the_workers_secrets(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, value in WORKER_SECRETS.items():
        monkeypatch.setenv(name, value)
    env = sandbox.build_environment(
        job_id=JOB, project_id=PROJECT, workspace=tmp_path / "ws", cache_dir=tmp_path / "cache", home=tmp_path / "home"
    )
    assert not set(WORKER_SECRETS) & set(env)
    flat = json.dumps(env)
    assert not [v for v in WORKER_SECRETS.values() if v in flat]
    assert env["LONGRUN_JOB_ID"] == JOB and env["LONGRUN_PROJECT_ID"] == PROJECT
    assert env["LONGRUN_WORKSPACE"] == str(tmp_path / "ws")
    assert env["LONGRUN_CACHE_DIR"] == str(tmp_path / "cache")
    assert env["HOME"] == str(tmp_path / "home") and env["TMPDIR"] == str(tmp_path / "home" / "tmp")
    assert env["PATH"] == sandbox.SAFE_PATH
    assert env["npm_config_cache"].startswith(str(tmp_path / "cache"))


def test_a_build_sees_no_secret_in_its_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """What the build itself reads with ``env``: the scrubbed environment, whatever the worker holds."""
    for name, value in WORKER_SECRETS.items():
        monkeypatch.setenv(name, value)
    env = sandbox.build_environment(
        job_id=JOB, project_id=PROJECT, workspace=tmp_path, cache_dir=tmp_path / "cache", home=tmp_path
    )
    printed = "\n".join(run_lines_env("env", tmp_path, env))
    assert "LONGRUN_JOB_ID=" + JOB in printed
    assert not [v for v in WORKER_SECRETS.values() if v in printed]


def run_lines_env(command: str, cwd: Path, env: dict[str, str]) -> list[str]:
    process = BuildProcess(command, cwd=cwd, env=env)
    out = list(process.lines())
    process.wait()
    return out


def test_make_worker_undumpable_clears_the_dumpable_flag() -> None:
    """Checked in a child process: the flag would stay on the test runner otherwise."""
    code = (
        "import ctypes; from workers.build import sandbox; ok = sandbox.make_worker_undumpable(); "
        "print(ok, ctypes.CDLL(None).prctl(3, 0, 0, 0, 0))"  # PR_GET_DUMPABLE
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO / "handlers")},
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    assert out.split() == ["True", "0"]


# --- artifacts: collect -----------------------------------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A workspace after a build, with the traps a hostile build or repository can set."""
    ws = tmp_path / "ws"
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("another project's secret")
    files = {
        "dist/index.html": "<html>",
        "dist/sub/app.js": "js",
        "dist/sub/deeper/app.js.map": "{}",
        "README.md": "readme",
        "release.zip": "zip",
        ".git/config": "[remote] url = https://token@host/x",
        ".git/HEAD": "ref: refs/heads/main",
        "vendor/lib/.git/HEAD": "ref: refs/heads/main",
    }
    for path, content in files.items():
        (ws / path).parent.mkdir(parents=True, exist_ok=True)
        (ws / path).write_text(content)
    (ws / "dist" / "leak.txt").symlink_to(outside / "secret.txt")
    (ws / "dist" / "linked").symlink_to(outside, target_is_directory=True)
    return ws


def paths(found: list[artifacts.Artifact]) -> list[str]:
    return [a.path for a in found]


def test_collect_takes_nested_files_and_skips_symlinks(tree: Path) -> None:
    found = artifacts.collect(tree, ["dist/**"])
    assert paths(found) == ["dist/index.html", "dist/sub/app.js", "dist/sub/deeper/app.js.map"]
    assert [a.size for a in found] == [6, 2, 2]


def test_collect_skips_a_symlink_named_by_the_glob_itself(tree: Path) -> None:
    assert artifacts.collect(tree, ["dist/leak.txt", "dist/linked/*", "dist/linked/**"]) == []


def test_collect_skips_a_symlinked_directory_on_the_way(tmp_path: Path, tree: Path) -> None:
    """``dist`` itself a symlink out of the workspace: nothing under it is uploaded."""
    ws = tmp_path / "ws2"
    ws.mkdir()
    (ws / "dist").symlink_to(tmp_path / "outside", target_is_directory=True)
    assert artifacts.collect(ws, ["dist/**"]) == []
    assert artifacts.collect(ws, ["dist/*"]) == []
    assert artifacts.collect(ws, ["**/*.txt"]) == []


def test_collect_never_takes_git_metadata(tree: Path) -> None:
    """Not even through globs that Prepare lets pass (``.gi?/**``) or that match everything."""
    assert artifacts.collect(tree, [".gi?/**", "**/HEAD", "**/config", ".g*"]) == []
    everything = paths(artifacts.collect(tree, ["**"]))
    assert everything == ["README.md", *paths(artifacts.collect(tree, ["dist/**"])), "release.zip"]
    assert not [p for p in everything if ".git" in p]


def test_collect_lists_a_file_matched_by_several_globs_once(tree: Path) -> None:
    found = artifacts.collect(tree, ["dist/**", "dist/sub/*.js", "**/*.js", "*.zip", "*.zip"])
    assert paths(found) == ["dist/index.html", "dist/sub/app.js", "dist/sub/deeper/app.js.map", "release.zip"]


def test_collect_refuses_more_files_than_one_build_may_upload(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(artifacts, "MAX_FILES", 3)
    assert len(artifacts.collect(tree, ["dist/**"])) == 3, "exactly MAX_FILES is allowed"
    with pytest.raises(artifacts.TooManyArtifacts):
        artifacts.collect(tree, ["dist/**", "*.zip"])


def test_collect_refuses_more_bytes_than_one_build_may_upload(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(artifacts, "MAX_TOTAL_BYTES", 8)
    with pytest.raises(artifacts.TooManyArtifacts):
        artifacts.collect(tree, ["dist/**"])


# --- artifacts: upload ------------------------------------------------------------------------------


def test_upload_puts_each_file_under_the_jobs_prefix_with_longruns_mark(
    cloud: Path, tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer mark keeps the sync from treating artifacts as uploads; only RESULT_MAX entries carry a URL."""
    monkeypatch.setattr(artifacts, "RESULT_MAX", 2)
    found = artifacts.collect(tree, ["dist/**"])
    listed = artifacts.upload(tree, found, PROJECT, JOB)
    s3 = boto3.client("s3", region_name=REGION)
    prefix = f"artifacts/{PROJECT}/{JOB}/"
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"])
    assert keys == [prefix + p for p in paths(found)]
    for artifact in found:
        got = s3.get_object(Bucket=BUCKET, Key=prefix + artifact.path)
        assert got["Metadata"] == {"longrun-writer": JOB}
        assert got["Body"].read() == (tree / artifact.path).read_bytes()
    assert [e["path"] for e in listed] == paths(found)[:2]
    for entry in listed:
        assert entry["key"] == prefix + entry["path"]
        assert entry["url"].startswith("https://") and BUCKET in entry["url"] and "X-Amz-Signature" in entry["url"]
        assert entry["expiresAt"].endswith("Z")


def test_upload_will_not_follow_a_file_swapped_for_a_symlink_after_collect(cloud: Path, tree: Path) -> None:
    """A leftover build process that swaps a checked file for a symlink gets an error, not the target uploaded."""
    found = artifacts.collect(tree, ["dist/index.html"])
    (tree / "dist" / "index.html").unlink()
    (tree / "dist" / "index.html").symlink_to(tree.parent / "outside" / "secret.txt")
    with pytest.raises(OSError):
        artifacts.upload(tree, found, PROJECT, JOB)
    listed = boto3.client("s3", region_name=REGION).list_objects_v2(Bucket=BUCKET)
    assert listed.get("KeyCount", 0) == 0


# --- worker: messages and heartbeats ---------------------------------------------------------------


def body(**overrides: Any) -> dict[str, Any]:
    """A build message as the state machine's wait task sends it."""
    message = {
        "taskToken": "token-1",
        "executionArn": "arn:aws:states:us-east-1:123456789012:execution:longrun-build:wf-1",
        "attempt": 0,
        "jobId": JOB,
        "userId": "alice",
        "projectId": PROJECT,
        "command": "true",
        "artifacts": ["dist/**"],
        "timeoutSeconds": 30,
        "heartbeatSeconds": 10,
    }
    message.update(overrides)
    return message


@pytest.fixture
def schemas_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("SCHEMAS_DIR", str(REPO / "schemas"))
    clear_caches()
    yield
    clear_caches()


def test_parse_accepts_the_message_the_state_machine_sends(schemas_dir: None) -> None:
    assert _parse(json.dumps(body())) == body()


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "",
        "[]",
        '"a string"',
        "null",
        json.dumps({"body": body()}),
        json.dumps({k: v for k, v in body().items() if k != "taskToken"}),
        json.dumps({k: v for k, v in body().items() if k != "command"}),
        json.dumps(body(attempt="0")),
        json.dumps(body(attempt=True)),
        json.dumps(body(attempt=-1)),
        json.dumps(body(taskToken="")),
        json.dumps(body(command="")),
        json.dumps(body(artifacts="dist/**")),
        json.dumps(body(timeoutSeconds=0)),
        json.dumps(body(timeoutSeconds=14401)),
        json.dumps(body(heartbeatSeconds="10")),
        json.dumps(body(projectId="../prj-other")),
        json.dumps(body(jobId="job/../../x")),
        json.dumps(body(executionArn="not-an-arn")),
    ],
    ids=[
        "not-json",
        "empty",
        "array",
        "string",
        "null",
        "nested",
        "no-token",
        "no-command",
        "attempt-string",
        "attempt-bool",
        "attempt-negative",
        "empty-token",
        "empty-command",
        "artifacts-string",
        "timeout-zero",
        "timeout-too-long",
        "heartbeat-string",
        "project-traversal",
        "job-traversal",
        "bad-arn",
    ],
)
def test_parse_refuses_a_malformed_message(schemas_dir: None, raw: str) -> None:
    assert _parse(raw) is None


class StubSfn:
    """Step Functions as the worker sees it; ``gone_after`` heartbeats, the token answers ``gone_code``.

    A ``SendTaskSuccess`` of the message's token (``token-1``, the Queue state's) is a claim: refused
    with ``claim_refused`` if set, else the Run state's handover follows, as the machine's
    ``aws-sdk:dynamodb:putItem`` writes it (unless ``hands_over`` is False).
    """

    def __init__(self, gone_after: int | None = None, gone_code: str = "TaskTimedOut") -> None:
        self.gone_after, self.gone_code = gone_after, gone_code
        self.heartbeats = 0
        self.heartbeat_tokens: set[str] = set()
        self.claims: list[dict[str, Any]] = []
        self.claim_refused: str | None = None
        self.hands_over = True
        self.successes: list[dict[str, Any]] = []
        self.failures: list[dict[str, Any]] = []

    def send_task_heartbeat(self, taskToken: str) -> dict[str, Any]:
        self.heartbeats += 1
        self.heartbeat_tokens.add(taskToken)
        if self.gone_after is not None and self.heartbeats > self.gone_after:
            raise ClientError({"Error": {"Code": self.gone_code, "Message": "no"}}, "SendTaskHeartbeat")
        return {}

    def send_task_success(self, taskToken: str, output: str) -> dict[str, Any]:
        if taskToken == "token-1":
            if self.claim_refused:
                raise ClientError({"Error": {"Code": self.claim_refused, "Message": "no"}}, "SendTaskSuccess")
            claim = json.loads(output)
            self.claims.append(claim)
            if self.hands_over:
                boto3.client("dynamodb", region_name=REGION).put_item(TableName=PROJECTS_TABLE, Item={
                    "pk": {"S": f"buildrun#{JOB}#{claim['claim']}"}, "taskToken": {"S": RUN_TOKEN},
                    "worker": {"S": claim["worker"]}, "expiresAt": {"N": str(int(time.time()) + 600)},
                })  # fmt: skip
            return {}
        self.successes.append({"token": taskToken, "output": json.loads(output)})
        return {}

    def send_task_failure(self, taskToken: str, error: str, cause: str) -> dict[str, Any]:
        self.failures.append({"token": taskToken, "error": error, "cause": json.loads(cause)})
        return {}


class StubSqs:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def change_message_visibility(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("change_message_visibility", kwargs))
        return {}

    def delete_message(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("delete_message", kwargs))
        return {}


@pytest.mark.parametrize("code", ["TaskTimedOut", "InvalidToken", "TaskDoesNotExist"])
def test_beat_says_the_task_is_gone(code: str) -> None:
    assert beat(StubSfn(gone_after=0, gone_code=code), "t") is False


@pytest.mark.parametrize("code", ["ThrottlingException", "ServiceUnavailable"])
def test_beat_keeps_the_build_on_other_errors(code: str) -> None:
    """A throttled heartbeat must not kill a healthy build: only the token's own answers mean "stop"."""
    assert beat(StubSfn(gone_after=0, gone_code=code), "t") is True
    assert beat(StubSfn(), "t") is True


@dataclass
class Harness:
    """A worker whose queue and Step Functions are stubs, with moto's Logs and S3, and a workspace."""

    worker: Worker
    sfn: StubSfn
    sqs: StubSqs
    workspace: Path
    progress: list[tuple[str, dict[str, Any]]]
    published: list[list[str]]

    def handle(self, **overrides: Any) -> str:
        return self.worker.handle({"MessageId": "m-1", "ReceiptHandle": "r-1", "Body": json.dumps(body(**overrides))})

    @property
    def log(self) -> list[str]:
        return [line for lines in self.published for line in lines]


@pytest.fixture
def harness(cloud: Path, monkeypatch: pytest.MonkeyPatch) -> Harness:
    progress: list[tuple[str, dict[str, Any]]] = []
    published: list[list[str]] = []
    monkeypatch.setattr(publisher, "progress", lambda job, step, status, detail=None, **kw: progress.append(
        (status, detail or {})))  # fmt: skip
    monkeypatch.setattr(publisher, "publish", lambda job, message, **kw: published.append(list(message["lines"])))
    monkeypatch.setenv("BUILD_HEARTBEAT_INTERVAL_SECONDS", "0.2")
    # The worker's own logic, as any user runs it: switching to the project's uid is checked apart
    # (test_claim_* below, and end to end in tests/e2e/test_builds.py).
    monkeypatch.setattr(sandbox, "can_switch_users", lambda: False)
    workspace = cloud / "projects" / PROJECT
    workspace.mkdir(parents=True)
    (workspace / "longrun.json").write_text("{}")
    worker = Worker("https://sqs.local/queue", worker_id="unit-worker")
    # The queue and Step Functions are stubs, whatever clients the worker made for them; Logs and S3 stay moto's.
    worker.sqs, worker.sfn = StubSqs(), StubSfn()
    return Harness(worker, worker.sfn, worker.sqs, workspace, progress, published)


def test_a_build_that_exits_0_uploads_its_artifacts_and_answers_success(harness: Harness) -> None:
    command = (
        'echo "building $LONGRUN_JOB_ID"; echo "key=[$AWS_SECRET_ACCESS_KEY]"; mkdir -p dist/sub; '
        "echo hi > dist/sub/a.txt; echo x > dist/b.txt; echo done >&2"
    )
    assert harness.handle(command=command) == "answered"
    assert harness.sfn.failures == []
    [success] = harness.sfn.successes
    result = success["output"]
    assert result["exitCode"] == 0 and result["artifactCount"] == 2
    assert [a["path"] for a in result["artifacts"]] == ["dist/b.txt", "dist/sub/a.txt"]
    assert result["logGroup"] == LOG_PREFIX + PROJECT and result["logStream"] == JOB
    assert harness.log == [f"building {JOB}", "key=[]", "done"], "the build saw no credentials"
    s3 = boto3.client("s3", region_name=REGION)
    assert s3.get_object(Bucket=BUCKET, Key=f"artifacts/{PROJECT}/{JOB}/dist/sub/a.txt")["Body"].read() == b"hi\n"
    cloudwatch = cloudwatch_lines(boto3.client("logs", region_name=REGION), LOG_PREFIX + PROJECT, JOB)
    assert cloudwatch == harness.log
    assert [s for s, _ in harness.progress] == ["STARTED", "SUCCEEDED"]
    assert harness.progress[0][1]["worker"] == "unit-worker" and harness.progress[0][1]["attempt"] == 1
    assert ("delete_message", {"QueueUrl": "https://sqs.local/queue", "ReceiptHandle": "r-1"}) in harness.sqs.calls


def test_a_build_that_exits_2_answers_build_failed_with_the_exit_code(harness: Harness) -> None:
    assert harness.handle(command="echo compiling; exit 2", attempt=1) == "answered"
    assert harness.sfn.successes == []
    [failure] = harness.sfn.failures
    assert failure["error"] == "BuildFailed"
    assert failure["cause"]["errorMessage"] == "the build command exited with code 2"
    assert failure["cause"]["details"][0]["exitCode"] == 2
    assert harness.log[0] == "[longrun] attempt 2: the previous worker stopped reporting"
    assert harness.log[1:] == ["compiling"]
    assert harness.progress[-1] == ("FAILED", {**failure["cause"]["details"][0], "code": "BuildFailed"})


def test_a_build_past_its_timeout_is_killed_and_answers_build_timed_out(harness: Harness) -> None:
    started = time.monotonic()
    assert harness.handle(command="echo start; sleep 30", timeoutSeconds=1) == "answered"
    assert time.monotonic() - started < 6
    [failure] = harness.sfn.failures
    assert failure["error"] == "BuildTimedOut" and "1 s" in failure["cause"]["errorMessage"]
    assert harness.log == ["start", "[longrun] the build ran past its 1 s and was stopped"]


def test_a_cancelled_build_is_killed_and_not_answered(harness: Harness) -> None:
    """The token goes away mid-build (the user cancelled): the process group dies and nothing is sent."""
    harness.sfn.gone_after = 1  # one of the thread's heartbeats; then InvalidToken-like
    marker = harness.workspace / "finished"
    started = time.monotonic()
    assert harness.handle(command=f"sleep 20; touch {marker}") == "cancelled"
    assert time.monotonic() - started < 6
    assert harness.sfn.successes == [] and harness.sfn.failures == []
    time.sleep(0.2)
    assert not marker.exists()


@pytest.mark.parametrize("code", ["TaskTimedOut", "InvalidToken"])
def test_a_message_whose_claim_is_refused_is_dropped_without_building(harness: Harness, code: str) -> None:
    """The build waited past BuildQueueTimeoutSeconds, was stopped, or another worker claimed it first."""
    harness.sfn.claim_refused = code
    marker = harness.workspace / "ran"
    assert harness.handle(command=f"touch {marker}") == "dropped"
    assert not marker.exists()
    assert [name for name, _ in harness.sqs.calls] == ["delete_message"]
    assert harness.progress == [] and harness.published == []
    assert harness.sfn.heartbeats == 0 and harness.sfn.successes == [] and harness.sfn.failures == []


def test_a_claim_refused_for_another_reason_leaves_the_message_for_a_later_try(harness: Harness) -> None:
    """A throttled claim is not a refusal: the message stays, comes back after its visibility timeout."""
    harness.sfn.claim_refused = "ThrottlingException"
    with pytest.raises(ClientError):
        harness.handle(command="true")
    assert harness.sqs.calls == [] and harness.progress == []


def test_the_claim_names_the_worker_and_the_build_runs_on_the_handed_over_token(harness: Harness) -> None:
    assert harness.handle(command="sleep 0.5") == "answered"
    [claim] = harness.sfn.claims
    assert claim["worker"] == "unit-worker" and len(claim["claim"]) == 32
    assert harness.sfn.heartbeat_tokens == {RUN_TOKEN}, "heartbeats go to the Run token, never the queue's"
    assert [s["token"] for s in harness.sfn.successes] == [RUN_TOKEN]
    table = boto3.client("dynamodb", region_name=REGION)
    key = {"pk": {"S": f"buildrun#{JOB}#{claim['claim']}"}}
    assert "Item" not in table.get_item(TableName=PROJECTS_TABLE, Key=key, ConsistentRead=True), "taken, not left"


def test_a_claim_whose_run_token_never_comes_builds_nothing(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """Claimed, then the execution was stopped before Run: the worker gives up after HANDOFF_SECONDS."""
    import workers.build.worker as worker_module

    monkeypatch.setattr(worker_module, "HANDOFF_SECONDS", 0.5)
    harness.sfn.hands_over = False
    marker = harness.workspace / "ran"
    started = time.monotonic()
    assert harness.handle(command=f"touch {marker}") == "dropped"
    assert time.monotonic() - started < 3
    assert not marker.exists() and harness.progress == [] and harness.sfn.heartbeats == 0
    assert [name for name, _ in harness.sqs.calls] == ["delete_message"]


def test_another_workers_claim_does_not_hand_this_one_a_token(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Run token is keyed by the claim: a worker holding a stale copy of the message cannot take it."""
    import workers.build.worker as worker_module

    monkeypatch.setattr(worker_module, "HANDOFF_SECONDS", 0.3)
    table = boto3.client("dynamodb", region_name=REGION)
    theirs = {"pk": {"S": f"buildrun#{JOB}#someone-elses-claim"}}
    table.put_item(TableName=PROJECTS_TABLE, Item={**theirs, "taskToken": {"S": "not-yours"}})
    assert harness.worker.take_run_token(JOB, "mine") is None
    kept = table.get_item(TableName=PROJECTS_TABLE, Key=theirs, ConsistentRead=True)["Item"]
    assert kept["taskToken"]["S"] == "not-yours"


def test_a_malformed_message_is_handed_back_for_the_dead_letter_queue(harness: Harness) -> None:
    outcome = harness.worker.handle({"MessageId": "m-1", "ReceiptHandle": "r-1", "Body": '{"jobId": "x"}'})
    assert outcome == "malformed"
    assert harness.sqs.calls == [
        ("change_message_visibility", {"QueueUrl": "https://sqs.local/queue", "ReceiptHandle": "r-1",
                                       "VisibilityTimeout": 0})
    ]  # fmt: skip
    assert harness.sfn.heartbeats == 0 and harness.sfn.claims == []


def test_a_build_whose_workspace_vanished_is_answered_with_a_failure(harness: Harness) -> None:
    for path in sorted(harness.workspace.rglob("*"), reverse=True):
        path.unlink()
    harness.workspace.rmdir()
    harness.handle(command="true")
    assert len(harness.sfn.failures) == 1


# --- protection ------------------------------------------------------------------------------------


class _Agent(BaseHTTPRequestHandler):
    """The ECS agent's task-protection endpoint: records each request, answers ``status``."""

    server: Any

    def do_PUT(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.server.requests.append((self.path, self.headers.get("Content-Type"), json.loads(self.rfile.read(length))))
        self.send_response(self.server.status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def agent(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Agent)
    server.requests, server.status = [], 200
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("ECS_AGENT_URI", f"http://127.0.0.1:{server.server_address[1]}/api/task-1234")
    yield server
    server.shutdown()
    server.server_close()


def test_protect_outside_ecs_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ECS_AGENT_URI", raising=False)
    assert protection.protect(True, 30) is False
    assert protection.protect(False) is False


def test_protect_turns_the_tasks_scale_in_protection_on_then_off(agent: Any) -> None:
    assert protection.protect(True, (1800 + 600) / 60) is True
    assert protection.protect(False) is True
    path = "/api/task-1234/task-protection/v1/state"
    assert agent.requests == [
        (path, "application/json", {"ProtectionEnabled": True, "ExpiresInMinutes": 40}),
        (path, "application/json", {"ProtectionEnabled": False}),
    ]


@pytest.mark.parametrize(("minutes", "sent"), [(0.1, 1), (59.2, 60), (10_000, 2880)])
def test_protect_asks_for_whole_minutes_within_ecs_limits(agent: Any, minutes: float, sent: int) -> None:
    protection.protect(True, minutes)
    assert agent.requests[-1][2]["ExpiresInMinutes"] == sent


def test_protect_reports_an_agent_that_refuses_or_is_down(agent: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker that cannot protect itself goes on building: the call says False and raises nothing."""
    agent.status = 400
    assert protection.protect(True, 10) is False
    monkeypatch.setenv("ECS_AGENT_URI", "http://127.0.0.1:9/api/task")  # discard port: connection refused
    assert protection.protect(True, 10) is False


# --- publisher: a build's log while its job runs --------------------------------------------------------


@pytest.fixture
def stack(aws: Any) -> Any:
    """The unit conftest's moto stack (jobs and events tables from the template), under a name that does not
    shadow ``core.aws`` in this module."""
    return aws


def test_log_lines_are_published_only_while_the_job_runs(stack: Any) -> None:
    """A cancelled build's last lines must not follow its ``job.finished``: the user was told it ended."""
    job = stack.put_job("build-job-1", type="build", params={"command": "make"})
    first = publisher.publish(job, {"type": "job.log", "lines": ["compiling", ""]}, while_running=True)
    assert first is not None and first["seq"] == 1 and first["lines"] == ["compiling", ""]
    assert publisher.finish(job, "CANCELLED", error={"code": "Cancelled", "message": "cancelled by the user"})
    assert publisher.publish(job, {"type": "job.log", "lines": ["late"]}, while_running=True) is None
    assert publisher.progress(job, "build", "FAILED", {"code": "BuildFailed"}, while_running=True) is None
    assert [(e["seq"], e["type"]) for e in stack.events("build-job-1")] == [(1, "job.log"), (2, "job.finished")]


# --- the project's own user ------------------------------------------------------------------------


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give files to another user")
def test_claim_gives_the_workspace_to_the_projects_uid_and_closes_it(tmp_path: Path) -> None:
    projects = tmp_path / "projects"
    workspace = projects / "prj-a"
    (workspace / "src").mkdir(parents=True)
    (workspace / "src" / "app.js").write_text("x")
    outside = tmp_path / "outside.txt"
    outside.write_text("not theirs")
    (workspace / "link").symlink_to(outside)
    sandbox.claim(workspace, 200_123)
    for path in (workspace, workspace / "src", workspace / "src" / "app.js"):
        assert path.lstat().st_uid == 200_123 and path.lstat().st_gid == 200_123
    assert (workspace / "link").lstat().st_uid == 200_123, "the symlink itself changes hands"
    assert outside.stat().st_uid == 0, "never what a symlink points at"
    assert stat.S_IMODE(workspace.stat().st_mode) == 0o700
    assert stat.S_IMODE(projects.stat().st_mode) == 0o711, "the parent lets a build in, never lists"


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give files to another user")
def test_claim_refuses_a_workspace_that_is_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "projects").mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "projects" / "prj-a").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(NotADirectoryError):
        sandbox.claim(tmp_path / "projects" / "prj-a", 200_124)
    assert (tmp_path / "elsewhere").stat().st_uid == 0


def test_each_project_gets_its_own_build_uid_once(aws: Any) -> None:
    from core import build_users

    first, second = build_users.uid_for("prj-one"), build_users.uid_for("prj-two")
    assert first >= build_users.FIRST_UID and second >= build_users.FIRST_UID and first != second
    assert build_users.uid_for("prj-one") == first, "a project keeps its uid"


def test_a_lost_race_for_a_build_uid_takes_the_winners(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from core import build_users

    table = build_users._table()
    real_get = table.get_item
    calls = {"n": 0}

    def get_item(**kwargs: Any) -> Any:  # the first read misses; meanwhile another worker allocated
        calls["n"] += 1
        if calls["n"] == 1:
            table.put_item(Item={"pk": "builduid#prj-race", "uid": 299_999})
            return {}
        return real_get(**kwargs)

    monkeypatch.setattr(table, "get_item", get_item)
    assert build_users.uid_for("prj-race") == 299_999
