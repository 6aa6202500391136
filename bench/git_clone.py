"""Clone latency: a ``git-clone`` job beside a plain ``git clone`` of the same URL, in the same run.

The repository is generated (5,000 files, 500 commits) and served on 127.0.0.1 over git's smart
HTTP protocol (``git http-backend``). The job is timed from ``POST /jobs`` to the ``job.finished`` pushed over
the WebSocket (subscribed right after the POST), which includes Step Functions, the Lambda step, the swap into the
workspace and the notify step; the baseline is ``git clone`` of the same URL into a fresh
directory. Target: at most 1.2x the baseline plus 1 second.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.calls import unique_name
from bench.cloud import Cloud
from bench.completion import until
from bench.report import Row, Section
from tests.support.git_server import GitServer


@dataclass
class Settings:
    rounds: int = 5
    files: int = 5000
    commits: int = 500

    @classmethod
    def quick(cls) -> Settings:
        return cls(rounds=1, files=500, commits=50)


def generate(root: Path, name: str, files: int, commits: int) -> Path:
    """A bare repository of ``files`` files over ``commits`` commits, written with git fast-import."""
    bare = root / name
    subprocess.run(["git", "init", "-q", "--bare", "--initial-branch=main", str(bare)], check=True)
    stream = []
    per_commit = max(1, files // commits)
    for c in range(commits):
        stream.append(f"commit refs/heads/main\nmark :{c + 1}\ncommitter b <b@example.com> {1700000000 + c} +0000\n")
        message = f"commit {c}\n"
        stream.append(f"data {len(message)}\n{message}")
        if c:
            stream.append(f"from :{c}\n")
        for f in range(c * per_commit, min(files, (c + 1) * per_commit)):
            content = f"file {f}\n" * 20
            stream.append(f"M 644 inline src/{f % 50}/file{f}.txt\ndata {len(content)}\n{content}")
        stream.append("\n")
    subprocess.run(["git", "fast-import", "--quiet"], cwd=bare, input="".join(stream).encode(), check=True)
    return bare


def run(cloud: Cloud, s: Settings, say: Callable[[str], None]) -> Section:
    section = Section("git-clone")
    workdir = Path(tempfile.mkdtemp(prefix="longrun-bench-git-"))
    try:
        say(f"git-clone: generating a repository of {s.files} files and {s.commits} commits")
        generate(workdir, "big.git", s.files, s.commits)
        server = GitServer(workdir)
        url = f"{server.url}/big.git"
        rest = cloud.rest("bench-git")
        project = rest.post("/jobs", json={"type": "create-project", "params": {"name": unique_name()}}).json()
        _wait(rest, project["jobId"])
        jobs_s: list[float] = []
        plain_s: list[float] = []
        ws = cloud.websocket("bench-git")
        for r in range(s.rounds):
            say(f"git-clone: round {r + 1}/{s.rounds}")
            target = workdir / f"plain-{r}"
            started = time.perf_counter()
            env = {"PATH": os.environ["PATH"], "HOME": str(workdir), "GIT_CONFIG_NOSYSTEM": "1"}
            subprocess.run(["git", "clone", "-q", url, str(target)], check=True, env=env)
            plain_s.append(time.perf_counter() - started)
            shutil.rmtree(target)
            started = time.time()
            job_id = rest.post(
                "/jobs", json={"type": "git-clone", "projectId": project["projectId"], "params": {"repoUrl": url}}
            ).json()["jobId"]
            ws.send(json.dumps({"action": "subscribe", "jobId": job_id}))
            finished, at = until(ws, lambda m, j=job_id: m.get("type") == "job.finished" and m.get("jobId") == j, 900)
            jobs_s.append(at - started)
            if finished["status"] != "SUCCEEDED":
                section.notes.append(f"FAILED: round {r + 1} ended {finished['status']}: {finished.get('error')}")
        ws.close()
        server.stop()
        section.rows = [
            Row("git-clone job, POST to job.finished (WebSocket)", "s", jobs_s, plain_s, "plain git clone, same URL",
                target="≤ 1.2x baseline + 1 s", check=lambda v, b: v <= 1.2 * b + 1, digits=2),
        ]  # fmt: skip
        section.notes.append(f"repository: {s.files} files, {s.commits} commits, smart HTTP on 127.0.0.1")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return section


def _wait(rest, job_id: str, timeout: float = 900) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = rest.get(f"/jobs/{job_id}").json()["status"]
        if status != "RUNNING":
            return status
        time.sleep(0.05)
    return "TIMEOUT"
