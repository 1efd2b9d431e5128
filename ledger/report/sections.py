"""The report's tables, as rows made from the gathered values: pure functions, shared by the
HTML and the PDF so both show the same numbers.

Each reads the status and patient dicts by key (the `Patient.state()` the CLI's `patient`
shows) or the review and query rows `review status` and `query list` give: a fact another
part of trialctl adds later joins the report by adding a section here.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from trialctl.domain.patient import sae_report_states
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


def lab_rows(data: ReportData) -> list[dict[str, Any]]:
    """Every graded lab, by patient, test and collection date: the value as recorded, in
    the grading's canonical unit, and its CTCAE grade."""
    rows = []
    for patient in data.patients:
        for lab in patient.get("labs", []):
            rows.append({
                "patient": patient["patient_id"], "test": lab["test"],
                "collected_on": lab["collected_on"],
                "visit": lab_visit(lab),
                "value": f"{lab['value']} {lab['unit']}",
                "canonical": f"{lab['canonical_value']} {lab['canonical_unit']}",
                "grade": "" if lab.get("grade") is None else lab["grade"],
                "grading": lab.get("grading") or "",
            })
    return sorted(rows, key=lambda r: (r["patient"], r["test"], r["collected_on"]))


def lab_visit(lab: dict[str, Any]) -> str:
    """The visit a lab belongs to as the report shows it: the visit the record states
    (`week 9`), as SDTM LB's VISIT names it, with its course and day beside it; else its
    course and day."""
    course_day = (f"course {lab['course']} day {lab['day']}"
                  if lab.get("course") is not None else "")
    stated = lab.get("recorded_visit")
    if stated is None or stated == f"course {lab.get('course')}":
        return course_day or ("" if stated is None else str(stated))
    return f"{stated} ({course_day})" if course_day else str(stated)


def worst_lab_rows(data: ReportData) -> list[dict[str, Any]]:
    """Per lab test and patient: how many values, the worst grade and when it was first
    reached."""
    worst: dict[tuple[str, str], dict[str, Any]] = {}
    for row in lab_rows(data):
        key = (row["test"], row["patient"])
        seen = worst.setdefault(key, {"test": row["test"], "patient": row["patient"],
                                      "values": 0, "worst_grade": None, "on": ""})
        seen["values"] += 1
        grade = row["grade"]
        if grade != "" and (seen["worst_grade"] is None or grade > seen["worst_grade"]):
            seen["worst_grade"], seen["on"] = grade, row["collected_on"]
    return [{**w, "worst_grade": "" if w["worst_grade"] is None else w["worst_grade"]}
            for _, w in sorted(worst.items())]


def dose_modification_rows(data: ReportData) -> list[dict[str, Any]]:
    """Every dose change (hold, reduce, re-escalate, stop) with its course and reason."""
    rows = []
    for patient in data.patients:
        for change in patient.get("dose_changes", []):
            rows.append({
                "patient": patient["patient_id"], "course": change.get("course"),
                "action": change["action"],
                "to_level": "" if change.get("to_level") is None else change["to_level"],
                "effective_on": change.get("effective_on") or "",
                "reason": change.get("reason") or "", "text": change.get("text") or "",
            })
    return sorted(rows, key=lambda r: (r["patient"], str(r["effective_on"])))


def sae_rows(data: ReportData) -> list[dict[str, Any]]:
    """Every serious adverse event's expedited report on the report's date: due, reported,
    reported late or overdue (the states `status` shows)."""
    terms = {(p["patient_id"], ae["ae_id"]): ae for p in data.patients
             for ae in p.get("adverse_events", [])}
    rows = []
    for report in sae_report_states(data.patients, data.generated.date()):
        ae = terms.get((report["patient_id"], report["ae_id"]), {})
        rows.append({
            "patient": report["patient_id"], "ae": report["ae_id"],
            "term": ae.get("term", ""), "grade": ae.get("grade", ""),
            "serious": ", ".join(report.get("serious") or ()),
            "site_aware_on": report.get("site_aware_on") or "",
            "report_due": report["report_due"], "reported_on": report.get("reported_on") or "",
            "report": report["report"],
        })
    return rows


def deviation_rows(data: ReportData) -> list[dict[str, Any]]:
    """Every protocol deviation, recorded or detected from the facts, with its severity."""
    return [{"patient": patient["patient_id"], "source": d["source"],
             "category": d.get("category") or "", "severity": d.get("severity") or "",
             "record": "" if d.get("record") is None else f"#{d['record']}",
             "text": d["text"]}
            for patient in data.patients for d in patient.get("deviations", [])]


def query_rows(data: ReportData) -> list[dict[str, Any]]:
    """Every data query: its record, state, age in days on the report's date, thread."""
    return [{"query": q["query_id"], "patient": q["patient_id"], "record": f"#{q['record']}",
             "state": q["state"], "age_days": q["age_days"],
             "raised": f"{q['raised_by']} {q['raised_at']}", "text": q["text"],
             "thread": "; ".join(f"{t['what']} by {t['by']}"
                                 + (f": {t['text']}" if t.get("text") else "")
                                 for t in q["thread"]),
             "corrections": ", ".join(f"#{c}" for c in q["corrections"])}
            for q in data.queries]


def review_rows(data: ReportData) -> list[dict[str, Any]]:
    """Source data verification per patient: records reviewed, still unreviewed, and
    reviews a later correction invalidated (ledger positions)."""
    return [{"patient": r["patient_id"], "reviewed": len(r["reviewed"]),
             "unreviewed": len(r["unreviewed"]),
             "unreviewed_records": " ".join(f"#{n}" for n in r["unreviewed"]),
             "invalidated": "; ".join(r["invalidations"])}
            for r in data.reviews]


def _decision_counts(side: dict[str, Any]) -> str:
    step = side.get("recommendation") or {"action": "out of the 3+3 rules"}
    return f"{side['dlts']} DLT(s) in {side['evaluated']} evaluated: {step['action']}"


def since_corrected_rows(data: ReportData) -> list[dict[str, Any]]:
    """Each decision made on data since corrected: what it counted then, what the current
    facts give, and the entries involved (the `verify --projections` warning)."""
    return [{"cohort": d["cohort"], "decision": d["action"], "entry": f"#{d['position']}",
             "then": _decision_counts(d["recorded"]), "now": _decision_counts(d["rederived"]),
             "patients": "; ".join(
                 f"{p['patient_id']} {p['then']} → {p['now']} (records "
                 + ", ".join(f"#{n}" for n in p["records"]) + "; corrected by "
                 + ", ".join(f"#{n}" for n in p["corrections"]) + ")"
                 for p in d["patients"])}
            for d in data.since_corrected]
