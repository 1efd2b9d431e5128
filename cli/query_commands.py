"""`trialctl query …`: data queries raised on a record, answered by the site, closed by
whoever raised them (or a data manager)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from trialctl.cli.io import ledger_errors
from trialctl.cli.options import (
    CsvOption,
    Format,
    JsonOption,
    LedgerOption,
    PasswordStdinOption,
    PatientArgument,
    TrialOption,
    UserOption,
    output_format,
)
from trialctl.cli.render import QUERIES, output_rows
from trialctl.cli.signing import run_signed

app = typer.Typer(help="Data queries: open, answer, close, reopen, list.", no_args_is_help=True)

QueryArgument = Annotated[str, typer.Argument(metavar="QUERY_ID", help="The query, e.g. Q1.")]
TextOption = Annotated[str, typer.Option("--text", help="What is asked or answered.")]


def _step(query_id: str, action: str, text: str | None, trial: str | None,
          ledger: str | None, user: str | None, password_stdin: bool, json_output: bool) -> None:
    from trialctl.ledger.reviews import QueryStep, ReviewActions

    request = QueryStep(trial, query_id, action, text, user or "")
    run_signed(ledger, user, password_stdin, json_output, request, ReviewActions)


@app.command("open")
def open_query(
    patient: PatientArgument,
    record: Annotated[int, typer.Option("--record", metavar="N", min=0,
                                        help="Ledger position of the record queried.")],
    text: TextOption,
    trial: TrialOption = None, ledger: LedgerOption = None, user: UserOption = None,
    password_stdin: PasswordStdinOption = False, json_output: JsonOption = False,
) -> None:
    """Raise a query on one of a patient's records (a monitor or data manager).

    \b
    Example: trialctl query open P007 --record 67 --text "Day 1 dose time differs from the chart" -u mona
    """
    from trialctl.ledger.reviews import QueryOpen, ReviewActions

    request = QueryOpen(trial, patient, record, text, user or "")
    run_signed(ledger, user, password_stdin, json_output, request, ReviewActions)


@app.command("answer")
def answer(
    query_id: QueryArgument, text: TextOption,
    trial: TrialOption = None, ledger: LedgerOption = None, user: UserOption = None,
    password_stdin: PasswordStdinOption = False, json_output: JsonOption = False,
) -> None:
    """Answer an open query (site investigators).

    \b
    Example: trialctl query answer Q2 --text "Chart checked: as recorded" -u ivan
    """
    _step(query_id, "answer", text, trial, ledger, user, password_stdin, json_output)


@app.command("close")
def close(
    query_id: QueryArgument,
    trial: TrialOption = None, ledger: LedgerOption = None, user: UserOption = None,
    password_stdin: PasswordStdinOption = False, json_output: JsonOption = False,
) -> None:
    """Close a query (whoever raised it, or a data manager).

    \b
    Example: trialctl query close Q2 -u mona
    """
    _step(query_id, "close", None, trial, ledger, user, password_stdin, json_output)


@app.command("reopen")
def reopen(
    query_id: QueryArgument, text: TextOption,
    trial: TrialOption = None, ledger: LedgerOption = None, user: UserOption = None,
    password_stdin: PasswordStdinOption = False, json_output: JsonOption = False,
) -> None:
    """Reopen a closed query, saying why (whoever raised it, or a data manager).

    \b
    Example: trialctl query reopen Q1 --text "Please attach the infusion log" -u mona
    """
    _step(query_id, "reopen", text, trial, ledger, user, password_stdin, json_output)


@app.command("list")
def list_queries(
    patient: Annotated[str | None, typer.Option(
        "--patient", metavar="PATIENT_ID", help="Only this patient's.")] = None,
    only_open: Annotated[bool, typer.Option("--open", help="Only queries not closed.")] = False,
    trial: TrialOption = None, ledger: LedgerOption = None,
    json_output: JsonOption = False, csv_output: CsvOption = False,
) -> None:
    """Every query with its record, state and age in days.

    \b
    Example: trialctl query list --open --json
    """
    from trialctl.ledger.application import open_ledger
    from trialctl.ledger.reviews import ReviewActions

    fmt = output_format(json_output, csv_output)
    with ledger_errors():
        rows = ReviewActions(open_ledger(ledger)).query_rows(
            trial, patient, only_open, datetime.now(UTC).date())
    output_rows(rows, fmt, QUERIES)
    if fmt is Format.TABLE and not rows:
        typer.echo("no queries")
