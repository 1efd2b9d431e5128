"""Canonical JSON (RFC 8785) for everything trialctl signs or hashes.

Signing and checking share this one canonicaliser. Values must already be JSON-native:
floats are refused because a binary float has no exact decimal meaning in a clinical record
(decimals travel as strings).

The `rfc8785` library is the authority. It is pure Python, so values it would encode
exactly as orjson does (see `_fast_path_is_exact`) are encoded by orjson at C speed; any
other value, and any value orjson refuses, goes to the library.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import orjson
import rfc8785

from trialctl.ledger.errors import PayloadError

JSONValue = None | bool | int | str | list["JSONValue"] | dict[str, "JSONValue"]

# RFC 8785 serialises numbers as IEEE doubles; integers beyond 2**53 would lose digits.
MAX_SAFE_INTEGER = 2**53 - 1


def check_json_value(value: Any, path: str = "$") -> JSONValue:
    """Return `value` if it is JSON-native and exactly representable, else raise PayloadError."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise PayloadError(f"{path}: integer {value} is too large; write it as a string")
        return value
    if isinstance(value, float):
        raise PayloadError(f"{path}: floats are not allowed; write decimals as strings")
    if isinstance(value, (list, tuple)):
        return [check_json_value(item, f"{path}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, Mapping):
        checked: dict[str, JSONValue] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise PayloadError(f"{path}: object keys must be strings, not {key!r}")
            checked[key] = check_json_value(item, f"{path}.{key}")
        return checked
    raise PayloadError(f"{path}: {type(value).__name__} has no canonical JSON form")


def _fast_path_is_exact(value: Any) -> bool:
    """Whether orjson with sorted keys gives exactly the RFC 8785 bytes for `value`.

    The rule, and why it suffices: `value` holds only exact `None`, `bool`, `str`, `list`,
    `tuple`, `dict` with `str` keys, `StrEnum` members (whose value is their text), and
    `int` within +-(2**53 - 1) (no floats, no other subclasses, which orjson could treat
    differently). For those, orjson's output is the
    RFC 8785 output: integers in that range print as their plain digits in both, strings
    escape the same characters the same way (tested byte for byte), and separators match.
    Only key order can differ: orjson sorts keys by code point, RFC 8785 by UTF-16 code
    unit, and those agree except where the first characters in which two keys differ are
    one in U+E000-U+FFFF and one above U+FFFF (whose surrogates, U+D800-U+DBFF, sort
    first). So an object whose keys, taken together, hold characters of both kinds goes
    to the library. Lone surrogates are not UTF-8: orjson refuses them and the library
    decides (and refuses them too).
    """
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if isinstance(value, StrEnum):  # a meaning or role: both write its text, its value
        return True
    if kind is int:
        return bool(-MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER)
    if kind is dict:
        private_use = astral = False
        for key, item in value.items():
            if type(key) is not str:
                return False
            if not key.isascii():
                top = max(key)
                if top > "\uffff":
                    astral = True
                    private_use = private_use or any("\ue000" <= c <= "\uffff" for c in key)
                elif top >= "\ue000":
                    private_use = True
            if not _fast_path_is_exact(item):
                return False
        return not (private_use and astral)
    if kind is list or kind is tuple:
        return all(_fast_path_is_exact(item) for item in value)
    return False


def is_canonical(value: Any, encoded: bytes) -> bool:
    """Whether `encoded` is exactly the RFC 8785 form of `value` as parsed from it."""
    try:
        return canonical_bytes(value) == encoded
    except PayloadError:
        return False


def canonical_bytes(value: Any) -> bytes:
    """The RFC 8785 canonical UTF-8 encoding of a JSON-native value."""
    if _fast_path_is_exact(value):
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:  # lone surrogates, or nesting deeper than orjson goes
            pass
    checked = check_json_value(value)
    try:
        return bytes(rfc8785.dumps(checked))
    except rfc8785.CanonicalizationError as e:
        raise PayloadError(f"no canonical JSON form: {e}") from e
