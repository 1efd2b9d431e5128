"""Where things live: the ledger (a SQLite file or a PostgreSQL URL) and the key files.

    TRIALCTL_HOME     default ~/.trialctl; holds keys/ and the default ledger
    TRIALCTL_LEDGER   default $TRIALCTL_HOME/ledger.sqlite; a path or a database URL
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from trialctl.ledger.errors import ConfigurationError

DEFAULT_LEDGER_FILE = "ledger.sqlite"
USER_ID_PATTERN = re.compile(r"^[a-z][a-z0-9._-]{1,63}$")


def trialctl_home() -> Path:
    configured = os.environ.get("TRIALCTL_HOME")
    return Path(configured).expanduser() if configured else Path.home() / ".trialctl"


def keys_dir() -> Path:
    return trialctl_home() / "keys"


def check_user_id(user_id: str) -> str:
    if not USER_ID_PATTERN.match(user_id):
        raise ConfigurationError(
            f"user id {user_id!r} must be 2-64 characters: lower-case letters, digits, "
            "'.', '_' or '-', starting with a letter"
        )
    return user_id


@dataclass(frozen=True)
class LedgerLocation:
    """A resolved ledger: its SQLAlchemy URL and, for SQLite, the file."""

    url: str
    sqlite_path: Path | None

    @property
    def is_postgres(self) -> bool:
        return self.sqlite_path is None

    def display(self) -> str:
        if self.sqlite_path is not None:
            return str(self.sqlite_path)
        return make_url(self.url).render_as_string(hide_password=True)


def resolve_ledger(given: str | None) -> LedgerLocation:
    """Turn `--ledger`, `TRIALCTL_LEDGER` or the default into a validated location."""
    raw = given or os.environ.get("TRIALCTL_LEDGER") or str(trialctl_home() / DEFAULT_LEDGER_FILE)
    if "://" not in raw:
        path = Path(raw).expanduser().resolve()
        return LedgerLocation(url=f"sqlite:///{path}", sqlite_path=path)
    try:
        url = make_url(raw)
    except ArgumentError as e:
        raise ConfigurationError(f"ledger URL {raw!r} is not a database URL") from e
    if url.get_backend_name() == "sqlite":
        if not url.database or url.database == ":memory:":
            raise ConfigurationError("a SQLite ledger needs a file path, not memory")
        path = Path(url.database).expanduser().resolve()
        return LedgerLocation(url=f"sqlite:///{path}", sqlite_path=path)
    if url.get_backend_name() != "postgresql":
        raise ConfigurationError(
            f"unsupported database {url.get_backend_name()!r}: use a file path or postgresql://"
        )
    url = _with_psycopg(url)
    return LedgerLocation(url=url.render_as_string(hide_password=False), sqlite_path=None)


def _with_psycopg(url: URL) -> URL:
    url = url.set(drivername="postgresql+psycopg")
    if "connect_timeout" not in url.query:
        url = url.update_query_dict({"connect_timeout": "5"})
    return url
