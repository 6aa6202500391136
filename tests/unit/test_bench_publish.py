"""``make bench`` keeps each full run as a dated history file and puts its table in docs/benchmarks.md.

The page's table lies between two marker comments; everything around them is written by hand and
must survive a run. These tests drive ``bench/publish.py`` on a report as ``bench.report.render``
writes it, in a temporary directory, and check the repository's own page can take a run.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from bench import publish
from bench.report import Row, Section, render

REPO = Path(__file__).resolve().parents[2]
WHEN = datetime(2026, 12, 1, 9, 5, tzinfo=UTC)


def _report(value: float) -> str:
    rows = [Row("Accept p50, 1 client", "ms", [value, value + 1], [5.0, 5.2], "bare StartExecution", "< 25 ms",
                lambda lr, _b: lr < 25)]  # fmt: skip
    return render([Section("accept latency", rows, notes=["a note"])], ["## longrun benchmarks — now", "", "full run"])


def _page(table: str = "| old | table |\n|---|---|\n| 1 | 2 |") -> str:
    head = "# Benchmarks\n\nhand-written intro\n\n"
    return f"{head}{publish.BEGIN}\n{table}\n{publish.END}\n\n## How to read it\n\nmore\n"


def test_history_names_sort_by_utc_time_and_have_no_colon() -> None:
    assert publish.history_name(WHEN) == "2026-12-01T0905Z.md"
    paris = timezone(timedelta(hours=1))
    assert publish.history_name(datetime(2026, 12, 1, 10, 5, tzinfo=paris)) == "2026-12-01T0905Z.md"


def test_the_figures_table_is_the_reports_first_table_only() -> None:
    table = publish.figures_table(_report(20.0))
    lines = table.splitlines()
    assert lines[0] == "| figure | longrun | baseline (same run) | ratio | target | met? |"
    assert lines[1].startswith("|---|")
    assert lines[2].startswith("| Accept p50, 1 client | 20.5 ms |")
    assert len(lines) == 3, "the per-round lines and notes stay in the history file"
    with pytest.raises(ValueError, match="no table"):
        publish.figures_table("## no figures\n\nnothing ran\n")


def test_the_table_between_the_markers_is_replaced_and_the_rest_kept() -> None:
    page = _page()
    new = publish.replace_table(page, "| new | table |\n|---|---|\n| 3 | 4 |")
    assert "| old | table |" not in new and "| 3 | 4 |" in new
    assert new.startswith("# Benchmarks\n\nhand-written intro\n\n" + publish.BEGIN + "\n| new | table |")
    assert new.endswith(publish.END + "\n\n## How to read it\n\nmore\n")
    assert publish.replace_table(new, "| new | table |\n|---|---|\n| 3 | 4 |") == new, "idempotent"


@pytest.mark.parametrize(
    "page",
    [
        "# Benchmarks\n\nno markers at all\n",
        f"# Benchmarks\n\n{publish.BEGIN}\nonly the first\n",
        f"# Benchmarks\n\n{publish.END}\nonly the last\n",
        f"{publish.END}\nout of order\n{publish.BEGIN}\n",
        f"{publish.BEGIN}\na\n{publish.END}\n{publish.BEGIN}\nb\n{publish.END}\n",
    ],
    ids=["none", "begin only", "end only", "out of order", "twice"],
)
def test_a_page_without_its_markers_once_each_in_order_is_refused(page: str) -> None:
    with pytest.raises(ValueError):
        publish.replace_table(page, "| t |\n|---|")


def test_publish_keeps_the_run_and_puts_its_table_in_the_page(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text(_page())
    results = tmp_path / "results"
    report = _report(20.0)

    history = publish.publish(report, WHEN, results=results, doc=doc)

    assert history == results / "2026-12-01T0905Z.md"
    assert history.read_text() == report, "the history file is the whole run"
    page = doc.read_text()
    assert "| Accept p50, 1 client | 20.5 ms |" in page and "| old | table |" not in page
    assert "[the whole run](../bench/results/2026-12-01T0905Z.md)" in page
    assert "2026-12-01 09:05 UTC" in page
    assert "hand-written intro" in page and page.endswith("## How to read it\n\nmore\n")

    later = WHEN + timedelta(days=1)
    publish.publish(_report(30.0), later, results=results, doc=doc)
    assert sorted(p.name for p in results.iterdir()) == ["2026-12-01T0905Z.md", "2026-12-02T0905Z.md"]
    assert "| 30.5 ms |" in doc.read_text() and "| 20.5 ms |" not in doc.read_text(), "the latest table only"


def test_publish_writes_nothing_when_the_page_has_lost_its_markers(tmp_path: Path) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nsomeone removed the markers\n")
    with pytest.raises(ValueError):
        publish.publish(_report(20.0), WHEN, results=tmp_path / "results", doc=doc)
    assert not (tmp_path / "results").exists(), "no history file the page does not name"
    assert doc.read_text() == "# Benchmarks\n\nsomeone removed the markers\n"


def test_the_repositorys_page_can_take_a_run() -> None:
    page = publish.DOC.read_text()
    assert publish.DOC == REPO / "docs" / "benchmarks.md"
    updated = publish.replace_table(page, publish.latest_block(_report(20.0), WHEN))
    assert updated != page and "| Accept p50, 1 client |" in updated
    # What is between the markers now names a history file that exists, as a run leaves it.
    inside = page.split(publish.BEGIN)[1].split(publish.END)[0]
    name = inside.split("(../bench/results/")[1].split(")")[0]
    assert (publish.RESULTS / name).is_file(), f"docs/benchmarks.md names bench/results/{name}, which is missing"


def test_only_the_scratch_output_is_ignored_by_git() -> None:
    ignored = [line.strip() for line in (REPO / ".gitignore").read_text().splitlines()]
    assert "bench/results/latest.md" in ignored
    assert "bench/results/" not in ignored and "bench/results" not in ignored, "the history files are committed"
