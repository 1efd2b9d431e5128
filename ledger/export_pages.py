"""The ledger read in pages, for exports: a writer holds one page at a time, never the
ledger, so an export of a million entries runs in the memory of a page.

Every reader stops at `tree_size`: an export describes exactly the entries under the Merkle
root its manifest names, whatever is appended while it runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from sqlalchemy import select

from trialctl.domain.patient import Patient
from trialctl.ledger.entry import Signature, entry_hash, parse_entry
from trialctl.ledger.errors import LedgerError
from trialctl.ledger.recorder import SignedRecorder

PAGE = 1000


@dataclass(frozen=True)
class LedgerEntry:
    """One signed entry as an export shows it."""

    statement: dict[str, Any]
    entry_hash: str
    signatures: tuple[Signature, ...]

    @property
    def position(self) -> int:
        return int(self.statement["position"])

    @property
    def version(self) -> int:
        return int(self.statement["aggregate_version"])


def _entry(state: bytes) -> LedgerEntry:
    parsed = parse_entry(state)
    return LedgerEntry(parsed.statement, entry_hash(state), parsed.signatures)


def patient_record_ids(
    recorder: SignedRecorder, trial_id: UUID, tree_size: int, page: int = PAGE
) -> Iterator[tuple[str, UUID]]:
    """(patient id, record id) of each of the trial's patients, in consent order."""
    start: int | None = None
    while True:
        notifications = recorder.select_notifications(
            start=start, limit=page, topics=[Patient.ConsentSigned.TOPIC]
        )
        for notification in notifications:
            entry = _entry(notification.state)
            if entry.position >= tree_size:
                return
            payload = entry.statement["payload"]
            if payload.get("trial_id") == str(trial_id):
                yield str(payload["patient_id"]), UUID(str(notification.originator_id))
        if len(notifications) < page:
            return
        start = notifications[-1].id + 1


def stored_entries(
    recorder: SignedRecorder, record_id: UUID, tree_size: int, page: int = PAGE
) -> Iterator[tuple[StoredEvent, LedgerEntry]]:
    """One record's entries in version order, up to the tree size: as stored (to replay
    the record with `history.advanced`) and as read."""
    after: int | None = None
    while True:
        stored = recorder.select_events(record_id, gt=after, limit=page)
        for event in stored:
            entry = _entry(event.state)
            if entry.position >= tree_size:
                return  # a record's entries only move forward in position
            yield event, entry
        if len(stored) < page:
            return
        after = stored[-1].originator_version


def record_entries(
    recorder: SignedRecorder, record_id: UUID, tree_size: int, page: int = PAGE
) -> Iterator[LedgerEntry]:
    """One record's entries in version order, up to the tree size."""
    for _, entry in stored_entries(recorder, record_id, tree_size, page):
        yield entry


def ledger_entries(
    recorder: SignedRecorder, tree_size: int, page: int = PAGE
) -> Iterator[LedgerEntry]:
    """Every entry below the tree size, in position order (notification ids may skip)."""
    start: int | None = None
    while True:
        notifications = recorder.select_notifications(start=start, limit=page)
        for notification in notifications:
            entry = _entry(notification.state)
            if entry.position >= tree_size:
                return
            yield entry
        if len(notifications) < page:
            return
        start = notifications[-1].id + 1


def leaf_hashes(recorder: SignedRecorder, tree_size: int, page: int = PAGE) -> Iterator[bytes]:
    """The Merkle leaf hashes of positions 0 … tree_size-1, in order."""
    leaves = recorder.leaves
    for first in range(0, tree_size, page):
        last = min(first + page, tree_size)
        with recorder.transaction(commit=False) as session:
            found = session.execute(
                select(leaves.c.position, leaves.c.leaf_hash)
                .where(leaves.c.position >= first, leaves.c.position < last)
                .order_by(leaves.c.position)
            ).all()
        for expected, (position, leaf_hash) in enumerate(found, start=first):
            if position != expected:
                raise LedgerError(f"Merkle leaf {expected} is missing; run 'trialctl verify'")
            yield bytes(leaf_hash)
        if len(found) != last - first:
            raise LedgerError(f"Merkle leaf {first + len(found)} is missing; run 'trialctl verify'")
