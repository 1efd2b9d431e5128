"""Cohort decisions on the ledger: who signed each, and the evidence each was made on.

A decision entry carries, in its signed statement, the engine's recommendation at that
moment and the entries of the cohort's patients it rests on (FORMAT.md "Decision
evidence"). The writer and `verify` build that evidence with the same function,
`evidence_for`, from the trial as it stood just before the decision; the writer reads the
entries from the store, `verify` from its own pass over the signed rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from trialctl.domain.deviations import deviation_counts
from trialctl.domain.facts import CourseCompletion, DltAdjudication
from trialctl.domain.patient import (
    Patient,
    eligibility_deviations,
    ends_of_study,
    patient_aggregate_id,
    sae_report_states,
)
from trialctl.domain.trial import Roster, Trial
from trialctl.ledger.entry import entry_hash, parse_entry
from trialctl.ledger.recorder import SignedRecorder
from trialctl.ledger.views import TrialViews

DECISION_TYPES = (Trial.CohortDecided.TOPIC, Trial.CohortDecisionOverridden.TOPIC)
# The records a 3+3 decision rests on: DLT adjudications and course completions, and the
# corrections of either (a correction names the corrected record's kind in its payload).
COUNTED_TYPES = frozenset({Patient.DltAdjudicated.TOPIC, Patient.CourseCompleted.TOPIC})
COUNTED_CORRECTIONS = frozenset({DltAdjudication.KIND, CourseCompletion.KIND})

# One counted entry, as the evidence lists it: position, entry_hash, type, patient.
EvidenceEntry = dict[str, Any]


def is_counted(statement: Mapping[str, Any]) -> bool:
    """Whether a patient entry is one a cohort decision counts."""
    if statement["type"] in COUNTED_TYPES:
        return True
    payload = statement["payload"]
    return (
        statement["type"] == Patient.Corrected.TOPIC
        and isinstance(payload, Mapping)
        and payload.get("kind") in COUNTED_CORRECTIONS
    )


def counted_entry(statement: Mapping[str, Any], stored: bytes, patient: str) -> EvidenceEntry:
    return {
        "position": int(statement["position"]),
        "entry_hash": entry_hash(stored),
        "type": str(statement["type"]),
        "patient": patient,
    }


def evidence_for(
    trial: Trial, patients: Roster, counted: Mapping[str, Sequence[EvidenceEntry]]
) -> dict[str, Any]:
    """The evidence of the decision now due on `trial` (as it stands just before it):
    the engine's recommendation, the cohort's DLT and evaluable counts as the trial's
    status derives them, and the counted entries of every patient assigned to the cohort
    (replaced ones too: their records are why they do not count), in position order.
    `patients` are the trial's patients as they stood then (their facts decide the counts);
    `counted` holds each patient's counted entries recorded so far."""
    cohort = trial.current_cohort
    number = int(cohort["number"])
    shown = trial.status(patients)["cohorts"][number - 1]
    step = trial.expected_step(patients)
    recommendation = None if step is None else {
        "action": step.action, "next_level": step.next_level, "mtd_level": step.mtd_level,
    }
    entries = sorted(
        (entry for patient in cohort["patients"] for entry in counted.get(patient, ())),
        key=lambda entry: int(entry["position"]),
    )
    return {
        "cohort_number": number,
        "recommendation": recommendation,
        "dlts": int(shown["dlts"]),
        "evaluable": int(shown["evaluated"]),
        "entries": entries,
    }


def stored_evidence(
    recorder: SignedRecorder, trial: Trial, patients: Roster
) -> dict[str, Any]:
    """`evidence_for` the decision now due, with the counted entries read from the store."""
    counted: dict[str, list[EvidenceEntry]] = {}
    for patient in trial.current_cohort["patients"]:
        for stored in recorder.select_events(patient_aggregate_id(trial.id, patient)):
            statement = parse_entry(stored.state).statement
            if is_counted(statement):
                counted.setdefault(patient, []).append(
                    counted_entry(statement, stored.state, patient)
                )
    return evidence_for(trial, patients, counted)


def describe_entries(entries: Iterable[Mapping[str, Any]]) -> str:
    listed = [f"{e['position']} ({str(e['type']).rpartition('.')[2]} {e['patient']})"
              for e in entries]
    return ", ".join(listed) or "none"


def decision_signer(statement: dict[str, Any]) -> dict[str, Any]:
    """Who signed a cohort decision, from its signed statement."""
    return {**statement["actor"], "meaning": statement["meaning"],
            "recorded_at": statement["recorded_at"], "position": statement["position"]}


def shown_status(
    status: dict[str, Any], views: TrialViews, trial_id: str, on: date | None = None
) -> dict[str, Any]:
    """The trial status as every command shows it: each decision's signer beside it, the
    patients enrolled but since found ineligible, each serious event's report as it stands
    on `on` (today by default) and the queries not closed yet, aged on `on`, from the
    patient and query read models."""
    summaries = views.patient_summaries(trial_id)
    today = on or datetime.now(UTC).date()
    return {**with_signers(status, views.decision_signers(trial_id)),
            "eligibility_deviations": eligibility_deviations(summaries),
            "deviations": deviation_counts(summaries),
            "sae_reports": sae_report_states(summaries, today),
            "end_of_study": ends_of_study(summaries),
            # Aged on `on`, from the raised and closed dates kept in the read model.
            "open_queries": views.open_queries(trial_id, today)}


def with_signers(status: dict[str, Any], signers: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """The trial status with each cohort decision's signer beside it."""
    decisions = [{**d, "signed_by": signers.get(d["cohort_number"])} for d in status["decisions"]]
    return {**status, "decisions": decisions}
