"""`trialctl trial register|list|close` and `trialctl status`.

The database stack is imported inside each command, so `trialctl --help` stays fast."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from trialctl.cli.io import EXIT_USAGE, fail, ledger_errors, print_json
from trialctl.cli.options import (
    AsOfOption,
    CsvOption,
    Format,
    JsonOption,
    LedgerOption,
    PasswordStdinOption,
    TrialOption,
    UserOption,
    moment_option,
    output_format,
)
from trialctl.cli.render import COHORTS, TableSpec, field, output_rows, render_status
from trialctl.cli.signing import run_signed
from trialctl.ledger.requests import Registration, TrialClosure

app = typer.Typer(help="Trials in this ledger, each run by its protocol.", no_args_is_help=True)


def load_protocol_file(path: Path) -> Any:
    from trialctl.domain.protocol_file import ProtocolError, load_protocol

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        fail(f"cannot read protocol {path}: {e}", EXIT_USAGE)
    try:
        return load_protocol(text)
    except ProtocolError as e:
        fail(f"protocol {path} refused: {e}")


@app.command("register")
def register(
    protocol_file: Annotated[Path, typer.Argument(help="The protocol, as TOML.")],
    ledger: LedgerOption = None, user: UserOption = None,
    password_stdin: PasswordStdinOption = False, json_output: JsonOption = False,
) -> None:
    """Register a trial from its protocol file (principal investigator or admin).

    \b
    Example: trialctl trial register protocols/NCT00084513.toml -u pat
    """
    request = Registration(load_protocol_file(protocol_file))
    run_signed(ledger, user, password_stdin, json_output, request)


@app.command("close")
def close(
    reason: Annotated[str, typer.Option("--reason", help="Why the trial closes.")] =
    "study completed",
    date: Annotated[str | None, typer.Option(
        "--date", help="The closing date (YYYY-MM-DD); default today (UTC).")] = None,
    trial: TrialOption = None, ledger: LedgerOption = None, user: UserOption = None,
    password_stdin: PasswordStdinOption = False, json_output: JsonOption = False,
) -> None:
    """Close the trial (principal investigator, signed as approved). Afterwards only
    corrections, queries and reviews may be signed; everything else is refused.

    \b
    Example: trialctl trial close --reason "database lock" -u pat
    """
    from datetime import UTC, datetime

    closed_on = date or datetime.now(UTC).date().isoformat()
    run_signed(ledger, user, password_stdin, json_output,
               TrialClosure(trial, closed_on, reason))


TRIALS = TableSpec("Trials", [
    ("trial", field("trial")), ("title", field("title")), ("cohorts", field("cohorts")),
    ("stopped", field("stopped")),
])


@app.command("list")
def list_trials(ledger: LedgerOption = None, json_output: JsonOption = False,
                csv_output: CsvOption = False) -> None:
    """The trials in this ledger.

    \b
    Example: trialctl trial list --json
    """
    from trialctl.ledger.application import open_ledger
    from trialctl.ledger.trials import TrialActions

    fmt = output_format(json_output, csv_output)
    with ledger_errors():
        records = TrialActions(open_ledger(ledger))
        trials = [records.trial(t) for t in records.trial_ids()]
    output_rows([{"trial": t.protocol_id, "title": t.protocol.title, "stopped": t.stopped,
                  "cohorts": len(t.cohorts)} for t in trials], fmt, TRIALS)


def status(
    as_of: AsOfOption = None,
    trial: TrialOption = None, ledger: LedgerOption = None,
    json_output: JsonOption = False, csv_output: CsvOption = False,
) -> None:
    """The trial now: dose level, cohorts with patients and DLTs, what comes next, the MTD.

    With --as-of, as it stood then (replayed from the entries). --csv prints the cohorts.

    \b
    Example: trialctl status --json
    """
    from trialctl.ledger.application import open_ledger
    from trialctl.ledger.replay import replay_trial
    from trialctl.ledger.trials import TrialActions

    fmt = output_format(json_output, csv_output)
    moment = moment_option(as_of, "--as-of")
    with ledger_errors():
        actions = TrialActions(open_ledger(ledger))
        if moment is not None:
            state = replay_trial(actions, trial, None, moment)["status"]
        else:
            state = actions.status(trial)
    if fmt is Format.JSON:
        print_json(state)
    elif fmt is Format.CSV:
        output_rows(state["cohorts"], fmt, COHORTS)
    else:
        render_status(state)
