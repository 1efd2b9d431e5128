"""The open-queries read model (`trialctl_view_queries`) against a replay of the signed
entries: after each step of a query's life (raised, answered, closed, reopened, a
correction citing it) the queries `status` lists from the read model are the ones the
replay finds open at that position, aged alike; and again after `projections rebuild`.
On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.demo_ledgers import demo_environment
from trialctl.domain.facts import Correction
from trialctl.domain.trial import trial_id_for
from trialctl.ledger.application import TrialLedger, open_ledger
from trialctl.ledger.demo import demo_password
from trialctl.ledger.projection import catch_up, rebuild
from trialctl.ledger.replay import replay_trial
from trialctl.ledger.requests import PatientStep
from trialctl.ledger.reviews import QueryOpen, QueryStep, ReviewActions
from trialctl.ledger.views import queries_view

TRIAL = "NCT00084513"


def _assert_read_model_equals_replay(app: TrialLedger, expected_open: list[str]) -> None:
    records = ReviewActions(app)
    views = catch_up(app)
    last = app.signed_recorder.tree_size() - 1
    replayed = replay_trial(records, TRIAL, last, None)["status"]["open_queries"]
    kept = views.open_queries(str(trial_id_for(TRIAL)), datetime.now(UTC).date())
    assert kept == replayed
    assert [q["query_id"] for q in kept] == expected_open
    assert records.status(TRIAL)["open_queries"] == replayed


def test_open_queries_kept_equal_the_replay_in_every_state(
    ledger_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = demo_environment(ledger_url, tmp_path)
    monkeypatch.setenv("TRIALCTL_HOME", env["TRIALCTL_HOME"])
    app = open_ledger(env["TRIALCTL_LEDGER"])
    try:
        actors = {u: app.unlock(u, demo_password(u)) for u in ("mona", "ivan")}
        actions = ReviewActions(app)
        trial = actions.trial(TRIAL)

        def now() -> datetime:
            return datetime.now(UTC)

        def raise_on(patient_id: str) -> tuple[str, int, int]:
            """A query on the patient's first adverse event: its id, version and position."""
            found = actions.patient(trial, patient_id)
            ae = found.adverse_events()[0]
            position = actions.record_entries(found)[ae["version"]].position
            opened = actions.perform(QueryOpen(TRIAL, patient_id, position, "grade?", "mona"),
                                     actors["mona"], now())
            return str(opened.summary["query"]), int(ae["version"]), position

        def step(query_id: str, action: str, signer: str, text: str | None = None) -> None:
            actions.perform(QueryStep(TRIAL, query_id, action, text, signer), actors[signer],
                            now())

        _assert_read_model_equals_replay(app, [])  # the demo's Q1 is closed
        first, first_version, _ = raise_on("P007")
        second, _, _ = raise_on("P006")
        third, _, _ = raise_on("P005")
        _assert_read_model_equals_replay(app, [first, second, third])
        step(first, "answer", "ivan", "grade 3 per chart")
        step(third, "close", "mona")
        _assert_read_model_equals_replay(app, [first, second])
        step(third, "reopen", "mona", "attach the lab sheet")
        step(second, "close", "mona")
        _assert_read_model_equals_replay(app, [first, third])

        found = actions.patient(trial, "P007")
        attribution = found.facts[first_version]["values"]["attribution"]
        actions.perform(PatientStep(TRIAL, "P007", Correction(
            target_version=first_version,
            changes={"attribution": "definite" if attribution != "definite" else "probable"},
            reason="per query", query=first)), actors["ivan"], now())
        step(first, "close", "mona")
        _assert_read_model_equals_replay(app, [third])

        views = rebuild(app)
        states = {row["query_id"]: row["state"] for row in views.table_rows(queries_view)}
        assert states == {"Q1": "closed", first: "closed", second: "closed", third: "open"}
        _assert_read_model_equals_replay(app, [third])
    finally:
        app.close()
