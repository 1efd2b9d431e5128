"""The audit trail's rows, made from signed statements: who (user, printed name, role),
what, when, with what meaning; for corrections the old value, the new one and the reason.
The projection stores them (ledger/views.py), and `trialctl log` streams them from there."""

from __future__ import annotations

from typing import Any


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
        if payload["eligibility"].get("not_assessed"):  # an incomplete screening
            shown["not_assessed"] = payload["eligibility"]["not_assessed"]
    text = ", ".join([f"{k}={v}" for k, v in shown.items()])
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
