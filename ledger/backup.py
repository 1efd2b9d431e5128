"""Backup and restore of a whole ledger: SQLite's online backup API, or pg_dump/pg_restore.

A backup holds the entries and leaves byte for byte, so a restored ledger has the same tree
and verifies against checkpoint notes taken before the backup. Restore only ever fills an
empty place: restoring over a ledger would replace history, so it is refused.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path
from typing import Final

import sqlalchemy
from sqlalchemy.engine import make_url

from trialctl.ledger.errors import ConfigurationError, LedgerError
from trialctl.ledger.location import LedgerLocation

SQLITE_MAGIC: Final = b"SQLite format 3\x00"
PG_DUMP_MAGIC: Final = b"PGDMP"
TABLE_PREFIX: Final = "trialctl_"


class BackupError(LedgerError):
    """A backup or restore that cannot be done; nothing was written."""


def backup(location: LedgerLocation, target: Path) -> None:
    """Copy the open ledger to `target` whole, or write nothing."""
    if target.exists():
        raise BackupError(f"{target} exists; a backup is never written over a file")
    partial = target.with_name(f".{target.name}.partial")
    try:
        if location.sqlite_path is not None:
            _sqlite_copy(location.sqlite_path, partial)
        else:
            _run(_tool("pg_dump"), "--format=custom", "--no-owner", f"--file={partial}",
                 url=location.url)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def restore(source: Path, location: LedgerLocation) -> None:
    """Fill an empty place with the ledger in `source`; refused over any existing ledger."""
    try:
        with source.open("rb") as file:
            head = file.read(len(SQLITE_MAGIC))
    except OSError as e:
        raise BackupError(f"cannot read backup {source}: {e.strerror}") from e
    if location.sqlite_path is not None:
        if head != SQLITE_MAGIC:
            raise BackupError(f"{source} is not a SQLite backup; restore a pg_dump backup to "
                              "a postgresql:// ledger")
        target = location.sqlite_path
        if target.exists():
            raise BackupError(f"{target} exists; restore is never done over a ledger")
        _check_is_ledger_file(source)
        partial = target.with_name(f".{target.name}.partial")
        try:
            _sqlite_copy(source, partial)
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        return
    if not head.startswith(PG_DUMP_MAGIC):
        raise BackupError(f"{source} is not a pg_dump backup; restore a SQLite backup to a "
                          "file path")
    if _has_ledger_tables(location):
        raise BackupError(f"{location.display()} already holds a ledger; restore is never "
                          "done over a ledger (create an empty database)")
    _run(_tool("pg_restore"), "--no-owner", "--exit-on-error", "--single-transaction",
         str(source), url=location.url, database_flag=True)


def _sqlite_copy(source: Path, target: Path) -> None:
    """SQLite's online backup: a consistent copy even while others write."""
    try:
        with closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as src, \
                closing(sqlite3.connect(target)) as dst:
            src.backup(dst)
    except sqlite3.Error as e:
        raise BackupError(f"SQLite backup failed: {e}") from e


def _check_is_ledger_file(source: Path) -> None:
    try:
        with closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as connection:
            names = {row[0] for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.Error as e:
        raise BackupError(f"{source} is not a readable SQLite file: {e}") from e
    if not {"trialctl_events", "trialctl_leaves"} <= names:
        raise BackupError(f"{source} is not a trialctl ledger backup")


def _has_ledger_tables(location: LedgerLocation) -> bool:
    engine = sqlalchemy.create_engine(location.url)
    try:
        names = sqlalchemy.inspect(engine).get_table_names()
    except sqlalchemy.exc.SQLAlchemyError as e:
        raise BackupError(f"cannot open {location.display()}: {str(e).splitlines()[0]}") from e
    finally:
        engine.dispose()
    return any(name.startswith(TABLE_PREFIX) for name in names)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise ConfigurationError(f"{name} is not on PATH; install the PostgreSQL client "
                                 "(Debian: postgresql-client) to back up or restore "
                                 "PostgreSQL")
    return found


def _run(tool: str, *args: str, url: str, database_flag: bool = False) -> None:
    """Run a libpq tool; the password goes through the environment, never argv."""
    parsed = make_url(url)
    libpq = parsed.set(drivername="postgresql", password=None)
    env = {**os.environ}
    if parsed.password is not None:
        env["PGPASSWORD"] = str(parsed.password)
    dsn = libpq.render_as_string(hide_password=False)
    command = [tool, *args, f"--dbname={dsn}"] if database_flag else [tool, *args, dsn]
    completed = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if completed.returncode != 0:
        message = next((line for line in completed.stderr.splitlines() if line.strip()),
                       f"exit {completed.returncode}")
        raise BackupError(f"{Path(tool).name} failed: {message}")
