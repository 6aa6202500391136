"""The job kind of docs/adding-a-job-kind.md, added to a temporary copy of the repository as the guide says.

The guide's files live in ``docs/adding-a-job-kind/`` at the paths they take in the repository
(``schemas/jobs/project-stats.json`` goes to ``schemas/jobs/project-stats.json``, and so on), except
two that change ``infra/template.yaml``: ``infra/template-section.yaml``, pasted above the monitoring
section, and ``infra/template-edits.yaml``, the lines added to the resources that list every kind.
A copy built here is what a newcomer's checkout looks like after following the guide.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "adding-a-job-kind.md"
GUIDE_FILES = REPO / "docs" / "adding-a-job-kind"
# The one guide file that is not a file of its own in the repository: pasted into the template.
TEMPLATE_SECTION = Path("infra") / "template-section.yaml"
TEMPLATE_EDITS = Path("infra") / "template-edits.yaml"
TEMPLATE_FILES = (TEMPLATE_SECTION, TEMPLATE_EDITS)
# Where the guide says to paste it: just above this line of infra/template.yaml.
MONITORING_HEADER = "  # ---------------------------------------------------------------- monitoring\n"
JOB_TYPE = "project-stats"
# What the copy holds of the repository: what `longrun local up --template` reads, and what the
# guide's workflow test runs with (its engine and the project's pytest settings).
COPIED = ("infra", "statemachines", "handlers", "schemas")
LINKED = ("console",)
COPIED_FILES = ("pyproject.toml", "tests/__init__.py", "tests/workflows/__init__.py", "tests/workflows/engine.py")
# The repository's own checks of a template and its machines, run on the copy as on the repository.
COPIED_TESTS = ("tests/infra", "tests/support")


def guide_files() -> list[Path]:
    """The guide's files, relative to its folder, that go to the same path in the repository."""
    return sorted(
        p.relative_to(GUIDE_FILES)
        for p in GUIDE_FILES.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.relative_to(GUIDE_FILES) not in TEMPLATE_FILES
    )


def with_section(template: str, section: str) -> str:
    """``template`` with ``section`` pasted where the guide says: above the monitoring section."""
    if template.count(MONITORING_HEADER) != 1:
        raise AssertionError("infra/template.yaml has no single monitoring section header to paste above")
    return template.replace(MONITORING_HEADER, section.rstrip("\n") + "\n\n" + MONITORING_HEADER)


def _block(lines: list[str], name: str) -> tuple[int, int]:
    """The lines of resource ``name`` (or of the top-level ``Outputs``): [start, end)."""
    head = f"{name}:\n" if name == "Outputs" else f"  {name}:\n"
    if lines.count(head) != 1:
        raise AssertionError(f"infra/template.yaml has no single {head.strip()!r} for the guide's edit")
    start = lines.index(head)
    indent = len(head) - len(head.lstrip())
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or len(lines[end]) - len(lines[end].lstrip()) > indent):
        end += 1
    return start, end


def with_edits(template: str, edits: list[dict[str, Any]]) -> str:
    """``template`` with each edit's lines added before the line of its resource that contains ``before``."""
    lines = template.splitlines(keepends=True)
    for edit in edits:
        start, end = _block(lines, edit["in"])
        at = next((i for i in range(start, end) if edit["before"] in lines[i]), None)
        if at is None:
            raise AssertionError(f"{edit['in']} has no line with {edit['before']!r} for the guide's edit")
        indent = lines[at][: len(lines[at]) - len(lines[at].lstrip())]
        lines[at:at] = [indent + line + "\n" for line in edit["add"].splitlines()]
    return "".join(lines)


def edits() -> list[dict[str, Any]]:
    return yaml.safe_load((GUIDE_FILES / TEMPLATE_EDITS).read_text(encoding="utf-8"))


def guided_template(template: str) -> str:
    """The repository's template after the guide: its section pasted and its edits made."""
    section = (GUIDE_FILES / TEMPLATE_SECTION).read_text(encoding="utf-8")
    return with_edits(with_section(template, section), edits())


def build_copy(into: Path) -> Path:
    """The repository with the guide's job kind added, under ``into``; the copy's template path."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in COPIED:
        shutil.copytree(REPO / folder, into / folder, ignore=ignore, symlinks=True)
    for folder in LINKED:
        (into / folder).symlink_to(REPO / folder, target_is_directory=True)
    for folder in COPIED_TESTS:
        shutil.copytree(REPO / folder, into / folder, ignore=ignore, symlinks=True)
    for name in COPIED_FILES:
        (into / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, into / name)
    for relative in guide_files():
        target = into / relative
        if target.exists():
            raise AssertionError(f"the guide's {relative} would overwrite a file of the repository")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(GUIDE_FILES / relative, target)
    template = into / "infra" / "template.yaml"
    template.write_text(guided_template(template.read_text(encoding="utf-8")), encoding="utf-8")
    return template
