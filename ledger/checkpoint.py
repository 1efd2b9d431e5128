"""Signed tree heads ("checkpoints") as signed notes, in the transparency-log style.

    trialctl ledger <ledger id>          origin
    <tree size>                          decimal
    <base64 Merkle root>
    time <UTC ISO 8601>                  extra lines
    signer <user id>
    <blank line>
    — <user id> <base64(first 4 bytes of key id || Ed25519 signature)>

The signature covers the body: every line up to and including the LF before the blank line.
Text goes to object and back to the same text.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from trialctl.ledger.entry import is_recorded_at
from trialctl.ledger.keys import KeyPair, load_public_key, signature_is_valid

ORIGIN_PREFIX = "trialctl ledger "
SIGNATURE_DASH = "\u2014"
MAX_NOTE_BYTES = 64 * 1024


class CheckpointError(ValueError):
    """A checkpoint file that is malformed, or whose signature does not hold."""


@dataclass(frozen=True)
class Checkpoint:
    ledger_id: str
    tree_size: int
    root_hash: bytes
    time: str
    signer: str

    def body(self) -> str:
        return (
            f"{ORIGIN_PREFIX}{self.ledger_id}\n"
            f"{self.tree_size}\n"
            f"{base64.b64encode(self.root_hash).decode('ascii')}\n"
            f"time {self.time}\n"
            f"signer {self.signer}\n"
        )


@dataclass(frozen=True)
class SignedCheckpoint:
    checkpoint: Checkpoint
    key_hint: bytes
    signature: bytes

    def to_text(self) -> str:
        blob = base64.b64encode(self.key_hint + self.signature).decode("ascii")
        return (
            f"{self.checkpoint.body()}\n"
            f"{SIGNATURE_DASH} {self.checkpoint.signer} {blob}\n"
        )

    def signature_valid_for(self, public_key_hex: str, key_id: str) -> bool:
        if bytes.fromhex(key_id)[:4] != self.key_hint:
            return False
        body = self.checkpoint.body().encode("utf-8")
        return signature_is_valid(load_public_key(public_key_hex), self.signature, body)


def sign_checkpoint(checkpoint: Checkpoint, keys: KeyPair) -> SignedCheckpoint:
    signature = keys.sign(checkpoint.body().encode("utf-8"))
    return SignedCheckpoint(checkpoint, bytes.fromhex(keys.key_id)[:4], signature)


def parse_checkpoint(text: str) -> SignedCheckpoint:
    """Parse a signed checkpoint note; each malformation has its own message."""
    if len(text.encode("utf-8")) > MAX_NOTE_BYTES:
        raise CheckpointError("checkpoint is too large to be a signed note")
    if "\r" in text:
        raise CheckpointError("checkpoint lines must end with LF alone, not CR LF")
    body, separator, signature_block = text.partition("\n\n")
    if not separator:
        raise CheckpointError("checkpoint has no blank line before its signature")
    lines = body.split("\n")
    if len(lines) != 5:
        raise CheckpointError(f"checkpoint body has {len(lines)} lines; expected 5")
    origin, size_text, root_text, time_line, signer_line = lines
    if not origin.startswith(ORIGIN_PREFIX) or not origin[len(ORIGIN_PREFIX):]:
        raise CheckpointError(f"checkpoint origin {origin!r} is not a trialctl ledger")
    if not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
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
    checkpoint = Checkpoint(
        ledger_id=origin[len(ORIGIN_PREFIX):],
        tree_size=int(size_text),
        root_hash=root,
        time=time_line[len("time "):],
        signer=signer_line[len("signer "):],
    )
    signature_lines = signature_block.split("\n")
    if len(signature_lines) != 2 or signature_lines[1] != "":
        raise CheckpointError("checkpoint must end with exactly one signature line")
    parts = signature_lines[0].split(" ")
    if len(parts) != 3 or parts[0] != SIGNATURE_DASH:
        raise CheckpointError("checkpoint signature line is not '— <signer> <signature>'")
    if parts[1] != checkpoint.signer:
        raise CheckpointError("checkpoint is signed by someone other than its 'signer' line")
    try:
        blob = base64.b64decode(parts[2], validate=True)
    except binascii.Error as e:
        raise CheckpointError("checkpoint signature is not base64") from e
    if len(blob) != 4 + 64:
        raise CheckpointError("checkpoint signature has the wrong length")
    signed = SignedCheckpoint(checkpoint, blob[:4], blob[4:])
    if signed.to_text() != text:
        raise CheckpointError("checkpoint is not in canonical form")
    return signed
