"""`trialctl trial close`: the principal investigator closes the trial, signed as approved;
afterwards only corrections (queries and reviews too) may be signed, and everything else is
refused in one line naming `trial-closed`. On SQLite and PostgreSQL, on the demo ledger."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import Result, assert_one_line_error, trialctl
from tests.demo_ledgers import demo_ledger
from trialctl.domain.rules import TrialRuleError
from trialctl.domain.trial import Trial
from trialctl.ledger.demo import demo_password, shipped_protocol


def test_a_closed_trial_refuses_closing_again_and_needs_a_reason() -> None:
    now = datetime(2026, 11, 1, 12, tzinfo=UTC)
    trial = Trial.register(shipped_protocol(), now)
    with pytest.raises(TrialRuleError, match="needs a reason"):
        trial.close("2026-11-01", " ", now)
    with pytest.raises(TrialRuleError, match="in the future"):
        trial.close("2026-11-02", "database lock", now)
    trial.close("2026-11-01", "database lock", now)
    assert trial.closed == {"closed_on": "2026-11-01", "reason": "database lock"}
    with pytest.raises(TrialRuleError, match=r"\[rule: trial-closed\]"):
        trial.close("2026-11-01", "again", now)


def _run(url: str, home: Path, *args: str, user: str | None = None) -> Result:
    extra = ["--ledger", url]
    stdin = ""
    if user is not None:
        extra += ["-u", user, "--password-stdin"]
        stdin = demo_password(user) + "\n"
    return trialctl(*args, *extra, stdin=stdin, env={"TRIALCTL_HOME": str(home)})


def test_trial_close_on_the_command_line(ledger_url: str, tmp_path: Path) -> None:
    home = demo_ledger(ledger_url, tmp_path) / "home"
    today = datetime.now(UTC).date()

    # An investigator may not close the trial: refused before anything is signed.
    refused = _run(ledger_url, home, "trial", "close", "--reason", "lock", user="ivan")
    assert_one_line_error(refused, "may record trialctl.Trial.Closed")

    closed = _run(ledger_url, home, "trial", "close", "--reason", "database lock", "--json",
                  user="pat")
    assert closed.returncode == 0, closed
    [entry] = json.loads(closed.stdout)["entries"]
    assert (entry["type"], entry["meaning"]) == ("trialctl.Trial.Closed", "approved")
    assert entry["payload"] == {"closed_on": today.isoformat(), "reason": "database lock"}

    status = json.loads(_run(ledger_url, home, "status", "--json").stdout)
    assert status["closed"] == {"closed_on": today.isoformat(), "reason": "database lock"}
    assert f"closed: {today.isoformat()} — database lock" in _run(
        ledger_url, home, "status").stdout

    yesterday = (today - timedelta(days=1)).isoformat()
    for args in (
        ("record", "ae", "P006", "--id", "AE9", "--term", "Fatigue (asthenia, lethargy, "
         "malaise)", "--grade", "1", "--attribution", "possible", "--onset", yesterday),
        ("record", "consent", "P099", "--consent-version", "2.1", "--date", yesterday),
        ("trial", "close", "--reason", "again"),
    ):
        user = "pat" if args[0] == "trial" else "ivan"
        assert_one_line_error(_run(ledger_url, home, *args, user=user), "trial-closed")

    patient = json.loads(_run(ledger_url, home, "patient", "P006", "--json").stdout)
    corrected = _run(ledger_url, home, "record", "correct", "P006", "--version",
                     str(_ae_version(patient)), "--set", "grade=2", "--reason",
                     "source document verification", user="ivan")
    assert corrected.returncode == 0, corrected
    assert _run(ledger_url, home, "verify").returncode == 0


def _ae_version(patient: dict[str, object]) -> int:
    summary = patient["patient"]
    assert isinstance(summary, dict)
    [ae] = [a for a in summary["adverse_events"] if a["ae_id"] == "AE1"]
    return int(ae["version"])
