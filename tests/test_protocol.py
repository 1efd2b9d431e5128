"""Protocol model (domain/protocol.py) and its strict loader (domain/protocol_file.py).

One module, long on purpose: the table of malformed protocols and the message each must
get is read as one list (tests/test_protocol_schema.py reuses it).
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import re
import tomllib
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trialctl.domain.eligibility import Criterion, Operator, screening_fields
from trialctl.domain.protocol import AgentRole, ObservationValueType, Protocol
from trialctl.domain.protocol_file import ProtocolError, load_protocol, protocol_from_dict

ROOT = Path(__file__).resolve().parent.parent
NCT_PATH = ROOT / "protocols" / "NCT00084513.toml"
DATA = Path(__file__).resolve().parent / "data" / "protocols"
SECOND_PATH = DATA / "second_protocol.toml"
MINIMAL_PATH = DATA / "minimal.toml"


@pytest.fixture(scope="module")
def nct() -> Protocol:
    return load_protocol(NCT_PATH.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def second() -> Protocol:
    return load_protocol(SECOND_PATH.read_text(encoding="utf-8"))


def _walk(value: object) -> list[object]:
    """Every leaf value reachable through dataclasses, tuples and dicts."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: list[object] = []
        for f in dataclasses.fields(value):
            out.extend(_walk(getattr(value, f.name)))
        return out
    if isinstance(value, tuple | list):
        return [leaf for item in value for leaf in _walk(item)]
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _walk(item)]
    return [value]


# ------------------------------------------------------------------ shipped protocols


def test_nct00084513_identity_and_course(nct: Protocol) -> None:
    assert nct.id == "NCT00084513"
    assert "Trastuzumab and Imatinib" in nct.title
    assert nct.phase == "I"
    assert nct.course_length_days == 21
    assert nct.planned_accrual == 18


def test_nct00084513_agents(nct: Protocol) -> None:
    imatinib = nct.escalated_agent
    assert imatinib.name == "imatinib mesylate"
    assert imatinib.role is AgentRole.ESCALATED
    assert imatinib.route == "oral"
    assert imatinib.days == tuple(range(1, 22))
    assert imatinib.unit == "mg/day"
    assert imatinib.doses == ()

    (trastuzumab,) = nct.fixed_agents
    assert trastuzumab.name == "trastuzumab"
    assert trastuzumab.route == "IV"
    assert trastuzumab.days == (1,)
    assert trastuzumab.unit == "mg/kg"
    loading = trastuzumab.dose_for_course(1)
    assert (loading.name, loading.dose, loading.unit) == ("loading", Decimal("8"), "mg/kg")
    for course in (2, 3, 17):
        maintenance = trastuzumab.dose_for_course(course)
        assert (maintenance.name, maintenance.dose) == ("maintenance", Decimal("6"))
    with pytest.raises(ValueError):
        trastuzumab.dose_for_course(0)


def test_nct00084513_dose_levels(nct: Protocol) -> None:
    assert nct.num_levels == 4
    assert nct.start_level == 1
    assert [lv.level for lv in nct.dose_levels] == [1, 2, 3, 4]
    assert [lv.dose for lv in nct.dose_levels] == [Decimal(d) for d in ("300", "400", "600", "800")]
    assert all(lv.unit == "mg/day" for lv in nct.dose_levels)
    assert nct.level(4).frequency == "400 mg twice daily"
    assert nct.level(2).describe() == "level 2: 400 mg/day (400 mg once daily)"
    for bad in (0, 5, -1):
        with pytest.raises(KeyError):
            nct.level(bad)
    assert nct.has_level(1) and not nct.has_level(5)


def test_nct00084513_design_dlt_response(nct: Protocol) -> None:
    assert nct.design.name == "3+3"
    assert nct.design.cohort_size == 3
    assert nct.design.max_per_level == 6
    assert nct.design.allow_deescalation is True
    assert nct.design.dlt_window_courses == 1
    assert nct.dlt_window_days == 21
    assert nct.dlt.ctcae_version == "3.0"
    assert [r.code for r in nct.dlt.rules] == [
        "non_haematologic_g3",
        "neutropenia_g4",
        "thrombocytopenia_g4",
        "treatment_delay",
    ]
    neut = nct.dlt.rule("neutropenia_g4")
    assert (neut.min_grade, neut.duration_days_more_than) == (4, 5)
    assert nct.dlt.rule("non_haematologic_g3").attributions == ("possible", "probable", "definite")
    assert nct.dlt.rule("treatment_delay").duration_days_more_than == 14
    # The trial opened in 2004 with RECIST 1.0's measurable-disease wording.
    assert nct.response.recist_version == "1.0"
    assert nct.response.rules.max_target_lesions == 10
    assert nct.response.assessment_interval_weeks == 9
    assert nct.response.interval_days == 63
    assert nct.response.window_days == 7


def test_nct00084513_observations(nct: Protocol) -> None:
    assert [o.code for o in nct.observations] == ["ctc_count", "p_akt", "p_erk", "p_kit"]
    ctc = nct.observation("ctc_count")
    assert ctc.value_type is ObservationValueType.COUNT
    assert ctc.unit
    assert ctc.parse_value("12") == Decimal(12)
    with pytest.raises(ValueError):
        ctc.parse_value("1.5")
    with pytest.raises(ValueError):
        ctc.parse_value(-1)
    akt = nct.observation("p_akt")
    assert akt.value_type is ObservationValueType.CATEGORICAL
    assert akt.parse_value("strong") == "strong"
    with pytest.raises(ValueError, match="p_akt"):
        akt.parse_value("very strong")
    with pytest.raises(KeyError):
        nct.observation("nope")


def test_nct00084513_eligibility_from_the_record(nct: Protocol) -> None:
    by_code = {c.code: c for c in nct.eligibility_criteria}
    assert nct.eligibility_criteria == nct.eligibility
    expected = {
        "anc": (Operator.GE, Decimal(1500)),
        "platelets": (Operator.GE, Decimal(100000)),
        "alt": (Operator.X_ULN_AT_MOST, Decimal("2.0")),
        "ast": (Operator.X_ULN_AT_MOST, Decimal("2.0")),
        "alkaline_phosphatase": (Operator.X_ULN_AT_MOST, Decimal("2.0")),
        "bilirubin": (Operator.LE, Decimal("1.3")),
        "creatinine": (Operator.LE, Decimal("2.0")),
        "age": (Operator.GE, Decimal(18)),
        "ecog": (Operator.IN, ("0", "1", "2")),
        "her2": (Operator.IN, ("3+",)),
        "chemotherapy_washout": (Operator.DAYS_SINCE_AT_LEAST, 28),
        "nitrosourea_washout": (Operator.DAYS_SINCE_AT_LEAST, 42),
        "radiotherapy_washout": (Operator.DAYS_SINCE_AT_LEAST, 28),
        "surgery_washout": (Operator.DAYS_SINCE_AT_LEAST, 15),
        "antibiotics_washout": (Operator.DAYS_SINCE_AT_LEAST, 7),
        "pregnancy_test": (Operator.EQ, "negative"),
        "infection": (Operator.IS_FALSE, None),
        "myocardial_infarction": (Operator.DAYS_SINCE_AT_LEAST, 183),
    }
    for code, (op, threshold) in expected.items():
        assert (by_code[code].op, by_code[code].threshold) == (op, threshold), code
    assert by_code["lvef"].threshold_field == "lvef_lln_percent"
    assert by_code["alt"].uln_field == "alt_uln_u_l"
    preg = by_code["pregnancy_test"].applies_if
    assert preg is not None and preg.field == "childbearing_potential"
    assert len(by_code) == len(nct.eligibility)  # codes are unique


def test_nct00084513_screening_fields_are_declared(nct: Protocol) -> None:
    """Every screening field a criterion reads is declared, with a text, by the form."""
    form = nct.screening_form
    assert form is not None
    undeclared = [f for f in screening_fields(nct.eligibility) if f not in form.names]
    assert undeclared == []
    assert all(f.text for f in form.fields)


def test_nct00084513_assumptions_are_marked() -> None:
    text = NCT_PATH.read_text(encoding="utf-8")
    for line in text.splitlines():
        if re.match(r'^dose = "', line):
            assert "ASSUMPTION" in line, line
    assert "de-escalation" in text.lower()


def test_second_protocol(second: Protocol) -> None:
    assert second.id == "TEST-0002"
    assert second.num_levels == 6
    assert second.escalated_agent.name == "examplinib"
    assert [a.name for a in second.fixed_agents] == ["gemcitabine"]
    assert second.fixed_agents[0].days == (1, 8, 15)
    assert second.fixed_agents[0].dose_for_course(9).dose == Decimal(1000)
    assert second.escalated_agent.days == tuple(range(1, 29))
    assert second.course_length_days == 28
    assert second.design.dlt_window_days == 28
    assert second.design.dlt_window_courses is None
    assert second.dlt_window_days == 28
    assert second.design.allow_deescalation is False
    assert second.level(6).dose == Decimal("262.5")
    assert [lv.dose for lv in second.dose_levels] == [
        Decimal(d) for d in ("25", "50", "100", "150", "200", "262.5")
    ]
    assert second.dlt.ctcae_version == "5.0"
    assert second.response.assessment_interval_weeks == 8
    assert second.response.recist_version == "1.1"
    by_code = {c.code: c for c in second.eligibility}
    assert by_code["anc"].threshold == Decimal("1.0")
    assert by_code["platelets"].threshold == Decimal(75)
    assert by_code["alt"].uln == Decimal(40)
    assert by_code["ecog"].threshold == ("0", "1")
    assert second.observation("trough_concentration").unit == "ng/mL"


@pytest.mark.parametrize("path", [NCT_PATH, SECOND_PATH, MINIMAL_PATH], ids=lambda p: p.stem)
def test_no_float_anywhere_and_decimals_for_doses(path: Path) -> None:
    protocol = load_protocol(path.read_text(encoding="utf-8"))
    assert not [v for v in _walk(protocol) if isinstance(v, float)]
    assert all(isinstance(lv.dose, Decimal) for lv in protocol.dose_levels)


@pytest.mark.parametrize("path", [NCT_PATH, SECOND_PATH, MINIMAL_PATH], ids=lambda p: p.stem)
def test_to_dict_is_json_native_and_round_trips(path: Path) -> None:
    protocol = load_protocol(path.read_text(encoding="utf-8"))
    data = protocol.to_dict()
    leaves = _walk(data)
    assert all(isinstance(v, str | int | bool) for v in leaves)  # no Decimal, no float
    as_json = json.dumps(data)
    assert protocol_from_dict(json.loads(as_json)) == protocol
    assert data["dose_levels"][0]["dose"] == str(protocol.level(1).dose)  # type: ignore[index]


def test_protocol_is_frozen(nct: Protocol) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        nct.start_level = 2  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        nct.dose_levels[0].dose = Decimal(1)  # type: ignore[misc]


# ------------------------------------------------------------------ malformations


def _base() -> dict[str, Any]:
    return tomllib.loads(MINIMAL_PATH.read_text(encoding="utf-8"))


Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: object) -> Mutation:
    """Set a dotted path (integers index arrays), e.g. ``dose_levels.2.dose``."""

    def mutate(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        if last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value

    return mutate


def _del(path: str) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = data
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        del node[last]

    return mutate


def _all(*mutations: Mutation) -> Mutation:
    def mutate(data: dict[str, Any]) -> None:
        for m in mutations:
            m(data)

    return mutate


# (mutation, expected field path, fragment of the message)
MALFORMED: dict[str, tuple[Mutation, str, str]] = {
    # unknown keys, anywhere
    "unknown_top_level_key": (_set("colour", "red"), "colour", "unknown field"),
    "unknown_design_key": (_set("design.cohort_sise", 3), "design.cohort_sise", "unknown field"),
    "unknown_level_key": (_set("dose_levels.1.doze", "1"), "dose_levels[1].doze", "unknown"),
    "unknown_agent_dose_key": (
        _set("agents.1.doses.0.unit", "mg"),
        "agents[1].doses[0].unit",
        "unknown field",
    ),
    "unknown_criterion_key": (
        _set("eligibility.0.limit", 3),
        "eligibility[0].limit",
        "unknown field",
    ),
    "unknown_applies_if_key": (
        _set("eligibility.2.applies_if.value", "x"),
        "eligibility[2].applies_if.value",
        "unknown",
    ),
    "unknown_dlt_rule_key": (_set("dlt.rules.0.grade", 3), "dlt.rules[0].grade", "unknown"),
    # missing required fields
    "missing_id": (_del("id"), "id", "required field is missing"),
    "missing_title": (_del("title"), "title", "required field is missing"),
    "missing_course_length": (_del("course_length_days"), "course_length_days", "missing"),
    "missing_design": (_del("design"), "design", "required field is missing"),
    "missing_design_name": (_del("design.name"), "design.name", "required field is missing"),
    "missing_deescalation_flag": (
        _del("design.allow_deescalation"),
        "design.allow_deescalation",
        "missing",
    ),
    "missing_dlt": (_del("dlt"), "dlt", "required field is missing"),
    "missing_ctcae_version": (_del("dlt.ctcae_version"), "dlt.ctcae_version", "missing"),
    "missing_rule_text": (_del("dlt.rules.0.text"), "dlt.rules[0].text", "missing"),
    "missing_response": (_del("response"), "response", "required field is missing"),
    "missing_eligibility": (_del("eligibility"), "eligibility", "required field is missing"),
    "missing_criterion_field": (_del("eligibility.0.field"), "eligibility[0].field", "missing"),
    "missing_start_level": (_del("start_level"), "start_level", "required field is missing"),
    # dose levels
    "no_dose_levels": (_set("dose_levels", []), "dose_levels", "must not be empty"),
    "missing_dose_levels": (_del("dose_levels"), "dose_levels", "required field is missing"),
    "doses_decrease": (
        _set("dose_levels.2.dose", "150"),
        "dose_levels[2].dose",
        "doses must increase (150 after 200)",
    ),
    "doses_equal": (
        _set("dose_levels.1.dose", "100"),
        "dose_levels[1].dose",
        "doses must increase (100 after 100)",
    ),
    "duplicate_level": (
        _set("dose_levels.2.level", 2),
        "dose_levels[2].level",
        "duplicate level 2",
    ),
    "non_contiguous_level": (
        _set("dose_levels.2.level", 4),
        "dose_levels[2].level",
        "expected 3, got 4",
    ),
    "level_zero": (_set("dose_levels.0.level", 0), "dose_levels[0].level", "at least 1"),
    "start_level_above_levels": (_set("start_level", 4), "start_level", "1..3"),
    "start_level_zero": (_set("start_level", 0), "start_level", "not one of the dose levels"),
    "negative_start_level": (_set("start_level", -1), "start_level", "must not be negative"),
    "missing_level_unit": (_del("dose_levels.0.unit"), "dose_levels[0].unit", "missing"),
    "level_unit_differs": (_set("dose_levels.1.unit", "g"), "dose_levels[1].unit", "differs"),
    "negative_dose": (_set("dose_levels.0.dose", "-100"), "dose_levels[0].dose", "negative"),
    "zero_dose": (_set("dose_levels.0.dose", 0), "dose_levels[0].dose", "greater than zero"),
    "dose_not_a_number": (_set("dose_levels.0.dose", "lots"), "dose_levels[0].dose", "number"),
    "dose_with_unit_in_string": (
        _set("dose_levels.0.dose", "100 mg"),
        "dose_levels[0].dose",
        "number",
    ),
    "dose_is_boolean": (_set("dose_levels.0.dose", True), "dose_levels[0].dose", "boolean"),
    "python_float_dose": (_set("dose_levels.0.dose", 100.0), "dose_levels[0].dose", "float"),
    # agents
    "missing_agent_unit": (_del("agents.0.unit"), "agents[0].unit", "required field is missing"),
    "no_escalated_agent": (
        _all(
            _set("agents.0.role", "fixed"),
            _set("agents.0.doses", [{"name": "x", "dose": "1", "first_course": 1}]),
        ),
        "agents",
        "found 0",
    ),
    "fixed_role_needs_doses": (_set("agents.0.role", "fixed"), "agents[0].doses", "missing"),
    "two_escalated_agents": (
        _all(_set("agents.1.role", "escalated"), _del("agents.1.doses")),
        "agents",
        "exactly one agent",
    ),
    "unknown_role": (_set("agents.0.role", "titrated"), "agents[0].role", "unknown role"),
    "escalated_agent_with_doses": (
        _set("agents.0.doses", [{"name": "x", "dose": "1", "first_course": 1}]),
        "agents[0].doses",
        "dose_levels",
    ),
    "fixed_agent_without_doses": (_del("agents.1.doses"), "agents[1].doses", "missing"),
    "fixed_dose_gap": (
        _set("agents.1.doses.1.first_course", 3),
        "agents[1].doses[1].first_course",
        "expected 2",
    ),
    "fixed_dose_course_ends": (
        _set("agents.1.doses.1.last_course", 5),
        "agents[1].doses[1].last_course",
        "every course",
    ),
    "negative_fixed_dose": (
        _set("agents.1.doses.0.dose", "-8"),
        "agents[1].doses[0].dose",
        "negative",
    ),
    "day_outside_course": (_set("agents.1.days", [1, 22]), "agents[1].days", "1..21"),
    "days_not_increasing": (_set("agents.1.days", [8, 1]), "agents[1].days[1]", "increase"),
    "bad_day_range": (_set("agents.0.days", "days 1 to 21"), "agents[0].days", "range"),
    "duplicate_agent": (_set("agents.1.name", "drug a"), "agents[1].name", "duplicate agent"),
    # design
    "unknown_design": (_set("design.name", "2+4"), "design.name", "unknown design '2+4'"),
    "wrong_cohort_size": (_set("design.cohort_size", 4), "design.cohort_size", "cohorts of 3"),
    "wrong_max_per_level": (_set("design.max_per_level", 9), "design.max_per_level", "6"),
    "deescalation_not_boolean": (
        _set("design.allow_deescalation", "yes"),
        "design.allow_deescalation",
        "true or false",
    ),
    "both_dlt_windows": (
        _set("design.dlt_window_days", 21),
        "design.dlt_window_courses",
        "exactly one",
    ),
    "no_dlt_window": (_del("design.dlt_window_courses"), "design.dlt_window_courses", "exactly"),
    "negative_course_length": (
        _set("course_length_days", -21),
        "course_length_days",
        "must not be negative",
    ),
    # DLT definition
    "dlt_grade_out_of_range": (_set("dlt.rules.0.min_grade", 6), "dlt.rules[0].min_grade", "1..5"),
    "dlt_unknown_attribution": (
        _set("dlt.rules.0.attributions", ["possible", "maybe"]),
        "dlt.rules[0].attributions[1]",
        "unknown attribution",
    ),
    "dlt_no_rules": (_set("dlt.rules", []), "dlt.rules", "must not be empty"),
    # eligibility
    "unknown_operator": (
        _set("eligibility.0.op", ">"),
        "eligibility[0].op",
        "unknown operator '>'",
    ),
    "unknown_condition_operator": (
        _set("eligibility.2.applies_if.op", "days_since_at_least"),
        "eligibility[2].applies_if.op",
        "unknown operator",
    ),
    "unknown_criterion_kind": (
        _set("eligibility.0.kind", "preference"),
        "eligibility[0].kind",
        "unknown kind",
    ),
    "negative_threshold": (_set("eligibility.0.threshold", -5), "eligibility[0].threshold", "neg"),
    "missing_threshold": (_del("eligibility.0.threshold"), "eligibility[0].threshold", "missing"),
    "missing_criterion_unit": (_del("eligibility.0.unit"), "eligibility[0].unit", "missing"),
    "threshold_on_boolean_operator": (
        _all(_set("eligibility.0.op", "is_true"), _del("eligibility.0.unit")),
        "eligibility[0].threshold",
        "takes no threshold",
    ),
    "uln_missing": (_del("eligibility.1.uln_field"), "eligibility[1].uln_field", "exactly one"),
    "uln_twice": (_set("eligibility.1.uln", "40"), "eligibility[1].uln_field", "exactly one"),
    "uln_on_other_operator": (
        _set("eligibility.0.uln", "40"),
        "eligibility[0].uln",
        "x_uln_at_most",
    ),
    "in_empty_list": (
        _all(_set("eligibility.2.op", "in"), _set("eligibility.2.threshold", [])),
        "eligibility[2].threshold",
        "must not be empty",
    ),
    "duplicate_criterion_code": (
        _set("eligibility.1.code", "anc"),
        "eligibility[1].code",
        "duplicate criterion code",
    ),
    "criterion_field_not_snake_case": (
        _set("eligibility.0.field", "ANC count"),
        "eligibility[0].field",
        "lower_snake_case",
    ),
    # response and observations
    "unknown_recist_version": (
        _set("response.recist_version", "WHO"),
        "response.recist_version",
        "unknown RECIST version",
    ),
    "zero_response_interval": (
        _set("response.assessment_interval_weeks", 0),
        "response.assessment_interval_weeks",
        "1",
    ),
    "negative_response_window": (
        _set("response.window_days", -1), "response.window_days", "negative",
    ),
    "overlapping_response_windows": (
        _set("response.window_days", 32), "response.window_days", "overlaps the next",
    ),
    "categorical_without_values": (
        _del("observations.0.allowed_values"),
        "observations[0].allowed_values",
        "missing",
    ),
    "count_without_unit": (
        _all(_set("observations.0.value_type", "count"), _del("observations.0.allowed_values")),
        "observations[0].unit",
        "missing",
    ),
    "unknown_value_type": (
        _set("observations.0.value_type", "text"),
        "observations[0].value_type",
        "unknown",
    ),
    # forms
    "unknown_field_type": (
        _set("forms.0.fields.0.type", "number"), "forms[0].fields[0].type", "not a field type",
    ),
    "unit_on_boolean_field": (
        _set("forms.0.fields.3.unit", "mg"), "forms[0].fields[3].unit", "only used for numbers",
    ),
    "form_min_above_max": (
        _all(_set("forms.0.fields.0.min", 10), _set("forms.0.fields.0.max", 5)),
        "forms[0].fields[0].max",
        "at least min",
    ),
    "duplicate_form_field": (
        _set("forms.0.fields.1.name", "anc"), "forms[0].fields[1].name", "duplicate field",
    ),
    "criterion_reads_undeclared_field": (
        _set("forms.0.fields.0.name", "anc_count"),
        "eligibility[0]",
        "reads field 'anc', which the screening form does not declare (nearest: anc_count)",
    ),
    # types and identity
    "title_not_string": (_set("title", 5), "title", "expected a string"),
    "empty_title": (_set("title", "  "), "title", "must not be empty"),
    "id_with_spaces": (_set("id", "NCT 0001"), "id", "no spaces"),
    "design_not_table": (_set("design", "3+3"), "design", "expected a table"),
    "levels_not_array": (_set("dose_levels", {"level": 1}), "dose_levels", "expected an array"),
}


@pytest.mark.parametrize(
    ("mutation", "path", "fragment"), list(MALFORMED.values()), ids=list(MALFORMED)
)
def test_malformed_protocol_is_refused_naming_the_field(
    mutation: Mutation, path: str, fragment: str
) -> None:
    data = _base()
    mutation(data)
    with pytest.raises(ProtocolError) as info:
        protocol_from_dict(data)
    assert info.value.path == path
    assert str(info.value).startswith(f"{path}: ")
    assert fragment in str(info.value)


def test_minimal_base_is_valid() -> None:
    protocol = protocol_from_dict(_base())
    assert protocol.num_levels == 3
    assert protocol.phase == "I"  # default
    assert protocol.observations[0].allowed_values == ("low", "high")


# TOML-level malformations: (replace this, with that, expected path, fragment)
TOML_MALFORMED: dict[str, tuple[str, str, str, str]] = {
    "float_dose": ('dose = "200"', "dose = 200.0", "dose_levels[1].dose", "floats are not allowed"),
    "float_threshold": (
        "threshold = 1500",
        "threshold = 1500.0",
        "eligibility[0].threshold",
        "floats",
    ),
    "float_ctcae_version": (
        'ctcae_version = "3.0"',
        "ctcae_version = 3.0",
        "dlt.ctcae_version",
        "floats",
    ),
    "float_in_unknown_place": (
        "assessment_interval_weeks = 9",
        "assessment_interval_weeks = 9.0",
        "response.assessment_interval_weeks",
        "float",
    ),
    "exponent_float": ('dose = "400"', "dose = 4e2", "dose_levels[2].dose", "floats"),
    # a float where an array is due is named as a float, not as the loader's marker class
    "float_for_array": ("days = [1]", "days = 1.0", "agents[1].days", "got a float"),
    "syntax_error": ("course_length_days = 21", "course_length_days = ", "<toml>", "invalid TOML"),
    "duplicate_toml_key": ("start_level = 1", "start_level = 1\nstart_level = 2", "<toml>", "TOML"),
    "date_for_string": ('title = "Minimal test protocol"', "title = 2024-01-01", "title", "date"),
}


@pytest.mark.parametrize(
    ("old", "new", "path", "fragment"), list(TOML_MALFORMED.values()), ids=list(TOML_MALFORMED)
)
def test_malformed_toml_text_is_refused(old: str, new: str, path: str, fragment: str) -> None:
    text = MINIMAL_PATH.read_text(encoding="utf-8")
    assert old in text
    with pytest.raises(ProtocolError) as info:
        load_protocol(text.replace(old, new, 1))
    assert info.value.path == path
    assert fragment in str(info.value)


def _malformed_fixtures() -> list[Path]:
    return sorted((DATA / "malformed").glob("*.toml"))


@pytest.mark.parametrize("path", _malformed_fixtures(), ids=lambda p: p.stem)
def test_malformed_fixture_files(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    match = re.search(r"^# expect: (\S+) \| (.+)$", text, re.MULTILINE)
    assert match, f"{path.name} lacks an '# expect: <path> | <fragment>' line"
    with pytest.raises(ProtocolError) as info:
        load_protocol(text)
    assert info.value.path == match.group(1)
    assert match.group(2) in str(info.value)


def test_protocol_error_is_a_value_error() -> None:
    assert issubclass(ProtocolError, ValueError)
    with pytest.raises(ValueError, match=r"^<toml>: invalid TOML"):
        load_protocol("this is = = not toml")


def test_criterion_rejects_inconsistent_construction() -> None:
    """Programmatic construction is checked too (the loader checks first, with paths)."""
    from trialctl.domain.eligibility import CriterionKind

    with pytest.raises(ValueError, match="threshold"):
        Criterion("a", "a", CriterionKind.INCLUSION, "a", Operator.GE, threshold=None, unit="x")
    with pytest.raises(ValueError, match="uln"):
        Criterion("a", "a", CriterionKind.INCLUSION, "a", Operator.X_ULN_AT_MOST, Decimal(2))


# ------------------------------------------------------------------ properties

_doses = st.lists(
    st.decimals(min_value=Decimal("0.5"), max_value=Decimal(5000), places=1),
    min_size=1,
    max_size=8,
)


@given(_doses)
def test_dose_levels_load_iff_strictly_increasing(doses: list[Decimal]) -> None:
    data = copy.deepcopy(_BASE)
    data["dose_levels"] = [
        {"level": i + 1, "dose": str(d), "unit": "mg"} for i, d in enumerate(doses)
    ]
    increasing = all(b > a for a, b in itertools.pairwise(doses))
    if increasing:
        protocol = protocol_from_dict(data)
        assert [lv.dose for lv in protocol.dose_levels] == doses
        assert protocol.num_levels == len(doses)
    else:
        with pytest.raises(ProtocolError, match=r"^dose_levels\[\d+\]\.dose: doses must increase"):
            protocol_from_dict(data)


@given(st.integers(min_value=-3, max_value=12))
def test_start_level_must_name_a_level(start: int) -> None:
    data = copy.deepcopy(_BASE)
    data["start_level"] = start
    if 1 <= start <= 3:
        assert protocol_from_dict(data).start_level == start
    else:
        with pytest.raises(ProtocolError, match=r"^start_level: "):
            protocol_from_dict(data)


@given(st.integers(min_value=1, max_value=4), st.integers(min_value=7, max_value=42))
def test_dlt_window_days_from_courses(courses: int, course_length: int) -> None:
    data = copy.deepcopy(_BASE)
    data["course_length_days"] = course_length
    data["agents"][0]["days"] = [1]
    data["design"]["dlt_window_courses"] = courses
    assert protocol_from_dict(data).dlt_window_days == courses * course_length


_BASE = _base()
