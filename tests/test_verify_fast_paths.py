"""verify's fast paths read every entry as the slow ones do: orjson's decoding of a canonical
statement gives `parse_entry`'s Entry, and a worker's compact verdict becomes the same check
result as `check_entry` in one process, for good and hostile bytes alike."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trialctl.ledger import verify_entries
from trialctl.ledger.canonical import canonical_bytes
from trialctl.ledger.entry import (
    MalformedEntryError,
    parse_canonical_entry,
    parse_entry,
    seal,
)
from trialctl.ledger.keys import KeyPair

KEYS = KeyPair.generate()
STATEMENT = {
    "format": "trialctl-event/v1", "position": 3, "aggregate_version": 2,
    "aggregate_id": "e4a22e79-f68c-5242-bd5e-d0ac39048e36",
    "type": "t", "payload": {"dose": "400", "note": "línea\\n\\u2028", "n": 7},
    "recorded_at": "2026-01-01T00:00:00.000000+00:00",
    "actor": {"user_id": "u", "name": "N", "role": "admin", "key_id": KEYS.key_id},
    "meaning": "recorded", "prev_hash": "a" * 64,
}
GOOD = seal(STATEMENT, KEYS)
STATEMENT_BYTES, _, SIGNATURE_LINE = GOOD.partition(b"\n")


def _with_statement(statement_bytes: bytes) -> bytes:
    return statement_bytes + b"\n" + SIGNATURE_LINE


def _edited(**fields: object) -> bytes:
    statement = {**copy.deepcopy(STATEMENT), **fields}
    return seal(statement, KEYS)


HOSTILE = [
    GOOD,
    _edited(payload={"dose": "1"}),
    _with_statement(STATEMENT_BYTES.replace(b'"n":7', b'"n":7.5')),  # a float
    _with_statement(STATEMENT_BYTES.replace(b'"n":7', b'"n":9007199254740993')),  # > 2**53
    _with_statement(STATEMENT_BYTES.replace(b'"n":7', b'"n":99999999999999999999999')),
    _with_statement(STATEMENT_BYTES.replace(b'"n":7', b'"n":NaN')),
    _with_statement(STATEMENT_BYTES.replace(b'"n":7', b'"n":-0')),
    _with_statement(STATEMENT_BYTES.replace(b'"n":7', b'"n":7,"n":8')),  # repeated key
    _with_statement(STATEMENT_BYTES.replace(b'{"actor"', b'{ "actor"')),  # spacing
    _with_statement(b"\xef\xbb\xbf" + STATEMENT_BYTES),  # a byte order mark
    _with_statement(STATEMENT_BYTES.replace(b'"dose":"400"', b'"dose":"\\ud800"')),
    _with_statement(STATEMENT_BYTES.replace(b'"dose":"400"', b'"dose":"\xff"')),
    _with_statement(STATEMENT_BYTES.replace(b'"n":7', b'"n":' + b"[" * 1010 + b"]" * 1010)),
    _with_statement(STATEMENT_BYTES.replace(b'"n":7', b'"n":' + b"[" * 900 + b"]" * 900)),
    _with_statement(canonical_bytes({**STATEMENT, "position": -1})),  # shape
    _with_statement(canonical_bytes([1, 2])),
    _with_statement(canonical_bytes({**STATEMENT, "extra": 1})),
    STATEMENT_BYTES + b"\n" + SIGNATURE_LINE[:-1],  # no final line feed
    STATEMENT_BYTES + b"\n",  # no signature
    STATEMENT_BYTES,  # no signature block
    _with_statement(STATEMENT_BYTES.replace(b'"type":"t"', b'"type":"t\\u0000"')),
    b"",
    b"\n",
]


def _parse_outcome(entry_bytes: bytes) -> object:
    try:
        return parse_entry(entry_bytes)
    except MalformedEntryError as e:
        return f"refused: {e}"


def _fast_outcome(entry_bytes: bytes) -> object:
    try:
        return parse_canonical_entry(entry_bytes)
    except MalformedEntryError as e:
        return f"refused: {e}"


@pytest.mark.parametrize("entry_bytes", HOSTILE)
def test_the_fast_parse_gives_parse_entrys_entry_or_steps_aside(entry_bytes: bytes) -> None:
    fast = _fast_outcome(entry_bytes)
    if fast is not None:
        assert fast == _parse_outcome(entry_bytes)


def test_the_fast_parse_reads_a_canonical_entry() -> None:
    assert parse_canonical_entry(GOOD) == parse_entry(GOOD)
    assert parse_canonical_entry(_with_statement(
        STATEMENT_BYTES.replace(b'"n":7', b'"n":7.5'))) is None


def _verdicts(states: list[bytes]) -> list[verify_entries.Checked]:
    """What the parallel path makes of `states`: the worker's function, then the main
    process's reading of its verdicts."""
    verify_entries._init_worker({KEYS.key_id: KEYS.public_key_hex})
    verdicts = verify_entries._check_batch(states)
    return [verify_entries.checked_from_verdict(s, v)
            for s, v in zip(states, verdicts, strict=True)]


def test_a_workers_verdict_is_check_entrys_result_for_hostile_entries() -> None:
    keys = {KEYS.key_id: KEYS.public_key_hex}
    other = KeyPair.generate()
    states = [*HOSTILE, seal({**STATEMENT, "actor": {**STATEMENT["actor"],  # type: ignore[dict-item]
                                                      "key_id": other.key_id}}, other),
              GOOD.replace(SIGNATURE_LINE[70:80], b"A" * 10)]
    expected = [verify_entries.check_entry(state, keys) for state in states]
    assert _verdicts(states) == expected
    assert expected[0].statement is not None and expected[0].signature_problem is None
    assert expected[-2].signature_problem is not None  # a key the ledger never registered
    assert expected[2].problem is not None and "float" in expected[2].problem


statement_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.text(max_size=6)
    | st.floats(allow_nan=False),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=4), children, max_size=3),
    max_leaves=12,
)


@settings(max_examples=200, deadline=None)
@given(statement_values)
def test_any_payload_reads_the_same_both_ways(payload: object) -> None:
    try:
        statement_bytes = canonical_bytes({**STATEMENT, "payload": {"v": payload}})
    except Exception:  # a float or an unsafe integer: sealed by hand, not canonical
        statement_bytes = STATEMENT_BYTES.replace(b'"n":7', b'"n":' + repr(payload).encode())
    entry_bytes = _with_statement(statement_bytes)
    fast = _fast_outcome(entry_bytes)
    if fast is not None:
        assert fast == _parse_outcome(entry_bytes)
    keys = {KEYS.key_id: KEYS.public_key_hex}
    assert _verdicts([entry_bytes]) == [verify_entries.check_entry(entry_bytes, keys)]
