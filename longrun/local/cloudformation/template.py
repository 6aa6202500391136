"""Reading ``infra/template.yaml`` the way ``sam build``/``sam deploy`` would, for the local cloud.

The SAM template is the single source of truth. Local paths (``CodeUri``, ``ContentUri``,
``DefinitionUri``) are what ``sam package`` uploads to S3; here they are kept as local paths:
a state machine's definition file is inlined, code and layer paths are remembered, and
aws-sam-translator turns the rest into plain CloudFormation.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import yaml
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

_PLACEHOLDER_BUCKET = "longrun-local-artifacts"


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form tags (``!Ref``, ``!GetAtt``, ``!Sub`` …)."""


def _tag(name: str):
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if name == "Fn::GetAtt" and isinstance(value, str):
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {name: value}

    return construct


for _short in ("Ref", "Condition"):
    _CfnLoader.add_constructor(f"!{_short}", _tag(_short))
for _fn in (
    "GetAtt", "Sub", "Join", "Select", "Split", "If", "Equals", "Not", "And", "Or",
    "FindInMap", "GetAZs", "Base64", "ImportValue", "Cidr",
):  # fmt: skip
    _CfnLoader.add_constructor(f"!{_fn}", _tag(f"Fn::{_fn}"))


def load_yaml(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=_CfnLoader)


class _NoManagedPolicies:
    """SAM only looks managed policies up by name; the template names them by ARN."""

    def load(self) -> dict[str, str]:
        return {}


@dataclass
class Translated:
    """The template as plain CloudFormation, plus what ``sam package`` would have uploaded."""

    template: dict[str, Any]
    code_dirs: dict[str, Path] = field(default_factory=dict)  # function logical id → code directory
    layer_dirs: dict[str, Path] = field(default_factory=dict)  # layer logical id → content directory
    base_dir: Path = Path(".")


def translate(path: Path, parameters: dict[str, Any] | None = None, region: str = "us-east-1") -> Translated:
    path = path.resolve()
    sam = load_yaml(path)
    base = path.parent
    out = Translated(template={}, base_dir=base)
    sam = copy.deepcopy(sam)
    global_code = ((sam.get("Globals") or {}).get("Function") or {}).get("CodeUri")
    for logical_id, resource in (sam.get("Resources") or {}).items():
        props = resource.setdefault("Properties", {})
        kind = resource.get("Type")
        if kind == "AWS::Serverless::Function":
            code = props.get("CodeUri", global_code)
            if isinstance(code, str) and not code.startswith("s3://"):
                out.code_dirs[logical_id] = (base / code).resolve()
                props["CodeUri"] = f"s3://{_PLACEHOLDER_BUCKET}/{logical_id}.zip"
        elif kind == "AWS::Serverless::LayerVersion":
            content = props.get("ContentUri")
            if isinstance(content, str) and not content.startswith("s3://"):
                out.layer_dirs[logical_id] = (base / content).resolve()
                props["ContentUri"] = f"s3://{_PLACEHOLDER_BUCKET}/{logical_id}.zip"
        elif kind == "AWS::Serverless::StateMachine":
            uri = props.get("DefinitionUri")
            if isinstance(uri, str) and not uri.startswith("s3://"):
                with open(base / uri, encoding="utf-8") as f:
                    props["Definition"] = json.load(f)
                del props["DefinitionUri"]
    if global_code is not None and isinstance(global_code, str) and not global_code.startswith("s3://"):
        sam["Globals"]["Function"]["CodeUri"] = f"s3://{_PLACEHOLDER_BUCKET}/global.zip"
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=region))
    out.template = translator.translate(
        sam, parameter_values=dict(parameters or {}), get_managed_policy_map=_NoManagedPolicies().load
    )
    return out
