"""Running one signed trial action: open the ledger, check the request, unlock the signer,
record, render."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import typer

from trialctl.cli.io import PasswordSource, fail, ledger_errors, need_user, print_json

if TYPE_CHECKING:
    from trialctl.ledger.trials import Recorded, TrialActions


def run_signed(
    ledger: str | None, user: str | None, password_stdin: bool, json_output: bool,
    request: Any, actions_type: type[TrialActions] | None = None,
) -> None:
    """Every `record` command: the domain refuses (before any password is asked for), the
    ledger signs, this renders. `actions_type` is a `TrialActions` that takes more requests
    (`ledger.reviews.ReviewActions`)."""
    from trialctl.domain.rules import TrialRuleError
    from trialctl.ledger.application import open_ledger
    from trialctl.ledger.trials import TrialActions

    signer = need_user(user)
    with ledger_errors():
        actions = (actions_type or TrialActions)(open_ledger(ledger))
        try:
            actions.check(request, datetime.now(UTC), signer)
            actor = actions.ledger.unlock(
                signer, PasswordSource(password_stdin).read(f"Password for {signer}")
            )
            recorded = actions.perform(request, actor, datetime.now(UTC))
        except TrialRuleError as e:
            fail(f"refused: {e}")
    render_recorded(recorded, json_output)


def render_recorded(recorded: Recorded, json_output: bool) -> None:
    if json_output:
        print_json({"trial": recorded.trial, "patient": recorded.patient,
                    "entries": recorded.entries, "summary": recorded.summary})
        return
    for statement in recorded.entries:
        event_type = statement["type"].removeprefix("trialctl.")
        typer.echo(f"recorded #{statement['position']} {event_type} "
                   f"({statement['meaning']} by {statement['actor']['user_id']} as "
                   f"{statement['actor']['role']})")
    summary: dict[str, Any] = recorded.summary
    for key in ("eligibility", "response", "counts_toward_decision", "corrected", "engine",
                "grading", "reviewed", "query", "state"):
        if key in summary:
            value = summary[key]
            if key == "eligibility":
                from trialctl.domain.patient import verdict

                value = verdict(value)
            typer.echo(f"  {key.replace('_', ' ')}: {value}")
