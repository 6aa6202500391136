"""infra/template.yaml as CloudFormation receives it from ``sam deploy``, for the judges (cfn-lint, parliament).

``sam package`` uploads a state machine's ``DefinitionUri`` file to S3, and CloudFormation reads it
from there: a judge that lints the template with a placeholder S3 URI never sees a definition. Here
each ``DefinitionUri`` is replaced by its file's content as ``Definition`` (``DefinitionSubstitutions``
kept), exactly as SAM accepts it, so that the transform writes the definition into the
``AWS::StepFunctions::StateMachine`` resource and cfn-lint's state machine rules (E3601 and friends)
read every state. Code and layer paths become S3 placeholders (what ``sam package`` would upload).

The YAML is read with cfn-lint's own decoder, so that every short-form tag the template may use
(``!GetAZs``, ``!EachMemberEquals`` in Rules …) is understood.
"""

from __future__ import annotations

import copy
import functools
import json
import os
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "infra" / "template.yaml"
_PLACEHOLDER_BUCKET = "longrun-judged-artifacts"


def _plain(value: Any) -> Any:
    """cfn-lint's decoder returns dict/str subclasses carrying line marks; make plain JSON data."""
    return json.loads(json.dumps(value))


def load_sam(path: Path = TEMPLATE) -> dict[str, Any]:
    """The SAM template as plain data (cfn-lint's decoder: every CloudFormation tag)."""
    from cfnlint.decode import decode

    template, matches = decode(str(path))
    if matches:
        raise ValueError(f"{path}: " + "; ".join(str(m) for m in matches))
    return _plain(template)


def inline_definitions(sam: dict[str, Any], base: Path) -> dict[str, Any]:
    """A copy of ``sam`` whose state machines carry their definitions, and whose code paths are S3 URIs."""
    sam = copy.deepcopy(sam)
    function_globals = (sam.get("Globals") or {}).get("Function") or {}
    if isinstance(function_globals.get("CodeUri"), str) and not function_globals["CodeUri"].startswith("s3://"):
        function_globals["CodeUri"] = f"s3://{_PLACEHOLDER_BUCKET}/globals.zip"
    for name, resource in (sam.get("Resources") or {}).items():
        props = resource.get("Properties") or {}
        if resource.get("Type") == "AWS::Serverless::StateMachine":
            uri = props.get("DefinitionUri")
            if isinstance(uri, str) and not uri.startswith("s3://"):
                props["Definition"] = json.loads((base / uri).read_text(encoding="utf-8"))
                del props["DefinitionUri"]
            continue
        for key in ("CodeUri", "ContentUri"):
            if isinstance(props.get(key), str) and not props[key].startswith("s3://"):
                props[key] = f"s3://{_PLACEHOLDER_BUCKET}/{name}.zip"
    return sam


class _NoManagedPolicyLookup:
    """SAM looks AWS managed policies up by name through IAM; the template names none by bare name."""

    def load(self) -> dict[str, str]:
        return {}


def definitions_as_objects(cfn: dict[str, Any]) -> dict[str, Any]:
    """Each state machine's ``DefinitionString`` (SAM writes ``Fn::Join`` of the JSON's lines) as ``Definition``.

    cfn-lint's E3601 skips a definition that is an intrinsic function and reads only a literal one;
    ``Definition`` as a JSON object with the same ``DefinitionSubstitutions`` is the equivalent
    CloudFormation (AWS::StepFunctions::StateMachine takes either), so the judge reads every state.
    """
    for resource in (cfn.get("Resources") or {}).values():
        if resource.get("Type") != "AWS::StepFunctions::StateMachine":
            continue
        props = resource.get("Properties") or {}
        joined = props.get("DefinitionString")
        if isinstance(joined, dict) and list(joined) == ["Fn::Join"]:
            separator, lines = joined["Fn::Join"]
            if all(isinstance(line, str) for line in lines):
                props["Definition"] = json.loads(separator.join(lines))
                del props["DefinitionString"]
    return cfn


def translate(path: Path = TEMPLATE) -> dict[str, Any]:
    """The CloudFormation template the SAM transform makes of ``path``, definitions inlined, offline."""
    return translate_sam(load_sam(path), path.resolve().parent)


def translate_sam(sam: dict[str, Any], base: Path) -> dict[str, Any]:
    """As ``translate``, of a SAM template already loaded (a planted copy); ``base`` is its directory."""
    from samtranslator.translator.transform import transform

    sam = inline_definitions(sam, base)
    saved = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = saved or "us-east-1"  # the translator wants a region, nothing more
    try:
        cfn = _plain(transform(sam, {}, _NoManagedPolicyLookup()))
    finally:
        if saved is None:
            os.environ.pop("AWS_DEFAULT_REGION", None)
    return definitions_as_objects(cfn)


@functools.cache
def _translated() -> str:
    return json.dumps(translate(TEMPLATE))


def translated() -> dict[str, Any]:
    """infra/template.yaml translated (cached per test session; each caller gets its own copy)."""
    return json.loads(_translated())


def write(template: dict[str, Any], path: Path) -> Path:
    """The template as a JSON file (what cfn-lint is run on)."""
    path.write_text(json.dumps(template, indent=1), encoding="utf-8")
    return path
