"""AWS's own rules on the template as CloudFormation receives it (docs/judges.md).

- cfn-lint on the SAM-translated template with every state machine definition inlined: no error and
  no warning, and a planted bad definition is caught (so the definitions are really read);
- parliament on every IAM policy document: every finding fixed or explained beside its policy, no
  explanation left that no finding needs, and a planted ``SendTask*`` statement scoped to the state
  machine (which allows nothing on AWS) is caught;
- the IAM, scaling and WebSocket-deployment shapes AWS needs and moto never checks: the sync state
  machine redrives its Distributed Map's children, build workers follow the builds wanted, and the
  WebSocket stage redeploys when routes change.
"""

from __future__ import annotations

import copy
import fnmatch
import itertools
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.infra import iam_judge
from tests.infra.test_aws_limits import _builder
from tests.infra.translated import REPO, load_sam, translate, translate_sam, translated, write


def _cfn_lint(path: Path) -> list[dict[str, Any]]:
    exe = Path(sys.executable).parent / "cfn-lint"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "cfnlint"]
    result = subprocess.run([*cmd, "--format", "json", "--", str(path)], capture_output=True, text=True, timeout=300)
    assert result.returncode in (0, 2, 4, 6, 8, 10, 12, 14), result.stderr[-2000:]
    return json.loads(result.stdout or "[]")


def _planted_copy(tmp_path: Path) -> Path:
    """infra/ and statemachines/ in a tmp dir (DefinitionUri ../statemachines/x resolves as in the repo)."""
    shutil.copytree(REPO / "infra", tmp_path / "infra")
    shutil.copytree(REPO / "statemachines", tmp_path / "statemachines")
    return tmp_path / "infra" / "template.yaml"


# ------------------------------------------------------------------------------------ cfn-lint
def test_cfn_lint_passes_on_the_translated_template_with_definitions(tmp_path: Path) -> None:
    cfn = translated()
    machines = [r for r in cfn["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine"]
    assert machines and all(isinstance(m["Properties"].get("Definition"), dict) for m in machines)
    matches = _cfn_lint(write(cfn, tmp_path / "translated.json"))
    assert matches == [], "\n".join(f"{m['Rule']['Id']} {m['Message']} ({m['Location']['Path']})" for m in matches)


@pytest.mark.parametrize(
    ("plant", "rule"),
    [
        (lambda task: task.pop("Resource"), "E3601"),
        (lambda task: task.update(Type="Tsak"), "E3601"),
    ],
    ids=["task-without-resource", "bad-type"],
)
def test_cfn_lint_reads_the_inlined_definitions(tmp_path: Path, plant: Any, rule: str) -> None:
    template = _planted_copy(tmp_path)
    asl = tmp_path / "statemachines" / "build.asl.json"
    definition = json.loads(asl.read_text())
    plant(next(state for state in definition["States"].values() if state["Type"] == "Task"))
    asl.write_text(json.dumps(definition))
    cfn = translate(template)
    # The state machine alone: cfn-lint reads it as the whole template would, in a fraction of the time.
    name = "BuildStateMachine"
    alone = {"AWSTemplateFormatVersion": "2010-09-09", "Resources": {name: cfn["Resources"][name]}}
    matches = _cfn_lint(write(alone, tmp_path / "planted.json"))
    assert any(m["Rule"]["Id"] == rule and name in m["Location"]["Path"] for m in matches), matches


# ------------------------------------------------------------------------------------ parliament
def test_parliament_finds_nothing_unexplained_and_no_explanation_is_stale() -> None:
    unexplained, stale = iam_judge.verdict(translated(), load_sam())
    assert not unexplained, "parliament findings to fix or explain (Metadata: parliament: explained):\n" + "\n".join(
        map(str, unexplained)
    )
    assert not stale, f"explanations no finding needs any more: {stale}"
    assert all(len(e.reason) > 40 for e in iam_judge.explanations(load_sam())), "each explanation says why"


def test_parliament_reads_every_policy_kind() -> None:
    documents = list(iam_judge.documents(translated(), load_sam()))
    kinds = {d.where.split("/")[0].split(" ")[0] for d in documents}
    assert {"ProjectsBucketPolicy", "JobStarterPolicy", "BuildWorkerTaskRole", "ApiFunctionRole"} <= kinds
    assert any(d.trust for d in documents) and len(documents) > 60


def _with_statement(sam: dict[str, Any], owner: str, sid: str, change: dict[str, Any]) -> dict[str, Any]:
    sam = copy.deepcopy(sam)
    for policy in sam["Resources"][owner]["Properties"]["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            if statement.get("Sid") == sid:
                statement.update(change)
                return sam
    raise AssertionError(f"{owner} has no statement {sid}")


def test_parliament_catches_send_task_scoped_to_the_state_machine() -> None:
    """The defect this judge was brought for: on AWS this statement allows nothing."""
    scoped = {"Resource": {"Ref": "BuildStateMachine"}}
    sam = _with_statement(load_sam(), "BuildWorkerTaskRole", "AnswerTaskTokens", scoped)
    cfn = translate_sam(sam, REPO / "infra")
    unexplained, _ = iam_judge.verdict(cfn, sam)
    assert any(
        f.owner == "BuildWorkerTaskRole" and f.issue == "RESOURCE_MISMATCH" and "states:sendtasksuccess" in f.actions
        for f in unexplained
    ), [str(f) for f in unexplained]


def test_a_stale_or_unmatched_explanation_fails() -> None:
    sam = load_sam()
    sam["Resources"]["StaticFilesRole"].setdefault("Metadata", {})["parliament"] = {
        "explained": [{"finding": "RESOURCE_STAR", "actions": ["s3:GetObject"], "reason": "planted: nothing needs it"}]
    }
    _, stale = iam_judge.verdict(translated(), sam)
    assert [e.owner for e in stale] == ["StaticFilesRole"]


# ------------------------------------------------------------------------------------ IAM shapes
def _allows(cfn: dict[str, Any], role: str, action: str, arn: str) -> bool:
    """Whether one of ``role``'s inline statements allows ``action`` on ``arn`` (IAM's * and ? wildcards)."""
    for document in iam_judge.documents(cfn, load_sam()):
        if document.trust or not document.where.startswith(role + "/"):
            continue
        for statement in document.policy["Statement"]:
            actions = statement.get("Action")
            resources = statement.get("Resource")
            actions = actions if isinstance(actions, list) else [actions]
            resources = resources if isinstance(resources, list) else [resources]
            if (
                statement.get("Effect") == "Allow"
                and action in actions
                and any(fnmatch.fnmatchcase(arn, pattern) for pattern in resources)
            ):
                return True
    return False


def test_the_sync_state_machine_redrives_its_distributed_map_children() -> None:
    """A retried sync redrives its failed Map Run with the state machine's role, on the children's ARNs
    (https://docs.aws.amazon.com/step-functions/latest/dg/iam-policies-eg-dist-map.html#iam-policy-redrive-dist-map)."""
    cfn = translated()
    prefix = "arn:aws:states:us-east-1:123456789012:execution:longrun-sync"
    child = f"{prefix}/CopyDistributed:0f8e7d6c-aaaa-bbbb-cccc-123456789012"
    for action in ("states:RedriveExecution", "states:DescribeExecution", "states:StopExecution"):
        assert _allows(cfn, "SyncStateMachineRole", action, child), action
    assert _allows(cfn, "SyncStateMachineRole", "states:DescribeExecution", f"{prefix}:job-1")
    assert _allows(cfn, "ApiFunctionRole", "states:RedriveExecution", f"{prefix}:job-1")
    # Its ResultWriter's writes, under the sync's results prefix only.
    bucket = iam_judge._resolver(cfn)[1].ref("ProjectsBucket")
    results = f"arn:aws:s3:::{bucket}/sync/job-1/results/manifest.json"
    assert _allows(cfn, "SyncStateMachineRole", "s3:PutObject", results)
    assert not _allows(cfn, "SyncStateMachineRole", "s3:PutObject", f"arn:aws:s3:::{bucket}/projects/p/file")


def test_build_workers_answer_task_tokens_on_any_resource() -> None:
    cfn = translated()
    for action in ("states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"):
        assert _allows(cfn, "BuildWorkerTaskRole", action, "*"), action


# ------------------------------------------------------------------------------------ scaling
def _step_policy_capacity(policy: dict[str, Any], threshold: float, metric: float, current: int) -> int:
    """The desired count Application Auto Scaling sets when the alarm of a step policy is in ALARM.

    Bounds are relative to the threshold; a step above it includes its lower bound and excludes its
    upper one, a step below it the other way round (the examples of
    https://docs.aws.amazon.com/autoscaling/application/APIReference/API_StepAdjustment.html).
    """
    config = policy["StepScalingPolicyConfiguration"]
    breach = metric - threshold
    for step in config["StepAdjustments"]:
        low = step.get("MetricIntervalLowerBound", float("-inf"))
        high = step.get("MetricIntervalUpperBound", float("inf"))
        if (low < breach <= high) if high <= 0 else (low <= breach < high):
            adjustment = int(step["ScalingAdjustment"])
            kind = config["AdjustmentType"]
            if kind == "ExactCapacity":
                return adjustment
            if kind == "ChangeInCapacity":
                return current + adjustment
            return current + int(current * adjustment / 100)
    return current


def _scaling_resolver(cfn: dict[str, Any], parameters: dict[str, Any] | None) -> Any:
    """The local cloud's resolver with the build workers on (and ``parameters``): what a stack with them deploys."""
    return _builder(cfn, {**iam_judge.ALL_ON, **(parameters or {})}).resolver


def _minutes_of_scaling(
    cfn: dict[str, Any], wanted: list[int], maximum: int | None = None, parameters: dict[str, Any] | None = None
) -> list[int]:
    """Desired counts minute by minute: each alarm's state from the metric, each ALARM applying its policy.

    The count never leaves the scalable target's MinCapacity..MaxCapacity ("The minimum value that you
    plan to scale in to", https://docs.aws.amazon.com/autoscaling/application/APIReference/API_RegisterScalableTarget.html);
    ``maximum`` overrides MaxCapacity. It starts at the service's DesiredCount.
    """
    resources = cfn["Resources"]
    resolve = _scaling_resolver(cfn, parameters).resolve
    (target,) = [resolve(r["Properties"]) for r in resources.values()
                 if r["Type"] == "AWS::ApplicationAutoScaling::ScalableTarget"]  # fmt: skip
    (service,) = [resolve(r["Properties"]) for r in resources.values() if r["Type"] == "AWS::ECS::Service"]
    low, high = int(target["MinCapacity"]), int(target["MaxCapacity"] if maximum is None else maximum)
    alarms = [
        (alarm["Properties"], resolve(resources[action["Ref"]]["Properties"]))
        for alarm in resources.values()
        if alarm["Type"] == "AWS::CloudWatch::Alarm"
        for action in alarm["Properties"].get("AlarmActions", [])
        if isinstance(action, dict)
        and resources.get(action.get("Ref"), {}).get("Type") == "AWS::ApplicationAutoScaling::ScalingPolicy"
    ]
    assert len(alarms) == 2, "one alarm out, one in"
    compare = {
        "GreaterThanThreshold": lambda v, t: v > t,
        "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
        "LessThanThreshold": lambda v, t: v < t,
        "LessThanOrEqualToThreshold": lambda v, t: v <= t,
    }
    desired, out = int(service["DesiredCount"]), []
    for minute, value in enumerate(wanted):
        for alarm, policy in alarms:
            window = wanted[max(0, minute - alarm["EvaluationPeriods"] + 1) : minute + 1]
            if len(window) == alarm["EvaluationPeriods"] and all(
                compare[alarm["ComparisonOperator"]](v, alarm["Threshold"]) for v in window
            ):
                desired = _step_policy_capacity(policy, alarm["Threshold"], value, desired)
        desired = max(low, min(high, desired))  # the scalable target's MinCapacity and MaxCapacity
        out.append(desired)
    return out


def test_build_workers_follow_the_builds_wanted_and_scale_in_to_zero() -> None:
    cfn = translated()
    one_long_build = _minutes_of_scaling(cfn, [1] * 30, maximum=10)
    assert set(one_long_build) == {1}, f"one build running for 30 minutes wants one worker: {one_long_build}"
    burst = _minutes_of_scaling(cfn, [5] * 5 + [14] * 5 + [3] * 5, maximum=10)
    assert burst[:5] == [5] * 5 and burst[5:10] == [10] * 5 and burst[10:] == [3] * 5, burst
    idle = _minutes_of_scaling(cfn, [2] * 3 + [0] * 12, maximum=10)
    assert idle[2] == 2 and idle[-1] == 0, idle
    for wanted in range(1, 250):
        (desired,) = _minutes_of_scaling(cfn, [wanted], maximum=200)
        assert 0 < desired <= wanted, (wanted, desired)


def test_the_scaling_check_catches_a_policy_that_adds_while_the_alarm_stays() -> None:
    cfn = translated()
    out = cfn["Resources"]["BuildWorkerScaleOutPolicy"]["Properties"]["StepScalingPolicyConfiguration"]
    out["AdjustmentType"] = "ChangeInCapacity"
    out["StepAdjustments"] = [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}]
    assert _minutes_of_scaling(cfn, [1] * 30, maximum=10)[-1] == 10


def test_warm_workers_stay_while_idle_and_builds_beyond_them_scale_out() -> None:
    """BuildWorkersMin: the service starts there, scales in to it and no lower, and out above it as builds come."""
    cfn = translated()
    warm = {"BuildWorkersMin": "2"}
    idle = _minutes_of_scaling(cfn, [0] * 30, maximum=10, parameters=warm)
    assert set(idle) == {2}, f"two warm workers while nothing is wanted: {idle}"
    burst = _minutes_of_scaling(cfn, [1] * 3 + [5] * 5 + [0] * 12, maximum=10, parameters=warm)
    assert burst[:3] == [2] * 3 and burst[3:8] == [5] * 5 and burst[-1] == 2, burst
    assert _minutes_of_scaling(cfn, [0] * 12, maximum=10) == [0] * 12, "the default still scales to zero"


def _below_the_minimum(cfn: dict[str, Any], parameters: dict[str, Any]) -> list[str]:
    """Exact capacities a policy sets under the scalable target's MinCapacity (Application Auto Scaling
    would clamp them; the template must not rely on it: the scale-in policy names the warm minimum)."""
    resolve = _scaling_resolver(cfn, parameters).resolve
    resources = cfn["Resources"]
    (target,) = [resolve(r["Properties"]) for r in resources.values()
                 if r["Type"] == "AWS::ApplicationAutoScaling::ScalableTarget"]  # fmt: skip
    return [
        f"{name}: {step['ScalingAdjustment']} < MinCapacity {target['MinCapacity']}"
        for name, r in resources.items()
        if r["Type"] == "AWS::ApplicationAutoScaling::ScalingPolicy"
        for step in resolve(r["Properties"])["StepScalingPolicyConfiguration"]["StepAdjustments"]
        if name == "BuildWorkerScaleInPolicy" and int(step["ScalingAdjustment"]) < int(target["MinCapacity"])
    ]


def test_no_policy_scales_in_below_the_warm_minimum() -> None:
    assert _below_the_minimum(translated(), {"BuildWorkersMin": "3"}) == []
    planted = translated()
    steps = planted["Resources"]["BuildWorkerScaleInPolicy"]["Properties"]["StepScalingPolicyConfiguration"]
    steps["StepAdjustments"] = [{"MetricIntervalUpperBound": 0, "ScalingAdjustment": 0}]
    assert _below_the_minimum(planted, {"BuildWorkersMin": "3"}) == ["BuildWorkerScaleInPolicy: 0 < MinCapacity 3"]


def test_step_adjustments_follow_aws_rules() -> None:
    """No overlap, no gap, one open end (API_StepAdjustment's rules), non-negative exact capacities."""
    cfn = translated()
    resolve = _scaling_resolver(cfn, None).resolve
    for name in ("BuildWorkerScaleOutPolicy", "BuildWorkerScaleInPolicy"):
        config = resolve(cfn["Resources"][name]["Properties"])["StepScalingPolicyConfiguration"]
        steps = sorted(config["StepAdjustments"], key=lambda s: s.get("MetricIntervalLowerBound", float("-inf")))
        for before, after in itertools.pairwise(steps):
            assert before["MetricIntervalUpperBound"] == after["MetricIntervalLowerBound"], (name, before, after)
        assert sum("MetricIntervalUpperBound" not in s for s in steps) <= 1
        assert sum("MetricIntervalLowerBound" not in s for s in steps) <= 1
        assert config["AdjustmentType"] == "ExactCapacity" and all(s["ScalingAdjustment"] >= 0 for s in steps)


# ------------------------------------------------------------------------------------ WebSocket
def websocket_deployment_problems(cfn: dict[str, Any]) -> list[str]:
    """A WebSocket stage must take every route change of a stack update: AutoDeploy, no fixed Deployment."""
    resources = cfn["Resources"]
    problems = []
    for name, api in resources.items():
        if api["Type"] != "AWS::ApiGatewayV2::Api" or api["Properties"].get("ProtocolType") != "WEBSOCKET":
            continue

        def of_api(kind: str, api_name: str = name) -> dict[str, Any]:
            ref = {"Ref": api_name}
            return {n: r for n, r in resources.items() if r["Type"] == kind and r["Properties"].get("ApiId") == ref}

        routes = set(of_api("AWS::ApiGatewayV2::Route"))
        for deployment in of_api("AWS::ApiGatewayV2::Deployment"):
            problems.append(f"{deployment}: a Deployment with a fixed logical id is created once, never again")
        for stage_name, stage in of_api("AWS::ApiGatewayV2::Stage").items():
            if stage["Properties"].get("AutoDeploy") is not True:
                problems.append(f"{stage_name}: no AutoDeploy")
            if "DeploymentId" in stage["Properties"]:
                problems.append(f"{stage_name}: DeploymentId names a fixed deployment")
            depends = stage.get("DependsOn", [])
            if routes - set(depends if isinstance(depends, list) else [depends]):
                problems.append(f"{stage_name}: its first deployment may miss routes {sorted(routes - set(depends))}")
    return problems


def test_the_websocket_stage_redeploys_when_routes_change() -> None:
    cfn = translated()
    assert any(r["Type"] == "AWS::ApiGatewayV2::Stage" for r in cfn["Resources"].values())
    assert websocket_deployment_problems(cfn) == []


def test_the_websocket_check_catches_a_fixed_deployment() -> None:
    cfn = translated()
    cfn["Resources"]["WebSocketDeployment"] = {
        "Type": "AWS::ApiGatewayV2::Deployment",
        "Properties": {"ApiId": {"Ref": "WebSocketApi"}},
    }
    stage = cfn["Resources"]["WebSocketStage"]["Properties"]
    stage.pop("AutoDeploy")
    stage["DeploymentId"] = {"Ref": "WebSocketDeployment"}
    assert len(websocket_deployment_problems(cfn)) == 3
