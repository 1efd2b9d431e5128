"""Read models: SQL tables of the trial, cohort, patient and audit-trail state, kept in the
ledger's own database beside eventsourcing's tracking table, and written with their tracking
position in one transaction (so each entry is applied exactly once)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from typing import Any, ClassVar

from eventsourcing.persistence import Tracking
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    func,
    inspect,
    select,
)
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session
from sqlalchemy.schema import CreateTable
from sqlalchemy.sql.elements import ColumnElement

from trialctl.domain import queries as query_rules
from trialctl.ledger.sqlalchemy_store import SQLAlchemyDatastore, SQLAlchemyTrackingRecorder

VIEWS_NAME = "trialctl_views"  # the tracking name: one projection, one position
TRACKING_TABLE = "trialctl_views_tracking"

# Text columns only: a read model never refuses an entry the ledger accepted. Lengths are
# limited where text comes in, before it is signed (docs/FORMAT.md, "Limits"), not here.
_metadata = MetaData()
_position = BigInteger().with_variant(Integer(), "sqlite")

trials_view = Table(
    "trialctl_view_trials", _metadata,
    Column("trial_id", Text, primary_key=True),
    Column("protocol_id", Text, nullable=False, unique=True),
    Column("stopped", Boolean, nullable=False),
    Column("mtd_level", Integer),
    Column("status", Text, nullable=False),  # JSON, as `trialctl status --json` shows it
    Column("position", _position, nullable=False),
)
cohorts_view = Table(
    "trialctl_view_cohorts", _metadata,
    Column("trial_id", Text, primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("level", Integer, nullable=False),
    Column("patients", Text, nullable=False),
    Column("evaluated", Integer, nullable=False),
    Column("dlts", Integer, nullable=False),
)
patients_view = Table(
    "trialctl_view_patients", _metadata,
    Column("aggregate_id", Text, primary_key=True),
    Column("trial_id", Text, nullable=False),
    Column("patient_id", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("level", Integer),
    Column("summary", Text, nullable=False),
    Column("position", _position, nullable=False),
    Index("trialctl_view_patients_trial_idx", "trial_id", "patient_id", unique=True),
)
audit_view = Table(
    "trialctl_view_audit", _metadata,
    Column("position", _position, primary_key=True, autoincrement=False),
    Column("recorded_at", Text, nullable=False),
    Column("user_id", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("aggregate_id", Text, nullable=False),
    Column("patient_id", Text),
    Column("row", Text, nullable=False),  # JSON, as `trialctl log --json` prints it
    Index("trialctl_view_audit_user_idx", "user_id"),
    Index("trialctl_view_audit_type_idx", "type"),
    Index("trialctl_view_audit_aggregate_idx", "aggregate_id"),
    Index("trialctl_view_audit_patient_idx", "patient_id"),
    Index("trialctl_view_audit_time_idx", "recorded_at"),
)
decisions_view = Table(
    "trialctl_view_decisions", _metadata,
    Column("trial_id", Text, primary_key=True),
    Column("cohort_number", Integer, primary_key=True),
    Column("signed_by", Text, nullable=False),  # JSON: user, name, role, meaning, time
)
# One row per data query, as its record's last entry left it: `status` lists the trial's
# queries not closed yet from here (their age computed when read, since it depends on the
# day), instead of replaying every record that holds one.
queries_view = Table(
    "trialctl_view_queries", _metadata,
    Column("aggregate_id", Text, primary_key=True),  # the patient record it is about
    Column("query_id", Text, primary_key=True),
    Column("trial_id", Text, nullable=False),
    Column("patient_id", Text, nullable=False),
    Column("record", _position, nullable=False),
    Column("state", Text, nullable=False),
    Column("raised_by", Text, nullable=False),
    Column("raised_at", Text, nullable=False),
    Column("closed_at", Text),
    Column("text", Text, nullable=False),
    Index("trialctl_view_queries_trial_idx", "trial_id", "state"),
)
VIEW_TABLES = (
    trials_view, cohorts_view, patients_view, audit_view, decisions_view, queries_view,
)


# What json.dumps(value, sort_keys=True, separators=(",", ":")) builds on every call, built
# once: a rebuild encodes a row per entry.
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


def dumps(value: Any) -> str:
    return _ENCODER.encode(value)


class TrialViews(SQLAlchemyTrackingRecorder):
    """The read models and their tracking position, in the ledger's database."""

    def __init__(self, datastore: SQLAlchemyDatastore) -> None:
        super().__init__(datastore, tracking_table_name=TRACKING_TABLE)
        self.tables.extend(VIEW_TABLES)

    @property
    def every_table(self) -> tuple[Table, ...]:
        return (*VIEW_TABLES, self.tracking_table)

    def replace_tables(self, session: Session) -> None:
        """For `projections rebuild`: the views and their position go, empty ones come, in the
        session's transaction; entries stay. Nothing is committed here: the rows written
        after, in the same transaction, commit with the drops or not at all."""
        connection = self._drop_tables(session)
        for table in self.every_table:
            # Indexes come after the rows (`create_indexes`): built once over them, they
            # cost less than kept up row by row.
            connection.execute(CreateTable(table))

    def create_indexes(self, session: Session) -> None:
        """The indexes `replace_tables` left out, in the session's transaction."""
        connection = session.connection()
        for table in self.every_table:
            for index in sorted(table.indexes, key=lambda i: str(i.name)):
                index.create(connection)

    def drop(self) -> None:
        """The views and their position go, all at once; entries stay."""
        with self.transaction(commit=True) as session:
            self._drop_tables(session)

    def _drop_tables(self, session: Session) -> Connection:
        connection = session.connection()
        if connection.dialect.name == "sqlite":
            # pysqlite runs DDL outside any transaction unless one was begun explicitly; so
            # each drop would commit alone, and a crash would leave a position without rows.
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        for table in self.every_table:
            table.drop(connection, checkfirst=True)
        return connection

    def existing_tables(self) -> set[str]:
        """Which of the read-model and tracking tables the database holds."""
        engine = self.datastore.engine
        assert isinstance(engine, Engine)
        present = set(inspect(engine).get_table_names())
        return {table.name for table in self.every_table} & present

    def position(self) -> int | None:
        return self.max_tracking_id(VIEWS_NAME)

    def audit_ends(self) -> tuple[int, int] | None:
        """The first and last positions among the audit rows, or None if there are none.

        Two ends of the primary key, so the cost does not grow with the ledger (a count of
        the rows read every row's index entry: a third of a second at a million)."""
        with self.transaction(commit=False) as session:
            # Apart: SQLite reads an index end for a lone min() or max(), and scans for both.
            first, last = session.execute(select(
                select(func.min(audit_view.c.position)).scalar_subquery(),
                select(func.max(audit_view.c.position)).scalar_subquery(),
            )).one()
        return None if first is None else (int(first), int(last))

    def write(self, session: Session, rows: ViewRows, tracking: Tracking) -> None:
        """Upsert the rows a batch produced and move the tracking position, together."""
        self.write_rows(session, rows)
        self._insert_tracking(session, tracking)

    def write_rows(self, session: Session, rows: ViewRows) -> None:
        """Upsert the rows, one statement per table, compiled once and handed to the driver's
        executemany with the rows as plain parameters: compiling a statement per row cost
        more than the rows' own work, and SQLAlchemy's own per-row parameter handling a
        tenth of a small rebuild. (The columns are text, integers and booleans, which both
        drivers bind as they are: no type of ours converts a value on the way in.)"""
        connection = session.connection()
        dialect = connection.dialect
        insert = postgres_insert if dialect.name == "postgresql" else sqlite_insert
        for table, key, values in rows.by_table():
            columns = list(values[0])
            statement = insert(table)
            statement = statement.on_conflict_do_update(
                index_elements=list(key),
                set_={c: statement.excluded[c] for c in columns if c not in key},
            )
            compiled = statement.compile(dialect=dialect, column_keys=columns)
            order = compiled.positiontup
            if order is not None:  # qmark (sqlite3): each row a tuple in the bind order
                parameters: list[Any] = [tuple(row[c] for c in order) for row in values]
            else:  # named (psycopg's pyformat): each bind is named after its column
                assert set(compiled.params) == set(columns), compiled.params
                parameters = values
            connection.exec_driver_sql(str(compiled), parameters)

    def trial_status(self, protocol_id: str) -> dict[str, Any] | None:
        with self.transaction(commit=False) as session:
            text = session.execute(
                select(trials_view.c.status).where(trials_view.c.protocol_id == protocol_id)
            ).scalar()
        return None if text is None else dict(json.loads(text))

    def decision_signers(self, trial_id: str) -> dict[int, dict[str, Any]]:
        with self.transaction(commit=False) as session:
            found = session.execute(
                select(decisions_view.c.cohort_number, decisions_view.c.signed_by).where(
                    decisions_view.c.trial_id == trial_id)
            )
            return {int(number): dict(json.loads(text)) for number, text in found}

    def patient_summary(self, aggregate_id: str) -> dict[str, Any] | None:
        with self.transaction(commit=False) as session:
            text = session.execute(
                select(patients_view.c.summary).where(
                    patients_view.c.aggregate_id == aggregate_id)
            ).scalar()
        return None if text is None else dict(json.loads(text))

    def patient_summaries(self, trial_id: str) -> list[dict[str, Any]]:
        with self.transaction(commit=False) as session:
            found = session.execute(
                select(patients_view.c.summary).where(patients_view.c.trial_id == trial_id)
            )
            return [dict(json.loads(text)) for (text,) in found]

    def open_queries(self, trial_id: str, today: date) -> list[dict[str, Any]]:
        """The trial's queries not closed yet, each aged in days on `today`, in id order."""
        query = select(queries_view).where(
            queries_view.c.trial_id == trial_id, queries_view.c.state != query_rules.CLOSED)
        with self.transaction(commit=False) as session:
            found = [dict(row._mapping) for row in session.execute(query)]
        return query_rules.by_number(
            shown for row in found for shown in query_rules.open_query_rows(
                row["patient_id"], {row["query_id"]: {**row, "record_position": row["record"]}},
                today))

    def audit_rows(
        self,
        user_id: str | None = None,
        event_type: str | None = None,
        since: str | None = None,
        until: str | None = None,
        patient: tuple[str, str, str] | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Audit rows in position order, filtered in SQL on indexed columns and streamed.
        `patient` is (patient aggregate id, trial aggregate id, patient id)."""
        query = select(audit_view.c.row).order_by(audit_view.c.position)
        if user_id:
            query = query.where(audit_view.c.user_id == user_id)
        if event_type:
            full = event_type if "." in event_type else None
            query = query.where(
                audit_view.c.type == full if full
                else audit_view.c.type.like(f"%.{event_type}")
            )
        if since:
            query = query.where(audit_view.c.recorded_at >= since)
        if until:
            query = query.where(audit_view.c.recorded_at <= until)
        if patient:
            query = query.where(*patient_audit_filter(*patient))
        with self.transaction(commit=False) as session:
            for (text,) in session.execute(query.execution_options(yield_per=1000)):
                yield dict(json.loads(text))

    def table_rows(self, table: Table) -> list[dict[str, Any]]:
        with self.transaction(commit=False) as session:
            ordered = select(table).order_by(*table.primary_key.columns)
            return [dict(row._mapping) for row in session.execute(ordered)]


def patient_audit_filter(
    aggregate_id: str, trial_id: str, patient_id: str
) -> tuple[ColumnElement[bool], ...]:
    """The audit rows of one patient: the patient's own entries, and the trial's entries
    about the patient. Both are found through the aggregate index: patient ids repeat in
    every trial, so a look-up by patient id would read that id's rows in all of them, and
    `patient` and `log --patient` would slow down as the ledger gains trials."""
    return (
        audit_view.c.aggregate_id.in_([aggregate_id, trial_id]),
        (audit_view.c.aggregate_id == aggregate_id) | (audit_view.c.patient_id == patient_id),
    )


class ViewRows:
    """Rows a batch of entries produced, last write per key winning."""

    KEYS: ClassVar[dict[str, tuple[str, ...]]] = {
        trials_view.name: ("trial_id",),
        cohorts_view.name: ("trial_id", "number"),
        patients_view.name: ("aggregate_id",),
        audit_view.name: ("position",),
        decisions_view.name: ("trial_id", "cohort_number"),
        queries_view.name: ("aggregate_id", "query_id"),
    }

    def __init__(self) -> None:
        self._rows: dict[tuple[str, tuple[Any, ...]], tuple[Table, dict[str, Any]]] = {}

    def put(self, table: Table, values: dict[str, Any]) -> None:
        key = self.KEYS[table.name]
        self._rows[(table.name, tuple(values[k] for k in key))] = (table, values)

    def items(self) -> list[tuple[Table, tuple[str, ...], dict[str, Any]]]:
        return [(table, self.KEYS[table.name], values) for table, values in self._rows.values()]

    def by_table(self) -> list[tuple[Table, tuple[str, ...], list[dict[str, Any]]]]:
        """The rows grouped by table: each table's key and its rows (which all hold the
        same columns)."""
        grouped: dict[str, tuple[Table, list[dict[str, Any]]]] = {}
        for table, values in self._rows.values():
            grouped.setdefault(table.name, (table, []))[1].append(values)
        return [(table, self.KEYS[table.name], values) for table, values in grouped.values()]
