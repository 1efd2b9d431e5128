"""`trialctl review`: a monitor signs source data verification; a later correction voids
it, visibly; nobody reviews their own entry; site staff cannot review. On SQLite and
PostgreSQL, as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import assert_one_line_error, trialctl
from tests.demo_ledgers import demo_environment, signed


@pytest.fixture
def env(ledger_url: str, home: Path, tmp_path: Path) -> dict[str, str]:
    return demo_environment(ledger_url, tmp_path)


def review_of(env: dict[str, str], patient: str) -> dict[int, dict[str, Any]]:
    shown = trialctl("patient", patient, "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    return {row["position"]: row for row in json.loads(shown.stdout)["review"]}


def dose_at(env: dict[str, str], patient: str, position: int) -> tuple[int, str]:
    """The patient record version and `given_at` of the dose entry at a position."""
    log = trialctl("log", "--patient", patient, "--json", env=env)
    for line in log.stdout.splitlines():
        row = json.loads(line)
        if row["position"] == position:
            given_at = row["what"].split("given_at=")[1].split(",")[0]
            return int(row["aggregate_version"]), given_at
    raise AssertionError(f"no entry #{position}")


def test_a_review_then_a_correction_voids_it(env: dict[str, str]) -> None:
    reviewed = signed(env, "mona", "review", "P007", "--records", "67,68")
    assert reviewed.returncode == 0, reviewed.stderr
    assert "RecordsReviewed (reviewed by mona as monitor)" in reviewed.stdout
    states = review_of(env, "P007")
    assert states[67]["state"] == states[68]["state"] == "reviewed"
    assert states[69]["state"] == "unreviewed"

    version, given_at = dose_at(env, "P007", 68)
    corrected = signed(env, "ivan", "record", "correct", "P007", "--version", str(version),
                       "--set", f"given_at={given_at[:11]}11:15:00+00:00",
                       "--reason", "infusion log: given at 11:15")
    assert corrected.returncode == 0, corrected.stderr
    position = int(corrected.stdout.split("#")[1].split()[0])

    states = review_of(env, "P007")
    assert states[67]["state"] == "reviewed"
    assert states[68]["state"] == "invalidated"
    assert states[68]["text"] == f"review of #68 invalidated by correction #{position}"
    status = json.loads(trialctl("review", "status", "--patient", "P007", "--json",
                                 env=env).stdout)
    assert status[0]["invalidated"] == [68] and 68 not in status[0]["reviewed"]
    table = trialctl("review", "status", env=env)
    assert table.returncode == 0
    assert f"P007: review of #68 invalidated by correction #{position}" in table.stdout
    csv = trialctl("review", "status", "--csv", env=env)
    assert csv.stdout.splitlines()[0].startswith("patient_id,unreviewed,reviewed,invalidated")

    # Back on the to-review list: a review without --records takes it again, with the rest.
    again = signed(env, "mona", "review", "P007", "--records", "68")
    assert again.returncode == 0, again.stderr
    assert review_of(env, "P007")[68]["state"] == "reviewed"
    assert trialctl("verify", env=env).returncode == 0


def test_nobody_reviews_their_own_entry_and_site_staff_do_not_review(
    env: dict[str, str],
) -> None:
    own = signed(env, "mona", "review", "P007", "--records", "67,53")
    assert_one_line_error(own, "mona signed #53", "nobody verifies their own entry")
    # Without --records every record not yet reviewed is taken: mona's consents among them.
    assert_one_line_error(signed(env, "mona", "review", "P007"), "nobody verifies")
    site = signed(env, "ivan", "review", "P007", "--records", "53")
    assert_one_line_error(site, "refused", "investigator")
    missing = signed(env, "mona", "review", "P007", "--records", "6")
    assert_one_line_error(missing, "#6 is not a record of patient P007")
    assert_one_line_error(signed(env, "mona", "review", "P007", "--records", "6x"),
                          "--records expects ledger positions")
    # P008's course-1 records were reviewed in the demo: reviewing one again is refused.
    states = review_of(env, "P008")
    reviewed = next(p for p, row in states.items() if row["state"] == "reviewed")
    assert_one_line_error(signed(env, "mona", "review", "P008", "--records", str(reviewed)),
                          "already reviewed")
    assert all(row["state"] == "unreviewed" for row in review_of(env, "P007").values())
