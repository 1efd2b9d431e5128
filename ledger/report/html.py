"""The report as one self-contained HTML file: a Jinja2 template shipped with the package,
plots inlined as SVG, no external asset of any kind."""

from __future__ import annotations

from importlib import resources
from typing import Any

from jinja2 import Environment, StrictUndefined, select_autoescape
from markupsafe import Markup

from trialctl.ledger.report import sections
from trialctl.ledger.report.data import ReportData
from trialctl.ledger.report.figures import Section
from trialctl.ledger.report.plots import svg_text

TEMPLATE = "report.html.j2"


def _template() -> Any:
    text = resources.files("trialctl.ledger.report").joinpath("templates", TEMPLATE)
    environment = Environment(autoescape=select_autoescape(default=True),
                              undefined=StrictUndefined, keep_trailing_newline=True)
    return environment.from_string(text.read_text(encoding="utf-8"))


def render_html(data: ReportData, drawn: list[Section]) -> str:
    figures = {
        s.key: {"key": s.key, "title": s.title,
                # matplotlib's own SVG: trusted markup, inlined as it is.
                "svg": None if s.figure is None
                else Markup(svg_text(s.figure, prefix=f"{s.key}-"))}
        for s in drawn
    }
    return str(_template().render(
        protocol=data.protocol, status=data.status, as_of=data.as_of,
        generated=data.generated.isoformat(), verification=data.verification,
        figures=figures, cohorts=sections.cohort_rows(data),
        decisions=sections.decision_rows(data), dlts=sections.dlt_rows(data),
        worst=sections.worst_grades(data), grades=sections.GRADES,
        responses=sections.response_rows(data), labs=sections.lab_rows(data),
        worst_labs=sections.worst_lab_rows(data),
        dose_modifications=sections.dose_modification_rows(data), saes=sections.sae_rows(data),
        deviations=sections.deviation_rows(data), queries=sections.query_rows(data),
        reviews=sections.review_rows(data), since_corrected=sections.since_corrected_rows(data),
        checkpoint_size=data.checkpoint_size,
    ))
