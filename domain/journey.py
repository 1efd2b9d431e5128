"""Steps of the patient journey. Each takes the trial and the patient, applies the rules
once, and leaves events pending on both for one signed save; `take` is the one entry point
the ledger calls, whatever fact is being recorded.

Only enrollment changes the trial (the patient joins a cohort). Whether a patient is
DLT-evaluable, had a counting DLT, or is replaced is derived from the patient's facts when
state is read, so recording a DLT, a course, a withdrawal or a correction touches the
patient alone."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from trialctl.domain.facts import (
    AdverseEvent,
    Conmed,
    Consent,
    Correction,
    CourseCompletion,
    Deviation,
    DltAdjudication,
    Dose,
    DoseChange,
    Enrolment,
    Fact,
    FollowUp,
    Lab,
    Observation,
    OffStudy,
    Reconsent,
    Response,
    Screening,
    TreatmentWithdrawal,
    Withdrawal,
)
from trialctl.domain.patient import Patient
from trialctl.domain.rules import TrialRuleError
from trialctl.domain.trial import Roster, Trial


def _same_trial(trial: Trial, patient: Patient) -> None:
    if patient.trial_id != str(trial.id):
        raise TrialRuleError("same-trial", f"patient {patient.patient_id} belongs to another trial")


def consent(trial: Trial, patient_id: str, fact: Consent, already: bool, now: datetime) -> Patient:
    """A new patient record; `already` says whether the trial holds this patient yet (then
    the signature is a re-consent, `Reconsent`, recorded on the existing record)."""
    trial.check_open("a new patient's consent")
    patient = Patient.consent(trial.id, patient_id, fact, now, trial.protocol)
    if already:
        raise TrialRuleError("consent-once", f"patient {patient_id} has already consented")
    return patient


def reconsent(fact: Consent) -> Reconsent:
    """A consent signed by a patient already on the record: a re-consent to the form
    version it names (`Patient.reconsent` refuses a version they already signed)."""
    return Reconsent(consent_version=fact.consent_version, signed_on=fact.signed_on)


def take(
    trial: Trial, patient: Patient, fact: Fact, patients: Roster, now: datetime
) -> dict[str, Any]:
    """Record one fact about an existing patient; returns what the rules concluded, for
    the person recording (empty when there is nothing to add to the patient's summary).
    `patients` is the trial's roster, which enrollment reads for the open places."""
    _same_trial(trial, patient)
    if not isinstance(fact, Correction):
        trial.check_open(f"a {fact.KIND}")
    protocol = trial.protocol
    match fact:
        case Reconsent():
            patient.reconsent(fact, protocol, now)
        case Screening():
            return {"eligibility": patient.screen(fact, protocol, now)}
        case Enrolment():
            enroll(trial, patient, fact, patients, now)
        case Dose():
            patient.give_dose(fact, protocol, now)
        case DoseChange():
            patient.change_dose(fact, protocol, now)
        case AdverseEvent():
            patient.report_adverse_event(fact, protocol, now)
        case DltAdjudication():
            return {"counts_toward_decision": patient.adjudicate_dlt(fact, protocol, now)}
        case CourseCompletion():
            patient.complete_course(fact, protocol, now)
        case Response():
            return {"response": patient.assess_response(fact, protocol, now)}
        case Observation():
            patient.observe(fact, protocol, now)
        case Withdrawal():
            patient.withdraw(fact, now)
        case TreatmentWithdrawal():
            patient.withdraw_from_treatment(fact, protocol, now)
        case OffStudy():
            patient.go_off_study(fact, protocol, now)
        case FollowUp():
            patient.record_follow_up(fact, protocol, now)
        case Lab():
            derived = patient.record_lab(fact, protocol, now)
            return {"grade": derived["grade"], "grading": derived["grading"]}
        case Deviation():
            patient.record_deviation(fact, protocol, now)
        case Conmed():
            patient.record_conmed(fact, protocol, now)
        case Correction():
            return {"corrected": patient.correct(fact, protocol, now)}
        case _:
            raise TypeError(f"{type(fact).__name__} is not a step of an existing patient")
    return {}


def enroll(
    trial: Trial, patient: Patient, fact: Enrolment, patients: Roster, now: datetime
) -> int:
    """Assign the patient to the open cohort at its level; returns the level."""
    _same_trial(trial, patient)
    patient.check_can_enroll(fact, now)
    level = trial.assign(patient.patient_id, patients, timestamp=now)
    patient.enroll(fact, level, int(trial.current_cohort["number"]), now)
    return level
