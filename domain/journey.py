"""Steps of the patient journey that change the trial too. Each takes both aggregates,
applies the rules once, and leaves events pending on both for one signed save."""

from __future__ import annotations

from datetime import datetime

from trialctl.domain.patient import Patient
from trialctl.domain.rules import TrialRuleError
from trialctl.domain.trial import Trial


def _same_trial(trial: Trial, patient: Patient) -> None:
    if patient.trial_id != str(trial.id):
        raise TrialRuleError("same-trial", f"patient {patient.patient_id} belongs to another trial")


def enroll(trial: Trial, patient: Patient, enrolled_on: str, now: datetime) -> int:
    """Assign the patient to the open cohort at its level; returns the level."""
    _same_trial(trial, patient)
    patient.check_can_enroll(enrolled_on, now)
    level = trial.assign(patient.patient_id, timestamp=now)
    patient.enroll(level, int(trial.current_cohort["number"]), enrolled_on, now)
    return level


def adjudicate_dlt(
    trial: Trial,
    patient: Patient,
    ae_id: str,
    is_dlt: bool,
    rule_code: str | None,
    decided_on: str,
    now: datetime,
) -> bool:
    """A DLT inside the evaluation window makes the patient evaluable with a DLT."""
    _same_trial(trial, patient)
    counts = patient.adjudicate_dlt(ae_id, is_dlt, rule_code, decided_on, trial.protocol, now)
    if counts:
        trial.record_outcome(patient.patient_id, True, timestamp=now)
    return counts


def complete_course(
    trial: Trial,
    patient: Patient,
    course: int,
    completed_on: str,
    evaluable: bool,
    reason: str | None,
    now: datetime,
) -> None:
    """Completing course 1 makes a patient DLT-evaluable, or (when not evaluable) opens
    their place in the cohort for a replacement."""
    _same_trial(trial, patient)
    patient.complete_course(course, completed_on, evaluable, reason, trial.protocol, now)
    if course == 1:
        if evaluable:
            trial.record_outcome(patient.patient_id, False, timestamp=now)
        else:
            trial.replace(patient.patient_id, reason or "not evaluable", timestamp=now)


def leave_before_evaluation(trial: Trial, patient: Patient, reason: str, now: datetime) -> None:
    """A patient who leaves before becoming evaluable is replaced in the cohort."""
    if patient.is_enrolled and patient.evaluable is None:
        trial.replace(patient.patient_id, reason, timestamp=now)


def withdraw(trial: Trial, patient: Patient, withdrawn_on: str, reason: str, now: datetime) -> None:
    _same_trial(trial, patient)
    patient.withdraw(withdrawn_on, reason, now)
    leave_before_evaluation(trial, patient, f"consent withdrawn: {reason}", now)


def go_off_study(trial: Trial, patient: Patient, off_on: str, reason: str, now: datetime) -> None:
    _same_trial(trial, patient)
    patient.go_off_study(off_on, reason, now)
    leave_before_evaluation(trial, patient, f"off study: {reason}", now)
