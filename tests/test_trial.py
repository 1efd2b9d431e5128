"""The trial's rules (Part 11 §11.10(f) sequence checks): each refusal names its rule, and a
whole trial runs on a second, different protocol with no code change."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.trial_helpers import (
    NOW,
    adjudication,
    adverse_event,
    at,
    consented,
    day,
    dose,
    dose_escalated,
    enrolled_patient,
    follow_the_engine,
    nct_protocol,
    roster,
    run_cohort,
    screening,
    second_protocol,
)
from trialctl.domain import journey
from trialctl.domain.facts import (
    Consent,
    Correction,
    CourseCompletion,
    Enrolment,
    Withdrawal,
)
from trialctl.domain.patient import Patient
from trialctl.domain.rules import TrialRuleError
from trialctl.domain.trial import Trial


def enrolment(offset: int) -> Enrolment:
    return Enrolment(enrolled_on=day(offset))


def enroll(trial: Trial, patient: Patient, offset: int) -> int:
    return journey.enroll(trial, patient, enrolment(offset), roster(trial), NOW)


def correction_of(version: int, changes: dict[str, Any], reason: str) -> Correction:
    return Correction(target_version=version, changes=changes, reason=reason)


@pytest.fixture
def trial() -> Trial:
    return Trial.register(nct_protocol(), NOW)


def refused(rule: str, action: Callable[[], object]) -> str:
    with pytest.raises(TrialRuleError) as caught:
        action()
    assert caught.value.rule == rule, str(caught.value)
    return str(caught.value)


def test_a_whole_trial_follows_the_engine_to_an_mtd(trial: Trial) -> None:
    run_cohort(trial, "NNN", 1, 0)
    follow_the_engine(trial)
    run_cohort(trial, "NTN", 4, 40)
    follow_the_engine(trial)
    run_cohort(trial, "NNN", 7, 80)
    follow_the_engine(trial)
    run_cohort(trial, "TTN", 10, 120)
    follow_the_engine(trial)

    assert trial.stopped and trial.mtd_level == 2
    assert [d["action"] for d in trial.decisions] == ["escalate", "expand", "escalate", "stop"]
    assert trial.next_step(roster(trial)).code == "stopped"


def test_the_second_protocol_runs_with_no_code_change() -> None:
    protocol = second_protocol()
    trial = Trial.register(protocol, NOW)
    assert trial.protocol.dlt_window_days == 28 and protocol.num_levels == 6

    run_cohort(trial, "NNN", 1, 0)
    follow_the_engine(trial)
    cohort = run_cohort(trial, "TTN", 4, 50)
    follow_the_engine(trial)

    # No de-escalation in this protocol: two DLTs at level 2 declare level 1 the MTD at once.
    assert trial.stopped and trial.mtd_level == 1
    assert cohort[0].doses()[0]["dose"] == "50" and cohort[0].doses()[0]["unit"] == "mg"


def test_an_ineligible_patient_is_refused_naming_every_failed_criterion(trial: Trial) -> None:
    patient = consented(trial, "P001")
    eligibility = patient.screen(screening(trial.protocol, 1, anc_per_mm3=1100, ecog=3),
                                 trial.protocol, NOW)

    assert eligibility["failed"] == ["ecog", "anc"]
    message = refused("eligible-only", lambda: enroll(trial, patient, 2))
    assert "failed: ecog, anc" in message
    assert trial.cohort_of("P001") is None


def test_no_enrollment_before_screening(trial: Trial) -> None:
    patient = consented(trial, "P001")
    refused("screen-first", lambda: enroll(trial, patient, 2))


def test_no_enrollment_into_a_full_cohort(trial: Trial) -> None:
    for number in range(1, 4):
        enrolled_patient(trial, f"P00{number}")
    patient = consented(trial, "P004")
    patient.screen(screening(trial.protocol, 1), trial.protocol, NOW)
    message = refused("cohort-full", lambda: enroll(trial, patient, 2))
    assert "await DLT evaluation of P001, P002, P003" in message


def test_no_enrollment_after_the_trial_stopped(trial: Trial) -> None:
    run_cohort(trial, "TTT", 1, 0)
    follow_the_engine(trial)
    patient = consented(trial, "P009", 60)
    patient.screen(screening(trial.protocol, 61), trial.protocol, NOW)
    refused("trial-open", lambda: enroll(trial, patient, 62))


def test_no_dose_before_enrollment(trial: Trial) -> None:
    patient = consented(trial, "P001")
    refused("enrolled-first", lambda: patient.give_dose(
        dose("imatinib mesylate", "300", "mg/day", at(3), course=1, day_of_course=1),
        trial.protocol, NOW))


def test_no_dose_at_another_level(trial: Trial) -> None:
    patient = enrolled_patient(trial, "P001")
    message = refused("own-dose-level", lambda: patient.give_dose(
        dose("imatinib mesylate", "400", "mg/day", at(3), course=1, day_of_course=1),
        trial.protocol, NOW))
    assert "300 mg/day due at level 1" in message


def test_no_dose_off_the_protocol_schedule(trial: Trial) -> None:
    patient = enrolled_patient(trial, "P001")
    refused("protocol-schedule", lambda: patient.give_dose(
        dose("trastuzumab", "8", "mg/kg", at(3), course=1, day_of_course=2),
        trial.protocol, NOW))
    refused("protocol-agent", lambda: patient.give_dose(
        dose("aspirin", "8", "mg", at(3), course=1, day_of_course=1),
        trial.protocol, NOW))


def test_a_dlt_outside_the_window_is_refused_naming_the_window(trial: Trial) -> None:
    patient = enrolled_patient(trial, "P001")
    dose_escalated(patient, trial, 3)
    patient.report_adverse_event(adverse_event("Diarrhea", 3, day(3 + 25)), trial.protocol, NOW)

    message = refused("dlt-rule", lambda: patient.adjudicate_dlt(
        adjudication(day(3 + 26), "non_haematologic_g3"), trial.protocol, NOW))

    assert f"DLT window {day(3)}..{day(3 + 20)}: onset {day(28)}" in message
    assert patient.dlts() == []
    assert patient.outcome(trial.protocol).state == "waiting"  # no DLT counted


def test_after_withdrawal_only_safety_follow_up_is_recorded(trial: Trial) -> None:
    patient = enrolled_patient(trial, "P001")
    dose_escalated(patient, trial, 3)
    journey.take(trial, patient, Withdrawal(withdrawn_on=day(6), reason="personal reasons"),
                 roster(trial), NOW)

    message = refused("after-withdrawal", lambda: patient.give_dose(
        dose("imatinib mesylate", "300", "mg/day", at(10), course=1, day_of_course=8),
        trial.protocol, NOW))
    assert "safety follow-up" in message
    patient.report_adverse_event(adverse_event("Rash/desquamation", 2, day(8),
                                               attribution="possible"), trial.protocol, NOW)
    # Replaced: withdrawn before being DLT-evaluable.
    assert trial.status(roster(trial))["cohorts"][0]["replaced"] == ["P001"]


def test_no_event_dated_in_the_future(trial: Trial) -> None:
    refused("no-future-dates", lambda: Patient.consent(
        trial.id, "P001", Consent(consent_version="1.0", signed_on="2027-01-01"), NOW))


def test_no_event_dated_before_the_event_it_depends_on(trial: Trial) -> None:
    patient = consented(trial, "P001", 10)
    message = refused("no-earlier-than-dependency", lambda: patient.screen(
        screening(trial.protocol, 5), trial.protocol, NOW))
    assert "before consent" in message


def test_course_one_cannot_complete_inside_its_dlt_window(trial: Trial) -> None:
    patient = enrolled_patient(trial, "P001")
    dose_escalated(patient, trial, 3)
    refused("dlt-window", lambda: patient.complete_course(CourseCompletion(
        course=1, completed_on=day(10), not_evaluable_reason=None), trial.protocol, NOW))


def test_a_decision_other_than_the_engines_needs_an_override(trial: Trial) -> None:
    run_cohort(trial, "NNN", 1, 0)
    message = refused("follow-the-engine",
                      lambda: trial.decide("escalate", 3, None, roster(trial), NOW))
    assert "'escalate' to level 2" in message

    trial.decide("escalate", 3, None, roster(trial), NOW,
                 override_reason="sponsor safety review skipped 2")

    assert trial.decisions[-1]["overridden"] is True
    assert trial.current_cohort["level"] == 3


def test_no_decision_before_the_cohort_is_evaluated(trial: Trial) -> None:
    enrolled_patient(trial, "P001")
    refused("decision-due", lambda: trial.decide("escalate", 2, None, roster(trial), NOW))


def test_a_correction_keeps_the_original_and_state_uses_the_new_value(trial: Trial) -> None:
    patient = enrolled_patient(trial, "P001")
    patient.report_adverse_event(adverse_event("Nausea", 2, day(5), attribution="possible"),
                                 trial.protocol, NOW)
    version = patient.adverse_events()[0]["version"]

    patient.correct(correction_of(version, {"grade": 3}, "source document says grade 3"),
                    trial.protocol, NOW)

    assert patient.adverse_events()[0]["grade"] == 3
    (correction,) = patient.corrections
    assert correction["old_values"] == {"grade": 2} and correction["new_values"] == {"grade": 3}
    assert correction["reason"] == "source document says grade 3"
    original = next(e for e in patient.pending_events
                    if type(e).__name__ == "AdverseEventReported")
    assert original.grade == 2  # type: ignore[attr-defined]


def test_a_correction_is_checked_by_the_same_rules(trial: Trial) -> None:
    patient = enrolled_patient(trial, "P001")
    dose_escalated(patient, trial, 3)
    version = patient.doses()[0]["version"]
    refused("own-dose-level", lambda: patient.correct(
        correction_of(version, {"dose": "600"}, "typo"), trial.protocol, NOW))
    refused("reason-for-change", lambda: patient.correct(
        correction_of(version, {"dose": "300"}, " "), trial.protocol, NOW))
    refused("correctable", lambda: patient.correct(
        correction_of(1, {"patient_id": "P009"}, "x"), trial.protocol, NOW))


def test_a_replaced_patient_frees_a_place(trial: Trial) -> None:
    patients = [enrolled_patient(trial, f"P00{n}") for n in range(1, 4)]
    dose_escalated(patients[0], trial, 3)
    patients[0].complete_course(CourseCompletion(
        course=1, completed_on=day(30), not_evaluable_reason="missed 9 of 21 doses"),
        trial.protocol, NOW)

    step = trial.next_step(roster(trial))
    assert step.code == "enroll" and step.places == 1


def test_replay_of_the_events_gives_the_same_trial(trial: Trial) -> None:
    run_cohort(trial, "NTN", 1, 0)
    follow_the_engine(trial)
    replayed = None
    for domain_event in trial.collect_events():
        replayed = domain_event.mutate(replayed)
    assert isinstance(replayed, Trial)
    assert replayed.cohorts == trial.cohorts and replayed.decisions == trial.decisions


def test_a_corrected_screening_value_evaluates_eligibility_again(trial: Trial) -> None:
    patient = enrolled_patient(trial, "P001")
    version = next(v for v, f in patient.facts.items() if f["kind"] == "screening")

    patient.correct(correction_of(version, {"anc_per_mm3": 900}, "lab report re-read"),
                    trial.protocol, NOW)

    assert patient.screening_values["anc_per_mm3"] == 900
    assert patient.eligibility is not None and patient.eligibility["failed"] == ["anc"]
    # The deviation names the failed criterion and the correction that caused it.
    deviation = patient.summary(trial.protocol)["eligibility_deviation"]
    assert deviation["failed"] == ["anc"]
    assert deviation["corrected"] == {"anc_per_mm3": 900}
    assert deviation["corrected_version"] == patient.version  # the correction, just recorded
    (correction,) = patient.corrections
    assert correction["old_values"]["eligibility"]["eligible"] is True
    assert correction["new_values"]["eligibility"]["eligible"] is False
