"""The template's alarms and dashboard, created in moto's CloudWatch.

Created so that operators find them as on AWS (describe-alarms, the dashboard). Nothing evaluates
an alarm locally: moto's CloudWatch gets no metrics (the functions' EMF lines land in their log
files) and the engine logs nothing to CloudWatch Logs.
"""

from __future__ import annotations

import json
from typing import Any

from longrun.local.cloudformation.engine import ResourceType, StackBuilder, creates


def _create_alarm(builder: StackBuilder, logical_id: str, props: dict[str, Any]) -> None:
    """The alarm as PutMetricAlarm takes it: CloudFormation's property names are the API's."""
    kwargs: dict[str, Any] = {
        k: props[k]
        for k in (
            "AlarmDescription", "ActionsEnabled", "AlarmActions", "OKActions", "InsufficientDataActions",
            "MetricName", "Namespace", "Statistic", "ExtendedStatistic", "Dimensions", "Unit",
            "ComparisonOperator", "TreatMissingData", "EvaluateLowSampleCountPercentile",
            "ThresholdMetricId", "Metrics",
        )
        if k in props
    }  # fmt: skip
    for key in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
        if key in props:
            kwargs[key] = int(props[key])
    if "Threshold" in props:
        kwargs["Threshold"] = float(props["Threshold"])
    builder.aws("cloudwatch").put_metric_alarm(AlarmName=builder.stack.physical[logical_id], **kwargs)


def _create_dashboard(builder: StackBuilder, logical_id: str, props: dict[str, Any]) -> None:
    body = props["DashboardBody"]
    json.loads(body)  # a body that is not JSON is a template bug: CloudFormation refuses it too
    builder.aws("cloudwatch").put_dashboard(DashboardName=builder.stack.physical[logical_id], DashboardBody=body)


TYPES = (
    ResourceType(
        "AWS::CloudWatch::Alarm",
        created_in_moto=True,
        ref=lambda b, lid: b.name(lid, "AlarmName", 255),
        attributes={"Arn": lambda b, lid, ref: f"arn:aws:cloudwatch:{b.arn_prefix()}:alarm:{ref}"},
    ),
    ResourceType(
        "AWS::CloudWatch::Dashboard", created_in_moto=True, ref=lambda b, lid: b.name(lid, "DashboardName", 255)
    ),
)
STEPS = (
    creates(90, "AWS::CloudWatch::Alarm", _create_alarm),
    creates(91, "AWS::CloudWatch::Dashboard", _create_dashboard),
)
