"""Eligibility criteria as data: what each criterion reads and how it tests it.

A :class:`Criterion` reads one screening value (``field``) and tests it with one operator
from a small closed set (:class:`Operator`).  The rule always expresses what must hold for
the patient to be *eligible*, whatever its ``kind``: the exclusion "no active infection" is
written ``field = "active_infection", op = "is_false"``.  ``kind`` only records whether the
public record lists it as an inclusion or an exclusion criterion.

Screening values are plain data (``str``, ``int``, ``bool``, ``Decimal``, ``date`` or
``None``); numbers are parsed into :class:`~decimal.Decimal`, never floats.  A value that
is absent or ``None`` (or an empty string) is *missing*, and a missing value fails.

Operators:

``>=`` / ``<=``
    numeric comparison with ``threshold`` (a Decimal) or with another screening value
    named by ``threshold_field`` (e.g. LVEF >= its lower limit of normal).
``==``
    equality with ``threshold`` (numerically if both sides are numbers, else as text).
``in``
    membership in the list ``threshold`` (same equality as ``==``).
``is_true`` / ``is_false``
    boolean value; ``True``/``False`` or the strings true/false/yes/no.
``days_since_at_least``
    the value is an ISO date (or a :class:`datetime.date`) of the last exposure; at least
    ``threshold`` whole days must separate it from ``as_of``.  The string ``"never"`` means
    no such exposure and passes.
``x_uln_at_most``
    value <= ``threshold`` x ULN, where the ULN is another screening value (``uln_field``)
    or fixed in the criterion (``uln``).

``applies_if`` makes a criterion conditional (e.g. a pregnancy test only for patients of
child-bearing potential); when the condition does not hold the criterion is *not
applicable*, which does not prevent eligibility.

Evaluating screening values against the criteria is :mod:`trialctl.domain.eligibility`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

__all__ = [
    "CONDITION_OPERATORS",
    "NEVER",
    "Condition",
    "Criterion",
    "CriterionKind",
    "Operator",
    "ScreeningValue",
    "Threshold",
    "screening_fields",
]

ScreeningValue = str | int | bool | Decimal | date | None
"""What a screening value may be (floats are refused as invalid)."""

Threshold = Decimal | int | str | tuple[str, ...] | None
"""Decimal for >=, <=, x_uln_at_most; int days for days_since_at_least; str for ==;
tuple of str for in; None for is_true / is_false (and for >=/<= with threshold_field)."""

NEVER = "never"
"""Screening value meaning "no such exposure" for ``days_since_at_least``."""


class Operator(StrEnum):
    """The closed set of criterion operators."""

    GE = ">="
    LE = "<="
    EQ = "=="
    IN = "in"
    IS_TRUE = "is_true"
    IS_FALSE = "is_false"
    DAYS_SINCE_AT_LEAST = "days_since_at_least"
    X_ULN_AT_MOST = "x_uln_at_most"


CONDITION_OPERATORS: frozenset[Operator] = frozenset(
    {Operator.GE, Operator.LE, Operator.EQ, Operator.IN, Operator.IS_TRUE, Operator.IS_FALSE}
)
"""Operators allowed in an ``applies_if`` condition."""


class CriterionKind(StrEnum):
    INCLUSION = "inclusion"
    EXCLUSION = "exclusion"


def _check_threshold(
    where: str,
    op: Operator,
    threshold: Threshold,
    *,
    threshold_field: str | None = None,
) -> None:
    """Check that ``threshold`` has the shape ``op`` needs (ValueError otherwise)."""
    if op in (Operator.GE, Operator.LE):
        if (threshold is None) == (threshold_field is None):
            raise ValueError(f"{where}: {op} needs exactly one of threshold or threshold_field")
        if threshold is not None and not isinstance(threshold, Decimal):
            raise ValueError(f"{where}: {op} needs a Decimal threshold")
    elif op is Operator.X_ULN_AT_MOST:
        if not isinstance(threshold, Decimal) or threshold <= 0:
            raise ValueError(f"{where}: {op} needs a positive Decimal threshold (k in k x ULN)")
    elif op is Operator.EQ:
        if not isinstance(threshold, str):
            raise ValueError(f"{where}: {op} needs a string threshold")
    elif op is Operator.IN:
        if (
            not isinstance(threshold, tuple)
            or not threshold
            or not all(isinstance(t, str) for t in threshold)
        ):
            raise ValueError(f"{where}: {op} needs a non-empty tuple of strings")
    elif op is Operator.DAYS_SINCE_AT_LEAST:
        if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 1:
            raise ValueError(f"{where}: {op} needs a positive whole number of days")
    elif threshold is not None:
        raise ValueError(f"{where}: {op} takes no threshold")


def _threshold_to_json(threshold: Threshold) -> object:
    if isinstance(threshold, Decimal):
        return str(threshold)
    if isinstance(threshold, tuple):
        return list(threshold)
    return threshold


def _describe_test(op: Operator, threshold: Threshold, unit: str | None) -> str:
    u = f" {unit}" if unit else ""
    if op in (Operator.IS_TRUE, Operator.IS_FALSE):
        return "is true" if op is Operator.IS_TRUE else "is false"
    if op is Operator.IN:
        assert isinstance(threshold, tuple)
        return f"in {list(threshold)}"
    if op is Operator.DAYS_SINCE_AT_LEAST:
        return f"at least {threshold} days ago (or never)"
    return f"{op} {threshold}{u}"


@dataclass(frozen=True)
class Condition:
    """The ``applies_if`` condition of a criterion."""

    field: str
    op: Operator
    threshold: Threshold = None

    def __post_init__(self) -> None:
        if self.op not in CONDITION_OPERATORS:
            raise ValueError(f"applies_if: operator {self.op} cannot be used in a condition")
        _check_threshold("applies_if", self.op, self.threshold)

    def describe(self) -> str:
        return f"{self.field} {_describe_test(self.op, self.threshold, None)}"

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"field": self.field, "op": str(self.op)}
        if self.threshold is not None:
            out["threshold"] = _threshold_to_json(self.threshold)
        return out


@dataclass(frozen=True)
class Criterion:
    """One eligibility criterion (see the module docstring for the operators)."""

    code: str
    text: str
    kind: CriterionKind
    field: str
    op: Operator
    threshold: Threshold = None
    unit: str | None = None
    threshold_field: str | None = None
    uln: Decimal | None = None
    uln_field: str | None = None
    applies_if: Condition | None = None

    def __post_init__(self) -> None:
        where = f"criterion {self.code!r}"
        _check_threshold(where, self.op, self.threshold, threshold_field=self.threshold_field)
        if self.threshold_field is not None and self.op not in (Operator.GE, Operator.LE):
            raise ValueError(f"{where}: threshold_field is only used with >= and <=")
        if self.op is Operator.X_ULN_AT_MOST:
            if (self.uln is None) == (self.uln_field is None):
                raise ValueError(f"{where}: x_uln_at_most needs exactly one of uln or uln_field")
        elif self.uln is not None or self.uln_field is not None:
            raise ValueError(f"{where}: uln/uln_field are only used with x_uln_at_most")

    @property
    def fields(self) -> tuple[str, ...]:
        """Every screening value this criterion may read."""
        out = [self.field]
        for extra in (self.threshold_field, self.uln_field):
            if extra is not None:
                out.append(extra)
        if self.applies_if is not None:
            out.append(self.applies_if.field)
        return tuple(dict.fromkeys(out))

    def describe(self) -> str:
        """Machine-style statement of the requirement, e.g. ``anc >= 1500 /mm^3``."""
        u = f" {self.unit}" if self.unit else ""
        if self.op is Operator.X_ULN_AT_MOST:
            uln = self.uln_field if self.uln_field is not None else f"{self.uln}{u}"
            req = f"{self.field} <= {self.threshold} x ULN ({uln})"
        elif self.threshold_field is not None:
            req = f"{self.field} {self.op} {self.threshold_field}"
        else:
            req = f"{self.field} {_describe_test(self.op, self.threshold, self.unit)}"
        if self.applies_if is not None:
            req += f" [if {self.applies_if.describe()}]"
        return req

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "code": self.code,
            "text": self.text,
            "kind": str(self.kind),
            "field": self.field,
            "op": str(self.op),
        }
        if self.threshold is not None:
            out["threshold"] = _threshold_to_json(self.threshold)
        if self.threshold_field is not None:
            out["threshold_field"] = self.threshold_field
        if self.uln is not None:
            out["uln"] = str(self.uln)
        if self.uln_field is not None:
            out["uln_field"] = self.uln_field
        if self.unit is not None:
            out["unit"] = self.unit
        if self.applies_if is not None:
            out["applies_if"] = self.applies_if.to_dict()
        return out


def screening_fields(criteria: Iterable[Criterion]) -> tuple[str, ...]:
    """Every screening value the criteria read, in first-use order (for prompting/forms)."""
    out: dict[str, None] = {}
    for c in criteria:
        for f in c.fields:
            out.setdefault(f, None)
    return tuple(out)
