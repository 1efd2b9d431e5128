"""Whether trialctl's PostgreSQL role could get round the append-only triggers.

The triggers refuse UPDATE, DELETE and TRUNCATE of an entry, but a superuser can set
`session_replication_role = replica` and the tables' owner can `DISABLE TRIGGER`. Such a
role works, yet a stolen password for it can rewrite history, so trialctl says so each time
it connects as one (docs/SECURITY.md, "Least privilege on PostgreSQL"). A site that knows
and accepts this (a test cluster, a laptop) sets ACCEPT_VARIABLE to silence it.
"""

from __future__ import annotations

import os
import warnings

import sqlalchemy

from trialctl.ledger.recorder import ENTRIES_TABLE, LEAVES_TABLE

ACCEPT_VARIABLE = "TRIALCTL_ACCEPT_PRIVILEGED_ROLE"


class PrivilegedRoleWarning(UserWarning):
    """The ledger's database role can bypass the append-only triggers."""


def bypass_reason(connection: sqlalchemy.Connection) -> str | None:
    """Why the connected role could change a stored entry, or None if it cannot."""
    role, superuser = connection.execute(sqlalchemy.text(
        "SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user"
    )).one()
    if superuser:
        return f"role {role} is a superuser"
    for table in (ENTRIES_TABLE, LEAVES_TABLE):
        owns = connection.execute(sqlalchemy.text(
            "SELECT pg_has_role(current_user, relowner, 'MEMBER') FROM pg_class "
            "WHERE oid = to_regclass(:table)"
        ), {"table": table}).scalar()
        if owns:
            return f"role {role} owns {table} (or is a member of its owner)"
    return None


def warn_if_privileged(engine: sqlalchemy.Engine) -> None:
    """A PrivilegedRoleWarning when the role can bypass the triggers and nobody accepted it."""
    if engine.dialect.name != "postgresql" or os.environ.get(ACCEPT_VARIABLE, "") == "1":
        return
    with engine.connect() as connection:
        reason = bypass_reason(connection)
    if reason is not None:
        warnings.warn(
            f"{reason} and can disable the append-only triggers: connect as the writer "
            f"role of 'trialctl db roles' (or set {ACCEPT_VARIABLE}=1 to accept the risk)",
            PrivilegedRoleWarning,
            stacklevel=2,
        )
