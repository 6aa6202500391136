"""The template under its scanners, and the limits it sets: what an auditor of the stack checks.

- checkov passes on infra/template.yaml, and every check it skips has its reason written where it
  is skipped (infra/checkov.yaml for a decision about every resource of a kind, a resource's
  Metadata for one resource); cfn-lint is run by test_template.py;
- no Allow statement anywhere in the deployed template (roles' inline policies, managed policies,
  the policies SAM's policy templates expand to, trust policies, bucket and queue policies) has a
  wildcard action: test_template.py checks roles and managed policies, this one every policy
  document, wherever it sits;
- the REST stage's throttling and usage plan, and reserved concurrency where a function must not
  starve the rest, come from parameters with sensible defaults, and the local cloud honors them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra.test_template import REPO, TEMPLATE, _as_list, sam_template, translated

CHECKOV_CONFIG = REPO / "infra" / "checkov.yaml"


def _checkov() -> str | None:
    """checkov from its own environment (`make scanner`), or on PATH."""
    local = REPO / ".venv-scan" / "bin" / "checkov"
    return str(local) if local.exists() else shutil.which("checkov")


def _run_checkov(*args: str) -> subprocess.CompletedProcess[str]:
    exe = _checkov()
    if exe is None:
        pytest.skip("checkov is not installed (`make scan` installs it into .venv-scan; it needs PyPI)")
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    return subprocess.run([exe, *args], capture_output=True, text=True, cwd=REPO, timeout=180, env=env)


# ------------------------------------------------------------------------------------ checkov
def test_checkov_passes_on_the_template() -> None:
    result = _run_checkov("--config-file", str(CHECKOV_CONFIG), "-f", str(TEMPLATE), "-o", "json")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    report = json.loads(result.stdout)
    summary = (report[0] if isinstance(report, list) else report)["summary"]
    assert summary["failed"] == 0 and summary["parsing_errors"] == 0, summary
    assert summary["passed"] > 100, f"checkov read too little of the template: {summary}"


def test_checkov_can_fail(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "Resources:\n  Open:\n    Type: AWS::S3::Bucket\n    Properties:\n"
        "      PublicAccessBlockConfiguration: {BlockPublicAcls: false}\n"
    )
    result = _run_checkov("--config-file", str(CHECKOV_CONFIG), "-f", str(bad))
    assert result.returncode != 0, result.stdout


def test_every_check_skipped_in_the_config_has_its_reason_above_it() -> None:
    lines = CHECKOV_CONFIG.read_text().splitlines()
    skipped = [i for i, line in enumerate(lines) if re.match(r"\s*-\s*CKV_", line)]
    assert skipped, "infra/checkov.yaml skips nothing: then drop this test's subject"
    for i in skipped:
        check = lines[i].split("-", 1)[1].strip()
        reason = []
        for line in reversed(lines[:i]):
            if not line.strip().startswith("#"):
                break
            reason.append(line)
        assert check in "".join(reason) and len(" ".join(reason)) > 80, f"{check}: no reason written above it"
    listed = yaml.safe_load(CHECKOV_CONFIG.read_text())["skip-check"]
    assert len(listed) == len(skipped)


def test_every_skip_in_a_resource_says_why() -> None:
    found = 0
    for name, resource in sam_template()["Resources"].items():
        for skip in ((resource.get("Metadata") or {}).get("checkov") or {}).get("skip", []):
            found += 1
            assert re.fullmatch(r"CKV2?_AWS_\d+", skip["id"]), f"{name}: {skip}"
            assert len(str(skip.get("comment", "")).strip()) > 40, f"{name} skips {skip['id']} without a reason"
    assert found >= 1


def test_every_queue_is_encrypted_at_rest() -> None:
    """What CKV_AWS_27 is skipped for: SSE-SQS, which that check does not read."""
    queues = {n: r for n, r in translated()["Resources"].items() if r["Type"] == "AWS::SQS::Queue"}
    assert queues
    for name, queue in queues.items():
        assert queue["Properties"].get("SqsManagedSseEnabled") is True, name


# ------------------------------------------------------------------------------------ IAM
def _documents(value: Any, where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every IAM policy document in ``value``: any object with a ``Statement``, wherever it sits."""
    if isinstance(value, dict):
        if "Statement" in value:
            yield where, value
        for key, child in value.items():
            yield from _documents(child, f"{where}/{key}")
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _documents(child, f"{where}[{i}]")


def _wildcard_actions(resources: dict[str, Any]) -> list[str]:
    found = []
    for where, document in _documents(resources):
        for statement in _as_list(document["Statement"]):
            if statement.get("Effect") != "Allow":
                continue  # a Deny of s3:* (TLS only, say) takes away; it grants nothing
            for action in _as_list(statement.get("Action", [])) + _as_list(statement.get("NotAction", [])):
                if not isinstance(action, str) or action == "*" or action.endswith(":*") or "*" in action:
                    found.append(f"{where}: {action!r}")
    return found


def test_no_allow_statement_anywhere_has_a_wildcard_action() -> None:
    resources = translated()["Resources"]
    documents = list(_documents(resources))
    kinds = {resources[where.split("/")[1]]["Type"] for where, _ in documents}
    # Roles (inline and SAM policy templates), managed policies and resource policies are all walked.
    assert {"AWS::IAM::Role", "AWS::IAM::ManagedPolicy", "AWS::SQS::QueuePolicy", "AWS::S3::BucketPolicy"} <= kinds
    assert _wildcard_actions(resources) == []


def test_the_wildcard_check_can_fail() -> None:
    resources = {
        "Q": {"Type": "AWS::SQS::QueuePolicy", "Properties": {"PolicyDocument": {"Statement": [
            {"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sqs:*", "Resource": "q"},
        ]}}},
        "R": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {"Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": ["*"]},
        ]}}},
    }  # fmt: skip
    assert len(_wildcard_actions(resources)) == 2


# ------------------------------------------------------------------------------------ limits
def _parameter_default(name: str) -> int:
    return int(sam_template()["Parameters"][name]["Default"])


def test_the_rest_stage_throttles_and_has_a_usage_plan_with_throttle_and_quota() -> None:
    resources = sam_template()["Resources"]
    [setting] = resources["RestApi"]["Properties"]["MethodSettings"]
    assert setting["ThrottlingRateLimit"] == {"Ref": "ApiRateLimit"}
    assert setting["ThrottlingBurstLimit"] == {"Ref": "ApiBurstLimit"}
    plan = resources["RestApiUsagePlan"]
    assert plan["Type"] == "AWS::ApiGateway::UsagePlan"
    [stage] = plan["Properties"]["ApiStages"]
    assert stage == {"ApiId": {"Ref": "RestApi"}, "Stage": {"Ref": "RestApi.Stage"}}
    throttle = plan["Properties"]["Throttle"]
    assert throttle == {"RateLimit": {"Ref": "ApiRateLimit"}, "BurstLimit": {"Ref": "ApiBurstLimit"}}
    assert plan["Properties"]["Quota"]["Limit"] == {"Ref": "ApiMonthlyQuota"}
    assert 0 < _parameter_default("ApiRateLimit") <= _parameter_default("ApiBurstLimit")
    # The plan must name the stage SAM makes, or CloudFormation fails it at deploy time.
    stages = [n for n, r in translated()["Resources"].items() if r["Type"] == "AWS::ApiGateway::Stage"]
    assert translated()["Resources"]["RestApiUsagePlan"]["Properties"]["ApiStages"][0]["Stage"] == {"Ref": stages[0]}


def test_reserved_concurrency_caps_the_sync_fan_out_and_keeps_some_for_the_api_and_notify() -> None:
    resources = sam_template()["Resources"]
    reserved = {
        "SyncCopyFunction": "SyncCopyReservedConcurrency",
        "ApiFunction": "ApiReservedConcurrency",
        "NotifyFunction": "NotifyReservedConcurrency",
    }
    for function, parameter in reserved.items():
        value = resources[function]["Properties"]["ReservedConcurrentExecutions"]
        assert value["Fn::If"][1] == {"Ref": parameter}, function  # 0 turns the reservation off
        assert value["Fn::If"][2] == {"Ref": "AWS::NoValue"}, function
    # None by default, so that any account deploys the stack (tests/infra/test_aws_limits.py judges the sums).
    assert all(_parameter_default(p) == 0 for p in reserved.values())


def test_the_local_cloud_honors_a_reservation_as_its_pool_size_up_to_what_the_machine_holds() -> None:
    from longrun.local.awslambda.resources import LOCAL_POOL_SIZE, _pool_size

    assert _pool_size(None) == LOCAL_POOL_SIZE
    assert _pool_size(2) == 2
    assert _pool_size(200) == LOCAL_POOL_SIZE


def test_the_jobs_per_user_limit_reaches_the_functions_that_start_jobs() -> None:
    resources = sam_template()["Resources"]
    for function in ("ApiFunction", "StartJobTriggerFunction"):
        variables = resources[function]["Properties"]["Environment"]["Variables"]
        assert variables["MAX_CONCURRENT_JOBS_PER_USER"] == {"Ref": "MaxConcurrentJobsPerUser"}, function
    assert _parameter_default("MaxConcurrentJobsPerUser") == 20
