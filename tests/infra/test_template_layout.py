"""The layout of infra/template.yaml that a newcomer extends (infra/README.md, "Layout").

- its Resources follow the sections its header names, in that order; each job kind (one
  ``schemas/jobs/<type>.json``) has one section ``job kind: <type>`` holding its state machine, its
  steps' functions, their log groups and every resource whose logical id starts with the kind's name;
  every function's log group sits beside its function;
- no IAM statement is pasted three times or more in infra/: a statement more than two roles need is
  an ``AWS::IAM::ManagedPolicy`` that they reference;
- no role carries more managed policies than IAM attaches by default.

Each check is a function of a template path, so that a planted copy proves it can fail.
"""

from __future__ import annotations

import collections
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.infra.translated import REPO, load_sam, translated

INFRA = REPO / "infra"
TEMPLATE = INFRA / "template.yaml"
SECTION = re.compile(r"^  # -{64} (?P<title>.+)$")
RESOURCE = re.compile(r"^  (?P<name>[A-Za-z0-9]+):\s*$")
KIND_SECTION = "job kind: "
# Managed policies attached to a role, default quota (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html).
MANAGED_POLICIES_PER_ROLE = 10


def job_kinds() -> list[str]:
    return sorted(p.stem for p in (REPO / "schemas" / "jobs").glob("*.json"))


def kind_prefix(kind: str) -> str:
    """``git-merge`` -> ``GitMerge``: the logical ids of a kind's own resources start so."""
    return "".join(part.capitalize() for part in kind.split("-"))


# ------------------------------------------------------------------------------------ statements
def _documents(resource: dict[str, Any]) -> list[dict[str, Any]]:
    props = resource.get("Properties") or {}
    documents = []
    for key in ("PolicyDocument", "AssumeRolePolicyDocument"):
        if isinstance(props.get(key), dict):
            documents.append(props[key])
    policies = props.get("Policies")
    for policy in policies if isinstance(policies, list) else [policies] if policies else []:
        if not isinstance(policy, dict) or "Ref" in policy or "Fn::GetAtt" in policy:
            continue  # a managed policy's ARN: counted where it is written
        if "Statement" in policy:
            documents.append(policy)  # SAM's inline document
        elif isinstance(policy.get("PolicyDocument"), dict):
            documents.append(policy["PolicyDocument"])  # AWS::IAM::Role's inline policy
        else:
            documents.append({"Statement": [{"SamPolicyTemplate": policy}]})  # e.g. {S3ReadPolicy: {...}}
    return documents


def canonical(statement: dict[str, Any]) -> str:
    """A statement as IAM reads it: without its Sid, its lists in any order, one action as a list of one."""
    plain = {k: v for k, v in statement.items() if k != "Sid"}
    for key in ("Action", "NotAction", "Resource", "NotResource"):
        if key in plain:
            values = plain[key] if isinstance(plain[key], list) else [plain[key]]
            plain[key] = sorted(values, key=lambda v: json.dumps(v, sort_keys=True))
    return json.dumps(plain, sort_keys=True)


def repeated_statements(paths: list[Path], times: int = 3) -> dict[str, list[str]]:
    """Statements written ``times`` times or more across the templates, with where each copy is."""
    seen: dict[str, list[str]] = collections.defaultdict(list)
    for path in paths:
        for name, resource in (load_sam(path).get("Resources") or {}).items():
            for document in _documents(resource):
                statements = document.get("Statement") or []
                for statement in statements if isinstance(statements, list) else [statements]:
                    seen[canonical(statement)].append(f"{path.name}:{name}")
    return {statement: where for statement, where in seen.items() if len(where) >= times}


def templates(folder: Path) -> list[Path]:
    """Every CloudFormation template in ``folder`` (YAML or JSON with a Resources mapping)."""
    out = []
    for path in sorted([*folder.rglob("*.yaml"), *folder.rglob("*.yml"), *folder.rglob("*.json")]):
        text = path.read_text(encoding="utf-8", errors="replace")
        if re.search(r"^\"?Resources\"?\s*:", text, re.M):
            out.append(path)
    return out


def test_no_iam_statement_is_pasted_three_times_in_infra() -> None:
    found = templates(INFRA)
    assert TEMPLATE in found
    repeated = repeated_statements(found)
    assert not repeated, "make these managed policies (see ProjectAccessPolicy):\n" + "\n".join(
        f"{len(where)}x {statement} in {where}" for statement, where in repeated.items()
    )


def _planted_copy(tmp_path: Path) -> Path:
    shutil.copytree(INFRA, tmp_path / "infra")
    shutil.copytree(REPO / "statemachines", tmp_path / "statemachines")
    return tmp_path / "infra" / "template.yaml"


def _block(text: str, name: str) -> tuple[int, int]:
    """Where resource ``name``'s lines (with the comments right above it) are in the template's text."""
    lines = text.splitlines(keepends=True)
    first = lines.index(f"  {name}:\n")
    top = first
    while top > 0 and lines[top - 1].startswith("  #") and not SECTION.match(lines[top - 1].rstrip("\n")):
        top -= 1
    last = first + 1
    while last < len(lines) and (lines[last].startswith("   ") or lines[last].startswith("    #")):
        last += 1
    start = sum(len(line) for line in lines[:top])
    return start, start + sum(len(line) for line in lines[top:last])


def test_a_statement_pasted_a_third_time_fails(tmp_path: Path) -> None:
    """GitCredentialsPolicy's statement pasted inline into two functions: three copies with the policy's own."""
    template = _planted_copy(tmp_path)
    text = template.read_text()
    start, end = _block(text, "GitCredentialsPolicy")
    credentials = re.search(r"^          - Sid: GitCredentials\n(?:            .*\n)+", text[start:end], re.M)
    assert credentials, "GitCredentialsPolicy's GitCredentials statement"
    inline = "".join("  " + line + "\n" for line in credentials.group(0).splitlines())
    for name in ("SyncAcquireFunction", "SyncListFunction"):
        text = template.read_text()
        start, end = _block(text, name)
        planted = text[start:end].replace("          Statement:\n", "          Statement:\n" + inline, 1)
        template.write_text(text[:start] + planted + text[end:])
    repeated = repeated_statements(templates(template.parent))
    assert [sorted(where) for where in repeated.values()] == [
        ["template.yaml:GitCredentialsPolicy", "template.yaml:SyncAcquireFunction", "template.yaml:SyncListFunction"]
    ]


def test_no_role_takes_more_managed_policies_than_iam_allows_by_default() -> None:
    for name, resource in translated()["Resources"].items():
        if resource["Type"] == "AWS::IAM::Role":
            arns = resource["Properties"].get("ManagedPolicyArns", [])
            assert len(arns) <= MANAGED_POLICIES_PER_ROLE, f"{name}: {len(arns)} managed policies"


# ------------------------------------------------------------------------------------ sections
def sections(path: Path) -> tuple[list[str], dict[str, str]]:
    """The section titles of the Resources mapping in order, and each resource's section."""
    titles: list[str] = []
    section_of: dict[str, str] = {}
    in_resources = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith(" "):
            in_resources = line.startswith("Resources:")
            continue
        if not in_resources:
            continue
        if match := SECTION.match(line):
            titles.append(match["title"])
        elif (match := RESOURCE.match(line)) and titles:
            section_of[match["name"]] = titles[-1]
        elif match:
            section_of[match["name"]] = ""
    return titles, section_of


def _log_group_of(resources: dict[str, Any]) -> dict[str, str]:
    """Function -> its log group (``/aws/lambda/${Function}``)."""
    out = {}
    for name, resource in resources.items():
        group = (resource.get("Properties") or {}).get("LogGroupName")
        match = isinstance(group, dict) and re.fullmatch(r"/aws/lambda/\$\{(\w+)\}", str(group.get("Fn::Sub")))
        if resource["Type"] == "AWS::Logs::LogGroup" and match:
            out[match[1]] = name
    return out


def layout_problems(path: Path) -> list[str]:
    """Whatever of a job kind lies outside its section, and any function apart from its log group."""
    sam = load_sam(path)
    resources = sam["Resources"]
    titles, section_of = sections(path)
    problems = [f"{name}: before the first section" for name, title in section_of.items() if not title]
    problems += [f"section {t!r} appears {titles.count(t)} times" for t in set(titles) if titles.count(t) > 1]
    log_groups = _log_group_of(resources)
    machines = {
        r["Properties"]["Name"]["Fn::Sub"]: n
        for n, r in resources.items()
        if r["Type"] == "AWS::Serverless::StateMachine"
    }
    steps_of: dict[str, set[str]] = {}
    for kind in job_kinds():
        machine = machines.get(f"${{AWS::StackName}}-{kind}")
        if machine is None:
            problems.append(f"{kind}: no state machine named ${{AWS::StackName}}-{kind}")
            continue
        props = resources[machine]["Properties"]
        steps_of[kind] = {
            v["Fn::GetAtt"][0] if isinstance(v["Fn::GetAtt"], list) else v["Fn::GetAtt"].split(".")[0]
            for v in (props.get("DefinitionSubstitutions") or {}).values()
            if isinstance(v, dict) and "Fn::GetAtt" in v
        }
        steps_of[kind] = {s for s in steps_of[kind] if resources[s]["Type"] == "AWS::Serverless::Function"}
        steps_of[kind].add(machine)
        (destination,) = props["Logging"]["Destinations"]
        steps_of[kind].add(destination["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0])
    counted = collections.Counter(s for own in steps_of.values() for s in own)
    shared_steps = {s for s, n in counted.items() if n > 1}  # NotifyFunction: its own section
    for kind, own in steps_of.items():
        section = KIND_SECTION + kind
        if section not in titles:
            problems.append(f"{kind}: no section {section!r}")
        wanted = (own - shared_steps) | {log_groups[f] for f in own - shared_steps if f in log_groups}
        wanted |= {name for name in resources if name.startswith(kind_prefix(kind))}
        for name in sorted(wanted):
            if section_of.get(name) != section:
                problems.append(f"{name} ({kind}) is in section {section_of.get(name)!r}, not {section!r}")
    for function, group in log_groups.items():
        if section_of.get(group) != section_of.get(function):
            problems.append(f"{group} is in {section_of.get(group)!r}, {function} in {section_of.get(function)!r}")
    return problems


def test_each_job_kind_lies_in_its_own_section() -> None:
    assert not layout_problems(TEMPLATE), "\n".join(layout_problems(TEMPLATE))


def test_the_header_names_the_sections_in_their_order() -> None:
    """Each section has its line ``#   <title>  - what it holds`` in the header, in the sections' order."""
    titles, _ = sections(TEMPLATE)
    header = TEMPLATE.read_text().split("\nAWSTemplateFormatVersion", 1)[0]
    listed = re.findall(r"^#   (\S.*?)\s+- ", header, re.M)
    generic = [KIND_SECTION + "<type>" if t.startswith(KIND_SECTION) else t for t in titles]
    assert listed == list(dict.fromkeys(generic)), "the header's layout and the sections differ"
    assert {t.removeprefix(KIND_SECTION) for t in titles if t.startswith(KIND_SECTION)} == set(job_kinds())


def _move(text: str, name: str, before: str) -> str:
    start, end = _block(text, name)
    block, text = text[start:end], text[:start] + text[end:]
    at = _block(text, before)[0]
    return text[:at] + block + text[at:]


@pytest.mark.parametrize(
    ("name", "before"),
    [("GitMergeFunction", "ReserveNameFunction"), ("SyncListFunctionLogGroup", "BuildQueue")],
    ids=["a-kinds-function-elsewhere", "a-log-group-apart-from-its-function"],
)
def test_a_resource_out_of_its_section_fails(tmp_path: Path, name: str, before: str) -> None:
    template = _planted_copy(tmp_path)
    template.write_text(_move(template.read_text(), name, before))
    assert any(p.startswith(name) for p in layout_problems(template)), layout_problems(template)
