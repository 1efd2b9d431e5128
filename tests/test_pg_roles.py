"""Least-privilege PostgreSQL roles (`trialctl db roles`): the writer records but the server
refuses it any change to an entry; the auditor verifies but can write nothing anywhere."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy

from tests.conftest import _fresh_postgres_database, assert_one_line_error, trialctl
from tests.ledgers import PASSWORDS, make_staff, stored_entries
from trialctl.ledger.application import open_ledger
from trialctl.ledger.db_privilege import ACCEPT_VARIABLE, bypass_reason
from trialctl.ledger.projection import rebuild

INSUFFICIENT_PRIVILEGE = "42501"  # PostgreSQL's SQLSTATE for "permission denied"


@dataclass(frozen=True)
class RoledLedger:
    admin_url: str
    writer_url: str
    auditor_url: str
    home: Path
    prefix: str


def _as(url: str, role: str, password: str) -> str:
    return (sqlalchemy.engine.make_url(url).set(username=role, password=password)
            .render_as_string(hide_password=False))


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RoledLedger]:
    """A ledger made by the server's admin, then its roles applied by `trialctl db roles`
    (role names are per cluster, so each run takes a prefix of its own)."""
    home = tmp_path_factory.mktemp("pg-roles") / "home"
    home.mkdir()
    prefix = f"t{uuid.uuid4().hex[:10]}"
    for admin_url in _fresh_postgres_database():
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("TRIALCTL_HOME", str(home))
            make_staff(admin_url).app.close()
        applied = trialctl("db", "roles", "--url", admin_url, "--prefix", prefix,
                           env={"TRIALCTL_HOME": str(home)})
        assert applied.returncode == 0, applied
        admin = sqlalchemy.create_engine(admin_url)
        with admin.begin() as connection:
            for role in ("writer", "auditor"):
                connection.exec_driver_sql(f"ALTER ROLE {prefix}_{role} PASSWORD '{role}-pw'")
        admin.dispose()
        try:
            yield RoledLedger(admin_url, _as(admin_url, f"{prefix}_writer", "writer-pw"),
                              _as(admin_url, f"{prefix}_auditor", "auditor-pw"), home, prefix)
        finally:
            admin = sqlalchemy.create_engine(
                sqlalchemy.engine.make_url(admin_url).set(database="postgres"),
                isolation_level="AUTOCOMMIT")
            with admin.connect() as connection:
                name = sqlalchemy.engine.make_url(admin_url).database
                connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                for role in ("writer", "auditor", "owner"):
                    connection.exec_driver_sql(f"DROP ROLE IF EXISTS {prefix}_{role}")
            admin.dispose()


def _env(ledger: RoledLedger, url: str) -> dict[str, str]:
    return {"TRIALCTL_HOME": str(ledger.home), "TRIALCTL_LEDGER": url}


def test_print_shows_the_grants_and_changes_nothing(ledger: RoledLedger) -> None:
    printed = trialctl("db", "roles", "--url", ledger.admin_url, "--prefix", "other", "--print")
    assert printed.returncode == 0, printed
    assert ("GRANT SELECT, INSERT ON trialctl_events, trialctl_leaves, trialctl_claimed_ids "
            "TO other_writer;") in printed.stdout
    assert "UPDATE" not in printed.stdout.replace("NOREPLICATION", "")
    engine = sqlalchemy.create_engine(ledger.admin_url)
    with engine.connect() as connection:
        made = connection.execute(sqlalchemy.text(
            "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'other\\_%'")).scalar_one()
    engine.dispose()
    assert made == 0


def test_the_writer_records_and_reads(ledger: RoledLedger) -> None:
    before = stored_entries(ledger.admin_url)
    # Without the test harness's acceptance of a privileged role: the writer is not one.
    added = trialctl("user", "add", "dave", "--name", "Dave Diaz", "--role", "investigator",
                     "-u", "alice", "--password-stdin",
                     stdin=f"{PASSWORDS['alice']}\ndave-password\n",
                     env=_env(ledger, ledger.writer_url), unset=(ACCEPT_VARIABLE,))
    assert added.returncode == 0, added
    assert "warning" not in added.stderr, added.stderr
    assert stored_entries(ledger.admin_url) == before + 1
    log = trialctl("log", "--by", "alice", env=_env(ledger, ledger.writer_url))
    assert log.returncode == 0, log
    assert "dave" in log.stdout
    # A rebuild drops and makes the read models again: the writer owns them.
    app = open_ledger(ledger.writer_url)
    try:
        assert rebuild(app).position() is not None
    finally:
        app.close()


def test_a_superuser_is_warned_once_per_command(ledger: RoledLedger) -> None:
    # `log` opens the ledger and brings the read models up to date: one warning, one line.
    log = trialctl("log", "--by", "alice", env=_env(ledger, ledger.admin_url),
                   unset=(ACCEPT_VARIABLE,))
    assert log.returncode == 0, log
    warned = [line for line in log.stderr.splitlines() if line.strip()]
    assert len(warned) == 1, log.stderr
    assert warned[0].startswith("trialctl: warning: role ") and "superuser" in warned[0]
    assert "trialctl db roles" in warned[0] and ACCEPT_VARIABLE in warned[0]
    accepted = trialctl("log", "--by", "alice", env=_env(ledger, ledger.admin_url))
    assert accepted.returncode == 0 and accepted.stderr == "", accepted


def test_the_tables_owner_could_bypass_the_triggers(ledger: RoledLedger) -> None:
    """The owner is no superuser, but may DISABLE TRIGGER: trialctl counts it privileged,
    and the writer and auditor not."""
    engine = sqlalchemy.create_engine(ledger.admin_url)
    try:
        with engine.connect() as connection:
            connection.exec_driver_sql(f"SET ROLE {ledger.prefix}_owner")
            owner = bypass_reason(connection)
            for role in ("writer", "auditor"):
                connection.exec_driver_sql(f"SET ROLE {ledger.prefix}_{role}")
                assert bypass_reason(connection) is None, role
    finally:
        engine.dispose()
    assert owner is not None and "owns trialctl_events" in owner


WRITER_REFUSED = [
    "UPDATE trialctl_events SET topic = 'x'",
    "DELETE FROM trialctl_events",
    "TRUNCATE trialctl_events",
    "UPDATE trialctl_leaves SET leaf_hash = ''",
    "DELETE FROM trialctl_leaves",
    "ALTER TABLE trialctl_events DISABLE TRIGGER USER",
    "DROP TABLE trialctl_leaves",
    "SET session_replication_role = replica",
    "DELETE FROM trialctl_schema",
    "DELETE FROM trialctl_claimed_ids",
]
AUDITOR_REFUSED = [
    "INSERT INTO trialctl_schema (version) VALUES (99)",
    "DELETE FROM trialctl_security_queue",
    "INSERT INTO trialctl_security_queue (user_id, at, action, reason) "
    "VALUES ('bob', 'now', 'sign-in', 'x')",
    "DELETE FROM trialctl_views_tracking",
    "DELETE FROM trialctl_view_audit",
    "CREATE TABLE trialctl_extra (id integer)",
    *WRITER_REFUSED,
]


def _refused(url: str, statement: str) -> str:
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.begin() as connection, pytest.raises(sqlalchemy.exc.DBAPIError) as refused:
            connection.exec_driver_sql(statement)
    finally:
        engine.dispose()
    return str(getattr(refused.value.orig, "sqlstate", ""))


@pytest.mark.parametrize("statement", WRITER_REFUSED)
def test_the_server_refuses_the_writer_any_change_to_entries(
        ledger: RoledLedger, statement: str) -> None:
    # Refused for lack of privilege, not by the append-only trigger a superuser could drop.
    assert _refused(ledger.writer_url, statement) == INSUFFICIENT_PRIVILEGE


@pytest.mark.parametrize("statement", AUDITOR_REFUSED)
def test_the_server_refuses_the_auditor_every_write(ledger: RoledLedger, statement: str) -> None:
    assert _refused(ledger.auditor_url, statement) == INSUFFICIENT_PRIVILEGE


def test_the_auditor_verifies_and_cannot_record(ledger: RoledLedger) -> None:
    verified = trialctl("verify", env=_env(ledger, ledger.auditor_url))
    assert verified.returncode == 0, verified
    before = stored_entries(ledger.admin_url)
    refused = trialctl("user", "add", "erin", "--name", "Erin Eng", "--role", "monitor",
                       "-u", "alice", "--password-stdin",
                       stdin=f"{PASSWORDS['alice']}\nerin-password\n",
                       env=_env(ledger, ledger.auditor_url))
    assert_one_line_error(refused, "permission denied")
    assert stored_entries(ledger.admin_url) == before


def test_the_auditor_cannot_bring_stale_read_models_up_to_date(ledger: RoledLedger) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRIALCTL_HOME", str(ledger.home))
        app = open_ledger(ledger.writer_url)
        try:
            alice = app.unlock("alice", PASSWORDS["alice"])
            app.register_user(alice, "fred", "Fred Fox", ["monitor"], "fred-password")
        finally:
            app.close()
    stale = trialctl("log", env=_env(ledger, ledger.auditor_url))
    assert_one_line_error(stale, "permission denied")


def test_roles_are_for_postgresql_only(tmp_path: Path) -> None:
    refused = trialctl("db", "roles", "--url", str(tmp_path / "ledger.sqlite"), "--print")
    assert_one_line_error(refused, "PostgreSQL ledger")


def test_writers_racing_as_the_writer_role_are_serialised(ledger: RoledLedger) -> None:
    """The advisory lock stands in for LOCK TABLE: four writers at once, none refused,
    positions dense and the ledger clean."""
    from concurrent.futures import ThreadPoolExecutor

    from trialctl.ledger.verify import verify_ledger

    before = stored_entries(ledger.admin_url)

    def add(number: int) -> None:
        app = open_ledger(ledger.writer_url)
        try:
            alice = app.unlock("alice", PASSWORDS["alice"])
            for second in range(2):
                app.register_user(alice, f"racer{number}x{second}", "Racer", ["monitor"],
                                  f"racer-password-{number}")
        finally:
            app.close()

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRIALCTL_HOME", str(ledger.home))
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(add, range(4)))
    assert stored_entries(ledger.admin_url) == before + 8
    app = open_ledger(ledger.auditor_url)
    try:
        assert verify_ledger(app.signed_recorder, app.location.display()).ok
    finally:
        app.close()
