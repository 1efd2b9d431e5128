"""Canonical JSON (RFC 8785) for everything trialctl signs or hashes.

Signing and checking share this one canonicaliser. Values must already be JSON-native:
floats are refused because a binary float has no exact decimal meaning in a clinical record
(decimals travel as strings).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

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


def is_canonical(value: Any, encoded: bytes) -> bool:
    """Whether `encoded` is exactly the RFC 8785 form of `value` as parsed from it.

    For the JSON trialctl writes (no floats) Python's compact, key-sorted encoder produces the
    RFC 8785 bytes, at C speed; only when it disagrees does the library decide (it differs
    from the fast form only on rare key orders outside the Basic Multilingual Plane).
    """
    try:
        fast = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        if fast.encode("utf-8") == encoded:
            return True
    except UnicodeEncodeError:
        return False
    try:
        return canonical_bytes(value) == encoded
    except PayloadError:
        return False


def canonical_bytes(value: Any) -> bytes:
    """The RFC 8785 canonical UTF-8 encoding of a JSON-native value."""
    return rfc8785.dumps(check_json_value(value))
