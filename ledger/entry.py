"""The stored form of one ledger entry: a canonical signed statement and its signatures.

    <RFC 8785 canonical JSON of the statement> LF
    <key id (hex)> SP <base64 Ed25519 signature over the statement bytes> LF   (one line per signer)

Canonical JSON never contains a raw line feed, so the first LF ends the statement. The
signature covers the statement bytes exactly as stored; nothing is re-serialised to check it.
The whole entry (statement and signature lines) is what the hash chain and the Merkle tree hash.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from trialctl.ledger.canonical import MAX_SAFE_INTEGER, canonical_bytes
from trialctl.ledger.keys import KeyPair

STATEMENT_FORMAT = "trialctl-event/v1"
STATEMENT_FIELDS = frozenset(
    {
        "format",
        "position",
        "aggregate_id",
        "aggregate_version",
        "type",
        "payload",
        "recorded_at",
        "actor",
        "meaning",
        "prev_hash",
    }
)
ACTOR_FIELDS = frozenset({"user_id", "name", "role", "key_id"})
# The one form of `recorded_at` (and of a checkpoint's time): UTC with microseconds and
# the offset written `+00:00`, exactly as Python's isoformat(timespec="microseconds") emits.
RECORDED_AT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}\+00:00")
UUID_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
HEX_DIGEST = re.compile(r"[0-9a-f]{64}")


class MalformedEntryError(ValueError):
    """The stored bytes are not a well-formed trialctl entry."""


@dataclass(frozen=True)
class Signature:
    key_id: str
    signature: bytes


@dataclass(frozen=True)
class Entry:
    """A parsed entry; `statement_bytes` are the signed bytes exactly as stored."""

    statement_bytes: bytes
    statement: dict[str, Any]
    signatures: tuple[Signature, ...]

    @property
    def position(self) -> int:
        return int(self.statement["position"])

    @property
    def actor(self) -> dict[str, str]:
        return dict(self.statement["actor"])


def entry_hash(entry_bytes: bytes) -> str:
    """The hex SHA-256 of a whole stored entry: what the next entry's `prev_hash` names."""
    return hashlib.sha256(entry_bytes).hexdigest()


def seal(statement: dict[str, Any], keys: KeyPair) -> bytes:
    """Canonicalise `statement`, sign it with `keys` and return the bytes to store."""
    statement_bytes = canonical_bytes(statement)
    signature = base64.b64encode(keys.sign(statement_bytes)).decode("ascii")
    return statement_bytes + b"\n" + f"{keys.key_id} {signature}\n".encode("ascii")


def _refuse_float(text: str) -> float:
    raise MalformedEntryError(f"statement holds the float {text}; decimals are strings")


def _safe_integer(text: str) -> int:
    # More digits than any safe integer has: refused before Python converts them.
    if len(text.lstrip("-")) > 16 or abs(int(text)) > MAX_SAFE_INTEGER:
        raise MalformedEntryError(
            f"statement holds the integer {text[:20]}, beyond +/-(2^53 - 1)"
        )
    return int(text)


def is_recorded_at(text: object) -> bool:
    """Whether `text` is a time in the one documented form (FORMAT.md section 3)."""
    if not isinstance(text, str) or RECORDED_AT.fullmatch(text) is None:
        return False
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False  # the right shape, but no such moment (month 13, 25 o'clock)
    return True


def parse_entry(entry_bytes: bytes) -> Entry:
    """Split and parse stored bytes; raises MalformedEntryError naming what is wrong."""
    statement_bytes, newline, rest = entry_bytes.partition(b"\n")
    if not newline:
        raise MalformedEntryError("entry has no signature block")
    try:
        statement = json.loads(
            statement_bytes, parse_float=_refuse_float, parse_int=_safe_integer,
            parse_constant=_refuse_float,
        )
    except MalformedEntryError:
        raise
    except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError too
        raise MalformedEntryError(f"statement is not JSON: {e}") from e
    _check_statement_shape(statement)
    signatures = []
    lines = rest.split(b"\n")
    if lines[-1] != b"":
        raise MalformedEntryError("signature block does not end with a line feed")
    for line in lines[:-1]:
        key_id, space, encoded = line.partition(b" ")
        if not space or len(key_id) != 64:
            raise MalformedEntryError("signature line is not '<key id> <signature>'")
        try:
            signature = base64.b64decode(encoded, validate=True)
            key_id_text = key_id.decode("ascii")
            bytes.fromhex(key_id_text)
        except (binascii.Error, ValueError) as e:
            raise MalformedEntryError(f"signature line is not valid: {e}") from e
        if len(signature) != 64:
            raise MalformedEntryError("an Ed25519 signature is 64 bytes")
        signatures.append(Signature(key_id_text, signature))
    if not signatures:
        raise MalformedEntryError("entry carries no signature")
    return Entry(statement_bytes, statement, tuple(signatures))


def _check_statement_shape(statement: Any) -> None:
    if not isinstance(statement, dict):
        raise MalformedEntryError("statement is not a JSON object")
    if set(statement) != STATEMENT_FIELDS:
        missing = sorted(STATEMENT_FIELDS - set(statement))
        extra = sorted(set(statement) - STATEMENT_FIELDS)
        raise MalformedEntryError(f"statement fields wrong (missing {missing}, unexpected {extra})")
    if statement["format"] != STATEMENT_FORMAT:
        raise MalformedEntryError(f"unknown statement format {statement['format']!r}")
    for name, least in (("position", 0), ("aggregate_version", 1)):
        value = statement[name]
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise MalformedEntryError(f"{name} is not an integer ≥ {least}")
    for name in ("aggregate_id", "type", "recorded_at", "meaning"):
        if not isinstance(statement[name], str):
            raise MalformedEntryError(f"{name} is not a string")
    if UUID_TEXT.fullmatch(statement["aggregate_id"]) is None:
        raise MalformedEntryError("aggregate_id is not a UUID in lower-case 8-4-4-4-12 form")
    if not is_recorded_at(statement["recorded_at"]):
        raise MalformedEntryError(
            f"recorded_at {statement['recorded_at']!r} is not a UTC time in the form "
            "YYYY-MM-DDTHH:MM:SS.ffffff+00:00"
        )
    if not isinstance(statement["payload"], dict):
        raise MalformedEntryError("payload is not an object")
    prev = statement["prev_hash"]
    if prev is not None and (not isinstance(prev, str) or HEX_DIGEST.fullmatch(prev) is None):
        raise MalformedEntryError("prev_hash is neither null nor a SHA-256 hex digest")
    actor = statement["actor"]
    if not isinstance(actor, dict) or set(actor) != ACTOR_FIELDS:
        raise MalformedEntryError("actor must hold exactly user_id, name, role and key_id")
    if not all(isinstance(v, str) for v in actor.values()):
        raise MalformedEntryError("actor fields must be strings")
    if HEX_DIGEST.fullmatch(actor["key_id"]) is None:
        raise MalformedEntryError("actor.key_id is not 64 lower-case hex digits")
