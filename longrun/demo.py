"""``make demo``: the whole path once, the way a user meets it.

Starts ``longrun local up`` as a child process, posts a ``create-project`` job through the REST
API, shows each step's progress as it arrives over the WebSocket, prints the ``job.finished``
message the workflow's final state pushed, and stops the local cloud.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from longrun.cli import _render
from longrun.client import Client, Endpoints
from longrun.local_extra import missing_message
from longrun.tokens import make_token


def main() -> int:
    if (problem := missing_message("make demo")) is not None:  # it runs `longrun local up`
        print(problem, file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="longrun-demo-"))
    endpoints_file = workdir / "endpoints.json"
    print("1. starting the local cloud: longrun local up", flush=True)
    cloud = subprocess.Popen(
        [sys.executable, "-m", "longrun.cli", "local", "up", "--data-dir", str(workdir / "data"),
         "--endpoints-file", str(endpoints_file)],
        stdout=subprocess.DEVNULL,
        stderr=open(workdir / "local-up.log", "wb"),  # noqa: SIM115
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not endpoints_file.exists():
            if cloud.poll() is not None or time.monotonic() > deadline:
                print((workdir / "local-up.log").read_text(), file=sys.stderr)
                print("the local cloud did not start", file=sys.stderr)
                return 1
            time.sleep(0.2)
        endpoints = Endpoints.discover(endpoints_file)
        print(f"   REST {endpoints.api}   WebSocket {endpoints.ws}", flush=True)

        client = Client(endpoints, make_token("demo-user"))
        name = f"demo-{uuid.uuid4().hex[:6]}"
        print(f"2. POST /jobs  create-project name={name}", flush=True)
        started = time.monotonic()
        job = client.start_job("create-project", {"name": name})
        print(
            f"   202 in {(time.monotonic() - started) * 1000:.0f} ms: job {job['jobId']}, "
            f"execution {job['executionArn'].rsplit(':', 1)[-1]}",
            flush=True,
        )
        print("3. progress over the WebSocket:", flush=True)
        finished = None
        for event in client.watch(job["jobId"], timeout=120):
            print(_render(event), flush=True)
            if event["type"] == "job.finished":
                finished = event
        print("4. the job.finished message the workflow pushed:", flush=True)
        print(json.dumps(finished, indent=2), flush=True)
        if not finished or finished["status"] != "SUCCEEDED":
            return 1
        project = client.project(finished["result"]["projectId"])
        print(
            f"5. GET /projects/{project['projectId']}: {project['name']} on branch {project['defaultBranch']}, "
            f"workspace {project['workspace']}",
            flush=True,
        )
        return 0
    finally:
        print("6. stopping the local cloud", flush=True)
        cloud.send_signal(signal.SIGINT)
        try:
            cloud.wait(timeout=30)
        except subprocess.TimeoutExpired:
            cloud.kill()
        if os.environ.get("LONGRUN_DEMO_KEEP") is None:
            import shutil

            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
