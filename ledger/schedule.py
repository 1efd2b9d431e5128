"""`trialctl schedule`: the protocol's assessment schedule per patient, read from the
patients' current facts (domain/schedule.py); nothing here is stored. A closed trial's
schedule is read as of its closing day."""

from __future__ import annotations

from datetime import date
from typing import Any

from trialctl.domain.schedule import as_of, patient_schedule
from trialctl.ledger.trials import TrialActions

STATES = ("overdue", "due", "upcoming", "done")


def schedule_rows(
    actions: TrialActions, trial_ref: str | None, patient_id: str | None, today: date,
    due_by: date | None = None,
) -> list[dict[str, Any]]:
    """Every patient's occurrences (or one patient's), in patient and due-date order."""
    trial = actions.trial(trial_ref)
    # A closed trial is read as of its closing day: nothing is due or overdue after it.
    closed_on = None if trial.closed is None else str(trial.closed["closed_on"])
    today = as_of(today, closed_on)
    due_by = None if due_by is None else as_of(due_by, closed_on)
    if patient_id is not None:
        patients = [actions.patient(trial, patient_id)]
    else:
        patients = sorted(actions.roster(trial).values(), key=lambda p: p.patient_id)
    rows = [
        row for patient in patients
        for row in patient_schedule(patient, trial.protocol, today, due_by)
    ]
    return sorted(rows, key=lambda r: (r["patient_id"], r["due_on"], r["assessment"]))
