"""``longrun projects …`` and ``longrun files …`` as a user runs them: subprocesses against the session's local cloud.

The commands find the API from ``LONGRUN_API_URL``/``LONGRUN_WS_URL`` (as against a deployed
stage) and sign their token for ``--user``. Each user's projects are their own: another user's
project is ``NotFound`` (exit 1, the API's error body on stderr), never listed, never downloaded,
never deleted. ``files get`` writes exactly the file asked for, and refuses (exit 2, before any
request) to replace one unless ``--force``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.helpers import create_project, http, unique_name, wait_for_status

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
# Every byte value, a NUL and a CR LF: what comes back must be these bytes, not a text rendering of them.
BODY = bytes(range(256)) + b"\r\nend\x00"


def cli(cloud: Any, user: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "LONGRUN_API_URL": cloud.api, "LONGRUN_WS_URL": cloud.ws, "PYTHONUNBUFFERED": "1"}
    env.pop("LONGRUN_TOKEN", None)
    group, *rest = args
    return subprocess.run(
        [sys.executable, "-m", "longrun.cli", group, "--user", user, *rest],
        cwd=REPO, env=env, capture_output=True, timeout=180,
    )  # fmt: skip


def error_code(done: subprocess.CompletedProcess[bytes]) -> str:
    return json.loads(done.stderr)["error"]["code"]


def settle(cloud: Any, user: str, project_id: str) -> None:
    """Wait for the project's jobs (the syncs its uploads started) to finish: a delete needs its lock free."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        items = http(cloud, "GET", f"/jobs?projectId={project_id}", user).json()["items"]
        if all(j["status"] != "RUNNING" for j in items):
            return
        time.sleep(0.2)
    raise TimeoutError(f"jobs of {project_id} still RUNNING")


@pytest.fixture(scope="module")
def owner(local_cloud: Any) -> tuple[str, list[str]]:
    """A user with three projects, oldest first."""
    user = unique_name("cli-owner")
    return user, [create_project(local_cloud, user) for _ in range(3)]


def test_projects_list_pages_a_table_and_json(local_cloud: Any, owner: tuple[str, list[str]]) -> None:
    user, projects = owner
    stranger = create_project(local_cloud, unique_name("cli-stranger"))

    first = cli(local_cloud, user, "projects", "list", "--limit", "2")
    assert first.returncode == 0, first.stderr
    lines = first.stdout.decode().splitlines()
    assert lines[0].split() == ["projectId", "name", "status", "defaultBranch", "createdAt"]
    assert [line.split()[0] for line in lines[1:]] == [projects[2], projects[1]]  # newest first
    assert all(line.split()[2] == "active" for line in lines[1:])
    cursor = first.stderr.decode().split("--cursor ")[1].split()[0]  # the next page, told on stderr

    second = cli(local_cloud, user, "projects", "list", "--limit", "2", "--cursor", cursor, "--json")
    assert second.returncode == 0, second.stderr
    page = json.loads(second.stdout)
    assert [p["projectId"] for p in page["items"]] == [projects[0]] and page["nextCursor"] is None

    every = cli(local_cloud, user, "projects", "list", "--limit", "1", "--all", "--json")
    assert every.returncode == 0, every.stderr
    listed = json.loads(every.stdout)
    assert [p["projectId"] for p in listed["items"]] == projects[::-1] and listed["nextCursor"] is None
    assert stranger not in every.stdout.decode()

    bad = cli(local_cloud, user, "projects", "list", "--limit", "0")
    assert bad.returncode == 2 and b"1 to 100" in bad.stderr  # argparse's usage error, before any request


def test_files_put_and_get_give_back_the_bytes(local_cloud: Any, owner: tuple[str, list[str]], tmp_path: Path) -> None:
    user, projects = owner
    project = projects[0]
    source = tmp_path / "data.bin"
    source.write_bytes(BODY)
    put = cli(local_cloud, user, "files", "put", project, "assets/data.bin", str(source))
    assert put.returncode == 0, put.stderr
    assert json.loads(put.stdout) == {
        "path": "assets/data.bin", "key": f"projects/{project}/assets/data.bin", "size": len(BODY),
        "contentType": "application/octet-stream",
    }  # fmt: skip

    to_stdout = cli(local_cloud, user, "files", "get", project, "assets/data.bin")
    assert to_stdout.returncode == 0, to_stdout.stderr
    assert to_stdout.stdout == BODY

    target = tmp_path / "out.bin"
    to_file = cli(local_cloud, user, "files", "get", project, "assets/data.bin", "-o", str(target))
    assert to_file.returncode == 0, to_file.stderr
    assert target.read_bytes() == BODY and to_file.stdout == b""
    assert f"{len(BODY)} bytes to {target}".encode() in to_file.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.bin", "out.bin"]  # no temporary file left

    # An existing file is kept unless --force; a directory is never written over.
    target.write_bytes(b"mine")
    kept = cli(local_cloud, user, "files", "get", project, "assets/data.bin", "-o", str(target))
    assert kept.returncode == 2 and b"--force" in kept.stderr and target.read_bytes() == b"mine"
    folder = cli(local_cloud, user, "files", "get", project, "assets/data.bin", "-o", str(tmp_path), "--force")
    assert folder.returncode == 2 and b"is a directory" in folder.stderr
    forced = cli(local_cloud, user, "files", "get", project, "assets/data.bin", "-o", str(target), "--force")
    assert forced.returncode == 0, forced.stderr
    assert target.read_bytes() == BODY

    # --force replaces a symbolic link itself, never the file it points to.
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_bytes(b"not yours to overwrite")
    link = tmp_path / "link.bin"
    link.symlink_to(elsewhere)
    linked = cli(local_cloud, user, "files", "get", project, "assets/data.bin", "-o", str(link), "--force")
    assert linked.returncode == 0, linked.stderr
    assert not link.is_symlink() and link.read_bytes() == BODY
    assert elsewhere.read_bytes() == b"not yours to overwrite"
    settle(local_cloud, user, project)


def test_files_get_says_what_is_wrong(local_cloud: Any, owner: tuple[str, list[str]], tmp_path: Path) -> None:
    user, projects = owner
    target = tmp_path / "never.bin"
    missing = cli(local_cloud, user, "files", "get", projects[1], "no/such/file.txt", "-o", str(target))
    assert missing.returncode == 1 and error_code(missing) == "NotFound"
    hostile = cli(local_cloud, user, "files", "get", projects[1], "../../etc/passwd", "-o", str(target))
    assert hostile.returncode == 1 and error_code(hostile) == "ValidationError"
    assert json.loads(hostile.stderr)["error"]["details"][0]["path"] == "path"
    theirs = cli(local_cloud, unique_name("cli-other"), "files", "get", projects[1], "longrun.json")
    assert theirs.returncode == 1 and error_code(theirs) == "NotFound" and theirs.stdout == b""
    assert not target.exists()


def test_projects_delete_watches_the_job_and_the_project_is_gone(
    local_cloud: Any, owner: tuple[str, list[str]]
) -> None:
    user, projects = owner
    project = projects[2]
    other = cli(local_cloud, unique_name("cli-other"), "projects", "delete", project)
    assert other.returncode == 1 and error_code(other) == "NotFound"
    assert cli(local_cloud, user, "projects", "get", project).returncode == 0  # untouched by the stranger

    done = cli(local_cloud, user, "projects", "delete", project, "--watch")
    output = done.stdout.decode()
    assert done.returncode == 0, output + done.stderr.decode()
    assert "(delete-project of " in output and "finished: SUCCEEDED" in output
    final = json.loads(output[output.index("\n{") :])
    assert final["type"] == "job.finished" and final["status"] == "SUCCEEDED"

    gone = cli(local_cloud, user, "projects", "get", project)
    assert gone.returncode == 1 and error_code(gone) == "NotFound"
    listed = json.loads(cli(local_cloud, user, "projects", "list", "--all", "--json").stdout)
    assert project not in [p["projectId"] for p in listed["items"]]
    # The job stays readable; without --watch, the accepted job is printed.
    assert wait_for_status(local_cloud, final["jobId"], user)["status"] == "SUCCEEDED"
    again = cli(local_cloud, user, "projects", "delete", project)
    assert again.returncode == 1 and error_code(again) == "NotFound"
    started = cli(local_cloud, user, "projects", "delete", projects[1])
    assert started.returncode == 0, started.stderr
    job = json.loads(started.stdout)
    assert job["type"] == "delete-project" and job["status"] == "RUNNING" and job["projectId"] == projects[1]
    assert wait_for_status(local_cloud, job["jobId"], user)["status"] == "SUCCEEDED"
