"""The issue's seven figures in one table at the top of benchmarks/results.md: each value
beside the baseline measured in the same run, the ratio, the target and whether it is met.

Every section of a run (append and verify per backend, scale, interactive latency,
concurrent writers, …) contributes its rows here; the sections below the table keep the
details (rounds, profiles, notes).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    number: int  # the figure's number in the performance issue (1-7)
    what: str  # what was measured, on which backend and size
    value: str
    baseline: str
    ratio: float | None  # value over baseline (or large over small); None when not a ratio
    target: str
    met: bool | None  # None: measured, no target to meet
    notes: tuple[str, ...] = ()  # details for the figure's section, not the summary table

    @property
    def verdict(self) -> str:
        if self.met is None:
            return "measured"
        return "yes" if self.met else "**no**"


def at_least(ratio: float, target: float) -> bool:
    return ratio >= target


def at_most(ratio: float, target: float) -> bool:
    return ratio <= target


def summary_lines(figures: list[Figure]) -> list[str]:
    """The `## The figures` table, in figure order (a stable sort keeps each section's order)."""
    lines = [
        "## The figures",
        "",
        "| # | figure | value | baseline | ratio | target | met? |",
        "| ---: | --- | ---: | ---: | ---: | --- | --- |",
    ]
    for figure in sorted(figures, key=lambda f: f.number):
        ratio = "" if figure.ratio is None else f"{figure.ratio:.2f}x"
        lines.append(f"| {figure.number} | {figure.what} | {figure.value} | {figure.baseline} "
                     f"| {ratio} | {figure.target} | {figure.verdict} |")
    met = sum(1 for f in figures if f.met)
    missed = sum(1 for f in figures if f.met is False)
    lines += ["", f"{met} rows meet their target, {missed} miss it; the sections below give "
              "each row's rounds, notes and profile."]
    return lines
