"""`trialctl export odm` and `export verify` on the demo: the file validates against the
official ODM 1.3.2 XSD, every item carries an AuditRecord naming the signed entry it came
from, every signed patient entry a Signature that verifies, the manifest catches a changed
byte, the export is a signed entry in the ledger, and the writer reads the ledger in pages."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from tests.conftest import assert_one_line_error
from tests.export_helpers import Demo, build_demo
from tests.test_independent_verifier import independent
from trialctl.ledger.application import open_ledger
from trialctl.ledger.authority import QUERY_EVENT_TYPES, REVIEW_EVENT_TYPES
from trialctl.ledger.demo import demo_password, run_demo
from trialctl.ledger.entry import entry_hash, parse_entry
from trialctl.ledger.export_odm import ODM_NS, odm_export, odm_schema, write_odm
from trialctl.ledger.export_pages import ledger_entries
from trialctl.ledger.export_run import run_export
from trialctl.ledger.export_sdtm import sdtm_writer
from trialctl.ledger.keys import load_public_key, signature_is_valid
from trialctl.ledger.manifest import streamed_root
from trialctl.ledger.merkle import hash_leaf, root_from_leaf_hashes
from trialctl.ledger.recorder import SignedRecorder
from trialctl.ledger.trials import TrialActions
from trialctl.ledger.verify import verify_ledger

NS = {"odm": ODM_NS}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    return build_demo(tmp_path_factory.mktemp("odm") / "demo")


@pytest.fixture(scope="module")
def exported(demo: Demo, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The demo exported once by mona; the ledger's entries as they stood before."""
    app = open_ledger(str(demo.ledger))
    entries = {e.position: e for e in ledger_entries(app.signed_recorder,
                                                     app.signed_recorder.tree_size())}
    stored = {p: app.signed_recorder.entry_at(p)[1].state for p in entries}  # type: ignore[index]
    users = {u.user_id: u.public_key for u in app.users.every_user()}
    app.close()
    target = tmp_path_factory.mktemp("odm-out") / "trial.odm.xml"
    result = demo.signed("export", "odm", str(target), "--json")
    assert result.returncode == 0, result.stderr
    return {"file": target, "result": json.loads(result.stdout), "entries": entries,
            "stored": stored, "users": users, "tree": etree.parse(str(target))}


def test_the_demo_export_validates_against_the_official_odm_1_3_2_xsd(
    exported: dict[str, Any],
) -> None:
    schema = odm_schema()
    assert schema.validate(exported["tree"]), schema.error_log
    root = exported["tree"].getroot()
    assert root.get("ODMVersion") == "1.3.2"
    assert root.get("FileType") == "Transactional"
    # Nothing outside the ODM namespace anywhere in the file.
    assert {etree.QName(e).namespace for e in root.iter()} == {ODM_NS}


def test_metadata_comes_from_the_protocol_and_the_fact_declarations(
    exported: dict[str, Any],
) -> None:
    tree = exported["tree"]
    assert tree.findtext(".//odm:StudyName", namespaces=NS) == "NCT00084513"
    forms = {f.get("OID") for f in tree.findall(".//odm:FormDef", NS)}
    assert {"F.DOSE", "F.ADVERSE_EVENT", "F.DLT_ADJUDICATION", "F.RESPONSE",
            "F.SCREENING"} <= forms
    items = {i.get("OID"): i for i in tree.findall(".//odm:ItemDef", NS)}
    assert items["IT.DOSE.DOSE"].get("DataType") == "float"
    assert items["IT.DOSE.GIVEN_AT"].get("DataType") == "datetime"
    assert items["IT.ADVERSE_EVENT.GRADE"].get("DataType") == "integer"
    assert any(oid.startswith("IT.SCREENING.SCREENING_VALUES.") for oid in items)
    attribution = tree.find(".//odm:CodeList[@OID='CL.ATTRIBUTION']", NS)
    assert [e.get("CodedValue") for e in attribution] == [
        "unrelated", "unlikely", "possible", "probable", "definite"]
    # Every ItemRef, FormRef and CodeListRef names something defined.
    defined = {e.get("OID") for e in tree.iter() if e.get("OID")}
    for attribute in ("ItemOID", "FormOID", "ItemGroupOID", "CodeListOID", "UserOID",
                      "LocationOID", "SignatureOID", "StudyEventOID"):
        for element in tree.iter():
            if element.get(attribute):
                assert element.get(attribute) in defined, (attribute, element.get(attribute))


def test_every_item_has_an_audit_record_naming_its_signed_entry(
    exported: dict[str, Any],
) -> None:
    entries = exported["entries"]
    items = exported["tree"].findall(".//odm:ItemData", NS)
    assert len(items) > 500
    for item in items:
        audit = item.find("odm:AuditRecord", NS)
        assert audit is not None, item.get("ItemOID")
        source = re.fullmatch(r"trialctl ledger position (\d+), entry sha256 ([0-9a-f]{64})",
                              audit.findtext("odm:SourceID", namespaces=NS) or "")
        assert source is not None
        entry = entries[int(source.group(1))]
        assert entry.entry_hash == source.group(2)
        user = audit.find("odm:UserRef", NS).get("UserOID")
        assert user == f"U.{entry.statement['actor']['user_id']}"
        assert audit.findtext("odm:DateTimeStamp", namespaces=NS) == \
            entry.statement["recorded_at"]


def test_every_signed_patient_entry_is_a_form_with_a_signature_that_verifies(
    exported: dict[str, Any],
) -> None:
    entries, users = exported["entries"], exported["users"]
    # Source data verification and queries are about records already written: they are
    # Context forms on those records (the next test), every other patient entry a data form.
    not_data = {*REVIEW_EVENT_TYPES, *QUERY_EVENT_TYPES}
    patient_entries = [e for e in entries.values()
                       if e.statement["type"].startswith("trialctl.Patient.")
                       and e.statement["type"] not in not_data]
    forms = exported["tree"].findall(".//odm:FormData", NS)
    data_forms = [f for f in forms if f.get("TransactionType") != "Context"]
    assert len(data_forms) == len(patient_entries)
    meanings = {d.get("OID"): d.findtext("odm:Meaning", namespaces=NS)
                for d in exported["tree"].findall(".//odm:SignatureDef", NS)}
    for form in forms:
        signature = form.find("odm:Signature", NS)
        assert signature is not None
        position = int(re.search(r"position (\d+)", form.findtext(
            ".//odm:SourceID", namespaces=NS) or "").group(1))
        entry = entries[position]
        assert meanings[signature.find("odm:SignatureRef", NS).get("SignatureOID")] \
            .startswith(entry.statement["meaning"] + ":")
        binding = re.fullmatch(r"ed25519 key ([0-9a-f]{64}) signature (\S+)",
                               signature.findtext("odm:CryptoBindingManifest", namespaces=NS))
        assert binding is not None
        assert binding.group(1) == entry.statement["actor"]["key_id"]
        signer = users[entry.statement["actor"]["user_id"]]
        statement_bytes = parse_entry(exported["stored"][position]).statement_bytes
        assert signature_is_valid(load_public_key(signer), base64.b64decode(binding.group(2)),
                                  statement_bytes)


def _source_position(form: Any) -> int:
    found = re.search(r"position (\d+)", form.findtext("odm:AuditRecord/odm:SourceID",
                                                       namespaces=NS) or "")
    assert found is not None
    return int(found.group(1))


def test_every_review_and_query_step_is_a_signed_context_form_on_its_record(
    exported: dict[str, Any],
) -> None:
    entries, tree = exported["entries"], exported["tree"]
    context = [f for f in tree.findall(".//odm:FormData", NS)
               if f.get("TransactionType") == "Context"]
    by_entry: dict[int, list[Any]] = {}
    for form in context:
        by_entry.setdefault(_source_position(form), []).append(form)
        assert form.findall("odm:ItemGroupData", NS) == []  # no data changed
    reviews = [e for e in entries.values() if e.statement["type"] in REVIEW_EVENT_TYPES]
    steps = [e for e in entries.values() if e.statement["type"] in QUERY_EVENT_TYPES]
    assert reviews and len(steps) == 3  # the demo's review, and Q1 raised, answered, closed
    assert set(by_entry) == {e.position for e in [*reviews, *steps]}
    sdv = tree.find(".//odm:SignatureDef[@OID='SD.SDV']", NS)
    assert sdv is not None and sdv.findtext("odm:Meaning", namespaces=NS) \
        .startswith("reviewed: source data verified")
    for review in reviews:
        cited = review.statement["payload"]["records"]
        forms = by_entry[review.position]
        assert len(forms) == len(cited)
        for form, record in zip(forms, cited, strict=True):
            assert form.get("FormRepeatKey") == str(record["version"])
            assert form.find("odm:Signature/odm:SignatureRef", NS).get("SignatureOID") == \
                "SD.SDV"
            assert entries[record["position"]].entry_hash == record["entry_hash"]
    raised = next(e for e in steps if e.statement["type"].endswith("QueryRaised"))
    queried = entries[raised.statement["payload"]["record_position"]]
    shown = []
    for number, step in enumerate(steps, start=1):
        (form,) = by_entry[step.position]
        assert form.get("FormRepeatKey") == str(queried.statement["aggregate_version"])
        annotation = form.find("odm:Annotation", NS)
        assert annotation.get("SeqNum") == str(number)
        flag = annotation.find("odm:Flag/odm:FlagValue", NS)
        assert flag.get("CodeListOID") == "CL.QUERY_STATE"
        shown.append((flag.text, annotation.findtext("odm:Comment", namespaces=NS)))
    payloads = [s.statement["payload"] for s in steps]
    assert shown == [("open", payloads[0]["text"]), ("answered", payloads[1]["text"]),
                     ("closed", None)]
    states = {e.get("CodedValue") for e in tree.findall(
        ".//odm:CodeList[@OID='CL.QUERY_STATE']/odm:EnumeratedItem", NS)}
    assert states == {"open", "answered", "closed"}


def test_a_correction_is_an_update_of_the_corrected_form_with_its_reason(
    exported: dict[str, Any],
) -> None:
    corrections = [e for e in exported["entries"].values()
                   if e.statement["type"] == "trialctl.Patient.Corrected"]
    updates = exported["tree"].findall(".//odm:FormData[@TransactionType='Update']", NS)
    # The demo corrects a dose time, an adverse event's grade, and (voiding a review) an
    # adverse event's resolution date.
    assert len(updates) == len(corrections) == 3
    for update, correction in zip(updates, corrections, strict=True):
        payload = correction.statement["payload"]
        assert update.get("FormRepeatKey") == str(payload["target_version"])
        form = update.get("FormOID").removeprefix("F.")
        changed = {i.get("ItemOID"): i for i in update.findall(".//odm:ItemData", NS)}
        assert set(changed) == {f"IT.{form}.{name.upper()}" for name in payload["new_values"]}
        for name, value in payload["new_values"].items():
            item = changed[f"IT.{form}.{name.upper()}"]
            assert item.get("Value") == str(value)
            assert item.findtext("odm:AuditRecord/odm:ReasonForChange",
                                 namespaces=NS) == payload["reason"]


def test_admin_data_lists_the_users_the_site_and_what_each_signature_means(
    exported: dict[str, Any],
) -> None:
    tree = exported["tree"]
    users = {u.get("OID"): u.findtext("odm:FullName", namespaces=NS)
             for u in tree.findall(".//odm:AdminData/odm:User", NS)}
    assert users["U.ivan"] == "Dr Ivan Ito"
    assert set(users) == {f"U.{u}" for u in exported["users"]}
    assert tree.find(".//odm:Location[@LocationType='Site']", NS) is not None
    for definition in tree.findall(".//odm:SignatureDef", NS):
        assert definition.get("Methodology") == "Digital"
        assert "Ed25519" in (definition.findtext("odm:LegalReason", namespaces=NS) or "")


def test_the_export_is_a_signed_entry_in_the_log_and_verify_stays_clean(
    demo: Demo, exported: dict[str, Any],
) -> None:
    rows = demo.log("Exported")
    assert len(rows) == 1
    row = rows[0]
    assert (row["user_id"], row["meaning"]) == ("mona", "reviewed")
    assert row["position"] == exported["result"]["recorded_at_position"]
    manifest = Path(exported["result"]["manifest"])
    assert hashlib.sha256(manifest.read_bytes()).hexdigest() in row["what"]
    assert exported["result"]["root_hash"] in row["what"]
    checked = demo.run("verify")
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_manifest_names_the_tree_head_and_the_files_hash(
    exported: dict[str, Any],
) -> None:
    signed = json.loads(Path(exported["result"]["manifest"]).read_text())["signed"]
    entries = exported["entries"]
    leaves = [hash_leaf(exported["stored"][p]) for p in sorted(entries)]
    assert all(entry_hash(exported["stored"][p]) == entries[p].entry_hash for p in entries)
    assert signed["tree_size"] == len(entries)
    assert signed["root_hash"] == root_from_leaf_hashes(leaves).hex()
    assert signed["files"][0]["sha256"] == hashlib.sha256(
        exported["file"].read_bytes()).hexdigest()
    assert signed["exported_by"]["user_id"] == "mona"


def test_export_verify_passes_untouched_and_names_a_changed_file(
    exported: dict[str, Any], tmp_path: Path,
) -> None:
    from tests.conftest import trialctl

    ok = trialctl("export", "verify", str(exported["file"]))
    assert ok.returncode == 0, ok.stderr
    assert "export ok" in ok.stdout
    copy = tmp_path / exported["file"].name
    copy.write_bytes(exported["file"].read_bytes().replace(b'Value="300"', b'Value="3000"', 1))
    manifest = Path(exported["result"]["manifest"])
    (tmp_path / manifest.name).write_bytes(manifest.read_bytes())
    tampered = trialctl("export", "verify", str(copy))
    assert_one_line_error(tampered, "trial.odm.xml", "SHA-256 differs")
    assert tampered.returncode == 1


def test_a_changed_manifest_fails_its_signature(exported: dict[str, Any],
                                                 tmp_path: Path) -> None:
    from tests.conftest import trialctl

    (tmp_path / exported["file"].name).write_bytes(exported["file"].read_bytes())
    manifest = Path(exported["result"]["manifest"])
    document = json.loads(manifest.read_text())
    document["signed"]["tree_size"] -= 1
    (tmp_path / manifest.name).write_text(json.dumps(document))
    changed = trialctl("export", "verify", str(tmp_path / manifest.name))
    assert_one_line_error(changed, "signature", "does not verify")


def test_the_writer_reads_the_ledger_in_pages_and_the_pages_do_not_change_the_file(
    demo: Demo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = open_ledger(str(demo.ledger))
    limits: list[int | None] = []
    for name in ("select_events", "select_notifications"):
        original = getattr(SignedRecorder, name)

        def recording(self: SignedRecorder, *args: Any, _original: Any = original,
                      **kwargs: Any) -> Any:
            limits.append(kwargs.get("limit"))
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(SignedRecorder, name, recording)
    trial = TrialActions(app).trial(None)
    users = [(u.user_id, u.name) for u in app.list_users()]
    size = app.signed_recorder.tree_size()
    created = datetime(2026, 6, 1, tzinfo=UTC)
    record = app.ledger_record()
    limits.clear()
    write_odm(tmp_path / "small.xml", app.signed_recorder, trial, record, users, size, created,
              page=3)
    # Every read asks for one page; a patient's 10+ entries take several.
    assert limits and all(limit == 3 for limit in limits)
    assert len(limits) > 2 * 14
    write_odm(tmp_path / "large.xml", app.signed_recorder, trial, record, users, size, created)
    assert (tmp_path / "small.xml").read_bytes() == (tmp_path / "large.xml").read_bytes()
    app.close()


@pytest.mark.parametrize("size", range(0, 70))
def test_the_streamed_root_is_the_rfc_6962_root(size: int) -> None:
    leaves = [hashlib.sha256(bytes([i % 256, i // 256])).digest() for i in range(size)]
    assert streamed_root(iter(leaves)) == root_from_leaf_hashes(leaves)


def test_export_on_each_backend_validates_and_verify_holds_it_to_its_tree_head(
    ledger_url: str, tmp_path: Path,
) -> None:
    """The same ODM and SDTM exports in-process on SQLite and PostgreSQL; `verify` checks
    each export entry's tree head against the ledger's own tree at that size."""
    built = run_demo(tmp_path / "demo", ledger_url)
    app = open_ledger(ledger_url)  # built.ledger hides the password
    app.keys_home = Path(built.home) / "keys"
    actor = app.unlock("mona", demo_password("mona"))
    trial = TrialActions(app).trial(None)
    result = run_export(app, actor, trial, "odm", tmp_path / "t.xml", False, odm_export,
                        datetime.now(UTC))
    assert odm_schema().validate(etree.parse(str(tmp_path / "t.xml")))
    assert result.tree_size == built.entries
    last = parse_entry(app.signed_recorder.entry_at(result.position)[1].state).statement
    assert last["type"] == "trialctl.Ledger.Exported"
    # The SDTM tables from the same ledger, recorded the same way.
    tables = run_export(app, actor, trial, "sdtm", tmp_path / "sdtm", True, sdtm_writer("csv"),
                        datetime.now(UTC))
    assert {"dm.csv", "ex.csv", "ae.csv", "suppae.csv"} <= set(tables.files)
    assert tables.tree_size == result.position + 1  # cut after the ODM export's entry
    first = verify_ledger(app.signed_recorder, ledger_url)
    assert first.ok, [f.describe() for f in first.findings]  # its tree head is the ledger's

    # An export entry, signed and authorised, stating a root the ledger never had at its size.
    planted = app.ledger_record()
    planted.record_export(kind="odm", trial=trial.protocol_id, tree_size=result.tree_size,
                          root_hash="ab" * 32, manifest_sha256="cd" * 32, files=[])
    position = app.signed_recorder.entries_for(app.record(actor, planted))[0][0]
    report = verify_ledger(app.signed_recorder, ledger_url)
    assert [(f.check, f.position) for f in report.findings] == [("tree-head", position)]
    assert f"export states root abababababababab… for tree size {result.tree_size}" \
        in report.findings[0].detail
    app.close()
    if ledger_url.endswith(".sqlite"):  # the independent verifier reads SQLite files
        # (It knows no trial permissions without --permissions, so it also reports those.)
        code, found = independent(Path(ledger_url))
        assert code == 1
        assert [f["position"] for f in found["findings"] if f["check"] == "tree-head"] == \
            [position]


# -- refusals: one line, non-zero, nothing written ----------------------------------------------


def test_refusals_are_one_line_and_write_nothing(demo: Demo, tmp_path: Path) -> None:
    fresh = demo.copy(tmp_path / "copy")
    before = len(fresh.log("Exported"))
    existing = tmp_path / "existing.xml"
    existing.write_text("keep me")
    cases = [
        (fresh.signed("export", "odm", str(existing)), "never written over"),
        (fresh.signed("export", "odm", str(tmp_path / "a.xml"), "--trial", "NCT0"),
         "no trial 'NCT0'"),
        (fresh.signed("export", "odm", str(tmp_path / "b.xml"), user="nobody"),
         "unknown user 'nobody'"),
        (fresh.run("export", "odm", str(tmp_path / "c.xml"), "-u", "mona",
                   "--password-stdin", stdin="wrong-password\n"), "password"),
        (fresh.run("export", "odm", str(tmp_path / "d.xml")), "who is signing"),
        (fresh.run("export", "verify", str(tmp_path / "missing.xml")), "no manifest"),
    ]
    for result, fragment in cases:
        assert_one_line_error(result, fragment)
    assert existing.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy", "existing.xml"]
    assert len(fresh.log("Exported")) == before
