"""`trialctl trial register|list` and `trialctl status`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from trialctl.cli.io import EXIT_USAGE, fail, ledger_errors, print_json, print_table
from trialctl.cli.options import JsonOption, LedgerOption, PasswordStdinOption, UserOption
from trialctl.cli.record_commands import TrialOption
from trialctl.cli.signing import run_signed
from trialctl.ledger.requests import Registration

app = typer.Typer(help="Trials in this ledger, each run by its protocol.", no_args_is_help=True)


def load_protocol_file(path: Path) -> Any:
    from trialctl.domain.protocol import ProtocolError, load_protocol

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

    Example: trialctl trial register protocols/NCT00084513.toml -u alice
    """
    request = Registration(load_protocol_file(protocol_file))
    run_signed(ledger, user, password_stdin, json_output, request)


@app.command("list")
def list_trials(ledger: LedgerOption = None, json_output: JsonOption = False) -> None:
    """The trials in this ledger. Example: trialctl trial list --json"""
    from trialctl.ledger.application import open_ledger
    from trialctl.ledger.trials import TrialActions

    with ledger_errors():
        records = TrialActions(open_ledger(ledger))
        trials = [records.trial(t) for t in records.trial_ids()]
    rows = [{"trial": t.protocol_id, "title": t.protocol.title, "stopped": t.stopped,
             "cohorts": len(t.cohorts)} for t in trials]
    if json_output:
        print_json(rows)
    else:
        print_table("Trials", ["trial", "title", "cohorts", "stopped"],
                    [(r["trial"], r["title"], r["cohorts"], r["stopped"]) for r in rows])


def status(
    as_of: Annotated[str | None, typer.Option(
        "--as-of", help="Show it as it stood then (replayed from the entries).")] = None,
    trial: TrialOption = None, ledger: LedgerOption = None, json_output: JsonOption = False,
) -> None:
    """The trial now: dose level, cohorts with patients and DLTs, what comes next, the MTD.

    Example: trialctl status --json
    """
    from trialctl.cli.audit_commands import parse_moment
    from trialctl.ledger.application import open_ledger
    from trialctl.ledger.replay import replay_trial
    from trialctl.ledger.trials import TrialActions

    moment = parse_moment(as_of, "--as-of")
    with ledger_errors():
        actions = TrialActions(open_ledger(ledger))
        if moment is not None:
            state = replay_trial(actions, trial, None, moment)["status"]
        else:
            state = actions.status(trial)
    if json_output:
        print_json(state)
        return
    render_status(state)


def render_status(state: dict[str, Any]) -> None:
    typer.echo(f"{state['trial']}: {state['title']}")
    typer.echo(f"design: {state['design']}")
    print_table(
        "Cohorts",
        ["cohort", "level", "dose", "patients", "evaluated", "DLTs", "replaced"],
        [(c["number"], c["level"], c["dose"], ", ".join(c["patients"]), c["evaluated"],
          c["dlts"], ", ".join(c["replaced"])) for c in state["cohorts"]],
    )
    for decision in state["decisions"]:
        flag = " (override)" if decision["overridden"] else ""
        signer = decision.get("signed_by")
        by = f" [{signer['meaning']} by {signer['name']}, {signer['role']}]" if signer else ""
        typer.echo(f"cohort {decision['cohort_number']}: {decision['action']}{flag} — "
                   f"{decision['reason']}{by}")
    typer.echo(f"next: {state['next']['text']}")
    mtd = state["mtd"]
    if mtd:
        typer.echo(f"MTD: level {mtd['level']} ({mtd['dose']} {mtd['unit']})")
    elif state["stopped"]:
        typer.echo("MTD: none (no tolerable dose)")
