"""Co-signatures: the protocol's `[[co_signatures]]` are read and checked; a cohort decision
awaiting its second signer keeps the next cohort closed; `record cosign` refuses the
author, the wrong role, a non-decision and a second co-signature; `verify` rechecks the
citation. The CLI part runs the real `trialctl` on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.co_signed_site import staffed
from tests.conftest import assert_one_line_error
from tests.ledgers import stored_entries
from tests.signed_site import SignedSite
from tests.trial_helpers import (
    NOW,
    ROOT,
    co_sign_pending,
    consented,
    nct_protocol,
    roster,
    run_cohort,
    screening,
    second_protocol,
)
from trialctl.domain import journey
from trialctl.domain.co_signatures import COHORT_DECIDED, check_co_signer
from trialctl.domain.facts import Consent, Enrolment, Screening
from trialctl.domain.protocol_file import ProtocolError, load_protocol
from trialctl.domain.rules import TrialRuleError
from trialctl.domain.trial import Trial
from trialctl.ledger.demo import screening_values
from trialctl.ledger.requests import CohortDecision
from trialctl.ledger.verify_decisions import _co_signature_problems, _Decision

NCT_TEXT = (ROOT / "protocols" / "NCT00084513.toml").read_text(encoding="utf-8")


def _refused(rule: str, action: Any) -> str:
    with pytest.raises(TrialRuleError) as caught:
        action()
    assert caught.value.rule == rule
    return str(caught.value)


# -- the protocol file --------------------------------------------------------------------

@pytest.mark.parametrize(("table", "message"), [
    ('event_type = "trialctl.Patient.DoseGiven"\nrole = "monitor"', "unknown event type"),
    ('event_type = "trialctl.Trial.CohortDecided"\nrole = "data-manager"', "unknown role"),
    ('event_type = "trialctl.Trial.CohortDecided"\nrole = "medical-monitor"', "unknown role"),
    ('event_type = "trialctl.Trial.CohortDecided"\nrole = "monitor"\nwho = "x"', "who"),
    ('role = "monitor"', "event_type"),
], ids=["event-type", "non-clinical-role", "no-such-role", "unknown-key", "missing-key"])
def test_a_bad_co_signature_table_is_refused_in_one_line(table: str, message: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        load_protocol(f"{NCT_TEXT}\n[[co_signatures]]\n{table}\n")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_the_same_event_type_twice_is_refused() -> None:
    # The shipped file already names CohortDecided once.
    with pytest.raises(ProtocolError, match="duplicate co-signed event type"):
        load_protocol(f'{NCT_TEXT}\n[[co_signatures]]\nevent_type = "{COHORT_DECIDED}"\n'
                      'role = "investigator"\n')


def test_the_shipped_protocol_has_its_decisions_co_signed_by_the_monitor() -> None:
    protocol = nct_protocol()
    assert protocol.co_signer_role(COHORT_DECIDED) == "monitor"
    assert protocol.co_signer_role("trialctl.Trial.CohortDecisionOverridden") == "monitor"
    assert load_protocol(NCT_TEXT).to_dict()["co_signatures"] == [
        c.to_dict() for c in protocol.co_signatures]
    assert second_protocol().co_signatures == ()


# -- the trial: pending is derived ---------------------------------------------------------

def _decided_trial() -> Trial:
    trial = Trial.register(nct_protocol(), NOW)
    run_cohort(trial, "NNN", 1, 0)
    step = trial.expected_step(roster(trial))
    assert step is not None
    trial.decide(step.action, step.next_level, step.mtd_level, roster(trial), NOW)
    return trial


def test_a_decision_awaiting_its_co_signature_keeps_the_next_cohort_closed() -> None:
    trial = _decided_trial()
    step = trial.next_step(roster(trial))
    assert (step.code, step.waiting_for) == ("co-signature-due", ("monitor",))
    assert trial.status(roster(trial))["awaiting_co_signature"] == [{
        "cohort_number": 1, "event_type": COHORT_DECIDED, "role": "monitor",
        "text": "cohort 1's decision awaits co-signature by the monitor"}]
    patient = consented(trial, "P010", 60)
    patient.screen(screening(trial.protocol, 61), trial.protocol, NOW)
    message = _refused("co-signature-pending", lambda: journey.enroll(
        trial, patient, Enrolment(enrolled_on=screening(trial.protocol, 62).screened_on),
        roster(trial), NOW))
    assert "monitor" in message and "level 2" in message

    assert trial.enrolment_wait("P010") == (
        "enrolment waits: cohort 1's decision awaits co-signature by the monitor")
    co_sign_pending(trial)
    assert trial.enrolment_wait("P010") is None
    assert trial.next_step(roster(trial)).code == "enroll"
    assert trial.status(roster(trial))["awaiting_co_signature"] == []
    _refused("co-sign-once", lambda: trial.co_sign(1, 5, "0" * 64, NOW))
    _refused("co-signable", lambda: trial.co_sign(2, 5, "0" * 64, NOW))


def test_a_protocol_without_co_signatures_needs_none() -> None:
    trial = Trial.register(second_protocol(), NOW)
    run_cohort(trial, "NNN", 1, 0)
    step = trial.expected_step(roster(trial))
    assert step is not None
    trial.decide(step.action, step.next_level, step.mtd_level, roster(trial), NOW)
    assert trial.next_step(roster(trial)).code == "enroll"
    _refused("co-signature-required", lambda: trial.check_co_sign(1))


def test_nobody_co_signs_their_own_entry_or_without_the_role() -> None:
    _refused("co-sign-own-entry", lambda: check_co_signer(7, "pat", "pat", "monitor",
                                                          ("monitor",)))
    _refused("co-signer-role", lambda: check_co_signer(7, "pat", "ivan", "monitor",
                                                       ("investigator",)))
    check_co_signer(7, "pat", "mona", "monitor", ("monitor",))


def test_verify_finds_a_co_signature_that_cites_wrongly_or_by_its_author() -> None:
    trial = _decided_trial()
    decision = {"aggregate_id": "t", "actor": {"user_id": "pat", "role": "investigator"},
                "payload": {"cohort_number": 1}}
    decisions = {40: _Decision(decision, "a" * 64)}

    def problems(position: int, digest: str, user: str, role: str) -> list[str]:
        statement = {"aggregate_id": "t", "actor": {"user_id": user, "role": role},
                     "payload": {"cohort_number": 1, "position": position,
                                 "entry_hash": digest}}
        return list(_co_signature_problems(statement, trial, decisions))

    assert problems(40, "a" * 64, "mona", "monitor") == []
    assert "no decision of this trial" in problems(41, "a" * 64, "mona", "monitor")[0]
    assert "the entry's hash is" in problems(40, "b" * 64, "mona", "monitor")[0]
    assert "co-sign-own-entry" in problems(40, "a" * 64, "pat", "monitor")[0]
    assert "co-signer-role" in problems(40, "a" * 64, "ivan", "investigator")[0]


# -- the ledger and the CLI ---------------------------------------------------------------

def _pending_decision(url: str) -> tuple[int, str]:
    """Cohort 1 of NCT00084513 treated and decided in-process (the CLI is not the subject
    here), and one more patient screened: the decision's position, and that patient."""
    app, story = staffed(url, nct_protocol())
    try:
        records, actors, start = story.records, story.actors, story.start
        for offset in (0, 2, 4):
            patient = story.new_patient(offset)
            story.treat(patient, 1, offset + 6, dlt=False)
        trial = records.trial(None)
        step = trial.expected_step(records.roster(trial))
        assert step is not None
        decided = records.perform(CohortDecision(None, step.action, step.next_level,
                                                 step.mtd_level, None),
                                  actors["pat"], datetime.now(UTC))
        waiting = "P004"
        story.record("mona", waiting, Consent(consent_version="2.1", signed_on=story.day(60)))
        story.record("mona", waiting, Screening(
            values=screening_values(start + timedelta(days=62)), screened_on=story.day(62)))
        return int(decided.entries[0]["position"]), waiting
    finally:
        app.close()


def test_record_cosign_opens_the_next_cohort_and_refuses_the_rest(
    ledger_url: str, home: Path,
) -> None:
    site = SignedSite(ledger_url)
    position, waiting = _pending_decision(ledger_url)

    status = site.status()
    assert status["next"]["code"] == "co-signature-due"
    assert [(w["cohort_number"], w["role"]) for w in status["awaiting_co_signature"]] == [
        (1, "monitor")]
    shown = site.run("status").stdout
    assert f"awaiting co-signature: cohort 1's decision (#{position}) by the monitor" in shown
    assert site.patient(waiting)["enrolment_wait"] == (
        "enrolment waits: cohort 1's decision awaits co-signature by the monitor")
    enrol = site.record("enroll", waiting, "--date", date.today().isoformat(), check=False)
    assert_one_line_error(enrol, "awaits co-signature by the monitor")

    before = stored_entries(ledger_url)
    for user, cited, expected in (("pat", position, "nobody co-signs their own entry"),
                                  ("ivan", position, "does not hold"),
                                  ("mona", 0, "is not a cohort decision")):
        refused = site.record("cosign", str(cited), user=user, check=False)
        assert refused.returncode == 1
        assert_one_line_error(refused, expected)
    usage = site.record("cosign", str(position), "--meaning", "recorded", user="mona",
                        check=False)
    assert usage.returncode == 2
    assert stored_entries(ledger_url) == before

    signed = json.loads(site.record("cosign", str(position), user="mona").stdout)
    entry = signed["entries"][0]
    assert entry["type"] == "trialctl.Trial.DecisionCoSigned"
    assert (entry["actor"]["user_id"], entry["actor"]["role"], entry["meaning"]) == (
        "mona", "monitor", "approved")
    assert entry["payload"]["position"] == position
    assert signed["summary"]["awaiting_co_signature"] == []
    again = site.record("cosign", str(position), user="mona", check=False)
    assert_one_line_error(again, "already co-signed")
    site.record("enroll", waiting, "--date", date.today().isoformat())
    verified = json.loads(site.run("verify", "--json").stdout)
    assert verified["ok"] is True
