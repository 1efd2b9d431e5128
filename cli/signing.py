"""Running one signed trial action: open the ledger, check the request, unlock the signer,
record, render."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import typer

from trialctl.cli.io import PasswordSource, fail, ledger_errors, need_user, print_json

if TYPE_CHECKING:
    from trialctl.ledger.trials import Recorded, TrialActions


@dataclass(frozen=True)
class Prepared:
    """What a record command would sign, as its session line, caught before any signing
    (`session_argv`: a session agent parsing a command handed over as its arguments)."""

    signer: str
    ledger: str | None
    password_stdin: bool
    json_output: bool
    line: dict[str, Any]
    trial: str


class PreparedCommand(Exception):  # it carries a result, not an error
    def __init__(self, prepared: Prepared | None) -> None:
        super().__init__("prepared")
        self.prepared = prepared


# Set while a session agent parses a handed-over command: `run_signed` then stops with
# the command's line instead of signing.
PREPARING: ContextVar[bool] = ContextVar("PREPARING", default=False)


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
    if PREPARING.get():
        line = session_line(request) if actions_type is None else None
        raise PreparedCommand(None if line is None else Prepared(
            signer, ledger, password_stdin, json_output, line, request.trial))
    if actions_type is None and _signed_in_session(ledger, signer, password_stdin, json_output,
                                                   request):
        return
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


# A record command's options that say how to sign or show, not what is recorded.
_NOT_RECORDED = frozenset({"ledger", "user", "password_stdin", "json_output", "trial"})


def session_line(request: Any) -> dict[str, Any] | None:
    """The running record command as a batch line (`ledger.batch_lines`), named by its
    flags; None unless that line makes exactly the request the command built, so the agent
    checks and signs the very same thing."""
    from typer._click.globals import get_current_context

    from trialctl.ledger.batch_lines import Line, LineError, line_request
    from trialctl.ledger.requests import PatientStep

    context = get_current_context(silent=True)
    if context is None or not isinstance(request, PatientStep) or context.info_name is None:
        return None
    line: dict[str, Any] = {"command": context.info_name}
    for param in context.command.params:
        value = context.params.get(param.name or "")
        if param.name in _NOT_RECORDED or value is None or value == ():
            continue
        name = "patient" if param.param_type_name == "argument" else param.opts[0].lstrip("-")
        line[name] = list(value) if isinstance(value, tuple) else value
    try:
        rebuilt = line_request(Line(0, line), request.trial)
    except (LineError, TypeError, ValueError):
        return None
    return line if rebuilt == request else None


def _signed_in_session(
    ledger: str | None, signer: str, password_stdin: bool, json_output: bool, request: Any,
) -> bool:
    """Hand the record to the signer's session agent, if they have one for this ledger;
    False (nothing done) when they have none, or the command cannot go through one."""
    from trialctl.ledger.location import resolve_ledger
    from trialctl.ledger.session_socket import call_agent, ledger_tag

    with ledger_errors():
        line = session_line(request)
        if line is None:
            return False
        asked = {"user": signer, "ledger": ledger_tag(resolve_ledger(ledger).url),
                 "line": line, "trial": request.trial}
        checked = call_agent(signer, {"op": "check", **asked})
        if checked is None:
            return False
        if not checked["ok"]:
            if checked.get("kind") in ("other-ledger", "other-user"):
                return False
            fail(checked["error"])
        what = "Session PIN" if checked["component"] == "pin" else "Password"
        component = PasswordSource(password_stdin).read(f"{what} for {signer}")
        answer = call_agent(signer, {"op": "record", **asked, "component": component})
    if answer is None:
        fail("the session ended before signing; nothing was recorded")
    if not answer["ok"]:
        fail(answer["error"])
    shown = answer["recorded"]
    _render(shown["trial"], shown["patient"], shown["entries"], shown["summary"], json_output)
    return True


def render_recorded(recorded: Recorded, json_output: bool) -> None:
    _render(recorded.trial, recorded.patient, recorded.entries, recorded.summary, json_output)


def _render(trial: str, patient: str | None, entries: list[dict[str, Any]],
            summary: dict[str, Any], json_output: bool) -> None:
    if json_output:
        print_json({"trial": trial, "patient": patient, "entries": entries, "summary": summary})
        return
    for statement in entries:
        event_type = statement["type"].removeprefix("trialctl.")
        typer.echo(f"recorded #{statement['position']} {event_type} "
                   f"({statement['meaning']} by {statement['actor']['user_id']} as "
                   f"{statement['actor']['role']})")
    for key in ("eligibility", "response", "counts_toward_decision", "corrected", "engine",
                "grading", "reviewed", "query", "state"):
        if key in summary:
            value = summary[key]
            if key == "eligibility":
                from trialctl.domain.patient import verdict

                value = verdict(value)
            typer.echo(f"  {key.replace('_', ' ')}: {value}")
