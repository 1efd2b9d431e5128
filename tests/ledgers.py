"""Building real ledgers for tests, and tampering with them as an attacker with database
access would: triggers dropped first, then raw SQL."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import sqlalchemy

from trialctl.ledger.application import TrialLedger, UnlockedUser, open_ledger
from trialctl.ledger.location import resolve_ledger

PASSWORDS = {"alice": "alice-password", "bob": "bob-password", "carol": "carol-password"}


@dataclass
class Staff:
    """A ledger with an admin (alice), a monitor (bob) and an investigator (carol)."""

    app: TrialLedger
    alice: UnlockedUser
    bob: UnlockedUser
    carol: UnlockedUser
    url: str

    def reopen(self) -> TrialLedger:
        self.app.close()
        self.app = open_ledger(self.url)
        return self.app


def make_staff(url: str) -> Staff:
    app = TrialLedger(resolve_ledger(url), create=True)
    app.initialise("test ledger", "alice", "Alice Adams", PASSWORDS["alice"])
    alice = app.unlock("alice", PASSWORDS["alice"])
    app.register_user(alice, "bob", "Bob Brown", ["monitor"], PASSWORDS["bob"])
    app.register_user(alice, "carol", "Carol Chen", ["investigator"], PASSWORDS["carol"])
    return Staff(app, alice, app.unlock("bob", PASSWORDS["bob"]),
                 app.unlock("carol", PASSWORDS["carol"]), url)


def engine_for(url: str) -> sqlalchemy.Engine:
    location = resolve_ledger(url)
    return sqlalchemy.create_engine(location.url)


def drop_append_only_triggers(engine: sqlalchemy.Engine) -> None:
    with engine.begin() as connection:
        for table in ("trialctl_events", "trialctl_leaves"):
            if engine.dialect.name == "postgresql":
                connection.execute(sqlalchemy.text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
            else:
                for suffix in ("no_update", "no_delete"):
                    connection.execute(
                        sqlalchemy.text(f"DROP TRIGGER IF EXISTS {table}_{suffix}"))


def rows(engine: sqlalchemy.Engine) -> list[sqlalchemy.Row[tuple[int, str, int, bytes]]]:
    with engine.connect() as connection:
        return list(connection.execute(sqlalchemy.text(
            "SELECT e.id, e.topic, l.position, e.state FROM trialctl_events e "
            "JOIN trialctl_leaves l ON l.notification_id = e.id ORDER BY e.id"
        )))


def sql(engine: sqlalchemy.Engine, statement: str, **params: object) -> None:
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text(statement), params)


def write_file(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
