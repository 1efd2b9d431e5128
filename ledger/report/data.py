"""What a report shows, gathered once as plain values: the protocol, the trial status (with
each decision's signer), every patient's record, and the ledger's verification.

Now: the status from the read models (`TrialActions.status`) and each patient's state from
its aggregate. `--as-of`: the status from `replay_trial` and each patient moved on by its
entries up to that moment (`history.advanced`), never from the read models. Patients are read
as the dicts `Patient.state()` gives, so facts added later reach the report by their key.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from trialctl.domain.patient import Patient
from trialctl.domain.protocol import Protocol
from trialctl.domain.trial import Trial
from trialctl.ledger.entry import parse_entry
from trialctl.ledger.history import advanced
from trialctl.ledger.mapper import parse_time
from trialctl.ledger.replay import replay_trial
from trialctl.ledger.trials import TrialActions
from trialctl.ledger.verify import verify_ledger

Step = Callable[[str], None]


@dataclass(frozen=True)
class ReportData:
    protocol: dict[str, Any]
    status: dict[str, Any]
    patients: list[dict[str, Any]]  # Patient.state() of each, screening values left out
    verification: dict[str, Any]
    as_of: str | None
    generated: datetime  # the moment the report speaks for: never the wall clock


def protocol_summary(protocol: Protocol) -> dict[str, Any]:
    return {
        "id": protocol.id,
        "title": protocol.title,
        "phase": protocol.phase,
        "course_length_days": protocol.course_length_days,
        "start_level": protocol.start_level,
        "design": protocol.design.to_dict(),
        "planned_accrual": protocol.planned_accrual,
        "agents": [{"name": a.name, "role": str(a.role), "route": a.route,
                    "schedule": a.schedule, "unit": a.unit} for a in protocol.agents],
        "levels": [{"level": lv.level, "dose": str(lv.dose), "unit": lv.unit,
                    "text": lv.describe()} for lv in protocol.dose_levels],
    }


def _patient_ids(records: TrialActions, trial: Trial) -> list[UUID]:
    notifications = records.ledger.signed_recorder.select_notifications(
        start=None, limit=1_000_000, topics=[Patient.ConsentSigned.TOPIC]
    )
    return [UUID(str(n.originator_id)) for n in notifications
            if parse_entry(n.state).statement["payload"].get("trial_id") == str(trial.id)]


def _patient_then(records: TrialActions, aggregate_id: UUID, as_of: datetime) -> Any:
    ledger = records.ledger
    entries = []
    for stored in ledger.signed_recorder.select_events(aggregate_id):
        if parse_time(parse_entry(stored.state).statement["recorded_at"]) > as_of:
            break  # an aggregate's entries only move forward in time
        entries.append(stored)
    return advanced(None, entries, ledger.mapper)


def _state(patient: Patient, protocol: Protocol) -> dict[str, Any]:
    state = patient.state(protocol)
    state.pop("screening", None)  # screening values are source data, not report content
    return state


def _last_recorded_at(records: TrialActions, as_of: datetime | None) -> datetime:
    """The moment the report speaks for: SOURCE_DATE_EPOCH when set (reproducible builds),
    else `--as-of`, else the last entry's recorded time."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch and epoch.strip().isdigit():
        return datetime.fromtimestamp(int(epoch), UTC)
    if as_of is not None:
        return as_of
    recorder = records.ledger.signed_recorder
    last = recorder.entry_at(recorder.tree_size() - 1)
    if last is None:
        return datetime(1970, 1, 1, tzinfo=UTC)
    return parse_time(parse_entry(last[1].state).statement["recorded_at"])


def gather(records: TrialActions, trial_ref: str | None, as_of: datetime | None,
           step: Step = lambda _: None) -> ReportData:
    trial = records.trial(trial_ref)
    step("reading the trial")
    if as_of is None:
        status = records.status(trial_ref)
        patients = [_state(records.ledger.repository.get(i), trial.protocol)
                    for i in _patient_ids(records, trial)]
    else:
        status = replay_trial(records, trial_ref, None, as_of)["status"]
        patients = []
        for aggregate_id in _patient_ids(records, trial):
            then = _patient_then(records, aggregate_id, as_of)
            if isinstance(then, Patient):
                patients.append(_state(then, trial.protocol))
    step("verifying the ledger")
    ledger = records.ledger
    report = verify_ledger(ledger.signed_recorder, ledger.location.display())
    recorded = ledger.ledger_record().checkpoints
    verification = {
        "ok": report.ok,
        "entries_checked": report.entries_checked,
        "tree_size": report.tree_size,
        "root_hash": report.root_hash,
        "findings": [f.describe() for f in report.findings],
        "last_recorded_checkpoint": recorded[-1] if recorded else None,
    }
    return ReportData(
        protocol=protocol_summary(trial.protocol),
        status=status,
        patients=sorted(patients, key=lambda p: p["patient_id"]),
        verification=verification,
        as_of=None if as_of is None else as_of.isoformat(),
        generated=_last_recorded_at(records, as_of),
    )
