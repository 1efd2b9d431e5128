"""Maps domain events to stored entries and back.

On the way in, the mapper turns an event into a draft (type, payload, time) that the
recorder completes, signs and chains. On the way out it reads the signed statement, so what
the application sees is exactly what was signed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Mapper, MapperDeserialisationError, StoredEvent
from eventsourcing.utils import get_topic, resolve_topic

from trialctl.ledger.canonical import check_json_value
from trialctl.ledger.entry import MalformedEntryError, parse_entry
from trialctl.ledger.errors import PayloadError


def format_time(moment: datetime) -> str:
    """UTC, ISO 8601, microseconds, always with the `Z`-free `+00:00` offset Python emits."""
    if moment.tzinfo is None:
        raise PayloadError("timestamps must carry a time zone")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"time {text!r} has no UTC offset")
    return moment.astimezone(UTC)


class EntryMapper(Mapper[UUID]):
    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        state = dict(vars(domain_event))
        originator_id = state.pop("originator_id")
        originator_version = state.pop("originator_version")
        timestamp = state.pop("timestamp")
        class_version = getattr(type(domain_event), "class_version", 1)
        if class_version > 1:
            state["class_version"] = class_version
        draft = {
            "payload": check_json_value(state, "payload"),
            "recorded_at": format_time(timestamp),
        }
        return StoredEvent(
            originator_id=originator_id,
            originator_version=originator_version,
            topic=get_topic(type(domain_event)),
            state=json.dumps(draft).encode("utf-8"),
        )

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        try:
            statement = parse_entry(stored_event.state).statement
        except MalformedEntryError as e:
            raise self._unreadable(stored_event, e) from e
        return self.event_of_statement(stored_event, statement)

    def event_of_statement(
        self, stored_event: StoredEvent, statement: dict[str, Any]
    ) -> DomainEventProtocol[UUID]:
        """The domain event of an entry whose statement the caller has parsed already (the
        read models read the statement too: parsing it once halves their decoding)."""
        try:
            event_state: dict[str, Any] = dict(statement["payload"])
            event_state["timestamp"] = parse_time(statement["recorded_at"])
            cls = resolve_topic(statement["type"])
        except ValueError as e:
            raise self._unreadable(stored_event, e) from e
        event_state["originator_id"] = UUID(str(stored_event.originator_id))
        event_state["originator_version"] = stored_event.originator_version
        class_version = getattr(cls, "class_version", 1)
        from_version = event_state.pop("class_version", 1)
        while from_version < class_version:
            getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(event_state)
            from_version += 1
        domain_event = object.__new__(cls)
        object.__setattr__(domain_event, "__dict__", event_state)
        return domain_event  # type: ignore[no-any-return]

    @staticmethod
    def _unreadable(stored_event: StoredEvent, error: Exception) -> MapperDeserialisationError:
        return MapperDeserialisationError(
            f"cannot read the entry of aggregate {stored_event.originator_id} "
            f"version {stored_event.originator_version}: {error}"
        )
