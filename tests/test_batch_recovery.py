"""Batch entry when a line is refused after it changed the batch's copy of an aggregate
(the signer may not sign what the line made): the held state goes back to the stored state
with the accepted lines replayed on it, so the refused line leaves no trace and every other
line is written exactly once, in order."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from tests.nct_site import NCT, Site
from tests.signed_site import PASSWORDS, staff_ledger
from tests.trial_helpers import at, day
from trialctl.ledger.application import TrialLedger, open_ledger
from trialctl.ledger.batch import Outcome, record_batch
from trialctl.ledger.batch_lines import read_lines
from trialctl.ledger.entry import parse_entry
from trialctl.ledger.verify import verify_ledger

NEUTROPENIA = "Neutrophils/granulocytes (ANC/AGC)"
LINES = [
    {"command": "dose", "patient": "P001", "agent": "imatinib mesylate", "dose": "300",
     "unit": "mg/day", "course": 1, "day": 1, "at": at(3)},
    {"command": "ae", "patient": "P001", "id": "AE1", "term": NEUTROPENIA, "grade": 4,
     "attribution": "probable", "onset": day(5)},
    # A monitor may not adjudicate a DLT: refused by authority, after the batch's copy of
    # P001 took the adjudication.
    {"command": "dlt", "patient": "P001", "ae": "AE1", "dlt": True, "rule": "neutropenia_g4",
     "date": day(12)},
    {"command": "lab", "patient": "P001", "test": "anc", "value": "400", "unit": "/mm3",
     "date": day(5), "course": 1, "day": 5},
    {"command": "ae", "patient": "P001", "id": "AE2", "term": NEUTROPENIA, "grade": 2,
     "attribution": "possible", "onset": day(7)},
]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Site, TrialLedger]]:
    tmp_path = tmp_path_factory.mktemp("batch-recovery")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRIALCTL_HOME", str(tmp_path / "home"))
        patch.delenv("TRIALCTL_LEDGER", raising=False)
        built = Site(str(tmp_path / "ledger.sqlite"), tmp_path)
        staff_ledger(built.ledger, monitor=True)
        built.run("trial", "register", str(NCT), user="pat")
        built.screen_and_enroll("P001")
        app = open_ledger(built.ledger)
        yield built, app
        app.close()


def _run(app: TrialLedger, each: bool) -> Outcome:
    data = "".join(json.dumps(line) + "\n" for line in LINES).encode()
    return record_batch(app, read_lines(data, "visit.jsonl"), None, "mona",
                        lambda: app.unlock("mona", PASSWORDS["mona"]),
                        datetime.now(UTC), each=each)


def _types(app: TrialLedger, start: int) -> list[str]:
    size = app.signed_recorder.tree_size()
    found = [app.signed_recorder.entry_at(p) for p in range(start, size)]
    return [parse_entry(f[1].state).statement["type"] for f in found if f is not None]


def test_all_or_nothing_writes_nothing(site: tuple[Site, TrialLedger]) -> None:
    _, app = site
    size = app.signed_recorder.tree_size()
    outcome = _run(app, each=False)
    assert [(r.line, r.kind) for r in outcome.refused] == [(3, "authority")]
    assert outcome.accepted == [] and app.signed_recorder.tree_size() == size


def test_a_line_refused_after_changing_its_patient_leaves_no_trace(
        site: tuple[Site, TrialLedger]) -> None:
    built, app = site
    size = app.signed_recorder.tree_size()
    outcome = _run(app, each=True)
    assert [(r.line, r.kind, r.rule) for r in outcome.refused] == [(3, "authority", "may-sign")]
    assert [a["line"] for a in outcome.accepted] == [1, 2, 4, 5]
    written = _types(app, size)
    # The refusal itself is signed into mona's security log (a refused attempt is kept);
    # of the patient's entries, the adjudication left nothing, the others are there once.
    assert [t for t in written if ".Patient." in t] == [
        "trialctl.Patient.DoseGiven", "trialctl.Patient.AdverseEventReported",
        "trialctl.Patient.LabRecorded", "trialctl.Patient.AdverseEventReported"]
    assert set(written) - {t for t in written if ".Patient." in t} <= {
        "trialctl.SecurityLog.Opened", "trialctl.SecurityLog.AttemptRefused"}
    positions = [p for a in outcome.accepted for p in a["positions"]]
    assert positions == sorted(set(positions)) and len(positions) == 4
    assert verify_ledger(app.signed_recorder, app.location.display()).ok
    shown = built.patient("P001")
    assert [ae["ae_id"] for ae in shown["adverse_events"]] == ["AE1", "AE2"]
    assert not any(ae.get("dlt") for ae in shown["adverse_events"])
