"""`trialctl schedule`: the protocol's assessment schedule per patient, read from the
patients' current facts (domain/schedule.py); nothing here is stored."""

from __future__ import annotations

from datetime import date
from typing import Any

from trialctl.domain.schedule import patient_schedule
from trialctl.ledger.trials import TrialActions

STATES = ("overdue", "due", "upcoming", "done")


def schedule_rows(
    actions: TrialActions, trial_ref: str | None, patient_id: str | None, today: date,
    due_by: date | None = None,
) -> list[dict[str, Any]]:
    """Every patient's occurrences (or one patient's), in patient and due-date order."""
    trial = actions.trial(trial_ref)
    if patient_id is not None:
        patients = [actions.patient(trial, patient_id)]
    else:
        patients = sorted(actions.roster(trial).values(), key=lambda p: p.patient_id)
    rows = [
        row for patient in patients
        for row in patient_schedule(patient, trial.protocol, today, due_by)
    ]
    return sorted(rows, key=lambda r: (r["patient_id"], r["due_on"], r["assessment"]))
