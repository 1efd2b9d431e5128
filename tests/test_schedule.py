"""The assessment schedule as protocol data: occurrences, windows and their states derived
from the patient's facts at read time; `trialctl schedule` in every output form on the demo
ledger, on SQLite and PostgreSQL; the demo's one overdue assessment."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from tests.co_signed_site import enrolled_under_listed_reasons
from tests.conftest import Result, assert_one_line_error, trialctl
from tests.demo_ledgers import demo_ledger
from tests.nct_site import NCT
from tests.signed_site import PASSWORDS
from tests.trial_helpers import NOW, day, dose_escalated, enrolled_patient, nct_protocol
from trialctl.domain.facts import Observation, OffStudy
from trialctl.domain.protocol_file import ProtocolError, load_protocol
from trialctl.domain.schedule import ScheduledAssessment, as_of, occurrences, patient_schedule
from trialctl.domain.trial import Trial
from trialctl.ledger.application import open_ledger
from trialctl.ledger.requests import TrialClosure
from trialctl.ledger.schedule import schedule_rows
from trialctl.ledger.trials import TrialActions

CTC = ScheduledAssessment("ctc", "CTC", "observation", 3, observation="ctc_count",
                          weeks=(0, 3, 6, 9), every_weeks=9)


def test_due_days_list_the_weeks_then_repeat() -> None:
    zero = date(2026, 1, 5)
    days = CTC.due_days(zero, zero + timedelta(weeks=27))
    assert [(d - zero).days // 7 for d in days] == [0, 3, 6, 9, 18, 27]


def test_an_occurrence_is_done_inside_its_window_and_overdue_once_it_closed() -> None:
    due = [date(2026, 3, 1)]
    inside, outside = date(2026, 3, 4), date(2026, 3, 5)  # the window is +/- 3 days
    assert occurrences(CTC, due, [inside], date(2026, 4, 1))[0]["state"] == "done"
    late = occurrences(CTC, due, [outside], date(2026, 4, 1))[0]
    assert (late["state"], late["done_on"]) == ("overdue", None)
    assert occurrences(CTC, due, [], date(2026, 3, 4))[0]["state"] == "due"
    assert occurrences(CTC, due, [], date(2026, 3, 5))[0]["state"] == "overdue"
    assert occurrences(CTC, due, [], date(2026, 2, 25))[0]["state"] == "upcoming"


def test_a_patient_schedule_follows_the_facts_and_ends_off_study() -> None:
    trial = Trial.register(nct_protocol(), NOW)
    patient = enrolled_patient(trial, "P001")
    dose_escalated(patient, trial, 3)  # week 0 is the first course 1 dose: day 3
    patient.observe(Observation(kind="ctc_count", value="5", observed_on=day(3)),
                    trial.protocol, NOW)
    today = date.fromisoformat(day(3 + 7 * 4))  # week 4
    rows = [r for r in patient_schedule(patient, trial.protocol, today) if r["assessment"] == "ctc"]
    assert [(r["due_on"], r["state"]) for r in rows] == [(day(3), "done"), (day(24), "overdue")]
    assert [r["assessment"] for r in patient_schedule(patient, trial.protocol, today)].count(
        "labs") == 1  # one course given, one lab occurrence
    patient.go_off_study(OffStudy(off_on=day(10), reason="progression"), trial.protocol, NOW)
    after = patient_schedule(patient, trial.protocol, today)
    assert {r["due_on"] for r in after} == {day(3)}  # nothing falls due after leaving


@pytest.mark.parametrize(("table", "message"), [
    ('code = "x"\nname = "X"\nrecords = "scan"\nweeks = [0]\nwindow_days = 1\n',
     "unknown record kind 'scan'"),
    ('code = "x"\nname = "X"\nrecords = "observation"\nobservation = "nope"\nweeks = [0]\n'
     'window_days = 1\n', "'nope' is not a declared observation code"),
    ('code = "x"\nname = "X"\nrecords = "lab"\nweeks = [3, 0]\nwindow_days = 1\n',
     "weeks must rise"),
    ('code = "x"\nname = "X"\nrecords = "lab"\nevery_weeks = 1\nwindow_days = 4\n',
     "overlaps the next occurrence"),
    ('code = "x"\nname = "X"\nrecords = "lab"\nwindow_days = 1\n', "give weeks"),
])
def test_schedule_refusals_name_the_field(table: str, message: str) -> None:
    text = NCT.read_text(encoding="utf-8") + "\n[[schedule]]\n" + table
    pattern = r"schedule\[6\]\.\w+: .*" + message.replace("[", r"\[")
    with pytest.raises(ProtocolError, match=pattern):
        load_protocol(text)


def _run(url: str, home: Path, *args: str) -> Result:
    return trialctl(*args, "--ledger", url, env={"TRIALCTL_HOME": str(home)})


def test_schedule_on_the_demo_in_every_form(ledger_url: str, tmp_path: Path) -> None:
    home = demo_ledger(ledger_url, tmp_path) / "home"
    rows = json.loads(_run(ledger_url, home, "schedule", "--patient", "P008", "--json").stdout)
    # P008 went off study at the week 18 scan: every occurrence until then is done, none
    # after it is listed.
    ctc = [(r["occurrence"], r["state"]) for r in rows if r["assessment"] == "ctc"]
    assert ctc == [(n, "done") for n in range(1, 6)]  # weeks 0, 3, 6, 9 and 18
    recist = [r["state"] for r in rows if r["assessment"] == "recist"]
    assert recist == ["done", "done", "done"]  # baseline, weeks 9 and 18
    # A done occurrence names the record that did it, and that record carries its visit.
    done = next(r for r in rows if r["assessment"] == "ctc" and r["state"] == "done")
    shown = json.loads(_run(ledger_url, home, "patient", "P008", "--json").stdout)["patient"]
    visit = {o["version"]: o["visit"] for o in shown["observations"]}
    assert visit[done["done_record"]] == f"ctc 1, week 0 (due {done['due_on']})"
    assert all(r["visit"] is None or r["visit"].startswith("recist ")
               for r in shown["responses"])
    table = _run(ledger_url, home, "schedule", "--patient", "P010").stdout
    assert "Tumour assessment (RECIST)" in table and "overdue" in table
    parsed = list(csv.DictReader(io.StringIO(
        _run(ledger_url, home, "schedule", "--csv").stdout)))
    assert {r["patient_id"] for r in parsed} >= {"P002", "P010"}
    # Upcoming occurrences appear once --due-by reaches their window.
    later = (date.today() + timedelta(days=70)).isoformat()
    ahead = json.loads(_run(ledger_url, home, "schedule", "--patient", "P010", "--due-by",
                            later, "--json").stdout)
    assert any(r["state"] == "upcoming" for r in ahead)
    assert_one_line_error(_run(ledger_url, home, "schedule", "--due-by", "soon"), "--due-by")
    assert_one_line_error(_run(ledger_url, home, "schedule", "--patient", "P404"), "P404")


def test_the_demo_schedule_has_one_overdue_assessment(tmp_path: Path) -> None:
    """The demo's one deliberate gap, as its narrative names it: P010's week 27 tumour
    assessment, the visit entered from visit-P010.jsonl having held no scan. Every other
    occurrence is done or not yet due, and the ledger verifies clean."""
    url = str(tmp_path / "ledger.sqlite")
    home = demo_ledger(url, tmp_path) / "home"
    rows = json.loads(_run(url, home, "schedule", "--json").stdout)
    overdue = [r for r in rows if r["state"] == "overdue"]
    app = open_ledger(url)
    try:
        actions = TrialActions(app)
        week_zero = actions.patient(actions.trial(None), "P010").first_dose_day(1)
    finally:
        app.close()
    assert week_zero is not None
    assert [(r["patient_id"], r["assessment"], r["due_on"]) for r in overdue] == [
        ("P010", "recist", (week_zero + timedelta(weeks=27)).isoformat())]
    assert {r["state"] for r in rows} - {"overdue"} <= {"done", "due", "upcoming"}
    assert _run(url, home, "verify").returncode == 0


def test_a_closed_trial_is_read_as_of_its_closing_day(tmp_path: Path, home: Path) -> None:
    assert as_of(date(2026, 5, 1), None) == date(2026, 5, 1)
    assert as_of(date(2026, 5, 1), "2026-04-01") == date(2026, 4, 1)
    assert as_of(date(2026, 3, 1), "2026-04-01") == date(2026, 3, 1)

    url = str(tmp_path / "ledger.sqlite")
    start = enrolled_under_listed_reasons(url)  # P001 dosed from day 6, on study
    app = open_ledger(url)
    try:
        actions = TrialActions(app)
        today = date.today()
        open_rows = schedule_rows(actions, None, None, today)
        closed_on = start + timedelta(days=40)
        assert any(date.fromisoformat(r["due_on"]) > closed_on + timedelta(days=7)
                   for r in open_rows)
        actions.perform(TrialClosure(None, closed_on.isoformat(), "database lock"),
                        app.unlock("pat", PASSWORDS["pat"]), datetime.now(UTC))
        rows = schedule_rows(actions, None, None, today)
        # Nothing opens after the closing day; what was still open then stays due, never
        # overdue for want of a visit the closed trial could not record.
        assert rows and all(
            date.fromisoformat(r["window"].split("..")[0]) <= closed_on for r in rows)
        assert all(date.fromisoformat(r["window"].split("..")[1]) < closed_on
                   for r in rows if r["state"] == "overdue")
        later = schedule_rows(actions, None, None, today, due_by=today + timedelta(days=90))
        assert later == rows
    finally:
        app.close()
