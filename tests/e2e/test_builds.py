"""Builds on the local cloud's workers, through the REST API and the WebSocket, as a user runs them.

Each build really runs: the state machine queues it with a task token, one of the local cloud's
two worker processes (the template's ECS service) takes it, runs the command in the project's
workspace, ships its output as ``job.log`` and calls back.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.helpers import create_project, http, operator_env, recv_until, wait_for_status, ws_connect
from tests.e2e.test_openapi_conformance import check

USER = "bob"


@pytest.fixture(scope="module")
def project(local_cloud) -> str:
    return create_project(local_cloud, USER)


def workspace(cloud: Any, project_id: str) -> Path:
    return cloud.efs_root() / "projects" / project_id


def start_build(cloud: Any, project_id: str, user: str = USER, **params: Any) -> dict[str, Any]:
    response = http(cloud, "POST", "/jobs", user, json={"type": "build", "projectId": project_id, "params": params})
    assert response.status_code == 202, response.text
    check("POST", "/jobs", response)
    return response.json()


def watch(cloud: Any, job_id: str, timeout: float = 60, user: str = USER) -> list[dict[str, Any]]:
    """Every event of the job up to its ``job.finished``, from the WebSocket (missed ones from REST first)."""
    with ws_connect(cloud, user) as ws:
        ws.send(json.dumps({"action": "subscribe", "jobId": job_id}))
        return recv_until(ws, lambda m: m.get("type") == "job.finished", timeout)


def log_lines(events: list[dict[str, Any]]) -> list[str]:
    return [line for e in events if e["type"] == "job.log" for line in e["lines"]]


def run(cloud: Any, project_id: str, timeout: float = 60, **params: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Start a build, follow it to the end over the WebSocket; the finished job and every event.

    The subscription may come after the first events: those are read back from the job's history,
    so the events checked are all of them, in ``seq`` order, each once.
    """
    job = start_build(cloud, project_id, **params)
    with ws_connect(cloud, USER) as ws:
        ws.send(json.dumps({"action": "subscribe", "jobId": job["jobId"]}))
        pushed = recv_until(ws, lambda m: m.get("type") == "job.finished", timeout)
    stored = http(cloud, "GET", f"/jobs/{job['jobId']}/events", USER).json()["items"]
    pushed_seqs = [e["seq"] for e in pushed if "seq" in e]
    assert pushed_seqs == sorted(pushed_seqs)
    assert [e["seq"] for e in stored] == list(range(1, len(stored) + 1))
    return wait_for_status(cloud, job["jobId"], USER), stored


# --- the happy path -------------------------------------------------------------------------------


def test_default_build_streams_its_log_and_uploads_artifacts(local_cloud, project):
    job, events = run(local_cloud, project)
    assert job["status"] == "SUCCEEDED", (job["error"], log_lines(events))
    result = job["result"]
    assert result["exitCode"] == 0 and result["durationMs"] >= 0
    assert result["logStream"] == job["jobId"] and result["logGroup"].endswith(f"/builds/{project}")
    assert any(line.startswith("built ") for line in log_lines(events))
    # The build's step, as the user reads it on the job.
    build_step = next(s for s in job["steps"] if s["name"] == "build")
    assert build_step["status"] == "SUCCEEDED"
    # The scaffold's artifacts (dist/**), each downloadable from its pre-signed URL.
    paths = {a["path"] for a in result["artifacts"]}
    assert {"dist/index.html", "dist/index.html.gz", "dist/app.js"} <= paths
    assert result["artifactCount"] == len(result["artifacts"])
    built = workspace(local_cloud, project) / "dist"
    for artifact in result["artifacts"]:
        assert artifact["key"] == f"artifacts/{project}/{job['jobId']}/{artifact['path']}"
        download = httpx.get(artifact["url"], timeout=30)
        assert download.status_code == 200
        assert download.content == (built.parent / artifact["path"]).read_bytes()
    # The whole event stream is what the contract's schemas say.
    kinds = [e["type"] for e in events]
    assert kinds[-1] == "job.finished" and kinds.count("job.finished") == 1
    assert "job.log" in kinds


def test_log_lines_arrive_in_order_and_a_flood_is_batched(local_cloud, project):
    command = "i=0; while [ $i -lt 3000 ]; do echo line-$i; i=$((i+1)); done; echo to-stderr >&2; echo last"
    job, events = run(local_cloud, project, command=command)
    assert job["status"] == "SUCCEEDED"
    lines = log_lines(events)
    assert lines == [f"line-{i}" for i in range(3000)] + ["to-stderr", "last"]
    log_events = [e for e in events if e["type"] == "job.log"]
    assert len(log_events) < 100, "a flood of output is batched, not one event a line"
    assert all(len(json.dumps(e)) < 32 * 1024 for e in log_events), "each event fits a WebSocket frame"


def test_the_log_is_in_cloudwatch_and_longrun_logs_reads_it(local_cloud, project):
    job, _ = run(local_cloud, project, command="echo one; echo; echo three")
    env = operator_env(local_cloud)
    cli = [sys.executable, "-m", "longrun.cli", "logs", job["jobId"]]
    out = subprocess.run(cli, capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["one", "", "three"]
    # --follow on a running build prints every line and ends when the build does.
    running = start_build(local_cloud, project, command="for i in 1 2 3 4; do echo tick-$i; sleep 0.5; done")
    time.sleep(0.5)
    follow = subprocess.run([*cli[:-1], running["jobId"], "--follow"], capture_output=True, text=True, env=env,
                            timeout=60)  # fmt: skip
    assert follow.returncode == 0, follow.stderr
    assert follow.stdout.splitlines() == [f"tick-{i}" for i in range(1, 5)]
    # Not a build, or nobody's job: a clear message and a failing exit code.
    other = subprocess.run([*cli[:-1], "no-such-job"], capture_output=True, text=True, env=env, timeout=60)
    assert other.returncode == 1 and "no job no-such-job" in other.stderr


# --- failures -------------------------------------------------------------------------------------


def test_a_failing_command_ends_failed_with_its_exit_code(local_cloud, project):
    job, events = run(local_cloud, project, command="echo about to fail; exit 7")
    assert job["status"] == "FAILED"
    assert job["error"]["code"] == "BuildFailed"
    assert "7" in job["error"]["message"]
    assert job["error"]["details"][0]["exitCode"] == 7
    assert "about to fail" in log_lines(events)
    finished = events[-1]
    assert finished["type"] == "job.finished" and finished["status"] == "FAILED"


def test_a_command_that_outlives_its_timeout_ends_timed_out(local_cloud, project):
    started = time.monotonic()
    job, events = run(local_cloud, project, command="echo begun; sleep 60", timeoutSeconds=2)
    assert time.monotonic() - started < 30
    assert job["status"] == "TIMED_OUT"
    assert job["error"]["code"] == "BuildTimedOut"
    assert "begun" in log_lines(events)


def test_no_build_command_fails_clearly(local_cloud):
    project = create_project(local_cloud, USER)
    (workspace(local_cloud, project) / "longrun.json").write_text('{"name": "x"}')
    job, _ = run(local_cloud, project)
    assert job["status"] == "FAILED" and job["error"]["code"] == "NoBuildCommand"


def test_hostile_artifact_globs_fail_before_anything_runs(local_cloud):
    project = create_project(local_cloud, USER)
    root = workspace(local_cloud, project)
    (root / "longrun.json").write_text(json.dumps({"build": {"command": "touch ran", "artifacts": ["../../*"]}}))
    job, events = run(local_cloud, project)
    assert job["status"] == "FAILED" and job["error"]["code"] == "InvalidProjectFile"
    assert not (root / "ran").exists()
    assert not any(e["type"] == "job.log" for e in events)


def test_artifacts_never_follow_a_symlink_out_of_the_workspace(local_cloud, project):
    command = "rm -rf dist && mkdir -p dist && echo ok > dist/ok.txt && ln -s /etc/passwd dist/passwd"
    job, _ = run(local_cloud, project, command=command)
    assert job["status"] == "SUCCEEDED"
    assert [a["path"] for a in job["result"]["artifacts"]] == ["dist/ok.txt"]


@pytest.mark.parametrize(
    ("params", "path"),
    [
        ({"command": ""}, "params.command"),
        ({"command": 5}, "params.command"),
        ({"timeoutSeconds": 0}, "params.timeoutSeconds"),
        ({"timeoutSeconds": 100000}, "params.timeoutSeconds"),
        ({"timeoutSeconds": "60"}, "params.timeoutSeconds"),
        ({"command": "make", "image": "ubuntu"}, "params"),
    ],
)
def test_bad_build_params_are_refused(local_cloud, project, params, path):
    response = http(local_cloud, "POST", "/jobs", USER, json={"type": "build", "projectId": project, "params": params})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "ValidationError"
    assert any(d["path"].startswith(path) for d in error["details"]), error


def test_a_build_needs_a_project_of_its_user(local_cloud, project):
    missing = http(local_cloud, "POST", "/jobs", USER, json={"type": "build", "params": {}})
    assert missing.status_code == 400
    assert any(d["path"] == "projectId" for d in missing.json()["error"]["details"])
    stranger = http(local_cloud, "POST", "/jobs", "mallory", json={"type": "build", "projectId": project, "params": {}})
    assert stranger.status_code == 404


# --- isolation ------------------------------------------------------------------------------------


def test_the_build_cannot_read_the_workers_credentials(local_cloud, project):
    command = "env; echo ---; cat /proc/$PPID/environ || echo cannot-read-parent"
    job, events = run(local_cloud, project, command=command)
    assert job["status"] == "SUCCEEDED"
    lines = log_lines(events)
    environment = lines[: lines.index("---")]
    names = {line.split("=", 1)[0] for line in environment}
    assert not {n for n in names if n.startswith("AWS_")}, names
    assert "LONGRUN_LOCAL_SECRET" not in names and "TOKEN_SECRET_PARAMETER" not in names
    assert not any("testing" in line for line in lines), "the worker's (local) credentials leaked"
    assert "cannot-read-parent" in lines
    assert {"LONGRUN_CACHE_DIR", "LONGRUN_JOB_ID", "HOME", "PATH"} <= names


# --- cancel, lost workers, concurrency ------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited; it waits only for its parent to reap it.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] != "Z"
    except OSError:
        return False


def test_cancel_kills_the_whole_process_group(local_cloud, project):
    root = workspace(local_cloud, project)
    (root / "child.pid").unlink(missing_ok=True)
    command = "(trap '' TERM; sleep 300) & echo $! > child.pid; trap '' TERM; echo ready; sleep 300"
    job = start_build(local_cloud, project, command=command)
    with ws_connect(local_cloud, USER) as ws:
        ws.send(json.dumps({"action": "subscribe", "jobId": job["jobId"]}))
        recv_until(ws, lambda m: m.get("type") == "job.log" and "ready" in m["lines"], 60)
        child = int((root / "child.pid").read_text())
        assert _alive(child)
        cancelled_at = time.monotonic()
        response = http(local_cloud, "DELETE", f"/jobs/{job['jobId']}", USER)
        assert response.status_code == 202
        while _alive(child) and time.monotonic() - cancelled_at < 10:
            time.sleep(0.1)
        gone_after = time.monotonic() - cancelled_at
        assert not _alive(child), "a child that ignores SIGTERM outlived the cancel"
        assert gone_after < 5, f"the build's process group was killed {gone_after:.1f} s after the cancel"
        time.sleep(1)  # nothing more may follow the job.finished
    events = http(local_cloud, "GET", f"/jobs/{job['jobId']}/events", USER).json()["items"]
    assert [e["type"] for e in events].count("job.finished") == 1
    assert events[-1]["type"] == "job.finished" and events[-1]["status"] == "CANCELLED"
    assert wait_for_status(local_cloud, job["jobId"], USER)["status"] == "CANCELLED"


def test_a_worker_killed_mid_build_is_replaced_and_the_build_runs_again(local_cloud, project):
    command = "echo attempt-start; sleep 3; echo attempt-done"
    job = start_build(local_cloud, project, command=command)
    with ws_connect(local_cloud, USER) as ws:
        ws.send(json.dumps({"action": "subscribe", "jobId": job["jobId"]}))
        first = recv_until(ws, lambda m: m.get("type") == "job.progress" and m["step"] == "build"
                           and m["status"] == "STARTED", 60)[-1]  # fmt: skip
        assert first["detail"]["attempt"] == 1
        worker_pid = int(first["detail"]["worker"].rsplit("-", 1)[1])
        os.kill(worker_pid, signal.SIGKILL)
        rest = recv_until(ws, lambda m: m.get("type") == "job.finished", 90)
    restarted = [m for m in rest if m.get("type") == "job.progress" and m["step"] == "build"]
    restarted = [m for m in restarted if m["status"] == "STARTED"]
    assert restarted and restarted[-1]["detail"]["attempt"] == 2
    assert restarted[-1]["detail"]["worker"] != first["detail"]["worker"]
    assert rest[-1]["status"] == "SUCCEEDED"
    assert "attempt-done" in log_lines(rest)


def test_ten_builds_at_once_on_two_workers_all_finish(local_cloud, project):
    jobs = [start_build(local_cloud, project, command=f"echo build-{i}; sleep 0.3") for i in range(10)]
    with ThreadPoolExecutor(max_workers=10) as pool:
        finished = list(pool.map(lambda j: wait_for_status(local_cloud, j["jobId"], USER, timeout=120), jobs))
    assert [j["status"] for j in finished] == ["SUCCEEDED"] * 10
    workers = {
        next(s for s in http(local_cloud, "GET", f"/jobs/{j['jobId']}/events", USER).json()["items"]
             if s["type"] == "job.progress" and s["step"] == "build" and s["status"] == "STARTED")["detail"]["worker"]
        for j in jobs
    }  # fmt: skip
    assert 1 <= len(workers) <= 2


def test_the_cache_survives_between_builds_and_is_the_projects_own(local_cloud, project):
    first, _ = run(local_cloud, project, command='echo "$LONGRUN_JOB_ID" > "$LONGRUN_CACHE_DIR/last-build"')
    assert first["status"] == "SUCCEEDED"
    _, events = run(local_cloud, project, command='cat "$LONGRUN_CACHE_DIR/last-build"')
    assert log_lines(events) == [first["jobId"]]
    other = create_project(local_cloud, USER)
    _, events = run(local_cloud, other, command='cat "$LONGRUN_CACHE_DIR/last-build" || echo empty-cache')
    assert "empty-cache" in log_lines(events)


@pytest.mark.skipif(os.geteuid() != 0, reason="the local build workers run as this user; only root can switch users")
def test_a_build_reaches_no_other_projects_files(local_cloud, project):
    """Each project's builds run as its own uid; every workspace and cache is its project's alone."""
    built, _ = run(local_cloud, project, command='echo mine > "$LONGRUN_CACHE_DIR/secret"')  # claimed by a build
    assert built["status"] == "SUCCEEDED"
    never_built = create_project(local_cloud, USER)
    other_user = create_project(local_cloud, "eve")
    probes = " ".join(
        f"ls ../{target} >/dev/null 2>&1 && echo LISTED-{name}; cat ../{target}/longrun.json >/dev/null 2>&1 "
        f"&& echo READ-{name}; touch ../{target}/planted 2>/dev/null && echo WROTE-{name};"
        for name, target in (("built", project), ("unbuilt", never_built))
    )
    command = (
        f"id -u; {probes} ls .. >/dev/null 2>&1 && echo LISTED-ALL; "
        f'cat "$LONGRUN_CACHE_DIR/../{project}/secret" 2>/dev/null && echo READ-CACHE; echo done'
    )
    response = http(local_cloud, "POST", "/jobs", "eve", json={"type": "build", "projectId": other_user,
                                                                "params": {"command": command}})  # fmt: skip
    assert response.status_code == 202
    job_id = response.json()["jobId"]
    finished = wait_for_status(local_cloud, job_id, "eve")
    assert finished["status"] == "SUCCEEDED", finished
    events = http(local_cloud, "GET", f"/jobs/{job_id}/events", "eve").json()["items"]
    lines = log_lines(events)
    assert lines[-1] == "done"
    assert not [line for line in lines if line.split("-")[0] in ("LISTED", "READ", "WROTE")], lines
    assert int(lines[0]) != 0, "a build never runs as root"
    _, mine = run(local_cloud, project, command="id -u")
    assert int(log_lines(mine)[0]) not in (0, int(lines[0])), "two projects never share a build user"
    assert not (workspace(local_cloud, project) / "planted").exists()


# --- the queue: messages no worker can use ---------------------------------------------------------


def _outputs(cloud: Any) -> dict[str, str]:
    """The stack's outputs, found as an operator finds them (CloudFormation ``DescribeStacks``)."""
    stacks = cloud.aws_client("cloudformation").describe_stacks(StackName="longrun")["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0]["Outputs"]}


def test_a_malformed_message_ends_in_the_dead_letter_queue_and_a_stale_one_is_dropped(local_cloud):
    sqs = local_cloud.aws_client("sqs")
    outputs = _outputs(local_cloud)
    queue, dead_letters = outputs["BuildQueueUrl"], outputs["BuildDeadLetterQueueUrl"]
    stale = {
        "taskToken": "a-token-no-execution-waits-for",
        "executionArn": "arn:aws:states:us-east-1:123456789012:execution:x:y",
        "attempt": 0, "jobId": "job-stale", "userId": USER, "projectId": "prj-stale", "command": "touch /tmp/stale-ran",
        "artifacts": [], "timeoutSeconds": 60, "heartbeatSeconds": 10,
    }  # fmt: skip
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(stale))
    sqs.send_message(QueueUrl=queue, MessageBody='{"not": "a build"')
    deadline = time.monotonic() + 60
    parked: list[dict[str, Any]] = []
    while time.monotonic() < deadline and not parked:
        parked = sqs.receive_message(QueueUrl=dead_letters, WaitTimeSeconds=2).get("Messages", [])
    assert [m["Body"] for m in parked] == ['{"not": "a build"'], "the malformed message, and only it, is parked"
    counts = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible")
    while time.monotonic() < deadline:  # the stale message is deleted, not left to come back
        attributes = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=list(counts))["Attributes"]
        if [attributes[c] for c in counts] == ["0", "0"]:
            break
        time.sleep(0.5)
    assert [attributes[c] for c in counts] == ["0", "0"], attributes
    assert not Path("/tmp/stale-ran").exists(), "a message whose execution is gone never runs"


def test_longrun_worker_build_needs_its_queue():
    env = {k: v for k, v in os.environ.items() if k != "BUILD_QUEUE_URL"}
    out = subprocess.run([sys.executable, "-m", "longrun.cli", "worker", "build"], capture_output=True, text=True,
                         env=env, timeout=60)  # fmt: skip
    assert out.returncode == 2 and "BUILD_QUEUE_URL" in out.stderr


def test_a_build_stopped_behind_the_apis_back_is_closed_with_the_stops_reason_and_killed(local_cloud, project):
    """An operator's Stop in the console, with a reason: the execution-status trigger fails the job with that
    reason (docs/operations.md), the worker kills the build."""
    root = workspace(local_cloud, project)
    (root / "stopped.pid").unlink(missing_ok=True)
    job = start_build(local_cloud, project, command="echo $$ > stopped.pid; echo ready; sleep 300")
    with ws_connect(local_cloud, USER) as ws:
        ws.send(json.dumps({"action": "subscribe", "jobId": job["jobId"]}))
        recv_until(ws, lambda m: m.get("type") == "job.log" and "ready" in m["lines"], 60)
        pid = int((root / "stopped.pid").read_text())
        local_cloud.aws_client("stepfunctions").stop_execution(executionArn=job["executionArn"], error="Operator")
        finished = recv_until(ws, lambda m: m.get("type") == "job.finished", 30)[-1]
    assert finished["status"] == "FAILED" and finished["error"]["code"] == "Operator", finished
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid), "the worker stops a build whose execution was stopped"
    events = http(local_cloud, "GET", f"/jobs/{job['jobId']}/events", USER).json()["items"]
    assert [e["type"] for e in events].count("job.finished") == 1


def test_ops_history_and_list_show_a_failed_build(local_cloud, project):
    job, _ = run(local_cloud, project, command="echo going; exit 4")
    assert job["links"]["console"].endswith(job["executionArn"]) and job["links"]["console"].startswith("https://")
    env = operator_env(local_cloud)
    ops = [sys.executable, "-m", "longrun.cli", "ops"]
    out = subprocess.run([*ops, "history", job["jobId"], "--json"], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout)
    assert found["executionArn"] == job["executionArn"] and found["status"] == "FAILED"
    assert [s["name"] for s in found["states"]] == ["Prepare", "Queue", "Run", "NotifyFailure", "JobFailed"]
    build = found["states"][2]
    assert build["outcome"] == "caught" and build["errors"][0]["error"] == "BuildFailed"
    assert "code 4" in build["errors"][0]["cause"]
    table = subprocess.run([*ops, "history", job["jobId"]], capture_output=True, text=True, env=env, timeout=60)
    assert table.returncode == 0 and "BuildFailed" in table.stdout and "NotifyFailure" in table.stdout
    listed = subprocess.run([*ops, "list", "--status", "FAILED", "--since", "1h", "--json"], capture_output=True,
                            text=True, env=env, timeout=60)  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert job["executionArn"] in [e["executionArn"] for e in json.loads(listed.stdout)]
    unknown = subprocess.run([*ops, "history", "no-such-job"], capture_output=True, text=True, env=env, timeout=60)
    assert unknown.returncode == 1 and "no job no-such-job" in unknown.stderr
