"""The documentation holds together: a short README, links that lead somewhere, no path a reader lacks.

README.md is the entry point (at most 300 lines); the rest lives in docs/. Every relative link of
README.md, infra/README.md and docs/*.md must name a file of the repository (not one git ignores, which a clone
would lack), and its ``#anchor`` a heading of that page, as GitHub makes anchors of headings. No
file of the repository may name a place outside it that only its authors had. Each check is a
function that answers what is wrong, so that the planted cases below prove it can fail.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

REPO = Path(__file__).resolve().parents[1]
README_MAX_LINES = 300
# Built from pieces so that this file does not hold what it looks for.
OUTSIDE = [
    re.compile(re.escape(".." + "/shared")),
    re.compile(r"(?<![\w.~-])" + re.escape("/" + "work/")),
]
# Things a reader of the repository never had: the design's notes, a talk, the tracker's issue.
ABSENT_SOURCES = re.compile(r"\bthe (talk|issue)\b", re.IGNORECASE)
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
_MARKDOWN = MarkdownIt("commonmark").enable("table")


def docs_pages(root: Path = REPO) -> list[Path]:
    """The pages a user reads: the README, infra/README.md beside the template, and docs/*.md."""
    return [root / "README.md", root / "infra" / "README.md", *sorted((root / "docs").glob("*.md"))]


def too_long(readme: Path, limit: int = README_MAX_LINES) -> str | None:
    """Why ``readme`` is too long to be an entry point, or None."""
    count = len(readme.read_text().splitlines())
    return f"{readme.name} has {count} lines; at most {limit} (the rest belongs in docs/)" if count > limit else None


def links(text: str) -> list[str]:
    """Every link and image target of a Markdown text, as a CommonMark parser reads it (code is no link)."""
    found: list[str] = []
    for token in _MARKDOWN.parse(text):
        for child in token.children or []:
            if child.type == "link_open":
                found.append(str(child.attrs["href"]))
            elif child.type == "image":
                found.append(str(child.attrs["src"]))
    return found


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, each space a hyphen."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """The anchors of a Markdown page's headings, repeats numbered as GitHub numbers them."""
    seen: dict[str, int] = {}
    result: set[str] = set()
    tokens = _MARKDOWN.parse(text)
    for i, token in enumerate(tokens):
        if token.type != "heading_open":
            continue
        words = "".join(c.content for c in tokens[i + 1].children or [] if c.type in ("text", "code_inline"))
        base = slug(words)
        n = seen.get(base, 0)
        seen[base] = n + 1
        result.add(base if n == 0 else f"{base}-{n}")
    return result


def ignored_by_git(paths: Iterable[Path], root: Path) -> set[Path]:
    """Those of ``paths`` that git ignores in ``root`` (none when ``root`` is no git checkout)."""
    paths = list(paths)
    if not paths or not (root / ".git").exists():
        return set()
    answer = subprocess.run(["git", "-C", str(root), "check-ignore", "--stdin"],
                            input="\n".join(str(p) for p in paths), capture_output=True, text=True)  # fmt: skip
    return {Path(line) for line in answer.stdout.splitlines()}


def broken_links(page: Path, root: Path = REPO) -> list[str]:
    """What is wrong with each relative link of ``page``: outside ``root``, missing, ignored, or no such anchor."""
    problems: list[str] = []
    targets: dict[Path, str] = {}
    for href in links(page.read_text()):
        if _SCHEME.match(href):
            continue  # https:, mailto: ...: not the repository's to check
        where, _, anchor = href.partition("#")
        if where.startswith("/"):
            problems.append(f"{page.name}: {href}: a link into the repository is relative")
            continue
        target = (page.parent / where).resolve() if where else page.resolve()
        if not target.is_relative_to(root.resolve()):
            problems.append(f"{page.name}: {href}: outside the repository")
        elif not target.exists():
            problems.append(f"{page.name}: {href}: no such file")
        else:
            targets[target] = href
            if anchor and target.suffix == ".md" and anchor not in anchors(target.read_text()):
                problems.append(f"{page.name}: {href}: {target.name} has no heading #{anchor}")
    for target in ignored_by_git(targets, root):
        problems.append(f"{page.name}: {targets[target.resolve()]}: git ignores it, so a clone lacks it")
    return problems


def outside_references(files: Iterable[Path], root: Path = REPO) -> list[str]:
    """Each line of ``files`` that names a place outside the repository that only its authors had."""
    problems = []
    for path in files:
        try:
            text = path.read_text(errors="replace")
        except (IsADirectoryError, FileNotFoundError):
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if any(pattern.search(line) for pattern in OUTSIDE):
                problems.append(f"{path.relative_to(root)}:{number}: {line.strip()[:120]}")
    return problems


def repository_files(root: Path = REPO) -> list[Path]:
    """The repository's files: tracked, and new ones git does not ignore (a commit will add them)."""
    listed = subprocess.run(["git", "-C", str(root), "ls-files", "--cached", "--others", "--exclude-standard"],
                            capture_output=True, text=True, check=True).stdout.splitlines()  # fmt: skip
    return [root / name for name in listed if (root / name).is_file()]


# ------------------------------------------------------------------------------------ the repository


def test_the_readme_is_an_entry_point() -> None:
    assert too_long(REPO / "README.md") is None


@pytest.mark.parametrize("page", docs_pages(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_leads_somewhere(page: Path) -> None:
    assert broken_links(page) == []


def test_no_file_names_a_place_outside_the_repository() -> None:
    files = repository_files()
    assert len(files) > 100, "git ls-files found the repository"
    assert outside_references(files) == []


@pytest.mark.parametrize("page", docs_pages(), ids=lambda p: str(p.relative_to(REPO)))
def test_the_docs_cite_nothing_a_reader_lacks(page: Path) -> None:
    found = [line for line in page.read_text().splitlines() if ABSENT_SOURCES.search(line)]
    assert found == [], f"{page.name} points at a talk or an issue its reader has not got"


# ------------------------------------------------------------------------------------ planted cases


def test_a_readme_of_301_lines_is_too_long(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("line\n" * 300)
    assert too_long(readme) is None
    readme.write_text("line\n" * 301)
    assert too_long(readme) == "README.md has 301 lines; at most 300 (the rest belongs in docs/)"


def test_broken_links_and_anchors_are_found(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "guide.md").write_text("# Guide\n\n## The local cloud\n\n## Faults\n\n## Faults\n")
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "a.json").write_text("{}")
    readme = tmp_path / "README.md"
    readme.write_text(
        "# Title\n\n## Start here\n\n"
        "[ok](docs/guide.md) [ok anchor](docs/guide.md#the-local-cloud) [repeat](docs/guide.md#faults-1)\n"
        "[dir](schemas/) [file](schemas/a.json) [self](#start-here) [web](https://example.com/x.md)\n"
        "[missing](docs/missing.md) [bad anchor](docs/guide.md#no-such-heading) [bad self](#nowhere)\n"
        "[escape](../outside.md) [absolute](/docs/guide.md)\n\n"
        "`[in code](docs/missing-too.md)`\n\n```\n[in a block](docs/missing-three.md)\n```\n"
    )
    assert broken_links(readme, tmp_path) == [
        "README.md: docs/missing.md: no such file",
        "README.md: docs/guide.md#no-such-heading: guide.md has no heading #no-such-heading",
        "README.md: #nowhere: README.md has no heading #nowhere",
        "README.md: ../outside.md: outside the repository",
        "README.md: /docs/guide.md: a link into the repository is relative",
    ]


def test_a_link_to_a_file_git_ignores_is_broken(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("scratch.md\n")
    (tmp_path / "scratch.md").write_text("local only\n")
    (tmp_path / "README.md").write_text("[scratch](scratch.md)\n")
    assert broken_links(tmp_path / "README.md", tmp_path) == [
        "README.md: scratch.md: git ignores it, so a clone lacks it"
    ]


def test_github_anchors() -> None:
    assert slug("A user's running jobs (the quota)") == "a-users-running-jobs-the-quota"
    assert slug("Events (EventBridge)") == "events-eventbridge"
    page = "# Benchmarks: `make bench`\n\n## Lambda, Step Functions and API Gateway limits (create time)\n"
    assert anchors(page) == {"benchmarks-make-bench", "lambda-step-functions-and-api-gateway-limits-create-time"}


def test_places_outside_the_repository_are_found(tmp_path: Path) -> None:
    planted = tmp_path / "notes.md"
    planted.write_text(
        "fine: homework/x, docs/work/y, ~/work/z\n"
        "see " + ".." + "/shared/CONTRACT.md\n"
        "copied from " + "/" + "work/main/README.md\n"
    )
    assert outside_references([planted], tmp_path) == [
        "notes.md:2: see " + ".." + "/shared/CONTRACT.md",
        "notes.md:3: copied from " + "/" + "work/main/README.md",
    ]
