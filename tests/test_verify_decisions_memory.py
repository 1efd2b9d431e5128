"""verify's decision pass lets a trial go once the stream has passed its last row and its
patients' (so memory follows the trials in progress, not the ledger), and reports exactly
what the pass holding every trial reports, also when a row's columns misfile it."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from tests.demo_ledgers import demo_ledger
from tests.ledgers import drop_append_only_triggers, engine_for, sql, stored_id
from tests.test_decision_evidence import DECISIONS, statements
from trialctl.domain.patient import Patient
from trialctl.domain.trial import Trial
from trialctl.ledger import verify_decisions, verify_entries
from trialctl.ledger.application import open_ledger
from trialctl.ledger.verify import verify_ledger
from trialctl.ledger.verify_entries import read_rows
from trialctl.ledger.verify_report import VerificationReport


def _both_ways(url: str) -> tuple[VerificationReport, VerificationReport, list[str]]:
    """The pass as verify runs it, the pass holding every trial, and the trials let go."""
    app = open_ledger(url)
    try:
        recorder = app.signed_recorder
        streamed, held = VerificationReport(url), VerificationReport(url)
        verify_decisions.check_decisions(recorder, streamed)
        verify_decisions._replay(verify_decisions._in_position_order(
            read_rows(recorder, 0, verify_decisions.TOPICS)), held)
        let_go = list(verify_decisions._Ends.of(recorder).passed(10**12))
    finally:
        app.close()
    return streamed, held, let_go


def _same(streamed: VerificationReport, held: VerificationReport) -> None:
    assert streamed.findings == held.findings
    assert streamed.overrides == held.overrides
    assert streamed.decisions_checked == held.decisions_checked > 0


def test_the_decision_pass_lets_trials_go_and_reports_the_same(
    ledger_url: str, home: Path, tmp_path: Path
) -> None:
    demo_ledger(ledger_url, tmp_path)
    streamed, held, let_go = _both_ways(ledger_url)
    _same(streamed, held)
    trials = {s["aggregate_id"] for _, s, _ in statements(ledger_url)
              if s["type"] == Trial.Registered.TOPIC}
    assert trials and trials <= set(let_go)


def test_a_row_misfiled_by_its_columns_sends_the_pass_back_to_hold_every_trial(
    ledger_url: str, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    demo_ledger(ledger_url, tmp_path)
    # The last row of a trial and its patients filed, by its columns, under an aggregate of
    # its own: read by columns the trial ends before it, yet the row signs the trial's (or
    # its patient's) id.
    entries = statements(ledger_url)
    trial = [s for _, s, _ in entries if s["type"] in DECISIONS][-1]["aggregate_id"]
    family = {trial} | {s["aggregate_id"] for _, s, _ in entries
                        if s["type"] == Patient.ConsentSigned.TOPIC
                        and s["payload"].get("trial_id") == trial}
    row_id = max(i for i, s, _ in entries if s["aggregate_id"] in family)
    engine = engine_for(ledger_url)
    try:
        drop_append_only_triggers(engine)
        sql(engine, "UPDATE trialctl_events SET originator_id = :o WHERE id = :i",
            o=stored_id(engine, uuid4()), i=row_id)
    finally:
        engine.dispose()
    passes = []
    replay = verify_decisions._replay
    monkeypatch.setattr(verify_decisions, "_replay",
                        lambda *a, **k: passes.append(1) or replay(*a, **k))
    streamed, held, _ = _both_ways(ledger_url)
    assert len(passes) == 3  # streamed, let go too early, then holding every trial; held
    _same(streamed, held)


def _alone_and_along(url: str) -> tuple[VerificationReport, VerificationReport]:
    """The decision pass on its own reading of the ledger, and verify's report, whose
    decision pass rides along on the entry checks' reading."""
    app = open_ledger(url)
    try:
        alone = VerificationReport(url)
        verify_decisions.check_decisions(app.signed_recorder, alone)
        report = verify_ledger(app.signed_recorder, url, workers=2)
    finally:
        app.close()
    return alone, report


@pytest.mark.parametrize("parallel", [False, True])
def test_verify_reports_the_decision_pass_s_own_findings_in_its_place(
    ledger_url: str, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    parallel: bool,
) -> None:
    demo_ledger(ledger_url, tmp_path)
    if parallel:  # the worker processes' verdicts, not the one-process checks
        monkeypatch.setattr(verify_entries, "PARALLEL_THRESHOLD", 0)
    decision = max(i for i, s, _ in statements(ledger_url) if s["type"] in DECISIONS)
    engine = engine_for(ledger_url)
    try:  # one decision's row filed under another aggregate: findings of both passes
        drop_append_only_triggers(engine)
        sql(engine, "UPDATE trialctl_events SET originator_id = :o WHERE id = :i",
            o=stored_id(engine, uuid4()), i=decision)
    finally:
        engine.dispose()
    alone, report = _alone_and_along(ledger_url)
    decisions = [f for f in report.findings if f.check == verify_decisions.CHECK]
    assert decisions == alone.findings
    assert report.findings[-len(decisions):] == decisions  # after every other check's
    assert report.overrides == alone.overrides
    assert report.decisions_checked == alone.decisions_checked > 0


def test_rows_out_of_position_order_send_verify_to_the_decision_pass_of_its_own(
    ledger_url: str, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    demo_ledger(ledger_url, tmp_path)
    passes = []
    replay = verify_decisions._replay
    monkeypatch.setattr(verify_decisions, "_replay",
                        lambda *a, **k: passes.append(1) or replay(*a, **k))
    monkeypatch.setattr(verify_decisions, "_readable_read", _out_of_order)
    alone, report = _alone_and_along(ledger_url)
    assert len(passes) == 3  # alone; along, found out of order; then a pass of its own
    assert report.decisions_checked == alone.decisions_checked > 0
    assert not report.findings
    # The entry checks still read every row.
    assert report.tree_size == len(statements(ledger_url))


def _out_of_order(rows: Iterable[object]) -> Iterator[tuple[object, dict[str, Any]]]:
    raise verify_decisions._OutOfOrder
    yield  # a generator, as the one it replaces
