"""``pip install longrun`` is the CLI and the client; ``pip install 'longrun[local]'`` adds the local cloud.

The commands run in a subprocess whose import system refuses every module of the ``local`` extra (a
meta-path finder ahead of all others), so the test proves the CLI works on a machine without moto even
though this venv has it. A planted check proves the finder really refuses them, so nothing passes vacuously.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from longrun.local_extra import INSTALL, LOCAL

REPO = Path(__file__).resolve().parents[2]
BLOCKED = sorted({module for modules in LOCAL.values() for module in modules})

# Run first in the child: refuse the blocked modules (and their submodules) before anything imports them.
_BLOCKER = """
import importlib.abc, json, sys
BLOCKED = set(json.loads(sys.argv[1]))
early = sorted(m for m in sys.modules if m.partition(".")[0] in BLOCKED)
assert not early, f"imported before the blocker: {early}"
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"blocked by test_packaging: {name}", name=name)
        return None
sys.meta_path.insert(0, Refuse())
sys.argv = sys.argv[1:]
"""


def _without_local_extra(code: str, *args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _BLOCKER + code, json.dumps(BLOCKED), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


# --- the planted check: the finder refuses what it should ------------------------------------------


@pytest.mark.parametrize("module", ["moto", "samtranslator", "aws_croniter", "moto.stepfunctions", "yaml"])
def test_the_blocker_really_refuses_the_local_extra(module):
    assert importlib.util.find_spec(module.partition(".")[0]) is not None, f"{module} is in this venv (make test)"
    child = _without_local_extra(f"import {module}")
    assert child.returncode != 0
    assert f"blocked by test_packaging: {module.partition('.')[0]}" in child.stderr  # a package before its modules


def test_the_blocker_catches_a_cli_module_that_reaches_into_the_local_cloud():
    """What tokens.py did before: import longrun.local.cloud (which imports the SAM translator)."""
    child = _without_local_extra("import longrun.local.cloud")
    assert child.returncode != 0 and "blocked by test_packaging" in child.stderr


# --- the CLI and the client without the local extra ------------------------------------------------


def test_the_cli_client_tokens_and_ops_import_without_the_local_extra():
    child = _without_local_extra(
        "import longrun.cli, longrun.client, longrun.tokens, longrun.ops, longrun.operator, longrun.dead_letters,"
        " longrun.build_logs, longrun.smoke\n"
        "leaked = sorted(m for m in sys.modules if m.startswith('longrun.local.'))\n"
        "assert not leaked, leaked"
    )
    assert child.returncode == 0, child.stderr


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["local", "up", "--help"], ["jobs", "--help"], ["ops", "list", "--help"], ["token", "--user", "al"]],
)
def test_the_cli_runs_without_the_local_extra(argv):
    child = _without_local_extra("from longrun.cli import main\nsys.exit(main(sys.argv[1:]))", *argv)
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip()


def test_python_m_longrun_cli_help_without_the_local_extra():
    child = _without_local_extra("import runpy\nrunpy.run_module('longrun.cli', run_name='__main__')", "--help")
    assert child.returncode == 0, child.stderr
    assert "local" in child.stdout and "jobs" in child.stdout


@pytest.mark.parametrize(
    ("argv", "command"),
    [(["local", "up", "--data-dir", "{tmp}/d"], "longrun local up"),
     (["worker", "build", "--queue-url", "q"], "longrun worker build")],
)  # fmt: skip
def test_a_command_that_needs_the_local_extra_says_how_to_install_it(argv, command, tmp_path):
    argv = [a.format(tmp=tmp_path) for a in argv]
    child = _without_local_extra("from longrun.cli import main\nsys.exit(main(sys.argv[1:]))", *argv)
    assert child.returncode == 2, (child.stdout, child.stderr)
    assert "Traceback" not in child.stderr
    assert command in child.stderr and INSTALL in child.stderr
    assert not (tmp_path / "d").exists(), "nothing starts before the check"


def test_make_demo_says_how_to_install_the_local_extra():
    child = _without_local_extra("from longrun.demo import main\nsys.exit(main())")
    assert child.returncode == 2 and INSTALL in child.stderr and "Traceback" not in child.stderr


# --- the distribution's metadata ---------------------------------------------------------------------


def _by_extra(requirements: list[str]) -> dict[str | None, set[str]]:
    """Each requirement's name under the extra its marker names (None: a core dependency)."""
    extras: dict[str | None, set[str]] = {}
    for text in requirements:
        requirement = Requirement(text)
        extra = next(iter(_extras(requirement)), None)
        extras.setdefault(extra, set()).add(requirement.name)
    return extras


def _extras(requirement: Requirement) -> list[str]:
    if requirement.marker is None:
        return []
    return [e for e in ("local", "dev", "scan", "sam", "bench") if requirement.marker.evaluate({"extra": e})]


def test_the_installed_metadata_is_this_pyproject():
    """Otherwise the next test reads a stale install: `.venv/bin/pip install -e '.[dev,local]'`."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    declared = {Requirement(r).name for r in project["dependencies"]} | {
        Requirement(r).name for extra in project["optional-dependencies"].values() for r in extra
    }
    installed = {Requirement(r).name for r in importlib.metadata.requires("longrun") or []}
    assert installed == declared, "pyproject.toml changed since the install: pip install -e '.[dev,local]'"


def test_the_emulator_is_only_in_the_local_extra():
    extras = _by_extra(importlib.metadata.requires("longrun") or [])
    assert extras["local"] == set(LOCAL), "longrun/local_extra.py names the local extra's requirements"
    assert {"moto", "aws-sam-translator", "aws-croniter"} <= extras["local"]
    for extra, names in extras.items():
        if extra != "local":
            assert not names & set(LOCAL), f"{sorted(names & set(LOCAL))} also under {extra or 'the core'}"
    assert extras[None] == {"boto3", "websockets", "PyJWT", "httpx", "rich"}
    moto = next(Requirement(r) for r in importlib.metadata.requires("longrun") or [] if r.startswith("moto"))
    assert moto.extras == {"server"}, "the local cloud runs moto in server mode"
