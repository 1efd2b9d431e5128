"""The auditor's replay: a trial and its patients exactly as they stood at a past moment or
position, rebuilt from the signed entries alone (never from read models). The cost follows
the chosen trial: its own entries and its patients', found through the event-type index."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from trialctl.domain import queries as query_rules
from trialctl.domain.deviations import deviation_counts
from trialctl.domain.patient import (
    Patient,
    eligibility_deviations,
    ends_of_study,
    sae_report_states,
)
from trialctl.domain.trial import Trial
from trialctl.ledger.decisions import DECISION_TYPES, decision_signer, with_signers
from trialctl.ledger.entry import parse_entry
from trialctl.ledger.errors import LedgerError
from trialctl.ledger.history import advanced
from trialctl.ledger.mapper import parse_time
from trialctl.ledger.trials import TrialActions

Cutoff = Callable[[dict[str, Any]], bool]


def cutoff(upto: int | None, as_of: datetime | None) -> Cutoff:
    """Whether a signed statement is at or before the position `upto` and the moment `as_of`
    (either may be None: no bound)."""
    def included(statement: dict[str, Any]) -> bool:
        if upto is not None and statement["position"] > upto:
            return False
        return not (as_of is not None and parse_time(statement["recorded_at"]) > as_of)

    return included


def _replay(
    records: TrialActions, aggregate_id: UUID, included: Cutoff,
    signers: dict[int, dict[str, Any]] | None = None,
) -> tuple[Any, int]:
    """The aggregate from its entries up to the cutoff, and the last position used; cohort
    decisions' signers are gathered into `signers` on the way."""
    ledger = records.ledger
    entries = []
    last = -1
    for stored in ledger.signed_recorder.select_events(aggregate_id):
        statement = parse_entry(stored.state).statement
        if not included(statement):
            break  # an aggregate's entries only move forward in position and time
        entries.append(stored)
        last = max(last, int(statement["position"]))
        if signers is not None and statement["type"] in DECISION_TYPES:
            signers[statement["payload"]["cohort_number"]] = decision_signer(statement)
    return advanced(None, entries, ledger.mapper), last


def replayed_instant(records: TrialActions, upto: int | None,
                     as_of: datetime | None) -> datetime:
    """The moment a replay speaks for, in UTC: `as_of` when given, else the recorded time of
    the entry at `upto` (the ledger's last entry when `upto` is past it)."""
    if as_of is not None:
        return as_of.astimezone(UTC)
    recorder = records.ledger.signed_recorder
    position = min(int(upto or 0), recorder.tree_size() - 1)
    found = recorder.entry_at(position) if position >= 0 else None
    if found is None:
        return datetime(1970, 1, 1, tzinfo=UTC)
    return parse_time(parse_entry(found[1].state).statement["recorded_at"]).astimezone(UTC)


def replay_trial(
    records: TrialActions, trial_ref: str | None, upto: int | None, as_of: datetime | None
) -> dict[str, Any]:
    if upto is None and as_of is None:
        raise LedgerError("replay needs --as-of TIME or --upto POSITION")
    included = cutoff(upto, as_of)
    current = records.trial(trial_ref)
    signers: dict[int, dict[str, Any]] = {}
    trial, last = _replay(records, current.id, included, signers)
    if not isinstance(trial, Trial):
        raise LedgerError(f"trial {current.protocol_id} was not registered yet at that point")
    patients: dict[str, Patient] = {}
    for patient_record in records.trial_patient_ids(trial):
        patient, patient_last = _replay(records, patient_record, included)
        if isinstance(patient, Patient):
            patients[patient.patient_id] = patient
            last = max(last, patient_last)
    protocol = trial.protocol
    summaries = [patients[p].summary(protocol) for p in sorted(patients)]
    instant = replayed_instant(records, upto, as_of)
    return {
        "upto": upto,
        "as_of": None if as_of is None else as_of.isoformat(),
        "instant": instant.isoformat(),
        "last_position_included": last,
        # Counts derived from the patients' facts as they stood then, corrections then made.
        "status": {
            **with_signers(trial.status(patients), signers),
            "eligibility_deviations": eligibility_deviations(summaries),
            "end_of_study": ends_of_study(summaries),
            "deviations": deviation_counts(summaries),
            # Due, late or overdue as of the moment replayed, never the day replay runs.
            "sae_reports": sae_report_states(summaries, instant.date()),
            # Queries not closed then, aged to that moment.
            "open_queries": query_rules.by_number(
                row for p in sorted(patients) for row in query_rules.open_query_rows(
                    p, patients[p].queries, instant.date())),
        },
        "patients": summaries,
    }
