"""A consent changed in the store so that it no longer names its trial: the reads that find
a trial's patients by their consents (replay, the report) refuse with one line pointing at
`trialctl verify`, rather than counting the cohorts without those patients or crashing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.conftest import assert_one_line_error, trialctl
from tests.demo_ledgers import demo_environment


@pytest.fixture
def hostile(tmp_path: Path) -> dict[str, str]:
    url = str(tmp_path / "demo.sqlite")
    env = demo_environment(url, tmp_path)
    with sqlite3.connect(url) as db:
        for trigger in ("trialctl_events_no_update", "trialctl_events_no_delete"):
            db.execute(f"DROP TRIGGER {trigger}")  # what someone with the file can do
        rows = db.execute("SELECT id, state FROM trialctl_events "
                          "WHERE topic = 'trialctl.Patient.ConsentSigned'").fetchall()
        for row_id, state in rows:
            at = state.index(b'"trial_id":"') + len(b'"trial_id":"')
            changed = state[:at] + (b"1" if state[at:at + 1] == b"0" else b"0") + state[at + 1:]
            db.execute("UPDATE trialctl_events SET state = ? WHERE id = ?", (changed, row_id))
    return env


@pytest.mark.parametrize("args", [
    ("replay", "--upto", "100000"),
    ("report", "--html", "report.html"),
], ids=["replay", "report"])
def test_a_cohort_patient_whose_consent_names_another_trial_is_refused_in_one_line(
    hostile: dict[str, str], tmp_path: Path, args: tuple[str, ...]
) -> None:
    result = trialctl(*(str(tmp_path / a) if a.endswith(".html") else a for a in args),
                      env=hostile)
    assert_one_line_error(result, "whose consent this ledger does not hold",
                          "trialctl verify")
    assert not (tmp_path / "report.html").exists()


def test_verify_names_the_changed_consents(hostile: dict[str, str]) -> None:
    result = trialctl("verify", env=hostile)
    assert result.returncode != 0
    assert "ConsentSigned" in result.stdout
