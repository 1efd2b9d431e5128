"""The protocol file's `[[co_signatures]]`, read and checked (the model is
`domain/co_signatures.py`'s; kept apart so the protocol model can hold it without importing
the file readers)."""

from __future__ import annotations

from trialctl.domain.co_signatures import CO_SIGNABLE, CO_SIGNER_ROLES, CoSignature
from trialctl.domain.protocol_values import Table, fail, read_str, refuse_duplicates

CO_SIGNATURE_KEYS = ("event_type", "role", "text")


def read_co_signatures(root: Table) -> tuple[CoSignature, ...]:
    """The protocol file's `[[co_signatures]]`, checked: a known event type, once; a role
    that may co-sign."""
    found = tuple(_read(t) for t in root.tables("co_signatures", CO_SIGNATURE_KEYS,
                                                 required=False))
    refuse_duplicates([(f"co_signatures[{i}].event_type", c.event_type)
                       for i, c in enumerate(found)], "co-signed event type")
    return found


def _read(t: Table) -> CoSignature:
    event_type = read_str(t.req("event_type"), t.at("event_type"))
    if event_type not in CO_SIGNABLE:
        fail(t.at("event_type"),
             f"unknown event type {event_type!r} (allowed: {', '.join(CO_SIGNABLE)})")
    role = read_str(t.req("role"), t.at("role"))
    if role not in CO_SIGNER_ROLES:
        fail(t.at("role"), f"unknown role {role!r} (allowed: {', '.join(CO_SIGNER_ROLES)})")
    return CoSignature(event_type, role, t.opt_str("text"))
