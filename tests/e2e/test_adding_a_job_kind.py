"""docs/adding-a-job-kind.md, followed to the letter: its job kind runs on the local cloud.

A temporary copy of the repository gets the guide's files where the guide puts them and its
template section where the guide pastes it (tests/support/job_kind_guide.py); ``longrun local up
--template`` runs the copy. A project-stats job is then started over the REST API and its result
awaited over a real WebSocket, params that break its schema get the contract's 400, and the guide's
own workflow test passes against the copy's cloud. A copy with a broken guide file does not run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import LocalCloud, started_local_cloud
from tests.e2e.helpers import create_project, http, recv_until, ws_connect
from tests.support.job_kind_guide import GUIDE, GUIDE_FILES, JOB_TYPE, TEMPLATE_FILES, build_copy, guide_files

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
USER = "guide-reader"


def _local_up(data: Path, template: Path) -> list[str]:
    return [sys.executable, "-m", "longrun.cli", "local", "up", "--api-port", "0", "--ws-port", "0",
            "--aws-port", "0", "--data-dir", str(data / "data"), "--endpoints-file", str(data / "endpoints.json"),
            "--template", str(template)]  # fmt: skip


@pytest.fixture(scope="module")
def copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository after the guide: its job kind's files in place, its template section pasted."""
    root = tmp_path_factory.mktemp("with-project-stats")
    build_copy(root)
    return root


@pytest.fixture(scope="module")
def kind_cloud(copy: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCloud]:
    """``longrun local up --template <copy>/infra/template.yaml``, as the guide's last step runs it."""
    base = tmp_path_factory.mktemp("project-stats-cloud")
    with started_local_cloud(base, "--template", str(copy / "infra" / "template.yaml")) as cloud:
        yield cloud


def test_the_guide_names_every_file_of_its_folder_and_where_it_goes() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    for relative in [*guide_files(), *TEMPLATE_FILES]:
        assert f"adding-a-job-kind/{relative.as_posix()}" in text, f"the guide never links {relative}"
        if relative not in TEMPLATE_FILES:
            assert f"`{relative.as_posix()}`" in text, f"the guide never says where {relative} goes"


def test_a_project_stats_job_reports_the_projects_files_and_bytes_over_the_websocket(kind_cloud) -> None:
    project = create_project(kind_cloud, USER)
    s3 = kind_cloud.aws_client("s3")
    bucket = next(b["Name"] for b in s3.list_buckets()["Buckets"] if "projectsbucket" in b["Name"])
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"projects/{project}/")["Contents"]

    with ws_connect(kind_cloud, USER) as ws:
        response = http(kind_cloud, "POST", "/jobs", USER, json={"type": JOB_TYPE, "projectId": project})
        assert response.status_code == 202, response.text
        job = response.json()
        assert job["type"] == JOB_TYPE and job["projectId"] == project
        ws.send(json.dumps({"action": "subscribe", "jobId": job["jobId"]}))
        messages = recv_until(ws, lambda m: m.get("type") == "job.finished", timeout=60)

    finished = messages[-1]
    # SUCCEEDED: the step read params.maxFiles, which the request left out: the schema's default.
    assert finished["status"] == "SUCCEEDED", finished
    assert finished["result"] == {
        "files": len(listed),
        "bytes": sum(o["Size"] for o in listed),
        "s3Prefix": f"projects/{project}/",
    }
    assert finished["result"]["files"] > 0, "the scaffold's files are there to count"
    events = http(kind_cloud, "GET", f"/jobs/{job['jobId']}/events", USER).json()["items"]
    steps = [(e["step"], e["status"]) for e in events if e["type"] == "job.progress"]
    assert steps == [("count-files", "STARTED"), ("count-files", "SUCCEEDED")], steps


@pytest.mark.parametrize(
    ("params", "path"),
    [({"maxFiles": 0}, "params.maxFiles"), ({"maxFiles": "all"}, "params.maxFiles"), ({"glob": "*"}, "params.glob")],
)
def test_params_that_break_the_schema_are_a_validation_error_naming_the_path(kind_cloud, params, path) -> None:
    body = {"type": JOB_TYPE, "projectId": "prj-0000000000000000", "params": params}

    response = http(kind_cloud, "POST", "/jobs", USER, json=body)

    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "ValidationError"
    assert [d["path"] for d in error["details"]] == [path], error


_ATTACH = '''
    """The guide's workflow test against the cloud that tests/e2e/test_adding_a_job_kind.py started."""
    import json
    import os

    import boto3
    import pytest


    class Cloud:
        def __init__(self, endpoints):
            self.api, self.ws, self.aws = endpoints["api"], endpoints["ws"], endpoints["aws"]

        def aws_client(self, service):
            return boto3.client(service, endpoint_url=self.aws, region_name="us-east-1",
                                aws_access_key_id="testing", aws_secret_access_key="testing")


    @pytest.fixture(scope="session")
    def local_cloud():
        with open(os.environ["GUIDE_CLOUD_ENDPOINTS"], encoding="utf-8") as f:
            return Cloud(json.load(f))
'''


def test_the_guides_workflow_test_passes_in_the_copy(kind_cloud, copy: Path) -> None:
    """The guide's tests/workflows file, run by pytest inside the copy, on the copy's cloud."""
    (copy / "tests" / "conftest.py").write_text(textwrap.dedent(_ATTACH), encoding="utf-8")
    workflow_test = copy / "tests" / "workflows" / "test_project_stats_workflow.py"

    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(workflow_test)],
        cwd=copy, capture_output=True, text=True, timeout=240,
        env={**os.environ, "GUIDE_CLOUD_ENDPOINTS": str(kind_cloud.data_dir.parent / "endpoints.json")},
    )  # fmt: skip

    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout, done.stdout


# The repository's checks that a job kind's files meet (run in the copy, they judge the guide's kind too):
# its section and statements (H1's layout), its error catalogue, retry policies and notify states, and
# the template's wiring of machines, handlers, log groups, alarms and dashboard.
STATIC_CHECKS = [
    "tests/infra/test_template_layout.py::test_each_job_kind_lies_in_its_own_section",
    "tests/infra/test_template_layout.py::test_no_iam_statement_is_pasted_three_times_in_infra",
    "tests/infra/test_error_catalogues.py::test_the_workflows_keep_their_catalogues",
    "tests/infra/test_error_catalogues.py::test_every_machine_has_one_catalogue_and_the_worker_names_its_errors_by_class",
    "tests/infra/test_retry_policies.py::test_every_retry_is_a_named_policy",
    "tests/infra/test_notify_states.py::test_every_machine_s_notify_and_fail_states_are_the_fragment_s",
    "tests/infra/test_job_kinds.py::test_every_job_kind_is_whole",
    "tests/infra/test_template.py::test_state_machine_graph",
    "tests/infra/test_template.py::test_state_machine_substitutions_match",
    "tests/infra/test_template.py::test_handler_resolves_to_a_file",
    "tests/infra/test_template.py::test_every_function_has_a_log_group_with_retention",
    "tests/infra/test_template.py::test_every_state_machine_logs_without_execution_data_and_traces",
    "tests/infra/test_template.py::test_failed_timed_out_and_throttled_executions_of_every_state_machine_alarm",
    "tests/infra/test_template.py::test_every_function_is_in_exactly_one_throttles_alarm",
    "tests/infra/test_template.py::test_the_dashboard_is_json_and_names_only_what_exists",
]


def test_the_repositorys_checks_of_a_job_kind_pass_in_the_copy(copy: Path) -> None:
    """The checks that judge every kind of the repository judge the guide's kind once it is added."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *STATIC_CHECKS],
        cwd=copy, capture_output=True, text=True, timeout=600,
    )  # fmt: skip

    assert done.returncode == 0, done.stdout + done.stderr
    graph = "tests/infra/test_template.py::test_state_machine_graph"
    assert "project_stats.asl.json" in subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--collect-only", "-p", "no:cacheprovider", graph],
        cwd=copy, capture_output=True, text=True, timeout=120,
    ).stdout, "the copy's checks see the guide's machine"  # fmt: skip


def test_a_copy_with_a_broken_guide_file_does_not_run(tmp_path: Path) -> None:
    """Not vacuous: the same copy with the guide's machine pointing at a missing state is refused."""
    template = build_copy(tmp_path / "copy")
    asl = tmp_path / "copy" / "statemachines" / "project_stats.asl.json"
    definition = json.loads(asl.read_text(encoding="utf-8"))
    definition["States"]["CountFiles"]["Next"] = "NoSuchState"
    asl.write_text(json.dumps(definition, indent=2), encoding="utf-8")

    done = subprocess.run(_local_up(tmp_path, template), cwd=REPO, capture_output=True, text=True, timeout=180)

    assert done.returncode == 2, done.stdout + done.stderr
    assert "AWS would refuse ProjectStatsStateMachine" in done.stderr, done.stderr
    assert not (tmp_path / "endpoints.json").exists(), "a refused stack never serves"


def test_the_guides_folder_holds_only_what_the_guide_places() -> None:
    """Every file of docs/adding-a-job-kind/ goes somewhere the copy uses: none is left out of the proof."""
    placed = {p.parts[0] for p in guide_files()}
    assert placed <= {"schemas", "statemachines", "handlers", "tests"}, placed
    assert all((GUIDE_FILES / f).is_file() for f in TEMPLATE_FILES)
