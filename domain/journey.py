"""Steps of the patient journey. Each takes the trial and the patient, applies the rules
once, and leaves events pending on both for one signed save; `take` is the one entry point
the ledger calls, whatever fact is being recorded."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from trialctl.domain.facts import (
    AdverseEvent,
    Consent,
    Correction,
    CourseCompletion,
    DltAdjudication,
    Dose,
    Enrolment,
    Fact,
    Observation,
    OffStudy,
    Response,
    Screening,
    Withdrawal,
)
from trialctl.domain.patient import Patient
from trialctl.domain.rules import TrialRuleError
from trialctl.domain.trial import Trial


def _same_trial(trial: Trial, patient: Patient) -> None:
    if patient.trial_id != str(trial.id):
        raise TrialRuleError("same-trial", f"patient {patient.patient_id} belongs to another trial")


def consent(trial: Trial, patient_id: str, fact: Consent, already: bool, now: datetime) -> Patient:
    """A new patient record; `already` says whether the trial holds this patient yet."""
    patient = Patient.consent(trial.id, patient_id, fact, now)
    if already:
        raise TrialRuleError("consent-once", f"patient {patient_id} has already consented")
    return patient


def take(trial: Trial, patient: Patient, fact: Fact, now: datetime) -> dict[str, Any]:
    """Record one fact about an existing patient; returns what the rules concluded, for
    the person recording (empty when there is nothing to add to the patient's summary)."""
    _same_trial(trial, patient)
    protocol = trial.protocol
    match fact:
        case Screening():
            return {"eligibility": patient.screen(fact, protocol, now)}
        case Enrolment():
            enroll(trial, patient, fact, now)
        case Dose():
            patient.give_dose(fact, protocol, now)
        case AdverseEvent():
            patient.report_adverse_event(fact, protocol, now)
        case DltAdjudication():
            return {"counts_toward_decision": adjudicate_dlt(trial, patient, fact, now)}
        case CourseCompletion():
            complete_course(trial, patient, fact, now)
        case Response():
            return {"response": patient.assess_response(fact, protocol, now)}
        case Observation():
            patient.observe(fact, protocol, now)
        case Withdrawal():
            withdraw(trial, patient, fact, now)
        case OffStudy():
            go_off_study(trial, patient, fact, now)
        case Correction():
            return {"corrected": patient.correct(fact, protocol, now)}
        case _:
            raise TypeError(f"{type(fact).__name__} is not a step of an existing patient")
    return {}


def enroll(trial: Trial, patient: Patient, fact: Enrolment, now: datetime) -> int:
    """Assign the patient to the open cohort at its level; returns the level."""
    _same_trial(trial, patient)
    patient.check_can_enroll(fact, now)
    level = trial.assign(patient.patient_id, timestamp=now)
    patient.enroll(fact, level, int(trial.current_cohort["number"]), now)
    return level


def adjudicate_dlt(trial: Trial, patient: Patient, fact: DltAdjudication, now: datetime) -> bool:
    """A DLT inside the evaluation window makes the patient evaluable with a DLT."""
    _same_trial(trial, patient)
    counts = patient.adjudicate_dlt(fact, trial.protocol, now)
    if counts:
        trial.record_outcome(patient.patient_id, True, timestamp=now)
    return counts


def complete_course(
    trial: Trial, patient: Patient, fact: CourseCompletion, now: datetime
) -> None:
    """Completing course 1 makes a patient DLT-evaluable, or (when not evaluable) opens
    their place in the cohort for a replacement."""
    _same_trial(trial, patient)
    patient.complete_course(fact, trial.protocol, now)
    if fact.course == 1:
        if fact.evaluable:
            trial.record_outcome(patient.patient_id, False, timestamp=now)
        else:
            trial.replace(patient.patient_id, fact.reason or "not evaluable", timestamp=now)


def leave_before_evaluation(trial: Trial, patient: Patient, reason: str, now: datetime) -> None:
    """A patient who leaves before becoming evaluable is replaced in the cohort."""
    if patient.is_enrolled and patient.evaluable is None:
        trial.replace(patient.patient_id, reason, timestamp=now)


def withdraw(trial: Trial, patient: Patient, fact: Withdrawal, now: datetime) -> None:
    _same_trial(trial, patient)
    patient.withdraw(fact, now)
    leave_before_evaluation(trial, patient, f"consent withdrawn: {fact.reason}", now)


def go_off_study(trial: Trial, patient: Patient, fact: OffStudy, now: datetime) -> None:
    _same_trial(trial, patient)
    patient.go_off_study(fact, now)
    leave_before_evaluation(trial, patient, f"off study: {fact.reason}", now)
