"""The trial on the ledger: who may sign each trial event, and thin application methods
that load the trial and patient, call one domain step and record it signed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from trialctl.domain import journey
from trialctl.domain.patient import Patient, patient_aggregate_id
from trialctl.domain.protocol import Protocol
from trialctl.domain.recist import TargetLesion
from trialctl.domain.rules import TrialRuleError
from trialctl.domain.trial import Trial, trial_id_for
from trialctl.ledger.application import TrialLedger, UnlockedUser
from trialctl.ledger.authority import Meaning
from trialctl.ledger.entry import parse_entry
from trialctl.ledger.errors import LedgerError


def trial_status(trial: Trial) -> dict[str, Any]:
    """The trial as it stands: levels, cohorts, what comes next, the MTD once declared."""
    protocol = trial.protocol
    step = trial.next_step()
    mtd = None
    if trial.stopped and trial.mtd_level is not None:
        level = protocol.level(trial.mtd_level)
        mtd = {"level": level.level, "dose": str(level.dose), "unit": level.unit}
    cohorts = []
    for cohort in trial.cohorts:
        active = [p for p in cohort["patients"] if p not in cohort["replaced"]]
        outcomes = cohort["outcomes"]
        cohorts.append(
            {
                "number": cohort["number"],
                "level": cohort["level"],
                "dose": str(protocol.level(cohort["level"]).dose),
                "patients": active,
                "replaced": list(cohort["replaced"]),
                "evaluated": sum(1 for p in active if p in outcomes),
                "dlts": sum(1 for p in active if outcomes.get(p)),
            }
        )
    return {
        "trial": trial.protocol_id,
        "title": protocol.title,
        "design": f"{protocol.design.name}, de-escalation "
        f"{'on' if protocol.design.allow_deescalation else 'off'}",
        "current_level": None if trial.stopped else trial.current_cohort["level"],
        "cohorts": cohorts,
        "decisions": list(trial.decisions),
        "next": {
            "code": step.code,
            "text": step.text,
            "level": step.level,
            "places": step.places,
            "waiting_for": list(step.waiting_for),
        },
        "stopped": trial.stopped,
        "stop_reason": trial.stop_reason,
        "mtd": mtd,
    }


DECISION_TYPES = (Trial.CohortDecided.TOPIC, Trial.CohortDecisionOverridden.TOPIC)


def decision_signer(statement: dict[str, Any]) -> dict[str, Any]:
    """Who signed a cohort decision, from its signed statement."""
    return {**statement["actor"], "meaning": statement["meaning"],
            "recorded_at": statement["recorded_at"], "position": statement["position"]}


def with_signers(status: dict[str, Any], signers: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """The trial status with each cohort decision's signer beside it."""
    decisions = [{**d, "signed_by": signers.get(d["cohort_number"])} for d in status["decisions"]]
    return {**status, "decisions": decisions}


@dataclass(frozen=True)
class Recorded:
    """What a `record` command wrote, for rendering."""

    entries: list[dict[str, Any]]  # the signed statements written
    trial: str
    patient: str | None
    summary: dict[str, Any]


class TrialRecords:
    """Trial actions on an open ledger. Every method records one signed batch."""

    def __init__(self, ledger: TrialLedger) -> None:
        self.ledger = ledger

    # -- finding things ------------------------------------------------------------------

    def trial_ids(self) -> list[str]:
        notifications = self.ledger.signed_recorder.select_notifications(
            start=None, limit=1_000_000, topics=[Trial.Registered.TOPIC]
        )
        return sorted(
            self.ledger.repository.get(UUID(str(n.originator_id))).protocol_id
            for n in notifications
        )

    def trial(self, protocol_id: str | None) -> Trial:
        if protocol_id is None:
            ids = self.trial_ids()
            if len(ids) != 1:
                raise LedgerError(
                    "no trial registered yet (trialctl trial register FILE)"
                    if not ids
                    else f"several trials: pass --trial ({', '.join(ids)})"
                )
            protocol_id = ids[0]
        try:
            trial: Trial = self.ledger.repository.get(trial_id_for(protocol_id))
        except AggregateNotFoundError as e:
            raise LedgerError(f"no trial {protocol_id!r} in this ledger") from e
        return trial

    def patient(self, trial: Trial, patient_id: str) -> Patient:
        try:
            patient: Patient = self.ledger.repository.get(
                patient_aggregate_id(trial.id, patient_id)
            )
        except AggregateNotFoundError as e:
            raise LedgerError(
                f"no patient {patient_id!r} in trial {trial.protocol_id} (record consent first)"
            ) from e
        return patient

    def _trial_and_patient(self, trial_ref: str | None, patient_id: str) -> tuple[Trial, Patient]:
        trial = self.trial(trial_ref)
        return trial, self.patient(trial, patient_id)

    def status(self, trial: Trial) -> dict[str, Any]:
        return trial_status(trial)

    def _record(
        self,
        actor: UnlockedUser,
        trial: Trial,
        patient: Patient | None,
        *aggregates: Any,
        summary: dict[str, Any] | None = None,
        meaning: str | None = None,
    ) -> Recorded:
        notification_ids = self.ledger.record(actor, *aggregates, meaning=meaning)
        written = self.ledger.signed_recorder.entries_for(notification_ids)
        return Recorded(
            [parse_entry(state).statement for _, state in written],
            trial.protocol_id,
            patient.patient_id if patient else None,
            summary if summary is not None else (patient.summary() if patient else {}),
        )

    # -- the actions ---------------------------------------------------------------------

    def register_trial(self, actor: UnlockedUser, protocol: Protocol, now: datetime) -> Recorded:
        if protocol.id in self.trial_ids():
            raise LedgerError(f"trial {protocol.id} is already registered")
        trial = Trial.register(protocol, now)
        return self._record(
            actor,
            trial,
            None,
            trial,
            summary={
                "protocol": protocol.id,
                "title": protocol.title,
                "levels": protocol.num_levels,
            },
        )

    def consent(
        self,
        actor: UnlockedUser,
        trial_ref: str | None,
        patient_id: str,
        consent_version: str,
        signed_on: str,
        now: datetime,
    ) -> Recorded:
        trial = self.trial(trial_ref)
        patient = Patient.consent(trial.id, patient_id, consent_version, signed_on, now)
        try:
            self.patient(trial, patient_id)
        except LedgerError:
            return self._record(actor, trial, patient, patient)
        raise TrialRuleError("consent-once", f"patient {patient_id} has already consented")

    def screen(
        self,
        actor: UnlockedUser,
        trial_ref: str | None,
        patient_id: str,
        values: dict[str, Any],
        screened_on: str,
        now: datetime,
    ) -> Recorded:
        trial, patient = self._trial_and_patient(trial_ref, patient_id)
        eligibility = patient.screen(values, screened_on, trial.protocol, now)
        return self._record(
            actor,
            trial,
            patient,
            patient,
            summary={**patient.summary(), "eligibility": eligibility},
        )

    def enroll(
        self,
        actor: UnlockedUser,
        trial_ref: str | None,
        patient_id: str,
        enrolled_on: str,
        now: datetime,
    ) -> Recorded:
        trial, patient = self._trial_and_patient(trial_ref, patient_id)
        journey.enroll(trial, patient, enrolled_on, now)
        return self._record(actor, trial, patient, trial, patient)

    def dose(
        self,
        actor: UnlockedUser,
        trial_ref: str | None,
        patient_id: str,
        agent: str,
        dose: str,
        unit: str,
        course: int,
        day: int,
        given_at: str,
        now: datetime,
    ) -> Recorded:
        trial, patient = self._trial_and_patient(trial_ref, patient_id)
        patient.give_dose(agent, dose, unit, course, day, given_at, trial.protocol, now)
        return self._record(actor, trial, patient, patient)

    def adverse_event(
        self,
        actor: UnlockedUser,
        trial_ref: str | None,
        patient_id: str,
        ae_id: str,
        term: str,
        grade: int,
        attribution: str,
        onset: str,
        resolved_on: str | None,
        now: datetime,
    ) -> Recorded:
        trial, patient = self._trial_and_patient(trial_ref, patient_id)
        patient.report_adverse_event(ae_id, term, grade, attribution, onset, resolved_on, now)
        return self._record(actor, trial, patient, patient)

    def adjudicate_dlt(
        self,
        actor: UnlockedUser,
        trial_ref: str | None,
        patient_id: str,
        ae_id: str,
        is_dlt: bool,
        rule_code: str | None,
        decided_on: str,
        now: datetime,
    ) -> Recorded:
        trial, patient = self._trial_and_patient(trial_ref, patient_id)
        counts = journey.adjudicate_dlt(trial, patient, ae_id, is_dlt, rule_code, decided_on, now)
        return self._record(
            actor,
            trial,
            patient,
            trial,
            patient,
            summary={**patient.summary(), "counts_toward_decision": counts},
        )

    def complete_course(
        self,
        actor: UnlockedUser,
        trial_ref: str | None,
        patient_id: str,
        course: int,
        completed_on: str,
        evaluable: bool,
        reason: str | None,
        now: datetime,
    ) -> Recorded:
        trial, patient = self._trial_and_patient(trial_ref, patient_id)
        journey.complete_course(trial, patient, course, completed_on, evaluable, reason, now)
        return self._record(actor, trial, patient, trial, patient)

    def response(
        self,
        actor: UnlockedUser,
        trial_ref: str | None,
        patient_id: str,
        assessed_on: str,
        lesions: list[TargetLesion],
        new_lesions: bool,
        non_target_progression: bool,
        baseline: bool,
        now: datetime,
    ) -> Recorded:
        trial, patient = self._trial_and_patient(trial_ref, patient_id)
        category = patient.assess_response(
            assessed_on, lesions, new_lesions, non_target_progression, baseline, now
        )
        return self._record(
            actor, trial, patient, patient, summary={**patient.summary(), "response": category}
        )

    def observe(
        self,
        actor: UnlockedUser,
        trial_ref: str | None,
        patient_id: str,
        kind: str,
        value: str,
        observed_on: str,
        now: datetime,
    ) -> Recorded:
        trial, patient = self._trial_and_patient(trial_ref, patient_id)
        patient.observe(kind, value, observed_on, trial.protocol, now)
        return self._record(actor, trial, patient, patient)

    def withdraw(
        self,
        actor: UnlockedUser,
        trial_ref: str | None,
        patient_id: str,
        withdrawn_on: str,
        reason: str,
        now: datetime,
    ) -> Recorded:
        trial, patient = self._trial_and_patient(trial_ref, patient_id)
        journey.withdraw(trial, patient, withdrawn_on, reason, now)
        return self._record(actor, trial, patient, trial, patient)

    def off_study(
        self,
        actor: UnlockedUser,
        trial_ref: str | None,
        patient_id: str,
        off_on: str,
        reason: str,
        now: datetime,
    ) -> Recorded:
        trial, patient = self._trial_and_patient(trial_ref, patient_id)
        journey.go_off_study(trial, patient, off_on, reason, now)
        return self._record(actor, trial, patient, trial, patient)

    def decide(
        self,
        actor: UnlockedUser,
        trial_ref: str | None,
        action: str,
        next_level: int | None,
        mtd_level: int | None,
        override_reason: str | None,
        now: datetime,
    ) -> Recorded:
        trial = self.trial(trial_ref)
        engine = trial.decide(action, next_level, mtd_level, now, override_reason)
        decision = trial.decisions[-1]
        return self._record(
            actor,
            trial,
            None,
            trial,
            summary={
                **decision,
                "engine": None
                if engine is None
                else {
                    "action": engine.action,
                    "next_level": engine.next_level,
                    "mtd_level": engine.mtd_level,
                    "reason": engine.reason,
                },
            },
        )

    def correct(
        self,
        actor: UnlockedUser,
        trial_ref: str | None,
        patient_id: str,
        target_version: int,
        changes: dict[str, Any],
        reason: str,
        now: datetime,
    ) -> Recorded:
        trial, patient = self._trial_and_patient(trial_ref, patient_id)
        new_values = patient.correct(target_version, changes, reason, trial.protocol, now)
        return self._record(
            actor,
            trial,
            patient,
            patient,
            meaning=Meaning.CORRECTED,
            summary={**patient.summary(), "corrected": new_values},
        )
