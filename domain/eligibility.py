"""Eligibility evaluated criterion by criterion: screening values in, a verdict on each out.

Every criterion is evaluated (none is skipped after a failure), so a screening refusal names
all that stand in the way.  A value that is absent or ``None`` (or an empty string) is
*missing*: its criterion is *not assessed* (status ``missing``), which keeps the patient
from being eligible but is never reported as a failure; numbers are read as
:class:`~decimal.Decimal`, never floats.  The criteria themselves, and what each operator means, are
:mod:`trialctl.domain.eligibility_criteria`; their names are re-exported here, so callers
import the whole of eligibility from this module.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from trialctl.domain.eligibility_criteria import (
    CONDITION_OPERATORS,
    NEVER,
    Condition,
    Criterion,
    CriterionKind,
    Operator,
    ScreeningValue,
    Threshold,
    screening_fields,
)

__all__ = [
    "CONDITION_OPERATORS",
    "NEVER",
    "Condition",
    "Criterion",
    "CriterionKind",
    "CriterionResult",
    "CriterionStatus",
    "EligibilityResult",
    "Operator",
    "ScreeningValue",
    "Threshold",
    "evaluate_eligibility",
    "screening_fields",
]

_NUMBER_RE = re.compile(r"^[+-]?\d+(\.\d+)?$")
_TRUE_WORDS = frozenset({"true", "yes"})
_FALSE_WORDS = frozenset({"false", "no"})


class CriterionStatus(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    NOT_APPLICABLE = "not_applicable"
    MISSING = "missing"


@dataclass(frozen=True)
class CriterionResult:
    """The verdict on one criterion."""

    code: str
    text: str
    kind: CriterionKind
    field: str
    status: CriterionStatus
    value: ScreeningValue
    reason: str
    requirement: str
    # The screening fields whose absence left this criterion not assessed.
    missing: tuple[str, ...] = ()

    @property
    def satisfied(self) -> bool:
        """True when the criterion does not stand in the way (passed or not applicable)."""
        return self.status in (CriterionStatus.PASSED, CriterionStatus.NOT_APPLICABLE)

    def to_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "text": self.text,
            "kind": str(self.kind),
            "field": self.field,
            "status": str(self.status),
            "value": _value_to_json(self.value),
            "reason": self.reason,
            "requirement": self.requirement,
        }


@dataclass(frozen=True)
class EligibilityResult:
    """The verdict on all criteria; ``eligible`` only if every one is satisfied."""

    eligible: bool
    as_of: date
    results: tuple[CriterionResult, ...]

    @property
    def failures(self) -> tuple[CriterionResult, ...]:
        """Criteria that failed or lacked a value, in protocol order."""
        return tuple(r for r in self.results if not r.satisfied)

    @property
    def failed_codes(self) -> tuple[str, ...]:
        """Criteria that failed on the values given (not those left unassessed)."""
        return tuple(r.code for r in self.results if r.status is CriterionStatus.FAILED)

    @property
    def not_assessed_codes(self) -> tuple[str, ...]:
        """Criteria that could not be assessed for want of a value."""
        return tuple(r.code for r in self.results if r.status is CriterionStatus.MISSING)

    @property
    def missing_fields(self) -> tuple[str, ...]:
        """The screening fields whose absence left criteria not assessed, first use first."""
        return tuple(
            dict.fromkeys(
                f for r in self.results if r.status is CriterionStatus.MISSING for f in r.missing
            )
        )

    @property
    def complete(self) -> bool:
        """Every criterion assessed: only then can the patient be eligible."""
        return not self.missing_fields

    def result(self, code: str) -> CriterionResult:
        for r in self.results:
            if r.code == code:
                return r
        raise KeyError(code)

    def to_dict(self) -> dict[str, object]:
        return {
            "eligible": self.eligible,
            "as_of": self.as_of.isoformat(),
            "failed": list(self.failed_codes),
            "not_assessed": list(self.missing_fields),
            "results": [r.to_dict() for r in self.results],
        }


def _value_to_json(value: ScreeningValue) -> object:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def _fmt(value: ScreeningValue) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


class _Invalid(Exception):
    """A screening value that cannot be read as the operator needs."""


class _Missing(Exception):
    """A screening value needed (other than the criterion's own field) is missing."""

    def __init__(self, field: str, why: str) -> None:
        super().__init__(field)
        self.field = field
        self.why = why


def _is_missing(value: ScreeningValue) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _as_number(value: ScreeningValue, what: str) -> Decimal:
    if isinstance(value, bool):
        raise _Invalid(f"{what} must be a number, got boolean {value}")
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise _Invalid(f"{what} must be a finite number, got {value}")
        return value
    if isinstance(value, str) and _NUMBER_RE.match(value.strip()):
        return Decimal(value.strip())
    if isinstance(value, float):
        raise _Invalid(f"{what} must not be a float ({value}); give it as a string or int")
    raise _Invalid(f"{what} must be a number, got {_fmt(value)}")


def _as_bool(value: ScreeningValue, what: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE_WORDS:
            return True
        if word in _FALSE_WORDS:
            return False
    raise _Invalid(f"{what} must be true or false, got {_fmt(value)}")


def _as_date(value: ScreeningValue, what: str) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise _Invalid(f"{what} must be an ISO date (YYYY-MM-DD) or {NEVER!r}, got {_fmt(value)}")


def _equals(value: ScreeningValue, expected: str) -> bool:
    if isinstance(value, bool):
        raise _Invalid(f"a boolean ({value}) cannot be compared with {expected!r}")
    if isinstance(value, float):
        raise _Invalid(f"floats are not accepted ({value}); give the value as a string or int")
    text = value.isoformat() if isinstance(value, date) else str(value).strip()
    if _NUMBER_RE.match(expected) and _NUMBER_RE.match(text):
        try:
            return Decimal(text) == Decimal(expected)
        except InvalidOperation:  # pragma: no cover - guarded by the regex
            return False
    return text == expected


def _other(values: Mapping[str, ScreeningValue], field: str, why: str) -> ScreeningValue:
    value = values.get(field)
    if _is_missing(value):
        raise _Missing(field, why)
    return value


def _test(
    op: Operator,
    threshold: Threshold,
    value: ScreeningValue,
    *,
    unit: str | None,
    values: Mapping[str, ScreeningValue],
    as_of: date,
    threshold_field: str | None = None,
    uln: Decimal | None = None,
    uln_field: str | None = None,
) -> tuple[bool, str]:
    """Apply ``op``; return (ok, reason).  Raise _Invalid / _Missing."""
    u = f" {unit}" if unit else ""
    if op in (Operator.GE, Operator.LE):
        number = _as_number(value, "value")
        if threshold_field is not None:
            limit = _as_number(
                _other(values, threshold_field, "the limit to compare with"), threshold_field
            )
            limit_text = f"{threshold_field} {limit}{u}"
        else:
            assert isinstance(threshold, Decimal)
            limit = threshold
            limit_text = f"{limit}{u}"
        ok = number >= limit if op is Operator.GE else number <= limit
        if ok:
            return True, f"{number}{u} {op} {limit_text}"
        worse = "<" if op is Operator.GE else ">"
        return False, f"{number}{u} {worse} {limit_text} (required {op} {limit_text})"
    if op is Operator.X_ULN_AT_MOST:
        assert isinstance(threshold, Decimal)
        number = _as_number(value, "value")
        if uln_field is not None:
            upper = _as_number(_other(values, uln_field, "the upper limit of normal"), uln_field)
        else:
            assert uln is not None
            upper = uln
        limit = threshold * upper
        if number <= limit:
            return True, f"{number}{u} <= {threshold} x ULN {upper}{u} = {limit}{u}"
        return False, (
            f"{number}{u} > {threshold} x ULN {upper}{u} = {limit}{u} "
            f"(required <= {threshold} x ULN)"
        )
    if op in (Operator.IS_TRUE, Operator.IS_FALSE):
        flag = _as_bool(value, "value")
        wanted = op is Operator.IS_TRUE
        if flag == wanted:
            return True, f"is {str(flag).lower()}"
        return False, f"is {str(flag).lower()} (required {str(wanted).lower()})"
    if op is Operator.EQ:
        assert isinstance(threshold, str)
        if _equals(value, threshold):
            return True, f"{_fmt(value)} == {threshold!r}"
        return False, f"{_fmt(value)} is not {threshold!r}"
    if op is Operator.IN:
        assert isinstance(threshold, tuple)
        if any(_equals(value, t) for t in threshold):
            return True, f"{_fmt(value)} is one of {list(threshold)}"
        return False, f"{_fmt(value)} is not one of {list(threshold)}"
    if op is Operator.DAYS_SINCE_AT_LEAST:
        assert isinstance(threshold, int)
        if isinstance(value, str) and value.strip().lower() == NEVER:
            return True, f"never (no prior exposure; required at least {threshold} days)"
        when = _as_date(value, "value")
        if when > as_of:
            raise _Invalid(f"date {when.isoformat()} is after the assessment date {as_of}")
        days = (as_of - when).days
        if days >= threshold:
            return True, f"{days} days since {when.isoformat()} (required at least {threshold})"
        return False, f"only {days} days since {when.isoformat()} (required at least {threshold})"
    raise AssertionError(f"unhandled operator {op}")  # pragma: no cover


def _evaluate_one(
    criterion: Criterion, values: Mapping[str, ScreeningValue], as_of: date
) -> CriterionResult:
    def result(
        status: CriterionStatus, value: ScreeningValue, reason: str, missing: str | None = None
    ) -> CriterionResult:
        return CriterionResult(
            code=criterion.code,
            text=criterion.text,
            kind=criterion.kind,
            field=criterion.field,
            status=status,
            value=value,
            reason=reason,
            requirement=criterion.describe(),
            missing=() if missing is None else (missing,),
        )

    cond = criterion.applies_if
    if cond is not None:
        cond_value = values.get(cond.field)
        if _is_missing(cond_value):
            return result(
                CriterionStatus.MISSING,
                None,
                f"missing: no screening value for {cond.field!r} "
                "(decides whether this criterion applies)",
                cond.field,
            )
        try:
            applies, why = _test(
                cond.op, cond.threshold, cond_value, unit=None, values=values, as_of=as_of
            )
        except _Invalid as exc:
            return result(CriterionStatus.FAILED, cond_value, f"invalid {cond.field}: {exc}")
        if not applies:
            return result(
                CriterionStatus.NOT_APPLICABLE,
                values.get(criterion.field),
                f"not applicable: {cond.field} {why}",
            )

    value = values.get(criterion.field)
    if _is_missing(value):
        return result(
            CriterionStatus.MISSING,
            None,
            f"missing: no screening value for {criterion.field!r}",
            criterion.field,
        )
    try:
        ok, why = _test(
            criterion.op,
            criterion.threshold,
            value,
            unit=criterion.unit,
            values=values,
            as_of=as_of,
            threshold_field=criterion.threshold_field,
            uln=criterion.uln,
            uln_field=criterion.uln_field,
        )
    except _Missing as exc:
        return result(
            CriterionStatus.MISSING,
            value,
            f"missing: no screening value for {exc.field!r} ({exc.why})",
            exc.field,
        )
    except _Invalid as exc:
        return result(CriterionStatus.FAILED, value, f"invalid {criterion.field}: {exc}")
    return result(CriterionStatus.PASSED if ok else CriterionStatus.FAILED, value, why)


def evaluate_eligibility(
    criteria: Sequence[Criterion],
    screening_values: Mapping[str, ScreeningValue],
    as_of: date,
) -> EligibilityResult:
    """Evaluate every criterion (none is skipped after a failure) against the values.

    ``as_of`` is the screening/assessment date used for the wash-out (``days_since``)
    criteria.  The patient is eligible only when every criterion passed or was not
    applicable; a missing value leaves its criterion not assessed (status ``missing``,
    a reason starting "missing"), so the patient is not eligible, yet nothing failed.
    """
    results = tuple(_evaluate_one(c, screening_values, as_of) for c in criteria)
    return EligibilityResult(
        eligible=all(r.satisfied for r in results), as_of=as_of, results=results
    )
