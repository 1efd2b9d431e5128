"""Forms declared by the protocol: the screening form's field checks, the loader's checks
that tie the form to the eligibility criteria, and the verdict on an incomplete screening.
In process, on the domain alone."""

from __future__ import annotations

import copy
import json
import tomllib
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_protocol import NCT_PATH
from trialctl.domain.facts import Consent, Screening
from trialctl.domain.forms import FieldType, Form, FormError, FormField
from trialctl.domain.patient import Patient, verdict
from trialctl.domain.protocol import Protocol
from trialctl.domain.protocol_file import ProtocolError, load_protocol, protocol_from_dict
from trialctl.domain.protocol_values import TomlFloat
from trialctl.domain.rules import TrialRuleError
from trialctl.ledger.demo import screening_values

NCT = load_protocol(NCT_PATH.read_text(encoding="utf-8"))
FORM = NCT.form("screening")
ON = date(2026, 1, 7)
NOW = datetime(2026, 1, 8, 9, 0, tzinfo=UTC)


def _nct_data() -> dict[str, Any]:
    return tomllib.loads(NCT_PATH.read_text(encoding="utf-8"), parse_float=TomlFloat)


def _refusal(values: dict[str, Any]) -> FormError:
    with pytest.raises(FormError) as info:
        FORM.check(values, ON)
    return info.value


# -- the form as declared ----------------------------------------------------------------


def test_the_screening_form_declares_every_field_the_criteria_read() -> None:
    read = {f for c in NCT.eligibility for f in c.fields}
    assert read <= set(FORM.names)
    assert FORM.field("age_years").type is FieldType.INTEGER
    assert FORM.field("age_years").unit == "years"
    assert FORM.field("pregnancy_test").required is False


def test_a_complete_demo_screening_passes_unchanged() -> None:
    values = screening_values(ON)
    assert FORM.check(values, ON) == values


def test_the_shipped_example_is_a_complete_eligible_screening() -> None:
    example = json.loads((NCT_PATH.parent.parent / "docs" / "examples" / "screening.json")
                         .read_text(encoding="utf-8"))
    checked = FORM.check(example, ON)
    assert FORM.missing_required(checked) == ()


# -- refusals, each naming the field -----------------------------------------------------


def test_an_unknown_field_names_the_nearest_known_one() -> None:
    error = _refusal({"age": 50})
    assert error.field == "age"
    assert "unknown field" in str(error) and "age_years" in str(error)


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("age_years", "fifty", "expected a whole number in years"),
        ("age_years", True, "expected a whole number"),
        ("age_years", "57.5", "expected a whole number"),
        ("bilirubin_mg_dl", 0.7, "not as a JSON float"),
        ("creatinine_mg_dl", "80 umol/L", "is in mg/dL, not umol/L"),
        ("ecog", "1 points", "has no unit"),
        ("active_infection", "maybe", "expected true or false"),
        ("her2_ihc_score", "4+", "is not one of"),
        ("her2_ihc_score", 3, "expected text"),
        ("last_chemotherapy_date", "2026-13-01", "ISO date"),
        ("last_chemotherapy_date", "20260101", "ISO date"),
        ("last_chemotherapy_date", "2026-01-08", "after the form's date 2026-01-07"),
        ("last_chemotherapy_date", ["2026-01-01"], "a list"),
    ],
)
def test_a_wrong_type_or_unit_is_refused_naming_the_field(
    name: str, value: object, fragment: str
) -> None:
    error = _refusal({**screening_values(ON), name: value})
    assert error.field == name
    assert fragment in str(error)
    assert "\n" not in str(error)


@pytest.mark.parametrize(
    ("name", "value", "accepted"),
    [
        ("ecog", 5, True), ("ecog", 6, False), ("ecog", -1, False), ("ecog", 0, True),
        ("age_years", 120, True), ("age_years", 121, False),
        ("lvef_percent", "100", True), ("lvef_percent", "100.1", False),
        ("alt_uln_u_l", 1, True), ("alt_uln_u_l", "0.9", False),
    ],
)
def test_the_physical_range_is_inclusive_at_both_ends(
    name: str, value: object, accepted: bool
) -> None:
    values = {**screening_values(ON), name: value}
    if accepted:
        assert name in FORM.check(values, ON)
    else:
        assert "outside its range" in str(_refusal(values))


def test_a_value_given_with_its_own_unit_is_stored_as_the_number() -> None:
    checked = FORM.check({"creatinine_mg_dl": "0.9 mg/dL", "age_years": "57 years"}, ON)
    assert checked == {"creatinine_mg_dl": "0.9", "age_years": 57}


def test_yes_and_no_read_as_booleans_and_blank_values_are_missing() -> None:
    checked = FORM.check({"active_infection": "no", "fertile": "Yes", "ecog": None,
                          "age_years": "  "}, ON)
    assert checked == {"active_infection": False, "fertile": True}


# -- incomplete screenings ---------------------------------------------------------------


def _screened(values: dict[str, Any]) -> Patient:
    return _screened_under(NCT, values)


def _screened_under(protocol: Protocol, values: dict[str, Any]) -> Patient:
    consent = Consent(consent_version="1.0", signed_on="2026-01-05")
    patient = Patient.consent(uuid4(), "P001", consent, NOW)
    patient.screen(Screening(values=values, screened_on=ON.isoformat()), protocol, NOW)
    return patient


def test_a_required_field_left_out_is_not_assessed_never_failed() -> None:
    values = screening_values(ON)
    del values["age_years"], values["ecog"]
    patient = _screened(values)
    assert patient.eligibility is not None
    assert patient.eligibility["eligible"] is False
    assert patient.eligibility["failed"] == []
    assert patient.eligibility["not_assessed"] == ["age_years", "ecog"]
    assert patient.status == "screening-incomplete"
    assert verdict(patient.eligibility) == "screening incomplete (not assessed: age_years, ecog)"


def test_a_required_field_no_criterion_reads_still_makes_the_screening_incomplete() -> None:
    data = _nct_data()
    data["forms"][0]["fields"].append({"name": "weight_kg", "type": "decimal", "unit": "kg"})
    protocol = protocol_from_dict(data)
    patient = _screened_under(protocol, screening_values(ON))
    assert patient.eligibility is not None
    assert patient.eligibility["not_assessed"] == ["weight_kg"]
    assert patient.eligibility["eligible"] is False


def test_an_optional_field_is_not_assessed_only_when_its_criterion_applies() -> None:
    values = screening_values(ON)
    del values["pregnancy_test"]
    assert _screened(values).status == "screened-eligible"
    values["childbearing_potential"] = True
    eligibility = _screened(values).eligibility
    assert eligibility is not None
    assert (eligibility["eligible"], eligibility["failed"], eligibility["not_assessed"]) == (
        False, [], ["pregnancy_test"])


def test_failed_and_not_assessed_are_both_named() -> None:
    values = {**screening_values(ON), "ecog": 3}
    del values["age_years"]
    patient = _screened(values)
    assert patient.status == "screened-ineligible"
    assert patient.eligibility is not None
    assert verdict(patient.eligibility) == "NOT eligible (failed: ecog; not assessed: age_years)"


def test_a_screening_refused_by_the_form_records_nothing() -> None:
    patient = _screened(screening_values(ON))
    version = patient.version
    with pytest.raises(TrialRuleError, match="screening form: age: unknown field"):
        patient.screen(Screening(values={"age": 50}, screened_on=ON.isoformat()), NCT, NOW)
    assert patient.version == version
    assert patient.screening_values == screening_values(ON)


# -- the loader ----------------------------------------------------------------------------


def test_a_protocol_file_without_a_screening_form_is_refused() -> None:
    text = NCT_PATH.read_text(encoding="utf-8")
    without = text[: text.index("\n[[forms]]\n")]
    with pytest.raises(ProtocolError, match=r"^forms: no 'screening' form"):
        load_protocol(without)


def test_a_protocol_read_back_from_a_ledger_may_predate_forms() -> None:
    data = NCT.to_dict()
    del data["forms"]
    assert protocol_from_dict(data).screening_form is None
    assert protocol_from_dict(NCT.to_dict()) == NCT


def test_a_criterion_reading_an_undeclared_field_is_refused_in_one_line() -> None:
    data = _nct_data()
    fields = data["forms"][0]["fields"]
    data["forms"][0]["fields"] = [f for f in fields if f["name"] != "age_years"]
    with pytest.raises(ProtocolError) as info:
        protocol_from_dict(data)
    message = str(info.value)
    assert "\n" not in message
    assert "'age' reads field 'age_years', which the screening form does not declare" in message


def test_a_criterion_needs_a_field_of_a_type_it_can_read() -> None:
    data = _nct_data()
    for f in data["forms"][0]["fields"]:
        if f["name"] == "active_infection":
            f["type"] = "text"
    with pytest.raises(ProtocolError, match="applies is_false to 'active_infection', a text"):
        protocol_from_dict(data)


def test_a_second_form_is_loaded_and_kept() -> None:
    data = _nct_data()
    data["forms"].append({"name": "vitals", "fields": [
        {"name": "weight_kg", "type": "decimal", "unit": "kg", "min": 1, "max": "400"}]})
    protocol = protocol_from_dict(data)
    assert protocol.form("vitals").field("weight_kg").maximum == Decimal(400)
    assert protocol_from_dict(copy.deepcopy(protocol.to_dict())) == protocol
    with pytest.raises(KeyError, match="declared: screening, vitals"):
        protocol.form("labs")


# -- any form, random values ---------------------------------------------------------------

_field = st.builds(
    FormField,
    name=st.sampled_from(["a", "b_value", "c_date", "d_flag"]),
    type=st.sampled_from(list(FieldType)),
    required=st.booleans(),
)
_any_value = st.one_of(
    st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.sampled_from(["never", "2026-01-01", "3+", "5 mg/dL", "yes"]),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(),
                                                          max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(
    st.one_of(st.sampled_from(FORM.names), st.text(max_size=20)), _any_value, max_size=12))
def test_random_screening_values_are_checked_or_refused_never_a_traceback(
    values: dict[str, Any],
) -> None:
    """Every filled form is either accepted, values typed as their fields declare, or
    refused with a FormError naming one of its fields; the record is never half-written."""
    patient = _screened(screening_values(ON))
    version, before = patient.version, patient.screening_values
    try:
        checked = FORM.check(values, ON)
    except FormError as e:
        assert e.field in values
        assert "\n" not in str(e)
        with pytest.raises(TrialRuleError):
            patient.screen(Screening(values=values, screened_on=ON.isoformat()), NCT, NOW)
        assert patient.version == version and patient.screening_values == before
        return
    assert set(checked) <= set(values)
    for name, value in checked.items():
        kind = FORM.field(name).type
        assert isinstance(value, bool) == (kind is FieldType.BOOLEAN)
        # Checked values pass again unchanged: a correction re-checks what was stored.
        assert FORM.field(name).check("screening", value, ON) == value
    result = _screened(checked).eligibility
    assert result is not None
    assert not (result["eligible"] and result["not_assessed"])
    assert set(result["not_assessed"]) <= set(FORM.names)


@settings(max_examples=100, deadline=None)
@given(st.lists(_field, max_size=4, unique_by=lambda f: f.name),
       st.dictionaries(st.sampled_from(["a", "b_value", "c_date", "d_flag", "zz"]), _any_value))
def test_any_declared_form_checks_any_values_without_a_traceback(
    fields: list[FormField], values: dict[str, Any],
) -> None:
    if not fields:
        return
    form = Form("f", tuple(fields))
    try:
        checked = form.check(values, ON)
    except FormError as e:
        assert e.field in values
        return
    assert set(form.missing_required(checked)) <= {f.name for f in fields if f.required}
