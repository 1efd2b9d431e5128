"""Canonical JSON and the entry format: what is signed is exactly what is stored."""

from __future__ import annotations

import json

import pytest
import rfc8785
from hypothesis import example, given, settings
from hypothesis import strategies as st

from trialctl.ledger import canonical
from trialctl.ledger import keys as keys_module
from trialctl.ledger.canonical import canonical_bytes, is_canonical
from trialctl.ledger.entry import MalformedEntryError, parse_entry, seal
from trialctl.ledger.errors import PayloadError
from trialctl.ledger.keys import KeyPair, load_public_key, signature_check, signature_is_valid
from trialctl.ledger.roles import Meaning

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)

# Keys where code-point order (orjson, Python) and UTF-16 order (RFC 8785) can disagree:
# characters in U+E000-U+FFFF against characters above U+FFFF, next to ordinary ones.
edge_keys = st.text(st.sampled_from(
    ["a", "z", "\u00e9", "\ud7ff", "\ue000", "\uf8ff", "\uffff", "\U00010000", "\U0001F600",
     "\U0010FFFF"]), max_size=3) | st.text(max_size=4)
edge_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(edge_keys, children, max_size=5),
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


@settings(max_examples=150)
@given(edge_values)
@example({"\ue000": 1, "\U0001F600": 2})
@example({"x\ue000": {"\U00010000": [1]}, "x\U0010FFFF": None})
def test_the_fast_path_gives_the_library_bytes_on_edge_keys(value: object) -> None:
    encoded = rfc8785.dumps(value)
    assert canonical_bytes(value) == encoded
    assert is_canonical(value, encoded)
    in_code_point_order = json.dumps(value, sort_keys=True, separators=(",", ":"),
                                     ensure_ascii=False).encode()
    assert is_canonical(value, in_code_point_order) == (in_code_point_order == encoded)


def test_keys_in_code_point_order_are_not_canonical_where_utf16_order_differs() -> None:
    value = {"\ue000": 1, "\U0001F600": 2}
    python_order = '{"\ue000":1,"\U0001F600":2}'.encode()
    assert not is_canonical(value, python_order)
    assert canonical_bytes(value) == '{"\U0001F600":2,"\ue000":1}'.encode()


def test_ordinary_statements_never_reach_the_library(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(value: object) -> bytes:
        raise AssertionError("the library was asked")

    statement = {**STATEMENT, "meaning": Meaning.RECORDED}  # as the recorder builds it
    expected = rfc8785.dumps(statement)
    monkeypatch.setattr(canonical.rfc8785, "dumps", refuse)
    assert canonical_bytes(statement) == expected


def test_lone_surrogates_have_no_canonical_form() -> None:
    with pytest.raises(PayloadError, match="no canonical JSON form"):
        canonical_bytes({"note": "\ud800"})
    assert not is_canonical(json.loads(b'{"note":"\\ud800"}'), b'{"note":"\\ud800"}')


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


@pytest.mark.parametrize("library", ["libsodium", "cryptography"])
def test_both_verify_libraries_accept_exactly_the_good_signature(
    library: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if library == "cryptography":
        monkeypatch.setattr(keys_module, "crypto_sign_open", None)
    keys = KeyPair.generate()
    message = rfc8785.dumps(STATEMENT)
    signature = keys.sign(message)
    is_valid = signature_check(keys.public_key_hex)
    assert is_valid(signature, message)
    assert not is_valid(signature, message + b" ")
    assert not is_valid(signature[:-1] + bytes([signature[-1] ^ 1]), message)
    assert not is_valid(signature[:63], message)
    assert not signature_check(KeyPair.generate().public_key_hex)(signature, message)


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
