"""The `trialctl` command: parse, call one ledger function, render.

Nothing here imports the database stack at module load, so `trialctl --help` stays fast;
each command imports what it needs when it runs.
"""

from __future__ import annotations

import copy
import gc
import sys
import warnings
from typing import Annotated, Any, TextIO

import typer

# typer (pinned in pyproject.toml) ships its own click; its exceptions are the ones raised.
from typer._click.core import Context
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
from typer.core import TyperArgument, TyperCommand
from typer.main import get_command_name

from trialctl.cli import (
    audit_commands,
    db_commands,
    demo_commands,
    escalation_commands,
    export_commands,
    ledger_commands,
    packet_commands,
    proof_commands,
    protocol_commands,
    query_commands,
    record_commands,
    report_commands,
    review_commands,
    schedule_commands,
    session_commands,
    trial_commands,
    user_commands,
    witness_commands,
)
from trialctl.cli.io import EXIT_FAILED, EXIT_USAGE

HELP = """An event-sourced, signed, tamper-evident ledger for early-phase clinical trials.

\b
Output: a table for people. --json prints one JSON document for a whole answer;
  a stream (log --json) prints JSON lines, one object per line. --csv prints the
  rows of a table.
Exit codes: 0 ok; 1 refused, failed, or findings (verify); 2 usage error; 3 verify
  could not finish reading the ledger (no verdict).
Signing commands ask for the password at a hidden prompt, or read one per line
  from standard input with --password-stdin.

Start with `trialctl demo`: a complete trial on a fresh ledger, with users to try.
"""


class Command(TyperCommand):
    """Usage lines in the usual convention: `PATIENT_ID` required, `[NAME]` optional."""

    def collect_usage_pieces(self, ctx: Context) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                name = param.metavar or (param.name or "").upper()
                name = name if param.required else f"[{name}]"
                pieces.append(f"{name}..." if param.nargs != 1 else name)
        return pieces


def _show_version(value: bool) -> None:
    if value:
        from trialctl import __version__

        typer.echo(f"trialctl {__version__}")
        raise typer.Exit()


app = typer.Typer(
    name="trialctl",
    help=HELP,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals can hold keys and passwords
    # Plain help: rich markup would swallow "[default: …]" in help texts.
    rich_markup_mode=None,
)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option(
        "--version", callback=_show_version, is_eager=True,
        help="Print trialctl's version and exit.")] = False,
) -> None:
    pass


demo_commands.register(app)
ledger_commands.register(app)
app.add_typer(user_commands.app, name="user")
app.add_typer(proof_commands.app, name="proof")
app.add_typer(ledger_commands.ledger_app, name="ledger")
app.add_typer(trial_commands.app, name="trial")
app.add_typer(protocol_commands.app, name="protocol")
app.add_typer(record_commands.app, name="record")
app.add_typer(session_commands.app, name="session")
app.add_typer(db_commands.app, name="db")
app.add_typer(escalation_commands.app, name="escalation")
app.command("status")(trial_commands.status)
app.add_typer(review_commands.app, name="review")
app.add_typer(query_commands.app, name="query")
app.command("schedule")(schedule_commands.schedule)
audit_commands.register(app)
report_commands.register(app)
export_commands.register(app)
witness_commands.register(app)
packet_commands.register(app)


def _use_conventional_usage(group: typer.Typer) -> None:
    for command in group.registered_commands:
        command.cls = Command
    for subgroup in group.registered_groups:
        if isinstance(subgroup.typer_instance, typer.Typer):
            _use_conventional_usage(subgroup.typer_instance)


_use_conventional_usage(app)


def _usage_line(error: UsageError) -> str:
    message = " ".join(error.format_message().split())
    if error.ctx is None:
        return f"trialctl: {message}"
    command = error.ctx.command_path.removeprefix("trialctl").strip()
    where = f"{command}: " if command else ""
    return f"trialctl: {where}{message} (see {error.ctx.command_path} --help)"


def _command_name(name: str | None, callback: Any) -> str:
    return name or get_command_name(getattr(callback, "__name__", ""))


def _named_first(group: typer.Typer, arguments: list[str]) -> typer.Typer:
    """The group with only the command (or subgroup, itself trimmed the same way) named
    first in `arguments`.

    typer builds the click command of every registered command before parsing, which costs
    more than parsing the one that runs. What it shows is the same: help, usage and errors
    of a group or command read only that group or command, and the command path is still
    `trialctl …`. Anything else (no name, an option first, an unknown name) gets the whole
    group, so its help and "No such command" (with its suggestion) come out as before."""
    if not arguments or arguments[0].startswith("-"):
        return group
    name = arguments[0]
    groups = [copy.copy(info) for info in group.registered_groups if info.name == name]
    commands = [command for command in group.registered_commands
                if _command_name(command.name, command.callback) == name]
    if len(groups) + len(commands) != 1:
        return group
    for info in groups:
        if isinstance(info.typer_instance, typer.Typer):
            info.typer_instance = _named_first(info.typer_instance, arguments[1:])
    trimmed = copy.copy(group)
    trimmed.registered_groups = groups
    trimmed.registered_commands = commands
    return trimmed


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str,
                      lineno: int, file: TextIO | None = None, line: str | None = None) -> None:
    """A warning (a privileged database role, say) as one line on stderr, like an error."""
    typer.echo(f"trialctl: warning: {' '.join(str(message).split())}", err=True)


def run() -> None:
    """The entry point: every usage error is one line on stderr and exit 2."""
    warnings.showwarning = _one_line_warning
    try:
        _run()
    finally:
        # The process ends here. Freezing the heap spares the interpreter's teardown its
        # garbage collections over everything SQLAlchemy, pydantic and the domain built:
        # about a fifth of a second of CPU per command, for memory the exit frees anyway.
        gc.freeze()


def _argument_not_utf8(arguments: list[str]) -> int | None:
    """The 1-based place of the first argument that is not UTF-8 (the interpreter hands
    such bytes over as lone surrogates, which no name, id or path of a ledger may hold)."""
    for place, argument in enumerate(arguments, start=1):
        try:
            argument.encode("utf-8")
        except UnicodeEncodeError:
            return place
    return None


def _run() -> None:
    place = _argument_not_utf8(sys.argv[1:])
    if place is not None:
        typer.echo(f"trialctl: argument {place} is not valid UTF-8", err=True)
        sys.exit(EXIT_USAGE)
    try:
        code: Any = _named_first(app, sys.argv[1:])(standalone_mode=False)
    except NoArgsIsHelpError as e:
        e.show()  # a group named alone: its help, as click prints it
        sys.exit(e.exit_code)
    except UsageError as e:
        typer.echo(_usage_line(e), err=True)
        sys.exit(EXIT_USAGE)
    except ClickException as e:
        typer.echo(f"trialctl: {' '.join(e.format_message().split())}", err=True)
        sys.exit(e.exit_code)
    except typer.Abort:
        typer.echo("trialctl: aborted", err=True)
        sys.exit(EXIT_FAILED)
    sys.exit(code if isinstance(code, int) else 0)
