"""Derived, never frozen: whether a DLT counts, whether a patient is evaluable, each cohort's
counts and the next 3+3 step are computed from the current facts whenever state is read, so
a correction to any input re-derives them, and a decision that counted the old facts is
shown as made on data since corrected."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.trial_helpers import (
    NEUTROPENIA,
    NOW,
    at,
    day,
    follow_the_engine,
    nct_protocol,
    roster,
    run_cohort,
)
from trialctl.domain.facts import Correction, CourseCompletion, Response, Withdrawal
from trialctl.domain.patient import Patient
from trialctl.domain.recist import TargetLesion
from trialctl.domain.rules import TrialRuleError
from trialctl.domain.trial import Trial


def correct(trial: Trial, patient: Patient, version: int, reason: str, **changes: Any) -> None:
    patient.correct(Correction(target_version=version, changes=changes, reason=reason),
                    trial.protocol, NOW)


@pytest.fixture
def decided() -> tuple[Trial, list[Patient]]:
    """Cohort 1: one DLT (P002's grade 4 neutropenia) in three, decided: expand."""
    trial = Trial.register(nct_protocol(), NOW)
    patients = run_cohort(trial, "NTN", 1, 0)
    follow_the_engine(trial)
    assert trial.decisions[-1]["action"] == "expand"
    return trial, patients


def cohort_one(trial: Trial) -> dict[str, Any]:
    return trial.status(roster(trial))["cohorts"][0]  # type: ignore[no-any-return]


def test_correcting_the_grade_out_of_the_rule_stops_the_dlt_counting(
    decided: tuple[Trial, list[Patient]],
) -> None:
    trial, patients = decided
    (ae,) = patients[1].adverse_events()

    correct(trial, patients[1], ae["version"], "source document: grade 3", grade=3)

    assert cohort_one(trial)["dlts"] == 0 and cohort_one(trial)["evaluated"] == 3
    assert cohort_one(trial)["dlt_notes"] == [
        "P002 AE1: does not meet rule neutropenia_g4: min_grade 4: grade 3"]
    summary = patients[1].summary(trial.protocol)
    assert summary["dlts"] == 0 and summary["outcome"] == "evaluable"  # course 1 completed
    # Re-derived, 0 of 3 escalates: the expansion was made on data since corrected.
    (decision,) = trial.status(roster(trial))["decisions"]
    assert decision["since_corrected"] is True
    review = decision["review"]
    assert review["recorded"] == {"evaluated": 3, "dlts": 1, "recommendation": {
        "action": "expand", "next_level": 1, "mtd_level": None}}
    assert review["rederived"] == {"evaluated": 3, "dlts": 0, "recommendation": {
        "action": "escalate", "next_level": 2, "mtd_level": None}}
    (involved,) = review["patients"]
    assert involved["patient_id"] == "P002" and involved["then"] == "DLT"
    assert involved["now"] == "no DLT"
    assert involved["corrections"] == [patients[1].corrections[0]["version"]]


def test_correcting_it_back_clears_the_flag(decided: tuple[Trial, list[Patient]]) -> None:
    trial, patients = decided
    (ae,) = patients[1].adverse_events()
    correct(trial, patients[1], ae["version"], "misread", grade=3)
    correct(trial, patients[1], ae["version"], "re-read: it was grade 4", grade=4)

    assert cohort_one(trial)["dlts"] == 1
    assert trial.status(roster(trial))["decisions"][0]["since_corrected"] is False


def test_correcting_the_onset_outside_the_window_stops_the_dlt_counting(
    decided: tuple[Trial, list[Patient]],
) -> None:
    trial, patients = decided
    (ae,) = patients[1].adverse_events()
    correct(trial, patients[1], ae["version"], "onset was later", onset=day(3 + 21),
            resolved_on=day(3 + 30))

    assert cohort_one(trial)["dlts"] == 0
    assert "DLT window" in cohort_one(trial)["dlt_notes"][0]


def test_correcting_the_first_dose_date_moves_the_window(
    decided: tuple[Trial, list[Patient]],
) -> None:
    trial, patients = decided
    (dose,) = patients[1].doses()
    # The first dose moves after the AE's onset (day 8): the onset is now outside the window.
    correct(trial, patients[1], dose["version"], "diary", given_at=at(9))

    assert cohort_one(trial)["dlts"] == 0
    assert f"DLT window {day(9)}" in cohort_one(trial)["dlt_notes"][0]


def test_correcting_the_adjudication_itself_re_derives_the_count(
    decided: tuple[Trial, list[Patient]],
) -> None:
    trial, patients = decided
    (adjudication,) = patients[1].dlts()
    correct(trial, patients[1], adjudication["version"], "PI review: not a DLT",
            is_dlt=False, rule_code=None)
    assert cohort_one(trial)["dlts"] == 0
    assert patients[1].summary(trial.protocol)["outcome"] == "evaluable"  # course 1 done


def test_a_correction_to_a_dlt_the_ae_does_not_meet_is_refused(
    decided: tuple[Trial, list[Patient]],
) -> None:
    trial, patients = decided
    (adjudication,) = patients[1].dlts()
    with pytest.raises(TrialRuleError) as caught:
        correct(trial, patients[1], adjudication["version"], "wrong rule",
                rule_code="thrombocytopenia_g4")
    assert caught.value.rule == "dlt-rule"
    assert f"{NEUTROPENIA!r} is haematologic, neutropenia" in str(caught.value)


def test_a_course_completion_corrected_not_evaluable_replaces_the_patient(
    decided: tuple[Trial, list[Patient]],
) -> None:
    trial, patients = decided
    (course,) = patients[0].kept(CourseCompletion)
    correct(trial, patients[0], course["version"], "missed 9 of 21 doses",
            not_evaluable_reason="missed 9 of 21 doses")

    assert cohort_one(trial)["replaced"] == ["P001"] and cohort_one(trial)["evaluated"] == 2
    assert trial.status(roster(trial))["decisions"][0]["since_corrected"] is True


def test_a_corrected_response_measurement_recomputes_the_response() -> None:
    trial = Trial.register(nct_protocol(), NOW)
    (patient,) = run_cohort(trial, "N", 1, 0)
    lesions = (TargetLesion("T1", "liver", Decimal(40)), TargetLesion("T2", "lung", Decimal(20)))
    patient.assess_response(Response(assessed_on=day(2), baseline=True, lesions=lesions,
                                     new_lesions=False, non_target_progression=False),
                            trial.protocol, NOW)
    later = (TargetLesion("T1", "liver", Decimal(30)), TargetLesion("T2", "lung", Decimal(10)))
    assert patient.assess_response(Response(
        assessed_on=day(60), baseline=False, lesions=later, new_lesions=False,
        non_target_progression=False), trial.protocol, NOW) == "PR"
    follow_up = patient.responses()[1]

    correct(trial, patient, follow_up["version"], "radiology addendum", new_lesions=True)
    assert patient.responses()[1]["category"] == "PD"
    correct(trial, patient, follow_up["version"], "addendum withdrawn", new_lesions=False,
            lesions=[{"lesion_id": "T1", "site": "liver", "longest_diameter_mm": "38",
                      "is_lymph_node": False},
                     {"lesion_id": "T2", "site": "lung", "longest_diameter_mm": "20",
                      "is_lymph_node": False}])
    assert patient.responses()[1]["category"] == "SD"


def test_consent_enrolment_and_withdrawal_are_correctable() -> None:
    trial = Trial.register(nct_protocol(), NOW)
    (patient,) = run_cohort(trial, "N", 1, 0)
    correct(trial, patient, version_of(patient, "consent"), "form version misread",
            consent_version="1.1")
    assert patient.consent_version == "1.1"
    correct(trial, patient, version_of(patient, "enrollment"), "date typo", enrolled_on=day(1))
    assert patient.enrolled_on == day(1)
    patient.withdraw(Withdrawal(withdrawn_on=day(40), reason="moved"), NOW)
    correct(trial, patient, version_of(patient, "withdrawal"), "date from the letter",
            withdrawn_on=day(38))
    assert patient.withdrawn_on == day(38)


def version_of(patient: Patient, kind: str) -> int:
    return next(v for v, f in patient.facts.items() if f["kind"] == kind)
