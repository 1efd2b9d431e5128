"""C2SP signed notes (c2sp.org/signed-note): text, a blank line, then signature lines.

    <text, every line ending in LF>
    <blank line>
    — <key name> <base64(4-byte key ID || signature)>     one or more

A key is named, and identified by its name and its key ID: the first four bytes of
SHA-256(name || LF || type || public key), where type is 0x01 for a plain Ed25519 signature
and 0x04 for a timestamped cosignature (c2sp.org/tlog-cosignature). A verifier keeps the
signature lines whose name and key ID it knows, ignores the rest, rejects the note when a
known one fails, and accepts nothing if none of them verifies. This is what Go's
golang.org/x/mod/sumdb/note does; its published example note is in the tests.

Pure functions over text and keys; no I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

DASH: Final = "\u2014"
ED25519: Final = 0x01
COSIGNATURE_V1: Final = 0x04
MAX_NOTE_BYTES: Final = 64 * 1024
MAX_SIGNATURES: Final = 64  # the spec asks a reader to take at least 16


class NoteError(ValueError):
    """A note, key or signature line that is not in the signed-note form."""


def check_key_name(name: str) -> str:
    if not name or any(c.isspace() or c == "+" for c in name):
        raise NoteError(f"key name {name!r} is empty or holds a space or '+'")
    return name


def key_id(name: str, key_type: int, public_key: bytes) -> bytes:
    """SHA-256(name || LF || type || public key)[:4], as c2sp.org/signed-note recommends."""
    check_key_name(name)
    material = name.encode("utf-8") + b"\n" + bytes([key_type]) + public_key
    return hashlib.sha256(material).digest()[:4]


def raw_public_key(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True)
class NoteSignature:
    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        blob = base64.b64encode(self.key_id + self.signature).decode("ascii")
        return f"{DASH} {self.name} {blob}\n"


@dataclass(frozen=True)
class Note:
    text: str
    signatures: tuple[NoteSignature, ...]

    def to_text(self) -> str:
        return self.text + "\n" + "".join(s.line() for s in self.signatures)

    def with_signatures(self, added: Iterable[NoteSignature]) -> Note:
        """The note with more signature lines; a line already present is not repeated."""
        merged = list(self.signatures)
        merged.extend(s for s in added if s not in merged)
        return Note(self.text, tuple(merged))


@dataclass(frozen=True)
class Verifier:
    """A public key under its name, for one signature type."""

    name: str
    key_type: int
    public_key: bytes

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.key_type, self.public_key)

    def vkey(self) -> str:
        """The verifier key text: name+hex(key ID)+base64(type || public key)."""
        material = base64.b64encode(bytes([self.key_type]) + self.public_key).decode("ascii")
        return f"{self.name}+{self.key_id.hex()}+{material}"

    def matches(self, signature: NoteSignature) -> bool:
        return signature.name == self.name and signature.key_id == self.key_id


def parse_vkey(text: str) -> Verifier:
    """Read `name+hex(key ID)+base64(type || key)`; the key ID must be the key's own."""
    parts = text.strip().split("+", 2)  # base64 may hold '+'
    if len(parts) != 3:
        raise NoteError("a verifier key is name+keyid+base64(key)")
    name, hint, material = parts
    check_key_name(name)
    try:
        raw = base64.b64decode(material, validate=True)
        hint_bytes = bytes.fromhex(hint)
    except (binascii.Error, ValueError) as e:
        raise NoteError("a verifier key's key ID is hex and its key base64") from e
    if len(hint_bytes) != 4 or len(hint) != 8:
        raise NoteError("a verifier key's key ID is 8 hex digits")
    if len(raw) != 33 or raw[0] not in (ED25519, COSIGNATURE_V1):
        raise NoteError("a verifier key must hold a 32-byte Ed25519 key (type 0x01 or 0x04)")
    verifier = Verifier(name, raw[0], raw[1:])
    if verifier.key_id != hint_bytes:
        raise NoteError("a verifier key's key ID does not match its name and key")
    return verifier


@dataclass(frozen=True)
class NoteSigner:
    """A private Ed25519 key under its name."""

    name: str
    key_type: int
    private_key: Ed25519PrivateKey

    @property
    def verifier(self) -> Verifier:
        return Verifier(self.name, self.key_type, raw_public_key(self.private_key.public_key()))

    def sign(self, message: bytes) -> NoteSignature:
        return NoteSignature(self.name, self.verifier.key_id, self.private_key.sign(message))


def parse_skey(text: str) -> NoteSigner:
    """Read Go's private key text: PRIVATE+KEY+name+hex(key ID)+base64(0x01 || seed)."""
    parts = text.strip().split("+", 4)
    if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
        raise NoteError("a signer key is PRIVATE+KEY+name+keyid+base64(seed)")
    try:
        raw = base64.b64decode(parts[4], validate=True)
    except binascii.Error as e:
        raise NoteError("a signer key's seed is not base64") from e
    if len(raw) != 33 or raw[0] != ED25519:
        raise NoteError("a signer key must hold a 32-byte Ed25519 seed")
    signer = NoteSigner(check_key_name(parts[2]), ED25519,
                        Ed25519PrivateKey.from_private_bytes(raw[1:]))
    if signer.verifier.key_id.hex() != parts[3]:
        raise NoteError("a signer key's key ID does not match its name and key")
    return signer


def sign_note(text: str, signer: NoteSigner) -> Note:
    """A note over `text` with one plain Ed25519 signature line."""
    _check_text(text)
    return Note(text, (signer.sign(text.encode("utf-8")),))


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("a note's text ends with a newline")
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise NoteError("a note holds no control characters other than LF (no CR, no tab)")


def parse_note(text: str) -> Note:
    """Split a note into its text and signature lines; nothing is verified here."""
    if len(text.encode("utf-8")) > MAX_NOTE_BYTES:
        raise NoteError("note is too large to be a signed note")
    if "\r" in text:
        raise NoteError("note lines must end with LF alone, not CR LF")
    _check_text(text)
    # The text ends at the last blank line: everything after it is signature lines.
    cut = text.rfind("\n\n")
    if cut < 0:
        raise NoteError("note has no blank line before its signatures")
    body, block = text[: cut + 1], text[cut + 2 :]
    lines = block.split("\n")
    if lines[-1] != "" or len(lines) < 2:
        raise NoteError("note has no signature line")
    lines = lines[:-1]
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"note has more than {MAX_SIGNATURES} signature lines")
    return Note(body, tuple(_signature_line(line) for line in lines))


def _signature_line(line: str) -> NoteSignature:
    parts = line.split(" ")
    if len(parts) != 3 or parts[0] != DASH:
        raise NoteError("a signature line is '— <key name> <base64 signature>'")
    name = check_key_name(parts[1])
    try:
        blob = base64.b64decode(parts[2], validate=True)
    except binascii.Error as e:
        raise NoteError(f"signature of {name!r} is not base64") from e
    if len(blob) < 5:
        raise NoteError(f"signature of {name!r} is too short to hold a key ID")
    return NoteSignature(name, blob[:4], blob[4:])


def ed25519_valid(public_key: bytes, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def open_note(note: Note, verifiers: Sequence[Verifier]) -> list[NoteSignature]:
    """The note's signatures by plain Ed25519 keys it knows, every one verified.

    Lines from unknown keys are ignored; a known line that fails rejects the note, and so
    does a note with no line from a known key (c2sp.org/signed-note).
    """
    message = note.text.encode("utf-8")
    verified: list[NoteSignature] = []
    for signature in note.signatures:
        for verifier in verifiers:
            if verifier.key_type == ED25519 and verifier.matches(signature):
                if not ed25519_valid(verifier.public_key, signature.signature, message):
                    raise NoteError(f"signature of {signature.name!r} does not verify")
                verified.append(signature)
    if not verified:
        raise NoteError("no signature on the note is from a known key")
    return verified
