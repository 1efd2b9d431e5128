# ruff: noqa: F811  (the `site` fixture, shared with test_record_cli)
"""`trialctl record --from FILE`: a visit's lines signed with one password, all or nothing
(or --each), each line checked as its own command checks it; on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import assert_one_line_error
from tests.test_record_cli import Site, site  # noqa: F401  (the fixture)
from tests.trial_helpers import at, day, screening_for, second_protocol
from trialctl.cli.main import app
from trialctl.ledger.batch_lines import LINE_KINDS, NOT_IN_BATCH, csv_columns


def visit(patient: str = "P001") -> list[dict[str, Any]]:
    """A first visit: consent, screening, enrolment, the first dose and a lab."""
    return [
        {"command": "consent", "patient": patient, "consent-version": "1.0", "date": day(0)},
        {"command": "screen", "patient": patient, "date": day(1),
         "value": screening_for(second_protocol(), 1)},
        {"command": "enroll", "patient": patient, "date": day(2)},
        {"command": "dose", "patient": patient, "agent": "examplinib", "dose": "25",
         "unit": "mg", "course": 1, "day": 1, "at": at(3)},
        {"command": "lab", "patient": patient, "test": "anc", "value": "1500", "unit": "/mm3",
         "date": day(3), "course": 1, "day": 1},
    ]


def write(site: Site, lines: list[dict[str, Any]], name: str = "batch.jsonl") -> Path:
    path = site.tmp_path / name
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def batch(site: Site, path: Path, *extra: str) -> Any:
    result = site.run("record", "--from", str(path), "--json", *extra, user="ivan", check=False)
    return result, json.loads(result.stdout) if result.stdout.strip() else None


def entry_count(site: Site) -> int:
    return site.entries()


def test_a_visit_file_is_recorded_in_one_command_with_one_password(site: Site) -> None:
    result, report = batch(site, write(site, visit()))
    assert result.returncode == 0, result
    assert [a["command"] for a in report["accepted"]] == [
        "consent", "screen", "enroll", "dose", "lab"]
    assert report["refused"] == []
    positions = [p for a in report["accepted"] for p in a["positions"]]
    assert positions == sorted(positions) and len(positions) == report["entries_written"]
    # enrolment saw the screening of the same file; the trial co-signed it
    assert report["accepted"][2]["types"] == ["Trial.PatientAssigned", "Patient.Enrolled"]
    assert json.loads(site.run("verify", "--json").stdout)["ok"] is True


def test_one_bad_line_writes_nothing_and_the_report_names_it(site: Site) -> None:
    lines = visit()
    lines[3]["dose"] = "2500"  # not the dose of the cohort's level
    lines[4]["course"] = 0
    before = entry_count(site)
    result, report = batch(site, write(site, lines))
    assert result.returncode == 1
    assert report["accepted"] == [] and report["entries_written"] == 0
    refused = {r["line"]: r for r in report["refused"]}
    assert set(refused) == {4, 5}
    assert refused[4]["kind"] == "rule" and refused[4]["command"] == "dose"
    assert refused[5] == {"line": 5, "command": "lab", "kind": "input", "rule": "field-type",
                          "message": "field 'course': must be at least 1"}
    assert entry_count(site) == before
    text = site.run("record", "--from", str(write(site, lines)), user="ivan", check=False)
    assert "line 4 dose: refused (rule" in text.stderr
    assert "nothing recorded: 2 of 5 lines refused" in text.stderr


def test_each_writes_exactly_the_accepted_lines(site: Site) -> None:
    lines = visit()
    lines.insert(3, {"command": "dose", "patient": "P001", "agent": "examplinib"})
    before = entry_count(site)
    result, report = batch(site, write(site, lines), "--each")
    assert result.returncode == 1
    assert [a["line"] for a in report["accepted"]] == [1, 2, 3, 5, 6]
    assert [(r["line"], r["rule"]) for r in report["refused"]] == [(4, "missing-field")]
    assert entry_count(site) == before + report["entries_written"]


def test_the_csv_form_records_the_same_visit(site: Site) -> None:
    header = ["command", "patient", "consent-version", "date", "value", "agent", "dose",
              "unit", "course", "day", "at"]
    values = ";".join(f"{k}={v}" for k, v in screening_for(second_protocol(), 1).items())
    rows = [["consent", "P001", "1.0", day(0)], ["screen", "P001", "", day(1), values],
            ["enroll", "P001", "", day(2)],
            ["dose", "P001", "", "", "", "examplinib", "25", "mg", "1", "1", at(3)]]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(row + [""] * (len(header) - len(row)) for row in rows)
    path = site.tmp_path / "visit.csv"
    path.write_text(out.getvalue(), encoding="utf-8")
    result, report = batch(site, path)
    assert result.returncode == 0, result
    assert len(report["accepted"]) == 4


@pytest.mark.parametrize(("content", "fragment"), [
    (b'{"command": "enroll", "patient": "P001"\n', "line 1: not JSON"),
    (b"command,patient,colour\nenroll,P001,red\n", "unknown column 'colour'"),
    (b'{"command": "enroll", "patient": "P\xff"}\n', "not UTF-8"),
    (b"", "holds no lines"),
    (b"[1, 2]\n", "neither JSON lines nor a CSV"),
])
def test_a_malformed_file_is_refused_before_anything_is_signed(
    site: Site, content: bytes, fragment: str,
) -> None:
    path = site.tmp_path / "bad.jsonl"
    path.write_bytes(content)
    before = entry_count(site)
    result = site.run("record", "--from", str(path), user="ivan", check=False)
    assert result.returncode == 2
    assert_one_line_error(result, fragment)
    assert entry_count(site) == before


def test_a_file_too_large_is_refused(site: Site) -> None:
    path = site.tmp_path / "huge.jsonl"
    with path.open("wb") as handle:
        handle.truncate(8 * 1024 * 1024 + 10)
    result = site.run("record", "--from", str(path), user="ivan", check=False)
    assert result.returncode == 2
    assert_one_line_error(result, "too large")


_FIELD_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-3, 30), st.text(max_size=8),
                          st.sampled_from([day(1), at(3), "25", "mg", "P001", "AE1"]),
                          st.lists(st.text(max_size=6), max_size=2))


@st.composite
def random_line(draw: st.DrawFn) -> dict[str, Any]:
    command = draw(st.sampled_from([*LINE_KINDS, "decide", "nonsense"]))
    names = list(LINE_KINDS[command].field_names()) if command in LINE_KINDS else ["x"]
    chosen = draw(st.lists(st.sampled_from([*names, "extra"]), max_size=6, unique=True))
    return {"command": command, "patient": "P001",
            **{name: draw(_FIELD_VALUES) for name in chosen}}


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(extra=st.lists(random_line(), min_size=1, max_size=3))
def test_random_lines_never_give_a_traceback_or_a_partial_write(
    site: Site, extra: list[dict[str, Any]],
) -> None:
    before = entry_count(site)
    result, report = batch(site, write(site, [*visit(), *extra]))
    assert "Traceback" not in result.stderr
    if result.returncode == 0:
        return  # every random line happened to be valid: the whole file was written
    assert result.returncode == 1, result
    assert report["accepted"] == [] and entry_count(site) == before
    assert report["refused"] and all(r["line"] > 5 for r in report["refused"])


def test_every_record_command_has_a_batch_line_kind() -> None:
    """A new `record` command plugs into batch entry (ledger/batch_lines.py LINE_KINDS)."""
    group = typer.main.get_command(app).commands["record"]  # type: ignore[attr-defined]
    assert set(group.commands) == set(LINE_KINDS) | set(NOT_IN_BATCH)
    for name, kind in LINE_KINDS.items():
        flags = {opt.lstrip("-") for p in group.commands[name].params for opt in p.opts}
        assert {f.name for f in kind.fields} <= flags | {"dlt"}, name
    assert csv_columns()[:3] == ("command", "patient", "trial")


def test_an_adverse_event_id_already_on_the_record_is_refused_by_its_line(site: Site) -> None:
    ae = {"command": "ae", "patient": "P001", "id": "AE1", "term": "Nausea", "grade": 1,
          "attribution": "possible", "onset": day(3)}
    result, report = batch(site, write(site, [*visit(), ae, {**ae, "grade": 2}]))
    assert result.returncode == 1
    assert report["refused"] == [{
        "line": 7, "command": "ae", "kind": "rule", "rule": "unique-adverse-event",
        "message": "adverse event 'AE1' is already recorded; correct it instead"}]
    assert report["entries_written"] == 0
