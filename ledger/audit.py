"""The audit trail, read straight from the signed entries: who (user, printed name, role),
what, when, with what meaning; for corrections the old value, the new one and the reason.
Entries stream in commit order, so a million of them never sit in memory at once."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import select

from ledger.entry import MalformedEntryError, parse_entry
from ledger.mapper import parse_time
from ledger.recorder import SignedRecorder

STREAM_BATCH = 1000


@dataclass(frozen=True)
class AuditFilter:
    patient_aggregate: str | None = None
    patient_id: str | None = None
    user_id: str | None = None
    event_type: str | None = None  # full type, or its last part (e.g. DoseGiven)
    since: datetime | None = None
    until: datetime | None = None
    upto_position: int | None = None

    def matches(self, statement: dict[str, Any]) -> bool:
        if self.user_id and statement["actor"]["user_id"] != self.user_id:
            return False
        if self.event_type and self.event_type not in (
            statement["type"], statement["type"].rsplit(".", 1)[-1]
        ):
            return False
        if self.upto_position is not None and statement["position"] > self.upto_position:
            return False
        if self.since or self.until:
            moment = parse_time(statement["recorded_at"])
            if (self.since and moment < self.since) or (self.until and moment > self.until):
                return False
        if self.patient_aggregate:
            about_patient = statement["aggregate_id"] == self.patient_aggregate or (
                statement["type"].startswith("trialctl.Trial.")
                and statement["payload"].get("patient_id") == self.patient_id
            )
            if not about_patient:
                return False
        return True


def describe(statement: dict[str, Any]) -> str:
    """What happened, in a line a monitor can read."""
    kind = statement["type"].removeprefix("trialctl.")
    payload = statement["payload"]
    if kind == "Patient.Corrected":
        changes = "; ".join(
            f"{field}: {payload['old_values'].get(field)!r} -> {value!r}"
            for field, value in payload["new_values"].items()
        )
        return (f"{kind} version {payload['target_version']} ({payload['kind']}): {changes}; "
                f"reason: {payload['reason']}")
    shown = {k: v for k, v in payload.items()
             if k not in ("originator_topic", "protocol", "eligibility", "details", "lesions")}
    if isinstance(payload.get("values"), dict):
        shown["values"] = f"{len(payload['values'])} fields"
    if "eligibility" in payload:
        shown["eligible"] = payload["eligibility"].get("eligible")
        shown["failed"] = payload["eligibility"].get("failed")
    text = ", ".join(f"{k}={v}" for k, v in shown.items())
    return f"{kind} {text}".strip()


def audit_row(statement: dict[str, Any]) -> dict[str, Any]:
    actor = statement["actor"]
    row: dict[str, Any] = {
        "position": statement["position"],
        "recorded_at": statement["recorded_at"],
        "user_id": actor["user_id"],
        "name": actor["name"],
        "role": actor["role"],
        "meaning": statement["meaning"],
        "type": statement["type"],
        "aggregate_id": statement["aggregate_id"],
        "aggregate_version": statement["aggregate_version"],
        "what": describe(statement),
        "old_value": None,
        "new_value": None,
        "reason_for_change": None,
    }
    if statement["type"] == "trialctl.Patient.Corrected":
        payload = statement["payload"]
        row["old_value"] = payload["old_values"]
        row["new_value"] = payload["new_values"]
        row["reason_for_change"] = payload["reason"]
    return row


def audit_trail(recorder: SignedRecorder, wanted: AuditFilter) -> Iterator[dict[str, Any]]:
    """Rows of the audit trail in commit order, streamed from the store."""
    record = recorder.events_record_cls
    query = select(record.state).order_by(record.id)
    if wanted.patient_aggregate:
        # Only the patient's own aggregate and the trial-side events can be about them.
        query = query.where(
            (record.originator_id == UUID(wanted.patient_aggregate))
            | record.topic.like("trialctl.Trial.%")
        )
    with recorder.transaction(commit=False) as session:
        for (state,) in session.execute(query.execution_options(yield_per=STREAM_BATCH)):
            try:
                statement = parse_entry(bytes(state)).statement
            except MalformedEntryError:
                continue  # `verify` reports it; the trail shows what can be read
            if wanted.matches(statement):
                yield audit_row(statement)
