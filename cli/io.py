"""Terminal input and output: passwords, one-line errors, JSON; tables are in render.py.

The database stack is imported inside each function that needs it, so `trialctl --help`
stays fast."""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    """One line on stderr, whatever the message quotes (a path or value may hold a line
    break), then exit with `code`."""
    one_line = message.replace("\r", "\\r").replace("\n", "\\n")
    typer.echo(f"trialctl: {one_line}", err=True)
    raise typer.Exit(code)


class PasswordSource:
    """Passwords from a hidden prompt, or from stdin lines with --password-stdin."""

    def __init__(self, from_stdin: bool) -> None:
        self.from_stdin = from_stdin

    def read(self, prompt: str) -> str:
        if self.from_stdin:
            line = sys.stdin.readline()
            if not line:
                fail(f"--password-stdin: standard input ended before the {prompt.lower()}")
            return line.rstrip("\r\n")
        if not sys.stdin.isatty():
            fail("no terminal to ask for a password: pass --password-stdin", EXIT_USAGE)
        return getpass.getpass(f"{prompt}: ")

    def read_new(self, prompt: str) -> str:
        password = self.read(prompt)
        if not self.from_stdin and getpass.getpass("Repeat it: ") != password:
            fail("the two passwords differ")
        return password


def need_user(user: str | None) -> str:
    if not user:
        fail("who is signing? pass --user or set TRIALCTL_USER", EXIT_USAGE)
    return user


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, sort_keys=True, default=str))


@contextmanager
def ledger_errors() -> Iterator[None]:
    """The one boundary where expected failures become a single line and an exit code."""
    from eventsourcing.persistence import PersistenceError
    from sqlalchemy.exc import SQLAlchemyError

    from trialctl.ledger.errors import (
        CheckpointError,
        LedgerError,
        VerificationIncompleteError,
        first_line,
    )

    try:
        yield
    except VerificationIncompleteError as e:
        fail(str(e), e.exit_code)  # no verdict: neither clean (0) nor findings (1)
    except (LedgerError, CheckpointError) as e:
        fail(str(e))
    except (PersistenceError, SQLAlchemyError) as e:
        # The database went away or refused mid-command: nothing half-written stays, since
        # every write is one transaction.
        fail(f"database error: {first_line(e)}")
    except OSError as e:
        fail(f"{e.strerror or 'cannot use file'}: {e.filename or e}")
