"""The protocol's assessment schedule, and what of it each patient has done, is due or is
overdue: derived from the patient's facts whenever it is read, never stored.

A `[[schedule]]` table names one assessment, what records it (`response`, an
`observation` of a declared code, or any `lab`), and when: at the listed `weeks` after
week 0, then `every_weeks` after the last listed one, or once in `each_course` given.
Week 0 is the patient's first course 1 dose (their enrollment before any dose). Each
occurrence is on time within +/- `window_days`. A patient's schedule runs until they left
the study (off study, consent withdrawn) or died; until then, up to the day it is read. A
closed trial's schedule is read as of its closing day (`as_of`).

    [[schedule]]
    code = "recist"
    name = "Tumour assessment (RECIST)"
    records = "response"
    weeks = [0]
    every_weeks = 9
    window_days = 7
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from trialctl.domain.facts import OffStudy, Response
from trialctl.domain.protocol_values import (
    Table,
    fail,
    read_bool,
    read_int,
    read_list,
    read_name,
    read_str,
    refuse_duplicates,
)

if TYPE_CHECKING:  # the patient and protocol read protocol files, which import this module
    from trialctl.domain.patient import Patient
    from trialctl.domain.protocol import Protocol

__all__ = ["RECORDS", "ScheduledAssessment", "as_of", "occurrences", "outside_window",
           "patient_schedule", "placed_visits", "read_schedule", "visits"]

RECORDS = ("response", "observation", "lab")
_KEYS = ("code", "name", "records", "observation", "weeks", "every_weeks", "each_course",
         "window_days")


@dataclass(frozen=True)
class ScheduledAssessment:
    code: str
    name: str
    records: str  # response | observation | lab
    window_days: int
    observation: str | None = None
    weeks: tuple[int, ...] = ()
    every_weeks: int | None = None
    each_course: bool = False

    def due_days(self, week_zero: date, until: date) -> list[date]:
        """The dates this assessment falls due on from week 0 up to `until`."""
        days = [week_zero + timedelta(weeks=w) for w in self.weeks]
        if self.every_weeks is not None:
            week = (self.weeks[-1] if self.weeks else 0) + self.every_weeks
            while (day := week_zero + timedelta(weeks=week)) <= until:
                days.append(day)
                week += self.every_weeks
        return [d for d in days if d <= until]

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"code": self.code, "name": self.name,
                                  "records": self.records, "window_days": self.window_days}
        if self.observation is not None:
            out["observation"] = self.observation
        if self.weeks:
            out["weeks"] = list(self.weeks)
        if self.every_weeks is not None:
            out["every_weeks"] = self.every_weeks
        if self.each_course:
            out["each_course"] = True
        return out


def occurrences(
    assessment: ScheduledAssessment,
    due_days: Sequence[date],
    done_on: Sequence[date],
    today: date,
    versions: Sequence[int] | None = None,
    *,
    due_visits: Sequence[str] | None = None,
    stated: Sequence[str | None] | None = None,
) -> list[dict[str, Any]]:
    """Each occurrence with its window and state: done (a record inside its window),
    overdue (the window closed without one), due (the window is open) or upcoming. With
    the records' `versions` (beside `done_on`), a done occurrence names the record that
    did it (`done_record`): the visit that record belongs to.

    With each occurrence's visit name (`due_visits`) and the visit each record states
    (`stated`, beside `done_on`), a record stating a visit does that visit's occurrence
    whatever its date (`visit_source` "recorded", `in_window` false when outside), and
    only the records stating none are placed by their dates ("derived")."""
    window = timedelta(days=assessment.window_days)
    given: Sequence[int | None] = versions if versions is not None else [None] * len(done_on)
    visits_of: Sequence[str | None] = stated if stated is not None else [None] * len(done_on)
    numbered = list(zip(done_on, given, visits_of, strict=True))
    left = sorted((d for d in numbered if d[2] is None), key=lambda d: (d[0], d[1] or 0))
    claimed: dict[str | None, tuple[date, int | None, str | None]] = {}
    for record in sorted((d for d in numbered if d[2] is not None), key=lambda d: d[1] or 0):
        claimed.setdefault(record[2], record)  # the first record stating a visit does it
    rows = []
    for number, due in enumerate(due_days):
        opens, closes = due - window, due + window
        name = None if due_visits is None else due_visits[number]
        found = claimed.get(name) if name is not None else None
        source = "recorded" if found is not None else None
        if found is None:
            found = next((d for d in left if opens <= d[0] <= closes), None)
            if found is not None:
                left.remove(found)
                source = "derived"
        match = None if found is None else found[0]
        if found is not None:
            state = "done"
        elif closes < today:
            state = "overdue"
        elif opens <= today:
            state = "due"
        else:
            state = "upcoming"
        rows.append({
            "assessment": assessment.code, "name": assessment.name, "occurrence": number + 1,
            "due_on": due.isoformat(), "window": f"{opens.isoformat()}..{closes.isoformat()}",
            "state": state, "done_on": None if match is None else match.isoformat(),
            "done_record": None if found is None else found[1],
            "visit": name, "visit_source": source,
            "in_window": None if match is None else opens <= match <= closes,
        })
    return rows


def read_schedule(root: Table, observation_codes: Sequence[str]) -> tuple[ScheduledAssessment, ...]:
    tables = root.tables("schedule", _KEYS, required=False)
    items = tuple(_read_item(t, observation_codes) for t in tables)
    refuse_duplicates(
        [(t.at("code"), a.code) for t, a in zip(tables, items, strict=True)], "schedule code"
    )
    return items


def _read_item(t: Table, observation_codes: Sequence[str]) -> ScheduledAssessment:
    records = read_str(t.req("records"), t.at("records"))
    if records not in RECORDS:
        fail(t.at("records"), f"unknown record kind {records!r} (allowed: {', '.join(RECORDS)})")
    observation = t.opt_str("observation")
    if (records == "observation") != (observation is not None):
        fail(t.at("observation"), "needed with records = 'observation', and only then")
    if observation is not None and observation not in observation_codes:
        fail(t.at("observation"), f"{observation!r} is not a declared observation code")
    weeks_raw = t.get("weeks")
    weeks: tuple[int, ...] = ()
    if weeks_raw is not None:
        path = t.at("weeks")
        weeks = tuple(read_int(w, f"{path}[{i}]") for i, w in enumerate(read_list(weeks_raw, path)))
        if list(weeks) != sorted(set(weeks)):
            fail(path, "weeks must rise, each listed once")
    every_raw = t.get("every_weeks")
    every = None if every_raw is None else read_int(every_raw, t.at("every_weeks"), minimum=1)
    each_course = t.has("each_course") and read_bool(t.req("each_course"), t.at("each_course"))
    if each_course == bool(weeks or every):
        fail(t.at("weeks"), "give weeks and/or every_weeks, or each_course = true (not both)")
    window = read_int(t.req("window_days"), t.at("window_days"))
    gaps = [7 * (b - a) for a, b in itertools.pairwise(weeks)]
    if every is not None:
        gaps.append(7 * every)
    if gaps and 2 * window >= min(gaps):
        fail(t.at("window_days"), f"a window of +/- {window} days overlaps the next occurrence")
    return ScheduledAssessment(
        code=read_name(t.req("code"), t.at("code")), name=read_str(t.req("name"), t.at("name")),
        records=records, window_days=window, observation=observation, weeks=weeks,
        every_weeks=every, each_course=each_course,
    )


def as_of(today: date, closed_on: str | None) -> date:
    """The day a trial's schedule is read on: today, or the closing day of a closed trial
    (nothing falls due, and nothing turns overdue, after the trial has closed)."""
    return today if closed_on is None else min(today, date.fromisoformat(closed_on))


def patient_schedule(patient: Patient, protocol: Protocol, today: date,
                     due_by: date | None = None) -> list[dict[str, Any]]:
    """Every occurrence of the protocol's schedule for one patient whose window opens by
    `due_by` (default: today), with its state on `today`. Nothing before enrollment."""
    start = _week_zero(patient)
    if start is None:
        return []
    horizon = due_by or today
    end = _followed_until(patient)
    rows: list[dict[str, Any]] = []
    for assessment in protocol.schedule:
        window = timedelta(days=assessment.window_days)
        if assessment.each_course:
            courses = sorted({d["course"] for d in patient.doses()})
            named = [(day, f"course {c}") for c in courses
                     if (day := patient.first_dose_day(c)) is not None]
        else:
            named = [(day, f"week {(day - start).days // 7}")
                     for day in assessment.due_days(start, horizon + window)]
        named = [(d, n) for d, n in named if d - window <= horizon and (end is None or d <= end)]
        done = _done(patient, assessment)
        found = occurrences(assessment, [d for d, _ in named], [d for d, _, _ in done], today,
                            [v for _, v, _ in done], due_visits=[n for _, n in named],
                            stated=[s for _, _, s in done])
        rows += [{"patient_id": patient.patient_id, **row} for row in found]
    return rows


def placed_visits(patient: Patient, protocol: Protocol) -> dict[int, tuple[str, str]]:
    """The visit each of the patient's responses, observations and labs belongs to, by
    record version, and where it comes from: the visit the record states ("recorded"), or
    the scheduled occurrence its date and the protocol's windows assign it ("derived").
    A record stating a visit the schedule has not reached yet keeps its stated name."""
    records = _records(patient)
    if not records:
        return {}
    rows = patient_schedule(patient, protocol, _read_through(records))
    start = _week_zero(patient)
    out: dict[int, tuple[str, str]] = {
        version: (stated, "recorded") for version, _, stated in records if stated is not None}
    for row in rows:
        if row["done_record"] is None or start is None:
            continue
        week = (date.fromisoformat(row["due_on"]) - start).days // 7
        out[int(row["done_record"])] = (
            f"{row['assessment']} {row['occurrence']}, week {week} (due {row['due_on']})",
            str(row["visit_source"]))
    return out


def outside_window(patient: Patient, protocol: Protocol) -> list[tuple[int, str]]:
    """Records whose stated visit's window their date misses: (version, what and when).
    Read from the current dates each time; the record itself stays as entered."""
    records = _records(patient)
    if not any(stated is not None for _, _, stated in records):
        return []
    rows = patient_schedule(patient, protocol, _read_through(records))
    found = []
    for row in rows:
        if row["visit_source"] != "recorded" or row["in_window"]:
            continue
        done, due = date.fromisoformat(row["done_on"]), date.fromisoformat(row["due_on"])
        when = "early" if done < due else "late"
        found.append((int(row["done_record"]), (
            f"{row['name']} done on {done}, {abs((done - due).days)} days {when} for its "
            f"recorded visit {row['visit']} (due {due}, window {row['window']})")))
    return found


def _read_through(records: list[tuple[int, str, str | None]]) -> date:
    """The day the schedule is read through to place records: a year past the last one,
    so a visit stated ahead of its window (an early assessment) is on it too."""
    return max(date.fromisoformat(d) for _, d, _ in records) + timedelta(days=366)


def _week_zero(patient: Patient) -> date | None:
    start = patient.first_dose_day(1)
    if start is None and patient.enrolled_on is not None:
        start = date.fromisoformat(patient.enrolled_on)
    return start


def visits(patient: Patient, protocol: Protocol) -> dict[int, str]:
    """The visit each of the patient's responses, observations and labs belongs to, by
    record version ("ctc 2, week 3 (due 2026-02-01)"); a record no occurrence claims and
    stating none has none."""
    return {version: text for version, (text, _) in placed_visits(patient, protocol).items()}


def _records(patient: Patient) -> list[tuple[int, str, str | None]]:
    """Every response, observation and lab of the patient: (version, date, stated visit)."""
    return ([(r["version"], r["assessed_on"], r.get("visit")) for r in patient.kept(Response)]
            + [(o["version"], o["observed_on"], o.get("visit")) for o in patient.observations()]
            + [(lab["version"], lab["collected_on"], lab.get("visit")) for lab in patient.labs()])


def _followed_until(patient: Patient) -> date | None:
    """The last day the patient is followed: leaving the study or death, else open."""
    ends = [patient.withdrawn_on, patient.died_on,
            *(o["off_on"] for o in patient.kept(OffStudy))]
    days = [date.fromisoformat(d) for d in ends if d is not None]
    return min(days) if days else None


def _done(
    patient: Patient, assessment: ScheduledAssessment
) -> list[tuple[date, int, str | None]]:
    """The records that may do this assessment: (date, record version, stated visit)."""
    match assessment.records:
        case "response":
            found = [(r["assessed_on"], r["version"], r.get("visit"))
                     for r in patient.kept(Response)]
        case "observation":
            found = [(o["observed_on"], o["version"], o.get("visit"))
                     for o in patient.observations() if o["kind"] == assessment.observation]
        case _:
            found = [(lab["collected_on"], lab["version"], lab.get("visit"))
                     for lab in patient.labs()]
    return [(date.fromisoformat(t), int(v), visit) for t, v, visit in found]
