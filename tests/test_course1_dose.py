"""The protocol's non-toxic not-evaluable rule: a patient who received less than the
protocol's `min_course1_dose_fraction` of the planned course-1 dose, without a counting
DLT, is not DLT-evaluable and is replaced. Judged once course 1 is over, derived from the
current facts: a correction re-derives it, and a decision that counted the old reading
shows as made on data since corrected.

The protocol here is the shipped one with imatinib on days 1-10 and the trial starting at
level 2 (400 mg/day): 4000 planned, so 80% is exactly 3200, eight days' doses."""

from __future__ import annotations

from typing import Any

import pytest

from tests.dosing_site import NCT_TEXT
from tests.trial_helpers import (
    NEUTROPENIA,
    NOW,
    adjudication,
    adverse_event,
    at,
    day,
    enrolled_patient,
    follow_the_engine,
    roster,
)
from trialctl.domain.facts import Correction, CourseCompletion, Dose, DoseChange
from trialctl.domain.patient import EVALUABLE, REPLACED, WAITING, Patient
from trialctl.domain.protocol import Protocol
from trialctl.domain.protocol_file import load_protocol
from trialctl.domain.trial import Trial

MINIMUM = 'min_course1_dose_fraction = "0.8"'


def ten_day_protocol(*, minimum: str | None = MINIMUM) -> Protocol:
    text = NCT_TEXT.replace('days = "1-21"', 'days = "1-10"', 1)
    text = text.replace("start_level = 1", "start_level = 2", 1)
    assert 'days = "1-10"' in text and "start_level = 2" in text
    if minimum is not None:
        return load_protocol(text.replace(MINIMUM, minimum, 1))
    return load_protocol(text.replace(MINIMUM, "", 1))


def treated(trial: Trial, patient_id: str, *, changes: tuple[tuple[str, int, int | None], ...]
            = (), dlt: bool = False, complete: bool = True, offset: int = 0) -> Patient:
    """Day 1 of course 1 on day(offset + 3); each change (action, course day, to_level)
    takes effect on that course day; then course 1 completed after its DLT window."""
    protocol = trial.protocol
    patient = enrolled_patient(trial, patient_id, offset)
    level = protocol.level(2)
    patient.give_dose(Dose(agent=protocol.escalated_agent.name, dose=str(level.dose),
                           unit=level.unit, course=1, day=1, given_at=at(offset + 3)),
                      protocol, NOW)
    for action, course_day, to_level in changes:
        patient.change_dose(DoseChange(
            course=1, action=action, to_level=to_level, reason="other",
            text="the patient did not take the tablets", effective_on=day(offset + 2 +
                                                                          course_day)),
            protocol, NOW)
    if dlt:
        patient.report_adverse_event(adverse_event(NEUTROPENIA, 4, day(offset + 8)), protocol,
                                     NOW)
        patient.adjudicate_dlt(adjudication(day(offset + 18)), protocol, NOW)
    if complete:
        patient.complete_course(CourseCompletion(
            course=1, completed_on=day(offset + 3 + protocol.dlt_window_days),
            not_evaluable_reason=None), protocol, NOW)
    return patient


HOLD_FROM_DAY_9 = (("hold", 9, None),)  # days 9-10 missed: 8 x 400 = 3200, exactly 80%
REDUCED_FROM_DAY_8_HELD_FROM_9 = (("reduce", 8, 1), ("hold", 9, None))  # 3100: 77.5%


@pytest.fixture
def trial() -> Trial:
    return Trial.register(ten_day_protocol(), NOW)


def test_exactly_the_minimum_is_evaluable_and_just_below_is_replaced(trial: Trial) -> None:
    exactly = treated(trial, "P001", changes=HOLD_FROM_DAY_9)
    below = treated(trial, "P002", changes=REDUCED_FROM_DAY_8_HELD_FROM_9)

    assert exactly.outcome(trial.protocol).state == EVALUABLE
    dose = exactly.summary(trial.protocol)["course1_dose"]
    assert (dose["received"], dose["planned"], dose["percent"], dose["minimum"]) == (
        "3200", "4000", "80.0%", "0.8")
    assert (dose["days_recorded"], dose["days_missed"]) == (1, 2)

    outcome = below.outcome(trial.protocol)
    assert outcome.state == REPLACED
    assert outcome.reason == "received 77.5% of planned course-1 dose"
    # It rests on the completion and on the course 1 dose and dose changes.
    changes = [c["version"] for c in below.dose_changes()]
    (dose_given,) = below.doses()
    assert set(outcome.records) >= {dose_given["version"], *changes}
    cohort = trial.status(roster(trial))["cohorts"][0]
    assert (cohort["patients"], cohort["replaced"], cohort["evaluated"]) == (
        ["P001"], ["P002"], 1)
    assert cohort["replaced_because"] == {"P002": "received 77.5% of planned course-1 dose"}
    summary = below.summary(trial.protocol)
    assert (summary["evaluable"], summary["replaced_because"]) == (
        False, "received 77.5% of planned course-1 dose")


def test_a_counting_dlt_keeps_the_patient_evaluable_whatever_the_fraction(
    trial: Trial,
) -> None:
    held_at_once = (("hold", 2, None),)  # one day of ten: 10%
    patient = treated(trial, "P001", changes=held_at_once, dlt=True)
    outcome = patient.outcome(trial.protocol)
    assert (outcome.state, outcome.dlt) == (EVALUABLE, True)
    assert patient.summary(trial.protocol)["course1_dose"]["percent"] == "10.0%"


def test_while_course_1_goes_on_a_short_course_is_not_yet_judged(trial: Trial) -> None:
    patient = treated(trial, "P001", changes=(("hold", 2, None),), complete=False)
    assert patient.outcome(trial.protocol).state == WAITING
    assert patient.summary(trial.protocol)["replaced_because"] is None


def test_a_protocol_without_a_minimum_never_replaces() -> None:
    trial = Trial.register(ten_day_protocol(minimum=None), NOW)
    patient = treated(trial, "P001", changes=(("hold", 2, None),))
    assert patient.outcome(trial.protocol).state == EVALUABLE
    assert patient.summary(trial.protocol)["course1_dose"]["minimum"] is None


def correct(trial: Trial, patient: Patient, version: int, **changes: Any) -> None:
    patient.correct(Correction(target_version=version, changes=changes,
                               reason="source document: the diary's date"), trial.protocol, NOW)


def test_a_corrected_dose_date_flips_it_and_the_decision_shows_as_since_corrected(
    trial: Trial,
) -> None:
    """P001 at exactly 80% is counted by cohort 1's decision; correcting day 1 a day later
    moves the hold onto course day 8 (70%): P001 is replaced and the decision is flagged.
    Correcting it back makes P001 evaluable again and clears the flag."""
    p001 = treated(trial, "P001", changes=HOLD_FROM_DAY_9)
    treated(trial, "P002")
    treated(trial, "P003", dlt=True)
    follow_the_engine(trial)
    assert trial.decisions[-1]["action"] == "expand"
    (first,) = p001.doses()

    correct(trial, p001, first["version"], given_at=at(4))

    outcome = p001.outcome(trial.protocol)
    assert (outcome.state, outcome.reason) == (
        REPLACED, "received 70.0% of planned course-1 dose")
    status = trial.status(roster(trial))
    assert status["cohorts"][0]["evaluated"] == 2
    (decision,) = status["decisions"]
    assert decision["since_corrected"]
    review = decision["review"]
    assert review["recorded"]["evaluated"] == 3 and review["rederived"]["evaluated"] == 2
    (involved,) = review["patients"]
    assert (involved["patient_id"], involved["then"], involved["now"]) == (
        "P001", "no DLT", "not evaluated")
    assert first["version"] in involved["records"]

    correct(trial, p001, first["version"], given_at=at(3))
    assert p001.outcome(trial.protocol).state == EVALUABLE
    assert not trial.status(roster(trial))["decisions"][0]["since_corrected"]
