"""What a report shows, gathered once as plain values: the protocol, the trial status (with
each decision's signer), every patient's record, source-data-verification reviews and queries,
and the ledger's verification.

Now: the status from the read models (`TrialActions.status`) and each patient's state from
its aggregate. `--as-of` or `--checkpoint`: the status from `replay_trial` and each patient
moved on by its entries up to that moment or the checkpoint's tree size (`history.advanced`),
never from the read models. Patients are read as the dicts `Patient.state()` gives, so facts
added later reach the report by their key; reviews and queries come from the same
`ReviewActions` rows `review status` and `query list` show.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from trialctl.domain.patient import Patient
from trialctl.domain.protocol import Protocol
from trialctl.domain.queries import query_number
from trialctl.ledger.checkpoint import SignedCheckpoint
from trialctl.ledger.entry import parse_entry
from trialctl.ledger.errors import LedgerError
from trialctl.ledger.history import advanced
from trialctl.ledger.mapper import parse_time
from trialctl.ledger.replay import Cutoff, cutoff, replay_trial
from trialctl.ledger.reviews import ReviewActions
from trialctl.ledger.trials import TrialActions
from trialctl.ledger.verify import verify_ledger
from trialctl.ledger.verify_report import VerificationReport

Step = Callable[[str], None]


@dataclass(frozen=True)
class ReportData:
    protocol: dict[str, Any]
    status: dict[str, Any]
    patients: list[dict[str, Any]]  # Patient.state() of each, screening values left out
    verification: dict[str, Any]
    as_of: str | None
    generated: datetime  # the moment the report speaks for: never the wall clock
    reviews: list[dict[str, Any]] = field(default_factory=list)  # per patient, by state
    queries: list[dict[str, Any]] = field(default_factory=list)  # `query list` rows
    # Decisions made on data since corrected, with the entries involved as positions.
    since_corrected: list[dict[str, Any]] = field(default_factory=list)
    checkpoint_size: int | None = None  # `--checkpoint`: the tree size the report replays


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


def _patient_then(records: TrialActions, aggregate_id: UUID, included: Cutoff) -> Any:
    ledger = records.ledger
    entries = []
    for stored in ledger.signed_recorder.select_events(aggregate_id):
        if not included(parse_entry(stored.state).statement):
            break  # an aggregate's entries only move forward in position and time
        entries.append(stored)
    return advanced(None, entries, ledger.mapper)


def _state(patient: Patient, protocol: Protocol) -> dict[str, Any]:
    state = patient.state(protocol)
    state.pop("screening", None)  # screening values are source data, not report content
    return state


def _last_recorded_at(records: TrialActions, as_of: datetime | None,
                      size: int | None) -> datetime:
    """The moment the report speaks for: SOURCE_DATE_EPOCH when set (reproducible builds),
    else `--as-of`, else the recorded time of the last entry shown (the checkpoint's last,
    or the ledger's)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch and epoch.strip().isdigit():
        return datetime.fromtimestamp(int(epoch), UTC)
    if as_of is not None:
        return as_of
    recorder = records.ledger.signed_recorder
    last = recorder.entry_at((recorder.tree_size() if size is None else size) - 1)
    if last is None:
        return datetime(1970, 1, 1, tzinfo=UTC)
    return parse_time(parse_entry(last[1].state).statement["recorded_at"])


def _checked(report: VerificationReport, source: str,
             signed: SignedCheckpoint) -> dict[str, Any]:
    """The checkpoint as verified: refused (one line) unless its signer is a user of the
    ledger whose key signed it and the ledger's first entries hash to its root."""
    (result,) = report.checkpoints
    if result.status != "ok":
        raise LedgerError(f"checkpoint {source} does not match the ledger: {result.status}")
    return {"source": source, "tree_size": result.tree_size, "signer": result.signer,
            "root_hash": signed.checkpoint.root_hash.hex(), "time": signed.checkpoint.time,
            # The ledger holds the checkpoint's tree as a prefix of its own: the entries
            # the report shows are the ones the note signed.
            "consistent": True}


def _review_rows(reviews: ReviewActions, patients: list[Patient]) -> list[dict[str, Any]]:
    """Per patient: records unreviewed, reviewed, and reviews a correction invalidated."""
    return [reviews.review_summary(patient) for patient in patients]


def _since_corrected(records: TrialActions, status: dict[str, Any],
                     patients: dict[str, Patient]) -> list[dict[str, Any]]:
    """Each decision the patients' current facts no longer give (`Trial.decision_reviews`,
    as `status` flags it), the record versions it rests on turned into ledger positions."""
    found = []
    for decision in status["decisions"]:
        review = decision.get("review") or {}
        if not review.get("differs"):
            continue
        involved = []
        for p in review["patients"]:
            positions = records.entry_positions(patients[p["patient_id"]])
            involved.append({**p, "records": sorted(positions[v] for v in p["records"]),
                             "corrections": sorted(positions[v] for v in p["corrections"])})
        found.append({"cohort": decision["cohort_number"], "action": decision["action"],
                      "position": (decision.get("signed_by") or {}).get("position"),
                      "recorded": review["recorded"], "rederived": review["rederived"],
                      "patients": involved})
    return found


def gather(records: TrialActions, trial_ref: str | None, as_of: datetime | None,
           step: Step = lambda _: None,
           checkpoint: tuple[str, SignedCheckpoint] | None = None) -> ReportData:
    """Everything the report shows. With `checkpoint` (its source and note), the ledger is
    verified against it first, and refused unless it matches; the report then shows the
    ledger as of the checkpoint's tree size."""
    trial = records.trial(trial_ref)
    ledger = records.ledger
    step("verifying the ledger" if checkpoint is None
         else "verifying the ledger against the checkpoint")
    report = verify_ledger(ledger.signed_recorder, ledger.location.display(),
                           [checkpoint] if checkpoint is not None else [])
    shown = None if checkpoint is None else _checked(report, *checkpoint)
    size = None if checkpoint is None else checkpoint[1].checkpoint.tree_size
    step("reading the trial")
    if as_of is None and size is None:
        status = records.status(trial_ref)
        aggregates = [records.ledger.repository.get(i) for i in records.trial_patient_ids(trial)]
    else:
        upto = None if size is None else size - 1
        status = replay_trial(records, trial_ref, upto, as_of)["status"]
        included = cutoff(upto, as_of)
        aggregates = [then for then in (_patient_then(records, i, included)
                                        for i in records.trial_patient_ids(trial))
                      if isinstance(then, Patient)]
    aggregates.sort(key=lambda p: str(p.patient_id))
    generated = _last_recorded_at(records, as_of, size)
    reviews = ReviewActions(ledger)
    queries = [reviews.query_row(p, q, generated.date()) for p in aggregates for q in p.queries]
    recorded = ledger.ledger_record().checkpoints
    verification = {
        "ok": report.ok,
        "entries_checked": report.entries_checked,
        "tree_size": report.tree_size,
        "root_hash": report.root_hash,
        "findings": [f.describe() for f in report.findings],
        "last_recorded_checkpoint": recorded[-1] if recorded else None,
        "checkpoint": shown,
    }
    return ReportData(
        protocol=protocol_summary(trial.protocol),
        status=status,
        patients=[_state(p, trial.protocol) for p in aggregates],
        verification=verification,
        as_of=None if as_of is None else as_of.isoformat(),
        generated=generated,
        reviews=_review_rows(reviews, aggregates),
        queries=sorted(queries, key=lambda r: query_number(str(r["query_id"]))),
        since_corrected=_since_corrected(records, status,
                                         {str(p.patient_id): p for p in aggregates}),
        checkpoint_size=size,
    )
