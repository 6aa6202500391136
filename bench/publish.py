"""Publishing a full ``make bench`` run: a dated history file, and its table in docs/benchmarks.md.

``bench/results/latest.md`` is scratch (git ignores it). A full run is also kept as
``bench/results/<UTC date-time>.md``, committed with the code, so that the history of the figures
stays in the repository; and docs/benchmarks.md shows the latest table only, between two marker
comments, so that the rest of that page (how to read the table) stays written by hand.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
DOC = REPO / "docs" / "benchmarks.md"
# HTML comments: GitHub renders nothing of them, and they hold no Markdown a table could break.
BEGIN = "<!-- bench:latest-table:begin (written by make bench: bench/publish.py) -->"
END = "<!-- bench:latest-table:end -->"


def history_name(when: datetime) -> str:
    """``2026-11-26T1035Z.md``: sorts by time, and has no ``:`` (which some file systems refuse)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H%MZ") + ".md"


def figures_table(report: str) -> str:
    """The report's table of figures (its first Markdown table: header, rule and rows), as text."""
    lines = report.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("| ")), None)
    if start is None:
        raise ValueError("the report has no table")
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return "\n".join(lines[start:end])


def replace_table(doc: str, block: str) -> str:
    """``doc`` with what lies between the markers replaced by ``block``; the rest kept as it was.

    Refuses (``ValueError``) a page without both markers, with either twice, or with them out of
    order: writing anyway would lose hand-written text or leave two tables.
    """
    if doc.count(BEGIN) != 1 or doc.count(END) != 1:
        raise ValueError(f"the page must hold {BEGIN!r} and {END!r} once each")
    head, rest = doc.split(BEGIN)
    if END not in rest:
        raise ValueError(f"{END!r} must come after {BEGIN!r}")
    _, tail = rest.split(END)
    return f"{head}{BEGIN}\n{block.strip()}\n{END}{tail}"


def latest_block(report: str, when: datetime) -> str:
    """What goes between the markers: which run, a link to its history file, and its table."""
    name = history_name(when)
    return (
        f"The latest full run: {when.astimezone(UTC):%Y-%m-%d %H:%M} UTC "
        f"([the whole run](../bench/results/{name}), with each figure's rounds and notes).\n\n" + figures_table(report)
    )


def publish(report: str, when: datetime, results: Path = RESULTS, doc: Path = DOC) -> Path:
    """Keep ``report`` as the run's history file and put its table in ``doc``; the history file's path.

    The page is checked before anything is written, so a page without its markers fails the run's
    publication whole rather than leaving a history file the page does not name.
    """
    page = replace_table(doc.read_text(), latest_block(report, when))
    results.mkdir(parents=True, exist_ok=True)
    history = results / history_name(when)
    history.write_text(report)
    doc.write_text(page)
    return history
