"""Options shared by many commands, declared once (typer `Annotated` aliases), and the
parsing they share: output switches and times."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated

import typer

from trialctl.cli.io import EXIT_USAGE, fail
from trialctl.domain.rules import TrialRuleError, parse_moment

LedgerOption = Annotated[
    str | None,
    typer.Option(
        "--ledger",
        envvar="TRIALCTL_LEDGER",
        metavar="PATH|URL",
        help="Ledger file path or postgresql:// URL [default: $TRIALCTL_HOME/ledger.sqlite].",
        show_default=False,
    ),
]
UserOption = Annotated[
    str | None,
    typer.Option(
        "--user", "-u", envvar="TRIALCTL_USER", metavar="ID",
        help="Your user id: the person who signs.",
    ),
]
PasswordStdinOption = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="Read passwords from standard input, one per line, instead of prompting.",
    ),
]
TrialOption = Annotated[
    str | None,
    typer.Option("--trial", envvar="TRIALCTL_TRIAL", metavar="PROTOCOL_ID",
                 help="Protocol id [default: the ledger's only trial]."),
]
PatientArgument = Annotated[str, typer.Argument(metavar="PATIENT_ID",
                                                help="The patient's study id, e.g. P001.")]
DateOption = Annotated[str, typer.Option("--date", metavar="YYYY-MM-DD",
                                         help="The date it happened (YYYY-MM-DD).")]
AsOfOption = Annotated[str | None, typer.Option(
    "--as-of", metavar="TIME",
    help="A past moment, ISO 8601 with offset (2026-03-01T12:00:00+00:00).")]
UptoOption = Annotated[int | None, typer.Option(
    "--upto", min=0, metavar="POSITION", help="A ledger position: the state after that entry.")]

# The output switches, the same on every command that prints an answer: a JSON document for
# a whole answer, JSON lines for a stream (`log`), CSV for the rows of a table.
JsonOption = Annotated[bool, typer.Option(
    "--json", help="Print JSON: one document (JSON lines for a stream such as log).")]
CsvOption = Annotated[bool, typer.Option("--csv", help="Print the table's rows as CSV.")]


class Format(Enum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


def output_format(json_output: bool, csv_output: bool = False) -> Format:
    if json_output and csv_output:
        fail("choose one of --json and --csv", EXIT_USAGE)
    if json_output:
        return Format.JSON
    return Format.CSV if csv_output else Format.TABLE


def moment_option(text: str | None, option: str) -> datetime | None:
    """A time given on the command line, read by the domain's own parser."""
    if text is None:
        return None
    try:
        return parse_moment(text, option)
    except TrialRuleError as e:
        fail(str(e), EXIT_USAGE)
