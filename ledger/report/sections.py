"""The report's tables, as rows made from the gathered values: pure functions, shared by the
HTML and the PDF so both show the same numbers.

Each reads the status and patient dicts by key: a fact another part of trialctl adds later
(labs, dose changes, serious adverse events) joins the report by adding a section here.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from trialctl.ledger.report.data import ReportData

GRADES = (1, 2, 3, 4, 5)
CTC_KIND = "ctc_count"


def cohort_rows(data: ReportData) -> list[dict[str, Any]]:
    return [{"cohort": c["number"], "level": c["level"], "dose": c["dose"],
             "patients": ", ".join(c["patients"]), "replaced": ", ".join(c["replaced"]),
             "evaluated": c["evaluated"], "dlts": c["dlts"]}
            for c in data.status["cohorts"]]


def decision_rows(data: ReportData) -> list[dict[str, Any]]:
    rows = []
    for d in data.status["decisions"]:
        signer = d.get("signed_by") or {}
        if d.get("mtd_level"):
            action = f"{d['action']}, MTD level {d['mtd_level']}"
        elif d.get("next_level"):
            action = f"{d['action']} → level {d['next_level']}"
        else:
            action = d["action"]
        rows.append({
            "cohort": d["cohort_number"],
            "action": action,
            "reason": d["reason"],
            "override": "override" if d.get("overridden") else "",
            "signer": f"{signer.get('name', '?')} ({signer.get('user_id', '?')}, "
                      f"{signer.get('role', '?')})",
            "meaning": signer.get("meaning", ""),
            "time": signer.get("recorded_at", ""),
            "position": signer.get("position", ""),
        })
    return rows


def dlt_rows(data: ReportData) -> list[dict[str, Any]]:
    rows = []
    for patient in data.patients:
        events = {ae["ae_id"]: ae for ae in patient.get("adverse_events", [])}
        for adjudication in patient.get("dlt_adjudications", []):
            if not adjudication.get("is_dlt"):
                continue
            ae = events.get(adjudication["ae_id"], {})
            rows.append({"patient": patient["patient_id"], "cohort": patient.get("cohort"),
                         "level": patient.get("level"), "ae": adjudication["ae_id"],
                         "term": ae.get("term", ""), "grade": ae.get("grade", ""),
                         "onset": ae.get("onset", ""), "rule": adjudication.get("rule_code"),
                         "counts": _counts(adjudication)})
    return rows


def _counts(adjudication: dict[str, Any]) -> str:
    """Whether the DLT counts now, derived from the current facts, and why not."""
    if adjudication.get("counts"):
        return "yes (override)" if adjudication.get("overridden") else "yes"
    unmet = adjudication.get("unmet") or []
    return "no: " + "; ".join(unmet) if unmet else "no"


def worst_grades(data: ReportData) -> dict[str, dict[int, int]]:
    """Patients by adverse-event term and the worst grade each had of it."""
    worst: dict[str, dict[str, int]] = {}
    for patient in data.patients:
        for ae in patient.get("adverse_events", []):
            by_patient = worst.setdefault(ae["term"], {})
            pid = patient["patient_id"]
            by_patient[pid] = max(by_patient.get(pid, 0), int(ae["grade"]))
    return {term: {g: sum(1 for w in by_patient.values() if w == g) for g in GRADES}
            for term, by_patient in sorted(worst.items())}


def response_rows(data: ReportData) -> list[dict[str, Any]]:
    """Each assessed patient: baseline sum, best % change of the target-lesion sum, best
    response category."""
    rows = []
    for patient in data.patients:
        responses = patient.get("responses", [])
        baseline = next((r for r in responses if r.get("baseline")), None)
        later = [r for r in responses if not r.get("baseline")]
        if baseline is None or not later:
            continue
        base = Decimal(str(baseline["sum_mm"]))
        changes = [(Decimal(str(r["sum_mm"])) - base) / base * 100 for r in later] \
            if base else []
        best = min(changes) if changes else None
        rows.append({
            "patient": patient["patient_id"], "level": patient.get("level"),
            "baseline_mm": str(base),
            "best_change_pct": None if best is None else f"{best:.1f}",
            "responses": " ".join(f"{r['assessed_on']} {r.get('category') or '-'}"
                                  for r in later),
        })
    return rows


def ctc_series(data: ReportData) -> dict[str, list[tuple[str, str]]]:
    """Circulating tumour cell counts over time, by patient: (date, value)."""
    series = {}
    for patient in data.patients:
        points = [(o["observed_on"], o["value"]) for o in patient.get("observations", [])
                  if o.get("kind") == CTC_KIND]
        if points:
            series[patient["patient_id"]] = sorted(points)
    return series


def enrolled(data: ReportData) -> list[dict[str, Any]]:
    """Patients who reached a dose level, in order of enrolment."""
    return sorted((p for p in data.patients if p.get("level") is not None),
                  key=lambda p: (p.get("enrolled_on") or "", p["patient_id"]))
