"""The append-only, signed recorder: eventsourcing's SQLAlchemy recorder, extended where the
library expects it, so that every row it writes is a signed, chained, numbered entry.

Within one transaction, and holding the writer's lock, it
  1. numbers the new entries densely after the last Merkle leaf (global position),
  2. links each to the hash of the previous entry of its aggregate,
  3. signs them and asks the authority check given with the save whether the signer may
     sign them (a value passed down: the recorder never calls the application),
  4. inserts them and their Merkle leaves.
Triggers in the database refuse UPDATE and DELETE on entries and leaves.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    func,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import Engine, Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from trialctl.ledger.entry import (
    EVIDENCE_FORMAT,
    EVIDENCE_TYPES,
    STATEMENT_FORMAT,
    entry_hash,
    seal,
)
from trialctl.ledger.errors import LedgerError, RecordingError
from trialctl.ledger.keys import KeyPair
from trialctl.ledger.merkle import hash_leaf
from trialctl.ledger.sqlalchemy_store import SQLAlchemyApplicationRecorder, SQLAlchemyDatastore

ENTRIES_TABLE = "trialctl_events"
KNOWN_HEADS_LIMIT = 10_000
LEAVES_TABLE = "trialctl_leaves"
SCHEMA_TABLE = "trialctl_schema"
# Ids a command numbers itself (a trial's queries Q1, Q2, …): each claimed by a row in the
# same transaction as the entry that takes it, so two writers racing for the same next id
# cannot both commit; the second is refused and nothing of it is written. Made on first
# use, so ledgers made before it need no migration; it only guards new ids.
CLAIMS_TABLE = "trialctl_claimed_ids"
CLAIMS_DDL = (
    f"CREATE TABLE IF NOT EXISTS {CLAIMS_TABLE} "
    "(scope TEXT NOT NULL, claimed_id TEXT NOT NULL, PRIMARY KEY (scope, claimed_id))"
)
# Each checkpoint's frontier (ledger/merkle_frontier.py): the O(log n) subtree roots of the
# tree it signed, so `verify --since-checkpoint` need not read every older leaf. Derived and
# unsigned: trusted only once it reproduces a signed root. Made on first use, like the
# claims table, so older ledgers need no migration (they simply have no frontier yet).
FRONTIERS_TABLE = "trialctl_frontiers"


def frontiers_ddl(dialect: str) -> str:
    binary = "BYTEA" if dialect == "postgresql" else "BLOB"
    return (f"CREATE TABLE IF NOT EXISTS {FRONTIERS_TABLE} "
            f"(tree_size BIGINT PRIMARY KEY, hashes {binary} NOT NULL)")


# The PostgreSQL advisory lock every appender holds until it commits: any fixed number will
# do, as long as every trialctl uses the same one (it reads "trialctl" in ASCII).
WRITER_LOCK_KEY = 0x747269616C63746C
# The layout of the tables this trialctl writes and reads (docs/FORMAT.md, `trialctl_schema`).
# Raise it with any change an older trialctl would misread, and say in FORMAT.md what changed.
SCHEMA_VERSION = 2


@dataclass(frozen=True)
class Signer:
    """Who signs the entries being written, and with what meaning."""

    user_id: str
    name: str
    role: str
    meaning: str
    keys: KeyPair

    @property
    def actor(self) -> dict[str, str]:
        return {
            "user_id": self.user_id,
            "name": self.name,
            "role": self.role,
            "key_id": self.keys.key_id,
        }


# (scope, id) pairs written with an append: a second claim of one pair is refused.
Claims = Sequence[tuple[str, str]]
# Called with each new entry's statement and sealed row, in order, before anything is written.
Authorizer = Callable[[list[tuple[dict[str, Any], StoredEvent]]], None]
# A cohort decision's evidence, keyed by the decision event's (aggregate id, version).
Evidence = Mapping[tuple[UUID, int], dict[str, Any]]


def leaves_table(metadata: MetaData, schema: str | None = None) -> Table:
    """One row per entry, numbered densely in commit order: the Merkle tree's leaves."""
    return Table(
        LEAVES_TABLE,
        metadata,
        Column("position", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True,
               autoincrement=False),
        Column("notification_id", BigInteger().with_variant(Integer(), "sqlite"),
               nullable=False, unique=True),
        Column("leaf_hash", LargeBinary(), nullable=False),
        schema=schema,
    )


def schema_table(metadata: MetaData, schema: str | None = None) -> Table:
    """One row: the schema version of the tables, written at `init`."""
    return Table(
        SCHEMA_TABLE,
        metadata,
        Column("version", Integer(), primary_key=True, autoincrement=False),
        schema=schema,
    )


def _append_only_sqlite(table: str) -> list[str]:
    return [
        f"CREATE TRIGGER IF NOT EXISTS {table}_no_update BEFORE UPDATE ON {table} "
        f"BEGIN SELECT RAISE(ABORT, 'trialctl: {table} is append-only'); END",
        f"CREATE TRIGGER IF NOT EXISTS {table}_no_delete BEFORE DELETE ON {table} "
        f"BEGIN SELECT RAISE(ABORT, 'trialctl: {table} is append-only'); END",
    ]


POSTGRES_REJECT_FUNCTION = """
CREATE OR REPLACE FUNCTION trialctl_reject_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'trialctl: % is append-only', TG_TABLE_NAME;
END;
$$ LANGUAGE plpgsql
"""


def _append_only_postgres(table: str) -> list[str]:
    return [
        f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}",
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
        "FOR EACH ROW EXECUTE FUNCTION trialctl_reject_change()",
        f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}",
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
        "FOR EACH STATEMENT EXECUTE FUNCTION trialctl_reject_change()",
    ]


class SignedRecorder(SQLAlchemyApplicationRecorder):
    def __init__(
        self,
        datastore: SQLAlchemyDatastore,
        *,
        events_table_name: str,
        schema_name: str | None = None,
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name, schema_name=schema_name)
        metadata = MetaData()
        self.leaves = leaves_table(metadata, schema_name)
        self.schema = schema_table(metadata, schema_name)
        self.tables += [self.leaves, self.schema]
        # Hashes of entries this process has read, by aggregate: (version, entry hash).
        # Entries never change once committed, and a second entry at the same version is
        # refused by the unique index, so a remembered hash can stand in for a re-read.
        self._known_heads: OrderedDict[UUID, tuple[int, str]] = OrderedDict()
        self._claims_ready = False

    @property
    def dialect(self) -> str:
        assert self.datastore.engine is not None
        return str(self.datastore.engine.dialect.name)

    def create_table(self) -> None:
        super().create_table()
        assert self.datastore.engine is not None
        engine = self.datastore.engine
        assert isinstance(engine, Engine)
        with engine.begin() as connection:
            statements: list[str] = []
            if self.dialect == "postgresql":
                statements.append(POSTGRES_REJECT_FUNCTION)
                for table in (self.events_table_name, LEAVES_TABLE):
                    statements += _append_only_postgres(table)
            else:
                for table in (self.events_table_name, LEAVES_TABLE):
                    statements += _append_only_sqlite(table)
            statements.append(CLAIMS_DDL)
            statements.append(frontiers_ddl(self.dialect))
            # Finding a trial's patients, users or checkpoints reads by event type.
            statements.append(
                f"CREATE INDEX IF NOT EXISTS {self.events_table_name}_topic_idx "
                f"ON {self.events_table_name} (topic)"
            )
            for statement in statements:
                connection.execute(text(statement))
            if connection.execute(select(func.count()).select_from(self.schema)).scalar() == 0:
                connection.execute(self.schema.insert().values(version=SCHEMA_VERSION))

    def schema_versions(self) -> list[int]:
        """The schema versions the schema table holds: one, unless it was tampered with."""
        with self.transaction(commit=False) as session:
            return [int(v) for v in session.execute(select(self.schema.c.version)).scalars()]

    def _lock_table(self, session: Session) -> None:
        # The library locks again before its insert; once per transaction is enough.
        transaction = id(session.get_transaction())
        if session.info.get("trialctl_locked_in") != transaction:
            if self.dialect == "postgresql":
                # Not the library's LOCK TABLE … IN EXCLUSIVE MODE: that needs UPDATE, DELETE
                # or TRUNCATE on the entries, which the writer role must not hold
                # (ledger/pg_roles.py). A transaction-level advisory lock serialises appenders
                # the same way, needs no privilege, and is released at commit or rollback.
                self._driver_sql(session, "SELECT pg_advisory_xact_lock(?)", (WRITER_LOCK_KEY,))
            else:
                super()._lock_table(session)
            session.info["trialctl_locked_in"] = transaction

    def _lock_for_append(self, session: Session) -> None:
        if self.dialect == "postgresql":
            # Serialise appenders so positions follow commit order.
            self._lock_table(session)
        else:
            # A write as the transaction's first statement takes SQLite's write lock now,
            # so the position we read next cannot be taken by another process.
            self._driver_sql(session, f"DELETE FROM {LEAVES_TABLE} WHERE 0 = 1")

    def _driver_sql(self, session: Session, sql: str, parameters: Any = ()) -> Any:
        """Plain SQL straight to the driver, for the few statements on every append: it
        costs a sixth of a compiled SQLAlchemy statement (benchmarks/results.md). Written
        with '?' placeholders; PostgreSQL's driver wants '%s'."""
        if self.dialect == "postgresql":
            sql = sql.replace("?", "%s")
        return session.connection().exec_driver_sql(sql, parameters)

    def originators_with(self, topic: str, among: Sequence[UUID]) -> list[UUID]:
        """Which of these records hold an entry of this topic, in the order of their first."""
        if not among:
            return []
        marks = ", ".join("?" for _ in among)
        with self.transaction(commit=False) as session:
            rows = self._driver_sql(
                session,
                f"SELECT originator_id FROM {self.events_table_name} WHERE topic = ? "
                f"AND originator_id IN ({marks}) GROUP BY originator_id ORDER BY min(id)",
                (topic, *(self._id_parameter(i) for i in among)),
            )
            return [self._stored_id(row[0]) for row in rows]

    @staticmethod
    def _stored_id(value: object) -> UUID:
        # The inverse of `_id_parameter`, for rows read with `_driver_sql`.
        if isinstance(value, UUID):
            return value
        if isinstance(value, bytes) and len(value) == 16:
            return UUID(bytes=value)
        raise LedgerError(f"an entry's originator_id holds {value!r}, not a record id; "
                          "run 'trialctl verify'")

    def _id_parameter(self, originator_id: UUID) -> object:
        # The id column holds 16 raw bytes on SQLite and a native uuid on PostgreSQL.
        return originator_id if self.dialect == "postgresql" else originator_id.bytes

    def latest_version(self, originator_id: UUID) -> int | None:
        with self.transaction(commit=False) as session:
            version = self._driver_sql(
                session,
                f"SELECT max(originator_version) FROM {self.events_table_name} "
                "WHERE originator_id = ?",
                (self._id_parameter(originator_id),),
            ).scalar()
        return None if version is None else int(version)

    def tree_size(self) -> int:
        with self.transaction(commit=False) as session:
            return self._tree_size(session)

    def _tree_size(self, session: Session) -> int:
        last = self._driver_sql(session, f"SELECT max(position) FROM {LEAVES_TABLE}").scalar()
        return 0 if last is None else int(last) + 1

    def select_events(
        self,
        originator_id: UUID | str,
        gt: int | None = None,
        lte: int | None = None,
        desc: bool = False,
        limit: int | None = None,
    ) -> list[StoredEvent]:
        # The library's version loads an ORM object per row, which costs more than the
        # row's JSON: loading a patient is mostly this select. The same query as columns.
        record = self.events_record_cls
        version = record.originator_version
        query = select(record.originator_id, version, record.topic, record.state).where(
            record.originator_id == originator_id
        )
        if gt is not None:
            query = query.where(version > gt)
        if lte is not None:
            query = query.where(version <= lte)
        query = query.order_by(version.desc() if desc else version)
        if limit is not None:
            query = query.limit(limit)
        with self.transaction(commit=False) as session:
            stored = [
                StoredEvent(originator_id=row[0], originator_version=row[1], topic=row[2],
                            state=bytes(row[3]))
                for row in session.execute(query)
            ]
        if stored:
            latest = max(stored, key=lambda e: e.originator_version)
            self._remember(UUID(str(originator_id)), latest.originator_version,
                           entry_hash(latest.state))
        return stored

    def stored_events_naming(self, topic: str, text: str) -> list[StoredEvent]:
        """The entries of one topic whose stored bytes hold `text`, in the order they were
        written: a filter the database applies, so a ledger of many trials returns only
        the rows that may be about one (callers still decode and check each)."""
        # A byte search in each dialect's own words (LIKE does not search SQLite's BLOBs).
        holds = ("position(? IN state) > 0" if self.dialect == "postgresql"
                 else "instr(state, ?) > 0")
        with self.transaction(commit=False) as session:
            rows = self._driver_sql(
                session,
                "SELECT originator_id, originator_version, topic, state "
                f"FROM {self.events_table_name} WHERE topic = ? AND {holds} ORDER BY id",
                (topic, text.encode("utf-8")),
            )
            return [StoredEvent(originator_id=self._stored_id(row[0]),
                                originator_version=row[1], topic=row[2], state=bytes(row[3]))
                    for row in rows]

    def _remember(self, originator_id: UUID, version: int, digest: str) -> None:
        known = self._known_heads.get(originator_id)
        if known is None or known[0] < version:
            self._known_heads[originator_id] = (version, digest)
            self._known_heads.move_to_end(originator_id)
            if len(self._known_heads) > KNOWN_HEADS_LIMIT:
                self._known_heads.popitem(last=False)

    def _previous_entry_hash(self, originator_id: UUID, version: int) -> str | None:
        if version == 1:
            return None
        known = self._known_heads.get(originator_id)
        if known is not None and known[0] == version - 1:
            return known[1]
        previous = self.select_events(originator_id, lte=version - 1, desc=True, limit=1)
        if not previous or previous[0].originator_version != version - 1:
            raise RecordingError(
                f"aggregate {originator_id} has no version {version - 1} to follow"
            )
        return entry_hash(previous[0].state)

    def insert_events(
        self,
        stored_events: Sequence[StoredEvent],
        *,
        session: Session | None = None,
        signer: Signer | None = None,
        authorize: Authorizer | None = None,
        evidence: Evidence | None = None,
        claims: Claims = (),
        **kwargs: Any,
    ) -> Sequence[int] | None:
        if signer is None:
            raise RecordingError("every entry must be signed; no signer was given")
        if claims:
            self._ensure_claims_table()
        if session is not None:
            notification_ids = self._append(
                session, stored_events, signer, authorize, evidence or {}, **kwargs
            )[0]
            self._claim(session, claims)
            return notification_ids
        with self.transaction(commit=True) as new_session:
            notification_ids, heads = self._append(
                new_session, stored_events, signer, authorize, evidence or {}, **kwargs
            )
            self._claim(new_session, claims)
        for originator_id, (version, digest) in heads.items():
            self._remember(originator_id, version, digest)  # committed now, so immutable
        return notification_ids

    def _ensure_claims_table(self) -> None:
        if self._claims_ready:
            return
        try:
            with self.transaction(commit=True) as session:
                self._driver_sql(session, CLAIMS_DDL)
        except IntegrityError:
            pass  # made at the same moment by another writer (PostgreSQL's catalog race)
        self._claims_ready = True

    def store_frontier(self, tree_size: int, hashes: bytes) -> None:
        """Keep a checkpoint's frontier; one already kept for that size stays (any row is
        checked against the signed root before it is used)."""
        with self.transaction(commit=True) as session:
            self._driver_sql(session, frontiers_ddl(self.dialect))
            self._driver_sql(
                session, f"INSERT INTO {FRONTIERS_TABLE} (tree_size, hashes) VALUES (?, ?) "
                "ON CONFLICT (tree_size) DO NOTHING", (tree_size, hashes))

    def stored_frontiers(self, tree_size: int | None = None) -> list[tuple[object, object]]:
        """The frontier rows as stored, raw (a hostile writer may have put anything there):
        every row, or those claiming `tree_size`; none when the ledger has no such table."""
        assert self.datastore.engine is not None
        if not inspect(self.datastore.engine).has_table(FRONTIERS_TABLE):
            return []
        query = f"SELECT tree_size, hashes FROM {FRONTIERS_TABLE}"
        parameters: tuple[object, ...] = ()
        if tree_size is not None:
            query += " WHERE tree_size = ?"
            parameters = (tree_size,)
        with self.transaction(commit=False) as session:
            return [(row[0], row[1]) for row in
                    self._driver_sql(session, query + " ORDER BY tree_size", parameters)]

    def _claim(self, session: Session, claims: Claims) -> None:
        if claims:
            self._driver_sql(
                session,
                f"INSERT INTO {CLAIMS_TABLE} (scope, claimed_id) VALUES (?, ?)",
                [tuple(claim) for claim in claims],
            )

    def insert_signed_groups(
        self,
        groups: Sequence[tuple[Sequence[StoredEvent], Signer]],
        authorize: Authorizer | None,
    ) -> list[Sequence[int]]:
        """Several signed groups, each with its own signer (role, meaning), in ONE
        transaction: all are written or none is (batch entry, `ledger/batch.py`). Each
        group chains onto the entries the groups before it wrote. The groups are sealed
        one after another, then judged and inserted together: one lock, one count of the
        tree, and one insert of rows and of leaves for the whole batch."""
        with self.transaction(commit=True) as session:
            self._lock_for_append(session)
            position = self._tree_size(session)
            statements: list[dict[str, Any]] = []
            sealed: list[StoredEvent] = []
            sizes: list[int] = []
            chain: dict[UUID, tuple[int, str]] = {}
            for drafts, signer in groups:
                group_statements, group_sealed = self._seal(
                    position + len(sealed), drafts, signer, {}, chain
                )
                statements += group_statements
                sealed += group_sealed
                sizes.append(len(group_sealed))
            notification_ids = self._write(session, position, statements, sealed, authorize)
        for originator_id, (version, digest) in chain.items():
            self._remember(originator_id, version, digest)  # committed now, so immutable
        written: list[Sequence[int]] = []
        for size in sizes:
            written.append(notification_ids[:size])
            notification_ids = notification_ids[size:]
        return written

    def _append(
        self,
        session: Session,
        drafts: Sequence[StoredEvent],
        signer: Signer,
        authorize: Authorizer | None,
        evidence: Evidence,
        **kwargs: Any,
    ) -> tuple[Sequence[int], dict[UUID, tuple[int, str]]]:
        """Sign, chain, number and insert; returns the new rows' ids and each aggregate's
        new head (version and entry hash)."""
        self._lock_for_append(session)
        position = self._tree_size(session)
        chain: dict[UUID, tuple[int, str]] = {}
        statements, sealed = self._seal(position, drafts, signer, evidence, chain)
        return self._write(session, position, statements, sealed, authorize, **kwargs), chain

    def _seal(
        self,
        position: int,
        drafts: Sequence[StoredEvent],
        signer: Signer,
        evidence: Evidence,
        chain: dict[UUID, tuple[int, str]],
    ) -> tuple[list[dict[str, Any]], list[StoredEvent]]:
        """The drafts' statements from `position` on, each sealed by `signer` and chained;
        `chain` holds the heads written earlier in this transaction (not yet readable from
        a committed row) and is advanced with each entry."""
        statements: list[dict[str, Any]] = []
        sealed: list[StoredEvent] = []
        for offset, draft in enumerate(drafts):
            body = json.loads(draft.state)
            originator_id = UUID(str(draft.originator_id))
            if originator_id in chain and chain[originator_id][0] == draft.originator_version - 1:
                prev_hash: str | None = chain[originator_id][1]
            else:
                prev_hash = self._previous_entry_hash(originator_id, draft.originator_version)
            statements.append(
                {
                    "format": STATEMENT_FORMAT,
                    "position": position + offset,
                    "aggregate_id": str(originator_id),
                    "aggregate_version": draft.originator_version,
                    "type": draft.topic,
                    "payload": body["payload"],
                    "recorded_at": body["recorded_at"],
                    "actor": signer.actor,
                    "meaning": signer.meaning,
                    "prev_hash": prev_hash,
                }
            )
            key = (originator_id, draft.originator_version)
            self._add_evidence(statements[-1], evidence.get(key))
            entry = seal(statements[-1], signer.keys)
            chain[originator_id] = (draft.originator_version, entry_hash(entry))
            sealed.append(
                StoredEvent(originator_id, draft.originator_version, draft.topic, entry)
            )
        return statements, sealed

    def _write(
        self,
        session: Session,
        position: int,
        statements: list[dict[str, Any]],
        sealed: list[StoredEvent],
        authorize: Authorizer | None,
        **kwargs: Any,
    ) -> Sequence[int]:
        """Judge the sealed entries (nothing is written if any is refused), then insert
        their rows and Merkle leaves from `position` on; returns the rows' ids."""
        if authorize is not None:
            authorize(list(zip(statements, sealed, strict=True)))
        self._insert_events(session, sealed, **kwargs)
        notification_ids = self._insert_stored_events(session, sealed, **kwargs)
        self._driver_sql(
            session,
            f"INSERT INTO {LEAVES_TABLE} (position, notification_id, leaf_hash) VALUES (?, ?, ?)",
            [
                (position + offset, notification_id, hash_leaf(entry.state))
                for offset, (notification_id, entry) in enumerate(
                    zip(notification_ids, sealed, strict=True)
                )
            ],
        )
        return notification_ids

    def _insert_stored_events(
        self, session: Session, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int]:
        """The library's insert, as one Core INSERT … RETURNING of the new ids in the rows'
        order: the same rows and ids without an ORM object and flush per row, which cost
        more than the database's write of a batch (`benchmarks/batch_entry.py`)."""
        if not stored_events or not self._has_autoincrementing_ids:
            return list(super()._insert_stored_events(session, stored_events, **kwargs))
        self._lock_table(session)
        table = self.events_record_cls.__table__
        returned = session.execute(
            insert(table).returning(table.c.id, sort_by_parameter_order=True),
            [{"originator_id": e.originator_id, "originator_version": e.originator_version,
              "topic": e.topic, "state": e.state} for e in stored_events],
        )
        notification_ids = [int(row[0]) for row in returned]
        if len(notification_ids) != len(stored_events):
            raise RecordingError(
                f"{len(stored_events)} entries inserted but {len(notification_ids)} ids returned")
        self._notify_channel(session)
        return notification_ids

    @staticmethod
    def _add_evidence(statement: dict[str, Any], evidence: dict[str, Any] | None) -> None:
        """A cohort decision is written with its evidence, and nothing else is."""
        if (evidence is not None) != (statement["type"] in EVIDENCE_TYPES):
            raise RecordingError(
                f"{statement['type']} must be written with its evidence"
                if evidence is None
                else f"{statement['type']} carries no decision evidence"
            )
        if evidence is not None:
            statement["format"] = EVIDENCE_FORMAT
            statement["evidence"] = evidence

    def leaf_hashes(self, upto: int | None = None) -> list[bytes]:
        """Leaf hashes in position order, for the first `upto` leaves (all by default)."""
        with self.transaction(commit=False) as session:
            query = select(self.leaves.c.position, self.leaves.c.leaf_hash).order_by(
                self.leaves.c.position
            )
            if upto is not None:
                query = query.where(self.leaves.c.position < upto)
            hashes = []
            for expected, (position, leaf_hash) in enumerate(session.execute(query)):
                if position != expected:
                    raise RecordingError(f"Merkle leaf {expected} is missing")
                hashes.append(bytes(leaf_hash))
            return hashes

    def entries_for(self, notification_ids: Sequence[int]) -> list[tuple[int, bytes]]:
        """(position, stored entry) for rows just written, in position order."""
        return [(int(position), bytes(state)) for position, state in
                self._written(notification_ids, self.events_record_cls.state)]

    def positions_for(self, notification_ids: Sequence[int]) -> list[tuple[int, str]]:
        """(position, type) for rows just written, in position order: what a batch reports
        of each line, read without parsing every entry (the type column is the signed
        statement's type, as `verify` checks)."""
        return [(int(position), str(topic)) for position, topic in
                self._written(notification_ids, self.events_record_cls.topic)]

    def _written(self, notification_ids: Sequence[int], column: Any) -> list[Row[Any]]:
        """(position, `column`) of the rows with these notification ids, in position order."""
        record = self.events_record_cls
        with self.transaction(commit=False) as session:
            return list(session.execute(
                select(self.leaves.c.position, column)
                .join(self.leaves, self.leaves.c.notification_id == record.id)
                .where(record.id.in_(list(notification_ids)))
                .order_by(self.leaves.c.position)
            ))

    def entry_at(self, position: int) -> tuple[int, StoredEvent] | None:
        """The notification id and stored entry at a Merkle position."""
        record = self.events_record_cls
        with self.transaction(commit=False) as session:
            row = session.execute(
                select(record.id, record.originator_id, record.originator_version,
                       record.topic, record.state)
                .join(self.leaves, self.leaves.c.notification_id == record.id)
                .where(self.leaves.c.position == position)
            ).first()
            if row is None:
                return None
            return int(row[0]), StoredEvent(row[1], row[2], row[3], bytes(row[4]))
