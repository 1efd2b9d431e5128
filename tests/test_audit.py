"""The auditor's view over the demo trial: the audit trail, a patient's timeline, and the
state at a past position or moment rebuilt from the entries alone."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BACKENDS, assert_one_line_error, new_ledger, trialctl
from tests.ledgers import kept_status
from trialctl.domain.patient import report_state
from trialctl.domain.trial import trial_id_for
from trialctl.ledger.application import open_ledger
from trialctl.ledger.decisions import shown_status
from trialctl.ledger.entry import parse_entry
from trialctl.ledger.projection import catch_up
from trialctl.ledger.replay import replay_trial
from trialctl.ledger.trials import TrialActions
from trialctl.ledger.views import TrialViews


@pytest.fixture(scope="module", params=BACKENDS)
def demo(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    directory = tmp_path_factory.mktemp("demo")
    databases = new_ledger(request.param, directory / "demo.sqlite")
    ledger = next(databases)
    result = trialctl("demo", "--dir", str(directory), "--ledger", ledger, "--json")
    assert result.returncode == 0, result
    built = json.loads(result.stdout)
    assert built["verify"]["ok"] is True
    yield {"TRIALCTL_HOME": built["home"], "TRIALCTL_LEDGER": ledger,
           "entries": str(built["entries"])}
    databases.close()  # drops a PostgreSQL database


def run(demo: dict[str, str], *args: str) -> str:
    result = trialctl(*args, env={k: v for k, v in demo.items() if k.startswith("TRIALCTL")})
    assert result.returncode == 0, result
    return result.stdout


def test_log_json_shows_who_signed_every_entry_with_what_meaning_and_when(
    demo: dict[str, str]
) -> None:
    rows = [json.loads(line) for line in run(demo, "log", "--json").splitlines()]

    assert [r["position"] for r in rows] == list(range(int(demo["entries"])))
    for row in rows:
        assert row["user_id"] and row["name"] and row["role"] and row["meaning"]
        assert row["recorded_at"].endswith("+00:00")
    # The demo corrects a dose time and (last) an AE grade; the dose's is the first.
    correction = next(r for r in rows if r["type"] == "trialctl.Patient.Corrected")
    assert correction["old_value"] == {"given_at": correction["old_value"]["given_at"]}
    assert set(correction["new_value"]) == {"given_at"}
    assert correction["reason_for_change"] == "dosing diary: taken after lunch, not at 09:30"
    assert any(r["type"] == "trialctl.User.Registered" for r in rows)  # ledger records too


def test_log_filters_and_csv(demo: dict[str, str]) -> None:
    decisions = run(demo, "log", "--type", "CohortDecided", "--csv")
    parsed = list(csv.DictReader(io.StringIO(decisions)))
    assert len(parsed) == 4
    assert {r["user_id"] for r in parsed} == {"pat"} and {r["meaning"] for r in parsed} == {
        "approved"}

    by_mona = [json.loads(line) for line in run(demo, "log", "--by", "mona", "--json")
               .splitlines()]
    assert by_mona and all(r["user_id"] == "mona" for r in by_mona)


def test_patient_timeline(demo: dict[str, str]) -> None:
    data = json.loads(run(demo, "patient", "P006", "--json"))

    kinds = [row["type"].removeprefix("trialctl.") for row in data["timeline"]]
    assert kinds[:4] == ["Patient.ConsentSigned", "Patient.ScreeningRecorded",
                         "Trial.PatientAssigned", "Patient.Enrolled"]
    # Evaluability is derived (schema 2): the trial records no outcome of its own.
    assert "Patient.Corrected" in kinds and "Patient.CourseCompleted" in kinds
    assert "Trial.OutcomeRecorded" not in kinds
    (correction,) = data["patient"]["corrections"]
    assert correction["reason"] == "dosing diary: taken after lunch, not at 09:30"
    corrected = next(d for d in data["patient"]["doses"] if d["version"] ==
                     correction["target_version"])
    assert corrected["given_at"] == correction["new_values"]["given_at"]  # state uses it
    assert all(row["user_id"] and row["meaning"] for row in data["timeline"])


def test_replay_at_the_last_position_equals_the_current_status(demo: dict[str, str]) -> None:
    last = int(demo["entries"]) - 1
    replayed = json.loads(run(demo, "replay", "--upto", str(last), "--json"))
    current = json.loads(run(demo, "status", "--json"))

    assert replayed["status"] == current
    assert replayed["last_position_included"] == last


def test_replay_shows_the_trial_as_it_stood(demo: dict[str, str]) -> None:
    rows = [json.loads(line) for line in run(demo, "log", "--json").splitlines()]
    first_decision = next(r for r in rows if r["type"] == "trialctl.Trial.CohortDecided")

    before = json.loads(run(demo, "replay", "--upto", str(first_decision["position"] - 1),
                            "--json"))
    after = json.loads(run(demo, "status", "--json", "--as-of",
                           first_decision["recorded_at"]))

    assert before["status"]["decisions"] == [] and before["status"]["next"]["code"] == \
        "decision-due"
    assert [d["action"] for d in after["decisions"]] == ["escalate"]


def test_replay_before_the_trial_existed(demo: dict[str, str]) -> None:
    result = trialctl("replay", "--upto", "2",
                      env={k: v for k, v in demo.items() if k.startswith("TRIALCTL")})
    assert_one_line_error(result, "not registered yet")


def test_replay_needs_a_point(demo: dict[str, str], tmp_path: Path) -> None:
    result = trialctl("replay", env={k: v for k, v in demo.items() if k.startswith("TRIALCTL")})
    assert_one_line_error(result, "--as-of TIME or --upto POSITION")


def test_replay_as_of_each_entrys_time_equals_the_projection_then(
    demo: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRIALCTL_HOME", demo["TRIALCTL_HOME"])
    app = open_ledger(demo["TRIALCTL_LEDGER"])
    records = TrialActions(app)
    notifications = app.signed_recorder.select_notifications(start=None, limit=100_000)
    statements = [parse_entry(n.state).statement for n in notifications]
    views = TrialViews(app.signed_recorder.datastore)
    views.drop()  # earlier tests caught the read models up; start them from nothing
    views.create_table()
    compared = 0
    for index, notification in enumerate(notifications):
        views = catch_up(app, views, stop=notification.id)
        moment = statements[index]["recorded_at"]
        later = statements[index + 1]["recorded_at"] if index + 1 < len(statements) else None
        status = views.trial_status("NCT00084513")
        if status is not None:
            status = shown_status(status, views, str(trial_id_for("NCT00084513")))
        if status is None or later == moment:
            continue  # a batch signed at one moment: compare once it is all in
        replayed = replay_trial(records, None, None, datetime.fromisoformat(moment))
        assert kept_status(replayed) == status, statements[index]["position"]
        compared += 1
    assert compared > 50


class _Year2000(datetime):
    """A wall clock long before every report deadline."""

    @classmethod
    def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
        return datetime(2000, 1, 1, tzinfo=tz)


def test_replay_upto_judges_sae_reports_at_the_replayed_entrys_time(
    demo: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRIALCTL_HOME", demo["TRIALCTL_HOME"])
    app = open_ledger(demo["TRIALCTL_LEDGER"])
    records = TrialActions(app)
    statements = [parse_entry(n.state).statement
                  for n in app.signed_recorder.select_notifications(start=None, limit=100_000)]
    serious = next(s for s in statements if s["type"] == "trialctl.Patient.AdverseEventReported"
                   and s["payload"].get("serious"))
    upto = int(serious["position"])
    today = replay_trial(records, None, upto, None)
    monkeypatch.setattr("trialctl.ledger.replay.datetime", _Year2000)
    later = replay_trial(records, None, upto, None)

    assert later == today  # the day replay runs changes nothing
    instant = datetime.fromisoformat(today["instant"])
    assert instant == datetime.fromisoformat(serious["recorded_at"])
    (report,) = today["status"]["sae_reports"]
    assert report["report"] == report_state(report["report_due"], report["reported_on"],
                                            instant.date())
