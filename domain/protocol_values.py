"""Reading one value of a protocol file: its type, its range, and its path in every refusal.

The readers take a parsed value and the path it was found at (``dose_levels[2].dose``;
array indices count from 0) and return it typed, or raise :class:`ProtocolError` whose
message starts with that path.  :class:`Table` reads one TOML table and refuses unknown
keys before anything else is read, so a misspelt key is never mistaken for a missing one.
The loader built on these, table by table, is :mod:`trialctl.domain.protocol_file`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import date, time
from decimal import Decimal
from typing import NoReturn

from trialctl.domain.protocol import NUMBER_TEXT

__all__ = [
    "ProtocolError",
    "Table",
    "TomlFloat",
    "check_lengths",
    "fail",
    "read_bool",
    "read_decimal",
    "read_int",
    "read_list",
    "read_name",
    "read_str",
    "refuse_duplicates",
]

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")

# Length limits, in characters, of a protocol file's text (docs/FORMAT.md, "Limits"),
# checked when a file is read, before anything is signed. Not when a registered protocol
# is read back from the ledger: an entry signed before a limit existed must still read.
PROTOCOL_ID_MAX = 64  # a registry number such as NCT00084513
TEXT_MAX = 4000  # any other text: a title, a criterion, a unit, a code, ...


class ProtocolError(ValueError):
    """A protocol that cannot be accepted; ``path`` names the offending field."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.detail = message


class TomlFloat:
    """Marker for a TOML float literal, so that it can be refused with its path."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def fail(path: str, message: str) -> NoReturn:
    raise ProtocolError(path, message)


def _kind_of(value: object) -> str:
    if isinstance(value, TomlFloat | float):
        return "a float"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, date | time):
        return "a date/time"
    return type(value).__name__


def _refuse_float(value: object, path: str) -> None:
    if isinstance(value, TomlFloat | float):
        fail(
            path,
            f"floats are not allowed (got {value!r}); write the number as a string, "
            f'e.g. "{value!r}"',
        )


def read_str(value: object, path: str) -> str:
    _refuse_float(value, path)
    if not isinstance(value, str):
        fail(path, f"expected a string, got {_kind_of(value)}")
    if not value.strip():
        fail(path, "must not be empty")
    return value


def read_int(value: object, path: str, *, minimum: int = 0) -> int:
    _refuse_float(value, path)
    if isinstance(value, bool) or not isinstance(value, int):
        fail(path, f"expected an integer, got {_kind_of(value)}")
    if value < 0:
        fail(path, f"must not be negative (got {value})")
    if value < minimum:
        fail(path, f"must be at least {minimum} (got {value})")
    return value


def read_decimal(value: object, path: str, *, positive: bool = False) -> Decimal:
    _refuse_float(value, path)
    if isinstance(value, bool):
        fail(path, "expected a number, got a boolean")
    if isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, str) and NUMBER_TEXT.match(value.strip()):
        number = Decimal(value.strip())
    elif isinstance(value, str):
        fail(path, f'expected a number written as digits, e.g. "400" or "2.0", got {value!r}')
    else:
        fail(path, f"expected a number (integer or string), got {_kind_of(value)}")
    if number < 0:
        fail(path, f"must not be negative (got {number})")
    if positive and number == 0:
        fail(path, "must be greater than zero")
    return number


def read_bool(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        fail(path, f"expected true or false, got {_kind_of(value)}")
    return value


def read_name(value: object, path: str) -> str:
    """A code or screening-field name: lower_snake_case."""
    text = read_str(value, path)
    if not _NAME_RE.match(text):
        fail(path, f"{text!r} must be lower_snake_case (letters, digits, underscores)")
    return text


def read_list(value: object, path: str, *, nonempty: bool = True) -> list[object]:
    if not isinstance(value, list | tuple):
        fail(path, f"expected an array, got {_kind_of(value)}")
    if nonempty and not value:
        fail(path, "must not be empty")
    return list(value)


class Table:
    """A TOML table being read: knows its path and refuses unknown keys up front."""

    def __init__(self, value: object, path: str, allowed: Sequence[str]) -> None:
        if not isinstance(value, Mapping):
            fail(path or "<protocol>", f"expected a table, got {_kind_of(value)}")
        self.data: Mapping[str, object] = value
        self.path = path
        self.allowed = tuple(allowed)
        for key in value:
            if key not in self.allowed:
                fail(self.at(str(key)), f"unknown field (allowed: {', '.join(self.allowed)})")

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        assert key in self.allowed, key
        return self.data.get(key) is not None

    def get(self, key: str) -> object | None:
        assert key in self.allowed, key
        return self.data.get(key)

    def req(self, key: str) -> object:
        value = self.get(key)
        if value is None:
            fail(self.at(key), "required field is missing")
        return value

    def tables(self, key: str, allowed: Sequence[str], *, required: bool) -> list[Table]:
        value = self.req(key) if required else self.get(key)
        if value is None:
            return []
        items = read_list(value, self.at(key), nonempty=required)
        return [Table(item, f"{self.at(key)}[{i}]", allowed) for i, item in enumerate(items)]

    def opt_str(self, key: str) -> str | None:
        value = self.get(key)
        return None if value is None else read_str(value, self.at(key))


def check_lengths(data: Mapping[str, object]) -> None:
    """Refuse the first text, in file order, longer than its limit, naming its path."""
    pending: list[tuple[str, object]] = [("", data)]
    while pending:  # a loop, not recursion: the nesting depth is the file author's
        path, value = pending.pop()
        if isinstance(value, str):
            limit = PROTOCOL_ID_MAX if path == "id" else TEXT_MAX
            if len(value) > limit:
                fail(path, f"must be at most {limit} characters (got {len(value)})")
        elif isinstance(value, Mapping):
            pending.extend(
                (f"{path}.{key}" if path else str(key), item)
                for key, item in reversed(list(value.items()))
            )
        elif isinstance(value, list | tuple):
            pending.extend((f"{path}[{i}]", item) for i, item in reversed(list(enumerate(value))))


def refuse_duplicates(items: Sequence[tuple[str, str]], what: str) -> None:
    """``items`` = (path, key); refuse the second occurrence of a key."""
    seen: set[str] = set()
    for path, key in items:
        if key in seen:
            fail(path, f"duplicate {what} {key!r}")
        seen.add(key)
