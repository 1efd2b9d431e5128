"""A DLT adjudication is checked against the protocol rule it names: each input of the rule
at its boundary (toxicity category from the coded CTCAE term, grade, attribution, duration,
DLT window), every unmet condition named in one refusal, and the principal investigator's
override as its own event."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest

from tests.trial_helpers import (
    NEUTROPENIA,
    NOW,
    adjudication,
    adverse_event,
    day,
    dose_escalated,
    enrolled_patient,
    nct_protocol,
)
from trialctl.domain.ctcae_terms import HAEMATOLOGIC, NON_HAEMATOLOGIC, terms_for
from trialctl.domain.dlt_rules import DltContext, duration_days, unmet_conditions
from trialctl.domain.patient import Patient
from trialctl.domain.rules import TrialRuleError
from trialctl.domain.trial import Trial

PROTOCOL = nct_protocol()
TERMS = terms_for(PROTOCOL.dlt.ctcae_version)
FIRST_DOSE = date(2026, 3, 2)
WINDOW = (FIRST_DOSE, FIRST_DOSE + timedelta(days=PROTOCOL.dlt_window_days - 1))
FATIGUE = "Fatigue (asthenia, lethargy, malaise)"


def ae(term: str = FATIGUE, grade: int = 3, attribution: str = "possible",
       onset: date = FIRST_DOSE + timedelta(days=5), resolved: date | None = None,
       coded: bool = True) -> dict[str, Any]:
    return {"ae_id": "AE1", "term": term, "grade": grade, "attribution": attribution,
            "onset": onset.isoformat(),
            "resolved_on": None if resolved is None else resolved.isoformat(), "coded": coded}


def unmet(rule_code: str, adverse: dict[str, Any], assessed: date | None = None) -> list[str]:
    context = DltContext(WINDOW, assessed or WINDOW[1], TERMS)
    return unmet_conditions(PROTOCOL.dlt.rule(rule_code), adverse, context)


ONSET = FIRST_DOSE + timedelta(days=3)
BOUNDARIES = [
    # (rule, AE, meets?) — each pair differs in one input, on either side of its boundary.
    ("non_haematologic_g3", ae(grade=2), False),
    ("non_haematologic_g3", ae(grade=3), True),
    ("non_haematologic_g3", ae(attribution="unlikely"), False),
    ("non_haematologic_g3", ae(attribution="possible"), True),
    ("neutropenia_g4", ae(NEUTROPENIA, 4, onset=ONSET, resolved=ONSET + timedelta(5)), False),
    ("neutropenia_g4", ae(NEUTROPENIA, 4, onset=ONSET, resolved=ONSET + timedelta(6)), True),
    ("non_haematologic_g3", ae(onset=WINDOW[1]), True),
    ("non_haematologic_g3", ae(onset=WINDOW[1] + timedelta(days=1)), False),
    ("non_haematologic_g3", ae(onset=WINDOW[0]), True),
    ("non_haematologic_g3", ae(onset=WINDOW[0] - timedelta(days=1)), False),
]


@pytest.mark.parametrize(("rule_code", "adverse", "meets"), BOUNDARIES, ids=[
    "grade-2-below-3", "grade-3-meets", "attribution-unlikely", "attribution-possible",
    "duration-5-days", "duration-6-days", "onset-last-window-day", "onset-day-after-window",
    "onset-first-dose-day", "onset-day-before-first-dose",
])
def test_each_rule_input_at_its_boundary(rule_code: str, adverse: dict[str, Any],
                                         meets: bool) -> None:
    assert (unmet(rule_code, adverse) == []) is meets


def test_every_unmet_condition_is_named_with_the_value_it_has() -> None:
    found = unmet("non_haematologic_g3", ae(grade=1, attribution="unrelated"))
    assert found == ["min_grade 3: grade 1",
                     "attributions possible/probable/definite: attribution unrelated"]


def test_the_category_comes_from_the_coded_term() -> None:
    assert TERMS.get(NEUTROPENIA) is not None
    assert TERMS.get(NEUTROPENIA).category == HAEMATOLOGIC  # type: ignore[union-attr]
    assert TERMS.get(FATIGUE).category == NON_HAEMATOLOGIC  # type: ignore[union-attr]
    # A haematologic term does not meet the non-haematologic rule, and the reverse.
    assert unmet("non_haematologic_g3", ae(NEUTROPENIA, 4)) == [
        f"toxicity non_haematologic: {NEUTROPENIA!r} is haematologic, neutropenia"]
    assert unmet("thrombocytopenia_g4", ae(NEUTROPENIA, 4)) == [
        f"toxicity thrombocytopenia: {NEUTROPENIA!r} is haematologic, neutropenia"]
    assert unmet("thrombocytopenia_g4", ae("Platelets", 4)) == []


def test_an_uncoded_term_meets_no_category_specific_rule() -> None:
    found = unmet("non_haematologic_g3", ae("Periorbital oedema", coded=False))
    assert found == ["toxicity non_haematologic: term 'Periorbital oedema' is uncoded"]


def test_an_unresolved_aes_duration_runs_to_the_assessment_date() -> None:
    unresolved = ae(NEUTROPENIA, 4, onset=ONSET)
    assert duration_days(unresolved, ONSET + timedelta(days=5)) == 5
    assert unmet("neutropenia_g4", unresolved, ONSET + timedelta(days=5)) == [
        "duration more than 5 days: 5 days from onset to assessment"]
    assert unmet("neutropenia_g4", unresolved, ONSET + timedelta(days=6)) == []


def test_no_course_one_dose_means_no_window() -> None:
    context = DltContext(None, WINDOW[1], TERMS)
    assert unmet_conditions(PROTOCOL.dlt.rule("non_haematologic_g3"), ae(), context) == [
        "DLT window: no course 1 dose before the onset"]


def test_the_shipped_term_list_names_its_source_and_every_term_its_section() -> None:
    from importlib import resources

    text = resources.files("trialctl.protocols").joinpath("ctcae_v3.toml").read_text("utf-8")
    assert "NCI" in text and "published 9 August 2006" in text
    assert all(term.section for term in TERMS.terms.values())
    for needed in (NEUTROPENIA, "Platelets", "Hemoglobin", FATIGUE, "Nausea", "Vomiting",
                   "Diarrhea", "Rash/desquamation", "Edema: limb",
                   "ALT, SGPT (serum glutamic pyruvic transaminase)",
                   "AST, SGOT (serum glutamic oxaloacetic transaminase)",
                   "Bilirubin (hyperbilirubinemia)", "Creatinine"):
        assert TERMS.get(needed) is not None, needed


# -- the patient record: refusals and the override ------------------------------------------


@pytest.fixture
def patient() -> tuple[Trial, Patient]:
    trial = Trial.register(PROTOCOL, NOW)
    patient = enrolled_patient(trial, "P001")
    dose_escalated(patient, trial, 3)
    return trial, patient


def refused(rule: str, action: Any) -> str:
    with pytest.raises(TrialRuleError) as caught:
        action()
    assert caught.value.rule == rule, str(caught.value)
    return str(caught.value)


def test_a_grade_1_unrelated_fatigue_is_no_dlt_under_non_haematologic_g3(
    patient: tuple[Trial, Patient],
) -> None:
    trial, record = patient
    record.report_adverse_event(adverse_event(FATIGUE, 1, day(8), attribution="unrelated"),
                                trial.protocol, NOW)
    message = refused("dlt-rule", lambda: record.adjudicate_dlt(
        adjudication(day(9), "non_haematologic_g3"), trial.protocol, NOW))

    assert "\n" not in message
    assert "min_grade 3: grade 1" in message and "attribution unrelated" in message
    assert "--override-reason" in message
    assert record.dlts() == [] and not record.pending_events[-1].__class__.__name__.startswith(
        "Dlt")


def test_an_unknown_term_is_refused_naming_the_nearest_unless_uncoded(
    patient: tuple[Trial, Patient],
) -> None:
    trial, record = patient
    message = refused("ctcae-term", lambda: record.report_adverse_event(
        adverse_event("Neutrophils/granulocytes", 4, day(8)), trial.protocol, NOW))
    assert f"nearest: {NEUTROPENIA!r}" in message and "--uncoded" in message

    record.report_adverse_event(adverse_event("Periorbital oedema", 1, day(8), coded=False),
                                trial.protocol, NOW)
    assert record.summary(trial.protocol)["uncoded_aes"] == ["AE1"]


def test_a_principal_investigators_override_is_its_own_event_and_counts(
    patient: tuple[Trial, Patient],
) -> None:
    trial, record = patient
    record.report_adverse_event(adverse_event(NEUTROPENIA, 4, day(8)), trial.protocol, NOW)
    refused("dlt-rule", lambda: record.adjudicate_dlt(adjudication(day(10)), trial.protocol, NOW))

    counts = record.adjudicate_dlt(
        adjudication(day(10), override_reason="G-CSF given on day 2 masked the duration"),
        trial.protocol, NOW)

    assert counts is True
    assert type(record.pending_events[-1]).__name__ == "DltRuleOverridden"
    (judged,) = record.judged_dlts(trial.protocol)
    assert judged["overridden"] and judged["unmet"] and judged["counts"]
    status = trial.status({"P001": record})
    assert status["dlt_overrides"] == [{
        "patient_id": "P001", "ae_id": "AE1", "rule_code": "neutropenia_g4",
        "version": judged["version"],
        "override_reason": "G-CSF given on day 2 masked the duration"}]


def test_an_override_of_a_dlt_that_meets_its_rule_is_refused(
    patient: tuple[Trial, Patient],
) -> None:
    trial, record = patient
    record.report_adverse_event(adverse_event(NEUTROPENIA, 4, day(8)), trial.protocol, NOW)
    refused("dlt-override", lambda: record.adjudicate_dlt(
        adjudication(day(20), override_reason="belt and braces"), trial.protocol, NOW))


def anc(on: date, grade: int | None, version: int) -> dict[str, Any]:
    return {"test": "anc", "collected_on": on.isoformat(), "grade": grade, "version": version}


@pytest.mark.parametrize(("days_at_grade_4", "meets"), [(5, False), (6, True)])
def test_a_lab_series_decides_the_duration_of_a_lab_toxicity(
    days_at_grade_4: int, meets: bool
) -> None:
    # The AE itself says it lasted 20 days; the ANC samples are what measure it.
    neutropenia = ae(NEUTROPENIA, 4, onset=ONSET, resolved=ONSET + timedelta(20))
    labs = [anc(ONSET, 4, 1), anc(ONSET + timedelta(days_at_grade_4), 2, 2)]
    context = DltContext(WINDOW, WINDOW[1], TERMS, labs)
    unmet = unmet_conditions(PROTOCOL.dlt.rule("neutropenia_g4"), neutropenia, context)
    assert (unmet == []) is meets
    if not meets:
        assert unmet == ["duration more than 5 days: 5 days of anc at grade >= 4 in the lab "
                         "series"]


def test_without_samples_of_its_lab_the_duration_comes_from_the_adverse_event() -> None:
    neutropenia = ae(NEUTROPENIA, 4, onset=ONSET, resolved=ONSET + timedelta(6))
    platelets = [{"test": "platelets", "collected_on": ONSET.isoformat(), "grade": 1,
                  "version": 1}]
    context = DltContext(WINDOW, WINDOW[1], TERMS, platelets)
    assert unmet_conditions(PROTOCOL.dlt.rule("neutropenia_g4"), neutropenia, context) == []
