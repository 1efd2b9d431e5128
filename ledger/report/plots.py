"""The report's figures: one function per plot, taking plain values and returning a matplotlib
`Figure` (no pyplot, no global state), so a test can draw one without a ledger.

Only the SVG and PDF backends write them (no pyplot, so no window and no display);
`svg_text` inlines a figure in the HTML with a fixed hash salt and no date, so the same values
give the same bytes.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import date
from typing import Any, cast

from matplotlib import rc_context
from matplotlib.figure import Figure

SALT = "trialctl-report"  # svg ids derive from it: fixed, so output is reproducible


def style() -> AbstractContextManager[None]:
    """The settings every figure is drawn and saved under: ids from a fixed salt, text as
    paths in SVG (no font needed to view it), TrueType text in PDF (searchable), the font
    matplotlib ships (no system font)."""
    return rc_context({"svg.hashsalt": SALT, "svg.fonttype": "path", "pdf.fonttype": 42,
                       "font.family": "DejaVu Sans", "font.size": 9})

RESPONSE_COLOURS = {"CR": "#1a9850", "PR": "#91cf60", "SD": "#fee08b", "PD": "#d73027"}


@dataclass(frozen=True)
class EscalationPoint:
    patient: str
    cohort: int
    level: int
    dlt: bool
    withdrawn: bool


@dataclass(frozen=True)
class DecisionMark:
    cohort: int
    label: str


@dataclass(frozen=True)
class Swim:
    patient: str
    level: int | None
    doses: Sequence[int]  # study days (day 1 = first dose)
    responses: Sequence[tuple[int, str]]  # (study day, category)
    end: int  # last study day on record
    off_study: str | None  # "withdrawn", "off study", or None while on study


def escalation_chart(points: Sequence[EscalationPoint], decisions: Sequence[DecisionMark],
                     levels: Sequence[str], mtd_level: int | None) -> Figure:
    with style():
        figure = Figure(figsize=(8, 4.2))
        axes = figure.subplots()
        for x, point in enumerate(points, start=1):
            colour = "#d73027" if point.dlt else ("#bbbbbb" if point.withdrawn else "#4575b4")
            marker = "X" if point.dlt else "o"
            axes.scatter([x], [point.level], s=90, marker=marker, color=colour, zorder=3,
                         edgecolors="black", linewidths=0.5)
        ends: dict[int, float] = {}
        for x, point in enumerate(points, start=1):
            ends[point.cohort] = x
        for decision in decisions:
            if decision.cohort in ends:
                between = ends[decision.cohort] + 0.5
                axes.axvline(between, color="#888888", linestyle=":", linewidth=1)
                axes.text(between, len(levels) + 0.35, decision.label, rotation=90, fontsize=7,
                          ha="right", va="top")
        if mtd_level is not None:
            axes.axhline(mtd_level, color="#1a9850", linestyle="--", linewidth=1.2,
                         label=f"MTD: level {mtd_level}")
            axes.legend(loc="lower right", fontsize=7)
        axes.set_yticks(range(1, len(levels) + 1), labels=list(levels))
        axes.set_ylim(0.5, len(levels) + 0.5)
        axes.set_xticks(range(1, len(points) + 1), labels=[p.patient for p in points],
                        rotation=90, fontsize=7)
        axes.set_xlabel("patients in order of enrolment (X: DLT, grey: withdrawn)")
        axes.set_title("Dose escalation")
        figure.tight_layout()
    return figure


def grade_heatmap(worst: dict[str, dict[int, int]], grades: Sequence[int]) -> Figure:
    terms = list(worst)
    with style():
        figure = Figure(figsize=(6.5, 1.2 + 0.4 * len(terms)))
        axes = figure.subplots()
        matrix = [[worst[t][g] for g in grades] for t in terms]
        axes.imshow(matrix, cmap="Reds", aspect="auto", vmin=0)
        for row, counts in enumerate(matrix):
            for column, count in enumerate(counts):
                axes.text(column, row, str(count), ha="center", va="center", fontsize=8)
        axes.set_xticks(range(len(grades)), labels=[f"grade {g}" for g in grades])
        axes.set_yticks(range(len(terms)), labels=terms)
        axes.set_title("Adverse events: patients by term and worst grade")
        figure.tight_layout()
    return figure


def swimmer_plot(swims: Sequence[Swim]) -> Figure:
    with style():
        figure = Figure(figsize=(8, 1.2 + 0.32 * len(swims)))
        axes = figure.subplots()
        for row, swim in enumerate(swims):
            axes.barh(row, swim.end, left=0, height=0.5, color="#c6dbef", edgecolor="#4575b4")
            axes.scatter(list(swim.doses), [row] * len(swim.doses), marker="|", s=60,
                         color="#08306b", zorder=3)
            for day, category in swim.responses:
                axes.scatter([day], [row], marker="D", s=40, zorder=4,
                             color=RESPONSE_COLOURS.get(category, "#999999"))
                axes.text(day, row - 0.32, category, fontsize=6, ha="center")
            if swim.off_study:
                axes.scatter([swim.end], [row], marker=">", s=50, color="black", zorder=4)
                axes.text(swim.end + 2, row, swim.off_study, fontsize=6, va="center")
        axes.set_yticks(range(len(swims)),
                        labels=[f"{s.patient} (L{s.level})" for s in swims])
        axes.set_xlim(0, max(s.end for s in swims) * 1.12 + 1)
        axes.invert_yaxis()
        axes.set_xlabel("study day (|: dose, ◆: response, ▶: off study)")
        axes.set_title("Patients on study")
        figure.tight_layout()
    return figure


def waterfall(changes: Sequence[tuple[str, float, str]]) -> Figure:
    """Best % change of the target-lesion sum, largest increase first."""
    ordered = sorted(changes, key=lambda c: (-c[1], c[0]))
    with style():
        figure = Figure(figsize=(6.5, 3.6))
        axes = figure.subplots()
        axes.bar(range(len(ordered)), [c[1] for c in ordered],
                 color=[RESPONSE_COLOURS.get(c[2], "#999999") for c in ordered],
                 edgecolor="black", linewidth=0.5)
        axes.axhline(20, color="#d73027", linestyle="--", linewidth=0.8)
        axes.axhline(-30, color="#1a9850", linestyle="--", linewidth=0.8)
        axes.axhline(0, color="black", linewidth=0.8)
        axes.set_xticks(range(len(ordered)), labels=[c[0] for c in ordered], rotation=90)
        axes.set_ylabel("best change from baseline (%)")
        axes.set_title("Best change in target-lesion sum")
        figure.tight_layout()
    return figure


def ctc_plot(series: dict[str, list[tuple[date, float]]]) -> Figure:
    with style():
        figure = Figure(figsize=(6.5, 3.4))
        axes = figure.subplots()
        for patient, points in series.items():
            # Dates go through matplotlib's unit converters, which its stubs do not type.
            axes.plot(cast(Any, [p[0] for p in points]), [p[1] for p in points],
                      marker="o", label=patient)
        axes.margins(x=0.1, y=0.2)
        axes.set_ylabel("cells per sample")
        axes.set_title("Circulating tumour cells over time")
        axes.legend(fontsize=7)
        figure.autofmt_xdate()
        figure.tight_layout()
    return figure


def svg_text(figure: Figure, prefix: str = "") -> str:
    """The figure as an inline `<svg>` element: no XML prolog, no metadata, a fixed id
    salt, and every id (and each reference to one) led by `prefix`.

    matplotlib names ids per figure (`figure_1`, `patch_2`, glyphs such as `DejaVuSans-33`,
    clip paths), so two figures in one HTML page would repeat them and a reference could
    land in the wrong figure; a prefix per figure keeps every id in the page unique."""
    buffer = io.StringIO()
    with style():
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    # The RDF description names vocabularies by URL; inside a report it says nothing.
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text[text.index("<svg"):], flags=re.S)
    if not prefix:
        return text
    text = re.sub(r'(\sid=")([^"]+")', rf"\g<1>{prefix}\g<2>", text)
    text = re.sub(r'(href="#)([^"]+")', rf"\g<1>{prefix}\g<2>", text)
    return re.sub(r"(url\(#)([^)]+\))", rf"\g<1>{prefix}\g<2>", text)


def save_pdf_page(pages: Any, figure: Figure) -> None:
    with style():
        pages.savefig(figure)
