"""Which figures a report holds, each made from the gathered values: a section with nothing
recorded gets no figure (the report says "none recorded" there instead of an empty plot)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from matplotlib.figure import Figure

from trialctl.ledger.report import plots, sections
from trialctl.ledger.report.data import ReportData

OFF_STUDY = {"consent-withdrawn": "withdrawn", "off-study": "off study"}


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    figure: Figure | None  # None: nothing recorded


def _day(text: str) -> date:
    return date.fromisoformat(str(text)[:10])


def escalation(data: ReportData) -> Figure | None:
    patients = sections.enrolled(data)
    if not patients:
        return None
    points = [plots.EscalationPoint(p["patient_id"], p.get("cohort") or 0, p["level"],
                                    bool(p.get("dlts")), p.get("status") in OFF_STUDY)
              for p in patients]
    decisions = [plots.DecisionMark(row["cohort"], f"{row['action']} "
                                    f"({row['time'][:10]})")
                 for row in sections.decision_rows(data)]
    levels = [f"L{lv['level']} {lv['dose']} {lv['unit']}" for lv in data.protocol["levels"]]
    mtd = data.status.get("mtd")
    return plots.escalation_chart(points, decisions, levels, mtd["level"] if mtd else None)


def _swim(patient: dict[str, Any]) -> plots.Swim | None:
    doses = [_day(d["given_at"]) for d in patient.get("doses", [])]
    if not doses:
        return None
    first = min(doses)

    def study_day(day: date) -> int:
        return (day - first).days + 1

    responses = [(study_day(_day(r["assessed_on"])), r.get("category") or "baseline")
                 for r in patient.get("responses", []) if not r.get("baseline")]
    ends = [study_day(d) for d in doses] + [day for day, _ in responses]
    ends += [study_day(_day(ae[k])) for ae in patient.get("adverse_events", [])
             for k in ("onset", "resolved_on") if ae.get(k)]
    if patient.get("withdrawn_on"):
        ends.append(study_day(_day(patient["withdrawn_on"])))
    return plots.Swim(patient["patient_id"], patient.get("level"),
                      [study_day(d) for d in doses], responses, max(ends),
                      OFF_STUDY.get(patient.get("status", "")))


def swimmer(data: ReportData) -> Figure | None:
    swims = [s for s in map(_swim, sections.enrolled(data)) if s is not None]
    return plots.swimmer_plot(swims) if swims else None


def heatmap(data: ReportData) -> Figure | None:
    worst = sections.worst_grades(data)
    return plots.grade_heatmap(worst, sections.GRADES) if worst else None


def waterfall(data: ReportData) -> Figure | None:
    rows = [r for r in sections.response_rows(data) if r["best_change_pct"] is not None]
    if not rows:
        return None
    best = {p["patient_id"]: _best_category(p) for p in data.patients}
    return plots.waterfall([(r["patient"], float(r["best_change_pct"]), best[r["patient"]])
                            for r in rows])


def _best_category(patient: dict[str, Any]) -> str:
    order = ("CR", "PR", "SD", "PD")
    found = [r.get("category") for r in patient.get("responses", []) if r.get("category")]
    return min(found, key=lambda c: order.index(c) if c in order else len(order)) \
        if found else ""


def ctc(data: ReportData) -> Figure | None:
    series = sections.ctc_series(data)
    if not series:
        return None
    return plots.ctc_plot({pid: [(_day(d), float(v)) for d, v in points]
                           for pid, points in series.items()})


def figures(data: ReportData) -> list[Section]:
    return [
        Section("escalation", "Dose escalation", escalation(data)),
        Section("adverse-events", "Adverse events by term and worst grade", heatmap(data)),
        Section("swimmer", "Patients on study (swimmer plot)", swimmer(data)),
        Section("waterfall", "Best change in target-lesion sum (waterfall)", waterfall(data)),
        Section("ctc", "Circulating tumour cell counts over time", ctc(data)),
    ]
