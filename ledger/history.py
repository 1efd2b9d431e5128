"""Past state from signed entries: the one place an aggregate is moved on by its entries.

Replay, the read models, the authority check and `verify` all need an aggregate as it stood
after some entries. They ask here, and here asks the library: eventsourcing's own projector
(`project_aggregate`, what `Repository.get` uses) applies the events the mapper reads back
from the signed statements, so no caller keeps its own `mutate()` loop.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from eventsourcing.application import project_aggregate
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Mapper, StoredEvent


def advanced(aggregate: Any, entries: Iterable[StoredEvent], mapper: Mapper[UUID]) -> Any:
    """`aggregate` (None before its first entry) after `entries`, applied in order.

    The aggregate is changed in place, as the library's mutators do: pass a copy to keep
    the original.
    """
    return project_aggregate(aggregate, (mapper.to_domain_event(e) for e in entries))


def advanced_by(aggregate: Any, events: Iterable[DomainEventProtocol[UUID]]) -> Any:
    """`aggregate` after events already read from their entries (the read models read each
    entry's statement for their own rows, and decode it once), applied in order, in place."""
    return project_aggregate(aggregate, events)
