"""CTCAE v3.0 grading of laboratory values, from thresholds held as data
(protocols/ctcae_v3_labs.toml, where each threshold's CTCAE term and category is stated).

A value is converted to its lab's canonical unit (only by a conversion the table defines)
and graded there with exact rational arithmetic: a boundary such as "<1000/mm3" must grade
the same whether the site reported 1000 /mm3 or 1.0 10^9/L. The arithmetic is on integer
numerator and denominator pairs (what `Fraction` holds, without its per-operation cost: a
rebuild grades every lab of every patient), compared by cross-multiplying. Below-normal
grade 1 needs the patient's lower limit of normal, and ULN-relative grades the upper limit:
without it the value is "not gradable", never guessed.

`grade_duration_days` reads a series of graded samples for duration-based DLT rules
("grade 4 neutropenia lasting more than 5 days").
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from functools import cache, cached_property
from importlib import resources
from math import gcd
from typing import Any

from trialctl.domain.rules import TrialRuleError, parse_day

GRADING_TABLE = "ctcae_v3_labs.toml"
LIMIT = "LLN"  # the one non-numeric threshold: the patient's lower limit of normal


@dataclass(frozen=True)
class UnitConversion:
    unit: str
    factor: Fraction  # canonical value = value x factor


@dataclass(frozen=True)
class LabGrading:
    """One lab's CTCAE v3.0 grading: its canonical unit, the units converted to it, and the
    grade 1-4 thresholds (values below them, or multiples of ULN above them)."""

    code: str
    name: str
    category: str
    term: str
    direction: str  # "below" or "above"
    unit: str
    thresholds: tuple[Fraction | None, ...]  # grade 1..4; None = the patient's LLN
    units: tuple[UnitConversion, ...]
    screening_uln: str | None = None
    screening_lln: str | None = None

    @property
    def source(self) -> str:
        return f"CTCAE v3.0, {self.category}: {self.term}"

    @property
    def limit_name(self) -> str:
        return "LLN" if self.direction == "below" else "ULN"

    def conversion(self, unit: str) -> UnitConversion:
        wanted = _unit_key(unit)
        for conversion in self.units:
            if _unit_key(conversion.unit) == wanted:
                return conversion
        allowed = ", ".join(c.unit for c in self.units)
        raise TrialRuleError(
            "lab-unit", f"unit {unit!r} has no defined conversion for {self.code} ({allowed})"
        )

    def to_canonical(self, value: Decimal | Fraction, unit: str) -> Fraction:
        return Fraction(*_scaled(value, self.conversion(unit).factor))

    @cached_property
    def threshold_ratios(self) -> tuple[tuple[int, int] | None, ...]:
        """The thresholds as (numerator, denominator) pairs, worked out once per lab."""
        return tuple(None if t is None else (t.numerator, t.denominator)
                     for t in self.thresholds)


@dataclass(frozen=True)
class Grade:
    """A graded value: the CTCAE grade (0 = within the graded range, None = not gradable),
    the value in the canonical unit, and how the grade was reached."""

    grade: int | None
    canonical_value: Fraction
    canonical_unit: str
    grading: str
    canonical_text: str = ""  # show(canonical_value), already worked out for `grading`


def _unit_key(unit: str) -> str:
    # Sites write micro as the micro sign, the Greek mu or "u"; case carries no meaning here.
    return unit.strip().replace("\u00b5", "u").replace("\u03bc", "u").casefold()


def _exact(value: object, where: str) -> Fraction:
    if not isinstance(value, str):
        raise ValueError(f"{where}: write the number as a string, not {value!r}")
    try:
        number = Decimal(value)
    except InvalidOperation as e:
        raise ValueError(f"{where}: {value!r} is not a number") from e
    if not number.is_finite() or number <= 0:
        raise ValueError(f"{where}: {value!r} must be a positive number")
    return Fraction(number)


def parse_lab_table(text: str) -> dict[str, LabGrading]:
    """The grading table from its TOML text (no file I/O here). Malformed data raises
    ValueError naming the lab and field."""
    data = tomllib.loads(text)
    labs: dict[str, LabGrading] = {}
    for code, entry in data.get("labs", {}).items():
        where = f"labs.{code}"
        direction = entry["direction"]
        if direction not in ("below", "above"):
            raise ValueError(f"{where}.direction must be 'below' or 'above'")
        raw = entry["thresholds"]
        if len(raw) != 4:
            raise ValueError(f"{where}.thresholds must give grades 1-4")
        thresholds = tuple(
            None if direction == "below" and t == LIMIT else _exact(t, f"{where}.thresholds")
            for t in raw
        )
        numbers = [t for t in thresholds if t is not None]
        ordered = sorted(numbers, reverse=direction == "below")
        if numbers != ordered or len(set(numbers)) != len(numbers):
            raise ValueError(f"{where}.thresholds must move strictly away from normal")
        units = []
        for index, u in enumerate(entry["units"]):
            spot = f"{where}.units[{index}]"
            if ("multiply" in u) == ("divide" in u):
                raise ValueError(f"{spot} needs exactly one of multiply, divide")
            factor = (
                _exact(u["multiply"], spot) if "multiply" in u else 1 / _exact(u["divide"], spot)
            )
            units.append(UnitConversion(u["unit"], factor))
        canonical = [c for c in units if _unit_key(c.unit) == _unit_key(entry["unit"])]
        if len(canonical) != 1 or canonical[0].factor != 1:
            raise ValueError(f"{where}: the canonical unit must be listed once, factor 1")
        labs[code] = LabGrading(
            code=code, name=entry["name"], category=entry["category"], term=entry["term"],
            direction=direction, unit=entry["unit"], thresholds=thresholds,
            units=tuple(units), screening_uln=entry.get("screening_uln"),
            screening_lln=entry.get("screening_lln"),
        )
    return labs


@cache
def ctcae_v3_labs() -> dict[str, LabGrading]:
    """The shipped table. It is package data released with the code, read like a module:
    not a file a user supplies, so the domain may read it (once)."""
    text = resources.files("trialctl.protocols").joinpath(GRADING_TABLE).read_text("utf-8")
    return parse_lab_table(text)


def lab_grading(test: str) -> LabGrading:
    labs = ctcae_v3_labs()
    found = labs.get(test)
    if found is None:
        raise TrialRuleError("lab-test", f"lab test {test!r} is not graded ({', '.join(labs)})")
    return found


Ratio = tuple[int, int]  # numerator, denominator > 0, in lowest terms (as Fraction holds them)


def _scaled(value: Decimal | Fraction, factor: Fraction) -> Ratio:
    """value x factor, exactly, in lowest terms."""
    numerator, denominator = value.as_integer_ratio()
    numerator *= factor.numerator
    denominator *= factor.denominator
    common = gcd(numerator, denominator)
    return numerator // common, denominator // common


def show(value: Fraction) -> str:
    """An exact value as decimal text: exact when it terminates, else to 4 places."""
    return _show(value.numerator, value.denominator)


def _show(numerator: int, denominator: int) -> str:
    # (numerator, denominator) in lowest terms, so the decimal is exact exactly when its
    # own lowest-terms ratio is this one.
    decimal = Decimal(numerator) / Decimal(denominator)
    if decimal.as_integer_ratio() != (numerator, denominator):
        decimal = decimal.quantize(Decimal("0.0001"))
    return format(decimal.normalize(), "f")


def grade_value(
    lab: LabGrading, value: Decimal | Fraction, unit: str, limit: Decimal | Fraction | None,
    limit_source: str = "",
) -> Grade:
    """Grade one value. `limit` is the patient's LLN (labs graded below normal) or ULN
    (graded above), in `unit`; None when unknown."""
    factor = lab.conversion(unit).factor
    canonical = _scaled(value, factor)
    normal = None if limit is None else _scaled(limit, factor)
    text = _show(*canonical)
    shown = f"{text} {lab.unit}"
    source = f" ({limit_source})" if limit_source else ""
    if lab.direction == "below":
        grade, reason = _below(lab, canonical, normal, shown, source)
    else:
        grade, reason = _above(lab, canonical, normal, shown, source)
    return Grade(grade, Fraction(*canonical), lab.unit, reason, text)


def _below(
    lab: LabGrading, value: Ratio, lln: Ratio | None, shown: str, source: str
) -> tuple[int | None, str]:
    # a/b < c/d exactly when a*d < c*b, the denominators being positive.
    numerator, denominator = value
    for grade in (4, 3, 2, 1):
        threshold = lab.threshold_ratios[grade - 1]
        if threshold is None:
            if lln is None:
                return None, f"not gradable: no LLN ({shown} is not below grade 2)"
            if numerator * lln[1] < lln[0] * denominator:
                return grade, f"grade {grade}: {shown} < LLN {_show(*lln)} {lab.unit}{source}"
        elif numerator * threshold[1] < threshold[0] * denominator:
            return grade, f"grade {grade}: {shown} < {_show(*threshold)} {lab.unit}"
    assert lln is not None
    return 0, f"grade 0: {shown} >= LLN {_show(*lln)} {lab.unit}{source}"


def _above(
    lab: LabGrading, value: Ratio, uln: Ratio | None, shown: str, source: str
) -> tuple[int | None, str]:
    if uln is None:
        return None, "not gradable: no ULN"
    numerator, denominator = value
    for grade in (4, 3, 2, 1):
        multiple = lab.threshold_ratios[grade - 1]
        assert multiple is not None
        # value > multiple x ULN, with both sides over positive denominators.
        if numerator * multiple[1] * uln[1] > multiple[0] * uln[0] * denominator:
            return grade, (
                f"grade {grade}: {shown} > {_show(*multiple)} x ULN {_show(*uln)} "
                f"{lab.unit}{source}"
            )
    return 0, f"grade 0: {shown} <= ULN {_show(*uln)} {lab.unit}{source}"


def patient_limit(
    lab: LabGrading, given: str | None, unit: str, screening: Mapping[str, Any]
) -> tuple[Fraction | None, str]:
    """The limit of normal to grade with, in `unit`, and where it came from: the lab
    record's own, else the patient's screening value (held in the canonical unit)."""
    if given is not None:
        return (Fraction(*Decimal(given).as_integer_ratio()),
                f"{lab.limit_name} as recorded with the lab")
    field = lab.screening_lln if lab.direction == "below" else lab.screening_uln
    if field is None or screening.get(field) is None:
        return None, ""
    try:
        in_canonical = Fraction(Decimal(str(screening[field])))
    except (InvalidOperation, ValueError):
        return None, ""
    if in_canonical <= 0:
        return None, ""
    return in_canonical / lab.conversion(unit).factor, f"{lab.limit_name} from screening {field}"


def grade_duration_days(
    labs: Sequence[Mapping[str, Any]], test: str, min_grade: int, start: date, end: date
) -> int | None:
    """The longest run of consecutive `test` samples graded at or above `min_grade`,
    collected from `start` to `end`: days from the run's first sample to the first later
    sample below it, or to `end` while none is. None when no sample reaches the grade.
    Samples that could not be graded neither extend nor end a run."""
    samples = sorted(
        (parse_day(str(lab["collected_on"]), "collection date"), int(lab.get("version", 0)),
         lab["grade"])
        for lab in labs
        if lab["test"] == test
    )
    longest: int | None = None
    run_start: date | None = None
    for collected, _, grade in samples:
        if not start <= collected <= end or grade is None:
            continue
        if grade >= min_grade:
            if run_start is None:
                run_start = collected
        elif run_start is not None:
            longest = max(longest or 0, (collected - run_start).days)
            run_start = None
    if run_start is not None:
        longest = max(longest or 0, (end - run_start).days)
    return longest
