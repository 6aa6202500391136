"""Route 53 records of the template: checked as Route 53 would take them, served by nothing.

The template's records alias its custom domain names (section "custom domains") in a hosted zone
that exists outside the stack. Nothing resolves those names to loopback, so the local cloud makes
no record: it refuses what Route 53 would refuse (an alias with a TTL or values of its own, one
without its target's zone) and the fronts serve the mapped paths on their own ports.
"""

from __future__ import annotations

from typing import Any

from longrun.local.cloudformation.engine import ResourceType, StackBuilder, creates
from longrun.local.refusals import AwsRefused

RECORD_SET = (
    "https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-route53-recordset.html"
)


def _record_name(builder: StackBuilder, logical_id: str) -> Any:
    return builder.resolver.resolve(builder.props(logical_id)["Name"])


def _check(builder: StackBuilder, logical_id: str, props: dict[str, Any]) -> None:
    if bool(props.get("HostedZoneId")) == bool(props.get("HostedZoneName")):
        raise AwsRefused(logical_id, "a record names its zone by HostedZoneId or HostedZoneName, one of them",
                         "both or neither", doc=RECORD_SET)  # fmt: skip
    for needed in ("Name", "Type"):
        if not props.get(needed):
            raise AwsRefused(logical_id, f"a record has a {needed}", "missing", doc=RECORD_SET)
    alias = props.get("AliasTarget")
    if alias is not None:
        if "TTL" in props or "ResourceRecords" in props:
            raise AwsRefused(logical_id, "an alias record has neither TTL nor ResourceRecords",
                             "AliasTarget with them", doc=RECORD_SET)  # fmt: skip
        if not alias.get("DNSName") or not alias.get("HostedZoneId"):
            raise AwsRefused(logical_id, "an alias names its target's DNSName and HostedZoneId", str(alias),
                             doc=RECORD_SET)  # fmt: skip
    elif not props.get("ResourceRecords"):
        raise AwsRefused(logical_id, "a record has ResourceRecords or an AliasTarget", "neither", doc=RECORD_SET)


TYPES = (ResourceType("AWS::Route53::RecordSet", created_in_moto=False, ref=_record_name),)
STEPS = (creates(156, "AWS::Route53::RecordSet", _check),)
