"""End of study: a patient goes off study for a reason (one the protocol's `[end_of_study]`
lists, when it lists them), then follow-up contacts record their status (alive, died, lost
to follow-up), shown in `patient` and `status`. The rule boundaries are tested in-process;
the CLI part runs the real `trialctl` on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.co_signed_site import enrolled_under_listed_reasons, listed_reasons_protocol
from tests.conftest import assert_one_line_error
from tests.signed_site import SignedSite
from tests.trial_helpers import NOW, day, enrolled_patient, nct_protocol
from trialctl.domain import journey
from trialctl.domain.facts import FollowUp, OffStudy, Withdrawal
from trialctl.domain.patient import Patient
from trialctl.domain.protocol_file import ProtocolError, load_protocol
from trialctl.domain.rules import TrialRuleError
from trialctl.domain.trial import Trial
from trialctl.ledger.batch_lines import LINE_KINDS


def _refused(rule: str, action: Any) -> str:
    with pytest.raises(TrialRuleError) as caught:
        action()
    assert caught.value.rule == rule
    assert "\n" not in str(caught.value)
    return str(caught.value)


def _patient(listed: bool = True) -> tuple[Trial, Patient]:
    trial = Trial.register(listed_reasons_protocol() if listed else nct_protocol(), NOW)
    return trial, enrolled_patient(trial, "P001")


def _take(trial: Trial, patient: Patient, fact: Any) -> None:
    journey.take(trial, patient, fact, {patient.patient_id: patient}, NOW)


def test_an_off_study_reason_must_be_one_the_protocol_lists() -> None:
    trial, patient = _patient()
    message = _refused("off-study-reason", lambda: _take(
        trial, patient, OffStudy(off_on=day(10), reason="progresion")))
    assert "did you mean 'disease progression'?" in message
    assert patient.end_of_study() is None
    _take(trial, patient, OffStudy(off_on=day(10), reason="  disease progression "))
    assert patient.end_of_study() == {"off_on": day(10), "reason": "disease progression",
                                      "contacts": 0, "last_contact": None}
    # A protocol listing none takes any reason, as before.
    other_trial, other = _patient(listed=False)
    _take(other_trial, other, OffStudy(off_on=day(10), reason="follow-up completed"))
    assert other.end_of_study() is not None


@pytest.mark.parametrize(("text", "message"), [
    ("[end_of_study]\nreasons = []", "must not be empty"),
    ('[end_of_study]\nreasons = ["death", "death"]', "duplicate off-study reason"),
    ('[end_of_study]\nreasons = [" "]', "must not be empty"),
    ('[end_of_study]\nwhy = ["death"]', "unknown field"),
], ids=["empty", "duplicate", "blank", "unknown-key"])
def test_a_bad_end_of_study_section_is_refused(text: str, message: str) -> None:
    base = (Path(__file__).resolve().parents[1] / "protocols" / "NCT00084513.toml").read_text()
    with pytest.raises(ProtocolError, match=message):
        load_protocol(f"{base}\n{text}\n")


def test_follow_up_comes_after_off_study_and_nothing_after_a_death() -> None:
    trial, patient = _patient()
    contact = FollowUp(contacted_on=day(20), status="alive", text=None)
    _refused("follow-up-after-off-study", lambda: _take(trial, patient, contact))
    _take(trial, patient, OffStudy(off_on=day(10), reason="unacceptable toxicity"))
    _refused("no-earlier-than-dependency", lambda: _take(trial, patient, FollowUp(
        contacted_on=day(9), status="alive", text=None)))
    _refused("follow-up-status", lambda: _take(trial, patient, FollowUp(
        contacted_on=day(20), status="dead", text=None)))
    _refused("no-future-dates", lambda: _take(trial, patient, FollowUp(
        contacted_on=(NOW.date() + timedelta(days=1)).isoformat(), status="alive",
        text=None)))
    _take(trial, patient, FollowUp(contacted_on=day(10), status="alive", text=" clinic "))
    _take(trial, patient, FollowUp(contacted_on=day(40), status="lost-to-follow-up",
                                   text=None))
    _take(trial, patient, FollowUp(contacted_on=day(60), status="died", text="registry"))
    assert [(c["contacted_on"], c["status"], c["text"]) for c in patient.follow_ups()] == [
        (day(10), "alive", "clinic"), (day(40), "lost-to-follow-up", None),
        (day(60), "died", "registry")]
    _refused("follow-up-after-death", lambda: _take(trial, patient, FollowUp(
        contacted_on=day(61), status="alive", text=None)))
    ended = patient.summary(trial.protocol)["end_of_study"]
    assert ended["last_contact"] == {"contacted_on": day(60), "status": "died"}
    assert ended["contacts"] == 3


def test_no_follow_up_after_all_consent_is_withdrawn() -> None:
    trial, patient = _patient()
    _take(trial, patient, Withdrawal(withdrawn_on=day(8), reason="moved away"))
    _take(trial, patient, OffStudy(off_on=day(10), reason="patient decision"))
    _refused("after-withdrawal", lambda: _take(trial, patient, FollowUp(
        contacted_on=day(20), status="alive", text=None)))


def test_a_batch_line_makes_the_same_follow_up() -> None:
    kind = LINE_KINDS["follow-up"]
    assert [f.name for f in kind.fields] == ["date", "status", "text"]


# -- the CLI --------------------------------------------------------------------------------

def test_off_study_and_follow_up_through_trialctl(ledger_url: str, home: Path) -> None:
    site = SignedSite(ledger_url)
    start = enrolled_under_listed_reasons(ledger_url)
    off_on, contact_on = (start + timedelta(days=30)).isoformat(), \
        (start + timedelta(days=60)).isoformat()
    before = site.entries()
    refused = site.record("off-study", "P001", "--date", off_on, "--reason", "progresion",
                          user="mona", check=False)
    assert refused.returncode == 1
    assert_one_line_error(refused, "did you mean 'disease progression'?")
    early = site.record("follow-up", "P001", "--date", contact_on, "--status", "alive",
                        user="mona", check=False)
    assert_one_line_error(early, "record off-study first")
    assert site.entries() == before

    site.record("off-study", "P001", "--date", off_on, "--reason", "disease progression",
                user="mona")
    bad = site.record("follow-up", "P001", "--date", contact_on, "--status", "dead",
                      user="mona", check=False)
    assert_one_line_error(bad, "follow-up status 'dead'")
    signed = json.loads(site.record("follow-up", "P001", "--date", contact_on, "--status",
                                    "alive", "--text", "phone call", user="mona").stdout)
    assert signed["entries"][0]["type"] == "trialctl.Patient.FollowUpRecorded"
    assert signed["entries"][0]["payload"] == {
        "contacted_on": contact_on, "status": "alive", "text": "phone call"}

    shown = site.run("patient", "P001").stdout
    line = (f"end of study: off study {off_on} (disease progression); last contact "
            f"{contact_on}: alive (1 contact(s))")
    assert line in shown.splitlines()
    assert "Follow-up after the end of study" in shown
    status = site.status()
    assert status["end_of_study"] == [{
        "patient_id": "P001", "off_on": off_on, "reason": "disease progression",
        "contacts": 1, "last_contact": {"contacted_on": contact_on, "status": "alive"}}]
    assert f"end of study: P001 off study {off_on}" in site.run("status").stdout
    assert json.loads(site.run("verify", "--json").stdout)["ok"] is True
