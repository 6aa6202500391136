"""The report: one Markdown table of figures, then each figure's per-round values and notes.

A row holds the per-round values, not just the summary, so a reader can see how noisy a figure
was before trusting its median.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from bench.stats import fmt, median


@dataclass
class Row:
    """One figure: longrun's per-round values beside the baseline's, and the target it is held to."""

    figure: str
    unit: str
    longrun: list[float]
    baseline: list[float] = field(default_factory=list)
    baseline_label: str = ""
    target: str = "—"
    # Given the medians (longrun, baseline), whether the target is met; None when there is no target.
    check: Callable[[float, float], bool] | None = None
    digits: int = 1
    # Shown instead of the median when the figure is a count or a price rather than a measurement.
    longrun_text: str | None = None
    baseline_text: str | None = None

    @property
    def value(self) -> float:
        return median(self.longrun)

    @property
    def base(self) -> float:
        return median(self.baseline)

    def ratio(self) -> str:
        if not self.baseline or not self.longrun or self.base == 0 or self.base != self.base:
            return "—"
        return f"{self.value / self.base:.2f}x"

    def met(self) -> str:
        if self.check is None:
            return "—"
        if not self.longrun or self.value != self.value:
            return "no (not measured)"
        return "yes" if self.check(self.value, self.base) else "**no**"

    def cells(self) -> list[str]:
        unit = f" {self.unit}" if self.unit else ""
        longrun = self.longrun_text if self.longrun_text is not None else fmt(self.value, self.digits) + unit
        if self.baseline_text is not None:
            baseline = self.baseline_text
        elif self.baseline:
            baseline = fmt(self.base, self.digits) + unit
        else:
            baseline = "—"
        if self.baseline_label and baseline != "—":
            baseline += f" ({self.baseline_label})"
        return [self.figure, longrun, baseline, self.ratio(), self.target, self.met()]

    def rounds_line(self) -> str:
        def values(xs: list[float]) -> str:
            return "[" + ", ".join(fmt(x, self.digits) for x in xs) + "]"

        line = f"- {self.figure}: longrun {values(self.longrun)}"
        if self.baseline:
            line += f" · baseline {values(self.baseline)}"
        return line + (f" {self.unit}" if self.unit else "")


@dataclass
class Section:
    """What one benchmark hands back: its rows, and notes (errors, counts, the state it ran in)."""

    name: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    # Markdown of the section's own tables (bench/costs.py: one per job kind), printed after the notes.
    tables: list[str] = field(default_factory=list)


HEADER = ["figure", "longrun", "baseline (same run)", "ratio", "target", "met?"]


def render(sections: list[Section], preamble: list[str]) -> str:
    lines = [*preamble, "", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for section in sections:
        for row in section.rows:
            lines.append("| " + " | ".join(row.cells()) + " |")
    lines += ["", "Every figure is the median of its rounds (transitions: of the sampled executions). Per round:", ""]
    for section in sections:
        for row in section.rows:
            lines.append(row.rounds_line())
    lines += ["", "Notes:", ""]
    for section in sections:
        lines.append(f"- **{section.name}** ({section.seconds:.0f} s)")
        lines += [f"  - {note}" for note in section.notes]
    for section in sections:
        if section.tables:
            lines += ["", f"### {section.name}", "", *section.tables]
    return "\n".join(lines) + "\n"
