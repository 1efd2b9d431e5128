"""Data-collection forms declared by the protocol, and the checks a filled form must pass.

A protocol declares each form (``[[forms]]``, the first being ``screening``) as a list of
fields: name, type, unit, allowed values or physical range, required or optional.  A value
handed in for a form is checked against its field before anything is signed: an unknown
field (named with the nearest known one), a value of the wrong type or unit, or one outside
the field's physical range is refused.  A field left out is not an error here: it is
*missing*, and a required field missing makes the form incomplete (its criteria are "not
assessed", never "failed").  Reading the ``[[forms]]`` tables of a protocol file is
:mod:`trialctl.domain.protocol_forms`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Any

__all__ = [
    "NEVER",
    "SCREENING",
    "FieldType",
    "Form",
    "FormError",
    "FormField",
    "is_missing",
]

SCREENING = "screening"
"""The name of the form whose values eligibility is evaluated from."""

NEVER = "never"
"""A date field's value meaning "no such exposure" (when the field allows it)."""

_INTEGER_RE = re.compile(r"^[+-]?\d+$")
_DECIMAL_RE = re.compile(r"^[+-]?\d+(\.\d+)?$")
# "0.9 mg/dL": a number followed by the unit it was measured in.
_WITH_UNIT_RE = re.compile(r"^\s*([+-]?\d+(?:\.\d+)?)\s*([^\d\s.].*?)\s*$")
_TRUE_WORDS = frozenset({"true", "yes"})
_FALSE_WORDS = frozenset({"false", "no"})


class FieldType(StrEnum):
    INTEGER = "integer"
    DECIMAL = "decimal"
    BOOLEAN = "boolean"
    TEXT = "text"
    DATE = "date"


class FormError(ValueError):
    """A filled form refused; ``field`` names the offending field."""

    def __init__(self, form: str, field: str, message: str) -> None:
        # A name from outside (an unknown key) is quoted if it is not a plain identifier,
        # so the refusal stays one readable line.
        shown = field if field.isidentifier() and field.isascii() else repr(field)
        super().__init__(f"{form} form: {shown}: {message}")
        self.form = form
        self.field = field


def is_missing(value: object) -> bool:
    """Absent, null or blank: not given (the same rule as eligibility's)."""
    return value is None or (isinstance(value, str) and not value.strip())


def _shown(value: object) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, bool):
        return str(value).lower()
    if value is None or isinstance(value, int | Decimal):
        return str(value)
    return f"a {type(value).__name__}"  # a list or an object: its kind, not its content


@dataclass(frozen=True)
class FormField:
    """One field of a form: what a value must be to be accepted."""

    name: str
    type: FieldType
    text: str | None = None
    unit: str | None = None
    allowed: tuple[str, ...] = ()
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    required: bool = True
    never: bool = False  # a date field that accepts "never"

    def __post_init__(self) -> None:
        numeric = self.type in (FieldType.INTEGER, FieldType.DECIMAL)
        if (self.minimum is not None or self.maximum is not None) and not numeric:
            raise ValueError(f"field {self.name!r}: min/max are only for numbers")
        if self.unit is not None and not numeric:
            raise ValueError(f"field {self.name!r}: a unit is only for numbers")
        if self.allowed and self.type is not FieldType.TEXT:
            raise ValueError(f"field {self.name!r}: allowed values are only for text")
        if self.never and self.type is not FieldType.DATE:
            raise ValueError(f"field {self.name!r}: never is only for dates")
        if (
            self.minimum is not None
            and self.maximum is not None
            and self.minimum > self.maximum
        ):
            raise ValueError(f"field {self.name!r}: min {self.minimum} > max {self.maximum}")

    # -- what the field accepts ------------------------------------------------
    def describe(self) -> str:
        """What a value must be, e.g. ``integer 0..5`` or ``one of "0", "1+"``."""
        if self.type is FieldType.TEXT and self.allowed:
            return "one of " + ", ".join(f'"{a}"' for a in self.allowed)
        if self.type is FieldType.DATE:
            return 'ISO date (YYYY-MM-DD) or "never"' if self.never else "ISO date (YYYY-MM-DD)"
        if self.type is FieldType.BOOLEAN:
            return "true or false"
        kind = "a whole number" if self.type is FieldType.INTEGER else "a number"
        if self.minimum is None and self.maximum is None:
            return kind if self.type is not FieldType.TEXT else "any text"
        return f"{kind} {self.range_text}"

    @property
    def range_text(self) -> str:
        low = "" if self.minimum is None else str(self.minimum)
        high = "" if self.maximum is None else str(self.maximum)
        unit = f" {self.unit}" if self.unit else ""
        return f"{low}..{high}{unit}"

    def check(self, form: str, value: object, on: date | None = None) -> Any:
        """The value as stored (JSON-native), or FormError naming this field.  ``on`` is
        the form's date: a date after it is refused."""

        def refuse(message: str) -> FormError:
            return FormError(form, self.name, message)

        if self.type is FieldType.BOOLEAN:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in _TRUE_WORDS | _FALSE_WORDS:
                return value.strip().lower() in _TRUE_WORDS
            raise refuse(f"expected true or false, got {_shown(value)}")
        if self.type is FieldType.TEXT:
            if not isinstance(value, str):
                raise refuse(f"expected text, got {_shown(value)}")
            text = value.strip()
            if self.allowed and text not in self.allowed:
                raise refuse(f"{text!r} is not one of {', '.join(map(repr, self.allowed))}")
            return text
        if self.type is FieldType.DATE:
            if not isinstance(value, str):
                raise refuse(f"expected {self.describe()}, got {_shown(value)}")
            text = value.strip()
            if self.never and text.lower() == NEVER:
                return NEVER
            try:
                day = date.fromisoformat(text)
            except ValueError:
                raise refuse(f"expected {self.describe()}, got {value!r}") from None
            if len(text) != 10:  # fromisoformat also takes 20260107 and week dates
                raise refuse(f"expected {self.describe()}, got {value!r}")
            if on is not None and day > on:
                raise refuse(f"{text} is after the form's date {on.isoformat()}")
            return text
        return self._check_number(value, refuse)

    def _check_number(self, value: object, refuse: Callable[[str], FormError]) -> Any:
        integer = self.type is FieldType.INTEGER
        kind = "a whole number" if integer else "a number"
        unit = f" in {self.unit}" if self.unit else ""
        if isinstance(value, bool) or not isinstance(value, int | str | Decimal):
            if isinstance(value, float):
                raise refuse(f"give decimals as text (\"{value}\"), not as a JSON float")
            raise refuse(f"expected {kind}{unit}, got {_shown(value)}")
        stored: Any = value
        if isinstance(value, str):
            text = value.strip()
            pattern = _INTEGER_RE if integer else _DECIMAL_RE
            if not pattern.match(text):
                given = _WITH_UNIT_RE.match(text)
                if given is None or not pattern.match(given.group(1)):
                    raise refuse(f"expected {kind}{unit}, got {value!r}")
                if self.unit is None or given.group(2) != self.unit:
                    wanted = f"is in {self.unit}" if self.unit else "has no unit"
                    raise refuse(f"{wanted}, not {given.group(2)} (got {value!r})")
                text = given.group(1)
            stored = int(text) if integer else text
        elif isinstance(value, Decimal):
            if not value.is_finite():
                raise refuse(f"expected {kind}{unit}, got {value}")
            if integer and value != value.to_integral_value():
                raise refuse(f"expected {kind}{unit}, got {value}")
            stored = int(value) if integer else str(value)
        number = Decimal(stored)
        if (self.minimum is not None and number < self.minimum) or (
            self.maximum is not None and number > self.maximum
        ):
            raise refuse(f"{number} is outside its range {self.range_text}")
        return stored

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"name": self.name, "type": str(self.type)}
        if self.text is not None:
            out["text"] = self.text
        if self.unit is not None:
            out["unit"] = self.unit
        if self.allowed:
            out["allowed"] = list(self.allowed)
        if self.minimum is not None:
            out["min"] = str(self.minimum)
        if self.maximum is not None:
            out["max"] = str(self.maximum)
        out["required"] = self.required
        if self.never:
            out["never"] = True
        return out


@dataclass(frozen=True)
class Form:
    """A data-collection form: its name and its fields, in the protocol's order."""

    name: str
    fields: tuple[FormField, ...]
    title: str | None = None

    def __post_init__(self) -> None:
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise ValueError(f"form {self.name!r}: duplicate field names")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def field(self, name: str) -> FormField:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(name)

    def nearest(self, name: str) -> str:
        """The declared field closest in spelling to ``name`` (for a refusal's hint)."""
        close = difflib.get_close_matches(name, self.names, n=1, cutoff=0.0)
        return close[0] if close else self.names[0]

    def check(self, values: Mapping[str, object], on: date | None = None) -> dict[str, Any]:
        """The values as stored, every one checked against its field; FormError on the
        first field (in the form's order, unknown fields first) that is refused.  Values
        not given (null or blank) are left out: they are missing, not wrong."""
        known = set(self.names)
        for name in values:
            if name not in known:
                raise FormError(
                    self.name,
                    str(name),
                    f"unknown field (nearest known field: {self.nearest(str(name))})",
                )
        return {
            f.name: f.check(self.name, values[f.name], on)
            for f in self.fields
            if f.name in values and not is_missing(values[f.name])
        }

    def missing_required(self, values: Mapping[str, object]) -> tuple[str, ...]:
        """Required fields not given, in the form's order."""
        return tuple(
            f.name for f in self.fields if f.required and is_missing(values.get(f.name))
        )

    def template(self) -> dict[str, None]:
        """A fill-in template: every field, in order, with no value yet."""
        return dict.fromkeys(self.names)

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"name": self.name}
        if self.title is not None:
            out["title"] = self.title
        out["fields"] = [f.to_dict() for f in self.fields]
        return out
