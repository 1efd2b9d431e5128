"""Each clinical fact is declared once (domain/facts.py): the stored events, the correctable
fields, the patient's record and FORMAT.md's payload table all follow that declaration, and
the stored names old ledgers hold never change."""

from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path
from typing import Any

import pytest

from tests.trial_helpers import NOW, at, day, dose, enrolled_patient, nct_protocol, roster
from trialctl.domain import journey
from trialctl.domain.facts import CORRECTABLE, FACTS, Correction, Dose, Fact
from trialctl.domain.patient import Patient
from trialctl.domain.rules import TrialRuleError
from trialctl.domain.trial import Trial

ROOT = Path(__file__).resolve().parent.parent

# The payload field names of every patient event, exactly as ledgers already hold them.
STORED: dict[str, set[str]] = {
    "trialctl.Patient.ConsentSigned": {"trial_id", "patient_id", "consent_version", "signed_on"},
    "trialctl.Patient.ScreeningRecorded": {"values", "screened_on", "eligibility"},
    "trialctl.Patient.Enrolled": {"level", "cohort_number", "enrolled_on"},
    "trialctl.Patient.DoseGiven": {"agent", "dose", "unit", "course", "day", "given_at"},
    "trialctl.Patient.DoseChanged": {
        "course", "action", "to_level", "reason", "text", "effective_on"},
    # Version 2 added the serious criteria, version 3 the report date; older events are upcast.
    "trialctl.Patient.AdverseEventReported": {
        "ae_id", "term", "grade", "attribution", "onset", "resolved_on", "coded", "serious",
        "site_aware_on", "reported_on", "report_due"},
    # Schema 2: whether a DLT counts is derived, never stored (no `counts`, no `window`).
    "trialctl.Patient.DltAdjudicated": {
        "ae_id", "is_dlt", "rule_code", "decided_on", "override_reason"},
    "trialctl.Patient.DltRuleOverridden": {
        "ae_id", "is_dlt", "rule_code", "decided_on", "override_reason"},
    # Schema 2: a course completion no longer states evaluability.
    "trialctl.Patient.CourseCompleted": {"course", "completed_on", "not_evaluable_reason"},
    # class_version 2 added recist_version and the schedule fields; v1 rows are upcast.
    "trialctl.Patient.ResponseAssessed": {
        "assessed_on", "baseline", "lesions", "new_lesions", "non_target_progression",
        "visit", "category", "recist_version", "sum_mm", "scheduled_week", "off_schedule",
        "next_due", "details"},
    # class_version 2 (response: 3) added the visit a record states; older rows: none.
    "trialctl.Patient.ObservationRecorded": {"kind", "value", "observed_on", "visit"},
    "trialctl.Patient.ConsentWithdrawn": {"withdrawn_on", "reason"},
    # A re-consent to an amended form version, and withdrawal from treatment only.
    "trialctl.Patient.Reconsented": {"consent_version", "signed_on"},
    "trialctl.Patient.WithdrewFromTreatment": {"withdrawn_on", "reason"},
    "trialctl.Patient.WentOffStudy": {"off_on", "reason"},
    "trialctl.Patient.FollowUpRecorded": {"contacted_on", "status", "text"},
    # class_version 2 added the query a correction answers; v1 rows are upcast (none).
    "trialctl.Patient.Corrected": {
        "target_version", "kind", "old_values", "new_values", "reason", "query"},
    "trialctl.Patient.LabRecorded": {
        "test", "value", "unit", "collected_on", "course", "day", "uln", "lln", "visit",
        "grade", "grading", "canonical_value", "canonical_unit"},
    "trialctl.Patient.DeviationRecorded": {
        "category", "severity", "text", "record", "record_version"},
    "trialctl.Patient.ConmedRecorded": {
        "drug", "start", "stop", "dose", "unit", "route", "indication"},
}
LIBRARY_FIELDS = {"originator_id", "originator_version", "timestamp", "originator_topic"}


@pytest.mark.parametrize("fact", FACTS, ids=[f.EVENT for f in FACTS])
def test_each_stored_event_carries_exactly_its_facts_declared_payload(fact: type[Fact]) -> None:
    event_class: Any = getattr(Patient, fact.EVENT)
    fields = {f.name for f in dataclasses.fields(event_class)} - LIBRARY_FIELDS

    assert f"trialctl.Patient.{fact.EVENT}" == event_class.TOPIC
    assert fields == {c.name for c in fact.columns()} == STORED[event_class.TOPIC]


def test_every_patient_event_is_declared() -> None:
    assert {f"trialctl.Patient.{fact.EVENT}" for fact in FACTS} == set(STORED)


def test_the_correctable_fields_are_those_declared() -> None:
    assert {
        "consent": {"consent_version", "signed_on"},
        "screening": {"values"},
        "enrollment": {"enrolled_on"},
        "dose": {"dose", "unit", "given_at"},
        "adverse-event": {"term", "grade", "attribution", "onset", "resolved_on", "coded",
                          "serious", "site_aware_on", "reported_on"},
        "dlt-adjudication": {"is_dlt", "rule_code", "decided_on"},
        "course": {"completed_on", "not_evaluable_reason"},
        "response": {"assessed_on", "lesions", "new_lesions", "non_target_progression",
                     "visit"},
        "observation": {"value", "observed_on", "visit"},
        "withdrawal": {"withdrawn_on", "reason"},
        "treatment-withdrawal": {"withdrawn_on", "reason"},
        "off-study": {"off_on", "reason"},
        "follow-up": {"contacted_on", "status", "text"},
        "lab": {"value", "unit", "collected_on", "uln", "lln", "visit"},
        "deviation": {"category", "severity", "text"},
        "conmed": {"drug", "start", "stop", "dose", "unit", "route", "indication"},
    } == CORRECTABLE


def test_a_recorded_dose_is_kept_and_replayed_as_declared() -> None:
    trial = Trial.register(nct_protocol(), NOW)
    patient = enrolled_patient(trial, "P001")
    patient.give_dose(dose("imatinib mesylate", "300.0", "mg/day", at(3)), trial.protocol, NOW)

    (kept,) = patient.doses()
    assert kept == {"version": 4, "agent": "imatinib mesylate", "dose": "300.0",
                    "unit": "mg/day", "course": 1, "day": 1, "given_at": at(3)}
    replayed = None
    for domain_event in patient.collect_events():
        replayed = domain_event.mutate(replayed)
    assert isinstance(replayed, Patient)
    assert replayed.state(trial.protocol) == patient.state(trial.protocol)


def test_a_correction_runs_the_same_declared_check_and_stores_normalised_values() -> None:
    trial = Trial.register(nct_protocol(), NOW)
    patient = enrolled_patient(trial, "P001")
    patient.give_dose(dose("imatinib mesylate", "300", "mg/day", at(3)), trial.protocol, NOW)
    version = patient.doses()[0]["version"]

    with pytest.raises(TrialRuleError) as refused:
        patient.correct(Correction(target_version=version, changes={"given_at": day(4)},
                                   reason="diary"), trial.protocol, NOW)
    assert refused.value.rule == "valid-time"

    corrected = journey.take(trial, patient, Correction(
        target_version=version, changes={"dose": " 300.00 "}, reason="diary"), roster(trial), NOW)
    assert corrected == {"corrected": {"dose": "300.00"}}
    assert patient.doses()[0]["dose"] == "300.00"


def test_a_fact_refuses_a_field_it_does_not_declare() -> None:
    with pytest.raises(TypeError):
        Dose(agent="imatinib mesylate", dose="300", unit="mg/day", course=1, day=1,
             given_at=at(3), route="oral")  # type: ignore[call-arg]


def test_format_md_payload_table_is_generated_from_the_declarations() -> None:
    spec = importlib.util.spec_from_file_location(
        "format_payloads", ROOT / "scripts" / "format_payloads.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    text = (ROOT / "docs" / "FORMAT.md").read_text(encoding="utf-8")
    assert text == module.render(text), (
        "docs/FORMAT.md's patient payloads are out of date: run python scripts/format_payloads.py"
    )
