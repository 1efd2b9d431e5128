"""`trialctl review …`: a monitor's signed source data verification, and what it covers."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer._click.core import Context
from typer.core import TyperGroup

from trialctl.cli.io import EXIT_USAGE, fail, ledger_errors
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
from trialctl.cli.render import REVIEW_STATUS, output_rows
from trialctl.cli.signing import run_signed


class _PatientOrCommand(TyperGroup):
    """`trialctl review P001` is `trialctl review sign P001`: a first word that names no
    subcommand is the patient."""

    def resolve_command(self, ctx: Context, args: list[str]) -> Any:
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["sign", *args]
        return super().resolve_command(ctx, args)


app = typer.Typer(cls=_PatientOrCommand, no_args_is_help=True,
                  help="Source data verification: `trialctl review P001 -u mona` signs it.")


def parse_positions(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        positions = tuple(int(p) for p in text.split(","))
    except ValueError:
        fail(f"--records expects ledger positions like 12,15, not {text!r}", EXIT_USAGE)
    if any(p < 0 for p in positions):
        fail(f"--records expects ledger positions (0 or more), not {text!r}", EXIT_USAGE)
    return positions


@app.command("sign")
def sign(
    patient: PatientArgument,
    records: Annotated[str | None, typer.Option(
        "--records", metavar="N,M,…",
        help="Ledger positions of the records verified (default: every record not yet "
             "reviewed, or whose review a correction voided).")] = None,
    trial: TrialOption = None, ledger: LedgerOption = None, user: UserOption = None,
    password_stdin: PasswordStdinOption = False, json_output: JsonOption = False,
) -> None:
    """Sign, with meaning `reviewed`, that a patient's records were verified against source.

    Monitors only; nobody reviews an entry they signed (or corrected) themselves. A later
    correction of a reviewed record voids its review: it is back on the to-review list.
    `trialctl review P001` is short for `trialctl review sign P001`.

    \b
    Example: trialctl review P007 --records 67,68 -u mona
    """
    from trialctl.ledger.reviews import Review, ReviewActions

    request = Review(trial, patient, parse_positions(records), user or "")
    run_signed(ledger, user, password_stdin, json_output, request, ReviewActions)


@app.command("status")
def status(
    patient: Annotated[str | None, typer.Option(
        "--patient", metavar="PATIENT_ID", help="Only this patient.")] = None,
    trial: TrialOption = None, ledger: LedgerOption = None,
    json_output: JsonOption = False, csv_output: CsvOption = False,
) -> None:
    """Per patient: records unreviewed, reviewed, and reviews invalidated by a correction
    (ledger positions), and open queries.

    \b
    Example: trialctl review status --patient P008 --json
    """
    from trialctl.ledger.application import open_ledger
    from trialctl.ledger.reviews import ReviewActions

    fmt = output_format(json_output, csv_output)
    with ledger_errors():
        rows = ReviewActions(open_ledger(ledger)).review_status(trial, patient)
    output_rows(rows, fmt, REVIEW_STATUS)
    if fmt is Format.TABLE:
        for row in rows:
            for line in row["invalidations"]:
                typer.echo(f"{row['patient_id']}: {line}")
