"""The build instances' Auto Scaling group (BuildCapacity EC2): judged as AWS would create it, then inert.

Locally no instance is launched: the worker service's tasks are local processes whatever capacity
the template gives them (longrun/local/ecs/services.py, docs/local-cloud.md). The group's create-time
rules are still AWS's (aws_rules.auto_scaling_group), so a stack that AWS would refuse is refused here.
"""

from __future__ import annotations

from typing import Any

from longrun.local import aws_rules
from longrun.local.cloudformation.engine import ResourceType, StackBuilder, creates


def _check_group(builder: StackBuilder, logical_id: str, props: dict[str, Any]) -> None:
    aws_rules.auto_scaling_group(logical_id, props)


TYPES = (
    ResourceType(
        "AWS::AutoScaling::AutoScalingGroup",  # its Ref is the group's name
        created_in_moto=False,
        ref=lambda b, lid: b.name(lid, "AutoScalingGroupName", 255),
    ),
)
STEPS = (creates(125, "AWS::AutoScaling::AutoScalingGroup", _check_group),)
