"""Building real ledgers for tests, and tampering with them as an attacker with database
access would: triggers dropped first, then raw SQL."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import sqlalchemy

from trialctl.ledger.application import TrialLedger, UnlockedUser, open_ledger
from trialctl.ledger.entry import entry_hash, parse_entry
from trialctl.ledger.keys import KeyPair
from trialctl.ledger.location import resolve_ledger
from trialctl.ledger.merkle import hash_leaf

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


def stored_entries(url: str) -> int:
    """How many entries the ledger holds, counted in the database: for tests that only need
    the count, without starting a `trialctl` process to ask."""
    engine = engine_for(url)
    try:
        with engine.connect() as connection:
            count = connection.execute(sqlalchemy.text("SELECT count(*) FROM trialctl_leaves"))
            return int(count.scalar_one())
    finally:
        engine.dispose()


def kept_status(replayed: dict[str, Any]) -> dict[str, Any]:
    """A replayed trial's status: what a read model's status, shown on the replayed day, is
    compared with (open queries included: the read models keep them, aged when read)."""
    return dict(replayed["status"])


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


def stored_id(engine: sqlalchemy.Engine, aggregate_id: UUID | str) -> object:
    """An aggregate id as the column holds it: 16 bytes on SQLite, a uuid on PostgreSQL."""
    value = UUID(str(aggregate_id))
    return str(value) if engine.dialect.name == "postgresql" else value.bytes


def plant(staff: Staff, keys: KeyPair, **fields: Any) -> int:
    """Append an entry as an attacker with a stolen key would: signed, chained, numbered and
    with its leaf, so only the rule it breaks can give it away. Returns its position."""
    engine = engine_for(staff.url)
    drop_append_only_triggers(engine)
    existing = rows(engine)
    position = existing[-1][2] + 1
    aggregate_id = str(fields.pop("aggregate_id", uuid4()))
    chain = [parse_entry(r[3]) for r in existing]
    own = [(e.statement["aggregate_version"], r[3]) for e, r in zip(chain, existing, strict=True)
           if e.statement["aggregate_id"] == aggregate_id]
    version = max((v for v, _ in own), default=0) + 1
    statement = {
        "format": "trialctl-event/v1",
        "position": position,
        "aggregate_id": aggregate_id,
        "aggregate_version": version,
        "type": "trialctl.SecurityLog.AttemptRefused",
        "payload": {},
        "recorded_at": datetime.now(UTC).isoformat(timespec="microseconds"),
        "actor": None,
        "meaning": "attempted",
        "prev_hash": entry_hash(max(own)[1]) if own else None,
        **fields,
    }
    forged = seal_unchecked(statement, keys)
    sql(engine, "INSERT INTO trialctl_events (id, originator_id, originator_version, topic, "
        "state) VALUES (:i, :o, :v, :t, :s)", i=existing[-1][0] + 1,
        o=stored_id(engine, aggregate_id), v=version, t=statement["type"], s=forged)
    sql(engine, "INSERT INTO trialctl_leaves (position, notification_id, leaf_hash) "
        "VALUES (:p, :i, :h)", p=position, i=existing[-1][0] + 1, h=hash_leaf(forged))
    if engine.dialect.name == "postgresql":
        # The row took its id by hand: move the id sequence past it, as a careful forger
        # would, so the ledger's next append does not collide with it.
        sql(engine, "SELECT setval(pg_get_serial_sequence('trialctl_events', 'id'), "
            "(SELECT max(id) FROM trialctl_events))")
    engine.dispose()
    return position


def seal_unchecked(statement: dict[str, Any], keys: KeyPair) -> bytes:
    """`seal` without its refusal of unsafe integers: sorted, compact JSON is RFC 8785 for
    the ASCII values planted here."""
    statement_bytes = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()
    signature = base64.b64encode(keys.sign(statement_bytes)).decode("ascii")
    return statement_bytes + f"\n{keys.key_id} {signature}\n".encode("ascii")


def actor(staff: Staff, user_id: str, role: str) -> dict[str, str]:
    user = getattr(staff, user_id)
    return {"user_id": user_id, "name": user.user.name, "role": role,
            "key_id": user.keys.key_id}


def swap_rows(engine: sqlalchemy.Engine, first: int, second: int) -> None:
    """Move every stored value of two rows into the other: ids keep their order."""
    with engine.connect() as connection:
        stored = list(connection.execute(sqlalchemy.text(
            "SELECT id, originator_id, originator_version, topic, state FROM trialctl_events "
            "ORDER BY id")))
    row_a, row_b = stored[first], stored[second]
    sql(engine, "DELETE FROM trialctl_events WHERE id IN (:a, :b)", a=row_a[0], b=row_b[0])
    for target, source in ((row_a[0], row_b), (row_b[0], row_a)):
        sql(engine, "INSERT INTO trialctl_events (id, originator_id, originator_version, topic, "
            "state) VALUES (:i, :o, :v, :t, :s)", i=target, o=source[1], v=source[2],
            t=source[3], s=source[4])
