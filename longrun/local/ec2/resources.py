"""The network the stack makes (docs/network.md): the local cloud's functions reach everything
directly, so there is nothing to route; each resource gets an id of its kind and nothing else.
"""

from __future__ import annotations

from longrun.local.cloudformation.engine import ResourceType


def _local(name: str, id_prefix: str = "") -> ResourceType:
    return ResourceType(name, created_in_moto=False, id_prefix=id_prefix)


TYPES = (
    ResourceType(
        "AWS::EC2::SecurityGroup",  # loopback has no security groups
        created_in_moto=False,
        id_prefix="sg-",
        attributes={"GroupId": lambda b, lid, ref: ref},
    ),
    _local("AWS::EC2::SecurityGroupIngress"),
    _local("AWS::EC2::SecurityGroupEgress", "sgr-"),
    _local("AWS::EC2::VPC", "vpc-"),
    _local("AWS::EC2::Subnet", "subnet-"),
    _local("AWS::EC2::InternetGateway", "igw-"),
    _local("AWS::EC2::VPCGatewayAttachment"),
    ResourceType(
        "AWS::EC2::EIP",
        created_in_moto=False,
        attributes={"AllocationId": lambda b, lid, ref: f"eipalloc-{ref}"},
    ),
    _local("AWS::EC2::NatGateway", "nat-"),
    _local("AWS::EC2::RouteTable", "rtb-"),
    _local("AWS::EC2::Route"),
    _local("AWS::EC2::SubnetRouteTableAssociation", "rtbassoc-"),
    _local("AWS::EC2::VPCEndpoint", "vpce-"),
    # The build instances' launch template (BuildCapacity EC2): no instance is launched locally.
    ResourceType(
        "AWS::EC2::LaunchTemplate",
        created_in_moto=False,
        id_prefix="lt-",
        attributes={
            "LatestVersionNumber": lambda b, lid, ref: "1",
            "DefaultVersionNumber": lambda b, lid, ref: "1",
        },
    ),
)
STEPS = ()
