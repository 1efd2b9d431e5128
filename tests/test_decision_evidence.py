"""A cohort decision is bound to its evidence: each decision entry signs the engine's
recommendation and the entries it counted, and `verify` recomputes every decision from the
ledger as it stood at that decision's position, on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import trialctl
from tests.demo_ledgers import demo_ledger
from tests.ledgers import (
    drop_append_only_triggers,
    engine_for,
    rows,
    seal_unchecked,
    sql,
    swap_rows,
)
from tests.signed_site import staff_ledger
from tests.test_record_cli import SECOND_PROTOCOL, Site, enroll, treat
from trialctl.domain.trial import Trial
from trialctl.ledger.application import open_ledger
from trialctl.ledger.decisions import is_counted
from trialctl.ledger.demo import demo_password
from trialctl.ledger.entry import (
    EVIDENCE_FORMAT,
    MalformedEntryError,
    entry_hash,
    parse_entry,
    seal,
)
from trialctl.ledger.errors import RecordingError
from trialctl.ledger.keys import KeyPair, open_key_file
from trialctl.ledger.merkle import hash_leaf
from trialctl.ledger.trials import TrialActions
from trialctl.ledger.verify import VerificationReport, verify_ledger

DECISIONS = (Trial.CohortDecided.TOPIC, Trial.CohortDecisionOverridden.TOPIC)


def demo_keys(url: str, tmp_path: Path) -> Path:
    return demo_ledger(url, tmp_path) / "home" / "keys"


def verified(url: str) -> VerificationReport:
    app = open_ledger(url)
    try:
        return verify_ledger(app.signed_recorder, url, workers=1)
    finally:
        app.close()


def statements(url: str) -> list[tuple[int, dict[str, Any], bytes]]:
    """(row id, statement, stored entry) of every entry, in position order."""
    engine = engine_for(url)
    try:
        found = [(r[0], parse_entry(bytes(r[3])).statement, bytes(r[3])) for r in rows(engine)]
    finally:
        engine.dispose()
    return sorted(found, key=lambda item: int(item[1]["position"]))


def pat_keys(keys_home: Path, url: str) -> KeyPair:
    app = open_ledger(url)
    try:
        key_id = app.get_user("pat").key_id
    finally:
        app.close()
    return open_key_file(keys_home / "pat" / f"{key_id}.json", demo_password("pat"), key_id)


def resign(url: str, row_id: int, statement: dict[str, Any], keys: KeyPair) -> None:
    """Replace a stored entry with `statement` signed by `keys`, its leaf hash with it: as
    the holder of the signer's key and database access would."""
    replace_entry(url, row_id, seal(statement, keys))


def replace_entry(url: str, row_id: int, entry: bytes) -> None:
    """Store `entry` in place of a row's bytes, its leaf hash with it."""
    engine = engine_for(url)
    try:
        drop_append_only_triggers(engine)
        sql(engine, "UPDATE trialctl_events SET state = :s WHERE id = :i", s=entry, i=row_id)
        sql(engine, "UPDATE trialctl_leaves SET leaf_hash = :h WHERE notification_id = :i",
            h=hash_leaf(entry), i=row_id)
    finally:
        engine.dispose()


def test_every_demo_decision_signs_its_recommendation_and_counted_entries(
    ledger_url: str, home: Path, tmp_path: Path
) -> None:
    demo_ledger(ledger_url, tmp_path)
    entries = statements(ledger_url)
    decisions = [s for _, s, _ in entries if s["type"] in DECISIONS]
    assert [d["evidence"]["cohort_number"] for d in decisions] == [1, 2, 3, 4]
    assert all(d["format"] == EVIDENCE_FORMAT for d in decisions)
    # Cohort 2 (level 2): P006-P008, P007 with a DLT; the engine said expand at level 2.
    second = decisions[1]["evidence"]
    assert second["recommendation"] == {"action": "expand", "next_level": 2, "mtd_level": None}
    assert (second["dlts"], second["evaluable"]) == (1, 3)
    assert [(e["patient"], e["type"].rpartition(".")[2]) for e in second["entries"]] == [
        ("P006", "CourseCompleted"), ("P007", "DltAdjudicated"), ("P007", "CourseCompleted"),
        ("P008", "CourseCompleted"),
    ]
    # Each listed entry is the stored one at that position, named by its hash.
    by_position = {int(s["position"]): (s, stored) for _, s, stored in entries}
    for listed in second["entries"]:
        statement, stored = by_position[listed["position"]]
        assert listed["entry_hash"] == entry_hash(stored)
        assert is_counted(statement) and listed["position"] < decisions[1]["position"]
    # The final stop: MTD level 2, two DLTs in three at level 3.
    last = decisions[-1]["evidence"]
    assert last["recommendation"] == {"action": "stop", "next_level": None, "mtd_level": 2}
    assert (last["dlts"], last["evaluable"]) == (2, 3)

    report = verified(ledger_url)
    assert report.findings == []
    assert report.decisions_checked == 4
    assert report.overrides == []


def _last_decision(url: str) -> tuple[int, dict[str, Any]]:
    row_id, statement, _ = [e for e in statements(url) if e[1]["type"] in DECISIONS][-1]
    return row_id, statement


def _set_aside_co_signature(findings: list[Any], decision: int) -> list[Any]:
    """A re-signed decision also breaks its co-signature, the next Trial entry, which another
    person signed: its chain link and its citation of the decision's hash. Those two findings
    are checked, then set aside."""
    def field(finding: Any, name: str) -> Any:
        return finding[name] if isinstance(finding, dict) else getattr(finding, name)

    beside = [f for f in findings if field(f, "position") == decision + 1]
    assert sorted(field(f, "check") for f in beside) == ["chain", "decision"]
    assert any("co-signature cites" in field(f, "detail") for f in beside)
    return [f for f in findings if field(f, "position") != decision + 1]


def test_a_decision_resigned_without_one_of_its_entries_is_reported(
    ledger_url: str, home: Path, tmp_path: Path
) -> None:
    keys = pat_keys(demo_keys(ledger_url, tmp_path), ledger_url)
    row_id, statement = _last_decision(ledger_url)
    forged = copy.deepcopy(statement)
    dropped = forged["evidence"]["entries"].pop(1)
    resign(ledger_url, row_id, forged, keys)

    result = trialctl("verify", "--ledger", ledger_url, "--json")
    assert result.returncode == 1, result
    findings = _set_aside_co_signature(json.loads(result.stdout)["findings"],
                                       statement["position"])
    assert [(f["check"], f["position"]) for f in findings] == [
        ("decision", statement["position"])
    ]
    assert findings[0]["event_type"] == Trial.CohortDecided.TOPIC
    kind = dropped["type"].rpartition(".")[2]
    assert findings[0]["detail"] == (
        "signed evidence entries differ from the ledger's: missing "
        f"{dropped['position']} ({kind} {dropped['patient']})"
    )


def test_a_decision_resigned_with_another_recommendation_and_counts_is_reported(
    ledger_url: str, home: Path, tmp_path: Path
) -> None:
    keys = pat_keys(demo_keys(ledger_url, tmp_path), ledger_url)
    row_id, statement = _last_decision(ledger_url)
    forged = copy.deepcopy(statement)
    forged["evidence"]["recommendation"] = {"action": "stop", "next_level": None, "mtd_level": 3}
    forged["evidence"]["dlts"] = 1
    forged["payload"]["mtd_level"] = 3
    resign(ledger_url, row_id, forged, keys)

    details = [f.detail for f in _set_aside_co_signature(verified(ledger_url).findings,
                                                         statement["position"])]
    assert details == [
        "signed recommendation stop, MTD level 3 (1 DLT(s) in 3 evaluable); recomputed stop, "
        "MTD level 2 (2 DLT(s) in 3 evaluable)",
        "signed dlts 1; recomputed 2",
        "decided stop, MTD level 3 without an override; the engine recommends stop, MTD "
        "level 2 (2 DLT(s) in 3 evaluable)",
    ]


def test_a_decision_resigned_as_v1_without_evidence_is_reported(
    ledger_url: str, home: Path, tmp_path: Path
) -> None:
    keys = pat_keys(demo_keys(ledger_url, tmp_path), ledger_url)
    row_id, statement = _last_decision(ledger_url)
    forged = {k: v for k, v in statement.items() if k != "evidence"}
    forged["format"] = "trialctl-event/v1"
    resign(ledger_url, row_id, forged, keys)

    findings = _set_aside_co_signature(verified(ledger_url).findings, statement["position"])
    assert [(f.check, f.position) for f in findings] == [("decision", statement["position"])]
    assert findings[0].detail.startswith(
        "the decision carries no evidence (statement format 'trialctl-event/v1'); "
        "recomputed: stop, MTD level 2 (2 DLT(s) in 3 evaluable), counted entries "
    )


@pytest.fixture
def site(ledger_url: str, home: Path, tmp_path: Path) -> Site:
    site = Site(ledger_url, tmp_path)
    staff_ledger(ledger_url)
    site.run("trial", "register", str(SECOND_PROTOCOL), user="pat")
    return site


def test_verify_lists_every_override_with_its_reason_and_signer(site: Site) -> None:
    for index, patient in enumerate(("P001", "P002", "P003")):
        enroll(site, patient, index)
        treat(site, patient, "25", 5, dlt=index == 0)
    decided = json.loads(site.record("decide", "--action", "escalate", "--next-level", "2",
                                     "--override-reason", "PK data support level 2",
                                     user="pat").stdout)
    position = decided["entries"][0]["position"]
    assert decided["entries"][0]["evidence"]["recommendation"] == {
        "action": "expand", "next_level": 1, "mtd_level": None}

    report = json.loads(site.run("verify", "--json").stdout)
    assert report["ok"] is True
    assert report["decisions_checked"] == 1
    [override] = report["overrides"]
    assert override["position"] == position
    assert override["override_reason"] == "PK data support level 2"
    assert (override["signer"], override["signer_name"], override["signer_role"]) == (
        "pat", "Dr Pat Park", "principal-investigator")
    assert override["decision"] == "escalate to level 2"
    assert override["engine_recommendation"] == "expand to level 1"

    text = site.run("verify").stdout.splitlines()
    assert f"OVERRIDE [position {position}] cohort 1: escalate to level 2 instead of expand " \
        "to level 1, signed by pat (Dr Pat Park, principal-investigator) at " in text[0]
    assert text[0].endswith("; reason: PK data support level 2")
    assert text[1] == "cohort decisions recomputed: 1, overrides: 1"


def test_a_decision_written_without_its_evidence_is_refused_and_nothing_written(
    ledger_url: str, home: Path, tmp_path: Path
) -> None:
    keys_home = demo_keys(ledger_url, tmp_path)
    app = open_ledger(ledger_url)
    try:
        app.keys_home = keys_home
        size = app.signed_recorder.tree_size()
        trial = TrialActions(app).trial(None)
        # The demo's trial has stopped; a decision event planted on it directly, as a caller
        # that skipped TrialActions would, must still be refused for lack of evidence.
        trial._decided(5, "stop", None, 2, "x", "x", {}, timestamp=datetime.now(UTC))
        pat = app.unlock("pat", demo_password("pat"))
        with pytest.raises(RecordingError, match="must be written with its evidence"):
            app.record(pat, trial)
        assert app.signed_recorder.tree_size() == size
    finally:
        app.close()


def _statement(**changes: Any) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "format": EVIDENCE_FORMAT, "position": 9, "aggregate_version": 3,
        "aggregate_id": "78de4a8e-77d4-5b6f-92d3-0f830a8258bd",
        "type": Trial.CohortDecided.TOPIC, "payload": {},
        "recorded_at": "2026-01-02T03:04:05.000006+00:00",
        "actor": {"user_id": "pat", "name": "P", "role": "investigator", "key_id": "a" * 64},
        "meaning": "approved", "prev_hash": "b" * 64,
        "evidence": {
            "cohort_number": 1, "dlts": 0, "evaluable": 3,
            "recommendation": {"action": "escalate", "next_level": 2, "mtd_level": None},
            "entries": [{"position": 4, "entry_hash": "c" * 64, "type": "t", "patient": "P1"},
                        {"position": 7, "entry_hash": "d" * 64, "type": "t", "patient": "P2"}],
        },
    }
    statement.update(changes)
    return statement


def _entry(statement: dict[str, Any]) -> bytes:
    return seal_unchecked(statement, KeyPair.generate())


def test_a_well_formed_decision_statement_parses() -> None:
    assert parse_entry(_entry(_statement())).statement["evidence"]["dlts"] == 0


def _evidence(**changes: Any) -> dict[str, Any]:
    evidence: dict[str, Any] = copy.deepcopy(_statement()["evidence"])
    evidence.update(changes)
    return evidence


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        (_statement(type="trialctl.Patient.DoseGiven"),
         "only a cohort decision carries evidence"),
        ({k: v for k, v in _statement().items() if k != "evidence"},
         "missing ['evidence']"),
        (_statement(format="trialctl-event/v1"), "unexpected ['evidence']"),
        (_statement(format="trialctl-event/v3"), "unknown statement format"),
        (_statement(evidence=[]), "evidence must hold exactly"),
        (_statement(evidence=_evidence(cohort_number=0)), "cohort_number is not an integer"),
        (_statement(evidence=_evidence(dlts=True)), "evidence.dlts is not an integer"),
        (_statement(evidence=_evidence(recommendation={"action": "stop"})),
         "evidence.recommendation is neither null nor exactly"),
        (_statement(evidence=_evidence(recommendation={
            "action": "stop", "next_level": None, "mtd_level": 0})),
         "mtd_level is neither null nor an integer"),
        (_statement(evidence=_evidence(entries={})), "evidence.entries is not a list"),
        (_statement(evidence=_evidence(entries=list(reversed(_evidence()["entries"])))),
         "in increasing order"),
        (_statement(evidence=_evidence(entries=[{"position": 1}])),
         "each evidence entry holds exactly"),
        (_statement(evidence=_evidence(entries=[
            {"position": 1, "entry_hash": "C" * 64, "type": "t", "patient": "P1"}])),
         "entry_hash is not 64"),
        (_statement(evidence=_evidence(entries=[
            {"position": 1, "entry_hash": "c" * 64, "type": 3, "patient": "P1"}])),
         "type and patient are strings"),
    ],
    ids=["not-a-decision", "v2-without-evidence", "v1-with-evidence", "unknown-format",
         "not-an-object", "cohort-0", "boolean-count", "short-recommendation", "level-0",
         "entries-not-a-list", "entries-unordered", "entry-fields", "entry-hash",
         "entry-type"],
)
def test_a_malformed_evidence_member_is_refused_naming_it(
    statement: dict[str, Any], message: str
) -> None:
    with pytest.raises(MalformedEntryError, match=message.replace("[", r"\[")
                       .replace("]", r"\]").replace("(", r"\(")):
        parse_entry(_entry(statement))


def test_decisions_are_recomputed_in_position_order_when_rows_are_stored_out_of_order(
    ledger_url: str, home: Path, tmp_path: Path
) -> None:
    demo_ledger(ledger_url, tmp_path)
    row_id, decision = _last_decision(ledger_url)
    engine = engine_for(ledger_url)
    try:
        drop_append_only_triggers(engine)
        ids = [int(r[0]) for r in rows(engine)]
        index = ids.index(row_id)
        # The decision stored before the entry just ahead of it, one of the entries it
        # counted: read in stored order, the decision would miss it.
        swap_rows(engine, index - 1, index)
    finally:
        engine.dispose()

    report = verified(ledger_url)
    # The swap itself is found (positions and leaves); the decisions, replayed by position,
    # hold.
    assert {f.check for f in report.findings} == {"sequence", "leaf"}
    assert report.decisions_checked == 4
    counted = [e["position"] for e in decision["evidence"]["entries"]]
    assert decision["position"] - 1 in counted
