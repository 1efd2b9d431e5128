"""Detected deviations, each rule at its boundary, and recorded ones: a dose one day off
its schedule, an assessment on its window's last day vs the day after, the eligibility
deviation after a correction, and a recorded deviation acknowledging a detected one."""

from __future__ import annotations

from typing import Any

import pytest

from tests.trial_helpers import NOW, at, day, enrolled_patient, nct_protocol
from trialctl.domain.deviations import late_assessments, off_schedule_doses, shown
from trialctl.domain.facts import Conmed, Correction, Deviation, Dose
from trialctl.domain.rules import TrialRuleError
from trialctl.domain.trial import Trial

IMATINIB, TRASTUZUMAB = "imatinib mesylate", "trastuzumab"


def dose(version: int, agent: str, course: int, day_of_course: int,
         offset: int) -> dict[str, Any]:
    return {"version": version, "agent": agent, "course": course, "day": day_of_course,
            "given_at": at(offset), "dose": "300", "unit": "mg/day"}


@pytest.mark.parametrize(("offset", "detected"), [(17, False), (18, True), (16, True)],
                         ids=["on-its-day", "a-day-late", "a-day-early"])
def test_a_dose_off_its_day(offset: int, detected: bool) -> None:
    doses = [dose(4, TRASTUZUMAB, 1, 1, 10), dose(5, IMATINIB, 1, 1, 10),
             dose(6, IMATINIB, 1, 8, offset)]
    found = off_schedule_doses(doses, nct_protocol())
    assert [d["record_version"] for d in found] == ([6] if detected else [])
    if detected:
        assert found[0]["category"] == "dosing"
        assert f"names {day(17)}" in found[0]["text"]


def test_a_dose_on_a_day_the_agent_is_not_given() -> None:
    doses = [dose(4, TRASTUZUMAB, 1, 1, 10), dose(5, TRASTUZUMAB, 1, 8, 17)]
    (found,) = off_schedule_doses(doses, nct_protocol())
    assert (found["record_version"], found["category"]) == (5, "dosing")
    assert "not a dosing day" in found["text"]


def response(version: int, offset: int) -> dict[str, Any]:
    return {"version": version, "assessed_on": day(offset)}


# The protocol: re-assessed every 9 weeks (63 days) after baseline, +/- 7 days.
@pytest.mark.parametrize(("offset", "late"), [
    (63 + 7, False), (63 + 8, True), (63 - 7, False), (63 - 8, True),
], ids=["window-last-day", "day-after", "window-first-day", "day-before"])
def test_a_late_assessment(offset: int, late: bool) -> None:
    found = late_assessments([response(5, 0), response(6, offset)], nct_protocol())
    assert [d["record_version"] for d in found] == ([6] if late else [])
    if late:
        assert found[0]["category"] == "schedule"
        assert f"due {day(63)} +/- 7 days" in found[0]["text"]


def enrolled() -> tuple[Trial, Any]:
    trial = Trial.register(nct_protocol(), NOW)
    return trial, enrolled_patient(trial, "P001")


def test_a_correction_that_moves_day_1_is_read_at_once() -> None:
    trial, patient = enrolled()
    protocol = trial.protocol
    level = protocol.level(1)
    for day_of_course, offset in ((1, 5), (8, 12)):
        patient.give_dose(Dose(agent=IMATINIB, dose=str(level.dose), unit=level.unit, course=1,
                               day=day_of_course, given_at=at(offset)), protocol, NOW)
    assert patient.deviations(protocol) == []
    first = patient.doses()[0]["version"]
    patient.correct(Correction(target_version=first, changes={"given_at": at(4)},
                               reason="diary re-read"), protocol, NOW)
    (found,) = patient.deviations(protocol)
    assert (found["source"], found["record_version"]) == ("detected", first + 1)


def test_the_eligibility_deviation_is_detected_and_major() -> None:
    trial, patient = enrolled()
    patient.correct(Correction(target_version=2, changes={"anc_per_mm3": 1200},
                               reason="lab report re-read"), trial.protocol, NOW)
    (found,) = patient.deviations(trial.protocol)
    assert (found["category"], found["severity"], found["record_version"]) == (
        "eligibility", "major", 4)
    assert found["text"] == patient.eligibility_deviation()["text"]


def filgrastim(trial: Trial, patient: Any) -> int:
    patient.record_conmed(Conmed(drug="filgrastim", start=day(10), stop=day(12), dose=None,
                                 unit=None, route="SC", indication="neutropenia"),
                          trial.protocol, NOW)
    return int(patient.conmeds()[0]["version"])


def test_a_recorded_deviation_citing_the_record_acknowledges_the_detected_one() -> None:
    trial, patient = enrolled()
    version = filgrastim(trial, patient)
    patient.record_deviation(Deviation(
        category="prohibited-medication", severity="major", text="G-CSF given in error",
        record=40, record_version=version), trial.protocol, NOW)
    (listed,) = patient.deviations(trial.protocol)
    assert (listed["source"], listed["text"], listed["record"]) == (
        "recorded", "G-CSF given in error", 40)
    assert "filgrastim" in listed["acknowledges"]


def test_a_recorded_deviation_on_another_record_leaves_the_detected_one() -> None:
    trial, patient = enrolled()
    filgrastim(trial, patient)
    patient.record_deviation(Deviation(
        category="procedure", severity="minor", text="ECG late", record=None),
        trial.protocol, NOW)
    assert [d["source"] for d in patient.deviations(trial.protocol)] == [
        "recorded", "detected"]


@pytest.mark.parametrize(("values", "message"), [
    ({"category": "paperwork"}, "is not one of eligibility"),
    ({"severity": "critical"}, "not major or minor"),
    ({"text": "  "}, "needs a description"),
    ({"record": 12, "record_version": None}, "#12 is not an entry of P001"),
    ({"record": 12, "record_version": 99}, "#12 is not an entry of P001"),
])
def test_a_bad_deviation_is_refused(values: dict[str, Any], message: str) -> None:
    trial, patient = enrolled()
    given = {"category": "other", "severity": "minor", "text": "x", "record": None,
             **values}
    with pytest.raises(TrialRuleError, match=message):
        patient.record_deviation(Deviation(**given), trial.protocol, NOW)


def test_shown_lists_recorded_then_unacknowledged() -> None:
    detected = [{"source": "detected", "category": "schedule", "severity": "minor",
                 "text": "late", "record": None, "record_version": 9, "version": None}]
    recorded = [{"version": 12, "category": "schedule", "severity": "minor", "text": "ok",
                 "record": 80, "record_version": 8}]
    assert [d["source"] for d in shown(recorded, detected)] == ["recorded", "detected"]
