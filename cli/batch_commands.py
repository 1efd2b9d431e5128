"""`trialctl record --from FILE`: batch entry (docs/BATCH.md). Reads the file, hands its
lines to `ledger.batch`, renders the report and sets the exit code."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from typer._click.core import ParameterSource

from trialctl.cli.io import (
    EXIT_FAILED,
    EXIT_USAGE,
    PasswordSource,
    fail,
    ledger_errors,
    need_user,
    print_json,
)
from trialctl.cli.options import (
    JsonOption,
    LedgerOption,
    PasswordStdinOption,
    TrialOption,
    UserOption,
)

if TYPE_CHECKING:
    from trialctl.ledger.batch import Outcome

PROGRESS_FROM_LINES = 50  # shorter files finish before a progress bar is worth drawing

FromOption = Annotated[Path | None, typer.Option(
    "--from", metavar="FILE", dir_okay=False,
    help="Record every line of FILE (JSON lines, or CSV; docs/BATCH.md) with one password.")]
EachOption = Annotated[bool, typer.Option(
    "--each", help="Commit accepted lines one by one, instead of all or nothing.")]


def batch_entry(
    ctx: typer.Context,
    from_file: FromOption = None,
    each: EachOption = False,
    trial: TrialOption = None, ledger: LedgerOption = None, user: UserOption = None,
    password_stdin: PasswordStdinOption = False, json_output: JsonOption = False,
) -> None:
    """Record trial actions as signed events; with --from FILE, many at once.

    \b
    A batch file's lines each name a record command and its flags (docs/BATCH.md). Every
    line is checked as its command checks it, in file order (a line sees the lines before
    it); if any is refused nothing is written, unless --each. Exit 1 if any line is refused.
    \b
    Example: trialctl record --from visit.jsonl -u ivan
    """
    if ctx.invoked_subcommand is not None:
        if from_file is not None or each:
            fail("--from and --each go without a record subcommand", EXIT_USAGE)
        return
    if from_file is None:
        if _options_given(ctx):  # options, but nothing to record: a usage error, in one line
            fail("name a record command, or give --from FILE (see trialctl record --help)",
                 EXIT_USAGE)
        typer.echo(ctx.get_help())
        raise typer.Exit(EXIT_USAGE)
    outcome = _run(from_file, each, trial, ledger, need_user(user), password_stdin)
    if json_output:
        print_json(outcome.shown())
    else:
        _render(outcome)
    if outcome.refused:
        raise typer.Exit(EXIT_FAILED)


def _options_given(ctx: typer.Context) -> bool:
    return any(ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE
               for name in ctx.params)


def _run(path: Path, each: bool, trial: str | None, ledger: str | None, signer: str,
         password_stdin: bool) -> Outcome:
    from trialctl.ledger.application import open_ledger
    from trialctl.ledger.batch import record_batch
    from trialctl.ledger.batch_lines import MAX_FILE_BYTES, BatchFileError, read_lines

    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
        lines = read_lines(data, str(path))
    except OSError as e:
        fail(f"cannot read {path}: {e.strerror or e}", EXIT_USAGE)
    except BatchFileError as e:
        fail(f"{e}; nothing was recorded", EXIT_USAGE)
    with ledger_errors():
        opened = open_ledger(ledger)
        return record_batch(
            opened, lines, trial, signer,
            lambda: opened.unlock(signer, PasswordSource(password_stdin).read(
                f"Password for {signer}")),
            datetime.now(UTC), each, _progress)


@contextmanager
def _progress(what: str, total: int) -> Iterator[Callable[[], None] | None]:
    """A progress bar on a terminal, for long files only; nothing when piped."""
    if total < PROGRESS_FROM_LINES or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(what, total=total)
        yield lambda: bar.advance(task)


def _render(outcome: Outcome) -> None:
    for accepted in outcome.accepted:
        entries = ", ".join(f"#{p} {t}" for p, t in
                            zip(accepted["positions"], accepted["types"], strict=True))
        typer.echo(f"line {accepted['line']} {accepted['command']} {accepted['patient']}: "
                   f"recorded {entries}")
    for refused in outcome.refused:
        typer.echo(f"line {refused.line} {refused.command or '?'}: refused ({refused.kind}, "
                   f"rule {refused.rule}): {refused.message}", err=True)
    lines = f"{len(outcome.accepted)} of {outcome.lines} lines"
    if outcome.refused and not outcome.accepted:
        typer.echo(f"nothing recorded: {len(outcome.refused)} of {outcome.lines} lines "
                   "refused" + ("" if outcome.each else " (all or nothing)"), err=True)
    elif outcome.refused:
        typer.echo(f"recorded {lines} ({outcome.written} signed entries); "
                   f"{len(outcome.refused)} refused", err=True)
    else:
        typer.echo(f"recorded {lines} ({outcome.written} signed entries)")
