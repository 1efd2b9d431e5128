"""Shared fixtures: a real SQLite file and, when TRIALCTL_TEST_DATABASE_URL names a server,
a fresh PostgreSQL database for every test; real keys; `trialctl` run as a real process."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy

POSTGRES_URL_VARIABLE = "TRIALCTL_TEST_DATABASE_URL"
TRIALCTL = str(Path(sys.executable).with_name("trialctl"))
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty TRIALCTL_HOME (key files live here) for this test alone."""
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("TRIALCTL_HOME", str(path))
    monkeypatch.delenv("TRIALCTL_LEDGER", raising=False)
    monkeypatch.delenv("TRIALCTL_USER", raising=False)
    return path


def _fresh_postgres_database() -> Iterator[str]:
    base = os.environ.get(POSTGRES_URL_VARIABLE)
    if not base:
        pytest.skip(f"no PostgreSQL server: set {POSTGRES_URL_VARIABLE} (scripts/test.sh does "
                    "this with pg_virtualenv)")
    name = f"trialctl_test_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    url = sqlalchemy.engine.make_url(base).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Where a test's ledger lives: a new SQLite file, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield str(tmp_path / "ledger.sqlite")
    else:
        yield from _fresh_postgres_database()


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


def trialctl(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> Result:
    """Run the installed `trialctl` as a user would, with the test's environment."""
    completed = subprocess.run(
        [TRIALCTL, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {}), "COLUMNS": "200"},
        timeout=120,
    )
    return Result(completed.returncode, completed.stdout, completed.stderr)


def assert_one_line_error(result: Result, *fragments: str) -> None:
    """A refusal: non-zero exit, one line on stderr naming the problem, no traceback."""
    assert result.returncode != 0, result
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
