"""The template's S3 buckets and bucket policies, created in moto's S3."""

from __future__ import annotations

import json
from typing import Any

from longrun.local.cloudformation.engine import CannotEmulate, ResourceType, StackBuilder, creates


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's lifecycle rule shape in the S3 API's."""
    out: dict[str, Any] = {
        "ID": rule.get("Id", "rule"),
        "Status": rule["Status"],
        "Filter": {"Prefix": rule.get("Prefix", "")},
    }
    if "ExpirationInDays" in rule:
        out["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "NoncurrentVersionExpiration" in rule:
        out["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])
        }
    if "AbortIncompleteMultipartUpload" in rule:
        days = int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        out["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": days}
    return out


def _create_bucket(builder: StackBuilder, logical_id: str, props: dict[str, Any]) -> None:
    s3 = builder.aws("s3")
    name = builder.stack.physical[logical_id]
    if builder.stack.region == "us-east-1":
        s3.create_bucket(Bucket=name)
    else:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": builder.stack.region})
    if "BucketEncryption" in props:
        rules = [
            {
                ("ApplyServerSideEncryptionByDefault" if k == "ServerSideEncryptionByDefault" else k): v
                for k, v in rule.items()
            }
            for rule in props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        ]
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
    if "PublicAccessBlockConfiguration" in props:
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"])
    if props.get("VersioningConfiguration", {}).get("Status"):
        s3.put_bucket_versioning(
            Bucket=name, VersioningConfiguration={"Status": props["VersioningConfiguration"]["Status"]}
        )
    notifications = props.get("NotificationConfiguration") or {}
    if set(notifications) - {"EventBridgeConfiguration"}:
        raise CannotEmulate(f"{logical_id}: only EventBridge notifications are emulated")
    if notifications.get("EventBridgeConfiguration", {}).get("EventBridgeEnabled"):
        s3.put_bucket_notification_configuration(
            Bucket=name, NotificationConfiguration={"EventBridgeConfiguration": {}}
        )
    if "CorsConfiguration" in props:
        # CloudFormation's CorsRule names differ from the S3 API's in three fields.
        renamed = {"Id": "ID", "MaxAge": "MaxAgeSeconds", "ExposedHeaders": "ExposeHeaders"}
        rules = [{renamed.get(k, k): v for k, v in rule.items()} for rule in props["CorsConfiguration"]["CorsRules"]]
        s3.put_bucket_cors(Bucket=name, CORSConfiguration={"CORSRules": rules})
    if "LifecycleConfiguration" in props:
        s3.put_bucket_lifecycle_configuration(
            Bucket=name,
            LifecycleConfiguration={"Rules": [_lifecycle_rule(r) for r in props["LifecycleConfiguration"]["Rules"]]},
        )


def _create_bucket_policy(builder: StackBuilder, logical_id: str, props: dict[str, Any]) -> None:
    document = dict(props["PolicyDocument"])
    # The local AWS endpoint speaks plain HTTP on loopback, and moto evaluates bucket policies:
    # a TLS-only statement would refuse every local request, so it is the one part not applied.
    document["Statement"] = [s for s in document.get("Statement", []) if "aws:SecureTransport" not in json.dumps(s)]
    if document["Statement"]:
        builder.aws("s3").put_bucket_policy(Bucket=props["Bucket"], Policy=json.dumps(document))


TYPES = (
    ResourceType(
        "AWS::S3::Bucket",
        created_in_moto=True,
        ref=lambda b, lid: b.name(lid, "BucketName", 63, lower=True),
        attributes={
            "Arn": lambda b, lid, ref: f"arn:aws:s3:::{ref}",
            "DomainName": lambda b, lid, ref: f"{ref}.s3.amazonaws.com",
            "RegionalDomainName": lambda b, lid, ref: f"{ref}.s3.{b.stack.region}.amazonaws.com",
        },
    ),
    ResourceType("AWS::S3::BucketPolicy", created_in_moto=True),
)
STEPS = (
    creates(50, "AWS::S3::Bucket", _create_bucket),
    creates(51, "AWS::S3::BucketPolicy", _create_bucket_policy),
)
