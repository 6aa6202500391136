"""Lambda's, Step Functions' and API Gateway's create-time limits on the template (longrun/local/aws_rules.py).

The rules are the ones the local cloud applies when it creates the stack; here they judge the
template as CloudFormation receives it (tests/infra/translated.py), parameters at their defaults,
each test citing the page its rule is written on. Planted copies prove each judge can fail.
docs/judges.md lists the rules.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from longrun.local import aws_rules
from longrun.local.awslambda.resources import judge_reservations
from longrun.local.cloudformation.engine import StackBuilder
from longrun.local.cloudformation.template import Translated
from longrun.local.refusals import AwsRefused
from longrun.local.stepfunctions.resources import judge_state_machine
from tests.infra.translated import REPO, load_sam, translate_sam, translated

RESERVING = ("SyncCopyReservedConcurrency", "ApiReservedConcurrency", "NotifyReservedConcurrency")
SUGGESTED = {"SyncCopyReservedConcurrency": 200, "ApiReservedConcurrency": 100, "NotifyReservedConcurrency": 50}


def _builder(cfn: dict[str, Any], parameters: dict[str, Any] | None = None, account: int = 1000) -> StackBuilder:
    """The local cloud's resolver over a translated template; it creates nothing."""
    sqs = SimpleNamespace(meta=SimpleNamespace(endpoint_url="https://sqs.us-east-1.amazonaws.com"))
    return StackBuilder(
        Translated(template=cfn),
        stack_name="longrun",
        region="us-east-1",
        parameters=parameters or {},
        data_dir=Path("/nonexistent"),
        websocket_management_base="https://abc.execute-api.us-east-1.amazonaws.com",
        aws=lambda _service: sqs,
        account_concurrency=account,
    )


def _of_type(builder: StackBuilder, kind: str) -> dict[str, dict[str, Any]]:
    """Resources of one type that the parameters create, with their properties resolved."""
    return {
        logical_id: builder.resolver.resolve(resource.get("Properties") or {})
        for logical_id, resource in builder.resources.items()
        if resource["Type"] == kind
        and ("Condition" not in resource or builder.resolver.condition(resource["Condition"]))
    }


def judge_functions(builder: StackBuilder) -> None:
    for logical_id, props in _of_type(builder, "AWS::Lambda::Function").items():
        aws_rules.lambda_function(logical_id, props, str(builder.ref(logical_id)))
    judge_reservations(builder, list(_of_type(builder, "AWS::Lambda::Function")))


def judge_event_sources(builder: StackBuilder) -> None:
    queues = {builder.get_att(q, "Arn"): props for q, props in _of_type(builder, "AWS::SQS::Queue").items()}
    functions = {str(builder.ref(f)): props for f, props in _of_type(builder, "AWS::Lambda::Function").items()}
    mappings = _of_type(builder, "AWS::Lambda::EventSourceMapping")
    assert mappings, "the template has event source mappings to judge"
    for logical_id, props in mappings.items():
        queue = queues[props["EventSourceArn"]]
        aws_rules.sqs_event_source_mapping(
            logical_id,
            props,
            fifo=bool(queue.get("FifoQueue")),
            visibility_timeout=int(queue.get("VisibilityTimeout", aws_rules.SQS_DEFAULT_VISIBILITY_TIMEOUT)),
            function_timeout=int(functions[str(props["FunctionName"])].get("Timeout", 3)),
        )


def judge_state_machines(builder: StackBuilder) -> None:
    machines = _of_type(builder, "AWS::StepFunctions::StateMachine")
    assert len(machines) >= 5
    for logical_id in machines:
        builder.stack.physical[logical_id] = str(builder.ref(logical_id))
        judge_state_machine(builder, logical_id)


def judge_integrations(builder: StackBuilder) -> None:
    for logical_id, props in _of_type(builder, "AWS::ApiGateway::RestApi").items():
        for path, methods in (props.get("Body") or {}).get("paths", {}).items():
            for method, operation in methods.items():
                integration = operation.get("x-amazon-apigateway-integration") or {}
                where = f"{method.upper()} {path}"
                aws_rules.rest_integration_timeout(logical_id, where, integration.get("timeoutInMillis"))
    for logical_id, props in _of_type(builder, "AWS::ApiGatewayV2::Integration").items():
        aws_rules.websocket_integration_timeout(logical_id, props.get("TimeoutInMillis"))


def _refusal(judge: Any, builder: StackBuilder) -> AwsRefused:
    with pytest.raises(AwsRefused) as refused:
        judge(builder)
    return refused.value


def _planted(edit: Any) -> dict[str, Any]:
    """A copy of the translated template after ``edit`` (SAM copies these resources' properties as they are)."""
    cfn = translated()
    edit(cfn)
    return cfn


# --- SQS event source mappings -------------------------------------------------------------------------


def test_every_sqs_mapping_is_one_lambda_creates() -> None:
    """BatchSize 1-10,000 (10 for FIFO), "When you set BatchSize to a value greater than 10, you must set
    MaximumBatchingWindowInSeconds to at least 1", window 0-300 s
    (https://docs.aws.amazon.com/lambda/latest/dg/API_EventSourceMappingConfiguration.html,
    https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-parameters.html); and "Your function's timeout
    must be less than or equal to the queue's visibility timeout. Lambda validates this requirement when you
    create or update an event source mapping" (https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html).
    """
    judge_event_sources(_builder(translated()))


def test_a_batch_over_ten_without_a_batching_window_is_refused() -> None:
    """The SAM source planted (not its translation): what `sam deploy` would send."""

    def plant(sam: dict[str, Any]) -> None:
        sam["Resources"]["UploadEventsMapping"]["Properties"]["MaximumBatchingWindowInSeconds"] = 0

    sam = load_sam()
    plant(sam)
    refused = _refusal(judge_event_sources, _builder(translate_sam(sam, REPO / "infra")))
    assert (refused.resource, refused.rule) == ("UploadEventsMapping", "batch size over 10 needs a batching window")
    assert refused.doc == aws_rules.ESM_BATCHING


@pytest.mark.parametrize(
    ("mapping", "queue", "rule"),
    [
        ({"BatchSize": 10_001, "MaximumBatchingWindowInSeconds": 1}, {}, "SQS batch size"),
        ({"BatchSize": 10, "MaximumBatchingWindowInSeconds": 301}, {}, "batching window"),
        ({"BatchSize": 11}, {"FifoQueue": True, "QueueName": "x.fifo"}, "FIFO batch size over 10"),
        ({"BatchSize": 10}, {"VisibilityTimeout": 20}, "queue visibility timeout under the function's timeout"),
    ],
    ids=["batch-over-10000", "window-over-300", "fifo-batch-over-10", "visibility-under-timeout"],
)
def test_each_mapping_rule_can_refuse(mapping: dict[str, Any], queue: dict[str, Any], rule: str) -> None:
    def plant(sam: dict[str, Any]) -> None:
        sam["Resources"]["ExecutionEventsMapping"]["Properties"].update(mapping)
        sam["Resources"]["ExecutionEventsQueue"]["Properties"].update(queue)

    refused = _refusal(judge_event_sources, _builder(_planted(plant)))
    assert (refused.resource, refused.rule) == ("ExecutionEventsMapping", rule)


# --- reserved concurrency ------------------------------------------------------------------------------


def test_reserved_concurrency_at_its_defaults_deploys_on_a_new_account() -> None:
    """ "You can reserve up to the Unreserved account concurrency value that is shown, minus 100 for functions
    that don't have reserved concurrency" (https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html);
    "New AWS accounts have reduced concurrency and memory quotas"
    (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html), often 10.
    """
    sam = load_sam()
    assert all(sam["Parameters"][p]["Default"] == 0 for p in RESERVING), "no reservation unless asked for"
    judge_functions(_builder(translated(), account=aws_rules.NEW_ACCOUNT_CONCURRENCY))


def test_the_suggested_reservations_fit_the_default_quota_and_are_refused_on_a_new_account() -> None:
    """The values the parameters' descriptions suggest deploy at AWS's default 1,000, not at a new account's 10."""
    judge_functions(_builder(translated(), SUGGESTED, account=aws_rules.DEFAULT_ACCOUNT_CONCURRENCY))
    refused = _refusal(judge_functions, _builder(translated(), SUGGESTED, account=aws_rules.NEW_ACCOUNT_CONCURRENCY))
    assert refused.rule == "reserved concurrency leaves under 100 unreserved"
    assert refused.resource in {"SyncCopyFunction", "ApiFunction", "NotifyFunction"}
    assert refused.doc == aws_rules.LAMBDA_CONCURRENCY


def test_reservations_summing_over_the_limit_are_refused() -> None:
    # 1000 - (500 + 300 + 150) = 50 < 100 unreserved.
    over = {"SyncCopyReservedConcurrency": 500, "ApiReservedConcurrency": 300, "NotifyReservedConcurrency": 150}
    refused = _refusal(judge_functions, _builder(translated(), over))
    assert refused.rule == "reserved concurrency leaves under 100 unreserved"
    assert "950 of the account's 1000" in refused.message


def test_the_local_cloud_refuses_reservations_over_its_account_concurrency(tmp_path: Path) -> None:
    """StackBuilder.build (what `longrun local up --account-concurrency N` runs) applies the same rule."""

    def function(reserved: int) -> dict[str, Any]:
        props = {"Handler": "api.app.handler", "Runtime": "python3.12", "ReservedConcurrentExecutions": reserved}
        return {"Type": "AWS::Lambda::Function", "Properties": props}

    def build(account: int) -> Any:
        template = {"Resources": {"Api": function(100), "Notify": function(50)}}

        def no_aws(service: str) -> Any:
            raise AssertionError(f"two functions need no {service}")

        return StackBuilder(
            Translated(template=template, code_dirs={"Api": REPO / "handlers", "Notify": REPO / "handlers"}),
            stack_name="limits",
            region="us-east-1",
            parameters={},
            data_dir=tmp_path,
            websocket_management_base="https://abc.execute-api.us-east-1.amazonaws.com",
            aws=no_aws,
            account_concurrency=account,
        ).build()

    assert [f.concurrency for f in build(1000).functions] == [8, 8]  # 850 unreserved; pools at the local cap
    with pytest.raises(AwsRefused) as refused:
        build(249)  # 249 - 150 = 99 unreserved
    assert refused.value.resource == "Notify"  # Api's 100 fit; Notify's 50 more do not
    assert refused.value.rule == "reserved concurrency leaves under 100 unreserved"


# --- Lambda functions ----------------------------------------------------------------------------------


def test_every_function_fits_lambdas_configuration_quotas() -> None:
    """ "Function memory allocation 128 MB to 10,240 MB", "Function timeout 900 seconds (15 minutes)", "Function
    environment variables 4 KB, for all environment variables associated with the function, in aggregate",
    "Function layers five layers" (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html); a
    function name "is limited to 64 characters" (https://docs.aws.amazon.com/lambda/latest/api/API_CreateFunction.html).
    """
    builder = _builder(translated())
    judge_functions(builder)
    # Room left under 4 KB: the largest environment, with the local cloud's names (CloudFormation's are alike).
    largest = max(
        aws_rules.environment_size((p.get("Environment") or {}).get("Variables") or {})
        for p in _of_type(builder, "AWS::Lambda::Function").values()
    )
    assert largest <= aws_rules.ENVIRONMENT_BYTES * 3 // 4, f"{largest} bytes of environment: near Lambda's 4 KB"


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({"Timeout": 901}, "Lambda function timeout"),
        ({"MemorySize": 64}, "Lambda function memory"),
        ({"MemorySize": 10_241}, "Lambda function memory"),
        (
            {"Layers": [f"arn:aws:lambda:us-east-1:123456789012:layer:l{i}:1" for i in range(6)]},
            "Lambda layers over five",
        ),
        ({"Environment": {"Variables": {"BIG": "x" * 4096}}}, "Lambda environment variables over 4 KB"),
        ({"FunctionName": "f" * 65}, "Lambda function name over 64 characters"),
    ],
    ids=["timeout-901", "memory-64", "memory-10241", "six-layers", "environment-over-4KB", "name-65"],
)
def test_each_function_rule_can_refuse(change: dict[str, Any], rule: str) -> None:
    def plant(sam: dict[str, Any]) -> None:
        sam["Resources"]["NotifyFunction"]["Properties"].update(change)

    refused = _refusal(judge_functions, _builder(_planted(plant)))
    assert (refused.resource, refused.rule) == ("NotifyFunction", rule)


# --- Step Functions ------------------------------------------------------------------------------------


def test_every_state_machine_fits_step_functions_limits() -> None:
    """Names "must not exceed 80 characters", "Maximum size of state machine definition 1 MB"
    (https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html); a Task's timeouts "MUST be
    positive, non-zero integers" and "the HeartbeatSeconds interval MUST be smaller than the TimeoutSeconds
    value" (https://states-language.net/spec.html, the language CreateStateMachine validates).
    """
    judge_state_machines(_builder(translated()))


def test_execution_names_fit_step_functions_limit() -> None:
    """StartExecution's name: the same 80 characters (service-quotas page above); the API names each job's."""
    from core.launcher import execution_name

    longest = execution_name("create-project", "p" * 200, "0123456789abcdef")
    aws_rules.step_functions_name("launcher.execution_name", "execution", longest)
    with pytest.raises(AwsRefused, match="execution name over 80 characters"):
        aws_rules.step_functions_name("planted", "execution", "x" * 81)


def _first_task(definition: dict[str, Any]) -> dict[str, Any]:
    return next(s for s in definition["States"].values() if s["Type"] == "Task" and "TimeoutSeconds" in s)


@pytest.mark.parametrize(
    ("plant", "rule"),
    [
        (lambda d: _first_task(d).update(HeartbeatSeconds=_first_task(d)["TimeoutSeconds"]),
         "HeartbeatSeconds not under TimeoutSeconds"),
        (lambda d: _first_task(d).update(TimeoutSeconds=0), "TimeoutSeconds not a positive integer"),
        (lambda d: d.update(Comment="x" * aws_rules.DEFINITION_BYTES), "definition over 1 MB"),
    ],
    ids=["heartbeat-not-under-timeout", "timeout-zero", "definition-over-1MB"],
)  # fmt: skip
def test_each_state_machine_rule_can_refuse(plant: Any, rule: str) -> None:
    cfn = translated()
    definition = cfn["Resources"]["GitCloneStateMachine"]["Properties"]["Definition"]
    plant(definition)
    refused = _refusal(judge_state_machines, _builder(cfn))
    assert (refused.resource, refused.rule) == ("GitCloneStateMachine", rule)


def test_a_state_machine_name_over_80_characters_is_refused() -> None:
    cfn = translated()
    cfn["Resources"]["GitCloneStateMachine"]["Properties"]["StateMachineName"] = "m" * 81
    refused = _refusal(judge_state_machines, _builder(cfn))
    assert (refused.resource, refused.rule) == ("GitCloneStateMachine", "state machine name over 80 characters")


# --- API Gateway ---------------------------------------------------------------------------------------


def test_integration_timeouts_are_within_api_gateways() -> None:
    """ "Integration timeout 50 milliseconds - 29 seconds for all integration types" (REST:
    https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-execution-service-limits-table.html);
    TimeoutInMillis "between 50 and 29,000 milliseconds for WebSocket APIs"
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-apigatewayv2-integration.html).
    """
    judge_integrations(_builder(translated()))


def test_an_integration_timeout_over_29_seconds_is_refused() -> None:
    cfn = translated()
    body = json.dumps(cfn["Resources"]["RestApi"]["Properties"]["Body"])
    assert "x-amazon-apigateway-integration" in body
    for methods in cfn["Resources"]["RestApi"]["Properties"]["Body"]["paths"].values():
        for operation in methods.values():
            operation.get("x-amazon-apigateway-integration", {})["timeoutInMillis"] = 30_000
    refused = _refusal(judge_integrations, _builder(cfn))
    assert refused.rule == "REST integration timeout" and refused.resource.startswith("RestApi ")
    websocket = next(lid for lid, r in cfn["Resources"].items() if r["Type"] == "AWS::ApiGatewayV2::Integration")
    cfn = translated()
    cfn["Resources"][websocket]["Properties"]["TimeoutInMillis"] = 29_001
    refused = _refusal(judge_integrations, _builder(cfn))
    assert (refused.resource, refused.rule) == (websocket, "WebSocket integration timeout")


def test_local_up_takes_the_account_concurrency_and_exits_2_on_a_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    """`longrun local up --account-concurrency N` reaches the local cloud's Options; a refusal is exit 2."""
    from longrun import cli
    from longrun.local import cloud
    from longrun.local.stepfunctions import asl_validator

    seen: list[int] = []

    class Refusing:
        def __init__(self, options: cloud.Options) -> None:
            seen.append(options.account_concurrency)

        def start(self) -> None:
            raise AwsRefused("ApiFunction", "reserved concurrency leaves under 100 unreserved", "planted")

    monkeypatch.setattr(cloud, "LocalCloud", Refusing)
    monkeypatch.setattr(asl_validator, "problem", lambda: None)
    monkeypatch.setattr(signal, "signal", lambda *_: None)  # pytest keeps its own SIGINT/SIGTERM handlers
    args = cli.parser().parse_args(["local", "up", "--account-concurrency", "10"])
    assert args.func(args) == 2
    assert seen == [10]
    assert cli.parser().parse_args(["local", "up"]).account_concurrency == aws_rules.DEFAULT_ACCOUNT_CONCURRENCY
