"""parliament on every IAM policy document of the translated template, and the explanations written beside them.

moto enforces no IAM, so a policy that allows nothing on AWS (a statement whose Resource can never
match its actions) passes every local test. parliament (duo-labs) knows every action's resource
types from the Service Authorization Reference and says so. Its findings are either fixed in the
template or explained where the policy is written, in the owning resource's Metadata::

    Metadata:
      parliament:
        explained:
          - finding: CREDENTIALS_EXPOSURE      # parliament's issue code
            actions: [sts:AssumeRole]          # the actions the finding names (any order, any case)
            reason: why this is what AWS needs, with the doc that says so

The owner of a policy is the resource of infra/template.yaml that writes it: a role, a managed or
resource policy, or the AWS::Serverless::Function / StateMachine whose ``Policies`` SAM turns into
the role ``<Name>Role`` (SAM does not copy Metadata onto that role, so the explanation stays on
the resource the reader edits).

Documents are judged with their intrinsics resolved the way the local cloud resolves them
(longrun/local/cloudformation/engine.py): plausible names and ARNs of this account, so that parliament can match
ARNs against the formats each action takes.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import parliament

from longrun.local.cloudformation.engine import StackBuilder
from longrun.local.cloudformation.template import Translated

# Resource policies parliament reads (they carry Resource and Principal); the document's property.
RESOURCE_POLICIES = {
    "AWS::IAM::ManagedPolicy": "PolicyDocument",
    "AWS::IAM::Policy": "PolicyDocument",
    "AWS::SQS::QueuePolicy": "PolicyDocument",
    "AWS::S3::BucketPolicy": "PolicyDocument",
    "AWS::SNS::TopicPolicy": "PolicyDocument",
}
SAM_POLICY_OWNERS = ("AWS::Serverless::Function", "AWS::Serverless::StateMachine")
# Parameters that switch every conditional resource on, so that every policy is judged.
ALL_ON = {"BuildWorkerImage": "123456789012.dkr.ecr.us-east-1.amazonaws.com/longrun-build-worker:judged"}


@dataclass(frozen=True)
class Document:
    owner: str  # logical id in infra/template.yaml
    where: str  # translated resource / policy name, for messages
    policy: dict[str, Any]
    trust: bool = False  # a role's trust policy


@dataclass(frozen=True)
class Finding:
    owner: str
    where: str
    issue: str
    actions: frozenset[str]
    detail: str = field(compare=False, default="")

    @property
    def key(self) -> tuple[str, str, frozenset[str]]:
        return (self.owner, self.issue, self.actions)

    def __str__(self) -> str:
        return f"{self.owner} ({self.where}): {self.issue} {sorted(self.actions)} {self.detail}"


def _resolver(cfn: dict[str, Any]) -> Any:
    """The local cloud's intrinsic resolver over the translated template (it creates nothing)."""
    sqs = SimpleNamespace(meta=SimpleNamespace(endpoint_url="https://sqs.us-east-1.amazonaws.com"))
    builder = StackBuilder(
        Translated(template=cfn),
        stack_name="longrun",
        region="us-east-1",
        parameters=ALL_ON,
        data_dir=Path("/nonexistent"),
        websocket_management_base="https://execute-api.us-east-1.amazonaws.com",
        aws=lambda _service: sqs,
    )
    return builder, builder.resolver


def _owner(logical_id: str, sam: dict[str, Any]) -> str:
    resources = sam.get("Resources") or {}
    if logical_id in resources:
        return logical_id
    if logical_id.endswith("Role") and resources.get(logical_id[: -len("Role")], {}).get("Type") in SAM_POLICY_OWNERS:
        return logical_id[: -len("Role")]
    raise KeyError(f"{logical_id}: no resource of the SAM template writes it")


def documents(cfn: dict[str, Any], sam: dict[str, Any]) -> Iterator[Document]:
    """Every policy document of the translated template, resolved, with the SAM resource that writes it.

    A role's trust policy is a resource policy on the role; IAM's grammar gives it no Resource
    element (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_resource.html),
    which parliament requires, so it is judged with the role's own ARN as its Resource.
    """
    builder, resolver = _resolver(cfn)
    for logical_id, resource in cfn["Resources"].items():
        kind = resource["Type"]
        props = resource.get("Properties") or {}
        if kind == "AWS::IAM::Role":
            owner = _owner(logical_id, sam)
            trust = resolver.resolve(props["AssumeRolePolicyDocument"])
            role_arn = builder.get_att(logical_id, "Arn")
            trust = {**trust, "Statement": [{**s, "Resource": role_arn} for s in trust["Statement"]]}
            yield Document(owner, f"{logical_id} trust policy", trust, trust=True)
            for policy in props.get("Policies") or []:
                where = f"{logical_id}/{policy['PolicyName']}"
                yield Document(owner, where, resolver.resolve(policy["PolicyDocument"]))
        elif kind in RESOURCE_POLICIES:
            yield Document(_owner(logical_id, sam), logical_id, resolver.resolve(props[RESOURCE_POLICIES[kind]]))


# What a trust policy is for: letting its principal take the role's credentials. parliament's
# CREDENTIALS_EXPOSURE says exactly that of every trust policy, so it is no finding there.
TRUST_ACTIONS = frozenset({"sts:assumerole", "sts:assumerolewithwebidentity", "sts:assumerolewithsaml"})


def judge(document: Document) -> list[Finding]:
    policy = parliament.analyze_policy_string(json.dumps(document.policy), include_community_auditors=True)
    out = []
    for finding in policy.findings:
        location = finding.location if isinstance(finding.location, dict) else {}
        actions = {a.lower() for a in location.get("actions") or []}
        if isinstance(finding.detail, list):  # RESOURCE_MISMATCH: [{action, required_format}]
            actions |= {i["action"].lower() for i in finding.detail if isinstance(i, dict) and "action" in i}
        if document.trust and finding.issue == "CREDENTIALS_EXPOSURE" and actions <= TRUST_ACTIONS:
            continue
        out.append(
            Finding(
                owner=document.owner,
                where=document.where,
                issue=finding.issue,
                actions=frozenset(actions),
                detail=json.dumps(finding.detail) if finding.detail else "",
            )
        )
    return out


def findings(cfn: dict[str, Any], sam: dict[str, Any]) -> list[Finding]:
    return [finding for document in documents(cfn, sam) for finding in judge(document)]


@dataclass(frozen=True)
class Explanation:
    owner: str
    issue: str
    actions: frozenset[str]
    reason: str

    @property
    def key(self) -> tuple[str, str, frozenset[str]]:
        return (self.owner, self.issue, self.actions)


def explanations(sam: dict[str, Any]) -> list[Explanation]:
    """Every ``Metadata: parliament: explained`` entry of the SAM template."""
    out = []
    for logical_id, resource in (sam.get("Resources") or {}).items():
        entries = ((resource.get("Metadata") or {}).get("parliament") or {}).get("explained") or []
        for entry in entries:
            out.append(
                Explanation(
                    owner=logical_id,
                    issue=str(entry.get("finding", "")),
                    actions=frozenset(str(a).lower() for a in entry.get("actions") or []),
                    reason=str(entry.get("reason", "")).strip(),
                )
            )
    return out


def verdict(cfn: dict[str, Any], sam: dict[str, Any]) -> tuple[list[Finding], list[Explanation]]:
    """(findings nobody explained, explanations no finding needs any more)."""
    found = findings(cfn, sam)
    explained = explanations(sam)
    keys = {e.key for e in explained}
    unexplained = [f for f in found if f.key not in keys]
    found_keys = {f.key for f in found}
    stale = [e for e in explained if e.key not in found_keys]
    return unexplained, stale
