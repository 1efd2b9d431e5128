"""The report's listings on the demo, built in-process: serious adverse events, graded labs,
dose modifications, decisions made on data since corrected, deviations, queries and source
data verification, each row checked against the read model the CLI shows; ids unique across
the inlined plots; and `--checkpoint`: the ledger as of a checkpoint's tree size, refused when
the checkpoint does not match (one CLI run each way)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from tests.conftest import BACKENDS, assert_one_line_error, new_ledger, trialctl
from tests.demo_ledgers import demo_ledger
from trialctl.ledger.application import TrialLedger
from trialctl.ledger.checkpoint import Checkpoint, SignedCheckpoint, sign_checkpoint
from trialctl.ledger.demo import demo_password
from trialctl.ledger.errors import LedgerError
from trialctl.ledger.location import resolve_ledger
from trialctl.ledger.mapper import format_time
from trialctl.ledger.merkle import root_from_leaf_hashes
from trialctl.ledger.report.data import ReportData, gather
from trialctl.ledger.report.figures import figures
from trialctl.ledger.report.html import render_html
from trialctl.ledger.reviews import ReviewActions
from trialctl.ledger.trials import TrialActions
from trialctl.ledger.verify_since_corrected import decisions_since_corrected

SECOND_DECISION = 80  # the demo's cohort 2 decision: a checkpoint of 80 entries ends before it
# The dates below are the demo's when its first consent fell on this day. The demo dates its
# story from the day it is built, so each of them moves by as many days.
DATES_DAY_ZERO = date(2026, 1, 6)


@pytest.fixture(scope="module", params=BACKENDS)
def demo(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[tuple[TrialLedger, Path, str]]:
    directory = tmp_path_factory.mktemp("report-sections")
    databases = new_ledger(request.param, directory / "demo.sqlite")
    url = next(databases)
    home = demo_ledger(url, directory) / "home"
    ledger = TrialLedger(resolve_ledger(url), keys_home=home / "keys")
    yield ledger, home, url
    ledger.close()
    databases.close()  # drops a PostgreSQL database


@pytest.fixture(scope="module")
def on_demo(demo: tuple[TrialLedger, Path, str]) -> Callable[[str], str]:
    """A date written below, moved to the demo as built today."""
    records = TrialActions(demo[0])
    first = date.fromisoformat(records.patient(records.trial(None), "P001").consent_date)
    return lambda written: (date.fromisoformat(written) + (first - DATES_DAY_ZERO)).isoformat()


@pytest.fixture(scope="module")
def data(demo: tuple[TrialLedger, Path, str]) -> ReportData:
    return gather(TrialActions(demo[0]), None, None)


@pytest.fixture(scope="module")
def html(data: ReportData) -> str:
    return render_html(data, figures(data))


def _section(html: str, key: str) -> str:
    """One section's rows as text: from its heading to the next heading."""
    start = html.index(f'<h2 id="{key}">')
    end = html.find("<h2 ", start + 1)
    return html[start:end if end > 0 else len(html)]


def _rows(section: str) -> list[list[str]]:
    return [re.findall(r"<td>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", section)
            if "<td>" in row]


def _checkpoint(ledger: TrialLedger, size: int, root: bytes | None = None) -> SignedCheckpoint:
    """Alice's signed note of the ledger's first `size` entries (or of another root)."""
    leaves = ledger.signed_recorder.leaf_hashes()[:size]
    note = Checkpoint(ledger.ledger_record().ledger_id, size,
                      root if root is not None else root_from_leaf_hashes(leaves),
                      format_time(datetime(2026, 6, 1, tzinfo=UTC)), "alice")
    return sign_checkpoint(note, ledger.unlock("alice", demo_password("alice")).keys)


def test_labs_are_listed_graded_with_the_worst_grade_per_test(
    data: ReportData, html: str, on_demo: Callable[[str], str]
) -> None:
    labs = [(p["patient_id"], lab) for p in data.patients for lab in p.get("labs", [])]
    # The demo's P007 neutrophil series, P010's visit ANC, and a haemoglobin at each course's
    # lab visit (normal: grade 0) of the patients dosed.
    assert len(labs) == 19
    rows = _rows(_section(html, "labs"))
    assert [(r[0], r[1], r[2], r[4], r[6]) for r in rows] == [
        (pid, lab["test"], lab["collected_on"], f"{lab['value']} {lab['unit']}",
         "" if lab["grade"] is None else str(lab["grade"]))
        for pid, lab in sorted(labs, key=lambda x: (x[0], x[1]["test"], x[1]["collected_on"]))]
    # A normal ANC has no grade.
    assert [r[6] for r in rows if r[1] == "anc"] == ["2", "4", "4", "2", ""]
    assert {r[6] for r in rows if r[1] == "haemoglobin"} == {"0"}
    worst = _rows(_section(html, "worst-labs"))
    assert [r for r in worst if r[0] == "anc"] == [["anc", "P007", "4", "4", on_demo("2026-03-03")],
                                                   ["anc", "P010", "1", "", ""]]  # no grade
    haemoglobin = [r for r in worst if r[0] == "haemoglobin"]
    assert {r[1] for r in haemoglobin} == {pid for pid, lab in labs if lab["test"] == "haemoglobin"}
    assert {r[3] for r in haemoglobin} == {"0"}


def test_dose_modifications_and_serious_events_with_their_report_state(
    html: str, on_demo: Callable[[str], str]
) -> None:
    assert _rows(_section(html, "dose-modifications")) == [
        ["P009", "2", "reduce", "1", on_demo("2026-04-28"), "toxicity",
         "grade 3 diarrhoea, hospitalised"]]
    # Due 15 days after onset and never sent: overdue on the report's date (the last entry's).
    assert _rows(_section(html, "saes")) == [
        ["P009", "AE2", "Diarrhea", "3", "hospitalisation", on_demo("2026-04-26"),
         on_demo("2026-05-11"), "", "overdue"]]


def test_deviations_recorded_and_detected(data: ReportData, html: str) -> None:
    rows = _rows(_section(html, "deviations"))
    assert [r[:5] for r in rows] == [["P010", "recorded", "procedure", "minor", "#177"],
                                     ["P011", "detected", "prohibited-medication", "major", ""]]
    assert sum(d["total"] for d in data.status["deviations"]) == len(rows)  # as `status`
    assert "warfarin started without the baseline INR" in rows[0][5]


def test_queries_and_reviews_are_the_rows_the_cli_lists(
    demo: tuple[TrialLedger, Path, str], data: ReportData, html: str
) -> None:
    reviews = ReviewActions(demo[0])
    listed = reviews.query_rows(None, None, False, data.generated.date())
    rows = _rows(_section(html, "queries"))
    assert [(r[0], r[1], r[2], r[3], r[4]) for r in rows] == [
        (q["query_id"], q["patient_id"], f"#{q['record']}", q["state"], str(q["age_days"]))
        for q in listed]
    assert rows[0][:4] == ["Q1", "P008", "#156", "closed"]
    assert "answered by ivan: Radiology report checked: 12 mm; closed by mona" in rows[0][7]

    rows = _rows(_section(html, "reviews"))
    status = reviews.review_status(None, None)
    assert [(r[0], r[1], r[2], r[3]) for r in rows] == [
        (s["patient_id"], str(len(s["reviewed"])), str(len(s["unreviewed"])),
         " ".join(f"#{n}" for n in s["unreviewed"])) for s in status]
    invalidated = {r[0]: r[4] for r in rows if r[4]}
    assert invalidated == {"P008": "review of #78 invalidated by correction #171"}


def test_decisions_on_data_since_corrected_name_the_entries_verify_warns_of(
    demo: tuple[TrialLedger, Path, str], html: str
) -> None:
    warnings = decisions_since_corrected(demo[0])
    rows = _rows(_section(html, "since-corrected"))
    assert len(warnings) == 3
    assert [(r[0], r[1], r[2]) for r in rows] == [
        (str(w.cohort_number), w.decision, f"#{w.position}") for w in warnings]
    for row, warning in zip(rows, warnings, strict=True):
        assert {f"#{n}" for n in warning.entries[1:]} <= set(re.findall(r"#\d+", row[5]))
    assert rows[0][3:5] == ["1 DLT(s) in 3 evaluated: expand",
                            "0 DLT(s) in 3 evaluated: escalate"]


def test_ids_are_unique_across_the_inlined_plots_and_every_reference_resolves(
    html: str
) -> None:
    assert html.count("<svg") == 5
    ids = re.findall(r'\sid="([^"]+)"', html)
    assert [i for i, n in Counter(ids).items() if n > 1] == []
    references = {a or b for a, b in re.findall(r'href="#([^"]+)"|url\(#([^)]+)\)', html)}
    assert references and references <= set(ids)


def test_a_checkpoint_report_shows_the_ledger_at_its_tree_size(
    demo: tuple[TrialLedger, Path, str], data: ReportData
) -> None:
    ledger = demo[0]
    note = _checkpoint(ledger, SECOND_DECISION)
    then = gather(TrialActions(ledger), None, None, checkpoint=("then.txt", note))
    assert [d["signed_by"]["position"] for d in then.status["decisions"]] == [47]
    assert len(data.status["decisions"]) == 4
    assert then.checkpoint_size == SECOND_DECISION
    assert then.verification["checkpoint"] == {
        "source": "then.txt", "tree_size": SECOND_DECISION, "signer": "alice",
        "root_hash": note.checkpoint.root_hash.hex(), "time": note.checkpoint.time,
        "consistent": True}
    # The report speaks for the checkpoint's last entry, not the ledger's.
    assert then.generated < data.generated
    # The P007 lab series was recorded after the checkpoint.
    assert not any(p.get("labs") for p in then.patients)
    page = render_html(then, figures(then))
    assert "As of checkpoint then.txt (tree size 80)" in page
    assert f"tree size 80, root <code>{note.checkpoint.root_hash.hex()}</code>" in page
    assert page == render_html(then, figures(then))


@pytest.mark.parametrize(("size", "root", "says"), [
    (SECOND_DECISION, bytes(32), "history rewritten"),
    (10_000, None, "ledger truncated"),
], ids=["another root", "more entries than the ledger"])
def test_a_checkpoint_the_ledger_does_not_match_is_refused(
    demo: tuple[TrialLedger, Path, str], size: int, root: bytes | None, says: str
) -> None:
    note = _checkpoint(demo[0], size, root)
    with pytest.raises(LedgerError, match=f"checkpoint x.txt does not match the ledger: {says}"):
        gather(TrialActions(demo[0]), None, None, checkpoint=("x.txt", note))


def test_report_checkpoint_on_the_command_line(
    demo: tuple[TrialLedger, Path, str], tmp_path: Path
) -> None:
    ledger, home, url = demo
    env = {"TRIALCTL_HOME": str(home), "TRIALCTL_LEDGER": url}
    good, bad = tmp_path / "good.txt", tmp_path / "bad.txt"
    good.write_text(_checkpoint(ledger, SECOND_DECISION).to_text(), encoding="utf-8")
    bad.write_text(_checkpoint(ledger, SECOND_DECISION, bytes(32)).to_text(), encoding="utf-8")
    page = tmp_path / "report.html"
    result = trialctl("report", "--checkpoint", str(good), "--html", str(page), env=env)
    assert result.returncode == 0, result.stderr
    text = page.read_text(encoding="utf-8")
    assert f"{good}: tree size 80" in text and "signed by alice" in text
    assert "the ledger is consistent with it" in text
    refused = tmp_path / "refused.html"
    result = trialctl("report", "--checkpoint", str(bad), "--html", str(refused), env=env)
    assert_one_line_error(result, f"checkpoint {bad} does not match the ledger",
                          "history rewritten")
    assert result.returncode == 1 and not refused.exists()
