"""`trialctl query`: raised by a monitor on a record, answered by the site, closed and
reopened only by whoever raised it (or a data manager); a correction may cite the open
query it answers. On SQLite and PostgreSQL, as a user runs it."""

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


def listed(env: dict[str, str], *args: str) -> dict[str, dict[str, Any]]:
    shown = trialctl("query", "list", "--json", *args, env=env)
    assert shown.returncode == 0, shown.stderr
    return {q["query_id"]: q for q in json.loads(shown.stdout)}


def test_a_query_lifecycle_with_a_correction_citing_it(env: dict[str, str]) -> None:
    assert listed(env)["Q1"]["state"] == "closed"  # the demo's
    opened = signed(env, "mona", "query", "open", "P007", "--record", "71",
                    "--text", "AE1 grade: the chart says 3")
    assert opened.returncode == 0, opened.stderr
    assert "query: Q2" in opened.stdout  # numbered on from the demo's Q1
    assert set(listed(env, "--open")) == {"Q2"}
    shown = json.loads(trialctl("patient", "P007", "--json", env=env).stdout)
    assert shown["patient"]["open_queries"] == ["Q2"]
    assert "query Q2 on #71 (open, 0 days)" in trialctl("patient", "P007", env=env).stdout
    # status lists the trial's queries not closed yet, with their age (the demo's Q1 is
    # closed).
    status = trialctl("status", "--json", env=env)
    assert [(q["query_id"], q["patient_id"], q["record"], q["state"], q["age_days"])
            for q in json.loads(status.stdout)["open_queries"]] == [
        ("Q2", "P007", 71, "open", 0)]
    assert "open query Q2 (open, 0 day(s)): P007 #71, raised by mona: AE1 grade: the chart " \
        "says 3" in trialctl("status", env=env).stdout.splitlines()

    assert_one_line_error(signed(env, "pat", "query", "close", "Q2"),
                          "only mona (who raised Q2) or a data manager may close it")
    assert_one_line_error(signed(env, "mona", "query", "answer", "Q2", "--text", "x"),
                          "refused")  # a monitor does not answer the site's queries
    answered = signed(env, "ivan", "query", "answer", "Q2", "--text", "Yes: grade 3")
    assert answered.returncode == 0, answered.stderr
    assert listed(env)["Q2"]["state"] == "answered"

    # A correction citing a query must cite one on the record it corrects.
    log = [json.loads(line) for line in
           trialctl("log", "--patient", "P007", "--json", env=env).stdout.splitlines()]
    version = {row["position"]: row["aggregate_version"] for row in log}
    assert_one_line_error(
        signed(env, "ivan", "record", "correct", "P007", "--version", str(version[71]),
               "--set", "attribution=possible", "--reason", "r", "--query", "Q9"),
        "no query Q9")
    wrong_record = signed(env, "ivan", "record", "correct", "P007", "--version",
                          str(version[73]), "--set", f"completed_on={_completed(log)}",
                          "--reason", "r", "--query", "Q2")
    assert_one_line_error(wrong_record, "query Q2 is about #71")
    corrected = signed(env, "ivan", "record", "correct", "P007", "--version", str(version[71]),
                       "--set", "attribution=definite", "--reason", "per query",
                       "--query", "Q2")
    assert corrected.returncode == 0, corrected.stderr
    position = int(corrected.stdout.split("#")[1].split()[0])
    assert listed(env)["Q2"]["corrections"] == [position]

    closed = signed(env, "mona", "query", "close", "Q2")
    assert closed.returncode == 0, closed.stderr
    assert listed(env, "--open") == {}
    assert json.loads(trialctl("status", "--json", env=env).stdout)["open_queries"] == []
    assert_one_line_error(signed(env, "ivan", "query", "answer", "Q2", "--text", "more"),
                          "query Q2 is closed")
    assert_one_line_error(
        signed(env, "ivan", "record", "correct", "P007", "--version", str(version[71]),
               "--set", "attribution=probable", "--reason", "r", "--query", "Q2"),
        "query Q2 is closed")
    reopened = signed(env, "mona", "query", "reopen", "Q2", "--text", "Attach the lab sheet")
    assert reopened.returncode == 0, reopened.stderr
    row = listed(env, "--patient", "P007")["Q2"]
    assert row["state"] == "open" and row["age_days"] == 0
    assert [t["what"] for t in row["thread"]] == ["answered", "closed", "reopened"]
    table = trialctl("query", "list", env=env)
    assert table.returncode == 0 and "Q2" in table.stdout and "P007" in table.stdout
    csv = trialctl("query", "list", "--csv", env=env)
    assert csv.stdout.splitlines()[0].startswith("query_id,patient_id,record,state,age_days")
    assert "Q2" in trialctl("review", "status", "--patient", "P007", env=env).stdout
    assert trialctl("verify", env=env).returncode == 0


def _completed(log: list[dict[str, Any]]) -> str:
    row = next(r for r in log if r["position"] == 73)
    return str(row["what"].split("completed_on=")[1].split(",")[0])


def test_bad_query_input_is_one_line(env: dict[str, str]) -> None:
    assert_one_line_error(signed(env, "mona", "query", "open", "P007", "--record", "6",
                                 "--text", "x"), "#6 is not a record of patient P007")
    assert_one_line_error(signed(env, "mona", "query", "open", "P007", "--record", "71",
                                 "--text", "  "), "needs a text")
    assert_one_line_error(signed(env, "mona", "query", "close", "Q7"), "has no query Q7")
    assert_one_line_error(signed(env, "mona", "query", "close", "7"), "not of the form")
    assert_one_line_error(signed(env, "ivan", "query", "open", "P007", "--record", "152",
                                 "--text", "x"), "refused")
