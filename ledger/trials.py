"""The trial on the ledger: thin actions that load the trial and patient, call one domain
step, and record it signed.

A command names what it asks for as a typed request (`Registration`, `PatientStep` with a
declared fact, `CohortDecision`). `check` runs the domain step on freshly loaded aggregates
and saves nothing, so a refusal comes before anyone is asked for a password; `perform`
loads them again, runs the same step and records it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate

from trialctl.domain import journey
from trialctl.domain.facts import Consent, Correction, Deviation, Fact, Reconsent
from trialctl.domain.patient import Patient, patient_aggregate_id
from trialctl.domain.protocol import Protocol
from trialctl.domain.rules import TrialRuleError
from trialctl.domain.trial import Roster, Trial, trial_id_for
from trialctl.ledger.application import TrialLedger, UnlockedUser
from trialctl.ledger.entry import parse_entry
from trialctl.ledger.errors import LedgerError
from trialctl.ledger.history import project_events
from trialctl.ledger.requests import (
    CohortDecision,
    PatientStep,
    Registration,
    Request,
    TrialClosure,
)
from trialctl.ledger.roles import Meaning


@dataclass(frozen=True)
class Recorded:
    """What a `record` command wrote, for rendering."""

    entries: list[dict[str, Any]]  # the signed statements written
    trial: str
    patient: str | None
    summary: dict[str, Any]


@dataclass(frozen=True)
class _Pending:
    """A domain step taken on loaded aggregates, not yet saved."""

    trial: Trial
    patient: Patient | None
    aggregates: tuple[Aggregate, ...]
    summary: dict[str, Any]
    meaning: str | None = None
    evidence: dict[str, Any] | None = None  # a cohort decision's, for its signed statement
    claims: tuple[tuple[str, str], ...] = ()  # ids taken, unique in the ledger (a query's)


class TrialActions:
    """Trial actions on an open ledger. Every `perform` records one signed batch."""

    # Whether a step reports the patient's summary: a batch reports positions only, and
    # the summary grades every lab of the record again, which grows with the record.
    summarises = True

    def __init__(self, ledger: TrialLedger) -> None:
        self.ledger = ledger

    # -- finding things ------------------------------------------------------------------

    def trial_ids(self) -> list[str]:
        notifications = self.ledger.signed_recorder.select_notifications(
            start=None, limit=1_000_000, topics=[Trial.Registered.TOPIC]
        )
        # The registration names the protocol: decoding it, not replaying each trial,
        # keeps this independent of how much every trial holds.
        registrations = (self.ledger.mapper.to_domain_event(n) for n in notifications)
        return sorted(r.protocol_id for r in registrations if isinstance(r, Trial.Registered))

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
            trial: Trial = self._load(trial_id_for(protocol_id))
        except AggregateNotFoundError as e:
            raise LedgerError(f"no trial {protocol_id!r} in this ledger") from e
        return trial

    def patient(self, trial: Trial, patient_id: str) -> Patient:
        try:
            patient: Patient = self._load(patient_aggregate_id(trial.id, patient_id))
        except AggregateNotFoundError as e:
            raise LedgerError(
                f"no patient {patient_id!r} in trial {trial.protocol_id} (record consent first)"
            ) from e
        return patient

    def _load(self, aggregate_id: UUID) -> Any:
        """An aggregate as stored; a batch (`ledger/batch.py`) answers with its own
        uncommitted state instead. A patient's record is read from its newest trustworthy
        snapshot and the entries after it when there is one (`ledger/snapshots.py`)."""
        snapshotted = self.ledger.patient_snapshots.load(aggregate_id)
        if snapshotted is not None:
            return snapshotted
        return self.ledger.repository.get(aggregate_id, projector_func=project_events)

    def entry_positions(self, patient: Patient) -> dict[int, int]:
        """The ledger position of each version of the patient's record."""
        return {
            int(stored.originator_version): int(parse_entry(stored.state).statement["position"])
            for stored in self.ledger.signed_recorder.select_events(patient.id)
        }

    def roster(self, trial: Trial) -> dict[str, Patient]:
        """Every patient assigned to one of the trial's cohorts, as they stand now: the
        trial's counts are derived from their facts."""
        return {patient_id: self.patient(trial, patient_id)
                for patient_id in self._roster_ids(trial)}

    @staticmethod
    def _roster_ids(trial: Trial) -> list[str]:
        return [patient_id for cohort in trial.cohorts for patient_id in cohort["patients"]]

    def status(self, trial_ref: str | None) -> dict[str, Any]:
        """The trial status now, with each cohort decision's signer and the trial's queries
        not closed yet (aged today): from the read models, brought up to date first, or
        computed from the trial when they hold no row yet."""
        # The read models and decision evidence load with the first status or decision: a
        # patient's step (most of `record`) needs neither.
        from trialctl.ledger.decisions import shown_status
        from trialctl.ledger.projection import catch_up

        trial = self.trial(trial_ref)
        views = catch_up(self.ledger)  # never a stale answer
        status = views.trial_status(trial.protocol_id) or trial.status(self.roster(trial))
        return shown_status(status, views, str(trial.id))

    def query_holders(self, trial: Trial) -> dict[str, Patient]:
        """Query id → the patient whose record it is about, across the trial."""
        holders: dict[str, Patient] = {}
        # Only this trial's records are asked about, so other trials' queries are not read.
        for originator in self.ledger.signed_recorder.originators_with(
                Patient.QueryRaised.TOPIC, self.trial_patient_ids(trial)):
            patient: Patient = self.ledger.repository.get(originator)
            holders.update({query_id: patient for query_id in patient.queries})
        return holders

    def trial_patient_ids(self, trial: Trial) -> list[UUID]:
        """The record ids of the trial's patients, in the order they consented: each opening
        consent names its trial, so only this trial's records are replayed."""
        # Every consent of the trial holds its id as written (hex and hyphens, never
        # escaped, nothing LIKE treats as a wildcard): the database returns only those
        # rows, so other trials' consents cost a byte search there, not a read here.
        stored = self.ledger.signed_recorder.stored_events_naming(
            Patient.ConsentSigned.TOPIC, str(trial.id))
        consents = (self.ledger.mapper.to_domain_event(s) for s in stored)
        found = list(dict.fromkeys(
            c.originator_id for c in consents
            if isinstance(c, Patient.ConsentSigned)
            and vars(c).get("trial_id") == str(trial.id)))  # fields declared by Consent
        held = set(found)
        unfound = [p for p in self._roster_ids(trial)
                   if patient_aggregate_id(trial.id, p) not in held]
        if unfound:
            # Every cohort patient consented first: a consent that no longer names its
            # trial was changed in the store, and counts without it would be wrong.
            raise LedgerError(f"trial {trial.protocol_id}'s cohorts name "
                              f"{', '.join(unfound)}, whose consent this ledger does not "
                              "hold; run 'trialctl verify'")
        return found


    def decisions_since_corrected(self, trial: Trial, patient_id: str) -> list[dict[str, Any]]:
        """The trial's decisions made on data since corrected that involve this patient."""
        return [
            decision
            for decision in self.status(trial.protocol_id)["decisions"]
            if decision["since_corrected"]
            and any(p["patient_id"] == patient_id for p in decision["review"]["patients"])
        ]

    # -- the actions ---------------------------------------------------------------------

    def check(self, request: Request, now: datetime, signer: str | None = None) -> None:
        """Refuse the request as `perform` would, without recording anything: the trial's
        rules, and (given the signer's id) whether any role they hold may sign it."""
        pending = self._take(request, now)
        if signer is not None:
            self.ledger.check_may_record(signer, *pending.aggregates)

    def perform(self, request: Request, actor: UnlockedUser, now: datetime) -> Recorded:
        pending = self._take(request, now)
        notification_ids = self.ledger.record(
            actor, *pending.aggregates, meaning=pending.meaning, evidence=pending.evidence,
            claims=pending.claims,
        )
        self.ledger.patient_snapshots.keep(
            actor.keys, [a for a in pending.aggregates if isinstance(a, Patient)])
        written = self.ledger.signed_recorder.entries_for(notification_ids)
        return Recorded(
            [parse_entry(state).statement for _, state in written],
            pending.trial.protocol_id,
            pending.patient.patient_id if pending.patient else None,
            pending.summary,
        )

    def _take(self, request: Request, now: datetime) -> _Pending:
        match request:
            case Registration(protocol=protocol):
                return self._register(protocol, now)
            case PatientStep(fact=Consent() as consent) if not isinstance(consent, Reconsent):
                trial = self.trial(request.trial)
                if self._has_patient(trial, request.patient):  # a later signature
                    return self._take(replace(request, fact=journey.reconsent(consent)), now)
                patient = journey.consent(trial, request.patient, consent, False, now)
                summary = patient.summary(trial.protocol) if self.summarises else {}
                return _Pending(trial, patient, (patient,), summary)
            case PatientStep():
                trial = self.trial(request.trial)
                patient = self.patient(trial, request.patient)
                roster: Roster = _ReadOnDemand(self._roster_ids(trial), patient,
                                               lambda patient_id: self.patient(trial, patient_id))
                fact = self._cited(patient, request.fact)
                concluded = journey.take(trial, patient, fact, roster, now)
                meaning = Meaning.CORRECTED if isinstance(request.fact, Correction) else None
                summary = {**patient.summary(trial.protocol), **concluded} if self.summarises \
                    else concluded
                return _Pending(trial, patient, (trial, patient), summary, meaning)
            case CohortDecision():
                return self._decide(request, now)
            case TrialClosure():
                trial = self.trial(request.trial)
                trial.close(request.closed_on, request.reason, now)
                return _Pending(trial, None, (trial,), {"closed": trial.closed})

    def _cited(self, patient: Patient, fact: Fact) -> Fact:
        """A deviation citing a ledger position, with that entry's patient record version
        filled in; the position must hold an entry of this patient."""
        if not isinstance(fact, Deviation) or fact.record is None:
            return fact
        found = self.ledger.signed_recorder.entry_at(fact.record) if fact.record >= 0 else None
        if found is None or found[1].originator_id != patient.id:
            raise TrialRuleError(
                "deviation-record", f"#{fact.record} is not an entry of {patient.patient_id}"
            )
        return replace(fact, record_version=int(found[1].originator_version))

    def _has_patient(self, trial: Trial, patient_id: str) -> bool:
        try:
            self.patient(trial, patient_id)
        except LedgerError:
            return False
        return True

    def _register(self, protocol: Protocol, now: datetime) -> _Pending:
        if protocol.id in self.trial_ids():
            raise LedgerError(f"trial {protocol.id} is already registered")
        trial = Trial.register(protocol, now)
        summary = {"protocol": protocol.id, "title": protocol.title, "levels": protocol.num_levels}
        return _Pending(trial, None, (trial,), summary)

    def _decide(self, request: CohortDecision, now: datetime) -> _Pending:
        from trialctl.ledger.decisions import stored_evidence

        trial = self.trial(request.trial)
        patients = self.roster(trial)
        # The evidence of the decision due, taken before the decision changes the trial.
        evidence = stored_evidence(self.ledger.signed_recorder, trial, patients)
        citing: tuple[Aggregate, ...] = ()
        if request.packet_sha256 is not None:
            from trialctl.ledger.packet import cite  # the packet module reads TrialActions

            # The citation is signed in the decision's batch: one is never without the other.
            citing = (cite(self.ledger, trial, request.packet_sha256),)
        engine = trial.decide(
            request.action, request.next_level, request.mtd_level, patients, now,
            request.override_reason,
        )
        shown = None if engine is None else {
            "action": engine.action,
            "next_level": engine.next_level,
            "mtd_level": engine.mtd_level,
            "reason": engine.reason,
        }
        summary = {**trial.decisions[-1], "engine": shown}
        if citing:
            summary["packet"] = request.packet_sha256
        return _Pending(trial, None, (trial, *citing), summary, evidence=evidence)


class _ReadOnDemand(Mapping[str, Patient]):
    """The trial's roster for one patient's step, with that patient as the step holds them:
    each other record is read only when a rule reads it. Only enrollment reads the roster,
    so a dose, a lab or an adverse event reads no other patient's record."""

    def __init__(self, roster_ids: list[str], subject: Patient,
                 read: Callable[[str], Patient]) -> None:
        self._ids = list(dict.fromkeys([*roster_ids, subject.patient_id]))
        self._read = read
        self._records: dict[str, Patient] = {subject.patient_id: subject}

    def __getitem__(self, patient_id: str) -> Patient:
        if patient_id not in self._records:
            if patient_id not in self._ids:
                raise KeyError(patient_id)
            self._records[patient_id] = self._read(patient_id)
        return self._records[patient_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)
