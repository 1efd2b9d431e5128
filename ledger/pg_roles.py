"""Least-privilege PostgreSQL roles for a ledger: the SQL `trialctl db roles` prints or runs.

Three roles, named after a prefix (default `trialctl`):

    PREFIX_owner    NOLOGIN. Owns the evidence: the entries, their Merkle leaves, the schema
                    version and the append-only triggers. Only an owner (or a superuser) can
                    drop, alter or disable those, so nobody signs in as it day to day.
    PREFIX_writer   LOGIN. What `trialctl` runs as to record: SELECT and INSERT on the entries
                    and leaves, nothing else on them (no UPDATE, DELETE or TRUNCATE), and the
                    schema version to read. It owns what is derived or unsigned: the read
                    models and their tracking position (a rebuild drops and makes them again,
                    which only an owner may) and the security queue (queued refusals are
                    added and, once signed into the ledger, deleted).
    PREFIX_auditor  LOGIN. SELECT on every trialctl table and nothing else: it verifies and
                    reads, it cannot write a row anywhere.

The roles get no password here: set one with `ALTER ROLE … PASSWORD` (or psql's
`\\password`), or let pg_hba.conf admit them by certificate or peer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

import sqlalchemy
from sqlalchemy import text

from trialctl.ledger.errors import (
    ConfigurationError,
    DatabaseUnavailableError,
    LedgerError,
    first_line,
)
from trialctl.ledger.location import LedgerLocation
from trialctl.ledger.lockout import QUEUE_TABLE
from trialctl.ledger.recorder import (
    CLAIMS_DDL,
    CLAIMS_TABLE,
    ENTRIES_TABLE,
    FRONTIERS_TABLE,
    LEAVES_TABLE,
    SCHEMA_TABLE,
)
from trialctl.ledger.snapshots import SNAPSHOTS_TABLE
from trialctl.ledger.views import TRACKING_TABLE, VIEW_TABLES

# The evidence: written once, never changed, owned by the owner role.
# The claimed ids (a trial's query numbers) guard new entries, so they are kept with them.
EVIDENCE_TABLES: Final = (ENTRIES_TABLE, LEAVES_TABLE, SCHEMA_TABLE, CLAIMS_TABLE)
# Rebuilt or emptied in the ordinary course of work: owned by the writer.
# Patient snapshots are derived too (never evidence: ledger/snapshots.py), made by the writer;
# so are the checkpoints' frontiers, each checked against a signed root before it is trusted.
DERIVED_TABLES: Final = (*(table.name for table in VIEW_TABLES), TRACKING_TABLE, QUEUE_TABLE,
                         SNAPSHOTS_TABLE, FRONTIERS_TABLE)
# Role names become SQL identifiers; keep them plain so they need no quoting.
PREFIX_PATTERN: Final = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


class RolesError(LedgerError):
    """The roles cannot be set up here; nothing was changed."""


@dataclass(frozen=True)
class LedgerRoles:
    """The three role names of one ledger."""

    owner: str
    writer: str
    auditor: str

    @classmethod
    def named(cls, prefix: str) -> LedgerRoles:
        if not PREFIX_PATTERN.match(prefix):
            raise ConfigurationError(
                f"role prefix {prefix!r} must be 1-40 characters: lower-case letters, digits "
                "or '_', starting with a letter"
            )
        return cls(f"{prefix}_owner", f"{prefix}_writer", f"{prefix}_auditor")


def _create_role(name: str, login: bool) -> str:
    # CREATE ROLE has no IF NOT EXISTS: running the script again must not fail.
    attributes = "LOGIN" if login else "NOLOGIN"
    return (
        "DO $$ BEGIN\n"
        f"  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{name}') THEN\n"
        f"    CREATE ROLE {name} {attributes};\n"
        "  END IF;\n"
        "END $$;\n"
        f"ALTER ROLE {name} {attributes} NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
        "NOBYPASSRLS;"
    )


def roles_sql(roles: LedgerRoles) -> list[str]:
    """The statements, in order, each complete; run them as the tables' owner or a superuser,
    in the ledger's database, after `trialctl init`."""
    evidence = ", ".join(EVIDENCE_TABLES)
    derived = ", ".join(f"'{name}'" for name in DERIVED_TABLES)
    return [
        _create_role(roles.owner, login=False),
        _create_role(roles.writer, login=True),
        _create_role(roles.auditor, login=True),
        # Since PostgreSQL 15 PUBLIC may not create in `public`; older servers allow it.
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC;",
        f"GRANT USAGE ON SCHEMA public TO {roles.writer}, {roles.auditor};",
        # The writer makes the read models and the security queue when they are missing.
        f"GRANT CREATE ON SCHEMA public TO {roles.writer};",
        # Ledgers made before claimed ids were kept have no table for them yet.
        f"{CLAIMS_DDL};",
        # The evidence and its append-only triggers belong to the owner alone.
        *(f"ALTER TABLE {table} OWNER TO {roles.owner};" for table in EVIDENCE_TABLES),
        f"ALTER FUNCTION trialctl_reject_change() OWNER TO {roles.owner};",
        f"REVOKE ALL ON {evidence} FROM PUBLIC, {roles.writer}, {roles.auditor};",
        f"GRANT SELECT, INSERT ON {ENTRIES_TABLE}, {LEAVES_TABLE}, {CLAIMS_TABLE} "
        f"TO {roles.writer};",
        f"GRANT SELECT ON {SCHEMA_TABLE} TO {roles.writer};",
        f"GRANT SELECT ON {evidence} TO {roles.auditor};",
        # An INSERT draws the entry's notification id from the table's sequence.
        f"DO $$ BEGIN EXECUTE 'GRANT USAGE ON SEQUENCE ' || "
        f"pg_get_serial_sequence('{ENTRIES_TABLE}', 'id') || ' TO {roles.writer}'; END $$;",
        # Derived tables that exist pass to the writer (their sequences follow); the auditor
        # reads them, and reads those the writer makes later by default privilege.
        # (No '%' in these statements: the driver would read it as a parameter.)
        "DO $$ DECLARE name text; BEGIN\n"
        f"  FOREACH name IN ARRAY ARRAY[{derived}] LOOP\n"
        "    IF to_regclass(name) IS NOT NULL THEN\n"
        f"      EXECUTE 'ALTER TABLE ' || quote_ident(name) || ' OWNER TO {roles.writer}';\n"
        "      EXECUTE 'REVOKE ALL ON ' || quote_ident(name) || "
        f"' FROM PUBLIC, {roles.auditor}';\n"
        f"      EXECUTE 'GRANT SELECT ON ' || quote_ident(name) || ' TO {roles.auditor}';\n"
        "    END IF;\n"
        "  END LOOP;\n"
        "END $$;",
        f"ALTER DEFAULT PRIVILEGES FOR ROLE {roles.writer} IN SCHEMA public "
        f"GRANT SELECT ON TABLES TO {roles.auditor};",
    ]


def apply_roles(location: LedgerLocation, roles: LedgerRoles) -> None:
    """Make the derived tables if missing, then run `roles_sql` in one transaction: all of it
    takes effect, or none."""
    from trialctl.ledger.application import TrialLedger
    from trialctl.ledger.projection import open_views

    _require_postgres(location)
    _require_ledger(location)
    ledger = TrialLedger(location)
    try:
        # Made now, as their current owner, so the auditor can read them from the start.
        ledger.security_queue.events()
        open_views(ledger)
    finally:
        ledger.close()
    engine = sqlalchemy.create_engine(location.url)
    try:
        with engine.begin() as connection:
            for statement in roles_sql(roles):
                connection.exec_driver_sql(statement)
    except sqlalchemy.exc.ProgrammingError as e:
        raise RolesError(f"the server refused the roles: {first_line(e)}") from e
    except sqlalchemy.exc.OperationalError as e:
        raise DatabaseUnavailableError(f"could not set up the roles: {first_line(e)}") from e
    finally:
        engine.dispose()


def check_roles_target(location: LedgerLocation) -> None:
    """For `--print`: the SQL is only for a PostgreSQL ledger. It does not depend on the
    database, so printing it never connects: a DBA may review it before the server exists."""
    _require_postgres(location)


def _require_postgres(location: LedgerLocation) -> None:
    if not location.is_postgres:
        raise RolesError(
            "database roles are for a PostgreSQL ledger; a SQLite ledger is protected by "
            "the file's permissions"
        )


def _require_ledger(location: LedgerLocation) -> None:
    engine = sqlalchemy.create_engine(location.url)
    try:
        with engine.connect() as connection:
            present = connection.execute(
                text("SELECT to_regclass(:name) IS NOT NULL"), {"name": ENTRIES_TABLE}
            ).scalar_one()
    except sqlalchemy.exc.SQLAlchemyError as e:
        raise DatabaseUnavailableError(
            f"cannot reach {location.display()}: {first_line(e)}"
        ) from e
    finally:
        engine.dispose()
    if not present:
        raise RolesError(f"{location.display()} holds no ledger yet: run `trialctl init` first")
