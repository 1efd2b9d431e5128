#!/usr/bin/env python3
"""Verify a trialctl SQLite ledger without trialctl.

Written from docs/FORMAT.md alone, as an auditor would: it uses the Python standard library
and `cryptography` (for Ed25519) and nothing of trialctl's own code.

    python independent_verify.py LEDGER.sqlite [--checkpoint FILE]... [--proof FILE]...
                                 [--first-admin-key KEY_ID] [--permissions FILE] [--json]
    python independent_verify.py --bundle DIR [same options]

A bundle (`trialctl export bundle`) holds the entries' stored bytes; the same checks run on
them, its manifest's SHA-256s and its exporter's signature (by a key the entries show still
valid at the bundle's tree size) are checked, and its keys.json against the entries.

It checks, entry by entry in commit order: the entry's stored form and canonical JSON, its
single Ed25519 signature against the key its statement names, the signer's authority as the
users' own signed history stood at that position, the link to the previous entry of the
same aggregate, the dense global position and the stored Merkle leaf; and each
co-signature: that it cites an existing entry of a co-signable type (with its hash), that
the protocol asks one of it and none stands, that its signer signed neither that entry nor a
correction of it, and that it was signed in the role the protocol names (whether the signer
held that role is the authority check). Then the Merkle root,
every checkpoint recorded in the ledger, each checkpoint file given (signature, ledger id,
size, root) and each saved `trialctl proof ... --json` output.

Exit status: 0 when nothing was found, 1 when anything was, 2 when the ledger or a file
could not be read at all.

One file, long on purpose: an auditor copies this single script and reads it whole.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import re
import sqlite3
import sys
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

# --- constants from FORMAT.md -------------------------------------------------------------

STATEMENT_FORMAT = "trialctl-event/v1"
STATEMENT_FIELDS = frozenset({
    "format", "position", "aggregate_id", "aggregate_version", "type", "payload",
    "recorded_at", "actor", "meaning", "prev_hash",
})
ACTOR_FIELDS = frozenset({"user_id", "name", "role", "key_id"})
# A cohort decision's statement: v1's members plus `evidence` (FORMAT.md, Decision evidence).
EVIDENCE_FORMAT = "trialctl-event/v2"
EVIDENCE_TYPES = frozenset({"trialctl.Trial.CohortDecided",
                            "trialctl.Trial.CohortDecisionOverridden"})
MAX_SAFE_INTEGER = 2**53 - 1
HEX64 = re.compile(r"^[0-9a-f]{64}$")
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$")

NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://trialctl.dev/ids")
LEDGER_AGGREGATE_ID = str(uuid.uuid5(NAMESPACE, "ledger"))

INITIALISED = "trialctl.Ledger.Initialised"
CHECKPOINT_RECORDED = "trialctl.Ledger.CheckpointRecorded"
# Entries that state the tree head they were cut at, by what a finding calls them.
STATED_HEADS = {"trialctl.Ledger.Exported": "export",
                "trialctl.Ledger.PacketIssued": "committee packet",
                "trialctl.Ledger.AuditReviewed": "audit review"}
EXPORTED = "trialctl.Ledger.Exported"
REGISTERED = "trialctl.User.Registered"
ROLE_GRANTED = "trialctl.User.RoleGranted"
ROLE_REVOKED = "trialctl.User.RoleRevoked"
KEY_ROTATED = "trialctl.User.KeyRotated"
KEY_REVOKED = "trialctl.User.KeyRevoked"
UNLOCKED = "trialctl.User.Unlocked"
LOG_OPENED = "trialctl.SecurityLog.Opened"
ATTEMPT_REFUSED = "trialctl.SecurityLog.AttemptRefused"

EVERY_ROLE = frozenset({
    "admin", "principal-investigator", "investigator", "monitor", "data-manager", "auditor",
})
STAFF = EVERY_ROLE - {"auditor"}
ADMIN = frozenset({"admin"})

# event type -> (roles that may sign it, meanings a signature on it may carry)
PERMISSIONS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    INITIALISED: (ADMIN, frozenset({"authored"})),
    CHECKPOINT_RECORDED: (STAFF, frozenset({"reviewed", "approved"})),
    EXPORTED: (STAFF, frozenset({"reviewed"})),
    REGISTERED: (ADMIN, frozenset({"approved"})),
    ROLE_GRANTED: (ADMIN, frozenset({"approved"})),
    ROLE_REVOKED: (ADMIN, frozenset({"revoked"})),
    KEY_ROTATED: (ADMIN, frozenset({"approved"})),
    KEY_REVOKED: (ADMIN, frozenset({"revoked"})),
    UNLOCKED: (ADMIN, frozenset({"approved"})),
    LOG_OPENED: (EVERY_ROLE, frozenset({"attempted"})),
    ATTEMPT_REFUSED: (EVERY_ROLE, frozenset({"attempted"})),
}

# FORMAT.md section 17 (co-signatures): each co-signature type, the entry types it may cite,
# and the payload member naming what it co-signs beside `position` and `entry_hash`.
TRIAL_REGISTERED = "trialctl.Trial.Registered"
PATIENT_OPENED = "trialctl.Patient.ConsentSigned"
CORRECTED = "trialctl.Patient.Corrected"
CO_SIGNATURES: dict[str, tuple[frozenset[str], str]] = {
    "trialctl.Trial.DecisionCoSigned": (EVIDENCE_TYPES, "cohort_number"),
    "trialctl.Patient.AdjudicationCoSigned": (
        frozenset({"trialctl.Patient.DltAdjudicated", "trialctl.Patient.DltRuleOverridden"}),
        "record_version"),
}

# FORMAT.md section 7: each kind's version-1 type, the prefix its later types share, and
# the payload fields its aggregate id is derived from.
KINDS: dict[str, tuple[str, Callable[[dict[str, Any]], str | None]]] = {
    INITIALISED: ("ledger", lambda p: LEDGER_AGGREGATE_ID),
    REGISTERED: ("user", lambda p: _derived("user:", p, "user_id")),
    LOG_OPENED: ("security log", lambda p: _derived("security-log:", p, "user_id")),
    "trialctl.Trial.Registered": ("trial", lambda p: _derived("trial:", p, "protocol_id")),
    "trialctl.Patient.ConsentSigned": (
        "patient", lambda p: _derived("patient:", p, "trial_id", "patient_id")),
}


def _derived(prefix: str, payload: dict[str, Any], *names: str) -> str | None:
    values = [payload.get(name) for name in names]
    texts = [v for v in values if isinstance(v, str)]
    if len(texts) != len(names):
        return None
    return str(uuid.uuid5(NAMESPACE, prefix + ":".join(texts)))


def type_prefix(event_type: str) -> str:
    return event_type.rpartition(".")[0] + "."


CHECKPOINT_ORIGIN = "trialctl/ledger/"
LEGACY_ORIGIN = "trialctl ledger "
EM_DASH = "\u2014"


class Malformed(ValueError):
    """Bytes that are not what FORMAT.md says they must be."""


# --- canonical JSON (RFC 8785, for the JSON values trialctl writes) -----------------------


def canonical(value: Any) -> bytes:
    """RFC 8785: no whitespace, object members sorted by the UTF-16 code units of their
    names, strings escaped as ECMAScript's JSON.stringify does, integers in decimal.
    Floats are refused: trialctl never writes them."""
    return _canonical_text(value).encode("utf-8")  # a lone surrogate raises here


def _canonical_text(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise ValueError(f"integer {value} has no exact IEEE double form")
        return str(value)
    if isinstance(value, str):
        # json.dumps escapes exactly '"', '\\', \b \f \n \r \t and other C0 controls as
        # \u00xx (lower-case hex), and leaves everything else literal: RFC 8785's rules.
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ",".join(_canonical_text(item) for item in value) + "]"
    if isinstance(value, dict):
        names = sorted(value, key=lambda name: name.encode("utf-16-be"))
        return "{" + ",".join(
            json.dumps(name, ensure_ascii=False) + ":" + _canonical_text(value[name])
            for name in names
        ) + "}"
    raise ValueError(f"{type(value).__name__} has no canonical form here")


# --- entries ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    statement_bytes: bytes  # the signed bytes, exactly as stored
    statement: dict[str, Any]
    signatures: list[tuple[str, bytes]]  # (key id hex, 64-byte Ed25519 signature)


def _no_duplicate_names(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise Malformed(f"statement repeats the name {name!r}")
        result[name] = value
    return result


def parse_entry(data: bytes) -> Entry:
    statement_bytes, newline, rest = data.partition(b"\n")
    if not newline:
        raise Malformed("no line feed after the statement")
    try:
        statement = json.loads(
            statement_bytes.decode("utf-8"), object_pairs_hook=_no_duplicate_names,
            parse_int=_safe_integer,
        )
    except Malformed:
        raise
    except (ValueError, RecursionError) as e:  # also UnicodeDecodeError, JSONDecodeError
        raise Malformed(f"statement is not UTF-8 JSON: {e}") from e
    _check_shape(statement)
    lines = rest.split(b"\n")
    if lines[-1] != b"":
        raise Malformed("signature block does not end with a line feed")
    signatures = []
    for line in lines[:-1]:
        key_id, space, encoded = line.partition(b" ")
        if not space or not HEX64.match(key_id.decode("ascii", "replace")):
            raise Malformed("signature line is not '<64 hex key id> <base64 signature>'")
        try:
            signature = base64.b64decode(encoded, validate=True)
        except binascii.Error as e:
            raise Malformed(f"signature is not base64: {e}") from e
        if len(signature) != 64:
            raise Malformed("an Ed25519 signature is 64 bytes")
        signatures.append((key_id.decode("ascii"), signature))
    if not signatures:
        raise Malformed("entry carries no signature")
    return Entry(statement_bytes, statement, signatures)


def is_time(text: str) -> bool:
    """FORMAT.md section 3: exactly YYYY-MM-DDTHH:MM:SS.ffffff+00:00, a real moment."""
    if not TIME.match(text):
        return False
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _safe_integer(text: str) -> int:
    """FORMAT.md section 3: no integer beyond +/-(2^53 - 1)."""
    if len(text.lstrip("-")) > 16 or abs(int(text)) > MAX_SAFE_INTEGER:
        raise Malformed(f"integer {text[:20]} is beyond +/-(2^53 - 1)")
    return int(text)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_shape(statement: Any) -> None:
    if not isinstance(statement, dict):
        raise Malformed("statement is not a JSON object")
    form = statement.get("format")
    if form not in (STATEMENT_FORMAT, EVIDENCE_FORMAT):
        raise Malformed(f"unknown format {form!r}")
    if set(statement) != STATEMENT_FIELDS | ({"evidence"} if form == EVIDENCE_FORMAT else set()):
        raise Malformed(f"statement fields are {sorted(statement)}")
    if form == EVIDENCE_FORMAT and (statement["type"] not in EVIDENCE_TYPES
                                    or not isinstance(statement["evidence"], dict)):
        raise Malformed("only a cohort decision carries evidence, an object")
    for name in ("position", "aggregate_version"):
        if not _is_count(statement[name]):
            raise Malformed(f"{name} is not a non-negative integer")
    for name in ("aggregate_id", "type", "recorded_at", "meaning"):
        if not isinstance(statement[name], str):
            raise Malformed(f"{name} is not a string")
    if not isinstance(statement["payload"], dict):
        raise Malformed("payload is not an object")
    prev = statement["prev_hash"]
    if prev is not None and not (isinstance(prev, str) and len(prev) == 64):
        raise Malformed("prev_hash is neither null nor 64 hex digits")
    actor = statement["actor"]
    if not isinstance(actor, dict) or set(actor) != ACTOR_FIELDS:
        raise Malformed("actor must hold exactly user_id, name, role and key_id")
    if not all(isinstance(v, str) for v in actor.values()):
        raise Malformed("actor fields must be strings")


def entry_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def key_id_of(public_key_hex: str) -> str:
    return hashlib.sha256(bytes.fromhex(public_key_hex)).hexdigest()


def signature_ok(public_key_hex: str, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key_hex)).verify(
            signature, message
        )
    except (InvalidSignature, ValueError):
        return False
    return True


# --- the RFC 6962 Merkle tree -------------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def merkle_root(leaves: list[bytes]) -> bytes:
    """MTH(D[n]): the empty tree hashes to SHA-256(""); otherwise pair adjacent nodes level
    by level, an unpaired last node moving up unchanged (the same tree as RFC 6962's split
    at the largest power of two below n)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    level = list(leaves)
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def root_from_inclusion(index: int, size: int, leaf: bytes, path: list[bytes]) -> bytes:
    """RFC 9162 section 2.1.3.2."""
    if not 0 <= index < size:
        raise Malformed(f"index {index} is outside a tree of {size}")
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            raise Malformed("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise Malformed("inclusion proof is too short")
    return r


def roots_from_consistency(
    old_size: int, new_size: int, old_root: bytes, path: list[bytes]
) -> tuple[bytes, bytes]:
    """RFC 9162 section 2.1.4.2 for 0 < old_size < new_size: (old root, new root)."""
    if not 0 < old_size < new_size:
        raise Malformed(f"no consistency proof between sizes {old_size} and {new_size}")
    if old_size & (old_size - 1) == 0:  # a power of two: the old root is the first node
        path = [old_root, *path]
    if not path:
        raise Malformed("consistency proof is empty")
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise Malformed("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise Malformed("consistency proof is too short")
    return fr, sr


# --- users and authority ------------------------------------------------------------------


@dataclass
class UserState:
    """A user as their signed history stands at some position."""

    user_id: str
    name: str
    roles: list[str]
    public_key: str
    key_id: str
    version: int
    past_keys: dict[str, str] = field(default_factory=dict)
    revoked_keys: set[str] = field(default_factory=set)
    active: bool = True


def _text(payload: dict[str, Any], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str):
        raise Malformed(f"payload field {name!r} is missing or not a string")
    return value


def apply_user_event(users: dict[str, UserState], statement: dict[str, Any]) -> str | None:
    """Apply one trialctl.User.* event; return why it cannot be applied, if it cannot."""
    aggregate, version = statement["aggregate_id"], statement["aggregate_version"]
    event_type, payload = statement["type"], statement["payload"]
    try:
        if event_type == REGISTERED:
            if aggregate in users:
                return "user is registered twice"
            roles = payload.get("roles")
            if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
                raise Malformed("payload field 'roles' is not a list of strings")
            unknown = sorted(set(roles) - EVERY_ROLE)
            if unknown:
                return f"{unknown[0]!r} is not a role"
            users[aggregate] = UserState(
                _text(payload, "user_id"), _text(payload, "name"), sorted(set(roles)),
                _text(payload, "public_key"), _text(payload, "key_id"), version,
            )
            return None
        user = users.get(aggregate)
        if user is None:
            return "event for a user who was never registered"
        if version != user.version + 1:
            return f"version {version} does not follow {user.version}"
        if event_type == ROLE_GRANTED:
            role = _text(payload, "role")
            if role not in EVERY_ROLE:
                return f"{role!r} is not a role"
            if role in user.roles:
                return f"{user.user_id} already holds the role {role!r}"
            user.roles = sorted({*user.roles, role})
        elif event_type == ROLE_REVOKED:
            role = _text(payload, "role")
            if role not in user.roles:
                return f"{user.user_id} does not hold the role {role!r}"
            user.roles = [r for r in user.roles if r != role]
        elif event_type == KEY_ROTATED:
            new_public, new_id = _text(payload, "public_key"), _text(payload, "key_id")
            user.past_keys[user.key_id] = user.public_key
            user.public_key, user.key_id = new_public, new_id
        elif event_type == KEY_REVOKED:
            key_id = _text(payload, "key_id")
            if key_id != user.key_id and key_id not in user.past_keys:
                return f"{user.user_id} does not hold key {key_id[:16]}..."
            if key_id in user.revoked_keys:
                return f"key {key_id[:16]}... of {user.user_id} is already revoked"
            user.revoked_keys.add(key_id)
            user.active = False
        elif event_type == UNLOCKED:
            attempts = payload.get("failed_attempts")
            if not isinstance(attempts, list):
                raise Malformed("payload field 'failed_attempts' is not a list")
        else:
            return f"unknown user event type {event_type}"
        user.version = version
    except Malformed as e:
        return str(e)
    return None


def authority_problem(
    user: UserState | None,
    actor: dict[str, str],
    event_type: str,
    meaning: str,
    permissions: dict[str, tuple[frozenset[str], frozenset[str]]],
) -> str | None:
    """Why this signer may not sign this event at this position (FORMAT.md, Authority)."""
    if user is None:
        return f"user {actor['user_id']!r} is not registered"
    if actor["name"] != user.name:
        return f"printed name {actor['name']!r} is not the registered {user.name!r}"
    if actor["key_id"] in user.revoked_keys:
        return f"key {actor['key_id'][:16]}... of {user.user_id} was revoked"
    if not user.active:
        return f"user {user.user_id} is deactivated"
    if actor["key_id"] != user.key_id:
        return f"key {actor['key_id'][:16]}... is not the current key of {user.user_id}"
    if actor["role"] not in user.roles:
        return f"{user.user_id} does not hold the role {actor['role']!r}"
    if event_type not in permissions:
        return f"no role may record {event_type}"
    roles, meanings = permissions[event_type]
    if actor["role"] not in roles:
        return f"role {actor['role']!r} may not record {event_type}"
    if meaning not in meanings:
        return f"meaning {meaning!r} does not apply to {event_type}"
    return None


def permission_key(
    statement: dict[str, Any], permissions: dict[str, tuple[frozenset[str], frozenset[str]]]
) -> str:
    """A correction whose corrected kind has its own permission is judged by that one
    (FORMAT.md, Authority): "trialctl.Patient.Corrected of a <kind>"."""
    kind = statement["payload"].get("kind")
    key = f"{statement['type']} of a {kind}"
    if statement["type"] == "trialctl.Patient.Corrected" and key in permissions:
        return key
    return str(statement["type"])


def bootstrap_problem(first: dict[str, Any], second: dict[str, Any]) -> str | None:
    """Positions 0 and 1: the ledger identity and its first admin, signed by that admin's
    own newly registered key."""
    if first["type"] != INITIALISED or first["position"] != 0:
        return "a ledger must open with its identity at position 0"
    if second["type"] != REGISTERED or second["position"] != 1:
        return "the ledger's first admin must be registered at position 1"
    payload, actor = second["payload"], second["actor"]
    roles = payload.get("roles")
    if not isinstance(roles, list) or "admin" not in roles:
        return "the first registered user must be an admin"
    if first["actor"] != actor:
        return "the opening entries must be signed by the first admin"
    expected = {
        "user_id": payload.get("user_id"),
        "name": payload.get("name"),
        "role": "admin",
        "key_id": payload.get("key_id"),
    }
    if actor != expected:
        return "the opening entries must be signed by the key they register"
    return None


# --- the walk -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    notification_id: int
    aggregate_id: str
    version: int
    topic: str
    state: bytes
    leaf_position: int | None
    stored_leaf: bytes | None
    column_problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class Finding:
    check: str
    detail: str
    position: int | None = None
    row: int | None = None

    def describe(self) -> str:
        where = [f"position {self.position}"] if self.position is not None else []
        if self.row is not None:
            where.append(f"row {self.row}")
        return f"[{', '.join(where)}] {self.check}: {self.detail}" if where else \
            f"{self.check}: {self.detail}"


@dataclass
class Report:
    ledger: str
    entries_checked: int = 0
    tree_size: int = 0
    root_hash: str = ""
    ledger_id: str | None = None
    findings: list[Finding] = field(default_factory=list)
    checkpoints: list[dict[str, Any]] = field(default_factory=list)
    proofs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "ledger": self.ledger,
            "ledger_id": self.ledger_id,
            "entries_checked": self.entries_checked,
            "tree_size": self.tree_size,
            "root_hash": self.root_hash,
            "findings": [asdict(f) for f in self.findings],
            "checkpoints": self.checkpoints,
            "proofs": self.proofs,
        }


def _aggregate_text(value: Any) -> str:
    """originator_id: 16 raw bytes in SQLite (UUID bytes, big-endian), text elsewhere."""
    try:
        if isinstance(value, bytes):
            return str(uuid.UUID(bytes=value))
        return str(uuid.UUID(str(value)))
    except ValueError:  # not a UUID at all: the columns check will say so
        return value.hex() if isinstance(value, bytes) else str(value)


def _row(r: tuple[Any, ...]) -> Row:
    """A row from raw SQLite values, which may be of any type: what is not the documented
    type (section 1) is named, and the entry is checked from what is there."""
    problems = []
    if not isinstance(r[1], bytes):
        problems.append("originator_id is not the UUID's 16 bytes")
    version = r[2] if isinstance(r[2], int) else -1
    if not isinstance(r[2], int):
        problems.append("originator_version is not an integer")
    if not isinstance(r[3], str):
        problems.append("topic is not text")
    if isinstance(r[4], bytes):
        state = r[4]
    else:
        problems.append("state is not a BLOB")
        state = r[4].encode("utf-8", "surrogateescape") if isinstance(r[4], str) else b""
    stored_leaf = r[6] if isinstance(r[6], bytes) else None
    return Row(int(r[0]), _aggregate_text(r[1]), version, str(r[3]), state,
               None if r[5] is None else int(r[5]), stored_leaf, tuple(problems))


def read_ledger(path: Path) -> tuple[list[Row], list[int]]:
    """Every entry row in commit (id) order with its leaf, and leaves with no entry."""
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        rows = [
            _row(r)
            for r in connection.execute(
                "SELECT e.id, e.originator_id, e.originator_version, e.topic, e.state, "
                "l.position, l.leaf_hash FROM trialctl_events e "
                "LEFT JOIN trialctl_leaves l ON l.notification_id = e.id ORDER BY e.id"
            )
        ]
        orphans = [
            int(r[0]) for r in connection.execute(
                "SELECT position FROM trialctl_leaves WHERE notification_id NOT IN "
                "(SELECT id FROM trialctl_events) ORDER BY position"
            )
        ]
    finally:
        connection.close()
    return rows, orphans


# --- an auditor's bundle (FORMAT.md, "The auditor's bundle") ------------------------------

BUNDLE_FORMAT = "trialctl-bundle/v1"


def read_bundle(directory: Path) -> tuple[list[Row], list[str], list[tuple[str, str]]]:
    """A bundle's entries as rows (columns repeat the signed values, the leaf is the entry's
    own), the problems with its manifest and keys.json, and its checkpoint notes."""
    rows: list[Row] = []
    lines = (directory / "entries.jsonl").read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, 1):
        item = json.loads(line)
        state = base64.b64decode(item["entry"], validate=True)
        try:
            statement = json.loads(state.split(b"\n", 1)[0])
            aggregate, version = str(statement["aggregate_id"]), statement["aggregate_version"]
            topic = str(statement["type"])
        except (ValueError, KeyError, TypeError):
            aggregate, version, topic = "", -number, ""
        rows.append(Row(number, aggregate, version if isinstance(version, int) else -number,
                        topic, state, int(item["position"]), leaf_hash(state)))
    problems = bundle_manifest_problems(directory)
    problems += bundle_signature_problems(directory, rows)
    listed = json.loads((directory / "keys.json").read_text(encoding="utf-8"))
    if listed != bundle_keys(rows):
        problems.append("keys.json: the keys or their positions differ from the entries'")
    notes = [(f"checkpoints/{p.name}", p.read_text(encoding="utf-8"))
             for p in sorted((directory / "checkpoints").glob("*"))]
    return rows, problems, notes


def bundle_manifest(directory: Path) -> dict[str, Any]:
    """The manifest document {"signed", "signatures"}; an older unsigned manifest is the
    payload alone, read here as one with no signature."""
    document = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))
    if not isinstance(document, dict):
        raise ValueError("manifest.json is not a JSON object")
    if "signed" not in document:
        document = {"signed": document, "signatures": []}
    if not isinstance(document["signed"], dict):
        raise ValueError("the manifest's 'signed' is not a JSON object")
    return document


def bundle_manifest_problems(directory: Path) -> list[str]:
    manifest = bundle_manifest(directory)["signed"]
    if manifest.get("format") != BUNDLE_FORMAT:
        return [f"manifest.json is not a {BUNDLE_FORMAT} manifest"]
    listed = {str(f["name"]): str(f["sha256"]) for f in manifest["files"]}
    present = {p.relative_to(directory).as_posix() for p in directory.rglob("*")
               if p.is_file() and p.name != "manifest.json"}
    problems = []
    for name, digest in sorted(listed.items()):
        if name not in present:
            problems.append(f"{name}: missing")
        elif hashlib.sha256((directory / name).read_bytes()).hexdigest() != digest:
            problems.append(f"{name}: SHA-256 differs from the manifest")
    problems += [f"{name}: not in the manifest" for name in sorted(present - set(listed))]
    return problems


def _base64_or_empty(text: Any) -> bytes:
    try:
        return base64.b64decode(str(text), validate=True)
    except binascii.Error:
        return b""  # fails the signature check like any other wrong signature


def bundle_signature_problems(directory: Path, rows: list[Row]) -> list[str]:
    """The manifest's Ed25519 signature over the canonical JSON of `signed`, by a key the
    entries give to the user `exported_by` names and that stands (not rotated or revoked)
    at the bundle's tree size; and the tree head it states is the entries' own."""
    document = bundle_manifest(directory)
    signed, signatures = document["signed"], document.get("signatures") or []
    exporter = signed.get("exported_by")
    if not signatures or not isinstance(exporter, dict):
        return ["manifest.json carries no signature"]
    public_key = str(exporter.get("public_key"))
    try:
        key_id = key_id_of(public_key)
    except ValueError:
        return ["manifest.json: the exporter's public key is not hex"]
    if exporter.get("key_id") != key_id:
        return ["manifest.json: the exporter's key id is not the SHA-256 of their public key"]
    message = canonical(signed)
    if not any(isinstance(s, dict) and s.get("key_id") == key_id
               and signature_ok(public_key, _base64_or_empty(s.get("signature")), message)
               for s in signatures):
        return [f"manifest.json: the manifest's signature by key {key_id[:16]}… does not "
                "verify"]
    problems = []
    leaves = [leaf_hash(row.state) for row in rows]
    if signed.get("tree_size") != len(rows) or signed.get("root_hash") != \
            merkle_root(leaves).hex():
        problems.append("manifest.json: its tree size or root is not the entries'")
    opened = opening_ledger_id(rows)
    if opened is not None and signed.get("ledger_id") != opened:
        problems.append(f"manifest.json: names ledger {signed.get('ledger_id')!r}, but the "
                        f"entries open ledger {opened!r}")
    key = next((k for k in bundle_keys(rows) if k["key_id"] == key_id), None)
    if key is None or key["user_id"] != exporter.get("user_id"):
        problems.append(f"manifest.json: signed with key {key_id[:16]}…, which the entries "
                        f"do not give to {exporter.get('user_id')!r}")
    elif key["valid_to"] is not None:
        problems.append(f"manifest.json: signed with key {key_id[:16]}…, no longer valid at "
                        f"tree size {len(rows)}")
    return problems


def opening_ledger_id(rows: list[Row]) -> str | None:
    """The ledger id the first entry (the ledger's opening) states, if it can be read."""
    try:
        statement = json.loads(rows[0].state.split(b"\n", 1)[0])
        if statement["type"] != INITIALISED:
            return None
        return str(statement["payload"]["ledger_id"])
    except (IndexError, ValueError, KeyError, TypeError):
        return None


def bundle_keys(rows: list[Row]) -> list[dict[str, Any]]:
    """Each key with the first and last position it could sign at (section 9), folded here
    from the entries themselves."""
    keys: dict[str, dict[str, Any]] = {}
    current: dict[str, str] = {}  # user aggregate id -> its current key id
    owner: dict[str, str] = {}  # user aggregate id -> user id
    for row in rows:
        try:
            statement = json.loads(row.state.split(b"\n", 1)[0])
            kind, payload = statement["type"], statement["payload"]
            aggregate = str(statement["aggregate_id"])
        except (ValueError, KeyError, TypeError):
            continue
        position = row.leaf_position if row.leaf_position is not None else -1
        if kind == REGISTERED:
            owner[aggregate] = str(payload["user_id"])
        if kind in (REGISTERED, KEY_ROTATED) and aggregate in owner:
            if aggregate in current:
                keys[current[aggregate]]["valid_to"] = position
            keys[payload["key_id"]] = {"user_id": owner[aggregate], "key_id": payload["key_id"],
                                       "public_key": payload["public_key"],
                                       "valid_from": position + 1, "valid_to": None}
            current[aggregate] = payload["key_id"]
        elif kind == KEY_REVOKED and keys.get(payload.get("key_id"), {}).get(
                "valid_to", 0) is None:
            keys[payload["key_id"]]["valid_to"] = position
    return sorted(keys.values(), key=lambda k: (k["valid_from"], k["user_id"]))


class Verifier:
    def __init__(
        self,
        report: Report,
        permissions: dict[str, tuple[frozenset[str], frozenset[str]]],
        first_admin_key: str | None = None,
    ) -> None:
        self.report = report
        self.permissions = permissions
        self.first_admin_key = first_admin_key
        self.expected_position = 0
        self.ahead: set[int] = set()  # positions seen stored early (FORMAT.md section 12)
        self.previous_early: int | None = None
        self.chain: dict[str, tuple[int, str]] = {}
        self.kinds: dict[str, tuple[str, str | None]] = {}  # aggregate -> (opening, owner)
        self.users: dict[str, UserState] = {}
        self.keys: dict[str, str] = {}
        self.leaves: list[bytes] = []
        self.opening: dict[str, Any] | None = None
        self.bootstrap_checked = False
        self.recorded_checkpoints: list[tuple[int, int, Any, Any]] = []
        self.stated_heads: list[tuple[int, int, Any, Any, str]] = []
        self.co_signing = CoSigning()

    def fail(self, check: str, detail: str, position: int | None, row: int | None) -> None:
        self.report.findings.append(Finding(check, detail, position, row))

    def user_named(self, user_id: str) -> UserState | None:
        for user in self.users.values():  # in registration order
            if user.user_id == user_id:
                return user
        return None

    def run(self, rows: list[Row], orphans: list[int]) -> None:
        parsed: list[Entry | Malformed] = []
        for row in rows:
            try:
                parsed.append(parse_entry(row.state))
            except Malformed as e:
                parsed.append(e)
        # Every public key any entry registers, by key id: used only for the signature maths;
        # whether a key was valid at a position is the authority check's business.
        for entry in parsed:
            if isinstance(entry, Entry) and entry.statement["type"] in (REGISTERED, KEY_ROTATED):
                payload = entry.statement["payload"]
                public, key_id = payload.get("public_key"), payload.get("key_id")
                try:
                    if isinstance(public, str) and key_id_of(public) == key_id:
                        self.keys[key_id] = public
                except ValueError:
                    pass
        for i, (row, entry) in enumerate(zip(rows, parsed, strict=True)):
            following = None
            if i + 1 < len(rows):
                after = parsed[i + 1]
                following = after.statement["position"] if isinstance(after, Entry) \
                    else rows[i + 1].leaf_position
            self.check(row, entry, following)
        if not rows:
            self.fail("bootstrap", "the ledger holds no entries: a ledger opens with its "
                      "identity at position 0 and its first admin at position 1", None, None)
        elif not any(isinstance(e, Entry) and e.statement["position"] >= 1 for e in parsed):
            self.fail("bootstrap", "the ledger has no first admin registered at position 1",
                      1, None)
        for position in orphans:
            self.fail("leaf", "Merkle leaf points at an entry that is gone", position, None)
        if self.first_admin_key is not None and not self.bootstrap_checked:
            self.fail("authority", "the ledger has no opening entries to check the pinned "
                      "first admin key against", None, None)
        self.report.tree_size = len(self.leaves)
        self.report.root_hash = merkle_root(self.leaves).hex()
        for position, row_id, size, root in self.recorded_checkpoints:
            if not _is_count(size) or size > len(self.leaves):
                self.fail("checkpoint", f"recorded checkpoint of size {size} exceeds the "
                          "ledger", position, row_id)
            elif merkle_root(self.leaves[:size]).hex() != root:
                self.fail("checkpoint", f"recorded checkpoint root for size {size} does not "
                          "match the entries", position, row_id)
        for position, row_id, size, root, what in self.stated_heads:
            if not _is_count(size) or size > position:
                self.fail("tree-head", f"{what} states tree size {size}, which does not end "
                          "before its own entry", position, row_id)
            elif merkle_root(self.leaves[:size]).hex() != root:
                self.fail("tree-head", f"{what} states root {str(root)[:16]}… for tree size "
                          f"{size}; the ledger's first {size} entries hash otherwise",
                          position, row_id)

    def advance(self) -> None:
        self.expected_position += 1
        while self.expected_position in self.ahead:
            self.ahead.discard(self.expected_position)
            self.expected_position += 1

    def sequence_problem(self, position: int, following: int | None) -> str | None:
        """FORMAT.md section 12, "next expected": recover after each anomaly."""
        expected, early, problem = self.expected_position, False, None
        if position == expected:
            if self.previous_early == position + 1:
                problem = f"stored after position {position + 1}"
            self.advance()
        elif position < expected or position in self.ahead:
            problem = f"repeated or out of order (expected {expected})"
        elif following is not None and expected <= following < position:
            early = True
            problem = f"stored before position {expected}"
            self.ahead.add(position)
        else:
            problem = f"{position - expected} missing (expected position {expected})"
            self.expected_position = position
            self.advance()
            self.ahead = {p for p in self.ahead if p > self.expected_position}
        self.previous_early = position if early else None
        return problem

    def check(self, row: Row, entry: Entry | Malformed, following: int | None = None) -> None:
        self.report.entries_checked += 1
        self.leaves.append(leaf_hash(row.state))
        n = row.notification_id
        if isinstance(entry, Malformed):
            position = self.expected_position if row.leaf_position is None \
                else row.leaf_position
            self.previous_early = None
            self.advance()
            if row.column_problems:
                self.fail("columns", "; ".join(row.column_problems), position, n)
            self.fail("entry-format", f"not a well-formed entry: {entry}", position, n)
            return
        statement = entry.statement
        position = statement["position"]
        # Dense positions, in commit order.
        problem = self.sequence_problem(position, following)
        if problem is not None:
            self.fail("sequence", problem, position, n)
        # The unsigned columns must repeat what was signed, in their documented types.
        if row.column_problems:
            self.fail("columns", "; ".join(row.column_problems), position, n)
        elif (statement["aggregate_id"], statement["aggregate_version"], statement["type"]) != (
            row.aggregate_id, row.version, row.topic
        ):
            self.fail("columns", "row's aggregate, version or type differ from what was "
                      "signed", position, n)
        # The stored leaf.
        if row.leaf_position is None:
            self.fail("leaf", "entry has no Merkle leaf", position, n)
        elif row.leaf_position != position:
            self.fail("leaf", f"Merkle leaf is numbered {row.leaf_position}", position, n)
        elif row.stored_leaf != self.leaves[-1]:
            self.fail("leaf", "stored leaf hash does not match the entry", position, n)
        # The aggregate's chain.
        self.check_chain(row, statement, position)
        # The signature: exactly one, by the key the actor names.
        actor = statement["actor"]
        if [key_id for key_id, _ in entry.signatures] != [actor["key_id"]]:
            self.fail("signature", "entry must carry exactly one signature, by the actor's "
                      "key", position, n)
        elif actor["key_id"] not in self.keys:
            self.fail("signature", f"signed with unknown key {actor['key_id'][:16]}...",
                      position, n)
        elif not signature_ok(self.keys[actor["key_id"]], entry.signatures[0][1],
                              entry.statement_bytes):
            self.fail("signature", f"signature does not verify with key "
                      f"{actor['key_id'][:16]}...", position, n)
        # Checks trialctl verify does not make (FORMAT.md section 16).
        self.check_strict(statement, entry.statement_bytes, position, n)
        # Authority, against the users as they stood before this entry.
        if position == 0:
            self.opening = statement
        elif position == 1 and self.opening is not None:
            self.bootstrap_checked = True
            problem = bootstrap_problem(self.opening, statement)
            if problem is None and self.first_admin_key is not None and \
                    actor["key_id"] != self.first_admin_key:
                problem = f"the first admin's key is {actor['key_id']}, not the one pinned"
            if problem:
                self.fail("authority", problem, position, n)
        else:
            problem = authority_problem(self.user_named(actor["user_id"]), actor,
                                        permission_key(statement, self.permissions),
                                        statement["meaning"], self.permissions)
            if problem is None and statement["type"].startswith("trialctl.SecurityLog."):
                owner = self.kinds.get(statement["aggregate_id"], (None, None))[1]
                if actor["user_id"] != owner:
                    problem = (f"{actor['user_id']} may not write the security log of "
                               f"{owner!r}: only its own user does")
            if problem:
                self.fail("authority", problem, position, n)
        # A co-signature: its citation, signer and role (FORMAT.md section 17).
        for problem in self.co_signing.see(statement, entry_hash(row.state)):
            self.fail("decision", problem, position, n)
        # What the entry changes.
        event_type = statement["type"]
        if event_type == CHECKPOINT_RECORDED:
            payload = statement["payload"]
            self.recorded_checkpoints.append(
                (position, n, payload.get("tree_size"), payload.get("root_hash"))
            )
        elif event_type in STATED_HEADS:
            payload = statement["payload"]
            self.stated_heads.append((position, n, payload.get("tree_size"),
                                      payload.get("root_hash"), STATED_HEADS[event_type]))
        elif event_type == INITIALISED:
            self.report.ledger_id = str(statement["payload"].get("ledger_id"))
        elif event_type.startswith("trialctl.User."):
            problem = apply_user_event(self.users, statement)
            if problem:
                self.fail("user-record", problem, position, n)

    def check_chain(self, row: Row, statement: dict[str, Any], position: int) -> None:
        version, prev = statement["aggregate_version"], statement["prev_hash"]
        n = row.notification_id
        previous = self.chain.get(row.aggregate_id)
        if previous is None:
            if version != 1:
                self.fail("chain", f"aggregate starts at version {version}", position, n)
            elif prev is not None:
                self.fail("chain", "first entry of its aggregate names a predecessor",
                          position, n)
        elif version != previous[0] + 1:
            self.fail("chain", f"version {version} follows version {previous[0]}", position, n)
        elif prev != previous[1]:
            self.fail("chain", f"prev_hash does not match the hash of version {previous[0]}",
                      position, n)
        self.chain[row.aggregate_id] = (version, entry_hash(row.state))
        self.check_kind(statement, position, n)

    def check_kind(self, statement: dict[str, Any], position: int, n: int) -> None:
        """FORMAT.md section 7: an aggregate holds only its own kind of events."""
        aggregate, event_type = statement["aggregate_id"], statement["type"]
        if statement["aggregate_version"] == 1:
            known_prefixes = {type_prefix(t) for t in KINDS}
            if event_type not in KINDS and type_prefix(event_type) in known_prefixes:
                self.fail("aggregate", f"{event_type} cannot open a record (version 1)",
                          position, n)
            owner = statement["payload"].get("user_id")
            self.kinds[aggregate] = (event_type, owner if isinstance(owner, str) else None)
            return
        opening, owner = self.kinds.get(aggregate, (None, None))
        if opening is None:
            return  # the chain check has reported the missing opening
        if event_type == opening or type_prefix(event_type) != type_prefix(opening):
            name = KINDS[opening][0] if opening in KINDS else type_prefix(opening)
            self.fail("aggregate", f"a {name} record may not hold {event_type}", position, n)

    def check_strict(
        self, statement: dict[str, Any], statement_bytes: bytes, position: int, n: int
    ) -> None:
        try:
            is_canonical = canonical(statement) == statement_bytes
        except ValueError:
            is_canonical = False
        if not is_canonical:
            self.fail("canonical", "statement is not RFC 8785 canonical JSON", position, n)
        if not is_time(statement["recorded_at"]):
            self.fail("time", "recorded_at is not UTC ISO 8601 with microseconds", position, n)
        payload, event_type = statement["payload"], statement["type"]
        expected_aggregate = None
        if event_type in KINDS and statement["aggregate_version"] == 1:
            expected_aggregate = KINDS[event_type][1](payload) or "(derived from its payload)"
        elif event_type == CHECKPOINT_RECORDED:
            expected_aggregate = LEDGER_AGGREGATE_ID
        if expected_aggregate is not None and statement["aggregate_id"] != expected_aggregate:
            self.fail("identity", f"aggregate id should be {expected_aggregate}", position, n)
        if event_type in (REGISTERED, KEY_ROTATED):
            public, key_id = payload.get("public_key"), payload.get("key_id")
            try:
                matches = isinstance(public, str) and len(public) == 64 and \
                    key_id_of(public) == key_id
            except ValueError:
                matches = False
            if not matches:
                self.fail("identity", "key_id is not the SHA-256 of public_key", position, n)


# --- co-signatures ------------------------------------------------------------------------


@dataclass
class CoSigning:
    """What a co-signature is checked against: the co-signable entries by position, each
    trial's `[[co_signatures]]` (from its registered protocol), each patient's trial, who
    signed each patient record and its corrections, and the co-signatures standing."""

    cited: dict[int, tuple[dict[str, Any], str]] = field(default_factory=dict)
    roles: dict[str, dict[str, str]] = field(default_factory=dict)  # trial -> type -> role
    trial_of: dict[str, str] = field(default_factory=dict)  # patient aggregate -> trial
    signers: dict[tuple[str, int], set[str]] = field(default_factory=dict)
    standing: dict[int, int] = field(default_factory=dict)  # cited position -> co-signature

    def see(self, statement: dict[str, Any], digest: str) -> list[str]:
        """Note the entry; if it is a co-signature, what is wrong with it."""
        event_type, payload = statement["type"], statement["payload"]
        aggregate, signer = statement["aggregate_id"], str(statement["actor"]["user_id"])
        problems = self._problems(statement) if event_type in CO_SIGNATURES else []
        if event_type == TRIAL_REGISTERED:
            listed = payload.get("protocol", {}).get("co_signatures", [])
            self.roles[aggregate] = {str(c.get("event_type")): str(c.get("role"))
                                     for c in listed if isinstance(c, dict)}
        elif event_type == PATIENT_OPENED:
            self.trial_of[aggregate] = str(payload.get("trial_id"))
        if event_type == CORRECTED and _is_count(payload.get("target_version")):
            self.signers.setdefault((aggregate, payload["target_version"]), set()).add(signer)
            # A correction of a co-signed adjudication re-opens it (docs/ESCALATION.md).
            for position, (cited, _) in self.cited.items():
                if cited["aggregate_id"] == aggregate and \
                        cited["aggregate_version"] == payload["target_version"]:
                    self.standing.pop(position, None)
        else:
            version = statement["aggregate_version"]
            self.signers.setdefault((aggregate, version), set()).add(signer)
        if any(event_type in types for types, _ in CO_SIGNATURES.values()):
            self.cited[statement["position"]] = (statement, digest)
        if event_type in CO_SIGNATURES and not problems:
            self.standing[payload.get("position")] = statement["position"]
        return problems

    def _problems(self, statement: dict[str, Any]) -> list[str]:
        payload, actor = statement["payload"], statement["actor"]
        types, member = CO_SIGNATURES[statement["type"]]
        position = payload.get("position")
        found = self.cited.get(position) if _is_count(position) else None
        if found is None or found[0]["type"] not in types or \
                found[0]["aggregate_id"] != statement["aggregate_id"]:
            return [f"the co-signature cites #{position}, which is no co-signable entry of "
                    "the same record"]
        cited, digest = found
        problems = []
        if payload.get("entry_hash") != digest:
            problems.append(f"the co-signature cites #{position} with hash "
                            f"{payload.get('entry_hash')}; the entry's hash is {digest}")
        named = cited["aggregate_version"] if member == "record_version" \
            else cited["payload"].get(member)
        if payload.get(member) != named:
            return [*problems, f"the co-signature names {member} {payload.get(member)}; "
                    f"#{position} is {member} {named}"]
        trial = statement["aggregate_id"] if member == "cohort_number" \
            else self.trial_of.get(statement["aggregate_id"])
        role = self.roles.get(str(trial), {}).get(cited["type"])
        if role is None:
            problems.append(f"the protocol asks no co-signature of #{position}")
        elif position in self.standing:
            problems.append(f"#{position} was already co-signed "
                            f"(#{self.standing[position]})")
        authors = self.signers.get((cited["aggregate_id"], cited["aggregate_version"]), set())
        if actor["user_id"] in authors:
            problems.append(f"{actor['user_id']} signed #{position}: nobody co-signs their "
                            "own entry")
        if role is not None and actor["role"] != role:
            problems.append(f"#{position} needs a co-signature by the role {role!r}, "
                            f"signed as {actor['role']!r}")
        return problems


# --- checkpoint notes ---------------------------------------------------------------------


@dataclass(frozen=True)
class Note:
    body: str
    ledger_id: str
    tree_size: int
    root: bytes
    time: str
    signer: str
    key_hint: bytes
    signature: bytes
    legacy: bool


def parse_note(text: str) -> Note:
    """A C2SP signed note (origin "trialctl/ledger/<id>", key ID over name and key, any
    number of signature lines; the first is the signer's) or a legacy note (origin
    "trialctl ledger <id>", key hint from the key id, exactly one signature line)."""
    if "\r" in text:
        raise Malformed("lines must end with LF alone, not CR LF")
    legacy = text.startswith(LEGACY_ORIGIN)
    cut = text.rfind("\n\n")
    if cut < 0:
        raise Malformed("no blank line before the signature")
    body, signature_block = text[:cut], text[cut + 2:]
    lines = body.split("\n")
    if len(lines) != 5:
        raise Malformed(f"body has {len(lines)} lines, not 5")
    origin, size, root_b64, time_line, signer_line = lines
    prefix = LEGACY_ORIGIN if legacy else CHECKPOINT_ORIGIN
    if not origin.startswith(prefix) or origin == prefix or " " in origin[len(prefix):]:
        raise Malformed(f"first line is not '{prefix}<ledger id>'")
    if not size.isascii() or not size.isdigit() or (size != "0" and size.startswith("0")):
        raise Malformed("second line is not a decimal tree size")
    try:
        root = base64.b64decode(root_b64, validate=True)
    except binascii.Error as e:
        raise Malformed("third line is not base64") from e
    if len(root) != 32:
        raise Malformed("root is not 32 bytes")
    if not time_line.startswith("time ") or not signer_line.startswith("signer "):
        raise Malformed("lines 4 and 5 must be 'time ...' and 'signer ...'")
    signer = signer_line[len("signer "):]
    if not is_time(time_line[len("time "):]):
        raise Malformed("time is not UTC ISO 8601 with microseconds and +00:00")
    if not signature_block.endswith("\n") or (legacy and signature_block.count("\n") != 1):
        raise Malformed("the note must end with its signature lines (a legacy note: one)")
    blobs = []
    for number, line in enumerate(signature_block[:-1].split("\n")):
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != EM_DASH or (number == 0 and parts[1] != signer):
            raise Malformed("signature line is not '\u2014 <signer> <base64>'")
        try:
            blob = base64.b64decode(parts[2], validate=True)
        except binascii.Error as e:
            raise Malformed("signature is not base64") from e
        if base64.b64encode(blob).decode("ascii") != parts[2] or len(blob) < 5:
            raise Malformed("note is not in canonical form")
        blobs.append(blob)
    if len(blobs[0]) != 68:
        raise Malformed("signature is not 4 + 64 bytes")
    if base64.b64encode(root).decode("ascii") != root_b64:
        raise Malformed("note is not in canonical form")
    return Note(body + "\n", origin[len(prefix):], int(size), root,
                time_line[len("time "):], signer, blobs[0][:4], blobs[0][4:], legacy)


def note_key_hint(note: Note, key_id: str, public_key_hex: str) -> bytes:
    """FORMAT.md 11: SHA-256(name || LF || 0x01 || key)[:4]; legacy: the key id's start."""
    if note.legacy:
        return bytes.fromhex(key_id)[:4]
    material = note.signer.encode("utf-8") + b"\n\x01" + bytes.fromhex(public_key_hex)
    return hashlib.sha256(material).digest()[:4]


def check_note(verifier: Verifier, source: str, text: str) -> dict[str, Any]:
    result: dict[str, Any] = {"source": source, "tree_size": None, "signer": None}
    try:
        note = parse_note(text)
    except Malformed as e:
        problem: str | None = f"malformed checkpoint: {e}"
    else:
        result.update(tree_size=note.tree_size, signer=note.signer)
        problem = None
        user = verifier.user_named(note.signer)
        leaves = verifier.leaves
        if user is None:
            problem = f"signed by {note.signer!r}, who is not a user of this ledger"
        elif not any(
            note_key_hint(note, key_id, public) == note.key_hint
            and signature_ok(public, note.signature, note.body.encode("utf-8"))
            for key_id, public in [(user.key_id, user.public_key), *user.past_keys.items()]
        ):
            problem = "signature does not verify with any key of its signer"
        elif verifier.report.ledger_id and note.ledger_id != verifier.report.ledger_id:
            problem = f"checkpoint is for ledger {note.ledger_id}"
        elif note.tree_size > len(leaves):
            problem = (f"ledger truncated: the checkpoint covers {note.tree_size} entries, "
                       f"the ledger holds {len(leaves)}")
        elif merkle_root(leaves[: note.tree_size]) != note.root:
            problem = f"history rewritten: the first {note.tree_size} entries hash elsewhere"
    if problem:
        verifier.report.findings.append(Finding("checkpoint", f"{source}: {problem}"))
    result["status"] = problem or "ok"
    return result


# --- saved proofs (`trialctl proof ... --json`) -------------------------------------------


def check_proof(verifier: Verifier, source: str, document: Any) -> dict[str, Any]:
    leaves = verifier.leaves
    kind = "unknown"
    try:
        if not isinstance(document, dict):
            raise Malformed("not a JSON object")
        path = [bytes.fromhex(h) for h in document["proof"]]
        if any(len(h) != 32 for h in path):
            raise Malformed("every proof hash is 32 bytes")
        if "leaf_hash" in document:
            kind = "inclusion"
            index, size = int(document["position"]), int(document["tree_size"])
            leaf, root = bytes.fromhex(document["leaf_hash"]), bytes.fromhex(
                document["root_hash"])
            if root_from_inclusion(index, size, leaf, path) != root:
                raise Malformed("the proof does not lead to its root")
            if size > len(leaves) or leaves[index] != leaf or merkle_root(leaves[:size]) != root:
                raise Malformed("the proof holds, but not for this ledger's entries")
        else:
            kind = "consistency"
            old_size, new_size = int(document["old_size"]), int(document["new_size"])
            old_root, new_root = bytes.fromhex(document["old_root"]), bytes.fromhex(
                document["new_root"])
            if old_size == new_size:
                if path or old_root != new_root:
                    raise Malformed("equal sizes need equal roots and an empty proof")
            elif roots_from_consistency(old_size, new_size, old_root, path) != (
                old_root, new_root
            ):
                raise Malformed("the proof does not lead to both roots")
            if new_size > len(leaves) or merkle_root(leaves[:old_size]) != old_root or \
                    merkle_root(leaves[:new_size]) != new_root:
                raise Malformed("the proof holds, but not for this ledger's entries")
        problem = None
    except (Malformed, KeyError, TypeError, ValueError, IndexError) as e:
        problem = f"{kind} proof fails: {e}"
        verifier.report.findings.append(Finding("proof", f"{source}: {problem}"))
    return {"source": source, "kind": kind, "status": problem or "ok"}


# --- command line -------------------------------------------------------------------------


def load_permissions(path: Path | None) -> dict[str, tuple[frozenset[str], frozenset[str]]]:
    """trialctl's own event types, plus those of a trial domain given as JSON:
    {"<event type>": {"roles": [...], "meanings": [...]}, ...}."""
    permissions = dict(PERMISSIONS)
    if path is not None:
        for event_type, rule in json.loads(path.read_text(encoding="utf-8")).items():
            permissions[event_type] = (frozenset(rule["roles"]), frozenset(rule["meanings"]))
    return permissions


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ledger", type=Path, nargs="?", help="the SQLite ledger file")
    parser.add_argument("--bundle", type=Path,
                        help="an auditor's bundle directory (trialctl export bundle) instead")
    parser.add_argument("--checkpoint", "-c", type=Path, action="append", default=[],
                        help="a checkpoint note to check (repeatable)")
    parser.add_argument("--proof", type=Path, action="append", default=[],
                        help="saved output of 'trialctl proof ... --json' (repeatable)")
    parser.add_argument("--first-admin-key", help="the key id the ledger must open with")
    parser.add_argument("--permissions", type=Path,
                        help="JSON permissions for event types beyond trialctl's own")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)

    if (args.ledger is None) == (args.bundle is None):
        parser.error("give a ledger file or --bundle DIR")
    bundle_problems: list[str] = []
    try:
        notes = [(str(p), p.read_text(encoding="utf-8")) for p in args.checkpoint]
        if args.bundle is not None:
            rows, bundle_problems, bundled = read_bundle(args.bundle)
            orphans: list[int] = []
            notes += bundled
        else:
            rows, orphans = read_ledger(args.ledger)
        permissions = load_permissions(args.permissions)
        proofs = [(str(p), json.loads(p.read_text(encoding="utf-8"))) for p in args.proof]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError,
            binascii.Error, sqlite3.Error) as e:
        print(f"independent_verify: cannot read input: {e}", file=sys.stderr)
        return 2

    report = Report(str(args.bundle or args.ledger))
    verifier = Verifier(report, permissions, args.first_admin_key)
    verifier.run(rows, orphans)
    report.findings += [Finding("bundle", problem) for problem in bundle_problems]
    report.checkpoints = [check_note(verifier, source, text) for source, text in notes]
    report.proofs = [check_proof(verifier, source, doc) for source, doc in proofs]

    if args.json:
        print(json.dumps(report.to_dict(), indent=2, sort_keys=True))
    else:
        for finding in report.findings:
            print(f"FAIL {finding.describe()}")
        for result in report.checkpoints:
            print(f"checkpoint {result['source']} (size {result['tree_size']}): "
                  f"{result['status']}")
        for result in report.proofs:
            print(f"{result['kind']} proof {result['source']}: {result['status']}")
        verdict = "clean" if report.ok else f"{len(report.findings)} finding(s)"
        print(f"{report.ledger}: {report.entries_checked} entries, tree size "
              f"{report.tree_size}, root {report.root_hash}: {verdict}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
