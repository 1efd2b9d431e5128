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

import orjson

from trialctl.domain.trial import Trial
from trialctl.ledger.canonical import MAX_SAFE_INTEGER, canonical_bytes, is_canonical
from trialctl.ledger.keys import KeyPair

STATEMENT_FORMAT = "trialctl-event/v1"
# A statement in v1's form plus an eleventh member, `evidence`: what a cohort decision was
# made on (FORMAT.md "Decision evidence"). A format of its own, so a trialctl that reads
# only v1 names the entry's format instead of misreading it.
EVIDENCE_FORMAT = "trialctl-event/v2"
EVIDENCE_TYPES = frozenset({Trial.CohortDecided.TOPIC, Trial.CohortDecisionOverridden.TOPIC})
EVIDENCE_FIELDS = frozenset(
    {"cohort_number", "recommendation", "dlts", "evaluable", "entries"}
)
RECOMMENDATION_FIELDS = frozenset({"action", "next_level", "mtd_level"})
EVIDENCE_ENTRY_FIELDS = frozenset({"position", "entry_hash", "type", "patient"})
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
    return Entry(statement_bytes, statement, _signatures(rest))


def parse_canonical_entry(entry_bytes: bytes) -> Entry | None:
    """`parse_entry`'s Entry for an entry whose statement is RFC 8785 canonical, decoded by
    orjson at C speed; None when the fast decoding does not apply, so the caller falls
    back to `parse_entry` and `is_canonical`, which name what is wrong.

    Why the two agree: the statement bytes are exactly the canonical encoding of the value
    orjson decoded, and that value holds no float and no integer beyond +/-(2**53 - 1)
    (the canonicaliser refuses both), so `json.loads` reads the same value from them and
    none of `parse_entry`'s refusals of the JSON itself applies. What follows (the shape,
    then the signature block) is `parse_entry`'s own code, raising as it would.
    """
    statement_bytes, newline, rest = entry_bytes.partition(b"\n")
    if not newline:
        return None
    try:
        statement = orjson.loads(statement_bytes)
        if not is_canonical(statement, statement_bytes):
            return None
    except (ValueError, RecursionError):  # not JSON to orjson, or nested deeper than Python
        return None
    _check_statement_shape(statement)
    return Entry(statement_bytes, statement, _signatures(rest))


def _signatures(rest: bytes) -> tuple[Signature, ...]:
    """The signature block after the statement's line feed."""
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
    return tuple(signatures)


def _check_statement_shape(statement: Any) -> None:
    if not isinstance(statement, dict):
        raise MalformedEntryError("statement is not a JSON object")
    form = statement.get("format")
    if form not in (STATEMENT_FORMAT, EVIDENCE_FORMAT):
        raise MalformedEntryError(f"unknown statement format {form!r}")
    fields = STATEMENT_FIELDS | ({"evidence"} if form == EVIDENCE_FORMAT else set())
    if set(statement) != fields:
        missing = sorted(fields - set(statement))
        extra = sorted(set(statement) - fields)
        raise MalformedEntryError(f"statement fields wrong (missing {missing}, unexpected {extra})")
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
    if form == EVIDENCE_FORMAT:
        if statement["type"] not in EVIDENCE_TYPES:
            raise MalformedEntryError(
                f"only a cohort decision carries evidence, not {statement['type']}"
            )
        _check_evidence_shape(statement["evidence"])


def _is_count(value: object, least: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _check_evidence_shape(evidence: Any) -> None:
    """The evidence member's shape; whether it is true is `verify`'s decision pass."""
    if not isinstance(evidence, dict) or set(evidence) != EVIDENCE_FIELDS:
        raise MalformedEntryError(
            f"evidence must hold exactly {', '.join(sorted(EVIDENCE_FIELDS))}"
        )
    if not _is_count(evidence["cohort_number"], 1):
        raise MalformedEntryError("evidence.cohort_number is not an integer ≥ 1")
    for name in ("dlts", "evaluable"):
        if not _is_count(evidence[name]):
            raise MalformedEntryError(f"evidence.{name} is not an integer ≥ 0")
    recommendation = evidence["recommendation"]
    if recommendation is not None:
        if not isinstance(recommendation, dict) or set(recommendation) != RECOMMENDATION_FIELDS:
            raise MalformedEntryError(
                "evidence.recommendation is neither null nor exactly action, next_level "
                "and mtd_level"
            )
        if not isinstance(recommendation["action"], str):
            raise MalformedEntryError("evidence.recommendation.action is not a string")
        for name in ("next_level", "mtd_level"):
            level = recommendation[name]
            if level is not None and not _is_count(level, 1):
                raise MalformedEntryError(
                    f"evidence.recommendation.{name} is neither null nor an integer ≥ 1"
                )
    entries = evidence["entries"]
    if not isinstance(entries, list):
        raise MalformedEntryError("evidence.entries is not a list")
    last = -1
    for item in entries:
        if not isinstance(item, dict) or set(item) != EVIDENCE_ENTRY_FIELDS:
            raise MalformedEntryError(
                "each evidence entry holds exactly position, entry_hash, type and patient"
            )
        if not _is_count(item["position"]) or item["position"] <= last:
            raise MalformedEntryError(
                "evidence entry positions are integers ≥ 0 in increasing order"
            )
        last = item["position"]
        digest = item["entry_hash"]
        if not isinstance(digest, str) or HEX_DIGEST.fullmatch(digest) is None:
            raise MalformedEntryError("evidence entry_hash is not 64 lower-case hex digits")
        if not isinstance(item["type"], str) or not isinstance(item["patient"], str):
            raise MalformedEntryError("evidence entry type and patient are strings")
