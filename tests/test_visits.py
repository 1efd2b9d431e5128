"""The visit a response, observation or lab states it belongs to: checked against the
protocol's schedule when recorded or corrected, used by `schedule` and `patient` instead of
the visit its date would place it on, a date outside its window shown as a deviation; an
entry written before records stated visits still reads (no visit) and verifies."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.co_signed_site import staffed
from tests.conftest import Result, assert_one_line_error
from tests.signed_site import SignedSite
from tests.trial_helpers import NOW, day, dose_escalated, enrolled_patient, nct_protocol
from trialctl.domain.facts import Correction, Lab, Observation, Response
from trialctl.domain.patient import Patient
from trialctl.domain.recist import TargetLesion
from trialctl.domain.rules import TrialRuleError
from trialctl.domain.schedule import patient_schedule
from trialctl.domain.trial import Trial
from trialctl.domain.visits import check_visit
from trialctl.ledger.export_sdtm import _lab_visit
from trialctl.ledger.mapper import EntryMapper
from trialctl.ledger.report.sections import lab_visit

SCHEDULE = nct_protocol().schedule
WEEK_ZERO = 3  # the first course 1 dose of the in-process patient: day 3


@pytest.mark.parametrize(("records", "observation", "text", "expected"), [
    ("observation", "ctc_count", "week 6", "week 6"),
    ("observation", "ctc_count", " Week  18 ", "week 18"),  # every 9 weeks after week 9
    ("observation", "p_akt", "week 9", "week 9"),
    ("response", None, "week 27", "week 27"),
    ("lab", None, "course 2", "course 2"),
    ("lab", None, "none", None),
    ("lab", None, None, None),
])
def test_a_visit_the_schedule_has_for_the_assessment_is_kept_written_one_way(
    records: str, observation: str | None, text: str | None, expected: str | None,
) -> None:
    assert check_visit(SCHEDULE, records, observation, text) == expected


@pytest.mark.parametrize(("records", "observation", "text", "rule", "message"), [
    # No assessment of the schedule falls on it: the nearest visit is named.
    ("observation", "ctc_count", "week 7", "schedule-visit",
     "no visit 'week 7' on the protocol's schedule; nearest: 'week 6'"),
    ("observation", "ctc_count", "week 4", "schedule-visit", "nearest: 'week 3'"),
    ("observation", "ctc_count", "wek 9", "schedule-visit", "nearest: 'week 9'"),
    ("lab", None, "cycle 2", "schedule-visit", "nearest: 'course 2'"),
    ("lab", None, "course 0", "schedule-visit", "nearest: 'course 1'"),
    ("lab", None, 9, "schedule-visit", "a visit is named 'week N' or 'course N', not 9"),
    # The visit exists, but for other assessments.
    ("observation", "p_akt", "week 3", "visit-assessment",
     "visit 'week 3' does not schedule a p_akt; its visits: p_akt: week 0, 9"),
    ("response", None, "week 6", "visit-assessment",
     "its visits: recist: week 0, then every 9"),
    ("lab", None, "week 9", "visit-assessment", "its visits: labs: course N (each course)"),
    ("observation", "ctc_count", "course 1", "visit-assessment", "ctc: week 0, 3, 6, 9"),
])
def test_a_visit_off_the_schedule_or_not_scheduling_the_assessment_is_refused(
    records: str, observation: str | None, text: Any, rule: str, message: str,
) -> None:
    with pytest.raises(TrialRuleError) as refused:
        check_visit(SCHEDULE, records, observation, text)
    assert refused.value.rule == rule
    assert message in str(refused.value)


def _dosed() -> tuple[Trial, Patient]:
    trial = Trial.register(nct_protocol(), NOW)
    patient = enrolled_patient(trial, "P001")
    dose_escalated(patient, trial, WEEK_ZERO)
    return trial, patient


def _ctc(patient: Patient, trial: Trial, offset: int, visit: str | None) -> int:
    patient.observe(Observation(kind="ctc_count", value="4", observed_on=day(offset),
                                visit=visit), trial.protocol, NOW)
    return int(patient.version)


def _observation(patient: Patient, trial: Trial, version: int) -> dict[str, Any]:
    listed = patient.state(trial.protocol)["observations"]
    return next(o for o in listed if o["version"] == version)


def _ctc_rows(patient: Patient, trial: Trial) -> list[dict[str, Any]]:
    today = date.fromisoformat(day(WEEK_ZERO + 7 * 10))
    return [r for r in patient_schedule(patient, trial.protocol, today)
            if r["assessment"] == "ctc"]


def test_a_stated_visit_places_the_record_and_its_late_date_is_a_deviation() -> None:
    trial, patient = _dosed()
    derived = _ctc(patient, trial, WEEK_ZERO + 21, None)  # week 3, on the day
    late = _ctc(patient, trial, WEEK_ZERO + 42 + 5, "week 6")  # window +/- 3 days
    early = _ctc(patient, trial, WEEK_ZERO + 63 - 4, "Week 9")

    assert _observation(patient, trial, derived)["visit_source"] == "derived"
    assert _observation(patient, trial, derived)["visit"].startswith("ctc 2, week 3")
    shown = _observation(patient, trial, late)
    assert (shown["recorded_visit"], shown["visit_source"]) == ("week 6", "recorded")
    assert shown["visit"] == f"ctc 3, week 6 (due {day(WEEK_ZERO + 42)})"

    rows = {r["visit"]: r for r in _ctc_rows(patient, trial)}
    assert (rows["week 6"]["state"], rows["week 6"]["done_record"]) == ("done", late)
    assert (rows["week 6"]["visit_source"], rows["week 6"]["in_window"]) == ("recorded", False)
    assert (rows["week 3"]["visit_source"], rows["week 3"]["in_window"]) == ("derived", True)
    assert rows["week 9"]["done_record"] == early

    deviations = [d for d in patient.deviations(trial.protocol) if d["category"] == "schedule"]
    assert [(d["record_version"], d["source"]) for d in deviations] == [
        (late, "detected"), (early, "detected")]
    assert "5 days late for its recorded visit week 6" in deviations[0]["text"]
    assert "4 days early for its recorded visit week 9" in deviations[1]["text"]


def test_without_a_stated_visit_the_late_record_does_no_visit() -> None:
    trial, patient = _dosed()
    version = _ctc(patient, trial, WEEK_ZERO + 42 + 5, None)
    assert _observation(patient, trial, version)["visit"] is None
    assert not [d for d in patient.deviations(trial.protocol) if d["category"] == "schedule"]


def test_a_refused_visit_records_nothing() -> None:
    trial, patient = _dosed()
    before = patient.version
    with pytest.raises(TrialRuleError, match="nearest: 'course 1'"):
        patient.record_lab(Lab(test="anc", value="1500", unit="/mm3", collected_on=day(5),
                               course=None, day=None, uln=None, lln=None, visit="cycle 1"),
                           trial.protocol, NOW)
    with pytest.raises(TrialRuleError, match="does not schedule a response"):
        patient.assess_response(Response(
            assessed_on=day(1), baseline=True, new_lesions=False, non_target_progression=False,
            lesions=(TargetLesion("T1", "liver", 40),), visit="week 3"), trial.protocol, NOW)
    assert patient.version == before


def test_a_correction_changes_the_visit_checked_like_a_new_record() -> None:
    trial, patient = _dosed()
    version = _ctc(patient, trial, WEEK_ZERO + 42 + 5, "week 6")

    def correct(visit: object) -> None:
        patient.correct(Correction(target_version=version, changes={"visit": visit},
                                   reason="source document", query=None), trial.protocol, NOW)

    with pytest.raises(TrialRuleError, match="nearest: 'week 6'"):
        correct("week 5")
    correct("week 9")
    shown = _observation(patient, trial, version)
    assert (shown["recorded_visit"], shown["visit_source"]) == ("week 9", "recorded")
    assert patient.corrections[-1]["old_values"] == {"visit": "week 6"}
    correct("none")  # the visit is placed by the date again: 5 days late is no visit
    shown = _observation(patient, trial, version)
    assert (shown["recorded_visit"], shown["visit"], shown["visit_source"]) == (
        None, None, None)


@pytest.mark.parametrize("event", [
    Patient.ObservationRecorded, Patient.LabRecorded])
def test_an_entry_from_before_visits_reads_as_stating_none(event: Any) -> None:
    assert event.class_version == 2
    state: dict[str, Any] = {"value": "4"}
    event.upcast_v1_v2(state)
    assert state == {"value": "4", "visit": None}


def test_a_response_from_before_visits_reads_as_stating_none() -> None:
    state: dict[str, Any] = {"category": "SD"}
    Patient.ResponseAssessed.upcast_v2_v3(state)
    assert state == {"category": "SD", "visit": None}


# ------------------------------------------------------------------ as a user meets it


def _as_before_visits(self: EntryMapper, domain_event: Any) -> Any:
    """The entry the previous event versions wrote: no `visit`, no class version."""
    stored = _ORIGINAL(self, domain_event)
    draft = json.loads(stored.state)
    payload = draft["payload"]
    if type(domain_event).__name__ in ("ObservationRecorded", "LabRecorded"):
        payload.pop("visit")
        payload.pop("class_version", None)
    return type(stored)(originator_id=stored.originator_id,
                        originator_version=stored.originator_version,
                        topic=stored.topic, state=json.dumps(draft).encode("utf-8"))


_ORIGINAL = EntryMapper.to_stored_event


def test_visits_through_the_cli_beside_an_entry_from_before_visits(
    ledger_url: str, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    app, story = staffed(ledger_url, nct_protocol())
    try:
        patient = story.new_patient(0)
        story.dose_course(patient, 1, 1, 6)  # week 0: day 6
        with monkeypatch.context() as patched:
            patched.setattr(EntryMapper, "to_stored_event", _as_before_visits)
            story.record("mona", patient, Observation(
                kind="ctc_count", value="3", observed_on=story.day(6)))
    finally:
        app.close()
    week_3 = (story.start + timedelta(days=6 + 21 + 4)).isoformat()  # a day late

    site = SignedSite(ledger_url)

    def run(*args: str, user: str | None = "mona") -> Result:
        return site.run(*args, user=user, check=False)

    refused = run("record", "observe", patient, "--kind", "ctc_count", "--value", "5",
                  "--date", week_3, "--visit", "week 4")
    assert_one_line_error(refused, "[rule: schedule-visit]", "nearest: 'week 3'")
    recorded = run("record", "observe", patient, "--kind", "ctc_count", "--value", "5",
                   "--date", week_3, "--visit", "week 3", "--json")
    assert recorded.returncode == 0, recorded
    lines = tmp_path / "visit.jsonl"
    lines.write_text(json.dumps({
        "command": "lab", "patient": patient, "test": "anc", "value": "1500", "unit": "/mm3",
        "date": story.day(6), "course": 1, "day": 1, "visit": "course 1"}) + "\n")
    assert run("record", "--from", str(lines)).returncode == 0

    state = json.loads(run("patient", patient, "--json", user=None).stdout)["patient"]
    old, new = state["observations"]
    assert "visit" not in _what(run, old["version"])  # as the old version stored it
    assert "visit=week 3" in _what(run, new["version"])
    assert (old["recorded_visit"], old["visit_source"]) == (None, "derived")
    assert (new["recorded_visit"], new["visit_source"]) == ("week 3", "recorded")
    assert state["labs"][0]["recorded_visit"] == "course 1"
    late = [d for d in state["deviations"] if d["category"] == "schedule"]
    assert [d["record_version"] for d in late] == [new["version"]]

    rows = json.loads(run("schedule", "--patient", patient, "--json", user=None).stdout)
    ctc = {r["visit"]: r for r in rows if r["assessment"] == "ctc"}
    assert (ctc["week 0"]["visit_source"], ctc["week 3"]["visit_source"]) == (
        "derived", "recorded")
    verified = run("verify", user=None)
    assert verified.returncode == 0, verified


def _what(run: Any, version: int) -> str:
    """What `log` says the patient's entry at `version` stored."""
    shown = run("log", "--type", "ObservationRecorded", "--json", user=None).stdout
    for line in shown.splitlines():
        entry = json.loads(line)
        if entry["aggregate_version"] == version:
            return str(entry["what"])
    raise AssertionError(f"no ObservationRecorded at version {version}")


def test_sdtm_lb_names_the_visit_a_lab_states_else_its_course() -> None:
    assert _lab_visit({"course": 1, "visit": "course 2"}) == {"VISITNUM": 2, "VISIT": "COURSE 2"}
    assert _lab_visit({"course": 3, "visit": "week 9"}) == {"VISITNUM": 3, "VISIT": "WEEK 9"}
    assert _lab_visit({"course": 1, "visit": None}) == {"VISITNUM": 1, "VISIT": "COURSE 1"}
    assert _lab_visit({"course": None, "visit": None}) == {"VISITNUM": "", "VISIT": ""}


def test_the_report_names_the_visit_a_lab_states_beside_its_course_and_day() -> None:
    assert lab_visit({"course": 3, "day": 1, "recorded_visit": "week 9"}) == (
        "week 9 (course 3 day 1)")
    assert lab_visit({"course": 2, "day": 1, "recorded_visit": "course 2"}) == "course 2 day 1"
    assert lab_visit({"course": 2, "day": 8, "recorded_visit": None}) == "course 2 day 8"
    assert lab_visit({"course": None, "day": None, "recorded_visit": "week 9"}) == "week 9"
    assert lab_visit({"course": None, "day": None, "recorded_visit": None}) == ""
