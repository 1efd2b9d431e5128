"""Co-signed DLT adjudications: a protocol may ask a second investigator to confirm each
adjudication. Until then the adjudication is pending: the patient's course-1 outcome
waits, so the cohort cannot be decided on it; the adjudicator (or whoever corrected it)
cannot confirm it; a correction makes it pending again; `verify` rechecks the citation.
The shipped protocol asks no such co-signature (the demo's story is unchanged), so the
tests run a variant of it. The CLI part runs the real `trialctl` on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.co_signed_site import co_signed_protocol, pending_adjudication
from tests.conftest import assert_one_line_error
from tests.ledgers import stored_entries
from tests.signed_site import SignedSite
from tests.trial_helpers import (
    NOW,
    co_sign_pending,
    nct_protocol,
    roster,
    run_cohort,
)
from trialctl.domain.co_signatures import DLT_ADJUDICATED
from trialctl.domain.facts import DltAdjudication
from trialctl.domain.patient import WAITING
from trialctl.domain.rules import TrialRuleError
from trialctl.domain.trial import Trial
from trialctl.ledger.application import open_ledger
from trialctl.ledger.co_signing import CoSign, CoSignActions
from trialctl.ledger.requests import CohortDecision, TrialClosure
from trialctl.ledger.verify_decisions import _Adjudications, _Decision


def _refused(rule: str, action: Any) -> str:
    with pytest.raises(TrialRuleError) as caught:
        action()
    assert caught.value.rule == rule
    return str(caught.value)


# -- the domain: pending is derived ---------------------------------------------------------

def test_the_shipped_protocol_asks_no_co_signature_of_an_adjudication() -> None:
    assert nct_protocol().co_signer_role(DLT_ADJUDICATED) is None
    assert co_signed_protocol().co_signer_role(DLT_ADJUDICATED) == "investigator"


def test_a_pending_adjudication_keeps_its_patient_waiting_and_the_cohort_undecided() -> None:
    trial = Trial.register(co_signed_protocol(), NOW)
    patients = run_cohort(trial, "NNT", 1, 0)
    with_dlt = patients[2]
    protocol = trial.protocol
    outcome = with_dlt.outcome(protocol)
    assert (outcome.state, outcome.dlt) == (WAITING, False)
    assert outcome.reason == (
        "P003's adjudication of AE1 awaits co-signature by the investigator")
    step = trial.next_step(roster(trial))
    assert step.code == "await-evaluation"
    assert step.waiting_for == ("P003",)
    assert "awaits co-signature by the investigator" in step.text
    status = trial.status(roster(trial))
    assert [(w.get("patient_id"), w["role"]) for w in status["awaiting_co_signature"]] == [
        ("P003", "investigator")]
    assert status["cohorts"][0]["dlts"] == 0
    # Pending, not "not counted": it is listed once, as awaiting its co-signature.
    summary = with_dlt.summary(protocol)
    assert summary["dlt_notes"] == []
    assert [w["text"] for w in summary["awaiting_co_signature"]] == [
        "P003's adjudication of AE1 awaits co-signature by the investigator"]
    assert status["cohorts"][0]["dlt_notes"] == []
    # No decision may be taken as if the adjudication were final.
    message = _refused("decision-due", lambda: trial.decide(
        "escalate", 2, None, roster(trial), NOW, override_reason="the DLT is obvious"))
    assert "awaits co-signature by the investigator" in message

    version = with_dlt.dlts()[0]["version"]
    with_dlt.co_sign_adjudication(version, 40, "a" * 64, protocol, NOW)
    assert with_dlt.outcome(protocol).dlt is True
    assert trial.next_step(roster(trial)).code == "decision-due"
    assert trial.status(roster(trial))["awaiting_co_signature"] == []
    _refused("co-sign-once", lambda: with_dlt.check_co_sign_adjudication(version, protocol))
    _refused("co-signable", lambda: with_dlt.check_co_sign_adjudication(1, protocol))
    # A decision is then made on the confirmed DLT (and co-signed by the monitor).
    step_now = trial.expected_step(roster(trial))
    assert step_now is not None
    trial.decide(step_now.action, step_now.next_level, step_now.mtd_level, roster(trial), NOW)
    co_sign_pending(trial)
    assert trial.decisions[0]["counted"]["outcomes"]["P003"] is True


def test_a_correction_after_the_co_signature_makes_it_pending_again() -> None:
    trial = Trial.register(co_signed_protocol(), NOW)
    patient = run_cohort(trial, "T", 1, 0)[0]
    protocol = trial.protocol
    version = patient.dlts()[0]["version"]
    patient.co_sign_adjudication(version, 40, "a" * 64, protocol, NOW)
    patient.corrections.append({"version": patient.version + 1, "target_version": version,
                                "kind": DltAdjudication.KIND})
    judged = patient.judged_dlts(protocol)[0]
    assert judged["co_signature"]["state"] == "pending"
    assert judged["co_signature"]["corrected_by_version"] == patient.version + 1
    assert patient.outcome(protocol).state == WAITING
    assert patient.check_co_sign_adjudication(version, protocol) == "investigator"


def test_an_adjudication_under_the_shipped_protocol_needs_no_co_signature() -> None:
    trial = Trial.register(nct_protocol(), NOW)
    patient = run_cohort(trial, "T", 1, 0)[0]
    assert patient.outcome(trial.protocol).dlt is True
    _refused("co-signature-required", lambda: patient.check_co_sign_adjudication(
        patient.dlts()[0]["version"], trial.protocol))


# -- the ledger and the CLI -----------------------------------------------------------------

def test_record_cosign_confirms_an_adjudication_and_refuses_the_rest(
    ledger_url: str, home: Path,
) -> None:
    site = SignedSite(ledger_url)
    position, _ = pending_adjudication(ledger_url)

    status = site.status()
    assert status["next"]["code"] == "await-evaluation"
    assert [(w["patient_id"], w["ae_id"], w["role"]) for w in
            status["awaiting_co_signature"]] == [("P003", "AE1", "investigator")]
    shown = site.run("status").stdout
    assert "awaiting co-signature: P003's adjudication of AE1 awaits co-signature by the " \
        "investigator" in shown
    assert site.patient("P003")["patient"]["outcome"] == "waiting"
    shown = site.run("patient", "P003").stdout
    assert "awaiting co-signature: P003's adjudication of AE1 awaits" in shown
    assert "DLT not counted" not in shown
    decide = site.record("decide", "--action", "escalate", "--next-level", "2", user="pat",
                         check=False)
    assert_one_line_error(decide, "awaits co-signature by the investigator")

    before = stored_entries(ledger_url)
    for user, expected in (("pat", "nobody co-signs their own entry"),
                           ("mona", "does not hold")):
        refused = site.record("cosign", str(position), user=user, check=False)
        assert refused.returncode == 1
        assert_one_line_error(refused, expected)
    assert stored_entries(ledger_url) == before

    signed = json.loads(site.record("cosign", str(position), user="ivan").stdout)
    entry = signed["entries"][0]
    assert entry["type"] == "trialctl.Patient.AdjudicationCoSigned"
    assert (entry["actor"]["user_id"], entry["actor"]["role"]) == ("ivan", "investigator")
    assert entry["payload"]["position"] == position
    assert signed["summary"]["outcome"] == "evaluable"
    again = site.record("cosign", str(position), user="ivan", check=False)
    assert_one_line_error(again, "is co-signed")
    assert site.status()["next"]["code"] == "decision-due"
    assert site.patient("P003")["patient"]["dlts"] == 1
    verified = json.loads(site.run("verify", "--json").stdout)
    assert verified["ok"] is True


def test_verify_finds_an_adjudication_co_signature_that_cites_wrongly_or_by_its_author() -> None:
    trial = Trial.register(co_signed_protocol(), NOW)
    patient = run_cohort(trial, "T", 1, 0)[0]
    version = patient.dlts()[0]["version"]
    seen = _Adjudications()
    seen.entries[40] = _Decision({"aggregate_id": "p", "aggregate_version": version,
                                  "actor": {"user_id": "pat"}}, "a" * 64)
    seen.signers[("p", version)] = {"pat", "carl"}  # carl corrected it

    def problems(position: int, digest: str, user: str, role: str) -> list[str]:
        statement = {"aggregate_id": "p", "actor": {"user_id": user, "role": role},
                     "payload": {"record_version": version, "position": position,
                                 "entry_hash": digest}}
        return list(seen._problems(statement, trial, patient))

    assert problems(40, "a" * 64, "ivan", "investigator") == []
    assert "no DLT adjudication of this patient" in problems(41, "a" * 64, "ivan",
                                                             "investigator")[0]
    assert "the entry's hash is" in problems(40, "b" * 64, "ivan", "investigator")[0]
    assert "co-sign-own-entry" in problems(40, "a" * 64, "pat", "investigator")[0]
    assert "co-sign-own-entry" in problems(40, "a" * 64, "carl", "investigator")[0]
    assert "co-signer-role" in problems(40, "a" * 64, "mona", "monitor")[0]


def test_no_co_signature_after_the_trial_is_closed(ledger_url: str, home: Path) -> None:
    """A pending adjudication and a pending cohort decision: once the trial is closed,
    neither may be co-signed (only corrections, queries and reviews); verify stays clean."""
    position, actors = pending_adjudication(ledger_url)
    app = open_ledger(ledger_url)
    try:
        actions = CoSignActions(app)
        actions.perform(CoSign(None, position, "ivan"), actors["ivan"], datetime.now(UTC))
        trial = actions.trial(None)
        step = trial.expected_step(actions.roster(trial))
        assert step is not None
        decided = actions.perform(CohortDecision(None, step.action, step.next_level,
                                                 step.mtd_level, None), actors["pat"],
                                  datetime.now(UTC))
        decision = int(decided.entries[0]["position"])
        assert actions.trial(None).awaiting_co_signature()
        actions.perform(TrialClosure(None, date.today().isoformat(), "database lock"),
                        actors["pat"], datetime.now(UTC))
        with pytest.raises(TrialRuleError, match=r"a co-signature may not be recorded.*"
                           r"\[rule: trial-closed\]"):
            actions.check(CoSign(None, decision, "mona"), datetime.now(UTC))
    finally:
        app.close()
    site = SignedSite(ledger_url)
    before = stored_entries(ledger_url)
    refused = site.record("cosign", str(decision), user="mona", check=False)
    assert_one_line_error(refused, "trial-closed")
    assert stored_entries(ledger_url) == before
    assert json.loads(site.run("verify", "--json").stdout)["ok"] is True
