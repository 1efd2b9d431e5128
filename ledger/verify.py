"""`trialctl verify`: check a ledger without trusting the database that holds it.

Every entry: its stored form, its signature against the key valid at its position, the
signer's authority, its link to the previous entry of its aggregate, its place in the dense
global sequence and its Merkle leaf. Then the Merkle root against each checkpoint given, and
consistency between those checkpoints. Findings are collected, never raised: one run lists
every failing entry with its position, aggregate and reason.

Signature checks, the costly part, run on every core in worker processes; the ordered checks
(sequence, chain, authority) run in one pass afterwards over the workers' compact results.
"""

from __future__ import annotations

import itertools
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from typing import Any
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from eventsourcing.persistence import StoredEvent
from sqlalchemy import String, func, or_, select, type_coerce

from trialctl.ledger.authority import check_bootstrap, check_signature_authority
from trialctl.ledger.canonical import is_canonical
from trialctl.ledger.checkpoint import SignedCheckpoint
from trialctl.ledger.entry import MalformedEntryError, entry_hash, parse_entry
from trialctl.ledger.errors import LedgerError
from trialctl.ledger.keys import key_id_of, load_public_key, signature_is_valid
from trialctl.ledger.mapper import EntryMapper
from trialctl.ledger.merkle import (
    MerkleError,
    consistency_proof,
    hash_leaf,
    root_from_leaf_hashes,
    verify_consistency,
)
from trialctl.ledger.recorder import SignedRecorder
from trialctl.ledger.users import USER_EVENT_PREFIX, LedgerRecord, User, user_aggregate_id

KEY_EVENT_TYPES = (User.Registered.TOPIC, User.KeyRotated.TOPIC)
USER_TOPICS = (
    User.Registered.TOPIC, User.RoleGranted.TOPIC, User.RoleRevoked.TOPIC,
    User.KeyRotated.TOPIC, User.KeyRevoked.TOPIC,
)
PARALLEL_THRESHOLD = 2000
BATCH_SIZE = 2000
MIN_BATCH = 250

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Finding:
    check: str
    detail: str
    position: int | None = None
    notification_id: int | None = None
    aggregate_id: str | None = None
    aggregate_version: int | None = None
    event_type: str | None = None

    def describe(self) -> str:
        where = []
        if self.position is not None:
            where.append(f"position {self.position}")
        if self.notification_id is not None:
            where.append(f"row {self.notification_id}")
        if self.aggregate_id is not None:
            where.append(f"aggregate {self.aggregate_id} v{self.aggregate_version}")
        if self.event_type:
            where.append(self.event_type)
        prefix = f"[{', '.join(where)}] " if where else ""
        return f"{prefix}{self.check}: {self.detail}"


@dataclass(frozen=True)
class CheckpointResult:
    source: str
    tree_size: int
    signer: str
    status: str


@dataclass
class VerificationReport:
    location: str
    entries_checked: int = 0
    tree_size: int = 0
    root_hash: str = ""
    since_tree_size: int | None = None
    findings: list[Finding] = field(default_factory=list)
    checkpoints: list[CheckpointResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "ledger": self.location,
            "entries_checked": self.entries_checked,
            "tree_size": self.tree_size,
            "root_hash": self.root_hash,
            "since_tree_size": self.since_tree_size,
            "findings": [asdict(f) for f in self.findings],
            "checkpoints": [asdict(c) for c in self.checkpoints],
        }


@dataclass(frozen=True)
class _Row:
    notification_id: int
    originator_id: str
    originator_version: int
    topic: str
    state: bytes
    leaf_position: int | None
    leaf_hash: bytes | None


@dataclass(frozen=True)
class _Checked:
    """What a worker learns about one entry, independent of every other entry."""

    statement: dict[str, Any] | None
    problem: str | None
    signature_problem: str | None
    entry_hash: str
    leaf_hash: bytes


# -- per-entry checks (run in worker processes) ---------------------------------------------

_worker_keys: dict[str, str] = {}
_public_keys: dict[str, Ed25519PublicKey] = {}

# The ordered checks read payloads only of these types; others travel back without theirs.
PAYLOADS_READ = frozenset(
    {LedgerRecord.Initialised.TOPIC, LedgerRecord.CheckpointRecorded.TOPIC, *USER_TOPICS}
)


def _init_worker(keys: dict[str, str]) -> None:
    global _worker_keys
    _worker_keys = keys


def _check_batch(states: list[bytes]) -> list[_Checked]:
    return [_check_one(state, _worker_keys) for state in states]


def _public_key(key_id: str, keys: dict[str, str]) -> Ed25519PublicKey | None:
    if key_id not in _public_keys:
        public_hex = keys.get(key_id)
        if public_hex is None:
            return None
        _public_keys[key_id] = load_public_key(public_hex)
    return _public_keys[key_id]


def _check_one(state: bytes, keys: dict[str, str]) -> _Checked:
    digest = entry_hash(state)
    leaf = hash_leaf(state)
    try:
        entry = parse_entry(state)
    except MalformedEntryError as e:
        return _Checked(None, f"not a well-formed entry: {e}", None, digest, leaf)
    if not is_canonical(entry.statement, entry.statement_bytes):
        return _Checked(None, "statement is not RFC 8785 canonical JSON (repeated or "
                        "reordered keys, or other spacing)", None, digest, leaf)
    signature_problem = None
    actor_key = entry.statement["actor"]["key_id"]
    if [s.key_id for s in entry.signatures] != [actor_key]:
        signature_problem = "entry must carry exactly one signature, by the actor's key"
    else:
        public_key = _public_key(actor_key, keys)
        if public_key is None:
            signature_problem = f"signed with unknown key {actor_key[:16]}…"
        elif not signature_is_valid(
            public_key, entry.signatures[0].signature, entry.statement_bytes
        ):
            signature_problem = f"signature does not verify with key {actor_key[:16]}…"
    statement = entry.statement
    if statement["type"] not in PAYLOADS_READ:
        statement = {**statement, "payload": {}}  # less to send back from the worker
    return _Checked(statement, None, signature_problem, digest, leaf)


# -- reading the ledger ---------------------------------------------------------------------


def _rows(recorder: SignedRecorder, from_position: int = 0) -> Iterator[_Row]:
    record = recorder.events_record_cls
    leaves = recorder.leaves
    query = (
        select(
            # Read the id column raw: a forged row must become a finding, not a decoding crash.
            record.id, type_coerce(record.originator_id, String), record.originator_version,
            record.topic,
            record.state, leaves.c.position, leaves.c.leaf_hash,
        )
        .outerjoin(leaves, leaves.c.notification_id == record.id)
        .order_by(record.id)
    )
    if from_position:
        # Rows without a leaf are included: an inserted row must not hide from the check.
        query = query.where(
            or_(leaves.c.position >= from_position, leaves.c.position.is_(None))
        )
    with recorder.transaction(commit=False) as session:
        result = session.execute(query.execution_options(yield_per=BATCH_SIZE))
        for row in result:
            yield _Row(
                int(row[0]), _uuid_text(row[1]), int(row[2]), str(row[3]), bytes(row[4]),
                None if row[5] is None else int(row[5]),
                None if row[6] is None else bytes(row[6]),
            )


def _uuid_text(value: object) -> str:
    """The aggregate id column as text: SQLite stores 16 raw bytes, PostgreSQL a uuid."""
    try:
        if isinstance(value, (bytes, memoryview)):
            return str(UUID(bytes=bytes(value)))
        return str(UUID(str(value)))
    except ValueError:
        return repr(value)


def _row_count(recorder: SignedRecorder, first_position: int) -> int:
    """About how many rows verification will read (for batch sizes and the progress bar)."""
    with recorder.transaction(commit=False) as session:
        if not first_position:
            count = session.execute(select(func.count(recorder.events_record_cls.id))).scalar()
        else:
            count = session.execute(
                select(func.count()).where(recorder.leaves.c.position >= first_position)
            ).scalar()
    return int(count or 0)


def _key_directory(recorder: SignedRecorder) -> dict[str, str]:
    """Every public key any entry registered, by key id (used only for signature maths;
    whether a key was valid at a position is the authority check's business)."""
    keys: dict[str, str] = {}
    notifications = recorder.select_notifications(
        start=None, limit=10_000_000, topics=list(KEY_EVENT_TYPES)
    )
    for notification in notifications:
        try:
            payload = parse_entry(notification.state).statement["payload"]
            public_key, key_id = payload["public_key"], payload["key_id"]
            if key_id_of(bytes.fromhex(public_key)) == key_id:
                keys[key_id] = public_key
        except (MalformedEntryError, KeyError, TypeError, ValueError):
            continue  # the entry itself is reported when its turn comes
    return keys


def _checked_in_order(
    recorder: SignedRecorder, first_position: int, keys: dict[str, str], workers: int,
    total: int,
) -> Iterator[tuple[_Row, _Checked]]:
    """Each row with what the per-entry checks found, in commit order. Rows stream from the
    store; only the batches in flight are held in memory."""
    if workers <= 1 or total < PARALLEL_THRESHOLD:
        for row in _rows(recorder, first_position):
            yield row, _check_one(row.state, keys)
        return
    # Several batches per worker keep every core busy to the end; not so small that
    # sending them costs more than checking them.
    size = max(MIN_BATCH, min(BATCH_SIZE, total // (workers * 4) + 1))
    with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(keys,)) as pool:
        # Workers fork at the first task: start them before the store is opened for
        # reading, so no child inherits an open database transaction.
        pool.submit(_check_batch, []).result()
        in_flight: deque[tuple[list[_Row], Future[list[_Checked]]]] = deque()
        for batch in _batched(_rows(recorder, first_position), size):
            states = [row.state for row in batch]
            in_flight.append(([_light(row) for row in batch], pool.submit(_check_batch, states)))
            while len(in_flight) > workers * 2:
                rows, future = in_flight.popleft()
                yield from zip(rows, future.result(), strict=True)
        while in_flight:
            rows, future = in_flight.popleft()
            yield from zip(rows, future.result(), strict=True)


def _batched(rows: Iterator[_Row], size: int) -> Iterator[list[_Row]]:
    batch: list[_Row] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _light(row: _Row) -> _Row:
    """The row as the ordered pass needs it: bytes only where a user event is re-read."""
    return row if row.topic.startswith(USER_EVENT_PREFIX) else replace(row, state=b"")


# -- the ordered checks ---------------------------------------------------------------------


class _Auditor:
    """Walks entries in commit order, keeping what each check needs from the past."""

    def __init__(self, report: VerificationReport, first_position: int = 0) -> None:
        self.report = report
        self.expected_position = first_position
        self.chain: dict[str, tuple[int, str]] = {}
        # Where verification starts after a checkpoint, the entry before the first new one of
        # an aggregate is read from the store (it is committed to by the checkpoint's root).
        self.previous_entry: Callable[[str, int], tuple[int, str] | None] | None = None
        self.users: dict[str, User] = {}
        self.leaf_hashes: list[bytes] = []
        self.opening: dict[str, Any] | None = None
        self.mapper = EntryMapper(transcoder=None)  # type: ignore[arg-type]
        self.ledger_id: str | None = None
        self.recorded_checkpoints: list[tuple[_Row, int, int, str]] = []

    def fail(self, row: _Row, check: str, detail: str, position: int | None = None) -> None:
        self.report.findings.append(
            Finding(check, detail, position, row.notification_id, row.originator_id,
                    row.originator_version, row.topic)
        )

    def apply_user_event(self, row: _Row, statement: dict[str, Any]) -> None:
        if not statement["type"].startswith(USER_EVENT_PREFIX):
            if statement["type"] == LedgerRecord.Initialised.TOPIC:
                self.ledger_id = str(statement["payload"].get("ledger_id"))
            return
        try:
            domain_event = self.mapper.to_domain_event(
                StoredEvent(UUID(row.originator_id), row.originator_version, row.topic, row.state)
            )
            current = self.users.get(row.originator_id)
            updated = domain_event.mutate(current)  # type: ignore[attr-defined]
        except Exception as e:
            self.fail(row, "user-record", f"cannot apply user event: {e}")
            return
        if isinstance(updated, User):
            self.users[row.originator_id] = updated

    def user_named(self, user_id: str) -> User | None:
        for user in self.users.values():
            if user.user_id == user_id:
                return user
        return None

    def check(self, row: _Row, checked: _Checked) -> None:
        self.report.entries_checked += 1
        self.leaf_hashes.append(checked.leaf_hash)
        if checked.statement is None:
            self.fail(row, "entry-format", checked.problem or "unreadable")
            self.expected_position += 1
            return
        statement = checked.statement
        position = int(statement["position"])
        self._check_sequence(row, position)
        self._check_columns(row, statement, position)
        self._check_leaf(row, checked, position)
        self._check_chain(row, statement, checked, position)
        findings_before = len(self.report.findings)
        if checked.signature_problem:
            self.fail(row, "signature", checked.signature_problem, position)
        self._check_authority(row, statement, position)
        self._check_identity(row, statement, position)
        if len(self.report.findings) > findings_before:
            return  # an unsigned or unauthorised change to a user must not shape what follows
        if statement["type"] == LedgerRecord.CheckpointRecorded.TOPIC:
            payload = statement["payload"]
            self.recorded_checkpoints.append(
                (row, position, int(payload.get("tree_size", -1)), str(payload.get("root_hash")))
            )
        self.apply_user_event(row, statement)

    def _check_sequence(self, row: _Row, position: int) -> None:
        if position > self.expected_position:
            missing = position - self.expected_position
            self.fail(row, "sequence", f"{missing} entr{'y' if missing == 1 else 'ies'} "
                      f"missing before this one (expected position {self.expected_position})",
                      position)
        elif position < self.expected_position:
            self.fail(row, "sequence", f"out of order: position {position} comes after "
                      f"{self.expected_position - 1}", position)
        self.expected_position = max(self.expected_position, position) + 1

    def _check_columns(self, row: _Row, statement: dict[str, Any], position: int) -> None:
        if (
            statement["aggregate_id"] != row.originator_id
            or statement["aggregate_version"] != row.originator_version
            or statement["type"] != row.topic
        ):
            self.fail(row, "columns", "row's aggregate, version or type differ from what was "
                      "signed", position)

    def _check_leaf(self, row: _Row, checked: _Checked, position: int) -> None:
        if row.leaf_position is None:
            self.fail(row, "leaf", "entry has no Merkle leaf", position)
        elif row.leaf_position != position:
            self.fail(row, "leaf", f"Merkle leaf is numbered {row.leaf_position}", position)
        elif row.leaf_hash != checked.leaf_hash:
            self.fail(row, "leaf", "stored leaf hash does not match the entry", position)

    def _check_chain(
        self, row: _Row, statement: dict[str, Any], checked: _Checked, position: int
    ) -> None:
        version = int(statement["aggregate_version"])
        previous = self.chain.get(row.originator_id)
        if previous is None and version > 1 and self.previous_entry is not None:
            previous = self.previous_entry(row.originator_id, version)
        if previous is None:
            if version != 1:
                self.fail(row, "chain", f"aggregate starts at version {version}; versions "
                          f"1..{version - 1} are missing", position)
            elif statement["prev_hash"] is not None:
                self.fail(row, "chain", "first entry of its aggregate names a predecessor",
                          position)
        else:
            previous_version, previous_hash = previous
            if version != previous_version + 1:
                self.fail(row, "chain", f"version {version} follows version "
                          f"{previous_version}", position)
            elif statement["prev_hash"] != previous_hash:
                self.fail(row, "chain", f"prev_hash does not match the hash of version "
                          f"{previous_version}", position)
        self.chain[row.originator_id] = (version, checked.entry_hash)

    def _check_identity(self, row: _Row, statement: dict[str, Any], position: int) -> None:
        """A user's record lives at the id derived from their user id, so nobody can be
        registered twice under two aggregates."""
        if statement["type"] == User.Registered.TOPIC:
            user_id = statement["payload"].get("user_id")
            if not isinstance(user_id, str) or statement["aggregate_id"] != str(
                user_aggregate_id(user_id)
            ):
                self.fail(row, "identity", f"user {user_id!r} registered under an aggregate id "
                          "not derived from it", position)

    def _check_authority(self, row: _Row, statement: dict[str, Any], position: int) -> None:
        if position == 0:
            self.opening = statement
            return
        if position == 1 and self.opening is not None:
            reason = check_bootstrap(self.opening, statement)
            if reason is not None:
                self.fail(row, "authority", reason, position)
            return
        actor = statement["actor"]
        reason = check_signature_authority(
            self.user_named(actor["user_id"]), actor, statement["type"], statement["meaning"]
        )
        if reason is not None:
            self.fail(row, "authority", reason, position)


def verify_ledger(
    recorder: SignedRecorder,
    location: str,
    checkpoints: Sequence[tuple[str, SignedCheckpoint]] = (),
    progress: Progress | None = None,
    workers: int | None = None,
    since: tuple[str, SignedCheckpoint] | None = None,
) -> VerificationReport:
    """Check every entry of the ledger, then each checkpoint against it.

    With `since` (a checkpoint verified before), only the entries appended after it are
    checked in full; the older ones are covered by proving, RFC 6962 style, that the tree
    the checkpoint signed is a prefix of today's. The cost follows the new entries.
    """
    report = VerificationReport(location)
    auditor = _Auditor(report)
    first_position = 0
    if since is not None:
        first_position = _start_after_checkpoint(recorder, auditor, since)
    keys = _key_directory(recorder)
    total = _row_count(recorder, first_position)
    leaf_positions: set[int] = set()
    checked_rows = _checked_in_order(
        recorder, first_position, keys, workers or os.cpu_count() or 1, total
    )
    for done, (row, checked) in enumerate(checked_rows, start=1):
        auditor.check(row, checked)
        if row.leaf_position is not None:
            leaf_positions.add(row.leaf_position)
        if progress is not None and (done % 500 == 0 or done == total):
            progress(done, total)
    _check_orphan_leaves(recorder, leaf_positions, report, first_position)
    if since is not None:
        _check_extends(since, auditor.leaf_hashes, report)
    report.tree_size = len(auditor.leaf_hashes)
    report.root_hash = root_from_leaf_hashes(auditor.leaf_hashes).hex()
    _check_recorded_checkpoints(auditor, report)
    _check_checkpoints(auditor, checkpoints, auditor.leaf_hashes, report)
    return report


def _start_after_checkpoint(
    recorder: SignedRecorder, auditor: _Auditor, since: tuple[str, SignedCheckpoint]
) -> int:
    """Bring the auditor to the checkpoint's tree size without re-checking old entries:
    the users and keys as they stood there, and the old leaves as the store holds them."""
    source, signed = since
    size = signed.checkpoint.tree_size
    auditor.report.since_tree_size = size
    auditor.expected_position = size
    notifications = recorder.select_notifications(
        start=None, limit=10_000_000,
        topics=[*USER_TOPICS, LedgerRecord.Initialised.TOPIC],
    )
    for notification in notifications:
        try:
            entry = parse_entry(notification.state)
        except MalformedEntryError:
            continue
        if entry.position < size:
            row = _Row(notification.id, str(notification.originator_id),
                       notification.originator_version, notification.topic,
                       notification.state, entry.position, None)
            auditor.apply_user_event(row, entry.statement)
    problem = _checkpoint_signer_ok(auditor, signed)
    if problem is not None:
        auditor.report.findings.append(Finding("checkpoint", f"{source}: {problem}"))
    try:
        auditor.leaf_hashes = recorder.leaf_hashes(upto=size)
    except LedgerError as e:
        auditor.report.findings.append(Finding("leaf", f"{e} (before {source})"))
    if len(auditor.leaf_hashes) < size:
        auditor.report.findings.append(Finding(
            "checkpoint", f"{source}: ledger truncated: the checkpoint covers {size} entries, "
            f"the ledger holds {len(auditor.leaf_hashes)}"))

    def previous_entry(aggregate_id: str, version: int) -> tuple[int, str] | None:
        found = recorder.select_events(UUID(aggregate_id), lte=version - 1, desc=True, limit=1)
        if not found or found[0].originator_version != version - 1:
            return None
        return version - 1, entry_hash(found[0].state)

    auditor.previous_entry = previous_entry
    return size


def _check_extends(
    since: tuple[str, SignedCheckpoint], leaf_hashes: Sequence[bytes],
    report: VerificationReport,
) -> None:
    source, signed = since
    old_size = signed.checkpoint.tree_size
    if len(leaf_hashes) < old_size or not old_size:
        return
    try:
        proof = consistency_proof(old_size, list(leaf_hashes))
        verify_consistency(old_size, len(leaf_hashes), signed.checkpoint.root_hash,
                           root_from_leaf_hashes(leaf_hashes), proof)
    except MerkleError as e:
        report.findings.append(Finding(
            "consistency", f"history rewritten before {source}: today's tree does not extend "
            f"the one it signed ({e})"))
    report.checkpoints.append(CheckpointResult(
        source, old_size, signed.checkpoint.signer,
        "ok" if not any(f.check == "consistency" for f in report.findings) else "inconsistent"))


def _check_orphan_leaves(
    recorder: SignedRecorder, joined: set[int], report: VerificationReport,
    first_position: int = 0,
) -> None:
    leaves = recorder.leaves.c.position
    with recorder.transaction(commit=False) as session:
        count = session.execute(
            select(func.count()).where(leaves >= first_position)
        ).scalar()
        if count == len(joined):
            return  # every leaf belongs to an entry read: nothing to list
        positions = session.execute(select(leaves).where(leaves >= first_position)).scalars()
        orphans = sorted(set(positions) - joined)
    for position in orphans:
        report.findings.append(
            Finding("leaf", "Merkle leaf points at an entry that is gone", position=position)
        )


def _check_recorded_checkpoints(auditor: _Auditor, report: VerificationReport) -> None:
    for row, position, size, root in auditor.recorded_checkpoints:
        if not 0 <= size <= len(auditor.leaf_hashes):
            auditor.fail(row, "checkpoint", f"recorded checkpoint of size {size} exceeds the "
                         "ledger", position)
        elif root_from_leaf_hashes(auditor.leaf_hashes[:size]).hex() != root:
            auditor.fail(row, "checkpoint", f"recorded checkpoint root for size {size} does "
                         "not match the entries", position)


def _checkpoint_signer_ok(auditor: _Auditor, signed: SignedCheckpoint) -> str | None:
    user = auditor.user_named(signed.checkpoint.signer)
    if user is None:
        return f"signed by {signed.checkpoint.signer!r}, who is not a user of this ledger"
    for key_id in [user.key_id, *user.past_keys]:
        if key_id in user.revoked_keys:
            continue  # a revoked key vouches for nothing
        public_key = user.public_key_for(key_id)
        if public_key and signed.signature_valid_for(public_key, key_id):
            return None
    return "signature does not verify with any key of its signer"


def _check_checkpoints(
    auditor: _Auditor,
    checkpoints: Sequence[tuple[str, SignedCheckpoint]],
    leaf_hashes: Sequence[bytes],
    report: VerificationReport,
) -> None:
    verified: list[tuple[str, SignedCheckpoint]] = []
    for source, signed in checkpoints:
        checkpoint = signed.checkpoint
        problem = _checkpoint_signer_ok(auditor, signed)
        if problem is None and auditor.ledger_id and checkpoint.ledger_id != auditor.ledger_id:
            problem = f"checkpoint is for ledger {checkpoint.ledger_id}, not {auditor.ledger_id}"
        if problem is None and checkpoint.tree_size > len(leaf_hashes):
            problem = (
                f"ledger truncated: the checkpoint covers {checkpoint.tree_size} entries, "
                f"the ledger holds {len(leaf_hashes)}"
            )
        if problem is None:
            root = root_from_leaf_hashes(leaf_hashes[: checkpoint.tree_size])
            if root != checkpoint.root_hash:
                problem = (
                    f"history rewritten: the first {checkpoint.tree_size} entries hash to "
                    f"{root.hex()[:16]}…, the checkpoint says {checkpoint.root_hash.hex()[:16]}…"
                )
        if problem is not None:
            report.findings.append(Finding("checkpoint", f"{source}: {problem}"))
        else:
            verified.append((source, signed))
        report.checkpoints.append(
            CheckpointResult(source, checkpoint.tree_size, checkpoint.signer,
                             "ok" if problem is None else problem)
        )
    _check_consistency(verified, leaf_hashes, report)


def _check_consistency(
    verified: Sequence[tuple[str, SignedCheckpoint]],
    leaf_hashes: Sequence[bytes],
    report: VerificationReport,
) -> None:
    """Each checkpoint must be a prefix of the next larger one: prove it as RFC 6962 does."""
    ordered = sorted(verified, key=lambda item: item[1].checkpoint.tree_size)
    for (old_source, old), (new_source, new) in itertools.pairwise(ordered):
        old_size, new_size = old.checkpoint.tree_size, new.checkpoint.tree_size
        try:
            proof = consistency_proof(old_size, list(leaf_hashes[:new_size]))
            verify_consistency(
                old_size, new_size, old.checkpoint.root_hash, new.checkpoint.root_hash, proof
            )
        except MerkleError as e:
            report.findings.append(
                Finding("consistency", f"{old_source} is not a prefix of {new_source}: {e}")
            )
