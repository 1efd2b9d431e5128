"""A patient's audit rows are found through the trial and patient aggregates alone, so
`patient` and `log --patient` cost the same however many other trials reuse the patient id."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.dialects import sqlite

from tests.test_projections import small_trial
from tests.trial_helpers import day, nct_protocol
from trialctl.domain.facts import Consent
from trialctl.ledger.application import TrialLedger
from trialctl.ledger.projection import catch_up
from trialctl.ledger.requests import PatientStep, Registration
from trialctl.ledger.trials import TrialActions
from trialctl.ledger.views import audit_view, patient_audit_filter


@pytest.fixture(scope="module")
def two_trials(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TrialLedger, Path]]:
    """Two trials in one ledger, each with a patient P001."""
    path = tmp_path_factory.mktemp("two-trials") / "ledger.sqlite"
    app = small_trial(f"sqlite:///{path}", patients=1)
    carol = app.unlock("carol", "carol-password")
    records = TrialActions(app)
    now = datetime.now(UTC)
    records.perform(Registration(nct_protocol()), carol, now)
    records.perform(PatientStep("NCT00084513", "P001",
                                Consent(consent_version="1.0", signed_on=day(0))), carol, now)
    yield app, path
    app.close()


def test_a_patients_rows_are_theirs_and_their_trials_entries_about_them(
    two_trials: tuple[TrialLedger, Path],
) -> None:
    app, path = two_trials
    records = TrialActions(app)
    views = catch_up(app)
    for protocol in ("TEST-0002", "NCT00084513"):
        trial = records.trial(protocol)
        patient = records.patient(trial, "P001")
        shown = [row["position"] for row in
                 views.audit_rows(patient=(str(patient.id), str(trial.id), "P001"))]
        with sqlite3.connect(path) as connection:
            expected = [position for (position,) in connection.execute(
                "SELECT position FROM trialctl_view_audit WHERE aggregate_id = ? "
                "OR (aggregate_id = ? AND patient_id = 'P001') ORDER BY position",
                (str(patient.id), str(trial.id)))]
        assert shown == expected
        assert any(row["type"] == "trialctl.Trial.PatientAssigned" for row in
                   views.audit_rows(patient=(str(patient.id), str(trial.id), "P001"))
                   ) == (protocol == "TEST-0002")  # enrolled there only


def test_the_look_up_reads_the_two_aggregates_not_every_trial_with_that_patient_id(
    two_trials: tuple[TrialLedger, Path],
) -> None:
    _, path = two_trials
    query = select(audit_view.c.row).where(*patient_audit_filter("a", "t", "P001"))
    sql = str(query.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}))
    with sqlite3.connect(path) as connection:
        plan = " ".join(str(step[3]) for step in connection.execute(f"EXPLAIN QUERY PLAN {sql}"))
    assert "trialctl_view_audit_aggregate_idx" in plan
    assert "trialctl_view_audit_patient_idx" not in plan and "SCAN" not in plan
