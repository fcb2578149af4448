"""The results: one headline table (every measure against its same-run baseline), details, and the document.

docs/benchmarks.md is rendered from bench/template.md (`{{name}}` placeholders): the prose lives in the template,
every number comes from the run that wrote the file, so regenerating it never needs a hand edit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.measure import Figure

TEMPLATE = Path(__file__).with_name("template.md")


@dataclass
class Row:
    """One headline: our figure, the baseline measured in the same runs, their ratio and the target."""

    scenario: str
    measure: str
    ours: Figure | None
    baseline: Figure | None
    baseline_name: str
    ratio: Figure | None
    target: str
    met: bool | None  # None: no threshold (a smoke run) or not measurable

    def cells(self) -> list[str]:
        status = {True: "met", False: "**not met**", None: "–"}[self.met]
        return [
            self.scenario,
            self.measure,
            self.ours.format() if self.ours else "n/a",
            f"{self.baseline_name}: {self.baseline.format()}" if self.baseline else self.baseline_name,
            self.ratio.format() if self.ratio else "n/a",
            self.target,
            status,
        ]


@dataclass
class Section:
    """What a scenario reports: headline rows, detail tables (markdown) and notes on how it was measured."""

    scenario: str
    rows: list[Row] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
        *("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows),
    ]
    return "\n".join(lines)


def headline(sections: list[Section]) -> str:
    header = ["scenario", "measure", "ours (median, min–max)", "baseline, same runs", "ratio", "target", ""]
    return table(header, [row.cells() for section in sections for row in section.rows])


def render(  # noqa: PLR0913 - the document's parts, each named
    *,
    sections: list[Section],
    scale: str,
    runs: int,
    command: str,
    environment: dict[str, str],
    started: str,
    duration: float,
    profile: str,
) -> dict[str, str]:
    """Every placeholder's text: the numbers of this run."""
    details = []
    for section in sections:
        details.append(f"### {section.scenario}\n")
        details.extend(f"{detail}\n" for detail in section.details)
        details.extend(f"- {note}" for note in section.notes)
        details.append("")
    env_lines = "\n".join(f"| {key} | {value} |" for key, value in environment.items())
    return {
        "command": command,
        "scale": scale,
        "runs": str(runs),
        "started": started,
        "duration": f"{duration / 60:.1f} min",
        "environment": f"| | |\n|---|---|\n{env_lines}",
        "table": headline(sections),
        "details": "\n".join(details).rstrip() + "\n",
        "profile": profile.rstrip() + "\n",
    }


def fill(values: dict[str, str]) -> str:
    """The document from the rendered parts of a run (also kept in docs/benchmarks.json, so the prose of
    bench/template.md can change without measuring again: `python -m bench --render`)."""
    document = TEMPLATE.read_text(encoding="utf-8")
    for name, value in values.items():
        document = document.replace("{{" + name + "}}", value)
    left = re.findall(r"{{\w+}}", document)
    if left:
        raise ValueError(f"bench/template.md has placeholders nothing fills: {left}")
    return document
