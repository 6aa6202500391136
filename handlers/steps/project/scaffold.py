"""The project templates that ship with longrun, under ``scaffolds/<template>/``.

A file's text may say ``{{name}}``, replaced by the project's name (a slug, so safe anywhere).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from steps.project.errors import ScaffoldNotFound

ROOT = Path(__file__).parent / "scaffolds"


def files(template: str, name: str) -> Iterator[tuple[str, bytes]]:
    """``(relative path, content)`` of every file of ``template``, rendered for project ``name``."""
    base = ROOT / template
    if not template.replace("-", "").isalnum() or not base.is_dir():
        raise ScaffoldNotFound(f"no template named {template!r}")
    for path in sorted(p for p in base.rglob("*") if p.is_file()):
        yield path.relative_to(base).as_posix(), path.read_bytes().replace(b"{{name}}", name.encode())


def templates() -> list[str]:
    return sorted(p.name for p in ROOT.iterdir() if p.is_dir())
