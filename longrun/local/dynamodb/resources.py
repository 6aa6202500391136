"""The template's DynamoDB tables, created in moto's DynamoDB."""

from __future__ import annotations

from typing import Any

from longrun.local.cloudformation.engine import ResourceType, StackBuilder, creates


def _create_table(builder: StackBuilder, logical_id: str, props: dict[str, Any]) -> None:
    ddb = builder.aws("dynamodb")
    kwargs: dict[str, Any] = {
        "TableName": builder.stack.physical[logical_id],
        "KeySchema": props["KeySchema"],
        "AttributeDefinitions": props["AttributeDefinitions"],
        "BillingMode": props.get("BillingMode", "PROVISIONED"),
    }
    if props.get("GlobalSecondaryIndexes"):
        kwargs["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    if kwargs["BillingMode"] == "PROVISIONED":
        kwargs["ProvisionedThroughput"] = props["ProvisionedThroughput"]
    ddb.create_table(**kwargs)
    ttl = props.get("TimeToLiveSpecification")
    if ttl and ttl.get("Enabled"):
        ddb.update_time_to_live(
            TableName=kwargs["TableName"],
            TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]},
        )


TYPES = (
    ResourceType(
        "AWS::DynamoDB::Table",
        created_in_moto=True,
        ref=lambda b, lid: b.name(lid, "TableName", 255),
        attributes={"Arn": lambda b, lid, ref: f"arn:aws:dynamodb:{b.arn_prefix()}:table/{ref}"},
    ),
)
STEPS = (creates(30, "AWS::DynamoDB::Table", _create_table),)
