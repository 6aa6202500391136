"""The template's IAM roles and managed policies, created in moto's IAM."""

from __future__ import annotations

import json
from typing import Any

from longrun.local.cloudformation.engine import ACCOUNT_ID, ResourceType, StackBuilder, creates


def _role_path(builder: StackBuilder, logical_id: str) -> str:
    """A role's ARN carries its path (``/`` unless it has one): ``arn:aws:iam::<account>:role/<path>/<name>``."""
    return str(builder.resolver.resolve(builder.props(logical_id).get("Path", "/")))


def _create_managed_policy(builder: StackBuilder, logical_id: str, props: dict[str, Any]) -> None:
    name = builder.stack.physical[logical_id].rsplit("/", 1)[-1]
    builder.aws("iam").create_policy(PolicyName=name, PolicyDocument=json.dumps(props["PolicyDocument"]))


def _create_role(builder: StackBuilder, logical_id: str, props: dict[str, Any]) -> None:
    iam = builder.aws("iam")
    name = builder.stack.physical[logical_id]
    iam.create_role(
        RoleName=name,
        Path=props.get("Path", "/"),
        AssumeRolePolicyDocument=json.dumps(props["AssumeRolePolicyDocument"]),
    )
    for policy in props.get("Policies", []):
        # IAM reads a document without Version as 2008-10-17 (SAM writes inline policies so);
        # moto refuses those, so the local copy states the current version.
        document = {"Version": "2012-10-17", **policy["PolicyDocument"]}
        iam.put_role_policy(RoleName=name, PolicyName=policy["PolicyName"], PolicyDocument=json.dumps(document))
    for arn in props.get("ManagedPolicyArns", []):
        if ":aws:policy/" in arn:
            continue  # AWS managed policies are not in moto's account; nothing local enforces IAM
        iam.attach_role_policy(RoleName=name, PolicyArn=arn)


TYPES = (
    ResourceType(
        "AWS::IAM::Role",
        created_in_moto=True,
        ref=lambda b, lid: b.name(lid, "RoleName"),
        attributes={"Arn": lambda b, lid, ref: f"arn:aws:iam::{ACCOUNT_ID}:role{_role_path(b, lid)}{ref}"},
    ),
    ResourceType(
        "AWS::IAM::ManagedPolicy",
        created_in_moto=True,
        ref=lambda b, lid: f"arn:aws:iam::{ACCOUNT_ID}:policy/{b.name(lid, 'ManagedPolicyName', 128)}",
    ),
    # The build instances' profile (BuildCapacity EC2): nothing assumes it locally.
    ResourceType(
        "AWS::IAM::InstanceProfile",
        created_in_moto=False,
        ref=lambda b, lid: b.name(lid, "InstanceProfileName", 128),
        attributes={"Arn": lambda b, lid, ref: f"arn:aws:iam::{ACCOUNT_ID}:instance-profile/{ref}"},
    ),
)
STEPS = (
    creates(10, "AWS::IAM::ManagedPolicy", _create_managed_policy),
    creates(11, "AWS::IAM::Role", _create_role),
)
