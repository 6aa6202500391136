"""The template's file systems, mount targets and access points: EFS is a directory here."""

from __future__ import annotations

from longrun.local.cloudformation.engine import ResourceType, StackBuilder, Step


def _directories(builder: StackBuilder, by_type: dict[str, list[str]]) -> None:
    """EFS is a directory: ``<data-dir>/efs/<file system id>``; an access point adds its root."""
    builder.mounts = {}
    for logical_id in by_type.get("AWS::EFS::AccessPoint", []):
        props = builder.resolver.resolve(builder.props(logical_id))
        root = builder.data_dir / "efs" / str(props["FileSystemId"])
        path = root / str(props.get("RootDirectory", {}).get("Path", "/")).lstrip("/")
        path.mkdir(parents=True, exist_ok=True)
        builder.mounts[builder.get_att(logical_id, "Arn")] = path
        builder.stack.efs_root = path


TYPES = (
    ResourceType(
        "AWS::EFS::FileSystem",  # a directory under --data-dir
        created_in_moto=False,
        id_prefix="fs-",
        attributes={"Arn": lambda b, lid, ref: f"arn:aws:elasticfilesystem:{b.arn_prefix()}:file-system/{ref}"},
    ),
    ResourceType("AWS::EFS::MountTarget", created_in_moto=False, id_prefix="fsmt-"),
    ResourceType(
        "AWS::EFS::AccessPoint",
        created_in_moto=False,
        id_prefix="fsap-",
        attributes={"Arn": lambda b, lid, ref: f"arn:aws:elasticfilesystem:{b.arn_prefix()}:access-point/{ref}"},
    ),
)
STEPS = (Step(100, "EFS directories", _directories),)
