"""Eligibility criteria (domain/eligibility_criteria.py) evaluated one by one (eligibility.py)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trialctl.domain.eligibility import (
    Condition,
    Criterion,
    CriterionKind,
    CriterionStatus,
    Operator,
    ScreeningValue,
    Threshold,
    evaluate_eligibility,
    screening_fields,
)
from trialctl.domain.protocol import Protocol
from trialctl.domain.protocol_file import load_protocol

ROOT = Path(__file__).resolve().parent.parent
AS_OF = date(2005, 3, 1)


def _days_ago(n: int) -> str:
    return (AS_OF - timedelta(days=n)).isoformat()


@pytest.fixture(scope="module")
def nct() -> Protocol:
    return load_protocol((ROOT / "protocols" / "NCT00084513.toml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def second() -> Protocol:
    path = ROOT / "tests" / "data" / "protocols" / "second_protocol.toml"
    return load_protocol(path.read_text(encoding="utf-8"))


def eligible_patient() -> dict[str, ScreeningValue]:
    """A woman of child-bearing potential who meets every NCT00084513 criterion."""
    return {
        "her2_ihc_score": "3+",
        "her2_fish_positive": False,
        "histologic_confirmation": True,
        "recurrent_or_metastatic": True,
        "disease_assessable": "measurable",
        "carcinomatous_meningitis": False,
        "uncontrolled_brain_metastases": False,
        "prior_brain_metastases": False,
        "age_years": 54,
        "ecog": 1,
        "anc_per_mm3": 2300,
        "platelets_per_mm3": "210000",
        "alt_u_l": "35",
        "alt_uln_u_l": "40",
        "ast_u_l": 30,
        "ast_uln_u_l": 40,
        "alkaline_phosphatase_u_l": "150",
        "alkaline_phosphatase_uln_u_l": "120",
        "bilirubin_mg_dl": "0.8",
        "chronic_liver_disease": False,
        "creatinine_mg_dl": "0.9",
        "lvef_percent": 62,
        "lvef_lln_percent": 50,
        "uncontrolled_cardiovascular_disease": False,
        "last_myocardial_infarction_date": "never",
        "ischemic_heart_disease_on_medication": False,
        "congestive_heart_failure": False,
        "uncontrolled_pulmonary_disease": False,
        "pregnant_or_nursing": False,
        "childbearing_potential": True,
        "pregnancy_test": "negative",
        "fertile": True,
        "barrier_contraception_agreed": True,
        "active_infection": False,
        "concurrent_growth_factors": False,
        "concurrent_other_biologics": False,
        "last_chemotherapy_date": _days_ago(40),
        "last_nitrosourea_date": "never",
        "concurrent_chemotherapy": False,
        "recovered_from_prior_therapy": True,
        "last_radiotherapy_date": _days_ago(90),
        "last_major_surgery_date": "never",
        "last_antibiotic_date": _days_ago(30),
        "concurrent_parenteral_antibiotics": False,
        "concurrent_other_anticancer_agents": False,
        "concurrent_investigational_drugs": False,
        "therapeutic_warfarin": False,
    }


def _evaluate(protocol: Protocol, **changes: ScreeningValue) -> tuple[str, ...]:
    values = eligible_patient()
    values.update(changes)
    return evaluate_eligibility(protocol.eligibility, values, AS_OF).failed_codes


# ------------------------------------------------------------------ NCT00084513


def test_fully_eligible_patient(nct: Protocol) -> None:
    result = evaluate_eligibility(nct.eligibility, eligible_patient(), AS_OF)
    assert result.eligible is True
    assert result.failures == ()
    assert result.failed_codes == ()
    assert result.as_of == AS_OF
    assert [r.code for r in result.results] == [c.code for c in nct.eligibility]
    statuses = {r.code: r.status for r in result.results}
    # brain-metastasis follow-ups do not apply: no prior brain metastases
    assert statuses["brain_metastases_washout"] is CriterionStatus.NOT_APPLICABLE
    assert statuses["brain_metastases_steroids"] is CriterionStatus.NOT_APPLICABLE
    assert statuses["pregnancy_test"] is CriterionStatus.PASSED
    assert all(r.reason for r in result.results)
    anc = result.result("anc")
    assert anc.value == 2300
    assert anc.text == "Absolute neutrophil count >= 1,500/mm^3"
    assert "2300" in anc.reason and "1500" in anc.reason


def test_every_screening_field_of_the_fixture_is_read(nct: Protocol) -> None:
    assert set(eligible_patient()) <= set(screening_fields(nct.eligibility))


@pytest.mark.parametrize(
    ("changes", "failed"),
    [
        pytest.param({"anc_per_mm3": 1499}, ("anc",), id="anc_just_below"),
        pytest.param({"anc_per_mm3": 1500}, (), id="anc_at_limit"),
        pytest.param({"platelets_per_mm3": 99999}, ("platelets",), id="platelets_low"),
        pytest.param({"platelets_per_mm3": "100000"}, (), id="platelets_at_limit"),
        pytest.param({"alt_u_l": "80"}, (), id="alt_exactly_2x_uln"),
        pytest.param({"alt_u_l": "80.1"}, ("alt",), id="alt_over_2x_uln"),
        pytest.param({"ast_u_l": 81}, ("ast",), id="ast_over_2x_uln"),
        pytest.param({"alkaline_phosphatase_u_l": 241}, ("alkaline_phosphatase",), id="alp"),
        pytest.param({"bilirubin_mg_dl": "1.3"}, (), id="bilirubin_at_limit"),
        pytest.param({"bilirubin_mg_dl": "1.31"}, ("bilirubin",), id="bilirubin_high"),
        pytest.param({"creatinine_mg_dl": "2.0"}, (), id="creatinine_at_limit"),
        pytest.param({"creatinine_mg_dl": "2.1"}, ("creatinine",), id="creatinine_high"),
        pytest.param({"ecog": 2}, (), id="ecog_2"),
        pytest.param({"ecog": "0"}, (), id="ecog_0_as_text"),
        pytest.param({"ecog": 3}, ("ecog",), id="ecog_3"),
        pytest.param({"age_years": 17}, ("age",), id="age_17"),
        pytest.param({"age_years": 18}, (), id="age_18"),
        pytest.param({"lvef_percent": 49}, ("lvef",), id="lvef_below_lln"),
        pytest.param({"lvef_percent": "50"}, (), id="lvef_at_lln"),
        pytest.param({"her2_ihc_score": "2+"}, ("her2",), id="her2_ihc_2plus_fish_negative"),
        pytest.param(
            {"her2_ihc_score": "2+", "her2_fish_positive": True}, (), id="her2_fish_positive"
        ),
        pytest.param({"disease_assessable": "none"}, ("measurable_disease",), id="no_disease"),
        pytest.param({"disease_assessable": "evaluable"}, (), id="evaluable_disease"),
        pytest.param({"carcinomatous_meningitis": True}, ("meningitis",), id="meningitis"),
        pytest.param({"active_infection": "yes"}, ("infection",), id="infection_yes"),
        pytest.param({"active_infection": "No"}, (), id="infection_no_as_text"),
        pytest.param({"pregnant_or_nursing": True}, ("pregnancy",), id="nursing"),
        pytest.param({"pregnancy_test": "positive"}, ("pregnancy_test",), id="positive_test"),
        pytest.param({"barrier_contraception_agreed": False}, ("contraception",), id="no_barrier"),
        pytest.param({"therapeutic_warfarin": True}, ("warfarin",), id="warfarin"),
        # wash-outs
        pytest.param(
            {"last_chemotherapy_date": _days_ago(27)}, ("chemotherapy_washout",), id="chemo_27_days"
        ),
        pytest.param({"last_chemotherapy_date": _days_ago(28)}, (), id="chemo_28_days"),
        pytest.param(
            {"last_nitrosourea_date": _days_ago(41)},
            ("nitrosourea_washout",),
            id="nitrosourea_41_days",
        ),
        pytest.param({"last_nitrosourea_date": _days_ago(42)}, (), id="nitrosourea_42_days"),
        pytest.param(
            {"last_radiotherapy_date": _days_ago(27)},
            ("radiotherapy_washout",),
            id="radiotherapy_27_days",
        ),
        pytest.param(
            {"last_major_surgery_date": _days_ago(14)},
            ("surgery_washout",),
            id="surgery_exactly_2_weeks",
        ),
        pytest.param({"last_major_surgery_date": _days_ago(15)}, (), id="surgery_15_days"),
        pytest.param(
            {"last_antibiotic_date": _days_ago(6)},
            ("antibiotics_washout",),
            id="antibiotics_6_days",
        ),
        pytest.param(
            {"last_antibiotic_date": AS_OF - timedelta(days=7)}, (), id="antibiotics_7_days_as_date"
        ),
        pytest.param(
            {"last_myocardial_infarction_date": _days_ago(100)},
            ("myocardial_infarction",),
            id="recent_mi",
        ),
        pytest.param({"last_myocardial_infarction_date": _days_ago(400)}, (), id="old_mi"),
        # prior brain metastases: allowed after 8 weeks and without progression off steroids
        pytest.param(
            {
                "prior_brain_metastases": True,
                "last_brain_metastasis_therapy_date": _days_ago(60),
                "brain_symptomatic_progression_off_steroids": False,
            },
            (),
            id="controlled_brain_mets",
        ),
        pytest.param(
            {
                "prior_brain_metastases": True,
                "last_brain_metastasis_therapy_date": _days_ago(50),
                "brain_symptomatic_progression_off_steroids": True,
            },
            ("brain_metastases_washout", "brain_metastases_steroids"),
            id="recent_brain_mets",
        ),
    ],
)
def test_single_criteria(
    nct: Protocol, changes: dict[str, ScreeningValue], failed: tuple[str, ...]
) -> None:
    assert _evaluate(nct, **changes) == failed


def test_several_failures_are_each_named(nct: Protocol) -> None:
    values = eligible_patient()
    values.update(
        anc_per_mm3=900,
        bilirubin_mg_dl="2.4",
        ecog=3,
        last_chemotherapy_date=_days_ago(10),
        active_infection=True,
    )
    result = evaluate_eligibility(nct.eligibility, values, AS_OF)
    assert result.eligible is False
    # in protocol order, every one named, none hidden behind the first
    assert result.failed_codes == ("ecog", "anc", "bilirubin", "infection", "chemotherapy_washout")
    for r in result.failures:
        assert r.status is CriterionStatus.FAILED
        assert r.text and r.reason and r.requirement
    assert "900" in result.result("anc").reason
    assert "only 10 days" in result.result("chemotherapy_washout").reason


def test_pregnancy_test_not_applicable_without_childbearing_potential(nct: Protocol) -> None:
    values = eligible_patient()
    values.update(childbearing_potential=False, fertile=False)
    del values["pregnancy_test"]
    del values["barrier_contraception_agreed"]
    result = evaluate_eligibility(nct.eligibility, values, AS_OF)
    assert result.eligible is True
    test = result.result("pregnancy_test")
    assert test.status is CriterionStatus.NOT_APPLICABLE
    assert test.satisfied
    assert test.reason.startswith("not applicable")
    assert "childbearing_potential" in test.reason
    assert result.result("contraception").status is CriterionStatus.NOT_APPLICABLE


def test_pregnancy_test_required_for_childbearing_potential(nct: Protocol) -> None:
    values = eligible_patient()
    del values["pregnancy_test"]
    result = evaluate_eligibility(nct.eligibility, values, AS_OF)
    assert result.eligible is False
    assert result.failed_codes == ()
    assert result.not_assessed_codes == ("pregnancy_test",)
    assert result.result("pregnancy_test").status is CriterionStatus.MISSING


def test_unknown_applicability_is_missing(nct: Protocol) -> None:
    values = eligible_patient()
    del values["childbearing_potential"]
    result = evaluate_eligibility(nct.eligibility, values, AS_OF)
    r = result.result("pregnancy_test")
    assert r.status is CriterionStatus.MISSING
    assert r.reason.startswith("missing")
    assert "childbearing_potential" in r.reason
    assert result.eligible is False


@pytest.mark.parametrize("how", ["absent", "none", "blank"])
def test_missing_value_is_not_assessed_never_failed(nct: Protocol, how: str) -> None:
    values = eligible_patient()
    if how == "absent":
        del values["anc_per_mm3"]
    elif how == "none":
        values["anc_per_mm3"] = None
    else:
        values["anc_per_mm3"] = "  "
    result = evaluate_eligibility(nct.eligibility, values, AS_OF)
    assert result.eligible is False
    assert result.failed_codes == ()
    assert result.not_assessed_codes == ("anc",)
    assert not result.complete
    anc = result.result("anc")
    assert anc.status is CriterionStatus.MISSING
    assert not anc.satisfied
    assert anc.reason.startswith("missing")
    assert anc.value is None
    assert result.missing_fields == ("anc_per_mm3",)


def test_missing_reference_value_is_missing(nct: Protocol) -> None:
    values = eligible_patient()
    del values["alt_uln_u_l"]
    del values["lvef_lln_percent"]
    result = evaluate_eligibility(nct.eligibility, values, AS_OF)
    assert result.failed_codes == ()
    assert result.not_assessed_codes == ("alt", "lvef")
    assert result.missing_fields == ("alt_uln_u_l", "lvef_lln_percent")
    assert result.result("alt").status is CriterionStatus.MISSING
    assert "alt_uln_u_l" in result.result("alt").reason
    assert "lvef_lln_percent" in result.result("lvef").reason


def test_no_values_at_all_names_every_criterion(nct: Protocol) -> None:
    result = evaluate_eligibility(nct.eligibility, {}, AS_OF)
    assert result.eligible is False
    assert result.failed_codes == ()
    assert result.not_assessed_codes == tuple(c.code for c in nct.eligibility)
    assert all(r.status is CriterionStatus.MISSING for r in result.results)


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        pytest.param("anc_per_mm3", "lots", "anc", id="text_for_number"),
        pytest.param("anc_per_mm3", 1500.0, "anc", id="float_refused"),
        pytest.param("anc_per_mm3", True, "anc", id="boolean_for_number"),
        pytest.param("anc_per_mm3", Decimal("NaN"), "anc", id="nan"),
        pytest.param("active_infection", "maybe", "infection", id="text_for_boolean"),
        pytest.param("active_infection", 0, "infection", id="int_for_boolean"),
        pytest.param(
            "last_chemotherapy_date", "last spring", "chemotherapy_washout", id="not_a_date"
        ),
        pytest.param(
            "last_chemotherapy_date", "2005-03-02", "chemotherapy_washout", id="date_in_future"
        ),
        pytest.param("ecog", True, "ecog", id="boolean_for_category"),
    ],
)
def test_invalid_values_fail_with_a_reason(
    nct: Protocol, field: str, value: object, code: str
) -> None:
    values = eligible_patient()
    values[field] = value  # type: ignore[assignment]
    result = evaluate_eligibility(nct.eligibility, values, AS_OF)
    assert result.failed_codes == (code,)
    r = result.result(code)
    assert r.status is CriterionStatus.FAILED
    assert r.reason.startswith("invalid")


def test_result_to_dict_is_json(nct: Protocol) -> None:
    values = eligible_patient()
    values.update(anc_per_mm3=Decimal("900"), last_antibiotic_date=AS_OF)
    data = evaluate_eligibility(nct.eligibility, values, AS_OF).to_dict()
    text = json.dumps(data)
    assert '"eligible": false' in text
    assert data["failed"] == ["anc", "antibiotics_washout"]


def test_result_lookup_unknown_code(nct: Protocol) -> None:
    result = evaluate_eligibility(nct.eligibility, eligible_patient(), AS_OF)
    with pytest.raises(KeyError):
        result.result("nope")


# ------------------------------------------------------------------ second protocol


def test_second_protocol_other_limits(second: Protocol) -> None:
    base: dict[str, ScreeningValue] = {
        "age_years": 40,
        "ecog": 1,
        "anc_10e9_l": "1.0",
        "platelets_10e9_l": 75,
        "haemoglobin_g_dl": "9.0",
        "bilirubin_umol_l": "31.5",  # exactly 1.5 x the fixed ULN of 21
        "alt_u_l": 120,  # exactly 3 x the fixed ULN of 40
        "creatinine_clearance_ml_min": 60,
        "qtcf_ms": 470,
        "childbearing_potential": False,
        "last_anticancer_therapy_date": _days_ago(21),
        "symptomatic_brain_metastases": False,
    }
    result = evaluate_eligibility(second.eligibility, base, AS_OF)
    assert result.eligible, result.failed_codes
    worse = dict(base, ecog=2, alt_u_l=121, bilirubin_umol_l="31.6", qtcf_ms=471)
    assert evaluate_eligibility(second.eligibility, worse, AS_OF).failed_codes == (
        "ecog",
        "bilirubin",
        "alt",
        "qtc",
    )


# ------------------------------------------------------------------ hand-built criteria


def _crit(op: Operator, threshold: Threshold = None, **kw: object) -> Criterion:
    return Criterion(
        code="c",
        text="c",
        kind=CriterionKind.INCLUSION,
        field="x",
        op=op,
        threshold=threshold,
        **kw,  # type: ignore[arg-type]
    )


def test_equality_is_numeric_for_numbers_and_textual_otherwise() -> None:
    eq_num = _crit(Operator.EQ, "2")
    assert evaluate_eligibility([eq_num], {"x": "2.0"}, AS_OF).eligible
    assert evaluate_eligibility([eq_num], {"x": 2}, AS_OF).eligible
    assert not evaluate_eligibility([eq_num], {"x": "3"}, AS_OF).eligible
    eq_text = _crit(Operator.EQ, "negative")
    assert evaluate_eligibility([eq_text], {"x": " negative "}, AS_OF).eligible
    assert not evaluate_eligibility([eq_text], {"x": "Negative!"}, AS_OF).eligible


def test_fixed_uln_and_condition_on_number() -> None:
    crit = _crit(
        Operator.X_ULN_AT_MOST,
        Decimal("2.5"),
        uln=Decimal(40),
        applies_if=Condition("liver_mets", Operator.IS_FALSE),
    )
    assert evaluate_eligibility([crit], {"x": 100, "liver_mets": False}, AS_OF).eligible
    assert not evaluate_eligibility([crit], {"x": 101, "liver_mets": False}, AS_OF).eligible
    r = evaluate_eligibility([crit], {"x": 500, "liver_mets": True}, AS_OF).results[0]
    assert r.status is CriterionStatus.NOT_APPLICABLE


def test_condition_rejects_non_condition_operator() -> None:
    with pytest.raises(ValueError):
        Condition("x", Operator.DAYS_SINCE_AT_LEAST, 3)


def test_describe_and_to_dict_of_criteria(nct: Protocol) -> None:
    by_code = {c.code: c for c in nct.eligibility}
    assert by_code["anc"].describe() == "anc_per_mm3 >= 1500 /mm^3"
    assert "x ULN (alt_uln_u_l)" in by_code["alt"].describe()
    assert "[if childbearing_potential is true]" in by_code["pregnancy_test"].describe()
    for c in nct.eligibility:
        json.dumps(c.to_dict())


_numbers = st.decimals(min_value=0, max_value=10**6, places=2)


@given(value=_numbers, threshold=_numbers)
def test_ge_and_le_agree_with_decimal_comparison(value: Decimal, threshold: Decimal) -> None:
    ge = Criterion("ge", "ge", CriterionKind.INCLUSION, "x", Operator.GE, threshold, unit="u")
    le = Criterion("le", "le", CriterionKind.INCLUSION, "x", Operator.LE, threshold, unit="u")
    result = evaluate_eligibility([ge, le], {"x": str(value)}, AS_OF)
    assert result.result("ge").satisfied == (value >= threshold)
    assert result.result("le").satisfied == (value <= threshold)
    assert result.eligible == (value == threshold)


@given(days=st.integers(min_value=0, max_value=400), need=st.integers(min_value=1, max_value=200))
def test_days_since_agrees_with_calendar(days: int, need: int) -> None:
    crit = _crit(Operator.DAYS_SINCE_AT_LEAST, need)
    result = evaluate_eligibility([crit], {"x": _days_ago(days)}, AS_OF)
    assert result.eligible == (days >= need)


_NCT = load_protocol((ROOT / "protocols" / "NCT00084513.toml").read_text("utf-8"))

_any_value = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**9), max_value=10**9),
    st.text(max_size=12),
    st.dates(),
    st.decimals(allow_nan=True, allow_infinity=True),
)


@given(st.data())
def test_any_screening_values_give_a_verdict_never_an_exception(data: st.DataObject) -> None:
    protocol = _NCT
    fields = screening_fields(protocol.eligibility)
    values = {f: data.draw(_any_value, label=f) for f in fields}
    result = evaluate_eligibility(protocol.eligibility, values, AS_OF)
    assert len(result.results) == len(protocol.eligibility)
    assert result.eligible == all(r.satisfied for r in result.results)
    assert set(result.failed_codes) == {
        r.code
        for r in result.results
        if r.status is CriterionStatus.FAILED
    }
    assert result.complete == all(r.status is not CriterionStatus.MISSING for r in result.results)
    assert all(r.reason for r in result.results)
