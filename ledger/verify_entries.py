"""`verify`'s entry checks: each stored entry on its own, read straight from the store.

Its form (well-formed, RFC 8785 canonical), its one signature against the key it names,
its entry hash and Merkle leaf hash. None of this depends on any other entry, so it runs
on every core in worker processes; the results come back in commit order, compact, for the
ordered checks (`verify_order`). Leaves that no entry owns are found here too.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import orjson
from sqlalchemy import ColumnElement, String, func, select, type_coerce
from sqlalchemy.sql.expression import UnaryExpression
from sqlalchemy.sql.operators import custom_op
from sqlalchemy.types import NullType

from trialctl.domain.patient import Patient
from trialctl.ledger.aggregate_kinds import KIND_OPENED_BY
from trialctl.ledger.canonical import is_canonical
from trialctl.ledger.entry import (
    MalformedEntryError,
    entry_hash,
    parse_canonical_entry,
    parse_entry,
)
from trialctl.ledger.keys import SignatureCheck, key_id_of, signature_check
from trialctl.ledger.merkle import hash_leaf
from trialctl.ledger.recorder import SignedRecorder
from trialctl.ledger.users import USER_TOPICS, LedgerRecord, User
from trialctl.ledger.verify_report import Finding, VerificationReport

KEY_EVENT_TYPES = (User.Registered.TOPIC, User.KeyRotated.TOPIC)
PARALLEL_THRESHOLD = 2000
# Entries per worker batch: measured on 21,760 entries with 2 workers, 500 to 2,000 cost the
# same CPU per entry, and 500 holds a quarter of the rows in flight (peak 79 MB, not 91).
BATCH_SIZE = 500
MIN_BATCH = 250
READ_BATCH = 2000  # rows fetched from the store at a time


@dataclass(frozen=True)
class Row:
    notification_id: int
    originator_id: str
    originator_version: int
    topic: str
    state: bytes
    leaf_position: int | None
    leaf_hash: bytes | None
    # What is wrong with the row's columns themselves (types a hostile writer stored).
    column_problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class Checked:
    """What a worker learns about one entry, independent of every other entry."""

    statement: dict[str, Any] | None
    problem: str | None
    signature_problem: str | None
    entry_hash: str
    leaf_hash: bytes


# -- per-entry checks (run in worker processes) ---------------------------------------------

_worker_keys: dict[str, str] = {}
_public_keys: dict[str, SignatureCheck] = {}

# The ordered checks read payloads only of these types (a record's opening derives its id;
# a correction's `kind` decides who may sign it; a stated tree head is held to the tree);
# others travel back without theirs.
PAYLOADS_READ = frozenset(
    {LedgerRecord.CheckpointRecorded.TOPIC, LedgerRecord.Exported.TOPIC,
     LedgerRecord.PacketIssued.TOPIC, LedgerRecord.AuditReviewed.TOPIC, *USER_TOPICS,
     *KIND_OPENED_BY, Patient.Corrected.TOPIC}
)


def _init_worker(keys: dict[str, str]) -> None:
    global _worker_keys
    _worker_keys = keys


# What a worker sends back per entry: (problem, signature problem, entry hash, leaf hash).
# The main process holds the row's bytes already; for a well-formed entry it decodes the
# statement there (orjson, a few microseconds), which costs far less than pickling the
# decoded statement across and back.
Verdict = tuple[str | None, str | None, str, bytes]


def _check_batch(states: list[bytes]) -> list[Verdict]:
    verdicts = []
    for state in states:
        checked, _ = _check(state, _worker_keys)
        verdicts.append(checked)
    return verdicts


def _public_key(key_id: str, keys: dict[str, str]) -> SignatureCheck | None:
    if key_id not in _public_keys:
        public_hex = keys.get(key_id)
        if public_hex is None:
            return None
        _public_keys[key_id] = signature_check(public_hex)
    return _public_keys[key_id]


def check_entry(state: bytes, keys: dict[str, str]) -> Checked:
    return read_entry(state, keys)[0]


def read_entry(state: bytes, keys: dict[str, str]) -> tuple[Checked, dict[str, Any] | None]:
    """`check_entry`, with the whole statement when the entry is well formed (the decision
    pass reads it); what a verify in one process runs per row."""
    verdict, statement = _check(state, keys)
    return _checked(verdict, statement), statement


def checked_from_verdict(state: bytes, verdict: Verdict) -> Checked:
    """A worker's verdict on `state` as `check_entry` would have returned it."""
    return read_verdict(state, verdict)[0]


def read_verdict(state: bytes, verdict: Verdict) -> tuple[Checked, dict[str, Any] | None]:
    """`checked_from_verdict`, with the whole statement of an entry the worker found well
    formed (None for any other); what a verify with workers runs per row."""
    if verdict[0] is not None:
        return _checked(verdict, None), None
    # The worker found these bytes canonical and well formed: orjson reads from them
    # the value it did (parse_entry, should orjson ever refuse them, reads it too).
    try:
        decoded: dict[str, Any] = orjson.loads(state.partition(b"\n")[0])
    except ValueError:
        decoded = parse_entry(state).statement
    return _checked(verdict, decoded), decoded


def _checked(verdict: Verdict, statement: dict[str, Any] | None) -> Checked:
    problem, signature_problem, digest, leaf = verdict
    return Checked(None if statement is None else _as_read(statement), problem,
                   signature_problem, digest, leaf)


def _as_read(statement: dict[str, Any]) -> dict[str, Any]:
    """The statement as the ordered checks read it: a copy without the payload when they
    read none of its type (the whole statement may serve the decision pass)."""
    if statement["type"] not in PAYLOADS_READ:
        return {**statement, "payload": {}}
    return statement


def _check(state: bytes, keys: dict[str, str]) -> tuple[Verdict, dict[str, Any] | None]:
    """The verdict on one entry, and its statement when it is well formed."""
    digest = entry_hash(state)
    leaf = hash_leaf(state)
    try:
        entry = parse_canonical_entry(state)
        if entry is None:
            entry = parse_entry(state)
            if not is_canonical(entry.statement, entry.statement_bytes):
                return (("statement is not RFC 8785 canonical JSON (repeated or reordered "
                         "keys, or other spacing)", None, digest, leaf), None)
    except MalformedEntryError as e:
        return (f"not a well-formed entry: {e}", None, digest, leaf), None
    except RecursionError:
        # JSON Python reads, yet nested too deeply for the canonical check to walk.
        return (("not a well-formed entry: statement is nested too deeply to check its "
                 "canonical form"), None, digest, leaf), None
    signature_problem = None
    actor_key = entry.statement["actor"]["key_id"]
    if [s.key_id for s in entry.signatures] != [actor_key]:
        signature_problem = "entry must carry exactly one signature, by the actor's key"
    else:
        is_valid = _public_key(actor_key, keys)
        if is_valid is None:
            signature_problem = f"signed with unknown key {actor_key[:16]}…"
        elif not is_valid(entry.signatures[0].signature, entry.statement_bytes):
            signature_problem = f"signature does not verify with key {actor_key[:16]}…"
    return (None, signature_problem, digest, leaf), entry.statement


# -- reading the ledger ---------------------------------------------------------------------


def read_rows(
    recorder: SignedRecorder, from_position: int = 0, topics: tuple[str, ...] = (),
    aggregates: tuple[UUID, ...] = (),
) -> Iterator[Row]:
    """Every row in commit order (of `topics` only, and of `aggregates` only, when given),
    read raw: whatever a hostile writer stored in any column becomes a Row with its problems
    named, never an exception from a type conversion."""
    record = recorder.events_record_cls
    leaves = recorder.leaves
    raw = NullType()
    query = (
        select(
            record.id, type_coerce(record.originator_id, String),
            type_coerce(record.originator_version, raw), type_coerce(record.topic, raw),
            type_coerce(record.state, raw), leaves.c.position,
            type_coerce(leaves.c.leaf_hash, raw),
        )
        .outerjoin(leaves, leaves.c.notification_id == record.id)
        .order_by(record.id)
    )
    binary_ids = recorder.dialect != "postgresql"
    if topics:
        topic: ColumnElement[str] = record.topic
        if aggregates and binary_ids:
            # SQLite, without statistics, would read every row of one topic through the
            # topic index rather than the few rows of these aggregates: `+topic` (the same
            # value) leaves it the aggregate index.
            topic = UnaryExpression(record.topic, operator=custom_op("+"), type_=String())
        query = query.where(topic.in_(topics))
    if aggregates:
        query = query.where(record.originator_id.in_(aggregates))
    with recorder.transaction(commit=False) as session:
        if not from_position:
            result = session.execute(query.execution_options(yield_per=READ_BATCH))
            for values in result:
                yield row_from_columns(tuple(values), binary_ids)
            return
        # From a position on: the rows whose leaves are there, from the first of their ids
        # (so the store reads those rows only, not the ledger before them), and any row
        # without a leaf stored after the checkpoint's last entry, an inserted row that must
        # not hide from the check. A leafless row among the older entries is the full
        # verify's to find (docs/SECURITY.md): looking for it would read the whole ledger.
        first_id = min(session.execute(
            select(leaves.c.notification_id).where(leaves.c.position >= from_position)
        ).scalars(), default=None)
        found: Iterator[Row] = iter(())
        if first_id is not None:
            leafed = session.execute(
                query.where(leaves.c.position >= from_position, record.id >= first_id)
                .execution_options(yield_per=READ_BATCH))
            found = (row_from_columns(tuple(values), binary_ids) for values in leafed)
        # After the checkpoint's last entry, or the first new one should that old leaf
        # name a later row: either way a range of the new rows, read by id.
        last_old_id = session.execute(
            select(leaves.c.notification_id).where(leaves.c.position == from_position - 1)
        ).scalar()
        after = [int(i) for i in (last_old_id, None if first_id is None else first_id - 1)
                 if i is not None]
        leafless_query = query.where(leaves.c.position.is_(None))
        if after:
            leafless_query = leafless_query.where(record.id > min(after))
        leafless = session.execute(leafless_query).all()
        if leafless:
            found = heapq.merge(found, (row_from_columns(tuple(v), binary_ids)
                                        for v in leafless),
                                key=lambda row: row.notification_id)
        yield from found


def row_from_columns(values: tuple[object, ...], binary_ids: bool) -> Row:
    """A Row from the raw column values; each value of the wrong type is a problem named.

    SQLite lets any column hold any type, so nothing here may assume the declared one.
    """
    notification_id, originator_id, version, topic, state, position, leaf_hash = values
    problems: list[str] = []
    aggregate_id = _uuid_text(originator_id, binary_ids, problems)
    if isinstance(version, int) and not isinstance(version, bool):
        originator_version = version
    else:
        problems.append(f"originator_version holds {_kind(version)}, not an integer")
        originator_version = -1
    if isinstance(topic, str):
        topic_text = topic
    else:
        problems.append(f"topic holds {_kind(topic)}, not text")
        topic_text = repr(topic)
    if isinstance(state, (bytes, memoryview)):
        state_bytes = bytes(state)
    elif isinstance(state, str):
        # Check what was stored as text by its UTF-8 bytes, so its signature still speaks.
        problems.append("state is stored as text, not as the entry's bytes (BLOB)")
        state_bytes = state.encode("utf-8", "surrogateescape")
    else:
        problems.append(f"state holds {_kind(state)}, not the entry's bytes")
        state_bytes = b""
    stored_leaf = bytes(leaf_hash) if isinstance(leaf_hash, (bytes, memoryview)) else None
    if leaf_hash is not None and stored_leaf is None:
        problems.append(f"leaf_hash holds {_kind(leaf_hash)}, not 32 bytes")
    return Row(
        int(str(notification_id)), aggregate_id, originator_version, topic_text, state_bytes,
        None if position is None else int(str(position)), stored_leaf, tuple(problems),
    )


def _kind(value: object) -> str:
    return "NULL" if value is None else f"a {type(value).__name__} value"


def _uuid_text(value: object, binary_ids: bool, problems: list[str]) -> str:
    """The aggregate id column as text: SQLite stores 16 raw bytes, PostgreSQL a uuid."""
    if binary_ids and not isinstance(value, (bytes, memoryview)):
        problems.append(f"originator_id holds {_kind(value)}, not the UUID's 16 bytes")
    if type(value) is bytes and len(value) == 16:
        # str(UUID(bytes=value)) without building the UUID (a row's hottest column).
        h = value.hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    try:
        if isinstance(value, (bytes, memoryview)):
            return str(UUID(bytes=bytes(value)))
        return str(UUID(str(value)))
    except ValueError:
        if not problems:
            problems.append("originator_id is not a UUID")
        return repr(value)


def row_count(recorder: SignedRecorder, first_position: int) -> int:
    """About how many rows verification will read (for batch sizes and the progress bar)."""
    with recorder.transaction(commit=False) as session:
        if not first_position:
            count = session.execute(select(func.count(recorder.events_record_cls.id))).scalar()
        else:
            count = session.execute(
                select(func.count()).where(recorder.leaves.c.position >= first_position)
            ).scalar()
    return int(count or 0)


def key_directory(recorder: SignedRecorder) -> dict[str, str]:
    """Every public key any entry registered, by key id (used only for signature maths;
    whether a key was valid at a position is the authority check's business)."""
    keys: dict[str, str] = {}
    for row in read_rows(recorder, topics=KEY_EVENT_TYPES):
        try:
            payload = parse_entry(row.state).statement["payload"]
            public_key, key_id = payload["public_key"], payload["key_id"]
            raw = bytes.fromhex(public_key)
            if len(raw) == 32 and key_id_of(raw) == key_id:
                keys[key_id] = public_key
        except (MalformedEntryError, KeyError, TypeError, ValueError):
            continue  # the entry itself is reported when its turn comes
    return keys


def checked_in_order(
    recorder: SignedRecorder, first_position: int, keys: dict[str, str], workers: int,
    total: int, batch_size: int = BATCH_SIZE,
) -> Iterator[tuple[Row, Checked, dict[str, Any] | None]]:
    """Each row with what the per-entry checks found, and its whole statement when it is
    well formed, in commit order. Rows stream from the store; only the batches in flight
    are held in memory."""
    if workers <= 1 or total < PARALLEL_THRESHOLD:
        for row in read_rows(recorder, first_position):
            yield row, *read_entry(row.state, keys)
        return
    # Several batches per worker keep every core busy to the end; not so small that
    # sending them costs more than checking them.
    size = max(MIN_BATCH, min(batch_size, total // (workers * 4) + 1))
    with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(keys,)) as pool:
        # Workers fork at the first task: start them before the store is opened for
        # reading, so no child inherits an open database transaction.
        pool.submit(_check_batch, []).result()
        in_flight: deque[tuple[list[Row], Future[list[Verdict]]]] = deque()
        for batch in _batched(read_rows(recorder, first_position), size):
            in_flight.append((batch, pool.submit(_check_batch, [row.state for row in batch])))
            while len(in_flight) > workers * 2:
                yield from _joined(*in_flight.popleft())
        while in_flight:
            yield from _joined(*in_flight.popleft())


def _joined(rows: list[Row], future: Future[list[Verdict]]
            ) -> Iterator[tuple[Row, Checked, dict[str, Any] | None]]:
    for row, verdict in zip(rows, future.result(), strict=True):
        yield row, *read_verdict(row.state, verdict)


def _batched(rows: Iterator[Row], size: int) -> Iterator[list[Row]]:
    batch: list[Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def check_orphan_leaves(
    recorder: SignedRecorder, joined: int, report: VerificationReport,
    first_position: int = 0,
) -> None:
    """Leaves (from `first_position`) whose entry is gone; `joined` counts the rows read
    with a leaf. A leaf joins at most one row (its notification_id is unique), so equal
    counts mean none is orphaned; else the store lists them, no set of positions held."""
    leaves = recorder.leaves
    record = recorder.events_record_cls
    with recorder.transaction(commit=False) as session:
        count = session.execute(
            select(func.count()).where(leaves.c.position >= first_position)
        ).scalar()
        if count == joined:
            return  # every leaf belongs to an entry read: nothing to list
        orphans = session.execute(
            select(leaves.c.position)
            .where(leaves.c.position >= first_position,
                   ~select(record.id).where(record.id == leaves.c.notification_id).exists())
            .order_by(leaves.c.position)
        ).scalars().all()
    for position in orphans:
        report.findings.append(
            Finding("leaf", "Merkle leaf points at an entry that is gone", position=position)
        )

