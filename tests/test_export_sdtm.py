"""`trialctl export sdtm` on the demo: the tables round-trip the patient records (every dose,
adverse event, DLT adjudication and response exactly once), the decisions and audit-trail
listings are complete, the data dictionary names every column, CSV and Dataset-JSON v1.1
hold the same rows, and the directory's manifest catches a changed, missing or added file."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import assert_one_line_error, trialctl
from tests.export_helpers import Demo, build_demo
from trialctl.domain.patient import Patient
from trialctl.ledger.application import open_ledger
from trialctl.ledger.entry import parse_entry
from trialctl.ledger.export_pages import ledger_entries
from trialctl.ledger.trials import TrialActions

STUDY = "NCT00084513"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    return build_demo(tmp_path_factory.mktemp("sdtm") / "demo")


@pytest.fixture(scope="module")
def records(demo: Demo) -> dict[str, Any]:
    """Each patient's record as the patient readers give it, before any export."""
    app = open_ledger(str(demo.ledger))
    actions = TrialActions(app)
    trial = actions.trial(None)
    consents = app.signed_recorder.select_notifications(
        start=None, limit=10_000, topics=[Patient.ConsentSigned.TOPIC])
    patients = {}
    for notification in consents:
        patient_id = parse_entry(notification.state).statement["payload"]["patient_id"]
        patients[patient_id] = actions.patient(trial, patient_id)
    assert len(patients) == 14
    entries = list(ledger_entries(app.signed_recorder, app.signed_recorder.tree_size()))
    decisions = list(trial.decisions)
    app.close()
    return {"patients": patients, "entries": entries, "decisions": decisions}


@pytest.fixture(scope="module")
def tables(demo: Demo, records: dict[str, Any],
           tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("sdtm-out")
    as_csv = demo.signed("export", "sdtm", str(out / "csv"), "--json")
    assert as_csv.returncode == 0, as_csv.stderr
    as_json = demo.signed("export", "sdtm", str(out / "json"), "--format", "dataset-json")
    assert as_json.returncode == 0, as_json.stderr
    return {"csv": out / "csv", "json": out / "json", "result": json.loads(as_csv.stdout)}


def _rows(folder: Path, name: str) -> list[dict[str, str]]:
    with (folder / f"{name}.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _usubjid(patient_id: str) -> str:
    return f"{STUDY}-{patient_id}"


def test_every_dose_appears_once_in_ex_with_its_corrected_values(
    tables: dict[str, Any], records: dict[str, Any],
) -> None:
    rows = _rows(tables["csv"], "ex")
    expected = Counter(
        (_usubjid(pid), str(d["version"]), d["agent"], d["dose"], d["unit"], d["given_at"])
        for pid, patient in records["patients"].items() for d in patient.doses())
    found = Counter((r["USUBJID"], r["EXSEQ"], r["EXTRT"], r["EXDOSE"], r["EXDOSU"],
                     r["EXSTDTC"]) for r in rows)
    assert found == expected
    assert max(expected.values()) == 1 and len(rows) == sum(expected.values()) > 40


def test_every_adverse_event_and_dlt_adjudication_appears_once(
    tables: dict[str, Any], records: dict[str, Any],
) -> None:
    aes = _rows(tables["csv"], "ae")
    expected = sorted((_usubjid(pid), ae["ae_id"], ae["term"], str(ae["grade"]))
                      for pid, p in records["patients"].items() for ae in p.adverse_events())
    assert sorted((r["USUBJID"], r["AESPID"], r["AETERM"], r["AETOXGR"]) for r in aes) == expected
    supp = _rows(tables["csv"], "suppae")
    adjudications = sorted((_usubjid(pid), str(d["version"]), "Y" if d["is_dlt"] else "N")
                           for pid, p in records["patients"].items() for d in p.dlts())
    assert sorted((r["USUBJID"], r["ADJSEQ"], r["QVAL"]) for r in supp) == adjudications
    assert {r["QNAM"] for r in supp} == {"AEDLT"}
    assert sum(r["QVAL"] == "Y" for r in supp) == 3  # the demo's three DLTs
    # Each qualifier points at its adverse event's row.
    ae_keys = {(r["USUBJID"], r["AESEQ"]) for r in aes}
    assert all((r["USUBJID"], r["IDVARVAL"]) in ae_keys for r in supp)


def test_every_response_appears_once_in_rs_and_its_lesions_in_tr(
    tables: dict[str, Any], records: dict[str, Any],
) -> None:
    responses = [(pid, r) for pid, p in records["patients"].items() for r in p.responses()]
    rs = _rows(tables["csv"], "rs")
    assert sorted((r["USUBJID"], r["RSSEQ"], r["RSORRES"]) for r in rs) == sorted(
        (_usubjid(pid), str(r["version"]), r["category"]) for pid, r in responses
        if r["category"] is not None)
    tr = _rows(tables["csv"], "tr")
    lesions = sum(len(r["lesions"]) for _, r in responses)
    assert sum(r["TRTESTCD"] != "SUMDIAM" for r in tr) == lesions
    sums = {(r["USUBJID"], r["TRGRPID"]): r["TRORRES"] for r in tr if r["TRTESTCD"] == "SUMDIAM"}
    assert sums == {(_usubjid(pid), str(r["version"])): str(r["sum_mm"]) for pid, r in responses}


def test_every_lab_appears_once_in_lb_with_its_canonical_value_and_grade(
    tables: dict[str, Any], records: dict[str, Any],
) -> None:
    expected = Counter(
        (_usubjid(pid), str(lab["version"]), str(lab["test"]).upper(), str(lab["value"]),
         lab["unit"], str(lab["canonical_value"]), lab["canonical_unit"],
         "" if lab["grade"] is None else str(lab["grade"]),
         lab["collected_on"])
        for pid, patient in records["patients"].items() for lab in patient.labs())
    rows = _rows(tables["csv"], "lb")
    found = Counter((r["USUBJID"], r["LBSEQ"], r["LBTESTCD"], r["LBORRES"], r["LBORRESU"],
                     r["LBSTRESN"], r["LBSTRESU"], r["LBTOXGR"], r["LBDTC"]) for r in rows)
    assert found == expected
    # The demo's P007 ANC series, then P010's visit ANC, normal and so ungraded; and a
    # haemoglobin at each course's lab visit, normal (grade 0).
    assert max(expected.values()) == 1 and len(rows) == 19
    anc = [r for r in rows if r["LBTESTCD"] == "ANC"]
    assert [r["LBTOXGR"] for r in anc] == ["2", "4", "4", "2", ""]
    assert {r["LBTEST"] for r in anc} == {"absolute neutrophil count"}
    assert {r["LBTOXGR"] for r in rows if r["LBTESTCD"] == "HAEMOGLOBIN"} == {"0"}
    lb = json.loads((tables["json"] / "lb.json").read_text(encoding="utf-8"))
    names = [c["name"] for c in lb["columns"]]
    grades = [row[names.index("LBTOXGR")] for row in lb["rows"]
              if row[names.index("LBTESTCD")] == "ANC"]
    assert grades == [2, 4, 4, 2, None]  # integers (or null) in Dataset-JSON
    assert {row[names.index("LBTOXGR")] for row in lb["rows"]} == {0, 2, 4, None}


def test_dm_and_ds_hold_every_patient_and_their_disposition(
    tables: dict[str, Any], records: dict[str, Any],
) -> None:
    dm = {r["SUBJID"]: r for r in _rows(tables["csv"], "dm")}
    assert set(dm) == set(records["patients"])
    assert dm["P001"]["ARMCD"] == "SCRNFAIL"
    assert dm["P003"]["ARMCD"] == "L1"
    ds = _rows(tables["csv"], "ds")
    consents = [r for r in ds if r["DSDECOD"] == "INFORMED CONSENT OBTAINED"]
    assert len(consents) == len(records["patients"])
    withdrawn = [r for r in ds if r["DSDECOD"] == "WITHDRAWAL BY SUBJECT"]
    assert [(r["USUBJID"], r["DSTERM"]) for r in withdrawn] == [
        (_usubjid("P002"), "moved out of state")]


def test_the_decisions_and_audit_listings_are_complete(
    tables: dict[str, Any], records: dict[str, Any],
) -> None:
    decisions = _rows(tables["csv"], "decisions")
    assert [(r["COHORT"], r["ACTION"]) for r in decisions] == [
        (str(d["cohort_number"]), d["action"]) for d in records["decisions"]]
    assert {r["SIGNER"] for r in decisions} == {"pat"}
    audit = _rows(tables["csv"], "audit")
    assert [(int(r["POSITION"]), r["SHA256"]) for r in audit] == [
        (e.position, e.entry_hash) for e in records["entries"]]
    # The demo's con-meds: filgrastim (prohibited) and mini-dose warfarin.
    assert sorted(r["CMTRT"] for r in _rows(tables["csv"], "cm")) == ["filgrastim", "warfarin"]
    assert tables["result"]["holds"]["not_collected"] == {}


def test_the_dictionary_names_every_column_of_every_table(tables: dict[str, Any]) -> None:
    define = _rows(tables["csv"], "define")
    described: dict[str, list[str]] = {}
    for row in define:
        described.setdefault(row["DATASET"].lower(), []).append(row["VARIABLE"])
    for path in tables["csv"].glob("*.csv"):
        with path.open(encoding="utf-8", newline="") as handle:
            header = next(csv.reader(handle))
        assert described[path.stem] == header, path.name


def test_dataset_json_holds_the_same_rows_as_csv(tables: dict[str, Any]) -> None:
    names = sorted(p.stem for p in tables["csv"].glob("*.csv"))
    assert names == sorted(p.stem for p in tables["json"].glob("*.json") if p.stem != "manifest")
    for name in names:
        document = json.loads((tables["json"] / f"{name}.json").read_text(encoding="utf-8"))
        assert document["datasetJSONVersion"] == "1.1"
        assert document["records"] == len(document["rows"])
        columns = [c["name"] for c in document["columns"]]
        as_text = [{c: "" if v is None else str(v) for c, v in zip(columns, row, strict=True)}
                   for row in document["rows"]]
        if name == "audit":  # the second export's own entry is one more row
            as_text = as_text[:-1]
        assert as_text == _rows(tables["csv"], name), name
        types = {c["name"]: c["dataType"] for c in document["columns"]}
        for row in document["rows"]:
            for column, value in zip(columns, row, strict=True):
                if types[column] == "integer" and value is not None:
                    assert isinstance(value, int)


def test_export_verify_checks_a_directory(tables: dict[str, Any], tmp_path: Path) -> None:
    import shutil

    ok = trialctl("export", "verify", str(tables["json"]))
    assert ok.returncode == 0, ok.stderr
    copy = tmp_path / "copy"
    shutil.copytree(tables["csv"], copy)
    lines = (copy / "ex.csv").read_text().splitlines(keepends=True)
    (copy / "ex.csv").write_text("".join(lines[:-1]))
    assert_one_line_error(trialctl("export", "verify", str(copy)), "ex.csv", "SHA-256 differs")
    shutil.copyfile(tables["csv"] / "ex.csv", copy / "ex.csv")
    (copy / "extra.csv").write_text("a,b\n")
    assert_one_line_error(trialctl("export", "verify", str(copy)), "extra.csv",
                          "not in the manifest")
    (copy / "extra.csv").unlink()
    (copy / "dm.csv").unlink()
    assert_one_line_error(trialctl("export", "verify", str(copy / "manifest.json")),
                          "dm.csv: missing")


def test_both_exports_are_recorded_and_verify_stays_clean(demo: Demo,
                                                          tables: dict[str, Any]) -> None:
    rows = demo.log("Exported")
    assert [("kind=sdtm" in r["what"], r["user_id"]) for r in rows] == [(True, "mona")] * 2
    checked = demo.run("verify")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_refusals_are_one_line_and_write_nothing(demo: Demo, tmp_path: Path) -> None:
    fresh = demo.copy(tmp_path / "copy")
    before = len(fresh.log("Exported"))
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("keep")
    assert_one_line_error(fresh.signed("export", "sdtm", str(full)), "not an empty directory")
    assert_one_line_error(fresh.signed("export", "sdtm", str(tmp_path / "x"), "--format", "xml"),
                          "--format")
    assert_one_line_error(fresh.run("export", "sdtm", str(tmp_path / "y"), "-u", "mona",
                                    "--password-stdin", stdin="wrong-password\n"), "password")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy", "full"]
    assert [p.name for p in full.iterdir()] == ["keep.txt"]
    assert len(fresh.log("Exported")) == before


def test_a_failed_export_leaves_no_files_and_no_entry(demo: Demo, tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from trialctl.ledger.demo import demo_password
    from trialctl.ledger.export_run import ExportSource, run_export
    from trialctl.ledger.export_sdtm import write_sdtm

    fresh = demo.copy(tmp_path / "copy")
    app = open_ledger(str(fresh.ledger))
    app.keys_home = fresh.home / "keys"
    actor = app.unlock("mona", demo_password("mona"))
    size = app.signed_recorder.tree_size()

    def half_then_fail(source: ExportSource, folder: Path) -> Any:
        write_sdtm(source, folder, "csv")
        raise OSError(28, "No space left on device", str(folder / "dm.csv"))

    for folder in (tmp_path / "new", tmp_path / "empty"):
        if folder.name == "empty":
            folder.mkdir()
        with pytest.raises(OSError):
            run_export(app, actor, TrialActions(app).trial(None), "sdtm", folder, True,
                       half_then_fail, datetime.now(UTC))
        assert not folder.exists() or list(folder.iterdir()) == []
    assert app.signed_recorder.tree_size() == size
    app.close()
