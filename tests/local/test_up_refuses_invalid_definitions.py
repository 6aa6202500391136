"""``longrun local up`` refuses a template whose state machine Step Functions would refuse, as a deploy would fail.

CloudFormation hands each definition to ``CreateStateMachine``, which answers ``InvalidDefinition``
to one that breaks the Amazon States Language, and the stack rolls back. The local cloud's
``CreateStateMachine`` judges definitions with asl-validator (longrun/local/stepfunctions/patches.py), and
``local up`` stops with exit 2 naming the resource, the state and the rule, before it serves.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.infra.translated import load_sam
from tests.support.planted import copy_of_template, plant_duplicate_state_name

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


def _local_up(tmp_path: Path, template: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "longrun.cli", "local", "up", "--api-port", "0", "--ws-port", "0", "--aws-port", "0",
         "--data-dir", str(tmp_path / "data"), "--endpoints-file", str(tmp_path / "endpoints.json"),
         "--template", str(template)],
        cwd=REPO, capture_output=True, text=True, timeout=180, env=env or {**os.environ},
    )  # fmt: skip


def _resource_of(template: Path, asl_file: str) -> str:
    return next(
        logical_id
        for logical_id, resource in load_sam(template)["Resources"].items()
        if str((resource.get("Properties") or {}).get("DefinitionUri", "")).endswith(f"/{asl_file}")
    )


def test_a_planted_duplicate_state_name_stops_local_up_naming_resource_state_and_rule(tmp_path: Path) -> None:
    template = copy_of_template(tmp_path / "planted")
    asl_file, state = plant_duplicate_state_name(tmp_path / "planted" / "statemachines")
    resource = _resource_of(template, asl_file)

    done = _local_up(tmp_path, template)

    assert done.returncode == 2, done.stdout + done.stderr
    assert f"AWS would refuse {resource}, state {state}: DUPLICATE_STATE_NAMES" in done.stderr, done.stderr
    assert "https://docs.aws.amazon.com/step-functions/" in done.stderr
    assert not (tmp_path / "endpoints.json").exists(), "a refused stack never serves"
    assert not (tmp_path / "data" / "endpoints.json").exists()


def test_local_up_without_node_says_how_to_install_the_judge(tmp_path: Path) -> None:
    """Unjudged, no definition is accepted: local up stops at once and says what to run."""
    no_node = {**os.environ, "PATH": str(Path(sys.executable).parent)}

    done = _local_up(tmp_path, REPO / "infra" / "template.yaml", env=no_node)

    assert done.returncode == 2, done.stdout + done.stderr
    assert "node is not installed" in done.stderr and "npm ci" in done.stderr, done.stderr
    assert not (tmp_path / "endpoints.json").exists()
