"""`verify --since-checkpoint` re-checks the decisions of the trials touched since the
checkpoint, each over its whole history, and says how many untouched trials it left to a
full verify; on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import copy
import json
from datetime import UTC, datetime
from pathlib import Path

from tests.conftest import trialctl
from tests.demo_ledgers import demo_ledger
from tests.ledgers import write_file
from tests.test_decision_evidence import (
    DECISIONS,
    pat_keys,
    replace_entry,
    resign,
    statements,
)
from tests.trial_helpers import second_protocol
from trialctl.domain.facts import AdverseEvent
from trialctl.ledger.application import TrialLedger, open_ledger
from trialctl.ledger.checkpoint import SignedCheckpoint
from trialctl.ledger.demo import DEMO_PROTOCOL, demo_password, shipped_protocol
from trialctl.ledger.location import resolve_ledger
from trialctl.ledger.requests import PatientStep, Registration
from trialctl.ledger.trials import TrialActions
from trialctl.ledger.verify import VerificationReport, verify_ledger

UNTOUCHED_NOTE = ("decisions: {} trials touched since the checkpoint re-checked; {} untouched "
                  "trials were not — a full verify checks them")


def _checkpoint(app: TrialLedger) -> tuple[str, SignedCheckpoint]:
    signed = app.checkpoint(app.unlock("alice", demo_password("alice")), datetime.now(UTC))
    return "checkpoint", signed


def _verify(url: str, since: tuple[str, SignedCheckpoint] | None = None) -> VerificationReport:
    app = open_ledger(url)
    try:
        return verify_ledger(app.signed_recorder, url, workers=1, since=since)
    finally:
        app.close()


def _adverse_event(app: TrialLedger) -> None:
    """One new patient entry in the demo trial (a grade 1 event, unrelated)."""
    event = AdverseEvent(ae_id="AE9", term="Fatigue (asthenia, lethargy, malaise)", grade=1,
                         attribution="unrelated", onset=datetime.now(UTC).date().isoformat(),
                         resolved_on=None)
    TrialActions(app).perform(PatientStep(shipped_protocol(DEMO_PROTOCOL).id, "P002", event),
                              app.unlock("mona", demo_password("mona")), datetime.now(UTC))


def test_only_touched_trials_are_rechecked_each_over_its_whole_history(
    ledger_url: str, home: Path, tmp_path: Path
) -> None:
    keys_home = demo_ledger(ledger_url, tmp_path) / "home" / "keys"
    app = TrialLedger(resolve_ledger(ledger_url), keys_home=keys_home)
    try:
        before_second = _checkpoint(app)
        TrialActions(app).perform(Registration(second_protocol()),
                                  app.unlock("pat", demo_password("pat")), datetime.now(UTC))
        # Only the second trial was added after the checkpoint: the demo trial's four
        # decisions are left to a full verify, and the report says so.
        report = _verify(ledger_url, before_second)
        assert report.findings == []
        assert (report.decisions_checked, report.decision_trials) == (
            0, {"rechecked": 1, "untouched": 1})
        assert UNTOUCHED_NOTE.format(1, 1) in report.notes
        note = write_file(tmp_path / "cp.txt", before_second[1].to_text())
        text = trialctl("verify", "--ledger", ledger_url, "--since-checkpoint", str(note))
        as_json = json.loads(trialctl("verify", "--ledger", ledger_url, "--since-checkpoint",
                                      str(note), "--json").stdout)
        before_event = _checkpoint(app)
        _adverse_event(app)
    finally:
        app.close()
    # The same note as a whole command prints it, in text and in --json.
    assert f"NOTE {UNTOUCHED_NOTE.format(1, 1)}" in text.stdout.splitlines(), text
    assert as_json["decision_trials"] == {"rechecked": 1, "untouched": 1}
    assert UNTOUCHED_NOTE.format(1, 1) in as_json["notes"]

    # One entry of a demo patient after the second: all four demo decisions are replayed.
    report = _verify(ledger_url, before_event)
    assert report.findings == []
    assert (report.decisions_checked, report.decision_trials) == (
        4, {"rechecked": 1, "untouched": 1})

    # A decision signed long before the checkpoint, forged (re-signed with the PI's key),
    # is found by the incremental verify, since its trial was touched after the checkpoint.
    row_id, statement, _ = [e for e in statements(ledger_url) if e[1]["type"] in DECISIONS][-1]
    forged = copy.deepcopy(statement)
    forged["evidence"]["dlts"] = 1
    resign(ledger_url, row_id, forged, pat_keys(keys_home, ledger_url))
    decision_findings = [(f.check, f.position, f.detail) for f in
                         _verify(ledger_url, before_event).findings if f.check == "decision"]
    assert ("decision", statement["position"], "signed dlts 1; recomputed 2") in \
        decision_findings



def test_an_assigned_patient_is_counted_whatever_its_consent_bytes(
    ledger_url: str, home: Path, tmp_path: Path
) -> None:
    """A touched trial's patient records are found at the ids its assignments derive, not
    by the bytes of their consents: a consent spelling the trial id with a JSON escape names
    the trial all the same (the full pass reads it so), and its patient's entries still
    count in the re-checked decisions."""
    keys_home = demo_ledger(ledger_url, tmp_path) / "home" / "keys"
    row_id, consent, stored = next(
        e for e in statements(ledger_url) if e[1]["type"] == "trialctl.Patient.ConsentSigned"
        and e[1]["payload"]["patient_id"] == "P007")
    trial_id = consent["payload"]["trial_id"]
    statement_bytes = stored.partition(b"\n")[0]
    escaped = statement_bytes.replace(
        f'"trial_id":"{trial_id}"'.encode(),
        f'"trial_id":"\\u{ord(trial_id[0]):04x}{trial_id[1:]}"'.encode())
    assert escaped != statement_bytes and trial_id.encode() not in escaped
    assert json.loads(escaped)["payload"]["trial_id"] == trial_id
    keys = pat_keys(keys_home, ledger_url)
    signature = base64.b64encode(keys.sign(escaped)).decode("ascii")
    replace_entry(ledger_url, row_id, escaped + f"\n{keys.key_id} {signature}\n".encode())
    app = TrialLedger(resolve_ledger(ledger_url), keys_home=keys_home)
    try:
        since = _checkpoint(app)
        _adverse_event(app)
    finally:
        app.close()
    report = _verify(ledger_url, since)
    # Left out, P007 and its DLT would be missing from cohort 2's evidence.
    assert [f for f in report.findings if f.check == "decision"] == []
    assert (report.decisions_checked, report.decision_trials) == (
        4, {"rechecked": 1, "untouched": 0})
