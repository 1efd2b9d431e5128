"""Reading the ``[[eligibility]]`` tables of a protocol file into criteria.

Each table is one :class:`~trialctl.domain.eligibility_criteria.Criterion`; which of ``threshold``,
``threshold_field``, ``uln``, ``uln_field`` and ``unit`` it must or must not have depends on its
operator, and every refusal names the field (``eligibility[3].threshold: ...``).  Called by
:func:`trialctl.domain.protocol_file.protocol_from_dict`.
"""

from __future__ import annotations

from decimal import Decimal

from trialctl.domain.eligibility_criteria import (
    CONDITION_OPERATORS,
    Condition,
    Criterion,
    CriterionKind,
    Operator,
    Threshold,
)
from trialctl.domain.protocol_values import (
    Table,
    fail,
    read_decimal,
    read_int,
    read_list,
    read_name,
    read_str,
    refuse_duplicates,
)

__all__ = ["read_eligibility"]

_CRITERION_KEYS = (
    "code",
    "text",
    "kind",
    "field",
    "op",
    "threshold",
    "threshold_field",
    "uln",
    "uln_field",
    "unit",
    "applies_if",
)
_CONDITION_KEYS = ("field", "op", "threshold")


def read_eligibility(root: Table) -> tuple[Criterion, ...]:
    tables = root.tables("eligibility", _CRITERION_KEYS, required=True)
    criteria = [_read_criterion(t) for t in tables]
    refuse_duplicates(
        [(t.at("code"), c.code) for t, c in zip(tables, criteria, strict=True)],
        "criterion code",
    )
    return tuple(criteria)


def _read_criterion(t: Table) -> Criterion:
    code = read_name(t.req("code"), t.at("code"))
    text = read_str(t.req("text"), t.at("text"))
    kind_text = read_str(t.req("kind"), t.at("kind"))
    try:
        kind = CriterionKind(kind_text)
    except ValueError:
        fail(t.at("kind"), f"unknown kind {kind_text!r} (allowed: inclusion, exclusion)")
    field = read_name(t.req("field"), t.at("field"))
    op = _read_operator(t.req("op"), t.at("op"))
    threshold_field: str | None = None
    if t.has("threshold_field"):
        if op not in (Operator.GE, Operator.LE):
            fail(t.at("threshold_field"), "only used with operators >= and <=")
        threshold_field = read_name(t.get("threshold_field"), t.at("threshold_field"))
    threshold = _read_threshold(t, op, has_field=threshold_field is not None)
    uln, uln_field = _read_uln(t, op)
    unit = t.opt_str("unit")
    if op in (Operator.GE, Operator.LE) and unit is None:
        fail(t.at("unit"), f"required field is missing (operator {op} compares quantities)")
    applies_if = (
        _read_condition(t.get("applies_if"), t.at("applies_if")) if t.has("applies_if") else None
    )
    return Criterion(
        code=code,
        text=text,
        kind=kind,
        field=field,
        op=op,
        threshold=threshold,
        unit=unit,
        threshold_field=threshold_field,
        uln=uln,
        uln_field=uln_field,
        applies_if=applies_if,
    )


def _read_operator(
    value: object, path: str, allowed: frozenset[Operator] | None = None
) -> Operator:
    text = read_str(value, path)
    choices = [str(o) for o in Operator if allowed is None or o in allowed]
    if text not in choices:
        fail(path, f"unknown operator {text!r} (allowed: {', '.join(choices)})")
    return Operator(text)


def _read_threshold(t: Table, op: Operator, *, has_field: bool = False) -> Threshold:
    """Read ``threshold`` as ``op`` needs it (``has_field``: threshold_field is given)."""
    path = t.at("threshold")
    raw = t.get("threshold")
    if op in (Operator.IS_TRUE, Operator.IS_FALSE):
        if raw is not None:
            fail(path, f"operator {op} takes no threshold")
        return None
    if op in (Operator.GE, Operator.LE) and has_field:
        if raw is not None:
            fail(path, "give either threshold or threshold_field, not both")
        return None
    if raw is None:
        fail(path, f"required field is missing (operator {op} needs it)")
    if op in (Operator.GE, Operator.LE):
        return read_decimal(raw, path)
    if op is Operator.X_ULN_AT_MOST:
        return read_decimal(raw, path, positive=True)
    if op is Operator.DAYS_SINCE_AT_LEAST:
        return read_int(raw, path, minimum=1)
    if op is Operator.EQ:
        if _is_whole_number(raw):
            return str(read_int(raw, path))
        return read_str(raw, path)
    # Operator.IN: each member is compared as == compares
    members: list[str] = []
    for i, item in enumerate(read_list(raw, path)):
        at = f"{path}[{i}]"
        members.append(
            str(read_int(item, at)) if _is_whole_number(item) else read_str(item, at).strip()
        )
    return tuple(members)


def _is_whole_number(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _read_uln(t: Table, op: Operator) -> tuple[Decimal | None, str | None]:
    """``(uln, uln_field)``: exactly one is given for x_uln_at_most, neither otherwise."""
    for key in ("uln", "uln_field"):
        if t.has(key) and op is not Operator.X_ULN_AT_MOST:
            fail(t.at(key), "only used with operator x_uln_at_most")
    if op is not Operator.X_ULN_AT_MOST:
        return None, None
    if t.has("uln") == t.has("uln_field"):
        fail(t.at("uln_field"), "give exactly one of uln (a number) or uln_field")
    if t.has("uln"):
        return read_decimal(t.get("uln"), t.at("uln"), positive=True), None
    return None, read_name(t.get("uln_field"), t.at("uln_field"))


def _read_condition(value: object, path: str) -> Condition:
    c = Table(value, path, _CONDITION_KEYS)
    op = _read_operator(c.req("op"), c.at("op"), CONDITION_OPERATORS)
    return Condition(
        field=read_name(c.req("field"), c.at("field")), op=op, threshold=_read_threshold(c, op)
    )
