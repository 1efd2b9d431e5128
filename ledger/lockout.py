"""Security events nobody could sign when they happened, and the lock-out they drive.

A failed sign-in (a wrong password) proves nothing about who typed it, and a refused user
who is revoked, holds no role or brought a forged key file cannot sign either. Such events
are queued in `trialctl_security_queue`, outside the signed entries, until someone can sign
them (docs/SECURITY.md, "Failed sign-ins and lock-out"):

- the user themselves, at their next successful sign-in: each queued event becomes a signed
  `SecurityLog.AttemptRefused` of their own security log, before what they came to sign;
- an admin, with `trialctl user unlock USER`: the queued events go into the signed
  `User.Unlocked` entry that ends the lock-out.

A user with `lockout_after()` queued wrong passwords is locked: even the right password is
refused until an admin unlocks them. The queue is unsigned: someone with database write
access can empty it (and so lift a lock), which is why its events are signed at the first
chance and why the lock-out guards against guessing through trialctl, not against a thief
of the key file, who can guess offline.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
)
from sqlalchemy.engine import Engine

from trialctl.ledger.errors import ConfigurationError
from trialctl.ledger.mapper import format_time

QUEUE_TABLE = "trialctl_security_queue"
LOCKOUT_ENV = "TRIALCTL_LOCKOUT_AFTER"
DEFAULT_LOCKOUT_AFTER = 5
SIGN_IN = "sign-in"  # the action of a queued wrong password: the only kind that locks
# Queued text is capped: an attacker can fill the reason with whatever they type.
QUEUED_TEXT_MAX = 500

_metadata = MetaData()
queue_table = Table(
    QUEUE_TABLE,
    _metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True,
           autoincrement=True),
    Column("user_id", String(64), nullable=False, index=True),
    Column("at", Text(), nullable=False),
    Column("action", Text(), nullable=False),
    Column("reason", Text(), nullable=False),
)


def lockout_after() -> int:
    """How many wrong passwords in a row lock a user: TRIALCTL_LOCKOUT_AFTER, default 5."""
    text = os.environ.get(LOCKOUT_ENV, "").strip()
    if not text:
        return DEFAULT_LOCKOUT_AFTER
    if not text.isdigit() or not 1 <= int(text) <= 100:
        raise ConfigurationError(f"{LOCKOUT_ENV} must be a whole number from 1 to 100")
    return int(text)


@dataclass(frozen=True)
class QueuedEvent:
    id: int
    user_id: str
    at: str
    action: str
    reason: str

    def as_payload(self) -> dict[str, str]:
        return {"at": self.at, "action": self.action, "reason": self.reason}


class SecurityQueue:
    """The queued security events of one ledger's database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._ready = False

    def _ensure(self) -> None:
        if not self._ready:
            # Made on first use, so ledgers made before it need no migration.
            _metadata.create_all(self.engine, checkfirst=True)
            self._ready = True

    def add(self, user_id: str, action: str, reason: str, now: datetime | None = None) -> None:
        self._ensure()
        with self.engine.begin() as connection:
            connection.execute(insert(queue_table).values(
                user_id=user_id[:64], at=format_time(now or datetime.now(UTC)),
                action=action[:QUEUED_TEXT_MAX], reason=reason[:QUEUED_TEXT_MAX],
            ))

    def events(self, user_id: str | None = None) -> list[QueuedEvent]:
        self._ensure()
        query = select(queue_table).order_by(queue_table.c.id)
        if user_id is not None:
            query = query.where(queue_table.c.user_id == user_id)
        with self.engine.connect() as connection:
            return [QueuedEvent(r.id, r.user_id, r.at, r.action, r.reason)
                    for r in connection.execute(query)]

    def failed_sign_ins(self, user_id: str) -> int:
        self._ensure()
        query = select(func.count()).select_from(queue_table).where(
            queue_table.c.user_id == user_id, queue_table.c.action == SIGN_IN)
        with self.engine.connect() as connection:
            return int(connection.execute(query).scalar_one())

    def remove(self, events: Sequence[QueuedEvent]) -> None:
        """Drop events once they are signed into the ledger."""
        if not events:
            return
        with self.engine.begin() as connection:
            connection.execute(delete(queue_table).where(
                queue_table.c.id.in_([e.id for e in events])))
