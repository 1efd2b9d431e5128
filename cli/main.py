"""The `trialctl` command: parse, call one ledger function, render.

Nothing here imports the database stack at module load, so `trialctl --help` stays fast;
each command imports what it needs when it runs.
"""

from __future__ import annotations

import typer

from trialctl.cli import (
    audit_commands,
    escalation_commands,
    ledger_commands,
    proof_commands,
    record_commands,
    trial_commands,
    user_commands,
)

app = typer.Typer(
    name="trialctl",
    help="An event-sourced, signed, tamper-evident ledger for early-phase clinical trials.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals can hold keys and passwords
    add_completion=False,
)
ledger_commands.register(app)
app.add_typer(user_commands.app, name="user")
app.add_typer(proof_commands.app, name="proof")
app.add_typer(trial_commands.app, name="trial")
app.add_typer(record_commands.app, name="record")
app.add_typer(escalation_commands.app, name="escalation")
app.command("status")(trial_commands.status)
audit_commands.register(app)


def run() -> None:
    app()
