"""A job kind is added whole or not at all: its params schema, its state machine and its ASL file go together.

The API knows a kind by its schema (``schemas/jobs/<type>.json``, ``core.schemas.job_types``) and
starts it on the state machine named ``${AWS::StackName}-<type>`` (``STATE_MACHINE_ARN_PREFIX`` and
the type, core/config.py); the machine's definition is ``statemachines/<type, - as _>.asl.json``.
A schema without its machine is caught by tests/infra/test_template_layout.py (each kind's section);
here the other halves: a machine that no schema names (the API can never start it), one named off
the convention (the API would start a machine that does not exist), and a machine whose definition
file is not its type's. docs/adding-a-job-kind.md lists the whole.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from tests.infra.translated import load_sam
from tests.support.job_kind_guide import GUIDE_FILES, JOB_TYPE, guided_template

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "infra" / "template.yaml"
SCHEMAS = REPO / "schemas" / "jobs"
STATEMACHINES = REPO / "statemachines"
NAME_PREFIX = "${AWS::StackName}-"


def _job_types(schemas: Path) -> set[str]:
    return {p.stem for p in schemas.glob("*.json")}


def _asl_files(statemachines: Path) -> set[str]:
    return {p.name for p in statemachines.glob("*.asl.json")}


def half_added(sam: dict[str, Any], job_types: set[str], asl_files: set[str]) -> list[str]:
    """What each state machine lacks to be a whole job kind: its name, its schema, its definition file."""
    problems = []
    for logical_id, resource in sam["Resources"].items():
        if resource["Type"] != "AWS::Serverless::StateMachine":
            continue
        name = resource["Properties"].get("Name")
        sub = name.get("Fn::Sub") if isinstance(name, dict) else None
        if not isinstance(sub, str) or not sub.startswith(NAME_PREFIX):
            problems.append(f"{logical_id}: Name must be !Sub {NAME_PREFIX}<type>, got {name!r}")
            continue
        job_type = sub.removeprefix(NAME_PREFIX)
        expected = f"../statemachines/{job_type.replace('-', '_')}.asl.json"
        if resource["Properties"].get("DefinitionUri") != expected:
            problems.append(f"{logical_id}: DefinitionUri must be {expected}")
        elif Path(expected).name not in asl_files:
            problems.append(f"{logical_id}: {expected} does not exist")
        if job_type not in job_types:
            problems.append(f"{logical_id}: runs {job_type!r}, which has no schemas/jobs/{job_type}.json")
    return problems


def test_every_job_kind_is_whole() -> None:
    assert _job_types(SCHEMAS), "no job kinds"
    assert half_added(load_sam(TEMPLATE), _job_types(SCHEMAS), _asl_files(STATEMACHINES)) == []


def test_the_guides_job_kind_is_whole_once_added(tmp_path: Path) -> None:
    """docs/adding-a-job-kind/ adds a whole kind: its schema, its ASL file and its template section."""
    template = tmp_path / "template.yaml"
    template.write_text(guided_template(TEMPLATE.read_text(encoding="utf-8")), encoding="utf-8")
    kinds = _job_types(SCHEMAS) | _job_types(GUIDE_FILES / "schemas" / "jobs")
    asl_files = _asl_files(STATEMACHINES) | _asl_files(GUIDE_FILES / "statemachines")
    assert JOB_TYPE in kinds
    assert half_added(load_sam(template), kinds, asl_files) == []


def test_a_half_added_kind_is_caught() -> None:
    sam, kinds, asl_files = load_sam(TEMPLATE), _job_types(SCHEMAS), _asl_files(STATEMACHINES)

    without_schema = half_added(sam, kinds - {"git-clone"}, asl_files)
    assert without_schema == ["GitCloneStateMachine: runs 'git-clone', which has no schemas/jobs/git-clone.json"]

    assert half_added(sam, kinds, asl_files - {"sync.asl.json"}) == [
        "SyncStateMachine: ../statemachines/sync.asl.json does not exist"
    ]

    renamed = copy.deepcopy(sam)
    renamed["Resources"]["BuildStateMachine"]["Properties"]["Name"] = {"Fn::Sub": "${AWS::StackName}-builder"}
    assert half_added(renamed, kinds, asl_files) == [
        "BuildStateMachine: DefinitionUri must be ../statemachines/builder.asl.json",
        "BuildStateMachine: runs 'builder', which has no schemas/jobs/builder.json",
    ]

    off_convention = copy.deepcopy(sam)
    off_convention["Resources"]["SyncStateMachine"]["Properties"]["Name"] = "sync"
    assert half_added(off_convention, kinds, asl_files) == [
        "SyncStateMachine: Name must be !Sub ${AWS::StackName}-<type>, got 'sync'"
    ]
