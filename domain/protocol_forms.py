"""Reading the ``[[forms]]`` tables of a protocol file, and tying the screening form to the
eligibility criteria.

Each form is ``name``, ``[title]`` and its ``[[forms.fields]]``: ``name``, ``type``
(integer | decimal | boolean | text | date), ``[text]``, ``[unit]`` and ``[min]``/``[max]``
(numbers), ``[allowed]`` (text), ``[never]`` (a date that may be "never"), ``[required]``
(default true).  Every refusal names the field (``forms[0].fields[3].type: ...``).  Called
by :func:`trialctl.domain.protocol_file.protocol_from_dict`.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from trialctl.domain.eligibility_criteria import Criterion, Operator
from trialctl.domain.forms import SCREENING, FieldType, Form, FormField
from trialctl.domain.protocol_values import (
    ProtocolError,
    Table,
    fail,
    read_bool,
    read_decimal,
    read_list,
    read_name,
    read_str,
    refuse_duplicates,
)

__all__ = ["check_screening_form", "read_forms"]

_FORM_KEYS = ("name", "title", "fields")
_FIELD_KEYS = ("name", "type", "text", "unit", "allowed", "min", "max", "required", "never")
_TYPES = ", ".join(t.value for t in FieldType)
_NUMBERS = frozenset({FieldType.INTEGER, FieldType.DECIMAL})
# The field types each operator can read (== and in compare text, or numbers as written).
_READS: dict[Operator, frozenset[FieldType]] = {
    Operator.GE: _NUMBERS,
    Operator.LE: _NUMBERS,
    Operator.X_ULN_AT_MOST: _NUMBERS,
    Operator.IS_TRUE: frozenset({FieldType.BOOLEAN}),
    Operator.IS_FALSE: frozenset({FieldType.BOOLEAN}),
    Operator.DAYS_SINCE_AT_LEAST: frozenset({FieldType.DATE}),
    Operator.EQ: _NUMBERS | {FieldType.TEXT},
    Operator.IN: _NUMBERS | {FieldType.TEXT},
}


def read_forms(root: Table) -> tuple[Form, ...]:
    tables = root.tables("forms", _FORM_KEYS, required=False)
    forms = tuple(_read_form(t) for t in tables)
    refuse_duplicates(
        [(t.at("name"), f.name) for t, f in zip(tables, forms, strict=True)], "form"
    )
    return forms


def _read_form(t: Table) -> Form:
    name = read_name(t.req("name"), t.at("name"))
    fields_tables = t.tables("fields", _FIELD_KEYS, required=True)
    fields = tuple(_read_field(f) for f in fields_tables)
    refuse_duplicates(
        [(f.at("name"), x.name) for f, x in zip(fields_tables, fields, strict=True)],
        "field",
    )
    return Form(name=name, fields=fields, title=t.opt_str("title"))


def _read_field(t: Table) -> FormField:
    name = read_name(t.req("name"), t.at("name"))
    type_text = read_str(t.req("type"), t.at("type"))
    try:
        kind = FieldType(type_text)
    except ValueError:
        fail(t.at("type"), f"{type_text!r} is not a field type ({_TYPES})")
    numeric = kind in (FieldType.INTEGER, FieldType.DECIMAL)
    for key, allowed_for, what in (
        ("unit", numeric, "numbers"),
        ("min", numeric, "numbers"),
        ("max", numeric, "numbers"),
        ("allowed", kind is FieldType.TEXT, "text"),
        ("never", kind is FieldType.DATE, "dates"),
    ):
        if t.has(key) and not allowed_for:
            fail(t.at(key), f"only used for {what}, not for a {kind} field")
    minimum = _read_bound(t, "min", kind)
    maximum = _read_bound(t, "max", kind)
    if minimum is not None and maximum is not None and minimum > maximum:
        fail(t.at("max"), f"must be at least min ({minimum}), got {maximum}")
    allowed: tuple[str, ...] = ()
    if t.has("allowed"):
        items = read_list(t.req("allowed"), t.at("allowed"))
        allowed = tuple(read_str(v, f"{t.at('allowed')}[{i}]").strip()
                        for i, v in enumerate(items))
        refuse_duplicates(
            [(f"{t.at('allowed')}[{i}]", v) for i, v in enumerate(allowed)], "allowed value"
        )
    return FormField(
        name=name,
        type=kind,
        text=t.opt_str("text"),
        unit=t.opt_str("unit"),
        allowed=allowed,
        minimum=minimum,
        maximum=maximum,
        required=True if not t.has("required") else read_bool(t.req("required"), t.at("required")),
        never=False if not t.has("never") else read_bool(t.req("never"), t.at("never")),
    )


def _read_bound(t: Table, key: str, kind: FieldType) -> Decimal | None:
    if not t.has(key):
        return None
    number = read_decimal(t.req(key), t.at(key))  # physical ranges: never negative
    if kind is FieldType.INTEGER and number != number.to_integral_value():
        fail(t.at(key), f"an integer field's bound must be a whole number (got {number})")
    return number


def check_screening_form(
    forms: Sequence[Form], criteria: Sequence[Criterion], *, required: bool
) -> None:
    """Every field the eligibility criteria read must be declared by the screening form,
    with a type the criterion's operator can read.  ``required``: a protocol file being
    loaded must have the form; one read back from a ledger signed before forms existed
    need not."""
    form = next((f for f in forms if f.name == SCREENING), None)
    if form is None:
        if required and criteria:
            raise ProtocolError(
                "forms", f"no {SCREENING!r} form: declare the fields eligibility reads"
            )
        return
    for i, criterion in enumerate(criteria):
        for name in criterion.fields:
            if name not in form.names:
                raise ProtocolError(
                    f"eligibility[{i}]",
                    f"criterion {criterion.code!r} reads field {name!r}, which the "
                    f"{SCREENING} form does not declare (nearest: {form.nearest(name)})",
                )
        reads = [(criterion.field, criterion.op)]
        reads += [(extra, Operator.GE) for extra in (criterion.threshold_field,
                                                      criterion.uln_field) if extra]
        if criterion.applies_if is not None:
            reads.append((criterion.applies_if.field, criterion.applies_if.op))
        for name, op in reads:
            declared = form.field(name).type
            if declared not in _READS[op]:
                raise ProtocolError(
                    f"eligibility[{i}]",
                    f"criterion {criterion.code!r} applies {op} to {name!r}, a {declared} "
                    f"field of the {SCREENING} form",
                )
