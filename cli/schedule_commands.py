"""`trialctl schedule`: what each patient's assessment schedule has done, due and overdue.

The database stack is imported inside the command, so `trialctl --help` stays fast."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

import typer

from trialctl.cli.io import EXIT_USAGE, fail, ledger_errors
from trialctl.cli.options import CsvOption, JsonOption, LedgerOption, TrialOption, output_format
from trialctl.cli.render import TableSpec, field, output_rows

SCHEDULE = TableSpec("Assessment schedule", [
    ("patient", field("patient_id")), ("assessment", field("name")),
    ("#", field("occurrence")), ("due", field("due_on")), ("window", field("window")),
    ("state", field("state")), ("done on", lambda r: r["done_on"] or ""),
    # The patient record version that did it: the record belongs to this visit.
    ("record", lambda r: "" if r.get("done_record") is None else f"v{r['done_record']}"),
])


def schedule(
    patient: Annotated[str | None, typer.Option("--patient", help="One patient's schedule.")]
    = None,
    due_by: Annotated[str | None, typer.Option(
        "--due-by", metavar="YYYY-MM-DD",
        help="List occurrences whose window opens by then (default today).")] = None,
    trial: TrialOption = None, ledger: LedgerOption = None,
    json_output: JsonOption = False, csv_output: CsvOption = False,
) -> None:
    """The protocol's assessment schedule per patient: each occurrence done, due, overdue
    or upcoming, derived from the recorded responses, observations and labs.

    \b
    Example: trialctl schedule --patient P010 --due-by 2030-01-01
    """
    from trialctl.ledger.application import open_ledger
    from trialctl.ledger.schedule import schedule_rows
    from trialctl.ledger.trials import TrialActions

    fmt = output_format(json_output, csv_output)
    by = None
    if due_by is not None:
        try:
            by = date.fromisoformat(due_by)
        except ValueError:
            fail(f"--due-by {due_by!r} is not a date (YYYY-MM-DD)", EXIT_USAGE)
    with ledger_errors():
        rows = schedule_rows(TrialActions(open_ledger(ledger)), trial, patient,
                             datetime.now(UTC).date(), by)
    output_rows(rows, fmt, SCHEDULE)
