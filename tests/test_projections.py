"""Read models: kept incrementally with exactly-once tracking, equal to a rebuild row for row,
correct after a crash between writing entries and updating them, and equal at every
position to what `replay` rebuilds from the entries alone."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy
from eventsourcing.persistence import Tracking

from tests.conftest import trialctl
from tests.ledgers import engine_for, kept_status, make_staff
from tests.trial_helpers import at, day, dose, nct_protocol, screening, second_protocol
from trialctl.domain.facts import Consent, CourseCompletion, Enrolment
from trialctl.domain.trial import trial_id_for
from trialctl.ledger.application import TrialLedger, open_ledger
from trialctl.ledger.decisions import shown_status
from trialctl.ledger.entry import parse_entry
from trialctl.ledger.errors import LedgerError
from trialctl.ledger.projection import (
    TrialProjection,
    catch_up,
    compare_with_replay,
    open_views,
    rebuild,
)
from trialctl.ledger.replay import replay_trial
from trialctl.ledger.requests import CohortDecision, PatientStep, Registration
from trialctl.ledger.trials import TrialActions
from trialctl.ledger.views import VIEW_TABLES, VIEWS_NAME, TrialViews


def small_trial(url: str, patients: int = 3) -> TrialLedger:
    """A ledger holding the second protocol's first cohort, treated (and decided when full)."""
    staff = make_staff(url)
    app = staff.app
    app.grant_role(staff.alice, "carol", "principal-investigator")
    carol = app.unlock("carol", "carol-password")
    records = TrialActions(app)
    now = datetime.now(UTC)
    protocol = second_protocol()
    records.perform(Registration(protocol), carol, now)
    for number in range(1, patients + 1):
        patient = f"P{number:03d}"
        for fact in (
            Consent(consent_version="1.0", signed_on=day(0)),
            screening(protocol, 1),
            Enrolment(enrolled_on=day(2)),
            dose("examplinib", "25", "mg", at(3)),
            CourseCompletion(course=1, completed_on=day(31), not_evaluable_reason=None),
        ):
            records.perform(PatientStep(None, patient, fact), carol, now)
    if patients == 3:
        records.perform(CohortDecision(None, "escalate", 2, None, None), carol, now)
    return app


def test_incremental_read_models_equal_a_rebuild_row_for_row(
    ledger_url: str, home: Path
) -> None:
    app = small_trial(ledger_url, patients=2)
    views = catch_up(app)  # part of the story ...
    consent = PatientStep(None, "P009", Consent(consent_version="1.0", signed_on=day(5)))
    TrialActions(app).perform(consent, app.unlock("carol", "carol-password"), datetime.now(UTC))
    catch_up(app, views)  # ... then the rest, incrementally
    incremental = {table.name: views.table_rows(table) for table in VIEW_TABLES}

    rebuilt_views = rebuild(app)
    rebuilt = {table.name: rebuilt_views.table_rows(table) for table in VIEW_TABLES}

    assert rebuilt == incremental
    assert len(incremental["trialctl_view_audit"]) == app.signed_recorder.tree_size()
    assert compare_with_replay(app, views) is None


def test_a_crash_between_entries_and_views_leaves_them_correct_after_restart(
    ledger_url: str, home: Path, tmp_path: Path
) -> None:
    app = small_trial(ledger_url)
    catch_up(app)
    app.grant_role(app.unlock("alice", "alice-password"), "bob", "data-manager")
    app.close()
    crash = tmp_path / "crash.py"
    crash.write_text(
        "import os, sys\n"
        "from trialctl.ledger.application import open_ledger\n"
        "from trialctl.ledger.projection import catch_up\n"
        "from trialctl.ledger.views import TrialViews\n"
        "def write(self, session, rows, tracking):\n"
        "    self.write_rows(session, rows)\n"
        "    session.flush()\n"
        "    os._exit(3)  # the process dies with rows written and tracking not\n"
        "TrialViews.write = write\n"
        "catch_up(open_ledger(sys.argv[1]))\n"
    )
    died = subprocess.run([sys.executable, str(crash), ledger_url], capture_output=True)
    assert died.returncode == 3, died.stderr

    result = trialctl("verify", "--projections", "--ledger", ledger_url, "--json")

    assert result.returncode == 0, result
    assert json.loads(result.stdout)["ok"] is True


def test_replay_at_every_position_equals_the_projection_then(
    ledger_url: str, home: Path
) -> None:
    app = small_trial(ledger_url, patients=3)
    records = TrialActions(app)
    views = None
    first_trial_position = None
    for notification in app.signed_recorder.select_notifications(start=None, limit=10_000):
        views = catch_up(app, views, stop=notification.id)
        position = parse_entry(notification.state).position
        status = views.trial_status("TEST-0002")
        if status is not None:
            status = shown_status(status, views, str(trial_id_for("TEST-0002")))
        if status is None:
            continue
        first_trial_position = first_trial_position or position
        assert kept_status(replay_trial(records, None, position, None)) == status, position
    assert first_trial_position is not None


def test_verify_projections_names_a_read_model_row_that_differs(
    ledger_url: str, home: Path
) -> None:
    app = small_trial(ledger_url, patients=1)
    catch_up(app)
    with engine_for(ledger_url).begin() as connection:
        connection.execute(sqlalchemy.text(
            "UPDATE trialctl_view_patients SET status = 'off-study'"))

    result = trialctl("verify", "--projections", "--ledger", ledger_url, "--json")

    assert result.returncode == 1
    (finding,) = json.loads(result.stdout)["findings"]
    assert finding["check"] == "projections"
    assert finding["detail"].startswith("trialctl_view_patients row 0")


def test_projections_rebuild_command(ledger_url: str, home: Path) -> None:
    small_trial(ledger_url, patients=1).close()
    result = trialctl("projections", "rebuild", "--ledger", ledger_url)
    assert result.returncode == 0, result
    assert "rebuilt" in result.stdout
    status = json.loads(trialctl("status", "--json", "--ledger", ledger_url).stdout)
    assert status["trial"] == "TEST-0002"


@pytest.mark.parametrize("reader", ["status", "patient"])
def test_readers_never_see_a_stale_answer(ledger_url: str, home: Path, reader: str) -> None:
    app = small_trial(ledger_url, patients=1)
    catch_up(app)
    records = TrialActions(app)
    consent = PatientStep(None, "P002", Consent(consent_version="1.0", signed_on=day(4)))
    records.perform(consent, app.unlock("carol", "carol-password"), datetime.now(UTC))
    app.close()
    args = ["status"] if reader == "status" else ["patient", "P002"]
    result = trialctl(*args, "--json", "--ledger", ledger_url)
    assert result.returncode == 0, result
    data = json.loads(result.stdout)
    if reader == "patient":
        assert data["patient"]["patient_id"] == "P002"
        assert [r["type"] for r in data["timeline"]] == ["trialctl.Patient.ConsentSigned"]
    else:
        assert data["next"]["code"] == "enroll"
    assert open_ledger(ledger_url).signed_recorder.tree_size() > 0


def test_several_trials_in_one_ledger(ledger_url: str, home: Path) -> None:
    app = small_trial(ledger_url, patients=1)
    carol = app.unlock("carol", "carol-password")
    TrialActions(app).perform(Registration(nct_protocol()), carol, datetime.now(UTC))
    app.close()

    ambiguous = trialctl("status", "--ledger", ledger_url)
    chosen = trialctl("status", "--json", "--trial", "NCT00084513", "--ledger", ledger_url)
    listed = trialctl("trial", "list", "--json", "--ledger", ledger_url)

    assert ambiguous.returncode == 1
    assert "several trials: pass --trial (NCT00084513, TEST-0002)" in ambiguous.stderr
    assert json.loads(chosen.stdout)["trial"] == "NCT00084513"
    assert [t["trial"] for t in json.loads(listed.stdout)] == ["NCT00084513", "TEST-0002"]


def test_the_library_entry_point_takes_domain_events_and_builds_the_same_views(
    ledger_url: str, home: Path
) -> None:
    """eventsourcing's `Projection` contract: `process_event(domain_event, tracking)`, as a
    `ProjectionRunner` calls it, one event at a time, gives the rows a batched catch-up does."""
    app = small_trial(ledger_url)
    views = TrialViews(app.signed_recorder.datastore)
    views.drop()
    views.create_table()
    projection = TrialProjection(views, app)
    for notification in app.signed_recorder.select_notifications(start=None, limit=10_000):
        projection.process_event(
            app.mapper.to_domain_event(notification), Tracking(VIEWS_NAME, notification.id)
        )
    one_by_one = {table.name: views.table_rows(table) for table in VIEW_TABLES}

    assert views.position() == app.signed_recorder.max_notification_id()
    assert compare_with_replay(app, views) is None
    batched = rebuild(app)
    assert {table.name: batched.table_rows(table) for table in VIEW_TABLES} == one_by_one


def test_the_library_entry_point_refuses_a_tracking_id_of_another_event(
    ledger_url: str, home: Path
) -> None:
    app = small_trial(ledger_url, patients=1)
    views = open_views(app)
    first, second = app.signed_recorder.select_notifications(start=None, limit=2)

    with pytest.raises(LedgerError, match=f"notification {second.id} is not the entry"):
        TrialProjection(views, app).process_event(
            app.mapper.to_domain_event(first), Tracking(VIEWS_NAME, second.id)
        )
    assert views.position() is None
