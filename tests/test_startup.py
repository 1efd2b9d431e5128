"""What a `trialctl` process loads and builds before its command runs: only the command
named on the command line, and eventsourcing-sqlalchemy without the rest of sqlalchemy-utils;
what a user sees (help, usage, errors, the command's options) stays the same."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import typer
import typer.main
from typer._click.core import Command
from typer.core import TyperGroup as Group

from tests.conftest import assert_one_line_error, trialctl
from trialctl.cli import main


def _paths(command: Command, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    if isinstance(command, Group):
        for name, sub in command.commands.items():
            yield from _paths(sub, (*path, name))


def _at(command: Command, path: tuple[str, ...]) -> Command:
    for name in path:
        assert isinstance(command, Group)
        command = command.commands[name]
    return command


def _shape(command: Command) -> tuple[object, ...]:
    """What a user sees of one command: its help, options and arguments, and its subcommands."""
    params = tuple((p.name, tuple(p.opts), p.required, repr(p.default)) for p in command.params)
    subcommands = tuple(sorted(command.commands)) if isinstance(command, Group) else ()
    return (command.help, command.epilog, params, subcommands)


def test_every_command_named_first_is_built_alone_and_unchanged() -> None:
    full = typer.main.get_command(main.app)
    paths = [path for path in _paths(full) if path]
    assert len(paths) > 60  # every group and command of trialctl
    for path in paths:
        trimmed = typer.main.get_command(main._named_first(main.app, [*path, "--json"]))
        assert _shape(_at(trimmed, path)) == _shape(_at(full, path)), path
        # Only the named path is built: each group on the way holds one command.
        for depth in range(len(path)):
            group = _at(trimmed, path[:depth])
            assert isinstance(group, Group) and list(group.commands) == [path[depth]], path


def test_anything_but_a_known_name_first_gets_the_whole_group() -> None:
    for arguments in ([], ["--help"], ["--version"], ["recrd"], ["-u", "mona", "record"]):
        assert main._named_first(main.app, arguments) is main.app
    record = main._named_first(main.app, ["record", "--from", "lines.jsonl"])
    (group,) = record.registered_groups
    assert isinstance(group.typer_instance, typer.Typer)
    names = {c.name or c.callback.__name__ for c in group.typer_instance.registered_commands
             if c.callback is not None}
    assert {"dose", "consent", "ae"} <= names  # the group's own options: all of it, as before


def test_usage_errors_still_name_the_command_and_suggest_the_nearest() -> None:
    unknown = trialctl("record", "dos")
    assert unknown.returncode == 2
    assert_one_line_error(unknown, "record: No such command 'dos'", "Did you mean 'dose'?")
    missing = trialctl("record", "dose")
    assert missing.returncode == 2
    assert_one_line_error(missing, "record dose: Missing argument 'PATIENT_ID'")


def test_the_event_store_loads_without_the_rest_of_sqlalchemy_utils() -> None:
    """Opening a ledger imports one module of sqlalchemy-utils (UUIDType); a later import of
    the package itself is whole and shares that same type."""
    code = (
        "import sys\n"
        "import trialctl.ledger.application\n"
        "print(sorted(m for m in sys.modules if m.startswith('sqlalchemy_utils')))\n"
        "print('sqlalchemy.dialects.oracle' in sys.modules)\n"
        "import sqlalchemy_utils\n"
        "from eventsourcing_sqlalchemy.models import UUIDType\n"
        "print(sqlalchemy_utils.UUIDType is UUIDType, hasattr(sqlalchemy_utils, 'JSONType'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.splitlines() == [
        "['sqlalchemy_utils.types.scalar_coercible', 'sqlalchemy_utils.types.uuid']",
        "False",
        "True True",
    ]
