"""Snapshots of patient records: a record as its entries leave it at one version, kept so a
load reads the snapshot and only the entries after it, however long the record has grown.

A snapshot is derived data beside the evidence, never evidence: `verify` does not read it,
and a load trusts one only when

- the stored entry at the snapshot's version hashes to the entry hash the snapshot names
  (the snapshot covers exactly that signed entry, one row read), and
- the snapshot's statement (record id, version, that entry hash, the SHA-256 of the state)
  is signed by the key that signed that entry, a key its user still holds unrevoked.

Someone able to edit the database but not holding a signer's key can therefore not make a
load believe a record other than its entries: any other snapshot is ignored and the record
is replayed from its entries, as without snapshots. The state is a tagged JSON encoding of
the aggregate's attributes (never pickle: decoding stored bytes must not run code), and a
snapshot is written only when decoding it gives back exactly the state it was made from.
"""

from __future__ import annotations

import base64
import binascii
import gc
import hashlib
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import IntegrityError, Mapper, PersistenceError, StoredEvent
from sqlalchemy.exc import SQLAlchemyError

from trialctl.domain.patient import Patient
from trialctl.ledger.canonical import canonical_bytes
from trialctl.ledger.entry import MalformedEntryError, entry_hash, parse_entry
from trialctl.ledger.errors import LedgerError
from trialctl.ledger.history import advanced
from trialctl.ledger.keys import KeyPair, load_public_key, signature_is_valid
from trialctl.ledger.recorder import SignedRecorder
from trialctl.ledger.users import user_aggregate_id
from trialctl.ledger.verified_users import VerifiedUsers

SNAPSHOTS_TABLE = "trialctl_snapshots"
SNAPSHOTS_DDL = (
    f"CREATE TABLE IF NOT EXISTS {SNAPSHOTS_TABLE} ("
    "aggregate_id VARCHAR(36) NOT NULL, aggregate_version INTEGER NOT NULL, "
    "entry_hash VARCHAR(64) NOT NULL, key_id VARCHAR(64) NOT NULL, "
    "signature TEXT NOT NULL, state TEXT NOT NULL, "
    "PRIMARY KEY (aggregate_id, aggregate_version))"
)
SNAPSHOT_FORMAT = "trialctl-snapshot/1"
# A record is snapshotted when this many entries have been added since its last snapshot:
# a load then replays at most this many entries on top of one snapshot.
INTERVAL = 50
# Attributes never kept: events not yet saved, and the aggregate's caches of derived reads.
_NOT_KEPT = frozenset({
    "_pending_events", "_graded_labs", "_kind_index", "_derived_reads", "_first_dose_days",
})


class Unkeepable(ValueError):
    """A value the snapshot encoding cannot give back exactly."""


# -- the state as tagged JSON: every container and non-JSON scalar names its type ----------


# Values written as they are: a container's items of these types are not passed to `encode`
# again (most of a record's values are text), which halves the encoding of a long record.
_PLAIN = frozenset({str, int, bool, type(None)})


def encode(value: Any) -> Any:
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is dict:
        return {"D": [[k if type(k) in _PLAIN else encode(k),
                       v if type(v) in _PLAIN else encode(v)] for k, v in value.items()]}
    if kind is list:
        return {"L": [v if type(v) in _PLAIN else encode(v) for v in value]}
    if kind is tuple:
        return {"T": [v if type(v) in _PLAIN else encode(v) for v in value]}
    if kind is set or kind is frozenset:
        return {"S" if kind is set else "F": sorted((encode(v) for v in value), key=repr)}
    if kind is datetime and value.tzinfo in (None, UTC):
        return {"dt": value.isoformat()}
    if kind is date:
        return {"da": value.isoformat()}
    if kind is UUID:
        return {"u": str(value)}
    if kind is Decimal:
        return {"de": str(value)}
    raise Unkeepable(f"cannot keep a {kind.__name__} in a snapshot")


_SEQUENCES: dict[str, Any] = {"T": tuple, "S": set, "F": frozenset}
_TEXTS: dict[str, Any] = {"dt": datetime.fromisoformat, "da": date.fromisoformat, "u": UUID,
                          "de": Decimal}


_ONLY_LISTS = {list}
_ONLY_PAIRS = {2}


def _tagged(obj: dict[str, Any]) -> Any:
    """One tagged JSON object, its contents decoded already (the parser calls this from
    the innermost object out, so a long record decodes at the parser's speed)."""
    if len(obj) != 1:
        raise Unkeepable("not a snapshot value")
    ((tag, inner),) = obj.items()
    if type(inner) is list:
        if tag == "L":
            return inner
        if tag == "D":
            # Every item a [key, value] list, checked by `map` at C speed, not item by item.
            if inner and (set(map(type, inner)) != _ONLY_LISTS
                          or set(map(len, inner)) != _ONLY_PAIRS):
                raise Unkeepable("not a snapshot mapping")
            return dict(inner)
        if tag in _SEQUENCES:
            return _SEQUENCES[tag](inner)
    elif tag in _TEXTS and type(inner) is str:
        return _TEXTS[tag](inner)
    raise Unkeepable(f"unknown snapshot tag {tag!r}")


def decode(data: bytes | str) -> Any:
    return json.loads(data, object_hook=_tagged)


def same(a: Any, b: Any) -> bool:
    """Equal with every type equal too (`==` holds 1 == True and 1 == 1.0)."""
    if type(a) is not type(b):
        return False
    if type(a) in (list, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if type(a) is dict:
        return list(a) == list(b) and all(
            same(ka, kb) and same(a[ka], b[kb]) for ka, kb in zip(a, b, strict=True))
    if type(a) is datetime:
        return bool(a == b and a.tzinfo == b.tzinfo)
    return bool(a == b)


def _identical(decoded: Any, state: Any) -> bool:
    """`same`, answered at C speed when the two print alike: every value a state may hold
    (encode refuses any other type, and every subclass) prints as a literal that names its
    type and value, so equal reprs mean equal values of equal types. Reprs may differ for
    values that are still the same (a set's iteration order): `same` then decides."""
    return repr(decoded) == repr(state) or same(decoded, state)


@contextmanager
def no_collection() -> Iterator[None]:
    """The cyclic garbage collector paused: encoding a long record makes many small
    containers, none of them cyclic, and collections they set off took more than the
    encoding itself (a read-model rebuild, which keeps every record, likewise)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def kept_state(patient: Patient) -> dict[str, Any]:
    return {k: v for k, v in vars(patient).items() if k not in _NOT_KEPT}


def _dumped(tree: Any) -> bytes:
    """The tagged tree as compact UTF-8 JSON: orjson writes the same bytes as `json.dumps`
    with these options several times faster; the few trees it refuses (integers beyond 64
    bits, lone surrogates, very deep nesting) go to `json`, as every tree did before."""
    try:
        return orjson.dumps(tree)
    except orjson.JSONEncodeError:
        return json.dumps(tree, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def state_bytes(patient: Patient) -> bytes:
    """The record's state, encoded; raises Unkeepable unless decoding gives it back."""
    state = kept_state(patient)
    with no_collection():
        encoded = _dumped(encode(state))
        if not _identical(decode(encoded), state):  # the very bytes that will be stored
            raise Unkeepable("the encoded state does not decode to the record")
    return encoded


def restored(data: bytes) -> Patient:
    with no_collection():
        state = decode(data)
    if type(state) is not dict or not all(type(k) is str for k in state):
        raise Unkeepable("a snapshot state is a mapping of attribute names")
    patient: Patient = object.__new__(Patient)
    patient.__dict__.update(state)
    patient.__dict__["_pending_events"] = []
    return patient


def statement(aggregate_id: UUID, version: int, covered_hash: str, data: bytes) -> bytes:
    """What a snapshot's signature covers: it cannot be read as an entry's statement."""
    return canonical_bytes({
        "format": SNAPSHOT_FORMAT, "aggregate_id": str(aggregate_id),
        "aggregate_version": version, "entry_hash": covered_hash,
        "state_sha256": hashlib.sha256(data).hexdigest(),
    })


# -- the store ------------------------------------------------------------------------------


class Snapshots:
    """The ledger's snapshot table: written after a record's entries commit, read on load."""

    def __init__(self, recorder: SignedRecorder, users: VerifiedUsers,
                 mapper: Mapper[UUID]) -> None:
        # The ledger's parts, not the ledger: a cycle back to it would keep its database
        # connections open until a garbage collection, which may never come before exit.
        self.recorder = recorder
        self.users = users
        self.mapper = mapper
        self.interval = INTERVAL
        self._ready = False
        self._covered: dict[UUID, int] = {}  # the version of each record's newest snapshot
        self._absent = False  # no table to read (a ledger no snapshot was written to yet)

    def _sql(self, sql: str, parameters: Any = (), commit: bool = False) -> Any:
        with self.recorder.transaction(commit=commit) as session:
            result = self.recorder._driver_sql(session, sql, parameters)
            return result.all() if result.returns_rows else None

    def _ensure_table(self) -> bool:
        if not self._ready:
            try:
                self._sql(SNAPSHOTS_DDL, commit=True)
                self._ready, self._absent = True, False
            except IntegrityError:
                self._ready = True  # made at the same moment by another writer
            except (PersistenceError, SQLAlchemyError):
                return False  # a role that may not create it: loads replay, as before
        return self._ready

    def load(self, aggregate_id: UUID) -> Patient | None:
        """The patient from its newest trustworthy snapshot and the entries after it, or
        None when there is none to trust (the caller replays every entry)."""
        if self._absent:
            return None
        try:
            rows = self._sql(
                f"SELECT aggregate_version, entry_hash, key_id, signature, state "
                f"FROM {SNAPSHOTS_TABLE} WHERE aggregate_id = ? "
                "ORDER BY aggregate_version DESC LIMIT 1", (str(aggregate_id),))
        except (PersistenceError, SQLAlchemyError):
            self._absent = True  # no snapshot table in this ledger
            return None
        if not rows:
            self._covered[aggregate_id] = 0
            return None
        version, covered_hash, key_id, signature, data = rows[0]
        data = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        # The covered entry and every one after it, in one query: the first is checked
        # against the snapshot, the rest are replayed on it once it is trusted.
        entries = self.recorder.select_events(aggregate_id, gt=int(version) - 1)
        patient = self._trusted(aggregate_id, int(version), covered_hash, key_id, signature,
                                data, entries[:1])
        if patient is None:
            self._covered[aggregate_id] = 0  # rewrite it at the next interval
            return None
        self._covered[aggregate_id] = patient.version
        result: Patient = advanced(patient, entries[1:], self.mapper)
        return result

    def _trusted(self, aggregate_id: UUID, version: int, covered_hash: str, key_id: str,
                 signature: str, data: bytes, covered: list[StoredEvent]) -> Patient | None:
        """The snapshot's patient, when `covered` (the stored entries from its version on,
        at most one) is the entry it names and its signature holds; else None."""
        if (len(covered) != 1 or covered[0].originator_version != version
                or entry_hash(covered[0].state) != covered_hash):
            return None
        try:
            entry = parse_entry(covered[0].state)
            user = self.users.current(user_aggregate_id(entry.actor["user_id"]))
            if user is None or key_id in user.revoked_keys:
                return None
            signed_by = {s.key_id for s in entry.signatures}
            public = user.public_key_for(key_id)
            if public is None or key_id not in signed_by or entry.actor.get("key_id") != key_id:
                return None
            raw = base64.b64decode(signature, validate=True)
            if not signature_is_valid(load_public_key(public), raw,
                                      statement(aggregate_id, version, covered_hash, data)):
                return None
            patient = restored(data)
        except (MalformedEntryError, LedgerError, Unkeepable, binascii.Error, ValueError,
                TypeError, KeyError, RecursionError):
            return None
        if patient.id != aggregate_id or patient.version != version:
            return None
        return patient

    def keep(self, keys: KeyPair, patients: Sequence[Patient]) -> None:
        """A snapshot of each patient whose record grew by the interval since its last one,
        signed with the key that signed its newest entry (the caller's, just committed).
        Best effort: a snapshot not written only means a longer replay next time."""
        due = [p for p in patients
               if p.version - self._covered.get(p.id, 0) >= self.interval]
        if not due or not self._ensure_table():
            return
        rows = []
        for patient in due:
            try:
                data = state_bytes(patient)
            except (Unkeepable, RecursionError):
                continue
            covered_hash = self.recorder._previous_entry_hash(patient.id, patient.version + 1)
            if covered_hash is None:
                continue
            signature = base64.b64encode(keys.sign(
                statement(patient.id, patient.version, covered_hash, data))).decode("ascii")
            rows.append((str(patient.id), patient.version, covered_hash, keys.key_id,
                         signature, data.decode("utf-8")))
        if not rows:
            return
        try:  # one transaction for the batch's records: a commit costs more than a row
            self._sql(
                f"INSERT INTO {SNAPSHOTS_TABLE} (aggregate_id, aggregate_version, "
                "entry_hash, key_id, signature, state) VALUES (?, ?, ?, ?, ?, ?)",
                rows, commit=True)
        except (PersistenceError, SQLAlchemyError):
            return  # one taken by another writer at the same version, or not allowed
        for aggregate_id, version, *_ in rows:
            self._covered[UUID(aggregate_id)] = version
