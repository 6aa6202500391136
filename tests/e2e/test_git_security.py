"""Hostile git input through the REST API: refused with 400 before any process starts, or FAILED at run time."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from core.git_input import forbidden_address
from tests.e2e.helpers import create_project, http, wait_for_status
from tests.support.git_server import GitServer, make_repository

USER = "sec"
CORPUS = json.loads((Path(__file__).parents[1] / "security" / "hostile_git_inputs.json").read_text())
CANARY = Path("/tmp/longrun-canary")


@pytest.fixture(scope="module")
def project(local_cloud):
    return create_project(local_cloud, USER)


# The local cloud lets git reach 127.0.0.1 and localhost (GitPrivateHosts), so that a repository
# served on this machine can be cloned; the corpus's plain 127.0.0.1 entry is allowed here by design.
LOCALLY_ALLOWED = ("//127.0.0.1/", "//localhost/")
# A stored secret's name becomes part of an SSM path (/longrun/git-credentials/<user>/<name>).
HOSTILE_CREDENTIAL_NAMES = ("../other-user/token", "a/b", "$(id)", "", "x" * 65, "name with space", "new\nline")


def test_the_whole_corpus_is_refused_at_the_api(local_cloud, project):
    CANARY.unlink(missing_ok=True)
    for entry in [u for u in CORPUS["urls"] if not any(a in u["value"] for a in LOCALLY_ALLOWED)]:
        body = {"type": "git-clone", "projectId": project, "params": {"repoUrl": entry["value"]}}
        response = http(local_cloud, "POST", "/jobs", USER, json=body)
        assert response.status_code == 400, (entry, response.text)
        start_from = {"type": "create-project", "params": {"name": "from-hostile", "repoUrl": entry["value"]}}
        refused = http(local_cloud, "POST", "/jobs", USER, json=start_from)
        assert refused.status_code == 400 and "params.repoUrl" in refused.text, (entry, refused.text)
    for entry in CORPUS["refs"]:
        for field in ("source", "target"):
            other = "target" if field == "source" else "source"
            params = {field: entry["value"], other: "main"}
            body = {"type": "git-merge", "projectId": project, "params": params}
            assert http(local_cloud, "POST", "/jobs", USER, json=body).status_code == 400, entry
        body = {"type": "git-pull", "projectId": project, "params": {"branch": entry["value"]}}
        refused = http(local_cloud, "POST", "/jobs", USER, json=body)
        assert refused.status_code == 400 and "params.branch" in refused.text, (entry, refused.text)
        for job_type, params, path in (
            ("git-branch", {"name": entry["value"]}, "params.name"),
            ("git-branch", {"flow": "feature-start", "name": entry["value"]}, "params.name"),
            ("git-branch", {"name": "ok", "from": entry["value"]}, "params.from"),
            ("git-push", {"branches": ["main", entry["value"]]}, "params.branches[1]"),
        ):
            body = {"type": job_type, "projectId": project, "params": params}
            refused = http(local_cloud, "POST", "/jobs", USER, json=body)
            assert refused.status_code == 400 and path in refused.text, (job_type, entry, refused.text)
    for name in HOSTILE_CREDENTIAL_NAMES:
        body = {"type": "git-pull", "projectId": project, "params": {"credentials": name}}
        refused = http(local_cloud, "POST", "/jobs", USER, json=body)
        assert refused.status_code == 400 and "params.credentials" in refused.text, (name, refused.text)
        body = {"type": "git-push", "projectId": project, "params": {"credentials": name}}
        refused = http(local_cloud, "POST", "/jobs", USER, json=body)
        assert refused.status_code == 400 and "params.credentials" in refused.text, (name, refused.text)
    jobs = http(local_cloud, "GET", f"/jobs?projectId={project}&limit=100", USER).json()["items"]
    assert [j["type"] for j in jobs] == ["create-project"], "no job was started"
    assert not CANARY.exists()


def test_a_name_that_resolves_to_a_private_address_fails_forbidden_host(local_cloud, project):
    name = socket.gethostname()
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(name, None)}
    except socket.gaierror:
        pytest.skip("this machine's name does not resolve")
    if name in ("localhost", "127.0.0.1") or not any(forbidden_address(a) for a in addresses):
        pytest.skip("this machine's name does not resolve to a private address")
    body = {"type": "git-clone", "projectId": project, "params": {"repoUrl": f"https://{name}/repo.git"}}
    response = http(local_cloud, "POST", "/jobs", USER, json=body)
    assert response.status_code == 202
    job = wait_for_status(local_cloud, response.json()["jobId"], USER)
    assert job["status"] == "FAILED" and job["error"]["code"] == "ForbiddenHost"


def test_clone_of_a_tag(local_cloud, project, tmp_path):
    make_repository(tmp_path, "tagged.git", {"README.md": "v1\n"}, tags=("v1.0.0",))
    server = GitServer(tmp_path)
    try:
        body = {"type": "git-clone", "projectId": project,
                "params": {"repoUrl": f"{server.url}/tagged.git", "ref": "v1.0.0"}}  # fmt: skip
        job = wait_for_status(local_cloud, http(local_cloud, "POST", "/jobs", USER, json=body).json()["jobId"], USER)
        assert job["status"] == "SUCCEEDED", job["error"]
        assert job["result"]["ref"] == "v1.0.0" and job["result"]["branch"] is None
    finally:
        server.stop()
