"""Which event types each kind of aggregate holds, and the id each kind is found at.

An aggregate's kind is fixed by its version 1, which must be the kind's opening type; every
later version must be one of the kind's other types. Its id is derived from the opening
payload (docs/FORMAT.md sections 3 and 7), so a record cannot live under a second id.
`verify` applies these rules to every entry; a Patient event in a user's record, or a user
record at an id not derived from its user id, is a finding.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from trialctl.domain.patient import Patient, patient_aggregate_id
from trialctl.domain.trial import Trial, trial_id_for
from trialctl.ledger.users import (
    LEDGER_AGGREGATE_ID,
    LedgerRecord,
    SecurityLog,
    User,
    security_log_id,
    user_aggregate_id,
)

# The id an opening payload derives, or a reason it derives none.
Derivation = Callable[[Mapping[str, Any]], UUID | str]


@dataclass(frozen=True)
class AggregateKind:
    name: str
    opening: str
    later: frozenset[str]
    derive_id: Derivation | None
    owner_field: str | None = None  # the payload field naming whose record it is

    def holds(self, event_type: str) -> bool:
        if self.derive_id is None:  # another module's record: its types share a prefix
            return event_type != self.opening and event_type.startswith(_prefix(self.opening))
        return event_type in self.later


def _prefix(event_type: str) -> str:
    return event_type.rpartition(".")[0] + "."


def _text_field(payload: Mapping[str, Any], name: str) -> str | None:
    value = payload.get(name)
    return value if isinstance(value, str) and value else None


def _by_field(name: str, derive: Callable[[str], UUID]) -> Derivation:
    def derivation(payload: Mapping[str, Any]) -> UUID | str:
        value = _text_field(payload, name)
        return f"payload has no {name}" if value is None else derive(value)
    return derivation


def _patient_id(payload: Mapping[str, Any]) -> UUID | str:
    trial_id, patient_id = _text_field(payload, "trial_id"), _text_field(payload, "patient_id")
    if trial_id is None or patient_id is None:
        return "payload has no trial_id and patient_id"
    try:
        return patient_aggregate_id(UUID(trial_id), patient_id)
    except ValueError:
        return f"trial_id {trial_id!r} is not a UUID"


def _event_types(aggregate: type[Aggregate], opening: str) -> frozenset[str]:
    """The stored types of the aggregate's own events, the opening one excepted."""
    found = set()
    for value in vars(aggregate).values():
        topic = getattr(value, "TOPIC", None)
        is_event = isinstance(value, type) and issubclass(value, Aggregate.Event)
        if is_event and topic and not issubclass(value, Aggregate.Created):
            found.add(topic)
    return frozenset(found - {opening})


def _kind(
    name: str, aggregate: type[Aggregate], opening: str, derive: Derivation,
    owner_field: str | None = None,
) -> AggregateKind:
    return AggregateKind(name, opening, _event_types(aggregate, opening), derive, owner_field)


KINDS = (
    _kind("ledger", LedgerRecord, LedgerRecord.Initialised.TOPIC,
          lambda payload: LEDGER_AGGREGATE_ID),
    _kind("user", User, User.Registered.TOPIC, _by_field("user_id", user_aggregate_id),
          "user_id"),
    _kind("security log", SecurityLog, SecurityLog.Opened.TOPIC,
          _by_field("user_id", security_log_id), "user_id"),
    _kind("trial", Trial, Trial.Registered.TOPIC, _by_field("protocol_id", trial_id_for)),
    _kind("patient", Patient, Patient.ConsentSigned.TOPIC, _patient_id),
)
KIND_OPENED_BY = {kind.opening: kind for kind in KINDS}
LATER_TYPES = frozenset(t for kind in KINDS for t in kind.later)


def kind_opened_by(event_type: str) -> AggregateKind | None:
    """The kind a version 1 of this type opens. A type of no kind trialctl knows is another
    module's (it needs a registered permission to be signed at all): its record holds the
    types that share its prefix, and its id is that module's business."""
    if event_type in KIND_OPENED_BY:
        return KIND_OPENED_BY[event_type]
    if event_type in LATER_TYPES:
        return None
    return AggregateKind(_prefix(event_type).rstrip("."), event_type, frozenset(), None)


def opening_problem(statement: Mapping[str, Any]) -> tuple[AggregateKind | None, str | None]:
    """The kind a version-1 entry opens, and why it may not open it here (or None)."""
    kind = kind_opened_by(statement["type"])
    if kind is None:
        return None, f"{statement['type']} cannot open a record (version 1)"
    if kind.derive_id is None:
        return kind, None
    derived = kind.derive_id(statement["payload"])
    if isinstance(derived, str):
        return kind, f"{kind.name} record: {derived}"
    if str(derived) != statement["aggregate_id"]:
        return kind, (f"{kind.name} record at an aggregate id not derived from its payload "
                      f"(expected {derived})")
    return kind, None


def later_problem(kind: AggregateKind | None, statement: Mapping[str, Any]) -> str | None:
    """Why this entry may not continue a record of `kind` (None when it may)."""
    if kind is None:
        return None  # the record's opening was already a finding
    if not kind.holds(statement["type"]):
        return f"a {kind.name} record may not hold {statement['type']}"
    return None
