"""Canonical JSON and the entry format: what is signed is exactly what is stored."""

from __future__ import annotations

import json

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from trialctl.ledger.canonical import canonical_bytes, is_canonical
from trialctl.ledger.entry import MalformedEntryError, parse_entry, seal
from trialctl.ledger.errors import PayloadError
from trialctl.ledger.keys import KeyPair, load_public_key, signature_is_valid

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)

STATEMENT = {
    "format": "trialctl-event/v1", "position": 0, "aggregate_version": 1,
    "aggregate_id": "e4a22e79-f68c-5242-bd5e-d0ac39048e36",  # user:alice, in its one form
    "type": "t", "payload": {"dose": "400", "note": "línea\\n\\u2028"},
    "recorded_at": "2026-01-01T00:00:00.000000+00:00",
    "actor": {"user_id": "u", "name": "N", "role": "admin", "key_id": "0" * 64},
    "meaning": "recorded", "prev_hash": None,
}


@given(json_values)
def test_canonical_bytes_round_trip_and_agree_with_the_fast_check(value: object) -> None:
    encoded = canonical_bytes(value)
    assert encoded == rfc8785.dumps(value)
    parsed = json.loads(encoded)
    assert canonical_bytes(parsed) == encoded
    assert is_canonical(parsed, encoded)


@given(json_values)
def test_any_other_spacing_is_not_canonical(value: object) -> None:
    spaced = json.dumps(value, indent=1).encode()
    assert is_canonical(json.loads(spaced), spaced) == (spaced == rfc8785.dumps(value))


@pytest.mark.parametrize("bad", [1.5, float("nan"), 2**60, {1: "x"}, object()],
                         ids=["float", "nan", "huge-int", "int-key", "object"])
def test_values_without_an_exact_canonical_form_are_refused(bad: object) -> None:
    with pytest.raises(PayloadError):
        canonical_bytes({"payload": bad})


def test_a_sealed_entry_parses_back_and_its_signature_covers_the_stored_bytes() -> None:
    keys = KeyPair.generate()
    stored = seal(STATEMENT, keys)
    entry = parse_entry(stored)
    assert entry.statement == STATEMENT
    assert entry.statement_bytes == stored.split(b"\n", 1)[0] == rfc8785.dumps(STATEMENT)
    public = load_public_key(keys.public_key_hex)
    assert signature_is_valid(public, entry.signatures[0].signature, entry.statement_bytes)
    flipped = bytearray(entry.statement_bytes)
    flipped[10] ^= 1
    assert not signature_is_valid(public, entry.signatures[0].signature, bytes(flipped))


def test_repeated_keys_are_not_canonical() -> None:
    text = rfc8785.dumps(STATEMENT).replace(b'"meaning":"recorded"',
                                            b'"meaning":"approved","meaning":"recorded"')
    assert not is_canonical(json.loads(text), text)


@pytest.mark.parametrize(
    ("stored", "message"),
    [
        (b'{"a":1}', "no signature block"),
        (b"not json\n" + b"0" * 64 + b" AAAA\n", "not JSON"),
        (rfc8785.dumps({**STATEMENT, "payload": {"x": 1}}).replace(b'"x":1', b'"x":1.5')
         + b"\n" + b"0" * 64 + b" " + b"A" * 88 + b"\n", "float"),
        (rfc8785.dumps(STATEMENT) + b"\n", "carries no signature"),
        (rfc8785.dumps({**STATEMENT, "extra": 1}) + b"\n", "unexpected"),
    ],
    ids=["no-signature-block", "not-json", "float", "unsigned", "extra-field"],
)
def test_malformed_entries_are_named(stored: bytes, message: str) -> None:
    with pytest.raises(MalformedEntryError, match=message):
        parse_entry(stored)
