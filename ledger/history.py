"""Past state from signed entries: the one place an aggregate is moved on by its entries.

Replay, the read models, the authority check, `verify` and every load of a trial or patient
(`project_events`, passed to `Repository.get`) need an aggregate as it stood after some
entries. They ask here, so no caller keeps its own `mutate()` loop: each event the mapper
reads back from the signed statements is applied by its own `mutate`, as eventsourcing's
`project_aggregate` applies it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast
from uuid import UUID

from eventsourcing.domain import CanMutateProtocol, DomainEventProtocol
from eventsourcing.persistence import Mapper, StoredEvent


def advanced(aggregate: Any, entries: Iterable[StoredEvent], mapper: Mapper[UUID]) -> Any:
    """`aggregate` (None before its first entry) after `entries`, applied in order.

    The aggregate is changed in place, as the library's mutators do: pass a copy to keep
    the original.
    """
    return project_events(aggregate, (mapper.to_domain_event(e) for e in entries))


def advanced_by(aggregate: Any, events: Iterable[DomainEventProtocol[UUID]]) -> Any:
    """`aggregate` after events already read from their entries (the read models read each
    entry's statement for their own rows, and decode it once), applied in order, in place."""
    return project_events(aggregate, events)


def project_events(aggregate: Any, events: Iterable[DomainEventProtocol[UUID]]) -> Any:
    """eventsourcing's `project_aggregate` without its per-event check that the event
    satisfies a runtime Protocol: that check inspects the event's class attributes every
    time and cost more than the event's own `mutate` (a fifth of loading a patient). Every
    event here comes from the mapper, which makes only the domain's own event classes."""
    for event in events:
        aggregate = cast("CanMutateProtocol[Any]", event).mutate(aggregate)
    return aggregate
