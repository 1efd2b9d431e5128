"""C2SP signed notes: Go's published example reproduced byte for byte, the rules for
signature lines a reader knows or not, and trialctl's checkpoints in both forms."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from trialctl.ledger.checkpoint import (
    Checkpoint,
    CheckpointError,
    Form,
    SignedCheckpoint,
    parse_checkpoint,
    sign_checkpoint,
)
from trialctl.ledger.keys import KeyPair
from trialctl.ledger.mapper import format_time
from trialctl.ledger.signed_note import (
    ED25519,
    NoteError,
    NoteSigner,
    Verifier,
    key_id,
    open_note,
    parse_note,
    parse_skey,
    parse_vkey,
    sign_note,
)

# golang.org/x/mod/sumdb/note, note.go's package documentation and note_test.go.
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = ("If you think cryptography is the answer to your problem,\n"
           "then you don't know what your problem is.\n")
GO_NOTE = (GO_TEXT + "\n— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1"
           "FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n")
# The second signature line of the same documentation (a key this test does not hold).
GO_ENOCH = ("— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTG"
            "wnWLox33WWd1RvMc+QQ=\n")


def test_go_example_key_hash_is_sha256_of_name_lf_type_key() -> None:
    # printf 'PeterNeumann\n\x01' | cat - <(echo ARpc2Q…10TW | base64 -d | tail -c 32) \
    #   | sha256sum | cut -c1-8    ->  c74f20a3
    verifier = parse_vkey(GO_VKEY)
    raw = base64.b64decode(GO_VKEY.split("+", 2)[2])[1:]
    expected = hashlib.sha256(b"PeterNeumann\n\x01" + raw).digest()[:4]
    assert verifier.key_id == expected == bytes.fromhex("c74f20a3")
    assert verifier.vkey() == GO_VKEY


def test_go_example_note_verifies_and_signing_reproduces_it() -> None:
    signer = parse_skey(GO_SKEY)
    assert signer.verifier == parse_vkey(GO_VKEY)
    assert sign_note(GO_TEXT, signer).to_text() == GO_NOTE  # Ed25519 is deterministic

    note = parse_note(GO_NOTE)
    assert note.text == GO_TEXT
    assert [s.name for s in open_note(note, [parse_vkey(GO_VKEY)])] == ["PeterNeumann"]


def test_a_reader_keeps_the_lines_it_knows_and_ignores_others() -> None:
    note = parse_note(GO_NOTE + GO_ENOCH)
    assert [s.name for s in note.signatures] == ["PeterNeumann", "EnochRoot"]
    assert note.to_text() == GO_NOTE + GO_ENOCH
    assert [s.name for s in open_note(note, [parse_vkey(GO_VKEY)])] == ["PeterNeumann"]
    with pytest.raises(NoteError, match="no signature on the note is from a known key"):
        open_note(parse_note(GO_TEXT + "\n" + GO_ENOCH), [parse_vkey(GO_VKEY)])


def test_a_known_line_that_fails_rejects_the_note() -> None:
    forged = GO_NOTE.replace("x08go/ZJ", "x08go/ZK")
    with pytest.raises(NoteError, match="does not verify"):
        open_note(parse_note(forged), [parse_vkey(GO_VKEY)])
    # Same name, other key ID: an unknown key, ignored (and then nothing verifies).
    other = Verifier("PeterNeumann", ED25519, bytes(32))
    with pytest.raises(NoteError, match="no signature"):
        open_note(parse_note(GO_NOTE), [other])


@pytest.mark.parametrize(
    ("text", "message"),
    [(GO_NOTE.replace("\n", "\r\n"), "CR LF"), (GO_TEXT, "no blank line"),
     (GO_TEXT + "\n", "no signature line"),
     (GO_TEXT + "\n— Peter Neumann AAAA\n", "signature line"),
     (GO_TEXT + "\n— Peter+Neumann AAAAAAAA\n", "a space or"), (GO_TEXT + "\n— P !!!\n", "base64"),
     (GO_TEXT + "\n— P AAAA\n", "too short"), ("a\tb\n\n— P AAAAAAAA\n", "control")],
    ids=["crlf", "no-blank", "no-signature", "space-in-name", "plus-in-name", "not-base64",
         "short", "tab"],
)
def test_malformed_notes_are_refused(text: str, message: str) -> None:
    with pytest.raises(NoteError, match=message):
        parse_note(text)


@pytest.mark.parametrize(
    "vkey", ["PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
             "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
             "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
             "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"],
    ids=["wrong-hash", "wrong-length", "unknown-algorithm", "space"],
)
def test_go_bad_verifier_keys_are_refused(vkey: str) -> None:
    with pytest.raises(NoteError):
        parse_vkey(vkey)


def _checkpoint(form: Form = "c2sp") -> tuple[Checkpoint, KeyPair]:
    keys = KeyPair.from_private(Ed25519PrivateKey.generate())
    checkpoint = Checkpoint("f621dfd5-6c7d-4ee5-be43-bb774b8a280a", 4, bytes(range(32)),
                            format_time(datetime.now(UTC)), "alice", form)
    return checkpoint, keys


def test_a_trialctl_checkpoint_is_a_c2sp_note_any_note_reader_verifies() -> None:
    checkpoint, keys = _checkpoint()
    signed = sign_checkpoint(checkpoint, keys)
    text = signed.to_text()
    assert text.startswith("trialctl/ledger/f621dfd5-6c7d-4ee5-be43-bb774b8a280a\n4\n")
    public = bytes.fromhex(keys.public_key_hex)
    assert signed.key_hint == key_id("alice", ED25519, public)

    verifier = Verifier("alice", ED25519, public)
    assert [s.name for s in open_note(parse_note(text), [verifier])] == ["alice"]
    parsed = parse_checkpoint(text)
    assert parsed == signed and parsed.to_text() == text
    assert parsed.signature_valid_for(keys.public_key_hex, keys.key_id)


def test_a_checkpoint_keeps_further_signature_lines_and_ignores_them() -> None:
    checkpoint, keys = _checkpoint()
    witness = NoteSigner("witness.example/w1", ED25519, Ed25519PrivateKey.generate())
    text = sign_checkpoint(checkpoint, keys).to_text() + GO_ENOCH
    text += witness.sign(checkpoint.body().encode()).line()
    parsed = parse_checkpoint(text)
    assert [s.name for s in parsed.others] == ["EnochRoot", "witness.example/w1"]
    assert parsed.to_text() == text
    assert parsed.signature_valid_for(keys.public_key_hex, keys.key_id)


def test_legacy_notes_stay_readable_and_keep_their_rules() -> None:
    checkpoint, keys = _checkpoint("legacy")
    signed = sign_checkpoint(checkpoint, keys)
    text = signed.to_text()
    assert text.startswith("trialctl ledger f621dfd5-")
    assert signed.key_hint == bytes.fromhex(keys.key_id)[:4]
    parsed = parse_checkpoint(text)
    assert parsed.checkpoint.form == "legacy"
    assert parsed.signature_valid_for(keys.public_key_hex, keys.key_id)
    with pytest.raises(CheckpointError, match="exactly one signature line"):
        parse_checkpoint(text + GO_ENOCH)


def test_a_note_of_one_form_with_the_other_forms_key_hint_fails() -> None:
    checkpoint, keys = _checkpoint()
    signed = sign_checkpoint(checkpoint, keys)
    legacy_hint = bytes.fromhex(keys.key_id)[:4]
    swapped = SignedCheckpoint(checkpoint, legacy_hint, signed.signature)
    assert not swapped.signature_valid_for(keys.public_key_hex, keys.key_id)
