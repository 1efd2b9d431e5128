"""The database says which trialctl schema it holds, and a trialctl that reads another one
refuses to open it in one line naming both versions, before anything deeper can fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import assert_one_line_error, trialctl
from tests.ledgers import engine_for, make_staff, sql
from trialctl.ledger.application import open_ledger
from trialctl.ledger.errors import SchemaVersionError
from trialctl.ledger.recorder import SCHEMA_TABLE, SCHEMA_VERSION


def _recorded_versions(url: str) -> list[int]:
    engine = engine_for(url)
    try:
        with engine.connect() as connection:
            return [int(v) for v in connection.exec_driver_sql(
                f"SELECT version FROM {SCHEMA_TABLE}").scalars()]
    finally:
        engine.dispose()


def _set_version(url: str, version: int) -> None:
    engine = engine_for(url)
    try:
        sql(engine, f"UPDATE {SCHEMA_TABLE} SET version = :v", v=version)
    finally:
        engine.dispose()


def test_init_records_the_schema_version_and_the_ledger_opens(
    ledger_url: str, home: Path
) -> None:
    make_staff(ledger_url).app.close()

    assert _recorded_versions(ledger_url) == [SCHEMA_VERSION]
    result = trialctl("user", "list", "--ledger", ledger_url)
    assert result.returncode == 0, result
    assert "alice" in result.stdout


@pytest.mark.parametrize(
    ("found", "words"),
    [(SCHEMA_VERSION + 1, "newer"), (SCHEMA_VERSION - 1, "older")],
    ids=["newer", "older"],
)
def test_another_schema_is_refused_in_one_line_naming_both_versions(
    ledger_url: str, home: Path, found: int, words: str
) -> None:
    make_staff(ledger_url).app.close()
    _set_version(ledger_url, found)

    with pytest.raises(SchemaVersionError, match=words):
        open_ledger(ledger_url)
    for command in (["user", "list"], ["verify"], ["log"]):
        assert_one_line_error(
            trialctl(*command, "--ledger", ledger_url),
            f"schema {found}", f"schema {SCHEMA_VERSION}", words,
        )


def test_a_ledger_made_before_the_schema_table_reads_as_schema_1_and_is_refused(
    ledger_url: str, home: Path
) -> None:
    make_staff(ledger_url).app.close()
    engine = engine_for(ledger_url)
    try:
        sql(engine, f"DROP TABLE {SCHEMA_TABLE}")
    finally:
        engine.dispose()

    # A ledger without the table was written before it existed: schema 1. Schema 2 stopped
    # storing derived DLT counts, so such a ledger is refused, never misread.
    assert SCHEMA_VERSION == 2
    assert_one_line_error(trialctl("verify", "--ledger", ledger_url),
                          "schema 1", f"schema {SCHEMA_VERSION}")


def test_a_schema_table_with_two_rows_is_refused(ledger_url: str, home: Path) -> None:
    make_staff(ledger_url).app.close()
    engine = engine_for(ledger_url)
    try:
        sql(engine, f"INSERT INTO {SCHEMA_TABLE} (version) VALUES (:v)", v=SCHEMA_VERSION + 1)
    finally:
        engine.dispose()

    assert_one_line_error(trialctl("user", "list", "--ledger", ledger_url),
                          "2 schema versions", f"schema {SCHEMA_VERSION}")
