"""Concomitant medications against the protocol's `[[concomitant_medications]]`: each rule
of NCT00084513 at its boundary (1 mg/day warfarin vs 2 mg/day, oral vs IV antibiotics,
the study period's first and last day), and the protocol file's checks."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from tests.trial_helpers import NOW, ROOT, enrolled_patient, nct_protocol
from trialctl.domain.conmed_file import CONMED_KEYS
from trialctl.domain.conmeds import prohibited_uses
from trialctl.domain.facts import Conmed, Correction
from trialctl.domain.protocol_file import protocol_from_dict
from trialctl.domain.protocol_values import ProtocolError
from trialctl.domain.rules import TrialRuleError
from trialctl.domain.trial import Trial

ENROLLED, LEFT = date(2026, 3, 1), date(2026, 6, 30)


def conmed(drug: str, *, start: str = "2026-04-01", stop: str | None = None,
           dose: str | None = None, unit: str | None = None,
           route: str | None = None) -> dict[str, Any]:
    return {"version": 7, "drug": drug, "start": start, "stop": stop, "dose": dose,
            "unit": unit, "route": route, "indication": None}


def flagged(*conmeds: dict[str, Any], end: date | None = LEFT) -> list[str]:
    rules = nct_protocol().concomitant_medications
    return [use.rule.code for use in prohibited_uses(conmeds, rules, ENROLLED, end)]


@pytest.mark.parametrize(("taken", "expected"), [
    (conmed("warfarin", dose="1", unit="mg/day", route="oral"), []),
    (conmed("warfarin", dose="2", unit="mg/day", route="oral"), ["therapeutic_warfarin"]),
    (conmed("Warfarin", dose="1.5", unit="mg/day"), ["therapeutic_warfarin"]),
    # Its record cannot show it is the allowed mini-dose.
    (conmed("warfarin"), ["therapeutic_warfarin"]),
    (conmed("Coumadin", dose="1", unit="mg/week"), ["therapeutic_warfarin"]),
    (conmed("NEUPOGEN", route="SC"), ["growth_factors"]),
    (conmed("sargramostim"), ["growth_factors"]),
    (conmed("ceftriaxone", route="oral"), []),
    (conmed("ceftriaxone", route="IV"), ["parenteral_antibiotics"]),
    (conmed("vancomycin", route="im"), ["parenteral_antibiotics"]),
    (conmed("vancomycin"), ["parenteral_antibiotics"]),
    (conmed("paclitaxel", route="IV"), ["other_anticancer_agents"]),
    (conmed("ondansetron", route="oral"), []),
], ids=["warfarin-1mg", "warfarin-2mg", "warfarin-1.5mg", "warfarin-no-dose",
        "warfarin-other-unit", "g-csf-brand", "gm-csf", "antibiotic-oral", "antibiotic-iv",
        "antibiotic-im", "antibiotic-no-route", "anticancer", "allowed-drug"])
def test_each_rule(taken: dict[str, Any], expected: list[str]) -> None:
    assert flagged(taken) == expected


@pytest.mark.parametrize(("start", "stop", "end", "expected"), [
    ("2026-02-01", "2026-02-28", LEFT, False),   # stopped the day before enrollment
    ("2026-02-01", "2026-03-01", LEFT, True),    # stopped on the day of enrollment
    ("2026-02-01", None, LEFT, True),            # ongoing since before enrollment
    ("2026-06-30", None, LEFT, True),            # started on the day the patient left
    ("2026-07-01", None, LEFT, False),           # started the day after
    ("2027-01-01", None, None, True),            # still on study
], ids=["stop-day-before", "stop-on-enrollment", "ongoing", "start-last-day",
        "start-after-leaving", "on-study"])
def test_the_study_period(start: str, stop: str | None, end: date | None,
                          expected: bool) -> None:
    assert flagged(conmed("filgrastim", start=start, stop=stop), end=end) == (
        ["growth_factors"] if expected else [])


def test_nothing_is_prohibited_before_enrollment() -> None:
    rules = nct_protocol().concomitant_medications
    assert prohibited_uses([conmed("filgrastim")], rules, None, None) == []


def test_the_flag_follows_a_corrected_dose() -> None:
    trial = Trial.register(nct_protocol(), NOW)
    patient = enrolled_patient(trial, "P001")
    patient.record_conmed(Conmed(drug="warfarin", start="2026-01-10", stop=None, dose="2",
                                 unit="mg/day", route="oral", indication=None),
                          trial.protocol, NOW)
    (found,) = patient.deviations(trial.protocol)
    assert (found["source"], found["category"], found["severity"]) == (
        "detected", "prohibited-medication", "major")
    assert "given 2 mg/day" in found["text"]
    version = patient.conmeds()[0]["version"]
    patient.correct(Correction(target_version=version, changes={"dose": "1"},
                               reason="prescription re-read"), trial.protocol, NOW)
    assert patient.deviations(trial.protocol) == []


@pytest.mark.parametrize(("changes", "message"), [
    ({"drug": " "}, "drug name"),
    ({"start": "2027-01-01"}, "future"),
    ({"stop": "2026-01-01"}, "before its start"),
    ({"dose": "1", "unit": None}, "needs its unit"),
    ({"dose": "-1", "unit": "mg"}, "positive number"),
])
def test_bad_conmed_values_are_refused(changes: dict[str, Any], message: str) -> None:
    trial = Trial.register(nct_protocol(), NOW)
    patient = enrolled_patient(trial, "P001")
    values: dict[str, Any] = {"drug": "warfarin", "start": "2026-01-10", "stop": None,
                              "dose": None, "unit": None, "route": None, "indication": None}
    with pytest.raises(TrialRuleError, match=message):
        patient.record_conmed(Conmed(**{**values, **changes}), trial.protocol, NOW)


@pytest.mark.parametrize(("entry", "message"), [
    ({"allowed_max_dose": "1"}, "allowed_max_dose and allowed_unit go together"),
    ({"drugs": []}, "must not be empty"),
    ({"drugs": ["warfarin", "WARFARIN"]}, "duplicate concomitant medication drug name"),
    ({"routes": "IV"}, "expected an array"),
    ({"dose": "1"}, "unknown field"),
])
def test_the_protocol_file_is_checked(entry: dict[str, Any], message: str) -> None:
    data = nct_protocol().to_dict()
    base = {"code": "x_rule", "text": "x", "drugs": ["x-drug"]}
    data["concomitant_medications"] = [{**base, **entry}]
    with pytest.raises(ProtocolError, match=message):
        protocol_from_dict(data)


def test_the_protocol_round_trips_its_rules() -> None:
    protocol = nct_protocol()
    assert [r.code for r in protocol.concomitant_medications] == [
        "growth_factors", "therapeutic_warfarin", "parenteral_antibiotics",
        "other_anticancer_agents"]
    assert protocol_from_dict(protocol.to_dict()) == protocol


def test_the_schema_describes_the_same_keys() -> None:
    schema = json.loads((ROOT / "protocols" / "protocol.schema.json").read_text())
    described = schema["$defs"]["conmed_rule"]
    assert set(described["properties"]) == set(CONMED_KEYS)
    assert schema["properties"]["concomitant_medications"]["items"] == {
        "$ref": "#/$defs/conmed_rule"}
