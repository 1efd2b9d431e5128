"""The agent's side of a `record` command handed over as its arguments: parse them with the
very command a user runs, stop where it would sign, and hand back its session line; and,
once signed, the command's own output.

It runs in the session agent (which `session start` gives these functions to), so the
`trialctl record …` process itself need not import typer, the domain or the database stack:
that is what brings a signing within a session down to a fraction of a second.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Iterator, Mapping
from typing import Any

from trialctl.cli.signing import PREPARING, PreparedCommand, _render

# The environment a record command reads (its options' defaults): the client's, not the
# agent's, decides which ledger, signer and trial a handed-over command means.
CLIENT_VARIABLE_PREFIX = "TRIALCTL_"

_commands: dict[tuple[str, ...], Any] = {}


def prepare(argv: list[str], cwd: str, env: Mapping[str, str]) -> dict[str, Any] | None:
    """The line `trialctl <argv>` would sign and how it asks and shows, or None when the
    command does not get that far cleanly (a usage error, a refusal, help, a command that
    cannot go through a session): the client then runs it the ordinary way, which says so."""
    from trialctl.ledger.location import resolve_ledger
    from trialctl.ledger.session_socket import ledger_tag

    token = PREPARING.set(True)
    try:
        with _as_the_client(cwd, env), _no_input(), \
                contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            try:
                _command(argv).main(args=list(argv), prog_name="trialctl",
                                    standalone_mode=False)
            except PreparedCommand as handed:
                prepared = handed.prepared
                if prepared is None:
                    return None
                return {"user": prepared.signer,
                        "ledger": ledger_tag(resolve_ledger(prepared.ledger).url),
                        "line": prepared.line, "trial": prepared.trial,
                        "password_stdin": prepared.password_stdin,
                        "json_output": prepared.json_output}
            except (Exception, SystemExit):
                return None
            return None
    except OSError:  # the client's directory is gone or closed to the agent
        return None
    finally:
        PREPARING.reset(token)


def rendered(recorded: Mapping[str, Any], json_output: bool) -> str:
    """What the record command prints once its entries are signed."""
    shown = io.StringIO()
    with contextlib.redirect_stdout(shown):
        _render(recorded["trial"], recorded["patient"], recorded["entries"],
                recorded["summary"], json_output)
    return shown.getvalue()


def _command(argv: list[str]) -> Any:
    """The click command of `trialctl`, trimmed to the command named (built once)."""
    import typer.main

    from trialctl.cli.main import _named_first, app

    key = tuple(argv[:2])
    if key not in _commands:
        _commands[key] = typer.main.get_command(_named_first(app, list(argv)))
    return _commands[key]


@contextlib.contextmanager
def _no_input() -> Iterator[None]:
    """An empty standard input: nothing the command would ask for can be answered here, so
    a command that reaches for a password before `run_signed` stops there, unsigned."""
    before = sys.stdin
    sys.stdin = io.StringIO("")
    try:
        yield
    finally:
        sys.stdin = before


@contextlib.contextmanager
def _as_the_client(cwd: str, env: Mapping[str, str]) -> Iterator[None]:
    """The client's working directory and TRIALCTL_* variables, for one parse."""
    before_cwd = os.getcwd()
    before = {k: v for k, v in os.environ.items() if k.startswith(CLIENT_VARIABLE_PREFIX)}
    os.chdir(cwd)
    try:
        for name in before:
            del os.environ[name]
        os.environ.update({k: v for k, v in env.items()
                           if k.startswith(CLIENT_VARIABLE_PREFIX)})
        yield
    finally:
        for name in [k for k in os.environ if k.startswith(CLIENT_VARIABLE_PREFIX)]:
            del os.environ[name]
        os.environ.update(before)
        os.chdir(before_cwd)
