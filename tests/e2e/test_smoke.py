"""``longrun smoke`` against the local cloud, as an operator runs it after ``sam deploy``.

It runs as a subprocess with only the standard AWS environment that ``longrun local up`` prints:
the API and WebSocket URLs come from the stack's outputs, the token from the stack's secret in SSM
(``LONGRUN_LOCAL_SECRET`` is set to something else, so a token signed any other way is refused).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from longrun.client import ApiError
from tests.e2e.helpers import operator_env, stack_outputs
from tests.support.git_server import GitServer, make_repository

REPO = Path(__file__).resolve().parents[2]
JOBS = ("create-project", "git-merge", "git-branch", "upload->sync", "build", "git-clone", "git-pull", "git-push",
        "delete-project")  # fmt: skip
CHECKS = ("projects list", "download")  # rows that are no job: OK, their time, no job id
NAMES = "|".join(re.escape(j) for j in JOBS + CHECKS)
ROW = re.compile(r"^(?P<job>" + NAMES + r")\s+(?P<status>[A-Z][A-Z ]*?)\s{2,}(?P<rest>.*)$")


@pytest.fixture(scope="module")
def git_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("smoke-git")
    make_repository(root, "hello.git", {"README.md": "hello\n"})
    server = GitServer(root)
    yield server
    server.stop()


def smoke(cloud: Any, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**operator_env(cloud), "LONGRUN_LOCAL_SECRET": "not-the-stacks-secret", "PYTHONUNBUFFERED": "1"}
    for name in ("LONGRUN_TOKEN", "LONGRUN_API_URL", "LONGRUN_WS_URL", "AWS_PROFILE"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "longrun.cli", "smoke", "--stack", "longrun", "--timeout", "120", *args],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip


def rows(output: str) -> dict[str, tuple[str, str]]:
    """job → (status, the rest of its row: time and job id)."""
    found = {}
    for line in output.splitlines():
        match = ROW.match(line)
        if match:
            found[match["job"]] = (match["status"], match["rest"])
    return found


def origin_main(server: GitServer) -> str:
    """The commit the git server's hello.git has on main."""
    git = ["git", "--git-dir", str(server.root / "hello.git"), "rev-parse", "refs/heads/main"]
    return subprocess.run(git, capture_output=True, text=True, check=True).stdout.strip()


def secret(cloud: Any) -> str:
    name = stack_outputs(cloud)["TokenSecretParameterName"]
    return cloud.aws_client("ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]


def test_the_outputs_name_the_local_fronts(local_cloud: Any) -> None:
    """What an operator reads from DescribeStacks is what a client calls, locally as on AWS."""
    outputs = stack_outputs(local_cloud)
    assert outputs["RestApiUrl"] == local_cloud.api
    assert outputs["WebSocketUrl"] == local_cloud.ws
    assert outputs["ConsoleUrl"] == local_cloud.api + "/static/console/index.html"
    assert outputs["TokenSecretParameterName"].startswith("/")


def test_smoke_runs_every_job_kind_and_cleans_up(local_cloud: Any, git_server: GitServer) -> None:
    before = origin_main(git_server)
    done = smoke(local_cloud, "--repo", f"{git_server.url}/hello.git", "--push")
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    table = rows(done.stdout)
    assert list(table) == ["create-project", "projects list", "git-merge", "git-branch", "upload->sync", "download",
                           "build", "git-clone", "git-pull", "git-push", "delete-project"], output  # fmt: skip
    for job, (status, rest) in table.items():
        assert status == ("OK" if job in CHECKS else "SUCCEEDED"), (job, output)
        assert re.match(r"\d+\.\d s\s+" + ("-" if job in CHECKS else "[0-9a-f]{32}") + "$", rest), (job, rest)
    assert secret(local_cloud) not in output
    assert "eyJ" not in output  # no token either
    project_id = re.search(r"prj-[0-9a-f]+", done.stdout)[0]  # type: ignore[index]
    s3 = local_cloud.aws_client("s3")
    bucket = stack_outputs(local_cloud)["ProjectsBucketName"]
    for prefix in (f"projects/{project_id}/", f"artifacts/{project_id}/", f"manifests/{project_id}.json"):
        listed = s3.list_object_versions(Bucket=bucket, Prefix=prefix)
        assert not listed.get("Versions") and not listed.get("DeleteMarkers"), prefix
    # delete-project was the clean-up: the project is gone (GET is 404) and its workspace too.
    user = local_cloud.client("longrun-smoke")
    with pytest.raises(ApiError) as gone:
        user.project(project_id)
    assert gone.value.status == 404
    assert not (local_cloud.efs_root() / "projects" / project_id).exists()
    assert "left: the build cache" in done.stdout and "smoke: every job SUCCEEDED" in done.stdout
    # The push asked the origin and changed nothing there: the branch was up to date, main is as it was.
    push = user.job(table["git-push"][1].split()[-1])["result"]
    assert push["pushed"] == [] and push["upToDate"] == 1 and push["branches"] == ["main"], push
    assert origin_main(git_server) == before


def test_without_push_the_push_row_is_skipped_with_its_reason(local_cloud: Any, git_server: GitServer) -> None:
    done = smoke(local_cloud, "--repo", f"{git_server.url}/hello.git")
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    table = rows(done.stdout)
    assert table["git-push"][0] == "SKIPPED" and "--push" in table["git-push"][1], output
    assert table["git-pull"][0] == table["delete-project"][0] == "SUCCEEDED", output
    assert "skipped git-push" in done.stdout


def test_a_repository_that_does_not_exist_fails_its_row_and_the_run(local_cloud: Any, git_server: GitServer) -> None:
    done = smoke(local_cloud, "--repo", f"{git_server.url}/missing.git")
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    table = rows(done.stdout)
    assert table["git-clone"][0] == "FAILED", output
    assert table["git-pull"][0] == table["git-push"][0] == "NOT RUN", output  # they need the clone
    passed = [job for job in JOBS + CHECKS if job not in ("git-clone", "git-pull", "git-push")]
    assert all(table[job][0] in ("SUCCEEDED", "OK") for job in passed), output
    assert "GitFailed" in table["git-clone"][1]
    assert secret(local_cloud) not in output


def test_a_stack_that_does_not_exist_is_a_usage_error(local_cloud: Any) -> None:
    env = operator_env(local_cloud)
    done = subprocess.run(
        [sys.executable, "-m", "longrun.cli", "smoke", "--stack", "no-such-stack"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "no-such-stack" in done.stderr
