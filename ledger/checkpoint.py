"""Signed tree heads ("checkpoints") as C2SP signed notes (c2sp.org/tlog-checkpoint).

trialctl writes this form:

    trialctl/ledger/<ledger id>          origin: a schema-less log name, no spaces
    <tree size>                          decimal
    <base64 Merkle root>
    time <UTC ISO 8601>                  extension lines
    signer <user id>
    <blank line>
    — <user id> <base64(key ID || Ed25519 signature)>      the signer's line
    — <witness> <base64(key ID || timestamp || signature)> cosignatures, any number

The key ID is SHA-256(user id || LF || 0x01 || public key)[:4] (c2sp.org/signed-note), so Go's
note package and other C2SP tools read these notes. Lines from keys a reader does not know
are kept and ignored.

Notes written before (the "legacy" form) stay readable: origin "trialctl ledger <ledger id>",
key hint SHA-256(public key)[:4] (the start of the key id), exactly one signature line.

The signature covers the body: every line up to and including the LF before the blank line.
Text goes to object and back to the same text.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final, Literal

from trialctl.ledger.entry import is_recorded_at
from trialctl.ledger.errors import CheckpointError as CheckpointError  # re-exported: its old home
from trialctl.ledger.keys import KeyPair, key_id_of
from trialctl.ledger.signed_note import (
    ED25519,
    MAX_NOTE_BYTES,
    Note,
    NoteError,
    NoteSignature,
    Verifier,
    ed25519_valid,
    key_id,
    parse_note,
)

ORIGIN_PREFIX: Final = "trialctl/ledger/"
LEGACY_ORIGIN_PREFIX: Final = "trialctl ledger "
SIGNATURE_DASH: Final = "\u2014"

Form = Literal["c2sp", "legacy"]


@dataclass(frozen=True)
class Checkpoint:
    ledger_id: str
    tree_size: int
    root_hash: bytes
    time: str
    signer: str
    form: Form = "c2sp"

    @property
    def origin(self) -> str:
        prefix = ORIGIN_PREFIX if self.form == "c2sp" else LEGACY_ORIGIN_PREFIX
        return f"{prefix}{self.ledger_id}"

    def body(self) -> str:
        return (
            f"{self.origin}\n"
            f"{self.tree_size}\n"
            f"{base64.b64encode(self.root_hash).decode('ascii')}\n"
            f"time {self.time}\n"
            f"signer {self.signer}\n"
        )


def signer_key_hint(checkpoint: Checkpoint, public_key: bytes) -> bytes:
    """The key ID a signer's line carries in the checkpoint's form."""
    if checkpoint.form == "legacy":
        return bytes.fromhex(key_id_of(public_key))[:4]
    return key_id(checkpoint.signer, ED25519, public_key)


@dataclass(frozen=True)
class SignedCheckpoint:
    checkpoint: Checkpoint
    key_hint: bytes
    signature: bytes
    # Further signature lines, as read: witnesses' cosignatures and keys trialctl ignores.
    others: tuple[NoteSignature, ...] = ()

    @property
    def signer_line(self) -> NoteSignature:
        return NoteSignature(self.checkpoint.signer, self.key_hint, self.signature)

    @property
    def note(self) -> Note:
        return Note(self.checkpoint.body(), (self.signer_line, *self.others))

    def to_text(self) -> str:
        return self.note.to_text()

    def with_signatures(self, added: tuple[NoteSignature, ...]) -> SignedCheckpoint:
        merged = self.note.with_signatures(added).signatures[1:]
        return replace(self, others=merged)

    def signature_valid_for(self, public_key_hex: str, key_id_hex: str) -> bool:
        """True when the signer's line is this key's and its signature holds."""
        public_key = bytes.fromhex(public_key_hex)
        if signer_key_hint(self.checkpoint, public_key) != self.key_hint:
            return False
        body = self.checkpoint.body().encode("utf-8")
        return ed25519_valid(public_key, self.signature, body)


def check_signed_by(signed: SignedCheckpoint, verifiers: Sequence[Verifier]) -> Verifier:
    """The given verifier key (`witness log-key`'s `user+hash+key`) whose signature the
    note's signer line carries; CheckpointError, saying why, when none does. Only Ed25519
    keys (type 0x01) of the name on the note's `signer` line are tried: a witness's
    cosignature does not stand for the log's own signature."""
    named = [v for v in verifiers
             if v.key_type == ED25519 and v.name == signed.checkpoint.signer]
    if not named:
        names = ", ".join(sorted({v.name for v in verifiers})) or "none"
        raise CheckpointError(f"the note is signed by {signed.checkpoint.signer!r}, and no "
                              f"Ed25519 verifier key of that name was given (given: {names})")
    for verifier in named:
        if signed.signature_valid_for(verifier.public_key.hex(), ""):
            return verifier
    raise CheckpointError(f"the signature of {signed.checkpoint.signer!r} does not verify "
                          "with the verifier key given")


def sign_checkpoint(checkpoint: Checkpoint, keys: KeyPair) -> SignedCheckpoint:
    signature = keys.sign(checkpoint.body().encode("utf-8"))
    hint = signer_key_hint(checkpoint, bytes.fromhex(keys.public_key_hex))
    return SignedCheckpoint(checkpoint, hint, signature)


def read_checkpoint_file(path: Path) -> SignedCheckpoint:
    """Read a note as stored (no newline translation, so a CR is refused)."""
    data = path.read_bytes()
    try:
        return parse_checkpoint(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise CheckpointError("checkpoint is not UTF-8 text") from e


def parse_checkpoint(text: str) -> SignedCheckpoint:
    """Parse a signed checkpoint note in either form; each malformation has its own message."""
    if len(text.encode("utf-8")) > MAX_NOTE_BYTES:
        raise CheckpointError("checkpoint is too large to be a signed note")
    if "\r" in text:
        raise CheckpointError("checkpoint lines must end with LF alone, not CR LF")
    form: Form = "legacy" if text.startswith(LEGACY_ORIGIN_PREFIX) else "c2sp"
    try:
        note = parse_note(text)
    except NoteError as e:
        raise CheckpointError(f"checkpoint is not a signed note: {e}") from e
    checkpoint = _parse_body(note.text, form)
    first, *others = note.signatures
    if form == "legacy" and others:
        raise CheckpointError("checkpoint must end with exactly one signature line")
    if first.name != checkpoint.signer:
        raise CheckpointError("checkpoint is signed by someone other than its 'signer' line")
    if len(first.signature) != 64:
        raise CheckpointError("checkpoint signature has the wrong length")
    signed = SignedCheckpoint(checkpoint, first.key_id, first.signature, tuple(others))
    if signed.to_text() != text:
        raise CheckpointError("checkpoint is not in canonical form")
    return signed


def _parse_body(body: str, form: Form) -> Checkpoint:
    lines = body.split("\n")[:-1]
    if len(lines) != 5:
        raise CheckpointError(f"checkpoint body has {len(lines)} lines; expected 5")
    origin, size_text, root_text, time_line, signer_line = lines
    prefix = LEGACY_ORIGIN_PREFIX if form == "legacy" else ORIGIN_PREFIX
    ledger_id = origin[len(prefix):]
    if not origin.startswith(prefix) or not ledger_id or " " in ledger_id:
        raise CheckpointError(f"checkpoint origin {origin!r} is not a trialctl ledger")
    if not size_text.isascii() or not size_text.isdigit() or \
            (size_text != "0" and size_text.startswith("0")):
        raise CheckpointError(f"checkpoint tree size {size_text!r} is not a decimal number")
    try:
        root = base64.b64decode(root_text, validate=True)
    except binascii.Error as e:
        raise CheckpointError("checkpoint root is not base64") from e
    if len(root) != 32:
        raise CheckpointError(f"checkpoint root is {len(root)} bytes; a SHA-256 is 32")
    if not time_line.startswith("time ") or not signer_line.startswith("signer "):
        raise CheckpointError("checkpoint lacks its 'time' and 'signer' lines")
    if not is_recorded_at(time_line[len("time "):]):
        raise CheckpointError("checkpoint time is not a UTC time in the form "
                              "YYYY-MM-DDTHH:MM:SS.ffffff+00:00")
    return Checkpoint(ledger_id, int(size_text), root, time_line[len("time "):],
                      signer_line[len("signer "):], form)
