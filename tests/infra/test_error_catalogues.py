"""One error catalogue per workflow: every ErrorEquals name is a class, every raised class is caught or expected.

A step error's class name is its Step Functions error name, so renaming a class (or mistyping a
Catch) silently stops a catch. Each workflow's ``handlers/steps/<kind>/errors.py`` defines the classes
its steps raise (and the build worker sends, ``SendTaskFailure(error=<Class>.__name__)``), with
:mod:`core.workflow_errors` for the shared ones; the rules are in :mod:`tests.support.workflow_rules`:

(a) every ``ErrorEquals`` name but ``States.*`` is a class of the machine's catalogue (or a Lambda
    service error name of :data:`core.workflow_errors.LAMBDA_SERVICE_ERRORS`);
(b) every catalogue class a state's code raises (the handler the template wires to the state, and
    the steps/ and workers/ modules it imports, read with ``ast``) is named by a Catch or Retry of
    that state (or of a Map around it), or listed in the catalogue's ``ENDS_EXECUTION``: the errors
    that end the execution on purpose, which the execution-status trigger closes with that code and
    ``POST /jobs/{id}/retry`` may redrive.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.support import workflow_rules as rules


def test_the_workflows_keep_their_catalogues():
    assert rules.error_problems() == []


def test_every_machine_has_one_catalogue_and_the_worker_names_its_errors_by_class():
    served = {m for c in rules.catalogues().values() for m in c.machines}
    assert served == set(rules.machines())
    build = rules.catalogues()["steps.build.errors"]
    assert {"BuildFailed", "BuildTimedOut", "BuildError"} <= build.classes and build.workers == ("workers.build",)
    worker = (rules.REPO / "handlers" / "workers" / "build" / "worker.py").read_text()
    assert '"BuildFailed"' not in worker and '"BuildTimedOut"' not in worker and '"BuildError"' not in worker


def test_project_busy_is_one_class_for_the_api_and_the_workflows():
    from core import errors, locks, workflow_errors

    assert locks.ProjectBusy is errors.ProjectBusy is workflow_errors.ProjectBusy
    assert errors.ProjectBusy.status == 409 and errors.ProjectBusy.code == errors.ProjectBusy.__name__


def test_the_catalogue_classes_are_the_names_the_machines_catch():
    """Imported, not read: each ERRORS entry is an exception class whose name is its own."""
    import importlib

    for module in [*rules.catalogues(), "core.workflow_errors"]:
        catalogue = importlib.import_module(module)
        assert all(isinstance(c, type) and issubclass(c, Exception) for c in catalogue.ERRORS), module
        assert {c.__name__ for c in catalogue.ERRORS} == rules.read_catalogue(
            rules.REPO / "handlers" / Path(*module.split(".")).with_suffix(".py"), module
        ).errors


@pytest.fixture
def planted(tmp_path: Path) -> Path:
    """A copy of handlers/, statemachines/ and infra/ to plant a rename in."""
    for folder in ("handlers", "statemachines", "infra"):
        shutil.copytree(
            rules.REPO / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__", "scaffolds")
        )
    return tmp_path


def _replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new))


def test_a_planted_class_rename_fails_both_rules(planted: Path):
    """MergeConflict renamed in its catalogue and where merge.py raises it, but not in git_merge's Catch."""
    _replace(planted / "handlers/steps/git/errors.py", "class MergeConflict(", "class MergeConflicted(")
    _replace(planted / "handlers/steps/git/errors.py", "    MergeConflict,\n", "    MergeConflicted,\n")
    _replace(planted / "handlers/steps/git/merge.py", "MergeConflict", "MergeConflicted")
    problems = rules.error_problems(planted)
    assert any("ErrorEquals 'MergeConflict' is no class" in p for p in problems), problems  # (a)
    assert any("git_merge/Merge: MergeConflicted" in p and "neither caught" in p for p in problems), problems  # (b)


def test_a_planted_catch_rename_fails_both_rules(planted: Path):
    """BuildFailed mistyped in build.asl.json's Catch: the name is no class, and what the worker sends goes uncaught."""
    asl = planted / "statemachines/build.asl.json"
    definition = json.loads(asl.read_text())
    catch = next(c for c in definition["States"]["Run"]["Catch"] if "BuildFailed" in c["ErrorEquals"])
    catch["ErrorEquals"] = ["BuildFail" if n == "BuildFailed" else n for n in catch["ErrorEquals"]]
    asl.write_text(json.dumps(definition))
    problems = rules.error_problems(planted)
    assert any("ErrorEquals 'BuildFail' is no class" in p for p in problems), problems
    assert any("build/Run: BuildFailed" in p and "(sent)" in p for p in problems), problems


def test_a_planted_string_error_name_and_an_uncatalogued_class_fail(planted: Path):
    _replace(planted / "handlers/workers/build/worker.py", '"code": BuildTimedOut.__name__', '"code": "BuildTimedOut"')
    _replace(planted / "handlers/steps/git/hosts.py", "raise HostNotFound(", "raise HostUnknown(")
    problems = rules.error_problems(planted)
    assert any("names the error 'BuildTimedOut' by a string" in p for p in problems), problems
    assert any("raises HostUnknown, which is in no catalogue" in p for p in problems), problems


def test_a_planted_raise_in_a_shared_core_module_must_be_declared(planted: Path):
    _replace(planted / "handlers/core/locks.py", "raise LockLost(", "raise TransientError(")
    problems = rules.error_problems(planted)
    assert any("raises TransientError; add it to RAISED_BY_CORE['core.locks']" in p for p in problems), problems
