"""A batch file's checking work is the file's, not each line's: the signer's authority is
judged once per kind of entry, and no line grades the patient's whole record for a summary
the batch never shows. Yet every refusal is still judged, reported and queued line by line,
and the positions reported are those the ledger holds.

In-process on SQLite (the command's contract is tests/test_batch.py's, run as `trialctl`);
call counts, unlike timings, do not depend on the machine's load.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from benchmarks.batch_entry import PATIENTS, Site, as_file, open_site, run_file
from benchmarks.workload import open_bench_ledger
from trialctl.domain.patient import Patient
from trialctl.ledger.application import TrialLedger
from trialctl.ledger.batch import record_batch
from trialctl.ledger.batch_lines import read_lines
from trialctl.ledger.entry import parse_entry


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TrialLedger, Site]]:
    directory = tmp_path_factory.mktemp("batch-cost")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRIALCTL_HOME", str(directory / "home"))
        app, admin, _ = open_bench_ledger(str(directory / "ledger.sqlite"))
        app.register_user(admin, "aude", "Aude", ["auditor"], "aude-bench-password")
        yield app, open_site(app, admin)
        app.close()


def _counting(patch: pytest.MonkeyPatch, owner: Any, name: str) -> list[int]:
    calls: list[int] = []
    original = getattr(owner, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return original(*args, **kwargs)

    patch.setattr(owner, name, counted)
    return calls


def test_authority_is_judged_once_per_kind_and_no_summary_is_graded(
    site: tuple[TrialLedger, Site], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, bench = site
    lines = bench.follow_up.lines(24)  # labs and adverse events: two kinds of entry
    may_sign = _counting(monkeypatch, TrialLedger, "check_may_sign")
    summaries = _counting(monkeypatch, Patient, "summary")

    outcome = run_file(app, bench.signer, as_file(lines))

    assert outcome.written == 24 and not outcome.refused
    assert len(may_sign) == 2
    assert summaries == []
    # Each line's reported position holds that line's entry.
    for accepted, line in zip(outcome.accepted, lines, strict=True):
        (position,) = accepted["positions"]
        found = app.signed_recorder.entry_at(position)
        assert found is not None
        statement = parse_entry(found[1].state).statement
        assert statement["actor"]["user_id"] == bench.signer.user.user_id
        kind = "test" if line["command"] == "lab" else "term"
        assert statement["payload"][kind] == line[kind]


def test_a_signer_without_the_role_is_refused_and_queued_on_every_line(
    site: tuple[TrialLedger, Site]
) -> None:
    app, bench = site
    lines = bench.follow_up.lines(5)
    queued = len(app.security_queue.events("aude"))
    size = app.signed_recorder.tree_size()

    outcome = record_batch(app, read_lines(as_file(lines), "batch.jsonl"), None, "aude",
                           lambda: pytest.fail("nobody is asked to sign a refused file"),
                           datetime.now(UTC))

    assert [r.line for r in outcome.refused] == [1, 2, 3, 4, 5]
    assert {(r.kind, r.rule) for r in outcome.refused} == {("authority", "may-sign")}
    assert len(app.security_queue.events("aude")) == queued + 5
    assert app.signed_recorder.tree_size() == size


def test_positions_follow_on_across_files(site: tuple[TrialLedger, Site]) -> None:
    app, bench = site
    first = run_file(app, bench.signer, as_file(bench.follow_up.lines(3)))
    second = run_file(app, bench.signer, as_file(bench.follow_up.lines(3)))

    positions = [p for o in (first, second) for a in o.accepted for p in a["positions"]]
    assert positions == list(range(positions[0], positions[0] + 6))
    assert positions[-1] == app.signed_recorder.tree_size() - 1


def test_a_patient_step_reads_no_other_patients_record_unless_a_rule_does(
    site: tuple[TrialLedger, Site], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Only enrollment reads the trial's roster (for the open places): a lab or an adverse
    # event reads its own patient's record and nobody else's.
    from trialctl.ledger.trials import TrialActions

    app, bench = site
    lines = bench.follow_up.lines(6)
    assert len(PATIENTS) > 1  # enrolled: a roster to read, were it read
    read = _counting(monkeypatch, TrialActions, "patient")

    outcome = run_file(app, bench.signer, as_file(lines))

    assert outcome.written == 6 and not outcome.refused
    assert len(read) == len(lines)
