"""The benchmark's workload and where it runs: `DoseLog` aggregates saved through the signed
ledger or a bare eventsourcing `Application`, on a temporary SQLite file or a fresh
PostgreSQL database."""

from __future__ import annotations

import contextlib
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import sqlalchemy
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from trialctl.ledger.application import TrialLedger, UnlockedUser
from trialctl.ledger.authority import STAFF, Permission, register_permissions
from trialctl.ledger.location import resolve_ledger
from trialctl.ledger.roles import Meaning

ADMIN_ID = "alice"
ADMIN_PASSWORD = "benchmark-password"  # a throwaway key in a temporary TRIALCTL_HOME
SUBJECTS = 20


# -- the workload ------------------------------------------------------------------------------


class DoseLog(Aggregate):
    """A stand-in for a trial record: the doses given to one subject."""

    TOPIC = "trialctl.benchmark.DoseLog"

    class Created(Aggregate.Created):
        TOPIC = "trialctl.benchmark.DoseLog.Created"  # a base the library requires

    class Opened(Created):
        TOPIC = "trialctl.benchmark.DoseLog.Opened"
        subject_id: str
        site: str

    @event(Opened)
    def __init__(self, subject_id: str, site: str) -> None:
        self.subject_id = subject_id
        self.site = site
        self.doses = 0

    class DoseGiven(Aggregate.Event):
        TOPIC = "trialctl.benchmark.DoseLog.DoseGiven"
        visit: str
        drug: str
        dose_mg: str
        route: str
        note: str

    @event(DoseGiven)
    def give_dose(self, visit: str, drug: str, dose_mg: str, route: str, note: str) -> None:
        self.doses += 1


register_permissions(
    {
        topic: Permission(STAFF, frozenset({Meaning.RECORDED}), Meaning.RECORDED)
        for topic in (DoseLog.Opened.TOPIC, DoseLog.DoseGiven.TOPIC)
    }
)

Save = Callable[[Sequence[Aggregate]], object]


def drive(save: Save, events: int, batch: int) -> float:
    """Append `events` events over SUBJECTS new aggregates, `batch` events per save.

    Returns the elapsed seconds: the aggregate method calls, mapping and writing.
    """
    logs: list[DoseLog] = []
    pending: dict[int, DoseLog] = {}
    in_batch = 0
    start = time.perf_counter()
    for i in range(events):
        k = i % SUBJECTS
        if k == len(logs):
            log = DoseLog(subject_id=f"S-{uuid.uuid4().hex[:8]}", site="site-01")
            logs.append(log)
        else:
            log = logs[k]
            log.give_dose(
                visit=f"C{1 + i // 200}D{1 + i % 28}",
                drug="TRX-101",
                dose_mg=str(40 * (1 + k % 5)),
                route="IV",
                note="infusion completed without interruption",
            )
        pending[id(log)] = log
        in_batch += 1
        if in_batch >= batch:
            save(list(pending.values()))
            pending.clear()
            in_batch = 0
    if pending:
        save(list(pending.values()))
    return time.perf_counter() - start


class BareApp(Application[UUID]):
    """The baseline: the library's own application, unsigned, default mapper."""

    name = "bare"


def ledger_saver(app: TrialLedger, actor: UnlockedUser) -> Save:
    return lambda aggregates: app.record(actor, *aggregates)


def bare_saver(app: BareApp) -> Save:
    return lambda aggregates: app.save(*aggregates)


# -- backends ----------------------------------------------------------------------------------


@dataclass
class Backend:
    """Where one run's stores live; every store starts empty."""

    name: str
    ledger_url: str
    verify_ledger_url: str
    bare_env: dict[str, str]
    native_env: dict[str, str] | None = None
    server_version: str = ""


@contextlib.contextmanager
def sqlite_backend(workdir: Path) -> Iterator[Backend]:
    yield Backend(
        name="SQLite",
        ledger_url=str(workdir / "ledger.sqlite"),
        verify_ledger_url=str(workdir / "verify.sqlite"),
        bare_env={
            "PERSISTENCE_MODULE": "eventsourcing_sqlalchemy",
            "SQLALCHEMY_URL": f"sqlite:///{workdir / 'bare.sqlite'}",
        },
        native_env={
            "PERSISTENCE_MODULE": "eventsourcing.sqlite",
            "SQLITE_DBNAME": str(workdir / "native.sqlite"),
        },
        server_version=f"SQLite {sqlite3.sqlite_version}",
    )


@contextlib.contextmanager
def postgres_backend(base_url: str) -> Iterator[Backend]:
    """Fresh databases on the server at `base_url` (one for the append stores, one for the
    verify ledger, since a ledger owns its table names), dropped on the way out."""
    run = uuid.uuid4().hex[:12]
    names = [f"trialctl_bench_{run}", f"trialctl_bench_{run}_verify"]
    admin = sqlalchemy.create_engine(base_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            version = str(connection.execute(sqlalchemy.text("SHOW server_version")).scalar())
            for name in names:
                connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
        base = sqlalchemy.engine.make_url(base_url)
        append_url, verify_url = (
            base.set(database=name).render_as_string(hide_password=False) for name in names
        )
        yield Backend(
            name="PostgreSQL",
            ledger_url=append_url,
            verify_ledger_url=verify_url,
            bare_env={
                "PERSISTENCE_MODULE": "eventsourcing_sqlalchemy",
                "SQLALCHEMY_URL": resolve_ledger(append_url).url,  # same driver and options
            },
            server_version=f"PostgreSQL {version}",
        )
    finally:
        with admin.connect() as connection:
            for name in names:
                connection.execute(
                    sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                )
        admin.dispose()


def close_app(app: Application[UUID]) -> None:
    engine = getattr(getattr(app.recorder, "datastore", None), "engine", None)
    if isinstance(engine, sqlalchemy.engine.Engine):
        engine.dispose()
    else:
        app.close()


def open_bench_ledger(url: str) -> tuple[TrialLedger, UnlockedUser, float]:
    """A new ledger with one admin; returns it, the unlocked admin and the seconds the
    unlock took (scrypt, which every signing `trialctl` command pays once)."""
    app = TrialLedger(resolve_ledger(url), create=True)
    app.initialise("benchmark ledger", ADMIN_ID, "Alice Adams, MD", ADMIN_PASSWORD)
    start = time.perf_counter()
    actor = app.unlock(ADMIN_ID, ADMIN_PASSWORD)
    return app, actor, time.perf_counter() - start


def top_up(app: TrialLedger, actor: UnlockedUser, total: int, batch: int = 100) -> None:
    missing = total - app.signed_recorder.tree_size()
    if missing > 0:
        drive(ledger_saver(app, actor), missing, batch)

