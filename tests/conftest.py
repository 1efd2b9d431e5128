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

from trialctl.ledger import keys
from trialctl.ledger.db_privilege import ACCEPT_VARIABLE

# The test server's role is a superuser, which trialctl warns of at every connection; every
# test and `trialctl` process accepts that here, except those that test the warning itself
# (tests/test_pg_roles.py), which run without it as the superuser and as the writer role.
os.environ[ACCEPT_VARIABLE] = "1"

POSTGRES_URL_VARIABLE = "TRIALCTL_TEST_DATABASE_URL"
TRIALCTL = str(Path(sys.executable).with_name("trialctl"))
BACKENDS = ["sqlite", "postgresql"]
# The lowest scrypt cost a key file may carry (ledger/keys.py checks n >= 2**14). Key files
# sealed in this process use it, so every later unlock of them, here or by a `trialctl`
# process, costs an eighth of the production one; `trialctl` processes still seal at the
# production cost, so those paths keep it.
TEST_SCRYPT_N = 2**14


@pytest.fixture(scope="session", autouse=True)
def _key_files_never_reach_the_real_home(tmp_path_factory: pytest.TempPathFactory,
                                         ) -> Iterator[None]:
    """A TRIALCTL_HOME of this test process's own for fixtures that set none (module-scoped
    sites): a key file left in ~/.trialctl by another run, or written there by a parallel
    worker, would otherwise be read as this run's. Tests needing an empty one use `home`."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRIALCTL_HOME", str(tmp_path_factory.mktemp("session-home")))
        yield


@pytest.fixture(scope="session", autouse=True)
def _test_key_files_use_the_lowest_cost() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(keys, "SCRYPT_N", TEST_SCRYPT_N)
        yield


def reseal_at_test_cost(keys_home: Path, passwords: dict[str, str]) -> None:
    """Seal again, at TEST_SCRYPT_N, the key files `trialctl` wrote under `keys_home` for
    these users: the same keys, so the ledger sees no change, but cheaper to unlock."""
    for user, password in passwords.items():
        for path in sorted((keys_home / user).glob("*.json")):
            pair = keys.open_key_file(path, password)
            path.unlink()
            keys.seal_key_file(path, user, pair, password)


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


def new_ledger(backend: str, sqlite_path: Path) -> Iterator[str]:
    """Where a new ledger lives on `backend`: the SQLite file, or a new PostgreSQL database,
    dropped when the generator is closed. For fixtures parametrised with BACKENDS."""
    if backend == "sqlite":
        yield str(sqlite_path)
    else:
        yield from _fresh_postgres_database()


@pytest.fixture(params=BACKENDS)
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Where a test's ledger lives: a new SQLite file, or a new PostgreSQL database."""
    yield from new_ledger(request.param, tmp_path / "ledger.sqlite")


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


def trialctl(*args: str, stdin: str = "", env: dict[str, str] | None = None,
             unset: tuple[str, ...] = ()) -> Result:
    """Run the installed `trialctl` as a user would, with the test's environment (less the
    variables named in `unset`)."""
    environment = {**os.environ, **(env or {}), "COLUMNS": "200"}
    for name in unset:
        environment.pop(name, None)
    completed = subprocess.run(
        [TRIALCTL, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=environment,
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


# Files that take longest, slowest first. scripts/test.sh hands whole files to workers in
# collection order (--dist loadfile --no-loadscope-reorder), so these start first and the
# many short files fill in around them instead of one long file running alone at the end.
# From a full run's per-file times (pytest --junitxml), SQLite and PostgreSQL together.
SLOWEST_FILES = (
    "test_crash_suite.py",
    "test_fuzz_inputs.py",
    "test_record_cli.py",
    "test_batch.py",
    "test_dose_consistency.py",
    "test_read_every_event.py",
    "test_deviations_cli.py",
    "test_forms_cli.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return SLOWEST_FILES.index(name) if name in SLOWEST_FILES else len(SLOWEST_FILES)

    items.sort(key=rank)  # stable: each file's own order is kept
