"""Who signs which clinical judgement: a DLT adjudication and its correction are signed by
investigators only, whatever kind-blind permission a correction had before; data entry and
its corrections by site staff. Enforced when writing and by `verify`, and FORMAT.md's
table is the permissions themselves."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import assert_one_line_error, trialctl
from tests.demo_ledgers import demo_ledger
from tests.ledgers import plant
from trialctl.domain.facts import DltAdjudication, Dose
from trialctl.domain.patient import Patient
from trialctl.ledger.application import TrialLedger, UnlockedUser
from trialctl.ledger.authority import (
    JUDGEMENT_CORRECTIONS,
    PERMISSIONS,
    action_of,
    check_signature_authority,
    correction_action,
    permission_table,
)
from trialctl.ledger.demo import demo_password
from trialctl.ledger.entry import parse_entry
from trialctl.ledger.errors import AuthorityError
from trialctl.ledger.location import resolve_ledger
from trialctl.ledger.roles import Meaning, Role
from trialctl.ledger.trials import TrialActions
from trialctl.ledger.users import SecurityLog
from trialctl.ledger.verify import verify_ledger

ROOT = Path(__file__).resolve().parent.parent
FORMAT_MD = ROOT / "docs" / "FORMAT.md"
DLT_CORRECTION = "trialctl.Patient.Corrected of a dlt-adjudication"


def test_format_md_authority_table_is_generated_from_the_permissions() -> None:
    text = FORMAT_MD.read_text(encoding="utf-8")
    assert permission_table() in text, "run: python scripts/format_authority.py"


def test_the_documented_table_leaves_out_types_registered_by_other_modules() -> None:
    """A benchmark's own event types are signable while it runs, but are not trialctl's
    format: importing it must not change FORMAT.md's table (it did, in a full test run)."""
    before = permission_table()
    import benchmarks.workload  # noqa: F401  (registers the benchmark's DoseLog types)

    assert any("benchmark" in action for action in PERMISSIONS)
    assert permission_table() == before
    assert "benchmark" not in permission_table()


@pytest.mark.parametrize(
    ("event_type", "roles"),
    [
        (Patient.DltAdjudicated.TOPIC, {"principal-investigator", "investigator"}),
        (DLT_CORRECTION, {"principal-investigator", "investigator"}),
        ("trialctl.Trial.CohortDecided", {"principal-investigator", "investigator"}),
        ("trialctl.Trial.CohortDecisionOverridden", {"principal-investigator"}),
        (Patient.DoseGiven.TOPIC,
         {"principal-investigator", "investigator", "monitor", "data-manager"}),
        (Patient.Corrected.TOPIC,
         {"principal-investigator", "investigator", "monitor", "data-manager"}),
    ],
    ids=["dlt", "dlt-correction", "decision", "override", "data-entry", "other-correction"],
)
def test_who_may_sign_each_clinical_judgement(event_type: str, roles: set[str]) -> None:
    assert {role.value for role in PERMISSIONS[event_type].roles} == roles


def test_a_correction_asks_for_the_permission_of_the_kind_it_corrects() -> None:
    assert correction_action(DltAdjudication.KIND) == DLT_CORRECTION
    assert set(JUDGEMENT_CORRECTIONS) == {DltAdjudication.KIND}
    corrected = Patient.Corrected.TOPIC
    assert action_of(corrected, {"kind": DltAdjudication.KIND}) == DLT_CORRECTION
    assert action_of(corrected, {"kind": Dose.KIND}) == corrected
    assert action_of(corrected, {"kind": 7}) == corrected
    assert action_of(Patient.DltAdjudicated.TOPIC, {"kind": DltAdjudication.KIND}) == \
        Patient.DltAdjudicated.TOPIC


@dataclass
class Demo:
    url: str
    home: Path
    app: TrialLedger

    def actor(self, user_id: str) -> UnlockedUser:
        return self.app.unlock(user_id, demo_password(user_id))

    def patient(self, patient_id: str) -> Patient:
        records = TrialActions(self.app)
        return records.patient(records.trial(None), patient_id)


@pytest.fixture
def demo(ledger_url: str, home: Path, tmp_path: Path) -> Any:
    home = demo_ledger(ledger_url, tmp_path) / "home"
    app = TrialLedger(resolve_ledger(ledger_url), keys_home=home / "keys")
    yield Demo(ledger_url, home, app)
    app.close()


def _corrected(patient: Patient, kind: str, target: int, old: dict[str, Any],
               new: dict[str, Any]) -> Patient:
    """The patient with a correction pending, as the domain makes one (the domain decides
    which records are correctable; this is about who may sign one)."""
    patient.trigger_event(
        Patient.Corrected, timestamp=datetime.now(UTC), target_version=target,
        reason="source document re-read", kind=kind, old_values=old, new_values=new, query=None,
    )
    return patient


def _dlt_correction(demo: Demo) -> Patient:
    patient = demo.patient("P007")
    [dlt] = [d for d in patient.dlts() if d["is_dlt"]]
    return _corrected(patient, DltAdjudication.KIND, dlt["version"], {"is_dlt": True},
                      {"is_dlt": False})


def _patient_entries(demo: Demo, patient: Patient) -> int:
    return len(demo.app.signed_recorder.select_events(patient.id))


def test_a_monitor_is_refused_correcting_a_dlt_adjudication_and_nothing_is_written(
    demo: Demo,
) -> None:
    patient = _dlt_correction(demo)
    before = _patient_entries(demo, patient)
    expected = ("refused: none of mona's roles (monitor) may record "
                f"{DLT_CORRECTION}")
    with pytest.raises(AuthorityError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        demo.app.check_may_record("mona", patient)
    with pytest.raises(AuthorityError, match="may record " + DLT_CORRECTION):
        demo.app.record(demo.actor("mona"), patient, meaning=Meaning.CORRECTED)
    assert _patient_entries(demo, patient) == before
    # The refusal itself is recorded, signed by the refused monitor.
    log = demo.app.signed_recorder.select_events(SecurityLog.create_id("mona"))
    refusal = parse_entry(log[-1].state).statement
    assert refusal["type"] == SecurityLog.AttemptRefused.TOPIC
    assert refusal["payload"]["action"] == DLT_CORRECTION


def test_an_investigator_may_correct_a_dlt_adjudication_and_a_monitor_a_dose(
    demo: Demo,
) -> None:
    patient = _dlt_correction(demo)
    before = _patient_entries(demo, patient)
    demo.app.record(demo.actor("ivan"), patient, meaning=Meaning.CORRECTED)
    assert _patient_entries(demo, patient) == before + 1

    dosed = demo.patient("P006")
    first = dosed.doses()[0]
    _corrected(dosed, Dose.KIND, first["version"], {"dose": first["dose"]}, {"dose": "400"})
    demo.app.record(demo.actor("mona"), dosed, meaning=Meaning.CORRECTED)

    report = verify_ledger(demo.app.signed_recorder, demo.url, workers=1)
    assert report.findings == []


def test_verify_reports_a_dlt_correction_signed_by_a_monitor(demo: Demo) -> None:
    patient = demo.patient("P007")
    [dlt] = [d for d in patient.dlts() if d["is_dlt"]]
    mona = demo.actor("mona")
    position = plant(
        demo, mona.keys, aggregate_id=patient.id, type=Patient.Corrected.TOPIC,
        meaning="corrected", actor={"user_id": "mona", "name": mona.user.name,
                                    "role": "monitor", "key_id": mona.keys.key_id},
        payload={"target_version": dlt["version"], "reason": "re-read", "kind": "dlt-adjudication",
                 "old_values": {"is_dlt": True}, "new_values": {"is_dlt": False}},
    )
    demo.app.close()
    demo.app = TrialLedger(resolve_ledger(demo.url), keys_home=demo.home / "keys")
    findings = verify_ledger(demo.app.signed_recorder, demo.url, workers=1).findings
    assert [(f.position, f.check, f.detail) for f in findings] == [
        (position, "authority", f"role 'monitor' may not record {DLT_CORRECTION}")
    ]


def test_the_authority_check_judges_a_correction_by_its_payload(demo: Demo) -> None:
    mona = demo.app.get_user("mona")
    actor = {"user_id": "mona", "name": mona.name, "role": Role.MONITOR.value,
             "key_id": mona.key_id}
    corrected = Patient.Corrected.TOPIC
    assert check_signature_authority(mona, actor, corrected, "corrected",
                                     {"kind": "dose"}) is None
    assert check_signature_authority(mona, actor, corrected, "corrected",
                                     {"kind": "dlt-adjudication"}) == \
        f"role 'monitor' may not record {DLT_CORRECTION}"


# -- the CLI ---------------------------------------------------------------------------------

def _correct_dlt(demo: Demo, user: str) -> Any:
    # P012's DLT still meets its rule (P007's was un-counted by the demo's last correction):
    # its assessment date, one day later, is a correction the rule check accepts.
    patient = demo.patient("P012")
    [dlt] = [d for d in patient.dlts() if d["is_dlt"]]
    later = (date.fromisoformat(dlt["decided_on"]) + timedelta(days=1)).isoformat()
    env = {"TRIALCTL_HOME": str(demo.home), "TRIALCTL_LEDGER": demo.url}
    return trialctl("record", "correct", "P012", "--version", str(dlt["version"]), "--set",
                    f"decided_on={later}", "--reason", "source re-read", "-u", user,
                    "--password-stdin", "--json", stdin=demo_password(user) + "\n", env=env)


def test_cli_a_monitor_correcting_a_dlt_adjudication_is_refused_in_one_line(
    demo: Demo,
) -> None:
    before = demo.app.signed_recorder.tree_size()
    result = _correct_dlt(demo, "mona")
    assert_one_line_error(result, "refused", "may record " + DLT_CORRECTION)
    assert demo.app.signed_recorder.tree_size() == before


def test_cli_an_investigator_correcting_a_dlt_adjudication_is_accepted(demo: Demo) -> None:
    result = _correct_dlt(demo, "ivan")
    assert result.returncode == 0, result
    [entry] = [e for e in json.loads(result.stdout)["entries"]
               if e["type"] == Patient.Corrected.TOPIC]
    assert entry["payload"]["kind"] == DltAdjudication.KIND
    assert entry["actor"]["role"] == "investigator"
