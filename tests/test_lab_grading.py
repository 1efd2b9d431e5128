"""CTCAE v3.0 lab grading (domain/lab_grading.py over protocols/ctcae_v3_labs.toml): every
lab at every grade boundary, every unit conversion, refused units, the limit of normal from
the lab or from screening, and the duration of a graded run for DLT rules.

The expected thresholds below are written out from CTCAE v3.0 independently of the TOML
table, so a mistyped threshold in the table fails here."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.trial_helpers import NOW, day, enrolled_patient, nct_protocol, roster
from trialctl.domain import journey
from trialctl.domain.facts import Correction, Lab
from trialctl.domain.lab_grading import (
    LabGrading,
    ctcae_v3_labs,
    grade_duration_days,
    grade_value,
    lab_grading,
    parse_lab_table,
    patient_limit,
)
from trialctl.domain.rules import TrialRuleError
from trialctl.domain.trial import Trial

# CTCAE v3.0, Blood/Bone Marrow: grade 1 below LLN, grades 2-4 below these values.
BELOW = {
    "anc": ("/mm3", "2000", ("1500", "1000", "500")),
    "platelets": ("/mm3", "150000", ("75000", "50000", "25000")),
    "haemoglobin": ("g/dL", "12.0", ("10.0", "8.0", "6.5")),
}
# CTCAE v3.0, Metabolic/Laboratory: grades 1-4 above these multiples of ULN.
ABOVE = {
    "alt": ("U/L", "40", ("1", "2.5", "5.0", "20.0")),
    "ast": ("U/L", "40", ("1", "2.5", "5.0", "20.0")),
    "alp": ("U/L", "120", ("1", "2.5", "5.0", "20.0")),
    "bilirubin": ("mg/dL", "1.2", ("1", "1.5", "3.0", "10.0")),
    "creatinine": ("mg/dL", "1.1", ("1", "1.5", "3.0", "6.0")),
}
STEP = Decimal("0.01")


def below_cases() -> list[Any]:
    cases = []
    for test, (unit, lln, limits) in BELOW.items():
        edges = [Decimal(lln), *map(Decimal, limits)]
        for grade, edge in enumerate(edges, start=1):
            cases.append(pytest.param(test, unit, lln, edge, grade - 1, id=f"{test}-{edge}"))
            cases.append(pytest.param(test, unit, lln, edge - STEP, grade,
                                      id=f"{test}-below-{edge}"))
    return cases


def above_cases() -> list[Any]:
    cases = []
    for test, (unit, uln, multiples) in ABOVE.items():
        for grade, multiple in enumerate(multiples, start=1):
            edge = Decimal(multiple) * Decimal(uln)
            cases.append(pytest.param(test, unit, uln, edge, grade - 1,
                                      id=f"{test}-{multiple}xULN"))
            cases.append(pytest.param(test, unit, uln, edge + STEP, grade,
                                      id=f"{test}-above-{multiple}xULN"))
    return cases


@pytest.mark.parametrize(("test", "unit", "lln", "value", "grade"), below_cases())
def test_below_normal_labs_grade_at_each_ctcae_boundary(
    test: str, unit: str, lln: str, value: Decimal, grade: int
) -> None:
    graded = grade_value(lab_grading(test), value, unit, Decimal(lln))
    assert graded.grade == grade, graded.grading


@pytest.mark.parametrize(("test", "unit", "uln", "value", "grade"), above_cases())
def test_uln_relative_labs_grade_at_each_ctcae_boundary(
    test: str, unit: str, uln: str, value: Decimal, grade: int
) -> None:
    graded = grade_value(lab_grading(test), value, unit, Decimal(uln))
    assert graded.grade == grade, graded.grading


def test_the_table_holds_the_eight_labs_each_with_its_ctcae_source() -> None:
    labs = ctcae_v3_labs()
    assert set(labs) == set(BELOW) | set(ABOVE)
    for code, lab in labs.items():
        expected = "Blood/Bone Marrow" if code in BELOW else "Metabolic/Laboratory"
        assert lab.source == f"CTCAE v3.0, {expected}: {lab.term}" and lab.term
    assert labs["anc"].term == "Neutrophils/granulocytes (ANC/AGC)"


@pytest.mark.parametrize(("test", "value", "unit", "canonical"), [
    ("anc", "800", "/mm3", "800"),
    ("anc", "800", "cells/uL", "800"),
    ("anc", "800", "cells/µL", "800"),  # the micro sign
    ("anc", "800", "cells/μL", "800"),  # the Greek mu
    ("anc", "800", "10^6/L", "800"),
    ("anc", "0.8", "10^9/L", "800"),
    ("anc", "0.8", "10^3/uL", "800"),
    ("platelets", "24", "10^9/L", "24000"),
    ("platelets", "24000", "/mm3", "24000"),
    ("haemoglobin", "95", "g/L", "9.5"),
    ("haemoglobin", "5", "mmol/L", "8.055"),
    ("alt", "120", "IU/L", "120"),
    ("ast", "120", "iu/l", "120"),
    ("alp", "120", "U/L", "120"),
    ("bilirubin", "34.2", "umol/L", "2"),
    ("creatinine", "176.8", "µmol/L", "2"),
], ids=lambda v: str(v))
def test_each_defined_conversion_reaches_the_canonical_unit(
    test: str, value: str, unit: str, canonical: str
) -> None:
    lab = lab_grading(test)
    assert lab.to_canonical(Decimal(value), unit) == Fraction(Decimal(canonical))


def test_a_converted_value_grades_on_the_canonical_boundary() -> None:
    anc = lab_grading("anc")
    assert grade_value(anc, Decimal("1.0"), "10^9/L", None).grade == 2  # 1000 is not < 1000
    assert grade_value(anc, Decimal("0.999"), "10^9/L", None).grade == 3
    bilirubin = lab_grading("bilirubin")
    # ULN 1.0 mg/dL = 17.1 umol/L; 3.0 x ULN = 51.3 umol/L is still grade 2.
    assert grade_value(bilirubin, Decimal("51.3"), "umol/L", Decimal("17.1")).grade == 2
    assert grade_value(bilirubin, Decimal("51.4"), "umol/L", Decimal("17.1")).grade == 3


@pytest.mark.parametrize(("test", "unit", "allowed"), [
    ("anc", "g/dL", "/mm3, cells/uL, 10^6/L, 10^9/L, 10^3/uL"),
    ("haemoglobin", "mg/dL", "g/dL, g/L, mmol/L"),
    ("alt", "ukat/L", "U/L, IU/L"),
    ("creatinine", "mmol/L", "mg/dL, umol/L"),
])
def test_a_unit_without_a_defined_conversion_is_refused_naming_the_allowed(
    test: str, unit: str, allowed: str
) -> None:
    with pytest.raises(TrialRuleError) as refused:
        lab_grading(test).conversion(unit)
    assert refused.value.rule == "lab-unit"
    assert f"({allowed})" in str(refused.value)


def test_an_unknown_test_is_refused() -> None:
    with pytest.raises(TrialRuleError, match=r"'sodium' is not graded \(anc, platelets"):
        lab_grading("sodium")


def test_without_a_limit_of_normal_the_value_is_not_gradable_never_guessed() -> None:
    alt = lab_grading("alt")
    assert grade_value(alt, Decimal("900"), "U/L", None).grading == "not gradable: no ULN"
    anc = lab_grading("anc")
    assert grade_value(anc, Decimal("1600"), "/mm3", None).grade is None
    assert grade_value(anc, Decimal("1400"), "/mm3", None).grade == 2  # needs no LLN


def test_the_limit_comes_from_the_lab_else_from_screening() -> None:
    alt = lab_grading("alt")
    screening = {"alt_uln_u_l": 40}
    assert patient_limit(alt, "50", "U/L", screening) == (
        Fraction(50), "ULN as recorded with the lab")
    assert patient_limit(alt, None, "U/L", screening) == (
        Fraction(40), "ULN from screening alt_uln_u_l")
    assert patient_limit(alt, None, "U/L", {}) == (None, "")
    bilirubin = lab_grading("bilirubin")
    # Screening holds the limit in the canonical unit; it is converted to the lab's unit.
    limit, _ = patient_limit(bilirubin, None, "umol/L", {"bilirubin_uln_mg_dl": "1.0"})
    assert limit == Fraction("17.1")


def test_a_recorded_lab_reads_the_patients_screening_uln_and_a_correction_regrades() -> None:
    trial = Trial.register(nct_protocol(), NOW)
    patient = enrolled_patient(trial, "P001")  # screening: ALT ULN 40 U/L
    summary = journey.take(trial, patient, Lab(
        test="alt", value="110", unit="U/L", collected_on=day(10), course=1, day=8,
        uln=None, lln=None), roster(trial), NOW)
    assert summary["grade"] == 2
    (recorded,) = patient.labs()
    journey.take(trial, patient, Correction(
        target_version=recorded["version"], changes={"value": "90"}, reason="re-run"),
        roster(trial), NOW)
    (corrected,) = patient.labs()
    assert (corrected["value"], corrected["grade"]) == ("90", 1)
    assert patient.corrections[-1]["old_values"]["grade"] == 2
    journey.take(trial, patient, Correction(
        target_version=recorded["version"], changes={"uln": "30"}, reason="site range"),
        roster(trial), NOW)
    assert patient.labs()[0]["grade"] == 2  # 90 > 2.5 x 30


@pytest.mark.parametrize("text", [
    'labs.x = {name="x", category="c", term="t", direction="below", unit="a",'
    ' thresholds=["LLN", 3.0, "2", "1"], units=[{unit="a", multiply="1"}]}',
    'labs.x = {name="x", category="c", term="t", direction="below", unit="a",'
    ' thresholds=["LLN", "1", "2", "3"], units=[{unit="a", multiply="1"}]}',
    'labs.x = {name="x", category="c", term="t", direction="above", unit="a",'
    ' thresholds=["1", "2", "3", "4"], units=[{unit="b", multiply="1"}]}',
    'labs.x = {name="x", category="c", term="t", direction="above", unit="a",'
    ' thresholds=["1", "2", "3", "4"], units=[{unit="a", multiply="1", divide="2"}]}',
], ids=["float-threshold", "thresholds-toward-normal", "no-canonical-unit", "two-factors"])
def test_a_malformed_grading_table_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"labs\.x"):
        parse_lab_table(text)


# -- the duration of a graded run (grade 4 neutropenia lasting more than 5 days) ----------

START = date(2026, 1, 5)


def series(*samples: tuple[int, int | None], test: str = "anc") -> list[dict[str, Any]]:
    return [
        {"version": index + 4, "test": test, "grade": grade,
         "collected_on": (START + timedelta(days=offset)).isoformat()}
        for index, (offset, grade) in enumerate(samples)
    ]


END = START + timedelta(days=20)


@pytest.mark.parametrize(("samples", "days"), [
    (((8, 3), (10, 4), (16, 3)), 6),  # recovered on day 6 after the first grade 4 sample
    (((8, 3), (10, 4), (15, 3)), 5),
    (((10, 4), (12, 4), (16, 2)), 6),  # consecutive grade 4 samples are one run
    (((10, 4), (12, 1), (14, 4), (17, 1)), 3),  # two runs: the longer counts
    (((10, 4), (13, None), (16, 2)), 6),  # an ungraded sample neither extends nor ends it
    (((16, 4),), 4),  # still grade 4 at the end of the window
    (((8, 3), (12, 2)), None),  # never reached
    (((-2, 4), (1, 2)), None),  # before the window
], ids=["6-days", "5-days", "run", "longest-run", "ungraded", "open-run", "never", "outside"])
def test_grade_duration_days_measures_from_the_first_sample_to_recovery(
    samples: tuple[tuple[int, int | None], ...], days: int | None
) -> None:
    assert grade_duration_days(series(*samples), "anc", 4, START, END) == days


def test_grade_duration_reads_only_its_own_test() -> None:
    labs = series((10, 4), (16, 1)) + series((11, 4), test="platelets")
    assert grade_duration_days(labs, "anc", 4, START, END) == 6
    assert grade_duration_days(labs, "platelets", 4, START, END) == 9


# -- one grade whatever the unit ------------------------------------------------------------

CANONICAL = st.decimals(min_value=Decimal("0"), max_value=Decimal("500000"), places=3)


@given(test=st.sampled_from(sorted(BELOW) + sorted(ABOVE)), value=CANONICAL,
       limit=st.decimals(min_value=Decimal("0.001"), max_value=Decimal("200000"), places=3))
def test_a_value_grades_the_same_in_its_canonical_unit_and_every_converted_one(
    test: str, value: Decimal, limit: Decimal
) -> None:
    lab = lab_grading(test)
    expected = grade_value(lab, value, lab.unit, limit).grade
    for conversion in lab.units:
        converted = Fraction(value) / conversion.factor
        converted_limit = Fraction(limit) / conversion.factor
        assert grade_value(lab, converted, conversion.unit, converted_limit).grade == expected


@given(value=st.decimals(min_value=Decimal("0"), max_value=Decimal("20"), places=3))
def test_anc_typed_in_10e9_per_litre_grades_as_the_same_count_per_mm3(value: Decimal) -> None:
    anc = lab_grading("anc")
    assert (grade_value(anc, value, "10^9/L", Decimal("2")).grade
            == grade_value(anc, value * 1000, "/mm3", Decimal("2000")).grade)


# -- the integer arithmetic grades as the Fraction definition does --------------------------


def _fraction_show(value: Fraction) -> str:
    decimal = Decimal(value.numerator) / Decimal(value.denominator)
    if Fraction(decimal) != value:
        decimal = decimal.quantize(Decimal("0.0001"))
    return format(decimal.normalize(), "f")


def _fraction_grade(
    lab: LabGrading, value: Decimal | Fraction, unit: str, limit: Decimal | Fraction | None,
    source: str,
) -> tuple[int | None, Fraction, str]:
    """The grading as first written, in `Fraction` arithmetic: the definition the faster
    integer form must match, boundary for boundary and text for text."""
    factor = lab.conversion(unit).factor
    canonical = Fraction(value) * factor
    normal = None if limit is None else Fraction(limit) * factor
    shown = f"{_fraction_show(canonical)} {lab.unit}"
    why = f" ({source})" if source else ""
    if lab.direction == "below":
        for grade in (4, 3, 2, 1):
            threshold = lab.thresholds[grade - 1]
            if threshold is None:
                if normal is None:
                    return None, canonical, f"not gradable: no LLN ({shown} is not below grade 2)"
                if canonical < normal:
                    return grade, canonical, (
                        f"grade {grade}: {shown} < LLN {_fraction_show(normal)} {lab.unit}{why}")
            elif canonical < threshold:
                return grade, canonical, (
                    f"grade {grade}: {shown} < {_fraction_show(threshold)} {lab.unit}")
        assert normal is not None
        return 0, canonical, f"grade 0: {shown} >= LLN {_fraction_show(normal)} {lab.unit}{why}"
    if normal is None:
        return None, canonical, "not gradable: no ULN"
    for grade in (4, 3, 2, 1):
        multiple = lab.thresholds[grade - 1]
        assert multiple is not None
        if canonical > multiple * normal:
            return grade, canonical, (
                f"grade {grade}: {shown} > {_fraction_show(multiple)} x ULN "
                f"{_fraction_show(normal)} {lab.unit}{why}")
    return 0, canonical, f"grade 0: {shown} <= ULN {_fraction_show(normal)} {lab.unit}{why}"


LABS = sorted(ctcae_v3_labs())
# How far from a boundary: none, one unit in the last place of a few decimal places, or more.
NUDGES = st.sampled_from([Fraction(0)] + [
    sign * Fraction(1, 10**places) for sign in (1, -1) for places in (0, 1, 2, 3, 4, 6, 9)
])


@st.composite
def near_a_boundary(draw: st.DrawFn) -> tuple[LabGrading, str, Decimal | Fraction,
                                               Decimal | Fraction | None]:
    """A lab, one of its units, a value at or just either side of one of its grade
    boundaries in that unit (as an exact fraction or as decimal text a site would type),
    and a limit of normal in that unit (or none)."""
    lab = lab_grading(draw(st.sampled_from(LABS)))
    conversion = draw(st.sampled_from(lab.units))
    limit_canonical = draw(st.one_of(
        st.none(),
        st.decimals(min_value=Decimal("0.001"), max_value=Decimal("200000"), places=3)
        .map(Fraction),
    ))
    if lab.direction == "below":
        boundaries = [t for t in lab.thresholds if t is not None]
        if limit_canonical is not None:
            boundaries.append(limit_canonical)
    else:
        uln = limit_canonical if limit_canonical is not None else Fraction(1)
        boundaries = [t * uln for t in lab.thresholds if t is not None]
    boundary = draw(st.sampled_from(boundaries)) / conversion.factor
    value = max(Fraction(0), boundary + draw(NUDGES))
    limit = None if limit_canonical is None else limit_canonical / conversion.factor
    if draw(st.booleans()):  # as a site types it: decimal text, rounded near the boundary
        places = draw(st.integers(min_value=0, max_value=9))
        value = Decimal(value.numerator) / Decimal(value.denominator)
        value = value.quantize(Decimal(1).scaleb(-places))
        if limit is not None:
            limit = (Decimal(limit.numerator) / Decimal(limit.denominator)).quantize(
                Decimal("0.001"))
    return lab, conversion.unit, value, limit


@given(case=near_a_boundary(), source=st.sampled_from(["", "ULN as recorded with the lab"]))
def test_grading_equals_the_fraction_definition_at_and_around_every_boundary(
    case: tuple[LabGrading, str, Decimal | Fraction, Decimal | Fraction | None], source: str
) -> None:
    lab, unit, value, limit = case
    graded = grade_value(lab, value, unit, limit, source)
    grade, canonical, grading = _fraction_grade(lab, value, unit, limit, source)
    assert (graded.grade, graded.canonical_value, graded.grading) == (grade, canonical, grading)
    assert graded.canonical_text == _fraction_show(canonical)
    assert lab.to_canonical(value, unit) == canonical
