"""Protocol deviations: those the site records, and those trialctl finds in the record.

A detected deviation is derived from the patient's current facts each time state is read,
never stored, so a correction that removes its cause removes it too:

- eligibility: enrolled, then found ineligible by a corrected screening value;
- dosing: a dose on a date its course and day do not name (day N of a course is N - 1
  days after the course's first day-1 dose), or on a day the agent is not given;
- schedule: a response re-assessment outside the `[response]` window of the visit it
  stands for (`ResponseSchedule.place`, read against the current baseline date); a
  response, observation or lab done early or late for the visit it states
  (`domain/schedule.py` `outside_window`);
- prohibited-medication: a con-med the protocol prohibits taken while on study
  (`domain/conmeds.py`).

A recorded deviation citing a record (its `record_version`) acknowledges what is detected
on that record: the deviation is shown once, as recorded.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import TYPE_CHECKING, Any

from trialctl.domain.conmeds import prohibited_uses
from trialctl.domain.dose_modifications import course_day_one, dose_date
from trialctl.domain.protocol import Protocol
from trialctl.domain.rules import parse_day
from trialctl.domain.schedule import outside_window

if TYPE_CHECKING:
    from trialctl.domain.patient import Patient

RECORDED = "recorded"
DETECTED = "detected"


def _found(category: str, severity: str, text: str, version: int) -> dict[str, Any]:
    return {"source": DETECTED, "category": category, "severity": severity, "text": text,
            "record": None, "record_version": version, "version": None}


def detected(patient: Patient, protocol: Protocol) -> list[dict[str, Any]]:
    """Every deviation the patient's current record shows, in record order."""
    found = []
    eligibility = patient.eligibility_deviation()
    if eligibility is not None:
        found.append(_found("eligibility", "major", eligibility["text"],
                            int(eligibility["corrected_version"])))
    found += off_schedule_doses(patient.doses(), protocol)
    # A response stating its visit is read against that visit's window instead.
    found += late_assessments([r for r in patient.responses() if r.get("visit") is None
                               or r["baseline"]], protocol)
    found += [_found("schedule", "minor", text, version)
              for version, text in outside_window(patient, protocol)]
    start = None if patient.enrolled_on is None else parse_day(patient.enrolled_on, "enrolled")
    for use in prohibited_uses(patient.conmeds(), protocol.concomitant_medications, start,
                               patient.left_on):
        found.append(_found("prohibited-medication", "major", use.text, use.version))
    return sorted(found, key=lambda d: int(d["record_version"]))


def off_schedule_doses(
    doses: list[dict[str, Any]], protocol: Protocol
) -> list[dict[str, Any]]:
    """Doses given on a date or day the protocol's dosing schedule does not allow."""
    agents = {a.name: a for a in protocol.agents}
    found = []
    first_days: dict[int, date | None] = {}
    for dose in doses:
        agent, course, day, on = agents.get(dose["agent"]), dose["course"], dose["day"], \
            dose_date(dose)
        if agent is not None and day not in agent.days:
            found.append(_found("dosing", "minor",
                                f"{dose['agent']} given on day {day} of course {course}, "
                                "not a dosing day of the protocol", int(dose["version"])))
            continue
        if course not in first_days:  # each course's day 1 found once, not per dose
            first_days[course] = course_day_one(doses, course)
        first = first_days[course]
        expected = None if first is None else first.toordinal() + day - 1
        if expected is not None and on.toordinal() != expected:
            found.append(_found(
                "dosing", "minor",
                f"{dose['agent']} course {course} day {day} given on {on}; the schedule "
                f"names {date.fromordinal(expected)}", int(dose["version"]),
            ))
    return found


def late_assessments(
    responses: list[dict[str, Any]], protocol: Protocol
) -> list[dict[str, Any]]:
    """Re-assessments outside the window of the scheduled one they stand for."""
    if not responses:
        return []
    schedule = protocol.response
    baseline = parse_day(responses[0]["assessed_on"], "baseline assessment")
    found = []
    for response in responses[1:]:
        day = parse_day(response["assessed_on"], "assessment")
        number, off = schedule.place(baseline, day)
        if off:
            due = schedule.due(baseline, number)
            found.append(_found(
                "schedule", "minor",
                f"response assessed on {day}, outside the window of week "
                f"{number * schedule.assessment_interval_weeks} (due {due} "
                f"+/- {schedule.window_days} days)", int(response["version"]),
            ))
    return found


def shown(
    recorded: Iterable[dict[str, Any]], found: Iterable[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The deviations a reader sees: each recorded one (noting what detected deviation it
    acknowledges), then each detected one no recorded deviation cites."""
    listed = [
        {"source": RECORDED, "category": r["category"], "severity": r["severity"],
         "text": r["text"], "record": r["record"], "record_version": r["record_version"],
         "version": r["version"], "acknowledges": None}
        for r in recorded
    ]
    cited = {d["record_version"]: d for d in listed if d["record_version"] is not None}
    for deviation in found:
        acknowledged = cited.get(deviation["record_version"])
        if acknowledged is None:
            listed.append({**deviation, "acknowledges": None})
        elif acknowledged["acknowledges"] is None:
            acknowledged["acknowledges"] = deviation["text"]
        else:
            acknowledged["acknowledges"] += f"; {deviation['text']}"
    return listed


def located(
    listed: Iterable[dict[str, Any]], positions: dict[int, int]
) -> list[dict[str, Any]]:
    """The deviations with each detected one's record named by its ledger position too
    (`positions`: record version -> position, which only the ledger knows)."""
    return [
        {**d, "record": positions.get(int(d["record_version"]))}
        if d["source"] == DETECTED and d["record_version"] is not None else d
        for d in listed
    ]


def deviation_counts(summaries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per patient with any: how many deviations, recorded and detected, and the majors."""
    counts = []
    for summary in summaries:
        listed = summary.get("deviations") or []
        if not listed:
            continue
        counts.append({
            "patient_id": summary["patient_id"],
            "total": len(listed),
            "recorded": sum(1 for d in listed if d["source"] == RECORDED),
            "detected": sum(1 for d in listed if d["source"] == DETECTED),
            "major": [d["text"] for d in listed if d["severity"] == "major"],
        })
    return sorted(counts, key=lambda c: str(c["patient_id"]))
