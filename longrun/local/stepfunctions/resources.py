"""The template's state machines: judged by Step Functions' create-time limits, then created in moto."""

from __future__ import annotations

import json
from typing import Any

from longrun.local import aws_rules
from longrun.local.cloudformation.engine import ResourceType, StackBuilder, Step, creates
from longrun.local.stepfunctions import asl_validator


def definition(props: dict[str, Any]) -> str:
    """A state machine's definition as Step Functions receives it: its DefinitionSubstitutions applied."""
    text = props.get("DefinitionString")
    if text is None:
        text = json.dumps(props["Definition"])
    for key, value in (props.get("DefinitionSubstitutions") or {}).items():
        text = text.replace("${" + key + "}", str(value))
    return text


def _judge_state_machines(builder: StackBuilder, by_type: dict[str, list[str]]) -> None:
    """CreateStateMachine's limits (aws_rules) on each definition as Step Functions receives it, first of all."""
    for logical_id in by_type.get("AWS::StepFunctions::StateMachine", []):
        judge_state_machine(builder, logical_id)


def judge_state_machine(builder: StackBuilder, logical_id: str) -> None:
    """CreateStateMachine's limits (aws_rules) on the definition as Step Functions receives it."""
    text = definition(builder.resolver.resolve(builder.props(logical_id)))
    aws_rules.state_machine(logical_id, builder.stack.physical[logical_id].rsplit(":", 1)[-1], text)


def _create_state_machine(builder: StackBuilder, logical_id: str, props: dict[str, Any]) -> None:
    text = definition(props)
    json.loads(text)  # a bad substitution is a template bug: fail here, not at run time
    arn = builder.stack.physical[logical_id]
    kwargs: dict[str, Any] = {
        "name": arn.rsplit(":", 1)[-1],
        "definition": text,
        "roleArn": props["RoleArn"],
        "type": props.get("StateMachineType", "STANDARD"),
    }
    if props.get("LoggingConfiguration"):
        kwargs["loggingConfiguration"] = {
            "level": props["LoggingConfiguration"].get("Level", "OFF"),
            "includeExecutionData": bool(props["LoggingConfiguration"].get("IncludeExecutionData")),
            "destinations": [
                {"cloudWatchLogsLogGroup": {"logGroupArn": d["CloudWatchLogsLogGroup"]["LogGroupArn"]}}
                for d in props["LoggingConfiguration"].get("Destinations", [])
            ],
        }
    if props.get("TracingConfiguration"):
        kwargs["tracingConfiguration"] = {"enabled": bool(props["TracingConfiguration"].get("Enabled"))}
    try:
        created = builder.aws("stepfunctions").create_state_machine(**kwargs)
    except Exception as e:  # InvalidDefinition, judged as on AWS (stepfunctions.patches): the stack would roll back
        refused = asl_validator.as_aws_refused(logical_id, e)
        if refused is None:
            raise
        raise refused from None
    builder.stack.state_machines[logical_id] = created["stateMachineArn"]


TYPES = (
    ResourceType(
        "AWS::StepFunctions::StateMachine",
        created_in_moto=True,
        ref=lambda b, lid: f"arn:aws:states:{b.arn_prefix()}:stateMachine:{b.name(lid, 'StateMachineName', 80)}",
        attributes={"Arn": lambda b, lid, ref: ref, "Name": lambda b, lid, ref: str(ref).rsplit(":", 1)[-1]},
    ),
)
STEPS = (
    Step(0, "judge state machines", _judge_state_machines),
    creates(70, "AWS::StepFunctions::StateMachine", _create_state_machine),
)
